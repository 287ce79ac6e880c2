//! The one connection to the SystmOne client on this PC (TPP's Client Integration API):
//! the connection owner, the paced queue in front of it, TPP's budgets shared by every
//! process on the PC, the APIKey in the OS keychain, and `SystmOneClient` with one async
//! method per function. The wire format lives in `systmone-wire` (re-exported as `codec`
//! and `framing`). `shared/systmone-api.md` holds what is known about the interface.
//!
//! Architecture Invariant: only `connection` opens the SystmOne socket, and only the
//! scheduler's worker calls it. This crate does not depend on the store: what it keeps on
//! disk goes through `domain::ports` (`PacingLedger`, `DeviceIdentity`), which the store
//! implements.

pub use systmone_wire::{codec, framing};

pub mod client;
pub mod connection;
pub mod pacing;
pub mod scheduler;
pub mod secrets;
