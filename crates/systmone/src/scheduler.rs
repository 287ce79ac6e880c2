//! The one queue in front of the SystmOne socket.
//!
//! Two lanes: `Interactive` (a clinician is waiting) always goes before `Background`
//! (sync). Within a lane, first come first served, except that a non-exempt
//! `GetPatientRecord` waiting for its own 30 s budget steps aside: whatever can be sent
//! now is sent, and the record request keeps its place for when its budget frees up.
//!
//! Two limiters work together:
//! - the persisted reservation ([`Pacer`]) is the authority. It is shared with `hubctl` and
//!   any other process through the database, so it knows about their sends; the worker asks
//!   it for the job's slot, waits while it is not free, and books it only at the moment of
//!   sending. While an *interactive* job waits, the ledger carries that demand, and other
//!   processes' background work yields the slot to it (see `pacing`). A background job
//!   waiting for its slot steps back into its queue when an interactive one arrives here;
//! - `governor`'s direct rate limiters (one for the 1 s budget, one for the 30 s budget) are
//!   the in-process floor on a monotonic clock. After the slot is booked, the worker also
//!   waits for governor. Normally governor is already ready (the booking is stricter: it
//!   adds the margin and counts other processes); it only holds a send back when the wall
//!   clock has been stepped backwards, which would otherwise let the wall-clock booking
//!   bring two of our own sends closer than TPP allows.
//!
//! Requests are sent one at a time: SystmOne answers on the same connection, in order.

use super::pacing::{
    sleep_until_wall_ms, wall_clock_ms, Pacer, PacingConfig, PacingError, Reservation, SendClass,
    Urgency,
};
use chrono::NaiveDate;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

/// Who is waiting for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// A clinician is waiting at the screen.
    Interactive,
    /// Background sync; nobody is watching.
    Background,
}

/// The far side of the queue: the connection owner (or a fake in tests).
pub trait Exchange: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    type Error: Send + 'static + From<PacingError>;

    /// Which budgets the request spends if sent today. Asked at dispatch, not at submission,
    /// because the entered-today exemption depends on the date when it is actually sent.
    fn send_class(request: &Self::Request, today: NaiveDate) -> SendClass;

    /// The SystmOne function name, for the queue display (never patient data).
    fn function_name(request: &Self::Request) -> &'static str;

    /// Sends one request and reads its response. `lane` lets the connection owner treat a
    /// waiting clinician differently (e.g. try to reconnect at once rather than back off).
    fn exchange(
        &mut self,
        lane: Lane,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;

    /// A request that must be sent before `request`, in a slot of its own (the connection
    /// identifies a new peer before anything else goes out to it). None: send `request`.
    fn must_send_first(&mut self, _request: &Self::Request) -> Option<Self::Request> {
        None
    }
}

/// A queued request's number, to find it in a [`QueueSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

/// One request in the queue as the UI sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedItem {
    pub id: JobId,
    pub lane: Lane,
    pub function: &'static str,
    /// A non-exempt `GetPatientRecord` (it also waits for the 30 s budget).
    pub uses_record_budget: bool,
    /// Estimated time until it is sent, from the budgets alone (SystmOne's response time to
    /// the requests ahead comes on top).
    #[serde(rename = "eta_ms", serialize_with = "as_millis")]
    pub eta: Duration,
}

/// The queue at a glance: depth per lane and when things will go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSnapshot {
    pub interactive: usize,
    pub background: usize,
    /// The request being sent or awaiting its response, if any.
    pub in_flight: Option<InFlight>,
    /// Queued requests in the order they are expected to be sent.
    pub items: Vec<QueuedItem>,
    /// Estimated time until the last queued request is sent.
    #[serde(rename = "eta_all_ms", serialize_with = "as_millis")]
    pub eta_all: Duration,
}

impl QueueSnapshot {
    pub fn eta_of(&self, id: JobId) -> Option<Duration> {
        self.items.iter().find(|i| i.id == id).map(|i| i.eta)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub id: JobId,
    pub lane: Lane,
    pub function: &'static str,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the caller holds after submitting: the queue number and the outcome to await.
pub struct Submitted<R, E> {
    pub id: JobId,
    pub outcome: oneshot::Receiver<Result<R, E>>,
}

struct Job<X: Exchange> {
    id: JobId,
    lane: Lane,
    request: X::Request,
    reply: oneshot::Sender<Result<X::Response, X::Error>>,
}

struct QueueState<X: Exchange> {
    interactive: VecDeque<Job<X>>,
    background: VecDeque<Job<X>>,
    next_id: u64,
    in_flight: Option<InFlight>,
    /// A background job taken for sending, still waiting for its slot, that a caller has
    /// since promoted to the interactive lane (see [`Scheduler::promote`]).
    promoted: Option<JobId>,
    /// The job in flight has booked its slot (it is being sent or answered).
    slot_booked: bool,
    /// This process's view of the budgets (for ETAs and to avoid asking the database
    /// about a record request that cannot go yet).
    next_any_at: Instant,
    next_record_at: Instant,
    closed: bool,
}

struct Shared<X: Exchange> {
    state: Mutex<QueueState<X>>,
    wake: Notify,
    config: PacingConfig,
}

impl<X: Exchange> Shared<X> {
    fn lock(&self) -> MutexGuard<'_, QueueState<X>> {
        // Every mutation below is a single push/pop/assignment, so a panic elsewhere
        // cannot leave the queue half-updated.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Stops the worker when the last [`Scheduler`] handle is dropped.
struct Shutdown<X: Exchange>(Arc<Shared<X>>);

impl<X: Exchange> Drop for Shutdown<X> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.wake.notify_one();
    }
}

/// The queue. Cheap to clone; the worker stops when the last clone is dropped.
pub struct Scheduler<X: Exchange> {
    shared: Arc<Shared<X>>,
    _shutdown: Arc<Shutdown<X>>,
}

impl<X: Exchange> Clone for Scheduler<X> {
    fn clone(&self) -> Self {
        Scheduler {
            shared: Arc::clone(&self.shared),
            _shutdown: Arc::clone(&self._shutdown),
        }
    }
}

/// A handle that does not keep the worker running (for helper tasks of the owner).
pub struct WeakScheduler<X: Exchange> {
    shared: std::sync::Weak<Shared<X>>,
    shutdown: std::sync::Weak<Shutdown<X>>,
}

impl<X: Exchange> WeakScheduler<X> {
    pub fn upgrade(&self) -> Option<Scheduler<X>> {
        Some(Scheduler {
            shared: self.shared.upgrade()?,
            _shutdown: self.shutdown.upgrade()?,
        })
    }
}

impl<X: Exchange> Scheduler<X> {
    pub fn downgrade(&self) -> WeakScheduler<X> {
        WeakScheduler {
            shared: Arc::downgrade(&self.shared),
            shutdown: Arc::downgrade(&self._shutdown),
        }
    }

    /// Starts the worker on the current tokio runtime. `pacer` books slots in the shared
    /// budget; its configuration also sets the in-process limiters.
    pub fn start(exchange: X, pacer: Pacer) -> Scheduler<X> {
        let config = pacer.config();
        let now = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState {
                interactive: VecDeque::new(),
                background: VecDeque::new(),
                next_id: 1,
                in_flight: None,
                promoted: None,
                slot_booked: false,
                next_any_at: now,
                next_record_at: now,
                closed: false,
            }),
            wake: Notify::new(),
            config,
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            exchange,
            pacer: Arc::new(Mutex::new(pacer)),
            any_limiter: limiter(config.min_gap),
            record_limiter: limiter(config.record_gap),
        };
        tokio::spawn(worker.run());
        let shutdown = Arc::new(Shutdown(Arc::clone(&shared)));
        Scheduler {
            shared,
            _shutdown: shutdown,
        }
    }

    /// Queues a request. The outcome arrives on the returned receiver; dropping the
    /// receiver before the request is sent withdraws it.
    pub fn submit(&self, lane: Lane, request: X::Request) -> Submitted<X::Response, X::Error> {
        let (reply, outcome) = oneshot::channel();
        let id = {
            let mut state = self.shared.lock();
            let id = JobId(state.next_id);
            state.next_id += 1;
            let job = Job {
                id,
                lane,
                request,
                reply,
            };
            match lane {
                Lane::Interactive => state.interactive.push_back(job),
                Lane::Background => state.background.push_back(job),
            }
            id
        };
        self.shared.wake.notify_one();
        Submitted { id, outcome }
    }

    /// Moves a queued background request to the interactive lane, because a clinician now
    /// waits for its answer too (e.g. the start-up "who is logged in" joined by a lookup). A
    /// request already taken for sending but still waiting for its slot is promoted in
    /// place. Returns false when it is no longer waiting (sent, answered or withdrawn).
    pub fn promote(&self, id: JobId) -> bool {
        let promoted = {
            let mut guard = self.shared.lock();
            let state = &mut *guard;
            if let Some(index) = state.background.iter().position(|job| job.id == id) {
                match state.background.remove(index) {
                    Some(mut job) => {
                        job.lane = Lane::Interactive;
                        let position = state
                            .interactive
                            .iter()
                            .position(|queued| queued.id > job.id)
                            .unwrap_or(state.interactive.len());
                        state.interactive.insert(position, job);
                        true
                    }
                    None => false,
                }
            } else if !state.slot_booked
                && state
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.id == id && f.lane == Lane::Background)
            {
                state.promoted = Some(id);
                true
            } else {
                false
            }
        };
        if promoted {
            self.shared.wake.notify_one();
        }
        promoted
    }

    /// Queue depth per lane and ETAs computed from the budgets.
    pub fn snapshot(&self) -> QueueSnapshot {
        let today = chrono::Local::now().date_naive();
        let now = Instant::now();
        let state = self.shared.lock();
        let pending: Vec<Pending> = state
            .interactive
            .iter()
            .chain(state.background.iter())
            .filter(|job| !job.reply.is_closed())
            .map(|job| Pending {
                id: job.id,
                lane: job.lane,
                function: X::function_name(&job.request),
                class: X::send_class(&job.request, today),
            })
            .collect();
        let budgets = Budgets {
            any_ready: state.next_any_at.saturating_duration_since(now),
            record_ready: state.next_record_at.saturating_duration_since(now),
        };
        let (items, eta_all) = estimate(&pending, budgets, &self.shared.config);
        QueueSnapshot {
            interactive: pending
                .iter()
                .filter(|p| p.lane == Lane::Interactive)
                .count(),
            background: pending
                .iter()
                .filter(|p| p.lane == Lane::Background)
                .count(),
            in_flight: state.in_flight.clone(),
            items,
            eta_all,
        }
    }
}

fn limiter(period: Duration) -> Option<DefaultDirectRateLimiter> {
    // A zero period (tests only) means no in-process floor.
    Quota::with_period(period).map(RateLimiter::direct)
}

/// A queued request as the estimator sees it, in priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub id: JobId,
    pub lane: Lane,
    pub function: &'static str,
    pub class: SendClass,
}

/// When each budget is next free, counted from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    pub any_ready: Duration,
    pub record_ready: Duration,
}

/// Replays the worker's dispatch rule over the queue (given in priority order: interactive
/// first, each lane first come first served) to give each item its expected send time.
/// Returns the items in expected send order and the time until the last one.
pub fn estimate(
    pending: &[Pending],
    budgets: Budgets,
    config: &PacingConfig,
) -> (Vec<QueuedItem>, Duration) {
    let gap = config.effective_min_gap();
    let record_gap = config.effective_record_gap();
    let mut remaining: Vec<Pending> = pending.to_vec();
    let mut out = Vec::with_capacity(pending.len());
    let mut t = budgets.any_ready;
    let mut record_ready = budgets.record_ready;
    while !remaining.is_empty() {
        let eligible = remaining
            .iter()
            .position(|p| p.class == SendClass::General || t >= record_ready);
        match eligible {
            Some(index) => {
                let p = remaining.remove(index);
                if p.class == SendClass::ThrottledRecord {
                    record_ready = t + record_gap;
                }
                out.push(QueuedItem {
                    id: p.id,
                    lane: p.lane,
                    function: p.function,
                    uses_record_budget: p.class == SendClass::ThrottledRecord,
                    eta: t,
                });
                t += gap;
            }
            // Only record requests are left and their budget is not free yet.
            None => t = record_ready,
        }
    }
    let eta_all = out.last().map(|i| i.eta).unwrap_or(Duration::ZERO);
    (out, eta_all)
}

enum Pick<X: Exchange> {
    Send(Job<X>, SendClass),
    /// Nothing can go before this instant (only record requests are waiting).
    WaitUntil(Instant),
    Idle,
    Closed,
}

struct Worker<X: Exchange> {
    shared: Arc<Shared<X>>,
    exchange: X,
    pacer: Arc<Mutex<Pacer>>,
    any_limiter: Option<DefaultDirectRateLimiter>,
    record_limiter: Option<DefaultDirectRateLimiter>,
}

impl<X: Exchange> Worker<X> {
    async fn run(mut self) {
        loop {
            match self.pick() {
                Pick::Closed => return,
                Pick::Idle => self.shared.wake.notified().await,
                Pick::WaitUntil(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.shared.wake.notified() => {}
                    }
                }
                Pick::Send(job, class) => self.dispatch(job, class).await,
            }
        }
    }

    /// Takes the first request (interactive lane first) that the budgets allow now.
    fn pick(&self) -> Pick<X> {
        let today = chrono::Local::now().date_naive();
        let now = Instant::now();
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        if state.closed {
            return Pick::Closed;
        }
        // Requests whose caller has gone away are withdrawn, not sent.
        state.interactive.retain(|job| !job.reply.is_closed());
        state.background.retain(|job| !job.reply.is_closed());
        let record_free = now >= state.next_record_at;
        let mut waiting_for_record = false;
        for lane in [Lane::Interactive, Lane::Background] {
            let queue = match lane {
                Lane::Interactive => &mut state.interactive,
                Lane::Background => &mut state.background,
            };
            let mut chosen = None;
            for (index, job) in queue.iter().enumerate() {
                let class = X::send_class(&job.request, today);
                if class == SendClass::General || record_free {
                    chosen = Some((index, class));
                    break;
                }
                waiting_for_record = true;
            }
            if let Some((index, class)) = chosen {
                if let Some(job) = queue.remove(index) {
                    state.promoted = None;
                    state.slot_booked = false;
                    state.in_flight = Some(InFlight {
                        id: job.id,
                        lane: job.lane,
                        function: X::function_name(&job.request),
                    });
                    return Pick::Send(job, class);
                }
            }
        }
        if waiting_for_record {
            Pick::WaitUntil(state.next_record_at)
        } else {
            Pick::Idle
        }
    }

    /// Puts a job back where it was (it was the first eligible, so nothing eligible was
    /// ahead of it).
    fn requeue_front(&self, job: Job<X>) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        state.in_flight = None;
        let queue = match job.lane {
            Lane::Interactive => &mut state.interactive,
            Lane::Background => &mut state.background,
        };
        // Keep first-come order among the lane's record requests skipped over before it.
        let position = queue
            .iter()
            .position(|queued| queued.id > job.id)
            .unwrap_or(queue.len());
        queue.insert(position, job);
    }

    /// Whether an interactive request is queued in this process.
    fn interactive_waiting(&self) -> bool {
        self.shared
            .lock()
            .interactive
            .iter()
            .any(|job| !job.reply.is_closed())
    }

    /// Waits for the job's slot, books it at the moment of sending, and sends. Nothing is
    /// booked ahead: while the slot is not free, the job only waits (and, when interactive,
    /// declares a clinician is waiting), so a job withdrawn meanwhile, or a process that
    /// exits, leaves no booking behind.
    async fn dispatch(&mut self, mut job: Job<X>, class: SendClass) {
        // What must go first spends a general slot of its own; the job goes back to the
        // front of its lane and books its own slot next.
        let first = self.exchange.must_send_first(&job.request);
        let class = if first.is_some() {
            SendClass::General
        } else {
            class
        };
        let mut urgency = match job.lane {
            Lane::Interactive => Urgency::Interactive,
            Lane::Background => Urgency::Background,
        };
        let at_ms = loop {
            if job.reply.is_closed() {
                // Withdrawn while waiting for its slot: never send what nobody awaits (an
                // update nobody will reconcile), and tell other processes at once that no
                // clinician is waiting here any more.
                self.shared.lock().in_flight = None;
                if urgency == Urgency::Interactive {
                    if let Err(e) = withdraw(Arc::clone(&self.pacer)).await {
                        tracing::debug!(error = %e, "could not withdraw interactive demand");
                    }
                }
                return;
            }
            let booking = match book(Arc::clone(&self.pacer), class, urgency).await {
                Ok(booking) => booking,
                Err(e) => {
                    self.shared.lock().in_flight = None;
                    let _ = job.reply.send(Err(X::Error::from(e)));
                    return;
                }
            };
            match booking {
                Reservation::Granted { at_ms } => break at_ms,
                Reservation::RecordBudgetBusy { until_ms } => {
                    // Another process used the record budget: let other requests go meanwhile.
                    self.shared.lock().next_record_at = instant_at(until_ms);
                    self.requeue_front(job);
                    return;
                }
                Reservation::Wait { until_ms } => {
                    self.shared.lock().next_any_at = instant_at(until_ms);
                    tokio::select! {
                        slept = sleep_until_wall_ms(until_ms) => {
                            if let Err(e) = slept {
                                self.shared.lock().in_flight = None;
                                let _ = job.reply.send(Err(X::Error::from(e)));
                                return;
                            }
                        }
                        // Re-checked at the top of the loop.
                        _ = job.reply.closed() => {}
                        // A clinician's request arrived in this process while background
                        // work waited for its slot: it goes first.
                        _ = self.shared.wake.notified(), if urgency == Urgency::Background => {
                            let promoted = {
                                let mut state = self.shared.lock();
                                let mine = state.promoted == Some(job.id);
                                if mine {
                                    state.promoted = None;
                                    if let Some(f) = state.in_flight.as_mut() {
                                        f.lane = Lane::Interactive;
                                    }
                                }
                                mine
                            };
                            if promoted {
                                job.lane = Lane::Interactive;
                                urgency = Urgency::Interactive;
                            } else if self.interactive_waiting() {
                                self.requeue_front(job);
                                // The wake-up was consumed here; pass it on to `run`.
                                self.shared.wake.notify_one();
                                return;
                            }
                        }
                    }
                }
            }
        };
        {
            let send_at = instant_at(at_ms);
            let mut state = self.shared.lock();
            state.slot_booked = true;
            state.promoted = None;
            state.next_any_at = send_at + self.shared.config.effective_min_gap();
            if class == SendClass::ThrottledRecord {
                state.next_record_at = send_at + self.shared.config.effective_record_gap();
            }
        }
        // The in-process monotonic floor; ready at once unless the wall clock was stepped
        // back since our last send.
        if let Some(limiter) = &self.any_limiter {
            limiter.until_ready().await;
        }
        if class == SendClass::ThrottledRecord {
            if let Some(limiter) = &self.record_limiter {
                limiter.until_ready().await;
            }
        }
        if job.reply.is_closed() {
            // Withdrawn in the instant between booking and sending: still never send what
            // nobody awaits. The booking is "now", so it holds others back one gap at most.
            self.shared.lock().in_flight = None;
            return;
        }
        if let Some(first) = first {
            match self.exchange.exchange(job.lane, first).await {
                Ok(_) => self.requeue_front(job),
                Err(e) => {
                    // The job was not sent: it gets the reason (e.g. the wrong peer).
                    self.shared.lock().in_flight = None;
                    let _ = job.reply.send(Err(e));
                }
            }
            return;
        }
        let outcome = self.exchange.exchange(job.lane, job.request).await;
        self.shared.lock().in_flight = None;
        let _ = job.reply.send(outcome);
    }
}

/// Asks the shared budget for a slot (booking it only if it is free now). SQLite may wait
/// for another process's write lock, so this runs off the async threads.
async fn book(
    pacer: Arc<Mutex<Pacer>>,
    class: SendClass,
    urgency: Urgency,
) -> Result<Reservation, PacingError> {
    blocking(pacer, move |pacer| {
        pacer.try_reserve(class, urgency, wall_clock_ms()?)
    })
    .await
}

async fn withdraw(pacer: Arc<Mutex<Pacer>>) -> Result<(), PacingError> {
    blocking(pacer, |pacer| pacer.withdraw_demand(wall_clock_ms()?)).await
}

async fn blocking<T: Send + 'static>(
    pacer: Arc<Mutex<Pacer>>,
    f: impl FnOnce(&mut Pacer) -> Result<T, PacingError> + Send + 'static,
) -> Result<T, PacingError> {
    let task = tokio::task::spawn_blocking(move || {
        let mut pacer = pacer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut pacer)
    });
    match task.await {
        Ok(result) => result,
        // The blocking task panicked: report it as a store fault rather than hang.
        Err(join) => Err(PacingError::Interrupted(join.to_string())),
    }
}

/// The monotonic instant matching a wall-clock ms (for this process's ETAs).
fn instant_at(at_ms: i64) -> Instant {
    let wait = Duration::from_millis(u64::try_from(at_ms - wall_now_or(at_ms)).unwrap_or(0));
    Instant::now() + wait
}

fn wall_now_or(fallback: i64) -> i64 {
    wall_clock_ms().unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Store;

    fn config(min_ms: u64, record_ms: u64) -> PacingConfig {
        PacingConfig {
            min_gap: Duration::from_millis(min_ms),
            record_gap: Duration::from_millis(record_ms),
            margin: Duration::from_millis(10),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum FakeRequest {
        Read(u32),
        Record(u32),
    }

    #[derive(Debug, PartialEq, Eq)]
    enum FakeError {
        Pacing,
    }

    impl From<PacingError> for FakeError {
        fn from(_: PacingError) -> Self {
            FakeError::Pacing
        }
    }

    /// Records each request with the instant it was "sent".
    struct FakeExchange {
        log: Arc<Mutex<Vec<(FakeRequest, std::time::Instant)>>>,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    }

    impl Exchange for FakeExchange {
        type Request = FakeRequest;
        type Response = FakeRequest;
        type Error = FakeError;

        fn send_class(request: &FakeRequest, _today: NaiveDate) -> SendClass {
            match request {
                FakeRequest::Read(_) => SendClass::General,
                FakeRequest::Record(_) => SendClass::ThrottledRecord,
            }
        }

        fn function_name(request: &FakeRequest) -> &'static str {
            match request {
                FakeRequest::Read(_) => "GetCurrentActivity",
                FakeRequest::Record(_) => "GetPatientRecord",
            }
        }

        fn exchange(
            &mut self,
            _lane: Lane,
            request: FakeRequest,
        ) -> impl Future<Output = Result<FakeRequest, FakeError>> + Send {
            let log = Arc::clone(&self.log);
            let gate = self.gate.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push((request, std::time::Instant::now()));
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                Ok(request)
            }
        }
    }

    type Log = Arc<Mutex<Vec<(FakeRequest, std::time::Instant)>>>;

    fn start(
        config: PacingConfig,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    ) -> (Scheduler<FakeExchange>, Log) {
        let log: Log = Arc::default();
        let pacer = Pacer::new(Store::open_in_memory().unwrap(), config);
        (
            Scheduler::start(
                FakeExchange {
                    log: Arc::clone(&log),
                    gate,
                },
                pacer,
            ),
            log,
        )
    }

    #[tokio::test]
    async fn interactive_requests_go_before_background_ones() {
        // Hold the first request "in flight" so the rest queue up behind it.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (scheduler, log) = start(config(30, 200), Some(Arc::clone(&gate)));
        let first = scheduler.submit(Lane::Background, FakeRequest::Read(0));
        while log.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let b1 = scheduler.submit(Lane::Background, FakeRequest::Read(1));
        let b2 = scheduler.submit(Lane::Background, FakeRequest::Read(2));
        let i1 = scheduler.submit(Lane::Interactive, FakeRequest::Read(3));
        let i2 = scheduler.submit(Lane::Interactive, FakeRequest::Read(4));
        let snapshot = scheduler.snapshot();
        assert_eq!((snapshot.interactive, snapshot.background), (2, 2));
        assert_eq!(snapshot.in_flight.as_ref().map(|f| f.id), Some(first.id));
        let order: Vec<JobId> = snapshot.items.iter().map(|i| i.id).collect();
        assert_eq!(order, vec![i1.id, i2.id, b1.id, b2.id]);
        gate.add_permits(10);
        for s in [first, b1, b2, i1, i2] {
            s.outcome.await.unwrap().unwrap();
        }
        let sent: Vec<FakeRequest> = log.lock().unwrap().iter().map(|(r, _)| *r).collect();
        use FakeRequest::Read;
        assert_eq!(sent, vec![Read(0), Read(3), Read(4), Read(1), Read(2)]);
    }

    /// Nothing is booked ahead: a background request waiting for its slot has not taken
    /// it, so a clinician's request queued meanwhile still goes first.
    #[tokio::test]
    async fn an_interactive_request_overtakes_background_work_waiting_for_its_slot() {
        let (scheduler, log) = start(config(400, 2_000), None);
        scheduler
            .submit(Lane::Background, FakeRequest::Read(0))
            .outcome
            .await
            .unwrap()
            .unwrap();
        let background = scheduler.submit(Lane::Background, FakeRequest::Read(1));
        // Let the worker take it and start waiting for the slot.
        while scheduler.snapshot().in_flight.is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let interactive = scheduler.submit(Lane::Interactive, FakeRequest::Read(2));
        interactive.outcome.await.unwrap().unwrap();
        background.outcome.await.unwrap().unwrap();
        let sent: Vec<FakeRequest> = log.lock().unwrap().iter().map(|(r, _)| *r).collect();
        use FakeRequest::Read;
        assert_eq!(sent, vec![Read(0), Read(2), Read(1)]);
    }

    #[tokio::test]
    async fn a_promoted_request_joins_the_interactive_lane() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (scheduler, log) = start(config(20, 100), Some(Arc::clone(&gate)));
        let first = scheduler.submit(Lane::Background, FakeRequest::Read(0));
        while log.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let b1 = scheduler.submit(Lane::Background, FakeRequest::Read(1));
        let b2 = scheduler.submit(Lane::Background, FakeRequest::Read(2));
        assert!(scheduler.promote(b2.id));
        assert!(!scheduler.promote(first.id), "already sent");
        let snapshot = scheduler.snapshot();
        assert_eq!((snapshot.interactive, snapshot.background), (1, 1));
        gate.add_permits(10);
        for s in [first, b1, b2] {
            s.outcome.await.unwrap().unwrap();
        }
        let sent: Vec<FakeRequest> = log.lock().unwrap().iter().map(|(r, _)| *r).collect();
        use FakeRequest::Read;
        assert_eq!(sent, vec![Read(0), Read(2), Read(1)]);
    }

    #[tokio::test]
    async fn a_record_request_waiting_for_its_budget_does_not_block_others() {
        let (scheduler, log) = start(config(40, 600), None);
        let r1 = scheduler.submit(Lane::Interactive, FakeRequest::Record(1));
        let r2 = scheduler.submit(Lane::Interactive, FakeRequest::Record(2));
        let reads: Vec<_> = (10..14)
            .map(|n| scheduler.submit(Lane::Background, FakeRequest::Read(n)))
            .collect();
        r1.outcome.await.unwrap().unwrap();
        for read in reads {
            read.outcome.await.unwrap().unwrap();
        }
        // All four background reads went while the interactive record request waited.
        assert!(log
            .lock()
            .unwrap()
            .iter()
            .all(|(r, _)| *r != FakeRequest::Record(2)));
        r2.outcome.await.unwrap().unwrap();
        let log = log.lock().unwrap().clone();
        let sent: Vec<FakeRequest> = log.iter().map(|(r, _)| *r).collect();
        use FakeRequest::{Read, Record};
        assert_eq!(
            sent,
            vec![Record(1), Read(10), Read(11), Read(12), Read(13), Record(2)]
        );
        for pair in log.windows(2) {
            assert!(
                pair[1].1 - pair[0].1 >= Duration::from_millis(40),
                "{log:?}"
            );
        }
        assert!(log[5].1 - log[0].1 >= Duration::from_millis(600));
    }

    #[tokio::test]
    async fn a_withdrawn_request_is_never_sent() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (scheduler, log) = start(config(20, 100), Some(Arc::clone(&gate)));
        let first = scheduler.submit(Lane::Interactive, FakeRequest::Read(1));
        let withdrawn = scheduler.submit(Lane::Interactive, FakeRequest::Read(2));
        let kept = scheduler.submit(Lane::Interactive, FakeRequest::Read(3));
        drop(withdrawn);
        assert_eq!(
            scheduler.snapshot().items.len()
                + usize::from(scheduler.snapshot().in_flight.is_some()),
            2
        );
        gate.add_permits(10);
        first.outcome.await.unwrap().unwrap();
        kept.outcome.await.unwrap().unwrap();
        let sent: Vec<FakeRequest> = log.lock().unwrap().iter().map(|(r, _)| *r).collect();
        assert_eq!(sent, vec![FakeRequest::Read(1), FakeRequest::Read(3)]);
    }

    #[tokio::test]
    async fn dropping_the_scheduler_fails_pending_requests_instead_of_hanging() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (scheduler, _log) = start(config(20, 100), Some(Arc::clone(&gate)));
        let _first = scheduler.submit(Lane::Interactive, FakeRequest::Read(1));
        let pending = scheduler.submit(Lane::Interactive, FakeRequest::Read(2));
        drop(scheduler);
        gate.add_permits(10);
        let outcome = tokio::time::timeout(Duration::from_secs(2), pending.outcome)
            .await
            .unwrap();
        assert!(outcome.is_err(), "the reply channel closes");
    }

    fn pending(id: u64, lane: Lane, class: SendClass) -> Pending {
        Pending {
            id: JobId(id),
            lane,
            function: "f",
            class,
        }
    }

    #[test]
    fn eta_is_one_gap_per_request_ahead() {
        let c = PacingConfig::default();
        let queue = [
            pending(1, Lane::Interactive, SendClass::General),
            pending(2, Lane::Interactive, SendClass::General),
            pending(3, Lane::Background, SendClass::General),
        ];
        let budgets = Budgets {
            any_ready: Duration::from_millis(300),
            record_ready: Duration::ZERO,
        };
        let (items, all) = estimate(&queue, budgets, &c);
        let etas: Vec<u128> = items.iter().map(|i| i.eta.as_millis()).collect();
        assert_eq!(etas, vec![300, 1_350, 2_400]);
        assert_eq!(all.as_millis(), 2_400);
    }

    #[test]
    fn eta_lets_others_pass_a_record_request_waiting_for_its_budget() {
        let c = PacingConfig::default();
        let queue = [
            pending(1, Lane::Interactive, SendClass::ThrottledRecord),
            pending(2, Lane::Interactive, SendClass::ThrottledRecord),
            pending(3, Lane::Background, SendClass::General),
        ];
        let budgets = Budgets {
            any_ready: Duration::ZERO,
            record_ready: Duration::ZERO,
        };
        let (items, all) = estimate(&queue, budgets, &c);
        let order: Vec<(u64, u128)> = items.iter().map(|i| (i.id.0, i.eta.as_millis())).collect();
        // 1 goes now; 3 passes 2, which waits for the 30 s budget.
        assert_eq!(order, vec![(1, 0), (3, 1_050), (2, 30_050)]);
        assert_eq!(all.as_millis(), 30_050);
        assert!(items[2].uses_record_budget);
    }

    #[test]
    fn eta_of_an_empty_queue_is_zero() {
        let budgets = Budgets {
            any_ready: Duration::from_secs(1),
            record_ready: Duration::from_secs(9),
        };
        let (items, all) = estimate(&[], budgets, &PacingConfig::default());
        assert!(items.is_empty());
        assert_eq!(all, Duration::ZERO);
    }

    proptest::proptest! {
        /// Whatever the queue, the estimate keeps both budgets, sends everything once, and
        /// never reorders requests of the same kind (priority order holds among them).
        #[test]
        fn estimates_keep_the_budgets_and_priority_order(
            kinds in proptest::collection::vec((proptest::bool::ANY, proptest::bool::ANY), 0..30),
            any_ready_ms in 0u64..2_000,
            record_ready_ms in 0u64..40_000,
        ) {
            let c = PacingConfig::default();
            let mut queue: Vec<Pending> = kinds
                .iter()
                .enumerate()
                .map(|(i, (interactive, record))| pending(
                    i as u64,
                    if *interactive { Lane::Interactive } else { Lane::Background },
                    if *record { SendClass::ThrottledRecord } else { SendClass::General },
                ))
                .collect();
            // Priority order, as the queue holds them.
            queue.sort_by_key(|p| (p.lane == Lane::Background, p.id));
            let budgets = Budgets {
                any_ready: Duration::from_millis(any_ready_ms),
                record_ready: Duration::from_millis(record_ready_ms),
            };
            let (items, all) = estimate(&queue, budgets, &c);
            proptest::prop_assert_eq!(items.len(), queue.len());
            for pair in items.windows(2) {
                proptest::prop_assert!(pair[1].eta >= pair[0].eta + c.effective_min_gap());
            }
            let records: Vec<&QueuedItem> = items.iter().filter(|i| i.uses_record_budget).collect();
            if let Some(first) = records.first() {
                proptest::prop_assert!(first.eta >= budgets.record_ready);
            }
            for pair in records.windows(2) {
                proptest::prop_assert!(pair[1].eta >= pair[0].eta + c.effective_record_gap());
            }
            for record in [false, true] {
                let expected: Vec<JobId> =
                    queue.iter().filter(|p| (p.class == SendClass::ThrottledRecord) == record).map(|p| p.id).collect();
                let got: Vec<JobId> = items.iter().filter(|i| i.uses_record_budget == record).map(|i| i.id).collect();
                proptest::prop_assert_eq!(expected, got);
            }
            proptest::prop_assert_eq!(all, items.last().map(|i| i.eta).unwrap_or_default());
        }
    }

    #[test]
    fn snapshot_serializes_for_the_ui() {
        let (items, eta_all) = estimate(
            &[pending(7, Lane::Background, SendClass::General)],
            Budgets {
                any_ready: Duration::from_millis(5),
                record_ready: Duration::ZERO,
            },
            &PacingConfig::default(),
        );
        let snapshot = QueueSnapshot {
            interactive: 0,
            background: 1,
            in_flight: None,
            items,
            eta_all,
        };
        let json = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(json["items"][0]["eta_ms"], 5);
        assert_eq!(json["items"][0]["lane"], "background");
        assert_eq!(json["eta_all_ms"], 5);
    }
}
