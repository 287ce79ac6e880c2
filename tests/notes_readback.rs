//! Regression for issue 10's duplicate note: six two-line notes are approved and drained
//! through the real `SystmOneRecordWriter` into the simulator with every third reply lost
//! (the update applied, the answer never seen). Real SystmOne reads an entry back with its
//! lines joined into one padded Line (or otherwise reshaped), and the old read-back, which
//! wanted a Line *equal to* the reference line, never found the filed note, so it was filed
//! again. Under every narrative profile each note must be in the record exactly once.
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::{
    BedLabel, FilingRoute, NhsNumber, NoteBody, NoteId, PatientName, Role, SystmOneFailure,
};
use hub::notes::worker::drain_until_empty;
use hub::notes::{FiledEntry, Policy, RecordWriter, WorkerConfig};
use hub::SystmOneRecordWriter;
use simulator::profile::{NarrativeReadBack, SimProfile};
use simulator::{SimConfig, Simulator};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use store::{NewPatient, Store};
use systmone::client::{ClientConfig, SystmOneClient};
use systmone::secrets::ApiKey;

const NOTES: usize = 6;

/// Files through `inner`, but loses SystmOne's answer to every third update after it was
/// applied: what a silent drop or a reset after the write looks like to the app.
struct LosingEveryThirdReply<W> {
    inner: W,
    sends: AtomicUsize,
    lost: AtomicUsize,
    /// The notes (by their reference line) whose reply was lost after SystmOne applied them.
    lost_notes: Mutex<Vec<String>>,
    /// Sends of a note whose earlier reply was lost: the read-back must make this zero.
    resent_after_loss: AtomicUsize,
}

impl<W: RecordWriter + Send> RecordWriter for LosingEveryThirdReply<W> {
    async fn file_narrative(
        &self,
        nhs: &NhsNumber,
        lines: &[String],
        interactive: bool,
    ) -> Result<FiledEntry, SystmOneFailure> {
        let reference = lines
            .iter()
            .find(|l| l.starts_with("Inpatient Hub ref"))
            .cloned()
            .unwrap_or_default();
        if self.lost_notes.lock().unwrap().contains(&reference) {
            self.resent_after_loss.fetch_add(1, Ordering::SeqCst);
        }
        let n = self.sends.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = self.inner.file_narrative(nhs, lines, interactive).await;
        if n.is_multiple_of(3) && answer.is_ok() {
            self.lost.fetch_add(1, Ordering::SeqCst);
            self.lost_notes.lock().unwrap().push(reference);
            return Err(SystmOneFailure::MaybeSent);
        }
        answer
    }

    async fn find_entered_today(
        &self,
        nhs: &NhsNumber,
        reference_line: &str,
    ) -> Result<Option<FiledEntry>, SystmOneFailure> {
        self.inner.find_entered_today(nhs, reference_line).await
    }
}

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        worker_name: "readback-test".into(),
        call_timeout: Duration::from_secs(10),
        lease_margin: Duration::from_secs(2),
        policy: Policy {
            reconcile_grace: chrono::Duration::milliseconds(50),
            backoff_base: chrono::Duration::milliseconds(50),
            backoff_max: chrono::Duration::milliseconds(200),
            max_attempts: 10,
        },
    }
}

async fn six_notes_filed_once_under(narrative: NarrativeReadBack) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SimConfig::new(dir.path().join("sim"));
    config.port = 0;
    config.profile = SimProfile {
        narrative,
        ..SimProfile::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    let control = sim.control().unwrap();
    let nhs = NhsNumber::parse(&control.patients(1).unwrap()[0].nhs_number).unwrap();

    // Six approved two-line notes for one linked patient.
    let db = dir.path().join("hub").join("inpatient-hub.sqlite");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut store = Store::open(
        &db,
        &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
    )
    .unwrap();
    let patient = store
        .add_patient(
            "Nurse A",
            &NewPatient {
                bed: BedLabel::parse("Bed 1").unwrap(),
                name: PatientName::parse("Pat One").unwrap(),
                nhs_number: Some(nhs.clone()),
            },
        )
        .unwrap();
    let mut notes: Vec<(NoteId, String)> = Vec::new();
    for i in 0..NOTES {
        let body = NoteBody::parse(&format!(
            "Ward round {i}: comfortable overnight.\nPlan {i}: continue, review tomorrow."
        ))
        .unwrap();
        let note = store
            .create_note("Nurse A", patient.id, None, &body, None)
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
    let store = Mutex::new(store);

    let client = SystmOneClient::start(
        ClientConfig::new(sim.addr()),
        ApiKey::parse(simulator::DEFAULT_API_KEY).unwrap(),
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
    let writer = LosingEveryThirdReply {
        inner: SystmOneRecordWriter::new(client),
        sends: AtomicUsize::new(0),
        lost: AtomicUsize::new(0),
        lost_notes: Mutex::new(Vec::new()),
        resent_after_loss: AtomicUsize::new(0),
    };
    let report = drain_until_empty(&store, &writer, &worker_config(), Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(report.still_pending, 0, "{narrative:?}: {report:?}");
    // Every third successful reply is lost (a send SystmOne itself failed under load is not
    // turned into a loss, so on a busy machine one of the two may not happen).
    assert!(
        writer.lost.load(Ordering::SeqCst) >= 1,
        "{narrative:?}: no reply was lost, so the read-back was never exercised"
    );

    // Each note is in SystmOne's record exactly once.
    let filed = control.filed_events(&nhs.digits(), false).unwrap();
    for (note_id, reference) in &notes {
        let copies = filed
            .iter()
            .filter(|e| e.narrative.lines().any(|l| l == reference))
            .count();
        assert_eq!(
            copies, 1,
            "{narrative:?}: note {note_id:?} is in the record {copies} times"
        );
    }
    assert_eq!(filed.len(), NOTES, "{narrative:?}");
    // A lost reply is settled by reading back, never by sending again. (Counting every call
    // would be wrong: on a busy machine a call can fail before anything reaches SystmOne — the
    // peer not yet identified, the queue timing out — and that note is rightly tried again.)
    assert_eq!(
        writer.resent_after_loss.load(Ordering::SeqCst),
        0,
        "{narrative:?}: a note whose reply was lost was sent again instead of read back"
    );
    assert!(writer.sends.load(Ordering::SeqCst) >= NOTES);
    let violations = control.violation_count().unwrap();
    if violations > 0 {
        let log = control.request_log(500).unwrap();
        let requests: Vec<String> = log
            .iter()
            .map(|e| {
                format!(
                    "{} c{} {} {} {:?}",
                    e.at, e.connection, e.function, e.outcome, e.detail
                )
            })
            .collect();
        panic!("{narrative:?}: {violations} throttle violation(s) in: {requests:?}");
    }
    sim.shutdown().await;
}

// Eight worker threads for four simulators and four clients in one process: the simulators
// and the stores do blocking SQLite work on their tasks, and with too few threads one
// simulator's reading of a request waits behind another's disk write, so it would time the
// request's arrival late and see the next one "too soon" (a measurement artefact, not a send
// that broke TPP's limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_lost_reply_never_files_a_note_twice_whatever_the_read_back_shape() {
    // Independent simulators and databases: the four profiles run side by side.
    let runs = SimProfile::NARRATIVES.map(|n| tokio::spawn(six_notes_filed_once_under(n)));
    for run in runs {
        run.await.unwrap();
    }
}
