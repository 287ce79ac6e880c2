//! The audit trail's hash chain: each row carries the SHA-256 of its own content and of the
//! row before it, so an edit, deletion or insertion made outside Inpatient Hub (by someone who
//! dropped the append-only triggers with a SQLite tool) is detected.
//!
//! What the chain cannot prove: that the newest rows were not cut off. Removing rows from the
//! end leaves a shorter chain that is still internally consistent; only the dropped triggers
//! (reported at open until someone re-creates them) betray it. Someone able to drop and
//! re-create triggers and recompute hashes can also rewrite the whole chain: the chain makes
//! tampering evident to a check, it is not a signature (no key is kept from the ward PC's user).

use super::{Store, StoreError, StoreResult};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What the first row chains to.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Names the hashed encoding, so a future change of what is hashed cannot be confused with it.
const CHAIN_FORMAT: &str = "inpatient-hub-audit-v1";

/// The append-only trigger on UPDATE, re-created by migration v8 after its back-fill exactly as
/// v1 created it.
pub(crate) const AUDIT_NO_UPDATE_TRIGGER: &str =
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

/// The triggers that make the audit trail and the database identity append-only, as the
/// migrations create them. Compared (whitespace aside) with `sqlite_master` at every check, so
/// a trigger dropped, or replaced by one that lets changes through, is reported, never
/// silently re-created.
const GUARD_TRIGGERS: &[(&str, &str)] = &[
    ("audit_no_update", AUDIT_NO_UPDATE_TRIGGER),
    (
        "audit_no_delete",
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    ),
    (
        "database_identity_no_update",
        "CREATE TRIGGER database_identity_no_update BEFORE UPDATE ON database_identity
        BEGIN SELECT RAISE(ABORT, 'the database identity cannot be changed'); END;",
    ),
    (
        "database_identity_no_delete",
        "CREATE TRIGGER database_identity_no_delete BEFORE DELETE ON database_identity
        BEGIN SELECT RAISE(ABORT, 'the database identity cannot be deleted'); END;",
    ),
];

/// How many rows the migration's back-fill holds in memory at once.
const BACKFILL_BATCH: i64 = 1000;

/// The columns the chain covers, in the order they are hashed.
const CHAINED_COLUMNS: &str =
    "id, prev_hash, hash, at, actor, action, entity, entity_id, detail, os_account, systmone_user";

/// One audit row's chained content, every column as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChainedRow {
    pub id: i64,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    pub at: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub detail: Option<String>,
    pub os_account: Option<String>,
    pub systmone_user: Option<String>,
}

impl ChainedRow {
    /// Reads a row selected with [`CHAINED_COLUMNS`]. A value of another type than the app
    /// writes (someone stored a number or bytes) is read as text, so it changes the hash
    /// instead of failing the check.
    fn from_row(r: &Row<'_>) -> rusqlite::Result<ChainedRow> {
        Ok(ChainedRow {
            id: r.get(0)?,
            prev_hash: as_text(r.get_ref(1)?),
            hash: as_text(r.get_ref(2)?),
            at: as_text(r.get_ref(3)?),
            actor: as_text(r.get_ref(4)?),
            action: as_text(r.get_ref(5)?),
            entity: as_text(r.get_ref(6)?),
            entity_id: as_text(r.get_ref(7)?),
            detail: as_text(r.get_ref(8)?),
            os_account: as_text(r.get_ref(9)?),
            systmone_user: as_text(r.get_ref(10)?),
        })
    }

    /// The SHA-256 (hex) of this row's content chained to `prev_hash` (its stored one).
    pub fn computed_hash(&self) -> String {
        row_hash(&RowContent {
            prev_hash: self.prev_hash.as_deref(),
            id: self.id,
            at: self.at.as_deref(),
            actor: self.actor.as_deref(),
            action: self.action.as_deref(),
            entity: self.entity.as_deref(),
            entity_id: self.entity_id.as_deref(),
            detail: self.detail.as_deref(),
            os_account: self.os_account.as_deref(),
            systmone_user: self.systmone_user.as_deref(),
        })
    }
}

fn as_text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Integer(n) => Some(format!("integer:{n}")),
        ValueRef::Real(x) => Some(format!("real:{x}")),
        ValueRef::Blob(bytes) => Some(format!("blob:{}", hex::encode(bytes))),
    }
}

/// What one row's hash is computed over.
pub(crate) struct RowContent<'a> {
    pub prev_hash: Option<&'a str>,
    pub id: i64,
    pub at: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    pub entity: Option<&'a str>,
    pub entity_id: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub os_account: Option<&'a str>,
    pub systmone_user: Option<&'a str>,
}

/// SHA-256 over a JSON array of the fields: JSON quotes and escapes every string and tells
/// null from "", so no two different rows encode alike (a plain concatenation would let
/// text move between fields with the same hash).
pub(crate) fn row_hash(content: &RowContent<'_>) -> String {
    let canonical = serde_json::json!([
        CHAIN_FORMAT,
        content.prev_hash,
        content.id,
        content.at,
        content.actor,
        content.action,
        content.entity,
        content.entity_id,
        content.detail,
        content.os_account,
        content.systmone_user,
    ])
    .to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The id and hash a new row chains to: the newest row's, or the genesis value.
pub(crate) fn chain_head(tx: &Transaction<'_>) -> rusqlite::Result<(i64, Option<String>)> {
    let newest: Option<(i64, Option<String>)> = tx
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(newest.unwrap_or_else(|| (0, Some(GENESIS_HASH.to_string()))))
}

/// Migration v8: chains every row already in the audit table, oldest first, in batches so a
/// large table is never held in memory. Runs with the UPDATE trigger dropped, inside the
/// migration's transaction (all or nothing).
pub(crate) fn backfill(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut after_id = 0_i64;
    loop {
        let batch: Vec<ChainedRow> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {CHAINED_COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after_id, BACKFILL_BATCH], ChainedRow::from_row)?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after_id = last.id;
        let mut update =
            tx.prepare_cached("UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3")?;
        for mut row in batch {
            row.prev_hash = Some(prev_hash);
            let hash = row.computed_hash();
            update.execute(params![row.prev_hash, hash, row.id])?;
            prev_hash = hash;
        }
    }
}

/// What `verify_audit_chain` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditChainReport {
    /// Audit rows read and checked.
    pub rows_checked: u64,
    /// The newest row's id (none when the table is empty).
    pub newest_id: Option<i64>,
    /// The first place the chain breaks, oldest first; `None` when every row verifies.
    pub first_break: Option<AuditChainBreak>,
    /// How many breaks there are in all (one tampering usually makes one).
    pub breaks_found: u64,
    /// Append-only triggers missing or changed.
    pub trigger_problems: Vec<String>,
}

impl AuditChainReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.trigger_problems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditChainBreak {
    /// The audit row at which the chain breaks.
    pub row_id: i64,
    pub kind: AuditBreakKind,
    /// One sentence for IT.
    pub explanation: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditBreakKind {
    /// The row's content no longer matches its hash: it was edited.
    RowAltered,
    /// The row has no hash: it was written outside Inpatient Hub.
    MissingHash,
    /// The row does not chain to the row before it: a row was deleted or inserted before it.
    ChainBroken,
    /// Row ids skip: rows were deleted before this one.
    IdGap,
}

/// Checks one row against the row before it (`None` for the first row).
fn check_link(prev: Option<(i64, Option<&str>)>, row: &ChainedRow) -> Option<AuditChainBreak> {
    let (prev_id, expected_prev_hash) = prev.unwrap_or((0, Some(GENESIS_HASH)));
    let broken = |kind, explanation: String| {
        Some(AuditChainBreak {
            row_id: row.id,
            kind,
            explanation,
        })
    };
    if row.id != prev_id + 1 {
        let what = if prev_id == 0 {
            format!("audit rows 1 to {} are missing (deleted)", row.id - 1)
        } else if row.id > prev_id + 1 {
            format!(
                "audit rows {} to {} are missing (deleted)",
                prev_id + 1,
                row.id - 1
            )
        } else {
            "its id is out of sequence".to_string()
        };
        return broken(
            AuditBreakKind::IdGap,
            format!("before audit row {}, {what}", row.id),
        );
    }
    if row.prev_hash.as_deref() != expected_prev_hash {
        return broken(
            AuditBreakKind::ChainBroken,
            format!(
                "audit row {} does not chain to the row before it: a row before it was deleted, inserted or rewritten",
                row.id
            ),
        );
    }
    match &row.hash {
        None => broken(
            AuditBreakKind::MissingHash,
            format!(
                "audit row {} has no hash: it was written outside Inpatient Hub",
                row.id
            ),
        ),
        Some(stored) if *stored != row.computed_hash() => broken(
            AuditBreakKind::RowAltered,
            format!("audit row {} has been altered since it was written", row.id),
        ),
        Some(_) => None,
    }
}

/// A trigger's SQL with its layout ignored (`sqlite_master` keeps the text as written, less
/// the final semicolon).
fn normalise_sql(sql: &str) -> String {
    sql.trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The append-only triggers missing or not as the migrations made them.
fn trigger_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stmt =
        conn.prepare_cached("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?;
    for (name, expected) in GUARD_TRIGGERS {
        let found: Option<Option<String>> = stmt.query_row([name], |r| r.get(0)).optional()?;
        match found.flatten() {
            None => problems.push(format!("the protective trigger {name} is missing")),
            Some(sql) if normalise_sql(&sql) != normalise_sql(expected) => {
                problems.push(format!("the protective trigger {name} has been changed"))
            }
            Some(_) => {}
        }
    }
    Ok(problems)
}

/// The cheap check: the triggers, and the newest row against the one before it. Never scans
/// the table, so it can run at every open and every status request.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut problems = trigger_problems(conn)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHAINED_COLUMNS} FROM audit ORDER BY id DESC LIMIT 2"
    ))?;
    let newest_two = stmt
        .query_map([], ChainedRow::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(newest) = newest_two.first() {
        // With no row before it, the newest must be row 1 chaining to the genesis value.
        let prev = newest_two.get(1).map(|p| (p.id, p.hash.as_deref()));
        if let Some(found) = check_link(prev, newest) {
            problems.push(found.explanation);
        }
    }
    Ok(problems)
}

/// The warning every screen shows while the audit trail looks tampered with.
fn warning_text(problems: &[String]) -> String {
    format!(
        "The audit trail has been altered outside Inpatient Hub ({}). Tell IT; they should run `hubctl audit verify`.",
        problems.join("; ")
    )
}

impl Store {
    /// The cheap tamper check (triggers present and unchanged, the newest audit row hashes
    /// and links to the one before it): `Some(warning)` when it fails. A failure does not stop
    /// the app — staff still need the board — but every screen says so. Nothing is repaired
    /// here: a dropped trigger stays reported until IT investigates.
    pub fn audit_integrity_warning(&self) -> Option<String> {
        match quick_check(&self.conn) {
            Ok(problems) if problems.is_empty() => None,
            Ok(problems) => Some(warning_text(&problems)),
            // A column or table removed makes the query fail: that is tampering too.
            Err(e) => Some(warning_text(&[format!(
                "the audit table cannot be checked: {e}"
            )])),
        }
    }

    /// Checks the whole chain, oldest row first, one row at a time (memory stays flat however
    /// many rows there are). Reports the first break and how many there are.
    ///
    /// Limit: rows cut off the end leave a consistent, shorter chain; that is visible only
    /// through the dropped triggers in `trigger_problems`.
    pub fn verify_audit_chain(&self) -> StoreResult<AuditChainReport> {
        let trigger_problems = trigger_problems(&self.conn).map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {CHAINED_COLUMNS} FROM audit ORDER BY id"))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut report = AuditChainReport {
            rows_checked: 0,
            newest_id: None,
            first_break: None,
            breaks_found: 0,
            trigger_problems,
        };
        let mut prev: Option<(i64, Option<String>)> = None;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let row = ChainedRow::from_row(r).map_err(|e| self.err(e))?;
            let found = check_link(prev.as_ref().map(|(id, h)| (*id, h.as_deref())), &row);
            if let Some(found) = found {
                report.breaks_found += 1;
                report.first_break.get_or_insert(found);
            }
            report.rows_checked += 1;
            report.newest_id = Some(row.id);
            prev = Some((row.id, row.hash));
        }
        Ok(report)
    }
}

/// The per-connection record of who is acting, read by every audit insert. A TEMP table is
/// private to this connection and never written to the database file.
pub(crate) fn prepare_connection(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS acting_identity (
            singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
            os_account    TEXT NOT NULL,
            systmone_user TEXT
        );",
    )
}

impl Store {
    /// Who is at the keyboard: the OS account running the app and, when known, the user
    /// logged on to SystmOne. Every audit row this connection writes afterwards records both
    /// (before the first call they are NULL: the store cannot know them itself).
    pub fn set_acting_identity(
        &mut self,
        os_account: &str,
        systmone_user: Option<&str>,
    ) -> StoreResult<()> {
        if os_account.trim().is_empty() {
            return Err(StoreError::Invalid(domain::ValidationError::Empty {
                field: "os_account",
            }));
        }
        self.conn
            .execute(
                "INSERT INTO temp.acting_identity (singleton, os_account, systmone_user)
                 VALUES (1, ?1, ?2)
                 ON CONFLICT (singleton) DO UPDATE SET
                    os_account = excluded.os_account, systmone_user = excluded.systmone_user",
                params![os_account, systmone_user],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// The identity set by [`Store::set_acting_identity`], if any.
pub(crate) fn acting_identity(
    tx: &Transaction<'_>,
) -> rusqlite::Result<(Option<String>, Option<String>)> {
    Ok(tx
        .query_row(
            "SELECT os_account, systmone_user FROM temp.acting_identity",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .map_or((None, None), |(os, s1): (String, Option<String>)| {
            (Some(os), s1)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record;
    use crate::AuditQuery;

    fn write_rows(store: &mut Store, count: usize) {
        for n in 0..count {
            store
                .write(|tx| {
                    record(
                        tx,
                        "Nurse A",
                        "task.add",
                        "task",
                        Some(&n.to_string()),
                        serde_json::json!({"title": format!("Task {n}")}),
                    )
                })
                .unwrap();
        }
    }

    fn store_with_rows(count: usize) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        write_rows(&mut store, count);
        store
    }

    fn execute(store: &mut Store, sql: &str) {
        store.connection().execute_batch(sql).unwrap();
    }

    #[test]
    fn the_chain_verifies_after_many_writes() {
        let mut store = store_with_rows(250);
        // Several rows in one transaction chain to each other too.
        store
            .write(|tx| {
                for n in 0..5 {
                    record(
                        tx,
                        "Nurse B",
                        "note.add",
                        "note",
                        Some(&n.to_string()),
                        serde_json::json!({}),
                    )?;
                }
                Ok(())
            })
            .unwrap();
        let report = store.verify_audit_chain().unwrap();
        assert_eq!(report.rows_checked, 255);
        assert_eq!(report.newest_id, Some(255));
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(store.audit_integrity_warning(), None);
    }

    #[test]
    fn an_empty_audit_trail_verifies() {
        let store = Store::open_in_memory().unwrap();
        let report = store.verify_audit_chain().unwrap();
        assert_eq!(report.rows_checked, 0);
        assert!(report.is_intact());
        assert_eq!(store.audit_integrity_warning(), None);
    }

    #[test]
    fn an_edited_row_is_reported_even_after_the_trigger_is_put_back() {
        let mut store = store_with_rows(10);
        execute(
            &mut store,
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET detail = '{\"title\":\"forged\"}' WHERE id = 4;",
        );
        let report = store.verify_audit_chain().unwrap();
        let found = report.first_break.clone().unwrap();
        assert_eq!((found.row_id, found.kind), (4, AuditBreakKind::RowAltered));
        assert!(found.explanation.contains("audit row 4"), "{found:?}");
        assert_eq!(report.breaks_found, 1);
        assert_eq!(report.rows_checked, 10);
        assert!(report.trigger_problems[0].contains("audit_no_update"));
        assert!(store
            .audit_integrity_warning()
            .unwrap()
            .contains("audit_no_update is missing"));

        // Covering tracks by re-creating the trigger does not hide the edit.
        execute(&mut store, AUDIT_NO_UPDATE_TRIGGER);
        let report = store.verify_audit_chain().unwrap();
        assert!(report.trigger_problems.is_empty());
        assert_eq!(report.first_break.unwrap().row_id, 4);
    }

    #[test]
    fn a_deleted_middle_row_is_reported() {
        let mut store = store_with_rows(10);
        execute(
            &mut store,
            "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 5;",
        );
        let report = store.verify_audit_chain().unwrap();
        let found = report.first_break.unwrap();
        assert_eq!((found.row_id, found.kind), (6, AuditBreakKind::IdGap));
        assert!(
            found.explanation.contains("rows 5 to 5 are missing"),
            "{found:?}"
        );
        assert_eq!(report.rows_checked, 9);
    }

    #[test]
    fn a_deleted_row_with_the_rest_renumbered_is_reported() {
        let mut store = store_with_rows(10);
        execute(
            &mut store,
            "DROP TRIGGER audit_no_delete; DROP TRIGGER audit_no_update;
             DELETE FROM audit WHERE id = 5;
             UPDATE audit SET id = id - 1 WHERE id > 5;",
        );
        let found = store.verify_audit_chain().unwrap().first_break.unwrap();
        assert_eq!(found.row_id, 5);
        assert_eq!(found.kind, AuditBreakKind::ChainBroken);
    }

    /// The documented limit: cutting rows off the end leaves a consistent chain. While the
    /// trigger is missing, the open check says so; once someone re-creates it exactly, nothing
    /// in the database shows the truncation (residual risk).
    #[test]
    fn truncating_the_newest_row_is_seen_only_through_the_dropped_trigger() {
        let mut store = store_with_rows(10);
        execute(
            &mut store,
            "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 10;",
        );
        let warning = store.audit_integrity_warning().unwrap();
        assert!(warning.contains("audit_no_delete is missing"), "{warning}");
        assert!(warning.contains("hubctl audit verify"));
        let report = store.verify_audit_chain().unwrap();
        assert_eq!(report.rows_checked, 9);
        assert_eq!(report.first_break, None, "the rows left still chain");
        assert!(!report.is_intact(), "the missing trigger is reported");

        execute(
            &mut store,
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
        );
        assert_eq!(store.audit_integrity_warning(), None);
        assert!(store.verify_audit_chain().unwrap().is_intact());
    }

    #[test]
    fn an_edit_of_the_newest_row_is_caught_by_the_open_check() {
        let mut store = store_with_rows(3);
        execute(
            &mut store,
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET actor = 'Someone Else' WHERE id = 3;",
        );
        execute(&mut store, AUDIT_NO_UPDATE_TRIGGER);
        let warning = store.audit_integrity_warning().unwrap();
        assert!(
            warning.contains("audit row 3 has been altered"),
            "{warning}"
        );
    }

    #[test]
    fn a_row_inserted_outside_the_app_is_reported() {
        // INSERT needs no trigger dropped, so it is the easiest forgery.
        let mut store = store_with_rows(3);
        execute(
            &mut store,
            "INSERT INTO audit (at, actor, action, entity, detail)
             VALUES ('2026-01-01 00:00:00+00:00', 'Nurse A', 'task.done', 'task', '{}');",
        );
        assert!(store
            .audit_integrity_warning()
            .unwrap()
            .contains("audit row 4"));
        let found = store.verify_audit_chain().unwrap().first_break.unwrap();
        assert_eq!(found.row_id, 4);
        assert_eq!(found.kind, AuditBreakKind::ChainBroken);
    }

    #[test]
    fn a_trigger_replaced_by_a_harmless_one_is_reported() {
        let mut store = store_with_rows(2);
        execute(
            &mut store,
            "DROP TRIGGER audit_no_delete;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit WHEN 0
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
        );
        let report = store.verify_audit_chain().unwrap();
        assert_eq!(
            report.trigger_problems,
            vec!["the protective trigger audit_no_delete has been changed".to_string()]
        );
    }

    #[test]
    fn a_removed_database_identity_trigger_is_reported() {
        let mut store = store_with_rows(1);
        execute(&mut store, "DROP TRIGGER database_identity_no_update;");
        assert!(store
            .audit_integrity_warning()
            .unwrap()
            .contains("database_identity_no_update is missing"));
    }

    #[test]
    fn the_acting_identity_is_recorded_on_every_row_and_chained() {
        let mut store = store_with_rows(1);
        store
            .set_acting_identity("WARDPC\\nurse.a", Some("Nurse A Smith"))
            .unwrap();
        write_rows(&mut store, 1);
        store.set_acting_identity("WARDPC\\hca.b", None).unwrap();
        write_rows(&mut store, 1);
        let entries = store.audit_entries(&AuditQuery::default()).unwrap();
        let identities: Vec<_> = entries
            .iter()
            .map(|e| (e.id.0, e.os_account.as_deref(), e.systmone_user.as_deref()))
            .collect();
        assert_eq!(
            identities,
            vec![
                (3, Some("WARDPC\\hca.b"), None),
                (2, Some("WARDPC\\nurse.a"), Some("Nurse A Smith")),
                (1, None, None),
            ]
        );
        let json = serde_json::to_value(&entries[1]).unwrap();
        assert_eq!(json["os_account"], "WARDPC\\nurse.a");
        assert_eq!(json["systmone_user"], "Nurse A Smith");
        assert!(store.verify_audit_chain().unwrap().is_intact());

        // The identity is covered by the hash: changing who acted breaks the chain.
        execute(
            &mut store,
            "DROP TRIGGER audit_no_update; UPDATE audit SET systmone_user = 'Nurse B' WHERE id = 2;",
        );
        assert_eq!(
            store
                .verify_audit_chain()
                .unwrap()
                .first_break
                .unwrap()
                .row_id,
            2
        );
    }

    #[test]
    fn an_empty_os_account_is_refused() {
        let mut store = Store::open_in_memory().unwrap();
        let err = store
            .set_acting_identity("  ", Some("Nurse A"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn an_upgraded_v7_database_verifies_and_keeps_chaining() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        {
            let mut conn = Connection::open(&path).unwrap();
            crate::migrations::migrate_to(&mut conn, 7).unwrap();
            for n in 1..=3 {
                conn.execute(
                    "INSERT INTO audit (at, actor, action, entity, entity_id, detail)
                     VALUES ('2026-01-01 09:00:00.000+00:00', 'Nurse A', 'task.add', 'task', ?1, '{\"title\":\"Bloods\"}')",
                    [n.to_string()],
                )
                .unwrap();
            }
        }
        let mut store = Store::open(&path, &crate::tests::test_key()).unwrap();
        let report = store.verify_audit_chain().unwrap();
        assert_eq!(report.rows_checked, 3);
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(store.audit_integrity_warning(), None);
        write_rows(&mut store, 2);
        let report = store.verify_audit_chain().unwrap();
        assert_eq!(report.rows_checked, 5);
        assert!(report.is_intact(), "{report:?}");
        // The UPDATE trigger dropped for the back-fill is back.
        assert!(store
            .connection()
            .execute("UPDATE audit SET actor = 'x' WHERE id = 1", [])
            .is_err());
    }

    #[test]
    fn the_hash_tells_apart_text_moved_between_fields() {
        let base = RowContent {
            prev_hash: Some(GENESIS_HASH),
            id: 1,
            at: Some("t"),
            actor: Some("ab"),
            action: Some("c"),
            entity: Some("task"),
            entity_id: None,
            detail: Some("{}"),
            os_account: None,
            systmone_user: None,
        };
        let moved = RowContent {
            actor: Some("a"),
            action: Some("bc"),
            ..base
        };
        let empty_not_null = RowContent {
            entity_id: Some(""),
            ..base
        };
        let hashes = [row_hash(&base), row_hash(&moved), row_hash(&empty_not_null)];
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
    }
}
