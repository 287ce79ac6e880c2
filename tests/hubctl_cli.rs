//! `hubctl` end to end as trust IT would use it: the real binary on a temporary data dir.
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn hubctl(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", "5a".repeat(32))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("INPATIENT_HUB_USER")
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .output()
        .expect("hubctl runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hubctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn fails_with(out: &Output, needle: &str) {
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one-line reason: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn tasks_lifecycle_with_json_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Who acts is the OS account: nothing has to be chosen first, and a label changes nothing.
    ok(&hubctl(d, &["user", "Nurse Able"]));
    let patient: serde_json::Value = serde_json::from_str(&ok(&hubctl(
        d,
        &[
            "--json",
            "patients",
            "add",
            "--bed",
            "Bed 1",
            "--name",
            "Ann Other",
        ],
    )))
    .unwrap();
    let pid = patient["id"].as_i64().unwrap().to_string();
    let task: serde_json::Value = serde_json::from_str(&ok(&hubctl(
        d,
        &[
            "--json",
            "tasks",
            "add",
            "--patient",
            &pid,
            "--title",
            "Bloods <urgent>",
            "--due",
            "2030-01-02 09:00",
            "--assign",
            "Dr Baker",
        ],
    )))
    .unwrap();
    let tid = task["id"].as_i64().unwrap().to_string();
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(d, &["--json", "tasks", "list"]))).unwrap();
    assert_eq!(listed[0]["title"], "Bloods <urgent>");
    assert_eq!(listed[0]["assignee"], "Dr Baker");
    ok(&hubctl(d, &["tasks", "done", &tid]));
    assert!(ok(&hubctl(d, &["tasks", "list"])).contains("no tasks"));
    assert!(ok(&hubctl(d, &["tasks", "list", "--status", "done"])).contains("Bloods <urgent>"));
    let audit: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(d, &["--json", "audit", "--entity", "task"]))).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["task.completed", "task.added"]);
    let os_account = hub::os_account().unwrap();
    assert_eq!(audit[0]["actor"], os_account.as_str());
}

/// `--as` and `INPATIENT_HUB_USER` are gone: hubctl acts only as the OS account it runs under.
#[test]
fn hubctl_cannot_act_as_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails_with(
        &hubctl(d, &["--as", "IT Script", "patients", "list"]),
        "--as",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", "5a".repeat(32))
        .arg("--data-dir")
        .arg(d)
        .args([
            "--json",
            "patients",
            "add",
            "--bed",
            "Bed 1",
            "--name",
            "Ann Other",
        ])
        .env("INPATIENT_HUB_USER", "Dr Someone Else")
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .output()
        .unwrap();
    ok(&out);
    let audit: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(d, &["--json", "audit", "--limit", "1"]))).unwrap();
    assert_eq!(audit[0]["actor"], hub::os_account().unwrap().as_str());
}

/// An approval needs SystmOne's logged-on user with a verified role: with no SystmOne to ask,
/// `hubctl notes approve` is refused, says why, and queues nothing.
#[test]
fn hubctl_refuses_an_approval_it_cannot_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&hubctl(
        d,
        &[
            "patients",
            "add",
            "--bed",
            "Bed 2",
            "--name",
            "Ann Other",
            "--nhs",
            "9434765919",
        ],
    ));
    let out = ok(&hubctl(
        d,
        &[
            "--systmone",
            "127.0.0.1:9",
            "notes",
            "add",
            "--nhs",
            "943 476 5919",
            "--text",
            "Seen and settled.",
        ],
    ));
    let id = out.trim().lines().last().unwrap().to_owned();
    fails_with(
        &hubctl(d, &["--systmone", "127.0.0.1:9", "notes", "approve", &id]),
        "needs a verified role",
    );
    assert!(ok(&hubctl(d, &["outbox"])).contains("outbox empty"));
    let notes = ok(&hubctl(d, &["notes", "list"]));
    assert!(notes.contains("draft"), "{notes}");
}

#[test]
fn bad_input_exits_non_zero_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&hubctl(d, &["user", "Nurse Able"]));
    ok(&hubctl(
        d,
        &["patients", "add", "--bed", "Bed 1", "--name", "Ann Other"],
    ));
    fails_with(
        &hubctl(d, &["tasks", "add", "--patient", "1", "--title", "   "]),
        "must not be empty",
    );
    let long = "x".repeat(201);
    fails_with(
        &hubctl(d, &["tasks", "add", "--patient", "1", "--title", &long]),
        "too long",
    );
    fails_with(
        &hubctl(
            d,
            &[
                "tasks",
                "add",
                "--patient",
                "1",
                "--title",
                "ok",
                "--due",
                "2026-02-30",
            ],
        ),
        "not a date",
    );
    fails_with(
        &hubctl(d, &["tasks", "add", "--patient", "99", "--title", "ok"]),
        "no patient on the ward with id 99",
    );
    fails_with(
        &hubctl(d, &["tasks", "done", "12345"]),
        "no task with id 12345",
    );
    fails_with(
        &hubctl(
            d,
            &[
                "patients",
                "add",
                "--bed",
                "2",
                "--name",
                "B C",
                "--nhs",
                "9434765918",
            ],
        ),
        "check digit",
    );
    let listed: serde_json::Value = serde_json::from_str(&ok(&hubctl(
        d,
        &["--json", "tasks", "list", "--status", "all"],
    )))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0);
}

#[test]
fn a_corrupt_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inpatient-hub.sqlite"), vec![0x42u8; 8192]).unwrap();
    fails_with(&hubctl(dir.path(), &["tasks", "list"]), "damaged");
}

#[test]
fn decode_prints_a_captured_response_as_json_and_refuses_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/patient_search_response.xml");
    let json: serde_json::Value = serde_json::from_str(&ok(&hubctl(
        dir.path(),
        &["decode", fixture.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(json["function"], "PatientSearch");
    let text = json.to_string();
    assert!(
        text.contains("O'Brien-Jones") && text.contains("9990000018"),
        "{text}"
    );
    let garbage = dir.path().join("garbage.xml");
    std::fs::write(
        &garbage,
        "<!DOCTYPE x [<!ENTITY a 'b'>]><ClientIntegrationResponse/>",
    )
    .unwrap();
    fails_with(
        &hubctl(dir.path(), &["decode", garbage.to_str().unwrap()]),
        "DOCTYPE",
    );
    let wrong = dir.path().join("wrong.xml");
    std::fs::write(&wrong, "<ClientIntegrationRequest/>").unwrap();
    fails_with(
        &hubctl(dir.path(), &["decode", wrong.to_str().unwrap()]),
        "ClientIntegrationResponse",
    );
    fails_with(
        &hubctl(dir.path(), &["decode", "/nonexistent/file.xml"]),
        "cannot read",
    );
}

#[test]
fn ward_settings_drive_co_signature_and_notes_work_offline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The retired role setting is no longer a setting at all.
    fails_with(
        &hubctl(
            d,
            &["settings", "set", "current-user-role", "Registered Nurse"],
        ),
        "not a ward setting",
    );
    // Offline, a change that makes the ward safer is allowed; loosening needs a verified role.
    ok(&hubctl(
        d,
        &["settings", "set", "require-cosignature", "yes"],
    ));
    fails_with(
        &hubctl(d, &["settings", "set", "require-cosignature", "no"]),
        "needs a verified role",
    );
    fails_with(
        &hubctl(d, &["settings", "set", "require-cosignature", "maybe"]),
        "not true or false",
    );
    fails_with(
        &hubctl(d, &["settings", "set", "colour", "blue"]),
        "not a ward setting",
    );
    fails_with(
        &hubctl(d, &["settings", "set", "task-default-assignee", "Ward 5"]),
        "team:NAME",
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(d, &["--json", "settings", "show"]))).unwrap();
    assert_eq!(shown["require-cosignature"], "true");
    ok(&hubctl(
        d,
        &[
            "patients",
            "add",
            "--bed",
            "Bed 2",
            "--name",
            "Ann Other",
            "--nhs",
            "9434765919",
        ],
    ));
    // No SystmOne here: the patient is already on the ward, so the draft is made offline.
    let out = ok(&hubctl(
        d,
        &[
            "--systmone",
            "127.0.0.1:9",
            "notes",
            "add",
            "--nhs",
            "943 476 5919",
            "--text",
            "Seen & settled <ok>",
        ],
    ));
    let id = out.trim().lines().last().unwrap().to_owned();
    let preview = ok(&hubctl(d, &["notes", "preview", &id]));
    assert!(
        preview.starts_with("Seen & settled <ok>\nInpatient Hub ref IH-"),
        "{preview}"
    );
    // Offline there is no verified role, so the command line (API route only) cannot approve.
    fails_with(
        &hubctl(d, &["--systmone", "127.0.0.1:9", "notes", "approve", &id]),
        "SystmOne is not connected",
    );
    assert!(ok(&hubctl(d, &["outbox"])).contains("outbox empty"));
    let audit = ok(&hubctl(d, &["audit", "--entity", "setting"]));
    assert!(audit.contains("require_cosignature"), "{audit}");
}

/// Regression (issue 13): `hubctl … | head` panicked with "Broken pipe".
#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    ok(&hubctl(dir.path(), &["user", "Sam Patel"]));
    ok(&hubctl(
        dir.path(),
        &["patients", "add", "--bed", "Bed 1", "--name", "Ann Other"],
    ));
    for i in 0..40 {
        ok(&hubctl(
            dir.path(),
            &[
                "tasks",
                "add",
                "--patient",
                "1",
                "--title",
                &format!("Task {i}"),
            ],
        ));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", "5a".repeat(32))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "tasks", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the pipe before hubctl writes (it opens the database first), as a `head` that
    // has already read enough does: its first write meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// Opens the test database as someone with a SQLite tool and the key would, to tamper with it.
fn tamper(data_dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(hub::config::database_path(data_dir)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "5a".repeat(32)))
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

/// `hubctl audit verify` passes a store written by the app, and on a store edited outside it
/// exits 1 with one line naming the row (text and `--json` alike).
#[test]
fn audit_verify_passes_a_good_store_and_names_the_tampered_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for bed in ["Bed 1", "Bed 2", "Bed 3", "Bed 4"] {
        ok(&hubctl(
            d,
            &["patients", "add", "--bed", bed, "--name", "Ann Other"],
        ));
    }
    let text = ok(&hubctl(d, &["audit", "verify"]));
    assert!(text.contains("hash chain: intact"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(d, &["--json", "audit", "verify"]))).unwrap();
    assert_eq!(report["first_break"], serde_json::Value::Null);
    let rows = report["rows_checked"].as_u64().unwrap();
    assert!(rows >= 4, "{report}");
    // The listing still works beside the subcommand, and names the OS account.
    let listing = ok(&hubctl(d, &["audit", "--limit", "2"]));
    let os_account = hub::os_account().unwrap();
    assert!(
        listing.contains(&format!("computer: {os_account}")),
        "{listing}"
    );

    tamper(
        d,
        "DROP TRIGGER audit_no_update;
         UPDATE audit SET detail = '{\"bed\":\"Bed 9\"}' WHERE id = 2;
         CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    );
    let out = hubctl(d, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    fails_with(&out, "breaks at row 2");
    assert!(String::from_utf8_lossy(&out.stdout).contains("BROKEN at row 2"));
    let out = hubctl(d, &["--json", "audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["first_break"]["row_id"], 2);
    assert_eq!(report["first_break"]["kind"], "row_altered");
}

/// A dropped append-only trigger fails `audit verify` even when no row was touched yet.
#[test]
fn audit_verify_reports_a_dropped_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&hubctl(
        d,
        &["patients", "add", "--bed", "Bed 1", "--name", "Ann Other"],
    ));
    tamper(d, "DROP TRIGGER audit_no_delete;");
    fails_with(
        &hubctl(d, &["audit", "verify"]),
        "audit_no_delete is missing",
    );
}
