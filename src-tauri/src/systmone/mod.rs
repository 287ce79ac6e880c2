//! SystmOne Client Integration API: the XML codec and the framing of documents on the
//! socket. See /work/shared/systmone-api.md for what is known about the interface.

pub mod codec;
pub mod framing;
pub mod client;
pub mod connection;
pub mod pacing;
pub mod scheduler;
pub mod secrets;
