//! The local SQLite store: the single source of truth on this PC (patients, ward tasks,
//! case notes, audit, outbox, settings, SystmOne pacing state).
//!
//! Every write runs in an `IMMEDIATE` transaction and writes its audit row in the same
//! transaction, so a change and its audit entry land together or not at all.

pub mod at_rest;
mod audit;
mod audit_chain;
pub mod backup;
#[cfg(feature = "bench-fixtures")]
mod bench_fixtures;
mod identity;
mod integrity;
mod migrations;
mod notes;
mod outbox;
mod pacing;
mod patients;
mod query;
mod settings;
mod task_links;
mod task_sync;
mod tasks;
mod templates;

pub use at_rest::{DatabaseFile, DatabaseKey};
pub use audit::{AuditEntry, AuditQuery, DEFAULT_AUDIT_LIMIT};
pub use audit_chain::{AuditBreakKind, AuditChainBreak, AuditChainReport};
#[cfg(feature = "bench-fixtures")]
pub use bench_fixtures::TenYearsSpec;
pub use identity::DatabaseEnvironment;
pub use integrity::IntegrityReport;
pub use migrations::{MIGRATIONS, SCHEMA_VERSION};
pub use notes::NoteFilter;
pub use outbox::{OutboxClaim, OutboxEntry, OutboxHistoryQuery, DEFAULT_OUTBOX_HISTORY_LIMIT};
pub use pacing::DEVICE_ID_ACTOR;
pub use patients::{NewPatient, Patient};
pub use query::ViewQuery;
pub use settings::SettingKey;
pub use task_sync::{PreparedPush, SyncPolicy, TaskSyncSnapshot};
pub use templates::clean_template_name;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another process (the app, hubctl) holding the write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is busy (another Inpatient Hub window or hubctl is writing); nothing was saved, please try again")]
    Locked,
    #[error("the database is read-only (check the permissions of {path}); you can read but not save changes")]
    ReadOnly { path: String },
    #[error("the database file at {path} is damaged; nothing was saved. Ask IT to restore it from backup")]
    Corrupt { path: String },
    #[error(
        "the disk holding the database is full; nothing was saved. Free some space and try again"
    )]
    DiskFull,
    #[error("the database at {path} could not be opened: {reason}")]
    CannotOpen { path: String, reason: String },
    #[error("this database was written by a newer Inpatient Hub (schema {found}, this version knows {known}); please update the app")]
    TooNew { found: i64, known: i64 },
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(#[from] domain::ValidationError),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("stored data could not be read: {0}")]
    Decode(String),
    /// SQLCipher cannot tell a wrong key from a damaged file: both fail the page check.
    #[error("the database at {path} cannot be opened with this key: it was encrypted with a different key, or the file is damaged. Nothing was changed")]
    WrongKey { path: String },
    #[error("not a database key: {0}")]
    InvalidKey(String),
    #[error("the data folder {path} is on a network share ({kind}); the ward database must be on this PC's own disk. Choose a local folder (--data-dir or INPATIENT_HUB_DATA_DIR)")]
    NetworkShare { path: String, kind: String },
    #[error("the unencrypted database at {path} could not be encrypted ({reason}); it is unchanged and nothing was lost. Close other Inpatient Hub windows and try again, or ask IT")]
    EncryptionFailed { path: String, reason: String },
    #[error("{}", identity::refusal(*found))]
    WrongEnvironment {
        found: DatabaseEnvironment,
        expected: DatabaseEnvironment,
    },
    #[error("the database at {path} was made before databases were marked demo or live; demo mode never opens an unmarked database, because it may hold the ward's real data. Open it once without --demo if it is the ward's database, or use an empty folder for demo mode")]
    UnmarkedInDemoMode { path: String },
}

impl StoreError {
    /// The stable code the UI and scripts see (shared by every module's error type).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Locked => "database_locked",
            StoreError::ReadOnly { .. } => "database_read_only",
            StoreError::Corrupt { .. } => "database_corrupt",
            StoreError::DiskFull => "disk_full",
            StoreError::CannotOpen { .. } => "database_unavailable",
            StoreError::TooNew { .. } => "database_too_new",
            StoreError::NotFound { .. } => "not_found",
            StoreError::Conflict(_) => "conflict",
            StoreError::Invalid(_) => "invalid_input",
            StoreError::Sqlite(_) | StoreError::Decode(_) => "database_error",
            StoreError::WrongKey { .. } => "database_key_wrong",
            StoreError::InvalidKey(_) => "invalid_database_key",
            StoreError::NetworkShare { .. } => "data_folder_on_network_share",
            StoreError::EncryptionFailed { .. } => "database_encryption_failed",
            StoreError::WrongEnvironment { .. } => "wrong_database_environment",
            StoreError::UnmarkedInDemoMode { .. } => "unmarked_database_in_demo_mode",
        }
    }

    /// Maps SQLite's result codes to the faults staff and IT need told apart.
    pub(crate) fn classify(err: rusqlite::Error, path: &Path) -> StoreError {
        let path_str = path.display().to_string();
        if let rusqlite::Error::SqliteFailure(ffi, _) = &err {
            return match ffi.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Locked,
                ErrorCode::ReadOnly => StoreError::ReadOnly { path: path_str },
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    StoreError::Corrupt { path: path_str }
                }
                ErrorCode::DiskFull => StoreError::DiskFull,
                ErrorCode::CannotOpen | ErrorCode::PermissionDenied => StoreError::CannotOpen {
                    path: path_str,
                    reason: err.to_string(),
                },
                _ => StoreError::Sqlite(err),
            };
        }
        StoreError::Sqlite(err)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One open connection to the ward database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    read_only: bool,
    /// Kept so [`Store::open_another`] can open more connections (None: in memory).
    key: Option<DatabaseKey>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, encrypted under `key`, and
    /// applies pragmas and migrations. The folder is made (0700) and refused if it is on a
    /// network share; the files are this account's only (0600); a plaintext database from
    /// an earlier version is first encrypted in place (see [`at_rest`]).
    /// If the file cannot be written (permissions, read-only media) it is opened read-only
    /// so staff can still see the board; writes then fail with [`StoreError::ReadOnly`].
    pub fn open(path: &Path, key: &DatabaseKey) -> StoreResult<Store> {
        Self::open_migrating(path, key, &mut |_| Ok(()))
    }

    /// [`Store::open`] with a hook between the plaintext migration's steps (tests inject
    /// a failure there to stand for a crash).
    pub(crate) fn open_migrating(
        path: &Path,
        key: &DatabaseKey,
        hook: &mut dyn FnMut(at_rest::MigrationStep) -> StoreResult<()>,
    ) -> StoreResult<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                at_rest::prepare_folder(dir)?;
            }
        }
        match at_rest::database_file_state(path)? {
            DatabaseFile::Plaintext => at_rest::encrypt_plaintext_in_place(path, key, hook)?,
            DatabaseFile::New => at_rest::create_private_file(path)?,
            DatabaseFile::Encrypted => {}
        }
        at_rest::tighten_database_files(path);
        let store = match Self::open_with(path, key, false) {
            Ok(store) => store,
            Err(StoreError::ReadOnly { .. } | StoreError::CannotOpen { .. }) if path.exists() => {
                tracing::warn!(path = %path.display(), "database not writable; opening read-only");
                Self::open_with(path, key, true)?
            }
            Err(e) => return Err(e),
        };
        // WAL mode has made the -wal and -shm files by now.
        at_rest::tighten_database_files(path);
        Ok(store)
    }

    /// Another connection to the same database file, with the same key (for work that must
    /// never wait behind this connection, e.g. SystmOne's pacing ledger).
    pub fn open_another(&self) -> StoreResult<Store> {
        match &self.key {
            Some(key) => Self::open_with(&self.path, key, self.read_only),
            None => Err(StoreError::CannotOpen {
                path: self.path.display().to_string(),
                reason: "an in-memory database has no second connection".to_owned(),
            }),
        }
    }

    /// Another connection to the same database file that can only read (for long reads that
    /// must never hold the write lock, e.g. the background integrity check).
    pub fn open_another_read_only(&self) -> StoreResult<Store> {
        match &self.key {
            Some(key) => Self::open_with(&self.path, key, true),
            None => Err(StoreError::CannotOpen {
                path: self.path.display().to_string(),
                reason: "an in-memory database has no second connection".to_owned(),
            }),
        }
    }

    /// Opens an existing database for reading only (e.g. on read-only media, or for diagnostics).
    pub fn open_read_only(path: &Path, key: &DatabaseKey) -> StoreResult<Store> {
        Self::open_with(path, key, true)
    }

    /// How long a write waits for another process's lock before failing with [`StoreError::Locked`].
    pub fn set_busy_timeout(&self, timeout: Duration) -> StoreResult<()> {
        self.conn.busy_timeout(timeout).map_err(|e| self.err(e))
    }

    /// An in-memory store for unit tests.
    pub fn open_in_memory() -> StoreResult<Store> {
        let conn = Connection::open_in_memory().map_err(StoreError::Sqlite)?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            read_only: false,
            key: None,
        };
        store.configure()?;
        migrations::migrate(&mut store.conn).map_err(|e| store.err_migrate(e))?;
        Ok(store)
    }

    fn open_with(path: &Path, key: &DatabaseKey, read_only: bool) -> StoreResult<Store> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| StoreError::classify(e, path))?;
        at_rest::apply_key(&conn, key).map_err(|e| StoreError::classify(e, path))?;
        at_rest::check_key(&conn, path)?;
        // SQLite may open a file it cannot write (immutable file, read-only media) without
        // complaint; ask it, so the window says so before the first save fails.
        let read_only = read_only
            || conn
                .is_readonly(rusqlite::DatabaseName::Main)
                .unwrap_or(false);
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            read_only,
            key: Some(key.clone()),
        };
        store.configure()?;
        if read_only {
            let version = migrations::current_version(&store.conn).map_err(|e| store.err(e))?;
            if version != SCHEMA_VERSION {
                return Err(StoreError::ReadOnly {
                    path: path.display().to_string(),
                });
            }
        } else {
            migrations::migrate(&mut store.conn).map_err(|e| store.err_migrate(e))?;
        }
        Ok(store)
    }

    fn configure(&mut self) -> StoreResult<()> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.err(e))?;
        // No consistency check here: on a ten-year store it costs seconds at every open. A
        // damaged page is refused by SQLite when it is touched (`StoreError::Corrupt`, the
        // write rolled back), and the whole file is checked in the background (`integrity`).
        if !self.read_only {
            // WAL lets the window read while hubctl or the sync worker writes.
            self.conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
                .map_err(|e| self.err(e))?;
        }
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.err(e))?;
        audit_chain::prepare_connection(&self.conn).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The raw connection, for this crate's own tests (tampering, schema checks).
    #[cfg(test)]
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(crate) fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::classify(e, &self.path)
    }

    /// Runs `f` in an IMMEDIATE transaction: the write lock is taken up front, so two
    /// processes never interleave a read-modify-write. Any error rolls everything back.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.display().to_string(),
            });
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::classify(e, &path))?;
        let value = f(&tx).map_err(|e| match e {
            StoreError::Sqlite(inner) => StoreError::classify(inner, &path),
            other => other,
        })?;
        tx.commit().map_err(|e| StoreError::classify(e, &path))?;
        Ok(value)
    }

    /// `PRAGMA integrity_check` — used by the chaos tests and `hubctl` diagnostics.
    pub fn integrity_check(&self) -> StoreResult<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

/// A stored value that no longer validates (edited outside the app, or an older rule):
/// reported as a conversion failure of column `idx`, never a panic.
pub(crate) fn decode(idx: usize, e: impl ToString) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        e.to_string().into(),
    )
}

/// Current local time, truncated to whole milliseconds so stored and in-memory values compare equal.
pub fn now() -> chrono::DateTime<chrono::Local> {
    use chrono::{Local, SubsecRound};
    Local::now().trunc_subsecs(3)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One fixed key for the crate's tests, so a file can be opened again.
    pub(crate) fn test_key() -> DatabaseKey {
        DatabaseKey::from_hex(&"5a".repeat(32)).unwrap()
    }

    /// A raw connection to an encrypted test database (for tampering and locking tests).
    pub(crate) fn keyed_connection(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        at_rest::apply_key(&conn, &test_key()).unwrap();
        conn
    }

    #[test]
    fn pragmas_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.sqlite"), &test_key()).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn a_corrupt_file_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        std::fs::write(
            &path,
            b"this is not a database, it is a shopping list".repeat(200),
        )
        .unwrap();
        // Encrypted pages look like noise, so noise is reported as "wrong key or damaged".
        let err = Store::open(&path, &test_key()).unwrap_err();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
        assert!(err.to_string().contains("damaged"));
        // A damaged file that still starts like a plaintext database is plainly corrupt.
        let mut junk = b"SQLite format 3\0".to_vec();
        junk.extend(b"this is not a database, it is a shopping list".repeat(200));
        std::fs::write(&path, junk).unwrap();
        let err = Store::open(&path, &test_key()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("damaged"));
    }

    #[test]
    fn a_locked_database_is_reported_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        store.set_busy_timeout(Duration::from_millis(100)).unwrap();
        let other = keyed_connection(&path);
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = store
            .set_setting("Nurse A", SettingKey::CurrentUser, Some("Nurse A"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Locked), "{err:?}");
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(store.setting(SettingKey::CurrentUser).unwrap(), None);
        // Once the other writer is gone, the same write succeeds.
        store
            .set_setting("Nurse A", SettingKey::CurrentUser, Some("Nurse A"))
            .unwrap();
    }

    #[test]
    fn a_read_only_store_reads_but_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        store
            .set_setting("Nurse A", SettingKey::CurrentUser, Some("Nurse A"))
            .unwrap();
        drop(store);
        let mut ro = Store::open_read_only(&path, &test_key()).unwrap();
        assert!(ro.is_read_only());
        assert_eq!(
            ro.setting(SettingKey::CurrentUser).unwrap().as_deref(),
            Some("Nurse A")
        );
        let err = ro
            .set_setting("Nurse A", SettingKey::CurrentUser, Some("Nurse B"))
            .unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    }

    #[test]
    fn a_newer_schema_is_refused_not_downgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        drop(Store::open(&path, &test_key()).unwrap());
        let conn = keyed_connection(&path);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Store::open(&path, &test_key()).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err:?}");
    }
}
