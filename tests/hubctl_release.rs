//! The simulator never ships (issue 11): release builds of `hubctl` leave it out, and where
//! it is built in it listens on the local host only, on a port given explicitly.
//!
//! Each test runs against the binary cargo built for this test run: `cargo test` (no
//! features, as the installers build it) checks the refusal; `--features hubctl/simulator`
//! (scripts/test-all.sh) checks the simulator's own guards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hubctl(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", "5a".repeat(32))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("INPATIENT_HUB_DATA_DIR")
        .output()
        .expect("hubctl runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo {args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What the installers run before packing hubctl beside the app.
fn release_build_command() -> String {
    let text = std::fs::read_to_string(workspace_root().join("tauri.conf.json")).unwrap();
    let conf: Value = serde_json::from_str(&text).unwrap();
    conf["build"]["beforeBuildCommand"]
        .as_str()
        .expect("tauri.conf.json has a beforeBuildCommand")
        .to_owned()
}

#[test]
fn the_release_build_leaves_the_simulator_out() {
    // The installers' build asks for no features, and hubctl's defaults hold none.
    let command = release_build_command();
    assert!(
        command.contains("-p hubctl") && command.contains("--release"),
        "{command}"
    );
    for enabling in ["--features", "--all-features", "-F ", "simulator"] {
        assert!(
            !command.contains(enabling),
            "the release build must not turn the simulator on: {command}"
        );
    }
    let metadata: Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))
    .unwrap();
    let hubctl = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hubctl")
        .expect("hubctl is a workspace member");
    let defaults = hubctl["features"]["default"].as_array().cloned();
    assert!(
        defaults.unwrap_or_default().is_empty(),
        "hubctl's default features must stay empty: {}",
        hubctl["features"]
    );
    let normal_simulator = hubctl["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "simulator" && d["kind"].is_null())
        .expect("hubctl can still be built with the simulator for demos");
    assert_eq!(normal_simulator["optional"], true);
    // And the resolved release build: no simulator among what the binary links.
    let tree = cargo(&[
        "tree",
        "--offline",
        "-p",
        "hubctl",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    assert!(
        !tree.lines().any(|line| line.starts_with("simulator ")),
        "the release hubctl links the simulator:\n{tree}"
    );
}

#[cfg(not(feature = "simulator"))]
#[test]
fn a_build_without_the_simulator_refuses_sim_and_simctl_clearly() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["sim", "--port", "0"][..],
        &["sim"][..],
        &["simctl", "status"][..],
    ] {
        let out = hubctl(dir.path(), args);
        assert!(!out.status.success(), "{args:?} must fail");
        let text = stderr(&out);
        assert!(
            text.contains("built without the SystmOne simulator"),
            "{args:?}: {text}"
        );
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    }
    // Nor is it offered in the help.
    let help = Command::new(env!("CARGO_BIN_EXE_hubctl"))
        // Hermetic: the test database's key, never this account's keychain.
        .env("INPATIENT_HUB_DB_KEY", "5a".repeat(32))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        !help
            .lines()
            .map(str::trim_start)
            .any(|line| line.starts_with("sim ") || line.starts_with("simctl")),
        "{help}"
    );
}

#[cfg(feature = "simulator")]
#[test]
fn sim_needs_an_explicit_port_and_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = hubctl(dir.path(), &["sim"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--port"), "{}", stderr(&out));
    for bind in ["0.0.0.0", "192.168.0.10", "::"] {
        let out = hubctl(dir.path(), &["sim", "--port", "0", "--bind", bind]);
        assert!(!out.status.success(), "{bind} must be refused");
        assert!(
            stderr(&out).contains("local host only"),
            "{bind}: {}",
            stderr(&out)
        );
    }
}
