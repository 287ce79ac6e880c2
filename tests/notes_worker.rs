//! The case-note filing worker against an in-memory SystmOne record
//! (`test_support::notes_fake`): order, lost answers reconciled by reading back, poison
//! entries parked, unavailability, hung requests, and "file now" first.

use domain::{BedLabel, FilingRoute, NoteBody, NoteId, PatientName, Role};
use domain::{NhsNumber, SystmOneFailure};
use hub::notes::worker::{drain_until_empty, run_worker_once, WorkerStep};
use hub::notes::{FiledEntry, OutboxState, Policy, RecordWriter, WorkerConfig};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use store::NewPatient;
use store::Store;
use test_support::notes_fake::{FakeRecord, Fault};

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn store_with_notes(n: usize) -> (Mutex<Store>, Vec<(NoteId, String)>) {
    notes_in(Store::open_in_memory().unwrap(), n)
}

fn notes_in(mut store: Store, n: usize) -> (Mutex<Store>, Vec<(NoteId, String)>) {
    let p = store
        .add_patient(
            "Nurse A",
            &NewPatient {
                bed: BedLabel::parse("Bed 1").unwrap(),
                name: PatientName::parse("Pat One").unwrap(),
                nhs_number: Some(NhsNumber::parse("9434765919").unwrap()),
            },
        )
        .unwrap();
    let mut notes = Vec::new();
    for i in 0..n {
        let note = store
            .create_note(
                "Nurse A",
                p.id,
                None,
                &NoteBody::parse(&format!("Note {i}.")).unwrap(),
                None,
            )
            .unwrap();
        let note = store
            .approve_note(
                "Nurse A",
                Role::Registered,
                note.id,
                None,
                false,
                FilingRoute::Api,
            )
            .unwrap();
        notes.push((note.id, domain::render::reference_line(&note.reference)));
    }
    (Mutex::new(store), notes)
}

fn cfg() -> WorkerConfig {
    WorkerConfig {
        worker_name: "test".into(),
        call_timeout: Duration::from_secs(5),
        lease_margin: Duration::from_millis(100),
        policy: Policy {
            reconcile_grace: chrono::Duration::milliseconds(20),
            backoff_base: chrono::Duration::milliseconds(10),
            backoff_max: chrono::Duration::milliseconds(40),
            max_attempts: 8,
        },
    }
}

fn state_of(store: &Mutex<Store>, note: NoteId) -> OutboxState {
    lock(store)
        .outbox_entry_for_note(note)
        .unwrap()
        .unwrap()
        .state
}

#[tokio::test]
async fn files_in_order_and_the_record_holds_each_once() {
    let (store, notes) = store_with_notes(3);
    let fake = FakeRecord::new();
    let report = drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.filed.len(), 3);
    let sent = fake.send_log();
    assert_eq!(
        sent,
        notes.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        "oldest first"
    );
    for (id, reference) in &notes {
        assert_eq!(fake.copies(reference), 1);
        let note = lock(&store).note(*id).unwrap();
        assert_eq!(note.status, domain::NoteStatus::Filed);
    }
}

#[tokio::test]
async fn a_lost_answer_is_reconciled_not_resent() {
    let (store, notes) = store_with_notes(2);
    let fake = FakeRecord::new();
    // First note: applied but no answer. Second: dropped with no answer.
    fake.script([Fault::TimeoutApplied, Fault::TimeoutNotApplied]);
    let report = drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.still_pending, 0);
    assert_eq!(fake.copies(&notes[0].1), 1);
    assert_eq!(fake.copies(&notes[1].1), 1);
    assert!(matches!(
        state_of(&store, notes[0].0),
        OutboxState::Filed {
            how: domain::FiledHow::Reconciled,
            ..
        }
    ));
    assert!(matches!(
        state_of(&store, notes[1].0),
        OutboxState::Filed {
            how: domain::FiledHow::Api,
            ..
        }
    ));
    assert_eq!(
        fake.sends(),
        3,
        "one send each, plus one resend of the dropped one only"
    );
    assert_eq!(fake.reads(), 2);
}

#[tokio::test]
async fn a_poison_entry_is_parked_and_the_rest_continue() {
    let (store, notes) = store_with_notes(3);
    let fake = FakeRecord::new();
    fake.poison(&notes[0].1, Fault::Permanent);
    fake.poison(&notes[1].1, Fault::Temporary);
    let report = drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(report.filed.len(), 1);
    assert_eq!(fake.copies(&notes[2].1), 1);
    assert_eq!(report.parked.len(), 2, "{report:?}");
    assert!(report
        .parked
        .iter()
        .any(|(_, why)| why.contains("patient not found")));
    let temp = lock(&store)
        .outbox_entry_for_note(notes[1].0)
        .unwrap()
        .unwrap();
    assert_eq!(temp.attempts, cfg().policy.max_attempts);
    assert!(temp.last_error.unwrap().contains("open on this PC"));
}

/// Regression (issue 11): the worker sent the stored lines without checking them against
/// the approved SHA-256, so text changed after approval would have been filed.
#[tokio::test]
async fn text_changed_after_approval_is_parked_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.sqlite");
    let (store, notes) = notes_in(
        Store::open(
            &path,
            &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        )
        .unwrap(),
        2,
    );
    // Someone edits the queued text behind the app's back.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "5a".repeat(32)))
        .unwrap();
    let changed = raw
        .execute(
            "UPDATE outbox SET payload = replace(payload, 'Note 0.', 'Note 0 (edited).')",
            [],
        )
        .unwrap();
    assert_eq!(
        changed, 2,
        "both rows rewritten (only the first text changes)"
    );
    let fake = FakeRecord::new();
    let report = drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        fake.copies(&notes[0].1),
        0,
        "the edited note never reaches SystmOne"
    );
    assert_eq!(fake.copies(&notes[1].1), 1);
    assert_eq!(report.parked.len(), 1, "{report:?}");
    assert!(report.parked[0]
        .1
        .contains("no longer matches what was approved"));
}

#[tokio::test]
async fn unavailable_stops_the_drain_without_counting_attempts() {
    let (store, notes) = store_with_notes(2);
    let fake = FakeRecord::new();
    fake.script([Fault::Unavailable]);
    let report = drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(report.unavailable.unwrap().contains("not logged in"));
    assert_eq!(report.still_pending, 2);
    let entry = lock(&store)
        .outbox_entry_for_note(notes[0].0)
        .unwrap()
        .unwrap();
    assert_eq!((entry.state, entry.attempts), (OutboxState::Queued, 0));
    let report = drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.filed.len(), 2);
}

/// A writer that never answers: the worker's own timeout makes the outcome unknown.
struct Hangs;
impl RecordWriter for Hangs {
    async fn file_narrative(
        &self,
        _: &NhsNumber,
        _: &[String],
        _: bool,
    ) -> Result<FiledEntry, SystmOneFailure> {
        std::future::pending().await
    }
    async fn find_entered_today(
        &self,
        _: &NhsNumber,
        _: &str,
    ) -> Result<Option<FiledEntry>, SystmOneFailure> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hung_request_times_out_into_unknown() {
    let (store, notes) = store_with_notes(1);
    let mut c = cfg();
    c.call_timeout = Duration::from_millis(30);
    let step = run_worker_once(&store, &Hangs, &c).await.unwrap();
    assert!(
        matches!(
            step,
            WorkerStep::Worked {
                state: OutboxState::Unknown { .. },
                ..
            }
        ),
        "{step:?}"
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    // The read-back hangs too: still unknown, never resent blindly.
    let step = run_worker_once(&store, &Hangs, &c).await.unwrap();
    assert!(
        matches!(
            step,
            WorkerStep::Worked {
                state: OutboxState::Unknown { .. },
                ..
            }
        ),
        "{step:?}"
    );
    let fake = FakeRecord::new();
    tokio::time::sleep(Duration::from_millis(60)).await;
    drain_until_empty(&store, &fake, &c, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(fake.copies(&notes[0].1), 1);
    assert_eq!(fake.reads(), 1);
}

#[tokio::test]
async fn file_now_goes_first_in_the_interactive_lane() {
    let (store, notes) = store_with_notes(3);
    let entry = lock(&store)
        .outbox_entry_for_note(notes[2].0)
        .unwrap()
        .unwrap();
    lock(&store)
        .file_outbox_entry_now("Nurse A", entry.id)
        .unwrap();
    let fake = FakeRecord::new();
    drain_until_empty(&store, &fake, &cfg(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(fake.send_log()[0], notes[2].1);
    let events = fake.events();
    assert!(events[0].interactive && !events[1].interactive);
}

#[test]
fn the_lease_covers_a_read_back_and_a_send() {
    let c = WorkerConfig::new("hub");
    assert!(c.lease() > chrono::Duration::from_std(c.call_timeout * 2).unwrap());
}
