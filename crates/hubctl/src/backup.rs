//! `hubctl backup` and `hubctl restore`: the commands around `store::backup`, which does
//! the work and all the checks. Here: finding the key, asking for confirmation, progress
//! on standard error, and the summary.

use crate::commands::print;
use crate::progress::{Progress, Unit};
use crate::Out;
use hub::db_key::{self, DatabaseKey, DbKeyError};
use hub::{config, DatabaseEnvironment, HubError};
use std::path::Path;
use store::backup::{BackupError, BackupOptions, BackupSummary, RestoreOutcome};
use store::{DatabaseFile, Store};

/// The summary lines shared by both commands (no patient data: counts and hashes).
fn summary_lines(s: &BackupSummary) -> Vec<String> {
    let rows: i64 = s.tables.iter().map(|t| t.rows).sum();
    let head = s.audit_head.as_ref().map_or_else(
        || "none (no audit rows)".to_owned(),
        |h| format!("row {} {}", h.id, h.hash.as_deref().unwrap_or("(no hash)")),
    );
    vec![
        format!("file: {} ({} bytes, encrypted)", s.file.display(), s.bytes),
        format!(
            "database: {} (schema {})",
            s.environment
                .map_or("unmarked", DatabaseEnvironment::as_str),
            s.schema_version
        ),
        format!("tables: {} ({rows} rows in all)", s.tables.len()),
        format!("audit rows: {} (chain verified)", s.audit_rows),
        format!("audit chain head: {head}"),
    ]
}

pub fn backup(
    out: Out,
    data_dir: &Path,
    environment: DatabaseEnvironment,
    file: &Path,
    force: bool,
) -> Result<(), HubError> {
    let db_path = config::database_path(data_dir);
    if store::at_rest::database_file_state(&db_path)? == DatabaseFile::New {
        return Err(BackupError::NoDatabase {
            path: db_path.display().to_string(),
        }
        .into());
    }
    let (key, source) = db_key::resolve_database_key(&db_path)?;
    let mut store = Store::open(&db_path, &key).map_err(|e| match e {
        store::StoreError::WrongKey { path } => HubError::DatabaseKey(match source {
            db_key::DbKeySource::Environment => DbKeyError::WrongEnvironmentKey { path },
            _ => DbKeyError::WrongKeychainKey { path },
        }),
        other => other.into(),
    })?;
    store.claim_environment(environment)?;
    let options = BackupOptions {
        overwrite: force,
        ..BackupOptions::default()
    };
    let mut progress = Progress::new("backup", Unit::Pages);
    let result = store.backup_to(file, &options, &mut |p| {
        progress.update(p.done, p.total, None)
    });
    progress.finish(if result.is_ok() {
        "written and verified"
    } else {
        "failed"
    });
    let summary = result?;
    print(out, &summary, |s| {
        let mut lines =
            vec!["backup written and verified (integrity, rows, audit chain)".to_owned()];
        lines.extend(summary_lines(s));
        lines.push(
            "it opens only with this PC's database key: keep the key's escrow copy (`hubctl db-key export`)"
                .to_owned(),
        );
        lines.join("\n")
    })
}

/// The key a backup is opened with: the one that opens the ward database, or, with no
/// database yet (a rebuilt PC), `INPATIENT_HUB_DB_KEY` or this account's keychain — never a
/// new key, which could open no backup. The flag: the key came from `INPATIENT_HUB_DB_KEY`
/// for a PC with no database yet, so this account's keychain does not hold it.
fn restore_key(db_path: &Path) -> Result<(DatabaseKey, bool), HubError> {
    if store::at_rest::database_file_state(db_path)? == DatabaseFile::Encrypted {
        // The key that opens the database this PC already uses: nothing new to keep.
        let (key, _) = db_key::resolve_database_key(db_path)?;
        return Ok((key, false));
    }
    if let Some(raw) = std::env::var(db_key::DB_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let key = DatabaseKey::from_hex(&raw)
            .map_err(|e| DbKeyError::BadEnvironmentKey(e.to_string()))?;
        return Ok((key, true));
    }
    match db_key::export_database_key() {
        Ok(key) => Ok((key, false)),
        Err(DbKeyError::Keychain(_)) => Err(HubError::BadRequest(format!(
            "there is no database key on this PC yet, and a backup opens only with the key of the PC it was made on: set {} to that PC's escrowed key and run the restore again",
            db_key::DB_KEY_ENV
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Asks at a terminal; elsewhere only `--yes` confirms.
fn confirmed(db_path: &Path, backup: &Path) -> Result<bool, HubError> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(HubError::BadRequest(
            "restore replaces the ward database: pass --yes to confirm (or run it at a terminal to be asked). Nothing was changed".to_owned(),
        ));
    }
    let mut stderr = std::io::stderr();
    // Best effort: if the prompt cannot be shown, the answer read below still decides.
    let _ = write!(
        stderr,
        "Replace the ward database {} with the backup {}? The current database is kept beside it. Type yes to go on: ",
        db_path.display(),
        backup.display()
    );
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| HubError::BadRequest(format!("could not read the answer: {e}")))?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

pub fn restore(
    out: Out,
    data_dir: &Path,
    environment: DatabaseEnvironment,
    file: &Path,
    yes: bool,
) -> Result<(), HubError> {
    let db_path = config::database_path(data_dir);
    if !yes && !confirmed(&db_path, file)? {
        return Err(HubError::BadRequest(
            "restore not confirmed; nothing was changed".to_owned(),
        ));
    }
    let (key, key_from_environment) = restore_key(&db_path)?;
    // Recorded in the restore's audit row: who restored, from the OS, never from input.
    let actor = hub::os_account()?;
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
    let mut progress = Progress::new("restore", Unit::Bytes);
    let result = store::backup::restore_database(
        &db_path,
        file,
        &key,
        environment,
        &actor,
        &stamp,
        &mut |p| progress.update(p.done, p.total, None),
    );
    progress.finish(if result.is_ok() { "restored" } else { "failed" });
    let outcome: RestoreOutcome = result?;
    print(out, &outcome, |o| {
        let mut lines = vec![format!(
            "restored {} from the backup (checked: key, integrity, audit chain, {} environment)",
            db_path.display(),
            environment
        )];
        lines.extend(summary_lines(&o.backup));
        lines.push(match &o.previous_kept_as {
            Some(kept) => format!("the previous database is kept as {}", kept.display()),
            None => "there was no previous database".to_owned(),
        });
        lines.push(format!(
            "audited as row {} (store.restored) in the restored database",
            o.restore_audit_id
        ));
        if key_from_environment {
            lines.push(format!(
                "the restored database opens with the key in {}: save it in this account's keychain with `hubctl db-key set`",
                db_key::DB_KEY_ENV
            ));
        }
        lines.join("\n")
    })
}
