//! `hubctl check`: SQLite's integrity check on demand, with exit codes scripts can use
//! (0: the file is sound; 1: damage found, listed), now that opening no longer checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

const WARD_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn hubctl(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", WARD_KEY)
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .env_remove("INPATIENT_HUB_DEMO")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("hubctl runs")
}

/// A ward database with a patient and enough tasks for the tasks table to span many pages.
fn ward_with_tasks(data_dir: &Path) -> std::path::PathBuf {
    let out = hubctl(
        data_dir,
        &[
            "patients",
            "add",
            "--bed",
            "Bed 1",
            "--name",
            "Check Patient",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = hub::config::database_path(data_dir);
    let key = store::DatabaseKey::from_hex(WARD_KEY).unwrap();
    let mut store = store::Store::open(&db, &key).unwrap();
    let patient = store.patients().unwrap()[0].id;
    let actor = domain::StaffName::parse("Nurse Check").unwrap();
    for i in 0..300 {
        store
            .add_task(
                &actor,
                &domain::NewTask {
                    patient_id: patient,
                    title: domain::TaskTitle::parse(&format!("Task {i} {}", "x".repeat(120)))
                        .unwrap(),
                    assignee: None,
                    due: None,
                },
            )
            .unwrap();
    }
    db
}

#[test]
fn a_sound_database_checks_ok_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    ward_with_tasks(dir.path());
    let out = hubctl(dir.path(), &["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let json = hubctl(dir.path(), &["--json", "check"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["thorough"], true);
}

#[test]
fn a_damaged_table_is_found_listed_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = ward_with_tasks(dir.path());
    // The root page of the tasks table: every read of a task goes through it, while opening
    // (key, schema, database identity, the newest audit row) does not.
    let root_page: i64 = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!("PRAGMA key = \"x'{WARD_KEY}'\";"))
            .unwrap();
        conn.query_row(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'tasks'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let page = 4096;
    let start = usize::try_from(root_page - 1).unwrap() * page;
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[start + 200..start + 1200] {
        *b ^= 0xa5;
    }
    std::fs::write(&db, bytes).unwrap();

    let out = hubctl(dir.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("DAMAGED"), "stdout: {stdout}");
    assert!(stderr.contains("damaged"), "stderr: {stderr}");
}
