//! A stand-in for TPP's SystmOne desktop client, for development, demos and tests.
//!
//! It listens on the local host only, on a port given explicitly (never SystmOne's 40700 by
//! default, so it is not mistaken for SystmOne by accident), speaks the Client Integration
//! API through `systmone::codec` and `systmone::framing`, and behaves as TPP documents it
//! (see /work/shared/systmone-api.md): the throttle that drops requests silently, device
//! approval, record locking, search and filter rules. Faults can be injected at seeded rates.
//! Everything it shows is fictitious and labelled as a simulator.
//!
//! - [`data`]: the generated organisation and patients (deterministic from the seed).
//! - [`state`]: the SQLite file `<sim data dir>/simulator.sqlite` shared with [`control`].
//! - [`throttle`], [`faults`]: the rules for silence and injected failures.
//! - [`rules`]: one function per API function, on typed requests.
//! - [`server`]: TCP, framing, approval, throttle and faults around [`rules`].
//! - [`control`], [`cli`]: what a SystmOne user would do on screen, for tests and `hubctl simctl`.
//!
//! Choices where TPP's specification is silent ([ours]):
//! - Throttle: 1 s measured arrival to arrival with 50 ms tolerance for timer jitter; a
//!   dropped request counts as an arrival; the 30 s GetPatientRecord window runs from the last
//!   accepted non-exempt one (see [`throttle`]). A document that cannot be decoded counts as an
//!   arrival; if its envelope names a known function it gets a permanent ErrorMessage,
//!   otherwise no reply; either way it is logged (`error` / `unreadable`).
//! - Device approval: an empty *or unknown* DeviceID goes to the user; on approval a fresh
//!   DeviceID is issued (the client must store whatever DeviceID a response carries). A blocked
//!   device (`block` mode, or `simctl block-device`) gets [`BLOCKED_MESSAGE`], permanent.
//! - Record locking: LeaveRecordOpen opens the record on screen (saving any other open record)
//!   and files items as pending; `simctl save` commits them, `simctl close` saves unless
//!   `--discard`. Task *changes* apply at once even under LeaveRecordOpen.
//! - Task completion: `<Status>Completed</Status>` on a task update (unproven on real
//!   SystmOne: the `task_status` profile makes it applied, ignored or refused); completed
//!   tasks leave the Tasks filter but stay in the unfiltered record.
//! - Reads answer in the shapes of real captures by default (one padded Line per Narrative,
//!   SystmOne's header line on task Content, no Due/assignee in task reads, the XSD's
//!   medication, problem, attachment and demographic fields); [`profile`] selects the other
//!   behaviours the evidence leaves open.
//! - Faults: one seeded draw per accepted request picks at most one of drop, garbage, reset,
//!   temporary (rates add up in that order); slow is drawn independently. For a write whose
//!   reply is lost, a further seeded draw decides whether it was applied first; the request log
//!   records it (`applied`). Garbage is followed by closing the connection.
//! - Only NHS numbers identify the fictitious patients; PseudoNumber and ClientID find nobody.

pub mod cli;
pub mod control;
pub mod data;
pub mod faults;
pub mod profile;
pub mod rules;
pub mod server;
pub mod state;
pub mod throttle;

pub use control::SimControl;
pub use faults::FaultRates;
pub use profile::SimProfile;
pub use server::{run_server, SimHandle, Simulator};
pub use state::{ApprovalMode, SimSettings};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The APIKey the simulator accepts unless configured otherwise (TPP's example key).
pub const DEFAULT_API_KEY: &str = systmone_wire::SIMULATOR_API_KEY;
/// Verbatim: Inpatient Hub recognises a block by the word "blocked".
pub const BLOCKED_MESSAGE: &str =
    "This device has been blocked by the SystmOne user. Blocks can be lifted in the Device Manager.";

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulator could not listen on {addr}: {reason} (is SystmOne or another simulator already running there?)")]
    Bind { addr: SocketAddr, reason: String },
    #[error("give the simulator a port with --port (0 picks a free one): it has no default, so it never takes SystmOne's 40700 unless asked to")]
    NoPort,
    #[error("the simulator listens on the local host only (127.0.0.1 or ::1), not {0}: it answers with fictitious patients and must never be reachable from the network")]
    NotLoopback(IpAddr),
    #[error("the simulator's data directory {0} could not be created: {1}")]
    DataDir(String, String),
    #[error("no simulator data in {0}; start the simulator once (`hubctl sim`) to generate it")]
    NotInitialised(String),
    #[error("{dir} already holds a simulator generated from seed {stored}; start with --seed {stored} or use another --data-dir (asked for seed {requested})")]
    SeedMismatch {
        dir: String,
        stored: u64,
        requested: u64,
    },
    #[error("the simulator database is unusable: {0}; delete simulator.sqlite to regenerate it")]
    Corrupt(String),
    #[error("simulator database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("no fictitious user called '{0}' (try demo.consultant, demo.nurse, demo.student or demo.hca)")]
    UnknownUser(String),
    #[error("no fictitious patient with NHS number {0}")]
    UnknownPatient(String),
    #[error("no task with TaskUID {0}")]
    UnknownTask(String),
    #[error("no record is open on the simulated SystmOne screen")]
    NoOpenRecord,
    #[error("{0}")]
    Invalid(String),
    #[error("the simulator stopped unexpectedly: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything needed to run a simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub bind: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub seed: u64,
    pub data_dir: PathBuf,
    pub approval: ApprovalMode,
    /// How long the approval dialog stays up in `prompt` mode.
    pub prompt_ms: u64,
    pub faults: FaultRates,
    pub slow_ms: u64,
    pub logged_in_user: String,
    pub api_key: String,
    /// Where real SystmOne's behaviour is open: the default is the shapes seen in captures.
    pub profile: SimProfile,
}

impl SimConfig {
    /// Defaults: 127.0.0.1 on a free port (never SystmOne's 40700), seed 1, auto approval, no faults, the staff nurse logged in.
    pub fn new(data_dir: PathBuf) -> SimConfig {
        SimConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: 1,
            data_dir,
            approval: ApprovalMode::Auto,
            prompt_ms: 3_000,
            faults: FaultRates::default(),
            slow_ms: 3_000,
            logged_in_user: data::DEFAULT_USER.into(),
            api_key: DEFAULT_API_KEY.into(),
            profile: SimProfile::default(),
        }
    }

    pub fn settings(&self) -> SimSettings {
        SimSettings {
            profile: self.profile,
            approval: self.approval,
            prompt_ms: self.prompt_ms,
            faults: self.faults,
            slow_ms: self.slow_ms,
            logged_in_user: self.logged_in_user.clone(),
            api_key: self.api_key.clone(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The address to listen on, refused unless it is the local host: the simulator must
    /// never be reachable from another PC (it would pass for a SystmOne answering anyone).
    pub fn loopback_addr(&self) -> Result<SocketAddr, SimError> {
        if self.bind.is_loopback() {
            Ok(self.addr())
        } else {
            Err(SimError::NotLoopback(self.bind))
        }
    }
}
