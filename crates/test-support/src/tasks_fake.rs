//! An in-memory SystmOne for tests of the task sync: holds tasks per NHS number, follows
//! the Tasks filter (non-completed only; entered-today when asked), and can misbehave on
//! demand: drop a request, apply it and then not answer, answer with a temporary or
//! permanent error, be unavailable, or hang forever (so a test can drop the engine
//! mid-operation, as a killed process would). A "SystmOne user" can create, edit,
//! complete and remove tasks.
//!
//! What the evidence about real SystmOne leaves open is a [`FakeProfile`]: whether reads
//! carry SystmOne's header line, whether they report Due and the assignee, and what a
//! `Status` on a task update does. Task sync must hold under every profile
//! ([`FakeProfile::all`]); `docs/systmone-evidence.md` says which test covers which.

use chrono::NaiveDateTime;
use domain::task_link::{NewRemoteTask, RemoteTask, RemoteTaskChanges, COMPLETED_STATUS};
use domain::task_link::{RemoteAssignee, TaskUid};
use domain::SystmOneFailure;
use domain::{NhsNumber, Sensitive};
use hub::tasksync::RemoteTasks;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// What the next request suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Silently not processed (as when throttled): no answer.
    Drop,
    /// Processed, but the answer never arrives.
    ApplyThenTimeout,
    Temporary,
    Permanent,
    Unavailable,
    /// Not processed, and the call never returns (the caller is killed while waiting).
    HangBeforeApplying,
    /// Processed, and the call never returns.
    HangAfterApplying,
}

/// What a `Status` on a task update does (unproven on a real SystmOne).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusHandling {
    /// `Completed` completes the task (our first reading of the spec).
    Applied,
    /// Accepted without error and without effect.
    Ignored,
    /// The whole update is refused (PermanentError true).
    Refused,
}

/// How the fake answers where real SystmOne's behaviour is not known for certain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeProfile {
    /// Reads put `Ddd DD Mon HH:MM - SURNAME, First` and a newline before the content, and a
    /// newline after it (seen in a real capture).
    pub header_line: bool,
    /// Reads carry Due and the assignee (a real capture carried neither).
    pub reports_due_and_assignee: bool,
    pub status: StatusHandling,
}

impl FakeProfile {
    /// Our original picture: content as sent, every field reported, Status applied.
    pub const AS_SENT: FakeProfile = FakeProfile {
        header_line: false,
        reports_due_and_assignee: true,
        status: StatusHandling::Applied,
    };

    /// What the capture shows: a header line, no Due or assignee in reads.
    pub const CAPTURED: FakeProfile = FakeProfile {
        header_line: true,
        reports_due_and_assignee: false,
        status: StatusHandling::Applied,
    };

    /// Every combination.
    pub fn all() -> Vec<FakeProfile> {
        let mut all = Vec::new();
        for header_line in [false, true] {
            for reports_due_and_assignee in [true, false] {
                for status in [
                    StatusHandling::Applied,
                    StatusHandling::Ignored,
                    StatusHandling::Refused,
                ] {
                    all.push(FakeProfile {
                        header_line,
                        reports_due_and_assignee,
                        status,
                    });
                }
            }
        }
        all
    }
}

#[derive(Debug, Clone)]
pub struct FakeTask {
    pub nhs: String,
    pub task: RemoteTask,
    pub completed: bool,
    pub removed: bool,
    /// Every content the task has had, oldest first.
    pub content_history: Vec<String>,
}

#[derive(Debug)]
struct FakeState {
    tasks: Vec<FakeTask>,
    next_uid: u64,
    now: NaiveDateTime,
    faults: VecDeque<Fault>,
    requests: usize,
    profile: FakeProfile,
}

#[derive(Debug)]
pub struct FakeRemote {
    state: Mutex<FakeState>,
}

/// What a call does once its fault (if any) is known.
enum Effect {
    Apply,
    Skip(SystmOneFailure),
    ApplyThen(SystmOneFailure),
    Hang { apply: bool },
}

impl FakeRemote {
    /// A fake answering as we first pictured SystmOne ([`FakeProfile::AS_SENT`]).
    pub fn new(now: NaiveDateTime) -> FakeRemote {
        FakeRemote::with_profile(now, FakeProfile::AS_SENT)
    }

    pub fn with_profile(now: NaiveDateTime, profile: FakeProfile) -> FakeRemote {
        FakeRemote {
            state: Mutex::new(FakeState {
                tasks: Vec::new(),
                next_uid: 1,
                now,
                faults: VecDeque::new(),
                requests: 0,
                profile,
            }),
        }
    }

    pub fn profile(&self) -> FakeProfile {
        self.lock().profile
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_now(&self, now: NaiveDateTime) {
        self.lock().now = now;
    }

    /// The next request (of any kind) suffers `fault`; several queue up in order.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// How many requests the sync has sent.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Every task ever created, completed and removed ones included.
    pub fn all_tasks(&self) -> Vec<FakeTask> {
        self.lock().tasks.clone()
    }

    pub fn task(&self, uid: &TaskUid) -> Option<FakeTask> {
        self.lock()
            .tasks
            .iter()
            .find(|t| &t.task.uid == uid)
            .cloned()
    }

    /// A SystmOne user creates a task.
    pub fn user_create(
        &self,
        nhs: &NhsNumber,
        task_type: &str,
        content: &str,
        due: Option<NaiveDateTime>,
        assignee: Option<RemoteAssignee>,
    ) -> TaskUid {
        let mut s = self.lock();
        let new = NewRemoteTask {
            task_type: task_type.into(),
            content: Sensitive::new(content.into()),
            due,
            assignee,
        };
        insert(&mut s, nhs, &new)
    }

    /// A SystmOne user edits an open task; false if it is completed or removed.
    pub fn user_edit(&self, uid: &TaskUid, changes: &RemoteTaskChanges) -> bool {
        let mut s = self.lock();
        match s
            .tasks
            .iter_mut()
            .find(|t| &t.task.uid == uid && !t.completed && !t.removed)
        {
            Some(t) => {
                apply_changes(t, changes);
                true
            }
            None => false,
        }
    }

    pub fn user_complete(&self, uid: &TaskUid) -> bool {
        let mut s = self.lock();
        match s
            .tasks
            .iter_mut()
            .find(|t| &t.task.uid == uid && !t.completed && !t.removed)
        {
            Some(t) => {
                t.completed = true;
                true
            }
            None => false,
        }
    }

    pub fn user_remove(&self, uid: &TaskUid) -> bool {
        let mut s = self.lock();
        match s
            .tasks
            .iter_mut()
            .find(|t| &t.task.uid == uid && !t.removed)
        {
            Some(t) => {
                t.removed = true;
                true
            }
            None => false,
        }
    }

    /// The patient's open tasks as the fake holds them (content as sent, every field).
    pub fn open_tasks(&self, nhs: &NhsNumber) -> Vec<RemoteTask> {
        let s = self.lock();
        listed(&s, nhs, false)
    }

    fn effect(s: &mut FakeState) -> Effect {
        s.requests += 1;
        match s.faults.pop_front() {
            None => Effect::Apply,
            Some(Fault::Drop) => Effect::Skip(SystmOneFailure::MaybeSent),
            Some(Fault::ApplyThenTimeout) => Effect::ApplyThen(SystmOneFailure::MaybeSent),
            Some(Fault::Temporary) => Effect::Skip(SystmOneFailure::NotSent(
                "the record is open on this PC".into(),
            )),
            Some(Fault::Permanent) => {
                Effect::Skip(SystmOneFailure::Refused("the request was refused".into()))
            }
            Some(Fault::Unavailable) => Effect::Skip(SystmOneFailure::Unavailable(
                "SystmOne is not running".into(),
            )),
            Some(Fault::HangBeforeApplying) => Effect::Hang { apply: false },
            Some(Fault::HangAfterApplying) => Effect::Hang { apply: true },
        }
    }

    fn pull_now(
        &self,
        nhs: &NhsNumber,
        today_only: bool,
    ) -> (Result<Vec<RemoteTask>, SystmOneFailure>, bool) {
        let mut s = self.lock();
        match Self::effect(&mut s) {
            Effect::Apply => (
                Ok(listed(&s, nhs, today_only)
                    .into_iter()
                    .map(|t| as_read(t, s.profile))
                    .collect()),
                false,
            ),
            Effect::Skip(e) | Effect::ApplyThen(e) => (Err(e), false),
            Effect::Hang { .. } => (Err(SystmOneFailure::MaybeSent), true),
        }
    }

    fn create_now(
        &self,
        nhs: &NhsNumber,
        task: &NewRemoteTask,
    ) -> (Result<TaskUid, SystmOneFailure>, bool) {
        let mut s = self.lock();
        match Self::effect(&mut s) {
            Effect::Apply => (Ok(insert(&mut s, nhs, task)), false),
            Effect::Skip(e) => (Err(e), false),
            Effect::ApplyThen(e) => {
                insert(&mut s, nhs, task);
                (Err(e), false)
            }
            Effect::Hang { apply } => {
                if apply {
                    insert(&mut s, nhs, task);
                }
                (Err(SystmOneFailure::MaybeSent), true)
            }
        }
    }

    fn update_now(
        &self,
        nhs: &NhsNumber,
        uid: &TaskUid,
        changes: &RemoteTaskChanges,
    ) -> (Result<(), SystmOneFailure>, bool) {
        let mut s = self.lock();
        let effect = Self::effect(&mut s);
        let (apply, outcome, hang) = match effect {
            Effect::Apply => (true, None, false),
            Effect::Skip(e) => (false, Some(e), false),
            Effect::ApplyThen(e) => (true, Some(e), false),
            Effect::Hang { apply } => (apply, Some(SystmOneFailure::MaybeSent), true),
        };
        let mut result = Ok(());
        let profile = s.profile;
        if apply {
            let digits = nhs.digits();
            result = match s
                .tasks
                .iter_mut()
                .find(|t| &t.task.uid == uid && t.nhs == digits && !t.removed)
            {
                None => Err(SystmOneFailure::Refused(format!(
                    "no task {uid} for this patient"
                ))),
                Some(_)
                    if changes.status.is_some() && profile.status == StatusHandling::Refused =>
                {
                    Err(SystmOneFailure::Refused(
                        "Status cannot be set on a task".into(),
                    ))
                }
                Some(t) if t.completed => {
                    if changes.status.as_deref() == Some(COMPLETED_STATUS) {
                        Ok(())
                    } else {
                        Err(SystmOneFailure::Refused("the task is completed".into()))
                    }
                }
                Some(t) => {
                    if profile.status == StatusHandling::Ignored {
                        let mut without_status = changes.clone();
                        without_status.status = None;
                        apply_changes(t, &without_status);
                    } else {
                        apply_changes(t, changes);
                    }
                    Ok(())
                }
            };
        }
        match outcome {
            Some(e) => (Err(e), hang),
            None => (result, false),
        }
    }
}

fn listed(s: &FakeState, nhs: &NhsNumber, today_only: bool) -> Vec<RemoteTask> {
    let digits = nhs.digits();
    let today = s.now.date();
    s.tasks
        .iter()
        .filter(|t| t.nhs == digits && !t.completed && !t.removed)
        .filter(|t| !today_only || t.task.entered.date() == today)
        .map(|t| t.task.clone())
        .collect()
}

/// A stored task as a read returns it under `profile`.
fn as_read(mut t: RemoteTask, profile: FakeProfile) -> RemoteTask {
    if profile.header_line {
        let header = t.entered.format("%a %d %b %H:%M - STRICT, Rhea");
        t.content = Sensitive::new(format!("{header}\n{}\n", t.content.expose()));
    }
    if !profile.reports_due_and_assignee {
        t.due = None;
        t.assignee = None;
    }
    t
}

fn insert(s: &mut FakeState, nhs: &NhsNumber, new: &NewRemoteTask) -> TaskUid {
    let uid = TaskUid::from_number(0x5_0000_0000u64 + s.next_uid);
    s.next_uid += 1;
    s.tasks.push(FakeTask {
        nhs: nhs.digits(),
        task: RemoteTask {
            uid: uid.clone(),
            task_type: new.task_type.clone(),
            content: new.content.clone(),
            due: new.due,
            assignee: new.assignee.clone(),
            status: "Not Started".into(),
            entered: s.now,
        },
        completed: false,
        removed: false,
        content_history: vec![new.content.expose().clone()],
    });
    uid
}

fn apply_changes(t: &mut FakeTask, changes: &RemoteTaskChanges) {
    if let Some(c) = &changes.content {
        t.task.content = c.clone();
        t.content_history.push(c.expose().clone());
    }
    if let Some(d) = changes.due {
        t.task.due = d;
    }
    if let Some(a) = &changes.assignee {
        t.task.assignee = a.clone();
    }
    if let Some(status) = &changes.status {
        if status == COMPLETED_STATUS {
            t.completed = true;
        } else {
            t.task.status = status.clone();
        }
    }
}

impl RemoteTasks for FakeRemote {
    async fn pull(
        &self,
        nhs: &NhsNumber,
        today_only: bool,
    ) -> Result<Vec<RemoteTask>, SystmOneFailure> {
        let (result, hang) = self.pull_now(nhs, today_only);
        if hang {
            std::future::pending::<()>().await;
        }
        result
    }

    async fn create(
        &self,
        nhs: &NhsNumber,
        task: &NewRemoteTask,
    ) -> Result<TaskUid, SystmOneFailure> {
        let (result, hang) = self.create_now(nhs, task);
        if hang {
            std::future::pending::<()>().await;
        }
        result
    }

    async fn update(
        &self,
        nhs: &NhsNumber,
        uid: &TaskUid,
        changes: &RemoteTaskChanges,
    ) -> Result<(), SystmOneFailure> {
        let (result, hang) = self.update_now(nhs, uid, changes);
        if hang {
            std::future::pending::<()>().await;
        }
        result
    }
}
