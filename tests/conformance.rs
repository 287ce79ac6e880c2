//! The conformance kit (`hubctl conformance`) against the SystmOne simulator, through the hub
//! as `hubctl` runs it (demo mode, TPP's real pacing): the probe must pass under each of the
//! simulator's behaviour profiles, clean up after itself, keep TPP's throttle, and write a
//! profile that tells the simulator's profiles apart. Four runs cover every value of every
//! profile dimension (not their cross product); they run in parallel, each with its own
//! simulator and ward database.

use hub::conformance::{
    Consent, DeleteOwnEntries, DueTime, NarrativeShape, ObservedProfile, PeerKind, ProbeOptions,
    Reporting, StatusUpdate, TaskContentShape, TextRoundTrip, UpdateUids,
};
use hub::Hub;
use simulator::profile::{
    ConnectionMode, NarrativeReadBack, ResponseTerminator, TaskDetailsInReads, TaskStatusUpdate,
};
use simulator::{SimConfig, SimHandle, SimProfile, Simulator};
use std::time::Instant;

/// A fictitious patient (the never-issued 999 range).
const SIAN: &str = "9990000018";

async fn simulator(dir: &std::path::Path, profile: SimProfile) -> SimHandle {
    let mut config = SimConfig::new(dir.join("sim"));
    config.port = 0;
    config.profile = profile;
    Simulator::start(config)
        .await
        .expect("the simulator starts")
}

/// A hub as `hubctl --demo` opens it: the ward database, the simulator's address.
fn hub(dir: &std::path::Path, sim: &SimHandle) -> Hub {
    let data = dir.join("hub");
    std::fs::create_dir_all(&data).unwrap();
    let mut hub = Hub::open_with_key(
        &data,
        &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        hub::DatabaseEnvironment::Demo,
    )
    .unwrap();
    hub.set_current_user("IT Conformance").unwrap();
    hub.start_systmone(sim.addr()).unwrap();
    hub
}

const YES: Consent = Consent {
    writes_confirmed: true,
    not_obviously_test_patient_confirmed: false,
};

/// Runs the probe under `profile`; checks it passed, kept the throttle and left nothing in
/// the record; returns what it observed.
async fn probe_under(profile: SimProfile) -> ObservedProfile {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), profile).await;
    let control = sim.control().unwrap();
    let hub = hub(dir.path(), &sim);
    let events_before = control.filed_events(SIAN, true).unwrap().len();
    let tasks_before = control.tasks(SIAN).unwrap().len();

    let started = Instant::now();
    let target = hub.conformance_target(SIAN).await.unwrap();
    assert_eq!(target.peer, PeerKind::Simulator);
    assert!(
        target.looks_like_test_patient,
        "{:?}",
        target.test_patient_reasons
    );
    assert!(target.missing_functions.is_empty());
    assert!(target.user_name.is_some(), "the logged-in user is named");
    assert_eq!(target.patient.nhs_number, "999 000 0018");
    let report = hub
        .conformance_probe(&target, YES, &ProbeOptions::default())
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!(
        "{profile:?}: {:.1} s\n{}",
        took.as_secs_f64(),
        report.to_text()
    );

    assert!(report.passed, "{}", report.to_text());
    assert!(report.cleanup.left.is_empty(), "{:?}", report.cleanup);
    assert_eq!(report.cleanup.removed.len(), 2, "{:?}", report.cleanup);
    // Nothing the probe added is left in the simulated record.
    let events = control.filed_events(SIAN, true).unwrap();
    assert_eq!(events.len(), events_before, "the test note was removed");
    assert!(events
        .iter()
        .all(|e| !e.narrative.contains(&report.reference)));
    let tasks = control.tasks(SIAN).unwrap();
    assert_eq!(tasks.len(), tasks_before, "the test task was removed");
    assert!(tasks.iter().all(|t| !t.content.contains(&report.reference)));
    // TPP's throttle was kept throughout.
    assert_eq!(control.violation_count().unwrap(), 0);

    // The profile file is what --out writes and --apply reads.
    let json = report.profile.to_json().unwrap();
    let read = ObservedProfile::from_json(&json).unwrap();
    assert_eq!(read, report.profile);
    read
}

fn assert_observed_everywhere(p: &ObservedProfile) {
    assert_eq!(p.peer, PeerKind::Simulator);
    assert!(p
        .site
        .as_deref()
        .is_some_and(|s| s.contains("Inpatient Hub simulator")));
    assert!(p
        .supported_functions
        .iter()
        .any(|f| f == "UpdatePatientRecord"));
    assert_eq!(p.non_ascii_text, TextRoundTrip::RoundTrips);
    assert_eq!(p.update_uids, UpdateUids::MatchReadBack);
    assert_eq!(p.task_content, TaskContentShape::HeaderLine);
    assert_eq!(p.delete_own_entries, DeleteOwnEntries::Deleted);
    // Not observable through the app's client, whatever the simulator does: never guessed.
    let unobservable: Vec<(&str, String)> = p
        .behaviours()
        .into_iter()
        .filter(|(field, _)| {
            matches!(
                *field,
                "connection_after_reply"
                    | "response_terminator"
                    | "encoding_declaration"
                    | "uid_location"
            )
        })
        .collect();
    assert_eq!(unobservable.len(), 4);
    assert!(
        unobservable.iter().all(|(_, v)| v == "unknown"),
        "{unobservable:?}"
    );
}

fn assert_details(p: &ObservedProfile, details: TaskDetailsInReads) {
    match details {
        TaskDetailsInReads::Reported => {
            assert_eq!(p.task_due, Reporting::Reported);
            assert_eq!(p.task_due_time, DueTime::Kept);
            assert_eq!(p.task_assignee, Reporting::Reported);
        }
        TaskDetailsInReads::NotReported => {
            assert_eq!(p.task_due, Reporting::NotReported);
            assert_eq!(p.task_due_time, DueTime::Unknown);
            assert_eq!(p.task_assignee, Reporting::NotReported);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_sent_narrative_status_applied_details_reported() {
    let profile = SimProfile {
        narrative: NarrativeReadBack::AsSent,
        task_status: TaskStatusUpdate::Applied,
        task_details: TaskDetailsInReads::Reported,
        connection: ConnectionMode::Kept,
        terminator: ResponseTerminator::Newline,
    };
    let p = probe_under(profile).await;
    assert_observed_everywhere(&p);
    assert_eq!(p.narrative_read_back, NarrativeShape::AsSent);
    assert_eq!(p.task_status_update, StatusUpdate::Applied);
    assert_details(&p, profile.task_details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_spaces_status_ignored_details_not_reported_connection_closed() {
    // The default profile: the shapes seen in real captures.
    let profile = SimProfile {
        narrative: NarrativeReadBack::JoinedSpaces,
        task_status: TaskStatusUpdate::Ignored,
        task_details: TaskDetailsInReads::NotReported,
        connection: ConnectionMode::ClosedAfterReply,
        terminator: ResponseTerminator::None,
    };
    let p = probe_under(profile).await;
    assert_observed_everywhere(&p);
    assert_eq!(p.narrative_read_back, NarrativeShape::JoinedSpaces);
    assert_eq!(p.task_status_update, StatusUpdate::Ignored);
    assert_details(&p, profile.task_details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_newlines_status_refused_eof_terminator() {
    let profile = SimProfile {
        narrative: NarrativeReadBack::JoinedNewlines,
        task_status: TaskStatusUpdate::Refused,
        task_details: TaskDetailsInReads::Reported,
        connection: ConnectionMode::Kept,
        terminator: ResponseTerminator::Eof,
    };
    let p = probe_under(profile).await;
    assert_observed_everywhere(&p);
    assert_eq!(p.narrative_read_back, NarrativeShape::JoinedNewlines);
    assert_eq!(p.task_status_update, StatusUpdate::Refused);
    assert_details(&p, profile.task_details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrative_per_line_status_applied_details_not_reported() {
    let profile = SimProfile {
        narrative: NarrativeReadBack::NarrativePerLine,
        task_status: TaskStatusUpdate::Applied,
        task_details: TaskDetailsInReads::NotReported,
        connection: ConnectionMode::ClosedAfterReply,
        terminator: ResponseTerminator::Newline,
    };
    let p = probe_under(profile).await;
    assert_observed_everywhere(&p);
    assert_eq!(p.narrative_read_back, NarrativeShape::NarrativePerLine);
    assert_eq!(p.narrative_padding, hub::conformance::Padding::NotPadded);
    assert_eq!(p.task_status_update, StatusUpdate::Applied);
    assert_details(&p, profile.task_details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_without_consent_and_an_applied_profile_reaches_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), SimProfile::default()).await;
    let control = sim.control().unwrap();
    let hub = hub(dir.path(), &sim);
    let target = hub.conformance_target(SIAN).await.unwrap();
    let err = hub
        .conformance_probe(&target, Consent::default(), &ProbeOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("explicit confirmation"), "{err}");
    let err = hub
        .conformance_probe(
            &target,
            YES,
            &ProbeOptions {
                assignee: Some("nobody".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("user:NAME"), "{err}");
    let writes = control
        .request_log(1_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.function == "UpdatePatientRecord" || e.function == "DeletePatientRecord")
        .count();
    assert_eq!(writes, 0, "nothing reached SystmOne's record");

    // --apply: stored (audited) and offered to the app.
    assert_eq!(hub.observed_systmone_profile().unwrap(), None);
    let observed = ObservedProfile {
        task_status_update: StatusUpdate::Ignored,
        ..ObservedProfile::default()
    };
    hub.apply_observed_profile(&observed).unwrap();
    let stored = hub.observed_systmone_profile().unwrap().unwrap();
    assert_eq!(stored.task_status_update, StatusUpdate::Ignored);
    let audit = hub
        .audit(&store::AuditQuery {
            entity: Some("setting".into()),
            entity_id: Some("systmone_observed_profile".into()),
            limit: None,
        })
        .unwrap();
    assert_eq!(audit.len(), 1);
    // The typed name is a label: the row names who really acted (SystmOne's user or the OS
    // account), and always carries the OS account.
    assert_ne!(audit[0].actor, "IT Conformance");
    assert_eq!(audit[0].os_account, Some(hub::os_account().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_cannot_write_says_so_and_leaves_nothing_behind() {
    // The test patient's record is open on the SystmOne screen: background updates are
    // refused for now (a temporary error), so nothing is filed.
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), SimProfile::default()).await;
    let mut control = sim.control().unwrap();
    control.open_patient(SIAN).unwrap();
    let hub = hub(dir.path(), &sim);
    let target = hub.conformance_target(SIAN).await.unwrap();
    let report = hub
        .conformance_probe(&target, YES, &ProbeOptions::default())
        .await
        .unwrap();
    assert!(!report.passed, "{}", report.to_text());
    let failed: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.outcome == hub::conformance::StepOutcome::Failed)
        .map(|s| s.step)
        .collect();
    assert_eq!(failed, ["file note", "create task"], "{}", report.to_text());
    assert!(report.cleanup.left.is_empty() && report.cleanup.removed.is_empty());
    assert_eq!(report.profile.narrative_read_back, NarrativeShape::Unknown);
    assert_eq!(report.profile.task_status_update, StatusUpdate::Unknown);
    assert!(report.to_text().contains("DID NOT PASS"));
    assert!(control
        .filed_events(SIAN, false)
        .unwrap()
        .iter()
        .all(|e| !e.narrative.contains(&report.reference)));
}
