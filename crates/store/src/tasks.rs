//! Ward tasks. Each change bumps `version` and writes an audit row with what changed
//! (field: {from, to}) in the same transaction.

use super::query::Query;
use super::{audit, Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
use domain::{NewTask, StaffName, Task, TaskChanges, TaskFilter, TaskId, TaskStatus, TaskTitle};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::{json, Map, Value};

const COLUMNS: &str =
    "id, patient_id, title, assignee, due_at, status, created_at, created_by, updated_at, updated_by, version";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    task_from_row_at(r, 0)
}

/// Reads a task whose `COLUMNS` start at column `o` (task sync joins tasks with their links).
pub(super) fn task_from_row_at(r: &Row<'_>, o: usize) -> rusqlite::Result<Task> {
    use super::decode;
    let title: String = r.get(o + 2)?;
    let assignee: Option<String> = r.get(o + 3)?;
    let status: String = r.get(o + 5)?;
    Ok(Task {
        id: r.get(o)?,
        patient_id: r.get(o + 1)?,
        title: TaskTitle::parse(&title).map_err(|e| decode(o + 2, e.to_string()))?,
        assignee: assignee
            .map(|a| StaffName::parse(&a))
            .transpose()
            .map_err(|e| decode(o + 3, e.to_string()))?,
        due: r.get(o + 4)?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| decode(o + 5, format!("unknown status {status}")))?,
        created_at: r.get(o + 6)?,
        created_by: r.get(o + 7)?,
        updated_at: r.get(o + 8)?,
        updated_by: r.get(o + 9)?,
        version: r.get(o + 10)?,
    })
}

fn load(tx: &Transaction<'_>, id: TaskId) -> StoreResult<Task> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
    .map_err(StoreError::Sqlite)?
    .ok_or(StoreError::NotFound {
        what: "task",
        id: id.to_string(),
    })
}

fn ensure_patient_exists(tx: &Transaction<'_>, new: &NewTask) -> StoreResult<()> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT id FROM patients WHERE id = ?1 AND discharged_at IS NULL",
            [new.patient_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::Sqlite)?;
    found.map(|_| ()).ok_or(StoreError::NotFound {
        what: "patient on the ward",
        id: new.patient_id.to_string(),
    })
}

fn fmt_due(due: &Option<DateTime<Local>>) -> Value {
    due.map_or(Value::Null, |d| Value::String(d.to_rfc3339()))
}

fn fmt_staff(s: &Option<StaffName>) -> Value {
    s.as_ref()
        .map_or(Value::Null, |s| Value::String(s.as_str().to_owned()))
}

impl Store {
    pub fn add_task(&mut self, actor: &StaffName, new: &NewTask) -> StoreResult<Task> {
        self.write(|tx| {
            ensure_patient_exists(tx, new)?;
            let now = super::now();
            tx.execute(
                "INSERT INTO tasks (patient_id, title, assignee, due_at, status, created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?5, ?6)",
                params![new.patient_id, new.title.as_str(), new.assignee.as_ref().map(StaffName::as_str), new.due, now, actor.as_str()],
            )
            .map_err(StoreError::Sqlite)?;
            let id = TaskId(tx.last_insert_rowid());
            audit::record(
                tx,
                actor.as_str(),
                "task.added",
                "task",
                Some(&id.to_string()),
                json!({ "patient_id": new.patient_id, "title": new.title.as_str(), "assignee": fmt_staff(&new.assignee), "due": fmt_due(&new.due) }),
            )?;
            load(tx, id)
        })
    }

    /// Applies `changes`. With `expected_version`, refuses if someone else changed the task
    /// since it was read (the board shows the newer copy instead of overwriting it).
    pub fn edit_task(
        &mut self,
        actor: &StaffName,
        id: TaskId,
        expected_version: Option<i64>,
        changes: &TaskChanges,
    ) -> StoreResult<Task> {
        if changes.is_empty() {
            return Err(StoreError::Invalid(domain::ValidationError::Other(
                "nothing to change".into(),
            )));
        }
        self.write(|tx| {
            let before = load(tx, id)?;
            check_version(&before, expected_version)?;
            if before.status != TaskStatus::Open {
                return Err(StoreError::Conflict(format!(
                    "task {id} is {}; reopen it before editing",
                    before.status.as_str()
                )));
            }
            let mut diff = Map::new();
            let title = changes.title.clone().unwrap_or_else(|| before.title.clone());
            if title != before.title {
                diff.insert("title".into(), json!({ "from": before.title.as_str(), "to": title.as_str() }));
            }
            let assignee = changes.assignee.clone().unwrap_or_else(|| before.assignee.clone());
            if assignee != before.assignee {
                diff.insert("assignee".into(), json!({ "from": fmt_staff(&before.assignee), "to": fmt_staff(&assignee) }));
            }
            let due = changes.due.unwrap_or(before.due);
            if due != before.due {
                diff.insert("due".into(), json!({ "from": fmt_due(&before.due), "to": fmt_due(&due) }));
            }
            if diff.is_empty() {
                return Ok(before);
            }
            tx.execute(
                "UPDATE tasks SET title = ?2, assignee = ?3, due_at = ?4, updated_at = ?5, updated_by = ?6, version = version + 1 WHERE id = ?1",
                params![id, title.as_str(), assignee.as_ref().map(StaffName::as_str), due, super::now(), actor.as_str()],
            )
            .map_err(StoreError::Sqlite)?;
            let action = if diff.len() == 1 && diff.contains_key("assignee") { "task.reassigned" } else { "task.edited" };
            audit::record(tx, actor.as_str(), action, "task", Some(&id.to_string()), Value::Object(diff))?;
            load(tx, id)
        })
    }

    /// Completes, cancels or reopens a task.
    pub fn set_task_status(
        &mut self,
        actor: &StaffName,
        id: TaskId,
        expected_version: Option<i64>,
        status: TaskStatus,
    ) -> StoreResult<Task> {
        self.write(|tx| {
            let before = load(tx, id)?;
            check_version(&before, expected_version)?;
            if before.status == status {
                return Err(StoreError::Conflict(format!("task {id} is already {}", status.as_str())));
            }
            tx.execute(
                "UPDATE tasks SET status = ?2, updated_at = ?3, updated_by = ?4, version = version + 1 WHERE id = ?1",
                params![id, status.as_str(), super::now(), actor.as_str()],
            )
            .map_err(StoreError::Sqlite)?;
            let action = match status {
                TaskStatus::Done => "task.completed",
                TaskStatus::Cancelled => "task.cancelled",
                TaskStatus::Open => "task.reopened",
            };
            audit::record(
                tx,
                actor.as_str(),
                action,
                "task",
                Some(&id.to_string()),
                json!({ "status": { "from": before.status.as_str(), "to": status.as_str() } }),
            )?;
            load(tx, id)
        })
    }

    pub fn task(&self, id: TaskId) -> StoreResult<Task> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound {
                what: "task",
                id: id.to_string(),
            })
    }

    /// Tasks matching `filter`, of any patient: open ones first, then by due time (undated
    /// last), then id.
    pub fn tasks(&self, filter: &TaskFilter) -> StoreResult<Vec<Task>> {
        self.select_tasks(filter, false)
    }

    /// The board's tasks: those matching `filter` of patients still on the ward (not
    /// discharged), in the order of [`Store::tasks`].
    pub fn board_tasks(&self, filter: &TaskFilter) -> StoreResult<Vec<Task>> {
        self.select_tasks(filter, true)
    }

    fn select_tasks(&self, filter: &TaskFilter, on_ward_only: bool) -> StoreResult<Vec<Task>> {
        let (sql, query) = select(filter, on_ward_only);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(query.params(), from_row)
            .map_err(|e| self.err(e))?;
        let mut tasks = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        tasks.sort_by(|a, b| {
            (a.status != TaskStatus::Open)
                .cmp(&(b.status != TaskStatus::Open))
                .then_with(|| match (a.due, b.due) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(tasks)
    }
}

/// The tasks query for the filters given (see [`crate::query`]).
pub(crate) fn select(filter: &TaskFilter, on_ward_only: bool) -> (String, Query) {
    let t_columns = COLUMNS
        .split(',')
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut query = Query::new()
        .bound_if("t.patient_id = ?", filter.patient_id.map(|p| p.0))
        .bound_if("lower(t.assignee) = lower(?)", filter.assignee.clone());
    query = match filter.status {
        // Written out, not bound: only a literal lets SQLite use the partial index of open
        // tasks (a few hundred of a million rows).
        Some(TaskStatus::Open) => query.fixed("t.status = 'open'"),
        Some(other) => query.bound("t.status = ?", other.as_str().to_owned()),
        None => query,
    };
    let from = if on_ward_only {
        query = query.fixed("p.discharged_at IS NULL");
        "tasks t JOIN patients p ON p.id = t.patient_id"
    } else {
        "tasks t"
    };
    (
        format!("SELECT {t_columns} FROM {from} {}", query.where_clause()),
        query,
    )
}

fn check_version(task: &Task, expected: Option<i64>) -> StoreResult<()> {
    match expected {
        Some(v) if v != task.version => Err(StoreError::Conflict(format!(
            "task {} was changed by {} since you opened it; your change was not saved, please review the latest version",
            task.id, task.updated_by
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditQuery, NewPatient};
    use domain::{BedLabel, PatientId, PatientName};

    fn setup() -> (Store, PatientId, StaffName) {
        let mut store = Store::open_in_memory().unwrap();
        let p = store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 3").unwrap(),
                    name: PatientName::parse("Test Patient").unwrap(),
                    nhs_number: None,
                },
            )
            .unwrap();
        (store, p.id, StaffName::parse("Nurse A").unwrap())
    }

    fn new_task(patient_id: PatientId, title: &str) -> NewTask {
        NewTask {
            patient_id,
            title: TaskTitle::parse(title).unwrap(),
            assignee: None,
            due: None,
        }
    }

    #[test]
    fn add_edit_complete_with_audit_trail() {
        let (mut store, pid, actor) = setup();
        let t = store.add_task(&actor, &new_task(pid, "Bloods")).unwrap();
        assert_eq!(t.status, TaskStatus::Open);
        let changes = TaskChanges {
            assignee: Some(Some(StaffName::parse("Dr B").unwrap())),
            ..Default::default()
        };
        let t = store
            .edit_task(&actor, t.id, Some(t.version), &changes)
            .unwrap();
        assert_eq!(t.version, 2);
        let t = store
            .set_task_status(&actor, t.id, Some(2), TaskStatus::Done)
            .unwrap();
        assert_eq!(t.status, TaskStatus::Done);
        let audit = store
            .audit_entries(&AuditQuery {
                entity: Some("task".into()),
                entity_id: Some(t.id.to_string()),
                limit: None,
            })
            .unwrap();
        let actions: Vec<_> = audit.iter().rev().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["task.added", "task.reassigned", "task.completed"]);
        assert_eq!(audit[1].detail["assignee"]["to"], "Dr B");
    }

    #[test]
    fn a_stale_edit_is_refused_and_nothing_written() {
        let (mut store, pid, actor) = setup();
        let t = store.add_task(&actor, &new_task(pid, "Bloods")).unwrap();
        let changes = TaskChanges {
            title: Some(TaskTitle::parse("Bloods and ECG").unwrap()),
            ..Default::default()
        };
        store.edit_task(&actor, t.id, Some(1), &changes).unwrap();
        let stale = TaskChanges {
            title: Some(TaskTitle::parse("Overwrite").unwrap()),
            ..Default::default()
        };
        let err = store.edit_task(&actor, t.id, Some(1), &stale).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        assert_eq!(store.task(t.id).unwrap().title.as_str(), "Bloods and ECG");
    }

    #[test]
    fn unknown_ids_are_clear_errors() {
        let (mut store, _pid, actor) = setup();
        let err = store
            .add_task(&actor, &new_task(PatientId(999), "x"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no patient on the ward with id 999"),
            "{err}"
        );
        let err = store
            .set_task_status(&actor, TaskId(42), None, TaskStatus::Done)
            .unwrap_err();
        assert_eq!(err.to_string(), "no task with id 42");
        assert_eq!(store.tasks(&TaskFilter::default()).unwrap().len(), 0);
    }

    #[test]
    fn a_full_disk_writes_nothing() {
        let (mut store, pid, actor) = setup();
        // Simulate a full disk: SQLite reports SQLITE_FULL when the page limit is reached.
        let pages: i64 = store
            .connection()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        store
            .connection()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let before = store.audit_entries(&AuditQuery::default()).unwrap().len();
        let mut last = None;
        for i in 0..200 {
            match store.add_task(
                &actor,
                &new_task(pid, &format!("Task {i} {}", "x".repeat(150))),
            ) {
                Ok(_) => continue,
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let err = last.expect("the page limit must eventually be hit");
        assert!(matches!(err, StoreError::DiskFull), "{err:?}");
        // Every task that was saved has exactly its audit row: no half-written change.
        let tasks = store.tasks(&TaskFilter::default()).unwrap().len();
        let audit = store.audit_entries(&AuditQuery::default()).unwrap().len();
        assert_eq!(audit - before, tasks);
    }

    #[test]
    fn the_board_leaves_out_discharged_patients_and_filters_combine() {
        let (mut store, pid, actor) = setup();
        let other = store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 4").unwrap(),
                    name: PatientName::parse("Other Patient").unwrap(),
                    nhs_number: None,
                },
            )
            .unwrap();
        let mine = store.add_task(&actor, &new_task(pid, "Mine")).unwrap();
        store
            .add_task(&actor, &new_task(other.id, "Theirs"))
            .unwrap();
        let done = store.add_task(&actor, &new_task(pid, "Done")).unwrap();
        store
            .set_task_status(&actor, done.id, None, TaskStatus::Done)
            .unwrap();
        store
            .connection()
            .execute(
                "UPDATE patients SET discharged_at = '2026-01-02T00:00:00+00:00' WHERE id = ?1",
                [other.id],
            )
            .unwrap();
        let open = TaskFilter {
            status: Some(TaskStatus::Open),
            ..Default::default()
        };
        let board: Vec<_> = store
            .board_tasks(&open)
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(board, [mine.id]);
        assert_eq!(
            store.tasks(&open).unwrap().len(),
            2,
            "tasks() keeps every patient"
        );
        let mine_done = TaskFilter {
            patient_id: Some(pid),
            status: Some(TaskStatus::Done),
            ..Default::default()
        };
        let found: Vec<_> = store
            .board_tasks(&mine_done)
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(found, [done.id]);
        let all_of_mine = TaskFilter {
            patient_id: Some(pid),
            ..Default::default()
        };
        assert_eq!(store.board_tasks(&all_of_mine).unwrap().len(), 2);
    }

    #[test]
    fn filters_by_assignee_and_status() {
        let (mut store, pid, actor) = setup();
        let mut a = new_task(pid, "A");
        a.assignee = Some(StaffName::parse("Dr B").unwrap());
        store.add_task(&actor, &a).unwrap();
        let b = store.add_task(&actor, &new_task(pid, "B")).unwrap();
        store
            .set_task_status(&actor, b.id, None, TaskStatus::Cancelled)
            .unwrap();
        let f = TaskFilter {
            assignee: Some("dr b".into()),
            ..Default::default()
        };
        assert_eq!(store.tasks(&f).unwrap().len(), 1);
        let f = TaskFilter {
            status: Some(TaskStatus::Cancelled),
            ..Default::default()
        };
        assert_eq!(store.tasks(&f).unwrap()[0].title.as_str(), "B");
    }
}
