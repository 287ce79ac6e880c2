//! Pacing shared by every process on this PC that talks to SystmOne.
//!
//! TPP's limits (one request per second; `GetPatientRecord` once per 30 s unless exempt)
//! apply to the SystmOne client, so the app, `hubctl` and restarts of either share one
//! budget. A throttled request is silently dropped, which looks exactly like a slow client
//! and leaves an update's outcome unknown, so overshooting the budget is never acceptable.
//!
//! The budget lives in the store's `pacing` table. A sender books its send inside an
//! `IMMEDIATE` transaction (the database write lock serialises reservations across
//! processes), and only **at the moment of sending**: when `max(last + gap)` has come, it
//! writes "sent now" and sends at once; before that it books nothing and is told when to ask
//! again. A booking is therefore never in the future, so a process that books and then exits
//! (or finds its caller gone) holds nobody back for more than the one gap its booking would
//! have cost anyway; nothing needs releasing.
//!
//! **A clinician first, across processes.** Each process's queue already sends its own
//! interactive requests before its background ones, but the ledger alone is
//! first-come: a `hubctl lookup` would take turns with another process draining a backlog.
//! So a process whose next request is interactive, and must wait for the slot, *declares*
//! that in `pacing_demand` ("a clinician is waiting on me until T"). Any other process's
//! background reservation that finds a live declaration yields the free slot and asks again
//! shortly; the declaring process books the slot as soon as it comes, which withdraws its
//! declaration in the same transaction. The declaration expires (one slot after the one it
//! waits for, refreshed on every attempt), so a process that crashed while waiting holds
//! the others back by about two seconds at most. Interactive requests of two processes are
//! first-come between themselves; background work is never starved for longer than the
//! clinicians' own requests take.
//!
//! Times are wall-clock milliseconds since the Unix epoch, because that is the only clock
//! the processes share. The in-process `governor` limiters in the scheduler add a monotonic
//! floor so a wall-clock step backwards cannot bring two of our own sends closer together.

use domain::ports::{
    DemandWrite, LedgerDecision, LedgerState, LedgerWrite, PacingLedger, PortError,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A reservation further in the future than this cannot have been made by a live sender
/// (each process holds at most one reservation at a time, a few gaps ahead at most): it is
/// the trace of a wall clock that has since been set back. Honouring it would stall all
/// SystmOne traffic for as long as the clock moved, so it is treated as "sent just now".
const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The gaps TPP enforces, plus our safety margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingConfig {
    /// Minimum gap between any two requests (TPP: 1 s).
    pub min_gap: Duration,
    /// Minimum gap between two non-exempt `GetPatientRecord` requests (TPP: 30 s).
    pub record_gap: Duration,
    /// Added to both gaps. The SystmOne client measures arrivals, not our send times: our
    /// sleep can end early by up to the OS timer granularity (~15.6 ms on Windows), the
    /// wall clock we reserve by has millisecond granularity, and the loopback write plus
    /// the client's own scheduling shift the arrival. 50 ms covers all of these with room
    /// to spare while costing under 5% of the 1 s budget.
    pub margin: Duration,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            min_gap: Duration::from_secs(1),
            record_gap: Duration::from_secs(30),
            margin: Duration::from_millis(50),
        }
    }
}

impl PacingConfig {
    /// The spacing actually enforced between any two requests.
    pub fn effective_min_gap(&self) -> Duration {
        self.min_gap + self.margin
    }

    /// The spacing actually enforced between two non-exempt `GetPatientRecord` requests.
    pub fn effective_record_gap(&self) -> Duration {
        self.record_gap + self.margin
    }
}

/// Which budgets a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendClass {
    /// Any request except a non-exempt `GetPatientRecord`: only the 1 s budget.
    General,
    /// A `GetPatientRecord` that is not demographics-only nor entered-today: both budgets.
    ThrottledRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    #[error("could not reserve a SystmOne send slot in the local database: {0}")]
    Ledger(#[from] PortError),
    #[error("the system clock is before 1970; check the PC's date and time")]
    Clock,
    #[error("the SystmOne send-slot reservation stopped unexpectedly: {0}")]
    Interrupted(String),
}

/// Whether a clinician is waiting for the request (decides who yields across processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Urgency {
    Interactive,
    Background,
}

/// The result of asking for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Booked at `at_ms`, which is the moment of asking: send at once.
    Granted { at_ms: i64 },
    /// The 1 s slot is not free yet, or a clinician in another process is about to take it.
    /// Nothing was booked; ask again at `until_ms`.
    Wait { until_ms: i64 },
    /// Only the patient-record budget stood in the way; nothing was recorded. The record
    /// budget is free again at `until_ms`. Other requests can go first meanwhile.
    RecordBudgetBusy { until_ms: i64 },
}

/// What the shared table says right now (for ETAs; reading takes no lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingView {
    /// Earliest wall-clock ms at which any request may be sent.
    pub next_any_ms: i64,
    /// Earliest wall-clock ms at which a non-exempt `GetPatientRecord` may be sent.
    pub next_record_ms: i64,
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> Result<i64, PacingError> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PacingError::Clock)?;
    i64::try_from(since.as_millis()).map_err(|_| PacingError::Clock)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How long a background sender that yielded to another process's clinician waits before
/// asking again, as a fraction of the gap: the clinician's process books within
/// milliseconds of the slot, so the next question finds the new booking; asking more often
/// would only add database transactions.
const YIELD_POLL_DIVISOR: u32 = 4;

/// Names this process's declarations in the shared ledger: unique per [`Pacer`] on the PC
/// (process id, start instant and a counter), so two pacers never mistake each other's
/// demand for their own.
fn new_owner() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// Reserves send slots in the ledger every Inpatient Hub process on the PC shares.
///
/// It owns its ledger because a reservation must never queue behind the window's own
/// database connection (a long UI write would then delay a clinician's SystmOne request):
/// the caller opens a second store connection on the same database file for it. An
/// in-memory store gives a process-local budget for tests.
pub struct Pacer {
    ledger: Box<dyn PacingLedger>,
    config: PacingConfig,
    owner: String,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("config", &self.config)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    pub fn new(ledger: impl PacingLedger + 'static, config: PacingConfig) -> Pacer {
        Pacer {
            ledger: Box::new(ledger),
            config,
            owner: new_owner(),
        }
    }

    pub fn config(&self) -> PacingConfig {
        self.config
    }

    /// Asks for a slot for a request of `class` now, and books it only if it can be sent
    /// at once (see [`decide`]). A `ThrottledRecord` whose own 30 s budget frees later than
    /// the general slot is refused without booking (holding the shared 1 s budget for up to
    /// 30 s would stall every other request on the PC). Decided under the ledger's lock, so
    /// the answer covers other processes' sends and waiting clinicians too.
    pub fn try_reserve(
        &mut self,
        class: SendClass,
        urgency: Urgency,
        now_ms: i64,
    ) -> Result<Reservation, PacingError> {
        let config = self.config;
        let mut outcome = None;
        self.ledger
            .reserve(&self.owner, now_ms, &mut |state: LedgerState| {
                let (reservation, decision) = decide(&config, class, urgency, now_ms, state);
                outcome = Some(reservation);
                decision
            })?;
        outcome.ok_or_else(|| {
            PacingError::Interrupted("the ledger committed without deciding".to_owned())
        })
    }

    /// Withdraws this process's "a clinician is waiting" declaration (its request was
    /// withdrawn, or it is shutting down): other processes need not wait for its expiry.
    pub fn withdraw_demand(&mut self, now_ms: i64) -> Result<(), PacingError> {
        self.ledger
            .reserve(&self.owner, now_ms, &mut |_| LedgerDecision {
                write: LedgerWrite::Nothing,
                demand: DemandWrite::Withdraw,
            })?;
        Ok(())
    }

    /// The shared budgets as they stand (no lock taken; another process may book a slot
    /// a moment later, so this is for display and ETAs only).
    pub fn view(&mut self, now_ms: i64) -> Result<PacingView, PacingError> {
        let budgets = self.ledger.budgets()?;
        Ok(compute_view(
            &self.config,
            now_ms,
            budgets.last_any_ms,
            budgets.last_record_ms,
        ))
    }

    /// Waits for a slot, books it and returns it (for synchronous callers and tests): the
    /// caller sends at once.
    pub fn pace_blocking(
        &mut self,
        class: SendClass,
        urgency: Urgency,
    ) -> Result<i64, PacingError> {
        loop {
            match self.try_reserve(class, urgency, wall_clock_ms()?)? {
                Reservation::Granted { at_ms } => return Ok(at_ms),
                Reservation::Wait { until_ms } | Reservation::RecordBudgetBusy { until_ms } => {
                    sleep_until_wall_ms_blocking(until_ms)?
                }
            }
        }
    }
}

/// The reservation rule, pure: what to answer and what to write, given the ledger.
///
/// - A non-exempt record request whose own budget frees after the general slot: refused,
///   nothing written, and no demand declared (other processes' requests may use the 1 s
///   slots meanwhile, since this one could not).
/// - The general slot not yet free: wait for it. An interactive request declares demand
///   until one gap after its slot, so others' background work yields that slot to it.
/// - The slot free, but another process has a clinician waiting and this is background
///   work: yield; ask again a fraction of a gap later.
/// - Otherwise: book now and send; the booking withdraws this process's declaration.
pub fn decide(
    config: &PacingConfig,
    class: SendClass,
    urgency: Urgency,
    now_ms: i64,
    state: LedgerState,
) -> (Reservation, LedgerDecision) {
    let view = compute_view(
        config,
        now_ms,
        state.budgets.last_any_ms,
        state.budgets.last_record_ms,
    );
    let nothing = |demand| LedgerDecision {
        write: LedgerWrite::Nothing,
        demand,
    };
    if class == SendClass::ThrottledRecord && view.next_record_ms > view.next_any_ms {
        return (
            Reservation::RecordBudgetBusy {
                until_ms: view.next_record_ms,
            },
            nothing(DemandWrite::Withdraw),
        );
    }
    if view.next_any_ms > now_ms {
        let demand = match urgency {
            Urgency::Interactive => DemandWrite::Declare {
                until_ms: view
                    .next_any_ms
                    .saturating_add(ms(config.effective_min_gap())),
            },
            Urgency::Background => DemandWrite::Withdraw,
        };
        return (
            Reservation::Wait {
                until_ms: view.next_any_ms,
            },
            nothing(demand),
        );
    }
    if urgency == Urgency::Background {
        if let Some(until) = state
            .others_interactive_until_ms
            .filter(|until| *until > now_ms)
        {
            let poll = ms(config.effective_min_gap() / YIELD_POLL_DIVISOR).max(1);
            return (
                Reservation::Wait {
                    until_ms: until.min(now_ms.saturating_add(poll)),
                },
                nothing(DemandWrite::Withdraw),
            );
        }
    }
    (
        Reservation::Granted { at_ms: now_ms },
        LedgerDecision {
            write: LedgerWrite::Book {
                at_ms: now_ms,
                record_budget: class == SendClass::ThrottledRecord,
            },
            demand: DemandWrite::Withdraw,
        },
    )
}

/// Sleeps the current thread until the wall clock reaches `at_ms`. Re-checks after waking,
/// because a sleep may end early by the timer's granularity.
pub fn sleep_until_wall_ms_blocking(at_ms: i64) -> Result<(), PacingError> {
    loop {
        let now = wall_clock_ms()?;
        if now >= at_ms {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(
            u64::try_from(at_ms - now).unwrap_or(0),
        ));
    }
}

/// Async twin of [`sleep_until_wall_ms_blocking`].
pub async fn sleep_until_wall_ms(at_ms: i64) -> Result<(), PacingError> {
    loop {
        let now = wall_clock_ms()?;
        if now >= at_ms {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(at_ms - now).unwrap_or(0),
        ))
        .await;
    }
}

/// The pure arithmetic of the budgets: the next allowed slot is `max(now, last + gap)`.
pub fn compute_view(
    config: &PacingConfig,
    now_ms: i64,
    last_any: Option<i64>,
    last_record: Option<i64>,
) -> PacingView {
    let next = |last: Option<i64>, gap: Duration| -> i64 {
        match last {
            Some(last) if last <= now_ms.saturating_add(ms(CLOCK_STEP_TOLERANCE)) => {
                now_ms.max(last.saturating_add(ms(gap)))
            }
            // Never sent, or a reservation left by a clock that has since been set back.
            Some(_) => now_ms.saturating_add(ms(gap)),
            None => now_ms,
        }
    };
    PacingView {
        next_any_ms: next(last_any, config.effective_min_gap()),
        next_record_ms: next(last_record, config.effective_record_gap()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use store::Store;

    fn quick() -> PacingConfig {
        PacingConfig {
            min_gap: Duration::from_millis(200),
            record_gap: Duration::from_millis(900),
            margin: Duration::from_millis(20),
        }
    }

    #[test]
    fn defaults_are_tpps_limits_plus_a_margin() {
        let c = PacingConfig::default();
        assert_eq!(c.min_gap, Duration::from_secs(1));
        assert_eq!(c.record_gap, Duration::from_secs(30));
        assert!(c.margin > Duration::ZERO && c.margin < Duration::from_millis(200));
    }

    #[test]
    fn slot_is_max_of_now_and_last_plus_gap() {
        let c = PacingConfig::default();
        let v = compute_view(&c, 10_000, None, None);
        assert_eq!(
            v,
            PacingView {
                next_any_ms: 10_000,
                next_record_ms: 10_000
            }
        );
        let v = compute_view(&c, 10_000, Some(9_500), Some(1_000));
        assert_eq!(v.next_any_ms, 9_500 + 1_050);
        assert_eq!(v.next_record_ms, 1_000 + 30_050);
        let v = compute_view(&c, 100_000, Some(9_500), Some(1_000));
        assert_eq!(
            v,
            PacingView {
                next_any_ms: 100_000,
                next_record_ms: 100_000
            }
        );
    }

    #[test]
    fn a_reservation_from_a_clock_set_back_does_not_stall_traffic() {
        let c = PacingConfig::default();
        let hour_ahead = 10_000 + 3_600_000;
        let v = compute_view(&c, 10_000, Some(hour_ahead), Some(hour_ahead));
        assert_eq!(v.next_any_ms, 11_050);
        assert_eq!(v.next_record_ms, 40_050);
    }

    use Urgency::{Background, Interactive};

    fn granted(at_ms: i64) -> Reservation {
        Reservation::Granted { at_ms }
    }

    fn wait(until_ms: i64) -> Reservation {
        Reservation::Wait { until_ms }
    }

    /// Two pacers (two processes) on one database file.
    fn two_pacers() -> (tempfile::TempDir, Pacer, Pacer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let a = Pacer::new(
            Store::open(
                &path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
            PacingConfig::default(),
        );
        let b = Pacer::new(
            Store::open(
                &path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
            PacingConfig::default(),
        );
        (dir, a, b)
    }

    #[test]
    fn a_slot_is_booked_only_at_the_moment_of_sending() {
        let mut pacer = Pacer::new(Store::open_in_memory().unwrap(), PacingConfig::default());
        let now = 1_000_000;
        assert_eq!(
            pacer
                .try_reserve(SendClass::General, Background, now)
                .unwrap(),
            granted(now)
        );
        // Not free yet: told when, and nothing booked (the view is unchanged).
        assert_eq!(
            pacer
                .try_reserve(SendClass::General, Background, now + 10)
                .unwrap(),
            wait(now + 1_050)
        );
        assert_eq!(pacer.view(now + 10).unwrap().next_any_ms, now + 1_050);
        assert_eq!(
            pacer
                .try_reserve(SendClass::General, Interactive, now + 1_050)
                .unwrap(),
            granted(now + 1_050)
        );
        // A throttled record whose own budget is free only waits for the general one.
        assert_eq!(
            pacer
                .try_reserve(SendClass::ThrottledRecord, Background, now + 2_100)
                .unwrap(),
            granted(now + 2_100)
        );
        assert_eq!(
            pacer.view(now + 2_100).unwrap().next_record_ms,
            now + 32_150
        );
    }

    /// Today's failure: ten `hubctl notes add` runs each booked a slot a gap after the last
    /// and exited without sending, pushing the next free slot 10 gaps ahead. Asking without
    /// sending now books nothing, so the next sender goes one gap after the last real send.
    #[test]
    fn slots_asked_for_and_never_used_hold_nobody_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let now = 2_000_000;
        let mut first = Pacer::new(
            Store::open(
                &path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
            PacingConfig::default(),
        );
        assert_eq!(
            first
                .try_reserve(SendClass::General, Background, now)
                .unwrap(),
            granted(now)
        );
        for n in 0..10 {
            let mut short_lived = Pacer::new(
                Store::open(
                    &path,
                    &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
                )
                .unwrap(),
                PacingConfig::default(),
            );
            let urgency = if n % 2 == 0 { Interactive } else { Background };
            assert_eq!(
                short_lived
                    .try_reserve(SendClass::General, urgency, now + 20 + n)
                    .unwrap(),
                wait(now + 1_050)
            );
            // The process exits here, withdrawing what it declared on the way out.
            short_lived.withdraw_demand(now + 20 + n).unwrap();
        }
        let mut next = Pacer::new(
            Store::open(
                &path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
            PacingConfig::default(),
        );
        assert_eq!(
            next.try_reserve(SendClass::General, Background, now + 1_050)
                .unwrap(),
            granted(now + 1_050)
        );
    }

    #[test]
    fn background_work_yields_the_slot_to_another_process_s_waiting_clinician() {
        let (_dir, mut drain, mut lookup) = two_pacers();
        let t = 5_000_000;
        assert_eq!(
            drain
                .try_reserve(SendClass::General, Background, t)
                .unwrap(),
            granted(t)
        );
        // A clinician's request in another process must wait for the slot: it says so.
        assert_eq!(
            lookup
                .try_reserve(SendClass::General, Interactive, t + 100)
                .unwrap(),
            wait(t + 1_050)
        );
        // The backlog comes back for the free slot first, and yields it.
        match drain
            .try_reserve(SendClass::General, Background, t + 1_050)
            .unwrap()
        {
            Reservation::Wait { until_ms } => {
                assert!(
                    until_ms > t + 1_050 && until_ms <= t + 1_050 + 263,
                    "{until_ms}"
                )
            }
            other => panic!("the backlog took the clinician's slot: {other:?}"),
        }
        assert_eq!(
            lookup
                .try_reserve(SendClass::General, Interactive, t + 1_055)
                .unwrap(),
            granted(t + 1_055)
        );
        // Booked: the declaration is gone, the backlog resumes one gap later.
        assert_eq!(
            drain
                .try_reserve(SendClass::General, Background, t + 1_312)
                .unwrap(),
            wait(t + 2_105)
        );
        assert_eq!(
            drain
                .try_reserve(SendClass::General, Background, t + 2_105)
                .unwrap(),
            granted(t + 2_105)
        );
    }

    #[test]
    fn a_crashed_process_s_declaration_expires() {
        let (_dir, mut drain, mut crashed) = two_pacers();
        let t = 6_000_000;
        drain
            .try_reserve(SendClass::General, Background, t)
            .unwrap();
        assert_eq!(
            crashed
                .try_reserve(SendClass::General, Interactive, t + 100)
                .unwrap(),
            wait(t + 1_050)
        );
        // It never comes back for its slot. The backlog yields until the declaration
        // expires (one gap after the slot it was waiting for), then goes on.
        let mut now = t + 1_050;
        let resumed = loop {
            match drain
                .try_reserve(SendClass::General, Background, now)
                .unwrap()
            {
                Reservation::Granted { at_ms } => break at_ms,
                Reservation::Wait { until_ms } => {
                    assert!(until_ms > now);
                    now = until_ms;
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(resumed, t + 2_100);
    }

    #[test]
    fn a_process_s_own_declaration_never_holds_it_back() {
        let mut pacer = Pacer::new(Store::open_in_memory().unwrap(), PacingConfig::default());
        let t = 7_000_000;
        pacer
            .try_reserve(SendClass::General, Background, t)
            .unwrap();
        assert_eq!(
            pacer
                .try_reserve(SendClass::General, Interactive, t + 10)
                .unwrap(),
            wait(t + 1_050)
        );
        // Its interactive request was withdrawn meanwhile; its background work goes.
        assert_eq!(
            pacer
                .try_reserve(SendClass::General, Background, t + 1_050)
                .unwrap(),
            granted(t + 1_050)
        );
    }

    #[test]
    fn clinicians_in_two_processes_are_first_come_between_themselves() {
        let (_dir, mut a, mut b) = two_pacers();
        let t = 8_000_000;
        a.try_reserve(SendClass::General, Background, t).unwrap();
        assert_eq!(
            b.try_reserve(SendClass::General, Interactive, t + 10)
                .unwrap(),
            wait(t + 1_050)
        );
        assert_eq!(
            a.try_reserve(SendClass::General, Interactive, t + 1_050)
                .unwrap(),
            granted(t + 1_050)
        );
        assert_eq!(
            b.try_reserve(SendClass::General, Interactive, t + 1_051)
                .unwrap(),
            wait(t + 2_100)
        );
    }

    #[test]
    fn a_record_request_waiting_for_its_own_budget_declares_nothing() {
        let (_dir, mut a, mut b) = two_pacers();
        let t = 9_000_000;
        b.try_reserve(SendClass::ThrottledRecord, Background, t)
            .unwrap();
        assert_eq!(
            b.try_reserve(SendClass::ThrottledRecord, Interactive, t + 10)
                .unwrap(),
            Reservation::RecordBudgetBusy {
                until_ms: t + 30_050
            }
        );
        // The other process's background reads are not held back by it.
        assert_eq!(
            a.try_reserve(SendClass::General, Background, t + 1_050)
                .unwrap(),
            granted(t + 1_050)
        );
    }

    #[test]
    fn try_reserve_refuses_a_record_request_without_booking_anything() {
        let mut pacer = Pacer::new(Store::open_in_memory().unwrap(), PacingConfig::default());
        let now = 5_000_000;
        assert_eq!(
            pacer
                .try_reserve(SendClass::ThrottledRecord, Background, now)
                .unwrap(),
            Reservation::Granted { at_ms: now }
        );
        let later = now + 2_000;
        assert_eq!(
            pacer
                .try_reserve(SendClass::ThrottledRecord, Background, later)
                .unwrap(),
            Reservation::RecordBudgetBusy {
                until_ms: now + 30_050
            }
        );
        // The refusal booked nothing: a general request still goes at once.
        assert_eq!(
            pacer
                .try_reserve(SendClass::General, Background, later)
                .unwrap(),
            Reservation::Granted { at_ms: later }
        );
        let view = pacer.view(later).unwrap();
        assert_eq!(view.next_any_ms, later + 1_050);
        assert_eq!(view.next_record_ms, now + 30_050);
        let after = now + 30_050;
        assert_eq!(
            pacer
                .try_reserve(SendClass::ThrottledRecord, Background, after)
                .unwrap(),
            Reservation::Granted { at_ms: after }
        );
    }

    proptest::proptest! {
        /// Whatever the interleaving of two processes' requests and clock readings: granted
        /// slots keep TPP's gaps (every slot at least `min_gap + margin` after the previous
        /// one, record slots `record_gap + margin` apart); every booking is at the moment of
        /// asking (never ahead); a wait or a refusal books nothing; and background work is
        /// never granted while the other process has a clinician's declaration live.
        #[test]
        fn granted_slots_keep_both_gaps_and_yield_to_clinicians(
            steps in proptest::collection::vec(
                (0i64..1_500, proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY),
                1..40,
            ),
        ) {
            let config = PacingConfig::default();
            let (_dir, a, b) = two_pacers();
            let mut pacers = [a, b];
            let mut now = 1_700_000_000_000i64;
            let mut last_any: Option<i64> = None;
            let mut last_record: Option<i64> = None;
            // The live declaration of each process: (until).
            let mut declared: [Option<i64>; 2] = [None, None];
            for (advance, second, record, interactive) in steps {
                now += advance;
                let who = usize::from(second);
                let other = 1 - who;
                let class = if record { SendClass::ThrottledRecord } else { SendClass::General };
                let urgency = if interactive { Interactive } else { Background };
                let before = pacers[who].view(now).unwrap();
                match pacers[who].try_reserve(class, urgency, now).unwrap() {
                    Reservation::Granted { at_ms } => {
                        proptest::prop_assert_eq!(at_ms, now);
                        if let Some(prev) = last_any {
                            proptest::prop_assert!(at_ms - prev >= ms(config.effective_min_gap()));
                        }
                        if record {
                            if let Some(prev) = last_record {
                                proptest::prop_assert!(at_ms - prev >= ms(config.effective_record_gap()));
                            }
                            last_record = Some(at_ms);
                        }
                        if !interactive {
                            proptest::prop_assert!(
                                declared[other].is_none_or(|until| until <= now),
                                "background granted over a live declaration"
                            );
                        }
                        last_any = Some(at_ms);
                        declared[who] = None;
                    }
                    Reservation::Wait { until_ms } => {
                        proptest::prop_assert!(until_ms > now);
                        proptest::prop_assert_eq!(pacers[who].view(now).unwrap(), before);
                        declared[who] = if interactive && before.next_any_ms > now {
                            Some(before.next_any_ms + ms(config.effective_min_gap()))
                        } else {
                            None
                        };
                    }
                    Reservation::RecordBudgetBusy { until_ms } => {
                        proptest::prop_assert!(record);
                        proptest::prop_assert_eq!(pacers[who].view(now).unwrap(), before);
                        let prev = last_record.expect("refused only after a record slot");
                        proptest::prop_assert_eq!(until_ms, prev + ms(config.effective_record_gap()));
                        declared[who] = None;
                    }
                }
            }
        }
    }

    /// Two processes (here: two threads, each with its own `Store` on one database file)
    /// send as fast as pacing lets them; the actual send instants must keep TPP's gaps.
    fn sends_from_two_stores(
        config: PacingConfig,
        class_of: fn(usize, usize) -> SendClass,
        per_thread: usize,
    ) -> Vec<(i64, SendClass)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        drop(
            Store::open(
                &path,
                &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
            )
            .unwrap(),
        );
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let path = path.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut pacer = Pacer::new(
                        Store::open(
                            &path,
                            &store::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
                        )
                        .unwrap(),
                        config,
                    );
                    barrier.wait();
                    (0..per_thread)
                        .map(|i| {
                            let class = class_of(t, i);
                            pacer.pace_blocking(class, Urgency::Background).unwrap();
                            // The instant we would write to the socket.
                            (wall_clock_ms().unwrap(), class)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut sends: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        sends.sort_by_key(|(at, _)| *at);
        sends
    }

    #[test]
    fn two_stores_on_one_file_never_send_closer_than_the_gap() {
        let sends = sends_from_two_stores(quick(), |_, _| SendClass::General, 4);
        assert_eq!(sends.len(), 8);
        let gap = ms(quick().min_gap);
        for pair in sends.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= gap,
                "sends {} ms apart: {sends:?}",
                pair[1].0 - pair[0].0
            );
        }
        // And they are not needlessly slow either: 8 sends take about 7 gaps.
        let span = sends[7].0 - sends[0].0;
        assert!(
            span < 7 * ms(quick().effective_min_gap()) + 400,
            "span {span} ms"
        );
    }

    /// The real limit: two `hubctl` commands back to back never send within 1 s.
    #[test]
    fn two_processes_with_tpps_defaults_stay_a_second_apart() {
        let sends = sends_from_two_stores(PacingConfig::default(), |_, _| SendClass::General, 2);
        for pair in sends.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= 1_000, "{sends:?}");
        }
    }

    #[test]
    fn two_stores_keep_the_record_budget_but_exempt_requests_only_the_general_one() {
        // Thread 0 sends throttled records; thread 1 sends general (exempt) requests.
        let sends = sends_from_two_stores(
            quick(),
            |t, _| {
                if t == 0 {
                    SendClass::ThrottledRecord
                } else {
                    SendClass::General
                }
            },
            3,
        );
        let gap = ms(quick().min_gap);
        let record_gap = ms(quick().record_gap);
        for pair in sends.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= gap, "{sends:?}");
        }
        let records: Vec<i64> = sends
            .iter()
            .filter(|(_, c)| *c == SendClass::ThrottledRecord)
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(records.len(), 3);
        for pair in records.windows(2) {
            assert!(
                pair[1] - pair[0] >= record_gap,
                "records {} ms apart",
                pair[1] - pair[0]
            );
        }
        // The general requests were not held to the record budget: all three went out
        // before the second record could.
        let generals: Vec<i64> = sends
            .iter()
            .filter(|(_, c)| *c == SendClass::General)
            .map(|(at, _)| *at)
            .collect();
        assert!(generals[2] < records[1], "{sends:?}");
    }
}
