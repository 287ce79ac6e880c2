//! Runs the planner's operations against SystmOne through [`RemoteTasks`] (the lead
//! implements it over the real client; [`super::fake::FakeRemote`] in tests).
//!
//! Crash safety: the store is never held across a remote call, and every remote call is
//! bracketed by durable writes: before a create, the link becomes `create_in_flight` with
//! the values sent; after any answer, the result is written. Pushes are derived from the
//! task row minus its base, so an update lost in a crash is simply sent again (updates set
//! values, so resending is harmless); a create lost in a crash is settled by a pull that
//! looks for its reference before anything is resent.

use super::merge::{
    self, local_due, local_fields, merge, new_task_fields, staff_from_assignee, FieldChanges,
    Outcome, RemoteSide,
};
use super::planner::{self, Budgets, Op, PlanInput, ReconcileNeed};
use super::{
    title_from_content, with_reference, NewRemoteTask, RemoteError, RemoteTask, RemoteTaskChanges,
    COMPLETED_STATUS,
};
use crate::domain::{NhsNumber, PatientId, Sensitive, TaskId, TaskStatus};
use crate::store::task_links::{
    self as links, LinkBase, LinkState, LinkedTask, LocalTaskUpdate, RemoteAssignee, SyncFields,
    TaskLink, TaskUid,
};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Local};
use rusqlite::{OptionalExtension, Transaction};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::future::Future;

/// SystmOne's tasks for one patient, as the real client (or a fake) provides them.
pub trait RemoteTasks: Sync {
    /// The patient's non-completed tasks; with `today_only`, only those entered today
    /// (MinEntryDate = MaxEntryDate = today, exempt from the 30 s limit).
    fn pull(
        &self,
        nhs: &NhsNumber,
        today_only: bool,
    ) -> impl Future<Output = Result<Vec<RemoteTask>, RemoteError>> + Send;
    fn create(
        &self,
        nhs: &NhsNumber,
        task: &NewRemoteTask,
    ) -> impl Future<Output = Result<TaskUid, RemoteError>> + Send;
    fn update(
        &self,
        nhs: &NhsNumber,
        uid: &TaskUid,
        changes: &RemoteTaskChanges,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send;
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
    pub remote: Result<(), RemoteError>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub ops: Vec<OpReport>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskSyncEngine {
    pub budgets: Budgets,
    /// SystmOne requires every new task to be assigned: a ward task sent with nobody
    /// assigned goes to this user, group or team (e.g. the ward's team), and the ward task
    /// shows it. `None`: sent unassigned, and SystmOne's refusal is shown to staff.
    pub default_assignee: Option<RemoteAssignee>,
}

/// Which tasks a pull can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coverage {
    Full,
    EnteredToday,
}

impl TaskSyncEngine {
    pub fn new(budgets: Budgets) -> TaskSyncEngine {
        TaskSyncEngine {
            budgets,
            default_assignee: None,
        }
    }

    pub fn with_default_assignee(mut self, assignee: Option<RemoteAssignee>) -> TaskSyncEngine {
        self.default_assignee = assignee;
        self
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
        let conn = store.connection();
        let patients = links::patients_to_sync(conn)?;
        let last_full_pull_at = links::last_full_pull_attempt(conn)?;
        let mut pushes = Vec::new();
        let mut reconciles = Vec::new();
        for (nhs, LinkedTask { task, link }) in links::tasks_to_sync(conn)? {
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
                    outcome = remote_error_kind(e),
                    "task sync: SystmOne did not complete the request"
                );
                tracing::debug!(op = ?op, error = %e, "task sync failure detail");
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
    ) -> Result<Result<(), RemoteError>, TaskSyncError> {
        match op {
            Op::PullToday { patient_id, nhs } => {
                self.pull(store, remote, *patient_id, nhs, Coverage::EnteredToday, now)
                    .await
            }
            Op::PullFull { patient_id, nhs } => {
                self.pull(store, remote, *patient_id, nhs, Coverage::Full, now)
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
        coverage: Coverage,
        now: DateTime<Local>,
    ) -> Result<Result<(), RemoteError>, TaskSyncError> {
        if coverage == Coverage::Full {
            // Recorded before sending: after a crash the 30 s budget still holds.
            store.with_store(|s| {
                s.write(|tx| {
                    if let Some(mut p) = links::patient_sync(tx, patient_id)? {
                        p.full_pull_attempted_at = Some(now);
                        links::put_patient_sync(tx, &p)?;
                    }
                    Ok(())
                })
            })?;
        }
        let tasks = match remote.pull(nhs, coverage == Coverage::EnteredToday).await {
            Ok(tasks) => tasks,
            Err(e) => return Ok(Err(e)),
        };
        store.with_store(|s| {
            s.write(|tx| self.apply_pull(tx, patient_id, nhs, &tasks, coverage, now))
        })?;
        Ok(Ok(()))
    }

    /// Reconciles one patient's tasks with a pull, in one transaction.
    fn apply_pull(
        &self,
        tx: &Transaction<'_>,
        patient_id: PatientId,
        nhs: &NhsNumber,
        remote_tasks: &[RemoteTask],
        coverage: Coverage,
        now: DateTime<Local>,
    ) -> Result<(), StoreError> {
        if links::patient_nhs(tx, patient_id)?.as_ref() != Some(nhs) {
            // Discharged or relinked meanwhile: this answer is about someone else now.
            return Ok(());
        }
        let today = now.date_naive();
        let local = links::tasks_of_patient(tx, patient_id)?;
        let mut by_uid: HashMap<&TaskUid, usize> = HashMap::new();
        let mut by_reference: HashMap<&str, usize> = HashMap::new();
        for (i, lt) in local.iter().enumerate() {
            if let Some(link) = &lt.link {
                if let Some(uid) = &link.task_uid {
                    by_uid.insert(uid, i);
                }
                if let Some(r) = &link.reference {
                    by_reference.insert(r.as_str(), i);
                }
            }
        }
        let mut seen: HashSet<usize> = HashSet::new();
        let mut activity = false;
        for rt in remote_tasks {
            if let Some(&i) = by_uid.get(&rt.uid) {
                seen.insert(i);
                let lt = &local[i];
                if let Some(link) = lt.link.clone().filter(|l| l.state == LinkState::Linked) {
                    activity |= self.resolve_present(tx, lt, link, rt, now)?;
                }
                continue;
            }
            if let Some(&i) = rt.reference().as_deref().and_then(|r| by_reference.get(r)) {
                seen.insert(i);
                let lt = &local[i];
                // Re-read: an earlier copy with the same reference may have linked it already.
                let Some(mut link) = links::linked_task(tx, lt.task.id)?.link else {
                    continue;
                };
                match link.state {
                    LinkState::CreatePending | LinkState::CreateInFlight | LinkState::Local => {
                        // Our own create, filed although we never heard back.
                        link.task_uid = Some(rt.uid.clone());
                        link.state = LinkState::Linked;
                        link.retry_after = None;
                        if link.base.is_none() {
                            link.base = Some(base_from_remote(rt)?);
                        }
                        links::audit_sync(
                            tx,
                            "task.sync.create_confirmed",
                            lt.task.id,
                            json!({ "task_uid": rt.uid.as_str(), "reference": link.reference }),
                        )?;
                        links::put_link(tx, &link, now)?;
                        let lt = links::linked_task(tx, lt.task.id)?;
                        self.resolve_present(tx, &lt, link, rt, now)?;
                    }
                    LinkState::Linked | LinkState::Detached => {
                        let text = format!(
                            "SystmOne holds a second copy of this task (TaskUID {}); please complete the extra copy in SystmOne.",
                            rt.uid
                        );
                        if !link
                            .notice
                            .as_ref()
                            .is_some_and(|n| n.expose().contains(rt.uid.as_str()))
                        {
                            notify(tx, &mut link, &text, now)?;
                            links::put_link(tx, &link, now)?;
                        }
                    }
                }
                continue;
            }
            if task_with_uid(tx, &rt.uid)?.is_some() {
                // Linked to another patient's task: leave it for staff rather than guess.
                continue;
            }
            self.import(tx, patient_id, rt, now)?;
            activity = true;
        }
        for (i, lt) in local.iter().enumerate() {
            if seen.contains(&i) {
                continue;
            }
            let Some(link) = lt.link.clone() else {
                continue;
            };
            match link.state {
                LinkState::Linked => {
                    let entered_today = link
                        .base
                        .as_ref()
                        .and_then(|b| b.entered)
                        .is_some_and(|e| e.date() == today);
                    if coverage == Coverage::Full || entered_today {
                        self.resolve_gone(tx, lt, link, now)?;
                        activity = true;
                    }
                }
                LinkState::CreateInFlight => {
                    let attempted = link.create_attempted_at.unwrap_or(now);
                    let covered = coverage == Coverage::Full
                        || planner::today_pull_can_settle(attempted, now);
                    if covered && now >= attempted + self.budgets.unknown_outcome_grace {
                        let mut link = link;
                        link.state = LinkState::CreatePending;
                        links::audit_sync(
                            tx,
                            "task.sync.create_not_filed",
                            lt.task.id,
                            json!({ "reference": link.reference }),
                        )?;
                        links::put_link(tx, &link, now)?;
                    }
                }
                LinkState::Local | LinkState::CreatePending | LinkState::Detached => {}
            }
        }
        if let Some(mut p) = links::patient_sync(tx, patient_id)? {
            p.today_pulled_at = Some(now);
            match coverage {
                Coverage::Full => {
                    p.tasks_confirmed_at = Some(now);
                    p.full_pull_wanted = false;
                }
                Coverage::EnteredToday => p.full_pull_wanted |= activity,
            }
            links::put_patient_sync(tx, &p)?;
        }
        Ok(())
    }

    /// Merges a task SystmOne still lists. Returns whether SystmOne had changed anything.
    fn resolve_present(
        &self,
        tx: &Transaction<'_>,
        lt: &LinkedTask,
        mut link: TaskLink,
        rt: &RemoteTask,
        now: DateTime<Local>,
    ) -> Result<bool, StoreError> {
        let base = match link.base.clone() {
            Some(b) => b,
            None => base_from_remote(rt)?,
        };
        let remote = rt.fields();
        let local = local_fields(&lt.task, &base);
        let resolution = merge(
            &base.fields,
            &local,
            lt.task.status,
            RemoteSide::Present(&remote),
        );
        let Outcome::Linked {
            apply_locally,
            new_base,
            ..
        } = resolution.outcome
        else {
            return Ok(false);
        };
        let remote_changed = remote != base.fields;
        let mut task = lt.task.clone();
        if !apply_locally.is_empty() {
            let update = LocalTaskUpdate {
                title: apply_locally
                    .content
                    .as_ref()
                    .map(|c| title_from_content(c.expose(), &rt.task_type))
                    .transpose()?,
                assignee: apply_locally
                    .assignee
                    .as_ref()
                    .map(|a| a.as_ref().and_then(staff_from_assignee)),
                due: apply_locally.due.map(|d| local_due(d, task.due)),
                status: None,
            };
            task = links::update_local_task(tx, &task, &update, now)?;
        }
        let title = if new_base.content == base.fields.content {
            base.title.clone()
        } else if new_base.content == local.content {
            Sensitive::new(task.title.as_str().to_owned())
        } else {
            Sensitive::new(
                title_from_content(new_base.content.expose(), &rt.task_type)?
                    .as_str()
                    .to_owned(),
            )
        };
        link.base = Some(LinkBase {
            fields: new_base,
            title,
            status: Some(rt.status.clone()),
            entered: Some(rt.entered),
        });
        for n in &resolution.notices {
            notify(tx, &mut link, n.expose(), now)?;
        }
        links::put_link(tx, &link, now)?;
        Ok(remote_changed)
    }

    fn resolve_gone(
        &self,
        tx: &Transaction<'_>,
        lt: &LinkedTask,
        mut link: TaskLink,
        now: DateTime<Local>,
    ) -> Result<(), StoreError> {
        let Some(base) = link.base.clone() else {
            link.state = LinkState::Detached;
            return links::put_link(tx, &link, now);
        };
        let local = local_fields(&lt.task, &base);
        let resolution = merge(&base.fields, &local, lt.task.status, RemoteSide::Gone);
        let mark_done = matches!(resolution.outcome, Outcome::Detach { mark_done: true });
        if mark_done {
            let update = LocalTaskUpdate {
                status: Some(TaskStatus::Done),
                ..Default::default()
            };
            links::update_local_task(tx, &lt.task, &update, now)?;
        }
        link.state = LinkState::Detached;
        links::audit_sync(
            tx,
            "task.sync.detached",
            lt.task.id,
            json!({ "task_uid": link.task_uid.as_ref().map(TaskUid::as_str), "marked_done": mark_done }),
        )?;
        for n in &resolution.notices {
            notify(tx, &mut link, n.expose(), now)?;
        }
        links::put_link(tx, &link, now)
    }

    fn import(
        &self,
        tx: &Transaction<'_>,
        patient_id: PatientId,
        rt: &RemoteTask,
        now: DateTime<Local>,
    ) -> Result<(), StoreError> {
        let base = base_from_remote(rt)?;
        let title = title_from_content(base.fields.content.expose(), &rt.task_type)?;
        let assignee = rt.assignee.as_ref().and_then(staff_from_assignee);
        let task_id = links::insert_local_task(
            tx,
            patient_id,
            &title,
            assignee.as_ref(),
            local_due(rt.due, None),
            &rt.uid,
            now,
        )?;
        let mut link = TaskLink::new(task_id, LinkState::Linked);
        link.task_uid = Some(rt.uid.clone());
        link.task_type = Some(rt.task_type.clone());
        link.reference = rt.reference();
        if link
            .reference
            .as_deref()
            .is_some_and(|r| reference_taken(tx, r).unwrap_or(true))
        {
            link.reference = None;
        }
        link.base = Some(base);
        links::put_link(tx, &link, now)
    }

    async fn create<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> Result<Result<(), RemoteError>, TaskSyncError> {
        let prepared = store.with_store(|s| s.write(|tx| self.begin_create(tx, task_id, now)))?;
        let Some((nhs, request)) = prepared else {
            return Ok(Ok(()));
        };
        let result = remote.create(&nhs, &request).await;
        store.with_store(|s| s.write(|tx| self.finish_create(tx, task_id, &result, now)))?;
        Ok(result.map(|_| ()))
    }

    /// Marks the create as sent (with the values sent, the base once it is filed) before
    /// anything leaves the PC.
    fn begin_create(
        &self,
        tx: &Transaction<'_>,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> Result<Option<(NhsNumber, NewRemoteTask)>, StoreError> {
        let LinkedTask { task, link } = links::linked_task(tx, task_id)?;
        let Some(mut link) = link.filter(|l| l.state == LinkState::CreatePending) else {
            return Ok(None);
        };
        let Some(nhs) = links::patient_nhs(tx, task.patient_id)? else {
            link.state = LinkState::Local;
            notify(
                tx,
                &mut link,
                "Not sent to SystmOne: the patient is no longer linked to a SystmOne record.",
                now,
            )?;
            links::put_link(tx, &link, now)?;
            return Ok(None);
        };
        if task.status != TaskStatus::Open {
            link.state = LinkState::Local;
            notify(
                tx,
                &mut link,
                &format!(
                    "Not sent to SystmOne: it was {} here before it could be sent.",
                    task.status.as_str()
                ),
                now,
            )?;
            links::put_link(tx, &link, now)?;
            return Ok(None);
        }
        let mut task = task;
        let mut fields = new_task_fields(&task);
        if let (None, Some(default)) = (&task.assignee, &self.default_assignee) {
            if let Some(staff) = staff_from_assignee(default) {
                let update = LocalTaskUpdate {
                    assignee: Some(Some(staff)),
                    ..Default::default()
                };
                task = links::update_local_task(tx, &task, &update, now)?;
                fields.assignee = Some(default.clone());
            }
        }
        let request = NewRemoteTask {
            task_type: link
                .task_type
                .clone()
                .unwrap_or_else(|| "Clinical Review Required".to_owned()),
            content: Sensitive::new(with_reference(
                fields.content.expose(),
                link.reference.as_deref(),
            )),
            due: fields.due,
            assignee: fields.assignee.clone(),
        };
        link.base = Some(LinkBase {
            fields,
            title: Sensitive::new(task.title.as_str().to_owned()),
            status: None,
            entered: None,
        });
        link.state = LinkState::CreateInFlight;
        link.create_attempted_at = Some(now);
        links::put_link(tx, &link, now)?;
        links::audit_sync(
            tx,
            "task.sync.create_sent",
            task_id,
            json!({ "reference": link.reference, "task_type": request.task_type }),
        )?;
        Ok(Some((nhs, request)))
    }

    fn finish_create(
        &self,
        tx: &Transaction<'_>,
        task_id: TaskId,
        result: &Result<TaskUid, RemoteError>,
        now: DateTime<Local>,
    ) -> Result<(), StoreError> {
        let Some(mut link) = links::linked_task(tx, task_id)?.link else {
            return Ok(());
        };
        if link.state != LinkState::CreateInFlight {
            return Ok(());
        }
        match result {
            Ok(uid) => {
                if let Some(other) = task_with_uid(tx, uid)? {
                    // Already imported by a pull that raced the answer: keep one ward copy.
                    let text = format!("SystmOne filed this task as TaskUID {uid}, which is also ward task {other}; please review both.");
                    notify(tx, &mut link, &text, now)?;
                    link.state = LinkState::Local;
                } else {
                    link.task_uid = Some(uid.clone());
                    // `entered` stays unknown until a pull shows SystmOne's own value: an
                    // entered-today pull may only vouch for an absence by SystmOne's date.
                    link.state = LinkState::Linked;
                    links::audit_sync(
                        tx,
                        "task.sync.created",
                        task_id,
                        json!({ "task_uid": uid.as_str() }),
                    )?;
                }
            }
            Err(RemoteError::OutcomeUnknown) => {
                links::audit_sync(
                    tx,
                    "task.sync.create_unknown",
                    task_id,
                    json!({ "reference": link.reference }),
                )?;
            }
            Err(e @ (RemoteError::Temporary(_) | RemoteError::Unavailable(_))) => {
                link.state = LinkState::CreatePending;
                link.retry_after = Some(now + self.budgets.retry_backoff);
                links::audit_sync(
                    tx,
                    "task.sync.create_failed",
                    task_id,
                    json!({ "error": e.to_string(), "will_retry": true }),
                )?;
            }
            Err(e @ RemoteError::Permanent(_)) => {
                link.state = LinkState::Local;
                notify(
                    tx,
                    &mut link,
                    &format!(
                        "{e}. This task was not created in SystmOne; it is on the ward board only."
                    ),
                    now,
                )?;
                links::audit_sync(
                    tx,
                    "task.sync.create_failed",
                    task_id,
                    json!({ "error": e.to_string(), "will_retry": false }),
                )?;
            }
        }
        links::put_link(tx, &link, now)
    }

    /// Sends the ward's unsent changes to a linked task (and its completion).
    async fn push<R: RemoteTasks>(
        &self,
        store: &impl StoreAccess,
        remote: &R,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> Result<Result<(), RemoteError>, TaskSyncError> {
        // Re-read now: the task may have changed since the plan was made.
        let prepared = store.with_store(|s| -> Result<_, StoreError> {
            let LinkedTask { task, link } = links::linked_task(s.connection(), task_id)?;
            let Some(link) = link.filter(|l| l.state == LinkState::Linked) else {
                return Ok(None);
            };
            let (Some(uid), Some(base)) = (link.task_uid.clone(), link.base.clone()) else {
                return Ok(None);
            };
            let Some(nhs) = links::patient_nhs(s.connection(), task.patient_id)? else {
                return Ok(None);
            };
            if link.push_failed_version == Some(task.version) {
                return Ok(None);
            }
            let local = local_fields(&task, &base);
            let changes = merge::diff(&base.fields, &local);
            let complete = task.status != TaskStatus::Open;
            if changes.is_empty() && !complete {
                return Ok(None);
            }
            Ok(Some((nhs, uid, link, task, changes, complete)))
        })?;
        let Some((nhs, uid, link, task, changes, complete)) = prepared else {
            return Ok(Ok(()));
        };
        let request = RemoteTaskChanges {
            content: changes
                .content
                .as_ref()
                .map(|c| Sensitive::new(with_reference(c.expose(), link.reference.as_deref()))),
            due: changes.due,
            assignee: changes.assignee.clone(),
            status: complete.then(|| COMPLETED_STATUS.to_owned()),
        };
        let result = remote.update(&nhs, &uid, &request).await;
        store.with_store(|s| {
            s.write(|tx| {
                let Some(mut link) = links::linked_task(tx, task_id)?.link else { return Ok(()) };
                if link.state != LinkState::Linked || link.task_uid.as_ref() != Some(&uid) {
                    return Ok(());
                }
                match &result {
                    Ok(()) => {
                        if let Some(base) = link.base.as_mut() {
                            base.fields = changes.apply_to(&base.fields);
                            if changes.content.is_some() {
                                // What was sent, even if the title changed again meanwhile.
                                base.title = Sensitive::new(task.title.as_str().to_owned());
                            }
                        }
                        if complete {
                            link.state = LinkState::Detached;
                        }
                        link.retry_after = None;
                        links::audit_sync(
                            tx,
                            if complete { "task.sync.completed_in_systmone" } else { "task.sync.pushed" },
                            task_id,
                            json!({ "task_uid": uid.as_str(), "fields": changes.field_names(), "status": request.status }),
                        )?;
                    }
                    Err(e @ RemoteError::Permanent(_)) => {
                        link.push_failed_version = Some(task.version);
                        let what = describe_push(&changes, complete);
                        let text = format!(
                            "{e}. SystmOne did not accept {what}; the ward values are kept here and will be sent again \
                             only after the task is edited again."
                        );
                        notify(tx, &mut link, &text, now)?;
                        links::audit_sync(tx, "task.sync.push_failed", task_id, json!({ "error": e.to_string(), "will_retry": false }))?;
                    }
                    Err(e) => {
                        link.retry_after = Some(now + self.budgets.retry_backoff);
                        links::audit_sync(tx, "task.sync.push_failed", task_id, json!({ "error": e.to_string(), "will_retry": true }))?;
                    }
                }
                links::put_link(tx, &link, now)
            })
        })?;
        Ok(result)
    }
}

fn remote_error_kind(e: &RemoteError) -> &'static str {
    match e {
        RemoteError::OutcomeUnknown => "outcome_unknown",
        RemoteError::Temporary(_) => "temporary",
        RemoteError::Permanent(_) => "permanent",
        RemoteError::Unavailable(_) => "unavailable",
    }
}

fn describe_push(changes: &FieldChanges, complete: bool) -> String {
    let edits = merge::describe_changes(changes);
    match (edits.is_empty(), complete) {
        (true, true) => "the completion".to_owned(),
        (false, true) => format!("the completion with {edits}"),
        (_, false) => edits,
    }
}

/// The base for a task first seen in SystmOne: exactly what SystmOne holds.
fn base_from_remote(rt: &RemoteTask) -> Result<LinkBase, StoreError> {
    let fields: SyncFields = rt.fields();
    let title = title_from_content(fields.content.expose(), &rt.task_type)?;
    Ok(LinkBase {
        fields,
        title: Sensitive::new(title.as_str().to_owned()),
        status: Some(rt.status.clone()),
        entered: Some(rt.entered),
    })
}

/// Records a notice on the link (shown on the board) and in the audit log, once.
fn notify(
    tx: &Transaction<'_>,
    link: &mut TaskLink,
    text: &str,
    now: DateTime<Local>,
) -> Result<(), StoreError> {
    if link
        .notice
        .as_ref()
        .is_some_and(|n| n.expose().contains(text))
    {
        // Already on the board and in the audit log; a later pull seeing the same
        // situation must not pile up copies.
        return Ok(());
    }
    links::add_notice(link, text, now);
    links::audit_sync(
        tx,
        "task.sync.notice",
        link.task_id,
        json!({ "notice": text }),
    )
}

fn task_with_uid(tx: &Transaction<'_>, uid: &TaskUid) -> Result<Option<TaskId>, StoreError> {
    tx.query_row(
        "SELECT task_id FROM task_links WHERE task_uid = ?1",
        [uid.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::Sqlite)
}

fn reference_taken(tx: &Transaction<'_>, reference: &str) -> Result<bool, StoreError> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT task_id FROM task_links WHERE reference = ?1",
            [reference],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::Sqlite)?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BedLabel, NewTask, PatientName, StaffName, TaskTitle};
    use crate::store::NewPatient;
    use crate::tasksync::fake::{FakeRemote, Fault};
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    fn poll_once<F: Future>(f: F) -> Option<F::Output> {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn assert_send<T: Send>(_: &T) {}

    fn setup() -> (Mutex<Store>, TaskId, NhsNumber) {
        let mut store = Store::open_in_memory().unwrap();
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let p = store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 1").unwrap(),
                    name: PatientName::parse("Test Patient").unwrap(),
                    nhs_number: Some(nhs.clone()),
                },
            )
            .unwrap();
        let actor = StaffName::parse("Nurse A").unwrap();
        let t = store
            .add_task(
                &actor,
                &NewTask {
                    patient_id: p.id,
                    title: TaskTitle::parse("Bloods").unwrap(),
                    assignee: None,
                    due: None,
                },
            )
            .unwrap();
        store
            .request_task_push(&actor, t.id, "Clinical Review Required")
            .unwrap();
        (Mutex::new(store), t.id, nhs)
    }

    /// The lead runs the engine on a multi-threaded tokio runtime: its futures must be Send.
    #[test]
    fn engine_futures_can_be_spawned() {
        let (store, _, _) = setup();
        let remote = FakeRemote::new(Local::now().naive_local());
        let engine = TaskSyncEngine::default();
        let fut = engine.run_round(&store, &remote, Local::now(), 1);
        assert_send(&fut);
        assert!(poll_once(fut).is_some());
    }

    /// The create is durably "in flight" before the request leaves, so a process killed
    /// while waiting never forgets that the task may already be in SystmOne.
    #[test]
    fn a_create_is_marked_in_flight_before_it_is_sent() {
        let (store, task_id, nhs) = setup();
        let now = Local::now();
        let remote = FakeRemote::new(now.naive_local());
        remote.inject(Fault::HangAfterApplying);
        let engine = TaskSyncEngine::default();
        let op = Op::Create { task_id };
        assert!(
            poll_once(engine.execute(&store, &remote, &op, now)).is_none(),
            "killed while waiting"
        );
        let link = store.with_store(|s| s.task_link(task_id)).unwrap().unwrap();
        assert_eq!(link.state, LinkState::CreateInFlight);
        assert_eq!(link.create_attempted_at, Some(now));
        assert_eq!(remote.open_tasks(&nhs).len(), 1);
        // Executing the same create again sends nothing: only a pull may settle it.
        let before = remote.requests();
        poll_once(engine.execute(&store, &remote, &op, now))
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(remote.requests(), before);
    }

    #[test]
    fn the_plan_holds_pushes_until_the_backoff_and_skips_refused_versions() {
        let (store, task_id, _) = setup();
        let now = Local::now();
        let remote = FakeRemote::new(now.naive_local());
        let engine = TaskSyncEngine::default();
        poll_once(engine.execute(&store, &remote, &Op::Create { task_id }, now))
            .unwrap()
            .unwrap()
            .unwrap();
        let actor = StaffName::parse("Nurse A").unwrap();
        let changes = crate::domain::TaskChanges {
            title: Some(TaskTitle::parse("Bloods x2").unwrap()),
            ..Default::default()
        };
        store
            .with_store(|s| s.edit_task(&actor, task_id, None, &changes))
            .unwrap();
        let plan = engine.plan(&store, now).unwrap();
        let Some(Op::Update { changes, .. }) =
            plan.iter().find(|op| matches!(op, Op::Update { .. }))
        else {
            panic!("{plan:?}")
        };
        assert_eq!(changes.field_names(), vec!["content"]);
        remote.inject(Fault::Permanent);
        let update = plan
            .iter()
            .find(|op| matches!(op, Op::Update { .. }))
            .unwrap()
            .clone();
        let r = poll_once(engine.execute(&store, &remote, &update, now))
            .unwrap()
            .unwrap();
        assert!(matches!(r, Err(RemoteError::Permanent(_))));
        let later = now + chrono::TimeDelta::minutes(5);
        assert!(!engine
            .plan(&store, later)
            .unwrap()
            .iter()
            .any(|op| matches!(op, Op::Update { .. })));
        let notice = store
            .with_store(|s| s.task_link(task_id))
            .unwrap()
            .unwrap()
            .notice
            .unwrap()
            .into_inner();
        assert!(
            notice.contains("Bloods x2") && notice.contains("edited again"),
            "{notice}"
        );
        // The next edit is sent.
        let changes = crate::domain::TaskChanges {
            title: Some(TaskTitle::parse("Bloods x3").unwrap()),
            ..Default::default()
        };
        store
            .with_store(|s| s.edit_task(&actor, task_id, None, &changes))
            .unwrap();
        assert!(engine
            .plan(&store, later)
            .unwrap()
            .iter()
            .any(|op| matches!(op, Op::Update { .. })));
    }
}
