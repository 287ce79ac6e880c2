//! Task sync's transactions: each step of the sync (apply a pull, begin and finish a create,
//! prepare and finish a push) is one `IMMEDIATE` transaction here, deciding with the pure
//! three-way merge in `domain::merge`. The sync engine (`hub::tasksync::engine`) runs these
//! between its SystmOne calls and never holds the store across one.

use super::task_links::*;
use super::{Store, StoreError, StoreResult};
use chrono::{DateTime, Local, TimeDelta};
use domain::merge::{
    self, local_due, local_fields, merge, new_task_fields, staff_from_assignee, FieldChanges,
    Outcome, RemoteSide,
};
use domain::task_link::{
    title_from_content, today_pull_can_settle, with_reference, NewRemoteTask, PullCoverage,
    RemoteTask, RemoteTaskChanges, COMPLETED_STATUS,
};
use domain::{NhsNumber, PatientId, Sensitive, SystmOneFailure, TaskId, TaskStatus};
use rusqlite::{OptionalExtension, Transaction};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// How the sync treats unanswered and failed requests, and who a new task with nobody
/// assigned goes to.
#[derive(Debug, Clone)]
pub struct SyncPolicy {
    /// How long after an unanswered create before a pull may prove it was not filed.
    pub unknown_outcome_grace: TimeDelta,
    /// Wait before resending after a temporary error or no answer.
    pub retry_backoff: TimeDelta,
    /// SystmOne requires every new task to be assigned: an unassigned ward task goes here.
    pub default_assignee: Option<RemoteAssignee>,
    /// Send `Status` to complete a task. Off when this SystmOne is known (from the
    /// conformance probe) to ignore or refuse it: a ward completion is then handed to a
    /// person ("please complete it in SystmOne") instead of being sent.
    pub send_completion_status: bool,
}

/// The notice on a ward completion SystmOne will not take from us.
const COMPLETE_IN_SYSTMONE: &str =
    "Done on the ward. This SystmOne does not take completions from Inpatient Hub: please complete it in SystmOne.";

/// What the planner needs from the store, read in one go.
#[derive(Debug, Clone, Default)]
pub struct TaskSyncSnapshot {
    pub patients: Vec<PatientTaskSync>,
    /// Every task the sync may act on, with its patient's NHS number.
    pub tasks: Vec<(NhsNumber, LinkedTask)>,
    pub last_full_pull_at: Option<DateTime<Local>>,
}

/// A push read from the store just before it is sent.
#[derive(Debug, Clone)]
pub struct PreparedPush {
    pub nhs: NhsNumber,
    pub uid: TaskUid,
    pub link: TaskLink,
    pub task: domain::Task,
    pub changes: FieldChanges,
    pub complete: bool,
    /// Exactly what goes to SystmOne.
    pub request: RemoteTaskChanges,
}

impl Store {
    /// The linked patients, the tasks to sync and the last full pull, for the planner.
    pub fn task_sync_snapshot(&mut self) -> StoreResult<TaskSyncSnapshot> {
        Ok(TaskSyncSnapshot {
            patients: patients_to_sync(&self.conn)?,
            tasks: tasks_to_sync(&self.conn)?,
            last_full_pull_at: last_full_pull_attempt(&self.conn)?,
        })
    }

    /// Records a full pull before it is sent: after a crash the 30 s budget still holds.
    pub fn record_full_pull_attempt(
        &mut self,
        patient_id: PatientId,
        now: DateTime<Local>,
    ) -> StoreResult<()> {
        self.write(|tx| {
            if let Some(mut p) = patient_sync(tx, patient_id)? {
                p.full_pull_attempted_at = Some(now);
                put_patient_sync(tx, &p)?;
            }
            Ok(())
        })
    }

    /// Reconciles one patient's tasks with what a pull returned, in one transaction.
    pub fn apply_task_pull(
        &mut self,
        policy: &SyncPolicy,
        patient_id: PatientId,
        nhs: &NhsNumber,
        remote_tasks: &[RemoteTask],
        coverage: PullCoverage,
        now: DateTime<Local>,
    ) -> StoreResult<()> {
        self.write(|tx| policy.apply_pull(tx, patient_id, nhs, remote_tasks, coverage, now))
    }

    /// Marks a pending create as in flight (durably, before anything leaves the PC) and
    /// returns what to send; `None` when there is nothing to send.
    pub fn begin_task_create(
        &mut self,
        policy: &SyncPolicy,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> StoreResult<Option<(NhsNumber, NewRemoteTask)>> {
        self.write(|tx| policy.begin_create(tx, task_id, now))
    }

    /// Records SystmOne's answer (or its absence) to a create.
    pub fn finish_task_create(
        &mut self,
        policy: &SyncPolicy,
        task_id: TaskId,
        result: &Result<TaskUid, SystmOneFailure>,
        now: DateTime<Local>,
    ) -> StoreResult<()> {
        self.write(|tx| policy.finish_create(tx, task_id, result, now))
    }

    /// Re-reads a linked task just before a push (it may have changed since the plan):
    /// the unsent fields and whether to complete it; `None` when there is nothing to send.
    pub fn prepare_task_push(
        &mut self,
        policy: &SyncPolicy,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> StoreResult<Option<PreparedPush>> {
        let LinkedTask { task, link } = linked_task(&self.conn, task_id)?;
        let Some(link) = link.filter(|l| l.state == LinkState::Linked) else {
            return Ok(None);
        };
        let (Some(uid), Some(base)) = (link.task_uid.clone(), link.base.clone()) else {
            return Ok(None);
        };
        let Some(nhs) = patient_nhs(&self.conn, task.patient_id)? else {
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
        if complete && changes.is_empty() && !policy.send_completion_status {
            // Nothing SystmOne will take: a person completes it there.
            self.write(|tx| {
                let mut link = link.clone();
                link.completion_sent_at = Some(now);
                notify(tx, &mut link, COMPLETE_IN_SYSTMONE, now)?;
                put_link(tx, &link, now)
            })?;
            return Ok(None);
        }
        let request = RemoteTaskChanges {
            content: changes
                .content
                .as_ref()
                .map(|c| Sensitive::new(with_reference(c.expose(), link.reference.as_deref()))),
            due: changes.due,
            assignee: changes.assignee.clone(),
            status: (complete && policy.send_completion_status)
                .then(|| COMPLETED_STATUS.to_owned()),
        };
        Ok(Some(PreparedPush {
            nhs,
            uid,
            link,
            task,
            changes,
            complete,
            request,
        }))
    }

    /// Records SystmOne's answer to a push.
    pub fn finish_task_push(
        &mut self,
        policy: &SyncPolicy,
        push: &PreparedPush,
        result: &Result<(), SystmOneFailure>,
        now: DateTime<Local>,
    ) -> StoreResult<()> {
        let PreparedPush {
            uid,
            task,
            changes,
            complete,
            request,
            ..
        } = push;
        let complete = *complete;
        let task_id = task.id;
        self.write(|tx| {
            let Some(mut link) = linked_task(tx, task_id)?.link else {
                return Ok(());
            };
            if link.state != LinkState::Linked || link.task_uid.as_ref() != Some(uid) {
                return Ok(());
            }
            match result {
                Ok(()) => {
                    if let Some(base) = link.base.as_mut() {
                        base.fields = changes.apply_to(&base.fields);
                        if changes.content.is_some() {
                            // What was sent, even if the title changed again meanwhile.
                            base.title = Sensitive::new(task.title.as_str().to_owned());
                        }
                    }
                    if complete {
                        // Believed only when a read no longer lists the task: whether
                        // SystmOne applies Status on a task update is unproven.
                        link.completion_sent_at = Some(now);
                        if request.status.is_none() {
                            notify(tx, &mut link, COMPLETE_IN_SYSTMONE, now)?;
                        }
                    }
                    link.retry_after = None;
                    audit_sync(
                        tx,
                        if complete { "task.sync.completion_sent" } else { "task.sync.pushed" },
                        task_id,
                        json!({ "task_uid": uid.as_str(), "fields": changes.field_names(), "status": request.status }),
                    )?;
                }
                Err(e @ SystmOneFailure::Refused(_)) => {
                    link.push_failed_version = Some(task.version);
                    let what = describe_push(changes, complete);
                    let text = format!(
                        "{e}. SystmOne did not accept {what}; the ward values are kept here and will be sent again \
                         only after the task is edited again."
                    );
                    notify(tx, &mut link, &text, now)?;
                    audit_sync(tx, "task.sync.push_failed", task_id, json!({ "error": e.to_string(), "will_retry": false }))?;
                }
                Err(e) => {
                    link.retry_after = Some(now + policy.retry_backoff);
                    audit_sync(tx, "task.sync.push_failed", task_id, json!({ "error": e.to_string(), "will_retry": true }))?;
                }
            }
            put_link(tx, &link, now)
        })
    }
}

impl SyncPolicy {
    /// Reconciles one patient's tasks with a pull, in one transaction.
    pub(crate) fn apply_pull(
        &self,
        tx: &Transaction<'_>,
        patient_id: PatientId,
        nhs: &NhsNumber,
        remote_tasks: &[RemoteTask],
        coverage: PullCoverage,
        now: DateTime<Local>,
    ) -> Result<(), StoreError> {
        if patient_nhs(tx, patient_id)?.as_ref() != Some(nhs) {
            // Discharged or relinked meanwhile: this answer is about someone else now.
            return Ok(());
        }
        let today = now.date_naive();
        let local = tasks_of_patient(tx, patient_id)?;
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
                if let Some(mut link) = lt.link.clone().filter(|l| l.state == LinkState::Linked) {
                    if link.completion_sent_at.is_some() && lt.task.status != TaskStatus::Open {
                        // SystmOne answered the completion but still lists the task open:
                        // it ignored the Status. Nothing more is sent; a person completes it.
                        notify(
                            tx,
                            &mut link,
                            "SystmOne still lists this task as open after it was asked to complete it: \
                             please complete it in SystmOne.",
                            now,
                        )?;
                        put_link(tx, &link, now)?;
                        continue;
                    }
                    if link.completion_sent_at.is_some() {
                        // Reopened on the ward before SystmOne completed it: linked as before.
                        link.completion_sent_at = None;
                    }
                    activity |= self.resolve_present(tx, lt, link, rt, now)?;
                }
                continue;
            }
            if let Some(&i) = rt.reference().as_deref().and_then(|r| by_reference.get(r)) {
                seen.insert(i);
                let lt = &local[i];
                // Re-read: an earlier copy with the same reference may have linked it already.
                let Some(mut link) = linked_task(tx, lt.task.id)?.link else {
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
                        audit_sync(
                            tx,
                            "task.sync.create_confirmed",
                            lt.task.id,
                            json!({ "task_uid": rt.uid.as_str(), "reference": link.reference }),
                        )?;
                        put_link(tx, &link, now)?;
                        let lt = linked_task(tx, lt.task.id)?;
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
                            put_link(tx, &link, now)?;
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
                    if coverage == PullCoverage::Full || entered_today {
                        self.resolve_gone(tx, lt, link, now)?;
                        activity = true;
                    }
                }
                LinkState::CreateInFlight => {
                    let attempted = link.create_attempted_at.unwrap_or(now);
                    let covered =
                        coverage == PullCoverage::Full || today_pull_can_settle(attempted, now);
                    if covered && now >= attempted + self.unknown_outcome_grace {
                        // SystmOne never answered the create, and its open tasks do not
                        // show it. That does not prove it was never filed: the Tasks filter
                        // lists only non-completed tasks, so a task created and completed
                        // meanwhile looks the same, and no read is known to show completed
                        // tasks. Sending it again could make two; a person decides.
                        let mut link = link;
                        link.state = LinkState::Local;
                        notify(
                            tx,
                            &mut link,
                            "SystmOne did not answer when this task was sent, and it is not among the patient's \
                             open SystmOne tasks. It may have been created and already completed there. Check \
                             SystmOne; if it is not there, choose 'Create in SystmOne' again.",
                            now,
                        )?;
                        audit_sync(
                            tx,
                            "task.sync.create_unconfirmed",
                            lt.task.id,
                            json!({ "reference": link.reference }),
                        )?;
                        put_link(tx, &link, now)?;
                    }
                }
                LinkState::Local | LinkState::CreatePending | LinkState::Detached => {}
            }
        }
        if let Some(mut p) = patient_sync(tx, patient_id)? {
            p.today_pulled_at = Some(now);
            match coverage {
                PullCoverage::Full => {
                    p.tasks_confirmed_at = Some(now);
                    p.full_pull_wanted = false;
                }
                PullCoverage::EnteredToday => p.full_pull_wanted |= activity,
            }
            put_patient_sync(tx, &p)?;
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
        let remote = rt.fields_against(Some(&base.fields));
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
            task = update_local_task(tx, &task, &update, now)?;
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
        put_link(tx, &link, now)?;
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
            return put_link(tx, &link, now);
        };
        let local = local_fields(&lt.task, &base);
        let resolution = merge(&base.fields, &local, lt.task.status, RemoteSide::Gone);
        let mark_done = matches!(resolution.outcome, Outcome::Detach { mark_done: true });
        if mark_done {
            let update = LocalTaskUpdate {
                status: Some(TaskStatus::Done),
                ..Default::default()
            };
            update_local_task(tx, &lt.task, &update, now)?;
        }
        link.state = LinkState::Detached;
        audit_sync(
            tx,
            if link.completion_sent_at.is_some() {
                "task.sync.completion_confirmed"
            } else {
                "task.sync.detached"
            },
            lt.task.id,
            json!({ "task_uid": link.task_uid.as_ref().map(TaskUid::as_str), "marked_done": mark_done }),
        )?;
        for n in &resolution.notices {
            notify(tx, &mut link, n.expose(), now)?;
        }
        put_link(tx, &link, now)
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
        let task_id = insert_local_task(
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
        put_link(tx, &link, now)
    }

    /// Marks the create as sent (with the values sent, the base once it is filed) before
    /// anything leaves the PC.
    pub(crate) fn begin_create(
        &self,
        tx: &Transaction<'_>,
        task_id: TaskId,
        now: DateTime<Local>,
    ) -> Result<Option<(NhsNumber, NewRemoteTask)>, StoreError> {
        let LinkedTask { task, link } = linked_task(tx, task_id)?;
        let Some(mut link) = link.filter(|l| l.state == LinkState::CreatePending) else {
            return Ok(None);
        };
        let Some(nhs) = patient_nhs(tx, task.patient_id)? else {
            link.state = LinkState::Local;
            notify(
                tx,
                &mut link,
                "Not sent to SystmOne: the patient is no longer linked to a SystmOne record.",
                now,
            )?;
            put_link(tx, &link, now)?;
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
            put_link(tx, &link, now)?;
            return Ok(None);
        }
        let mut task = task;
        // A resend after an attempt that did not reach SystmOne: the values of that attempt
        // (the base) keep the assignee's kind — the ward's default *team* stays a team.
        let mut fields = match &link.base {
            Some(base) => local_fields(&task, base),
            None => new_task_fields(&task),
        };
        if let (None, Some(default)) = (&task.assignee, &self.default_assignee) {
            if let Some(staff) = staff_from_assignee(default) {
                let update = LocalTaskUpdate {
                    assignee: Some(Some(staff)),
                    ..Default::default()
                };
                task = update_local_task(tx, &task, &update, now)?;
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
        put_link(tx, &link, now)?;
        audit_sync(
            tx,
            "task.sync.create_sent",
            task_id,
            json!({ "reference": link.reference, "task_type": request.task_type }),
        )?;
        Ok(Some((nhs, request)))
    }

    pub(crate) fn finish_create(
        &self,
        tx: &Transaction<'_>,
        task_id: TaskId,
        result: &Result<TaskUid, SystmOneFailure>,
        now: DateTime<Local>,
    ) -> Result<(), StoreError> {
        let Some(mut link) = linked_task(tx, task_id)?.link else {
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
                    audit_sync(
                        tx,
                        "task.sync.created",
                        task_id,
                        json!({ "task_uid": uid.as_str() }),
                    )?;
                }
            }
            Err(SystmOneFailure::MaybeSent) => {
                audit_sync(
                    tx,
                    "task.sync.create_unknown",
                    task_id,
                    json!({ "reference": link.reference }),
                )?;
            }
            Err(e @ (SystmOneFailure::NotSent(_) | SystmOneFailure::Unavailable(_))) => {
                link.state = LinkState::CreatePending;
                link.retry_after = Some(now + self.retry_backoff);
                audit_sync(
                    tx,
                    "task.sync.create_failed",
                    task_id,
                    json!({ "error": e.to_string(), "will_retry": true }),
                )?;
            }
            Err(e @ SystmOneFailure::Refused(_)) => {
                link.state = LinkState::Local;
                notify(
                    tx,
                    &mut link,
                    &format!(
                        "{e}. This task was not created in SystmOne; it is on the ward board only."
                    ),
                    now,
                )?;
                audit_sync(
                    tx,
                    "task.sync.create_failed",
                    task_id,
                    json!({ "error": e.to_string(), "will_retry": false }),
                )?;
            }
        }
        put_link(tx, &link, now)
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
    let fields: SyncFields = rt.fields_against(None);
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
    add_notice(link, text, now);
    audit_sync(
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
