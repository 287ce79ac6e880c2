//! Runs the planner's operations against SystmOne through [`RemoteTasks`] (the lead
//! implements it over the real client; [`super::fake::FakeRemote`] in tests).
//!
//! Crash safety: the store is never held across a remote call, and every remote call is
//! bracketed by durable writes: before a create, the link becomes `create_in_flight` with
//! the values sent; after any answer, the result is written. Pushes are derived from the
//! task row minus its base, so an update lost in a crash is simply sent again (updates set
//! values, so resending is harmless); a create lost in a crash is settled by a pull that
//! looks for its reference before anything is resent.

use super::merge::{self, local_fields};
use super::planner::{self, Budgets, Op, PlanInput, ReconcileNeed};
use chrono::{DateTime, Local};
use domain::task_link::{
    LinkState, LinkedTask, NewRemoteTask, PullCoverage, RemoteAssignee, RemoteTask,
    RemoteTaskChanges, TaskUid,
};
use domain::{NhsNumber, PatientId, SystmOneFailure, TaskId, TaskStatus};
use std::future::Future;
use store::{Store, StoreError, SyncPolicy};

/// SystmOne's tasks for one patient, as the real client (or a fake) provides them.
pub trait RemoteTasks: Sync {
    /// The patient's non-completed tasks; with `today_only`, only those entered today
    /// (MinEntryDate = MaxEntryDate = today, exempt from the 30 s limit).
    fn pull(
        &self,
        nhs: &NhsNumber,
        today_only: bool,
    ) -> impl Future<Output = Result<Vec<RemoteTask>, SystmOneFailure>> + Send;
    fn create(
        &self,
        nhs: &NhsNumber,
        task: &NewRemoteTask,
    ) -> impl Future<Output = Result<TaskUid, SystmOneFailure>> + Send;
    fn update(
        &self,
        nhs: &NhsNumber,
        uid: &TaskUid,
        changes: &RemoteTaskChanges,
    ) -> impl Future<Output = Result<(), SystmOneFailure>> + Send;
}

/// Short, exclusive access to the store, never held across a remote call (the window
/// keeps working while SystmOne is slow).
pub trait StoreAccess: Sync {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T;
}

impl StoreAccess for std::sync::Mutex<Store> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        // Every write is a transaction, so a poisoned lock cannot hide a half-written row.
        let mut guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskSyncError {
    #[error("task sync could not use the ward database: {0}")]
    Store(#[from] StoreError),
}

/// What one operation did: `Err` carries SystmOne's failure (already handled and recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpReport {
    pub op: Op,
    pub remote: Result<(), SystmOneFailure>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub ops: Vec<OpReport>,
}

#[derive(Debug, Clone)]
pub struct TaskSyncEngine {
    pub budgets: Budgets,
    /// SystmOne requires every new task to be assigned: a ward task sent with nobody
    /// assigned goes to this user, group or team (e.g. the ward's team), and the ward task
    /// shows it. `None`: sent unassigned, and SystmOne's refusal is shown to staff.
    pub default_assignee: Option<RemoteAssignee>,
    /// Whether to send `Status` to complete a task (see `store::SyncPolicy`). On unless this
    /// SystmOne is known to ignore or refuse it.
    pub send_completion_status: bool,
}

impl Default for TaskSyncEngine {
    fn default() -> TaskSyncEngine {
        TaskSyncEngine::new(Budgets::default())
    }
}

impl TaskSyncEngine {
    pub fn new(budgets: Budgets) -> TaskSyncEngine {
        TaskSyncEngine {
            budgets,
            default_assignee: None,
            send_completion_status: true,
        }
    }

    /// Off when this SystmOne is known (from the conformance probe) to ignore or refuse
    /// `Status` on a task update.
    pub fn with_completion_status(mut self, send: bool) -> TaskSyncEngine {
        self.send_completion_status = send;
        self
    }

    pub fn with_default_assignee(mut self, assignee: Option<RemoteAssignee>) -> TaskSyncEngine {
        self.default_assignee = assignee;
        self
    }

    /// How the store's transactions treat answers and unassigned creates.
    fn policy(&self) -> SyncPolicy {
        SyncPolicy {
            unknown_outcome_grace: self.budgets.unknown_outcome_grace,
            retry_backoff: self.budgets.retry_backoff,
            default_assignee: self.default_assignee.clone(),
            send_completion_status: self.send_completion_status,
        }
    }

    /// The operations due at `now`, in order.
    pub fn plan(
        &self,
        store: &impl StoreAccess,
        now: DateTime<Local>,
    ) -> Result<Vec<Op>, TaskSyncError> {
        let input = store.with_store(|s| self.plan_input(s, now))?;
        Ok(planner::plan(&input, now, &self.budgets))
    }

    fn plan_input(&self, store: &mut Store, now: DateTime<Local>) -> Result<PlanInput, StoreError> {
        let snapshot = store.task_sync_snapshot()?;
        let patients = snapshot.patients;
        let last_full_pull_at = snapshot.last_full_pull_at;
        let mut pushes = Vec::new();
        let mut reconciles = Vec::new();
        for (nhs, LinkedTask { task, link }) in snapshot.tasks {
            let Some(link) = link else { continue };
            if link.retry_after.is_some_and(|at| at > now) {
                continue;
            }
            match link.state {
                LinkState::CreatePending => pushes.push(Op::Create { task_id: task.id }),
                LinkState::CreateInFlight => {
                    let attempted = link.create_attempted_at.unwrap_or(now);
                    reconciles.push(ReconcileNeed {
                        patient_id: task.patient_id,
                        nhs,
                        needs_full_pull: !planner::today_pull_can_settle(attempted, now),
                        ready_at: attempted + self.budgets.unknown_outcome_grace,
                    });
                }
                LinkState::Linked => {
                    let (Some(uid), Some(base)) = (link.task_uid.clone(), link.base.as_ref())
                    else {
                        continue;
                    };
                    if link.push_failed_version == Some(task.version) {
                        continue;
                    }
                    if link.completion_sent_at.is_some() {
                        // Sent; the next pull shows whether SystmOne completed it.
                        continue;
                    }
                    let changes = merge::diff(&base.fields, &local_fields(&task, base));
                    if task.status != TaskStatus::Open {
                        pushes.push(Op::Complete {
                            task_id: task.id,
                            task_uid: uid,
                            changes,
                        });
                    } else if !changes.is_empty() {
                        pushes.push(Op::Update {
                            task_id: task.id,
                            task_uid: uid,
                            changes,
                        });
                    }
                }
                LinkState::Local | LinkState::Detached => {}
            }
        }
        Ok(PlanInput {
            patients,
            pushes,
            reconciles,
            last_full_pull_at,
        })
    }

    /// Plans at `now` and runs up to `max_ops` operations. SystmOne failures are handled
    /// and reported, not returned as errors; only a store failure stops the round.
    pub async fn run_round<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        now: DateTime<Local>,
        max_ops: usize,
    ) -> Result<RoundReport, TaskSyncError> {
        let ops = self.plan(store, now)?;
        let mut report = RoundReport::default();
        for op in ops.into_iter().take(max_ops) {
            let result = self.execute(store, remote, &op, now).await?;
            if let Err(e) = &result {
                // Ids and kinds only: SystmOne's error text may quote patient data.
                tracing::info!(
                    op = op.kind(),
                    outcome = e.kind(),
                    "task sync: SystmOne did not complete the request"
                );
                // `op` redacts its NHS number and task text under Debug; SystmOne's own
                // message is left out at every level (it can quote the record).
                tracing::debug!(op = ?op, outcome = e.kind(), "task sync failure detail");
            }
            report.ops.push(OpReport { op, remote: result });
        }
        Ok(report)
    }

    /// Runs one operation.
    pub async fn execute<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        op: &Op,
        now: DateTime<Local>,
    ) -> Result<Result<(), SystmOneFailure>, TaskSyncError> {
        match op {
            Op::PullToday { patient_id, nhs } => {
                self.pull(
                    store,
                    remote,
                    *patient_id,
                    nhs,
                    PullCoverage::EnteredToday,
                    now,
                )
                .await
            }
            Op::PullFull { patient_id, nhs } => {
                self.pull(store, remote, *patient_id, nhs, PullCoverage::Full, now)
                    .await
            }
            Op::Create { task_id } => self.create(store, remote, *task_id, now).await,
            Op::Update { task_id, .. } | Op::Complete { task_id, .. } => {
                self.push(store, remote, *task_id, now).await
            }
        }
    }

    async fn pull<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        patient_id: PatientId,
        nhs: &NhsNumber,
        coverage: PullCoverage,
        now: DateTime<Local>,
    ) -> Result<Result<(), SystmOneFailure>, TaskSyncError> {
        if coverage == PullCoverage::Full {
            // Recorded before sending: after a crash the 30 s budget still holds.
            store.with_store(|s| s.record_full_pull_attempt(patient_id, now))?;
        }
        let tasks = match remote
            .pull(nhs, coverage == PullCoverage::EnteredToday)
            .await
        {
            Ok(tasks) => tasks,
            Err(e) => return Ok(Err(e)),
        };
        let policy = self.policy();
        store.with_store(|s| s.apply_task_pull(&policy, patient_id, nhs, &tasks, coverage, now))?;
        Ok(Ok(()))
    }

    async fn create<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> Result<Result<(), SystmOneFailure>, TaskSyncError> {
        let policy = self.policy();
        let prepared = store.with_store(|s| s.begin_task_create(&policy, task_id, now))?;
        let Some((nhs, request)) = prepared else {
            return Ok(Ok(()));
        };
        let result = remote.create(&nhs, &request).await;
        store.with_store(|s| s.finish_task_create(&policy, task_id, &result, now))?;
        Ok(result.map(|_| ()))
    }

    /// Sends the ward's unsent changes to a linked task (and its completion).
    async fn push<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> Result<Result<(), SystmOneFailure>, TaskSyncError> {
        // Re-read now: the task may have changed since the plan was made.
        let policy = self.policy();
        let Some(push) = store.with_store(|s| s.prepare_task_push(&policy, task_id, now))? else {
            return Ok(Ok(()));
        };
        let result = remote.update(&push.nhs, &push.uid, &push.request).await;
        store.with_store(|s| s.finish_task_push(&policy, &push, &result, now))?;
        Ok(result)
    }
}
