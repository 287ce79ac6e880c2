//! Domain types shared by every core module: typed ids, NHS numbers, redaction of
//! patient-identifiable data, and validated inputs. No I/O happens here.

mod ids;
mod nhs_number;
mod note;
mod sensitive;
mod task;
mod text;

pub use ids::{AuditId, NoteId, OutboxId, PatientId, TaskId};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use note::{FiledHow, FilingPayload, FilingRoute, Note, NoteBody, NoteStatus, NoteTemplate, Role};
pub use sensitive::Sensitive;
pub use task::{NewTask, Task, TaskChanges, TaskFilter, TaskStatus};
pub use text::{parse_due, BedLabel, PatientName, StaffName, TaskTitle, ValidationError};
