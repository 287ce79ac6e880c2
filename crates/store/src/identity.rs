//! Whether this database is the ward's live data or a demo's fictitious data: written once
//! when the database is first opened, never changed (the v8 triggers refuse UPDATE and
//! DELETE), and checked at every open, so demo mode and live mode can never share a database.

use crate::{Store, StoreError, StoreResult};
use rusqlite::OptionalExtension;
use std::fmt;

/// What a database holds, and what the process opening it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseEnvironment {
    /// Fictitious patients, for demonstrations and training (`--demo`).
    Demo,
    /// The ward's real patients.
    Live,
}

impl DatabaseEnvironment {
    pub fn from_demo_flag(demo: bool) -> DatabaseEnvironment {
        if demo {
            DatabaseEnvironment::Demo
        } else {
            DatabaseEnvironment::Live
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseEnvironment::Demo => "demo",
            DatabaseEnvironment::Live => "live",
        }
    }

    fn parse(text: &str) -> Option<DatabaseEnvironment> {
        match text {
            "demo" => Some(DatabaseEnvironment::Demo),
            "live" => Some(DatabaseEnvironment::Live),
            _ => None,
        }
    }
}

impl fmt::Display for DatabaseEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message when a database is opened in the other environment (by what it is).
pub(crate) fn refusal(found: DatabaseEnvironment) -> &'static str {
    match found {
        DatabaseEnvironment::Live => "this is the ward's live database; demo mode never opens it. Start demo mode without --data-dir (it has its own demo folder), or with an empty folder",
        DatabaseEnvironment::Demo => "this is a demo database of fictitious patients; the ward's live app never opens it. Start with --demo to use it, or point --data-dir at the ward's own folder",
    }
}

impl Store {
    /// The mark this database carries, if any (`None`: made before marks existed, or
    /// just created and not yet marked).
    pub fn environment(&self) -> StoreResult<Option<DatabaseEnvironment>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT environment FROM database_identity WHERE singleton = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        text.map(|t| {
            DatabaseEnvironment::parse(&t)
                .ok_or_else(|| StoreError::Decode(format!("database environment '{t}'")))
        })
        .transpose()
    }

    /// Checks the mark against what the opening process expects, and marks a database
    /// that has none:
    /// - a new database (nothing ever written: no audit row, since every write audits in its
    ///   own transaction) is marked with what is expected;
    /// - an older unmarked database with data is marked live when opened live: until now every
    ///   ward database was live, and demo folders were throwaway;
    /// - an older unmarked database with data opened in demo mode is refused, not marked demo:
    ///   it may be the ward's real database (earlier versions opened it under `--demo`), and
    ///   marking it demo would lock the ward out of it, while writing fictitious patients into
    ///   it is the very mix-up the mark exists to prevent. Refusing costs one clear message.
    pub fn claim_environment(&mut self, expected: DatabaseEnvironment) -> StoreResult<()> {
        match self.environment()? {
            Some(found) if found == expected => Ok(()),
            Some(found) => Err(StoreError::WrongEnvironment { found, expected }),
            None => {
                let pristine = self.last_audit_id()? == 0;
                if expected == DatabaseEnvironment::Demo && !pristine {
                    return Err(StoreError::UnmarkedInDemoMode {
                        path: self.path.display().to_string(),
                    });
                }
                if self.read_only {
                    // Nothing can be written, so nothing fictitious can mix in; the mark is
                    // made at the first writable open.
                    return Ok(());
                }
                self.write(|tx| {
                    tx.execute(
                        "INSERT INTO database_identity (singleton, environment, created_at) VALUES (1, ?1, ?2)",
                        rusqlite::params![expected.as_str(), crate::now()],
                    )
                    .map_err(StoreError::Sqlite)?;
                    crate::audit::record(
                        tx,
                        "Inpatient Hub",
                        "database_marked",
                        "database",
                        None,
                        serde_json::json!({ "environment": expected.as_str() }),
                    )?;
                    Ok(())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatabaseKey, SettingKey};

    fn open(dir: &std::path::Path, key: &DatabaseKey) -> Store {
        Store::open(&dir.join("hub.sqlite"), key).unwrap()
    }

    #[test]
    fn a_new_database_is_marked_with_the_environment_it_was_opened_in() {
        let key = DatabaseKey::generate().unwrap();
        for expected in [DatabaseEnvironment::Demo, DatabaseEnvironment::Live] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = open(dir.path(), &key);
            assert_eq!(store.environment().unwrap(), None);
            store.claim_environment(expected).unwrap();
            drop(store);
            let mut store = open(dir.path(), &key);
            assert_eq!(store.environment().unwrap(), Some(expected));
            store.claim_environment(expected).unwrap();
        }
    }

    #[test]
    fn a_demo_database_is_refused_in_live_mode_and_a_live_one_in_demo_mode() {
        let key = DatabaseKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), &key)
            .claim_environment(DatabaseEnvironment::Live)
            .unwrap();
        let err = open(dir.path(), &key)
            .claim_environment(DatabaseEnvironment::Demo)
            .unwrap_err();
        assert_eq!(err.code(), "wrong_database_environment");
        assert!(
            err.to_string()
                .contains("this is the ward's live database; demo mode never opens it"),
            "{err}"
        );

        let demo = tempfile::tempdir().unwrap();
        open(demo.path(), &key)
            .claim_environment(DatabaseEnvironment::Demo)
            .unwrap();
        let err = open(demo.path(), &key)
            .claim_environment(DatabaseEnvironment::Live)
            .unwrap_err();
        assert_eq!(err.code(), "wrong_database_environment");
        assert!(err.to_string().contains("demo database"), "{err}");
    }

    #[test]
    fn the_mark_cannot_be_changed_or_removed() {
        let key = DatabaseKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), &key);
        store.claim_environment(DatabaseEnvironment::Live).unwrap();
        let conn = store.connection();
        assert!(conn
            .execute("UPDATE database_identity SET environment = 'demo'", [])
            .is_err());
        assert!(conn.execute("DELETE FROM database_identity", []).is_err());
        assert!(conn
            .execute(
                "INSERT INTO database_identity VALUES (1, 'demo', '2026-01-01')",
                []
            )
            .is_err());
        assert_eq!(
            store.environment().unwrap(),
            Some(DatabaseEnvironment::Live)
        );
    }

    #[test]
    fn an_older_unmarked_database_with_data_is_marked_live_but_refused_in_demo_mode() {
        let key = DatabaseKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), &key);
        store
            .set_setting("Nurse A", SettingKey::CurrentUser, Some("Nurse A"))
            .unwrap();
        drop(store);

        let err = open(dir.path(), &key)
            .claim_environment(DatabaseEnvironment::Demo)
            .unwrap_err();
        assert_eq!(err.code(), "unmarked_database_in_demo_mode");
        let mut store = open(dir.path(), &key);
        assert_eq!(
            store.environment().unwrap(),
            None,
            "demo mode marked nothing"
        );

        store.claim_environment(DatabaseEnvironment::Live).unwrap();
        assert_eq!(
            store.environment().unwrap(),
            Some(DatabaseEnvironment::Live)
        );
    }
}
