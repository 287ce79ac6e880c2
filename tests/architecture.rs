//! Enforces ARCHITECTURE.md's import rules on the source tree: core modules never import
//! tauri (so they stay testable with no window), and only the shell does.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("source dir is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_shell_and_binaries_import_tauri() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src-tauri/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "found the sources");
    let mut offenders = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
        let allowed = rel.starts_with("shell/") || rel == "main.rs";
        let text = fs::read_to_string(file).expect("readable");
        let imports_tauri = text.lines().any(|l| {
            let l = l.trim_start();
            !l.starts_with("//") && (l.contains("tauri::") || l.contains("tauri_plugin") || l.starts_with("use tauri"))
        });
        if imports_tauri && !allowed {
            offenders.push(rel);
        }
    }
    assert!(offenders.is_empty(), "core modules must not import tauri: {offenders:?}");
}

#[test]
fn no_unwrap_outside_tests_in_core_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src-tauri/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for file in &files {
        // A module's separate test file (`foo/tests.rs`, included under `#[cfg(test)]`) is test code.
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = fs::read_to_string(file).expect("readable");
        // Everything after the first `#[cfg(test)]` is test code by this codebase's convention.
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in production.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(".unwrap()") || code.contains(".expect(") {
                offenders.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "unwrap/expect in production code: {offenders:?}");
}
