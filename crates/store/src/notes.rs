//! Case notes: drafts (autosaved, each save its own small transaction), approval and
//! co-signature. Approval freezes the note (the database refuses later edits, see migration
//! v4) and writes its outbox entry in the same transaction as the new state and the audit row.

use super::query::Query;
use super::{audit, outbox, Store, StoreError, StoreResult};
use domain::outbox_machine::OutboxState;
use domain::render;
use domain::{
    FiledHow, FilingPayload, FilingRoute, NhsNumber, Note, NoteBody, NoteId, NoteStatus, PatientId,
    Role, Sensitive, ValidationError,
};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::json;

const SELECT: &str = "SELECT n.id, n.patient_id, n.template, n.body, n.status, n.reference, n.corrects_note,
        n.created_at, n.created_by, n.updated_at, n.version, n.approved_at, n.approved_by, n.approved_role,
        n.text_sha256, n.cosigned_at, n.cosigned_by, n.filed_at, n.filed_how, n.filed_event_uid, o.id
    FROM notes n LEFT JOIN outbox o ON o.kind = 'note' AND o.subject_id = n.id";

use super::decode;

fn from_row(r: &Row<'_>) -> rusqlite::Result<Note> {
    let body: String = r.get(3)?;
    let status: String = r.get(4)?;
    let approved_role: Option<String> = r.get(13)?;
    let filed_how: Option<String> = r.get(18)?;
    Ok(Note {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        template: r.get(2)?,
        body: NoteBody::parse(&body).map_err(|e| decode(3, e))?,
        status: NoteStatus::parse(&status)
            .ok_or_else(|| decode(4, format!("unknown note status {status}")))?,
        reference: r.get(5)?,
        corrects_note: r.get(6)?,
        created_at: r.get(7)?,
        created_by: r.get(8)?,
        updated_at: r.get(9)?,
        version: r.get(10)?,
        approved_at: r.get(11)?,
        approved_by: r.get(12)?,
        approved_role: approved_role.map(|s| Role::parse(&s)),
        text_sha256: r.get(14)?,
        cosigned_at: r.get(15)?,
        cosigned_by: r.get(16)?,
        filed_at: r.get(17)?,
        filed_how: filed_how
            .map(|s| {
                FiledHow::parse(&s).ok_or_else(|| decode(18, format!("unknown filing route {s}")))
            })
            .transpose()?,
        filed_event_uid: r.get(19)?,
        outbox_id: r.get(20)?,
    })
}

pub(crate) fn load(tx: &Transaction<'_>, id: NoteId) -> StoreResult<Note> {
    tx.query_row(&format!("{SELECT} WHERE n.id = ?1"), [id], from_row)
        .optional()
        .map_err(StoreError::Sqlite)?
        .ok_or(StoreError::NotFound {
            what: "note",
            id: id.to_string(),
        })
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::Other(msg.into()))
}

/// A reference staff can read aloud and SystmOne can be searched for: `IH-` and 12 hex digits.
fn new_reference() -> String {
    let hex = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    format!("IH-{}", &hex[..12])
}

fn reference_of(tx: &Transaction<'_>, id: Option<NoteId>) -> StoreResult<Option<String>> {
    id.map(|id| {
        tx.query_row("SELECT reference FROM notes WHERE id = ?1", [id], |r| {
            r.get::<_, String>(0)
        })
        .map_err(StoreError::Sqlite)
    })
    .transpose()
}

/// The lines to file for `note` right now: the frozen text once approved, else a fresh render.
pub(crate) fn filing_lines(tx: &Transaction<'_>, note: &Note) -> StoreResult<Vec<String>> {
    if note.status != NoteStatus::Draft {
        let text: Option<String> = tx
            .query_row(
                "SELECT approved_text FROM notes WHERE id = ?1",
                [note.id],
                |r| r.get(0),
            )
            .map_err(StoreError::Sqlite)?;
        if let Some(text) = text {
            return Ok(text.split('\n').map(str::to_owned).collect());
        }
    }
    let corrects = reference_of(tx, note.corrects_note)?;
    render::narrative_lines(&note.body, &note.reference, corrects.as_deref())
        .map_err(|e| invalid(e.to_string()))
}

/// Filters for the notes list.
#[derive(Debug, Clone, Default)]
pub struct NoteFilter {
    pub patient_id: Option<PatientId>,
    pub status: Option<NoteStatus>,
}

impl Store {
    /// Starts a draft. `template` names the template it came from; `corrects` an approved note
    /// of the same patient that this one corrects.
    pub fn create_note(
        &mut self,
        actor: &str,
        patient_id: PatientId,
        template: Option<&str>,
        body: &NoteBody,
        corrects: Option<NoteId>,
    ) -> StoreResult<Note> {
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT id FROM patients WHERE id = ?1", [patient_id], |r| r.get(0))
                .optional()
                .map_err(StoreError::Sqlite)?;
            if exists.is_none() {
                return Err(StoreError::NotFound { what: "patient", id: patient_id.to_string() });
            }
            if let Some(original) = corrects {
                let original = load(tx, original)?;
                if original.patient_id != patient_id {
                    return Err(invalid(format!("note {} is about another patient; a correction must be for the same patient", original.id)));
                }
                if original.status == NoteStatus::Draft {
                    return Err(invalid(format!("note {} is still a draft: edit it instead of writing a correction", original.id)));
                }
            }
            let now = super::now();
            let reference = new_reference();
            tx.execute(
                "INSERT INTO notes (patient_id, template, body, status, reference, corrects_note, created_at, created_by, updated_at)
                 VALUES (?1, ?2, ?3, 'draft', ?4, ?5, ?6, ?7, ?6)",
                params![patient_id, template, body.expose(), reference, corrects, now, actor],
            )
            .map_err(StoreError::Sqlite)?;
            let id = NoteId(tx.last_insert_rowid());
            audit::record(
                tx,
                actor,
                "note.created",
                "note",
                Some(&id.to_string()),
                json!({ "patient_id": patient_id, "template": template, "corrects_note": corrects, "reference": reference, "chars": body.char_count() }),
            )?;
            load(tx, id)
        })
    }

    /// Autosave. Refused once approved (the database refuses too), or if `expected_version`
    /// is stale (another window saved meanwhile: the newer text is shown instead).
    pub fn save_note_draft(
        &mut self,
        actor: &str,
        id: NoteId,
        body: &NoteBody,
        expected_version: Option<i64>,
    ) -> StoreResult<Note> {
        self.write(|tx| {
            let before = load(tx, id)?;
            if before.status != NoteStatus::Draft {
                return Err(StoreError::Conflict(format!(
                    "note {id} is approved and can no longer be edited; write a correction instead"
                )));
            }
            if let Some(v) = expected_version.filter(|v| *v != before.version) {
                return Err(StoreError::Conflict(format!(
                    "note {id} was saved elsewhere since you opened it (your copy is version {v}, the saved one {}); reopen it before editing",
                    before.version
                )));
            }
            if before.body == *body {
                return Ok(before);
            }
            tx.execute(
                "UPDATE notes SET body = ?2, updated_at = ?3, version = version + 1 WHERE id = ?1",
                params![id, body.expose(), super::now()],
            )
            .map_err(StoreError::Sqlite)?;
            audit::record(tx, actor, "note.draft_saved", "note", Some(&id.to_string()), json!({ "version": before.version + 1, "chars": body.char_count() }))?;
            load(tx, id)
        })
    }

    /// Deletes a draft nobody approved (approved notes cannot be deleted).
    pub fn discard_note_draft(&mut self, actor: &str, id: NoteId) -> StoreResult<()> {
        self.write(|tx| {
            let before = load(tx, id)?;
            if before.status != NoteStatus::Draft {
                return Err(StoreError::Conflict(format!(
                    "note {id} is approved and cannot be discarded"
                )));
            }
            tx.execute("DELETE FROM notes WHERE id = ?1", [id])
                .map_err(StoreError::Sqlite)?;
            audit::record(
                tx,
                actor,
                "note.discarded",
                "note",
                Some(&id.to_string()),
                json!({ "reference": before.reference }),
            )?;
            Ok(())
        })
    }

    pub fn note(&self, id: NoteId) -> StoreResult<Note> {
        self.conn
            .query_row(&format!("{SELECT} WHERE n.id = ?1"), [id], from_row)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound {
                what: "note",
                id: id.to_string(),
            })
    }

    /// Newest first.
    pub fn notes(&self, filter: &NoteFilter) -> StoreResult<Vec<Note>> {
        let (sql, query) = select(filter);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(query.params(), from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Exactly the lines that will be (or were) filed for this note.
    pub fn note_filing_lines(&mut self, id: NoteId) -> StoreResult<Vec<String>> {
        // A read, but it must see the note and the original's reference consistently.
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::classify(e, &self.path))?;
        let note = load(&tx, id)?;
        filing_lines(&tx, &note)
    }

    /// Approves a draft: freezes the text to file and its SHA-256, and — unless the ward
    /// requires co-signature for `role` — queues it (API) or hands it to the clinician
    /// (clipboard), all in one transaction with the audit row. `expected_sha256` is the hash
    /// of the preview the clinician saw: if the note changed since, nothing is approved.
    pub fn approve_note(
        &mut self,
        actor: &str,
        role: Role,
        id: NoteId,
        expected_sha256: Option<&str>,
        ward_requires_cosignature: bool,
        route: FilingRoute,
    ) -> StoreResult<Note> {
        self.write(|tx| {
            let note = load(tx, id)?;
            if note.status != NoteStatus::Draft {
                return Err(StoreError::Conflict(format!("note {id} is already approved ({})", note.status.as_str())));
            }
            let lines = filing_lines(tx, &note)?;
            let sha = render::text_sha256(&lines);
            if let Some(expected) = expected_sha256.filter(|e| !e.eq_ignore_ascii_case(&sha)) {
                return Err(StoreError::Conflict(format!(
                    "note {id} changed since the preview you approved (preview {}…, now {}…); please review it again",
                    expected.get(..8).unwrap_or(expected),
                    &sha[..8]
                )));
            }
            let needs_cosignature = role.needs_cosignature(ward_requires_cosignature);
            let status = if needs_cosignature { NoteStatus::AwaitingCosignature } else { NoteStatus::Approved };
            let now = super::now();
            tx.execute(
                "UPDATE notes SET status = ?2, approved_at = ?3, approved_by = ?4, approved_role = ?5, text_sha256 = ?6,
                     approved_text = ?7, updated_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), now, actor, role.as_str(), sha, lines.join("\n")],
            )
            .map_err(StoreError::Sqlite)?;
            audit::record(
                tx,
                actor,
                "note.approved",
                "note",
                Some(&id.to_string()),
                json!({ "role": role.as_str(), "text_sha256": sha, "lines": lines.len(), "awaiting_cosignature": needs_cosignature, "route": route }),
            )?;
            if !needs_cosignature {
                queue_for_filing(tx, actor, &note, lines, sha, route)?;
            }
            load(tx, id)
        })
    }

    /// A registered clinician co-signs a note approved by a student or HCA; it is then queued.
    pub fn cosign_note(
        &mut self,
        actor: &str,
        role: Role,
        id: NoteId,
        route: FilingRoute,
    ) -> StoreResult<Note> {
        self.write(|tx| {
            let note = load(tx, id)?;
            if note.status != NoteStatus::AwaitingCosignature {
                return Err(StoreError::Conflict(format!("note {id} is not awaiting co-signature ({})", note.status.as_str())));
            }
            if role != Role::Registered {
                return Err(StoreError::Conflict(format!(
                    "only a registered clinician can co-sign; your role is recorded as '{}'",
                    role.as_str()
                )));
            }
            if note.approved_by.as_deref().is_some_and(|by| by.trim().eq_ignore_ascii_case(actor.trim())) {
                return Err(StoreError::Conflict("a note cannot be co-signed by the person who approved it".into()));
            }
            let lines = filing_lines(tx, &note)?;
            let sha = render::text_sha256(&lines);
            if note.text_sha256.as_deref() != Some(sha.as_str()) {
                return Err(StoreError::Decode(format!("note {id}: the approved text does not match its recorded hash")));
            }
            let now = super::now();
            tx.execute(
                "UPDATE notes SET status = 'approved', cosigned_at = ?2, cosigned_by = ?3, cosigned_role = ?4, updated_at = ?2 WHERE id = ?1",
                params![id, now, actor, role.as_str()],
            )
            .map_err(StoreError::Sqlite)?;
            audit::record(tx, actor, "note.cosigned", "note", Some(&id.to_string()), json!({ "text_sha256": sha, "route": route }))?;
            queue_for_filing(tx, actor, &note, lines, sha, route)?;
            load(tx, id)
        })
    }
}

fn queue_for_filing(
    tx: &Transaction<'_>,
    actor: &str,
    note: &Note,
    lines: Vec<String>,
    sha: String,
    route: FilingRoute,
) -> StoreResult<()> {
    let nhs: Option<String> = tx
        .query_row(
            "SELECT nhs_number FROM patients WHERE id = ?1",
            [note.patient_id],
            |r| r.get(0),
        )
        .map_err(StoreError::Sqlite)?;
    let nhs_number = nhs
        .map(|n| NhsNumber::parse(&n))
        .transpose()
        .map_err(|e| StoreError::Decode(e.to_string()))?;
    if route == FilingRoute::Api && nhs_number.is_none() {
        return Err(StoreError::Conflict(
            "this patient is not linked to SystmOne (no NHS number), so the note cannot be filed automatically; link the patient first, or copy it into SystmOne".into(),
        ));
    }
    let reference_line = render::reference_line(&note.reference);
    let payload = FilingPayload {
        note_id: note.id,
        nhs_number,
        lines: Sensitive::new(lines),
        reference_line,
        text_sha256: sha,
    };
    let state = match route {
        FilingRoute::Api => OutboxState::Queued,
        FilingRoute::Clipboard => OutboxState::AwaitingPasteConfirmation,
    };
    outbox::insert_note_entry(tx, actor, &payload, &state)?;
    Ok(())
}

/// The notes query for the filters given, newest first (see [`crate::query`]).
pub(crate) fn select(filter: &NoteFilter) -> (String, Query) {
    let query = Query::new()
        .bound_if("n.patient_id = ?", filter.patient_id.map(|p| p.0))
        .bound_if(
            "n.status = ?",
            filter.status.map(|s| NoteStatus::as_str(s).to_owned()),
        );
    (
        format!("{SELECT} {} ORDER BY n.id DESC", query.where_clause()),
        query,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewPatient;
    use domain::{BedLabel, PatientName};

    fn setup() -> (Store, PatientId) {
        let mut store = Store::open_in_memory().unwrap();
        let p = store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 1").unwrap(),
                    name: PatientName::parse("Pat One").unwrap(),
                    nhs_number: Some(NhsNumber::parse("9434765919").unwrap()),
                },
            )
            .unwrap();
        (store, p.id)
    }

    fn body(s: &str) -> NoteBody {
        NoteBody::parse(s).unwrap()
    }

    #[test]
    fn drafts_autosave_with_versions_and_refuse_stale_copies() {
        let (mut store, pid) = setup();
        let n = store
            .create_note("Nurse A", pid, None, &body("Settled night."), None)
            .unwrap();
        assert_eq!((n.status, n.version), (NoteStatus::Draft, 1));
        assert!(
            n.reference.starts_with("IH-") && n.reference.len() == 15,
            "{}",
            n.reference
        );
        let n = store
            .save_note_draft(
                "Nurse A",
                n.id,
                &body("Settled night. Ate breakfast."),
                Some(1),
            )
            .unwrap();
        assert_eq!(n.version, 2);
        let err = store
            .save_note_draft("Nurse A", n.id, &body("stale"), Some(1))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        assert_eq!(
            store.note(n.id).unwrap().body.expose(),
            "Settled night. Ate breakfast."
        );
    }

    #[test]
    fn approval_freezes_the_note_in_the_database_itself() {
        let (mut store, pid) = setup();
        let n = store
            .create_note("Nurse A", pid, None, &body("Seen by the team."), None)
            .unwrap();
        let n = store
            .approve_note(
                "Nurse A",
                Role::Registered,
                n.id,
                None,
                false,
                FilingRoute::Api,
            )
            .unwrap();
        assert_eq!(n.status, NoteStatus::Approved);
        assert!(n.outbox_id.is_some());
        let lines = store.note_filing_lines(n.id).unwrap();
        assert_eq!(
            n.text_sha256.as_deref(),
            Some(render::text_sha256(&lines).as_str())
        );
        assert!(matches!(
            store.save_note_draft("Nurse A", n.id, &body("changed"), None),
            Err(StoreError::Conflict(_))
        ));
        let raw = store
            .connection()
            .execute("UPDATE notes SET body = 'tampered' WHERE id = ?1", [n.id]);
        assert!(
            raw.is_err(),
            "the trigger must refuse edits of an approved note"
        );
        assert!(store
            .connection()
            .execute("UPDATE notes SET status = 'draft' WHERE id = ?1", [n.id])
            .is_err());
        assert!(store
            .connection()
            .execute("DELETE FROM notes WHERE id = ?1", [n.id])
            .is_err());
        assert!(matches!(
            store.approve_note(
                "Nurse A",
                Role::Registered,
                n.id,
                None,
                false,
                FilingRoute::Api
            ),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn approval_of_a_changed_preview_is_refused() {
        let (mut store, pid) = setup();
        let n = store
            .create_note("Nurse A", pid, None, &body("Version one."), None)
            .unwrap();
        let seen = render::text_sha256(&store.note_filing_lines(n.id).unwrap());
        store
            .save_note_draft("Nurse B", n.id, &body("Version two."), None)
            .unwrap();
        let err = store
            .approve_note(
                "Nurse A",
                Role::Registered,
                n.id,
                Some(&seen),
                false,
                FilingRoute::Api,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("changed since the preview"),
            "{err}"
        );
        assert_eq!(store.note(n.id).unwrap().status, NoteStatus::Draft);
    }

    #[test]
    fn cosignature_gates_the_queue() {
        let (mut store, pid) = setup();
        let n = store
            .create_note("Student S", pid, None, &body("Obs done."), None)
            .unwrap();
        let n = store
            .approve_note(
                "Student S",
                Role::Student,
                n.id,
                None,
                true,
                FilingRoute::Api,
            )
            .unwrap();
        assert_eq!(n.status, NoteStatus::AwaitingCosignature);
        assert!(n.outbox_id.is_none(), "not queued before co-signature");
        assert!(matches!(
            store.cosign_note("HCA H", Role::Hca, n.id, FilingRoute::Api),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.cosign_note("student s", Role::Registered, n.id, FilingRoute::Api),
            Err(StoreError::Conflict(_))
        ));
        let n = store
            .cosign_note("Nurse A", Role::Registered, n.id, FilingRoute::Api)
            .unwrap();
        assert_eq!(
            (n.status, n.cosigned_by.as_deref()),
            (NoteStatus::Approved, Some("Nurse A"))
        );
        assert!(n.outbox_id.is_some());
    }

    #[test]
    fn corrections_reference_the_original_and_unlinked_patients_cannot_use_the_api() {
        let (mut store, pid) = setup();
        let n = store
            .create_note("Nurse A", pid, None, &body("Wrong bed noted."), None)
            .unwrap();
        assert!(
            store
                .create_note("Nurse A", pid, None, &body("fix"), Some(n.id))
                .is_err(),
            "a draft is edited, not corrected"
        );
        let n = store
            .approve_note(
                "Nurse A",
                Role::Registered,
                n.id,
                None,
                false,
                FilingRoute::Api,
            )
            .unwrap();
        let c = store
            .create_note("Nurse A", pid, None, &body("Bed 4, not bed 3."), Some(n.id))
            .unwrap();
        let lines = store.note_filing_lines(c.id).unwrap();
        assert_eq!(lines[0], render::correction_line(&n.reference));
        let other = store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 2").unwrap(),
                    name: PatientName::parse("Pat Two").unwrap(),
                    nhs_number: None,
                },
            )
            .unwrap();
        let m = store
            .create_note("Nurse A", other.id, None, &body("Admitted."), None)
            .unwrap();
        let err = store
            .approve_note(
                "Nurse A",
                Role::Registered,
                m.id,
                None,
                false,
                FilingRoute::Api,
            )
            .unwrap_err();
        assert!(err.to_string().contains("not linked to SystmOne"), "{err}");
        assert_eq!(
            store.note(m.id).unwrap().status,
            NoteStatus::Draft,
            "nothing half-approved"
        );
        let m = store
            .approve_note(
                "Nurse A",
                Role::Registered,
                m.id,
                None,
                false,
                FilingRoute::Clipboard,
            )
            .unwrap();
        assert_eq!(m.status, NoteStatus::Approved);
    }
}
