//! The `pacing` table: TPP's send budgets shared by every Inpatient Hub process on the PC,
//! and the DeviceID setting, behind the traits the SystmOne connection uses
//! ([`PacingLedger`], [`DeviceIdentity`]). The arithmetic of the budgets lives with the
//! connection (`systmone::pacing`); only the SQL lives here.

use super::{SettingKey, Store, StoreError};
use domain::ports::{DeviceIdentity, LedgerWrite, PacingBudgets, PacingLedger, PortError};
use rusqlite::{params, Connection, OptionalExtension};

/// The overall budget ("any request"), shared by every function.
const BUDGET_ANY: &str = "any";
/// The separate budget of non-exempt `GetPatientRecord` requests.
const BUDGET_PATIENT_RECORD: &str = "get_patient_record";

/// Who the audit names when SystmOne issues this PC a DeviceID.
pub const DEVICE_ID_ACTOR: &str = "Inpatient Hub (SystmOne device approval)";

fn read_budget(conn: &Connection, budget: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT last_sent_at_ms FROM pacing WHERE budget = ?1",
        [budget],
        |r| r.get(0),
    )
    .optional()
}

fn write_budget(conn: &Connection, budget: &str, at_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pacing (budget, last_sent_at_ms) VALUES (?1, ?2)
         ON CONFLICT(budget) DO UPDATE SET last_sent_at_ms = excluded.last_sent_at_ms",
        params![budget, at_ms],
    )?;
    Ok(())
}

fn budgets_in(conn: &Connection) -> rusqlite::Result<PacingBudgets> {
    Ok(PacingBudgets {
        last_any_ms: read_budget(conn, BUDGET_ANY)?,
        last_record_ms: read_budget(conn, BUDGET_PATIENT_RECORD)?,
    })
}

fn port(e: StoreError) -> PortError {
    PortError(e.to_string())
}

impl PacingLedger for Store {
    /// One `IMMEDIATE` transaction: the write lock is taken before the read, so two processes
    /// can never book the same slot.
    fn reserve(
        &mut self,
        decide: &mut dyn FnMut(PacingBudgets) -> LedgerWrite,
    ) -> Result<(), PortError> {
        self.write(|tx| {
            let budgets = budgets_in(tx).map_err(StoreError::Sqlite)?;
            if let LedgerWrite::Book {
                at_ms,
                record_budget,
            } = decide(budgets)
            {
                write_budget(tx, BUDGET_ANY, at_ms).map_err(StoreError::Sqlite)?;
                if record_budget {
                    write_budget(tx, BUDGET_PATIENT_RECORD, at_ms).map_err(StoreError::Sqlite)?;
                }
            }
            Ok(())
        })
        .map_err(port)
    }

    fn budgets(&mut self) -> Result<PacingBudgets, PortError> {
        budgets_in(&self.conn).map_err(|e| port(self.err(e)))
    }
}

impl DeviceIdentity for Store {
    fn device_id(&mut self) -> Result<Option<String>, PortError> {
        self.setting(SettingKey::SystmOneDeviceId).map_err(port)
    }

    fn save_device_id(&mut self, device_id: &str) -> Result<(), PortError> {
        self.set_setting(
            DEVICE_ID_ACTOR,
            SettingKey::SystmOneDeviceId,
            Some(device_id),
        )
        .map_err(port)
    }

    fn api_switched_off(&mut self) -> Result<bool, PortError> {
        Ok(self
            .setting(SettingKey::SystmOneApiDisabled)
            .map_err(port)?
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_booking_is_seen_by_another_connection_to_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        assert_eq!(b.budgets().unwrap(), PacingBudgets::default());
        a.reserve(&mut |_| LedgerWrite::Book {
            at_ms: 1_000,
            record_budget: false,
        })
        .unwrap();
        assert_eq!(
            b.budgets().unwrap(),
            PacingBudgets {
                last_any_ms: Some(1_000),
                last_record_ms: None
            }
        );
        let mut seen = None;
        b.reserve(&mut |budgets| {
            seen = Some(budgets);
            LedgerWrite::Book {
                at_ms: 2_100,
                record_budget: true,
            }
        })
        .unwrap();
        assert_eq!(
            seen,
            Some(PacingBudgets {
                last_any_ms: Some(1_000),
                last_record_ms: None
            })
        );
        a.reserve(&mut |_| LedgerWrite::Nothing).unwrap();
        assert_eq!(
            a.budgets().unwrap(),
            PacingBudgets {
                last_any_ms: Some(2_100),
                last_record_ms: Some(2_100)
            }
        );
    }

    #[test]
    fn the_device_id_is_kept_and_audited() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.device_id().unwrap(), None);
        assert!(!store.api_switched_off().unwrap());
        store.save_device_id("ABC123").unwrap();
        assert_eq!(store.device_id().unwrap().as_deref(), Some("ABC123"));
        store
            .set_setting("test", SettingKey::SystmOneApiDisabled, Some("true"))
            .unwrap();
        assert!(store.api_switched_off().unwrap());
    }
}
