//! No patient-identifiable data in the logs, at any level: `hubctl` runs the flows that
//! handle NHS numbers, names, search details and note text (ward patients, tasks, SystmOne
//! search, lookup, link, record, a note approved and filed, a task pushed to SystmOne) against
//! the simulator with `INPATIENT_HUB_LOG=trace`, and every line of every log file it wrote
//! is scanned for them.
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use simulator::{SimConfig, SimControl, Simulator};
use std::path::Path;
use std::process::{Command, Output};

/// A ward-only patient: a name and a valid NHS number (Modulus 11) no simulator patient has.
const WARD_NAME_FIRST: &str = "Zebulon";
const WARD_NAME_LAST: &str = "Quillfeather";
const WARD_NHS: &str = "4010232137";
const NOTE_PHRASE: &str = "marmalade-coloured bruising";

struct Run<'a> {
    data_dir: &'a Path,
    log_dir: &'a Path,
    systmone: String,
}

impl Run<'_> {
    fn hubctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hubctl"))
            // Hermetic: the test database's key, never this account's keychain.
            .env("INPATIENT_HUB_DB_KEY", "5a".repeat(32))
            .env("INPATIENT_HUB_LOG", "trace")
            .env("INPATIENT_HUB_LOG_DIR", self.log_dir)
            .env_remove("INPATIENT_HUB_API_KEY")
            .env_remove("INPATIENT_HUB_DATA_DIR")
            .env_remove("INPATIENT_HUB_LOG_STDERR")
            .arg("--data-dir")
            .arg(self.data_dir)
            .args(["--demo", "--systmone", &self.systmone])
            .args(["--systmone-timeout", "5"])
            .args(args)
            .output()
            .expect("hubctl runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.hubctl(args);
        assert!(
            out.status.success(),
            "hubctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }
}

/// Every way an NHS number can be written: 10 digits, 3-3-4 with spaces or hyphens.
fn spellings(nhs: &str) -> Vec<String> {
    let (a, rest) = nhs.split_at(3);
    let (b, c) = rest.split_at(3);
    vec![
        nhs.to_owned(),
        format!("{a} {b} {c}"),
        format!("{a}-{b}-{c}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_patient_flows_carry_no_nhs_number_name_or_note_text() {
    let sim_dir = tempfile::tempdir().unwrap();
    let mut config = SimConfig::new(sim_dir.path().to_path_buf());
    config.port = 0;
    let sim = Simulator::start(config).await.unwrap();
    let control = SimControl::open(sim.data_dir()).unwrap();
    let patient = control
        .patients(50)
        .unwrap()
        .into_iter()
        .find(|p| p.date_of_death.is_none() && p.care_end_date.is_none())
        .unwrap();
    // "Title First Surname".
    let name_parts: Vec<&str> = patient.name.split_whitespace().collect();
    let (sim_first, sim_surname) = (name_parts[1], *name_parts.last().unwrap());
    let sim_nhs = patient.nhs_number.as_str();
    let dob = patient.date_of_birth.format("%Y-%m-%d").to_string();

    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let run = Run {
        data_dir: data.path(),
        log_dir: logs.path(),
        systmone: sim.addr().to_string(),
    };
    let ward_name = format!("{WARD_NAME_FIRST} {WARD_NAME_LAST}");
    let spaced_ward_nhs = &spellings(WARD_NHS)[1];

    // The ward's own patient (NHS number typed with spaces, as staff do) and a task naming them.
    let ward_patient = run.json(&[
        "patients",
        "add",
        "--bed",
        "Bed 7",
        "--name",
        &ward_name,
        "--nhs",
        spaced_ward_nhs,
    ]);
    let ward_id = ward_patient["id"].as_i64().unwrap().to_string();
    run.ok(&[
        "tasks",
        "add",
        "--patient",
        &ward_id,
        "--title",
        &format!("Dress {WARD_NAME_LAST}'s leg wound"),
    ]);
    run.ok(&["patients", "list"]);
    run.ok(&["tasks", "list"]);

    // SystmOne: search by surname and date of birth, look up, link, read the record.
    let found = run.ok(&["search", "--surname", sim_surname, "--dob", &dob]);
    assert!(
        found.contains(sim_nhs) || found.contains(&spellings(sim_nhs)[1]),
        "{found}"
    );
    run.ok(&["lookup", sim_nhs]);
    let linked_patient = run.json(&["patients", "add", "--bed", "Bed 8", "--name", &patient.name]);
    let linked_id = linked_patient["id"].as_i64().unwrap().to_string();
    run.ok(&["link", sim_nhs, "--patient", &linked_id]);
    run.ok(&["record", sim_nhs, "--filter", "Demographics"]);

    // A note about them, approved and filed; a task pushed to SystmOne.
    let note_text = format!("Seen on the ward round: {NOTE_PHRASE} over the left shin.");
    let drafted = run.ok(&["notes", "add", "--nhs", sim_nhs, "--text", &note_text]);
    let note_id = drafted.split_whitespace().last().unwrap().to_owned();
    run.ok(&["notes", "preview", &note_id]);
    run.ok(&["notes", "approve", &note_id]);
    run.ok(&[
        "tasks",
        "add",
        "--nhs",
        sim_nhs,
        "--title",
        &format!("Review {sim_surname} bloods"),
    ]);
    run.ok(&["sync", "--until-empty", "--max-wait", "120"]);
    let filed = control.filed_events(sim_nhs, false).unwrap();
    assert!(
        filed.iter().any(|e| e.narrative.contains(NOTE_PHRASE)),
        "the note reached the simulator, so its text went through the logged paths"
    );
    run.ok(&["audit", "--limit", "50"]);
    run.ok(&["outbox", "--all"]);

    // The needles: every spelling of both NHS numbers, each name, the search details and the
    // note's text.
    let mut needles: Vec<String> = spellings(WARD_NHS);
    needles.extend(spellings(sim_nhs));
    needles.extend(
        [
            WARD_NAME_FIRST,
            WARD_NAME_LAST,
            sim_first,
            sim_surname,
            NOTE_PHRASE,
            &dob,
        ]
        .map(str::to_owned),
    );
    if let Some(postcode) = &patient.postcode {
        needles.push(postcode.clone());
    }

    let mut files = 0;
    let mut lines = 0;
    let mut detailed = 0;
    for entry in std::fs::read_dir(logs.path()).unwrap() {
        let path = entry.unwrap().path();
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            lines += 1;
            if line.contains("TRACE") || line.contains("DEBUG") {
                detailed += 1;
            }
            let lower = line.to_lowercase();
            for needle in &needles {
                assert!(
                    !lower.contains(&needle.to_lowercase()),
                    "{} carries patient data ({needle:?}): {line}",
                    path.display()
                );
            }
        }
    }
    // The scan saw the logs it was meant to: hubctl's own file, at trace and debug level
    // (the SystmOne requests of the flows above are logged at debug).
    assert!(files >= 1, "no log file in {}", logs.path().display());
    assert!(lines > 20, "only {lines} log lines");
    assert!(
        detailed > 0,
        "no debug or trace line: INPATIENT_HUB_LOG=trace not applied"
    );
    let all: String = std::fs::read_dir(logs.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        all.contains("sending SystmOne request"),
        "SystmOne requests are logged"
    );
}

/// `hubctl` run only for its logs: the log folder is the test's, nothing else is opened.
fn hubctl_logs(log_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hubctl"))
        .env("INPATIENT_HUB_LOG_DIR", log_dir)
        .env_remove("INPATIENT_HUB_LOG")
        .env_remove("INPATIENT_HUB_LOG_STDERR")
        .args(args)
        .output()
        .expect("hubctl runs")
}

fn today_file(log_dir: &Path, program: hub::logging::LogProgram) -> std::path::PathBuf {
    log_dir.join(program.file_name(chrono::Utc::now().date_naive()))
}

#[test]
fn hubctl_logs_shows_where_the_logs_are_and_tails_the_newest() {
    use hub::logging::LogProgram;
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().join("logs");
    // The app's older and newest daily files.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("inpatient-hub.2020-01-01.log"), "old day\n").unwrap();
    let app_today = today_file(&dir, LogProgram::App);
    let text: String = (1..=30).map(|i| format!("app line {i}\n")).collect();
    std::fs::write(&app_today, text).unwrap();

    let out = hubctl_logs(&dir, &["logs"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains(&format!("logs: {}", dir.display())),
        "{shown}"
    );
    assert!(shown.contains(&app_today.display().to_string()), "{shown}");
    // hubctl logs itself, to its own file, private to this account.
    let hubctl_today = today_file(&dir, LogProgram::Hubctl);
    assert!(
        shown.contains(&hubctl_today.display().to_string()),
        "{shown}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&hubctl_today), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    let json: serde_json::Value =
        serde_json::from_slice(&hubctl_logs(&dir, &["--json", "logs"]).stdout).unwrap();
    assert_eq!(json["app_newest"], app_today.display().to_string());
    assert_eq!(json["retained_daily_files"], 14);

    let out = hubctl_logs(&dir, &["logs", "--tail", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "app line 28\napp line 29\napp line 30\n"
    );
    // `--tail` alone: the last 20.
    let out = hubctl_logs(&dir, &["logs", "--tail"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 20);
}

#[test]
fn hubctl_logs_tail_without_a_log_says_so_in_one_line() {
    let logs = tempfile::tempdir().unwrap();
    let out = hubctl_logs(logs.path(), &["logs", "--tail", "5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no inpatient-hub log file"), "{err}");
    let out = hubctl_logs(logs.path(), &["logs", "--tail", "many"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("many"));
}

#[test]
fn hubctl_logs_follow_prints_new_lines_and_stops_when_the_reader_goes() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};
    let logs = tempfile::tempdir().unwrap();
    let app_today = today_file(logs.path(), hub::logging::LogProgram::App);
    std::fs::write(&app_today, "before 1\nbefore 2\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubctl"))
        .env("INPATIENT_HUB_LOG_DIR", logs.path())
        .args(["logs", "--follow", "--tail", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "before 2\n");

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&app_today)
        .unwrap();
    // A line written in two parts is printed once, whole.
    write!(file, "added ").unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    writeln!(file, "later").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "added later\n");

    // The reader goes away: the next line written ends the follow, quietly and successfully.
    drop(reader);
    writeln!(file, "nobody reads this").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hubctl logs --follow kept running"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}
