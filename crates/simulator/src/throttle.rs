//! TPP's throttle: at most one request per second from all applications together, and a
//! non-exempt GetPatientRecord at most once per 30 seconds. A throttled request gets no
//! response at all.
//!
//! Measurement choices (the spec is silent on them):
//! - The 1 s rule is measured arrival to arrival, and a dropped request counts as an arrival:
//!   a client that keeps retrying too fast keeps being ignored, as it would be by SystmOne.
//! - [`JITTER_TOLERANCE`] (50 ms) is allowed, so a client sleeping exactly 1 s between
//!   requests is not punished for timer and scheduler jitter: gaps of 950 ms or more pass.
//! - The 30 s rule is measured from the last GetPatientRecord that was *accepted* and was
//!   not exempt; exempt ones (demographics only, or entered-today) neither count nor reset it.

use std::time::{Duration, Instant};

pub const MIN_GAP: Duration = Duration::from_secs(1);
pub const RECORD_GAP: Duration = Duration::from_secs(30);
pub const JITTER_TOLERANCE: Duration = Duration::from_millis(50);

/// What kind of request arrived, as far as the throttle cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Any function other than GetPatientRecord, or a GetPatientRecord that is exempt.
    Ordinary,
    /// A GetPatientRecord that falls under the 30 s rule.
    FullRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Under 1 s since the previous request.
    TooFast {
        since_ms: u128,
    },
    /// A non-exempt GetPatientRecord under 30 s after the last one.
    RecordTooSoon {
        since_ms: u128,
    },
}

impl Verdict {
    pub fn describe(&self) -> String {
        match self {
            Verdict::Accept => "accepted".into(),
            Verdict::TooFast { since_ms } => {
                format!("{since_ms} ms after the previous request (limit 1 per second)")
            }
            Verdict::RecordTooSoon { since_ms } => {
                format!("GetPatientRecord {since_ms} ms after the last non-exempt one (limit 1 per 30 seconds)")
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    last_arrival: Option<Instant>,
    last_full_record: Option<Instant>,
}

impl Throttle {
    pub fn check(&mut self, now: Instant, kind: Throttled) -> Verdict {
        let previous = self.last_arrival.replace(now);
        if let Some(prev) = previous {
            let gap = now.saturating_duration_since(prev);
            if gap + JITTER_TOLERANCE < MIN_GAP {
                return Verdict::TooFast {
                    since_ms: gap.as_millis(),
                };
            }
        }
        if kind == Throttled::FullRecord {
            if let Some(prev) = self.last_full_record {
                let gap = now.saturating_duration_since(prev);
                if gap + JITTER_TOLERANCE < RECORD_GAP {
                    return Verdict::RecordTooSoon {
                        since_ms: gap.as_millis(),
                    };
                }
            }
            self.last_full_record = Some(now);
        }
        Verdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_per_second_with_jitter_tolerance() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert_eq!(t.check(t0, Throttled::Ordinary), Verdict::Accept);
        assert!(matches!(
            t.check(t0 + ms(500), Throttled::Ordinary),
            Verdict::TooFast { since_ms: 500 }
        ));
        // The dropped one counts as an arrival: 1.2 s after the first is only 0.7 s after it.
        assert!(matches!(
            t.check(t0 + ms(1200), Throttled::Ordinary),
            Verdict::TooFast { .. }
        ));
        assert_eq!(
            t.check(t0 + ms(2150), Throttled::Ordinary),
            Verdict::Accept,
            "950 ms is within tolerance"
        );
        assert!(matches!(
            t.check(t0 + ms(3090), Throttled::Ordinary),
            Verdict::TooFast { since_ms: 940 }
        ));
    }

    #[test]
    fn full_record_once_per_thirty_seconds_exempt_ones_free() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert_eq!(t.check(t0, Throttled::FullRecord), Verdict::Accept);
        assert_eq!(
            t.check(t0 + ms(1_000), Throttled::Ordinary),
            Verdict::Accept
        );
        assert!(matches!(
            t.check(t0 + ms(2_000), Throttled::FullRecord),
            Verdict::RecordTooSoon { .. }
        ));
        // The refused one did not reset the 30 s window.
        assert_eq!(
            t.check(t0 + ms(30_000), Throttled::FullRecord),
            Verdict::Accept
        );
        assert!(matches!(
            t.check(t0 + ms(59_000), Throttled::FullRecord),
            Verdict::RecordTooSoon { .. }
        ));
        assert_eq!(
            t.check(t0 + ms(60_000), Throttled::FullRecord),
            Verdict::Accept
        );
    }

    proptest! {
        #[test]
        fn accepted_requests_are_never_closer_than_the_limits(gaps in proptest::collection::vec((0u64..3_000, any::<bool>()), 1..60)) {
            let mut t = Throttle::default();
            let mut now = Instant::now();
            let mut accepted: Vec<(Instant, bool)> = Vec::new();
            let mut arrivals = Vec::new();
            for (gap, full) in gaps {
                now += ms(gap);
                let kind = if full { Throttled::FullRecord } else { Throttled::Ordinary };
                if t.check(now, kind) == Verdict::Accept {
                    if let Some(prev) = arrivals.last() {
                        prop_assert!(now - *prev + JITTER_TOLERANCE >= MIN_GAP);
                    }
                    if full {
                        if let Some((prev, _)) = accepted.iter().rev().find(|(_, f)| *f) {
                            prop_assert!(now - *prev + JITTER_TOLERANCE >= RECORD_GAP);
                        }
                    }
                    accepted.push((now, full));
                }
                arrivals.push(now);
            }
        }
    }
}
