//! Pacing shared by every process on this PC that talks to SystmOne.
//!
//! TPP's limits (one request per second; `GetPatientRecord` once per 30 s unless exempt)
//! apply to the SystmOne client, so the app, `hubctl` and restarts of either share one
//! budget. A throttled request is silently dropped, which looks exactly like a slow client
//! and leaves an update's outcome unknown, so overshooting the budget is never acceptable.
//!
//! The budget lives in the store's `pacing` table. A sender reserves its slot inside an
//! `IMMEDIATE` transaction (the database write lock serialises reservations across
//! processes): it reads the last reserved slot, takes `max(now, last + gap)`, writes it back
//! and commits, and only then sleeps until the slot. A second process reserving meanwhile
//! therefore lands after ours, never on top of it.
//!
//! Times are wall-clock milliseconds since the Unix epoch, because that is the only clock
//! the processes share. The in-process `governor` limiters in the scheduler add a monotonic
//! floor so a wall-clock step backwards cannot bring two of our own sends closer together.

use domain::ports::{LedgerWrite, PacingBudgets, PacingLedger, PortError};
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

/// The result of a conditional reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The slot (wall-clock ms) at which the request may be sent; already recorded.
    Granted { at_ms: i64 },
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

/// Reserves send slots in the ledger every Inpatient Hub process on the PC shares.
///
/// It owns its ledger because a reservation must never queue behind the window's own
/// database connection (a long UI write would then delay a clinician's SystmOne request):
/// the caller opens a second store connection on the same database file for it. An
/// in-memory store gives a process-local budget for tests.
pub struct Pacer {
    ledger: Box<dyn PacingLedger>,
    config: PacingConfig,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    pub fn new(ledger: impl PacingLedger + 'static, config: PacingConfig) -> Pacer {
        Pacer {
            ledger: Box::new(ledger),
            config,
        }
    }

    pub fn config(&self) -> PacingConfig {
        self.config
    }

    /// Reserves the next slot for a request of `class` and returns it (wall-clock ms); the
    /// caller must not send before it. A `ThrottledRecord` whose slot would be pushed past
    /// the general 1 s slot by its own 30 s budget is refused instead of booked: booking it
    /// would hold the shared 1 s budget for up to 30 s and stall every other request on the
    /// PC, so the caller sends other requests meanwhile (or waits and asks again). Decided
    /// under the ledger's lock, so the answer also covers other processes' recent
    /// `GetPatientRecord`s.
    pub fn try_reserve(
        &mut self,
        class: SendClass,
        now_ms: i64,
    ) -> Result<Reservation, PacingError> {
        let config = self.config;
        let mut outcome = None;
        self.ledger.reserve(&mut |budgets: PacingBudgets| {
            let view = compute_view(&config, now_ms, budgets.last_any_ms, budgets.last_record_ms);
            if class == SendClass::ThrottledRecord && view.next_record_ms > view.next_any_ms {
                outcome = Some(Reservation::RecordBudgetBusy {
                    until_ms: view.next_record_ms,
                });
                return LedgerWrite::Nothing;
            }
            outcome = Some(Reservation::Granted {
                at_ms: view.next_any_ms,
            });
            LedgerWrite::Book {
                at_ms: view.next_any_ms,
                record_budget: class == SendClass::ThrottledRecord,
            }
        })?;
        outcome.ok_or_else(|| {
            PacingError::Interrupted("the ledger committed without deciding".to_owned())
        })
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

    /// Reserves a slot and blocks the thread until it (for synchronous callers and tests).
    /// Returns the slot.
    pub fn pace_blocking(&mut self, class: SendClass) -> Result<i64, PacingError> {
        loop {
            match self.try_reserve(class, wall_clock_ms()?)? {
                Reservation::Granted { at_ms } => {
                    sleep_until_wall_ms_blocking(at_ms)?;
                    return Ok(at_ms);
                }
                Reservation::RecordBudgetBusy { until_ms } => {
                    sleep_until_wall_ms_blocking(until_ms)?
                }
            }
        }
    }
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

    #[test]
    fn reservations_queue_one_behind_another() {
        let mut pacer = Pacer::new(Store::open_in_memory().unwrap(), PacingConfig::default());
        let now = 1_000_000;
        let granted = |at_ms| Reservation::Granted { at_ms };
        assert_eq!(
            pacer.try_reserve(SendClass::General, now).unwrap(),
            granted(now)
        );
        assert_eq!(
            pacer.try_reserve(SendClass::General, now).unwrap(),
            granted(now + 1_050)
        );
        // A throttled record whose own budget is free only waits for the general one.
        assert_eq!(
            pacer.try_reserve(SendClass::ThrottledRecord, now).unwrap(),
            granted(now + 2_100)
        );
        assert_eq!(
            pacer.try_reserve(SendClass::General, now).unwrap(),
            granted(now + 3_150)
        );
    }

    #[test]
    fn try_reserve_refuses_a_record_request_without_booking_anything() {
        let mut pacer = Pacer::new(Store::open_in_memory().unwrap(), PacingConfig::default());
        let now = 5_000_000;
        assert_eq!(
            pacer.try_reserve(SendClass::ThrottledRecord, now).unwrap(),
            Reservation::Granted { at_ms: now }
        );
        let later = now + 2_000;
        assert_eq!(
            pacer
                .try_reserve(SendClass::ThrottledRecord, later)
                .unwrap(),
            Reservation::RecordBudgetBusy {
                until_ms: now + 30_050
            }
        );
        // The refusal booked nothing: a general request still goes at once.
        assert_eq!(
            pacer.try_reserve(SendClass::General, later).unwrap(),
            Reservation::Granted { at_ms: later }
        );
        let view = pacer.view(later).unwrap();
        assert_eq!(view.next_any_ms, later + 1_050);
        assert_eq!(view.next_record_ms, now + 30_050);
        let after = now + 30_050;
        assert_eq!(
            pacer
                .try_reserve(SendClass::ThrottledRecord, after)
                .unwrap(),
            Reservation::Granted { at_ms: after }
        );
    }

    proptest::proptest! {
        /// Whatever the interleaving of requests and clock readings, granted slots keep
        /// TPP's gaps: every slot is at least `min_gap + margin` after the previous one, and
        /// record slots at least `record_gap + margin` apart; nothing is ever booked in the
        /// past; and a refusal books nothing.
        #[test]
        fn granted_slots_always_keep_both_gaps(
            steps in proptest::collection::vec((0i64..3_000, proptest::bool::ANY), 1..60),
        ) {
            let config = PacingConfig::default();
            let mut pacer = Pacer::new(Store::open_in_memory().unwrap(), config);
            let mut now = 1_700_000_000_000i64;
            let mut last_any: Option<i64> = None;
            let mut last_record: Option<i64> = None;
            for (advance, record) in steps {
                now += advance;
                let class = if record { SendClass::ThrottledRecord } else { SendClass::General };
                match pacer.try_reserve(class, now).unwrap() {
                    Reservation::Granted { at_ms } => {
                        proptest::prop_assert!(at_ms >= now);
                        if let Some(prev) = last_any {
                            proptest::prop_assert!(at_ms - prev >= ms(config.effective_min_gap()));
                        }
                        if record {
                            if let Some(prev) = last_record {
                                proptest::prop_assert!(at_ms - prev >= ms(config.effective_record_gap()));
                            }
                            last_record = Some(at_ms);
                        }
                        last_any = Some(at_ms);
                    }
                    Reservation::RecordBudgetBusy { until_ms } => {
                        proptest::prop_assert!(record);
                        let prev = last_record.expect("refused only after a record slot");
                        proptest::prop_assert_eq!(until_ms, prev + ms(config.effective_record_gap()));
                        let view = pacer.view(now).unwrap();
                        proptest::prop_assert_eq!(view.next_record_ms, until_ms);
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
        drop(Store::open(&path).unwrap());
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let path = path.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut pacer = Pacer::new(Store::open(&path).unwrap(), config);
                    barrier.wait();
                    (0..per_thread)
                        .map(|i| {
                            let class = class_of(t, i);
                            pacer.pace_blocking(class).unwrap();
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
