//! `hubctl`: the command line for trust IT and scripts, on the same database as the app.
//! Every error exits non-zero with a one-line reason on stderr.

use clap::{Args as ClapArgs, Parser, Subcommand};
use inpatient_hub::domain::TaskStatus;
use inpatient_hub::hub::{BoardFilter, Hub, HubError, PatientInput, TaskEditInput, TaskInput};
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
    /// Decode a captured SystmOne response (XML file) and print it as JSON: how IT debugs the field.
    /// Prints patient data: handle the output as you would the record.
    Decode { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum TasksCmd {
    /// List tasks (open ones first, by due time).
    List(ListArgs),
    /// Add a task for a patient on the ward.
    Add {
        #[arg(long)]
        patient: i64,
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

fn decode(file: &std::path::Path) -> Result<(), HubError> {
    let bytes = std::fs::read(file).map_err(|e| HubError::BadRequest(format!("cannot read {}: {e}", file.display())))?;
    let response = inpatient_hub::systmone::codec::decode_response(&bytes)
        .map_err(|e| HubError::BadRequest(format!("{}: {e}", file.display())))?;
    print(true, &response, |_| String::new())
}

fn run(cli: Cli) -> Result<(), HubError> {
    // Commands that need no database come first, so they work anywhere.
    if let Command::Decode { file } = &cli.command {
        return decode(file);
    }
    let data_dir = config::resolve_data_dir(cli.data_dir).map_err(|e| HubError::BadRequest(e.to_string()))?;
    let hub = Hub::open(&data_dir)?;
    if let Some(user) = &cli.as_user {
        hub.act_as(user)?;
    }
    match cli.command {
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
                        format!("{}\t{}\tpatient {}\t{}\tdue {}{}\t{}", t.task.id, t.task.status.as_str(), t.task.patient_id, who, due, flag, t.task.title)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Tasks(TasksCmd::Add { patient, title, due, assign }) => {
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
