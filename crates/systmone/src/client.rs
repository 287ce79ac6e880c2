//! The typed SystmOne client the rest of the app calls: one async method per function,
//! each queued on a [`Lane`] through the one scheduler in front of the one connection.

use super::codec::{
    CurrentActivity, DeletePatientRecordParams, DeletePatientRecordResponse, Function,
    GetFunctionsResponse, GetOrganisationMetaDataParams, GetPatientRecordParams, Identity,
    IsPatientRetrievedParams, OrganisationMetaData, PatientRecord, PatientSearchParams,
    PatientSearchResponse, RecordFilter, RequestParams, Response, ResponseBody,
    UpdatePatientRecordParams, UpdatePatientRecordResponse,
};
use super::connection::{
    is_write, BackoffConfig, Connection, ConnectionConfig, ConnectionState, ExpectedPeer,
    StatePublisher, Timeouts, WeakStatePublisher,
};
use super::pacing::{Pacer, PacingConfig, PacingError};
use super::scheduler::{JobId, QueueSnapshot, Scheduler, Submitted, WeakScheduler};
use super::secrets::ApiKey;
use domain::ports::{DeviceIdentity, PacingLedger};
use domain::{NhsNumber, Sensitive, SystmOneFailure};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub use super::scheduler::Lane;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("SystmOne is not running on this PC, or nobody is logged in to it")]
    NotRunning,
    #[error("SystmOne is asking for Inpatient Hub to be approved on this PC: approve it in SystmOne, then try again")]
    AwaitingApproval,
    #[error("SystmOne has blocked Inpatient Hub on this PC ({0}); a SystmOne administrator can lift the block in the Device Manager")]
    Blocked(String),
    #[error("SystmOne did not answer within {} s (it may be busy fetching from TPP's servers); please try again", .after.as_secs())]
    Timeout { after: Duration },
    #[error("SystmOne did not confirm the change ({reason}); it may or may not have been saved. Check the record in SystmOne before trying again")]
    OutcomeUnknown { reason: String },
    #[error("the connection to SystmOne closed before it answered")]
    ConnectionLost,
    /// SystmOne's own words; PermanentError was false (e.g. the record is open elsewhere).
    #[error("SystmOne could not do this just now: {}. Please try again shortly", .0.expose())]
    Temporary(Sensitive<String>),
    #[error("SystmOne refused the request: {}", .0.expose())]
    Permanent(Sensitive<String>),
    #[error("SystmOne sent an answer Inpatient Hub cannot read ({0}); the connection was reset")]
    Protocol(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the SystmOne connection is switched off in Settings")]
    Disabled,
    #[error("{0}")]
    Pacing(String),
    #[error("the local database could not be used for the SystmOne connection: {0}")]
    Store(String),
    #[error("the SystmOne connection was shut down before the request was sent")]
    Stopped,
    /// The peer on the SystmOne port is not the one this mode may talk to; nothing else was
    /// sent to it and nothing it offered was kept.
    #[error("{}", match .expected {
        ExpectedPeer::SystmOne => "the SystmOne connection leads to the Inpatient Hub simulator, which holds fictitious patients; it is used only in demo mode (start with --demo)",
        ExpectedPeer::Simulator => "demo mode is connected to a real SystmOne: demo mode only talks to the simulator. Point --systmone at the simulator, or leave demo mode",
    })]
    WrongPeer { expected: ExpectedPeer },
    /// The connection was replaced while the request waited: it was not sent, and goes
    /// again after the new peer is identified.
    #[error("the SystmOne connection was re-established and is being checked; please try again")]
    PeerNotIdentified,
}

impl From<PacingError> for ClientError {
    fn from(e: PacingError) -> Self {
        ClientError::Pacing(e.to_string())
    }
}

/// The scheduler dropped a request's reply without answering (it stopped, or its worker
/// ended mid-request). The request may already have been written to the socket, so for a
/// write this is "outcome unknown" (`MaybeSent`: the outbox reads the record back before any
/// resend), never "not sent"; a read simply got no answer.
fn outcome_channel_closed(function: Function) -> ClientError {
    if is_write(function) {
        ClientError::OutcomeUnknown {
            reason: "the SystmOne connection stopped while the request was queued or in flight"
                .to_owned(),
        }
    } else {
        ClientError::Stopped
    }
}

impl ClientError {
    /// A stable machine-readable code for the UI's `{code, message}`.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::NotRunning => "systmone_not_running",
            ClientError::AwaitingApproval => "systmone_awaiting_approval",
            ClientError::Blocked(_) => "systmone_blocked",
            ClientError::Timeout { .. } => "systmone_timeout",
            ClientError::OutcomeUnknown { .. } => "systmone_outcome_unknown",
            ClientError::ConnectionLost => "systmone_connection_lost",
            ClientError::Temporary(_) => "systmone_temporary_error",
            ClientError::Permanent(_) => "systmone_permanent_error",
            ClientError::Protocol(_) => "systmone_protocol_error",
            ClientError::InvalidRequest(_) => "invalid_request",
            ClientError::Disabled => "systmone_disabled",
            ClientError::Pacing(_) => "systmone_pacing_unavailable",
            ClientError::Store(_) => "database_error",
            ClientError::Stopped => "systmone_stopped",
            ClientError::WrongPeer {
                expected: ExpectedPeer::SystmOne,
            } => "simulator_not_in_demo_mode",
            ClientError::WrongPeer {
                expected: ExpectedPeer::Simulator,
            } => "real_systmone_in_demo_mode",
            ClientError::PeerNotIdentified => "systmone_peer_not_identified",
        }
    }

    /// The one classification of this failure (see [`SystmOneFailure`]): used by case-note
    /// filing, task sync and the façade alike. Anything short of an explicit answer after a
    /// request left (silence, a dropped connection, bytes we cannot read) may hide an applied
    /// write, so it is `MaybeSent`; for a read the same answer simply means "no answer".
    pub fn failure(&self) -> SystmOneFailure {
        match self {
            // Never reached SystmOne: nothing was filed.
            ClientError::NotRunning
            | ClientError::AwaitingApproval
            | ClientError::Blocked(_)
            | ClientError::Disabled
            | ClientError::Pacing(_)
            | ClientError::Store(_)
            | ClientError::Stopped
            | ClientError::WrongPeer { .. }
            | ClientError::PeerNotIdentified => SystmOneFailure::Unavailable(self.to_string()),
            // Sent, and no readable answer.
            ClientError::Timeout { .. }
            | ClientError::OutcomeUnknown { .. }
            | ClientError::ConnectionLost
            | ClientError::Protocol(_) => SystmOneFailure::MaybeSent,
            ClientError::Temporary(m) => SystmOneFailure::NotSent(m.expose().clone()),
            ClientError::Permanent(m) => SystmOneFailure::Refused(m.expose().clone()),
            // Refused by our own checks before sending: the same request can never succeed.
            ClientError::InvalidRequest(m) => SystmOneFailure::Refused(m.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The SystmOne client's socket (default 127.0.0.1:40700).
    pub addr: SocketAddr,
    /// Shown to SystmOne users and in SystmOne's audit trail.
    pub device_version: String,
    pub timeouts: Timeouts,
    pub backoff: BackoffConfig,
    pub pacing: PacingConfig,
    pub max_frame: usize,
    /// Ask SystmOne who is logged in (GetOrganisationMetaData, LoggedOnUserOnly) whenever it
    /// becomes reachable again with the user unknown, or is switched back on, so the status
    /// bar can name the user. Never at start: a process asks when it first needs SystmOne
    /// (the hub's verified client asks then), so a `hubctl` run that never talks to
    /// SystmOne sends nothing, and one that does asks once.
    pub follow_user: bool,
    /// The peer every new connection must prove to be before anything else is sent on it
    /// (see [`ExpectedPeer`]); the hub sets it from its mode.
    pub expected_peer: Option<ExpectedPeer>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let connection = ConnectionConfig::default();
        ClientConfig {
            addr: connection.addr,
            device_version: connection.device_version,
            timeouts: connection.timeouts,
            backoff: connection.backoff,
            pacing: PacingConfig::default(),
            max_frame: connection.max_frame,
            follow_user: true,
            expected_peer: connection.expected_peer,
        }
    }
}

impl ClientConfig {
    /// TPP's defaults, talking to `addr`.
    pub fn new(addr: SocketAddr) -> ClientConfig {
        ClientConfig {
            addr,
            ..ClientConfig::default()
        }
    }
}

/// The SystmOne client. Cheap to clone: all clones share the queue and the connection.
#[derive(Clone)]
pub struct SystmOneClient {
    scheduler: Scheduler<Connection>,
    state: StatePublisher,
    who: Arc<Mutex<Option<WhoAsk>>>,
}

type WhoAnswer = Option<Result<OrganisationMetaData, ClientError>>;

/// The one "who is logged in" question queued or in flight. Everyone who asks meanwhile
/// (following the user after a reconnect, the hub's first verified call, the window's two
/// background loops starting together) shares its answer instead of sending their own: it
/// is the same question, and each copy would cost a second of TPP's budget.
struct WhoAsk {
    id: JobId,
    lane: Lane,
    answer: watch::Receiver<WhoAnswer>,
}

impl std::fmt::Debug for SystmOneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystmOneClient")
            .field("state", &self.state.current())
            .finish_non_exhaustive()
    }
}

macro_rules! expect_body {
    ($response:expr, $variant:ident) => {
        match $response.body {
            ResponseBody::$variant(body) => Ok(body),
            other => Err(ClientError::Protocol(format!(
                "expected a {} answer, got {}",
                stringify!($variant),
                body_name(&other)
            ))),
        }
    };
}

fn body_name(body: &ResponseBody) -> &'static str {
    match body {
        ResponseBody::GetFunctions(_) => "GetFunctions",
        ResponseBody::GetOrganisationMetaData(_) => "GetOrganisationMetaData",
        ResponseBody::GetCurrentActivity(_) => "GetCurrentActivity",
        ResponseBody::IsPatientRetrieved(_) => "IsPatientRetrieved",
        ResponseBody::PatientSearch(_) => "PatientSearch",
        ResponseBody::GetPatientRecord(_) => "GetPatientRecord",
        ResponseBody::UpdatePatientRecord(_) => "UpdatePatientRecord",
        ResponseBody::DeletePatientRecord(_) => "DeletePatientRecord",
        ResponseBody::Other(f) => f.as_str(),
        ResponseBody::Error { .. } => "ErrorMessage",
    }
}

fn lock_who(who: &Mutex<Option<WhoAsk>>) -> std::sync::MutexGuard<'_, Option<WhoAsk>> {
    // Each use is one assignment or read, so a panic elsewhere cannot leave it half-set.
    who.lock().unwrap_or_else(|p| p.into_inner())
}

impl SystmOneClient {
    /// Starts the connection owner and its queue on the current tokio runtime.
    /// `device` holds the DeviceID (and the "API switched off" setting) and `ledger` the
    /// shared send budgets; give each its own store connection so neither ever waits behind
    /// the window.
    pub fn start(
        config: ClientConfig,
        api_key: ApiKey,
        device: impl DeviceIdentity + 'static,
        ledger: impl PacingLedger + 'static,
    ) -> Result<SystmOneClient, ClientError> {
        let mut device: Box<dyn DeviceIdentity> = Box::new(device);
        let disabled = device
            .api_switched_off()
            .map_err(|e| ClientError::Store(e.to_string()))?;
        let state = StatePublisher::new(!disabled);
        let connection = Connection::new(
            ConnectionConfig {
                addr: config.addr,
                device_version: config.device_version.clone(),
                timeouts: config.timeouts,
                backoff: config.backoff,
                max_frame: config.max_frame,
                expected_peer: config.expected_peer,
            },
            api_key,
            Arc::new(Mutex::new(device)),
            state.clone(),
        )?;
        let scheduler = Scheduler::start(connection, Pacer::new(ledger, config.pacing));
        let client = SystmOneClient {
            scheduler,
            state,
            who: Arc::default(),
        };
        if config.follow_user {
            client.follow_user();
        }
        Ok(client)
    }

    /// Asks who is logged in each time SystmOne becomes reachable after being unreachable
    /// (a new login may be a different user), and when switched back on. Holds only weak
    /// handles, so it ends with the last clone of the client.
    fn follow_user(&self) {
        fn ask(
            scheduler: &WeakScheduler<Connection>,
            state: &WeakStatePublisher,
            who: &std::sync::Weak<Mutex<Option<WhoAsk>>>,
        ) -> bool {
            let (Some(scheduler), Some(state), Some(who)) =
                (scheduler.upgrade(), state.upgrade(), who.upgrade())
            else {
                return false;
            };
            let client = SystmOneClient {
                scheduler,
                state,
                who,
            };
            tokio::spawn(async move {
                if let Err(e) = client.organisation(true, Lane::Background).await {
                    tracing::debug!(code = e.code(), "could not ask SystmOne who is logged in");
                }
            });
            true
        }
        let scheduler = self.scheduler.downgrade();
        let state = self.state.downgrade();
        let who = Arc::downgrade(&self.who);
        let switched_on = self.state.switched_on_signal();
        let mut changes = self.state.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // A change that lands on "connected, user unknown" means SystmOne has
                        // just become reachable. The answer to our question cannot cause
                        // another such change, so this never loops.
                        let now = changes.borrow_and_update().clone();
                        if matches!(now, ConnectionState::Connected { user: None, .. }) && !ask(&scheduler, &state, &who) {
                            return;
                        }
                    }
                    _ = switched_on.notified() => {
                        if !ask(&scheduler, &state, &who) {
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Connection state changes, for the status bar.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }

    /// Queue depth per lane and ETAs.
    pub fn queue(&self) -> QueueSnapshot {
        self.scheduler.snapshot()
    }

    /// Switches API traffic on or off at once (the Settings page saves the setting).
    /// Requests already queued are answered with [`ClientError::Disabled`].
    pub fn set_enabled(&self, enabled: bool) {
        self.state.set_enabled(enabled);
    }

    /// Sends one request through the queue. Safe reads that met silence or a dropped
    /// connection are sent once more (paced like any other request); writes never are.
    /// Any request — a write too — that found its connection replaced by one whose peer is
    /// not yet identified is queued again: nothing of it was sent (the check comes before
    /// the first byte), and the next attempt identifies the new peer first, in a slot of
    /// its own. This happens when a peer closes after every reply and the close is seen
    /// only after the request was scheduled on the old connection.
    pub async fn call(&self, lane: Lane, params: RequestParams) -> Result<Response, ClientError> {
        const PEER_CHECK_ATTEMPTS: usize = 3;
        let is_read = !is_write(params.function());
        let mut read_retried = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(lane, params.clone()).await {
                Err(ClientError::PeerNotIdentified) if attempt < PEER_CHECK_ATTEMPTS => {
                    tracing::debug!(
                        "the SystmOne connection was replaced before sending; identifying it first"
                    );
                }
                Err(ClientError::Timeout { .. } | ClientError::ConnectionLost)
                    if is_read && !read_retried =>
                {
                    tracing::info!("SystmOne did not answer a read; asking once more");
                    read_retried = true;
                }
                other => return other,
            }
        }
    }

    /// Queues one request without the read retry, for callers that want its queue number
    /// (to show its ETA from [`SystmOneClient::queue`]). The outcome arrives on
    /// `outcome`; dropping it before the request is sent withdraws the request.
    pub fn enqueue(
        &self,
        lane: Lane,
        params: RequestParams,
    ) -> Result<Submitted<Response, ClientError>, ClientError> {
        if !self.state.is_enabled() {
            return Err(ClientError::Disabled);
        }
        Ok(self.scheduler.submit(lane, params))
    }

    async fn send_once(&self, lane: Lane, params: RequestParams) -> Result<Response, ClientError> {
        let function = params.function();
        let submitted = self.enqueue(lane, params)?;
        submitted
            .outcome
            .await
            .map_err(|_| outcome_channel_closed(function))?
    }

    pub async fn functions(&self, lane: Lane) -> Result<GetFunctionsResponse, ClientError> {
        expect_body!(
            self.call(lane, RequestParams::GetFunctions).await?,
            GetFunctions
        )
    }

    /// Who is logged in and where (`logged_on_user_only`), or the whole organisation.
    pub async fn organisation(
        &self,
        logged_on_user_only: bool,
        lane: Lane,
    ) -> Result<OrganisationMetaData, ClientError> {
        let params = RequestParams::GetOrganisationMetaData(GetOrganisationMetaDataParams {
            logged_on_user_only,
        });
        if !logged_on_user_only {
            return expect_body!(self.call(lane, params).await?, GetOrganisationMetaData);
        }
        let mut answer = self.ask_who(lane, params)?;
        let answered = answer
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ClientError::Stopped)?;
        answered.clone().unwrap_or(Err(ClientError::Stopped))
    }

    /// Joins the "who is logged in" question already asked, or asks it. A clinician joining
    /// a background question lifts it to the interactive lane.
    fn ask_who(
        &self,
        lane: Lane,
        params: RequestParams,
    ) -> Result<watch::Receiver<WhoAnswer>, ClientError> {
        let mut who = lock_who(&self.who);
        if let Some(pending) = who.as_mut() {
            if lane == Lane::Interactive
                && pending.lane == Lane::Background
                && self.scheduler.promote(pending.id)
            {
                pending.lane = Lane::Interactive;
            }
            return Ok(pending.answer.clone());
        }
        let first = self.enqueue(lane, params.clone())?;
        let (tell, answer) = watch::channel(None);
        *who = Some(WhoAsk {
            id: first.id,
            lane,
            answer: answer.clone(),
        });
        drop(who);
        let flight = Arc::downgrade(&self.who);
        let scheduler = self.scheduler.downgrade();
        let state = self.state.downgrade();
        tokio::spawn(async move {
            let mut outcome = first.outcome;
            let mut retried = false;
            let result = loop {
                let result = outcome
                    .await
                    .map_err(|_| ClientError::Stopped)
                    .and_then(|r| r);
                // The same one retry of a silent read as `call`, on the lane the question
                // has reached by now.
                let retry = matches!(
                    result,
                    Err(ClientError::Timeout { .. } | ClientError::ConnectionLost)
                ) && !retried;
                let client = match (scheduler.upgrade(), state.upgrade(), flight.upgrade()) {
                    (Some(scheduler), Some(state), Some(who)) if retry => SystmOneClient {
                        scheduler,
                        state,
                        who,
                    },
                    _ => break result,
                };
                retried = true;
                tracing::info!("SystmOne did not answer a read; asking once more");
                let lane = lock_who(&client.who).as_ref().map_or(lane, |p| p.lane);
                match client.enqueue(lane, params.clone()) {
                    Ok(again) => {
                        if let Some(pending) = lock_who(&client.who).as_mut() {
                            pending.id = again.id;
                        }
                        outcome = again.outcome;
                    }
                    Err(e) => break Err(e),
                }
            };
            let parsed =
                result.and_then(|response| expect_body!(response, GetOrganisationMetaData));
            if let Some(who) = flight.upgrade() {
                *lock_who(&who) = None;
            }
            let _ = tell.send(Some(parsed));
        });
        Ok(answer)
    }

    /// The patient open in SystmOne, if any.
    pub async fn current_activity(&self, lane: Lane) -> Result<CurrentActivity, ClientError> {
        expect_body!(
            self.call(lane, RequestParams::GetCurrentActivity).await?,
            GetCurrentActivity
        )
    }

    pub async fn is_patient_retrieved(
        &self,
        identity: Option<Identity>,
        lane: Lane,
    ) -> Result<bool, ClientError> {
        let params = RequestParams::IsPatientRetrieved(IsPatientRetrievedParams { identity });
        expect_body!(self.call(lane, params).await?, IsPatientRetrieved)
    }

    /// Searches by at least two criteria (SystmOne's rule, checked here before sending).
    pub async fn patient_search(
        &self,
        params: PatientSearchParams,
        lane: Lane,
    ) -> Result<PatientSearchResponse, ClientError> {
        if params.criteria_count() < 2 {
            return Err(ClientError::InvalidRequest(
                "give at least two search details (for example surname and date of birth)"
                    .to_owned(),
            ));
        }
        expect_body!(
            self.call(lane, RequestParams::PatientSearch(params))
                .await?,
            PatientSearch
        )
    }

    /// A patient's record by NHS number; `filter` None = the whole record. Demographics-only
    /// and entered-today filters are exempt from the 30 s budget; anything else waits for it.
    pub async fn patient_record(
        &self,
        nhs: &NhsNumber,
        filter: Option<RecordFilter>,
        lane: Lane,
    ) -> Result<PatientRecord, ClientError> {
        let params = GetPatientRecordParams {
            identity: Some(Identity::nhs(nhs.clone())),
            leave_record_open: false,
            filter,
        };
        self.patient_record_with(params, lane).await
    }

    /// `GetPatientRecord` with every option (the record on screen, LeaveRecordOpen, ...).
    pub async fn patient_record_with(
        &self,
        params: GetPatientRecordParams,
        lane: Lane,
    ) -> Result<PatientRecord, ClientError> {
        expect_body!(
            self.call(lane, RequestParams::GetPatientRecord(params))
                .await?,
            GetPatientRecord
        )
    }

    /// Files entries in the record. Never repeated automatically: a timeout comes back as
    /// [`ClientError::OutcomeUnknown`] and the caller reconciles by reading back.
    pub async fn update_record(
        &self,
        params: UpdatePatientRecordParams,
        lane: Lane,
    ) -> Result<UpdatePatientRecordResponse, ClientError> {
        if params.demographics.is_none() && params.events.is_empty() && params.tasks.is_empty() {
            return Err(ClientError::InvalidRequest(
                "there is nothing to file".to_owned(),
            ));
        }
        expect_body!(
            self.call(lane, RequestParams::UpdatePatientRecord(params))
                .await?,
            UpdatePatientRecord
        )
    }

    /// Deletes entries this application added. Never repeated automatically.
    pub async fn delete_from_record(
        &self,
        params: DeletePatientRecordParams,
        lane: Lane,
    ) -> Result<DeletePatientRecordResponse, ClientError> {
        if params.reason.trim().is_empty() {
            return Err(ClientError::InvalidRequest(
                "give a reason for the deletion".to_owned(),
            ));
        }
        let uids = params.event_uids.len()
            + params.appointment_uids.len()
            + params.task_uids.len()
            + params.visit_uids.len();
        if uids == 0 {
            return Err(ClientError::InvalidRequest(
                "choose at least one entry to delete".to_owned(),
            ));
        }
        expect_body!(
            self.call(lane, RequestParams::DeletePatientRecord(params))
                .await?,
            DeletePatientRecord
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::{Event, UpdatePatientRecordParams};
    use super::super::connection::fake_systmone::{answer, FakeSystmOne, Reply};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use store::{SettingKey, Store};

    const DEVICE: &str = "392752167bd7f69b";

    fn quick_config(addr: SocketAddr) -> ClientConfig {
        ClientConfig {
            addr,
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                read: Duration::from_millis(250),
                approval: Duration::from_millis(500),
            },
            pacing: PacingConfig {
                min_gap: Duration::from_millis(60),
                record_gap: Duration::from_millis(400),
                margin: Duration::from_millis(10),
            },
            follow_user: false,
            ..ClientConfig::default()
        }
    }

    fn client(addr: SocketAddr) -> SystmOneClient {
        let mut store = Store::open_in_memory().unwrap();
        store
            .set_setting("test", SettingKey::SystmOneDeviceId, Some(DEVICE))
            .unwrap();
        SystmOneClient::start(
            quick_config(addr),
            ApiKey::parse("f31e26725b5491f2").unwrap(),
            store,
            Store::open_in_memory().unwrap(),
        )
        .unwrap()
    }

    fn nhs() -> NhsNumber {
        NhsNumber::parse("9434765919").unwrap()
    }

    fn note() -> UpdatePatientRecordParams {
        UpdatePatientRecordParams::new(Identity::nhs(nhs()))
            .with_event(Event::narrative("Reviewed on ward round."))
    }

    #[tokio::test]
    async fn a_search_with_fewer_than_two_details_is_refused_before_sending() {
        let server = FakeSystmOne::start(|r| {
            answer(
                r,
                Some(DEVICE),
                ResponseBody::PatientSearch(Default::default()),
            )
        })
        .await;
        let client = client(server.addr);
        let one = PatientSearchParams {
            surname: Some("Smith".into()),
            ..Default::default()
        };
        let err = client
            .patient_search(one, Lane::Interactive)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        let blank = PatientSearchParams {
            surname: Some("Smith".into()),
            first_name: Some("   ".into()),
            ..Default::default()
        };
        assert!(client
            .patient_search(blank, Lane::Interactive)
            .await
            .is_err());
        assert_eq!(server.connections(), 0, "nothing reached SystmOne");
        let two = PatientSearchParams {
            surname: Some("Smith".into()),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1970, 1, 1),
            ..Default::default()
        };
        client.patient_search(two, Lane::Interactive).await.unwrap();
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_silent_read_is_asked_once_more_but_an_update_never() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let server = FakeSystmOne::start(move |request| match request.params {
            RequestParams::GetCurrentActivity if seen.fetch_add(1, Ordering::SeqCst) == 0 => {
                Reply::Silence
            }
            RequestParams::GetCurrentActivity => answer(
                request,
                Some(DEVICE),
                ResponseBody::GetCurrentActivity(Default::default()),
            ),
            _ => Reply::Silence,
        })
        .await;
        let client = client(server.addr);
        let activity = client.current_activity(Lane::Interactive).await.unwrap();
        assert_eq!(activity.identity, None);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let sent = server.requests();
        assert_ne!(
            sent[0].request_uid, sent[1].request_uid,
            "the retry is a new request"
        );

        let err = client
            .update_record(note(), Lane::Interactive)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::OutcomeUnknown { .. }), "{err:?}");
        let updates = server
            .requests()
            .iter()
            .filter(|r| matches!(r.params, RequestParams::UpdatePatientRecord(_)))
            .count();
        assert_eq!(updates, 1, "an update is never repeated automatically");
    }

    #[tokio::test]
    async fn a_read_whose_connection_dropped_is_asked_once_more() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let server = FakeSystmOne::start(move |request| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::Close
            } else {
                answer(
                    request,
                    Some(DEVICE),
                    ResponseBody::IsPatientRetrieved(true),
                )
            }
        })
        .await;
        let client = client(server.addr);
        assert!(client
            .is_patient_retrieved(None, Lane::Background)
            .await
            .unwrap());
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn requests_through_the_client_are_paced() {
        let server = FakeSystmOne::start(|r| {
            answer(r, Some(DEVICE), ResponseBody::IsPatientRetrieved(false))
        })
        .await;
        let client = client(server.addr);
        let started = std::time::Instant::now();
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(
                    async move { client.is_patient_retrieved(None, Lane::Background).await },
                )
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        // Four requests need three gaps of at least 60 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(180),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(client.queue().items.len(), 0);
    }

    #[tokio::test]
    async fn bad_deletes_and_empty_updates_are_refused_before_sending() {
        let server = FakeSystmOne::start(|_| Reply::Silence).await;
        let client = client(server.addr);
        let mut delete = DeletePatientRecordParams::new(Identity::nhs(nhs()), "  ");
        delete.event_uids.push("0123456789abcdef".into());
        assert_eq!(
            client
                .delete_from_record(delete, Lane::Interactive)
                .await
                .unwrap_err()
                .code(),
            "invalid_request"
        );
        let delete =
            DeletePatientRecordParams::new(Identity::nhs(nhs()), "Filed against the wrong patient");
        assert_eq!(
            client
                .delete_from_record(delete, Lane::Interactive)
                .await
                .unwrap_err()
                .code(),
            "invalid_request"
        );
        let empty = UpdatePatientRecordParams::new(Identity::nhs(nhs()));
        assert_eq!(
            client
                .update_record(empty, Lane::Interactive)
                .await
                .unwrap_err()
                .code(),
            "invalid_request"
        );
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn a_disabled_client_refuses_at_once_and_says_so() {
        let server = FakeSystmOne::start(|r| {
            answer(r, Some(DEVICE), ResponseBody::IsPatientRetrieved(true))
        })
        .await;
        let client = client(server.addr);
        let mut state = client.state();
        client.set_enabled(false);
        assert_eq!(*state.borrow_and_update(), ConnectionState::Disabled);
        let err = client
            .is_patient_retrieved(None, Lane::Interactive)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "systmone_disabled");
        client.set_enabled(true);
        assert!(client
            .is_patient_retrieved(None, Lane::Interactive)
            .await
            .unwrap());
        assert!(matches!(*state.borrow(), ConnectionState::Connected { .. }));
    }

    #[tokio::test]
    async fn the_disabled_setting_is_honoured_at_start() {
        let server = FakeSystmOne::start(|r| {
            answer(r, Some(DEVICE), ResponseBody::IsPatientRetrieved(true))
        })
        .await;
        let mut store = Store::open_in_memory().unwrap();
        store
            .set_setting("test", SettingKey::SystmOneApiDisabled, Some("true"))
            .unwrap();
        let client = SystmOneClient::start(
            quick_config(server.addr),
            ApiKey::parse("abc123").unwrap(),
            store,
            Store::open_in_memory().unwrap(),
        )
        .unwrap();
        assert_eq!(*client.state().borrow(), ConnectionState::Disabled);
        assert!(matches!(
            client.functions(Lane::Interactive).await,
            Err(ClientError::Disabled)
        ));
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn a_whole_record_waits_for_its_budget_without_holding_up_other_reads() {
        let server = FakeSystmOne::start(|request| match request.params {
            RequestParams::GetPatientRecord(_) => answer(
                request,
                Some(DEVICE),
                ResponseBody::GetPatientRecord(Default::default()),
            ),
            _ => answer(
                request,
                Some(DEVICE),
                ResponseBody::IsPatientRetrieved(true),
            ),
        })
        .await;
        let client = client(server.addr);
        client
            .patient_record(&nhs(), None, Lane::Interactive)
            .await
            .unwrap();
        let record = {
            let client = client.clone();
            tokio::spawn(
                async move { client.patient_record(&nhs(), None, Lane::Interactive).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let snapshot = client.queue();
        assert_eq!(snapshot.interactive, 1);
        assert!(snapshot.items[0].uses_record_budget);
        assert!(
            snapshot.eta_all > Duration::from_millis(200),
            "{snapshot:?}"
        );
        // A background read goes first although it was queued later.
        assert!(client
            .is_patient_retrieved(None, Lane::Background)
            .await
            .unwrap());
        assert!(!record.is_finished());
        record.await.unwrap().unwrap();
        let functions: Vec<&'static str> = server
            .requests()
            .iter()
            .map(|r| r.function().as_str())
            .collect();
        assert_eq!(
            functions,
            vec!["GetPatientRecord", "IsPatientRetrieved", "GetPatientRecord"]
        );
    }

    #[tokio::test]
    async fn the_client_finds_out_who_is_logged_in_once_it_is_used() {
        use super::super::codec::{OrganisationMetaData, User};
        let server = FakeSystmOne::start(|request| match request.params {
            RequestParams::GetOrganisationMetaData(ref p) if p.logged_on_user_only => {
                let user = User {
                    first_name: Some("Sam".into()),
                    surname: Some("Okafor".into()),
                    role: Some("Staff Nurse".into()),
                    current_user: true,
                    ..Default::default()
                };
                let metadata = OrganisationMetaData {
                    sites: vec![],
                    users: vec![user],
                };
                answer(
                    request,
                    Some(DEVICE),
                    ResponseBody::GetOrganisationMetaData(metadata),
                )
            }
            _ => answer(
                request,
                Some(DEVICE),
                ResponseBody::IsPatientRetrieved(true),
            ),
        })
        .await;
        let mut store = Store::open_in_memory().unwrap();
        store
            .set_setting("test", SettingKey::SystmOneDeviceId, Some(DEVICE))
            .unwrap();
        let config = ClientConfig {
            follow_user: true,
            ..quick_config(server.addr)
        };
        let client = SystmOneClient::start(
            config,
            ApiKey::parse("abc123").unwrap(),
            store,
            Store::open_in_memory().unwrap(),
        )
        .unwrap();
        let mut state = client.state();
        let named = |s: &ConnectionState| matches!(s, ConnectionState::Connected { user: Some(u), .. } if u.name == "Sam Okafor");
        // Nothing is sent at start: a process that never needs SystmOne costs no slot.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            server.requests().len(),
            0,
            "nothing sent before it was needed"
        );
        // The first answer makes SystmOne reachable with the user unknown: it asks.
        assert!(client
            .is_patient_retrieved(None, Lane::Background)
            .await
            .unwrap());
        tokio::time::timeout(Duration::from_secs(2), state.wait_for(named))
            .await
            .unwrap()
            .unwrap();
        // Switched off and on again: it asks afresh.
        client.set_enabled(false);
        client.set_enabled(true);
        tokio::time::timeout(Duration::from_secs(2), state.wait_for(named))
            .await
            .unwrap()
            .unwrap();
        let asked = server
            .requests()
            .iter()
            .filter(|r| matches!(r.params, RequestParams::GetOrganisationMetaData(_)))
            .count();
        assert_eq!(asked, 2);
    }

    /// The window's two background loops start together and each asks who is logged in;
    /// a reconnect asks too. One question goes to SystmOne and everyone shares its answer.
    #[tokio::test]
    async fn who_is_logged_in_is_asked_once_however_many_ask_together() {
        use super::super::codec::{OrganisationMetaData, User};
        let server = FakeSystmOne::start(|request| {
            let user = User {
                first_name: Some("Sam".into()),
                surname: Some("Okafor".into()),
                current_user: true,
                ..Default::default()
            };
            answer(
                request,
                Some(DEVICE),
                ResponseBody::GetOrganisationMetaData(OrganisationMetaData {
                    sites: vec![],
                    users: vec![user],
                }),
            )
        })
        .await;
        let client = client(server.addr);
        let asks: Vec<_> = [Lane::Background, Lane::Interactive, Lane::Interactive]
            .into_iter()
            .map(|lane| {
                let client = client.clone();
                tokio::spawn(async move { client.organisation(true, lane).await })
            })
            .collect();
        for ask in asks {
            let metadata = ask.await.unwrap().unwrap();
            assert_eq!(metadata.users[0].surname.as_deref(), Some("Okafor"));
        }
        assert_eq!(server.requests().len(), 1, "one question, shared");
        // Answered: the next question is a new one.
        client.organisation(true, Lane::Interactive).await.unwrap();
        assert_eq!(server.requests().len(), 2);
        // The whole organisation is a different question, never shared.
        client.organisation(false, Lane::Interactive).await.unwrap();
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn an_enqueued_request_can_be_found_in_the_queue_with_its_eta() {
        let server = FakeSystmOne::start(|request| {
            answer(
                request,
                Some(DEVICE),
                ResponseBody::GetPatientRecord(Default::default()),
            )
        })
        .await;
        let client = client(server.addr);
        let whole = || {
            RequestParams::GetPatientRecord(GetPatientRecordParams {
                identity: Some(Identity::nhs(nhs())),
                ..Default::default()
            })
        };
        let first = client.enqueue(Lane::Background, whole()).unwrap();
        first.outcome.await.unwrap().unwrap();
        let second = client.enqueue(Lane::Background, whole()).unwrap();
        let eta = client.queue().eta_of(second.id).expect("queued");
        // The record budget (400 ms + 10 ms margin) started when the first was sent.
        assert!(
            eta > Duration::from_millis(250) && eta <= Duration::from_millis(410),
            "{eta:?}"
        );
        second.outcome.await.unwrap().unwrap();
        assert_eq!(client.queue().eta_of(second.id), None);
        client.set_enabled(false);
        assert!(matches!(
            client.enqueue(Lane::Background, whole()),
            Err(ClientError::Disabled)
        ));
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            ClientError::NotRunning,
            ClientError::AwaitingApproval,
            ClientError::Blocked(String::new()),
            ClientError::Timeout {
                after: Duration::from_secs(30),
            },
            ClientError::OutcomeUnknown {
                reason: String::new(),
            },
            ClientError::ConnectionLost,
            ClientError::Temporary(Sensitive::new(String::new())),
            ClientError::Permanent(Sensitive::new(String::new())),
            ClientError::Protocol(String::new()),
            ClientError::InvalidRequest(String::new()),
            ClientError::Disabled,
            ClientError::Pacing(String::new()),
            ClientError::Store(String::new()),
            ClientError::Stopped,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(ClientError::code).collect();
        assert_eq!(codes.len(), all.len());
        // An unknown outcome is never simply retried: it may have been applied.
        assert!(ClientError::OutcomeUnknown {
            reason: String::new()
        }
        .failure()
        .may_have_applied());
    }

    #[test]
    fn a_write_whose_reply_channel_closes_is_maybe_sent_never_not_sent() {
        for write in [Function::UpdatePatientRecord, Function::DeletePatientRecord] {
            let e = outcome_channel_closed(write);
            assert!(matches!(e, ClientError::OutcomeUnknown { .. }), "{e:?}");
            assert_eq!(e.failure(), SystmOneFailure::MaybeSent);
        }
        let read = outcome_channel_closed(Function::GetPatientRecord);
        assert!(matches!(read, ClientError::Stopped));
    }

    #[test]
    fn failures_are_classified_by_whether_the_request_can_have_acted() {
        assert_eq!(
            ClientError::NotRunning.failure(),
            SystmOneFailure::Unavailable(ClientError::NotRunning.to_string())
        );
        assert_eq!(
            ClientError::ConnectionLost.failure(),
            SystmOneFailure::MaybeSent
        );
        assert_eq!(
            ClientError::Protocol("garbage".into()).failure(),
            SystmOneFailure::MaybeSent
        );
        assert_eq!(
            ClientError::OutcomeUnknown {
                reason: "timeout".into()
            }
            .failure(),
            SystmOneFailure::MaybeSent
        );
        assert_eq!(
            ClientError::Timeout {
                after: Duration::from_secs(1)
            }
            .failure(),
            SystmOneFailure::MaybeSent
        );
        assert!(matches!(
            ClientError::Temporary(Sensitive::new("open elsewhere".into())).failure(),
            SystmOneFailure::NotSent(_)
        ));
        assert!(matches!(
            ClientError::Permanent(Sensitive::new("no".into())).failure(),
            SystmOneFailure::Refused(_)
        ));
        assert!(matches!(
            ClientError::InvalidRequest("bad".into()).failure(),
            SystmOneFailure::Refused(_)
        ));
        for nothing_sent in [
            ClientError::AwaitingApproval,
            ClientError::Blocked("x".into()),
            ClientError::Disabled,
            ClientError::Pacing("x".into()),
            ClientError::Store("x".into()),
            ClientError::Stopped,
        ] {
            assert!(matches!(
                nothing_sent.failure(),
                SystmOneFailure::Unavailable(_)
            ));
        }
    }

    /// Regression: with a peer that closes after every reply, a close that arrives after the
    /// next request was scheduled on the old connection made that request — a write, in the
    /// conformance probe's clean-up — fail with "peer not identified" although nothing of it
    /// had been sent. It is now identified and sent, exactly once.
    #[tokio::test]
    async fn a_write_whose_connection_was_replaced_before_sending_is_identified_and_sent_once() {
        use super::super::codec::{OrganisationMetaData, Site};
        let server = FakeSystmOne::start(|r| {
            let body = match r.function() {
                Function::GetOrganisationMetaData => {
                    ResponseBody::GetOrganisationMetaData(OrganisationMetaData {
                        sites: vec![Site {
                            name: Some("Riverside General Hospital".into()),
                            current_site: true,
                            ..Default::default()
                        }],
                        users: Vec::new(),
                    })
                }
                _ => ResponseBody::UpdatePatientRecord(Default::default()),
            };
            Reply::AnswerThenCloseLate(
                Response::answering(r, Some(DEVICE.into()), body),
                Duration::from_millis(30),
            )
        })
        .await;
        let mut store = Store::open_in_memory().unwrap();
        store
            .set_setting("test", SettingKey::SystmOneDeviceId, Some(DEVICE))
            .unwrap();
        let client = SystmOneClient::start(
            ClientConfig {
                expected_peer: Some(ExpectedPeer::SystmOne),
                ..quick_config(server.addr)
            },
            ApiKey::parse("f31e26725b5491f2").unwrap(),
            store,
            Store::open_in_memory().unwrap(),
        )
        .unwrap();
        for _ in 0..3 {
            client
                .update_record(note(), Lane::Interactive)
                .await
                .expect("identified, then sent");
        }
        let updates = server
            .requests()
            .iter()
            .filter(|r| matches!(r.params, RequestParams::UpdatePatientRecord(_)))
            .count();
        assert_eq!(updates, 3, "each write sent exactly once");
    }
}
