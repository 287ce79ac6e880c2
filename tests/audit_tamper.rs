//! The audit trail's tamper evidence as the window sees it: a database edited outside
//! Inpatient Hub (with a SQLite tool and the key) still opens — staff need the board — but
//! the status every screen reads carries the warning, and the full check names the row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hub::{DatabaseEnvironment, Hub, PatientInput};
use std::path::Path;

const TEST_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn open_hub(data_dir: &Path) -> Hub {
    let key = hub::db_key::DatabaseKey::from_hex(TEST_KEY).unwrap();
    Hub::open_with_key(data_dir, &key, DatabaseEnvironment::Live).unwrap()
}

fn tamper(data_dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(hub::config::database_path(data_dir)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{TEST_KEY}'\";"))
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn ward_with_history(data_dir: &Path) {
    let hub = open_hub(data_dir);
    for bed in ["Bed 1", "Bed 2", "Bed 3"] {
        hub.add_patient(&PatientInput {
            bed: bed.into(),
            name: "Ann Other".into(),
            nhs_number: None,
        })
        .unwrap();
    }
    assert_eq!(hub.status().unwrap().audit_warning, None);
    assert!(hub.verify_audit_chain().unwrap().is_intact());
}

#[test]
fn a_dropped_trigger_opens_with_a_warning_on_every_screen() {
    let dir = tempfile::tempdir().unwrap();
    ward_with_history(dir.path());
    tamper(dir.path(), "DROP TRIGGER audit_no_delete;");

    let hub = open_hub(dir.path());
    let warning = hub.status().unwrap().audit_warning.expect("a warning");
    assert!(
        warning.contains("altered outside Inpatient Hub"),
        "{warning}"
    );
    assert!(warning.contains("audit_no_delete is missing"), "{warning}");
    assert!(warning.contains("hubctl audit verify"), "{warning}");
    // The board still works, and nothing re-created the trigger behind IT's back.
    assert_eq!(hub.patients().unwrap().len(), 3);
    let report = hub.verify_audit_chain().unwrap();
    assert_eq!(report.trigger_problems.len(), 1);
}

#[test]
fn an_edited_newest_row_opens_with_a_warning_and_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    ward_with_history(dir.path());
    tamper(
        dir.path(),
        "DROP TRIGGER audit_no_update;
         UPDATE audit SET actor = 'Someone Else' WHERE id = (SELECT max(id) FROM audit);
         CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    );
    let hub = open_hub(dir.path());
    let newest = hub.verify_audit_chain().unwrap().newest_id.unwrap();
    let warning = hub.status().unwrap().audit_warning.expect("a warning");
    assert!(
        warning.contains(&format!("audit row {newest} has been altered")),
        "{warning}"
    );
    let found = hub.verify_audit_chain().unwrap().first_break.unwrap();
    assert_eq!(found.row_id, newest);
    assert_eq!(found.kind, store::AuditBreakKind::RowAltered);
}

#[test]
fn every_staff_action_the_hub_audits_names_the_os_account() {
    let dir = tempfile::tempdir().unwrap();
    ward_with_history(dir.path());
    let hub = open_hub(dir.path());
    // The staff actions (the database's own "marked demo/live" row at first open is written
    // by the store before the hub has said who is acting).
    let entries = hub
        .audit(&store::AuditQuery {
            entity: Some("patient".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(entries.len(), 3);
    let os_account = hub::os_account().unwrap();
    for entry in entries {
        assert_eq!(entry.os_account.as_deref(), Some(os_account.as_str()));
    }
}
