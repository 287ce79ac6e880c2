//! Inpatient Hub's core: the façade both binaries call ([`Hub`]), patient lookup, case notes
//! (service and filing worker), task sync (planner and engine) and where things live
//! ([`config`]). Everything the window does can be done, and tested, through this crate with
//! no window.
//!
//! Architecture Invariant: this crate never depends on Tauri; the window's shell is a thin
//! layer of one-line commands over [`Hub`].

pub mod config;
pub mod conformance;
pub mod db_key;
pub mod logging;
pub mod lookup;
pub mod notes;
pub mod tasksync;

mod hub;

pub use hub::*;

/// The store's records as the window and `hubctl` show them (so neither needs the store).
pub use store::{AuditEntry, AuditQuery, DatabaseEnvironment, OutboxEntry, Patient};
