//! Injected faults: what a flaky SystmOne client or a slow TPP back end looks like from the
//! socket. Rates are probabilities per answered request, drawn from a seeded generator so a
//! failing run can be replayed.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FaultRates {
    /// No reply at all; the socket stays open (as TPP's "server unresponsive" silence).
    pub drop: f64,
    /// The reply is delayed by `slow_ms`.
    pub slow: f64,
    /// Bytes that are not a response, then the connection closes.
    pub garbage: f64,
    /// The connection closes without a reply.
    pub reset: f64,
    /// A temporary ErrorMessage (PermanentError false) instead of running the request.
    pub temporary: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("'{0}' is not a fault list; expected e.g. drop=0.1,slow=0.05,garbage=0.01,reset=0.02,temporary=0.05 (each rate 0.0 to 1.0)")]
pub struct FaultParseError(pub String);

impl FromStr for FaultRates {
    type Err = FaultParseError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let mut rates = FaultRates::default();
        let bad = || FaultParseError(raw.to_owned());
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("none") {
                continue;
            }
            let (name, value) = part.split_once('=').ok_or_else(bad)?;
            let value: f64 = value.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&value) {
                return Err(bad());
            }
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "drop" => &mut rates.drop,
                "slow" => &mut rates.slow,
                "garbage" => &mut rates.garbage,
                "reset" => &mut rates.reset,
                "temporary" | "temp" => &mut rates.temporary,
                _ => return Err(bad()),
            };
            *slot = value;
        }
        Ok(rates)
    }
}

impl fmt::Display for FaultRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drop={},slow={},garbage={},reset={},temporary={}",
            self.drop, self.slow, self.garbage, self.reset, self.temporary
        )
    }
}

/// What happens to one request instead of (or as well as) a normal reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Drop,
    Garbage,
    Reset,
    Temporary,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Garbage => "garbage",
            FaultKind::Reset => "reset",
            FaultKind::Temporary => "temporary",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    pub kind: Option<FaultKind>,
    pub slow: bool,
    /// For a drop, garbage or reset on a write: whether the write was applied before the
    /// reply was lost. This is the "outcome unknown" case a client must reconcile.
    pub apply_before_failing: bool,
}

impl FaultPlan {
    pub const NONE: FaultPlan = FaultPlan {
        kind: None,
        slow: false,
        apply_before_failing: false,
    };
}

impl FaultRates {
    pub fn is_zero(&self) -> bool {
        *self == FaultRates::default()
    }

    /// One draw for the exclusive kinds (drop, garbage, reset, temporary; checked in that
    /// order over one uniform number, so their rates add up), one independent draw for slow,
    /// one for whether a lost write was applied. Always three draws, so the stream of
    /// decisions does not depend on earlier outcomes.
    pub fn plan(&self, rng: &mut impl Rng) -> FaultPlan {
        let exclusive: f64 = rng.gen();
        let slow_roll: f64 = rng.gen();
        let applied: bool = rng.gen();
        let mut threshold = 0.0;
        let mut kind = None;
        for (rate, candidate) in [
            (self.drop, FaultKind::Drop),
            (self.garbage, FaultKind::Garbage),
            (self.reset, FaultKind::Reset),
            (self.temporary, FaultKind::Temporary),
        ] {
            threshold += rate;
            if exclusive < threshold {
                kind = Some(candidate);
                break;
            }
        }
        FaultPlan {
            kind,
            slow: slow_roll < self.slow,
            apply_before_failing: applied,
        }
    }
}

/// Bytes that are not a ClientIntegrationResponse: a truncated start, invalid UTF-8, noise.
pub fn garbage_bytes(rng: &mut impl Rng) -> Vec<u8> {
    let mut bytes = b"<ClientIntegrationResp\xff\xfe<<".to_vec();
    let extra = rng.gen_range(8..64);
    bytes.extend((0..extra).map(|_| rng.gen::<u8>()));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn parses_the_documented_form() {
        let rates: FaultRates = "drop=0.1,slow=0.05,garbage=0.01,reset=0.02,temporary=0.05"
            .parse()
            .unwrap();
        assert_eq!(
            rates,
            FaultRates {
                drop: 0.1,
                slow: 0.05,
                garbage: 0.01,
                reset: 0.02,
                temporary: 0.05
            }
        );
        assert_eq!(rates.to_string().parse::<FaultRates>().unwrap(), rates);
        assert!("".parse::<FaultRates>().unwrap().is_zero());
        assert!("none".parse::<FaultRates>().unwrap().is_zero());
        for bad in ["drop=2", "drop=-0.1", "boom=0.1", "drop", "drop=x"] {
            assert!(bad.parse::<FaultRates>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_rates_never_fault_and_full_rates_always_do() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let none = FaultRates::default();
        assert!((0..1000).all(|_| none.plan(&mut rng).kind.is_none() && !none.plan(&mut rng).slow));
        let all_drop = FaultRates {
            drop: 1.0,
            slow: 1.0,
            ..FaultRates::default()
        };
        assert!((0..100).all(|_| all_drop.plan(&mut rng).kind == Some(FaultKind::Drop)));
    }

    #[test]
    fn rates_are_roughly_honoured_and_reproducible() {
        let rates = FaultRates {
            drop: 0.1,
            garbage: 0.1,
            reset: 0.1,
            temporary: 0.1,
            slow: 0.5,
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..10_000)
                .map(|_| rates.plan(&mut rng))
                .collect::<Vec<_>>()
        };
        let plans = run(5);
        assert_eq!(plans, run(5));
        let count = |k| plans.iter().filter(|p| p.kind == Some(k)).count();
        for kind in [
            FaultKind::Drop,
            FaultKind::Garbage,
            FaultKind::Reset,
            FaultKind::Temporary,
        ] {
            let n = count(kind);
            assert!((800..1200).contains(&n), "{kind:?}: {n}");
        }
        let slow = plans.iter().filter(|p| p.slow).count();
        assert!((4_600..5_400).contains(&slow), "{slow}");
        let applied = plans.iter().filter(|p| p.apply_before_failing).count();
        assert!((4_600..5_400).contains(&applied), "{applied}");
    }

    proptest::proptest! {
        #[test]
        fn display_and_parse_round_trip(d in 0.0f64..=1.0, s in 0.0f64..=1.0, g in 0.0f64..=1.0, r in 0.0f64..=1.0, t in 0.0f64..=1.0) {
            let rates = FaultRates { drop: d, slow: s, garbage: g, reset: r, temporary: t };
            proptest::prop_assert_eq!(rates.to_string().parse::<FaultRates>().unwrap(), rates);
        }

        #[test]
        fn parse_never_panics(raw in "\\PC{0,40}") {
            let _ = raw.parse::<FaultRates>();
        }
    }

    #[test]
    fn garbage_is_not_a_response() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let bytes = garbage_bytes(&mut rng);
        assert!(std::str::from_utf8(&bytes).is_err());
        assert!(!bytes
            .windows(28)
            .any(|w| w == b"</ClientIntegrationResponse>"));
    }
}
