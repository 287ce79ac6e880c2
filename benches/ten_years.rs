//! The store after ten years of one 30-bed ward (issue 13 item 8): 20,000 patients (30 on the
//! ward), 1,000,000 tasks (~150 open), 500,000 notes with outbox rows, 5,000,000 chained audit
//! rows. Built once into `target/ten-years-store/<schema>-<fixture>/` (a few minutes; reruns
//! reuse it), then each view is timed through the same `Hub` calls the window makes, and
//! p50/p99 are printed against the goals: board and handover p99 < 5 ms, one record's audit
//! and one patient's notes < 5 ms, open < 300 ms. Not part of the test run:
//! `cargo bench -p benches --bench ten_years`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use hub::{BoardFilter, Hub};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use store::{AuditQuery, DatabaseKey, Store, TenYearsSpec};

/// Bumped when the fixture's contents change, so an old cached store is rebuilt.
const FIXTURE_VERSION: u32 = 2;

fn key() -> DatabaseKey {
    DatabaseKey::from_hex(&"be".repeat(32)).unwrap()
}

fn store_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ten-years-store").join(format!(
        "schema{}-fixture{FIXTURE_VERSION}",
        store::SCHEMA_VERSION
    ))
}

/// The cached store, built first if missing (the `complete` marker is written last, so an
/// interrupted build is redone).
fn ten_year_store() -> PathBuf {
    let dir = store_dir();
    let db = hub::config::database_path(&dir);
    if dir.join("complete").exists() {
        return db;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    eprintln!("building the ten-year store in {} ...", dir.display());
    let mut store = Store::open(&db, &key()).unwrap();
    store
        .claim_environment(store::DatabaseEnvironment::Demo)
        .unwrap();
    store.bulk_fill_for_bench(&TenYearsSpec::WARD).unwrap();
    drop(store);
    std::fs::write(dir.join("complete"), b"").unwrap();
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "built in {:.0?}: {:.2} GB",
        started.elapsed(),
        size as f64 / 1e9
    );
    db
}

fn open_hub(db: &Path) -> Hub {
    let store = Store::open(db, &key()).unwrap();
    Hub::from_store(store, db.parent().unwrap().to_path_buf())
}

/// p50 and p99 of `runs` timed calls (after a few warm-up calls).
fn percentiles(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

fn report(name: &str, goal: Option<Duration>, (p50, p99): (Duration, Duration)) {
    let verdict = match goal {
        Some(g) if p99 < g => format!("meets < {g:?}"),
        Some(g) => format!("MISSES < {g:?}"),
        None => "no goal".to_owned(),
    };
    eprintln!("{name:<28} p50 {p50:>10.3?}  p99 {p99:>10.3?}  {verdict}");
}

fn ten_years(c: &mut Criterion) {
    let db = ten_year_store();
    let hub = open_hub(&db);
    let open_board = BoardFilter {
        status: Some("open".into()),
        ..Default::default()
    };
    let board = hub.board(&open_board).unwrap();
    assert_eq!(board.patients.len(), 30, "the ward's 30 beds");
    let ward_patient = board.patients[0].id.0;
    let busy_task = board.tasks[0].task.id.0;
    eprintln!(
        "board: {} patients, {} open tasks; handover: {} patients",
        board.patients.len(),
        board.tasks.len(),
        hub.handover().unwrap().len()
    );
    let record_audit = AuditQuery {
        entity: Some("task".into()),
        entity_id: Some(busy_task.to_string()),
        limit: None,
    };
    let ms5 = Some(Duration::from_millis(5));

    eprintln!("\nten-year store, 200 runs each:");
    report(
        "board (open, on the ward)",
        ms5,
        percentiles(200, || drop(hub.board(&open_board).unwrap())),
    );
    report(
        "handover",
        ms5,
        percentiles(200, || drop(hub.handover().unwrap())),
    );
    report(
        "one record's audit",
        ms5,
        percentiles(200, || drop(hub.audit_page(&record_audit, None).unwrap())),
    );
    report(
        "audit view, first page",
        None,
        percentiles(200, || {
            drop(hub.audit_page(&AuditQuery::default(), None).unwrap())
        }),
    );
    report(
        "one patient's notes",
        ms5,
        percentiles(200, || {
            drop(hub.list_notes(Some(ward_patient), None).unwrap());
            drop(hub.outbox_of_patient(ward_patient).unwrap());
        }),
    );
    report(
        "outbox view (queue + page)",
        None,
        percentiles(200, || {
            drop(hub.outbox(false).unwrap());
            drop(hub.outbox_history(None, None, None).unwrap());
        }),
    );
    report(
        "Store::open",
        Some(Duration::from_millis(300)),
        percentiles(30, || drop(Store::open(&db, &key()).unwrap())),
    );
    eprintln!();

    let mut group = c.benchmark_group("ten_years");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("board", |b| b.iter(|| hub.board(&open_board).unwrap()));
    group.bench_function("handover", |b| b.iter(|| hub.handover().unwrap()));
    group.bench_function("record_audit", |b| {
        b.iter(|| hub.audit_page(&record_audit, None).unwrap())
    });
    group.bench_function("patient_notes", |b| {
        b.iter(|| hub.list_notes(Some(ward_patient), None).unwrap())
    });
    group.bench_function("outbox_view", |b| {
        b.iter(|| {
            (
                hub.outbox(false).unwrap(),
                hub.outbox_history(None, None, None).unwrap(),
            )
        })
    });
    group.sample_size(10);
    group.bench_function("store_open", |b| {
        b.iter(|| Store::open(&db, &key()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, ten_years);
criterion_main!(benches);
