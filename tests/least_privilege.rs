//! Least privilege for the window (issue 11): the capability grants the app's own commands,
//! one `allow-` permission each, and the two event permissions the UI uses — never a broad
//! `*:default` grant — and shipped builds have no devtools. Read from the files themselves
//! (and `cargo metadata`), so a command added without its grant, or a broad grant added for
//! convenience, fails here rather than silently in the window (a denied invoke).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The core permissions the UI needs: `ui/js/events.js` listens to `hub:changed` and
/// `hub:systmone` through `window.__TAURI__.event`. `core.invoke` of the app's own commands
/// needs no core permission.
const CORE_PERMISSIONS: &[&str] = &["core:event:allow-listen", "core:event:allow-unlisten"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names between `generate_handler![` and `]` in the shell's command list.
fn handler_commands() -> BTreeSet<String> {
    let text = read("src-tauri/src/shell/commands.rs");
    let start =
        text.find("generate_handler![").expect("the invoke handler") + "generate_handler![".len();
    let end = start + text[start..].find(']').unwrap();
    text[start..end]
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The strings in `APP_COMMANDS` in src-tauri/build.rs.
fn build_commands() -> BTreeSet<String> {
    let text = read("src-tauri/build.rs");
    let start = text
        .find("APP_COMMANDS: &[&str] = &[")
        .expect("APP_COMMANDS in build.rs");
    let end = start + text[start..].find("];").unwrap();
    text[start..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Every capability file's permissions (identifiers; an object grant's `identifier`).
fn granted() -> Vec<String> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(root().join("capabilities")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let cap: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for p in cap["permissions"].as_array().unwrap() {
            let id = p.as_str().or_else(|| p["identifier"].as_str()).unwrap();
            all.push(id.to_owned());
        }
    }
    all
}

/// Every `#[tauri::command]` function in the shell.
fn defined_commands() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("src-tauri/src/shell")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("#[tauri::command") {
                let signature = lines[i + 1..].iter().find(|l| l.contains("fn ")).unwrap();
                let after = signature.split("fn ").nth(1).unwrap();
                names.insert(after.split(['(', '<']).next().unwrap().trim().to_owned());
            }
        }
    }
    names
}

#[test]
fn capabilities_grant_no_broad_default_permission() {
    let granted = granted();
    assert!(!granted.is_empty());
    for p in &granted {
        assert!(
            p != "default" && !p.ends_with(":default"),
            "capabilities grant `{p}`, a plugin's whole default set: grant the exact permissions the UI uses"
        );
    }
    let core: BTreeSet<&str> = granted
        .iter()
        .map(String::as_str)
        .filter(|p| p.contains(':'))
        .collect();
    let allowed: BTreeSet<&str> = CORE_PERMISSIONS.iter().copied().collect();
    assert!(
        core.is_subset(&allowed),
        "plugin/core permissions beyond what the UI uses: {:?}",
        core.difference(&allowed).collect::<Vec<_>>()
    );
}

#[test]
fn every_window_command_is_declared_and_granted_and_nothing_else_is() {
    let handler = handler_commands();
    assert!(
        handler.len() > 20,
        "found the invoke handler's commands ({})",
        handler.len()
    );
    assert_eq!(
        build_commands(),
        handler,
        "src-tauri/build.rs APP_COMMANDS must list exactly the invoke handler's commands"
    );
    assert_eq!(
        defined_commands(),
        handler,
        "every #[tauri::command] is registered in the invoke handler, and only those"
    );
    let app_grants: BTreeSet<String> = granted().into_iter().filter(|p| !p.contains(':')).collect();
    let expected: BTreeSet<String> = handler
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert_eq!(
        app_grants, expected,
        "capabilities/default.json must grant allow-<command> for each command, and nothing more"
    );
}

#[test]
fn shipped_builds_have_no_devtools() {
    // Tauri opens devtools in debug builds only, unless its `devtools` feature is on or a
    // window config forces them.
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tauri_features: Vec<&str> = v["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["id"].as_str().unwrap().contains("#tauri@"))
        .flat_map(|n| n["features"].as_array().unwrap())
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        !tauri_features.is_empty(),
        "found tauri in the resolved graph"
    );
    assert!(
        !tauri_features.contains(&"devtools"),
        "tauri is built with its `devtools` feature: release builds would ship devtools"
    );
    let conf: Value = serde_json::from_str(&read("tauri.conf.json")).unwrap();
    for window in conf["app"]["windows"].as_array().unwrap() {
        assert_ne!(
            window.get("devtools"),
            Some(&Value::Bool(true)),
            "a window forces devtools on"
        );
    }
}
