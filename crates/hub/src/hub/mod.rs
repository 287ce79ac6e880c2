//! The core façade: every operation the window and `hubctl` offer, taking raw input,
//! validating it, and calling the store (and, later, SystmOne). The tauri shell is one
//! call into this per command, so the same behaviour is testable with no window.

use crate::db_key::{DatabaseKey, DbKeySource};
use chrono::{DateTime, Local};
use domain::{
    parse_due, BedLabel, NhsNumber, NhsNumberError, PatientId, PatientName, StaffName, Task,
    TaskChanges, TaskFilter, TaskId, TaskStatus, TaskTitle, ValidationError,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use store::{
    AuditEntry, AuditQuery, DatabaseEnvironment, NewPatient, Patient, SettingKey, Store, StoreError,
};

mod filing;
mod identity;
mod integrity;
mod notes;
mod paging;
mod systmone_link;
mod task_sync;
mod ward_settings;
pub use filing::SystmOneRecordWriter;
pub use identity::{
    admin_role_map_path, normalise_role_name, os_account, ActingIdentity, IdentityError,
    Permission, Profile, RoleLookup, RoleMap, RoleStanding, SystmOneUserView,
};
pub use integrity::{BACKGROUND_CHECK_ACTOR, BACKGROUND_CHECK_EVERY};
pub use notes::DraftInput;
pub use paging::{AuditPage, OutboxPage, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use systmone_link::{FollowView, KeySource, SearchOutcome, SearchSource, SystmOneStatus};
pub use task_sync::{TaskSyncReport, TaskSyncView, DEFAULT_TASK_TYPE};
pub use ward_settings::{clipboard_still_holds, SettingKind, WardSetting, WardSettingView};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    DatabaseKey(#[from] crate::db_key::DbKeyError),
    /// `hubctl backup` / `restore`: the backup's own checks.
    #[error(transparent)]
    Backup(#[from] store::backup::BackupError),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    NhsNumber(#[from] NhsNumberError),
    /// Who is acting cannot be established, or their verified role does not allow this.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Lookup(#[from] crate::lookup::LookupError),
    #[error(transparent)]
    SystmOne(systmone::client::ClientError),
    #[error("SystmOne is unavailable: {0}.")]
    SystmOneUnavailable(String),
    #[error("the SystmOne connection leads to the Inpatient Hub simulator, which holds fictitious patients; it is used only in demo mode (start with --demo)")]
    SimulatorNotInDemoMode,
    #[error("demo mode is on but the SystmOne connection leads to a real SystmOne; demo mode never touches real records")]
    RealSystmOneInDemoMode,
    #[error("SystmOne has no patient with NHS number {0}")]
    NoSuchPatient(String),
    /// `hubctl check` found the database file damaged: SQLite's findings.
    #[error("the database file is damaged: {0}. Ask IT to restore it from backup")]
    DatabaseDamaged(String),
    /// `hubctl audit verify` found the audit trail altered: the one-line finding.
    #[error("{0}")]
    AuditTampered(String),
    #[error(transparent)]
    Notes(crate::notes::NotesError),
    /// An input error and the input field it is about, so the window can put the message
    /// beside that field (the field is the snake_case name in the command's input).
    #[error("{source}")]
    Field {
        field: &'static str,
        source: Box<HubError>,
    },
}

impl HubError {
    /// A stable machine-readable code for the UI and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::Store(e) => e.code(),
            HubError::DatabaseKey(e) => e.code(),
            HubError::Backup(e) => e.code(),
            HubError::Invalid(_) => "invalid_input",
            HubError::NhsNumber(_) => "invalid_nhs_number",
            HubError::Identity(e) => e.code(),
            HubError::BadRequest(_) => "invalid_input",
            HubError::Lookup(crate::lookup::LookupError::NhsNumber(_)) => "invalid_nhs_number",
            HubError::Lookup(_) => "invalid_search",
            HubError::SystmOne(e) => e.code(),
            HubError::SystmOneUnavailable(_) => "systmone_unavailable",
            HubError::SimulatorNotInDemoMode => "simulator_not_in_demo_mode",
            HubError::RealSystmOneInDemoMode => "real_systmone_in_demo_mode",
            HubError::NoSuchPatient(_) => "no_such_patient",
            HubError::DatabaseDamaged(_) => "database_corrupt",
            HubError::AuditTampered(_) => "audit_tampered",
            HubError::Notes(e) => e.code(),
            HubError::Field { source, .. } => source.code(),
        }
    }

    /// The input field this error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            HubError::Field { field, .. } => Some(field),
            HubError::Lookup(e) => e.field(),
            HubError::NhsNumber(_) => Some("nhs_number"),
            _ => None,
        }
    }

    /// An error in what was typed (as opposed to the database, SystmOne or a conflict).
    fn is_input_error(&self) -> bool {
        use crate::notes::NotesError as N;
        matches!(
            self,
            HubError::Invalid(_)
                | HubError::NhsNumber(_)
                | HubError::BadRequest(_)
                | HubError::Lookup(_)
                | HubError::Notes(N::Invalid(_) | N::Render(_) | N::NhsNumber(_))
        )
    }

    /// SystmOne cannot be reached or used right now (as opposed to refusing this request):
    /// lookups fall back to the ward's own patients, and queued work waits.
    /// For a read, "maybe sent" means no usable answer came: as unavailable as not running.
    pub fn is_unavailable(&self) -> bool {
        match self {
            HubError::SystmOneUnavailable(_) => true,
            HubError::SystmOne(e) => matches!(
                e.failure(),
                domain::SystmOneFailure::Unavailable(_) | domain::SystmOneFailure::MaybeSent
            ),
            _ => false,
        }
    }
}

pub type HubResult<T> = Result<T, HubError>;

/// Names the input field an input error is about (other errors pass through unchanged).
pub(crate) trait InField<T> {
    fn in_field(self, field: &'static str) -> HubResult<T>;
}

impl<T, E: Into<HubError>> InField<T> for Result<T, E> {
    fn in_field(self, field: &'static str) -> HubResult<T> {
        self.map_err(|e| {
            let e = e.into();
            if e.is_input_error() {
                HubError::Field {
                    field,
                    source: Box::new(e),
                }
            } else {
                e
            }
        })
    }
}

/// Raw input for a new task, as typed in the window or on the command line.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskInput {
    pub patient_id: i64,
    pub title: String,
    pub assignee: Option<String>,
    pub due: Option<String>,
}

/// Raw input for an edit: absent fields are left alone; an empty string clears
/// assignee or due.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskEditInput {
    pub title: Option<String>,
    pub assignee: Option<String>,
    pub due: Option<String>,
    /// The version the user saw; a stale edit is refused rather than overwriting.
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PatientInput {
    pub bed: String,
    pub name: String,
    pub nhs_number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BoardFilter {
    pub patient_id: Option<i64>,
    pub assignee: Option<String>,
    /// "open", "done", "cancelled", or absent / "all".
    pub status: Option<String>,
}

/// A task as the board shows it, with its at-a-glance flags computed once, here.
#[derive(Debug, Clone, Serialize)]
pub struct BoardTask {
    #[serde(flatten)]
    pub task: Task,
    pub overdue: bool,
    pub due_today: bool,
    /// The task's SystmOne link (state, TaskUID, notice), if it has one.
    pub sync: Option<domain::task_link::TaskLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub now: DateTime<Local>,
    pub patients: Vec<Patient>,
    pub tasks: Vec<BoardTask>,
    pub read_only: bool,
    /// Per linked patient: when their tasks were last confirmed against SystmOne.
    pub task_sync: Vec<domain::task_link::PatientTaskSync>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandoverPatient {
    pub patient: Patient,
    pub open_tasks: Vec<BoardTask>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    pub data_dir: PathBuf,
    pub database: PathBuf,
    pub read_only: bool,
    /// Who audit rows name for this window's changes: the SystmOne user when connected, else
    /// the OS account (`None` only when neither can be determined: then changes are refused).
    pub current_user: Option<String>,
    /// Who is acting and what their role allows (see [`identity`]).
    pub identity: ActingIdentity,
    /// The ward's idle lock (never off; see `WardSetting::IdleLockMinutes`).
    pub idle_lock_minutes: u32,
    pub schema_version: i64,
    /// True when started against the bundled SystmOne simulator: every screen shows a DEMO banner.
    pub demo_mode: bool,
    /// Set when the audit trail looks altered outside the app (a protective trigger dropped or
    /// changed, the newest row not matching its hash): every screen shows it until IT acts.
    pub audit_warning: Option<String>,
    /// Set when the last database check (daily in the background, or `hubctl check`) found
    /// the file damaged: every screen shows it until a check passes.
    pub integrity_warning: Option<String>,
}

pub struct Hub {
    store: Mutex<Store>,
    data_dir: PathBuf,
    /// The OS account, read once: it cannot change while the process runs.
    os_account: Result<String, IdentityError>,
    /// The administrator's role map (or the built-in one), read once at start.
    role_map: RoleMap,
    /// What was last given to [`Store::set_acting_identity`], so it is only re-sent on change.
    store_identity: Mutex<Option<(String, Option<String>)>>,
    /// Tests only: a SystmOne user standing in for the connection's.
    #[cfg(any(test, feature = "test-identity"))]
    assumed_systmone_user: Mutex<Option<SystmOneUserView>>,
    demo_mode: bool,
    systmone: Option<systmone_link::SystmOneLink>,
    systmone_problem: Option<String>,
    systmone_addr: Option<SocketAddr>,
    /// Demographics a clinician has been shown, awaiting their confirmation, so what is
    /// linked is exactly what was reviewed.
    pending_reviews: Mutex<HashMap<(PatientId, String), systmone::codec::Demographics>>,
    /// Upper bound on one filing call (queue wait + SystmOne's answer).
    filing_call_timeout: std::time::Duration,
    filing_policy: crate::notes::Policy,
}

impl Hub {
    /// Opens the database in `data_dir` (created if needed) with this account's database
    /// key (`INPATIENT_HUB_DB_KEY`, else the keychain: see [`crate::db_key`]), refusing it
    /// unless it is marked `environment` (a new database is marked so). Demo mode is on
    /// exactly when `environment` is demo: the mark and the mode cannot disagree.
    pub fn open(data_dir: &Path, environment: DatabaseEnvironment) -> HubResult<Hub> {
        let db_path = crate::config::database_path(data_dir);
        let (key, source) = crate::db_key::resolve_database_key(&db_path)?;
        Hub::open_keyed(data_dir, &key, source, environment)
    }

    /// [`Hub::open`] with a key the caller holds (tests, and tools given a key explicitly).
    pub fn open_with_key(
        data_dir: &Path,
        key: &DatabaseKey,
        environment: DatabaseEnvironment,
    ) -> HubResult<Hub> {
        Hub::open_keyed(data_dir, key, DbKeySource::Given, environment)
    }

    fn open_keyed(
        data_dir: &Path,
        key: &DatabaseKey,
        source: DbKeySource,
        environment: DatabaseEnvironment,
    ) -> HubResult<Hub> {
        let db_path = crate::config::database_path(data_dir);
        let mut store = Store::open(&db_path, key)
            .map_err(|e| crate::db_key::DbKeyError::from_open_error(e, source))?;
        store.claim_environment(environment)?;
        // Checked at every open; the window also shows it (`AppStatus::audit_warning`).
        if let Some(warning) = store.audit_integrity_warning() {
            tracing::warn!("{warning}");
        }
        let mut hub = Hub::from_store(store, data_dir.to_path_buf());
        hub.demo_mode = environment == DatabaseEnvironment::Demo;
        Ok(hub)
    }

    pub fn from_store(store: Store, data_dir: PathBuf) -> Hub {
        Hub {
            store: Mutex::new(store),
            data_dir,
            os_account: identity::os_account(),
            role_map: RoleMap::load(&identity::admin_role_map_path()),
            store_identity: Mutex::new(None),
            #[cfg(any(test, feature = "test-identity"))]
            assumed_systmone_user: Mutex::new(None),
            demo_mode: false,
            systmone: None,
            systmone_problem: None,
            systmone_addr: None,
            pending_reviews: Mutex::new(HashMap::new()),
            filing_call_timeout: crate::notes::WorkerConfig::new("").call_timeout,
            filing_policy: crate::notes::Policy::default(),
        }
    }

    /// The store lock. A panic while holding it cannot leave a half-written row (every
    /// write is a transaction), so a poisoned lock is safe to reuse.
    ///
    /// Every write takes the store through here, so this is where the store learns who is
    /// acting (OS account + SystmOne user) for the audit rows: it cannot be forgotten, and it
    /// follows a change of SystmOne user at the next write.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.tell_store_who_acts(&mut store);
        store
    }

    fn tell_store_who_acts(&self, store: &mut Store) {
        // Without an OS account every write is refused before it reaches the store.
        let Ok(os_account) = &self.os_account else {
            return;
        };
        let systmone_user = self.systmone_user().map(|u| u.name);
        let wanted = (os_account.clone(), systmone_user);
        let mut last = self
            .store_identity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.as_ref() == Some(&wanted) {
            return;
        }
        match store.set_acting_identity(&wanted.0, wanted.1.as_deref()) {
            Ok(()) => *last = Some(wanted),
            // Logged and tried again at the next lock; no patient data in it.
            Err(e) => tracing::warn!(code = e.code(), "could not record the acting identity: {e}"),
        }
    }

    /// Replaces the role map read at start (tests; IT tooling that validated a map itself).
    /// Release builds read the administrator's file only (see [`admin_role_map_path`]).
    pub fn with_role_map(mut self, map: RoleMap) -> Hub {
        self.role_map = map;
        self
    }

    /// Tests only: act as if SystmOne reported this logged-on user (`None`: not connected).
    #[cfg(any(test, feature = "test-identity"))]
    pub fn assume_systmone_user_for_tests(&self, user: Option<SystmOneUserView>) {
        *self
            .assumed_systmone_user
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = user;
    }

    /// Tests only: act as if the OS account were this (`None`: undeterminable).
    #[cfg(any(test, feature = "test-identity"))]
    pub fn assume_os_account_for_tests(&mut self, account: Option<&str>) {
        self.os_account = account
            .map(str::to_owned)
            .ok_or_else(|| IdentityError::NoOsAccount("no account (test)".into()));
    }

    /// The SystmOne logged-on user, when SystmOne is connected and has said who it is.
    fn systmone_user(&self) -> Option<SystmOneUserView> {
        #[cfg(any(test, feature = "test-identity"))]
        if let Some(user) = self
            .assumed_systmone_user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Some(user);
        }
        let client = self.systmone_client()?;
        let state = client.state().borrow().clone();
        match state {
            systmone::connection::ConnectionState::Connected {
                user: Some(user), ..
            } => Some(SystmOneUserView {
                name: user.name,
                user_name: user.user_name,
                role: user.role,
            }),
            _ => None,
        }
    }

    /// Who is acting now: the OS account, the SystmOne user and their mapped role, and the
    /// display label typed in Settings (shown, never trusted).
    pub fn identity(&self) -> HubResult<ActingIdentity> {
        let label = self
            .store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .setting(SettingKey::CurrentUser)?;
        Ok(ActingIdentity::resolve(
            self.os_account.clone(),
            self.systmone_user(),
            &self.role_map,
            label,
        ))
    }

    /// As [`Hub::identity`] without the display label: what every check uses (no database
    /// read, so it can be asked before taking the store).
    pub(crate) fn acting(&self) -> ActingIdentity {
        ActingIdentity::resolve(
            self.os_account.clone(),
            self.systmone_user(),
            &self.role_map,
            None,
        )
    }

    /// Asks SystmOne afresh who is logged on (the window's idle lock and "check who is here"),
    /// then says who acts. SystmOne being unavailable is not an error: the answer is then the
    /// OS account alone, with no verified role.
    pub async fn recheck_identity(&self) -> HubResult<ActingIdentity> {
        if let Some(client) = self.systmone_client() {
            if let Err(e) = client
                .organisation(true, systmone::scheduler::Lane::Interactive)
                .await
            {
                tracing::info!(code = e.code(), "SystmOne could not say who is logged on");
            }
        }
        self.identity()
    }

    /// Before a sign-off: when SystmOne answers but has not yet said who is logged on, asks
    /// (so a clinician who is logged on is not treated as offline just because nobody asked
    /// yet). Otherwise sends nothing.
    pub async fn learn_who_is_logged_on(&self) {
        let Some(client) = self.systmone_client() else {
            return;
        };
        let unknown = matches!(
            &*client.state().borrow(),
            systmone::connection::ConnectionState::Connected { user: None, .. }
        );
        if unknown {
            if let Err(e) = client
                .organisation(true, systmone::scheduler::Lane::Interactive)
                .await
            {
                tracing::info!(code = e.code(), "SystmOne could not say who is logged on");
            }
        }
    }

    /// The clinical role of the acting person if their verified role grants `permission`;
    /// otherwise an error that says why and what to do.
    pub fn require(&self, permission: Permission) -> HubResult<domain::Role> {
        Ok(self.acting().require(permission)?)
    }

    /// Marks this hub as running against the bundled simulator (fictitious patients).
    pub fn with_demo_mode(mut self, demo_mode: bool) -> Hub {
        self.demo_mode = demo_mode;
        self
    }

    fn pending_reviews(
        &self,
    ) -> MutexGuard<'_, HashMap<(PatientId, String), systmone::codec::Demographics>> {
        self.pending_reviews
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// How long to wait after a lost answer before reading the record back, and the first
    /// retry delay after a temporary error (IT tuning; tests).
    pub fn set_filing_policy(
        &mut self,
        reconcile_grace: Option<std::time::Duration>,
        retry_base: Option<std::time::Duration>,
    ) {
        // Out of range only for absurd values: waiting as long as possible is the safe side.
        let to_chrono = |d: std::time::Duration| {
            chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
        };
        if let Some(g) = reconcile_grace {
            self.filing_policy.reconcile_grace = to_chrono(g);
        }
        if let Some(b) = retry_base {
            self.filing_policy.backoff_base = to_chrono(b);
        }
    }

    pub fn demo_mode(&self) -> bool {
        self.demo_mode
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn status(&self) -> HubResult<AppStatus> {
        // Both take the store lock themselves, so before it is held here.
        let identity = self.identity()?;
        let idle_lock_minutes = self.idle_lock_minutes()?;
        let store = self.store();
        Ok(AppStatus {
            data_dir: self.data_dir.clone(),
            database: store.path().to_path_buf(),
            read_only: store.is_read_only(),
            current_user: identity.actor.clone(),
            identity,
            idle_lock_minutes,
            schema_version: store::SCHEMA_VERSION,
            demo_mode: self.demo_mode,
            audit_warning: store.audit_integrity_warning(),
            integrity_warning: Hub::integrity_warning(&store),
        })
    }

    /// Checks the whole audit hash chain (`hubctl audit verify`).
    pub fn verify_audit_chain(&self) -> HubResult<store::AuditChainReport> {
        Ok(self.store().verify_audit_chain()?)
    }

    /// The name audit rows carry for a change made now: the SystmOne user when connected,
    /// else the OS account. Refused when the OS account cannot be determined.
    pub fn current_user(&self) -> HubResult<StaffName> {
        Ok(self.acting().actor()?)
    }

    /// Sets the display label shown beside who is acting (e.g. a preferred name). It is a
    /// label only: it is never the audit actor and grants nothing. Audited under the real actor.
    pub fn set_current_user(&self, name: &str) -> HubResult<StaffName> {
        let actor = self.current_user()?;
        let label = StaffName::parse(name).in_field("name")?;
        self.store().set_setting(
            actor.as_str(),
            SettingKey::CurrentUser,
            Some(label.as_str()),
        )?;
        Ok(label)
    }

    pub fn add_patient(&self, input: &PatientInput) -> HubResult<Patient> {
        let actor = self.current_user()?;
        let new = NewPatient {
            bed: BedLabel::parse(&input.bed).in_field("bed")?,
            name: PatientName::parse(&input.name).in_field("name")?,
            nhs_number: non_empty(input.nhs_number.as_deref())
                .map(NhsNumber::parse)
                .transpose()
                .in_field("nhs_number")?,
        };
        let has_nhs = new.nhs_number.is_some();
        self.store()
            .add_patient(actor.as_str(), &new)
            .map_err(|e| match e {
                // The NHS number is the one unique thing a new patient brings.
                e @ StoreError::Conflict(_) if has_nhs => HubError::Field {
                    field: "nhs_number",
                    source: Box::new(e.into()),
                },
                other => other.into(),
            })
    }

    pub fn patients(&self) -> HubResult<Vec<Patient>> {
        Ok(self.store().patients()?)
    }

    pub fn add_task(&self, input: &TaskInput) -> HubResult<Task> {
        let actor = self.current_user()?;
        let new = domain::NewTask {
            patient_id: PatientId(input.patient_id),
            title: TaskTitle::parse(&input.title).in_field("title")?,
            assignee: non_empty(input.assignee.as_deref())
                .map(StaffName::parse)
                .transpose()
                .in_field("assignee")?,
            due: non_empty(input.due.as_deref())
                .map(parse_due)
                .transpose()
                .in_field("due")?,
        };
        self.store().add_task(&actor, &new).map_err(|e| match e {
            // The only thing a new task refers to.
            e @ StoreError::NotFound { .. } => HubError::Field {
                field: "patient_id",
                source: Box::new(e.into()),
            },
            other => other.into(),
        })
    }

    pub fn edit_task(&self, id: i64, input: &TaskEditInput) -> HubResult<Task> {
        let actor = self.current_user()?;
        let changes = TaskChanges {
            title: input
                .title
                .as_deref()
                .map(TaskTitle::parse)
                .transpose()
                .in_field("title")?,
            assignee: input
                .assignee
                .as_deref()
                .map(|a| non_empty(Some(a)).map(StaffName::parse).transpose())
                .transpose()
                .in_field("assignee")?,
            due: input
                .due
                .as_deref()
                .map(|d| non_empty(Some(d)).map(parse_due).transpose())
                .transpose()
                .in_field("due")?,
        };
        if changes.is_empty() {
            return Err(HubError::BadRequest(
                "nothing to change: give a new title, assignee or due time".into(),
            ));
        }
        Ok(self
            .store()
            .edit_task(&actor, TaskId(id), input.version, &changes)?)
    }

    pub fn set_task_status(
        &self,
        id: i64,
        status: TaskStatus,
        version: Option<i64>,
    ) -> HubResult<Task> {
        let actor = self.current_user()?;
        Ok(self
            .store()
            .set_task_status(&actor, TaskId(id), version, status)?)
    }

    pub fn board(&self, filter: &BoardFilter) -> HubResult<Board> {
        let status = match filter.status.as_deref().map(str::trim) {
            None | Some("") | Some("all") => None,
            Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
                HubError::BadRequest(format!(
                    "'{s}' is not a task status (use open, done, cancelled or all)"
                ))
            })?),
        };
        let query = TaskFilter {
            patient_id: filter.patient_id.map(PatientId),
            assignee: non_empty(filter.assignee.as_deref()).map(str::to_owned),
            status,
        };
        let store = self.store();
        let now = Local::now();
        let mut links: HashMap<_, _> = store
            .task_links()?
            .into_iter()
            .map(|l| (l.task_id, l))
            .collect();
        let tasks = store
            .board_tasks(&query)?
            .into_iter()
            .map(|task| {
                let link = links.remove(&task.id);
                BoardTask {
                    sync: link,
                    ..board_task(task, now)
                }
            })
            .collect();
        Ok(Board {
            now,
            patients: store.patients()?,
            tasks,
            read_only: store.is_read_only(),
            task_sync: store.task_sync_patients()?,
        })
    }

    /// What is open, patient by patient, for the shift handover.
    pub fn handover(&self) -> HubResult<Vec<HandoverPatient>> {
        let store = self.store();
        let now = Local::now();
        let open = store.board_tasks(&TaskFilter {
            status: Some(TaskStatus::Open),
            ..Default::default()
        })?;
        Ok(store
            .patients()?
            .into_iter()
            .map(|patient| HandoverPatient {
                open_tasks: open
                    .iter()
                    .filter(|t| t.patient_id == patient.id)
                    .cloned()
                    .map(|t| board_task(t, now))
                    .collect(),
                patient,
            })
            .collect())
    }

    /// Moves whenever the ward's data changed, in this process or another (see
    /// `Store::last_audit_id`): the window's one change check.
    pub fn change_marker(&self) -> HubResult<i64> {
        Ok(self.store().last_audit_id()?)
    }

    pub fn audit(&self, query: &AuditQuery) -> HubResult<Vec<AuditEntry>> {
        Ok(self.store().audit_entries(query)?)
    }
}

fn board_task(task: Task, now: DateTime<Local>) -> BoardTask {
    BoardTask {
        overdue: task.is_overdue(now),
        due_today: task.is_due_today(now),
        task,
        sync: None,
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        let hub = Hub::from_store(
            Store::open_in_memory().unwrap(),
            PathBuf::from("/nonexistent"),
        );
        hub.set_current_user("Nurse Able").unwrap();
        hub
    }

    #[test]
    fn changes_need_an_os_account() {
        let mut hub = Hub::from_store(Store::open_in_memory().unwrap(), PathBuf::new());
        hub.assume_os_account_for_tests(None);
        let err = hub
            .add_patient(&PatientInput {
                bed: "1".into(),
                name: "A B".into(),
                nhs_number: None,
            })
            .unwrap_err();
        assert_eq!(err.code(), "unattributed");
        assert!(err.to_string().contains("your own account"), "{err}");
        assert!(hub.patients().unwrap().is_empty());
    }

    #[test]
    fn board_flags_overdue_tasks_and_handover_lists_open_ones() {
        let hub = hub();
        let p = hub
            .add_patient(&PatientInput {
                bed: "Bed 1".into(),
                name: "Pat One".into(),
                nhs_number: None,
            })
            .unwrap();
        let past = hub
            .add_task(&TaskInput {
                patient_id: p.id.0,
                title: "Late".into(),
                due: Some("2020-01-01 09:00".into()),
                assignee: None,
            })
            .unwrap();
        let done = hub
            .add_task(&TaskInput {
                patient_id: p.id.0,
                title: "Done".into(),
                ..Default::default()
            })
            .unwrap();
        hub.set_task_status(done.id.0, TaskStatus::Done, None)
            .unwrap();
        let board = hub.board(&BoardFilter::default()).unwrap();
        let late = board.tasks.iter().find(|t| t.task.id == past.id).unwrap();
        assert!(late.overdue);
        let handover = hub.handover().unwrap();
        assert_eq!(handover[0].open_tasks.len(), 1);
        assert_eq!(handover[0].open_tasks[0].task.title.as_str(), "Late");
    }

    #[test]
    fn bad_input_is_refused_with_a_clear_code_and_nothing_written() {
        let hub = hub();
        let p = hub
            .add_patient(&PatientInput {
                bed: "Bed 1".into(),
                name: "Pat One".into(),
                nhs_number: None,
            })
            .unwrap();
        let cases = [
            TaskInput {
                patient_id: p.id.0,
                title: "   ".into(),
                ..Default::default()
            },
            TaskInput {
                patient_id: p.id.0,
                title: "x".repeat(300),
                ..Default::default()
            },
            TaskInput {
                patient_id: p.id.0,
                title: "ok".into(),
                due: Some("2026-02-31".into()),
                ..Default::default()
            },
        ];
        for input in &cases {
            assert_eq!(hub.add_task(input).unwrap_err().code(), "invalid_input");
        }
        let err = hub
            .add_task(&TaskInput {
                patient_id: 77,
                title: "ok".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert!(hub.board(&BoardFilter::default()).unwrap().tasks.is_empty());
        let err = hub
            .add_patient(&PatientInput {
                bed: "2".into(),
                name: "X Y".into(),
                nhs_number: Some("123 456 7890".into()),
            })
            .unwrap_err();
        assert_eq!(err.code(), "invalid_nhs_number");
    }
}
