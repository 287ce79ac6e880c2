//! The ward database at rest, through the real `hubctl` binary: where demo mode puts its data,
//! the demo/live walls, a wrong database key, and key recovery reading standard input only.
//! Every run passes its key in `INPATIENT_HUB_DB_KEY`, so no test touches a keychain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const OTHER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const DATABASE_FILE: &str = "inpatient-hub.sqlite";

/// hubctl with only what the test gives it: no data-dir variable, no demo variable, and a
/// home and XDG data folder of the test's own (where the default data folder is).
fn hubctl(home: &Path, key: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubctl"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("INPATIENT_HUB_DB_KEY", key)
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .env_remove("INPATIENT_HUB_DEMO")
        .env_remove("INPATIENT_HUB_USER");
    cmd
}

fn run(home: &Path, key: &str, args: &[&str]) -> Output {
    hubctl(home, key, args).output().expect("hubctl runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hubctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails_with(out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure, got success");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    stderr
}

/// The OS's default data folder for the test's home (Linux: `$XDG_DATA_HOME/inpatienthub`).
#[cfg(target_os = "linux")]
fn default_ward_folder(home: &Path) -> std::path::PathBuf {
    home.join("xdg-data").join("inpatienthub")
}

#[cfg(target_os = "linux")]
#[test]
fn demo_without_a_data_dir_never_opens_the_ward_folder() {
    let home = tempfile::tempdir().unwrap();
    let ward = default_ward_folder(home.path());

    ok(&run(home.path(), KEY, &["--demo", "patients", "list"]));
    assert!(
        ward.join("demo").join(DATABASE_FILE).exists(),
        "demo database in demo/"
    );
    assert!(
        !ward.join(DATABASE_FILE).exists(),
        "the ward's database was not touched"
    );

    // The variable behaves exactly as the flag.
    let out = hubctl(home.path(), KEY, &["patients", "list"])
        .env("INPATIENT_HUB_DEMO", "true")
        .output()
        .unwrap();
    ok(&out);
    assert!(
        !ward.join(DATABASE_FILE).exists(),
        "the ward's database was not touched"
    );

    // Live mode uses the ward's folder, and the two never meet.
    ok(&run(home.path(), KEY, &["patients", "list"]));
    assert!(ward.join(DATABASE_FILE).exists());
}

#[test]
fn a_live_database_is_refused_in_demo_mode_and_a_demo_one_in_live_mode() {
    let home = tempfile::tempdir().unwrap();
    let live = home.path().join("live");
    let live_arg = live.to_str().unwrap();
    ok(&run(
        home.path(),
        KEY,
        &["--data-dir", live_arg, "patients", "list"],
    ));
    fails_with(
        &run(
            home.path(),
            KEY,
            &["--demo", "--data-dir", live_arg, "patients", "list"],
        ),
        "this is the ward's live database; demo mode never opens it",
    );

    let demo = home.path().join("demo");
    let demo_arg = demo.to_str().unwrap();
    ok(&run(
        home.path(),
        KEY,
        &["--demo", "--data-dir", demo_arg, "patients", "list"],
    ));
    fails_with(
        &run(
            home.path(),
            KEY,
            &["--data-dir", demo_arg, "patients", "list"],
        ),
        "demo database of fictitious patients",
    );
    // Both still open in their own mode.
    ok(&run(
        home.path(),
        KEY,
        &["--data-dir", live_arg, "patients", "list"],
    ));
    ok(&run(
        home.path(),
        KEY,
        &["--demo", "--data-dir", demo_arg, "patients", "list"],
    ));
}

#[test]
fn a_wrong_db_key_variable_is_refused_clearly_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("ward");
    let dir_arg = dir.to_str().unwrap();
    ok(&run(
        home.path(),
        KEY,
        &["--data-dir", dir_arg, "patients", "list"],
    ));
    let before = std::fs::read(dir.join(DATABASE_FILE)).unwrap();

    let stderr = fails_with(
        &run(
            home.path(),
            OTHER_KEY,
            &["--data-dir", dir_arg, "patients", "list"],
        ),
        "INPATIENT_HUB_DB_KEY does not open the database",
    );
    assert!(stderr.contains("Nothing was changed"), "{stderr}");
    assert!(
        !stderr.contains(OTHER_KEY),
        "the key is never printed: {stderr}"
    );
    fails_with(
        &run(
            home.path(),
            "not hex",
            &["--data-dir", dir_arg, "patients", "list"],
        ),
        "INPATIENT_HUB_DB_KEY is not a database key",
    );
    assert_eq!(std::fs::read(dir.join(DATABASE_FILE)).unwrap(), before);
    ok(&run(
        home.path(),
        KEY,
        &["--data-dir", dir_arg, "patients", "list"],
    ));
}

#[test]
fn db_key_set_reads_standard_input_only_and_refuses_a_key_that_does_not_open_the_database() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("ward");
    let dir_arg = dir.to_str().unwrap();
    ok(&run(
        home.path(),
        KEY,
        &["--data-dir", dir_arg, "patients", "list"],
    ));

    // Never on the command line (shell history, process list).
    fails_with(
        &run(
            home.path(),
            KEY,
            &["--data-dir", dir_arg, "db-key", "set", OTHER_KEY],
        ),
        "unexpected argument",
    );
    // A key that does not open the database is refused before the keychain is touched.
    let mut child = hubctl(home.path(), KEY, &["--data-dir", dir_arg, "db-key", "set"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{OTHER_KEY}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    fails_with(&out, "cannot be opened with this key");
}

#[test]
fn db_key_status_says_whether_the_key_opens_the_database() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("ward");
    let dir_arg = dir.to_str().unwrap();
    let status = ok(&run(
        home.path(),
        KEY,
        &["--data-dir", dir_arg, "db-key", "status"],
    ));
    assert!(status.contains("(new)"), "{status}");
    ok(&run(
        home.path(),
        KEY,
        &["--data-dir", dir_arg, "patients", "list"],
    ));
    let status = ok(&run(
        home.path(),
        KEY,
        &["--data-dir", dir_arg, "db-key", "status"],
    ));
    assert!(status.contains("(encrypted)"), "{status}");
    assert!(status.contains("the key opens the database"), "{status}");
    let status = ok(&run(
        home.path(),
        OTHER_KEY,
        &["--data-dir", dir_arg, "db-key", "status"],
    ));
    assert!(status.contains("does NOT open"), "{status}");
    assert!(
        !status.contains(KEY) && !status.contains(OTHER_KEY),
        "{status}"
    );
}
