//! Case notes: drafting (free text or ward templates), a preview that is exactly what will be
//! filed, approval (with co-signature when the ward requires it), and the outbox that files
//! each approved note in SystmOne exactly once — or hands it to the clinician to paste.
//!
//! - `domain::render`: the pure note → narrative lines function, and the approval hash;
//! - `domain::outbox_machine`: the pure outbox state machine;
//! - [`worker`]: drains the outbox through a [`worker::RecordWriter`] (over the SystmOne
//!   client in `crate::SystmOneRecordWriter`; over in-memory fakes in the tests);
//! - [`service`]: the user operations, one call each, for `Hub` and `hubctl`.

pub mod service;
pub mod worker;

pub use domain::outbox_machine::{self, OutboxState, Policy};
pub use domain::render;
pub use domain::SystmOneFailure;
pub use service::*;
pub use worker::{FiledEntry, RecordWriter, WorkerConfig};

use domain::{NhsNumberError, ValidationError};
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error(transparent)]
    NhsNumber(#[from] NhsNumberError),
    #[error("{0}")]
    Refused(String),
}

impl NotesError {
    /// A stable machine-readable code (same vocabulary as `HubError::code`).
    pub fn code(&self) -> &'static str {
        match self {
            NotesError::Store(e) => e.code(),
            NotesError::Refused(_) => "conflict",
            NotesError::Invalid(_) | NotesError::Render(_) => "invalid_input",
            NotesError::NhsNumber(_) => "invalid_nhs_number",
        }
    }
}

pub type NotesResult<T> = Result<T, NotesError>;
