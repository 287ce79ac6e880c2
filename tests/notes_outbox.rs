//! Case notes end to end on a real on-disk store: approve many notes, drain the outbox
//! through a fake SystmOne that loses answers (after or before applying the write), asks for
//! retries, refuses some notes for good, and through process "deaths" (entries left in
//! `Sending`, the Store dropped and reopened mid-drain). Every approved note must end up in
//! the record exactly once, or parked and reported. Then two workers (two Stores on one file,
//! two threads) drain concurrently and never send one entry twice.

use domain::{BedLabel, FilingRoute, NhsNumber, NoteId, NoteStatus, PatientName, Role, StaffName};
use hub::notes::outbox_machine::{OutboxState, Policy};
use hub::notes::{self, DraftSource, RecordWriter, WorkerConfig};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{NewPatient, Store};
use test_support::notes_fake::{FakeRecord, Fault, FaultRates, ReadBack};

const NHS: [&str; 3] = ["9434765919", "4010232137", "9990000034"];

fn config(name: &str) -> WorkerConfig {
    WorkerConfig {
        worker_name: name.into(),
        call_timeout: Duration::from_millis(500),
        lease_margin: Duration::from_millis(100),
        policy: Policy {
            reconcile_grace: chrono::Duration::milliseconds(15),
            backoff_base: chrono::Duration::milliseconds(5),
            backoff_max: chrono::Duration::milliseconds(30),
            max_attempts: 40,
        },
    }
}

/// Approves `n` notes spread over three linked patients; returns (note, reference line).
fn approve_notes(path: &Path, n: usize) -> Vec<(NoteId, String)> {
    let mut store = Store::open(
        path,
        &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
    )
    .unwrap();
    let actor = StaffName::parse("Nurse Able").unwrap();
    let mut patients = Vec::new();
    for (i, nhs) in NHS.iter().enumerate() {
        let nhs = NhsNumber::parse(nhs).unwrap();
        let p = match store.patient_by_nhs_number(&nhs).unwrap() {
            Some(p) => p,
            None => store
                .add_patient(
                    actor.as_str(),
                    &NewPatient {
                        bed: BedLabel::parse(&format!("Bed {i}")).unwrap(),
                        name: PatientName::parse(&format!("Patient {i}")).unwrap(),
                        nhs_number: Some(nhs),
                    },
                )
                .unwrap(),
        };
        patients.push(p.id);
    }
    (0..n)
        .map(|i| {
            let text = format!(
                "Note {i}: settled, <eating> & drinking.\n\n{}",
                "long paragraph ".repeat(i % 15)
            );
            let note = notes::create_draft(
                &mut store,
                &actor,
                patients[i % patients.len()],
                DraftSource::Text(&text),
            )
            .unwrap();
            let preview = notes::preview(&mut store, note.id).unwrap();
            let approved = notes::approve(
                &mut store,
                &actor,
                Role::Registered,
                note.id,
                Some(&preview.text_sha256),
                FilingRoute::Api,
            )
            .unwrap();
            assert_eq!(approved.note.status, NoteStatus::Approved);
            (note.id, preview.lines.last().unwrap().clone())
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Under every shape real SystmOne may read an entry back in (lines as sent, joined by
/// spaces or newlines into one padded Line, one Narrative per line): reconciliation finds each
/// filed note, so none is filed twice.
#[test]
fn every_approved_note_is_filed_exactly_once_through_faults_and_restarts() {
    for read_back in ReadBack::ALL {
        filed_exactly_once_through_faults_and_restarts(read_back);
    }
}

fn filed_exactly_once_through_faults_and_restarts(read_back: ReadBack) {
    eprintln!("read-back shape: {read_back:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite");
    let notes_filed = approve_notes(&path, 30);
    let poisoned = [notes_filed[4].1.clone(), notes_filed[17].1.clone()];
    let fake = FakeRecord::new()
        .with_read_back(read_back)
        .with_random_faults(
            7,
            FaultRates {
                timeout_applied: 0.15,
                timeout_not_applied: 0.1,
                temporary: 0.15,
                read_failure: 0.1,
            },
        );
    for reference in &poisoned {
        fake.poison(reference, Fault::Permanent);
    }
    let cfg = config("hub");
    let rt = runtime();
    let mut crashes_applied = 0;
    for round in 0..12 {
        // A fresh process: reopen the database.
        let store = Mutex::new(
            Store::open(
                &path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
        );
        rt.block_on(async {
            for _ in 0..(2 + round % 4) {
                notes::run_worker_once(&store, &fake, &cfg).await.unwrap();
            }
            // Die mid-request: a claim is committed and the request sent, but the process is
            // killed before the reply is recorded — after SystmOne applied it on even rounds.
            let claim = store
                .lock()
                .unwrap()
                .claim_next_outbox_entry(
                    "doomed#1",
                    chrono::Duration::milliseconds(20),
                    &cfg.policy,
                )
                .unwrap();
            if let Some(claim) = claim {
                if round % 2 == 0 && !claim.reconcile_first {
                    let nhs = claim.entry.payload.nhs_number.clone().unwrap();
                    let _ = fake
                        .file_narrative(&nhs, claim.entry.payload.lines.expose(), false)
                        .await;
                    crashes_applied += 1;
                }
            }
            // Killed while awaiting SystmOne's answer: the worker future is dropped mid-call.
            let slow = FakeRecord::new().with_latency(Duration::from_millis(200));
            let _ = tokio::time::timeout(
                Duration::from_millis(10),
                notes::run_worker_once(&store, &slow, &cfg),
            )
            .await;
            assert!(slow.events().is_empty());
        });
        drop(store);
    }
    assert!(crashes_applied > 0);

    // SystmOne behaves again; a last process drains everything.
    fake.calm();
    let store = Mutex::new(
        Store::open(
            &path,
            &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        )
        .unwrap(),
    );
    let report = rt
        .block_on(notes::drain_until_empty(
            &store,
            &fake,
            &cfg,
            Duration::from_secs(20),
        ))
        .unwrap();
    assert_eq!(report.still_pending, 0, "{report:?}");
    assert!(report.unavailable.is_none());

    let store = store.into_inner().unwrap();
    for (note_id, reference) in &notes_filed {
        let entry = store.outbox_entry_for_note(*note_id).unwrap().unwrap();
        if poisoned.contains(reference) {
            assert_eq!(fake.copies(reference), 0);
            assert!(
                matches!(&entry.state, OutboxState::Parked { reason, .. } if reason.contains("patient not found")),
                "{:?}",
                entry.state
            );
        } else {
            assert_eq!(
                fake.copies(reference),
                1,
                "note {note_id} ({:?}) is in the record {} times",
                entry.state,
                fake.copies(reference)
            );
            assert!(
                matches!(entry.state, OutboxState::Filed { .. }),
                "{:?}",
                entry.state
            );
            let note = store.note(*note_id).unwrap();
            assert_eq!(note.status, NoteStatus::Filed);
            // The record holds exactly the approved text.
            let event = fake
                .events()
                .into_iter()
                .find(|e| e.lines.last() == Some(reference))
                .unwrap();
            assert_eq!(
                hub::notes::render::text_sha256(&event.lines),
                note.text_sha256.unwrap()
            );
        }
    }
    let views = notes::outbox_entries(&store, true).unwrap();
    let parked: Vec<_> = views.iter().filter(|v| v.state_kind == "parked").collect();
    assert_eq!(parked.len(), 2, "parked entries are reported");
    assert!(parked
        .iter()
        .all(|v| v.status_text.starts_with("needs attention")));
    assert!(fake.concurrent_sends().is_empty());
    let reconciled = notes_filed
        .iter()
        .filter(|(id, _)| store.note(*id).unwrap().filed_how == Some(domain::FiledHow::Reconciled))
        .count();
    assert!(
        reconciled > 0 && fake.reads() > 0,
        "the faults must have exercised reconciliation"
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn two_workers_on_one_file_never_send_the_same_entry_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite");
    let notes_filed = approve_notes(&path, 40);
    let fake = Arc::new(FakeRecord::new().with_latency(Duration::from_millis(3)));
    let start = Arc::new(std::sync::Barrier::new(2));
    let workers: Vec<_> = ["hub", "hubctl"]
        .into_iter()
        .map(|name| {
            let fake = Arc::clone(&fake);
            let start = Arc::clone(&start);
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Mutex::new(
                    Store::open(
                        &path,
                        &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
                    )
                    .unwrap(),
                );
                start.wait();
                let cfg = config(name);
                runtime()
                    .block_on(notes::drain_until_empty(
                        &store,
                        &*fake,
                        &cfg,
                        Duration::from_secs(30),
                    ))
                    .unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let filed: usize = reports.iter().map(|r| r.filed.len()).sum();
    assert_eq!(filed, notes_filed.len());
    assert!(
        reports.iter().all(|r| !r.filed.is_empty()),
        "both workers took part: {reports:?}"
    );
    let log = fake.send_log();
    assert_eq!(
        log.len(),
        notes_filed.len(),
        "each entry sent once, no more"
    );
    for (_, reference) in &notes_filed {
        assert_eq!(fake.copies(reference), 1);
    }
    assert!(fake.concurrent_sends().is_empty());
}
