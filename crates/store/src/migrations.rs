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
    // v4: case-note approval, the outbox state machine's detail, and ward note templates.
    // Approved notes are frozen by the database itself, and a filed outbox entry is final.
    r#"
    ALTER TABLE notes ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE notes ADD COLUMN approved_role TEXT;
    ALTER TABLE notes ADD COLUMN approved_text TEXT;
    ALTER TABLE notes ADD COLUMN cosigned_role TEXT;
    ALTER TABLE notes ADD COLUMN filed_event_uid TEXT;
    CREATE INDEX notes_by_patient ON notes(patient_id, status);
    CREATE TRIGGER notes_frozen_once_approved BEFORE UPDATE ON notes
        WHEN OLD.status <> 'draft' AND (
            NEW.status = 'draft'
            OR NEW.body IS NOT OLD.body OR NEW.patient_id IS NOT OLD.patient_id
            OR NEW.template IS NOT OLD.template OR NEW.reference IS NOT OLD.reference
            OR NEW.corrects_note IS NOT OLD.corrects_note OR NEW.text_sha256 IS NOT OLD.text_sha256
            OR NEW.approved_text IS NOT OLD.approved_text OR NEW.approved_at IS NOT OLD.approved_at
            OR NEW.approved_by IS NOT OLD.approved_by OR NEW.approved_role IS NOT OLD.approved_role
            OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at)
        BEGIN SELECT RAISE(ABORT, 'an approved note cannot be changed; write a correction instead'); END;
    CREATE TRIGGER notes_approved_never_deleted BEFORE DELETE ON notes WHEN OLD.status <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'an approved note cannot be deleted'); END;
    ALTER TABLE outbox ADD COLUMN state_detail TEXT NOT NULL DEFAULT '{"state":"queued"}';
    ALTER TABLE outbox ADD COLUMN interactive INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX outbox_one_entry_per_note ON outbox(subject_id) WHERE kind = 'note';
    CREATE TRIGGER outbox_filed_is_final BEFORE UPDATE ON outbox
        WHEN OLD.kind = 'note' AND OLD.state IN ('filed', 'filed_manually')
        BEGIN SELECT RAISE(ABORT, 'a filed note''s outbox entry cannot change'); END;
    CREATE TRIGGER outbox_notes_never_deleted BEFORE DELETE ON outbox WHEN OLD.kind = 'note'
        BEGIN SELECT RAISE(ABORT, 'a note''s outbox entry cannot be deleted'); END;
    CREATE TABLE note_templates (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 80),
        body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
        retired_at  TEXT,
        retired_by  TEXT,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL,
        version     INTEGER NOT NULL DEFAULT 1
    );
    INSERT INTO note_templates (name, body, created_at, created_by, updated_at, updated_by)
    SELECT t.name, t.body, ts.now, 'Inpatient Hub (default template)', ts.now, 'Inpatient Hub (default template)'
    FROM (SELECT strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now') AS now) AS ts,
    (
        SELECT 'Ward round' AS name, 'Ward round
Present:
Presentation and mental state:
Physical health:
Risk:
Medication changes:
Plan:' AS body
        UNION ALL SELECT '1:1 observation', '1:1 observation
Level and reason for observation:
Period observed (from - to):
Presentation and engagement:
Incidents or risks noted:
Observed by:'
        UNION ALL SELECT 'Escorted leave', 'Escorted leave
Leave authorised (Section 17 / informal):
Escorted by:
Time out / time returned:
Presentation before leave:
Presentation on return:
Concerns:'
        UNION ALL SELECT 'Handover', 'Handover
Current presentation:
Risks:
Outstanding tasks:
Plan for next shift:'
        UNION ALL SELECT 'Family contact', 'Family / carer contact
Contact with (name, relationship):
Method (phone / visit / meeting):
Consent to share information checked:
Summary of discussion:
Actions agreed:'
    ) AS t;
    "#,
    // v5: task sync with SystmOne (tasksync): per task, its SystmOne TaskUID, sync state and the
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
    // v6: a completion sent to SystmOne is believed only when a read shows the task gone
    // (whether SystmOne applies Status on a task update is unproven): until then the link
    // stays `linked` with the time the completion was sent.
    r#"
    ALTER TABLE task_links ADD COLUMN completion_sent_at TEXT;
    "#,
    // v7: interactive demand beside the shared pacing budget: one row per Inpatient Hub
    // process that has a clinician waiting for the next free SystmOne slot, until when.
    // Other processes' background sends yield to it; the expiry keeps a crashed process
    // from holding them back. Self-contained: may sit at any position after v2.
    r#"
    CREATE TABLE pacing_demand (
        owner    TEXT PRIMARY KEY,
        until_ms INTEGER NOT NULL
    );
    "#,
    // v8: a tamper-evident audit trail and the database's identity.
    // Each audit row names the OS account and the SystmOne user acting (NULL before the app
    // says who), and carries a SHA-256 hash chained to the row before it, so an edit,
    // deletion or insertion made outside the app (with the triggers dropped) is detected.
    // The chain over the rows already present is back-filled by a Rust step
    // (`backfill_audit_chain`) in this same transaction: SQLite has no SHA-256. The UPDATE
    // trigger is dropped here for the back-fill and re-created exactly as v1 made it by that step.
    // `database_identity` says once, for ever, whether this is a demo or a live database.
    r#"
    ALTER TABLE audit ADD COLUMN os_account TEXT;
    ALTER TABLE audit ADD COLUMN systmone_user TEXT;
    ALTER TABLE audit ADD COLUMN prev_hash TEXT;
    ALTER TABLE audit ADD COLUMN hash TEXT;
    DROP TRIGGER audit_no_update;
    CREATE TABLE database_identity (
        singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
        environment TEXT NOT NULL CHECK (environment IN ('demo', 'live')),
        created_at  TEXT NOT NULL
    );
    CREATE TRIGGER database_identity_no_update BEFORE UPDATE ON database_identity
        BEGIN SELECT RAISE(ABORT, 'the database identity cannot be changed'); END;
    CREATE TRIGGER database_identity_no_delete BEFORE DELETE ON database_identity
        BEGIN SELECT RAISE(ABORT, 'the database identity cannot be deleted'); END;
    "#,
    // v9: fast after ten years of one ward. Indexes that cover every view's query (checked by
    // EXPLAIN QUERY PLAN in tests/query_plans.rs): the board reads only open tasks (a partial
    // index: ~150 of a million rows) of patients on the ward (a partial index on the few not
    // discharged); the audit view pages newest first per entity; one patient's notes in order;
    // the outbox's unfinished entries in draining order and its history newest first.
    // The integrity check left the open path (2.4 s to 25 s on a 2 GB file): its results are
    // kept here, so a daily background check and `hubctl check` leave a record the window shows.
    r#"
    CREATE INDEX tasks_open_by_patient ON tasks(patient_id, due_at) WHERE status = 'open';
    CREATE INDEX patients_on_ward ON patients(bed, id) WHERE discharged_at IS NULL;
    CREATE INDEX audit_by_entity_newest ON audit(entity, id);
    CREATE INDEX notes_by_patient_newest ON notes(patient_id, id);
    CREATE INDEX outbox_unfinished ON outbox(interactive DESC, id)
        WHERE kind = 'note' AND state NOT IN ('filed', 'filed_manually');
    CREATE INDEX outbox_finished ON outbox(id)
        WHERE kind = 'note' AND state IN ('filed', 'filed_manually');
    CREATE TABLE integrity_checks (
        id         INTEGER PRIMARY KEY,
        checked_at TEXT NOT NULL,
        thorough   INTEGER NOT NULL CHECK (thorough IN (0, 1)),
        ok         INTEGER NOT NULL CHECK (ok IN (0, 1)),
        problems   TEXT NOT NULL DEFAULT '[]'
    );
    "#,
];

/// Steps a migration needs beyond SQL, run in the migration's own transaction right after
/// its SQL, keyed by the version the migration reaches.
fn rust_step(reached_version: i64, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    match reached_version {
        8 => {
            crate::audit_chain::backfill(tx)?;
            tx.execute_batch(crate::audit_chain::AUDIT_NO_UPDATE_TRIGGER)
        }
        _ => Ok(()),
    }
}

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
        rust_step(version + 1, &tx)?;
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
            MigrateError::TooNew(found) => StoreError::TooNew {
                found,
                known: SCHEMA_VERSION,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

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
                    conn.execute(
                        "INSERT INTO audit (at, actor, action, entity, entity_id, detail) VALUES ('2026-01-01 00:00:00+00:00', 'tester', 'patient.add', 'patient', '1', '{}')",
                        [],
                    )
                    .unwrap();
                    if start >= 8 {
                        // From v8 on the app chains every row as it writes it.
                        let hash = crate::audit_chain::row_hash(&crate::audit_chain::RowContent {
                            prev_hash: Some(crate::audit_chain::GENESIS_HASH),
                            id: 1,
                            at: Some("2026-01-01 00:00:00+00:00"),
                            actor: Some("tester"),
                            action: Some("patient.add"),
                            entity: Some("patient"),
                            entity_id: Some("1"),
                            detail: Some("{}"),
                            os_account: None,
                            systmone_user: None,
                        });
                        conn.execute_batch(&format!(
                            "DROP TRIGGER audit_no_update; UPDATE audit SET prev_hash = '{}', hash = '{hash}' WHERE id = 1; {}",
                            crate::audit_chain::GENESIS_HASH,
                            crate::audit_chain::AUDIT_NO_UPDATE_TRIGGER
                        ))
                        .unwrap();
                    }
                }
            }
            let mut store = Store::open(&path, &crate::tests::test_key())
                .unwrap_or_else(|e| panic!("upgrade from v{start}: {e}"));
            assert_eq!(current_version(store.connection()).unwrap(), SCHEMA_VERSION);
            let patients: i64 = store
                .connection()
                .query_row("SELECT count(*) FROM patients", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                patients,
                i64::from(start >= 1),
                "data kept when upgrading from v{start}"
            );
            assert_eq!(store.integrity_check().unwrap(), "ok");
            let chain = store.verify_audit_chain().unwrap();
            assert!(
                chain.is_intact(),
                "audit chain after upgrading from v{start}: {chain:?}"
            );
            assert_eq!(chain.rows_checked, u64::from(start >= 1));
        }
    }
}
