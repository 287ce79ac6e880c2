//! A store the size of ten years of one 30-bed ward, written in bulk for the `ten_years`
//! benchmark (only with the `bench-fixtures` feature, which only `benches` turns on; never in
//! the app). Rows go in through big transactions of prepared INSERTs rather than the app's
//! one-write-one-audit-row path, which would take hours for five million audit rows; the audit
//! rows are still chained (one SHA-256 each), so the store verifies like a real one.

use super::audit_chain::{self, RowContent};
use super::{Store, StoreError, StoreResult};
use domain::outbox_machine::OutboxState;
use domain::{FilingPayload, NoteId, Sensitive};
use rusqlite::params;
use sha2::{Digest, Sha256};

/// `n` in letters (a, b, ... z, ba, ...): names and titles stay valid text without digits.
fn letters(mut n: i64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// How big a ward's history to write.
#[derive(Debug, Clone, Copy)]
pub struct TenYearsSpec {
    pub patients: i64,
    /// Patients still on the ward (the rest are discharged).
    pub on_ward: i64,
    pub tasks: i64,
    /// Open tasks per patient on the ward (all other tasks are done or cancelled).
    pub open_per_ward_patient: i64,
    /// Approved notes, each with a filed outbox entry.
    pub notes: i64,
    pub audit_rows: i64,
}

impl TenYearsSpec {
    /// Issue 13's measured store: 20,000 patients, 1,000,000 tasks, 500,000 notes with outbox
    /// rows, 5,000,000 audit rows; 30 beds, ~150 open tasks.
    pub const WARD: TenYearsSpec = TenYearsSpec {
        patients: 20_000,
        on_ward: 30,
        tasks: 1_000_000,
        open_per_ward_patient: 5,
        notes: 500_000,
        audit_rows: 5_000_000,
    };
}

/// Rows per transaction: big enough to amortise the commit, small enough for the WAL.
const BATCH: i64 = 200_000;
const ACTOR: &str = "Bench Nurse";

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e)
}

/// A fixed time `days` before the spec's "now", as the app stores times.
fn day(days_ago: i64) -> chrono::DateTime<chrono::Local> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-06-01T09:00:00+00:00")
        .map(|t| t.with_timezone(&chrono::Local))
        .unwrap_or_else(|_| chrono::Local::now());
    base - chrono::Duration::days(days_ago)
}

impl Store {
    /// Fills an empty store with `spec`'s rows. Patient `i`'s tasks and notes are spread
    /// evenly; the patients on the ward are the newest, with the newest tasks and notes.
    #[doc(hidden)]
    pub fn bulk_fill_for_bench(&mut self, spec: &TenYearsSpec) -> StoreResult<()> {
        self.conn
            .execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
            .map_err(sql)?;
        self.fill_patients(spec)?;
        self.fill_tasks(spec)?;
        self.fill_notes(spec)?;
        self.fill_audit(spec)?;
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA synchronous = FULL;")
            .map_err(sql)
    }

    fn fill_patients(&mut self, spec: &TenYearsSpec) -> StoreResult<()> {
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO patients (id, bed, name, created_at, created_by, discharged_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            let first_on_ward = spec.patients - spec.on_ward + 1;
            for id in 1..=spec.patients {
                let admitted = day(3650 - id * 3650 / spec.patients);
                let on_ward = id >= first_on_ward;
                let bed = if on_ward {
                    format!("Bed {}", id - first_on_ward + 1)
                } else {
                    format!("Bed {}", id % 30 + 1)
                };
                let discharged = (!on_ward).then(|| admitted + chrono::Duration::days(20));
                insert
                    .execute(params![
                        id,
                        bed,
                        format!("Patient {}", letters(id)),
                        admitted,
                        ACTOR,
                        discharged
                    ])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn fill_tasks(&mut self, spec: &TenYearsSpec) -> StoreResult<()> {
        let per_patient = (spec.tasks / spec.patients).max(1);
        let first_on_ward = spec.patients - spec.on_ward + 1;
        let mut id = 1;
        while id <= spec.tasks {
            let tx = self.conn.transaction().map_err(sql)?;
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO tasks (id, patient_id, title, assignee, due_at, status,
                            created_at, created_by, updated_at, updated_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?8)",
                    )
                    .map_err(sql)?;
                let end = (id + BATCH).min(spec.tasks + 1);
                for task in id..end {
                    let patient = ((task - 1) / per_patient + 1).min(spec.patients);
                    let nth = (task - 1) % per_patient;
                    let status = if patient >= first_on_ward
                        && nth >= per_patient - spec.open_per_ward_patient
                    {
                        "open"
                    } else if task % 10 == 0 {
                        "cancelled"
                    } else {
                        "done"
                    };
                    let created = day(3650 - task * 3650 / spec.tasks);
                    insert
                        .execute(params![
                            task,
                            patient,
                            format!("Task {task}: bloods, obs and review"),
                            (task % 3 == 0).then_some("Dr Bench"),
                            created + chrono::Duration::hours(task % 48),
                            status,
                            created,
                            ACTOR
                        ])
                        .map_err(sql)?;
                }
                id = end;
            }
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }

    fn fill_notes(&mut self, spec: &TenYearsSpec) -> StoreResult<()> {
        let per_patient = (spec.notes / spec.patients).max(1);
        let state = serde_json::to_string(&OutboxState::FiledManually)
            .map_err(|e| StoreError::Decode(e.to_string()))?;
        let mut id = 1;
        while id <= spec.notes {
            let tx = self.conn.transaction().map_err(sql)?;
            {
                let mut note = tx
                    .prepare(
                        "INSERT INTO notes (id, patient_id, body, status, reference, created_at, created_by,
                            updated_at, approved_at, approved_by, text_sha256, approved_text, filed_at, filed_how)
                         VALUES (?1, ?2, ?3, 'filed', ?4, ?5, ?6, ?5, ?5, ?6, ?7, ?3, ?5, 'manual')",
                    )
                    .map_err(sql)?;
                let mut outbox = tx
                    .prepare(
                        "INSERT INTO outbox (id, kind, subject_id, payload, state, state_detail, created_at, updated_at)
                         VALUES (?1, 'note', ?1, ?2, 'filed_manually', ?3, ?4, ?4)",
                    )
                    .map_err(sql)?;
                let end = (id + BATCH).min(spec.notes + 1);
                for n in id..end {
                    let patient = ((n - 1) / per_patient + 1).min(spec.patients);
                    let reference = format!("IH-{n:012X}");
                    let body = format!("Ward round {n}\nSeen and settled; plan unchanged.");
                    let sha = hex::encode(Sha256::digest(body.as_bytes()));
                    let at = day(3650 - n * 3650 / spec.notes);
                    note.execute(params![n, patient, body, reference, at, ACTOR, sha])
                        .map_err(sql)?;
                    let payload = FilingPayload {
                        note_id: NoteId(n),
                        nhs_number: None,
                        lines: Sensitive::new(body.lines().map(str::to_owned).collect()),
                        reference_line: format!("Inpatient Hub ref {reference}"),
                        text_sha256: sha,
                    };
                    let payload = serde_json::to_string(&payload)
                        .map_err(|e| StoreError::Decode(e.to_string()))?;
                    outbox
                        .execute(params![n, payload, state, at])
                        .map_err(sql)?;
                }
                id = end;
            }
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }

    fn fill_audit(&mut self, spec: &TenYearsSpec) -> StoreResult<()> {
        // Chained on after whatever the store already holds (its creation's own rows).
        let (newest, newest_hash): (i64, Option<String>) = self
            .conn
            .query_row(
                "SELECT coalesce(max(id), 0), (SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql)?;
        let mut prev_hash = newest_hash.unwrap_or_else(|| audit_chain::GENESIS_HASH.to_owned());
        let last = newest + spec.audit_rows;
        let mut id = newest + 1;
        while id <= last {
            let tx = self.conn.transaction().map_err(sql)?;
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO audit (id, at, actor, action, entity, entity_id, detail, os_account,
                            systmone_user, prev_hash, hash)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10)",
                    )
                    .map_err(sql)?;
                let end = (id + BATCH).min(last + 1);
                for row in id..end {
                    // Mostly task changes (added, edited, completed), then notes and outbox.
                    let (action, entity, entity_id) = match row % 10 {
                        0..=5 => ("task.edited", "task", (row * 7919) % spec.tasks + 1),
                        6 | 7 => ("note.approved", "note", (row * 104_729) % spec.notes + 1),
                        8 => (
                            "outbox.changed",
                            "outbox",
                            (row * 15_485_863) % spec.notes + 1,
                        ),
                        _ => ("patient.added", "patient", row % spec.patients + 1),
                    };
                    let at = day(3650 - row * 3650 / spec.audit_rows).to_rfc3339();
                    let entity_id = entity_id.to_string();
                    let detail = format!("{{\"n\":{row}}}");
                    let hash = audit_chain::row_hash(&RowContent {
                        prev_hash: Some(&prev_hash),
                        id: row,
                        at: Some(&at),
                        actor: Some(ACTOR),
                        action: Some(action),
                        entity: Some(entity),
                        entity_id: Some(&entity_id),
                        detail: Some(&detail),
                        os_account: Some("bench"),
                        systmone_user: None,
                    });
                    insert
                        .execute(params![
                            row, at, ACTOR, action, entity, entity_id, detail, "bench", prev_hash,
                            hash
                        ])
                        .map_err(sql)?;
                    prev_hash = hash;
                }
                id = end;
            }
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }
}
