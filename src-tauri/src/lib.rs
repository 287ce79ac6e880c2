//! Inpatient Hub's core library. See ARCHITECTURE.md for the codemap.
//!
//! Core modules (`domain`, `store`, `systmone`, `simulator`, `hub`, ...) never import
//! tauri; only `shell` does. `tests/architecture.rs` enforces that.

pub mod config;
pub mod domain;
pub mod hub;
pub mod lookup;
pub mod notes;
pub mod shell;
pub mod simulator;
pub mod store;
pub mod systmone;
pub mod tasksync;
