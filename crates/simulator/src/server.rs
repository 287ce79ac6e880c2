//! The TCP side: one task per connection reading whole documents with the framing reader,
//! then, per request: throttle (silence), APIKey, device approval, injected faults, and
//! finally [`rules::handle`]. Every request is logged to the database with its outcome.

use super::data::hex16;
use super::faults::{garbage_bytes, FaultKind, FaultPlan};
use super::profile::{ConnectionMode, SimProfile};
use super::rules::{self, RequestContext};
use super::state::{
    now_local, today, ApprovalMode, DeviceStatus, LogEntry, SimDb, SimSettings,
    OUTCOME_DROPPED_THROTTLE,
};
use super::throttle::{Throttle, Throttled, Verdict};
use super::{SimConfig, SimControl, SimError, BLOCKED_MESSAGE};
use chrono::SubsecRound;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use systmone_wire::codec::{
    decode_request, decode_request_header, encode_response, Request, RequestParams, Response,
    ResponseBody,
};
use systmone_wire::framing::FrameReader;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Temporary error text for the injected "temporary" fault.
pub const TEMPORARY_FAULT_MESSAGE: &str =
    "SystmOne could not complete the request because the TPP servers are busy. Please try again later.";
pub const BAD_API_KEY_MESSAGE: &str =
    "The APIKey is not recognised. The application must use the key issued to it by TPP.";

struct Shared {
    db: Mutex<SimDb>,
    throttle: Mutex<Throttle>,
    fault_rng: Mutex<ChaCha8Rng>,
    next_connection: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; carry on with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What to do on the socket after a request.
enum Action {
    /// The response, its terminator already appended (profile); `close` = the profile's
    /// `closed-after-reply`.
    Reply {
        bytes: Vec<u8>,
        delay: Duration,
        close: bool,
    },
    /// No response; the connection stays open (throttle or dropped reply).
    Silence,
    /// Garbage, then close.
    Garbage(Vec<u8>),
    /// Close without a reply.
    Close,
}

struct Logged {
    function: String,
    request_uid: String,
    device_id: String,
    outcome: String,
    slow_ms: Option<u64>,
    applied: Option<bool>,
    detail: Option<String>,
}

impl Shared {
    fn log(&self, connection: u64, l: Logged) {
        let entry = LogEntry {
            id: 0,
            at: chrono::Local::now().naive_local().trunc_subsecs(3),
            connection,
            function: l.function,
            request_uid: l.request_uid,
            device_id: l.device_id,
            outcome: l.outcome,
            slow_ms: l.slow_ms,
            applied: l.applied,
            detail: l.detail,
        };
        if let Err(e) = lock(&self.db).log_request(&entry) {
            tracing::warn!(error = %e, "simulator could not write its request log");
        }
    }
}

pub struct Simulator;

/// A running in-process simulator.
pub struct SimHandle {
    addr: SocketAddr,
    data_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The controls, on this simulator's data directory.
    pub fn control(&self) -> Result<SimControl, SimError> {
        SimControl::open(&self.data_dir)
    }

    /// Stops accepting, closes every connection and waits for the server task to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

impl Simulator {
    /// Generates (first time) or reopens the data, binds, and serves in the background.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        if super::data::organisation()
            .user(&config.logged_in_user)
            .is_none()
        {
            return Err(SimError::UnknownUser(config.logged_in_user.clone()));
        }
        // Refused before anything is generated or bound.
        let wanted = config.loopback_addr()?;
        let settings = config.settings();
        let data_dir = config.data_dir.clone();
        let seed = config.seed;
        let db =
            tokio::task::spawn_blocking(move || SimDb::open(&data_dir, Some((seed, &settings))))
                .await
                .map_err(|e| {
                    SimError::Invalid(format!("the simulator's start-up task failed: {e}"))
                })??;
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|e| SimError::Bind {
                addr: wanted,
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            db: Mutex::new(db),
            throttle: Mutex::new(Throttle::default()),
            // Fault decisions replay with the seed; the generator is separate from the data's.
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_fa17)),
            next_connection: AtomicU64::new(1),
        });
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared, rx));
        tracing::info!(%addr, "SystmOne simulator listening (fictitious data only)");
        Ok(SimHandle {
            addr,
            data_dir: config.data_dir,
            shutdown: tx,
            task,
        })
    }
}

/// Serves until Ctrl-C.
pub async fn run_server(config: SimConfig) -> Result<(), SimError> {
    let handle = Simulator::start(config).await?;
    // The bound address, so `--port 0` tells scripts which port was chosen.
    println!(
        "SystmOne SIMULATOR (fictitious patients) listening on {}",
        handle.addr()
    );
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(serve_connection(stream, id, shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    id: u64,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read);
    loop {
        let frame = tokio::select! {
            _ = shutdown.changed() => return,
            frame = reader.next_frame() => frame,
        };
        let bytes = match frame {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => {
                shared.log(
                    id,
                    Logged {
                        function: String::new(),
                        request_uid: String::new(),
                        device_id: String::new(),
                        outcome: "unreadable".into(),
                        slow_ms: None,
                        applied: None,
                        detail: Some(e.to_string()),
                    },
                );
                return;
            }
        };
        let arrival = Instant::now();
        match process(&shared, id, bytes, arrival).await {
            Action::Reply {
                bytes,
                delay,
                close,
            } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if write.write_all(&bytes).await.is_err() || write.flush().await.is_err() {
                    return;
                }
                if close {
                    let _ = write.shutdown().await;
                    return;
                }
            }
            Action::Silence => {}
            Action::Garbage(bytes) => {
                let _ = write.write_all(&bytes).await;
                let _ = write.shutdown().await;
                return;
            }
            Action::Close => return,
        }
    }
}

/// A document that is not a valid request. It still counts as an arrival for the throttle.
/// If its envelope names a known function, it is answered with a permanent ErrorMessage (as
/// SystmOne answers requests it cannot process); otherwise nothing can be addressed back,
/// so there is no reply and the log says why.
fn unreadable(
    shared: &Arc<Shared>,
    connection: u64,
    bytes: &[u8],
    reason: &str,
    arrival: Instant,
) -> Action {
    let verdict = lock(&shared.throttle).check(arrival, Throttled::Ordinary);
    let header = decode_request_header(bytes).ok();
    let mut logged = Logged {
        function: header
            .as_ref()
            .map(|h| h.function_name.clone())
            .unwrap_or_default(),
        request_uid: header
            .as_ref()
            .map(|h| h.request_uid.clone())
            .unwrap_or_default(),
        device_id: header
            .as_ref()
            .and_then(|h| h.device_id.clone())
            .unwrap_or_default(),
        outcome: "unreadable".into(),
        slow_ms: None,
        applied: None,
        detail: Some(reason.to_owned()),
    };
    if verdict != Verdict::Accept {
        logged.outcome = OUTCOME_DROPPED_THROTTLE.into();
        logged.detail = Some(format!(
            "{}; the request was also unreadable: {reason}",
            verdict.describe()
        ));
        shared.log(connection, logged);
        return Action::Silence;
    }
    let message = format!("The request could not be processed: {reason}");
    let response = header.and_then(|h| h.error_response(h.device_id.clone(), message, true));
    // The profile decides the framing of this answer too; unreadable settings mean the
    // defaults (a broken simulator database is reported on the next readable request).
    let profile = lock(&shared.db)
        .settings()
        .map(|s| s.profile)
        .unwrap_or_default();
    let action = match response.map(|r| encode_response(&r)) {
        Some(Ok(xml)) => {
            logged.outcome = "error".into();
            Action::Reply {
                bytes: framed(xml, &profile),
                delay: Duration::ZERO,
                close: profile.connection == ConnectionMode::ClosedAfterReply,
            }
        }
        _ => Action::Silence,
    };
    shared.log(connection, logged);
    action
}

fn throttle_kind(request: &Request) -> Throttled {
    match &request.params {
        RequestParams::GetPatientRecord(p) if !p.is_throttle_exempt(today()) => {
            Throttled::FullRecord
        }
        _ => Throttled::Ordinary,
    }
}

/// The response's bytes and what the profile puts after them.
fn framed(xml: String, profile: &SimProfile) -> Vec<u8> {
    let mut bytes = xml.into_bytes();
    bytes.extend_from_slice(profile.terminator.bytes());
    bytes
}

fn encode(
    request: &Request,
    device_id: Option<String>,
    body: ResponseBody,
    profile: &SimProfile,
) -> Result<Vec<u8>, String> {
    let response = Response::answering(request, device_id, body);
    encode_response(&response)
        .map(|xml| framed(xml, profile))
        .map_err(|e| e.to_string())
}

async fn process(
    shared: &Arc<Shared>,
    connection: u64,
    bytes: Vec<u8>,
    arrival: Instant,
) -> Action {
    let request = match decode_request(&bytes) {
        Ok(r) => r,
        Err(e) => return unreadable(shared, connection, &bytes, &e.to_string(), arrival),
    };
    let mut logged = Logged {
        function: request.function().as_str().to_owned(),
        request_uid: request.request_uid.clone(),
        device_id: request.device_id.clone().unwrap_or_default(),
        outcome: "answered".into(),
        slow_ms: None,
        applied: None,
        detail: None,
    };

    let verdict = lock(&shared.throttle).check(arrival, throttle_kind(&request));
    if verdict != Verdict::Accept {
        logged.outcome = OUTCOME_DROPPED_THROTTLE.into();
        logged.detail = Some(verdict.describe());
        shared.log(connection, logged);
        return Action::Silence;
    }

    let settings = match lock(&shared.db).settings() {
        Ok(s) => s,
        Err(e) => {
            logged.outcome = "internal-error".into();
            logged.detail = Some(e.to_string());
            shared.log(connection, logged);
            return Action::Close;
        }
    };

    let reply =
        |logged: &mut Logged, device: Option<String>, body: ResponseBody, delay: Duration| {
            if let ResponseBody::Error { message, .. } = &body {
                if logged.outcome == "answered" {
                    logged.outcome = "error".into();
                }
                logged.detail.get_or_insert_with(|| message.clone());
            }
            match encode(&request, device, body, &settings.profile) {
                Ok(bytes) => Action::Reply {
                    bytes,
                    delay,
                    close: settings.profile.connection == ConnectionMode::ClosedAfterReply,
                },
                Err(e) => {
                    logged.outcome = "internal-error".into();
                    logged.detail = Some(e);
                    Action::Close
                }
            }
        };

    if request.api_key.expose() != settings.api_key {
        let action = reply(
            &mut logged,
            request.device_id.clone(),
            ResponseBody::Error {
                message: BAD_API_KEY_MESSAGE.into(),
                permanent: true,
            },
            Duration::ZERO,
        );
        shared.log(connection, logged);
        return action;
    }

    let device_id = match approve(shared, &request, &settings, &mut logged).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            let action = reply(
                &mut logged,
                request.device_id.clone(),
                ResponseBody::Error {
                    message: BLOCKED_MESSAGE.into(),
                    permanent: true,
                },
                Duration::ZERO,
            );
            shared.log(connection, logged);
            return action;
        }
        Err(e) => {
            logged.outcome = "internal-error".into();
            logged.detail = Some(e.to_string());
            shared.log(connection, logged);
            return Action::Close;
        }
    };
    logged.device_id = device_id.clone();

    let plan = if settings.faults.is_zero() {
        FaultPlan::NONE
    } else {
        settings.faults.plan(&mut *lock(&shared.fault_rng))
    };
    let delay = if plan.slow {
        Duration::from_millis(settings.slow_ms)
    } else {
        Duration::ZERO
    };
    if plan.slow {
        logged.slow_ms = Some(logged.slow_ms.unwrap_or(0) + settings.slow_ms);
    }
    let is_write = rules::is_write(&request.params);

    if plan.kind == Some(FaultKind::Temporary) {
        logged.outcome = "fault-temporary".into();
        let action = reply(
            &mut logged,
            Some(device_id),
            ResponseBody::Error {
                message: TEMPORARY_FAULT_MESSAGE.into(),
                permanent: false,
            },
            delay,
        );
        shared.log(connection, logged);
        return action;
    }

    // A lost reply to a write may or may not have been preceded by the write itself.
    let lost_reply = matches!(
        plan.kind,
        Some(FaultKind::Drop | FaultKind::Garbage | FaultKind::Reset)
    );
    let run = !lost_reply || !is_write || plan.apply_before_failing;
    let body = if run {
        handle_blocking(shared, &request, &device_id, &settings).await
    } else {
        None
    };
    if lost_reply {
        let kind = plan.kind.map(FaultKind::as_str).unwrap_or_default();
        logged.outcome = format!("fault-{kind}");
        if is_write {
            let applied = matches!(&body, Some(Ok(b)) if !matches!(b, ResponseBody::Error { .. }));
            logged.applied = Some(applied);
        }
        if let Some(Err(e)) = &body {
            logged.detail = Some(e.to_string());
        }
        shared.log(connection, logged);
        return match plan.kind {
            Some(FaultKind::Drop) => Action::Silence,
            Some(FaultKind::Garbage) => {
                Action::Garbage(garbage_bytes(&mut *lock(&shared.fault_rng)))
            }
            _ => Action::Close,
        };
    }
    let action = match body {
        Some(Ok(body)) => reply(&mut logged, Some(device_id), body, delay),
        Some(Err(e)) => {
            logged.outcome = "internal-error".into();
            logged.detail = Some(e.to_string());
            let body = ResponseBody::Error {
                message: format!(
                    "SystmOne could not complete the request ({e}). Please try again later."
                ),
                permanent: false,
            };
            reply(&mut logged, Some(device_id), body, delay)
        }
        // `run` is always true when no reply is lost, so there is always a body here.
        None => Action::Close,
    };
    shared.log(connection, logged);
    action
}

/// Device approval. Returns the approved DeviceID to answer with, or `None` if blocked.
/// An empty or unknown DeviceID goes to the (simulated) user, who approves at once
/// (`auto`), after a while (`prompt`), or blocks it (`block`); either way a new 16-hex
/// DeviceID is issued, as SystmOne does.
async fn approve(
    shared: &Arc<Shared>,
    request: &Request,
    settings: &SimSettings,
    logged: &mut Logged,
) -> Result<Option<String>, SimError> {
    let presented = request
        .device_id
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if let Some(id) = presented {
        match lock(&shared.db).device(id)? {
            Some(device) if device.status == DeviceStatus::Approved => {
                return Ok(Some(device.device_id))
            }
            Some(_) => return Ok(None),
            None => logged.detail = Some(format!("unknown DeviceID {id}; asked the user again")),
        }
    }
    let new_id = hex16(&mut rand::thread_rng());
    let status = match settings.approval {
        ApprovalMode::Auto => DeviceStatus::Approved,
        ApprovalMode::Prompt => {
            tokio::time::sleep(Duration::from_millis(settings.prompt_ms)).await;
            logged.slow_ms = Some(settings.prompt_ms);
            DeviceStatus::Approved
        }
        ApprovalMode::Block => DeviceStatus::Blocked,
    };
    lock(&shared.db).put_device(&new_id, &request.device_version, status)?;
    Ok((status == DeviceStatus::Approved).then_some(new_id))
}

async fn handle_blocking(
    shared: &Arc<Shared>,
    request: &Request,
    device_id: &str,
    settings: &SimSettings,
) -> Option<Result<ResponseBody, SimError>> {
    let shared = shared.clone();
    let params = request.params.clone();
    let device_id = device_id.to_owned();
    let device_version = request.device_version.clone();
    let request_uid = request.request_uid.clone();
    let settings = settings.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let ctx = RequestContext {
            device_id: &device_id,
            device_version: &device_version,
            request_uid: &request_uid,
            now: now_local(),
            settings: &settings,
        };
        let mut db = lock(&shared.db);
        rules::handle(&mut db, &ctx, &params)
    })
    .await;
    Some(joined.unwrap_or_else(|e| {
        Err(SimError::Invalid(format!(
            "the request handler failed: {e}"
        )))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultRates;

    fn shared(dir: &tempfile::TempDir) -> (Arc<Shared>, SimSettings) {
        let settings = SimSettings {
            profile: Default::default(),
            approval: ApprovalMode::Auto,
            prompt_ms: 200,
            faults: FaultRates::default(),
            slow_ms: 0,
            logged_in_user: crate::data::DEFAULT_USER.into(),
            api_key: "k".into(),
        };
        let db = SimDb::open(dir.path(), Some((1, &settings))).unwrap();
        let shared = Arc::new(Shared {
            db: Mutex::new(db),
            throttle: Mutex::new(Throttle::default()),
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(1)),
            next_connection: AtomicU64::new(1),
        });
        (shared, settings)
    }

    fn request(device_id: Option<&str>) -> Request {
        Request::new(
            "k",
            device_id.map(str::to_owned),
            "Inpatient Hub test",
            RequestParams::GetFunctions,
        )
    }

    fn logged() -> Logged {
        Logged {
            function: String::new(),
            request_uid: String::new(),
            device_id: String::new(),
            outcome: "answered".into(),
            slow_ms: None,
            applied: None,
            detail: None,
        }
    }

    fn is_device_id(id: &str) -> bool {
        id.len() == 16
            && id
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    }

    #[tokio::test]
    async fn device_approval_follows_the_mode_and_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, mut settings) = shared(&dir);

        let issued = approve(&shared, &request(None), &settings, &mut logged())
            .await
            .unwrap()
            .unwrap();
        assert!(is_device_id(&issued));
        assert_eq!(
            approve(&shared, &request(Some(&issued)), &settings, &mut logged())
                .await
                .unwrap(),
            Some(issued.clone())
        );

        // Unknown IDs go back to the user, who issues a new one.
        let mut log = logged();
        let fresh = approve(
            &shared,
            &request(Some("0000000000000001")),
            &settings,
            &mut log,
        )
        .await
        .unwrap()
        .unwrap();
        assert!(is_device_id(&fresh) && fresh != "0000000000000001" && fresh != issued);
        assert!(log.detail.unwrap().contains("unknown DeviceID"));

        settings.approval = ApprovalMode::Block;
        assert_eq!(
            approve(&shared, &request(Some("")), &settings, &mut logged())
                .await
                .unwrap(),
            None
        );
        let blocked = lock(&shared.db)
            .devices()
            .unwrap()
            .into_iter()
            .find(|d| d.status == DeviceStatus::Blocked)
            .unwrap();
        settings.approval = ApprovalMode::Auto;
        assert_eq!(
            approve(
                &shared,
                &request(Some(&blocked.device_id)),
                &settings,
                &mut logged()
            )
            .await
            .unwrap(),
            None
        );
        assert_eq!(
            approve(&shared, &request(Some(&issued)), &settings, &mut logged())
                .await
                .unwrap(),
            Some(issued)
        );

        settings.approval = ApprovalMode::Prompt;
        let started = Instant::now();
        let mut log = logged();
        assert!(approve(&shared, &request(None), &settings, &mut log)
            .await
            .unwrap()
            .is_some());
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(log.slow_ms, Some(200));
    }

    #[tokio::test]
    async fn throttled_and_unreadable_documents_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, _) = shared(&dir);
        let now = Instant::now();
        assert!(matches!(
            unreadable(&shared, 1, b"<NotARequest/>", "wrong root", now),
            Action::Silence
        ));
        assert!(matches!(
            unreadable(
                &shared,
                1,
                b"<NotARequest/>",
                "wrong root",
                now + Duration::from_millis(10)
            ),
            Action::Silence
        ));
        let log = lock(&shared.db).request_log(10).unwrap();
        assert_eq!(
            log.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(),
            ["unreadable", OUTCOME_DROPPED_THROTTLE]
        );
        assert_eq!(lock(&shared.db).violation_count().unwrap(), 1);
    }
}
