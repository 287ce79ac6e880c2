//! Where the window and `hubctl` write their logs, and how: daily files in the OS's log folder
//! for a ward's IT team (and on standard error), kept for [`RETAINED_DAILY_FILES`] days.
//!
//! One module for both binaries so they always log to the same folder, in the same format,
//! under the same filter (`INPATIENT_HUB_LOG`), each to its own file name.
//!
//! What goes in: ids, codes, counts and kinds — never NHS numbers, names, note text, search
//! criteria, addresses or SystmOne's own XML or messages, at any level (the patient types
//! redact themselves under `Debug`; their `Display` and raw strings are never logged).
//! `tests/log_scan.rs` and `tests/e2e/log-scan.test.mjs` run real flows at `trace` and scan
//! every line for the NHS numbers and names they used.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The log filter (`tracing` directives, e.g. `info` or `hub=debug,info`); default `info`.
pub const LOG_FILTER_ENV: &str = "INPATIENT_HUB_LOG";
/// Overrides the log folder (tests; IT sending logs to another local folder).
pub const LOG_DIR_ENV: &str = "INPATIENT_HUB_LOG_DIR";
/// Also copies `hubctl`'s log to standard error (which otherwise carries only its one-line
/// errors, so scripts can rely on it).
pub const LOG_STDERR_ENV: &str = "INPATIENT_HUB_LOG_STDERR";
/// Daily files kept per program: two weeks covers a fortnight's incident review; older ones
/// are deleted when a new day's file starts (and at start-up).
pub const RETAINED_DAILY_FILES: usize = 14;
const DEFAULT_FILTER: &str = "info";
const LOG_SUFFIX: &str = "log";

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("no log folder could be found for this user; set {LOG_DIR_ENV}")]
    NoLogDir,
    #[error("the log folder {path} could not be used: {source}")]
    Folder { path: String, source: io::Error },
    #[error("the log file {path} could not be read: {source}")]
    Read { path: String, source: io::Error },
    #[error("no {program} log file in {dir} yet")]
    NoLogFile { program: &'static str, dir: String },
}

/// Which binary is logging: each has its own file name in the shared folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogProgram {
    /// The window: `inpatient-hub.YYYY-MM-DD.log`.
    App,
    /// The command line: `hubctl.YYYY-MM-DD.log`.
    Hubctl,
}

impl LogProgram {
    pub const ALL: [LogProgram; 2] = [LogProgram::App, LogProgram::Hubctl];

    /// The file name's start. The date goes before `.log` so Windows opens the files in a
    /// text editor with a double-click.
    pub fn file_prefix(self) -> &'static str {
        match self {
            LogProgram::App => "inpatient-hub",
            LogProgram::Hubctl => "hubctl",
        }
    }

    /// The file this program writes on `date` (UTC, as the appender rolls at UTC midnight).
    pub fn file_name(self, date: NaiveDate) -> String {
        format!(
            "{}.{}.{LOG_SUFFIX}",
            self.file_prefix(),
            date.format("%Y-%m-%d")
        )
    }

    /// Whether `name` is one of this program's daily files.
    fn owns(self, name: &str) -> bool {
        name.strip_prefix(self.file_prefix())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(LOG_SUFFIX))
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok())
    }
}

/// Whether the log also goes to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrCopy {
    /// The window: started from a terminal, its log shows there too.
    Always,
    /// `hubctl`: only when `INPATIENT_HUB_LOG_STDERR` is set to something other than `0`.
    WhenAsked,
}

/// Keeps the file writer's background thread alive: hold it until the process ends, so the
/// last lines are flushed to disk when it is dropped.
#[must_use = "dropping the guard stops writing the log file"]
pub struct LoggingGuard {
    _file_writer: Option<WorkerGuard>,
    /// The folder the log files are in, when they could be opened.
    pub dir: Option<PathBuf>,
}

/// The log folder: `INPATIENT_HUB_LOG_DIR`, else the OS's place for an application's logs:
/// `$XDG_STATE_HOME/inpatienthub/logs` (`~/.local/state/inpatienthub/logs`) on Linux,
/// `%LOCALAPPDATA%\NHS\Inpatient Hub\logs` on Windows (local, not roaming, beside the data),
/// `~/Library/Logs/Inpatient Hub` on macOS (where Console.app looks).
pub fn log_dir() -> Result<PathBuf, LoggingError> {
    if let Some(dir) = std::env::var_os(LOG_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    os_log_dir().ok_or(LoggingError::NoLogDir)
}

#[cfg(target_os = "macos")]
fn os_log_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|base| base.home_dir().join("Library/Logs/Inpatient Hub"))
}

#[cfg(not(target_os = "macos"))]
fn os_log_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("uk", "NHS", "Inpatient Hub")?;
    // Linux has a state directory for logs; Windows' local data folder ends in `data`, and
    // the logs go beside it.
    match dirs.state_dir() {
        Some(state) => Some(state.join("logs")),
        None => {
            let local = dirs.data_local_dir();
            Some(local.parent().unwrap_or(local).join("logs"))
        }
    }
}

/// Sets up logging for the whole process: the daily file (when the folder can be used) and
/// standard error, both under `INPATIENT_HUB_LOG`. Never fails: a log folder that cannot be
/// used, or a filter that does not parse, is reported and logging carries on without it.
pub fn init(program: LogProgram, stderr: StderrCopy) -> LoggingGuard {
    let (filter_text, bad_filter) = filter_from_env();
    let to_stderr = match stderr {
        StderrCopy::Always => true,
        StderrCopy::WhenAsked => {
            std::env::var_os(LOG_STDERR_ENV).is_some_and(|v| !v.is_empty() && v != "0")
        }
    };
    let opened = log_dir().and_then(|dir| open_daily_file(&dir, program).map(|w| (dir, w)));
    let (file_layer, guard, dir, folder_problem) = match opened {
        Ok((dir, writer)) => {
            let (writer, guard) = tracing_appender::non_blocking(writer);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(EnvFilter::new(&filter_text));
            (Some(layer), Some(guard), Some(dir), None)
        }
        Err(e) => (None, None, None, Some(e)),
    };
    let stderr_layer = to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_filter(EnvFilter::new(&filter_text))
    });
    // Fails only if a subscriber is already set (a test harness): that one keeps logging.
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    if let Some(problem) = folder_problem {
        // Said on stderr whatever the copy setting: without a file, IT must learn why.
        eprintln!(
            "{}: logging to standard error only: {problem}",
            program.file_prefix()
        );
    }
    if let Some(bad) = bad_filter {
        tracing::warn!(
            "{LOG_FILTER_ENV} is not a valid log filter ({bad}); using {DEFAULT_FILTER}"
        );
    }
    LoggingGuard {
        _file_writer: guard,
        dir,
    }
}

/// The filter text to use, and the parse error when `INPATIENT_HUB_LOG` was set but invalid.
fn filter_from_env() -> (String, Option<String>) {
    match std::env::var(LOG_FILTER_ENV) {
        Ok(text) if !text.trim().is_empty() => match EnvFilter::try_new(&text) {
            Ok(_) => (text, None),
            Err(e) => (DEFAULT_FILTER.to_owned(), Some(e.to_string())),
        },
        _ => (DEFAULT_FILTER.to_owned(), None),
    }
}

/// Opens `program`'s daily file in `dir` (made 0700 on unix), keeping the latest
/// [`RETAINED_DAILY_FILES`], each file 0600.
pub fn open_daily_file(dir: &Path, program: LogProgram) -> Result<PrivateDailyFile, LoggingError> {
    let folder_error = |source: io::Error| LoggingError::Folder {
        path: dir.display().to_string(),
        source,
    };
    create_private_dir(dir).map_err(folder_error)?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(program.file_prefix())
        .filename_suffix(LOG_SUFFIX)
        .max_log_files(RETAINED_DAILY_FILES)
        .build(dir)
        .map_err(|e| folder_error(io::Error::other(e)))?;
    // The appender has just opened today's file with the process's default mode (inside a
    // folder no one else can enter); it is made 0600 now, and each later day's file on its
    // first write. (Made before the appender instead, it would count as an old file to prune.)
    let today = Utc::now().date_naive();
    let private_for = restrict_to_owner(&dir.join(program.file_name(today)), 0o600)
        .is_ok()
        .then_some(today);
    Ok(PrivateDailyFile {
        appender,
        dir: dir.to_path_buf(),
        program,
        private_for,
    })
}

/// The rolling appender, with each new day's file restricted to this account as soon as it
/// exists (the appender creates files with the process's default mode).
pub struct PrivateDailyFile {
    appender: RollingFileAppender,
    dir: PathBuf,
    program: LogProgram,
    /// The day whose file has been made private.
    private_for: Option<NaiveDate>,
}

impl Write for PrivateDailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.appender.write(buf)?;
        let today = Utc::now().date_naive();
        // Only marked done once the file exists: at midnight the appender may still be on
        // yesterday's file for this write.
        if self.private_for != Some(today)
            && restrict_to_owner(&self.dir.join(self.program.file_name(today)), 0o600).is_ok()
        {
            self.private_for = Some(today);
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.appender.flush()
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    // An existing folder keeps its mode under `create`: tightened here.
    restrict_to_owner(dir, 0o700)
}

/// On Windows the folder is under the account's local app data, whose ACL already admits only
/// that account (and administrators).
#[cfg(unix)]
fn restrict_to_owner(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict_to_owner(path: &Path, _mode: u32) -> io::Result<()> {
    fs::metadata(path).map(|_| ())
}

/// `program`'s daily files in `dir`, oldest first (the date in the name orders them).
pub fn log_files(dir: &Path, program: LogProgram) -> Result<Vec<PathBuf>, LoggingError> {
    let entries = fs::read_dir(dir).map_err(|source| LoggingError::Folder {
        path: dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| entry.file_name().to_str().is_some_and(|n| program.owns(n)))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    Ok(files)
}

/// The newest of `program`'s daily files, if there is one.
pub fn newest_log_file(dir: &Path, program: LogProgram) -> Result<Option<PathBuf>, LoggingError> {
    Ok(log_files(dir, program)?.pop())
}

/// The last `count` lines of `path`, read from the end (a day's log can be large).
pub fn last_lines(path: &Path, count: usize) -> Result<Vec<String>, LoggingError> {
    let read_error = |source: io::Error| LoggingError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let len = file.seek(SeekFrom::End(0)).map_err(read_error)?;
    const CHUNK: u64 = 64 * 1024;
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    // Enough when the kept bytes hold `count` line ends beyond a possibly unfinished last line.
    while start > 0 && tail.iter().filter(|&&b| b == b'\n').count() <= count {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(start - from).unwrap_or(0)];
        file.seek(SeekFrom::Start(from)).map_err(read_error)?;
        file.read_exact(&mut chunk).map_err(read_error)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        start = from;
    }
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(count);
    Ok(lines[skip..].iter().map(|l| (*l).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_the_program_and_the_day() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(
            LogProgram::App.file_name(day),
            "inpatient-hub.2026-03-09.log"
        );
        assert_eq!(LogProgram::Hubctl.file_name(day), "hubctl.2026-03-09.log");
        assert!(LogProgram::App.owns("inpatient-hub.2026-03-09.log"));
        assert!(!LogProgram::App.owns("hubctl.2026-03-09.log"));
        assert!(!LogProgram::App.owns("inpatient-hub.sqlite"));
        assert!(!LogProgram::Hubctl.owns("hubctl.notadate.log"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_logs_go_under_the_state_directory() {
        // XDG's state directory when set, else ~/.local/state (the XDG default).
        let dir = os_log_dir().unwrap();
        assert!(dir.ends_with("inpatienthub/logs"), "{}", dir.display());
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                directories::BaseDirs::new()
                    .unwrap()
                    .home_dir()
                    .join(".local/state")
            });
        assert_eq!(dir, state.join("inpatienthub/logs"));
    }

    #[test]
    fn written_lines_reach_todays_private_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("nested/logs");
        let mut file = open_daily_file(&dir, LogProgram::Hubctl).unwrap();
        writeln!(file, "first line").unwrap();
        file.flush().unwrap();
        let today = dir.join(LogProgram::Hubctl.file_name(Utc::now().date_naive()));
        assert_eq!(fs::read_to_string(&today).unwrap(), "first line\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&today), 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_open_folder_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        open_daily_file(root.path(), LogProgram::App).unwrap();
        let mode = fs::metadata(root.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn only_the_retained_number_of_daily_files_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        for offset in 0..20 {
            let day = first + chrono::Days::new(offset);
            fs::write(dir.path().join(LogProgram::App.file_name(day)), "old\n").unwrap();
        }
        // hubctl's files are another program's: never pruned by the window's appender.
        fs::write(dir.path().join(LogProgram::Hubctl.file_name(first)), "x\n").unwrap();
        let _writer = open_daily_file(dir.path(), LogProgram::App).unwrap();
        let kept = log_files(dir.path(), LogProgram::App).unwrap();
        assert_eq!(kept.len(), RETAINED_DAILY_FILES, "{kept:?}");
        let newest = newest_log_file(dir.path(), LogProgram::App)
            .unwrap()
            .unwrap();
        assert_eq!(
            newest,
            dir.path()
                .join(LogProgram::App.file_name(Utc::now().date_naive()))
        );
        assert_eq!(log_files(dir.path(), LogProgram::Hubctl).unwrap().len(), 1);
    }

    #[test]
    fn last_lines_reads_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, &text).unwrap();
        assert_eq!(
            last_lines(&path, 3).unwrap(),
            ["line 19997", "line 19998", "line 19999"]
        );
        assert_eq!(last_lines(&path, 0).unwrap(), Vec::<String>::new());
        fs::write(&path, "only\nunfinished").unwrap();
        assert_eq!(last_lines(&path, 5).unwrap(), ["only", "unfinished"]);
        fs::write(&path, "").unwrap();
        assert!(last_lines(&path, 5).unwrap().is_empty());
        assert!(matches!(
            last_lines(&dir.path().join("missing.log"), 1),
            Err(LoggingError::Read { .. })
        ));
    }
}
