//! Read queries built from the filters actually given, and their plans.
//!
//! `WHERE (?1 IS NULL OR col = ?1)` looks tidy but SQLite must plan it before knowing the
//! value, so it can use no index: after ten years the board scanned a million tasks and one
//! record's audit five million rows. Each view's SQL is instead assembled from the conditions
//! present, every value a bound parameter (never text spliced into the SQL), so the planner
//! sees `entity = ? AND entity_id = ?` and takes the index. The same SQL is what
//! [`Store::explain`] shows, so `tests/query_plans.rs` checks what the views really run.

use super::{Store, StoreResult};
use rusqlite::types::Value;

/// A statement and its bound values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    conditions: Vec<String>,
    params: Vec<Value>,
}

impl Query {
    pub(crate) fn new() -> Query {
        Query::default()
    }

    /// Adds a fixed condition (SQL written in this crate, holding no input).
    pub(crate) fn fixed(mut self, condition: &str) -> Query {
        self.conditions.push(condition.to_owned());
        self
    }

    /// Adds a condition with one `?` placeholder, bound to `value`.
    pub(crate) fn bound(mut self, condition: &str, value: impl Into<Value>) -> Query {
        let n = self.params.len() + 1;
        self.conditions
            .push(condition.replacen('?', &format!("?{n}"), 1));
        self.params.push(value.into());
        self
    }

    /// Adds `condition` only when the filter was given.
    pub(crate) fn bound_if<T: Into<Value>>(self, condition: &str, value: Option<T>) -> Query {
        match value {
            Some(v) => self.bound(condition, v),
            None => self,
        }
    }

    /// `WHERE a AND b ...`, or nothing when no condition was given.
    pub(crate) fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// `AND a AND b ...` to follow a fixed `WHERE`, or nothing.
    pub(crate) fn and_clause(&self) -> String {
        self.conditions
            .iter()
            .map(|c| format!(" AND {c}"))
            .collect()
    }

    /// Appends a value for a placeholder written after the WHERE clause (e.g. `LIMIT`), and
    /// returns its `?n`.
    pub(crate) fn push_param(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }

    pub(crate) fn params(&self) -> rusqlite::ParamsFromIter<std::slice::Iter<'_, Value>> {
        rusqlite::params_from_iter(self.params.iter())
    }
}

/// The views whose queries must stay on an index however big the store grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewQuery {
    /// The board's open tasks of the patients on the ward.
    BoardOpenTasks,
    /// The board filtered to one patient (every status).
    PatientTasks,
    /// The patients on the ward, by bed (board, handover, notes and lookup lists).
    WardPatients,
    /// The SystmOne links of the tasks of patients on the ward (the board's sync column).
    BoardTaskLinks,
    /// Per linked patient on the ward, when its tasks were last confirmed (the board).
    BoardTaskSync,
    /// One record's audit, newest first, one page.
    RecordAudit,
    /// One kind of record's audit (e.g. every task), newest first, one page.
    EntityAudit,
    /// The whole audit, newest first, the page before a given row.
    AuditPage,
    /// One patient's notes, newest first.
    PatientNotes,
    /// The outbox entries not yet filed, in draining order.
    OutboxUnfinished,
    /// Filed outbox entries, newest first, one page.
    OutboxHistory,
    /// One patient's outbox entries (the notes view).
    PatientOutbox,
}

impl ViewQuery {
    pub const ALL: [ViewQuery; 12] = [
        ViewQuery::BoardOpenTasks,
        ViewQuery::PatientTasks,
        ViewQuery::WardPatients,
        ViewQuery::BoardTaskLinks,
        ViewQuery::BoardTaskSync,
        ViewQuery::RecordAudit,
        ViewQuery::EntityAudit,
        ViewQuery::AuditPage,
        ViewQuery::PatientNotes,
        ViewQuery::OutboxUnfinished,
        ViewQuery::OutboxHistory,
        ViewQuery::PatientOutbox,
    ];

    /// The statement the view runs, with example values for its filters.
    fn statement(self) -> (String, Query) {
        use domain::{PatientId, TaskFilter, TaskStatus};
        let patient = PatientId(1);
        match self {
            ViewQuery::BoardOpenTasks => super::tasks::select(
                &TaskFilter {
                    status: Some(TaskStatus::Open),
                    ..Default::default()
                },
                true,
            ),
            ViewQuery::PatientTasks => super::tasks::select(
                &TaskFilter {
                    patient_id: Some(patient),
                    ..Default::default()
                },
                true,
            ),
            ViewQuery::WardPatients => (super::patients::ward_patients_sql(), Query::new()),
            ViewQuery::BoardTaskLinks => (super::task_links::board_links_sql(), Query::new()),
            ViewQuery::BoardTaskSync => (super::task_links::patients_to_sync_sql(), Query::new()),
            ViewQuery::RecordAudit => super::audit::select(
                &super::AuditQuery {
                    entity: Some("task".into()),
                    entity_id: Some("1".into()),
                    limit: Some(200),
                },
                None,
            ),
            ViewQuery::EntityAudit => super::audit::select(
                &super::AuditQuery {
                    entity: Some("task".into()),
                    entity_id: None,
                    limit: Some(200),
                },
                Some(domain::AuditId(1_000_000)),
            ),
            ViewQuery::AuditPage => super::audit::select(
                &super::AuditQuery::default(),
                Some(domain::AuditId(1_000_000)),
            ),
            ViewQuery::PatientNotes => super::notes::select(&super::NoteFilter {
                patient_id: Some(patient),
                status: None,
            }),
            ViewQuery::OutboxUnfinished => super::outbox::select_unfinished(),
            ViewQuery::OutboxHistory => super::outbox::select_history(&super::OutboxHistoryQuery {
                patient_id: None,
                limit: Some(50),
                before: Some(domain::OutboxId(1_000_000)),
            }),
            ViewQuery::PatientOutbox => super::outbox::select_of_patient(patient),
        }
    }
}

impl Store {
    /// SQLite's plan (`EXPLAIN QUERY PLAN`, one line per step) for a view's query, exactly as
    /// the view runs it: `SEARCH t USING INDEX ...` is what a view needs; a bare
    /// `SCAN <table>` reads the whole table.
    pub fn explain(&self, view: ViewQuery) -> StoreResult<Vec<String>> {
        let (sql, query) = view.statement();
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(query.params(), |r| r.get::<_, String>(3))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_numbered_in_order_and_absent_filters_leave_nothing() {
        let q = Query::new()
            .bound_if("a = ?", Some(1_i64))
            .bound_if::<i64>("b = ?", None)
            .fixed("c = 'x'")
            .bound("lower(d) = lower(?)", "Dr B".to_owned());
        assert_eq!(
            q.where_clause(),
            "WHERE a = ?1 AND c = 'x' AND lower(d) = lower(?2)"
        );
        assert_eq!(Query::new().where_clause(), "");
    }

    #[test]
    fn every_view_has_a_plan() {
        let store = Store::open_in_memory().unwrap();
        for view in ViewQuery::ALL {
            let plan = store.explain(view).unwrap();
            assert!(!plan.is_empty(), "{view:?}");
        }
    }
}
