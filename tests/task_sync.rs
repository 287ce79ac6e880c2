//! End-to-end tests of the ward-task ↔ SystmOne-task sync: the real on-disk store, the
//! engine, and an in-memory SystmOne (`test_support::tasks_fake`) that drops, times out,
//! refuses, hangs (so the engine can be killed mid-operation), and has its own users
//! editing — under every behaviour the evidence about real SystmOne leaves open
//! (`FakeProfile::all`: header line on reads, Due/assignee reported or not, Status applied,
//! ignored or refused).

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeDelta, TimeZone};
use domain::Sensitive;
use domain::{
    BedLabel, NhsNumber, PatientId, PatientName, StaffName, Task, TaskChanges, TaskFilter, TaskId,
    TaskStatus, TaskTitle,
};
use hub::tasksync::{
    strip_reference, title_from_content, Budgets, LinkState, Op, RemoteAssignee, RemoteTaskChanges,
    TaskSyncEngine,
};
use proptest::prelude::*;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use store::{AuditQuery, NewPatient, Store};
use test_support::tasks_fake::{FakeProfile, FakeRemote, Fault, StatusHandling};

const NHS: [&str; 2] = ["9434765919", "4010232137"];

/// Polls once: the fake answers at once unless told to hang, so `None` means "killed
/// while waiting for SystmOne".
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Mutex<Store>,
    remote: FakeRemote,
    engine: TaskSyncEngine,
    now: DateTime<Local>,
    patients: Vec<(PatientId, NhsNumber)>,
    nurse: StaffName,
    crashes: usize,
}

/// A date-time in SystmOne's terms (local wall time).
fn wall(y: i32, m: u32, d: u32, h: u32, min: u32) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(h, min, 0))
}

impl World {
    fn new(start: DateTime<Local>) -> World {
        World::with_profile(start, FakeProfile::AS_SENT)
    }

    fn with_profile(start: DateTime<Local>, profile: FakeProfile) -> World {
        let dir = tempfile::Builder::new()
            .prefix("tasksync")
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "."
            })
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let path = dir.path().join("hub.sqlite");
        let mut store = Store::open(
            &path,
            &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        )
        .unwrap();
        let mut patients = Vec::new();
        for (i, nhs) in NHS.iter().enumerate() {
            let nhs = NhsNumber::parse(nhs).unwrap();
            let p = store
                .add_patient(
                    "Nurse A",
                    &NewPatient {
                        bed: BedLabel::parse(&format!("Bed {}", i + 1)).unwrap(),
                        name: PatientName::parse("Test Patient").unwrap(),
                        nhs_number: Some(nhs.clone()),
                    },
                )
                .unwrap();
            patients.push((p.id, nhs));
        }
        World {
            _dir: dir,
            path,
            store: Mutex::new(store),
            remote: FakeRemote::with_profile(start.naive_local(), profile),
            engine: TaskSyncEngine::new(Budgets::default()),
            now: start,
            patients,
            nurse: StaffName::parse("Nurse A").unwrap(),
            crashes: 0,
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }

    /// One sync round; if SystmOne hangs, the "process" is killed and restarted from disk.
    fn round(&mut self) -> bool {
        let outcome = poll_once(
            self.engine
                .run_round(&self.store, &self.remote, self.now, 100),
        );
        match outcome {
            Some(result) => {
                result.unwrap();
                true
            }
            None => {
                self.crashes += 1;
                let reopened = Store::open(
                    &self.path,
                    &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
                )
                .unwrap();
                let old = std::mem::replace(&mut self.store, Mutex::new(reopened));
                drop(old);
                false
            }
        }
    }

    fn advance(&mut self, secs: i64) {
        self.now += TimeDelta::seconds(secs);
        self.remote.set_now(self.now.naive_local());
    }

    /// Quiet sync: no faults, no edits, long enough for every patient's full pull and the
    /// unknown-outcome grace period.
    fn settle(&mut self) {
        self.remote.clear_faults();
        for _ in 0..12 {
            self.advance(31);
            assert!(self.round(), "no hang without faults");
        }
    }

    fn add_task(&mut self, patient: usize, title: &str, push: bool) -> Task {
        let pid = self.patients[patient].0;
        let nurse = self.nurse.clone();
        let mut store = self.store();
        let t = store
            .add_task(
                &nurse,
                &domain::NewTask {
                    patient_id: pid,
                    title: TaskTitle::parse(title).unwrap(),
                    assignee: None,
                    due: None,
                },
            )
            .unwrap();
        if push {
            store
                .request_task_push(&nurse, t.id, "Clinical Review Required")
                .unwrap();
        }
        t
    }

    fn edit_title(&mut self, id: TaskId, title: &str) -> bool {
        let nurse = self.nurse.clone();
        let changes = TaskChanges {
            title: Some(TaskTitle::parse(title).unwrap()),
            ..Default::default()
        };
        self.store().edit_task(&nurse, id, None, &changes).is_ok()
    }

    fn task(&self, id: TaskId) -> Task {
        self.store().task(id).unwrap()
    }

    fn notice(&self, id: TaskId) -> String {
        self.store()
            .task_link(id)
            .unwrap()
            .and_then(|l| l.notice)
            .map(Sensitive::into_inner)
            .unwrap_or_default()
    }

    fn uid(&self, id: TaskId) -> Option<hub::tasksync::TaskUid> {
        self.store().task_link(id).unwrap().and_then(|l| l.task_uid)
    }

    fn state(&self, id: TaskId) -> Option<LinkState> {
        self.store().task_link(id).unwrap().map(|l| l.state)
    }

    fn remote_open_content(&self, id: TaskId) -> Option<String> {
        let uid = self.uid(id)?;
        let t = self.remote.task(&uid)?;
        (!t.completed && !t.removed).then(|| strip_reference(t.task.content.expose()).0)
    }

    fn remote_count_with_reference(&self, id: TaskId) -> usize {
        let reference = self
            .store()
            .task_link(id)
            .unwrap()
            .and_then(|l| l.reference)
            .unwrap();
        self.remote
            .all_tasks()
            .iter()
            .filter(|t| strip_reference(t.task.content.expose()).1.as_deref() == Some(&reference))
            .count()
    }
}

fn morning() -> DateTime<Local> {
    Local.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).unwrap()
}

#[test]
fn a_ward_task_is_created_edited_and_completed_in_systmone() {
    for profile in FakeProfile::all() {
        created_edited_and_completed(profile);
    }
}

fn created_edited_and_completed(profile: FakeProfile) {
    let mut w = World::with_profile(morning(), profile);
    let t = w.add_task(0, "Bloods", true);
    assert!(w.round());
    assert_eq!(w.state(t.id), Some(LinkState::Linked), "{profile:?}");
    let uid = w.uid(t.id).unwrap();
    let remote = w.remote.task(&uid).unwrap();
    assert!(
        remote.task.content.expose().starts_with("Bloods [IH-T"),
        "{:?}",
        remote.task.content.expose()
    );
    assert_eq!(remote.task.task_type, "Clinical Review Required");

    w.advance(2);
    assert!(w.edit_title(t.id, "Bloods and ECG"));
    let requests = w.remote.requests();
    assert!(w.round());
    assert_eq!(
        w.remote_open_content(t.id).as_deref(),
        Some("Bloods and ECG")
    );
    // The edit went out as one update carrying the TaskUID, before any pull of that round.
    assert!(w.remote.requests() > requests);
    // SystmOne's header line never reaches the ward title.
    w.settle();
    assert_eq!(w.task(t.id).title.as_str(), "Bloods and ECG", "{profile:?}");

    w.advance(2);
    w.store()
        .set_task_status(&w.nurse.clone(), t.id, None, TaskStatus::Done)
        .unwrap();
    assert!(w.round());
    // A completion is believed only when a read shows the task gone.
    if profile.status != StatusHandling::Refused {
        assert_eq!(w.state(t.id), Some(LinkState::Linked), "{profile:?}");
    }
    w.settle();
    assert_eq!(w.task(t.id).status, TaskStatus::Done);
    assert_eq!(w.remote.all_tasks().len(), 1);
    match profile.status {
        StatusHandling::Applied => {
            assert!(w.remote.task(&uid).unwrap().completed);
            assert_eq!(w.state(t.id), Some(LinkState::Detached));
        }
        StatusHandling::Ignored => {
            assert!(!w.remote.task(&uid).unwrap().completed);
            assert_eq!(w.state(t.id), Some(LinkState::Linked));
            assert!(
                w.notice(t.id).contains("please complete it in SystmOne"),
                "{}",
                w.notice(t.id)
            );
            // Nothing more is sent; a SystmOne user completing it ends the link.
            let plan = w.engine.plan(&w.store, w.now).unwrap();
            assert!(
                !plan.iter().any(|op| matches!(op, Op::Complete { .. })),
                "{plan:?}"
            );
            w.remote.user_complete(&uid);
            w.settle();
            assert_eq!(w.state(t.id), Some(LinkState::Detached));
        }
        StatusHandling::Refused => {
            assert!(!w.remote.task(&uid).unwrap().completed);
            assert!(
                w.notice(t.id).contains("SystmOne refused"),
                "{}",
                w.notice(t.id)
            );
        }
    }
    let audit = w
        .store()
        .audit_entries(&AuditQuery {
            entity: Some("task".into()),
            entity_id: Some(t.id.to_string()),
            limit: None,
        })
        .unwrap();
    let actions: Vec<_> = audit.iter().rev().map(|a| a.action.as_str()).collect();
    let mut expected = vec![
        "task.sync.push_requested",
        "task.sync.create_sent",
        "task.sync.created",
        "task.sync.pushed",
    ];
    if profile.status != StatusHandling::Refused {
        expected.push("task.sync.completion_sent");
        expected.push("task.sync.completion_confirmed");
    }
    for expected in expected {
        assert!(
            actions.contains(&expected),
            "{profile:?}: {expected} missing from {actions:?}"
        );
    }
}

#[test]
fn systmone_tasks_are_imported_and_their_changes_applied() {
    // Reads that report Due and the assignee (our first picture of SystmOne).
    let mut w = World::new(morning());
    let nhs = w.patients[0].1.clone();
    let uid = w.remote.user_create(
        &nhs,
        "File",
        "Chase echo report\nfrom cardiology",
        wall(2026, 3, 6, 0, 0),
        Some(RemoteAssignee::user("Dr X")),
    );
    assert!(w.round());
    let tasks = w
        .store()
        .tasks(&TaskFilter {
            patient_id: Some(w.patients[0].0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t.title.as_str(), "Chase echo report from cardiology");
    assert_eq!(t.assignee.as_ref().map(StaffName::as_str), Some("Dr X"));
    // SystmOne's due at midnight: a date whose time SystmOne may not keep (end of that day).
    assert_eq!(
        t.due.unwrap().naive_local(),
        wall(2026, 3, 6, 23, 59).unwrap()
    );
    assert_eq!(w.uid(t.id), Some(uid.clone()));

    // A SystmOne user moves the due date: applied here, nothing pushed back.
    w.remote.user_edit(
        &uid,
        &RemoteTaskChanges {
            due: Some(wall(2026, 3, 9, 14, 30)),
            ..Default::default()
        },
    );
    w.advance(31);
    assert!(w.round());
    assert_eq!(
        w.task(t.id).due.unwrap().naive_local(),
        wall(2026, 3, 9, 14, 30).unwrap()
    );
    assert_eq!(
        w.remote.task(&uid).unwrap().content_history.len(),
        1,
        "the content was never rewritten"
    );

    // Completed in SystmOne: marked done here with a notice.
    w.remote.user_complete(&uid);
    w.settle();
    assert_eq!(w.task(t.id).status, TaskStatus::Done);
    assert!(
        w.notice(t.id).contains("Completed or removed in SystmOne"),
        "{}",
        w.notice(t.id)
    );
    let sync = w.store().task_sync_patients().unwrap();
    assert!(
        sync.iter()
            .all(|p| p.tasks_confirmed_at.is_some() && p.today_pulled_at.is_some()),
        "{sync:?}"
    );
}

#[test]
fn an_unanswered_create_is_found_by_its_reference_not_filed_twice() {
    for profile in [FakeProfile::AS_SENT, FakeProfile::CAPTURED] {
        for fault in [
            Fault::ApplyThenTimeout,
            Fault::Drop,
            Fault::HangAfterApplying,
            Fault::HangBeforeApplying,
        ] {
            let mut w = World::with_profile(morning(), profile);
            let t = w.add_task(0, "Bloods", true);
            w.remote.inject(fault);
            w.round();
            // Linked at once if that round's own pull found it; otherwise waiting, not resent.
            let state = w.state(t.id);
            assert!(
                matches!(state, Some(LinkState::CreateInFlight | LinkState::Linked)),
                "{fault:?}: {state:?}"
            );
            w.advance(5);
            assert!(w.round());
            assert!(w.remote_count_with_reference(t.id) <= 1, "{fault:?}");
            if w.state(t.id) == Some(LinkState::CreateInFlight) {
                let plan = w.engine.plan(&w.store, w.now).unwrap();
                assert!(
                    !plan.iter().any(|op| matches!(op, Op::Create { .. })),
                    "{fault:?}: resent within the grace period"
                );
            }
            w.settle();
            let applied = matches!(fault, Fault::ApplyThenTimeout | Fault::HangAfterApplying);
            if applied {
                assert_eq!(w.state(t.id), Some(LinkState::Linked), "{fault:?}");
                assert_eq!(w.remote_count_with_reference(t.id), 1, "{fault:?}");
            } else {
                // Not among SystmOne's open tasks: a person decides, nothing is resent.
                assert_eq!(w.state(t.id), Some(LinkState::Local), "{fault:?}");
                assert_eq!(w.remote_count_with_reference(t.id), 0, "{fault:?}");
                assert!(
                    w.notice(t.id).contains("Check SystmOne"),
                    "{}",
                    w.notice(t.id)
                );
            }
            assert_eq!(
                w.store().tasks(&TaskFilter::default()).unwrap().len(),
                1,
                "{fault:?}: no ward duplicate"
            );
        }
    }
}

/// With the reads a real SystmOne gives, an imported task's title has no header line, and
/// nothing is invented for the Due and assignee a read does not report.
#[test]
fn systmone_tasks_read_in_the_captured_shape_are_imported_cleanly() {
    let mut w = World::with_profile(morning(), FakeProfile::CAPTURED);
    let nhs = w.patients[0].1.clone();
    let uid = w.remote.user_create(
        &nhs,
        "File",
        "Chase echo report",
        wall(2026, 3, 6, 12, 0),
        Some(RemoteAssignee::user("Dr X")),
    );
    w.settle();
    let tasks = w.store().tasks(&TaskFilter::default()).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].title.as_str(), "Chase echo report");
    assert_eq!((tasks[0].due, tasks[0].assignee.as_ref()), (None, None));
    assert_eq!(w.uid(tasks[0].id), Some(uid.clone()));
    // A ward edit of the title goes out without disturbing what SystmOne holds otherwise.
    assert!(w.edit_title(tasks[0].id, "Chase echo report today"));
    w.settle();
    let held = w.remote.task(&uid).unwrap();
    assert_eq!(held.task.due, wall(2026, 3, 6, 12, 0));
    assert_eq!(held.task.assignee, Some(RemoteAssignee::user("Dr X")));
    assert_eq!(
        strip_reference(held.task.content.expose()).0,
        "Chase echo report today"
    );
}

/// Regression (issue 10): a create whose answer was lost, completed by a SystmOne user before
/// the pull that would have found it, was sent again (the open list cannot show it).
#[test]
fn a_lost_create_completed_in_systmone_meanwhile_is_not_sent_again() {
    for profile in FakeProfile::all() {
        let mut w = World::with_profile(morning(), profile);
        let t = w.add_task(0, "Bloods", true);
        // Filed, the answer lost, and this round's pulls lost too.
        for fault in [Fault::ApplyThenTimeout, Fault::Drop, Fault::Drop] {
            w.remote.inject(fault);
        }
        w.round();
        assert_eq!(
            w.state(t.id),
            Some(LinkState::CreateInFlight),
            "{profile:?}"
        );
        let filed = w.remote.all_tasks();
        assert_eq!(filed.len(), 1);
        w.remote.user_complete(&filed[0].task.uid);
        w.settle();
        assert_eq!(
            w.remote_count_with_reference(t.id),
            1,
            "{profile:?}: sent again"
        );
        assert_eq!(w.remote.all_tasks().len(), 1, "{profile:?}");
        assert_eq!(w.state(t.id), Some(LinkState::Local), "{profile:?}");
        assert!(
            w.notice(t.id).contains("Check SystmOne"),
            "{}",
            w.notice(t.id)
        );
    }
}

/// Regression (issue 10): with the reads a real SystmOne gives (header line, no Due, no
/// assignee), two syncs rewrote the ward task's title and wiped its due time and assignee;
/// and the time of day was dropped when sending.
#[test]
fn a_ward_task_survives_systmone_s_real_reads_unchanged() {
    for profile in FakeProfile::all() {
        let mut w = World::with_profile(morning(), profile);
        let t = w.add_task(0, "Review lithium level", false);
        let due = Local.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap();
        let baker = StaffName::parse("Dr Baker").unwrap();
        w.store()
            .edit_task(
                &w.nurse.clone(),
                t.id,
                None,
                &TaskChanges {
                    due: Some(Some(due)),
                    assignee: Some(Some(baker.clone())),
                    ..Default::default()
                },
            )
            .unwrap();
        w.store()
            .request_task_push(&w.nurse.clone(), t.id, "Clinical Review Required")
            .unwrap();
        w.settle();
        w.settle();
        let task = w.task(t.id);
        assert_eq!(task.title.as_str(), "Review lithium level", "{profile:?}");
        assert_eq!(task.due, Some(due), "{profile:?}");
        assert_eq!(task.assignee.as_ref(), Some(&baker), "{profile:?}");
        let sent = w.remote.task(&w.uid(t.id).unwrap()).unwrap();
        assert_eq!(
            sent.task.due,
            wall(2026, 3, 5, 10, 0),
            "{profile:?}: the time was sent"
        );
        assert_eq!(
            sent.content_history.len(),
            1,
            "{profile:?}: nothing rewritten"
        );
        assert!(w.notice(t.id).is_empty(), "{profile:?}: {}", w.notice(t.id));
    }
}

/// When the conformance probe showed this SystmOne does not take `Status`, a ward completion
/// is not sent: staff are told to complete it in SystmOne, and the link ends when they have.
#[test]
fn a_completion_this_systmone_will_not_take_goes_to_a_person() {
    for status in [StatusHandling::Ignored, StatusHandling::Refused] {
        let profile = FakeProfile {
            status,
            ..FakeProfile::CAPTURED
        };
        let mut w = World::with_profile(morning(), profile);
        w.engine = TaskSyncEngine::new(Budgets::default()).with_completion_status(false);
        let t = w.add_task(0, "Bloods", true);
        w.settle();
        let uid = w.uid(t.id).unwrap();
        w.store()
            .set_task_status(&w.nurse.clone(), t.id, None, TaskStatus::Done)
            .unwrap();
        w.settle();
        let notice = w.notice(t.id);
        assert!(
            notice.contains("please complete it in SystmOne"),
            "{notice}"
        );
        assert!(!w.remote.task(&uid).unwrap().completed, "{status:?}");
        // No update carried a completion: the Refused fake would have refused it, and the
        // notice would say so.
        assert!(!notice.contains("refused"), "{notice}");
        assert_eq!(w.state(t.id), Some(LinkState::Linked));
        w.remote.user_complete(&uid);
        w.settle();
        assert_eq!(w.state(t.id), Some(LinkState::Detached), "{status:?}");
    }
}

/// Regression (issue 10): a resend turned the ward's default *team* assignee into a *user*.
#[test]
fn a_resent_create_keeps_the_default_team_assignee_a_team() {
    let mut w = World::new(morning());
    let team = RemoteAssignee {
        kind: hub::tasksync::AssigneeKind::Team,
        name: "Ward 7".into(),
    };
    w.engine = TaskSyncEngine::new(Budgets::default()).with_default_assignee(Some(team.clone()));
    let t = w.add_task(0, "Bloods", true);
    w.remote.inject(Fault::Temporary);
    assert!(w.round());
    assert_eq!(w.state(t.id), Some(LinkState::CreatePending));
    w.settle();
    let sent = w.remote.task(&w.uid(t.id).unwrap()).unwrap();
    assert_eq!(sent.task.assignee, Some(team));
}

#[test]
fn a_create_sent_just_before_midnight_is_settled_by_a_full_pull() {
    let late = Local.with_ymd_and_hms(2026, 3, 4, 23, 59, 30).unwrap();
    let mut w = World::new(late);
    let t = w.add_task(0, "Night obs", true);
    // Filed but unanswered; that round's pulls are lost too.
    for fault in [Fault::ApplyThenTimeout, Fault::Drop, Fault::Drop] {
        w.remote.inject(fault);
    }
    assert!(w.round());
    assert_eq!(w.state(t.id), Some(LinkState::CreateInFlight));
    w.advance(61);
    let plan = w.engine.plan(&w.store, w.now).unwrap();
    assert!(
        plan.iter().any(
            |op| matches!(op, Op::PullFull { patient_id, .. } if *patient_id == w.patients[0].0)
        ),
        "an entered-today pull cannot see yesterday's create: {plan:?}"
    );
    assert!(!plan.iter().any(|op| matches!(op, Op::Create { .. })));
    w.settle();
    assert_eq!(w.state(t.id), Some(LinkState::Linked));
    assert_eq!(w.remote_count_with_reference(t.id), 1);
}

#[test]
fn concurrent_edits_keep_the_ward_value_and_show_systmone_s() {
    let mut w = World::new(morning());
    let t = w.add_task(0, "Bloods", true);
    assert!(w.round());
    let uid = w.uid(t.id).unwrap();
    w.edit_title(t.id, "Bloods: FBC only");
    let tag = strip_reference(w.remote.task(&uid).unwrap().task.content.expose())
        .1
        .unwrap();
    w.remote.user_edit(
        &uid,
        &RemoteTaskChanges {
            content: Some(Sensitive::new(format!("Bloods: FBC, U&E [{tag}]"))),
            ..Default::default()
        },
    );
    // The pull sees both edits before the push goes out only if it runs first: pull now.
    let pull = Op::PullToday {
        patient_id: w.patients[0].0,
        nhs: w.patients[0].1.clone(),
    };
    poll_once(w.engine.execute(&w.store, &w.remote, &pull, w.now))
        .unwrap()
        .unwrap()
        .unwrap();
    w.settle();
    assert_eq!(w.task(t.id).title.as_str(), "Bloods: FBC only");
    assert_eq!(
        w.remote_open_content(t.id).as_deref(),
        Some("Bloods: FBC only")
    );
    let notice = w.notice(t.id);
    assert!(
        notice.contains("Bloods: FBC, U&E") && notice.contains("kept"),
        "{notice}"
    );
}

#[test]
fn completed_in_systmone_while_edited_here_stays_open_for_review() {
    let mut w = World::new(morning());
    let t = w.add_task(0, "Bloods", true);
    assert!(w.round());
    let uid = w.uid(t.id).unwrap();
    w.remote.user_complete(&uid);
    w.edit_title(t.id, "Bloods repeat");
    // The push is refused (completed); the next full pull sees it gone.
    w.settle();
    let task = w.task(t.id);
    assert_eq!(task.status, TaskStatus::Open);
    assert_eq!(task.title.as_str(), "Bloods repeat");
    assert_eq!(w.state(t.id), Some(LinkState::Detached));
    assert!(
        w.notice(t.id).contains("please review"),
        "{}",
        w.notice(t.id)
    );
}

#[test]
fn a_refused_create_leaves_the_task_on_the_board_with_a_notice() {
    let mut w = World::new(morning());
    let t = w.add_task(1, "Physio review", true);
    w.remote.inject(Fault::Permanent);
    assert!(w.round());
    w.settle();
    assert_eq!(w.state(t.id), Some(LinkState::Local));
    assert!(
        w.notice(t.id).contains("SystmOne refused"),
        "{}",
        w.notice(t.id)
    );
    assert!(w.remote.all_tasks().is_empty());
}

#[test]
fn temporary_errors_are_retried_after_a_pause() {
    let mut w = World::new(morning());
    let t = w.add_task(0, "Bloods", true);
    w.remote.inject(Fault::Temporary);
    assert!(w.round());
    assert_eq!(w.state(t.id), Some(LinkState::CreatePending));
    w.advance(5);
    let plan = w.engine.plan(&w.store, w.now).unwrap();
    assert!(
        !plan.iter().any(|op| matches!(op, Op::Create { .. })),
        "backing off: {plan:?}"
    );
    w.settle();
    assert_eq!(w.state(t.id), Some(LinkState::Linked));
    assert_eq!(w.remote_count_with_reference(t.id), 1);
}

// ---------------------------------------------------------------------------------------
// Random interleavings.

#[derive(Debug, Clone)]
enum Action {
    LocalAdd {
        patient: usize,
        push: bool,
    },
    LocalEditTitle {
        task: usize,
    },
    LocalEditDue {
        task: usize,
        day: u32,
    },
    LocalAssign {
        task: usize,
        who: Option<&'static str>,
    },
    LocalComplete {
        task: usize,
        cancel: bool,
    },
    LocalReopen {
        task: usize,
    },
    LocalRequestPush {
        task: usize,
    },
    RemoteCreate {
        patient: usize,
    },
    RemoteEditContent {
        task: usize,
    },
    RemoteEditDue {
        task: usize,
        day: u32,
    },
    RemoteAssign {
        task: usize,
        team: bool,
    },
    RemoteComplete {
        task: usize,
    },
    RemoteRemove {
        task: usize,
    },
    Fault(Fault),
    Sync {
        secs: i64,
    },
}

fn arb_fault() -> impl Strategy<Value = Fault> {
    prop::sample::select(vec![
        Fault::Drop,
        Fault::ApplyThenTimeout,
        Fault::Temporary,
        Fault::Permanent,
        Fault::Unavailable,
        Fault::HangBeforeApplying,
        Fault::HangAfterApplying,
    ])
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..2usize, prop::bool::weighted(0.8)).prop_map(|(patient, push)| Action::LocalAdd { patient, push }),
        4 => any::<usize>().prop_map(|task| Action::LocalEditTitle { task }),
        1 => (any::<usize>(), 1..28u32).prop_map(|(task, day)| Action::LocalEditDue { task, day }),
        1 => (any::<usize>(), prop::option::of(prop::sample::select(vec!["Dr X", "Dr Y"]))).prop_map(|(task, who)| Action::LocalAssign { task, who }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(task, cancel)| Action::LocalComplete { task, cancel }),
        2 => (0..2usize).prop_map(|patient| Action::RemoteCreate { patient }),
        3 => any::<usize>().prop_map(|task| Action::RemoteEditContent { task }),
        1 => (any::<usize>(), 1..28u32).prop_map(|(task, day)| Action::RemoteEditDue { task, day }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(task, team)| Action::RemoteAssign { task, team }),
        1 => any::<usize>().prop_map(|task| Action::RemoteComplete { task }),
        1 => any::<usize>().prop_map(|task| Action::RemoteRemove { task }),
        1 => any::<usize>().prop_map(|task| Action::LocalReopen { task }),
        1 => any::<usize>().prop_map(|task| Action::LocalRequestPush { task }),
        3 => arb_fault().prop_map(Action::Fault),
        6 => (1..45i64).prop_map(|secs| Action::Sync { secs }),
    ]
}

/// Every ward title edit not yet seen in SystmOne or in a notice.
struct Ledger {
    pending: std::collections::HashMap<TaskId, String>,
    /// SystmOne tasks a SystmOne user completed or removed.
    closed_by_user: std::collections::HashSet<hub::tasksync::TaskUid>,
    /// SystmOne tasks whose Due or assignee a SystmOne user changed while reads do not
    /// report them: the ward cannot know, so those fields may differ.
    unseen_remote_edits: std::collections::HashSet<hub::tasksync::TaskUid>,
    counter: usize,
}

impl Ledger {
    fn settle_against(&mut self, w: &World) {
        let remote_contents: std::collections::HashSet<String> = w
            .remote
            .all_tasks()
            .iter()
            .flat_map(|t| t.content_history.iter().map(|c| strip_reference(c).0))
            .collect();
        self.pending.retain(|id, title| {
            !(remote_contents.contains(title.as_str()) || w.notice(*id).contains(title.as_str()))
        });
    }
}

fn run_interleaving(
    start: DateTime<Local>,
    profile: FakeProfile,
    actions: Vec<Action>,
) -> Result<(), TestCaseError> {
    let mut w = World::with_profile(start, profile);
    let mut ledger = Ledger {
        pending: Default::default(),
        closed_by_user: Default::default(),
        unseen_remote_edits: Default::default(),
        counter: 0,
    };
    for action in actions {
        let local: Vec<Task> = w.store().tasks(&TaskFilter::default()).unwrap();
        let mut local = local;
        local.sort_by_key(|t| t.id);
        let remote = w.remote.all_tasks();
        let pick_local = |i: usize| (!local.is_empty()).then(|| local[i % local.len()].clone());
        let pick_remote = |i: usize| (!remote.is_empty()).then(|| remote[i % remote.len()].clone());
        ledger.counter += 1;
        let n = ledger.counter;
        let nurse = w.nurse.clone();
        match action {
            Action::LocalAdd { patient, push } => {
                w.add_task(patient, &format!("Local task {n}"), push);
            }
            Action::LocalEditTitle { task } => {
                if let Some(t) = pick_local(task) {
                    let title = format!("Ward edit <{n}>");
                    if w.edit_title(t.id, &title) {
                        // An earlier edit not yet delivered is superseded by the user's own.
                        ledger.pending.insert(t.id, title);
                    }
                }
            }
            Action::LocalEditDue { task, day } => {
                if let Some(t) = pick_local(task) {
                    let due = Local.with_ymd_and_hms(2026, 4, day, 10, 0, 0).unwrap();
                    let _ = w.store().edit_task(
                        &nurse,
                        t.id,
                        None,
                        &TaskChanges {
                            due: Some(Some(due)),
                            ..Default::default()
                        },
                    );
                }
            }
            Action::LocalAssign { task, who } => {
                if let Some(t) = pick_local(task) {
                    let changes = TaskChanges {
                        assignee: Some(who.map(|w| StaffName::parse(w).unwrap())),
                        ..Default::default()
                    };
                    let _ = w.store().edit_task(&nurse, t.id, None, &changes);
                }
            }
            Action::LocalComplete { task, cancel } => {
                if let Some(t) = pick_local(task) {
                    let status = if cancel {
                        TaskStatus::Cancelled
                    } else {
                        TaskStatus::Done
                    };
                    let _ = w.store().set_task_status(&nurse, t.id, None, status);
                }
            }
            Action::LocalReopen { task } => {
                if let Some(t) = pick_local(task) {
                    let _ = w
                        .store()
                        .set_task_status(&nurse, t.id, None, TaskStatus::Open);
                }
            }
            Action::LocalRequestPush { task } => {
                if let Some(t) = pick_local(task) {
                    let _ = w.store().request_task_push(&nurse, t.id, "File");
                }
            }
            Action::RemoteCreate { patient } => {
                let nhs = w.patients[patient].1.clone();
                w.remote
                    .user_create(&nhs, "File", &format!("SystmOne task {n}"), None, None);
            }
            Action::RemoteEditContent { task } => {
                if let Some(t) = pick_remote(task) {
                    // SystmOne users keep the reference tag (the create reconciliation needs it).
                    let tag = strip_reference(t.task.content.expose()).1;
                    let content = hub::tasksync::with_reference(
                        &format!("SystmOne edit {n}"),
                        tag.as_deref(),
                    );
                    w.remote.user_edit(
                        &t.task.uid,
                        &RemoteTaskChanges {
                            content: Some(Sensitive::new(content)),
                            ..Default::default()
                        },
                    );
                }
            }
            Action::RemoteEditDue { task, day } => {
                if let Some(t) = pick_remote(task) {
                    let edited = w.remote.user_edit(
                        &t.task.uid,
                        &RemoteTaskChanges {
                            due: Some(wall(2026, 5, day, 9, 15)),
                            ..Default::default()
                        },
                    );
                    if edited && !profile.reports_due_and_assignee {
                        ledger.unseen_remote_edits.insert(t.task.uid.clone());
                    }
                }
            }
            Action::RemoteAssign { task, team } => {
                if let Some(t) = pick_remote(task) {
                    let a = if team {
                        RemoteAssignee {
                            kind: hub::tasksync::AssigneeKind::Team,
                            name: "Ward 7".into(),
                        }
                    } else {
                        RemoteAssignee::user("Dr Z")
                    };
                    let edited = w.remote.user_edit(
                        &t.task.uid,
                        &RemoteTaskChanges {
                            assignee: Some(Some(a)),
                            ..Default::default()
                        },
                    );
                    if edited && !profile.reports_due_and_assignee {
                        ledger.unseen_remote_edits.insert(t.task.uid.clone());
                    }
                }
            }
            Action::RemoteComplete { task } => {
                if let Some(t) = pick_remote(task) {
                    if w.remote.user_complete(&t.task.uid) {
                        ledger.closed_by_user.insert(t.task.uid.clone());
                    }
                }
            }
            Action::RemoteRemove { task } => {
                if let Some(t) = pick_remote(task) {
                    if w.remote.user_remove(&t.task.uid) {
                        ledger.closed_by_user.insert(t.task.uid.clone());
                    }
                }
            }
            Action::Fault(f) => w.remote.inject(f),
            Action::Sync { secs } => {
                w.advance(secs);
                w.round();
                ledger.settle_against(&w);
            }
        }
    }
    w.settle();
    ledger.settle_against(&w);
    if std::env::var_os("TASKSYNC_STATS").is_some() {
        let tasks = w.store().tasks(&TaskFilter::default()).unwrap();
        let links: Vec<_> = tasks.iter().map(|t| w.state(t.id)).collect();
        eprintln!(
            "crashes={} requests={} remote={} links={:?} pending={}",
            w.crashes,
            w.remote.requests(),
            w.remote.all_tasks().len(),
            links,
            ledger.pending.len()
        );
    }
    check_converged(&w, &ledger)
}

fn check_converged(w: &World, ledger: &Ledger) -> Result<(), TestCaseError> {
    let store = w.store();
    let local = store.tasks(&TaskFilter::default()).unwrap();
    let remote = w.remote.all_tasks();

    // No ward edit lost: every edit not seen in SystmOne or a notice is still on the task.
    for (id, title) in &ledger.pending {
        let t = store.task(*id).unwrap();
        prop_assert_eq!(
            t.title.as_str(),
            title.as_str(),
            "ward edit of task {} lost",
            id
        );
    }

    // No duplicate in SystmOne: each reference filed at most once — also when a SystmOne
    // user completed or removed our task before the pull that would have found it (an
    // unconfirmed create goes to a person, never out again on its own).
    let mut refs: std::collections::HashMap<String, Vec<_>> = std::collections::HashMap::new();
    for t in &remote {
        if let Some(r) = strip_reference(t.task.content.expose()).1 {
            refs.entry(r).or_default().push(t.task.uid.clone());
        }
    }
    for (reference, uids) in &refs {
        prop_assert!(
            uids.len() <= 1,
            "duplicate creates of {}: {:?}",
            reference,
            uids
        );
    }

    let mut linked_uids = std::collections::HashMap::new();
    for t in &local {
        let Some(link) = store.task_link(t.id).unwrap() else {
            continue;
        };
        prop_assert!(
            !matches!(
                link.state,
                LinkState::CreatePending | LinkState::CreateInFlight
            ),
            "task {} still waiting to be created after quiescence: {:?}",
            t.id,
            link.state
        );
        if let Some(uid) = &link.task_uid {
            prop_assert!(
                linked_uids.insert(uid.clone(), t.id).is_none(),
                "two ward tasks share {}",
                uid
            );
        }
        if link.state == LinkState::Linked {
            let uid = link.task_uid.clone().unwrap();
            let r = remote.iter().find(|r| r.task.uid == uid).unwrap();
            let refused = link.push_failed_version == Some(t.version);
            if refused {
                // SystmOne refused this version for good: the sides differ, and staff are told.
                prop_assert!(
                    link.notice.is_some(),
                    "refusal of task {} not explained",
                    t.id
                );
            } else if t.status == TaskStatus::Open {
                // Converged: both sides show the same task.
                prop_assert!(
                    !r.completed && !r.removed,
                    "task {} open here, gone in SystmOne",
                    t.id
                );
                let content = strip_reference(r.task.content.expose()).0;
                let remote_title = title_from_content(&content, &r.task.task_type).unwrap();
                prop_assert_eq!(remote_title.as_str(), t.title.as_str());
                if !ledger.unseen_remote_edits.contains(&uid) {
                    prop_assert_eq!(r.task.due, t.due.map(|d| d.naive_local()));
                    prop_assert_eq!(
                        r.task.assignee.as_ref().map(|a| a.name.clone()),
                        t.assignee.as_ref().map(|a| a.as_str().to_owned())
                    );
                }
            } else {
                // Completed here but still open in SystmOne only when SystmOne refused it.
                prop_assert!(
                    r.completed || r.removed || link.notice.is_some(),
                    "completion of task {} neither sent nor explained",
                    t.id
                );
            }
        }
        if link.state == LinkState::Detached && t.status != TaskStatus::Open {
            let uid = link.task_uid.clone().unwrap();
            let r = remote.iter().find(|r| r.task.uid == uid).unwrap();
            prop_assert!(
                r.completed || r.removed,
                "task {} done here, open in SystmOne",
                t.id
            );
        }
    }
    // Every open SystmOne task of a ward patient is on the board exactly once.
    for r in remote.iter().filter(|r| !r.completed && !r.removed) {
        let on_board = linked_uids.get(&r.task.uid);
        prop_assert!(
            on_board.is_some(),
            "SystmOne task {} not on the board",
            r.task.uid
        );
        let link = store.task_link(*on_board.unwrap()).unwrap().unwrap();
        prop_assert!(
            link.state == LinkState::Linked,
            "SystmOne task {} open but its ward task is {:?}",
            r.task.uid,
            link.state
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("TASKSYNC_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_converge_without_loss_or_duplicates(
        late in any::<bool>(),
        profile in prop::sample::select(FakeProfile::all()),
        actions in prop::collection::vec(arb_action(), 1..60),
    ) {
        let start = if late { Local.with_ymd_and_hms(2026, 3, 4, 23, 58, 0).unwrap() } else { morning() };
        run_interleaving(start, profile, actions)?;
    }
}

#[test]
fn a_refused_completion_is_explained_once_not_on_every_pull() {
    let mut w = World::new(morning());
    let t = w.add_task(0, "Bloods", true);
    assert!(w.round());
    let uid = w.uid(t.id).unwrap();
    w.remote.user_edit(
        &uid,
        &RemoteTaskChanges {
            due: Some(wall(2026, 3, 9, 0, 0)),
            ..Default::default()
        },
    );
    w.store()
        .set_task_status(&w.nurse.clone(), t.id, None, TaskStatus::Done)
        .unwrap();
    w.remote.inject(Fault::Permanent);
    w.advance(31);
    assert!(w.round());
    w.settle();
    assert!(!w.remote.task(&uid).unwrap().completed, "refused");
    let notice = w.notice(t.id);
    assert_eq!(
        notice
            .matches("Completed here while SystmOne changed the due date to 2026-03-09")
            .count(),
        1,
        "{notice}"
    );
    assert_eq!(
        notice.matches("did not accept the completion").count(),
        1,
        "{notice}"
    );
    let audit = w
        .store()
        .audit_entries(&AuditQuery {
            entity: Some("task".into()),
            entity_id: Some(t.id.to_string()),
            limit: None,
        })
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "task.sync.notice")
            .count(),
        2
    );
    // The ward task stays done; SystmOne's date was not applied to it.
    let task = w.task(t.id);
    assert_eq!(task.status, TaskStatus::Done);
    assert_eq!(task.due, None);
}

// ---------------------------------------------------------------------------------------
// Against the SystmOne simulator, through the real client (TCP, TPP's 1 s / 30 s limits).

mod against_the_simulator {
    use super::*;
    use hub::tasksync::systmone_remote::SystmOneTasks;
    use simulator::state::TaskChange;
    use simulator::{ApprovalMode, SimConfig, Simulator};
    use std::time::Duration;
    use systmone::client::{ClientConfig, SystmOneClient};
    use systmone::connection::ConnectionState;
    use systmone::secrets::ApiKey;

    #[tokio::test]
    async fn a_ward_task_goes_to_systmone_and_changes_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SimConfig::new(dir.path().join("sim"));
        config.port = 0;
        config.approval = ApprovalMode::Auto;
        let sim = Simulator::start(config).await.unwrap();
        let mut control = sim.control().unwrap();
        let db = dir.path().join("hub").join("inpatient-hub.sqlite");
        let client = SystmOneClient::start(
            ClientConfig::new(sim.addr()),
            ApiKey::parse("f31e26725b5491f2").unwrap(),
            Store::open(
                &db,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
            Store::open(
                &db,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        // The client asks nothing at start; ask who is logged in, as the hub does first.
        client
            .organisation(true, systmone::client::Lane::Interactive)
            .await
            .unwrap();
        let mut state = client.state();
        tokio::time::timeout(
            Duration::from_secs(15),
            state.wait_for(|s| matches!(s, ConnectionState::Connected { user: Some(_), .. })),
        )
        .await
        .unwrap()
        .unwrap();
        let user = control.status().unwrap().settings.logged_in_user;

        let patient = control.db().patients().unwrap().into_iter().next().unwrap();
        let nhs = NhsNumber::parse(&patient.nhs_number).unwrap();
        let already_in_systmone = control.tasks(&patient.nhs_number).unwrap().len();
        let store = Mutex::new(
            Store::open(
                &db,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
        );
        let nurse = StaffName::parse("Nurse A").unwrap();
        let task = {
            let mut s = store.lock().unwrap();
            let p = s
                .add_patient(
                    "Nurse A",
                    &NewPatient {
                        bed: BedLabel::parse("Bed 1").unwrap(),
                        name: PatientName::parse("Test Patient").unwrap(),
                        nhs_number: Some(nhs.clone()),
                    },
                )
                .unwrap();
            let t = s
                .add_task(
                    &nurse,
                    &domain::NewTask {
                        patient_id: p.id,
                        title: TaskTitle::parse("Review bloods").unwrap(),
                        assignee: None,
                        due: None,
                    },
                )
                .unwrap();
            s.request_task_push(&nurse, t.id, "Clinical Review Required")
                .unwrap();
            t
        };
        // Entered-today pulls every round (they are not throttled), full pulls per TPP.
        let budgets = Budgets {
            today_pull_every: TimeDelta::zero(),
            ..Budgets::default()
        };
        let engine =
            TaskSyncEngine::new(budgets).with_default_assignee(Some(RemoteAssignee::user(&user)));
        let remote = SystmOneTasks::new(&client);

        // Create, then a full pull: the simulator's existing tasks are imported too.
        let report = engine
            .run_round(&store, &remote, Local::now(), 10)
            .await
            .unwrap();
        assert!(report.ops.iter().all(|o| o.remote.is_ok()), "{report:?}");
        let link = store.lock().unwrap().task_link(task.id).unwrap().unwrap();
        assert_eq!(link.state, LinkState::Linked);
        let uid = link.task_uid.unwrap();
        let sim_task = control.db().task(uid.as_str()).unwrap().unwrap();
        assert!(
            sim_task.content.starts_with("Review bloods [IH-T"),
            "{}",
            sim_task.content
        );
        assert_eq!(sim_task.user_assigned.as_deref(), Some(user.as_str()));
        let on_board = store.lock().unwrap().tasks(&TaskFilter::default()).unwrap();
        assert_eq!(
            on_board.len(),
            1 + already_in_systmone,
            "imported the patient's open SystmOne tasks"
        );

        // A SystmOne user edits it; an entered-today pull (not throttled) brings it back.
        let change = TaskChange {
            content: Some(format!(
                "Review bloods and ECG [{}]",
                link.reference.clone().unwrap()
            )),
            ..TaskChange::default()
        };
        control.edit_task(uid.as_str(), &change, None).unwrap();
        let report = engine
            .run_round(&store, &remote, Local::now(), 10)
            .await
            .unwrap();
        assert!(
            report.ops.iter().all(|o| !o.op.is_full_pull()),
            "within 30 s of the last full pull"
        );
        assert_eq!(
            store.lock().unwrap().task(task.id).unwrap().title.as_str(),
            "Review bloods and ECG"
        );

        // Completed on the ward: SystmOne's task is completed too.
        store
            .lock()
            .unwrap()
            .set_task_status(&nurse, task.id, None, TaskStatus::Done)
            .unwrap();
        let report = engine
            .run_round(&store, &remote, Local::now(), 1)
            .await
            .unwrap();
        assert!(
            matches!(report.ops[0].op, Op::Complete { .. }),
            "{report:?}"
        );
        assert_eq!(
            control.db().task(uid.as_str()).unwrap().unwrap().status,
            "Completed"
        );
        // Believed only once a read no longer lists it: the next entered-today pull.
        let link = store.lock().unwrap().task_link(task.id).unwrap().unwrap();
        assert_eq!(link.state, LinkState::Linked);
        assert!(link.completion_sent_at.is_some());
        engine
            .run_round(&store, &remote, Local::now(), 10)
            .await
            .unwrap();
        assert_eq!(
            store
                .lock()
                .unwrap()
                .task_link(task.id)
                .unwrap()
                .unwrap()
                .state,
            LinkState::Detached
        );
        assert_eq!(
            control.violation_count().unwrap(),
            0,
            "no request broke SystmOne's limits"
        );
    }
}
