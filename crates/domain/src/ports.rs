//! The two things the SystmOne connection needs to keep on disk, as traits: the shared
//! send-slot ledger (TPP's budgets, shared by every Inpatient Hub process on the PC) and the
//! device identity SystmOne issued. The store implements both; the `systmone` crate uses them
//! without knowing there is a database behind them.

/// A ledger failure, in words for the log and the status line (never patient data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// The last booked send of each budget, in wall-clock milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacingBudgets {
    /// The overall budget ("any request", TPP: 1 per second).
    pub last_any_ms: Option<i64>,
    /// Non-exempt `GetPatientRecord` requests (TPP: 1 per 30 seconds).
    pub last_record_ms: Option<i64>,
}

/// A declaration further ahead of the reader's clock than this cannot have been made by a
/// live process (declarations last a couple of seconds): it is the trace of a wall clock set
/// back since, and is discarded rather than honoured, so it cannot stall anyone.
pub const DEMAND_MAX_AHEAD_MS: i64 = 60_000;

/// Everything a reservation decides on, read under the ledger's lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerState {
    pub budgets: PacingBudgets,
    /// The latest expiry of the "a clinician is waiting" declarations made by *other*
    /// owners that are still live at the reservation's clock, if any.
    pub others_interactive_until_ms: Option<i64>,
}

/// What a reservation books, to be written in the same locked step as the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerWrite {
    /// Book the overall budget at `at_ms`, and the record budget too when `record_budget`.
    Book { at_ms: i64, record_budget: bool },
    /// Book nothing.
    Nothing,
}

/// What the reserving owner says about its own interactive demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandWrite {
    /// "A clinician is waiting on me for the next free slot, until `until_ms` at the latest";
    /// replaces this owner's earlier declaration. The expiry is what keeps a crashed
    /// process from holding everyone else's background work back.
    Declare { until_ms: i64 },
    /// Nothing of mine is waiting for the next slot on a clinician's behalf.
    Withdraw,
}

/// A reservation's decision: the booking and the owner's demand, written together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerDecision {
    pub write: LedgerWrite,
    pub demand: DemandWrite,
}

/// TPP's budgets, shared by every process on the PC.
pub trait PacingLedger: Send {
    /// Reads the ledger and applies what `decide` returns, as one step that no other
    /// process can interleave with (the store: one `IMMEDIATE` transaction). `owner` names
    /// the reserving process (its own declaration is left out of
    /// [`LedgerState::others_interactive_until_ms`]); declarations that expired by `now_ms`
    /// (or lie implausibly far ahead of it) are dropped in the same step.
    fn reserve(
        &mut self,
        owner: &str,
        now_ms: i64,
        decide: &mut dyn FnMut(LedgerState) -> LedgerDecision,
    ) -> Result<(), PortError>;

    /// The budgets as they stand, without a lock (for display and ETAs only).
    fn budgets(&mut self) -> Result<PacingBudgets, PortError>;
}

/// Where the DeviceID SystmOne issued on approval lives, and whether the ward switched API
/// filing off.
pub trait DeviceIdentity: Send {
    fn device_id(&mut self) -> Result<Option<String>, PortError>;
    /// Saves a DeviceID SystmOne issued (audited by the implementation).
    fn save_device_id(&mut self, device_id: &str) -> Result<(), PortError>;
    /// True when the ward switched API filing off (clipboard only).
    fn api_switched_off(&mut self) -> Result<bool, PortError>;
}
