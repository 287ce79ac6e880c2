//! Ward note templates: data the ward edits (add, update, retire), every change audited.
//! Templates are never deleted: notes name the template they started from.

use super::{audit, Store, StoreError, StoreResult};
use domain::{NoteBody, NoteTemplate, ValidationError};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::json;

const COLUMNS: &str = "id, name, body, retired_at IS NOT NULL, updated_at, updated_by, version";
const NAME_MAX: usize = 80;

fn from_row(r: &Row<'_>) -> rusqlite::Result<NoteTemplate> {
    Ok(NoteTemplate {
        id: r.get(0)?,
        name: r.get(1)?,
        body: r.get(2)?,
        retired: r.get(3)?,
        updated_at: r.get(4)?,
        updated_by: r.get(5)?,
        version: r.get(6)?,
    })
}

/// A template name: one line, 1–80 characters.
pub fn clean_template_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::Empty {
            field: "The template name",
        });
    }
    let len = name.chars().count();
    if len > NAME_MAX {
        return Err(ValidationError::TooLong {
            field: "The template name",
            len,
            max: NAME_MAX,
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacters {
            field: "The template name",
        });
    }
    if let Some(code) = domain::text::first_refused_character(name) {
        return Err(ValidationError::InvisibleCharacter {
            field: "The template name",
            code,
        });
    }
    Ok(name.to_owned())
}

fn load(tx: &Transaction<'_>, id: i64) -> StoreResult<NoteTemplate> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM note_templates WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
    .map_err(StoreError::Sqlite)?
    .ok_or(StoreError::NotFound {
        what: "note template",
        id: id.to_string(),
    })
}

fn ensure_name_free(tx: &Transaction<'_>, name: &str, except: Option<i64>) -> StoreResult<()> {
    let clash: Option<i64> = tx
        .query_row(
            "SELECT id FROM note_templates WHERE name = ?1 COLLATE NOCASE AND (?2 IS NULL OR id <> ?2)",
            params![name, except],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::Sqlite)?;
    match clash {
        Some(id) => Err(StoreError::Conflict(format!(
            "a template called '{name}' already exists (template {id})"
        ))),
        None => Ok(()),
    }
}

impl Store {
    /// Templates by name; retired ones only when asked (the editor shows them, the picker doesn't).
    pub fn note_templates(&self, include_retired: bool) -> StoreResult<Vec<NoteTemplate>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM note_templates WHERE ?1 OR retired_at IS NULL ORDER BY name COLLATE NOCASE, id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([include_retired], from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn note_template(&self, id: i64) -> StoreResult<NoteTemplate> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM note_templates WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound {
                what: "note template",
                id: id.to_string(),
            })
    }

    pub fn add_note_template(
        &mut self,
        actor: &str,
        name: &str,
        body: &NoteBody,
    ) -> StoreResult<NoteTemplate> {
        let name = clean_template_name(name)?;
        self.write(|tx| {
            ensure_name_free(tx, &name, None)?;
            let now = super::now();
            tx.execute(
                "INSERT INTO note_templates (name, body, created_at, created_by, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?3, ?4)",
                params![name, body.expose(), now, actor],
            )
            .map_err(StoreError::Sqlite)?;
            let id = tx.last_insert_rowid();
            audit::record(tx, actor, "note_template.added", "note_template", Some(&id.to_string()), json!({ "name": name, "body": body.expose() }))?;
            load(tx, id)
        })
    }

    /// Changes a template's name and/or body; refused if it changed since `expected_version`.
    pub fn update_note_template(
        &mut self,
        actor: &str,
        id: i64,
        expected_version: Option<i64>,
        name: Option<&str>,
        body: Option<&NoteBody>,
    ) -> StoreResult<NoteTemplate> {
        let name = name.map(clean_template_name).transpose()?;
        self.write(|tx| {
            let before = load(tx, id)?;
            if let Some(v) = expected_version.filter(|v| *v != before.version) {
                return Err(StoreError::Conflict(format!(
                    "template '{}' was changed by {} since you opened it (version {v} → {}); your change was not saved",
                    before.name, before.updated_by, before.version
                )));
            }
            let new_name = name.clone().unwrap_or_else(|| before.name.clone());
            let new_body = body.map_or_else(|| before.body.clone(), |b| b.expose().to_owned());
            if new_name == before.name && new_body == before.body {
                return Ok(before);
            }
            ensure_name_free(tx, &new_name, Some(id))?;
            tx.execute(
                "UPDATE note_templates SET name = ?2, body = ?3, updated_at = ?4, updated_by = ?5, version = version + 1 WHERE id = ?1",
                params![id, new_name, new_body, super::now(), actor],
            )
            .map_err(StoreError::Sqlite)?;
            audit::record(
                tx,
                actor,
                "note_template.updated",
                "note_template",
                Some(&id.to_string()),
                json!({ "name": { "from": before.name, "to": new_name }, "body": { "from": before.body, "to": new_body } }),
            )?;
            load(tx, id)
        })
    }

    /// Retires (hides from the picker) or, with `retired = false`, restores a template.
    pub fn set_note_template_retired(
        &mut self,
        actor: &str,
        id: i64,
        retired: bool,
    ) -> StoreResult<NoteTemplate> {
        self.write(|tx| {
            let before = load(tx, id)?;
            if before.retired == retired {
                return Err(StoreError::Conflict(format!(
                    "template '{}' is already {}",
                    before.name,
                    if retired { "retired" } else { "in use" }
                )));
            }
            let now = super::now();
            tx.execute(
                "UPDATE note_templates SET retired_at = ?2, retired_by = ?3, updated_at = ?4, updated_by = ?5, version = version + 1 WHERE id = ?1",
                params![id, retired.then_some(now), retired.then_some(actor), now, actor],
            )
            .map_err(StoreError::Sqlite)?;
            let action = if retired { "note_template.retired" } else { "note_template.restored" };
            audit::record(tx, actor, action, "note_template", Some(&id.to_string()), json!({ "name": before.name }))?;
            load(tx, id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ward_templates_are_seeded() {
        let store = Store::open_in_memory().unwrap();
        let names: Vec<String> = store
            .note_templates(false)
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        for expected in [
            "Ward round",
            "1:1 observation",
            "Escorted leave",
            "Handover",
            "Family contact",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }
        for t in store.note_templates(false).unwrap() {
            NoteBody::parse(&t.body).unwrap();
        }
    }

    #[test]
    fn add_update_retire_are_audited_and_checked() {
        let mut store = Store::open_in_memory().unwrap();
        let body = NoteBody::parse("Section 136 review\nOutcome:").unwrap();
        let t = store
            .add_note_template("Sister K", "S136 review", &body)
            .unwrap();
        assert!(matches!(
            store.add_note_template("Sister K", "s136 REVIEW", &body),
            Err(StoreError::Conflict(_))
        ));
        let t2 = store
            .update_note_template(
                "Sister K",
                t.id,
                Some(t.version),
                None,
                Some(&NoteBody::parse("Section 136 review\nPlan:").unwrap()),
            )
            .unwrap();
        assert_eq!(t2.version, 2);
        assert!(t2.body.ends_with("Plan:"));
        let stale = store
            .update_note_template("Nurse J", t.id, Some(1), Some("Other"), None)
            .unwrap_err();
        assert!(matches!(stale, StoreError::Conflict(_)), "{stale:?}");
        store
            .set_note_template_retired("Sister K", t.id, true)
            .unwrap();
        assert!(store
            .note_templates(false)
            .unwrap()
            .iter()
            .all(|x| x.id != t.id));
        assert!(store
            .note_templates(true)
            .unwrap()
            .iter()
            .any(|x| x.id == t.id && x.retired));
        let actions: Vec<String> = store
            .audit_entries(&crate::AuditQuery {
                entity: Some("note_template".into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(
            actions,
            [
                "note_template.retired",
                "note_template.updated",
                "note_template.added"
            ]
        );
        assert!(matches!(
            clean_template_name(" "),
            Err(ValidationError::Empty { .. })
        ));
        assert!(matches!(
            clean_template_name(&"n".repeat(81)),
            Err(ValidationError::TooLong { .. })
        ));
    }
}
