//! The crate graph is the architecture: these tests read `cargo metadata` and fail when a
//! crate gains a dependency ARCHITECTURE.md does not allow, so the walls in the codemap are
//! checked by the compiler's own view of the workspace rather than by reading source text.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Every workspace crate and the workspace crates it may depend on (normal dependencies;
/// dev-dependencies are for tests and may reach further down, never up).
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("systmone-wire", &["domain"]),
    ("store", &["domain"]),
    ("systmone", &["domain", "systmone-wire"]),
    ("hub", &["domain", "systmone-wire", "store", "systmone"]),
    ("simulator", &["systmone-wire"]),
    ("test-support", &["domain", "systmone-wire", "hub"]),
    (
        "hubctl",
        &[
            "domain",
            "systmone-wire",
            "store",
            "systmone",
            "hub",
            "simulator",
        ],
    ),
    ("inpatient-hub", &["domain", "hub"]),
    ("flow-tests", &[]),
    ("benches", &[]),
];

struct Graph {
    members: BTreeMap<String, String>,
    /// workspace member → the dependencies its manifest marks optional
    optional_deps: BTreeMap<String, BTreeSet<String>>,
    /// package id → (name, normal dependency ids)
    nodes: BTreeMap<String, (String, Vec<String>)>,
}

/// The host's target triple: the graph is read for the platform the tests run on (reading it
/// for every platform would need the crates of platforms nobody builds here).
fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

fn metadata() -> &'static Graph {
    static GRAPH: OnceLock<Graph> = OnceLock::new();
    GRAPH.get_or_init(read_metadata)
}

fn read_metadata() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            // The largest build: hubctl with its optional simulator (release builds leave it
            // out; tests/hubctl_release.rs checks that), so every edge is checked.
            "--features",
            "hubctl/simulator",
            "--filter-platform",
        ])
        .arg(host_triple())
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names: BTreeMap<String, String> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let members = v["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap().to_owned();
            (names[&id].clone(), id)
        })
        .collect();
    let nodes = v["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap().to_owned();
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            (id.clone(), (names[&id].clone(), deps))
        })
        .collect();
    let optional_deps = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"].is_null())
        .map(|p| {
            let optional = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["optional"].as_bool() == Some(true))
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), optional)
        })
        .collect();
    Graph {
        members,
        optional_deps,
        nodes,
    }
}

impl Graph {
    fn direct(&self, member: &str) -> BTreeSet<String> {
        let id = &self.members[member];
        self.nodes[id]
            .1
            .iter()
            .map(|d| self.nodes[d].0.clone())
            .collect()
    }

    fn reachable(&self, member: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.members[member].clone()];
        while let Some(id) = stack.pop() {
            for dep in &self.nodes[&id].1 {
                if seen.insert(self.nodes[dep].0.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen
    }
}

#[test]
fn every_crate_depends_only_on_the_crates_the_codemap_allows() {
    let graph = metadata();
    let listed: BTreeSet<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
    let actual: BTreeSet<&str> = graph.members.keys().map(String::as_str).collect();
    assert_eq!(
        listed, actual,
        "every workspace member has a row in ALLOWED (and ARCHITECTURE.md)"
    );
    for (member, allowed) in ALLOWED {
        let internal: BTreeSet<String> = graph
            .direct(member)
            .into_iter()
            .filter(|d| graph.members.contains_key(d))
            .collect();
        let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        assert_eq!(internal, allowed, "workspace dependencies of {member}");
    }
}

#[test]
fn tauri_is_reachable_from_the_app_package_only() {
    let graph = metadata();
    for member in graph.members.keys() {
        let reaches_tauri = graph
            .reachable(member)
            .iter()
            .any(|d| d == "tauri" || d.starts_with("webkit2gtk"));
        assert_eq!(
            reaches_tauri,
            member == "inpatient-hub",
            "{member} and Tauri/WebKit"
        );
    }
}

#[test]
fn only_the_store_and_the_simulator_speak_sql() {
    // The store owns every SQL statement of the ward database; the simulator keeps its own
    // fictitious SystmOne in a database of its own. The domain's optional `sql` feature (which
    // only the store turns on) lets typed ids be SQL parameters; it runs no SQL.
    let graph = metadata();
    for member in graph.members.keys() {
        let direct = graph.direct(member).contains("rusqlite");
        let expected = matches!(member.as_str(), "store" | "simulator" | "domain");
        assert_eq!(direct, expected, "{member} depends on rusqlite directly");
    }
    assert_eq!(
        graph.optional_deps["domain"],
        BTreeSet::from(["rusqlite".to_owned()])
    );
}

#[test]
fn no_window_command_runs_on_the_main_thread() {
    // A synchronous #[tauri::command] runs on the GTK main thread and freezes the window
    // while it waits for the database or SystmOne.
    let shell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src-tauri/src/shell");
    let mut commands = 0;
    for entry in std::fs::read_dir(&shell).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("#[tauri::command") {
                commands += 1;
                let signature = lines[i + 1..]
                    .iter()
                    .find(|l| !l.starts_with("#[") && !l.starts_with("//"))
                    .unwrap();
                assert!(
                    line.contains("async")
                        || signature.starts_with("async fn")
                        || signature.starts_with("pub async fn"),
                    "{}: `{signature}` is a synchronous command",
                    path.display()
                );
            }
        }
    }
    assert!(commands > 20, "found the commands ({commands})");
}
