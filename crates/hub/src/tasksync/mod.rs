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
pub mod planner;
pub mod systmone_remote;

pub use domain::merge;
pub use domain::task_link::*;
pub use engine::{RemoteTasks, RoundReport, StoreAccess, TaskSyncEngine, TaskSyncError};
pub use planner::{Budgets, Op};
