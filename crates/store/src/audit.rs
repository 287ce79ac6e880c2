//! The append-only audit log: who did what, when, to which record.

use super::{Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
use domain::AuditId;
use rusqlite::{params, Transaction};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: DateTime<Local>,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    /// JSON describing the change (field: {from, to}); may hold patient data, so it is
    /// shown to staff and IT but never logged.
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub limit: Option<u32>,
}

/// Appends one audit row inside the caller's transaction.
pub(crate) fn record(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<&str>,
    detail: serde_json::Value,
) -> StoreResult<AuditId> {
    tx.execute(
        "INSERT INTO audit (at, actor, action, entity, entity_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![super::now(), actor, action, entity, entity_id, detail.to_string()],
    )
    .map_err(StoreError::Sqlite)?;
    Ok(AuditId(tx.last_insert_rowid()))
}

impl Store {
    /// Newest first.
    pub fn audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, at, actor, action, entity, entity_id, detail FROM audit
                 WHERE (?1 IS NULL OR entity = ?1) AND (?2 IS NULL OR entity_id = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let limit = i64::from(query.limit.unwrap_or(500));
        let rows = stmt
            .query_map(params![query.entity, query.entity_id, limit], |r| {
                let detail: String = r.get(6)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    entity: r.get(4)?,
                    entity_id: r.get(5)?,
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

impl Store {
    /// The newest audit row's id (0 when there is none). Every change to the ward's data
    /// writes an audit row, so this moves whenever anything changed, in any process; reading
    /// it is one lookup at the end of the table's index.
    pub fn last_audit_id(&self) -> StoreResult<i64> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM audit", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rows_cannot_be_changed_or_deleted() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .write(|tx| {
                record(
                    tx,
                    "Nurse A",
                    "test",
                    "task",
                    Some("1"),
                    serde_json::json!({"x": 1}),
                )
            })
            .unwrap();
        assert!(store
            .connection()
            .execute("UPDATE audit SET actor = 'someone else'", [])
            .is_err());
        assert!(store.connection().execute("DELETE FROM audit", []).is_err());
        let entries = store.audit_entries(&AuditQuery::default()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].actor, "Nurse A");
    }
}
