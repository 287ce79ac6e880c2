//! SQLite's own consistency check of the file (pages, b-trees, indexes), kept off the open
//! path: on a ten-year, 2 GB store `PRAGMA quick_check` takes 2.4 s with the file cached and
//! about 25 s from a cold disk, which every app start, `hubctl` call and write used to pay.
//! Instead the window runs it in the background at most daily on its own read-only
//! connection, `hubctl check` runs the thorough `integrity_check` on demand, and each result is
//! recorded (with its audit row) so every process can show the last failure.
//!
//! A damaged file is still reported clearly without the check at open: SQLite refuses a page
//! it cannot read with `SQLITE_CORRUPT` ("database disk image is malformed"), which
//! [`StoreError::classify`] turns into [`StoreError::Corrupt`] on whichever read or write
//! touches it, and a failed write rolls back.

use super::{audit, Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
use rusqlite::{params, ErrorCode, OptionalExtension};
use serde::Serialize;
use serde_json::json;

/// At most this many problems are listed (SQLite's own default for `integrity_check`).
const MAX_PROBLEMS: u32 = 100;

/// One run of SQLite's consistency check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityReport {
    pub checked_at: DateTime<Local>,
    /// `integrity_check` (also cross-checks every index against its table) rather than the
    /// faster `quick_check`.
    pub thorough: bool,
    /// SQLite's findings; empty when the file is sound. They name pages and tables, never
    /// row contents, so they may be logged and shown.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// What every screen shows while the last check failed.
    pub fn warning(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        Some(format!(
            "the database check on {} found the file damaged ({}). Keep working only if you must; ask IT to run `hubctl check` and restore the database from backup",
            self.checked_at.format("%Y-%m-%d %H:%M"),
            self.problems.join("; ")
        ))
    }
}

impl Store {
    /// Runs SQLite's consistency check on this connection (`thorough`: `integrity_check`,
    /// else `quick_check`) and returns what it found. A file too damaged for the check to run
    /// at all is a finding, not an error; other failures (busy, I/O) are errors.
    pub fn check_integrity(&self, thorough: bool) -> StoreResult<IntegrityReport> {
        let pragma = if thorough {
            "integrity_check"
        } else {
            "quick_check"
        };
        let checked_at = super::now();
        let problems = match self.integrity_findings(pragma) {
            Ok(findings) => findings,
            // Another process writing, or the lock: try again later, nothing is known yet.
            Err(rusqlite::Error::SqliteFailure(ffi, _))
                if matches!(ffi.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                return Err(StoreError::Locked)
            }
            // The statement is fixed and valid, so any other failure is the file failing to be
            // read: SQLite says "database disk image is malformed", SQLCipher reports a page
            // that fails its authentication (HMAC) check as a plain "SQL logic error".
            Err(rusqlite::Error::SqliteFailure(ffi, message)) => vec![format!(
                "the check could not read the whole file: {} ({:?}); a damaged or altered page is the usual cause",
                message.unwrap_or_else(|| ffi.to_string()),
                ffi.code
            )],
            Err(e) => return Err(self.err(e)),
        };
        Ok(IntegrityReport {
            checked_at,
            thorough,
            problems,
        })
    }

    fn integrity_findings(&self, pragma: &str) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA {pragma}({MAX_PROBLEMS})"))?;
        let findings = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(findings.into_iter().filter(|f| f != "ok").collect())
    }

    /// Keeps a check's result (and audits it), so the window and `hubctl` show the last one.
    pub fn record_integrity_check(
        &mut self,
        actor: &str,
        report: &IntegrityReport,
    ) -> StoreResult<()> {
        let problems = serde_json::to_string(&report.problems)
            .map_err(|e| StoreError::Decode(e.to_string()))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO integrity_checks (checked_at, thorough, ok, problems) VALUES (?1, ?2, ?3, ?4)",
                params![report.checked_at, report.thorough, report.is_ok(), problems],
            )
            .map_err(StoreError::Sqlite)?;
            audit::record(
                tx,
                actor,
                if report.is_ok() {
                    "database.check_passed"
                } else {
                    "database.check_failed"
                },
                "database",
                None,
                json!({ "thorough": report.thorough, "problems": report.problems }),
            )?;
            Ok(())
        })
    }

    /// The newest recorded check, if any.
    pub fn last_integrity_check(&self) -> StoreResult<Option<IntegrityReport>> {
        let row: Option<(DateTime<Local>, bool, String)> = self
            .conn
            .query_row(
                "SELECT checked_at, thorough, problems FROM integrity_checks ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|(checked_at, thorough, problems)| {
            let problems: Vec<String> = serde_json::from_str(&problems)
                .map_err(|e| StoreError::Decode(format!("integrity check problems: {e}")))?;
            Ok(IntegrityReport {
                checked_at,
                thorough,
                problems,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::test_key;

    #[test]
    fn a_sound_file_passes_and_the_result_is_recorded_and_audited() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.last_integrity_check().unwrap(), None);
        let report = store.check_integrity(false).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.warning(), None);
        store
            .record_integrity_check("Inpatient Hub (database check)", &report)
            .unwrap();
        assert_eq!(store.last_integrity_check().unwrap(), Some(report));
        let audit = store.audit_entries(&crate::AuditQuery::default()).unwrap();
        assert_eq!(audit[0].action, "database.check_passed");
        assert!(store.check_integrity(true).unwrap().is_ok());
    }

    #[test]
    fn a_failed_check_is_kept_and_gives_a_warning() {
        let mut store = Store::open_in_memory().unwrap();
        let report = IntegrityReport {
            checked_at: crate::now(),
            thorough: false,
            problems: vec!["row 3 missing from index tasks_by_patient".to_owned()],
        };
        store.record_integrity_check("hubctl", &report).unwrap();
        let last = store.last_integrity_check().unwrap().unwrap();
        assert!(!last.is_ok());
        let warning = last.warning().unwrap();
        assert!(warning.contains("tasks_by_patient"), "{warning}");
        assert!(warning.contains("hubctl check"), "{warning}");
    }

    /// Damages the pages of the tasks table of a store with rows in it (WAL checkpointed first,
    /// so the damage is in the main file), and returns its path.
    fn damaged_store(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        let p = store
            .add_patient(
                "Nurse A",
                &crate::NewPatient {
                    bed: domain::BedLabel::parse("Bed 1").unwrap(),
                    name: domain::PatientName::parse("Test Patient").unwrap(),
                    nhs_number: None,
                },
            )
            .unwrap();
        let actor = domain::StaffName::parse("Nurse A").unwrap();
        for i in 0..400 {
            store
                .add_task(
                    &actor,
                    &domain::NewTask {
                        patient_id: p.id,
                        title: domain::TaskTitle::parse(&format!("Task {i} {}", "x".repeat(100)))
                            .unwrap(),
                        assignee: None,
                        due: None,
                    },
                )
                .unwrap();
        }
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        drop(store);
        // SQLCipher pages are encrypted and authenticated: a changed byte fails the page's HMAC.
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096;
        assert!(bytes.len() > 12 * page, "{} bytes", bytes.len());
        for b in &mut bytes[6 * page + 100..6 * page + 600] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_damaged_file_still_opens_and_the_check_reports_the_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = damaged_store(dir.path());
        // Opening no longer reads every page, so the ward can still open it...
        let store = Store::open_read_only(&path, &test_key()).unwrap();
        // ...and the check finds the damage.
        let report = store.check_integrity(false).unwrap();
        assert!(!report.is_ok(), "{report:?}");
        assert!(report.warning().unwrap().contains("damaged"), "{report:?}");
    }
}
