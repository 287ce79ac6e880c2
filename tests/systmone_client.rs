//! The typed SystmOne client against the SystmOne simulator over real TCP, with TPP's real
//! limits (1 s, 30 s): device approval, search, filing a note and reading it back, two
//! processes sharing one budget, and a blocked device. The simulator counts every request
//! it would have dropped for breaking the throttle; that count must stay at zero.

use domain::NhsNumber;
use simulator::{ApprovalMode, SimConfig, SimControl, SimHandle, Simulator};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use store::{SettingKey, Store};
use systmone::client::{ClientConfig, ClientError, Lane, SystmOneClient};
use systmone::codec::{
    Event, FilterFlag, GetPatientRecordParams, Identity, PatientSearchParams, RecordFilter,
    UpdatePatientRecordParams,
};
use systmone::connection::ConnectionState;
use systmone::secrets::ApiKey;

const API_KEY: &str = "f31e26725b5491f2";

async fn simulator(dir: &Path, approval: ApprovalMode) -> SimHandle {
    let mut config = SimConfig::new(dir.join("sim"));
    config.port = 0;
    config.approval = approval;
    Simulator::start(config)
        .await
        .expect("the simulator starts")
}

fn database(dir: &Path) -> PathBuf {
    dir.join("hub").join("inpatient-hub.sqlite")
}

/// A client as the app (or `hubctl`) would start it: its own store connections on the
/// ward database, TPP's pacing, the simulator's address.
fn start_client(sim: &SimHandle, db: &Path) -> SystmOneClient {
    let config = ClientConfig::new(sim.addr());
    let device = Store::open(db, &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap())
        .expect("database opens");
    let ledger = Store::open(db, &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap())
        .expect("database opens");
    SystmOneClient::start(config, ApiKey::parse(API_KEY).unwrap(), device, ledger)
        .expect("client starts")
}

async fn until_user_known(client: &SystmOneClient) -> ConnectionState {
    // The client asks nothing at start; ask who is logged in, as the hub's verified client
    // does before its first real request.
    client
        .organisation(true, Lane::Interactive)
        .await
        .expect("SystmOne answers who is logged in");
    let mut state = client.state();
    let known = |s: &ConnectionState| matches!(s, ConnectionState::Connected { user: Some(_), .. });
    let reached = tokio::time::timeout(Duration::from_secs(15), state.wait_for(known))
        .await
        .expect("SystmOne names the logged-in user")
        .expect("state channel open")
        .clone();
    reached
}

fn first_patient(control: &SimControl) -> (NhsNumber, String, chrono::NaiveDate) {
    let patient = control
        .db()
        .patients()
        .unwrap()
        .into_iter()
        .next()
        .expect("a fictitious patient");
    (
        NhsNumber::parse(&patient.nhs_number).unwrap(),
        patient.surname,
        patient.date_of_birth,
    )
}

/// Arrival times (ms) of every request the simulator logged, oldest first, with function.
fn arrivals(control: &SimControl) -> Vec<(i64, String)> {
    let mut log: Vec<(i64, String)> = control
        .request_log(1_000)
        .unwrap()
        .into_iter()
        .map(|e| (e.at.and_utc().timestamp_millis(), e.function))
        .collect();
    log.sort();
    log
}

fn smallest_gap_ms(arrivals: &[(i64, String)]) -> i64 {
    arrivals
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .min()
        .unwrap_or(i64::MAX)
}

#[tokio::test]
async fn approves_the_device_files_a_note_once_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Auto).await;
    let control = sim.control().unwrap();
    let db = database(dir.path());
    let client = start_client(&sim, &db);

    // First contact: empty DeviceID, approved, the issued ID saved in the database.
    match until_user_known(&client).await {
        ConnectionState::Connected {
            user: Some(user), ..
        } => assert!(!user.name.is_empty()),
        other => panic!("{other:?}"),
    }
    let saved = Store::open(
        &db,
        &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
    )
    .unwrap()
    .setting(SettingKey::SystmOneDeviceId)
    .unwrap()
    .expect("DeviceID saved");
    let devices = control.devices().unwrap();
    assert_eq!(devices.len(), 1, "one approval, then the saved ID is used");
    assert_eq!(devices[0].device_id, saved);

    let (nhs, surname, date_of_birth) = first_patient(&control);
    let search = PatientSearchParams {
        surname: Some(surname),
        date_of_birth: Some(date_of_birth),
        ..Default::default()
    };
    let found = client
        .patient_search(search, Lane::Interactive)
        .await
        .unwrap();
    assert!(found
        .results
        .iter()
        .any(|r| r.identity.as_ref().map(|i| i.id.clone())
            == Some(systmone::codec::PatientIdentifier::NhsNumber(nhs.clone()))));

    let demographics = RecordFilter::with_flags([FilterFlag::Demographics]);
    let record = client
        .patient_record(&nhs, Some(demographics), Lane::Interactive)
        .await
        .unwrap();
    assert!(record.demographics.is_some());

    let text = format!("Integration test note {}", uuid::Uuid::new_v4());
    let update = UpdatePatientRecordParams::new(Identity::nhs(nhs.clone()))
        .with_event(Event::narrative(&text));
    let filed = client
        .update_record(update, Lane::Interactive)
        .await
        .unwrap();
    assert_eq!(filed.event_uids.len(), 1);

    let today = chrono::Local::now().date_naive();
    let read_back = GetPatientRecordParams::entered_on(
        Some(Identity::nhs(nhs.clone())),
        today,
        [FilterFlag::Narrative],
    );
    let record = client
        .patient_record_with(read_back, Lane::Background)
        .await
        .unwrap();
    assert!(record
        .events
        .iter()
        .any(|e| e.narrative_text().contains(&text)));

    let copies = control
        .filed_events(&nhs.digits(), true)
        .unwrap()
        .iter()
        .filter(|e| e.narrative.contains(&text))
        .count();
    assert_eq!(copies, 1, "filed exactly once");
    assert_eq!(
        control.violation_count().unwrap(),
        0,
        "nothing was sent faster than TPP allows"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn two_processes_on_one_database_share_tpps_budget() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Auto).await;
    let control = sim.control().unwrap();
    let db = database(dir.path());
    // The app, approved first; then a `hubctl` run on the same database.
    let app = start_client(&sim, &db);
    until_user_known(&app).await;
    let hubctl = start_client(&sim, &db);
    until_user_known(&hubctl).await;

    let started = Instant::now();
    let mut calls = Vec::new();
    for client in [app.clone(), hubctl.clone()] {
        for lane in [Lane::Interactive, Lane::Background, Lane::Background] {
            let client = client.clone();
            calls.push(tokio::spawn(
                async move { client.current_activity(lane).await },
            ));
        }
    }
    for call in calls {
        call.await
            .unwrap()
            .expect("answered: nothing was throttled");
    }
    // Six requests from two processes need at least five gaps of a second.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(control.violation_count().unwrap(), 0);
    let log = arrivals(&control);
    let gap = smallest_gap_ms(&log);
    eprintln!(
        "two processes: {} requests, smallest gap between arrivals {gap} ms",
        log.len()
    );
    assert!(gap >= 1_000, "{log:?}");
    assert_eq!(
        control.devices().unwrap().len(),
        1,
        "both processes used the saved DeviceID"
    );
    sim.shutdown().await;
}

/// A clinician's request from one process while another drains a backlog: it takes the
/// next free slot, ahead of the rest of the backlog (with first-come booking it went after
/// the backlog's next request, which had already booked its slot ahead).
#[tokio::test]
async fn a_clinician_in_one_process_goes_before_another_process_s_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Auto).await;
    let control = sim.control().unwrap();
    let db = database(dir.path());
    let sync = start_client(&sim, &db);
    until_user_known(&sync).await;
    let lookup = start_client(&sim, &db);
    until_user_known(&lookup).await;

    const BACKLOG: usize = 6;
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let drain = {
        let sync = sync.clone();
        tokio::spawn(async move {
            for n in 0..BACKLOG {
                sync.current_activity(Lane::Background)
                    .await
                    .expect("answered: nothing was throttled");
                let _ = answered.send(n);
            }
        })
    };
    // Just after the backlog's second answer its next request is waiting for the slot.
    while answers.recv().await.expect("the drain runs") < 1 {}
    lookup
        .functions(Lane::Interactive)
        .await
        .expect("answered: nothing was throttled");
    drain.await.unwrap();

    let order: Vec<String> = arrivals(&control)
        .into_iter()
        .map(|(_, f)| f)
        .filter(|f| f == "GetCurrentActivity" || f == "GetFunctions")
        .collect();
    let position = order.iter().position(|f| f == "GetFunctions").unwrap();
    assert_eq!(
        position, 2,
        "the clinician's request went right after the two answered: {order:?}"
    );
    assert_eq!(order.len(), BACKLOG + 1);
    assert_eq!(control.violation_count().unwrap(), 0);
    let log = arrivals(&control);
    assert!(smallest_gap_ms(&log) >= 1_000, "{log:?}");
    sim.shutdown().await;
}

/// A `hubctl` run that never needs SystmOne (e.g. `notes add` for a patient already on the
/// ward) sends nothing; one that does asks who is logged in once, however many parts of it
/// ask, and the next process is not held back by slots booked and never used.
#[tokio::test]
async fn start_up_asks_only_what_is_needed_and_books_nothing_unused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Auto).await;
    let control = sim.control().unwrap();
    let db = database(dir.path());
    for _ in 0..5 {
        let idle = start_client(&sim, &db);
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(idle);
    }
    assert_eq!(arrivals(&control).len(), 0, "nothing sent by idle runs");
    // A run that does use SystmOne: the status probe and the first real request both need
    // to know who is logged in; the follow-up after connecting asks too.
    let used = start_client(&sim, &db);
    let (first, second) = tokio::join!(
        used.organisation(true, Lane::Interactive),
        used.organisation(true, Lane::Background)
    );
    first.unwrap();
    second.unwrap();
    used.functions(Lane::Interactive).await.unwrap();
    let asked = arrivals(&control)
        .iter()
        .filter(|(_, f)| f == "GetOrganisationMetaData")
        .count();
    assert_eq!(asked, 1, "{:?}", arrivals(&control));
    // Several runs each queue a request and exit before their slot comes: none of them
    // booked a slot, so the next request goes one gap after the last real send.
    for _ in 0..5 {
        let quitter = start_client(&sim, &db);
        let queued = quitter.enqueue(
            Lane::Background,
            systmone::codec::RequestParams::GetFunctions,
        );
        drop(queued);
        drop(quitter);
    }
    let ledger = Store::open(
        &db,
        &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
    )
    .unwrap();
    let last_sent = {
        use domain::ports::PacingLedger;
        let mut ledger = ledger;
        ledger.budgets().unwrap().last_any_ms.unwrap()
    };
    let last_arrival = arrivals(&control).last().unwrap().0;
    assert!(
        last_sent <= last_arrival,
        "no booking lies ahead of the last real send ({last_sent} > {last_arrival})"
    );
    assert_eq!(control.violation_count().unwrap(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn commands_run_back_to_back_still_keep_a_second_apart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Auto).await;
    let control = sim.control().unwrap();
    let db = database(dir.path());
    // Three short-lived processes, one after another, each sending one request at once.
    for _ in 0..3 {
        let config = ClientConfig {
            follow_user: false,
            ..ClientConfig::new(sim.addr())
        };
        let client = SystmOneClient::start(
            config,
            ApiKey::parse(API_KEY).unwrap(),
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
        client.functions(Lane::Interactive).await.unwrap();
    }
    let log = arrivals(&control);
    assert_eq!(log.len(), 3);
    let gap = smallest_gap_ms(&log);
    eprintln!("back-to-back commands: smallest gap between arrivals {gap} ms");
    assert!(gap >= 1_000, "{log:?}");
    assert_eq!(control.violation_count().unwrap(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_second_whole_record_waits_its_30_seconds_without_holding_up_other_work() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Auto).await;
    let control = sim.control().unwrap();
    let client = start_client(&sim, &database(dir.path()));
    until_user_known(&client).await;
    let (nhs, _, _) = first_patient(&control);

    let started = Instant::now();
    client
        .patient_record(&nhs, None, Lane::Interactive)
        .await
        .expect("the first whole record");
    let second = {
        let client = client.clone();
        let nhs = nhs.clone();
        tokio::spawn(async move { client.patient_record(&nhs, None, Lane::Interactive).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queue = client.queue();
    assert_eq!(queue.interactive, 1);
    assert!(queue.eta_all >= Duration::from_secs(25), "{queue:?}");

    // Background work behind it still goes at the 1 s pace.
    let read_started = Instant::now();
    client.current_activity(Lane::Background).await.unwrap();
    assert!(
        read_started.elapsed() < Duration::from_secs(5),
        "{:?}",
        read_started.elapsed()
    );
    assert!(!second.is_finished());

    second
        .await
        .unwrap()
        .expect("answered, not silently dropped");
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(control.violation_count().unwrap(), 0);
    let records: Vec<i64> = arrivals(&control)
        .into_iter()
        .filter(|(_, f)| f == "GetPatientRecord")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(records.len(), 2);
    eprintln!("whole records {} ms apart", records[1] - records[0]);
    assert!(records[1] - records[0] >= 30_000);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_blocked_device_is_shown_as_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path(), ApprovalMode::Block).await;
    let client = start_client(&sim, &database(dir.path()));
    let err = client.functions(Lane::Interactive).await.unwrap_err();
    assert!(matches!(err, ClientError::Blocked(_)), "{err:?}");
    assert_eq!(err.code(), "systmone_blocked");
    let state = client.state().borrow().clone();
    match state {
        ConnectionState::Blocked { message } => {
            assert!(message.contains("Device Manager"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn nothing_listening_means_not_running() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let config = ClientConfig {
        follow_user: false,
        ..ClientConfig::new(addr)
    };
    let client = SystmOneClient::start(
        config,
        ApiKey::parse(API_KEY).unwrap(),
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
    let err = client
        .current_activity(Lane::Interactive)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "systmone_not_running");
    assert_eq!(*client.state().borrow(), ConnectionState::NotRunning);
}
