//! Patients on the local ward list. The NHS number is optional until a SystmOne lookup
//! links the patient.

use super::{audit, Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
use domain::{BedLabel, NhsNumber, PatientId, PatientName};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct NewPatient {
    pub bed: BedLabel,
    pub name: PatientName,
    pub nhs_number: Option<NhsNumber>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Patient {
    pub id: PatientId,
    pub bed: BedLabel,
    pub name: PatientName,
    pub nhs_number: Option<NhsNumber>,
    pub created_at: DateTime<Local>,
    pub created_by: String,
    pub systmone_linked_at: Option<DateTime<Local>>,
    pub systmone_linked_by: Option<String>,
    pub demographics_as_of: Option<DateTime<Local>>,
}

const COLUMNS: &str = "id, bed, name, nhs_number, created_at, created_by, systmone_linked_at, systmone_linked_by, demographics_as_of";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Patient> {
    use super::decode;
    let bed: String = r.get(1)?;
    let name: String = r.get(2)?;
    let nhs: Option<String> = r.get(3)?;
    Ok(Patient {
        id: r.get(0)?,
        bed: BedLabel::parse(&bed).map_err(|e| decode(1, e.to_string()))?,
        name: PatientName::parse(&name).map_err(|e| decode(2, e.to_string()))?,
        nhs_number: nhs
            .map(|n| NhsNumber::parse(&n))
            .transpose()
            .map_err(|e| decode(3, e.to_string()))?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        systmone_linked_at: r.get(6)?,
        systmone_linked_by: r.get(7)?,
        demographics_as_of: r.get(8)?,
    })
}

impl Store {
    pub fn add_patient(&mut self, actor: &str, new: &NewPatient) -> StoreResult<Patient> {
        let id = self.write(|tx| {
            if let Some(nhs) = &new.nhs_number {
                let existing: Option<i64> = tx
                    .query_row("SELECT id FROM patients WHERE nhs_number = ?1", [nhs.digits()], |r| r.get(0))
                    .optional()
                    .map_err(StoreError::Sqlite)?;
                if let Some(existing) = existing {
                    return Err(StoreError::Conflict(format!(
                        "a patient with NHS number {nhs} is already on the ward list (patient {existing})"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO patients (bed, name, nhs_number, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![new.bed.as_str(), new.name.expose(), new.nhs_number.as_ref().map(NhsNumber::digits), super::now(), actor],
            )
            .map_err(StoreError::Sqlite)?;
            let id = PatientId(tx.last_insert_rowid());
            audit::record(
                tx,
                actor,
                "patient.added",
                "patient",
                Some(&id.to_string()),
                serde_json::json!({ "bed": new.bed.as_str(), "name": new.name.expose(), "nhs_number": new.nhs_number.as_ref().map(NhsNumber::digits) }),
            )?;
            Ok(id)
        })?;
        self.patient(id)
    }

    pub fn patient(&self, id: PatientId) -> StoreResult<Patient> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM patients WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound {
                what: "patient",
                id: id.to_string(),
            })
    }

    pub fn patient_by_nhs_number(&self, nhs: &NhsNumber) -> StoreResult<Option<Patient>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM patients WHERE nhs_number = ?1"),
                [nhs.digits()],
                from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Links a ward patient to a SystmOne record after a clinician confirmed the match:
    /// sets the NHS number, who confirmed it and when, and caches the demographics seen.
    pub fn link_patient(
        &mut self,
        actor: &str,
        id: PatientId,
        nhs: &NhsNumber,
        demographics_json: &str,
    ) -> StoreResult<Patient> {
        self.write(|tx| {
            let clash: Option<i64> = tx
                .query_row("SELECT id FROM patients WHERE nhs_number = ?1 AND id != ?2", params![nhs.digits(), id], |r| r.get(0))
                .optional()
                .map_err(StoreError::Sqlite)?;
            if let Some(other) = clash {
                return Err(StoreError::Conflict(format!(
                    "NHS number {nhs} is already linked to another ward patient (patient {other}); check for a duplicate"
                )));
            }
            let before: Option<Option<String>> = tx
                .query_row("SELECT nhs_number FROM patients WHERE id = ?1 AND discharged_at IS NULL", [id], |r| r.get(0))
                .optional()
                .map_err(StoreError::Sqlite)?;
            let before = before.ok_or(StoreError::NotFound { what: "patient on the ward", id: id.to_string() })?;
            let now = super::now();
            tx.execute(
                "UPDATE patients SET nhs_number = ?2, systmone_linked_at = ?3, systmone_linked_by = ?4,
                        demographics_json = ?5, demographics_as_of = ?3 WHERE id = ?1",
                params![id, nhs.digits(), now, actor, demographics_json],
            )
            .map_err(StoreError::Sqlite)?;
            // Re-linked to a different record: notes queued for the old number are held for
            // a person in this same transaction, so none is filed to either number unchecked.
            let notes_held = match &before {
                Some(old) if *old != nhs.digits() => {
                    super::outbox::hold_queued_for_relink_in_tx(tx, actor, id, old, nhs)?
                }
                _ => 0,
            };
            audit::record(
                tx,
                actor,
                "patient.linked",
                "patient",
                Some(&id.to_string()),
                serde_json::json!({ "nhs_number": { "from": before, "to": nhs.digits() }, "confirmed_by": actor, "confirmed_at": now.to_rfc3339(), "notes_held_for_review": notes_held }),
            )?;
            Ok(())
        })?;
        self.patient(id)
    }

    /// Replaces the cached SystmOne demographics of a linked patient ("refresh").
    pub fn refresh_demographics(
        &mut self,
        actor: &str,
        id: PatientId,
        demographics_json: &str,
    ) -> StoreResult<Patient> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE patients SET demographics_json = ?2, demographics_as_of = ?3 WHERE id = ?1 AND nhs_number IS NOT NULL",
                    params![id, demographics_json, super::now()],
                )
                .map_err(StoreError::Sqlite)?;
            if changed == 0 {
                return Err(StoreError::NotFound { what: "linked patient", id: id.to_string() });
            }
            audit::record(tx, actor, "patient.demographics_refreshed", "patient", Some(&id.to_string()), serde_json::json!({}))?;
            Ok(())
        })?;
        self.patient(id)
    }

    /// The cached SystmOne demographics (JSON) of a patient, if any.
    pub fn cached_demographics(&self, id: PatientId) -> StoreResult<Option<String>> {
        self.conn
            .query_row(
                "SELECT demographics_json FROM patients WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
            .map(Option::flatten)
    }

    /// Patients currently on the ward (not discharged), by bed.
    pub fn patients(&self) -> StoreResult<Vec<Patient>> {
        let mut stmt = self
            .conn
            .prepare(&ward_patients_sql())
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// Patients on the ward by bed: read from the `patients_on_ward` partial index (v9), so the
/// thousands discharged over the years cost nothing.
pub(crate) fn ward_patients_sql() -> String {
    format!("SELECT {COLUMNS} FROM patients WHERE discharged_at IS NULL ORDER BY bed, id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_patient(nhs: Option<&str>) -> NewPatient {
        NewPatient {
            bed: BedLabel::parse("Bed 1").unwrap(),
            name: PatientName::parse("Ann O'Neill").unwrap(),
            nhs_number: nhs.map(|n| NhsNumber::parse(n).unwrap()),
        }
    }

    #[test]
    fn adds_and_reads_back_with_audit() {
        let mut store = Store::open_in_memory().unwrap();
        let p = store
            .add_patient("Nurse A", &new_patient(Some("9434765919")))
            .unwrap();
        assert_eq!(p.name.expose(), "Ann O'Neill");
        assert_eq!(store.patients().unwrap().len(), 1);
        let audit = store.audit_entries(&Default::default()).unwrap();
        assert_eq!(audit[0].action, "patient.added");
    }

    #[test]
    fn linking_sets_the_nhs_number_and_audits_who_confirmed() {
        let mut store = Store::open_in_memory().unwrap();
        let p = store.add_patient("Nurse A", &new_patient(None)).unwrap();
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let linked = store
            .link_patient("Dr B", p.id, &nhs, "{\"Surname\":\"O'Neill\"}")
            .unwrap();
        assert_eq!(linked.nhs_number, Some(nhs.clone()));
        assert_eq!(linked.systmone_linked_by.as_deref(), Some("Dr B"));
        assert!(linked.demographics_as_of.is_some());
        let audit = store.audit_entries(&Default::default()).unwrap();
        assert_eq!(audit[0].action, "patient.linked");
        assert_eq!(audit[0].actor, "Dr B");
        // A second ward patient cannot take the same NHS number.
        let q = store.add_patient("Nurse A", &new_patient(None)).unwrap();
        assert!(matches!(
            store.link_patient("Dr B", q.id, &nhs, "{}"),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn the_same_nhs_number_cannot_be_added_twice() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .add_patient("Nurse A", &new_patient(Some("9434765919")))
            .unwrap();
        let err = store
            .add_patient("Nurse A", &new_patient(Some("943 476 5919")))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(store.patients().unwrap().len(), 1);
    }
}
