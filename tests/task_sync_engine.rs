//! The task sync engine against an in-memory SystmOne (`test_support::tasks_fake`): what is
//! durable before a request leaves, and how refusals and backoff shape the plan.

use chrono::Local;
use domain::task_link::LinkState;
use domain::{BedLabel, NewTask, PatientName, StaffName, TaskTitle};
use domain::{NhsNumber, SystmOneFailure, TaskId};
use hub::tasksync::engine::{StoreAccess, TaskSyncEngine};
use hub::tasksync::planner::Op;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use store::NewPatient;
use store::Store;
use test_support::tasks_fake::{FakeRemote, Fault};

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
    let changes = domain::TaskChanges {
        title: Some(TaskTitle::parse("Bloods x2").unwrap()),
        ..Default::default()
    };
    store
        .with_store(|s| s.edit_task(&actor, task_id, None, &changes))
        .unwrap();
    let plan = engine.plan(&store, now).unwrap();
    let Some(Op::Update { changes, .. }) = plan.iter().find(|op| matches!(op, Op::Update { .. }))
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
    assert!(matches!(r, Err(SystmOneFailure::Refused(_))));
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
    let changes = domain::TaskChanges {
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
