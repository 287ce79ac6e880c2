//! The outbox of approved notes waiting for SystmOne. Every change goes through the pure
//! state machine (`notes::outbox_machine`) inside an IMMEDIATE transaction, so the app and
//! `hubctl` (two processes, one file) never both claim an entry, and a change lands with its
//! audit row and the note's own state or not at all.

use super::query::Query;
use super::{audit, Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
use domain::outbox_machine::{self, Event, OutboxState, Policy};
use domain::{FiledHow, FilingPayload, NhsNumber, NoteId, OutboxId, PatientId};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::Serialize;
use serde_json::json;

const KIND_NOTE: &str = "note";

const SELECT: &str = "SELECT o.id, o.subject_id, n.patient_id, n.reference, o.state_detail, o.attempts, o.last_error,
        o.interactive, o.created_at, o.updated_at, o.payload
    FROM outbox o JOIN notes n ON n.id = o.subject_id
    WHERE o.kind = 'note'";

/// Ordered as the worker drains them: "file now" entries first, then oldest first.
const ORDER: &str = "ORDER BY o.interactive DESC, o.id";

/// Written out exactly as in the `outbox_unfinished` and `outbox_finished` partial indexes
/// (migration v9): SQLite uses a partial index only when the query repeats its condition.
const UNFINISHED: &str = "o.state NOT IN ('filed', 'filed_manually')";
const FINISHED: &str = "o.state IN ('filed', 'filed_manually')";

/// A page of the outbox's history when the caller gives no limit.
pub const DEFAULT_OUTBOX_HISTORY_LIMIT: u32 = 200;

/// Which page of the outbox's finished entries to read.
#[derive(Debug, Clone, Default)]
pub struct OutboxHistoryQuery {
    pub patient_id: Option<PatientId>,
    pub limit: Option<u32>,
    /// Entries older than this one (the oldest of the page before).
    pub before: Option<OutboxId>,
}

pub(crate) fn select_unfinished() -> (String, Query) {
    (format!("{SELECT} AND {UNFINISHED} {ORDER}"), Query::new())
}

pub(crate) fn select_history(query: &OutboxHistoryQuery) -> (String, Query) {
    let mut q = Query::new()
        .fixed(FINISHED)
        .bound_if("n.patient_id = ?", query.patient_id.map(|p| p.0))
        // Always bound, as the audit's cursor (`audit::select`).
        .bound("o.id < ?", query.before.map_or(i64::MAX, |b| b.0));
    let limit = q.push_param(i64::from(
        query.limit.unwrap_or(DEFAULT_OUTBOX_HISTORY_LIMIT),
    ));
    // The whole ward's history walks `outbox_finished` back from the cursor and stops at the
    // LIMIT; SQLite would otherwise take `outbox_by_state` and sort every filed entry first.
    // One patient's is found through their notes instead (tens of rows).
    let select = if query.patient_id.is_none() {
        SELECT.replacen(
            "FROM outbox o",
            "FROM outbox o INDEXED BY outbox_finished",
            1,
        )
    } else {
        SELECT.to_owned()
    };
    (
        format!(
            "{select}{} ORDER BY o.id DESC LIMIT {limit}",
            q.and_clause()
        ),
        q,
    )
}

pub(crate) fn select_of_patient(patient: PatientId) -> (String, Query) {
    let q = Query::new().bound("n.patient_id = ?", patient.0);
    (format!("{SELECT}{} {ORDER}", q.and_clause()), q)
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: OutboxId,
    pub note_id: NoteId,
    pub patient_id: PatientId,
    pub reference: String,
    pub state: OutboxState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// "File now": sent first, and with LeaveRecordOpen so the clinician sees it on screen.
    pub interactive: bool,
    pub created_at: DateTime<Local>,
    pub updated_at: DateTime<Local>,
    pub payload: FilingPayload,
}

/// An entry a worker has claimed, with the claim's unique token and lease.
#[derive(Debug, Clone)]
pub struct OutboxClaim {
    pub entry: OutboxEntry,
    pub token: String,
    pub lease_until: DateTime<Local>,
    /// It came from `Unknown`: read the record back before sending anything.
    pub reconcile_first: bool,
}

use super::decode;

fn from_row(r: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let state: String = r.get(4)?;
    let payload: String = r.get(10)?;
    Ok(OutboxEntry {
        id: r.get(0)?,
        note_id: r.get(1)?,
        patient_id: r.get(2)?,
        reference: r.get(3)?,
        state: serde_json::from_str(&state).map_err(|e| decode(4, e))?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        interactive: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        payload: serde_json::from_str(&payload).map_err(|e| decode(10, e))?,
    })
}

fn load(tx: &Transaction<'_>, id: OutboxId) -> StoreResult<OutboxEntry> {
    tx.query_row(&format!("{SELECT} AND o.id = ?1"), [id], from_row)
        .optional()
        .map_err(StoreError::Sqlite)?
        .ok_or(StoreError::NotFound {
            what: "outbox entry",
            id: id.to_string(),
        })
}

fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Decode(e.to_string()))
}

/// Why a queued note is held after its patient was linked to another NHS number.
fn relink_hold_reason(from: &str, to: &str) -> String {
    let shown = |digits: &str| {
        NhsNumber::parse(digits).map_or_else(|_| digits.to_owned(), |n| n.formatted())
    };
    format!(
        "patient re-linked from {} to {}: check this note belongs to the new record before filing (\"not in the record\" files it to {}; \"found in the record\" marks it handled)",
        shown(from),
        shown(to),
        shown(to)
    )
}

/// The patient's NHS number now (None: not linked, or not on the ward).
fn current_nhs_number(tx: &Transaction<'_>, patient: PatientId) -> StoreResult<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT nhs_number FROM patients WHERE id = ?1",
            [patient],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
        .map_err(StoreError::Sqlite)?
        .flatten())
}

/// Parks one not-yet-sent entry for a person, audited, because its patient's NHS number is
/// no longer the one it is addressed to.
fn hold_for_relink(
    tx: &Transaction<'_>,
    actor: &str,
    entry: &OutboxEntry,
    from: &str,
    to: &str,
) -> StoreResult<()> {
    let held = OutboxState::Parked {
        reason: relink_hold_reason(from, to),
        maybe_filed: false,
    };
    tx.execute(
        "UPDATE outbox SET state = ?2, state_detail = ?3, next_attempt_at = NULL, claimed_by = NULL,
             claimed_until = NULL, updated_at = ?4 WHERE id = ?1",
        params![entry.id, held.kind(), to_json(&held)?, super::now()],
    )
    .map_err(StoreError::Sqlite)?;
    audit::record(
        tx,
        actor,
        "outbox.held_for_relink",
        "outbox",
        Some(&entry.id.to_string()),
        json!({ "note_id": entry.note_id, "from": entry.state.kind(), "to": &held,
                "addressed_to": from, "patient_now": to }),
    )?;
    Ok(())
}

/// Holds every not-yet-sent entry of `patient` after a re-link from `from` to `to`: queued
/// and retrying entries are parked for a person, in the caller's transaction (the re-link's),
/// so none goes to either number unreviewed. Entries that are in flight or whose outcome is
/// unknown keep their state: they are reconciled against the number they were sent to.
/// Returns how many were held.
pub(crate) fn hold_queued_for_relink_in_tx(
    tx: &Transaction<'_>,
    actor: &str,
    patient: PatientId,
    from: &str,
    to: &NhsNumber,
) -> StoreResult<usize> {
    let waiting: Vec<OutboxEntry> = {
        let mut stmt = tx
            .prepare(&format!(
                "{SELECT} AND n.patient_id = ?1 AND o.state IN ('queued', 'retrying') {ORDER}"
            ))
            .map_err(StoreError::Sqlite)?;
        let rows = stmt
            .query_map([patient], from_row)
            .map_err(StoreError::Sqlite)?;
        rows.collect::<Result<_, _>>().map_err(StoreError::Sqlite)?
    };
    for entry in &waiting {
        hold_for_relink(tx, actor, entry, from, &to.digits())?;
    }
    Ok(waiting.len())
}

/// Before a parked entry goes back to the API by a person's decision, it is addressed to
/// the patient's current NHS number (after a re-link, the person's check of the new record
/// is that decision), audited with both numbers.
fn readdress_to_current_patient(
    tx: &Transaction<'_>,
    actor: &str,
    entry: &OutboxEntry,
) -> StoreResult<()> {
    let addressed = entry.payload.nhs_number.as_ref().map(NhsNumber::digits);
    let current = current_nhs_number(tx, entry.patient_id)?;
    // Only a number that changed is re-addressed; an entry with none (the clipboard route
    // of an unlinked patient) is parked by the worker as before.
    let (Some(from), Some(current)) = (addressed, current) else {
        return Ok(());
    };
    if from == current {
        return Ok(());
    }
    let nhs_number = NhsNumber::parse(&current).map_err(|e| StoreError::Decode(e.to_string()))?;
    let payload = FilingPayload {
        nhs_number: Some(nhs_number),
        ..entry.payload.clone()
    };
    tx.execute(
        "UPDATE outbox SET payload = ?2 WHERE id = ?1",
        params![entry.id, to_json(&payload)?],
    )
    .map_err(StoreError::Sqlite)?;
    audit::record(
        tx,
        actor,
        "outbox.readdressed",
        "outbox",
        Some(&entry.id.to_string()),
        json!({ "note_id": entry.note_id, "nhs_number": { "from": from, "to": current } }),
    )?;
    Ok(())
}

/// Writes a note's one outbox entry (a second is refused by a unique index).
pub(crate) fn insert_note_entry(
    tx: &Transaction<'_>,
    actor: &str,
    payload: &FilingPayload,
    state: &OutboxState,
) -> StoreResult<OutboxId> {
    let now = super::now();
    tx.execute(
        "INSERT INTO outbox (kind, subject_id, payload, state, state_detail, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![KIND_NOTE, payload.note_id, to_json(payload)?, state.kind(), to_json(state)?, now],
    )
    .map_err(StoreError::Sqlite)?;
    let id = OutboxId(tx.last_insert_rowid());
    audit::record(
        tx,
        actor,
        "outbox.added",
        "outbox",
        Some(&id.to_string()),
        json!({ "note_id": payload.note_id, "state": state.kind() }),
    )?;
    Ok(id)
}

/// Applies `event` to entry `entry` under the caller's write transaction.
fn apply_in_tx(
    tx: &Transaction<'_>,
    actor: &str,
    entry: &OutboxEntry,
    event: &Event,
    now: DateTime<Local>,
    policy: &Policy,
) -> StoreResult<OutboxState> {
    let t = outbox_machine::apply(&entry.state, entry.attempts, event, now, policy).map_err(
        |refusal| {
            StoreError::Conflict(format!(
                "outbox entry {} (note {}): {refusal}",
                entry.id, entry.note_id
            ))
        },
    )?;
    if t.duplicate_success {
        tracing::warn!(outbox = %entry.id, "SystmOne reported a second successful filing for an already filed note");
        audit::record(
            tx,
            actor,
            "outbox.duplicate_success",
            "outbox",
            Some(&entry.id.to_string()),
            json!({ "note_id": entry.note_id, "state": entry.state.kind(), "warning": "SystmOne may hold this note twice; check the record" }),
        )?;
    }
    if t.next == entry.state && !t.counts_attempt && t.error.is_none() {
        return Ok(t.next);
    }
    let (claimed_by, claimed_until) = match &t.next {
        OutboxState::Sending {
            claimed_by,
            lease_until,
            ..
        } => (Some(claimed_by.clone()), Some(*lease_until)),
        _ => (None, None),
    };
    let next_attempt_at = t.next.due_at().flatten();
    tx.execute(
        "UPDATE outbox SET state = ?2, state_detail = ?3, attempts = attempts + ?4, last_error = coalesce(?5, last_error),
             next_attempt_at = ?6, claimed_by = ?7, claimed_until = ?8, updated_at = ?9 WHERE id = ?1",
        params![
            entry.id,
            t.next.kind(),
            to_json(&t.next)?,
            i64::from(t.counts_attempt),
            t.error,
            next_attempt_at,
            claimed_by,
            claimed_until,
            now
        ],
    )
    .map_err(StoreError::Sqlite)?;
    let filed = match &t.next {
        OutboxState::Filed { event_uid, how } => Some((event_uid.clone(), *how)),
        OutboxState::FiledManually => Some((None, FiledHow::Manual)),
        _ => None,
    };
    if let Some((event_uid, how)) = filed {
        tx.execute(
            "UPDATE notes SET status = 'filed', filed_at = ?2, filed_how = ?3, filed_event_uid = ?4, updated_at = ?2 WHERE id = ?1",
            params![entry.note_id, now, how.as_str(), event_uid],
        )
        .map_err(StoreError::Sqlite)?;
    }
    // Claims and the read-back step are bookkeeping; every other change is audited.
    let routine = matches!(t.next, OutboxState::Sending { .. });
    if !routine {
        audit::record(
            tx,
            actor,
            &format!("outbox.{}", t.next.kind()),
            "outbox",
            Some(&entry.id.to_string()),
            json!({ "note_id": entry.note_id, "from": entry.state.kind(), "to": &t.next, "error": t.error, "attempts": entry.attempts + u32::from(t.counts_attempt) }),
        )?;
    }
    Ok(t.next)
}

impl Store {
    /// The outbox in draining order; finished entries (filed, pasted) only when asked.
    /// With them it is the whole history: views page it with [`Store::outbox_history`].
    pub fn outbox_entries(&self, include_finished: bool) -> StoreResult<Vec<OutboxEntry>> {
        let (sql, query) = if include_finished {
            (format!("{SELECT} {ORDER}"), Query::new())
        } else {
            select_unfinished()
        };
        self.outbox_query(&sql, &query)
    }

    /// Finished entries (filed, pasted), newest first, at most `limit` (default
    /// [`DEFAULT_OUTBOX_HISTORY_LIMIT`]) older than `before`, of one patient if given.
    pub fn outbox_history(&self, query: &OutboxHistoryQuery) -> StoreResult<Vec<OutboxEntry>> {
        let (sql, q) = select_history(query);
        self.outbox_query(&sql, &q)
    }

    /// Every outbox entry of one patient's notes (finished or not), in draining order: a
    /// patient has tens of notes, not the ward's hundreds of thousands.
    pub fn outbox_entries_of_patient(&self, patient: PatientId) -> StoreResult<Vec<OutboxEntry>> {
        let (sql, q) = select_of_patient(patient);
        self.outbox_query(&sql, &q)
    }

    fn outbox_query(&self, sql: &str, query: &Query) -> StoreResult<Vec<OutboxEntry>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(query.params(), from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn outbox_entry(&self, id: OutboxId) -> StoreResult<OutboxEntry> {
        self.conn
            .query_row(&format!("{SELECT} AND o.id = ?1"), [id], from_row)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound {
                what: "outbox entry",
                id: id.to_string(),
            })
    }

    pub fn outbox_entry_for_note(&self, note_id: NoteId) -> StoreResult<Option<OutboxEntry>> {
        self.conn
            .query_row(
                &format!("{SELECT} AND o.subject_id = ?1"),
                [note_id],
                from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Applies one state-machine event to an entry (worker results, clinician answers),
    /// with its audit row and, once filed, the note's new state, in one transaction.
    pub fn apply_outbox_event(
        &mut self,
        actor: &str,
        id: OutboxId,
        event: &Event,
        policy: &Policy,
    ) -> StoreResult<OutboxEntry> {
        self.write(|tx| {
            let entry = load(tx, id)?;
            if matches!(event, Event::Requeue | Event::PasteNotDone) {
                // A person sends it back to the API: to the patient's current record.
                readdress_to_current_patient(tx, actor, &entry)?;
            }
            apply_in_tx(tx, actor, &entry, event, super::now(), policy)?;
            load(tx, id)
        })
    }

    /// Claims the first due entry for `token` (unique per claim), under the write lock.
    /// On the way it turns expired leases into `Unknown` and parks `Unknown` entries from an
    /// earlier day, so one stuck entry never blocks the rest.
    pub fn claim_next_outbox_entry(
        &mut self,
        token: &str,
        lease: chrono::Duration,
        policy: &Policy,
    ) -> StoreResult<Option<OutboxClaim>> {
        self.write(|tx| {
            let now = super::now();
            let actor = "Inpatient Hub (outbox)";
            let pending = pending_in_tx(tx)?;
            for entry in &pending {
                if matches!(&entry.state, OutboxState::Sending { lease_until, .. } if *lease_until <= now) {
                    apply_in_tx(tx, actor, entry, &Event::ExpireLease, now, policy)?;
                }
            }
            for entry in pending_in_tx(tx)? {
                let due = entry.state.due_at().flatten();
                if entry.state.due_at().is_none() || due.is_some_and(|at| at > now) {
                    continue;
                }
                // Never sent yet, and addressed to a number the patient no longer has (a
                // re-link that did not hold it): held for a person, never sent to either.
                // An `Unknown` entry is read back against the number it was sent to.
                if !matches!(entry.state, OutboxState::Unknown { .. }) {
                    let addressed = entry.payload.nhs_number.as_ref().map(NhsNumber::digits);
                    let current = current_nhs_number(tx, entry.patient_id)?;
                    if let (Some(from), Some(to)) = (addressed, current) {
                        if from != to {
                            hold_for_relink(tx, actor, &entry, &from, &to)?;
                            continue;
                        }
                    }
                }
                let next = apply_in_tx(tx, actor, &entry, &Event::Claim { worker: token.to_owned(), lease }, now, policy)?;
                if let OutboxState::Sending { lease_until, unknown_since, .. } = next {
                    let entry = load(tx, entry.id)?;
                    return Ok(Some(OutboxClaim { entry, token: token.to_owned(), lease_until, reconcile_first: unknown_since.is_some() }));
                }
            }
            Ok(None)
        })
    }

    /// "File now": the entry goes first, in the interactive lane, and a pending retry is due at once.
    pub fn file_outbox_entry_now(&mut self, actor: &str, id: OutboxId) -> StoreResult<OutboxEntry> {
        self.write(|tx| {
            let entry = load(tx, id)?;
            if !entry.state.is_pending() {
                return Err(StoreError::Conflict(format!("note {} is {}; it is not waiting to be filed", entry.note_id, entry.state.describe())));
            }
            let state = match entry.state {
                OutboxState::Retrying { .. } => OutboxState::Queued,
                ref other => other.clone(),
            };
            tx.execute(
                "UPDATE outbox SET interactive = 1, state = ?2, state_detail = ?3, next_attempt_at = NULL, updated_at = ?4 WHERE id = ?1",
                params![id, state.kind(), to_json(&state)?, super::now()],
            )
            .map_err(StoreError::Sqlite)?;
            audit::record(tx, actor, "outbox.file_now", "outbox", Some(&id.to_string()), json!({ "note_id": entry.note_id }))?;
            load(tx, id)
        })
    }
}

fn pending_in_tx(tx: &Transaction<'_>) -> StoreResult<Vec<OutboxEntry>> {
    let mut stmt = tx
        .prepare(&format!(
            "{SELECT} AND o.state IN ('queued', 'sending', 'unknown', 'retrying') {ORDER}"
        ))
        .map_err(StoreError::Sqlite)?;
    let rows = stmt.query_map([], from_row).map_err(StoreError::Sqlite)?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::Sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewPatient;
    use domain::outbox_machine::SendOutcome;
    use domain::{BedLabel, FilingRoute, NhsNumber, NoteBody, PatientName, Role};

    fn approved_note(store: &mut Store, route: FilingRoute) -> OutboxId {
        let pid = match store.patients().unwrap().first() {
            Some(p) => p.id,
            None => {
                store
                    .add_patient(
                        "Nurse A",
                        &NewPatient {
                            bed: BedLabel::parse("Bed 1").unwrap(),
                            name: PatientName::parse("Pat One").unwrap(),
                            nhs_number: Some(NhsNumber::parse("9434765919").unwrap()),
                        },
                    )
                    .unwrap()
                    .id
            }
        };
        let n = store
            .create_note(
                "Nurse A",
                pid,
                None,
                &NoteBody::parse("Reviewed.").unwrap(),
                None,
            )
            .unwrap();
        store
            .approve_note("Nurse A", Role::Registered, n.id, None, false, route)
            .unwrap()
            .outbox_id
            .unwrap()
    }

    fn fast() -> Policy {
        Policy {
            reconcile_grace: chrono::Duration::zero(),
            ..Policy::default()
        }
    }

    #[test]
    fn one_claim_at_a_time_and_filed_is_final_in_the_database() {
        let mut store = Store::open_in_memory().unwrap();
        let id = approved_note(&mut store, FilingRoute::Api);
        let lease = chrono::Duration::seconds(60);
        let claim = store
            .claim_next_outbox_entry("a#1", lease, &fast())
            .unwrap()
            .unwrap();
        assert_eq!(claim.entry.id, id);
        assert!(!claim.reconcile_first);
        assert!(
            store
                .claim_next_outbox_entry("b#1", lease, &fast())
                .unwrap()
                .is_none(),
            "claimed entries are not handed out twice"
        );
        let reply = Event::Reply {
            worker: "a#1".into(),
            outcome: SendOutcome::Filed {
                event_uid: Some("00000000000000EE".into()),
            },
        };
        let entry = store
            .apply_outbox_event("worker", id, &reply, &fast())
            .unwrap();
        assert!(matches!(
            entry.state,
            OutboxState::Filed {
                how: FiledHow::Api,
                ..
            }
        ));
        let note = store.note(entry.note_id).unwrap();
        assert_eq!(note.filed_how, Some(FiledHow::Api));
        assert_eq!(note.filed_event_uid.as_deref(), Some("00000000000000EE"));
        assert!(store
            .connection()
            .execute("UPDATE outbox SET state = 'queued' WHERE id = ?1", [id])
            .is_err());
        assert!(store
            .connection()
            .execute("DELETE FROM outbox WHERE id = ?1", [id])
            .is_err());
        let err = store.file_outbox_entry_now("Nurse A", id).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
    }

    #[test]
    fn an_expired_claim_is_reconciled_before_it_is_sent_again() {
        let mut store = Store::open_in_memory().unwrap();
        let id = approved_note(&mut store, FilingRoute::Api);
        store
            .claim_next_outbox_entry("dead#1", chrono::Duration::milliseconds(-1), &fast())
            .unwrap()
            .unwrap();
        let claim = store
            .claim_next_outbox_entry("b#1", chrono::Duration::seconds(60), &fast())
            .unwrap()
            .unwrap();
        assert_eq!(claim.entry.id, id);
        assert!(
            claim.reconcile_first,
            "a crashed worker's entry may have been sent"
        );
        let actions: Vec<String> = store
            .audit_entries(&Default::default())
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert!(
            actions.contains(&"outbox.unknown".to_string()),
            "{actions:?}"
        );
    }

    #[test]
    fn an_unknown_entry_from_yesterday_is_parked_and_the_next_one_is_claimed() {
        let mut store = Store::open_in_memory().unwrap();
        let stale = approved_note(&mut store, FilingRoute::Api);
        let fresh = approved_note(&mut store, FilingRoute::Api);
        let yesterday = super::super::now() - chrono::Duration::days(1);
        let unknown = OutboxState::Unknown {
            since: yesterday,
            check_after: yesterday,
        };
        store
            .connection()
            .execute(
                "UPDATE outbox SET state = 'unknown', state_detail = ?2 WHERE id = ?1",
                params![stale, serde_json::to_string(&unknown).unwrap()],
            )
            .unwrap();
        let claim = store
            .claim_next_outbox_entry("a#1", chrono::Duration::seconds(60), &fast())
            .unwrap()
            .unwrap();
        assert_eq!(
            claim.entry.id, fresh,
            "one stuck entry never blocks the rest"
        );
        let parked = store.outbox_entry(stale).unwrap();
        assert!(
            matches!(
                parked.state,
                OutboxState::Parked {
                    maybe_filed: true,
                    ..
                }
            ),
            "{:?}",
            parked.state
        );
    }

    #[test]
    fn the_history_pages_filed_entries_newest_first_and_the_queue_keeps_the_rest() {
        let mut store = Store::open_in_memory().unwrap();
        let ids: Vec<OutboxId> = (0..5)
            .map(|_| approved_note(&mut store, FilingRoute::Clipboard))
            .collect();
        for id in &ids[..4] {
            store
                .apply_outbox_event("Nurse A", *id, &Event::ConfirmInRecord, &fast())
                .unwrap();
        }
        let page = |before: Option<OutboxId>| -> Vec<OutboxId> {
            store
                .outbox_history(&OutboxHistoryQuery {
                    limit: Some(3),
                    before,
                    ..Default::default()
                })
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(page(None), [ids[3], ids[2], ids[1]]);
        assert_eq!(page(Some(ids[1])), [ids[0]]);
        let queue: Vec<OutboxId> = store
            .outbox_entries(false)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(queue, [ids[4]]);
        let patient = store.patients().unwrap()[0].id;
        assert_eq!(store.outbox_entries_of_patient(patient).unwrap().len(), 5);
        let of_patient = store
            .outbox_history(&OutboxHistoryQuery {
                patient_id: Some(patient),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(of_patient.len(), 4);
        assert_eq!(store.outbox_entries(true).unwrap().len(), 5);
    }

    #[test]
    fn clipboard_entries_are_never_claimed_and_confirmation_files_the_note() {
        let mut store = Store::open_in_memory().unwrap();
        let id = approved_note(&mut store, FilingRoute::Clipboard);
        assert!(store
            .claim_next_outbox_entry("a#1", chrono::Duration::seconds(60), &fast())
            .unwrap()
            .is_none());
        let entry = store
            .apply_outbox_event("Nurse A", id, &Event::ConfirmInRecord, &fast())
            .unwrap();
        assert_eq!(entry.state, OutboxState::FiledManually);
        assert_eq!(
            store.note(entry.note_id).unwrap().filed_how,
            Some(FiledHow::Manual)
        );
    }
}

/// Re-link safety (issue 11): a patient linked to another NHS number never has a queued note
/// filed to either number without a person's check.
#[cfg(test)]
mod relink_tests {
    use super::*;
    use crate::NewPatient;
    use domain::outbox_machine::SendOutcome;
    use domain::{BedLabel, FilingRoute, NoteBody, PatientId, PatientName, Role};

    const OLD: &str = "9434765919";
    const NEW: &str = "9990000018";
    const LEASE: chrono::Duration = chrono::Duration::seconds(60);

    fn fast() -> Policy {
        Policy {
            reconcile_grace: chrono::Duration::zero(),
            ..Policy::default()
        }
    }

    fn patient(store: &mut Store) -> PatientId {
        store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 1").unwrap(),
                    name: PatientName::parse("Pat One").unwrap(),
                    nhs_number: Some(NhsNumber::parse(OLD).unwrap()),
                },
            )
            .unwrap()
            .id
    }

    fn approved(store: &mut Store, pid: PatientId, text: &str) -> OutboxId {
        let n = store
            .create_note("Nurse A", pid, None, &NoteBody::parse(text).unwrap(), None)
            .unwrap();
        store
            .approve_note(
                "Nurse A",
                Role::Registered,
                n.id,
                None,
                false,
                FilingRoute::Api,
            )
            .unwrap()
            .outbox_id
            .unwrap()
    }

    fn relink(store: &mut Store, pid: PatientId, nhs: &str) {
        store
            .link_patient("Dr B", pid, &NhsNumber::parse(nhs).unwrap(), "{}")
            .unwrap();
    }

    fn actions(store: &Store) -> Vec<String> {
        store
            .audit_entries(&Default::default())
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect()
    }

    #[test]
    fn relinking_to_a_different_number_holds_queued_notes_until_a_person_resolves_them() {
        let mut store = Store::open_in_memory().unwrap();
        let pid = patient(&mut store);
        let queued = approved(&mut store, pid, "Reviewed on the ward round.");
        let second = approved(&mut store, pid, "Bloods taken.");
        relink(&mut store, pid, NEW);

        for id in [queued, second] {
            let entry = store.outbox_entry(id).unwrap();
            let OutboxState::Parked {
                reason,
                maybe_filed,
            } = &entry.state
            else {
                panic!("held for review, not {:?}", entry.state);
            };
            assert!(!maybe_filed, "never sent, so not possibly filed");
            assert!(
                reason.contains("re-linked from 943 476 5919 to 999 000 0018")
                    && reason.contains("check this note belongs to the new record"),
                "{reason}"
            );
            assert_eq!(
                entry
                    .payload
                    .nhs_number
                    .as_ref()
                    .map(NhsNumber::digits)
                    .as_deref(),
                Some(OLD),
                "not silently re-addressed"
            );
        }
        assert!(
            store
                .claim_next_outbox_entry("w#1", LEASE, &fast())
                .unwrap()
                .is_none(),
            "nothing goes to either number while held"
        );
        let audited = actions(&store);
        assert_eq!(
            audited
                .iter()
                .filter(|a| *a == "outbox.held_for_relink")
                .count(),
            2,
            "{audited:?}"
        );

        // "Not in the record": the person files it to the patient's current number, audited.
        store
            .apply_outbox_event("Dr B", queued, &Event::Requeue, &fast())
            .unwrap();
        let claim = store
            .claim_next_outbox_entry("w#2", LEASE, &fast())
            .unwrap()
            .unwrap();
        assert_eq!(claim.entry.id, queued);
        assert_eq!(
            claim.entry.payload.nhs_number.unwrap().digits(),
            NEW,
            "filed to the current record only after the person's decision"
        );
        assert!(actions(&store).contains(&"outbox.readdressed".to_owned()));

        // "Found in the record": handled elsewhere, never sent.
        let handled = store
            .apply_outbox_event("Dr B", second, &Event::ConfirmInRecord, &fast())
            .unwrap();
        assert_eq!(handled.state, OutboxState::FiledManually);
    }

    #[test]
    fn a_same_number_link_or_refresh_holds_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        let pid = patient(&mut store);
        let id = approved(&mut store, pid, "Reviewed.");
        relink(&mut store, pid, OLD);
        store.refresh_demographics("Dr B", pid, "{}").unwrap();
        assert_eq!(store.outbox_entry(id).unwrap().state, OutboxState::Queued);
        let claim = store
            .claim_next_outbox_entry("w#1", LEASE, &fast())
            .unwrap()
            .unwrap();
        assert_eq!(claim.entry.id, id);
        assert!(!actions(&store).contains(&"outbox.held_for_relink".to_owned()));
    }

    #[test]
    fn an_in_flight_entry_still_reconciles_against_the_number_it_was_sent_to() {
        let mut store = Store::open_in_memory().unwrap();
        let pid = patient(&mut store);
        let id = approved(&mut store, pid, "Reviewed.");
        store
            .claim_next_outbox_entry("w#1", LEASE, &fast())
            .unwrap()
            .unwrap();
        // Re-linked while the request is out.
        relink(&mut store, pid, NEW);
        assert!(matches!(
            store.outbox_entry(id).unwrap().state,
            OutboxState::Sending { .. }
        ));
        // The answer was lost: the outcome is unknown, and the read-back goes to the old
        // number, where it may have been filed.
        let lost = Event::Reply {
            worker: "w#1".into(),
            outcome: SendOutcome::OutcomeUnknown,
        };
        store
            .apply_outbox_event("worker", id, &lost, &fast())
            .unwrap();
        let claim = store
            .claim_next_outbox_entry("w#2", LEASE, &fast())
            .unwrap()
            .unwrap();
        assert!(claim.reconcile_first);
        assert_eq!(claim.entry.payload.nhs_number.unwrap().digits(), OLD);
    }

    #[test]
    fn a_queued_note_whose_patient_number_changed_behind_the_app_is_held_at_claim() {
        let mut store = Store::open_in_memory().unwrap();
        let pid = patient(&mut store);
        let id = approved(&mut store, pid, "Reviewed.");
        // A change that bypassed `link_patient` (an older version, a repair by hand).
        store
            .connection()
            .execute(
                "UPDATE patients SET nhs_number = ?2 WHERE id = ?1",
                rusqlite::params![pid, NEW],
            )
            .unwrap();
        assert!(store
            .claim_next_outbox_entry("w#1", LEASE, &fast())
            .unwrap()
            .is_none());
        assert!(matches!(
            store.outbox_entry(id).unwrap().state,
            OutboxState::Parked { ref reason, .. } if reason.contains("re-linked")
        ));
    }
}
