//! Schema migrations, versioned by `PRAGMA user_version`. Append only: a released
//! migration is never edited, because ward PCs may hold any earlier version.

use super::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: the ward board.
    r#"
    CREATE TABLE patients (
        id            INTEGER PRIMARY KEY,
        bed           TEXT NOT NULL,
        name          TEXT NOT NULL,
        nhs_number    TEXT UNIQUE CHECK (nhs_number IS NULL OR length(nhs_number) = 10),
        created_at    TEXT NOT NULL,
        created_by    TEXT NOT NULL,
        discharged_at TEXT
    );
    CREATE TABLE tasks (
        id          INTEGER PRIMARY KEY,
        patient_id  INTEGER NOT NULL REFERENCES patients(id),
        title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
        assignee    TEXT,
        due_at      TEXT,
        status      TEXT NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL,
        version     INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX tasks_by_patient ON tasks(patient_id, status);
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        entity    TEXT NOT NULL,
        entity_id TEXT,
        detail    TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_by_entity ON audit(entity, entity_id);
    -- The audit log is append-only: the database itself refuses edits and deletions.
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // v2: SystmOne identity on patients, and the shared pacing budget of the SystmOne client.
    r#"
    ALTER TABLE patients ADD COLUMN systmone_linked_at TEXT;
    ALTER TABLE patients ADD COLUMN systmone_linked_by TEXT;
    ALTER TABLE patients ADD COLUMN demographics_json TEXT;
    ALTER TABLE patients ADD COLUMN demographics_as_of TEXT;
    CREATE TABLE pacing (
        budget          TEXT PRIMARY KEY,
        last_sent_at_ms INTEGER NOT NULL
    );
    "#,
    // v3: case notes and the outbox of work queued for SystmOne.
    r#"
    CREATE TABLE notes (
        id              INTEGER PRIMARY KEY,
        patient_id      INTEGER NOT NULL REFERENCES patients(id),
        template        TEXT,
        body            TEXT NOT NULL,
        status          TEXT NOT NULL,
        reference       TEXT NOT NULL UNIQUE,
        corrects_note   INTEGER REFERENCES notes(id),
        created_at      TEXT NOT NULL,
        created_by      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        approved_at     TEXT,
        approved_by     TEXT,
        text_sha256     TEXT,
        cosigned_at     TEXT,
        cosigned_by     TEXT,
        filed_at        TEXT,
        filed_how       TEXT
    );
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL,
        subject_id      INTEGER NOT NULL,
        payload         TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        claimed_by      TEXT,
        claimed_until   TEXT,
        last_error      TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX outbox_by_state ON outbox(state, next_attempt_at);
    "#,
    // Task sync with SystmOne (tasksync): per task, its SystmOne TaskUID, sync state and the
    // last values known to match SystmOne (the merge base); per patient, when its tasks were
    // last confirmed. Self-contained: may sit at any position after v3.
    r#"
    CREATE TABLE task_links (
        task_id             INTEGER PRIMARY KEY REFERENCES tasks(id),
        task_uid            TEXT UNIQUE CHECK (task_uid IS NULL OR length(task_uid) = 16),
        state               TEXT NOT NULL CHECK (state IN ('local', 'create_pending', 'create_in_flight', 'linked', 'detached')),
        reference           TEXT UNIQUE,
        task_type           TEXT,
        push_requested_at   TEXT,
        push_requested_by   TEXT,
        create_attempted_at TEXT,
        base_content        TEXT,
        base_title          TEXT,
        base_due            TEXT,
        base_assignee_kind  TEXT CHECK (base_assignee_kind IS NULL OR base_assignee_kind IN ('user', 'group', 'team')),
        base_assignee_name  TEXT,
        base_status         TEXT,
        base_entered        TEXT,
        push_failed_version INTEGER,
        retry_after         TEXT,
        notice              TEXT,
        notice_at           TEXT,
        updated_at          TEXT NOT NULL
    );
    CREATE INDEX task_links_by_state ON task_links(state);
    CREATE TABLE task_sync_patients (
        patient_id             INTEGER PRIMARY KEY REFERENCES patients(id),
        tasks_confirmed_at     TEXT,
        today_pulled_at        TEXT,
        full_pull_attempted_at TEXT,
        full_pull_wanted       INTEGER NOT NULL DEFAULT 0
    );
    "#,
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema up to [`SCHEMA_VERSION`], one migration per transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    migrate_to(conn, SCHEMA_VERSION)
}

pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), MigrateError> {
    let mut version = current_version(conn)?;
    if version > SCHEMA_VERSION {
        return Err(MigrateError::TooNew(version));
    }
    while version < target {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        version = current_version(&tx)?;
        if version >= target {
            break;
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        version += 1;
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) enum MigrateError {
    Sqlite(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

impl super::Store {
    pub(super) fn err_migrate(&self, e: MigrateError) -> StoreError {
        match e {
            MigrateError::Sqlite(inner) => self.err(inner),
            MigrateError::TooNew(found) => StoreError::TooNew { found, known: SCHEMA_VERSION },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Every earlier schema version, with data in it, upgrades to the current one.
    #[test]
    fn upgrades_from_every_earlier_version() {
        for start in 0..SCHEMA_VERSION {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hub.sqlite");
            {
                let mut conn = Connection::open(&path).unwrap();
                migrate_to(&mut conn, start).unwrap();
                assert_eq!(current_version(&conn).unwrap(), start);
                if start >= 1 {
                    conn.execute(
                        "INSERT INTO patients (bed, name, created_at, created_by) VALUES ('B1', 'Test Patient', '2026-01-01T00:00:00+00:00', 'tester')",
                        [],
                    )
                    .unwrap();
                }
            }
            let mut store = Store::open(&path).unwrap_or_else(|e| panic!("upgrade from v{start}: {e}"));
            assert_eq!(current_version(store.connection()).unwrap(), SCHEMA_VERSION);
            let patients: i64 = store.connection().query_row("SELECT count(*) FROM patients", [], |r| r.get(0)).unwrap();
            assert_eq!(patients, i64::from(start >= 1), "data kept when upgrading from v{start}");
            assert_eq!(store.integrity_check().unwrap(), "ok");
        }
    }
}
