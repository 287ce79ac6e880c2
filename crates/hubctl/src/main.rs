//! `hubctl`: the command line for trust IT and scripts, on the same database as the app.
//! Every error exits non-zero with a one-line reason on stderr.

mod backup;
mod commands;
mod progress;

use clap::{Args as ClapArgs, Parser, Subcommand};
use hub::logging::{LogProgram, StderrCopy};
use hub::{config, Hub, HubError, WardSetting};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "hubctl",
    version,
    about = "Inpatient Hub command line (works on the app's database)"
)]
struct Cli {
    /// The data directory (default: INPATIENT_HUB_DATA_DIR, else the OS's per-user local data
    /// directory; with --demo, its `demo` subfolder, never the ward's own).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The SystmOne client's integration socket, HOST:PORT.
    #[arg(long, global = true, env = "INPATIENT_HUB_SYSTMONE", default_value = config::DEFAULT_SYSTMONE_ADDR)]
    systmone: String,
    /// Seconds to wait for SystmOne's answer before treating it as lost (default 30).
    #[arg(long, global = true, env = "INPATIENT_HUB_SYSTMONE_TIMEOUT")]
    systmone_timeout: Option<f64>,
    /// Demo mode: talk to the bundled simulator (fictitious patients) and nothing else.
    #[arg(long, global = true, env = "INPATIENT_HUB_DEMO")]
    demo: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Ward tasks.
    #[command(subcommand)]
    Tasks(TasksCmd),
    /// Patients on the ward list.
    #[command(subcommand)]
    Patients(PatientsCmd),
    /// The audit log, newest first (or `audit verify`: check the whole hash chain).
    Audit {
        #[command(subcommand)]
        check: Option<AuditCmd>,
        /// Only entries about this kind of record (task, patient, setting, ...).
        #[arg(long)]
        entity: Option<String>,
        /// Only entries about this record id.
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Check the database file for damage now (SQLite's integrity_check; slow on a large
    /// file): prints ok or the problems found, exits 1 on a problem. The result is recorded,
    /// so the window shows a failure too.
    Check,
    /// Set the display label shown beside who is acting. A label only: changes are recorded
    /// under the OS account (and the SystmOne user when connected), never under this name.
    User { name: String },
    /// Who is acting: the OS account, the SystmOne user and role (asked of SystmOne), and what
    /// the role map lets them do.
    Whoami,
    /// The SystmOne connection: state, logged-in user and site, queue, where the APIKey comes from.
    Status,
    /// Search SystmOne for a patient (at least two details; names match by prefix).
    Search(SearchArgs),
    /// Look a patient up by NHS number and print their demographics.
    Lookup { nhs: String },
    /// Print a patient's record (or only the parts named with --filter) as JSON. Patient data: handle with care.
    Record {
        nhs: String,
        /// Comma-separated filter flags, e.g. Demographics,Narrative,Tasks (default: the whole record).
        #[arg(long, value_delimiter = ',')]
        filter: Vec<String>,
    },
    /// Link a ward patient to their SystmOne record (audited like the window's confirmation).
    Link {
        nhs: String,
        #[arg(long)]
        patient: i64,
    },
    /// Ward settings: require-cosignature, systmone-api-disabled, task-default-assignee, idle-lock-minutes.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Case notes.
    #[command(subcommand)]
    Notes(NotesCmd),
    /// The outbox: notes waiting to be filed in SystmOne, their state and ETA.
    Outbox {
        /// Include filed entries too.
        #[arg(long)]
        all: bool,
    },
    /// File queued work in SystmOne through the same paced queue as the app.
    Sync {
        /// Keep going until nothing is left to file; exits non-zero if anything is parked or left.
        #[arg(long)]
        until_empty: bool,
        /// Give up after this many seconds (default 600).
        #[arg(long, default_value_t = 600)]
        max_wait: u64,
        /// Seconds to wait after a lost answer before reading the record back (default 5).
        #[arg(long)]
        reconcile_grace: Option<f64>,
        /// First retry delay after a temporary error, in seconds (default 5; doubles each time).
        #[arg(long)]
        retry_base: Option<f64>,
    },
    /// The SystmOne APIKey in this PC's keychain.
    #[command(subcommand)]
    ApiKey(ApiKeyCmd),
    /// The ward database's encryption key in this account's keychain (status, escrow, recovery).
    #[command(subcommand)]
    DbKey(DbKeyCmd),
    /// Run the SystmOne simulator (fictitious organisation and patients; demos and tests only).
    #[cfg(feature = "simulator")]
    Sim(simulator::cli::SimArgs),
    /// Control a running simulator (open a patient on screen, complete a task, read its log...).
    #[cfg(feature = "simulator")]
    Simctl {
        /// The simulator's data directory (default: the app's data directory + "/simulator").
        #[arg(long)]
        sim_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: simulator::cli::SimCtlCommand,
    },
    /// `sim` and `simctl` in a build without the simulator (every release build): a clear
    /// refusal rather than "unrecognised subcommand".
    #[cfg(not(feature = "simulator"))]
    #[command(name = "sim", alias = "simctl", hide = true, disable_help_flag = true)]
    SimulatorLeftOut {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        ignored: Vec<String>,
    },
    /// Where the logs are (the folder and each program's newest daily file); `--tail` prints
    /// the end of the newest file, `--follow` keeps printing what is added to it.
    Logs {
        /// Print the last N lines (default 20) of the newest file.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "20")]
        tail: Option<usize>,
        /// Keep printing new lines as they are written (checks once a second; Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        /// Whose log: the window's (app) or the command line's (hubctl).
        #[arg(long, value_enum, default_value_t = LogSource::App)]
        of: LogSource,
    },
    /// Write an encrypted, verified backup of the ward database to FILE, safely while the
    /// app runs (it opens only with this PC's database key). Refuses an existing FILE unless --force.
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the ward database with a backup, after checking it (key, integrity, audit chain,
    /// demo/live). Close every Inpatient Hub window first; the current database is kept beside it.
    Restore {
        file: PathBuf,
        /// Confirm without a prompt.
        #[arg(long)]
        yes: bool,
    },
    /// Decode a captured SystmOne response (XML file) and print it as JSON: how IT debugs the field.
    /// Prints patient data: handle the output as you would the record.
    Decode { file: PathBuf },
    /// Probe how this SystmOne behaves (TPP's Demo system, before live use): files a test note and
    /// a task to a test patient, reads them back, removes them, and reports (--out profile.json).
    /// `--apply profile.json` stores an observed profile for the app to adapt to.
    Conformance(ConformanceArgs),
}

/// Whose log `hubctl logs` reads.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogSource {
    App,
    Hubctl,
}

impl From<LogSource> for LogProgram {
    fn from(source: LogSource) -> LogProgram {
        match source {
            LogSource::App => LogProgram::App,
            LogSource::Hubctl => LogProgram::Hubctl,
        }
    }
}

#[derive(Debug, ClapArgs)]
pub(crate) struct ConformanceArgs {
    /// The test patient's NHS number: the probe writes a test note and a task to this record (and removes them).
    #[arg(long, value_name = "NHS", conflicts_with = "apply")]
    patient: Option<String>,
    /// Write the observed profile (JSON) to this file.
    #[arg(long, value_name = "PROFILE.json", conflicts_with = "apply")]
    out: Option<PathBuf>,
    /// Confirm without a prompt that this is TPP's Demo system (or the simulator) and the test writes may go ahead.
    #[arg(long)]
    yes_i_am_on_tpp_demo: bool,
    /// Also confirm the patient is a test patient although the record does not look like one.
    #[arg(long)]
    confirm_test_patient: bool,
    /// SystmOne task type of the probe's task (default "Clinical Review Required").
    #[arg(long)]
    task_type: Option<String>,
    /// Who the probe's task goes to: user:NAME or group:NAME (default: the logged-in SystmOne user).
    #[arg(long)]
    assign: Option<String>,
    /// Store a profile written by an earlier run in the ward database (audited), for the app to adapt to.
    #[arg(long, value_name = "PROFILE.json")]
    apply: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TasksCmd {
    /// List tasks (open ones first, by due time).
    List(ListArgs),
    /// Add a task for a patient on the ward (--patient), or for an NHS number (--nhs: the patient is
    /// added from SystmOne if not on the ward yet, and the task is queued to be created in SystmOne).
    Add {
        #[arg(long, required_unless_present = "nhs", conflicts_with = "nhs")]
        patient: Option<i64>,
        #[arg(long)]
        nhs: Option<String>,
        /// SystmOne task type when created there (default "Clinical Review Required").
        #[arg(long)]
        task_type: Option<String>,
        #[arg(long)]
        title: String,
        /// YYYY-MM-DD or "YYYY-MM-DD HH:MM".
        #[arg(long)]
        due: Option<String>,
        #[arg(long)]
        assign: Option<String>,
    },
    /// Edit a task's title, assignee or due time (an empty value clears assignee or due).
    Edit {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        due: Option<String>,
        #[arg(long)]
        assign: Option<String>,
    },
    /// Queue a ward task to be created in SystmOne too.
    Push {
        id: i64,
        #[arg(long)]
        task_type: Option<String>,
    },
    /// Mark a task done.
    Done { id: i64 },
    /// Cancel a task.
    Cancel { id: i64 },
}

#[derive(Debug, ClapArgs)]
pub(crate) struct ListArgs {
    #[arg(long)]
    patient: Option<i64>,
    #[arg(long)]
    assignee: Option<String>,
    /// open, done, cancelled or all.
    #[arg(long, default_value = "open")]
    status: String,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct SearchArgs {
    #[arg(long)]
    surname: Option<String>,
    #[arg(long)]
    first_name: Option<String>,
    /// YYYY-MM-DD.
    #[arg(long)]
    dob: Option<String>,
    #[arg(long)]
    postcode: Option<String>,
    /// M or F.
    #[arg(long)]
    sex: Option<String>,
    #[arg(long)]
    phone: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCmd {
    /// Show the ward settings.
    Show,
    /// Set one (audited).
    Set { setting: WardSetting, value: String },
    /// Clear one back to its default (audited).
    Clear { setting: WardSetting },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NotesCmd {
    /// Start a draft for a patient (added from SystmOne if not on the ward yet). Prints the note id last.
    Add {
        #[arg(long)]
        nhs: String,
        #[arg(
            long,
            conflicts_with = "template",
            required_unless_present = "template"
        )]
        text: Option<String>,
        /// A ward template by name, e.g. "Ward round".
        #[arg(long)]
        template: Option<String>,
    },
    /// Show exactly the lines that will be filed.
    Preview { id: i64 },
    /// Approve a note exactly as previewed: it is queued to be filed in SystmOne.
    Approve { id: i64 },
    /// List notes.
    List {
        #[arg(long)]
        patient: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCmd {
    /// Save the key TPP issued to this product in the keychain. The key is read from standard
    /// input (typed at a prompt that does not echo it, or piped in), never from the command
    /// line: an argument stays in the shell history and shows in the process list.
    Set {
        /// Refused with the reason (kept as an argument so the refusal can explain itself).
        #[arg(hide = true)]
        key: Option<String>,
    },
    /// Remove it from the keychain.
    Clear,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbKeyCmd {
    /// Whether the database is encrypted, whether this account's keychain holds its key, and
    /// whether that key opens it. Changes nothing.
    Status,
    /// Restore the key (IT's escrow copy) into this account's keychain. The key is read from
    /// standard input, never from the command line (shell history, process list), and saved
    /// only if it opens the database.
    Set,
    /// Print the key from this account's keychain to standard output, for IT to escrow.
    Export,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCmd {
    /// Check every audit row's hash and its link to the row before it, oldest first, and
    /// that the append-only triggers are in place. Exits 1 naming the first row where the
    /// chain breaks. (Rows cut off the end cannot be seen in the chain itself.)
    Verify,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PatientsCmd {
    List,
    Add {
        #[arg(long)]
        bed: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        nhs: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // Every error is one line, as for the commands' own errors (clap's ends with a hint).
            let text = e.to_string();
            let reason = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            eprintln!("hubctl: {reason} (see hubctl --help)");
            return ExitCode::from(2);
        }
    };
    // Kept to the end of main, so the file writer flushes its last lines on exit.
    let _logging = hub::logging::init(LogProgram::Hubctl, StderrCopy::WhenAsked);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An error can quote SystmOne's own message or a name: escaped like all output.
            let message = e.to_string().replace('\n', " ");
            eprintln!("hubctl: {}", commands::terminal_text(&message));
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Whether the command talks to SystmOne: the one place that decides it.
    fn needs_systmone(&self) -> bool {
        match self {
            Command::Status
            | Command::Search(_)
            | Command::Lookup { .. }
            | Command::Record { .. }
            | Command::Link { .. }
            | Command::Sync { .. } => true,
            // An approval is attributed to SystmOne's logged-on user and their verified role.
            Command::Notes(NotesCmd::Add { .. } | NotesCmd::Approve { .. }) => true,
            Command::Whoami => true,
            // Loosening a ward setting needs SystmOne's logged-on user with a verified role.
            Command::Settings(SettingsCmd::Set { .. } | SettingsCmd::Clear { .. }) => true,
            Command::Notes(NotesCmd::Preview { .. } | NotesCmd::List { .. }) => false,
            Command::Tasks(TasksCmd::Add { nhs, .. }) => nhs.is_some(),
            Command::Tasks(
                TasksCmd::List(_)
                | TasksCmd::Edit { .. }
                | TasksCmd::Push { .. }
                | TasksCmd::Done { .. }
                | TasksCmd::Cancel { .. },
            ) => false,
            Command::Patients(_)
            | Command::Audit { .. }
            | Command::Check
            | Command::User { .. }
            | Command::Settings(SettingsCmd::Show)
            | Command::Outbox { .. }
            | Command::ApiKey(_)
            | Command::DbKey(_)
            | Command::Decode { .. }
            | Command::Backup { .. }
            | Command::Restore { .. }
            | Command::Logs { .. } => false,
            #[cfg(feature = "simulator")]
            Command::Sim(_) | Command::Simctl { .. } => false,
            #[cfg(not(feature = "simulator"))]
            Command::SimulatorLeftOut { .. } => false,
            // Only the probe itself; `--apply` and a missing `--patient` send nothing.
            Command::Conformance(args) => args.apply.is_none() && args.patient.is_some(),
        }
    }
}

/// Where the output goes: text for people, JSON for scripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub json: bool,
}

/// The ward database (and, for commands that need it, SystmOne) for one run of hubctl.
pub(crate) struct Session {
    pub out: Out,
    pub hub: Hub,
    runtime: Option<tokio::runtime::Runtime>,
}

/// How to open the session: everything on the command line but the subcommand itself.
struct SessionSettings {
    demo: bool,
    systmone: String,
    systmone_timeout: Option<f64>,
    needs_systmone: bool,
    /// `sync --reconcile-grace` and `--retry-base`.
    filing: (Option<f64>, Option<f64>),
}

impl Session {
    fn open(settings: &SessionSettings, out: Out, data_dir: &Path) -> Result<Session, HubError> {
        // Who acts is the OS account (and SystmOne's logged-on user): nothing on the command
        // line or in the environment can name someone else.
        let mut hub = Hub::open(
            data_dir,
            hub::DatabaseEnvironment::from_demo_flag(settings.demo),
        )?;
        hub.set_filing_policy(seconds(settings.filing.0)?, seconds(settings.filing.1)?);
        let mut runtime = None;
        if settings.needs_systmone {
            let addr = config::parse_systmone_addr(&settings.systmone)
                .map_err(|e| HubError::BadRequest(e.to_string()))?;
            let read_timeout = seconds(settings.systmone_timeout)?;
            let rt = new_runtime()?;
            // The client spawns its connection owner on this runtime.
            rt.block_on(async { hub.start_systmone_with(addr, read_timeout) })?;
            runtime = Some(rt);
        }
        Ok(Session { out, hub, runtime })
    }

    /// Runs a SystmOne command to completion on the session's runtime.
    pub fn block_on<T>(
        &mut self,
        work: impl AsyncFnOnce(&Hub, Out) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let runtime = match self.runtime.take() {
            Some(rt) => rt,
            None => new_runtime()?,
        };
        let result = runtime.block_on(work(&self.hub, self.out));
        self.runtime = Some(runtime);
        result
    }
}

fn new_runtime() -> Result<tokio::runtime::Runtime, HubError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| HubError::BadRequest(format!("could not start: {e}")))
}

fn seconds(value: Option<f64>) -> Result<Option<std::time::Duration>, HubError> {
    value
        .map(|s| {
            std::time::Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    HubError::BadRequest(format!("{s} is not a positive number of seconds"))
                })
        })
        .transpose()
}

/// One exhaustive match: every subcommand has its own function in `commands`, and opens
/// only what it needs (the database; SystmOne when `needs_systmone` says so).
fn run(cli: Cli) -> Result<(), HubError> {
    let Cli {
        data_dir,
        json,
        systmone,
        systmone_timeout,
        demo,
        command,
    } = cli;
    let out = Out { json };
    let settings = SessionSettings {
        demo,
        systmone,
        systmone_timeout,
        needs_systmone: command.needs_systmone(),
        filing: match &command {
            Command::Sync {
                reconcile_grace,
                retry_base,
                ..
            } => (*reconcile_grace, *retry_base),
            _ => (None, None),
        },
    };
    let data_dir = || {
        config::resolve_data_dir(data_dir.clone(), demo)
            .map_err(|e| HubError::BadRequest(e.to_string()))
    };
    let session = || Session::open(&settings, out, &data_dir()?);
    match command {
        Command::Decode { file } => commands::decode(&file),
        // Never open the session: a restore must work when the database does not open.
        Command::Backup { file, force } => backup::backup(
            out,
            &data_dir()?,
            hub::DatabaseEnvironment::from_demo_flag(demo),
            &file,
            force,
        ),
        Command::Restore { file, yes } => backup::restore(
            out,
            &data_dir()?,
            hub::DatabaseEnvironment::from_demo_flag(demo),
            &file,
            yes,
        ),
        // Never opens the database: the logs are where IT looks when it will not open.
        Command::Logs { tail, follow, of } => commands::logs(out, tail, follow, of.into()),
        #[cfg(feature = "simulator")]
        Command::Sim(args) => commands::sim(args, &data_dir()?),
        #[cfg(feature = "simulator")]
        Command::Simctl { sim_dir, command } => commands::simctl(command, sim_dir, &data_dir()?),
        #[cfg(not(feature = "simulator"))]
        Command::SimulatorLeftOut { .. } => Err(HubError::BadRequest(
            commands::SIMULATOR_LEFT_OUT.to_owned(),
        )),
        Command::Tasks(cmd) => commands::tasks(&mut session()?, cmd),
        Command::Patients(cmd) => commands::patients(&session()?, cmd),
        Command::Audit {
            check: Some(AuditCmd::Verify),
            ..
        } => commands::audit_verify(&session()?),
        Command::Audit {
            check: None,
            entity,
            id,
            limit,
        } => commands::audit(&session()?, entity, id, limit),
        Command::Check => commands::check(&session()?),
        Command::User { name } => commands::user(&session()?, &name),
        Command::Whoami => session()?.block_on(commands::whoami),
        Command::Status => session()?.block_on(commands::status),
        Command::Search(args) => {
            session()?.block_on(async |hub, out| commands::search(hub, out, args).await)
        }
        Command::Lookup { nhs } => {
            session()?.block_on(async |hub, out| commands::lookup(hub, out, nhs).await)
        }
        Command::Record { nhs, filter } => {
            session()?.block_on(async |hub, _| commands::record(hub, &nhs, &filter).await)
        }
        Command::Link { nhs, patient } => {
            session()?.block_on(async |hub, out| commands::link(hub, out, &nhs, patient).await)
        }
        Command::Settings(cmd) => commands::settings(&mut session()?, cmd),
        Command::Notes(cmd) => commands::notes(&mut session()?, cmd),
        Command::Outbox { all } => commands::outbox(&session()?, all),
        Command::Sync {
            until_empty,
            max_wait,
            ..
        } => session()?
            .block_on(async |hub, out| commands::sync(hub, out, until_empty, max_wait).await),
        // Given the way to open the session, not an open one: a key on the command line is
        // refused before anything is opened.
        Command::ApiKey(cmd) => commands::api_key(session, cmd),
        // Never opens the session: these must work when the key is lost.
        Command::DbKey(cmd) => commands::db_key(out, cmd, &data_dir()?),
        Command::Conformance(args) => commands::conformance(&mut session()?, args),
    }
}
