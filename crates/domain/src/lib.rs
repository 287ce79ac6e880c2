//! Inpatient Hub's domain: typed ids, NHS numbers, redaction of patient-identifiable data,
//! validated inputs, and the pure machines every other crate decides with (note rendering
//! and hashing, the outbox state machine, task-link values and the three-way merge, the one
//! classification of SystmOne failures). No I/O happens here.
//!
//! Architecture Invariant: this crate depends on no other workspace crate and does no I/O
//! (no files, sockets or SQL); `ports` only names the traits that the store implements and
//! the SystmOne crate uses.

mod ids;
mod nhs_number;
mod note;
mod sensitive;
mod task;
pub mod text;

pub mod failure;
pub mod merge;
pub mod outbox_machine;
pub mod ports;
pub mod render;
pub mod task_link;

pub use failure::SystmOneFailure;
pub use ids::{AuditId, NoteId, OutboxId, PatientId, TaskId};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use note::{
    FiledHow, FilingPayload, FilingRoute, Note, NoteBody, NoteStatus, NoteTemplate, Role,
};
pub use sensitive::Sensitive;
pub use task::{NewTask, Task, TaskChanges, TaskFilter, TaskStatus};
pub use text::{parse_due, BedLabel, PatientName, StaffName, TaskTitle, ValidationError};
