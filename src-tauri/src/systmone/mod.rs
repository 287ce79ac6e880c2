//! SystmOne Client Integration (temporary module root until the codec branch lands).
pub mod pacing;
pub mod scheduler;
pub mod secrets;
