//! Speed of the shared SystmOne send budget, against the simulator over real TCP with TPP's
//! real limits (1 request/s, 30 s for whole records), reported as ratios against baselines
//! measured in the same run:
//!
//! - `interactive_latency`: a clinician's lookup (a demographics-only `GetPatientRecord`)
//!   from a second process on the same ward database while a first process files a backlog
//!   of notes in the background. p50/p95 of the time from asking to the answer, against
//!   the same lookup with no backlog (baseline) and the same lookup sent without priority
//!   (what first-come sharing of the budget gives: the reference the priority is for).
//! - `drain`: case notes filed through the hub's outbox worker, with no lost replies and with
//!   one reply in three lost (the simulator's `drop` fault: silence until the read timeout,
//!   the write applied or not at random), as notes/s and as a fraction of TPP's 1/s. With
//!   `PACING_BENCH_OLD_GRACE=1`, also one lossy drain with the old fixed 90 s reconcile
//!   grace, for before/after (about six minutes more).
//!
//! Every run checks the simulator saw no throttle violation and no note was filed twice.
//! `cargo bench -p benches --bench systmone_pacing` (about eight minutes, most of it the
//! lossy drain; a name filter such as `-- interactive` runs one part).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use domain::{FilingRoute, NhsNumber, NoteId};
use hub::{DraftInput, Hub, PatientInput};
use simulator::faults::FaultRates;
use simulator::{SimConfig, SimControl, SimHandle, Simulator};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::Store;
use systmone::client::{ClientConfig, Lane, SystmOneClient};
use systmone::codec::{Event, FilterFlag, Identity, RecordFilter, UpdatePatientRecordParams};
use systmone::secrets::ApiKey;

/// The read timeout the drains use instead of SystmOne's 30 s, so a lost reply costs 3 s
/// of bench time; the figures scale to 30 s timeouts as noted in the printout.
const BENCH_READ_TIMEOUT: Duration = Duration::from_secs(3);
const NOTES_PER_SAMPLE: usize = 6;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

async fn simulator(dir: &Path) -> SimHandle {
    let mut config = SimConfig::new(dir.to_path_buf());
    config.port = 0;
    Simulator::start(config).await.expect("simulator")
}

/// A process's client as the app (or `hubctl`) starts it: its own store connections on
/// the ward database, TPP's pacing.
fn client(sim: &SimHandle, db: &Path) -> SystmOneClient {
    SystmOneClient::start(
        ClientConfig::new(sim.addr()),
        ApiKey::parse(systmone_wire::SIMULATOR_API_KEY).expect("key"),
        Store::open(
            db,
            &store::DatabaseKey::from_hex(&"5a".repeat(32)).expect("key"),
        )
        .expect("database"),
        Store::open(
            db,
            &store::DatabaseKey::from_hex(&"5a".repeat(32)).expect("key"),
        )
        .expect("database"),
    )
    .expect("client")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, samples: &Mutex<Vec<Duration>>) -> (Duration, Duration) {
    let mut sorted = samples.lock().expect("samples").clone();
    sorted.sort();
    let (p50, p95) = (percentile(&sorted, 0.5), percentile(&sorted, 0.95));
    println!(
        "  {name:<34} n={:<3} p50 {:>6.0} ms  p95 {:>6.0} ms  max {:>6.0} ms",
        sorted.len(),
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        sorted.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    (p50, p95)
}

fn interactive_latency(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hub").join("inpatient-hub.sqlite");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("dir");
    let sim = rt.block_on(simulator(&dir.path().join("sim")));
    let control = SimControl::open(sim.data_dir()).expect("control");
    let nhs = NhsNumber::parse(&control.patients(1).expect("patients")[0].nhs_number).expect("nhs");
    let (sync, lookup) = rt.block_on(async {
        let sync = client(&sim, &db);
        let lookup = client(&sim, &db);
        for c in [&sync, &lookup] {
            c.organisation(true, Lane::Interactive).await.expect("user");
        }
        (sync, lookup)
    });
    let demographics = || RecordFilter::with_flags([FilterFlag::Demographics]);
    let ask = |lane: Lane| {
        let start = Instant::now();
        rt.block_on(lookup.patient_record(&nhs, Some(demographics()), lane))
            .expect("answered: nothing was throttled");
        start.elapsed()
    };
    // Lookups arrive at every phase of the backlog's 1 s cycle, not in step with it.
    let mut phase = 0u64;
    let mut next_phase = move || {
        phase = (phase + 379) % 1_000;
        Duration::from_millis(phase)
    };

    let idle = Mutex::new(Vec::new());
    let with_priority = Mutex::new(Vec::new());
    let first_come = Mutex::new(Vec::new());
    let mut group = c.benchmark_group("interactive_latency");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(20));

    group.bench_function("lookup_no_backlog", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Our own previous lookup's slot has passed: only the request itself counts.
                std::thread::sleep(Duration::from_millis(1_100));
                let took = ask(Lane::Interactive);
                idle.lock().expect("samples").push(took);
                total += took;
            }
            total
        })
    });

    // The first process files notes in the background for as long as the lookups run.
    let stop = Arc::new(AtomicBool::new(false));
    let backlog = {
        let stop = Arc::clone(&stop);
        let sync = sync.clone();
        let nhs = nhs.clone();
        rt.spawn(async move {
            let mut filed = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let note = UpdatePatientRecordParams::new(Identity::nhs(nhs.clone()))
                    .with_event(Event::narrative(&format!("Backlog note {filed}")));
                sync.update_record(note, Lane::Background)
                    .await
                    .expect("filed: nothing was throttled");
                filed += 1;
            }
            filed
        })
    };
    for (name, lane, samples) in [
        ("lookup_during_backlog", Lane::Interactive, &with_priority),
        (
            "lookup_during_backlog_first_come",
            Lane::Background,
            &first_come,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(Duration::from_millis(1_100) + next_phase());
                    let took = ask(lane);
                    samples.lock().expect("samples").push(took);
                    total += took;
                }
                total
            })
        });
    }
    group.finish();
    stop.store(true, Ordering::SeqCst);
    let filed = rt.block_on(backlog).expect("backlog task");

    println!("\ninteractive latency from a second process (demographics lookup):");
    let (idle50, idle95) = summary("no backlog (baseline)", &idle);
    let (p50, p95) = summary("during a backlog, interactive", &with_priority);
    let (fc50, fc95) = summary("during a backlog, first come", &first_come);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-6);
    println!(
        "  during backlog / baseline: p50 x{:.1}, p95 x{:.1}; first come / interactive: p50 x{:.2}, p95 x{:.2}; goal p95 <= 2 s: {}",
        ratio(p50, idle50),
        ratio(p95, idle95),
        ratio(fc50, p50),
        ratio(fc95, p95),
        if p95 <= Duration::from_secs(2) { "met" } else { "NOT met" }
    );
    let violations = control.violation_count().expect("violations");
    println!(
        "  backlog notes filed meanwhile: {filed}; simulator throttle violations: {violations}"
    );
    assert_eq!(violations, 0, "the simulator saw a throttle violation");
    rt.block_on(sim.shutdown());
}

/// A hub on its own ward database, filing through the simulator.
fn hub(rt: &tokio::runtime::Runtime, data: &Path, sim: &SimHandle, old_grace: bool) -> Hub {
    let mut hub = Hub::open_with_key(
        data,
        &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).expect("key"),
        hub::DatabaseEnvironment::Demo,
    )
    .expect("hub");
    hub.set_current_user("Bench Nurse").expect("user");
    if old_grace {
        hub.set_filing_policy(Some(Duration::from_secs(90)), None);
    }
    rt.block_on(async { hub.start_systmone_with(sim.addr(), Some(BENCH_READ_TIMEOUT)) })
        .expect("client");
    hub
}

/// Approves `n` notes and drains them; returns the drain's wall time.
fn drain_notes(
    rt: &tokio::runtime::Runtime,
    hub: &Hub,
    patient: i64,
    n: usize,
    tag: &str,
) -> Duration {
    for i in 0..n {
        let note = hub
            .create_note(&DraftInput {
                patient_id: patient,
                text: Some(format!("Bench note {tag} {i} {}", uuid_ish())),
                ..Default::default()
            })
            .expect("draft");
        let sha = hub
            .preview_note(NoteId(note.id.0))
            .expect("preview")
            .text_sha256;
        hub.approve_note(note.id, Some(&sha), Some(FilingRoute::Api))
            .expect("approve");
    }
    let start = Instant::now();
    let report = rt
        .block_on(hub.drain_outbox("bench", Duration::from_secs(600)))
        .expect("drain");
    let took = start.elapsed();
    assert_eq!(report.filed.len(), n, "every queued note filed: {report:?}");
    took
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn drain(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = rt.block_on(simulator(&dir.path().join("sim")));
    let mut control = SimControl::open(sim.data_dir()).expect("control");
    let nhs = control.patients(1).expect("patients")[0].nhs_number.clone();
    let hub = hub(&rt, &dir.path().join("ward"), &sim, false);
    let patient = hub
        .add_patient(&PatientInput {
            bed: "Bed 1".into(),
            name: "Bench Patient".into(),
            nhs_number: Some(nhs.clone()),
        })
        .expect("patient")
        .id
        .0;
    let lossy = FaultRates {
        drop: 1.0 / 3.0,
        ..FaultRates::default()
    };
    let mut results: Vec<(&str, usize, Duration)> = Vec::new();
    let mut group = c.benchmark_group("drain");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(30));
    for (name, faults) in [
        ("notes_no_loss", FaultRates::default()),
        ("notes_one_in_three_lost", lossy),
    ] {
        control.set_faults(faults, None).expect("faults");
        let mut notes = 0usize;
        let mut time = Duration::ZERO;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += drain_notes(&rt, &hub, patient, NOTES_PER_SAMPLE, name);
                    notes += NOTES_PER_SAMPLE;
                }
                time += total;
                total
            })
        });
        results.push((name, notes, time));
    }
    group.finish();

    // Before: the same lossy drain with the old fixed 90 s grace, once (a second ward on
    // its own database, after the first has stopped sending).
    let old_time = std::env::var_os("PACING_BENCH_OLD_GRACE").map(|_| {
        std::thread::sleep(Duration::from_millis(1_100));
        let old = hub_with_old_grace(&rt, dir.path(), &sim, &nhs);
        drain_notes(&rt, &old.0, old.1, NOTES_PER_SAMPLE, "old grace")
    });
    control
        .set_faults(FaultRates::default(), None)
        .expect("faults");

    println!(
        "\ndrain throughput ({NOTES_PER_SAMPLE} notes per drain, read timeout {} s):",
        BENCH_READ_TIMEOUT.as_secs()
    );
    let mut rate_of = std::collections::HashMap::new();
    for (name, notes, time) in &results {
        let rate = *notes as f64 / time.as_secs_f64();
        rate_of.insert(*name, rate);
        println!(
            "  {name:<26} {notes} notes in {:.1} s = {rate:.3} notes/s = {:.0}% of TPP's 1/s",
            time.as_secs_f64(),
            rate * 100.0
        );
    }
    if let (Some(clean), Some(lossy)) = (
        rate_of.get("notes_no_loss"),
        rate_of.get("notes_one_in_three_lost"),
    ) {
        println!("  lossy / no loss: {:.2}", lossy / clean);
        if let Some(old_time) = old_time {
            let old_rate = NOTES_PER_SAMPLE as f64 / old_time.as_secs_f64();
            println!(
                "  {:<26} {NOTES_PER_SAMPLE} notes in {:.1} s = {old_rate:.3} notes/s = {:.0}% of TPP's 1/s (before: fixed 90 s grace); lossy now / before: x{:.1}",
                "one_in_three_lost_old",
                old_time.as_secs_f64(),
                old_rate * 100.0,
                lossy / old_rate
            );
        }
    }
    let violations = control.violation_count().expect("violations");
    let twice = control
        .filed_events(&nhs, true)
        .expect("events")
        .iter()
        .filter(|e| e.narrative.contains("Bench note") && e.identical_narrative_count > 1)
        .count();
    println!("  simulator throttle violations: {violations}; notes filed twice: {twice}");
    assert_eq!(violations, 0, "the simulator saw a throttle violation");
    assert_eq!(twice, 0, "a note was filed twice");
    rt.block_on(sim.shutdown());
}

fn hub_with_old_grace(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    sim: &SimHandle,
    nhs: &str,
) -> (Hub, i64) {
    let hub = hub(rt, &dir.join("ward-old"), sim, true);
    let patient = hub
        .add_patient(&PatientInput {
            bed: "Bed 2".into(),
            name: "Bench Patient Two".into(),
            nhs_number: Some(nhs.to_owned()),
        })
        .expect("patient")
        .id
        .0;
    (hub, patient)
}

criterion_group!(benches, interactive_latency, drain);
criterion_main!(benches);
