//! The database's consistency check, off the open path. SQLite's `quick_check` reads every
//! page: 2.4 s on a ten-year store with the file cached, about 25 s from a cold disk. Opening
//! no longer pays that; instead the window checks in the background at most once a day, on its
//! own read-only connection (so the ward's reads and writes never wait behind it), and
//! `hubctl check` runs the thorough `integrity_check` on demand. Each result is recorded with
//! its audit row, so a failure found by either reaches every screen
//! (`AppStatus::integrity_warning`) until IT acts.

use super::{Hub, HubResult};
use chrono::Local;
use std::time::Duration;
use store::{IntegrityReport, Store};

/// How often the background check runs (it is recorded, so restarts do not repeat it).
pub const BACKGROUND_CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long after the window starts the first check may run: the start itself (first
/// paint, the first board) comes first on a cold disk.
const FIRST_CHECK_AFTER: Duration = Duration::from_secs(5 * 60);
/// Who the audit row of a background check names.
pub const BACKGROUND_CHECK_ACTOR: &str = "Inpatient Hub (database check)";

impl Hub {
    /// The newest recorded check's warning, if it failed.
    pub(crate) fn integrity_warning(store: &Store) -> Option<String> {
        match store.last_integrity_check() {
            Ok(last) => last.and_then(|report| report.warning()),
            Err(e) => Some(format!("the last database check cannot be read: {e}")),
        }
    }

    /// How long until the next background check is due (zero: now).
    pub fn integrity_check_due_in(&self) -> HubResult<Duration> {
        let last = self.store().last_integrity_check()?;
        let Some(last) = last else {
            return Ok(Duration::ZERO);
        };
        let since = (Local::now() - last.checked_at)
            .to_std()
            // A check recorded "in the future" (the clock went back): wait a full period.
            .unwrap_or(Duration::ZERO);
        Ok(BACKGROUND_CHECK_EVERY.saturating_sub(since))
    }

    /// Runs the quick check on a new read-only connection, off the async threads, and records
    /// the result. Returns it (also when it could not be recorded: a read-only store).
    pub async fn run_integrity_check_now(&self) -> HubResult<IntegrityReport> {
        let checker = self.store().open_another_read_only()?;
        let report = tokio::task::spawn_blocking(move || checker.check_integrity(false))
            .await
            .map_err(|e| {
                super::HubError::BadRequest(format!("the database check stopped: {e}"))
            })??;
        self.record_integrity_check(BACKGROUND_CHECK_ACTOR, &report);
        Ok(report)
    }

    fn record_integrity_check(&self, actor: &str, report: &IntegrityReport) {
        if report.is_ok() {
            tracing::info!(thorough = report.thorough, "database check passed");
        } else {
            // SQLite's findings name pages and indexes, never row contents.
            tracing::error!(problems = ?report.problems, "database check found damage");
        }
        if let Err(e) = self.store().record_integrity_check(actor, report) {
            tracing::warn!(code = e.code(), "database check result not recorded: {e}");
        }
    }

    /// The window's background check: once a day, the first a few minutes after start (or
    /// when the recorded one is a day old). Sleeps between checks: no polling.
    pub async fn run_background_integrity_check(&self) {
        tokio::time::sleep(FIRST_CHECK_AFTER).await;
        loop {
            let wait = match self.integrity_check_due_in() {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "cannot read when the database was last checked"
                    );
                    BACKGROUND_CHECK_EVERY
                }
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                continue;
            }
            if let Err(e) = self.run_integrity_check_now().await {
                tracing::warn!(code = e.code(), "database check did not run: {e}");
                tokio::time::sleep(BACKGROUND_CHECK_EVERY).await;
            }
        }
    }

    /// `hubctl check`: SQLite's thorough `integrity_check` now, recorded under who asked.
    /// A damaged file is a report with problems, not an error (the caller decides).
    pub fn check_database(&self) -> HubResult<IntegrityReport> {
        let actor = self.current_user()?;
        let report = self.store().check_integrity(true)?;
        self.record_integrity_check(actor.as_str(), &report);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{DatabaseEnvironment, DatabaseKey};

    fn file_hub(dir: &std::path::Path) -> Hub {
        let key = DatabaseKey::from_hex(&"7e".repeat(32)).unwrap();
        let hub = Hub::open_with_key(dir, &key, DatabaseEnvironment::Demo).unwrap();
        hub.set_current_user("Nurse Able").unwrap();
        hub
    }

    #[tokio::test]
    async fn the_background_check_records_its_result_and_is_not_due_again_for_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let hub = file_hub(dir.path());
        assert_eq!(hub.integrity_check_due_in().unwrap(), Duration::ZERO);
        let report = hub.run_integrity_check_now().await.unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert!(!report.thorough);
        assert_eq!(hub.store().last_integrity_check().unwrap(), Some(report));
        let due_in = hub.integrity_check_due_in().unwrap();
        assert!(
            due_in > BACKGROUND_CHECK_EVERY - Duration::from_secs(60),
            "{due_in:?}"
        );
        assert_eq!(hub.status().unwrap().integrity_warning, None);
        let audit = hub.audit(&store::AuditQuery::default()).unwrap();
        assert_eq!(audit[0].action, "database.check_passed");
        assert_eq!(audit[0].actor, BACKGROUND_CHECK_ACTOR);
    }

    #[test]
    fn a_recorded_failure_is_shown_in_the_status_until_a_check_passes() {
        let dir = tempfile::tempdir().unwrap();
        let hub = file_hub(dir.path());
        let failed = IntegrityReport {
            checked_at: store::now(),
            thorough: false,
            problems: vec!["database disk image is malformed".to_owned()],
        };
        hub.record_integrity_check(BACKGROUND_CHECK_ACTOR, &failed);
        let warning = hub.status().unwrap().integrity_warning.unwrap();
        assert!(warning.contains("malformed"), "{warning}");
        let report = hub.check_database().unwrap();
        assert!(report.is_ok() && report.thorough, "{report:?}");
        assert_eq!(hub.status().unwrap().integrity_warning, None);
    }
}
