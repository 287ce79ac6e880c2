//! `hubctl` and hostile input (issue 11): the APIKey only from standard input, never from an
//! argument; output that a name or message from SystmOne cannot use to drive the terminal.
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const TEST_DB_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn hubctl_with_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubctl"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("INPATIENT_HUB_USER")
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .env_remove("INPATIENT_HUB_API_KEY")
        // The ward database's key given explicitly, as scripts do, so these tests need no
        // keychain (the one test of the keychain brings its own).
        .env("INPATIENT_HUB_DB_KEY", TEST_DB_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hubctl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Regression (issue 11): `hubctl api-key set KEY` put the key in the shell history and the
/// process list. It is refused, says why and how, and saves nothing.
#[test]
fn api_key_set_refuses_the_key_as_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    let out = hubctl_with_stdin(dir.path(), &["api-key", "set", "f31e26725b5491f2"], "");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("shell history"), "{err}");
    assert!(err.contains("process list"), "{err}");
    assert!(err.contains("did not save it"), "{err}");
    assert!(
        !err.contains("f31e26725b5491f2"),
        "the refusal repeats the key: {err}"
    );
}

/// The key piped in is read and validated before the keychain is touched: a key with a
/// space in it is refused with the validation message (and nothing is saved).
#[test]
fn api_key_set_reads_the_key_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = hubctl_with_stdin(dir.path(), &["api-key", "set"], "f31e 2672\n");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("spaces or line breaks"), "{err}");
    let out = hubctl_with_stdin(dir.path(), &["api-key", "set"], "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
}

/// The whole path: a key piped into `api-key set` is saved in an OS keychain (a private
/// D-Bus session with a throw-away gnome-keyring in a temporary home, so the user's real
/// keychain is never touched; `scripts/setup.sh` installs both), and is then there to clear.
#[test]
fn api_key_set_from_standard_input_saves_it_in_the_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let runtime = dir.path().join("run");
    for d in [&home, &runtime] {
        std::fs::create_dir_all(d).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let script = r#"
        printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90
        printf 'f31e26725b5491f2\n' | "$0" --data-dir "$1" api-key set || exit 91
        "$0" --data-dir "$1" api-key clear
    "#;
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script, env!("CARGO_BIN_EXE_hubctl")])
        .arg(dir.path().join("ward"))
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("INPATIENT_HUB_USER")
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .env_remove("INPATIENT_HUB_API_KEY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("dbus-run-session runs (scripts/setup.sh installs dbus and gnome-keyring)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        stderr(&out)
    );
    assert!(stdout.contains("APIKey saved"), "{stdout}");
    assert!(stdout.contains("removed from the keychain"), "{stdout}");
    assert!(!stdout.contains("f31e26725b5491f2"), "{stdout}");
}

/// Regression (issue 11): what hubctl prints can quote text it did not write (here the
/// due date as typed, in the error); an escape sequence in it is shown, not obeyed.
#[test]
fn an_escape_sequence_in_echoed_text_reaches_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let out = hubctl_with_stdin(
        dir.path(),
        &[
            "tasks",
            "add",
            "--patient",
            "1",
            "--title",
            "Bloods",
            "--due",
            "\u{1b}[2J",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        !err.contains('\u{1b}'),
        "raw ESC reached the terminal: {err:?}"
    );
    assert!(err.contains("\\u{1b}[2J"), "{err}");
}
