//! Chaos: approved notes are drained into the SystmOne simulator, with faults on (silence,
//! slow replies, garbage, resets, temporary errors), by `hubctl sync` worker processes that
//! are killed with SIGKILL at random moments, many times over. Afterwards every approved note
//! must be in the simulator's record exactly once, the simulator must have seen no throttle
//! violation, and the ward database must pass `PRAGMA integrity_check` — under each of the
//! simulator's behaviour profiles for what real SystmOne may do (how a filed narrative reads
//! back, whether the connection is closed after each reply, what follows a response), every
//! value of each at least once.
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::{FilingRoute, NoteId};
use hub::{DraftInput, Hub, PatientInput};
use rand::{Rng, SeedableRng};
use simulator::profile::{ConnectionMode, NarrativeReadBack, ResponseTerminator};
use simulator::{SimConfig, SimControl, SimProfile, Simulator};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOTES: usize = 8;
const KILL_ROUNDS: usize = 5;

fn sync_command(data_dir: &std::path::Path, addr: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubctl"));
    // Hermetic: the test database's key, never this account's keychain.
    cmd.env("INPATIENT_HUB_DB_KEY", "5a".repeat(32));
    cmd.args(["--data-dir"])
        .arg(data_dir)
        .args(["--demo", "--systmone", addr, "--systmone-timeout", "2"])
        .args([
            "sync",
            "--until-empty",
            "--max-wait",
            "240",
            "--reconcile-grace",
            "2",
            "--retry-base",
            "1",
        ])
        .env_remove("INPATIENT_HUB_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_and_faults_never_lose_or_duplicate_a_note() {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("chaos seed {seed} (rerun with CHAOS_SEED={seed})");
    // Every value of each open behaviour at least once.
    let matrix = [
        (
            NarrativeReadBack::AsSent,
            ConnectionMode::Kept,
            ResponseTerminator::None,
        ),
        (
            NarrativeReadBack::JoinedSpaces,
            ConnectionMode::ClosedAfterReply,
            ResponseTerminator::Newline,
        ),
        (
            NarrativeReadBack::JoinedNewlines,
            ConnectionMode::Kept,
            ResponseTerminator::Eof,
        ),
        (
            NarrativeReadBack::NarrativePerLine,
            ConnectionMode::ClosedAfterReply,
            ResponseTerminator::None,
        ),
    ];
    for (i, (narrative, connection, terminator)) in matrix.into_iter().enumerate() {
        let profile = SimProfile {
            narrative,
            connection,
            terminator,
            ..SimProfile::default()
        };
        eprintln!("chaos under {profile:?}");
        chaos_under(profile, seed.wrapping_add(i as u64)).await;
    }
}

async fn chaos_under(profile: SimProfile, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let sim_dir = tempfile::tempdir().unwrap();
    let mut config = SimConfig::new(sim_dir.path().to_path_buf());
    config.port = 0;
    config.profile = profile;
    config.seed = 7;
    config.slow_ms = 1_500;
    config.faults = "drop=0.08,slow=0.08,garbage=0.04,reset=0.04,temporary=0.08"
        .parse()
        .unwrap();
    let sim = Simulator::start(config).await.unwrap();
    let addr = sim.addr().to_string();
    let control = SimControl::open(sim.data_dir()).unwrap();
    let patients = control.patients(4).unwrap();

    // Approve the notes straight through the core (no SystmOne needed to approve).
    let data = tempfile::tempdir().unwrap();
    let mut references = Vec::new();
    {
        let hub = Hub::open_with_key(
            data.path(),
            &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            hub::DatabaseEnvironment::Demo,
        )
        .unwrap();
        // Approving for the API needs a verified role: stand in SystmOne's logged-on doctor.
        hub.assume_systmone_user_for_tests(Some(hub::SystmOneUserView {
            name: "Dr Chaos".into(),
            user_name: Some("dr.chaos".into()),
            role: Some("Consultant".into()),
        }));
        let mut ids = Vec::new();
        for (i, p) in patients.iter().enumerate() {
            let patient = hub
                .add_patient(&PatientInput {
                    bed: format!("Bed {i}"),
                    name: p.name.clone(),
                    nhs_number: Some(p.nhs_number.clone()),
                })
                .unwrap();
            ids.push((patient.id, p.nhs_number.clone()));
        }
        for n in 0..NOTES {
            let (patient_id, nhs) = &ids[n % ids.len()];
            let text = format!(
                "Chaos note {n}: reviewed <obs> & \"meds\"; {}",
                "long line ".repeat(30)
            );
            let note = hub
                .create_note(&DraftInput {
                    patient_id: patient_id.0,
                    text: Some(text),
                    ..Default::default()
                })
                .unwrap();
            let preview = hub.preview_note(NoteId(note.id.0)).unwrap();
            hub.approve_note(note.id, Some(&preview.text_sha256), Some(FilingRoute::Api))
                .unwrap();
            references.push((nhs.clone(), note.reference.clone()));
        }
    }

    // Start workers and kill them at random moments.
    for round in 0..KILL_ROUNDS {
        let mut child = sync_command(data.path(), &addr).spawn().unwrap();
        let delay = Duration::from_millis(rng.gen_range(300..3_500));
        tokio::time::sleep(delay).await;
        let _ = child.kill(); // SIGKILL on Unix, TerminateProcess on Windows.
        let _ = child.wait();
        eprintln!("round {round}: killed after {delay:?}");
    }

    // Let a worker finish. Killed workers' claims expire and are reconciled by reading back.
    let started = Instant::now();
    let mut last_err = String::new();
    let mut finished = false;
    while started.elapsed() < Duration::from_secs(300) {
        let out = sync_command(data.path(), &addr).output().unwrap();
        if out.status.success() {
            finished = true;
            break;
        }
        last_err = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("sync not finished yet: {last_err}");
    }
    assert!(finished, "the outbox never drained: {last_err}");

    for (nhs, reference) in &references {
        let events = control.filed_events(nhs, false).unwrap();
        let copies = events
            .iter()
            .filter(|e| e.narrative.lines().any(|l| l.ends_with(reference.as_str())))
            .count();
        assert_eq!(
            copies, 1,
            "note {reference} for {nhs} must be filed exactly once (seed {seed})"
        );
    }
    assert_eq!(
        control.violation_count().unwrap(),
        0,
        "no throttle violations (seed {seed})"
    );
    let hub = Hub::open_with_key(
        data.path(),
        &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        hub::DatabaseEnvironment::Demo,
    )
    .unwrap();
    assert_eq!(hub.store().integrity_check().unwrap(), "ok");
    let outbox = hub.outbox(false).unwrap();
    assert!(outbox.is_empty(), "nothing left or parked: {outbox:?}");
    sim.shutdown().await;
}
