//! `hubctl`: the command line for trust IT and scripts, on the same database as the app.
//! Every error exits non-zero with a one-line reason on stderr.

use clap::{Args as ClapArgs, Parser, Subcommand};
use inpatient_hub::domain::TaskStatus;
use inpatient_hub::hub::{BoardFilter, Hub, HubError, PatientInput, TaskEditInput, TaskInput};
use inpatient_hub::domain::{FilingRoute, NoteId};
use inpatient_hub::hub::DraftInput;
use inpatient_hub::lookup::SearchInput;
use inpatient_hub::store::AuditQuery;
use inpatient_hub::config;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "hubctl", version, about = "Inpatient Hub command line (works on the app's database)")]
struct Cli {
    /// The data directory (default: INPATIENT_HUB_DATA_DIR, else the OS's per-user data directory).
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
    /// Act as this member of staff (default: the current user chosen in the app's settings).
    #[arg(long = "as", global = true, env = "INPATIENT_HUB_USER")]
    as_user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ward tasks.
    #[command(subcommand)]
    Tasks(TasksCmd),
    /// Patients on the ward list.
    #[command(subcommand)]
    Patients(PatientsCmd),
    /// The audit log, newest first.
    Audit {
        /// Only entries about this kind of record (task, patient, setting, ...).
        #[arg(long)]
        entity: Option<String>,
        /// Only entries about this record id.
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Choose the current user (who the app audits changes under).
    User { name: String },
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
    /// Ward settings: require-cosignature, systmone-api-disabled, current-user-role, task-default-assignee.
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
        /// Seconds to wait after a lost answer before reading the record back (default 90).
        #[arg(long)]
        reconcile_grace: Option<f64>,
        /// First retry delay after a temporary error, in seconds (default 5; doubles each time).
        #[arg(long)]
        retry_base: Option<f64>,
    },
    /// The SystmOne APIKey in this PC's keychain.
    #[command(subcommand)]
    ApiKey(ApiKeyCmd),
    /// Run the SystmOne simulator (fictitious organisation and patients; demos and tests only).
    Sim(inpatient_hub::simulator::cli::SimArgs),
    /// Control a running simulator (open a patient on screen, complete a task, read its log...).
    Simctl {
        /// The simulator's data directory (default: the app's data directory + "/simulator").
        #[arg(long)]
        sim_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: inpatient_hub::simulator::cli::SimCtlCommand,
    },
    /// Decode a captured SystmOne response (XML file) and print it as JSON: how IT debugs the field.
    /// Prints patient data: handle the output as you would the record.
    Decode { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum TasksCmd {
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
struct ListArgs {
    #[arg(long)]
    patient: Option<i64>,
    #[arg(long)]
    assignee: Option<String>,
    /// open, done, cancelled or all.
    #[arg(long, default_value = "open")]
    status: String,
}

#[derive(Debug, ClapArgs)]
struct SearchArgs {
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
enum SettingsCmd {
    /// Show the ward settings.
    Show,
    /// Set one (audited).
    Set { name: String, value: String },
    /// Clear one back to its default (audited).
    Clear { name: String },
}

#[derive(Debug, Subcommand)]
enum NotesCmd {
    /// Start a draft for a patient (added from SystmOne if not on the ward yet). Prints the note id last.
    Add {
        #[arg(long)]
        nhs: String,
        #[arg(long, conflicts_with = "template", required_unless_present = "template")]
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
enum ApiKeyCmd {
    /// Save the key TPP issued to this product in the keychain.
    Set { key: String },
    /// Remove it from the keychain.
    Clear,
}

#[derive(Debug, Subcommand)]
enum PatientsCmd {
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubctl: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) -> Result<(), HubError> {
    if json {
        let out = serde_json::to_string_pretty(value).map_err(|e| HubError::BadRequest(e.to_string()))?;
        println!("{out}");
    } else {
        println!("{}", text(value));
    }
    Ok(())
}

async fn run_systmone(hub: &Hub, command: Command, json: bool) -> Result<(), HubError> {
    match command {
        Command::Status => {
            // Asking who is logged in both proves the connection and names user and site.
            let probe = hub.verified_client_probe().await;
            let status = hub.systmone_status();
            let reachable = probe.as_ref().map(|_| "reachable".to_owned()).unwrap_or_else(|e| e.to_string());
            print(json, &serde_json::json!({ "status": status, "probe": reachable }), |v| {
                format!("SystmOne: {}\nqueue: {}\nAPIKey: {}\n{}", v["status"]["state"], v["status"]["queue"], v["status"]["key_source"], v["probe"])
            })?;
            probe
        }
        Command::Search(a) => {
            let input = SearchInput {
                nhs_number: None,
                surname: a.surname,
                first_name: a.first_name,
                date_of_birth: a.dob,
                postcode: a.postcode,
                sex: a.sex,
                telephone: a.phone,
            };
            let outcome = hub.search_patients(&input).await?;
            print(json, &outcome, |o| {
                let mut lines: Vec<String> = o.notice.iter().cloned().collect();
                lines.extend(o.results.iter().map(|r| {
                    format!(
                        "{}\t{}\t{}\t{}\t{}",
                        r.nhs_number_formatted.as_deref().unwrap_or("-"),
                        r.name,
                        r.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
                        r.sex.as_deref().unwrap_or("-"),
                        r.address
                    )
                }));
                lines.join("\n")
            })
        }
        Command::Lookup { nhs } => {
            let outcome = hub.search_patients(&SearchInput { nhs_number: Some(nhs), ..Default::default() }).await?;
            if outcome.results.is_empty() {
                return Err(HubError::NoSuchPatient(outcome.notice.unwrap_or_default()));
            }
            print(json, &outcome, |o| {
                o.results
                    .iter()
                    .map(|r| format!("{}\n{}\nborn {}\nsex {}\n{}", r.nhs_number_formatted.as_deref().unwrap_or("-"), r.name, r.date_of_birth.map(|d| d.to_string()).unwrap_or_default(), r.sex.as_deref().unwrap_or("-"), r.address))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Record { nhs, filter } => {
            let record = hub.patient_record(&nhs, &filter).await?;
            print(true, &record, |_| String::new())
        }
        Command::Notes(NotesCmd::Add { nhs, text, template }) => {
            let patient = hub.patient_for_nhs(&nhs).await?;
            let note = hub.create_note(&DraftInput { patient_id: patient.id.0, text, template_id: None, template_name: template })?;
            print(json, &note, |n| format!("draft note for patient {}\n{}", n.patient_id, n.id))
        }
        Command::Tasks(TasksCmd::Add { nhs: Some(nhs), task_type, title, due, assign, .. }) => {
            let patient = hub.patient_for_nhs(&nhs).await?;
            let task = hub.add_task(&TaskInput { patient_id: patient.id.0, title, assignee: assign, due })?;
            let link = hub.request_task_push(task.id.0, task_type.as_deref())?;
            print(json, &serde_json::json!({ "task": task, "sync": link }), |v| format!("added task {} (queued for SystmOne)", v["task"]["id"]))
        }
        Command::Sync { until_empty, max_wait, .. } => {
            let wait = if until_empty { std::time::Duration::from_secs(max_wait) } else { std::time::Duration::ZERO };
            let started = std::time::Instant::now();
            // hubctl cannot know whether a clipboard note was pasted: such notes are asked about
            // in the window, never filed on a guess.
            hub.verified_client_probe().await?;
            hub.systmone_came_back("hubctl")?;
            let report = hub.drain_outbox("hubctl", wait).await?;
            let tasks = hub.sync_tasks_until_settled(wait.saturating_sub(started.elapsed()).max(std::time::Duration::from_secs(if until_empty { 1 } else { 0 }))).await?;
            let left = hub.outbox(false)?.len();
            let summary = serde_json::json!({
                "tasks": tasks,
                "filed": report.filed.len(),
                "parked": report.parked.iter().map(|(id, why)| serde_json::json!({"outbox_id": id, "reason": why})).collect::<Vec<_>>(),
                "unavailable": report.unavailable,
                "still_pending": left,
            });
            print(json, &summary, |s| format!("notes: filed {}, parked {}, still pending {}{}\ntasks: {} operations, {} failed, {} pushes pending", s["filed"], s["parked"].as_array().map_or(0, Vec::len), s["still_pending"], s["unavailable"].as_str().map(|u| format!(" (SystmOne unavailable: {u})")).unwrap_or_default(), s["tasks"]["operations"], s["tasks"]["failures"], s["tasks"]["pending_pushes"]))?;
            if let Some(why) = report.unavailable {
                return Err(HubError::SystmOneUnavailable(why));
            }
            if !report.parked.is_empty() {
                return Err(HubError::BadRequest(format!("{} entr{} parked: see `hubctl outbox`", report.parked.len(), if report.parked.len() == 1 { "y is" } else { "ies are" })));
            }
            if until_empty && left > 0 {
                return Err(HubError::BadRequest(format!("{left} entries still waiting after {max_wait} s")));
            }
            if until_empty && tasks.pending_pushes > 0 {
                return Err(HubError::BadRequest(format!("{} task changes still waiting to reach SystmOne", tasks.pending_pushes)));
            }
            Ok(())
        }
        Command::Link { nhs, patient } => {
            let linked = hub.confirm_link(inpatient_hub::domain::PatientId(patient), &nhs).await?;
            print(json, &linked, |p| format!("patient {} linked to NHS number {}", p.id, p.nhs_number.as_ref().map(|n| n.formatted()).unwrap_or_default()))
        }
        _ => Ok(()),
    }
}

fn decode(file: &std::path::Path) -> Result<(), HubError> {
    let bytes = std::fs::read(file).map_err(|e| HubError::BadRequest(format!("cannot read {}: {e}", file.display())))?;
    let response = inpatient_hub::systmone::codec::decode_response(&bytes)
        .map_err(|e| HubError::BadRequest(format!("{}: {e}", file.display())))?;
    print(true, &response, |_| String::new())
}

fn seconds(value: Option<f64>) -> Result<Option<std::time::Duration>, HubError> {
    value
        .map(|s| {
            std::time::Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| HubError::BadRequest(format!("{s} is not a positive number of seconds")))
        })
        .transpose()
}

fn runtime() -> Result<tokio::runtime::Runtime, HubError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| HubError::BadRequest(format!("could not start: {e}")))
}

fn run(cli: Cli) -> Result<(), HubError> {
    // Commands that need no database come first, so they work anywhere.
    if let Command::Decode { file } = &cli.command {
        return decode(file);
    }
    let data_dir = config::resolve_data_dir(cli.data_dir.clone()).map_err(|e| HubError::BadRequest(e.to_string()))?;
    match cli.command {
        Command::Sim(mut args) => {
            if args.sim_dir.is_none() {
                args.sim_dir = Some(data_dir.join("simulator"));
            }
            let config = args.into_config().map_err(|e| HubError::BadRequest(e.to_string()))?;
            return runtime()?
                .block_on(inpatient_hub::simulator::run_server(config))
                .map_err(|e| HubError::BadRequest(e.to_string()));
        }
        Command::Simctl { sim_dir, command } => {
            let dir = sim_dir.unwrap_or_else(|| data_dir.join("simulator"));
            let out = inpatient_hub::simulator::cli::run_ctl(command, &dir).map_err(|e| HubError::BadRequest(e.to_string()))?;
            println!("{out}");
            return Ok(());
        }
        _ => {}
    }
    let mut hub = Hub::open(&data_dir)?.with_demo_mode(cli.demo);
    if let Some(user) = &cli.as_user {
        hub.act_as(user)?;
    }
    let systmone = config::parse_systmone_addr(&cli.systmone).map_err(|e| HubError::BadRequest(e.to_string()))?;
    let needs_systmone = matches!(
        cli.command,
        Command::Status
            | Command::Search(_)
            | Command::Lookup { .. }
            | Command::Record { .. }
            | Command::Link { .. }
            | Command::Sync { .. }
            | Command::Notes(NotesCmd::Add { .. })
            | Command::Tasks(TasksCmd::Add { nhs: Some(_), .. })
    );
    if let Command::Sync { reconcile_grace, retry_base, .. } = &cli.command {
        hub.set_filing_policy(seconds(*reconcile_grace)?, seconds(*retry_base)?);
    }
    let read_timeout = seconds(cli.systmone_timeout)?;
    if needs_systmone {
        let rt = runtime()?;
        return rt.block_on(async {
            hub.start_systmone_with(systmone, read_timeout)?;
            run_systmone(&hub, cli.command, cli.json).await
        });
    }
    match cli.command {
        Command::Status
        | Command::Search(_)
        | Command::Lookup { .. }
        | Command::Record { .. }
        | Command::Link { .. }
        | Command::Sync { .. }
        | Command::Notes(NotesCmd::Add { .. })
        | Command::Tasks(TasksCmd::Add { nhs: Some(_), .. }) => Ok(()),
        Command::Tasks(TasksCmd::Push { id, task_type }) => {
            let link = hub.request_task_push(id, task_type.as_deref())?;
            print(cli.json, &link, |l| format!("task {} queued for SystmOne ({})", l.task_id, l.state.as_str()))
        }
        Command::Settings(SettingsCmd::Show) => {
            let settings: std::collections::BTreeMap<_, _> = hub.ward_settings()?.into_iter().collect();
            print(cli.json, &settings, |m| m.iter().map(|(k, v)| format!("{k}\t{}", v.as_deref().unwrap_or("(default)"))).collect::<Vec<_>>().join("\n"))
        }
        Command::Settings(SettingsCmd::Set { name, value }) => {
            hub.set_ward_setting(&name, Some(&value))?;
            print(cli.json, &name, |n| format!("{n} set"))
        }
        Command::Settings(SettingsCmd::Clear { name }) => {
            hub.set_ward_setting(&name, None)?;
            print(cli.json, &name, |n| format!("{n} cleared"))
        }
        Command::Notes(NotesCmd::Preview { id }) => {
            let preview = hub.preview_note(NoteId(id))?;
            print(cli.json, &preview, |p| format!("{}\n-- sha256 {}", p.text, p.text_sha256))
        }
        Command::Notes(NotesCmd::Approve { id }) => {
            // The command line has no clipboard: an approved note always goes to the outbox.
            let preview = hub.preview_note(NoteId(id))?;
            let result = hub.approve_note(NoteId(id), Some(&preview.text_sha256), Some(FilingRoute::Api))?;
            print(cli.json, &result, |r| format!("note {} {}", r.note.id, serde_json::to_value(r.note.status).map(|v| v.to_string()).unwrap_or_default().trim_matches('"')))
        }
        Command::Notes(NotesCmd::List { patient }) => {
            let notes = hub.list_notes(patient, None)?;
            print(cli.json, &notes, |ns| {
                if ns.is_empty() {
                    return "no notes".into();
                }
                ns.iter()
                    .map(|n| format!("{}\tpatient {}\t{}\t{}", n.id, n.patient_id, serde_json::to_value(n.status).map(|v| v.to_string()).unwrap_or_default().trim_matches('"'), n.reference))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Outbox { all } => {
            let entries = hub.outbox(all)?;
            print(cli.json, &entries, |es| {
                if es.is_empty() {
                    return "outbox empty".into();
                }
                es.iter()
                    .map(|e| format!("{}\tnote {}\t{}\t{}\teta {}", e.entry.id, e.entry.note_id, e.state_kind, e.status_text, e.eta.map(|d| d.format("%H:%M:%S").to_string()).unwrap_or_else(|| "-".into())))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Sim(_) | Command::Simctl { .. } => Ok(()),
        Command::ApiKey(ApiKeyCmd::Set { key }) => {
            hub.set_api_key(&key)?;
            print(cli.json, &"saved", |_| "SystmOne APIKey saved in this PC's keychain".into())
        }
        Command::ApiKey(ApiKeyCmd::Clear) => {
            let removed = hub.clear_api_key()?;
            print(cli.json, &removed, |r| if *r { "SystmOne APIKey removed from the keychain".into() } else { "no SystmOne APIKey was stored".into() })
        }
        Command::User { name } => {
            let staff = hub.set_current_user(&name)?;
            print(cli.json, &staff.as_str(), |s| format!("current user: {s}"))
        }
        Command::Patients(PatientsCmd::List) => {
            let patients = hub.patients()?;
            print(cli.json, &patients, |ps| {
                ps.iter()
                    .map(|p| {
                        let nhs = p.nhs_number.as_ref().map(|n| n.formatted()).unwrap_or_else(|| "-".into());
                        format!("{}\t{}\t{}\t{}", p.id, p.bed, p.name.expose(), nhs)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Patients(PatientsCmd::Add { bed, name, nhs }) => {
            let p = hub.add_patient(&PatientInput { bed, name, nhs_number: nhs })?;
            print(cli.json, &p, |p| format!("added patient {}", p.id))
        }
        Command::Tasks(TasksCmd::List(args)) => {
            let board = hub.board(&BoardFilter { patient_id: args.patient, assignee: args.assignee, status: Some(args.status) })?;
            print(cli.json, &board.tasks, |tasks| {
                if tasks.is_empty() {
                    return "no tasks".into();
                }
                tasks
                    .iter()
                    .map(|t| {
                        let due = t.task.due.map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into());
                        let flag = if t.overdue { " OVERDUE" } else { "" };
                        let who = t.task.assignee.as_ref().map(|a| a.as_str()).unwrap_or("-");
                        let sync = t.sync.as_ref().map(|l| l.state.as_str()).unwrap_or("local");
                        let notice = t.sync.as_ref().and_then(|l| l.notice.as_ref()).map(|n| format!("\tNOTICE: {}", n.expose())).unwrap_or_default();
                        format!("{}\t{}\tpatient {}\t{}\tdue {}{}\tsync {}\t{}{}", t.task.id, t.task.status.as_str(), t.task.patient_id, who, due, flag, sync, t.task.title, notice)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Tasks(TasksCmd::Add { patient, nhs: _, task_type: _, title, due, assign }) => {
            let patient = patient.ok_or_else(|| HubError::BadRequest("give --patient or --nhs".into()))?;
            let task = hub.add_task(&TaskInput { patient_id: patient, title, assignee: assign, due })?;
            print(cli.json, &task, |t| format!("added task {}", t.id))
        }
        Command::Tasks(TasksCmd::Edit { id, title, due, assign }) => {
            let task = hub.edit_task(id, &TaskEditInput { title, assignee: assign, due, version: None })?;
            print(cli.json, &task, |t| format!("updated task {} (version {})", t.id, t.version))
        }
        Command::Tasks(TasksCmd::Done { id }) => {
            let task = hub.set_task_status(id, TaskStatus::Done, None)?;
            print(cli.json, &task, |t| format!("task {} done", t.id))
        }
        Command::Tasks(TasksCmd::Cancel { id }) => {
            let task = hub.set_task_status(id, TaskStatus::Cancelled, None)?;
            print(cli.json, &task, |t| format!("task {} cancelled", t.id))
        }
        Command::Decode { .. } => Ok(()),
        Command::Audit { entity, id, limit } => {
            let entries = hub.audit(&AuditQuery { entity, entity_id: id, limit: Some(limit) })?;
            print(cli.json, &entries, |es| {
                es.iter()
                    .map(|e| {
                        format!(
                            "{}\t{}\t{}\t{} {}\t{}",
                            e.at.format("%Y-%m-%d %H:%M:%S"),
                            e.actor,
                            e.action,
                            e.entity,
                            e.entity_id.as_deref().unwrap_or("-"),
                            e.detail
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}
