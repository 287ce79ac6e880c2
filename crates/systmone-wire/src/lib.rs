//! TPP SystmOne's Client Integration API on the wire: typed requests and responses with their
//! XML (`codec`), and one XML document at a time out of a byte stream (`framing`).
//!
//! This is everything that parses bytes from outside the app, so it is what the fuzz targets
//! and the decode benchmark depend on, and all the simulator needs to speak the protocol.
//!
//! Architecture Invariant: no sockets, no database, no clock-driven behaviour here; the crate
//! depends on `domain` only (for NHS numbers and redaction).

pub mod codec;
pub mod framing;

/// The NHS-number and redaction types the wire's models carry, for crates (the simulator)
/// that speak the protocol without depending on the rest of the domain.
pub use domain::{NhsNumber, NhsNumberError, Sensitive};

/// The APIKey the bundled simulator accepts unless told otherwise. Demo mode sends it to the
/// simulator; it is meaningless to a real SystmOne.
pub const SIMULATOR_API_KEY: &str = "f31e26725b5491f2";
