//! The simulator's persisted state in `<sim data dir>/simulator.sqlite`: the generated records
//! plus everything filed through the API, the device registry, the patient open on screen,
//! settings (approval mode, faults, logged-in user) and the request log.
//!
//! The server reads mutable state afresh for every request, so `SimControl` in another
//! process (`hubctl simctl …`) can open a patient, complete a task or change the faults
//! while the server runs. WAL and a busy timeout let both processes share the file.

use super::data::{self, SimCode, SimEvent, SimPatient, SimTask};
use super::faults::FaultRates;
use super::profile::SimProfile;
use super::SimError;
use chrono::{Local, NaiveDate, NaiveDateTime, SubsecRound};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DB_FILE: &str = "simulator.sqlite";
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE patients (nhs TEXT PRIMARY KEY, ord INTEGER NOT NULL, json TEXT NOT NULL);
CREATE TABLE events (
    uid TEXT PRIMARY KEY, nhs TEXT NOT NULL, effective_at TEXT NOT NULL, entered_at TEXT NOT NULL,
    user_name TEXT NOT NULL, done_by TEXT NOT NULL, done_at TEXT NOT NULL, software TEXT NOT NULL,
    lines_json TEXT NOT NULL, codes_json TEXT NOT NULL, device_id TEXT, request_uid TEXT,
    pending INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX events_by_patient ON events (nhs, entered_at);
CREATE TABLE tasks (
    uid TEXT PRIMARY KEY, nhs TEXT NOT NULL, created_at TEXT NOT NULL, task_type TEXT NOT NULL,
    status TEXT NOT NULL, content TEXT NOT NULL, due TEXT, user_assigned TEXT, group_assigned TEXT,
    team_assigned TEXT, created_by TEXT NOT NULL, device_id TEXT, request_uid TEXT,
    pending INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0, updated_at TEXT, updated_by TEXT);
CREATE INDEX tasks_by_patient ON tasks (nhs);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY, device_version TEXT NOT NULL, status TEXT NOT NULL, issued_at TEXT NOT NULL);
CREATE TABLE screen (id INTEGER PRIMARY KEY CHECK (id = 1), open_nhs TEXT, opened_at TEXT);
INSERT INTO screen (id, open_nhs, opened_at) VALUES (1, NULL, NULL);
CREATE TABLE request_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, connection INTEGER NOT NULL,
    function TEXT NOT NULL, request_uid TEXT NOT NULL, device_id TEXT NOT NULL, outcome TEXT NOT NULL,
    slow_ms INTEGER, applied INTEGER, detail TEXT);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// Approve a new device at once.
    Auto,
    /// Hold the first request for `prompt_ms` (the user reading the dialog), then approve.
    Prompt,
    /// The user blocks the device.
    Block,
}

/// Settings the server re-reads for every request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSettings {
    /// How the simulator answers where real SystmOne's behaviour is open (see `profile`).
    #[serde(default)]
    pub profile: SimProfile,
    pub approval: ApprovalMode,
    pub prompt_ms: u64,
    pub faults: FaultRates,
    pub slow_ms: u64,
    pub logged_in_user: String,
    pub api_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Approved,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    pub device_version: String,
    pub status: DeviceStatus,
    pub issued_at: NaiveDateTime,
}

/// One row of the request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: i64,
    pub at: NaiveDateTime,
    pub connection: u64,
    pub function: String,
    pub request_uid: String,
    pub device_id: String,
    /// `answered`, `error`, `dropped-throttle`, `fault-drop`, `fault-garbage`, `fault-reset`,
    /// `fault-temporary`, or `unreadable`.
    pub outcome: String,
    /// Extra delay added by a slow fault or an approval prompt.
    pub slow_ms: Option<u64>,
    /// For a write hit by a drop, garbage or reset fault: whether it was applied before the reply was lost.
    pub applied: Option<bool>,
    pub detail: Option<String>,
}

pub const OUTCOME_DROPPED_THROTTLE: &str = "dropped-throttle";

/// A change to a task; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChange {
    pub task_type: Option<String>,
    pub status: Option<String>,
    pub content: Option<String>,
    pub due: Option<NaiveDateTime>,
    pub user_assigned: Option<String>,
    pub group_assigned: Option<String>,
    pub team_assigned: Option<String>,
}

impl TaskChange {
    pub fn is_empty(&self) -> bool {
        *self == TaskChange::default()
    }
}

/// The local time the way the simulator stores it: seconds precision, no zone (as TPP does).
pub fn now_local() -> NaiveDateTime {
    Local::now().naive_local().trunc_subsecs(0)
}

pub fn today() -> NaiveDate {
    Local::now().date_naive()
}

pub struct SimDb {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SimDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDb").field("path", &self.path).finish()
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, SimError> {
    serde_json::to_string(value).map_err(|e| SimError::Corrupt(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, SimError> {
    serde_json::from_str(raw).map_err(|e| SimError::Corrupt(e.to_string()))
}

impl SimDb {
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(DB_FILE)
    }

    /// Opens the simulator database in `data_dir`. A new database is generated from `init`
    /// (seed and settings); without `init` a missing database is an error. An existing one
    /// must have been generated from the same seed, so filed records are never silently
    /// replaced by a different world; `init`'s settings then replace the stored ones.
    pub fn open(data_dir: &Path, init: Option<(u64, &SimSettings)>) -> Result<SimDb, SimError> {
        let path = Self::path_in(data_dir);
        let exists = path.exists();
        if !exists && init.is_none() {
            return Err(SimError::NotInitialised(data_dir.display().to_string()));
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| SimError::DataDir(data_dir.display().to_string(), e.to_string()))?;
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut db = SimDb { conn, path };
        let has_schema: bool = db.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
            [],
            |r| r.get::<_, i64>(0),
        )? > 0;
        match (has_schema, init) {
            (false, Some((seed, settings))) => db.initialise(seed, settings)?,
            (false, None) => return Err(SimError::NotInitialised(data_dir.display().to_string())),
            (true, init) => {
                let version: i64 = db.meta("schema")?.and_then(|v| v.parse().ok()).unwrap_or(0);
                if version != SCHEMA_VERSION {
                    return Err(SimError::Corrupt(format!(
                        "simulator schema {version}, expected {SCHEMA_VERSION}"
                    )));
                }
                if let Some((seed, settings)) = init {
                    let stored = db.seed()?;
                    if stored != seed {
                        return Err(SimError::SeedMismatch {
                            dir: data_dir.display().to_string(),
                            stored,
                            requested: seed,
                        });
                    }
                    db.put_settings(settings)?;
                }
            }
        }
        Ok(db)
    }

    fn initialise(&mut self, seed: u64, settings: &SimSettings) -> Result<(), SimError> {
        let anchor = today();
        let world = data::generate(seed, anchor);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let meta = [
            ("schema", SCHEMA_VERSION.to_string()),
            ("seed", seed.to_string()),
            ("anchor", anchor.to_string()),
            ("settings", json(settings)?),
        ];
        for (k, v) in meta {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        for (ord, generated) in world.patients.iter().enumerate() {
            tx.execute(
                "INSERT INTO patients (nhs, ord, json) VALUES (?1, ?2, ?3)",
                params![
                    generated.patient.nhs_number,
                    ord as i64,
                    json(&generated.patient)?
                ],
            )?;
            for event in &generated.events {
                insert_event(&tx, event, None)?;
            }
            for task in &generated.tasks {
                insert_task(&tx, task, None)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, key: &str) -> Result<Option<String>, SimError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn seed(&self) -> Result<u64, SimError> {
        self.meta("seed")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| SimError::Corrupt("no seed recorded".into()))
    }

    pub fn settings(&self) -> Result<SimSettings, SimError> {
        let raw = self
            .meta("settings")?
            .ok_or_else(|| SimError::Corrupt("no settings recorded".into()))?;
        from_json(&raw)
    }

    pub fn put_settings(&mut self, settings: &SimSettings) -> Result<(), SimError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('settings', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [json(settings)?],
        )?;
        Ok(())
    }

    /// Read-modify-write of the settings under the write lock.
    pub fn update_settings(
        &mut self,
        f: impl FnOnce(&mut SimSettings),
    ) -> Result<SimSettings, SimError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let raw: String =
            tx.query_row("SELECT value FROM meta WHERE key = 'settings'", [], |r| {
                r.get(0)
            })?;
        let mut settings: SimSettings = from_json(&raw)?;
        f(&mut settings);
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'settings'",
            [json(&settings)?],
        )?;
        tx.commit()?;
        Ok(settings)
    }

    // ---- patients -------------------------------------------------------------------------

    pub fn patient(&self, nhs: &str) -> Result<Option<SimPatient>, SimError> {
        let raw: Option<String> = self
            .conn
            .query_row("SELECT json FROM patients WHERE nhs = ?1", [nhs], |r| {
                r.get(0)
            })
            .optional()?;
        raw.map(|r| from_json(&r)).transpose()
    }

    pub fn patients(&self) -> Result<Vec<SimPatient>, SimError> {
        let mut stmt = self
            .conn
            .prepare("SELECT json FROM patients ORDER BY ord")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| from_json(&r?)).collect()
    }

    // ---- events and tasks -----------------------------------------------------------------

    pub fn events(&self, nhs: &str) -> Result<Vec<SimEvent>, SimError> {
        let mut stmt = self.conn.prepare(
            "SELECT uid, nhs, effective_at, entered_at, user_name, done_by, done_at, software, lines_json,
                    codes_json, device_id, pending
             FROM events WHERE nhs = ?1 AND deleted = 0 ORDER BY entered_at, rowid",
        )?;
        let rows = stmt.query_map([nhs], |r| {
            Ok((
                SimEvent {
                    uid: r.get(0)?,
                    nhs_number: r.get(1)?,
                    effective_at: r.get(2)?,
                    entered_at: r.get(3)?,
                    user_name: r.get(4)?,
                    done_by: r.get(5)?,
                    done_at: r.get(6)?,
                    software: r.get(7)?,
                    lines: Vec::new(),
                    codes: Vec::new(),
                    device_id: r.get(10)?,
                    pending: r.get(11)?,
                },
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
            ))
        })?;
        rows.map(|row| {
            let (mut event, lines, codes) = row?;
            event.lines = from_json(&lines)?;
            event.codes = from_json::<Vec<SimCode>>(&codes)?;
            Ok(event)
        })
        .collect()
    }

    pub fn tasks(&self, nhs: &str) -> Result<Vec<SimTask>, SimError> {
        let mut stmt = self.conn.prepare(
            "SELECT uid, nhs, created_at, task_type, status, content, due, user_assigned, group_assigned,
                    team_assigned, created_by, device_id, pending
             FROM tasks WHERE nhs = ?1 AND deleted = 0 ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([nhs], task_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn task(&self, uid: &str) -> Result<Option<SimTask>, SimError> {
        Ok(self
            .conn
            .query_row(
                "SELECT uid, nhs, created_at, task_type, status, content, due, user_assigned, group_assigned,
                        team_assigned, created_by, device_id, pending
                 FROM tasks WHERE uid = ?1 AND deleted = 0",
                [uid],
                task_from_row,
            )
            .optional()?)
    }

    /// Files events and tasks and changes tasks in one transaction: an update lands whole or not at all.
    pub fn apply_update(
        &mut self,
        events: &[SimEvent],
        new_tasks: &[SimTask],
        task_changes: &[(String, TaskChange)],
        request_uid: Option<&str>,
        changed_by: &str,
    ) -> Result<(), SimError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for event in events {
            insert_event(&tx, event, request_uid)?;
        }
        for task in new_tasks {
            insert_task(&tx, task, request_uid)?;
        }
        for (uid, change) in task_changes {
            change_task(&tx, uid, change, changed_by)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn change_task(
        &mut self,
        uid: &str,
        change: &TaskChange,
        changed_by: &str,
    ) -> Result<(), SimError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        change_task(&tx, uid, change, changed_by)?;
        tx.commit()?;
        Ok(())
    }

    /// Marks the given items deleted if every one exists for this patient and was added
    /// through the API by `device_id`; otherwise changes nothing and names the first offender.
    pub fn delete_items(
        &mut self,
        nhs: &str,
        device_id: &str,
        event_uids: &[String],
        task_uids: &[String],
    ) -> Result<Result<(), String>, SimError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (table, uids) in [("events", event_uids), ("tasks", task_uids)] {
            for uid in uids {
                let owner: Option<Option<String>> = tx
                    .query_row(
                        &format!("SELECT device_id FROM {table} WHERE uid = ?1 AND nhs = ?2 AND deleted = 0"),
                        params![uid, nhs],
                        |r| r.get(0),
                    )
                    .optional()?;
                match owner {
                    None => return Ok(Err(uid.clone())),
                    Some(owner) if owner.as_deref() != Some(device_id) => {
                        return Ok(Err(uid.clone()))
                    }
                    Some(_) => {
                        tx.execute(
                            &format!("UPDATE {table} SET deleted = 1 WHERE uid = ?1"),
                            [uid],
                        )?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Commits changes filed under LeaveRecordOpen for this patient (the user pressed Save).
    pub fn save_pending(&mut self, nhs: &str) -> Result<usize, SimError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE events SET pending = 0 WHERE nhs = ?1 AND pending = 1",
            [nhs],
        )? + tx.execute(
            "UPDATE tasks SET pending = 0 WHERE nhs = ?1 AND pending = 1",
            [nhs],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Throws away unsaved changes (the user closed the record and chose not to save).
    pub fn discard_pending(&mut self, nhs: &str) -> Result<usize, SimError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM events WHERE nhs = ?1 AND pending = 1", [nhs])?
            + tx.execute("DELETE FROM tasks WHERE nhs = ?1 AND pending = 1", [nhs])?;
        tx.commit()?;
        Ok(n)
    }

    // ---- screen ---------------------------------------------------------------------------

    pub fn open_patient(&self) -> Result<Option<String>, SimError> {
        Ok(self
            .conn
            .query_row("SELECT open_nhs FROM screen WHERE id = 1", [], |r| r.get(0))?)
    }

    pub fn set_open_patient(&mut self, nhs: Option<&str>) -> Result<(), SimError> {
        self.conn.execute(
            "UPDATE screen SET open_nhs = ?1, opened_at = ?2 WHERE id = 1",
            params![nhs, nhs.map(|_| now_local())],
        )?;
        Ok(())
    }

    // ---- devices --------------------------------------------------------------------------

    pub fn device(&self, device_id: &str) -> Result<Option<Device>, SimError> {
        let row: Option<(String, String, String, NaiveDateTime)> = self
            .conn
            .query_row(
                "SELECT device_id, device_version, status, issued_at FROM devices WHERE device_id = ?1",
                [device_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(device_id, device_version, status, issued_at)| {
            Ok(Device {
                device_id,
                device_version,
                status: from_json(&format!("\"{status}\""))?,
                issued_at,
            })
        })
        .transpose()
    }

    pub fn devices(&self) -> Result<Vec<Device>, SimError> {
        let mut stmt = self
            .conn
            .prepare("SELECT device_id FROM devices ORDER BY issued_at, rowid")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter()
            .filter_map(|id| self.device(id).transpose())
            .collect()
    }

    pub fn put_device(
        &mut self,
        device_id: &str,
        device_version: &str,
        status: DeviceStatus,
    ) -> Result<(), SimError> {
        let status = match status {
            DeviceStatus::Approved => "approved",
            DeviceStatus::Blocked => "blocked",
        };
        self.conn.execute(
            "INSERT INTO devices (device_id, device_version, status, issued_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id) DO UPDATE SET status = excluded.status",
            params![device_id, device_version, status, now_local()],
        )?;
        Ok(())
    }

    // ---- request log ----------------------------------------------------------------------

    pub fn log_request(&mut self, entry: &LogEntry) -> Result<i64, SimError> {
        self.conn.execute(
            "INSERT INTO request_log (at, connection, function, request_uid, device_id, outcome, slow_ms, applied, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.at,
                entry.connection as i64,
                entry.function,
                entry.request_uid,
                entry.device_id,
                entry.outcome,
                entry.slow_ms.map(|v| v as i64),
                entry.applied,
                entry.detail
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The newest `limit` entries, oldest first.
    pub fn request_log(&self, limit: u32) -> Result<Vec<LogEntry>, SimError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, connection, function, request_uid, device_id, outcome, slow_ms, applied, detail
             FROM (SELECT * FROM request_log ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(LogEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                connection: r.get::<_, i64>(2)? as u64,
                function: r.get(3)?,
                request_uid: r.get(4)?,
                device_id: r.get(5)?,
                outcome: r.get(6)?,
                slow_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                applied: r.get(8)?,
                detail: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn violation_count(&self) -> Result<u64, SimError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM request_log WHERE outcome = ?1",
            [OUTCOME_DROPPED_THROTTLE],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

/// Due is stored as a date-time; databases written before that hold a bare date (midnight).
fn due_from_sql(raw: Option<String>) -> Option<NaiveDateTime> {
    let raw = raw?;
    let raw = raw.trim();
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
}

fn task_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SimTask> {
    Ok(SimTask {
        uid: r.get(0)?,
        nhs_number: r.get(1)?,
        created_at: r.get(2)?,
        task_type: r.get(3)?,
        status: r.get(4)?,
        content: r.get(5)?,
        due: due_from_sql(r.get::<_, Option<String>>(6)?),
        user_assigned: r.get(7)?,
        group_assigned: r.get(8)?,
        team_assigned: r.get(9)?,
        created_by: r.get(10)?,
        device_id: r.get(11)?,
        pending: r.get(12)?,
    })
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    e: &SimEvent,
    request_uid: Option<&str>,
) -> Result<(), SimError> {
    tx.execute(
        "INSERT INTO events (uid, nhs, effective_at, entered_at, user_name, done_by, done_at, software, lines_json,
                             codes_json, device_id, request_uid, pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            e.uid,
            e.nhs_number,
            e.effective_at,
            e.entered_at,
            e.user_name,
            e.done_by,
            e.done_at,
            e.software,
            json(&e.lines)?,
            json(&e.codes)?,
            e.device_id,
            request_uid,
            e.pending
        ],
    )?;
    Ok(())
}

fn insert_task(
    tx: &rusqlite::Transaction<'_>,
    t: &SimTask,
    request_uid: Option<&str>,
) -> Result<(), SimError> {
    tx.execute(
        "INSERT INTO tasks (uid, nhs, created_at, task_type, status, content, due, user_assigned, group_assigned,
                            team_assigned, created_by, device_id, request_uid, pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            t.uid,
            t.nhs_number,
            t.created_at,
            t.task_type,
            t.status,
            t.content,
            t.due,
            t.user_assigned,
            t.group_assigned,
            t.team_assigned,
            t.created_by,
            t.device_id,
            request_uid,
            t.pending
        ],
    )?;
    Ok(())
}

fn change_task(
    tx: &rusqlite::Transaction<'_>,
    uid: &str,
    c: &TaskChange,
    changed_by: &str,
) -> Result<(), SimError> {
    let reassign =
        c.user_assigned.is_some() || c.group_assigned.is_some() || c.team_assigned.is_some();
    let n = tx.execute(
        // A task has one assignee: naming a new one (user, group or team) replaces the old.
        "UPDATE tasks SET task_type = coalesce(?2, task_type), status = coalesce(?3, status),
                content = coalesce(?4, content), due = coalesce(?5, due),
                user_assigned = CASE WHEN ?11 THEN ?6 ELSE user_assigned END,
                group_assigned = CASE WHEN ?11 THEN ?7 ELSE group_assigned END,
                team_assigned = CASE WHEN ?11 THEN ?8 ELSE team_assigned END,
                updated_at = ?9, updated_by = ?10
         WHERE uid = ?1 AND deleted = 0",
        params![
            uid,
            c.task_type,
            c.status,
            c.content,
            c.due,
            c.user_assigned,
            c.group_assigned,
            c.team_assigned,
            now_local(),
            changed_by,
            reassign
        ],
    )?;
    if n == 0 {
        return Err(SimError::UnknownTask(uid.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DEFAULT_USER, STATUS_COMPLETED};

    pub(crate) fn settings() -> SimSettings {
        SimSettings {
            profile: Default::default(),
            approval: ApprovalMode::Auto,
            prompt_ms: 0,
            faults: FaultRates::default(),
            slow_ms: 0,
            logged_in_user: DEFAULT_USER.into(),
            api_key: "f31e26725b5491f2".into(),
        }
    }

    #[test]
    fn generates_once_and_refuses_a_different_seed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            SimDb::open(dir.path(), None),
            Err(SimError::NotInitialised(_))
        ));
        let db = SimDb::open(dir.path(), Some((4, &settings()))).unwrap();
        assert!(db.patients().unwrap().len() >= 200);
        drop(db);
        let db = SimDb::open(dir.path(), None).unwrap();
        assert_eq!(db.seed().unwrap(), 4);
        assert!(matches!(
            SimDb::open(dir.path(), Some((5, &settings()))),
            Err(SimError::SeedMismatch {
                stored: 4,
                requested: 5,
                ..
            })
        ));
    }

    #[test]
    fn tasks_change_and_items_delete_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SimDb::open(dir.path(), Some((1, &settings()))).unwrap();
        let nhs = "9990000018";
        let before = db.events(nhs).unwrap();
        let mut mine = before[0].clone();
        mine.uid = "00000000000000aa".into();
        mine.device_id = Some("dev1".into());
        db.apply_update(&[mine.clone()], &[], &[], Some("r1"), DEFAULT_USER)
            .unwrap();
        assert_eq!(db.events(nhs).unwrap().len(), before.len() + 1);
        // A generated event is not ours: the whole delete is refused and ours survives.
        let refused = db
            .delete_items(nhs, "dev1", &[mine.uid.clone(), before[0].uid.clone()], &[])
            .unwrap();
        assert_eq!(refused, Err(before[0].uid.clone()));
        assert_eq!(db.events(nhs).unwrap().len(), before.len() + 1);
        assert_eq!(
            db.delete_items(nhs, "dev2", &[mine.uid.clone()], &[])
                .unwrap(),
            Err(mine.uid.clone())
        );
        db.delete_items(nhs, "dev1", &[mine.uid.clone()], &[])
            .unwrap()
            .unwrap();
        assert_eq!(db.events(nhs).unwrap().len(), before.len());

        let any_task = db
            .patients()
            .unwrap()
            .iter()
            .find_map(|p| db.tasks(&p.nhs_number).unwrap().into_iter().next())
            .unwrap();
        db.change_task(
            &any_task.uid,
            &TaskChange {
                status: Some(STATUS_COMPLETED.into()),
                ..Default::default()
            },
            "demo.hca",
        )
        .unwrap();
        let changed = db.task(&any_task.uid).unwrap().unwrap();
        assert!(changed.is_completed());
        assert_eq!(changed.content, any_task.content, "unchanged fields stay");
        assert!(matches!(
            db.change_task("ffffffffffffffff", &TaskChange::default(), "x"),
            Err(SimError::UnknownTask(_))
        ));
    }

    #[test]
    fn pending_changes_save_or_discard() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SimDb::open(dir.path(), Some((1, &settings()))).unwrap();
        let nhs = "9990000026";
        let mut e = db.events(nhs).unwrap()[0].clone();
        e.pending = true;
        e.uid = "00000000000000bb".into();
        db.apply_update(&[e.clone()], &[], &[], None, DEFAULT_USER)
            .unwrap();
        assert!(db
            .events(nhs)
            .unwrap()
            .iter()
            .any(|x| x.uid == e.uid && x.pending));
        assert_eq!(db.save_pending(nhs).unwrap(), 1);
        assert!(db
            .events(nhs)
            .unwrap()
            .iter()
            .any(|x| x.uid == e.uid && !x.pending));
        e.uid = "00000000000000cc".into();
        db.apply_update(&[e.clone()], &[], &[], None, DEFAULT_USER)
            .unwrap();
        assert_eq!(db.discard_pending(nhs).unwrap(), 1);
        assert!(!db.events(nhs).unwrap().iter().any(|x| x.uid == e.uid));
    }

    #[test]
    fn log_devices_and_screen_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SimDb::open(dir.path(), Some((1, &settings()))).unwrap();
        let entry = |outcome: &str| LogEntry {
            id: 0,
            at: now_local(),
            connection: 1,
            function: "GetFunctions".into(),
            request_uid: "u".into(),
            device_id: String::new(),
            outcome: outcome.into(),
            slow_ms: None,
            applied: None,
            detail: None,
        };
        db.log_request(&entry("answered")).unwrap();
        db.log_request(&entry(OUTCOME_DROPPED_THROTTLE)).unwrap();
        db.put_device("0123456789abcdef", "Test 1", DeviceStatus::Approved)
            .unwrap();
        db.set_open_patient(Some("9990000018")).unwrap();
        let other = SimDb::open(dir.path(), None).unwrap();
        assert_eq!(other.violation_count().unwrap(), 1);
        assert_eq!(other.request_log(10).unwrap().len(), 2);
        assert_eq!(
            other.request_log(1).unwrap()[0].outcome,
            OUTCOME_DROPPED_THROTTLE
        );
        assert_eq!(
            other.device("0123456789abcdef").unwrap().unwrap().status,
            DeviceStatus::Approved
        );
        assert_eq!(other.open_patient().unwrap().as_deref(), Some("9990000018"));
    }
}
