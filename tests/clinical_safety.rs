//! The hazard log (`docs/clinical-safety/hazard-log.md`) is a claim about tests: each hazard's
//! mitigation is "proved" by the automated tests its Tests column names. A renamed or deleted
//! test would leave the safety case pointing at nothing, silently. These tests make that a CI
//! failure: every name in the Tests column must resolve to a test that exists, and the log must
//! keep the columns and the hazards a trust's clinical safety officer expects to find.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

const EXPECTED_COLUMNS: [&str; 9] = [
    "ID",
    "Hazard",
    "Cause",
    "Effect",
    "Severity",
    "Likelihood",
    "Risk",
    "Mitigation",
    "Tests",
];

/// Hazards issue 11 requires the log to cover, each found by words in its Hazard cell.
const REQUIRED_HAZARDS: [(&str, &[&str]); 9] = [
    ("wrong patient", &["wrong patient"]),
    ("duplicate entry", &["filed twice", "created twice"]),
    ("lost note", &["lost note"]),
    ("stale demographics", &["stale demographics"]),
    ("wrong environment", &["wrong environment"]),
    ("task corruption", &["task corruption"]),
    ("unattributable action", &["unattributable"]),
    ("data exposure at rest", &["at rest"]),
    ("audit tampering", &["audit trail is altered"]),
];

struct HazardRow {
    id: String,
    cells: Vec<String>,
}

fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

fn hazard_table() -> (Vec<String>, Vec<HazardRow>) {
    let text =
        std::fs::read_to_string(repo_root().join("docs/clinical-safety/hazard-log.md")).unwrap();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("| ID "));
    let header = split_row(
        lines
            .next()
            .expect("the hazard table's header row `| ID | ...`"),
    );
    let rows = lines
        .skip(1) // the |---| separator
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells = split_row(l);
            HazardRow {
                id: cells[0].clone(),
                cells,
            }
        })
        .collect();
    (header, rows)
}

/// The backticked names in a Tests cell.
fn named_tests(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn rust_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// True when `source` defines a test function `name`: `fn name(` with a test attribute on one
/// of the few lines above it (`#[test]`, `#[tokio::test]`, or `#[test]` inside `proptest!`).
fn defines_test(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let signature = format!("fn {name}(");
    lines.iter().enumerate().any(|(i, line)| {
        line.contains(&signature)
            && lines[i.saturating_sub(6)..i]
                .iter()
                .any(|l| l.contains("#[test]") || l.contains("#[tokio::test"))
    })
}

/// Where a named test should be, and whether it is there. Names take three forms:
/// `crate::module::…::test_name` (a unit test under `crates/<crate>/src`, in a file whose path
/// holds the first module), `tests/<file>.rs::test_name`, and `tests/e2e/<file>.mjs::<title>`.
fn resolve(name: &str) -> Result<(), String> {
    let root = repo_root();
    if let Some((file, test)) = name.split_once(".rs::") {
        let path = root.join(format!("{file}.rs"));
        let source = std::fs::read_to_string(&path).map_err(|e| format!("{file}.rs: {e}"))?;
        return if defines_test(&source, test) {
            Ok(())
        } else {
            Err(format!("{file}.rs has no test fn {test}"))
        };
    }
    if let Some((file, title)) = name.split_once(".mjs::") {
        let path = root.join(format!("{file}.mjs"));
        let source = std::fs::read_to_string(&path).map_err(|e| format!("{file}.mjs: {e}"))?;
        // A double quote inside a double-quoted JS title is written \" in the source.
        let escaped = title.replace('"', "\\\"");
        let declared = [
            format!("test(\"{escaped}\""),
            format!("test('{title}'"),
            format!("it(\"{escaped}\""),
        ];
        return if declared.iter().any(|d| source.contains(d.as_str())) {
            Ok(())
        } else {
            Err(format!("{file}.mjs has no test titled \"{title}\""))
        };
    }
    let segments: Vec<&str> = name.split("::").collect();
    let [krate, first_module, .., test] = segments.as_slice() else {
        return Err(format!(
            "`{name}` is not crate::module::test, tests/file.rs::test or tests/e2e/file.mjs::title"
        ));
    };
    let crate_dir = root.join("crates").join(krate);
    if !crate_dir.is_dir() {
        return Err(format!("no crate directory crates/{krate}"));
    }
    let found = rust_files_under(&crate_dir.join("src"))
        .into_iter()
        .filter(|p| {
            p.strip_prefix(&crate_dir)
                .map(|rel| rel.to_string_lossy().contains(first_module))
                .unwrap_or(false)
        })
        .any(|p| defines_test(&std::fs::read_to_string(&p).unwrap_or_default(), test));
    if found {
        Ok(())
    } else {
        Err(format!(
            "no test fn {test} in a file of crates/{krate}/src under `{first_module}`"
        ))
    }
}

#[test]
fn the_hazard_log_has_the_dcb0129_columns() {
    let (header, rows) = hazard_table();
    assert_eq!(header, EXPECTED_COLUMNS, "hazard table columns");
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(
            row.cells.len(),
            EXPECTED_COLUMNS.len(),
            "{}: every row fills every column (a | inside a cell breaks the table)",
            row.id
        );
    }
}

#[test]
fn every_required_hazard_is_in_the_log() {
    let (_, rows) = hazard_table();
    for (hazard, words) in REQUIRED_HAZARDS {
        let covered = rows.iter().any(|r| {
            let cell = r.cells[1].to_lowercase();
            words.iter().any(|w| cell.contains(w))
        });
        assert!(covered, "the hazard log has no row for {hazard}");
    }
}

#[test]
fn every_test_named_in_the_hazard_log_exists() {
    let (_, rows) = hazard_table();
    let mut missing = Vec::new();
    for row in &rows {
        let tests = named_tests(&row.cells[8]);
        if tests.is_empty() {
            missing.push(format!("{}: names no test", row.id));
        }
        for name in tests {
            if let Err(why) = resolve(&name) {
                missing.push(format!("{}: `{name}`: {why}", row.id));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the hazard log names tests that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_resolver_tells_a_missing_test_from_a_present_one() {
    // The checker itself must be able to fail, or the log could name anything.
    assert!(resolve("tests/clinical_safety.rs::every_test_named_in_the_hazard_log_exists").is_ok());
    assert!(resolve("tests/clinical_safety.rs::no_such_test").is_err());
    assert!(resolve("domain::nhs_number::tests::no_such_test").is_err());
    assert!(resolve("nonexistent::x::tests::y").is_err());
    assert!(resolve("tests/e2e/notes.test.mjs::no such title").is_err());
}
