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
    decode_response, encode_request, Function, OrganisationMetaData, Request, RequestParams, Response,
    ResponseBody,
};
use super::framing::{FrameReader, FramingError, DEFAULT_MAX_FRAME};
use super::pacing::SendClass;
use super::scheduler::{Exchange, Lane};
use super::secrets::ApiKey;
use crate::store::{SettingKey, Store};
use chrono::NaiveDate;
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

/// Who the audit trail names when this installation's DeviceID is saved.
const DEVICE_ID_ACTOR: &str = "Inpatient Hub (SystmOne device approval)";

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
    Connected { user: Option<SystmOneUser>, site: Option<String> },
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
        let user = metadata.current_user().or_else(|| match metadata.users.as_slice() {
            // With LoggedOnUserOnly SystmOne lists just the one user.
            [only] => Some(only),
            _ => None,
        })?;
        let name = [&user.title, &user.first_name, &user.surname]
            .iter()
            .filter_map(|part| part.as_deref().map(str::trim).filter(|p| !p.is_empty()))
            .collect::<Vec<_>>()
            .join(" ");
        let name = if name.is_empty() { user.user_name.clone().unwrap_or_default() } else { name };
        Some(SystmOneUser { name, user_name: user.user_name.clone(), role: user.role.clone() })
    }
}

fn current_site(metadata: &OrganisationMetaData) -> Option<String> {
    metadata
        .sites
        .iter()
        .find(|s| s.current_site)
        .or_else(|| match metadata.sites.as_slice() {
            [only] => Some(only),
            _ => None,
        })
        .and_then(|s| s.name.clone())
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
        BackoffConfig { initial: Duration::from_millis(500), max: Duration::from_secs(30) }
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
        Backoff { config, failures: 0 }
    }

    /// Records a failure; returns how long to wait before trying again.
    pub fn fail(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        self.config.initial.saturating_mul(factor).min(self.config.max)
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
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 40700)),
            device_version: concat!("Inpatient Hub ", env!("CARGO_PKG_VERSION")).to_owned(),
            timeouts: Timeouts::default(),
            backoff: BackoffConfig::default(),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// Publishes [`ConnectionState`] changes; shared by the connection and the client.
#[derive(Clone)]
pub struct StatePublisher {
    sender: Arc<watch::Sender<ConnectionState>>,
    enabled: Arc<AtomicBool>,
}

impl StatePublisher {
    pub fn new(enabled: bool) -> StatePublisher {
        let initial = if enabled { ConnectionState::NotRunning } else { ConnectionState::Disabled };
        StatePublisher { sender: Arc::new(watch::Sender::new(initial)), enabled: Arc::new(AtomicBool::new(enabled)) }
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
        self.enabled.store(enabled, Ordering::SeqCst);
        self.publish(if enabled { ConnectionState::NotRunning } else { ConnectionState::Disabled });
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
    matches!(function, Function::UpdatePatientRecord | Function::DeletePatientRecord)
}

/// The connection owner. Used through the scheduler, which sends one request at a time.
pub struct Connection {
    config: ConnectionConfig,
    api_key: ApiKey,
    device_id: Option<String>,
    device_store: Arc<Mutex<Store>>,
    link: Option<Link>,
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
        device_store: Arc<Mutex<Store>>,
        state: StatePublisher,
    ) -> Result<Connection, ClientError> {
        let device_id = {
            let store = device_store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            store.setting(SettingKey::SystmOneDeviceId).map_err(|e| ClientError::Store(e.to_string()))?
        }
        .filter(|id| !id.trim().is_empty());
        let backoff = Backoff::new(config.backoff);
        Ok(Connection { config, api_key, device_id, device_store, link: None, backoff, retry_at: None, state })
    }

    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    async fn ensure_link(&mut self, lane: Lane) -> Result<(), ClientError> {
        if let Some(link) = &self.link {
            if link.is_clean() {
                return Ok(());
            }
            tracing::debug!("SystmOne connection closed or out of step; reconnecting");
            self.link = None;
        }
        // A clinician at the screen gets a fresh attempt; background work honours the
        // backoff so a PC without SystmOne is not probed in a tight loop.
        if lane == Lane::Background && self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(ClientError::NotRunning);
        }
        let attempt = tokio::time::timeout(self.config.timeouts.connect, TcpStream::connect(self.config.addr)).await;
        match attempt {
            Ok(Ok(stream)) => {
                // Requests are small and latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                let (read, write) = stream.into_split();
                self.link =
                    Some(Link { reader: FrameReader::with_max_frame(read, self.config.max_frame), writer: write });
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
        let wait = self.backoff.fail();
        self.retry_at = Some(Instant::now() + wait);
        self.state.publish(ConnectionState::NotRunning);
    }

    /// The request went (or may have gone) out but no usable answer came back.
    fn unanswered(&mut self, function: Function, failure: ClientError) -> ClientError {
        self.link = None;
        if is_write(function) {
            ClientError::OutcomeUnknown { reason: failure.to_string() }
        } else {
            failure
        }
    }

    async fn send_and_receive(&mut self, lane: Lane, params: RequestParams) -> Result<Response, ClientError> {
        if !self.state.is_enabled() {
            return Err(ClientError::Disabled);
        }
        let function = params.function();
        let request = Request::new(
            self.api_key.expose(),
            self.device_id.clone(),
            self.config.device_version.clone(),
            params,
        );
        let mut document = encode_request(&request).map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        document.push('\n');
        self.ensure_link(lane).await?;
        let awaiting_approval = request.device_id.is_none();
        if awaiting_approval {
            self.state.publish(ConnectionState::AwaitingApproval);
        }
        tracing::debug!(function = function.as_str(), request_uid = %request.request_uid, "sending SystmOne request");

        let Some(link) = self.link.as_mut() else { return Err(ClientError::NotRunning) };
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

        let wait = if awaiting_approval { self.config.timeouts.approval } else { self.config.timeouts.read };
        let Some(link) = self.link.as_mut() else { return Err(ClientError::NotRunning) };
        let frame = match tokio::time::timeout(wait, link.reader.next_frame()).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) | Ok(Err(FramingError::Truncated { .. } | FramingError::Io(_))) => {
                return Err(self.unanswered(function, ClientError::ConnectionLost));
            }
            Ok(Err(e)) => return Err(self.unanswered(function, ClientError::Protocol(e.to_string()))),
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
            tracing::warn!(function = function.as_str(), "SystmOne answered with another request's RequestUID");
            return Err(self.unanswered(
                function,
                ClientError::Protocol("SystmOne's answer carried another request's RequestUID".to_owned()),
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

        if let Some(issued) = response.device_id.clone() {
            if self.device_id.as_deref() != Some(issued.as_str()) {
                self.remember_device_id(issued).await;
            }
        }

        match &response.body {
            ResponseBody::Error { message, permanent } => {
                if message.to_lowercase().contains("blocked") {
                    self.state.publish(ConnectionState::Blocked { message: message.clone() });
                    return Err(ClientError::Blocked(message.clone()));
                }
                // An error answer still proves SystmOne is there and has accepted the device
                // (or is still asking, if we have no ID yet).
                if self.device_id.is_some() {
                    self.state.connected(None);
                }
                tracing::info!(function = function.as_str(), permanent, "SystmOne refused a request");
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

    /// Saves the DeviceID SystmOne issued. Without it every later request would go back to
    /// the user for approval, so it is written durably (and audited) before use.
    async fn remember_device_id(&mut self, issued: String) {
        let valid = !issued.is_empty() && issued.len() <= 64 && issued.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            tracing::warn!("SystmOne issued a DeviceID that is not plain letters and digits; ignored");
            return;
        }
        let store = Arc::clone(&self.device_store);
        let id = issued.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            store.set_setting(DEVICE_ID_ACTOR, SettingKey::SystmOneDeviceId, Some(&id))
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
            RequestParams::GetPatientRecord(params) if !params.is_throttle_exempt(today) => SendClass::ThrottledRecord,
            _ => SendClass::General,
        }
    }

    fn function_name(request: &RequestParams) -> &'static str {
        request.function().as_str()
    }

    fn exchange(&mut self, lane: Lane, request: RequestParams) -> impl Future<Output = Result<Response, ClientError>> + Send {
        self.send_and_receive(lane, request)
    }
}
