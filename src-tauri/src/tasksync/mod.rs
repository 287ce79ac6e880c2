//! Two-way sync between ward tasks and SystmOne tasks.
//!
//! A ward task is local-only until a clinician asks for it to be created in SystmOne
//! (`Store::request_task_push`); tasks that appear in SystmOne for a linked patient are
//! imported and linked. A linked task keeps, in `task_links`, the last values known to match
//! SystmOne (the *base*). Local changes are never stored separately: they are the task row
//! minus its base, so any edit anywhere is picked up and a crash cannot lose one.
//!
//! # Conflict rules
//!
//! Per field (task text, due date, assignee), comparing local and SystmOne with the base:
//!
//! 1. Changed here only → the changed fields (and only those) are sent to SystmOne with the
//!    TaskUID.
//! 2. Changed in SystmOne only → applied to the ward task (audited as `task.sync.pulled`).
//! 3. Changed on both sides to the same value → nothing to do.
//! 4. Changed on both sides to different values → **the ward's value wins** and is sent to
//!    SystmOne; a sync notice on the task shows the SystmOne value that was overwritten (and
//!    the audit log keeps it), so neither edit is lost.
//! 5. The task disappeared from SystmOne's non-completed list (completed or removed there):
//!    - unchanged here → the ward task is marked done, with a notice "completed or removed
//!      in SystmOne";
//!    - edited here since the last sync → the ward task **stays open**, is unlinked, and gets
//!      the notice "completed or removed in SystmOne while edited here — please review";
//!      nothing is sent;
//!    - also completed or cancelled here → unlinked; any unsent edit is listed in a notice.
//! 6. Completed (or cancelled) here while SystmOne edited it → **completion wins**: SystmOne
//!    gets the completion (plus any unsent ward edits); SystmOne's edit is not applied to the
//!    completed ward task but is kept in a notice.
//! 7. A ward cancellation is sent as SystmOne status `Completed` ([`COMPLETED_STATUS`]): the
//!    API describes no other way to take a task off SystmOne's list.
//! 8. SystmOne refuses a change permanently → a notice with SystmOne's message; that
//!    version of the task is not retried (the next edit is). A refused create leaves the
//!    task on the ward board only.
//! 9. A SystmOne task that was unlinked (rule 5) and reappears is left alone.
//! 10. A SystmOne task that carries the reference of a ward task already linked to another
//!     TaskUID is a second copy: it is not imported; the ward task gets a notice naming it.
//! 11. SystmOne's interface cannot clear a due date or unassign a task: such a ward edit is
//!     refused before sending (rule 8's notice), never silently dropped. A new task needs an
//!     assignee: an unassigned ward task is sent to `TaskSyncEngine::default_assignee`, and
//!     the ward task shows that assignee.
//! 12. A ward task reopened after its completion reached SystmOne stays on the ward board
//!     only; `request_task_push` sends it again as a new SystmOne task. Reopened before the
//!     completion was sent, nothing is sent at all.
//!
//! Pushes send only fields that differ from the base, so a SystmOne edit to another field
//! since the last pull survives. Known limits (the Tasks filter gives no version to test
//! against): a SystmOne edit to the *same* field made after our last pull of that patient
//! and before our push is overwritten without a notice, and a SystmOne edit made in that
//! window to a task we then complete is not shown here. Both stay in SystmOne's own record
//! and audit trail; the next pull makes both sides agree.
//!
//! # Never filing twice
//!
//! Every create carries a reference `[IH-T<id>-<random>]` at the end of the content. The
//! link goes to `create_in_flight` (durably) *before* the request is sent. A create whose
//! outcome is unknown (timeout, crash) is only resent after a pull that covers it shows no
//! task with that reference, and only after a grace period (a slow SystmOne may still file
//! it); if the task is there, it is linked instead. An entered-today pull covers a create
//! sent earlier the same day, except within 10 minutes of midnight (SystmOne dates entries
//! by its own clock); otherwise a full pull is needed. Any pull that lists a task with the
//! reference links it at once. Limit: the Tasks filter lists only non-completed tasks, so if
//! a SystmOne user completes our task between an unanswered create and that pull, the pull
//! cannot tell it from "never filed" and the task is sent again (the extra copy is the open
//! one; the completed one stays completed).
//!
//! # Budgets
//!
//! A full Tasks pull is a throttled GetPatientRecord (once per 30 s per PC); a pull whose
//! MinEntryDate and MaxEntryDate are both today is exempt and runs at the 1/s pace. See
//! [`planner`] for the order of work and [`planner::estimate_board_confirmation`].

pub mod engine;
pub mod fake;
pub mod merge;
pub mod planner;
pub mod systmone_remote;

pub use crate::store::task_links::{
    AssigneeKind, LinkBase, LinkState, PatientTaskSync, RemoteAssignee, SyncFields, TaskLink,
    TaskUid, SYNC_ACTOR,
};
pub use engine::{RemoteTasks, RoundReport, StoreAccess, TaskSyncEngine, TaskSyncError};
pub use planner::{Budgets, Op};

use crate::domain::{Sensitive, TaskTitle};
use chrono::{NaiveDate, NaiveDateTime};

/// The status sent to complete a SystmOne task (also used for a ward cancellation).
pub const COMPLETED_STATUS: &str = "Completed";

/// A SystmOne task as the Tasks filter returns it (non-completed only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTask {
    pub uid: TaskUid,
    pub task_type: String,
    /// As SystmOne holds it, reference tag included.
    pub content: Sensitive<String>,
    pub due: Option<NaiveDate>,
    pub assignee: Option<RemoteAssignee>,
    /// "Not Started", "Started", …
    pub status: String,
    pub entered: NaiveDateTime,
}

impl RemoteTask {
    /// The shared fields, reference tag removed.
    pub fn fields(&self) -> SyncFields {
        SyncFields {
            content: Sensitive::new(strip_reference(self.content.expose()).0),
            due: self.due,
            assignee: self.assignee.clone(),
        }
    }

    pub fn reference(&self) -> Option<String> {
        strip_reference(self.content.expose()).1
    }
}

/// UpdatePatientRecord NonClinical/Task for a new task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRemoteTask {
    pub task_type: String,
    /// Reference tag included.
    pub content: Sensitive<String>,
    pub due: Option<NaiveDate>,
    pub assignee: Option<RemoteAssignee>,
}

/// Only the fields to change, sent with the TaskUID. `Some(None)` clears a field (the
/// client writes an empty element).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteTaskChanges {
    /// Reference tag included.
    pub content: Option<Sensitive<String>>,
    pub due: Option<Option<NaiveDate>>,
    pub assignee: Option<Option<RemoteAssignee>>,
    pub status: Option<String>,
}

impl RemoteTaskChanges {
    pub fn is_empty(&self) -> bool {
        self.content.is_none()
            && self.due.is_none()
            && self.assignee.is_none()
            && self.status.is_none()
    }
}

/// How a SystmOne call failed, as the client reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// No response (throttled, slow servers, timeout, connection lost after sending): an
    /// update may or may not have been filed.
    #[error("SystmOne did not answer in time; the change may or may not have been filed")]
    OutcomeUnknown,
    /// SystmOne answered with a temporary error (e.g. record open on screen): not filed.
    #[error("SystmOne asked to try again later: {0}")]
    Temporary(String),
    /// SystmOne answered with a permanent error: not filed, and retrying will not help.
    #[error("SystmOne refused: {0}")]
    Permanent(String),
    /// The request was never delivered (SystmOne not running, nobody logged in).
    #[error("SystmOne is not available: {0}")]
    Unavailable(String),
}

/// Embeds a reference at the end of the content: `Bloods [IH-T12-0a1b2c]`.
pub fn with_reference(content: &str, reference: Option<&str>) -> String {
    match reference {
        Some(r) => format!("{content} [{r}]"),
        None => content.to_owned(),
    }
}

/// Splits the last `[IH-…]` tag off a content: (content without it, the reference).
pub fn strip_reference(content: &str) -> (String, Option<String>) {
    if let Some(start) = content.rfind("[IH-") {
        if let Some(len) = content[start..].find(']') {
            let reference = &content[start + 1..start + len];
            let valid = reference.len() > 3
                && reference
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if valid {
                let mut rest = String::with_capacity(content.len());
                rest.push_str(content[..start].trim_end());
                let after = content[start + len + 1..].trim();
                if !after.is_empty() {
                    if !rest.is_empty() {
                        rest.push(' ');
                    }
                    rest.push_str(after);
                }
                return (rest.trim().to_owned(), Some(reference.to_owned()));
            }
        }
    }
    (content.trim().to_owned(), None)
}

/// The ward title for a SystmOne content: one line, within a title's length (SystmOne's
/// content may be longer and multi-line; the full text stays in the merge base).
pub fn title_from_content(
    content: &str,
    task_type: &str,
) -> Result<TaskTitle, crate::domain::ValidationError> {
    let flat = content
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let max = TaskTitle::MAX_CHARS;
    let text = if flat.chars().count() > max {
        flat.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        flat
    };
    TaskTitle::parse(&text)
        .or_else(|_| TaskTitle::parse(task_type))
        .or_else(|_| TaskTitle::parse("SystmOne task"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn references_round_trip_and_survive_user_text_after_them() {
        let c = with_reference("Bloods", Some("IH-T12-0a1b2c"));
        assert_eq!(c, "Bloods [IH-T12-0a1b2c]");
        assert_eq!(
            strip_reference(&c),
            ("Bloods".to_owned(), Some("IH-T12-0a1b2c".to_owned()))
        );
        assert_eq!(
            strip_reference("Bloods [IH-T12-0a1b2c] done by FY1").0,
            "Bloods done by FY1"
        );
        assert_eq!(
            strip_reference("see [IH notes]"),
            ("see [IH notes]".to_owned(), None)
        );
        assert_eq!(strip_reference("  plain "), ("plain".to_owned(), None));
    }

    #[test]
    fn titles_from_long_multiline_content_are_one_bounded_line() {
        let t = title_from_content("Line one\nline two\t\u{7}", "File").unwrap();
        assert_eq!(t.as_str(), "Line one line two");
        let long = "x".repeat(500);
        assert_eq!(
            title_from_content(&long, "File")
                .unwrap()
                .as_str()
                .chars()
                .count(),
            TaskTitle::MAX_CHARS
        );
        assert_eq!(
            title_from_content("   ", "Clinical Review Required")
                .unwrap()
                .as_str(),
            "Clinical Review Required"
        );
        assert_eq!(
            title_from_content("", "").unwrap().as_str(),
            "SystmOne task"
        );
    }

    proptest! {
        #[test]
        fn stripping_a_tagged_content_gives_back_the_text(text in "[a-zA-Z0-9 ,.]{0,60}", id in 1i64..100000, r in 0u32..0xffffff) {
            let reference = format!("IH-T{id}-{r:06x}");
            let (back, found) = strip_reference(&with_reference(&text, Some(&reference)));
            prop_assert_eq!(back, text.trim().to_owned());
            prop_assert_eq!(found, Some(reference));
        }

        #[test]
        fn any_content_gives_a_valid_title(content in "\\PC{0,400}") {
            let t = title_from_content(&content, "File").unwrap();
            prop_assert!(TaskTitle::parse(t.as_str()).is_ok());
        }
    }
}
