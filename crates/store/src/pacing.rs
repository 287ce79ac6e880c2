//! The `pacing` table: TPP's send budgets shared by every Inpatient Hub process on the PC;
//! `pacing_demand`: which of those processes has a clinician waiting for the next slot; and
//! the DeviceID setting, behind the traits the SystmOne connection uses
//! ([`PacingLedger`], [`DeviceIdentity`]). The arithmetic of the budgets lives with the
//! connection (`systmone::pacing`); only the SQL lives here.

use super::{SettingKey, Store, StoreError};
use domain::ports::{
    DemandWrite, DeviceIdentity, LedgerDecision, LedgerState, LedgerWrite, PacingBudgets,
    PacingLedger, PortError, DEMAND_MAX_AHEAD_MS,
};
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

/// Drops declarations that have expired by `now_ms`, or that lie so far ahead of it that
/// only a clock set back since can have written them.
fn prune_demand(conn: &Connection, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM pacing_demand WHERE until_ms <= ?1 OR until_ms > ?2",
        params![now_ms, now_ms.saturating_add(DEMAND_MAX_AHEAD_MS)],
    )?;
    Ok(())
}

fn others_demand(conn: &Connection, owner: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT MAX(until_ms) FROM pacing_demand WHERE owner <> ?1",
        [owner],
        |r| r.get(0),
    )
}

fn write_demand(conn: &Connection, owner: &str, demand: DemandWrite) -> rusqlite::Result<()> {
    match demand {
        DemandWrite::Declare { until_ms } => conn.execute(
            "INSERT INTO pacing_demand (owner, until_ms) VALUES (?1, ?2)
             ON CONFLICT(owner) DO UPDATE SET until_ms = excluded.until_ms",
            params![owner, until_ms],
        )?,
        DemandWrite::Withdraw => {
            conn.execute("DELETE FROM pacing_demand WHERE owner = ?1", [owner])?
        }
    };
    Ok(())
}

impl PacingLedger for Store {
    /// One `IMMEDIATE` transaction: the write lock is taken before the read, so two processes
    /// can never book the same slot, and a declaration of demand is seen by every
    /// reservation that follows it.
    fn reserve(
        &mut self,
        owner: &str,
        now_ms: i64,
        decide: &mut dyn FnMut(LedgerState) -> LedgerDecision,
    ) -> Result<(), PortError> {
        self.write(|tx| {
            let state = (|| {
                prune_demand(tx, now_ms)?;
                Ok(LedgerState {
                    budgets: budgets_in(tx)?,
                    others_interactive_until_ms: others_demand(tx, owner)?,
                })
            })()
            .map_err(StoreError::Sqlite)?;
            let decision = decide(state);
            if let LedgerWrite::Book {
                at_ms,
                record_budget,
            } = decision.write
            {
                write_budget(tx, BUDGET_ANY, at_ms).map_err(StoreError::Sqlite)?;
                if record_budget {
                    write_budget(tx, BUDGET_PATIENT_RECORD, at_ms).map_err(StoreError::Sqlite)?;
                }
            }
            write_demand(tx, owner, decision.demand).map_err(StoreError::Sqlite)?;
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

    fn book(at_ms: i64, record_budget: bool) -> LedgerDecision {
        LedgerDecision {
            write: LedgerWrite::Book {
                at_ms,
                record_budget,
            },
            demand: DemandWrite::Withdraw,
        }
    }

    fn only(demand: DemandWrite) -> LedgerDecision {
        LedgerDecision {
            write: LedgerWrite::Nothing,
            demand,
        }
    }

    /// Reserves with a decision that books nothing and leaves demand as `demand` says,
    /// returning what the ledger showed.
    fn look(store: &mut Store, owner: &str, now_ms: i64, demand: DemandWrite) -> LedgerState {
        let mut seen = None;
        store
            .reserve(owner, now_ms, &mut |state| {
                seen = Some(state);
                only(demand)
            })
            .unwrap();
        seen.unwrap()
    }

    #[test]
    fn a_booking_is_seen_by_another_connection_to_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut a = Store::open(&path, &crate::tests::test_key()).unwrap();
        let mut b = Store::open(&path, &crate::tests::test_key()).unwrap();
        assert_eq!(b.budgets().unwrap(), PacingBudgets::default());
        a.reserve("a", 1_000, &mut |_| book(1_000, false)).unwrap();
        assert_eq!(
            b.budgets().unwrap(),
            PacingBudgets {
                last_any_ms: Some(1_000),
                last_record_ms: None
            }
        );
        let mut seen = None;
        b.reserve("b", 2_100, &mut |state| {
            seen = Some(state.budgets);
            book(2_100, true)
        })
        .unwrap();
        assert_eq!(
            seen,
            Some(PacingBudgets {
                last_any_ms: Some(1_000),
                last_record_ms: None
            })
        );
        a.reserve("a", 2_200, &mut |_| only(DemandWrite::Withdraw))
            .unwrap();
        assert_eq!(
            a.budgets().unwrap(),
            PacingBudgets {
                last_any_ms: Some(2_100),
                last_record_ms: Some(2_100)
            }
        );
    }

    #[test]
    fn a_declared_demand_is_seen_by_other_owners_only_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut a = Store::open(&path, &crate::tests::test_key()).unwrap();
        let mut b = Store::open(&path, &crate::tests::test_key()).unwrap();
        assert_eq!(
            look(&mut b, "b", 1_000, DemandWrite::Declare { until_ms: 3_000 })
                .others_interactive_until_ms,
            None
        );
        // Its own declaration never holds the declaring process back.
        assert_eq!(
            look(&mut b, "b", 1_100, DemandWrite::Declare { until_ms: 3_000 })
                .others_interactive_until_ms,
            None
        );
        assert_eq!(
            look(&mut a, "a", 1_200, DemandWrite::Withdraw).others_interactive_until_ms,
            Some(3_000)
        );
        // Expired: as if never declared, and the row is gone.
        assert_eq!(
            look(&mut a, "a", 3_000, DemandWrite::Withdraw).others_interactive_until_ms,
            None
        );
        let rows: i64 = a
            .conn
            .query_row("SELECT count(*) FROM pacing_demand", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn a_withdrawn_or_implausible_demand_holds_nobody() {
        let mut store = Store::open_in_memory().unwrap();
        look(
            &mut store,
            "b",
            1_000,
            DemandWrite::Declare { until_ms: 3_000 },
        );
        assert_eq!(
            look(&mut store, "a", 1_100, DemandWrite::Withdraw).others_interactive_until_ms,
            Some(3_000)
        );
        // Booking a send withdraws the sender's declaration in the same step.
        store
            .reserve("b", 1_200, &mut |_| book(1_200, false))
            .unwrap();
        assert_eq!(
            look(&mut store, "a", 1_300, DemandWrite::Withdraw).others_interactive_until_ms,
            None
        );
        // A declaration an hour ahead (a clock set back since) is discarded.
        let far = 1_400 + 3_600_000;
        look(
            &mut store,
            "b",
            far,
            DemandWrite::Declare {
                until_ms: far + 1_000,
            },
        );
        assert_eq!(
            look(&mut store, "a", 1_400, DemandWrite::Withdraw).others_interactive_until_ms,
            None
        );
        // Several declarations: the latest expiry counts.
        look(
            &mut store,
            "b",
            2_000,
            DemandWrite::Declare { until_ms: 4_000 },
        );
        look(
            &mut store,
            "c",
            2_000,
            DemandWrite::Declare { until_ms: 5_000 },
        );
        assert_eq!(
            look(&mut store, "a", 2_100, DemandWrite::Withdraw).others_interactive_until_ms,
            Some(5_000)
        );
        assert_eq!(
            look(
                &mut store,
                "c",
                2_100,
                DemandWrite::Declare { until_ms: 5_000 }
            )
            .others_interactive_until_ms,
            Some(4_000)
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
