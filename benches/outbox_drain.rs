//! Drains queued case notes into the SystmOne simulator through the real client, scheduler
//! and pacing, and reports throughput as a fraction of TPP's 1 request/s limit, plus the
//! number of throttle violations the simulator saw (must be 0).
//!
//! Each sample drains `PER_SAMPLE` writes; criterion's 10 samples make 120 writes in all.
//! The baseline is the limit itself: one write per second.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use domain::{FilingRoute, NoteId};
use hub::{DraftInput, Hub, PatientInput};
use simulator::{SimConfig, SimControl, Simulator};
use std::time::{Duration, Instant};

const PER_SAMPLE: usize = 12;

fn drain(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
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
        (sim, hub)
    });
    let control = SimControl::open(sim.data_dir()).expect("control");
    let nhs = control.patients(1).expect("patients")[0].nhs_number.clone();
    let patient = hub
        .add_patient(&PatientInput {
            bed: "Bed 1".into(),
            name: "Bench Patient".into(),
            nhs_number: Some(nhs),
        })
        .expect("patient");

    let mut total_writes = 0usize;
    let mut total_time = Duration::ZERO;
    let mut group = c.benchmark_group("outbox");
    // Flat sampling: one long iteration per sample, not criterion's growing counts.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(130));
    group.throughput(Throughput::Elements(PER_SAMPLE as u64));
    group.bench_function("drain_12_notes_at_tpp_pace", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                for n in 0..PER_SAMPLE {
                    let note = hub
                        .create_note(&DraftInput {
                            patient_id: patient.id.0,
                            text: Some(format!("Bench note {n}")),
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
                    .block_on(hub.drain_outbox("bench", Duration::from_secs(120)))
                    .expect("drain");
                elapsed += start.elapsed();
                assert_eq!(report.filed.len(), PER_SAMPLE, "every queued note filed");
                total_writes += PER_SAMPLE;
            }
            total_time += elapsed;
            elapsed
        })
    });
    group.finish();
    let per_second = total_writes as f64 / total_time.as_secs_f64();
    let violations = control.violation_count().expect("violations");
    println!(
        "outbox drain: {total_writes} writes in {:.1} s = {per_second:.3} writes/s = {:.1}% of TPP's 1/s limit; simulator throttle violations: {violations}",
        total_time.as_secs_f64(),
        per_second * 100.0
    );
    assert_eq!(violations, 0, "the simulator saw a throttle violation");
    rt.block_on(sim.shutdown());
}

criterion_group!(benches, drain);
criterion_main!(benches);
