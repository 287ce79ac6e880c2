//! Backups of the ward database, and restoring one.
//!
//! A backup is SQLite's online backup of the database into a new file keyed with the same
//! SQLCipher key, so it is encrypted exactly like the store (a backup from one PC opens only
//! with that PC's key). It is taken inside one read transaction on the source: in WAL mode
//! writers never wait for a reader, so the app keeps saving while the backup runs, and the
//! backup copies one snapshot (the backup API would otherwise restart whenever another
//! connection writes, and under steady writes might never finish). It is written beside
//! its destination as `<file>.partial`, checked (integrity, every table's rows against the
//! snapshot, the audit chain) and only then renamed into place, so a backup file that
//! exists is a whole, verified one.
//!
//! A restore checks the backup the same way on a copy beside the database, refuses while
//! any other connection has the database open, keeps the current database as
//! `<db>.before-restore-<time>`, renames the copy into place, reopens it, and audits the
//! restore in the restored database.

use crate::at_rest::{self, DatabaseFile, DatabaseKey};
use crate::{DatabaseEnvironment, Store, StoreError};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Suffix of a backup while it is written and checked.
const PARTIAL_SUFFIX: &str = ".partial";
/// Suffix of the checked copy of a backup waiting to replace the database.
const RESTORING_SUFFIX: &str = ".restoring";
/// How long a restore waits for another connection to let go of the database before it
/// says the database is in use (the app holds it open for as long as it runs).
const RESTORE_LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} already exists; nothing was written. Choose another file name, or pass --force to replace it")]
    DestinationExists { path: String },
    #[error("the backup must be a different file from the ward database ({path})")]
    SameFile { path: String },
    #[error("there is no ward database at {path} to back up")]
    NoDatabase { path: String },
    #[error("the backup could not be written to {path}: {reason}. No backup file was left behind")]
    WriteFailed { path: String, reason: String },
    #[error("the backup written to {path} did not pass its check ({reason}); it was deleted. Try again, or ask IT")]
    VerificationFailed { path: String, reason: String },
    #[error("{path} is not an Inpatient Hub backup ({reason}). Nothing was changed")]
    NotABackup { path: String, reason: String },
    #[error("the backup {path} cannot be opened with this PC's database key: it was made on another PC (restore it with that PC's escrowed key in INPATIENT_HUB_DB_KEY), or it is damaged. Nothing was changed")]
    WrongKey { path: String },
    #[error("the backup {path} is damaged ({reason}). Nothing was changed")]
    Damaged { path: String, reason: String },
    #[error("the backup's audit trail does not verify ({reason}); it is not restored. Nothing was changed")]
    AuditBroken { reason: String },
    #[error("the backup is a {found} database and this is the {expected} data folder; it is not restored. Nothing was changed")]
    WrongEnvironment {
        found: DatabaseEnvironment,
        expected: DatabaseEnvironment,
    },
    #[error("the ward database is open in another Inpatient Hub window or hubctl (or the window's background work); close every window and stop hubctl, then try again. Nothing was changed")]
    InUse,
    #[error("the restore stopped before replacing the database ({reason}); the current database is unchanged")]
    RestoreFailed { reason: String },
    #[error("the backup was put in place but does not reopen ({reason}). The previous database is kept at {kept}; ask IT")]
    ReopenFailed { reason: String, kept: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackupError {
    /// The stable code scripts see.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::DestinationExists { .. } => "backup_exists",
            BackupError::SameFile { .. } => "backup_is_the_database",
            BackupError::NoDatabase { .. } => "no_database",
            BackupError::WriteFailed { .. } => "backup_write_failed",
            BackupError::VerificationFailed { .. } => "backup_verification_failed",
            BackupError::NotABackup { .. } => "not_a_backup",
            BackupError::WrongKey { .. } => "backup_key_wrong",
            BackupError::Damaged { .. } => "backup_damaged",
            BackupError::AuditBroken { .. } => "backup_audit_broken",
            BackupError::WrongEnvironment { .. } => "backup_wrong_environment",
            BackupError::InUse => "database_in_use",
            BackupError::RestoreFailed { .. } => "restore_failed",
            BackupError::ReopenFailed { .. } => "restore_reopen_failed",
            BackupError::Store(e) => e.code(),
        }
    }
}

/// How a backup is paced: a few pages at a time with a pause between, so the app's own
/// reads and writes get the disk in between.
#[derive(Debug, Clone, Copy)]
pub struct BackupOptions {
    pub pages_per_step: i32,
    pub pause: Duration,
    /// Replace an existing file at the destination.
    pub overwrite: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            // 256 pages of 4 KiB: 1 MiB per step, a few milliseconds of disk time.
            pages_per_step: 256,
            pause: Duration::from_millis(5),
            overwrite: false,
        }
    }
}

/// How far a long step has got (pages for a backup, bytes for a restore's copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    pub done: u64,
    pub total: u64,
}

/// One table and its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

/// The newest audit row: what a backup or restore is anchored to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    pub id: i64,
    pub hash: Option<String>,
}

/// What a checked backup holds. No patient data: table names, counts and the audit head.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub file: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    pub environment: Option<DatabaseEnvironment>,
    pub tables: Vec<TableRows>,
    pub audit_rows: u64,
    pub audit_head: Option<AuditHead>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    /// The backup as checked before it was put in place.
    pub backup: BackupSummary,
    /// Where the database that was replaced is kept (none when there was none).
    pub previous_kept_as: Option<PathBuf>,
    /// The audit row recording the restore, in the restored database.
    pub restore_audit_id: i64,
}

/// The source as of the backup's snapshot, to hold the copy against.
struct Snapshot {
    schema_version: i64,
    tables: Vec<(String, i64)>,
    audit_head: Option<AuditHead>,
}

fn read_snapshot(conn: &Connection) -> rusqlite::Result<Snapshot> {
    let schema_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables = at_rest::row_counts(conn, "main")?;
    Ok(Snapshot {
        schema_version,
        tables,
        audit_head: audit_head(conn)?,
    })
}

fn audit_head(conn: &Connection) -> rusqlite::Result<Option<AuditHead>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok(AuditHead {
                id: r.get(0)?,
                hash: r.get(1)?,
            })
        },
    )
    .optional()
}

/// Removes a database file and the journal files SQLite may have left beside it.
fn remove_database_files(path: &Path) {
    for file in [
        path.to_path_buf(),
        at_rest::sidecar(path, "-journal"),
        at_rest::sidecar(path, "-wal"),
        at_rest::sidecar(path, "-shm"),
    ] {
        if let Err(e) = at_rest::remove_if_present(&file) {
            tracing::warn!(path = %file.display(), error = %e, "could not remove a leftover file");
        }
    }
}

/// Creates `path`, which must not exist, readable by this account only.
fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

impl Store {
    /// Writes a verified, encrypted backup of this database to `dest` (see the module doc).
    /// `progress` is called after every step with pages copied and pages in all.
    pub fn backup_to(
        &self,
        dest: &Path,
        options: &BackupOptions,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> Result<BackupSummary, BackupError> {
        let dest_text = dest.display().to_string();
        let key = self.key.as_ref().ok_or_else(|| BackupError::NoDatabase {
            path: self.path.display().to_string(),
        })?;
        if same_file(dest, &self.path) {
            return Err(BackupError::SameFile { path: dest_text });
        }
        if dest.exists() && !options.overwrite {
            return Err(BackupError::DestinationExists { path: dest_text });
        }
        let partial = at_rest::sidecar(dest, PARTIAL_SUFFIX);
        // A `.partial` is only ever ours, left by a backup that was interrupted.
        remove_database_files(&partial);
        let write_failed = |reason: String| BackupError::WriteFailed {
            path: dest_text.clone(),
            reason,
        };
        create_new_private(&partial).map_err(|e| write_failed(e.to_string()))?;
        let written = self
            .copy_snapshot(&partial, key, options, progress)
            .map_err(|e| write_failed(e.to_string()))
            .and_then(|snapshot| {
                verify_backup_file(&partial, key, Some(&snapshot)).map_err(|e| match e {
                    BackupError::WriteFailed { .. } => e,
                    other => BackupError::VerificationFailed {
                        path: dest_text.clone(),
                        reason: other.to_string(),
                    },
                })
            });
        let mut summary = match written {
            Ok(summary) => summary,
            Err(e) => {
                remove_database_files(&partial);
                return Err(e);
            }
        };
        // Checked again: a file may have appeared at `dest` while the backup ran.
        if dest.exists() && !options.overwrite {
            remove_database_files(&partial);
            return Err(BackupError::DestinationExists { path: dest_text });
        }
        if let Err(e) = std::fs::rename(&partial, dest).and_then(|()| at_rest::sync_folder(dest)) {
            remove_database_files(&partial);
            return Err(write_failed(format!("putting the backup in place: {e}")));
        }
        summary.file = dest.to_path_buf();
        tracing::info!(
            bytes = summary.bytes,
            audit_rows = summary.audit_rows,
            "backup written and verified"
        );
        Ok(summary)
    }

    /// Copies one read snapshot of this database into `target` (an empty file) under `key`.
    fn copy_snapshot(
        &self,
        target: &Path,
        key: &DatabaseKey,
        options: &BackupOptions,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> rusqlite::Result<Snapshot> {
        let mut dest = Connection::open_with_flags(
            target,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The same key: SQLCipher copies pages as they are only between databases keyed
        // alike, and the backup is then encrypted exactly like the store.
        at_rest::apply_key(&dest, key)?;
        // The snapshot: everything read until COMMIT sees the database as it is now, and
        // the backup steps below reuse this read transaction instead of opening their own.
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let copied: rusqlite::Result<Snapshot> = (|| {
            let snapshot = read_snapshot(&self.conn)?;
            let backup = Backup::new(&self.conn, &mut dest)?;
            loop {
                let step = backup.step(options.pages_per_step)?;
                let p = backup.progress();
                let total = u64::try_from(p.pagecount).unwrap_or(0);
                let remaining = u64::try_from(p.remaining).unwrap_or(0);
                progress(CopyProgress {
                    done: total.saturating_sub(remaining),
                    total,
                });
                match step {
                    StepResult::Done => break,
                    // More, or Busy/Locked: the destination is ours alone, so that is the
                    // source's lock held briefly by a checkpoint; wait and step again.
                    _ => std::thread::sleep(options.pause),
                }
            }
            Ok(snapshot)
        })();
        // The read transaction only ever read: ending it cannot lose anything.
        let ended = self.conn.execute_batch("COMMIT");
        let snapshot = copied?;
        ended?;
        // The copy carries the source's WAL flag; a backup is one self-contained file.
        dest.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))?;
        dest.close().map_err(|(_, e)| e)?;
        sync_file(target).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                Some(format!("flushing the backup: {e}")),
            )
        })?;
        Ok(snapshot)
    }

    /// Audits a restore in the restored database, chained after the backup's own rows.
    fn record_restore(
        &mut self,
        actor: &str,
        backup: &BackupSummary,
        previous: Option<&Path>,
    ) -> Result<i64, StoreError> {
        let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let detail = serde_json::json!({
            "backup_file": file_name(&backup.file),
            "backup_audit_head_id": backup.audit_head.as_ref().map(|h| h.id),
            "backup_audit_head_hash": backup.audit_head.as_ref().and_then(|h| h.hash.clone()),
            "previous_database_kept_as": previous.and_then(file_name),
        });
        let id = self.write(|tx| {
            crate::audit::record(tx, actor, "store.restored", "database", None, detail)
        })?;
        Ok(id.0)
    }
}

/// Checks a backup file as written by [`Store::backup_to`]: encrypted, opens with `key`,
/// `PRAGMA integrity_check`, every table's rows equal to `expected` (when given), and the
/// whole audit chain intact.
pub fn verify_backup(path: &Path, key: &DatabaseKey) -> Result<BackupSummary, BackupError> {
    verify_backup_file(path, key, None)
}

fn verify_backup_file(
    path: &Path,
    key: &DatabaseKey,
    expected: Option<&Snapshot>,
) -> Result<BackupSummary, BackupError> {
    refuse_unencrypted(path)?;
    let store = Store::open_read_only(path, key).map_err(|e| opening_error(e, path))?;
    let summary = inspect(&store, path)?;
    if let Some(expected) = expected {
        let tables: Vec<(String, i64)> = summary
            .tables
            .iter()
            .map(|t| (t.table.clone(), t.rows))
            .collect();
        if tables != expected.tables {
            return Err(BackupError::Damaged {
                path: path.display().to_string(),
                reason: "its tables do not hold the same rows as the database at the snapshot"
                    .to_owned(),
            });
        }
        if summary.schema_version != expected.schema_version
            || summary.audit_head != expected.audit_head
        {
            return Err(BackupError::Damaged {
                path: path.display().to_string(),
                reason: "its schema version or newest audit row differs from the snapshot"
                    .to_owned(),
            });
        }
    }
    Ok(summary)
}

fn refuse_unencrypted(path: &Path) -> Result<(), BackupError> {
    let not_a_backup = |reason: &str| BackupError::NotABackup {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    };
    if !path.is_file() {
        return Err(not_a_backup("there is no such file"));
    }
    match at_rest::database_file_state(path)? {
        DatabaseFile::Encrypted => Ok(()),
        DatabaseFile::New => Err(not_a_backup("the file is empty")),
        DatabaseFile::Plaintext => Err(not_a_backup(
            "it is an unencrypted SQLite file, and Inpatient Hub backups are always encrypted",
        )),
    }
}

/// The opening errors staff and IT need told apart, for a backup.
fn opening_error(err: StoreError, path: &Path) -> BackupError {
    let path_text = path.display().to_string();
    match err {
        StoreError::WrongKey { .. } => BackupError::WrongKey { path: path_text },
        StoreError::Corrupt { .. } => BackupError::Damaged {
            path: path_text,
            reason: "SQLite reports the file damaged".to_owned(),
        },
        StoreError::TooNew { found, known } => BackupError::NotABackup {
            path: path_text,
            reason: format!(
                "it was made by a newer Inpatient Hub (schema {found}, this version knows {known})"
            ),
        },
        other => BackupError::Store(other),
    }
}

/// The full checks on an open backup, and what it holds.
fn inspect(store: &Store, path: &Path) -> Result<BackupSummary, BackupError> {
    let damaged = |reason: String| BackupError::Damaged {
        path: path.display().to_string(),
        reason,
    };
    let integrity = store.integrity_check()?;
    if integrity != "ok" {
        return Err(damaged(format!("integrity check: {integrity}")));
    }
    let chain = store.verify_audit_chain()?;
    if !chain.is_intact() {
        let reason = chain
            .first_break
            .as_ref()
            .map(|b| b.explanation.clone())
            .into_iter()
            .chain(chain.trigger_problems.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(BackupError::AuditBroken { reason });
    }
    let snapshot = read_snapshot(&store.conn).map_err(|e| damaged(e.to_string()))?;
    let bytes = std::fs::metadata(path)
        .map_err(|e| damaged(e.to_string()))?
        .len();
    Ok(BackupSummary {
        file: path.to_path_buf(),
        bytes,
        schema_version: snapshot.schema_version,
        environment: store.environment()?,
        tables: snapshot
            .tables
            .into_iter()
            .map(|(table, rows)| TableRows { table, rows })
            .collect(),
        audit_rows: chain.rows_checked,
        audit_head: snapshot.audit_head,
    })
}

/// Replaces the database at `db_path` with the backup at `backup`, as the module doc says.
/// `expected` is the environment of the folder being restored into; `actor` is who is
/// restoring (the OS account), recorded in the restore's audit row; `stamp` names the
/// kept copy of the current database (`<db>.before-restore-<stamp>`).
pub fn restore_database(
    db_path: &Path,
    backup: &Path,
    key: &DatabaseKey,
    expected: DatabaseEnvironment,
    actor: &str,
    stamp: &str,
    progress: &mut dyn FnMut(CopyProgress),
) -> Result<RestoreOutcome, BackupError> {
    refuse_unencrypted(backup)?;
    if same_file(backup, db_path) {
        return Err(BackupError::SameFile {
            path: backup.display().to_string(),
        });
    }
    if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        at_rest::prepare_folder(dir)?;
    }
    let candidate = at_rest::sidecar(db_path, RESTORING_SUFFIX);
    remove_database_files(&candidate);
    let prepared = prepare_candidate(backup, &candidate, key, expected, progress);
    let summary = match prepared {
        Ok(summary) => summary,
        Err(e) => {
            remove_database_files(&candidate);
            return Err(e);
        }
    };
    let previous = match replace_database(db_path, &candidate, key, stamp) {
        Ok(previous) => previous,
        Err(e) => {
            remove_database_files(&candidate);
            return Err(e);
        }
    };
    let kept_text = previous.as_ref().map_or_else(
        || "(there was none)".to_owned(),
        |p| p.display().to_string(),
    );
    let reopen_failed = |e: StoreError| BackupError::ReopenFailed {
        reason: e.to_string(),
        kept: kept_text.clone(),
    };
    let mut store = Store::open(db_path, key).map_err(reopen_failed)?;
    store.claim_environment(expected).map_err(reopen_failed)?;
    store
        .set_acting_identity(actor, None)
        .map_err(reopen_failed)?;
    let restore_audit_id = store
        .record_restore(actor, &summary, previous.as_deref())
        .map_err(reopen_failed)?;
    tracing::info!(restore_audit_id, "database restored from a backup");
    Ok(RestoreOutcome {
        backup: BackupSummary {
            file: backup.to_path_buf(),
            ..summary
        },
        previous_kept_as: previous,
        restore_audit_id,
    })
}

/// Copies the backup to `candidate` (0600, beside the database) and checks the copy: the
/// key opens it, it is whole, its audit chain verifies, and it belongs to this environment.
/// The copy is brought to this version's schema, as any open would.
fn prepare_candidate(
    backup: &Path,
    candidate: &Path,
    key: &DatabaseKey,
    expected: DatabaseEnvironment,
    progress: &mut dyn FnMut(CopyProgress),
) -> Result<BackupSummary, BackupError> {
    let failed = |reason: String| BackupError::RestoreFailed { reason };
    copy_with_progress(backup, candidate, progress)
        .map_err(|e| failed(format!("copying the backup beside the database: {e}")))?;
    let mut store = Store::open(candidate, key).map_err(|e| opening_error(e, backup))?;
    match store.claim_environment(expected) {
        Ok(()) => {}
        Err(StoreError::WrongEnvironment { found, expected }) => {
            return Err(BackupError::WrongEnvironment { found, expected })
        }
        Err(StoreError::UnmarkedInDemoMode { .. }) => {
            return Err(BackupError::WrongEnvironment {
                found: DatabaseEnvironment::Live,
                expected,
            })
        }
        Err(e) => return Err(e.into()),
    }
    let summary = inspect(&store, backup).map_err(|e| match e {
        BackupError::Damaged { reason, .. } => BackupError::Damaged {
            path: backup.display().to_string(),
            reason,
        },
        other => other,
    })?;
    // One self-contained file to rename into place, with nothing left in a -wal beside it.
    store
        .conn
        .pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))
        .map_err(|e| failed(format!("finishing the checked copy: {e}")))?;
    drop(store);
    sync_file(candidate).map_err(|e| failed(format!("flushing the checked copy: {e}")))?;
    Ok(summary)
}

fn copy_with_progress(
    from: &Path,
    to: &Path,
    progress: &mut dyn FnMut(CopyProgress),
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut source = std::fs::File::open(from)?;
    let total = source.metadata()?.len();
    let mut target = create_new_private(to)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        target.write_all(&buffer[..n])?;
        done += n as u64;
        progress(CopyProgress { done, total });
    }
    target.sync_all()
}

/// Takes the database from every other connection, keeps it as
/// `<db>.before-restore-<stamp>`, and renames `candidate` over it. Returns where the old
/// database is kept (none when there was no database).
fn replace_database(
    db_path: &Path,
    candidate: &Path,
    key: &DatabaseKey,
    stamp: &str,
) -> Result<Option<PathBuf>, BackupError> {
    let failed = |reason: String| BackupError::RestoreFailed { reason };
    let current = at_rest::database_file_state(db_path)?;
    let lock = match current {
        DatabaseFile::New => None,
        DatabaseFile::Plaintext | DatabaseFile::Encrypted => {
            lock_exclusively(db_path, (current == DatabaseFile::Encrypted).then_some(key))?
        }
    };
    let previous = if db_path.exists() {
        let kept = at_rest::sidecar(db_path, &format!(".before-restore-{stamp}"));
        keep_copy(db_path, &kept).map_err(|e| {
            failed(format!(
                "keeping the current database as {}: {e}",
                kept.display()
            ))
        })?;
        // Rows a database that would not open may still hold in its write-ahead log.
        let wal = at_rest::sidecar(db_path, "-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            keep_copy(&wal, &at_rest::sidecar(&kept, "-wal"))
                .map_err(|e| failed(format!("keeping the current write-ahead log: {e}")))?;
        }
        Some(kept)
    } else {
        None
    };
    // Windows cannot rename over a file that is open; elsewhere the lock is held across the
    // rename, so a window starting now finds the database busy instead of the old file.
    #[cfg(not(unix))]
    drop(lock);
    for leftover in [
        at_rest::sidecar(db_path, "-wal"),
        at_rest::sidecar(db_path, "-shm"),
        at_rest::sidecar(db_path, "-journal"),
    ] {
        at_rest::remove_if_present(&leftover)
            .map_err(|e| failed(format!("removing {}: {e}", leftover.display())))?;
    }
    std::fs::rename(candidate, db_path)
        .and_then(|()| at_rest::sync_folder(db_path))
        .map_err(|e| failed(format!("putting the backup in place: {e}")))?;
    #[cfg(unix)]
    drop(lock);
    Ok(previous)
}

/// Proves no other connection has the database open, and keeps it so until the returned
/// connection is dropped: leaving WAL mode needs every other connection closed (the app
/// keeps one open while it runs), and `locking_mode = EXCLUSIVE` then keeps the exclusive
/// lock. `None` when the database does not open with this key: then no Inpatient Hub
/// process can be using it either, and it is kept aside as it is.
fn lock_exclusively(
    db_path: &Path,
    key: Option<&DatabaseKey>,
) -> Result<Option<Connection>, BackupError> {
    let in_use = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    };
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| BackupError::Store(StoreError::classify(e, db_path)))?;
    if let Some(key) = key {
        at_rest::apply_key(&conn, key).map_err(|e| StoreError::classify(e, db_path))?;
    }
    conn.busy_timeout(RESTORE_LOCK_WAIT)
        .map_err(|e| StoreError::classify(e, db_path))?;
    match at_rest::check_key(&conn, db_path) {
        Ok(()) => {}
        Err(StoreError::WrongKey { .. } | StoreError::Corrupt { .. }) => {
            tracing::warn!("the current database does not open; it is kept aside as it is");
            return Ok(None);
        }
        Err(StoreError::Locked) => return Err(BackupError::InUse),
        Err(e) => return Err(e.into()),
    }
    let take = || -> rusqlite::Result<()> {
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))?;
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
    };
    match take() {
        Ok(()) => Ok(Some(conn)),
        Err(e) if in_use(&e) => Err(BackupError::InUse),
        Err(e) => Err(BackupError::RestoreFailed {
            reason: format!("taking the database from other connections: {e}"),
        }),
    }
}

/// Copies `from` to a new file `to` (0600) and flushes it.
fn keep_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut target = create_new_private(to)?;
    std::io::copy(&mut source, &mut target)?;
    target.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::test_key;
    use crate::{NewPatient, SettingKey};
    use domain::{BedLabel, PatientName};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    fn ward(dir: &Path, patients: usize) -> (PathBuf, Store) {
        let path = dir.join("inpatient-hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        store.claim_environment(DatabaseEnvironment::Live).unwrap();
        store.set_acting_identity("nurse.a", None).unwrap();
        for n in 0..patients {
            add_patient(&mut store, n);
        }
        (path, store)
    }

    fn add_patient(store: &mut Store, n: usize) {
        store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse(&format!("Bed {}", n % 30 + 1)).unwrap(),
                    name: PatientName::parse(&format!("Test Patient {n}")).unwrap(),
                    nhs_number: None,
                },
            )
            .unwrap();
    }

    fn patients(store: &Store) -> i64 {
        store
            .conn
            .query_row("SELECT count(*) FROM patients", [], |r| r.get(0))
            .unwrap()
    }

    fn no_progress() -> impl FnMut(CopyProgress) {
        |_| {}
    }

    #[test]
    fn a_backup_taken_while_another_connection_writes_is_consistent_encrypted_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut store) = ward(dir.path(), 0);
        // Enough pages that the backup takes many steps.
        for n in 0..400 {
            add_patient(&mut store, n);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let writer = {
            let (stop, writes, path) = (stop.clone(), writes.clone(), path.clone());
            std::thread::spawn(move || {
                let mut other = Store::open(&path, &test_key()).unwrap();
                other.set_acting_identity("nurse.b", None).unwrap();
                let mut n = 1000;
                while !stop.load(Ordering::SeqCst) {
                    add_patient(&mut other, n);
                    n += 1;
                    writes.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        while writes.load(Ordering::SeqCst) < 5 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let dest = dir.path().join("ward-backup.ihb");
        let options = BackupOptions {
            pages_per_step: 2,
            pause: Duration::from_millis(2),
            overwrite: false,
        };
        let before = writes.load(Ordering::SeqCst);
        let mut steps = 0;
        let summary = store
            .backup_to(&dest, &options, &mut |_| steps += 1)
            .unwrap();
        let during = writes.load(Ordering::SeqCst) - before;
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();

        assert!(steps > 10, "the backup ran in steps ({steps})");
        assert!(during > 0, "the writer was not starved by the backup");
        // Encrypted like the store: no plaintext SQLite header anywhere at the start.
        let bytes = std::fs::read(&dest).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3\0"));
        assert_eq!(summary.bytes, bytes.len() as u64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!at_rest::sidecar(&dest, PARTIAL_SUFFIX).exists());
        // The backup is one snapshot: its own audit chain verifies, and its patient rows
        // match its audit head (every patient added wrote one audit row).
        let checked = verify_backup(&dest, &test_key()).unwrap();
        assert_eq!(checked.tables, summary.tables);
        assert_eq!(checked.audit_head, summary.audit_head);
        let backup = Store::open_read_only(&dest, &test_key()).unwrap();
        let head = summary.audit_head.as_ref().unwrap().id;
        let audited_patients: i64 = backup
            .conn
            .query_row(
                "SELECT count(*) FROM audit WHERE entity = 'patient' AND id <= ?1",
                [head],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(patients(&backup), audited_patients);
        assert!(
            patients(&store) > patients(&backup),
            "writes went on after the snapshot"
        );
        assert_eq!(
            backup.environment().unwrap(),
            Some(DatabaseEnvironment::Live)
        );
    }

    #[test]
    fn an_existing_file_is_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let (_, store) = ward(dir.path(), 3);
        let dest = dir.path().join("backup.ihb");
        std::fs::write(&dest, b"someone's file").unwrap();
        let err = store
            .backup_to(&dest, &BackupOptions::default(), &mut no_progress())
            .unwrap_err();
        assert_eq!(err.code(), "backup_exists");
        assert_eq!(std::fs::read(&dest).unwrap(), b"someone's file");
        let forced = BackupOptions {
            overwrite: true,
            ..BackupOptions::default()
        };
        store.backup_to(&dest, &forced, &mut no_progress()).unwrap();
        verify_backup(&dest, &test_key()).unwrap();
        let err = store
            .backup_to(store.path(), &forced, &mut no_progress())
            .unwrap_err();
        assert_eq!(err.code(), "backup_is_the_database");
    }

    #[test]
    fn a_restore_brings_the_data_back_keeps_the_previous_database_and_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut store) = ward(dir.path(), 3);
        let dest = dir.path().join("backup.ihb");
        let backup = store
            .backup_to(&dest, &BackupOptions::default(), &mut no_progress())
            .unwrap();
        for n in 3..8 {
            add_patient(&mut store, n);
        }
        drop(store);

        let outcome = restore_database(
            &path,
            &dest,
            &test_key(),
            DatabaseEnvironment::Live,
            "it.admin",
            "20260101T120000",
            &mut no_progress(),
        )
        .unwrap();
        let kept = outcome.previous_kept_as.clone().unwrap();
        assert_eq!(
            kept.file_name().unwrap(),
            "inpatient-hub.sqlite.before-restore-20260101T120000"
        );
        let restored = Store::open(&path, &test_key()).unwrap();
        assert_eq!(patients(&restored), 3);
        assert!(restored.verify_audit_chain().unwrap().is_intact());
        let newest = restored
            .audit_entries(&crate::AuditQuery::default())
            .unwrap()
            .remove(0);
        assert_eq!(newest.action, "store.restored");
        assert_eq!(newest.id.0, outcome.restore_audit_id);
        assert_eq!(newest.os_account.as_deref(), Some("it.admin"));
        let head = backup.audit_head.unwrap();
        assert_eq!(newest.detail["backup_audit_head_id"], head.id);
        assert_eq!(newest.detail["backup_audit_head_hash"], head.hash.unwrap());
        assert_eq!(
            newest.id.0,
            head.id + 1,
            "chained straight after the backup's rows"
        );
        // The database that was replaced is kept whole, private, and still opens.
        let previous = Store::open_read_only(&kept, &test_key()).unwrap();
        assert_eq!(patients(&previous), 8);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!at_rest::sidecar(&path, RESTORING_SUFFIX).exists());
    }

    /// Runs a restore that must be refused, and checks the current database is untouched.
    fn assert_refused(path: &Path, backup: &Path, expected: DatabaseEnvironment, code: &str) {
        let before = std::fs::read(path).unwrap();
        let err = restore_database(
            path,
            backup,
            &test_key(),
            expected,
            "it.admin",
            "20260101T120000",
            &mut no_progress(),
        )
        .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "current database untouched"
        );
        let folder: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !folder
                .iter()
                .any(|f| f.contains("restoring") || f.contains("before-restore")),
            "{folder:?}"
        );
    }

    #[test]
    fn a_corrupt_wrong_key_or_wrong_environment_backup_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = ward(dir.path(), 2);
        drop(store);
        let others = tempfile::tempdir().unwrap();

        let corrupt = others.path().join("corrupt.ihb");
        std::fs::write(&corrupt, vec![0x5a; 64 * 1024]).unwrap();
        assert_refused(
            &path,
            &corrupt,
            DatabaseEnvironment::Live,
            "backup_key_wrong",
        );

        let plaintext = others.path().join("plain.sqlite");
        Connection::open(&plaintext)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_refused(&path, &plaintext, DatabaseEnvironment::Live, "not_a_backup");

        // Another PC's backup: encrypted under its own key.
        let other_pc = others.path().join("other-pc");
        let other_key = DatabaseKey::generate().unwrap();
        let mut foreign = Store::open(&other_pc.join("hub.sqlite"), &other_key).unwrap();
        foreign
            .claim_environment(DatabaseEnvironment::Live)
            .unwrap();
        let foreign_backup = others.path().join("foreign.ihb");
        foreign
            .backup_to(
                &foreign_backup,
                &BackupOptions::default(),
                &mut no_progress(),
            )
            .unwrap();
        assert_refused(
            &path,
            &foreign_backup,
            DatabaseEnvironment::Live,
            "backup_key_wrong",
        );
        let err = restore_database(
            &path,
            &foreign_backup,
            &test_key(),
            DatabaseEnvironment::Live,
            "it.admin",
            "x",
            &mut no_progress(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("INPATIENT_HUB_DB_KEY"), "{err}");

        // A demo backup into the ward's live folder.
        let demo_dir = others.path().join("demo");
        let mut demo = Store::open(&demo_dir.join("hub.sqlite"), &test_key()).unwrap();
        demo.claim_environment(DatabaseEnvironment::Demo).unwrap();
        let demo_backup = others.path().join("demo.ihb");
        demo.backup_to(&demo_backup, &BackupOptions::default(), &mut no_progress())
            .unwrap();
        assert_refused(
            &path,
            &demo_backup,
            DatabaseEnvironment::Live,
            "backup_wrong_environment",
        );

        // A backup damaged after it was written (one page's bytes flipped).
        let (_, good) = ward(&others.path().join("good"), 50);
        let damaged = others.path().join("damaged.ihb");
        good.backup_to(&damaged, &BackupOptions::default(), &mut no_progress())
            .unwrap();
        let mut bytes = std::fs::read(&damaged).unwrap();
        let middle = bytes.len() / 2;
        for b in &mut bytes[middle..middle + 512] {
            *b ^= 0xff;
        }
        std::fs::write(&damaged, bytes).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = restore_database(
            &path,
            &damaged,
            &test_key(),
            DatabaseEnvironment::Live,
            "it.admin",
            "x",
            &mut no_progress(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err.code(),
                "backup_damaged" | "backup_key_wrong" | "database_corrupt"
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_backup_with_a_broken_audit_chain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = ward(dir.path(), 2);
        drop(store);
        let others = tempfile::tempdir().unwrap();
        let (_, mut tampered) = ward(others.path(), 3);
        tampered
            .connection()
            .execute_batch(
                "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;",
            )
            .unwrap();
        let backup = others.path().join("tampered.ihb");
        let err = tampered
            .backup_to(&backup, &BackupOptions::default(), &mut no_progress())
            .unwrap_err();
        assert_eq!(err.code(), "backup_verification_failed", "{err}");
        assert!(!backup.exists(), "a failed backup leaves no file");
        assert!(!at_rest::sidecar(&backup, PARTIAL_SUFFIX).exists());
        // The same database copied by hand is refused at restore.
        let copy = others.path().join("copied.ihb");
        let original = tampered.path().to_path_buf();
        // Closing the last connection checkpoints the write-ahead log into the file.
        drop(tampered);
        std::fs::copy(original, &copy).unwrap();
        assert_refused(
            &path,
            &copy,
            DatabaseEnvironment::Live,
            "backup_audit_broken",
        );
    }

    #[test]
    fn a_restore_is_refused_while_another_connection_has_the_database_open() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut store) = ward(dir.path(), 2);
        let dest = dir.path().join("backup.ihb");
        store
            .backup_to(&dest, &BackupOptions::default(), &mut no_progress())
            .unwrap();
        store
            .set_setting("Nurse A", SettingKey::CurrentUser, Some("Nurse A"))
            .unwrap();
        // `store` stays open, as the app's would.
        assert_refused(&path, &dest, DatabaseEnvironment::Live, "database_in_use");
        assert_eq!(
            store.setting(SettingKey::CurrentUser).unwrap().as_deref(),
            Some("Nurse A")
        );
        drop(store);
        restore_database(
            &path,
            &dest,
            &test_key(),
            DatabaseEnvironment::Live,
            "it.admin",
            "20260101T120001",
            &mut no_progress(),
        )
        .unwrap();
    }
}
