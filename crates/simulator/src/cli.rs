//! Command-line surface: `SimArgs` (serve; wired as `hubctl sim`) and `SimCtlCommand`
//! (the controls; wired as `hubctl simctl`).

use super::faults::FaultRates;
use super::profile::{
    ConnectionMode, NarrativeReadBack, ResponseTerminator, SimProfile, TaskDetailsInReads,
    TaskStatusUpdate,
};
use super::state::{ApprovalMode, DeviceStatus, TaskChange};
use super::{SimConfig, SimControl, SimError, DEFAULT_API_KEY};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Run the SystmOne simulator (fictitious data; never point it at real patients).
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// TCP port, required: there is no default, so the simulator never takes SystmOne's 40700
    /// unless asked to (0 picks a free one and prints it).
    /// (Optional for clap only, so that a missing port gets our own clear error.)
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on: the local host only (127.0.0.1 or ::1); anything else is refused.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Seed for the fictitious organisation, patients and fault decisions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fault rates 0.0–1.0, e.g. drop=0.1,slow=0.05,garbage=0.01,reset=0.02,temporary=0.05
    #[arg(long, default_value = "")]
    pub faults: FaultRates,
    /// Delay added by a "slow" fault, in milliseconds.
    #[arg(long, default_value_t = 3_000)]
    pub slow_ms: u64,
    /// What the simulated user does when a new device asks for approval.
    #[arg(long, value_enum, default_value_t = ApprovalMode::Auto)]
    pub approval: ApprovalMode,
    /// How long the approval dialog stays up in prompt mode, in milliseconds.
    #[arg(long, default_value_t = 3_000)]
    pub prompt_ms: u64,
    /// The simulator's own data directory (default: the app's data directory + "/simulator").
    /// Named apart from hubctl's global `--data-dir`, which is the app's.
    #[arg(long = "sim-dir")]
    pub sim_dir: Option<PathBuf>,
    /// The fictitious user logged in to SystmOne: demo.consultant, demo.nurse, demo.student or demo.hca.
    #[arg(long, default_value = super::data::DEFAULT_USER)]
    pub user: String,
    /// The APIKey the simulator accepts.
    #[arg(long, default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// Behaviour where real SystmOne's is not yet known (default: the shapes seen in captures).
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// The behaviour profile's flags; each one left out keeps its current (or default) value.
#[derive(Debug, Clone, Default, Args)]
pub struct ProfileArgs {
    /// How a filed narrative reads back [default: joined-spaces, as real records show].
    #[arg(long, value_enum)]
    pub narrative: Option<NarrativeReadBack>,
    /// What <Status> on a task update does [default: applied].
    #[arg(long, value_enum)]
    pub task_status: Option<TaskStatusUpdate>,
    /// Whether task reads carry Due and the assignee [default: not-reported, as real reads].
    #[arg(long, value_enum)]
    pub task_details: Option<TaskDetailsInReads>,
    /// Keep the connection after a reply, or close it [default: kept].
    #[arg(long, value_enum)]
    pub connection: Option<ConnectionMode>,
    /// What follows each response [default: none].
    #[arg(long, value_enum)]
    pub terminator: Option<ResponseTerminator>,
}

impl ProfileArgs {
    pub fn is_empty(&self) -> bool {
        self.narrative.is_none()
            && self.task_status.is_none()
            && self.task_details.is_none()
            && self.connection.is_none()
            && self.terminator.is_none()
    }

    /// `base` with the given flags applied.
    pub fn apply(&self, base: SimProfile) -> SimProfile {
        SimProfile {
            narrative: self.narrative.unwrap_or(base.narrative),
            task_status: self.task_status.unwrap_or(base.task_status),
            task_details: self.task_details.unwrap_or(base.task_details),
            connection: self.connection.unwrap_or(base.connection),
            terminator: self.terminator.unwrap_or(base.terminator),
        }
    }
}

/// The simulator's data directory: `--sim-dir`, else `simulator` inside the app's data
/// directory (which the caller resolved; the simulator knows nothing of the app's config).
pub fn default_sim_data_dir(flag: Option<PathBuf>, app_data_dir: &Path) -> PathBuf {
    flag.unwrap_or_else(|| app_data_dir.join("simulator"))
}

impl SimArgs {
    /// The server's configuration; `app_data_dir` is the app's data directory, under which
    /// the simulator keeps its own folder unless `--sim-dir` says otherwise.
    pub fn into_config(self, app_data_dir: &Path) -> Result<SimConfig, SimError> {
        if super::data::organisation().user(&self.user).is_none() {
            return Err(SimError::UnknownUser(self.user));
        }
        if !self.bind.is_loopback() {
            return Err(SimError::NotLoopback(self.bind));
        }
        let port = self.port.ok_or(SimError::NoPort)?;
        Ok(SimConfig {
            bind: self.bind,
            port,
            seed: self.seed,
            data_dir: default_sim_data_dir(self.sim_dir, app_data_dir),
            approval: self.approval,
            prompt_ms: self.prompt_ms,
            faults: self.faults,
            slow_ms: self.slow_ms,
            logged_in_user: self.user,
            api_key: self.api_key,
            profile: self.profile.apply(SimProfile::default()),
        })
    }
}

/// Act as the SystmOne user, or inspect what the simulator saw. Output is JSON where useful.
#[derive(Debug, Clone, Subcommand)]
pub enum SimCtlCommand {
    /// Summary: seed, settings, open patient, devices, requests and throttle violations.
    Status,
    /// List fictitious patients.
    Patients {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Open a patient's record on screen (saves any record already open).
    Open { nhs_number: String },
    /// Close the record on screen; saves pending changes unless --discard.
    Close {
        #[arg(long)]
        discard: bool,
    },
    /// Press Save on the open record (commits changes filed with LeaveRecordOpen).
    Save,
    /// Complete a task as a SystmOne user.
    CompleteTask {
        task_uid: String,
        /// The user who completes it (default: the logged-in user).
        #[arg(long)]
        by: Option<String>,
    },
    /// Change a task as a SystmOne user; only the given fields change.
    EditTask {
        task_uid: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        content: Option<String>,
        #[arg(long)]
        task_type: Option<String>,
        #[arg(long)]
        assign_user: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Type a journal entry on screen now (entered today, not through the API).
    AddEvent {
        nhs_number: String,
        text: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Events filed through the API for a patient (with --all: every event), with duplicate counts.
    Events {
        nhs_number: String,
        #[arg(long)]
        all: bool,
    },
    /// A patient's tasks, completed ones included.
    Tasks { nhs_number: String },
    /// The request log, oldest first.
    Log {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// How many requests were dropped for breaking the throttle.
    Violations,
    /// Issued DeviceIDs and whether they are approved or blocked.
    Devices,
    /// Block a device (as in SystmOne's Device Manager).
    BlockDevice { device_id: String },
    /// Lift a block.
    UnblockDevice { device_id: String },
    /// What the user does when a new device asks for approval.
    SetApproval {
        #[arg(value_enum)]
        mode: ApprovalMode,
        #[arg(long)]
        prompt_ms: Option<u64>,
    },
    /// Change fault rates (e.g. drop=0.1,reset=0.05; "none" clears them).
    SetFaults {
        faults: FaultRates,
        #[arg(long)]
        slow_ms: Option<u64>,
    },
    /// Log a different fictitious user in.
    SetUser { user_name: String },
    /// Show the behaviour profile, or change the parts given (takes effect on the next request).
    Profile {
        #[command(flatten)]
        profile: ProfileArgs,
    },
}

fn to_json<T: Serialize>(value: &T) -> Result<String, SimError> {
    serde_json::to_string_pretty(value).map_err(|e| SimError::Invalid(e.to_string()))
}

/// Runs one control command on the simulator data in `data_dir`; returns what to print.
pub fn run_ctl(cmd: SimCtlCommand, data_dir: &Path) -> Result<String, SimError> {
    let mut ctl = SimControl::open(data_dir)?;
    match cmd {
        SimCtlCommand::Status => to_json(&ctl.status()?),
        SimCtlCommand::Patients { limit } => to_json(&ctl.patients(limit)?),
        SimCtlCommand::Open { nhs_number } => {
            ctl.open_patient(&nhs_number)?;
            Ok(format!("opened {nhs_number} on screen"))
        }
        SimCtlCommand::Close { discard } => {
            let n = ctl.close_patient(discard)?;
            Ok(format!(
                "record closed; {n} pending item(s) {}",
                if discard { "discarded" } else { "saved" }
            ))
        }
        SimCtlCommand::Save => Ok(format!(
            "record saved; {} pending item(s) committed",
            ctl.save_record()?
        )),
        SimCtlCommand::CompleteTask { task_uid, by } => {
            to_json(&ctl.complete_task(&task_uid, by.as_deref())?)
        }
        SimCtlCommand::EditTask {
            task_uid,
            status,
            content,
            task_type,
            assign_user,
            by,
        } => {
            let change = TaskChange {
                status,
                content,
                task_type,
                user_assigned: assign_user,
                ..TaskChange::default()
            };
            if change.is_empty() {
                return Err(SimError::Invalid(
                    "nothing to change: give --status, --content, --task-type or --assign-user"
                        .into(),
                ));
            }
            to_json(&ctl.edit_task(&task_uid, &change, by.as_deref())?)
        }
        SimCtlCommand::AddEvent {
            nhs_number,
            text,
            user,
        } => {
            let uid = ctl.add_event_today(&nhs_number, &text, user.as_deref())?;
            to_json(&serde_json::json!({ "event_uid": uid }))
        }
        SimCtlCommand::Events { nhs_number, all } => to_json(&ctl.filed_events(&nhs_number, all)?),
        SimCtlCommand::Tasks { nhs_number } => to_json(&ctl.tasks(&nhs_number)?),
        SimCtlCommand::Log { limit } => to_json(&ctl.request_log(limit)?),
        SimCtlCommand::Violations => {
            to_json(&serde_json::json!({ "throttle_violations": ctl.violation_count()? }))
        }
        SimCtlCommand::Devices => to_json(&ctl.devices()?),
        SimCtlCommand::Profile { profile } => {
            if profile.is_empty() {
                return to_json(&ctl.profile()?);
            }
            let current = ctl.profile()?;
            to_json(&ctl.set_profile(profile.apply(current))?.profile)
        }
        SimCtlCommand::BlockDevice { device_id } => {
            ctl.set_device_status(&device_id, DeviceStatus::Blocked)?;
            Ok(format!("device {device_id} blocked"))
        }
        SimCtlCommand::UnblockDevice { device_id } => {
            ctl.set_device_status(&device_id, DeviceStatus::Approved)?;
            Ok(format!("device {device_id} approved"))
        }
        SimCtlCommand::SetApproval { mode, prompt_ms } => {
            to_json(&ctl.set_approval(mode, prompt_ms)?)
        }
        SimCtlCommand::SetFaults { faults, slow_ms } => to_json(&ctl.set_faults(faults, slow_ms)?),
        SimCtlCommand::SetUser { user_name } => to_json(&ctl.set_logged_in_user(&user_name)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: SimArgs,
    }

    #[derive(Parser)]
    struct Ctl {
        #[command(subcommand)]
        cmd: SimCtlCommand,
    }

    #[test]
    fn profile_flags_select_each_behaviour_and_default_to_the_real_shapes() {
        let plain = Serve::try_parse_from(["sim", "--port", "0"]).unwrap();
        let config = plain.args.into_config(Path::new("/app")).unwrap();
        assert_eq!(config.profile, SimProfile::default());
        let s = Serve::try_parse_from([
            "sim",
            "--port",
            "0",
            "--narrative",
            "narrative-per-line",
            "--task-status",
            "ignored",
            "--task-details",
            "reported",
            "--connection",
            "closed-after-reply",
            "--terminator",
            "eof",
        ])
        .unwrap();
        let config = s.args.into_config(Path::new("/app")).unwrap();
        assert_eq!(
            config.profile,
            SimProfile {
                narrative: NarrativeReadBack::NarrativePerLine,
                task_status: TaskStatusUpdate::Ignored,
                task_details: TaskDetailsInReads::Reported,
                connection: ConnectionMode::ClosedAfterReply,
                terminator: ResponseTerminator::Eof,
            }
        );
        assert!(Serve::try_parse_from(["sim", "--port", "0", "--narrative", "sideways"]).is_err());
    }

    #[test]
    fn a_missing_port_is_an_error_never_systmones_40700() {
        let no_port = Serve::try_parse_from(["sim"]).unwrap();
        let missing = no_port.args.into_config(Path::new("/app")).unwrap_err();
        assert!(matches!(missing, SimError::NoPort), "{missing}");
        assert!(missing.to_string().contains("--port"), "{missing}");
        // The library's own default is a free port too, never SystmOne's.
        assert_eq!(SimConfig::new(PathBuf::from("/tmp/s")).port, 0);
    }

    #[test]
    fn a_non_loopback_bind_address_is_refused_with_a_clear_error() {
        for address in ["0.0.0.0", "192.168.1.20", "::"] {
            let s = Serve::try_parse_from(["sim", "--port", "0", "--bind", address]).unwrap();
            let refused = s.args.into_config(Path::new("/app")).unwrap_err();
            assert!(matches!(refused, SimError::NotLoopback(_)), "{refused}");
            assert!(refused.to_string().contains("local host only"), "{refused}");
        }
        for address in ["127.0.0.1", "::1"] {
            let s = Serve::try_parse_from(["sim", "--port", "0", "--bind", address]).unwrap();
            assert!(s
                .args
                .into_config(Path::new("/app"))
                .unwrap()
                .bind
                .is_loopback());
        }
    }

    #[tokio::test]
    async fn the_server_itself_refuses_a_non_loopback_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SimConfig::new(dir.path().to_path_buf());
        config.bind = "0.0.0.0".parse().unwrap();
        let refused = super::super::Simulator::start(config).await.unwrap_err();
        assert!(matches!(refused, SimError::NotLoopback(_)), "{refused}");
        // Refused before anything was generated in the data directory.
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn simctl_profile_shows_and_changes_the_running_profile() {
        let dir = tempfile::tempdir().unwrap();
        let config = SimConfig::new(dir.path().to_path_buf());
        super::super::state::SimDb::open(dir.path(), Some((config.seed, &config.settings())))
            .unwrap();
        let show = |dir: &Path| {
            let Ctl { cmd } = Ctl::try_parse_from(["simctl", "profile"]).unwrap();
            run_ctl(cmd, dir).unwrap()
        };
        let shown: SimProfile = serde_json::from_str(&show(dir.path())).unwrap();
        assert_eq!(shown, SimProfile::default());
        let Ctl { cmd } =
            Ctl::try_parse_from(["simctl", "profile", "--task-status", "refused"]).unwrap();
        run_ctl(cmd, dir.path()).unwrap();
        let shown: SimProfile = serde_json::from_str(&show(dir.path())).unwrap();
        // Only the part given changes.
        assert_eq!(
            shown,
            SimProfile {
                task_status: TaskStatusUpdate::Refused,
                ..SimProfile::default()
            }
        );
        // The status summary shows it too.
        let Ctl { cmd } = Ctl::try_parse_from(["simctl", "status"]).unwrap();
        assert!(run_ctl(cmd, dir.path()).unwrap().contains("\"refused\""));
    }

    #[test]
    fn parses_the_documented_flags() {
        let s = Serve::try_parse_from([
            "sim",
            "--port",
            "40701",
            "--seed",
            "9",
            "--faults",
            "drop=0.1,slow=0.05,garbage=0.01,reset=0.02,temporary=0.05",
            "--slow-ms",
            "3000",
            "--approval",
            "prompt",
            "--sim-dir",
            "/tmp/simx",
            "--user",
            "demo.consultant",
        ])
        .unwrap();
        let config = s.args.clone().into_config(Path::new("/app")).unwrap();
        assert_eq!(
            (config.port, config.seed, config.approval, config.slow_ms),
            (40701, 9, ApprovalMode::Prompt, 3000)
        );
        assert_eq!(config.faults.reset, 0.02);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/simx"));
        let defaulted = Serve::try_parse_from(["sim", "--port", "0"]).unwrap();
        assert_eq!(
            defaulted
                .args
                .into_config(Path::new("/app"))
                .unwrap()
                .data_dir,
            PathBuf::from("/app/simulator")
        );
        assert!(Serve::try_parse_from(["sim", "--port", "0", "--faults", "drop=3"]).is_err());
        let bad_user = Serve::try_parse_from([
            "sim",
            "--port",
            "0",
            "--user",
            "real.person",
            "--sim-dir",
            "/tmp/x",
        ])
        .unwrap();
        assert!(matches!(
            bad_user.args.into_config(Path::new("/app")),
            Err(SimError::UnknownUser(_))
        ));
    }

    #[test]
    fn control_commands_run_against_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            run_ctl(SimCtlCommand::Status, dir.path()),
            Err(SimError::NotInitialised(_))
        ));
        let config = SimConfig::new(dir.path().to_path_buf());
        super::super::state::SimDb::open(dir.path(), Some((config.seed, &config.settings())))
            .unwrap();
        let run = |args: &[&str]| {
            run_ctl(
                Ctl::try_parse_from(std::iter::once("ctl").chain(args.iter().copied()))
                    .unwrap()
                    .cmd,
                dir.path(),
            )
        };
        run(&["open", "9990000018"]).unwrap();
        let status: serde_json::Value = serde_json::from_str(&run(&["status"]).unwrap()).unwrap();
        assert_eq!(status["open_patient"], "9990000018");
        run(&["add-event", "9990000018", "Reviewed on screen"]).unwrap();
        let events: serde_json::Value =
            serde_json::from_str(&run(&["events", "9990000018", "--all"]).unwrap()).unwrap();
        assert!(events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["narrative"] == "Reviewed on screen"));
        run(&["set-faults", "drop=0.25", "--slow-ms", "5"]).unwrap();
        let status: serde_json::Value = serde_json::from_str(&run(&["status"]).unwrap()).unwrap();
        assert_eq!(status["settings"]["faults"]["drop"], 0.25);
        let v: serde_json::Value = serde_json::from_str(&run(&["violations"]).unwrap()).unwrap();
        assert_eq!(v["throttle_violations"], 0);
        assert!(run(&["edit-task", "0000000000000000"]).is_err());
    }
}

#[cfg(test)]
mod hubctl_shape {
    //! `hubctl` has a global `--data-dir`; `SimArgs` must live beside it without a clap clash.
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand)]
    enum Cmd {
        Sim(SimArgs),
        #[command(subcommand)]
        Simctl(SimCtlCommand),
    }

    #[test]
    fn sim_and_simctl_fit_under_a_global_data_dir() {
        let cli = Cli::try_parse_from([
            "hubctl",
            "--data-dir",
            "/tmp/app",
            "sim",
            "--sim-dir",
            "/tmp/a",
            "--port",
            "1",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/app")));
        let Cmd::Sim(args) = cli.cmd else {
            panic!("expected sim")
        };
        assert_eq!(args.sim_dir, Some(PathBuf::from("/tmp/a")));
        assert_eq!(args.port, Some(1));
        let cli = Cli::try_parse_from([
            "hubctl",
            "--data-dir",
            "/tmp/b",
            "simctl",
            "open",
            "9990000018",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/b")));
        assert!(matches!(cli.cmd, Cmd::Simctl(SimCtlCommand::Open { .. })));
    }
}
