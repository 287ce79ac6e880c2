//! The two things the SystmOne connection needs to keep on disk, as traits: the shared
//! send-slot ledger (TPP's budgets, shared by every Inpatient Hub process on the PC) and the
//! device identity SystmOne issued. The store implements both; the `systmone` crate uses them
//! without knowing there is a database behind them.

/// A ledger failure, in words for the log and the status line (never patient data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// The last reserved send slot of each budget, in wall-clock milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacingBudgets {
    /// The overall budget ("any request", TPP: 1 per second).
    pub last_any_ms: Option<i64>,
    /// Non-exempt `GetPatientRecord` requests (TPP: 1 per 30 seconds).
    pub last_record_ms: Option<i64>,
}

/// What a reservation decided, to be written in the same locked step as the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerWrite {
    /// Book the overall budget at `at_ms`, and the record budget too when `record_budget`.
    Book { at_ms: i64, record_budget: bool },
    /// Book nothing.
    Nothing,
}

/// TPP's budgets, shared by every process on the PC.
pub trait PacingLedger: Send {
    /// Reads both budgets and applies what `decide` returns, as one step that no other
    /// process can interleave with (the store: one `IMMEDIATE` transaction).
    fn reserve(
        &mut self,
        decide: &mut dyn FnMut(PacingBudgets) -> LedgerWrite,
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
