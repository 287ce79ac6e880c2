//! Time to a fully confirmed ward board for a 30-bed ward against the SystmOne simulator,
//! through the real client, pacing and sync engine — beside the naive baseline of one full
//! Tasks pull per patient at TPP's 30 s limit (30 × 30 s = 15 minutes).
//!
//! Each sample starts afresh (a new simulator, ward database and client, set up untimed) in
//! the state the board is in during a shift: every patient was confirmed earlier today, and
//! `CHANGED` patients have a ward task waiting to be created in SystmOne. "Fully confirmed":
//! every patient's tasks were pulled since the sample began (today's changes through the
//! exempt entered-today read; changed patients also through a full pull) and no push is
//! pending. `BOARD_SYNC_TRACE=1` prints progress.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use hub::tasksync::planner::Budgets;
use hub::{Hub, PatientInput, TaskInput};
use simulator::{SimConfig, SimControl, Simulator};
use std::time::{Duration, Instant};
use test_support::planner_model::estimate_board_confirmation;

const BEDS: usize = 30;
const CHANGED: usize = 2;

/// One sample: returns the time to a fully confirmed board and the simulator's violation count.
fn one_board(rt: &tokio::runtime::Runtime) -> (Duration, u64) {
    let sim_dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let (sim, hub) = rt.block_on(async {
        let mut config = SimConfig::new(sim_dir.path().to_path_buf());
        config.port = 0;
        let sim = Simulator::start(config).await.expect("simulator");
        let mut hub = Hub::open_with_key(
            data.path(),
            &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).expect("key"),
            hub::DatabaseEnvironment::Demo,
        )
        .expect("hub");
        hub.set_current_user("Bench Nurse").expect("user");
        hub.start_systmone(sim.addr()).expect("client");
        hub.verified_client_probe().await.expect("connected");
        (sim, hub)
    });
    let control = SimControl::open(sim.data_dir()).expect("control");
    let mut patients = Vec::new();
    for (bed, p) in control
        .patients(BEDS)
        .expect("patients")
        .into_iter()
        .enumerate()
    {
        let added = hub
            .add_patient(&PatientInput {
                bed: format!("Bed {bed}"),
                name: p.name.clone(),
                nhs_number: Some(p.nhs_number),
            })
            .expect("patient");
        patients.push(added.id);
    }
    // Earlier today every patient was confirmed; nobody has been pulled yet this sample.
    let earlier = chrono::Local::now() - chrono::TimeDelta::hours(1);
    // Set straight in the database file: a state no user operation produces in one step.
    let conn =
        rusqlite::Connection::open(hub::config::database_path(data.path())).expect("database");
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "5a".repeat(32)))
        .expect("key");
    conn.execute(
            "INSERT INTO task_sync_patients (patient_id, tasks_confirmed_at, today_pulled_at, full_pull_attempted_at, full_pull_wanted)
             SELECT id, ?1, NULL, ?1, 0 FROM patients WHERE true",
            [earlier],
        )
        .expect("warm state");
    for p in patients.iter().take(CHANGED) {
        let task = hub
            .add_task(&TaskInput {
                patient_id: p.0,
                title: "Bench task".into(),
                ..Default::default()
            })
            .expect("task");
        hub.request_task_push(task.id.0, None).expect("push");
    }
    let start = Instant::now();
    let since = chrono::Local::now();
    loop {
        rt.block_on(hub.sync_tasks_round(1)).expect("round");
        let view = hub.task_sync_view().expect("view");
        let pending = rt
            .block_on(hub.sync_tasks_round(0))
            .expect("plan")
            .pending_pushes;
        let pulled = view
            .patients
            .iter()
            .filter(|p| p.today_pulled_at.is_some_and(|t| t >= since))
            .count();
        let wanted = view.patients.iter().filter(|p| p.full_pull_wanted).count();
        if pulled == view.patients.len() && wanted == 0 && pending == 0 {
            break;
        }
        if std::env::var_os("BOARD_SYNC_TRACE").is_some() {
            eprintln!("{:>6.1} s: {pulled}/{} pulled today, {wanted} full pulls wanted, {pending} pushes pending", start.elapsed().as_secs_f64(), view.patients.len());
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "board never confirmed"
        );
    }
    let elapsed = start.elapsed();
    let violations = control.violation_count().expect("violations");
    rt.block_on(sim.shutdown());
    (elapsed, violations)
}

fn board(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut samples = Vec::new();
    let mut violations = 0;
    let mut group = c.benchmark_group("task_sync");
    // Flat sampling, one long iteration per sample (criterion's growing counts would take an hour).
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(60));
    group.bench_function("thirty_bed_board_fully_confirmed", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (elapsed, v) = one_board(&rt);
                samples.push(elapsed);
                violations += v;
                total += elapsed;
            }
            total
        })
    });
    group.finish();
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len().max(1) as f64;
    let naive = (BEDS as f64) * 30.0;
    let estimate = estimate_board_confirmation(BEDS, CHANGED, &Budgets::default());
    println!(
        "30-bed board fully confirmed in {mean:.1} s on average ({} boards), {CHANGED} patients changed today; \
         naive baseline {naive:.0} s (ratio {:.3}); planner estimate {} s; simulator throttle violations: {violations}",
        samples.len(),
        mean / naive,
        estimate.fully_confirmed.num_seconds(),
    );
    assert_eq!(violations, 0, "the simulator saw a throttle violation");
}

criterion_group!(benches, board);
criterion_main!(benches);
