//! `hubctl backup` / `hubctl restore` driven as trust IT would, and the plain progress lines
//! long commands print when their output is not a terminal.
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

const WARD_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const OTHER_PC_KEY: &str = "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";

fn hubctl_keyed(key: &str, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", key)
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .env_remove("INPATIENT_HUB_DEMO")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        // Piped: not a terminal, so progress comes as plain lines and no prompt is shown.
        .stdin(Stdio::null())
        .output()
        .expect("hubctl runs")
}

fn hubctl(data_dir: &Path, args: &[&str]) -> Output {
    hubctl_keyed(WARD_KEY, data_dir, args)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hubctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails_with(out: &Output, needle: &str) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    err
}

fn add_patient(data_dir: &Path, name: &str) {
    ok(&hubctl(
        data_dir,
        &["patients", "add", "--bed", "Bed 1", "--name", name],
    ));
}

fn patient_names(data_dir: &Path) -> Vec<String> {
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(data_dir, &["--json", "patients", "list"]))).unwrap();
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn database(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("inpatient-hub.sqlite")
}

#[test]
fn backup_and_restore_round_trip_keeps_the_previous_database_and_is_audited() {
    let ward = tempfile::tempdir().unwrap();
    let d = ward.path();
    add_patient(d, "Ann Other");
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("ward.ihb");
    let file_arg = file.to_str().unwrap();

    let out = hubctl(d, &["--json", "backup", file_arg]);
    let summary: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(summary["audit_rows"].as_u64().unwrap() >= 2);
    let head = summary["audit_head"]["hash"].as_str().unwrap().to_owned();
    assert_eq!(head.len(), 64);
    // Progress went to standard error as plain lines (not a terminal), JSON stayed clean.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("hubctl backup: ") && l.contains(" pages (100%)")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("hubctl backup: written and verified after")),
        "{err}"
    );
    assert!(
        !err.contains('\r'),
        "no bar redraws when not a terminal: {err:?}"
    );
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3\0"), "encrypted");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No silent overwrite.
    fails_with(&hubctl(d, &["backup", file_arg]), "already exists");
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    let text = ok(&hubctl(d, &["backup", "--force", file_arg]));
    assert!(text.contains("audit chain head: row"), "{text}");
    assert!(text.contains("(chain verified)"), "{text}");

    add_patient(d, "Bea Later");
    assert_eq!(patient_names(d), ["Ann Other", "Bea Later"]);

    // Not confirmed (no --yes, and no terminal to ask at): nothing changes.
    fails_with(&hubctl(d, &["restore", file_arg]), "--yes");
    assert_eq!(patient_names(d), ["Ann Other", "Bea Later"]);

    let out = hubctl(d, &["--json", "restore", "--yes", file_arg]);
    let outcome: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(patient_names(d), ["Ann Other"]);
    let kept = Path::new(outcome["previous_kept_as"].as_str().unwrap()).to_path_buf();
    assert!(kept
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("inpatient-hub.sqlite.before-restore-"));
    // The previous database is kept whole: it opens and still has the later patient.
    let kept_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&kept, database(kept_dir.path())).unwrap();
    assert_eq!(patient_names(kept_dir.path()), ["Ann Other", "Bea Later"]);

    let audit: serde_json::Value =
        serde_json::from_str(&ok(&hubctl(d, &["--json", "audit", "--limit", "1"]))).unwrap();
    assert_eq!(audit[0]["action"], "store.restored");
    assert_eq!(audit[0]["detail"]["backup_audit_head_hash"], head.as_str());
    assert_eq!(audit[0]["actor"], hub::os_account().unwrap().as_str());
    ok(&hubctl(d, &["audit", "verify"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("hubctl restore: restored after")),
        "{err}"
    );
}

#[test]
fn restore_refuses_another_pcs_backup_a_demo_backup_and_a_damaged_file() {
    let ward = tempfile::tempdir().unwrap();
    let d = ward.path();
    add_patient(d, "Ann Other");
    let before = std::fs::read(database(d)).unwrap();
    let files = tempfile::tempdir().unwrap();
    let unchanged = |d: &Path| {
        assert_eq!(std::fs::read(database(d)).unwrap(), before);
        let names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("before-restore") || n.contains("restoring")),
            "{names:?}"
        );
    };

    // Another PC's backup: encrypted under that PC's key.
    let other_pc = tempfile::tempdir().unwrap();
    ok(&hubctl_keyed(
        OTHER_PC_KEY,
        other_pc.path(),
        &[
            "patients",
            "add",
            "--bed",
            "Bed 2",
            "--name",
            "Cy Elsewhere",
        ],
    ));
    let foreign = files.path().join("other-pc.ihb");
    ok(&hubctl_keyed(
        OTHER_PC_KEY,
        other_pc.path(),
        &["backup", foreign.to_str().unwrap()],
    ));
    fails_with(
        &hubctl(d, &["restore", "--yes", foreign.to_str().unwrap()]),
        "INPATIENT_HUB_DB_KEY",
    );
    unchanged(d);

    // A demo database's backup into the ward's live folder.
    let demo = tempfile::tempdir().unwrap();
    ok(&hubctl(
        demo.path(),
        &[
            "--demo", "patients", "add", "--bed", "Bed 3", "--name", "Dee Demo",
        ],
    ));
    let demo_backup = files.path().join("demo.ihb");
    ok(&hubctl(
        demo.path(),
        &["--demo", "backup", demo_backup.to_str().unwrap()],
    ));
    fails_with(
        &hubctl(d, &["restore", "--yes", demo_backup.to_str().unwrap()]),
        "demo database",
    );
    unchanged(d);

    // A damaged file, and a plaintext one.
    let junk = files.path().join("junk.ihb");
    std::fs::write(&junk, vec![0x42u8; 32 * 1024]).unwrap();
    fails_with(
        &hubctl(d, &["restore", "--yes", junk.to_str().unwrap()]),
        "damaged",
    );
    unchanged(d);
    let empty = files.path().join("empty.ihb");
    std::fs::write(&empty, b"").unwrap();
    fails_with(
        &hubctl(d, &["restore", "--yes", empty.to_str().unwrap()]),
        "not an Inpatient Hub backup",
    );
    unchanged(d);
    assert_eq!(patient_names(d), ["Ann Other"]);
}

#[test]
fn backup_of_a_folder_with_no_database_fails_and_writes_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("nothing.ihb");
    fails_with(
        &hubctl(empty.path(), &["backup", file.to_str().unwrap()]),
        "no ward database",
    );
    assert!(!file.exists());
    assert_eq!(std::fs::read_dir(files.path()).unwrap().count(), 0);
}

/// `hubctl sync --until-empty` with its output piped: plain progress lines on standard error
/// (how many of how many, and the ETA from SystmOne's pacing), nothing on standard output but
/// the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_until_empty_prints_plain_progress_lines_when_not_a_terminal() {
    use hub::{DraftInput, Hub, PatientInput};
    let sim_dir = tempfile::tempdir().unwrap();
    let mut config = simulator::SimConfig::new(sim_dir.path().to_path_buf());
    config.port = 0;
    let sim = simulator::Simulator::start(config).await.unwrap();
    let addr = sim.addr().to_string();
    let control = simulator::SimControl::open(sim.data_dir()).unwrap();
    let patients = control.patients(2).unwrap();

    let data = tempfile::tempdir().unwrap();
    {
        let hub = Hub::open_with_key(
            data.path(),
            &hub::db_key::DatabaseKey::from_hex(WARD_KEY).unwrap(),
            hub::DatabaseEnvironment::Demo,
        )
        .unwrap();
        hub.assume_systmone_user_for_tests(Some(hub::SystmOneUserView {
            name: "Dr Progress".into(),
            user_name: Some("dr.progress".into()),
            role: Some("Consultant".into()),
        }));
        for (i, p) in patients.iter().enumerate() {
            let patient = hub
                .add_patient(&PatientInput {
                    bed: format!("Bed {i}"),
                    name: p.name.clone(),
                    nhs_number: Some(p.nhs_number.clone()),
                })
                .unwrap();
            for n in 0..2 {
                let note = hub
                    .create_note(&DraftInput {
                        patient_id: patient.id.0,
                        text: Some(format!("Progress note {n}")),
                        ..Default::default()
                    })
                    .unwrap();
                let preview = hub.preview_note(domain::NoteId(note.id.0)).unwrap();
                hub.approve_note(
                    note.id,
                    Some(&preview.text_sha256),
                    Some(domain::FilingRoute::Api),
                )
                .unwrap();
            }
        }
    }
    let out = tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_hubctl"))
            .env("INPATIENT_HUB_DB_KEY", WARD_KEY)
            .env_remove("INPATIENT_HUB_API_KEY")
            .env_remove("INPATIENT_HUB_DATA_DIR")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--demo", "--systmone", &addr, "--json"])
            .args(["sync", "--until-empty", "--max-wait", "120"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        drop(data);
        out
    })
    .await
    .unwrap();
    let stdout = ok(&out);
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["filed"], 4);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("hubctl sync: "))
        .collect();
    // The total counts the four notes (and the two linked patients' task pulls).
    let first = lines.first().copied().unwrap_or_default();
    assert!(first.starts_with("hubctl sync: 0/"), "{err}");
    assert!(first.contains("s left"), "an ETA from the start: {err}");
    assert!(
        lines.iter().any(|l| l.contains("(100%)")),
        "reaches the end: {err}"
    );
    assert!(
        lines.last().unwrap().starts_with("hubctl sync: done after"),
        "{err}"
    );
    assert!(!err.contains('\r'), "no bar redraws when not a terminal");
}
