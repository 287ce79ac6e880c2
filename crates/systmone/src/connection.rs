//! The connection owner: the only code that opens the SystmOne socket.
//!
//! One request document + "\n" goes out, one response document comes back on the same
//! connection. SystmOne answers a throttled request with silence, so every read has a
//! timeout, and after a timeout the connection is discarded: a late answer would otherwise
//! be read as the answer to the next request. For the same reason a response whose
//! RequestUID is not ours resets the connection.
//!
//! Whether an unanswered request may be sent again depends on what it was: reads are safe
//! to repeat (the client retries them once); an `UpdatePatientRecord` or
//! `DeletePatientRecord` that got no readable answer may or may not have been filed, so it
//! comes back as [`ClientError::OutcomeUnknown`] and is never repeated here.

use super::client::ClientError;
use super::codec::{
    decode_response, encode_request, Function, GetOrganisationMetaDataParams, OrganisationMetaData,
    Request, RequestParams, Response, ResponseBody,
};
use super::framing::{FrameReader, FramingError, DEFAULT_MAX_FRAME};
use super::pacing::SendClass;
use super::scheduler::{Exchange, Lane};
use super::secrets::ApiKey;
use chrono::NaiveDate;
use domain::ports::DeviceIdentity;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the UI shows about the SystmOne link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Nothing listens on the port: SystmOne is not running, or nobody is logged in.
    NotRunning,
    /// A request with an empty DeviceID is outstanding: SystmOne is asking the user to
    /// approve this device.
    AwaitingApproval,
    /// The SystmOne user blocked this device (lifted in SystmOne's Device Manager).
    Blocked { message: String },
    /// SystmOne answers. `user` and `site` come from `GetOrganisationMetaData` and are
    /// None until it has been asked.
    Connected {
        user: Option<SystmOneUser>,
        site: Option<String>,
    },
    /// Switched off in Settings: nothing is sent.
    Disabled,
}

/// The member of staff logged in to SystmOne (staff data, not patient data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystmOneUser {
    /// "Dr Jane Smith".
    pub name: String,
    pub user_name: Option<String>,
    pub role: Option<String>,
}

impl SystmOneUser {
    fn from_metadata(metadata: &OrganisationMetaData) -> Option<SystmOneUser> {
        // With LoggedOnUserOnly SystmOne lists just the one user, perhaps unflagged.
        let only_user = match metadata.users.as_slice() {
            [only] => Some(only),
            _ => None,
        };
        let user = metadata.current_user().or(only_user)?;
        let name = [&user.title, &user.first_name, &user.surname]
            .iter()
            .filter_map(|part| part.as_deref().map(str::trim).filter(|p| !p.is_empty()))
            .collect::<Vec<_>>()
            .join(" ");
        let name = if name.is_empty() {
            user.user_name.clone().unwrap_or_default()
        } else {
            name
        };
        Some(SystmOneUser {
            name,
            user_name: user.user_name.clone(),
            role: user.role.clone(),
        })
    }
}

fn current_site(metadata: &OrganisationMetaData) -> Option<String> {
    let only_site = match metadata.sites.as_slice() {
        [only] => Some(only),
        _ => None,
    };
    metadata
        .sites
        .iter()
        .find(|s| s.current_site)
        .or(only_site)
        .and_then(|s| s.name.clone())
}

/// The simulator names its organisation and site with this; real SystmOne sites never do.
pub const SIMULATOR_SITE_MARKER: &str = "Inpatient Hub simulator";

/// Which peer this process may talk to. The connection identifies the peer
/// (`GetOrganisationMetaData`) on every new connection before anything else goes out on it,
/// so a different listener on the port after a SystmOne restart is checked again, and
/// refuses the wrong one: nothing is written to it and no DeviceID it offers is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedPeer {
    /// Normal use: a real SystmOne; the simulator (fictitious patients) is refused.
    SystmOne,
    /// Demo mode: the simulator only; a real SystmOne (real patients) is refused.
    Simulator,
}

impl ExpectedPeer {
    /// Whether the peer that answered `metadata` is the one expected.
    pub fn check(self, metadata: &OrganisationMetaData) -> Result<(), ClientError> {
        let is_simulator = metadata
            .sites
            .iter()
            .filter_map(|site| site.name.as_deref())
            .any(|name| name.contains(SIMULATOR_SITE_MARKER));
        match (self, is_simulator) {
            (ExpectedPeer::SystmOne, true) | (ExpectedPeer::Simulator, false) => {
                Err(ClientError::WrongPeer { expected: self })
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the socket (local host: refusal is immediate, so this only guards a hung stack).
    pub connect: Duration,
    /// Waiting for an answer. SystmOne is usually sub-second but may fetch from TPP's servers.
    pub read: Duration,
    /// Waiting for an answer to a request with an empty DeviceID: a person has to click
    /// "approve" in SystmOne first.
    pub approval: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            read: Duration::from_secs(30),
            approval: Duration::from_secs(180),
        }
    }
}

/// Reconnection backoff after SystmOne refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// Doubling delay, capped, reset by a successful connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff {
            config,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before trying again.
    pub fn fail(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        self.config
            .initial
            .saturating_mul(factor)
            .min(self.config.max)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub addr: SocketAddr,
    /// Shown to SystmOne users and in its audit trail.
    pub device_version: String,
    pub timeouts: Timeouts,
    pub backoff: BackoffConfig,
    pub max_frame: usize,
    /// The peer every new connection must prove to be before anything else is sent on it.
    /// None sends no identification (the connection's own tests and tools); the hub always
    /// sets it from its mode.
    pub expected_peer: Option<ExpectedPeer>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 40700)),
            device_version: concat!("Inpatient Hub ", env!("CARGO_PKG_VERSION")).to_owned(),
            timeouts: Timeouts::default(),
            backoff: BackoffConfig::default(),
            max_frame: DEFAULT_MAX_FRAME,
            expected_peer: None,
        }
    }
}

/// Publishes [`ConnectionState`] changes; shared by the connection and the client.
#[derive(Clone)]
pub struct StatePublisher {
    sender: Arc<watch::Sender<ConnectionState>>,
    enabled: Arc<AtomicBool>,
    /// Raised when traffic is switched back on, so the client asks who is logged in.
    switched_on: Arc<tokio::sync::Notify>,
}

/// A [`StatePublisher`] that does not keep the channel open (for helper tasks).
#[derive(Clone)]
pub struct WeakStatePublisher {
    sender: std::sync::Weak<watch::Sender<ConnectionState>>,
    enabled: std::sync::Weak<AtomicBool>,
    switched_on: std::sync::Weak<tokio::sync::Notify>,
}

impl WeakStatePublisher {
    pub fn upgrade(&self) -> Option<StatePublisher> {
        Some(StatePublisher {
            sender: self.sender.upgrade()?,
            enabled: self.enabled.upgrade()?,
            switched_on: self.switched_on.upgrade()?,
        })
    }
}

impl StatePublisher {
    pub fn downgrade(&self) -> WeakStatePublisher {
        WeakStatePublisher {
            sender: Arc::downgrade(&self.sender),
            enabled: Arc::downgrade(&self.enabled),
            switched_on: Arc::downgrade(&self.switched_on),
        }
    }

    pub fn new(enabled: bool) -> StatePublisher {
        let initial = if enabled {
            ConnectionState::NotRunning
        } else {
            ConnectionState::Disabled
        };
        StatePublisher {
            sender: Arc::new(watch::Sender::new(initial)),
            enabled: Arc::new(AtomicBool::new(enabled)),
            switched_on: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.sender.subscribe()
    }

    pub fn current(&self) -> ConnectionState {
        self.sender.borrow().clone()
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    pub fn set_enabled(&self, enabled: bool) {
        let was_enabled = self.enabled.swap(enabled, Ordering::SeqCst);
        if enabled && !was_enabled {
            self.publish(ConnectionState::NotRunning);
            self.switched_on.notify_one();
        } else if !enabled {
            self.publish(ConnectionState::Disabled);
        }
    }

    /// Notified each time traffic is switched back on.
    pub fn switched_on_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.switched_on)
    }

    /// Notifies watchers only when the state actually changed.
    fn publish(&self, state: ConnectionState) {
        self.sender.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                *current = state;
                true
            }
        });
    }

    /// A successful answer: Connected, keeping what we know of user and site.
    fn connected(&self, metadata: Option<&OrganisationMetaData>) {
        let (mut user, mut site) = match self.current() {
            ConnectionState::Connected { user, site } => (user, site),
            _ => (None, None),
        };
        if let Some(metadata) = metadata {
            user = SystmOneUser::from_metadata(metadata);
            site = current_site(metadata).or(site);
        }
        self.publish(ConnectionState::Connected { user, site });
    }
}

/// One open socket.
struct Link {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The peer on this socket passed the [`ExpectedPeer`] check.
    identified: bool,
    /// Nothing but the identification has gone out on it (see `identity_carries_over`).
    only_identification: bool,
}

impl Link {
    /// Whether the connection can carry another request: the peer has not closed it and
    /// nothing unexpected (a late answer) is waiting to be read.
    fn is_clean(&self) -> bool {
        if !self.reader.buffered().iter().all(u8::is_ascii_whitespace) {
            return false;
        }
        let mut probe = [0u8; 1];
        match self.reader.get_ref().try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // 0 = closed by SystmOne; n > 0 = stray bytes; any error = broken.
            _ => false,
        }
    }
}

/// Whether repeating the request could file something twice.
pub fn is_write(function: Function) -> bool {
    matches!(
        function,
        Function::UpdatePatientRecord | Function::DeletePatientRecord
    )
}

/// Where the DeviceID lives, shared between the connection and its blocking tasks.
pub type SharedDeviceIdentity = Arc<Mutex<Box<dyn DeviceIdentity>>>;

/// The connection owner. Used through the scheduler, which sends one request at a time.
pub struct Connection {
    config: ConnectionConfig,
    api_key: ApiKey,
    device_id: Option<String>,
    device_store: SharedDeviceIdentity,
    link: Option<Link>,
    /// A peer that closes the connection after every answer can never be identified on the
    /// connection that carries the request. Its identification therefore holds for the one
    /// next connection, and only when the identifying connection carried nothing else and
    /// was closed by the peer after answering; any failure to connect or to get an answer
    /// in between cancels it.
    identity_carries_over: bool,
    backoff: Backoff,
    retry_at: Option<Instant>,
    state: StatePublisher,
}

impl Connection {
    /// `device_store` holds the DeviceID setting; it is read now and written when SystmOne
    /// issues an ID.
    pub fn new(
        config: ConnectionConfig,
        api_key: ApiKey,
        device_store: SharedDeviceIdentity,
        state: StatePublisher,
    ) -> Result<Connection, ClientError> {
        let device_id = {
            let mut store = device_store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            store
                .device_id()
                .map_err(|e| ClientError::Store(e.to_string()))?
        }
        .filter(|id| !id.trim().is_empty());
        let backoff = Backoff::new(config.backoff);
        Ok(Connection {
            config,
            api_key,
            device_id,
            device_store,
            link: None,
            identity_carries_over: false,
            backoff,
            retry_at: None,
            state,
        })
    }

    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// Drops the socket if the peer closed it or it is out of step. An identification that
    /// was all the closed socket carried holds for the next one (see `identity_carries_over`).
    fn discard_unclean_link(&mut self) {
        let Some(link) = &self.link else {
            return;
        };
        if link.is_clean() {
            return;
        }
        tracing::debug!("SystmOne connection closed or out of step; reconnecting");
        self.identity_carries_over = link.identified && link.only_identification;
        self.link = None;
    }

    /// The request that must go first, in a slot of its own, before `request` may be sent:
    /// the peer's identification when the connection it would use has not been identified.
    pub fn identification_due(&mut self, request: &RequestParams) -> Option<RequestParams> {
        self.config.expected_peer?;
        if !self.state.is_enabled() || request.function() == Function::GetOrganisationMetaData {
            // Nothing goes out at all; or the request identifies the peer itself.
            return None;
        }
        self.discard_unclean_link();
        let identified = match &self.link {
            Some(link) => link.identified,
            None => self.identity_carries_over,
        };
        (!identified).then_some(RequestParams::GetOrganisationMetaData(
            GetOrganisationMetaDataParams {
                logged_on_user_only: true,
            },
        ))
    }

    async fn ensure_link(&mut self, lane: Lane) -> Result<(), ClientError> {
        self.discard_unclean_link();
        if self.link.is_some() {
            return Ok(());
        }
        // A clinician at the screen gets a fresh attempt; background work honours the
        // backoff so a PC without SystmOne is not probed in a tight loop.
        if lane == Lane::Background && self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(ClientError::NotRunning);
        }
        let attempt = tokio::time::timeout(
            self.config.timeouts.connect,
            TcpStream::connect(self.config.addr),
        )
        .await;
        match attempt {
            Ok(Ok(stream)) => {
                // Requests are small and latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                let (read, write) = stream.into_split();
                // Unchecked when no peer is expected; else identified only by carry-over.
                let identified = self.config.expected_peer.is_none() || self.identity_carries_over;
                self.identity_carries_over = false;
                self.link = Some(Link {
                    reader: FrameReader::with_max_frame(read, self.config.max_frame),
                    writer: write,
                    identified,
                    only_identification: false,
                });
                self.backoff.reset();
                self.retry_at = None;
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "SystmOne refused the connection");
                self.connect_failed();
                Err(ClientError::NotRunning)
            }
            Err(_) => {
                tracing::warn!("connecting to SystmOne timed out");
                self.connect_failed();
                Err(ClientError::NotRunning)
            }
        }
    }

    fn connect_failed(&mut self) {
        // Nothing listened for a while: whoever listens next is identified afresh.
        self.identity_carries_over = false;
        let wait = self.backoff.fail();
        self.retry_at = Some(Instant::now() + wait);
        self.state.publish(ConnectionState::NotRunning);
    }

    /// The request went (or may have gone) out but no usable answer came back.
    fn unanswered(&mut self, function: Function, failure: ClientError) -> ClientError {
        self.link = None;
        self.identity_carries_over = false;
        if is_write(function) {
            ClientError::OutcomeUnknown {
                reason: failure.to_string(),
            }
        } else {
            failure
        }
    }

    async fn send_and_receive(
        &mut self,
        lane: Lane,
        params: RequestParams,
    ) -> Result<Response, ClientError> {
        if !self.state.is_enabled() {
            return Err(ClientError::Disabled);
        }
        if self.device_id.is_none() {
            // Another process (hubctl, a second window) may have been approved meanwhile;
            // sending an empty DeviceID again would ask the user to approve a second time.
            self.device_id = self.saved_device_id().await;
        }
        let function = params.function();
        let request = Request::new(
            self.api_key.expose(),
            self.device_id.clone(),
            self.config.device_version.clone(),
            params,
        );
        let mut document =
            encode_request(&request).map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        document.push('\n');
        self.ensure_link(lane).await?;
        // Identifying: this request is the first on a connection whose peer is unchecked.
        let identifying = match (&self.link, self.config.expected_peer) {
            (Some(link), Some(_)) => !link.identified,
            _ => false,
        };
        if identifying && function != Function::GetOrganisationMetaData {
            // The connection was replaced while this request waited for its slot: nothing
            // but an identification may be the first request on it. Nothing was sent.
            return Err(ClientError::PeerNotIdentified);
        }
        let awaiting_approval = request.device_id.is_none();
        if awaiting_approval {
            self.state.publish(ConnectionState::AwaitingApproval);
        }
        tracing::debug!(function = function.as_str(), request_uid = %request.request_uid, "sending SystmOne request");

        let Some(link) = self.link.as_mut() else {
            return Err(ClientError::NotRunning);
        };
        let write = async {
            link.writer.write_all(document.as_bytes()).await?;
            link.writer.flush().await
        };
        match tokio::time::timeout(self.config.timeouts.read, write).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.unanswered(function, ClientError::ConnectionLost)),
            Err(_) => {
                let after = self.config.timeouts.read;
                return Err(self.unanswered(function, ClientError::Timeout { after }));
            }
        }

        let wait = if awaiting_approval {
            self.config.timeouts.approval
        } else {
            self.config.timeouts.read
        };
        let Some(link) = self.link.as_mut() else {
            return Err(ClientError::NotRunning);
        };
        let frame = match tokio::time::timeout(wait, link.reader.next_frame()).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) | Ok(Err(FramingError::Truncated { .. } | FramingError::Io(_))) => {
                return Err(self.unanswered(function, ClientError::ConnectionLost));
            }
            Ok(Err(e)) => {
                return Err(self.unanswered(function, ClientError::Protocol(e.to_string())))
            }
            Err(_) if awaiting_approval => {
                // Still waiting for a person; the dialog may still be open in SystmOne.
                return Err(self.unanswered(function, ClientError::AwaitingApproval));
            }
            Err(_) => return Err(self.unanswered(function, ClientError::Timeout { after: wait })),
        };

        let response = match decode_response(&frame) {
            Ok(response) => response,
            Err(e) => return Err(self.unanswered(function, ClientError::Protocol(e.to_string()))),
        };
        if response.request_uid != request.request_uid {
            // Not the answer to this request: the stream is out of step.
            tracing::warn!(
                function = function.as_str(),
                "SystmOne answered with another request's RequestUID"
            );
            return Err(self.unanswered(
                function,
                ClientError::Protocol(
                    "SystmOne's answer carried another request's RequestUID".to_owned(),
                ),
            ));
        }
        if response.function != function && !response.is_error() {
            return Err(self.unanswered(
                function,
                ClientError::Protocol(format!(
                    "asked {} but SystmOne answered {}",
                    function.as_str(),
                    response.function.as_str()
                )),
            ));
        }

        if let (true, Some(expected)) = (identifying, self.config.expected_peer) {
            if let ResponseBody::GetOrganisationMetaData(metadata) = &response.body {
                if let Err(refused) = expected.check(metadata) {
                    // The wrong peer: drop the socket, keep nothing it offered (its
                    // DeviceID included), and send it nothing more.
                    tracing::warn!(
                        code = refused.code(),
                        "refused the peer on the SystmOne port"
                    );
                    self.link = None;
                    self.identity_carries_over = false;
                    return Err(refused);
                }
                if let Some(link) = self.link.as_mut() {
                    link.identified = true;
                    link.only_identification = true;
                }
            }
        } else if let Some(link) = self.link.as_mut() {
            link.only_identification = false;
        }
        // A DeviceID is kept only from a peer that has passed the check (an error answer to
        // the identification proves nothing about who answered).
        let peer_checked = self.link.as_ref().is_some_and(|link| link.identified)
            || self.config.expected_peer.is_none();
        if let (Some(issued), true) = (response.device_id.clone(), peer_checked) {
            if self.device_id.as_deref() != Some(issued.as_str()) {
                self.remember_device_id(issued).await;
            }
        }

        match &response.body {
            ResponseBody::Error { message, permanent } => {
                if message.to_lowercase().contains("blocked") {
                    self.state.publish(ConnectionState::Blocked {
                        message: message.clone(),
                    });
                    return Err(ClientError::Blocked(message.clone()));
                }
                // Any answer proves SystmOne is there and the approval question (if there
                // was one) is settled; "awaiting approval" would now be misleading.
                self.state.connected(None);
                tracing::info!(
                    function = function.as_str(),
                    permanent,
                    "SystmOne refused a request"
                );
                if *permanent {
                    Err(ClientError::Permanent(message.clone().into()))
                } else {
                    Err(ClientError::Temporary(message.clone().into()))
                }
            }
            ResponseBody::GetOrganisationMetaData(metadata) => {
                self.state.connected(Some(metadata));
                Ok(response)
            }
            _ => {
                self.state.connected(None);
                Ok(response)
            }
        }
    }

    async fn saved_device_id(&self) -> Option<String> {
        let store = Arc::clone(&self.device_store);
        let read = tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            store.device_id()
        })
        .await;
        match read {
            Ok(Ok(id)) => id.filter(|id| !id.trim().is_empty()),
            // Unreadable now: carry on without; SystmOne will ask for approval.
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the saved SystmOne DeviceID");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the saved SystmOne DeviceID");
                None
            }
        }
    }

    /// Saves the DeviceID SystmOne issued. Without it every later request would go back to
    /// the user for approval, so it is written durably (and audited) before use.
    async fn remember_device_id(&mut self, issued: String) {
        let valid = !issued.is_empty()
            && issued.len() <= 64
            && issued.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            tracing::warn!(
                "SystmOne issued a DeviceID that is not plain letters and digits; ignored"
            );
            return;
        }
        let store = Arc::clone(&self.device_store);
        let id = issued.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            store.save_device_id(&id)
        })
        .await;
        match saved {
            Ok(Ok(())) => tracing::info!("SystmOne approved this device; DeviceID saved"),
            // Kept in memory so this session works; the next start will ask for approval again.
            Ok(Err(e)) => tracing::error!(error = %e, "could not save the SystmOne DeviceID"),
            Err(e) => tracing::error!(error = %e, "could not save the SystmOne DeviceID"),
        }
        self.device_id = Some(issued);
    }
}

impl Exchange for Connection {
    type Request = RequestParams;
    type Response = Response;
    type Error = ClientError;

    fn send_class(request: &RequestParams, today: NaiveDate) -> SendClass {
        match request {
            RequestParams::GetPatientRecord(params) if !params.is_throttle_exempt(today) => {
                SendClass::ThrottledRecord
            }
            _ => SendClass::General,
        }
    }

    fn function_name(request: &RequestParams) -> &'static str {
        request.function().as_str()
    }

    fn exchange(
        &mut self,
        lane: Lane,
        request: RequestParams,
    ) -> impl Future<Output = Result<Response, ClientError>> + Send {
        self.send_and_receive(lane, request)
    }

    fn must_send_first(&mut self, request: &RequestParams) -> Option<RequestParams> {
        self.identification_due(request)
    }
}

/// A scriptable stand-in for the SystmOne client's socket, for unit tests here and in
/// `client.rs` (the full simulator lives in `crate::simulator`).
#[cfg(test)]
pub(crate) mod fake_systmone {
    use super::super::codec::{decode_request, encode_response, Request, Response, ResponseBody};
    use super::super::framing::FrameReader;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    pub enum Reply {
        Answer(Response),
        /// Bytes written as they are (malformed or foreign documents).
        Raw(String),
        /// No answer at all, as SystmOne does for a throttled request.
        Silence,
        /// Close the connection without answering.
        Close,
        /// Answer, then close the connection (SystmOne exiting or logging off).
        AnswerThenClose(Response),
        /// Answer, then close the connection a moment later: the close reaches the client
        /// only after it has scheduled its next request on the old connection.
        AnswerThenCloseLate(Response, std::time::Duration),
        After(Duration, Box<Reply>),
    }

    pub fn answer(request: &Request, device_id: Option<&str>, body: ResponseBody) -> Reply {
        Reply::Answer(Response::answering(
            request,
            device_id.map(str::to_owned),
            body,
        ))
    }

    pub struct FakeSystmOne {
        pub addr: SocketAddr,
        pub requests: Arc<Mutex<Vec<Request>>>,
        pub connections: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for FakeSystmOne {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl FakeSystmOne {
        pub fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }

        pub fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }

        pub async fn start(
            handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
        ) -> FakeSystmOne {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
            let connections = Arc::new(AtomicUsize::new(0));
            let handler = Arc::new(handler);
            let task = {
                let requests = Arc::clone(&requests);
                let connections = Arc::clone(&connections);
                tokio::spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            return;
                        };
                        connections.fetch_add(1, Ordering::SeqCst);
                        let requests = Arc::clone(&requests);
                        let handler = Arc::clone(&handler);
                        tokio::spawn(async move {
                            let (read, mut write) = stream.into_split();
                            let mut reader = FrameReader::new(read);
                            while let Ok(Some(frame)) = reader.next_frame().await {
                                let request = decode_request(&frame).unwrap();
                                requests.lock().unwrap().push(request.clone());
                                let mut reply = handler(&request);
                                loop {
                                    match reply {
                                        Reply::After(delay, next) => {
                                            tokio::time::sleep(delay).await;
                                            reply = *next;
                                        }
                                        Reply::Answer(response) => {
                                            let xml = encode_response(&response).unwrap() + "\n";
                                            let _ = write.write_all(xml.as_bytes()).await;
                                            break;
                                        }
                                        Reply::Raw(text) => {
                                            let _ = write.write_all(text.as_bytes()).await;
                                            break;
                                        }
                                        Reply::AnswerThenClose(response) => {
                                            let xml = encode_response(&response).unwrap() + "\n";
                                            let _ = write.write_all(xml.as_bytes()).await;
                                            return;
                                        }
                                        Reply::AnswerThenCloseLate(response, after) => {
                                            let xml = encode_response(&response).unwrap() + "\n";
                                            let _ = write.write_all(xml.as_bytes()).await;
                                            tokio::time::sleep(after).await;
                                            return;
                                        }
                                        Reply::Silence => break,
                                        Reply::Close => return,
                                    }
                                }
                            }
                        });
                    }
                })
            };
            FakeSystmOne {
                addr,
                requests,
                connections,
                task,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake_systmone::{answer, FakeSystmOne, Reply};
    use super::*;
    use crate::codec::{
        Event, Identity, Site, UpdatePatientRecordParams, UpdatePatientRecordResponse, User,
    };
    use store::{SettingKey, Store};

    const DEVICE: &str = "392752167bd7f69b";

    fn config(addr: SocketAddr) -> ConnectionConfig {
        ConnectionConfig {
            addr,
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                read: Duration::from_millis(300),
                approval: Duration::from_millis(600),
            },
            backoff: BackoffConfig {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(400),
            },
            ..ConnectionConfig::default()
        }
    }

    /// A ward database on disk: the connection gets its own store connection to it, as in
    /// the app, and the test opens another to look at (or change) what was saved.
    struct TestDb {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    }

    impl TestDb {
        fn open(&self) -> Store {
            Store::open(
                &self.path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap()
        }
    }

    fn connection(
        addr: SocketAddr,
        device_id: Option<&str>,
    ) -> (Connection, StatePublisher, TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb {
            path: dir.path().join("ward.sqlite"),
            _dir: dir,
        };
        let mut store = db.open();
        if let Some(id) = device_id {
            store
                .set_setting("test", SettingKey::SystmOneDeviceId, Some(id))
                .unwrap();
        }
        let state = StatePublisher::new(true);
        let key = ApiKey::parse("f31e26725b5491f2").unwrap();
        let device: SharedDeviceIdentity = Arc::new(Mutex::new(Box::new(store)));
        let conn = Connection::new(config(addr), key, device, state.clone()).unwrap();
        (conn, state, db)
    }

    fn update() -> RequestParams {
        let nhs = domain::NhsNumber::parse("9434765919").unwrap();
        RequestParams::UpdatePatientRecord(
            UpdatePatientRecordParams::new(Identity::nhs(nhs))
                .with_event(Event::narrative("Seen on ward round.")),
        )
    }

    #[tokio::test]
    async fn a_mismatched_request_uid_is_a_protocol_error_and_resets_the_connection() {
        let server = FakeSystmOne::start(|request| {
            let mut reply = Response::answering(
                request,
                Some(DEVICE.to_owned()),
                ResponseBody::IsPatientRetrieved(true),
            );
            reply.request_uid = "someone-elses-request".to_owned();
            Reply::Answer(reply)
        })
        .await;
        let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        assert!(conn.link.is_none(), "the out-of-step connection is dropped");
        let _ = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await;
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn a_mismatched_request_uid_on_an_update_leaves_the_outcome_unknown() {
        let server = FakeSystmOne::start(|request| {
            let mut reply = Response::answering(
                request,
                Some(DEVICE.to_owned()),
                ResponseBody::UpdatePatientRecord(UpdatePatientRecordResponse::default()),
            );
            reply.request_uid = "someone-elses-request".to_owned();
            Reply::Answer(reply)
        })
        .await;
        let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
        let err = conn
            .exchange(Lane::Interactive, update())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::OutcomeUnknown { .. }), "{err:?}");
    }

    /// Bytes of an update may have left when the connection breaks: a reset or close after
    /// the write, a half-sent answer, or an unreadable one all leave the outcome unknown
    /// (`MaybeSent`), never "not sent".
    #[tokio::test]
    async fn an_update_interrupted_after_dispatch_is_maybe_sent() {
        let replies = [
            Reply::Close,
            Reply::Raw("<ClientIntegrationResponse><DeviceID>".to_owned()),
            Reply::Raw("<ClientIntegrationResponse><Response>\u{0}</Response></ClientIntegrationResponse>\n".to_owned()),
        ];
        for reply in replies {
            let reply = std::sync::Mutex::new(Some(reply));
            let server = FakeSystmOne::start(move |_| {
                reply
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or(Reply::Close)
            })
            .await;
            let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
            let err = conn
                .exchange(Lane::Interactive, update())
                .await
                .unwrap_err();
            assert!(matches!(err, ClientError::OutcomeUnknown { .. }), "{err:?}");
            assert_eq!(err.failure(), domain::SystmOneFailure::MaybeSent);
            assert_eq!(server.requests().len(), 1, "sent once, never retried");
        }
    }

    #[tokio::test]
    async fn silence_is_a_timeout_for_a_read_and_an_unknown_outcome_for_an_update() {
        let server = FakeSystmOne::start(|_| Reply::Silence).await;
        let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
        let started = Instant::now();
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            conn.link.is_none(),
            "a late answer must not be read as the next one's"
        );

        let err = conn
            .exchange(Lane::Interactive, update())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::OutcomeUnknown { .. }), "{err:?}");
        assert_eq!(err.code(), "systmone_outcome_unknown");
        assert_eq!(server.requests().len(), 2, "each was sent exactly once");
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn a_late_answer_is_never_taken_for_the_next_one() {
        // The first answer arrives after our timeout; the second request must get its own.
        let server = FakeSystmOne::start(|request| match request.params {
            RequestParams::GetFunctions => Reply::After(
                Duration::from_millis(450),
                Box::new(answer(
                    request,
                    Some(DEVICE),
                    ResponseBody::GetFunctions(Default::default()),
                )),
            ),
            _ => answer(
                request,
                Some(DEVICE),
                ResponseBody::IsPatientRetrieved(true),
            ),
        })
        .await;
        let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetFunctions)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let params = RequestParams::IsPatientRetrieved(Default::default());
        let response = conn.exchange(Lane::Interactive, params).await.unwrap();
        assert_eq!(response.body, ResponseBody::IsPatientRetrieved(true));
    }

    #[tokio::test]
    async fn a_closed_port_means_not_running_and_background_work_backs_off() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (mut conn, state, _) = connection(addr, Some(DEVICE));
        let err = conn
            .exchange(Lane::Background, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NotRunning), "{err:?}");
        assert_eq!(state.current(), ConnectionState::NotRunning);
        assert!(conn.retry_at.is_some());
        // Within the backoff window background work fails fast without touching the port.
        let err = conn
            .exchange(Lane::Background, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NotRunning));
        assert_eq!(conn.backoff.failures, 1, "no second attempt was made");
        // A clinician's request tries again at once.
        let _ = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await;
        assert_eq!(conn.backoff.failures, 2);
    }

    #[tokio::test]
    async fn the_first_contact_sends_no_device_id_and_stores_the_issued_one() {
        const ISSUED: &str = "0123456789abcdef";
        let server = FakeSystmOne::start(|request| {
            // SystmOne asks the user; approval takes a moment.
            let delay = if request.device_id.is_none() { 150 } else { 0 };
            Reply::After(
                Duration::from_millis(delay),
                Box::new(answer(
                    request,
                    Some(ISSUED),
                    ResponseBody::IsPatientRetrieved(false),
                )),
            )
        })
        .await;
        let (mut conn, state, store) = connection(server.addr, None);
        let mut watcher = state.subscribe();
        let pending = tokio::spawn(async move {
            let result = conn
                .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
                .await;
            (conn, result)
        });
        watcher.changed().await.unwrap();
        assert_eq!(
            *watcher.borrow_and_update(),
            ConnectionState::AwaitingApproval
        );
        let (mut conn, result) = pending.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(conn.device_id(), Some(ISSUED));
        let saved = store.open().setting(SettingKey::SystmOneDeviceId).unwrap();
        assert_eq!(saved.as_deref(), Some(ISSUED));
        let audit = store.open().audit_entries(&Default::default()).unwrap();
        assert!(audit.iter().any(|a| a.actor == store::DEVICE_ID_ACTOR
            && a.entity_id.as_deref() == Some("systmone_device_id")));

        conn.exchange(
            Lane::Interactive,
            RequestParams::IsPatientRetrieved(Default::default()),
        )
        .await
        .unwrap();
        let sent = server.requests();
        assert_eq!(sent[0].device_id, None);
        assert_eq!(
            sent[1].device_id.as_deref(),
            Some(ISSUED),
            "every later request carries the ID"
        );
        assert!(matches!(state.current(), ConnectionState::Connected { .. }));
    }

    #[tokio::test]
    async fn a_device_id_saved_by_another_process_is_picked_up_before_asking_again() {
        let server = FakeSystmOne::start(|request| {
            answer(
                request,
                Some(DEVICE),
                ResponseBody::GetCurrentActivity(Default::default()),
            )
        })
        .await;
        let (mut conn, _, store) = connection(server.addr, None);
        // hubctl was approved while this process was running.
        store
            .open()
            .set_setting("hubctl", SettingKey::SystmOneDeviceId, Some(DEVICE))
            .unwrap();
        conn.exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap();
        assert_eq!(server.requests()[0].device_id.as_deref(), Some(DEVICE));
    }

    #[tokio::test]
    async fn a_blocked_device_is_reported_as_blocked() {
        const MESSAGE: &str =
            "This device has been blocked by the SystmOne user. Blocks can be lifted in the Device Manager.";
        let server = FakeSystmOne::start(|request| {
            answer(
                request,
                None,
                ResponseBody::Error {
                    message: MESSAGE.to_owned(),
                    permanent: true,
                },
            )
        })
        .await;
        let (mut conn, state, _) = connection(server.addr, None);
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Blocked(m) if m == MESSAGE),
            "{err:?}"
        );
        assert_eq!(err.code(), "systmone_blocked");
        assert_eq!(
            state.current(),
            ConnectionState::Blocked {
                message: MESSAGE.to_owned()
            }
        );
        let json = serde_json::to_value(state.current()).unwrap();
        assert_eq!(json["kind"], "blocked");
    }

    #[tokio::test]
    async fn systmone_errors_keep_their_permanence() {
        let server = FakeSystmOne::start(|request| {
            let permanent = !matches!(request.params, RequestParams::UpdatePatientRecord(_));
            let message = if permanent {
                "At least two search parameters must be specified"
            } else {
                "Record is open"
            };
            answer(
                request,
                Some(DEVICE),
                ResponseBody::Error {
                    message: message.to_owned(),
                    permanent,
                },
            )
        })
        .await;
        let (mut conn, state, _) = connection(server.addr, Some(DEVICE));
        let err = conn
            .exchange(Lane::Interactive, update())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Temporary(m) if m.expose() == "Record is open"),
            "{err:?}"
        );
        assert!(matches!(err.failure(), domain::SystmOneFailure::NotSent(_)));
        assert!(
            !format!("{err:?}").contains("Record is open"),
            "Debug does not echo SystmOne's text"
        );
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Permanent(_)), "{err:?}");
        assert!(matches!(state.current(), ConnectionState::Connected { .. }));
        assert_eq!(
            server.connections(),
            1,
            "an error answer keeps the connection"
        );
    }

    #[tokio::test]
    async fn organisation_metadata_names_the_user_and_site() {
        let server = FakeSystmOne::start(|request| {
            let metadata = OrganisationMetaData {
                sites: vec![Site {
                    name: Some("Ward 7, General Hospital".into()),
                    current_site: true,
                    ..Default::default()
                }],
                users: vec![User {
                    title: Some("Dr".into()),
                    first_name: Some("Jane".into()),
                    surname: Some("Smith".into()),
                    user_name: Some("jsmith".into()),
                    role: Some("Doctor".into()),
                    current_user: true,
                    ..Default::default()
                }],
            };
            answer(
                request,
                Some(DEVICE),
                ResponseBody::GetOrganisationMetaData(metadata),
            )
        })
        .await;
        let (mut conn, state, _) = connection(server.addr, Some(DEVICE));
        let params = RequestParams::GetOrganisationMetaData(
            super::super::codec::GetOrganisationMetaDataParams {
                logged_on_user_only: true,
            },
        );
        conn.exchange(Lane::Interactive, params).await.unwrap();
        let expected = ConnectionState::Connected {
            user: Some(SystmOneUser {
                name: "Dr Jane Smith".into(),
                user_name: Some("jsmith".into()),
                role: Some("Doctor".into()),
            }),
            site: Some("Ward 7, General Hospital".into()),
        };
        assert_eq!(state.current(), expected);
        // Later answers keep what we know.
        conn.exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .ok();
        assert_eq!(state.current(), expected);
        let json = serde_json::to_value(&expected).unwrap();
        assert_eq!(json["kind"], "connected");
        assert_eq!(json["user"]["role"], "Doctor");
    }

    #[tokio::test]
    async fn a_connection_closed_by_systmone_is_replaced_before_the_next_request() {
        // SystmOne answers, then closes the socket (it exited or the user logged off).
        let server = FakeSystmOne::start(|request| {
            Reply::AnswerThenClose(Response::answering(
                request,
                Some(DEVICE.to_owned()),
                ResponseBody::UpdatePatientRecord(UpdatePatientRecordResponse::default()),
            ))
        })
        .await;
        let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
        conn.exchange(Lane::Interactive, update()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The update must not be written into the dead socket (its outcome would then be
        // unknown): a fresh connection carries it.
        conn.exchange(Lane::Interactive, update()).await.unwrap();
        assert_eq!(server.connections(), 2);
        assert_eq!(server.requests().len(), 2);
    }

    #[tokio::test]
    async fn disabled_sends_nothing() {
        let server = FakeSystmOne::start(|request| {
            answer(
                request,
                Some(DEVICE),
                ResponseBody::IsPatientRetrieved(true),
            )
        })
        .await;
        let (mut conn, state, _) = connection(server.addr, Some(DEVICE));
        state.set_enabled(false);
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Disabled));
        assert_eq!(state.current(), ConnectionState::Disabled);
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn oversized_and_foreign_documents_are_protocol_errors() {
        let server = FakeSystmOne::start(|request| match request.params {
            RequestParams::GetFunctions => {
                Reply::Raw("<SomethingElse><A/></SomethingElse>\n".to_owned())
            }
            _ => Reply::Raw(format!("<ClientIntegrationResponse>{}", "x".repeat(5_000))),
        })
        .await;
        let (mut conn, _, _) = connection(server.addr, Some(DEVICE));
        conn.config.max_frame = 4_096;
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetFunctions)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        let err = conn
            .exchange(Lane::Interactive, RequestParams::GetCurrentActivity)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(BackoffConfig::default());
        let delays: Vec<u64> = (0..9).map(|_| backoff.fail().as_millis() as u64).collect();
        assert_eq!(
            delays,
            vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        backoff.reset();
        assert_eq!(backoff.fail(), Duration::from_millis(500));
        for _ in 0..100 {
            backoff.fail();
        }
        assert_eq!(
            backoff.fail(),
            Duration::from_secs(30),
            "no overflow after many failures"
        );
    }

    proptest::proptest! {
        /// The delay never shrinks while failures continue, never exceeds the cap, and
        /// starts again from the initial delay after a reset.
        #[test]
        fn backoff_grows_monotonically_within_its_bounds(
            initial_ms in 1u64..5_000,
            max_ms in 1u64..120_000,
            failures in 1usize..200,
        ) {
            let config = BackoffConfig {
                initial: Duration::from_millis(initial_ms),
                max: Duration::from_millis(max_ms.max(initial_ms)),
            };
            let mut backoff = Backoff::new(config);
            let mut previous = Duration::ZERO;
            for _ in 0..failures {
                let delay = backoff.fail();
                proptest::prop_assert!(delay >= previous);
                proptest::prop_assert!(delay <= config.max);
                proptest::prop_assert!(delay >= config.initial.min(config.max));
                previous = delay;
            }
            backoff.reset();
            proptest::prop_assert_eq!(backoff.fail(), config.initial);
        }
    }

    #[test]
    fn record_requests_are_classified_by_todays_exemptions() {
        use super::super::codec::{FilterFlag, GetPatientRecordParams};
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let whole = RequestParams::GetPatientRecord(GetPatientRecordParams::default());
        let demographics =
            RequestParams::GetPatientRecord(GetPatientRecordParams::demographics_only(None));
        let entered_today = RequestParams::GetPatientRecord(GetPatientRecordParams::entered_on(
            None,
            today,
            [FilterFlag::Narrative],
        ));
        assert_eq!(
            Connection::send_class(&whole, today),
            SendClass::ThrottledRecord
        );
        assert_eq!(
            Connection::send_class(&demographics, today),
            SendClass::General
        );
        assert_eq!(
            Connection::send_class(&entered_today, today),
            SendClass::General
        );
        // Queued before midnight, sent after: no longer "entered today".
        assert_eq!(
            Connection::send_class(&entered_today, today.succ_opt().unwrap()),
            SendClass::ThrottledRecord
        );
        assert_eq!(
            Connection::send_class(&RequestParams::GetCurrentActivity, today),
            SendClass::General
        );
    }
}

/// The peer is identified on every new connection before anything else goes out on it
/// (issue 11): a listener that replaced SystmOne on the port is checked again.
#[cfg(test)]
mod peer_identification_tests {
    use super::fake_systmone::{FakeSystmOne, Reply};
    use super::*;
    use crate::codec::{Site, User};
    use store::Store;

    fn metadata(site: &str) -> ResponseBody {
        ResponseBody::GetOrganisationMetaData(OrganisationMetaData {
            sites: vec![Site {
                name: Some(site.into()),
                current_site: true,
                ..Default::default()
            }],
            users: vec![User {
                user_name: Some("jsmith".into()),
                current_user: true,
                ..Default::default()
            }],
        })
    }

    fn who() -> RequestParams {
        RequestParams::GetOrganisationMetaData(GetOrganisationMetaDataParams {
            logged_on_user_only: true,
        })
    }

    struct Db {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    }

    impl Db {
        fn open(&self) -> Store {
            let key = store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap();
            Store::open(&self.path, &key).unwrap()
        }
    }

    fn connection(addr: SocketAddr, expected: ExpectedPeer) -> (Connection, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db {
            path: dir.path().join("ward.sqlite"),
            _dir: dir,
        };
        let device: SharedDeviceIdentity = Arc::new(Mutex::new(Box::new(db.open())));
        let config = ConnectionConfig {
            addr,
            expected_peer: Some(expected),
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                read: Duration::from_millis(500),
                approval: Duration::from_millis(800),
            },
            ..ConnectionConfig::default()
        };
        let key = ApiKey::parse("f31e26725b5491f2").unwrap();
        let conn = Connection::new(config, key, device, StatePublisher::new(true)).unwrap();
        (conn, db)
    }

    fn functions(server: &FakeSystmOne) -> Vec<&'static str> {
        server
            .requests()
            .iter()
            .map(|r| r.function().as_str())
            .collect()
    }

    #[tokio::test]
    async fn nothing_but_the_identification_is_the_first_request_on_a_connection() {
        // SystmOne closes the connection after every answer, so every connection is new.
        let server = FakeSystmOne::start(|request| {
            let body = match request.function() {
                Function::GetOrganisationMetaData => metadata("Riverside General Hospital"),
                _ => ResponseBody::IsPatientRetrieved(true),
            };
            Reply::AnswerThenClose(Response::answering(request, Some("D1".into()), body))
        })
        .await;
        let (mut conn, _db) = connection(server.addr, ExpectedPeer::SystmOne);
        let activity = RequestParams::GetCurrentActivity;
        assert!(conn.identification_due(&activity).is_some());
        // Sent regardless (a connection replaced while the request waited): refused, unsent.
        let refused = conn
            .exchange(Lane::Interactive, activity.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ClientError::PeerNotIdentified),
            "{refused:?}"
        );
        assert!(server.requests().is_empty(), "nothing went out");

        conn.exchange(Lane::Interactive, who()).await.unwrap();
        // Let the peer's close arrive (as it does before the next slot, a second later).
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The identifying connection carried nothing else and the peer closed it: the
        // identification holds for the one next connection.
        assert!(conn.identification_due(&activity).is_none());
        conn.exchange(Lane::Interactive, activity.clone())
            .await
            .unwrap();
        // That connection carried a request and closed: the next one is identified again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(conn.identification_due(&activity).is_some());
        assert_eq!(
            functions(&server),
            ["GetOrganisationMetaData", "GetCurrentActivity"]
        );
    }

    #[tokio::test]
    async fn a_kept_connection_is_identified_once() {
        let server = FakeSystmOne::start(|request| {
            let body = match request.function() {
                Function::GetOrganisationMetaData => metadata("Riverside General Hospital"),
                _ => ResponseBody::IsPatientRetrieved(true),
            };
            Reply::Answer(Response::answering(request, Some("D1".into()), body))
        })
        .await;
        let (mut conn, _db) = connection(server.addr, ExpectedPeer::SystmOne);
        conn.exchange(Lane::Interactive, who()).await.unwrap();
        for _ in 0..2 {
            let activity = RequestParams::GetCurrentActivity;
            assert!(conn.identification_due(&activity).is_none());
            conn.exchange(Lane::Interactive, activity).await.unwrap();
        }
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn the_wrong_peer_is_dropped_and_its_device_id_is_never_kept() {
        let server = FakeSystmOne::start(|request| {
            Reply::Answer(Response::answering(
                request,
                Some("SIMISSUED01".into()),
                metadata("DEMO – Fictitious Hospital (Inpatient Hub simulator)"),
            ))
        })
        .await;
        let (mut conn, db) = connection(server.addr, ExpectedPeer::SystmOne);
        let refused = conn.exchange(Lane::Interactive, who()).await.unwrap_err();
        assert!(
            matches!(
                refused,
                ClientError::WrongPeer {
                    expected: ExpectedPeer::SystmOne
                }
            ),
            "{refused:?}"
        );
        assert_eq!(conn.device_id(), None);
        assert_eq!(db.open().device_id().unwrap(), None);
        // Still unidentified: the next request must identify again, on a new connection.
        assert!(conn
            .identification_due(&RequestParams::GetCurrentActivity)
            .is_some());
    }

    #[test]
    fn the_site_name_tells_the_simulator_from_systmone() {
        let ResponseBody::GetOrganisationMetaData(real) = metadata("Ward 7, General Hospital")
        else {
            unreachable!()
        };
        let ResponseBody::GetOrganisationMetaData(sim) =
            metadata("DEMO – Fictitious Hospital (Inpatient Hub simulator)")
        else {
            unreachable!()
        };
        assert!(ExpectedPeer::SystmOne.check(&real).is_ok());
        assert!(ExpectedPeer::SystmOne.check(&sim).is_err());
        assert!(ExpectedPeer::Simulator.check(&sim).is_ok());
        assert!(ExpectedPeer::Simulator.check(&real).is_err());
    }
}
