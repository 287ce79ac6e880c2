//! The append-only audit log: who did what, when, to which record.

use super::audit_chain;
use super::query::Query;
use super::{Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
use domain::AuditId;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, ToSql, Transaction};
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
    /// The OS account the app ran under (NULL for rows written before it was recorded).
    pub os_account: Option<String>,
    /// The user logged on to SystmOne at the time, when known.
    pub systmone_user: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub limit: Option<u32>,
}

/// Appends one audit row inside the caller's transaction, under the acting identity set on
/// this connection, chained to the newest row. The caller's transaction is IMMEDIATE (the
/// write lock is held), so no other process can append between reading the chain's head and
/// writing the row: the chain cannot fork.
pub(crate) fn record(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<&str>,
    detail: serde_json::Value,
) -> StoreResult<AuditId> {
    let (os_account, systmone_user) =
        audit_chain::acting_identity(tx).map_err(StoreError::Sqlite)?;
    let (prev_id, prev_hash) = audit_chain::chain_head(tx).map_err(StoreError::Sqlite)?;
    let id = prev_id + 1;
    // Hashed exactly as stored: the time as rusqlite writes it, the detail as its JSON text.
    let at = stored_text(&super::now())?;
    let detail = detail.to_string();
    let hash = audit_chain::row_hash(&audit_chain::RowContent {
        prev_hash: prev_hash.as_deref(),
        id,
        at: Some(&at),
        actor: Some(actor),
        action: Some(action),
        entity: Some(entity),
        entity_id,
        detail: Some(&detail),
        os_account: os_account.as_deref(),
        systmone_user: systmone_user.as_deref(),
    });
    tx.execute(
        "INSERT INTO audit (id, at, actor, action, entity, entity_id, detail, os_account, systmone_user, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![id, at, actor, action, entity, entity_id, detail, os_account, systmone_user, prev_hash, hash],
    )
    .map_err(StoreError::Sqlite)?;
    Ok(AuditId(id))
}

/// The text SQLite stores for a value bound as a parameter.
fn stored_text(value: &dyn ToSql) -> StoreResult<String> {
    match value.to_sql().map_err(StoreError::Sqlite)? {
        ToSqlOutput::Owned(Value::Text(text)) => Ok(text),
        ToSqlOutput::Borrowed(ValueRef::Text(bytes)) => {
            Ok(String::from_utf8_lossy(bytes).into_owned())
        }
        other => Err(StoreError::Decode(format!(
            "a time stored as {other:?}, not text"
        ))),
    }
}

/// When a query gives no limit: a screenful and more, never the whole table.
pub const DEFAULT_AUDIT_LIMIT: u32 = 500;

/// The audit query for the filters given, newest first, the page before `before` (see
/// [`crate::query`]): one record's rows come from `audit_by_entity` (entity, entity_id, then
/// rowid order), one entity's from `audit_by_entity_newest`, the whole log from the rowid.
pub(crate) fn select(query: &AuditQuery, before: Option<AuditId>) -> (String, Query) {
    let mut q = Query::new()
        .bound_if("entity = ?", query.entity.clone())
        .bound_if("entity_id = ?", query.entity_id.clone())
        // Always bound (the first page: before the end of time), so every page, the first
        // included, is read backwards along an index from the cursor and cut by the LIMIT.
        .bound("id < ?", before.map_or(i64::MAX, |b| b.0));
    let limit = q.push_param(i64::from(query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT)));
    (
        format!(
            "SELECT id, at, actor, action, entity, entity_id, detail, os_account, systmone_user FROM audit
             {} ORDER BY id DESC LIMIT {limit}",
            q.where_clause()
        ),
        q,
    )
}

impl Store {
    /// Newest first, at most `query.limit` rows ([`DEFAULT_AUDIT_LIMIT`] when absent).
    pub fn audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.audit_page(query, None)
    }

    /// One page of [`Store::audit_entries`]: the rows older than `before` (the oldest id of
    /// the page before), newest first.
    pub fn audit_page(
        &self,
        query: &AuditQuery,
        before: Option<AuditId>,
    ) -> StoreResult<Vec<AuditEntry>> {
        let (sql, q) = select(query, before);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(q.params(), |r| {
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
                    os_account: r.get(7)?,
                    systmone_user: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

impl Store {
    /// Audits a read of a patient's data from SystmOne (search, lookup, record, follow): the
    /// read changes nothing here, but who looked at which patient, and what they asked, is
    /// recorded like any change. `nhs_number` is the patient read, when there is one.
    pub fn audit_patient_read(
        &mut self,
        actor: &str,
        action: &str,
        nhs_number: Option<&str>,
        detail: serde_json::Value,
    ) -> StoreResult<AuditId> {
        self.write(|tx| record(tx, actor, action, "patient", nhs_number, detail))
    }

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
    fn one_records_audit_pages_back_from_a_cursor() {
        let mut store = Store::open_in_memory().unwrap();
        for i in 0..12 {
            let entity_id = (i % 3).to_string();
            store
                .write(|tx| {
                    record(
                        tx,
                        "Nurse A",
                        "test",
                        "task",
                        Some(&entity_id),
                        serde_json::json!({ "n": i }),
                    )
                })
                .unwrap();
        }
        let query = AuditQuery {
            entity: Some("task".into()),
            entity_id: Some("1".into()),
            limit: Some(3),
        };
        let first: Vec<i64> = store
            .audit_page(&query, None)
            .unwrap()
            .iter()
            .map(|e| e.id.0)
            .collect();
        assert_eq!(first, [11, 8, 5]);
        let next: Vec<i64> = store
            .audit_page(&query, Some(AuditId(5)))
            .unwrap()
            .iter()
            .map(|e| e.id.0)
            .collect();
        assert_eq!(next, [2]);
        let everything = store.audit_entries(&AuditQuery::default()).unwrap();
        assert_eq!(everything.len(), 12);
    }

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
