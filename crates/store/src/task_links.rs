//! The SystmOne side of ward tasks: which local task is linked to which SystmOne task
//! (TaskUID), the last values known to match SystmOne (the "base" of the three-way merge
//! in `tasksync::merge`), the sync notice shown to staff, and per patient when its tasks
//! were last confirmed against SystmOne.
//!
//! Pending local changes are not stored: they are the difference between the task row and
//! its base, so an edit made through `Store::edit_task` (or hubctl, or another window) is
//! picked up without any hook in `tasks.rs`, and a crash can never lose the "dirty" mark.
//!
//! The sync engine composes these helpers inside one `Store::write` transaction per step;
//! every sync write carries an audit row (`task.sync.*`) under the actor [`SYNC_ACTOR`].

use super::{audit, Store, StoreError, StoreResult};
use chrono::{DateTime, Local};
pub use domain::task_link::{
    AssigneeKind, LinkBase, LinkState, LinkedTask, LocalTaskUpdate, PatientTaskSync,
    RemoteAssignee, SyncFields, TaskLink, TaskUid, SYNC_ACTOR,
};
use domain::{NhsNumber, PatientId, Sensitive, StaffName, Task, TaskId, TaskStatus, TaskTitle};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde_json::{json, Value};

const LINK_COLUMNS: &str = "task_id, task_uid, state, reference, task_type, push_requested_at, push_requested_by,
    create_attempted_at, base_content, base_title, base_due, base_assignee_kind, base_assignee_name, base_status,
    base_entered, push_failed_version, retry_after, notice, notice_at, completion_sent_at";

use super::decode;

/// The base's due: a local date-time (SystmOne's Due is an `xs:dateTime`). Rows written before
/// the time of day was kept hold a date only; that reads as midnight, which the sync treats as
/// "this date, time not known" (see `RemoteTask::fields_against` and `merge::local_fields`).
fn due_from_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<chrono::NaiveDateTime>> {
    let Some(raw) = r.get::<_, Option<String>>(idx)? else {
        return Ok(None);
    };
    let raw = raw.trim();
    chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .map(Some)
        .map_err(|e| decode(idx, format!("base due '{raw}': {e}")))
}

fn link_from_row(r: &Row<'_>, o: usize) -> rusqlite::Result<TaskLink> {
    let uid: Option<String> = r.get(o + 1)?;
    let state: String = r.get(o + 2)?;
    let base_content: Option<String> = r.get(o + 8)?;
    let base_title: Option<String> = r.get(o + 9)?;
    let kind: Option<String> = r.get(o + 11)?;
    let name: Option<String> = r.get(o + 12)?;
    let assignee = match (kind, name) {
        (Some(k), Some(n)) => Some(RemoteAssignee {
            kind: AssigneeKind::parse(&k)
                .ok_or_else(|| decode(o + 11, format!("assignee kind {k}")))?,
            name: n,
        }),
        _ => None,
    };
    let base = match (base_content, base_title) {
        (Some(content), Some(title)) => Some(LinkBase {
            fields: SyncFields {
                content: Sensitive::new(content),
                due: due_from_column(r, o + 10)?,
                assignee,
            },
            title: Sensitive::new(title),
            status: r.get(o + 13)?,
            entered: r.get(o + 14)?,
        }),
        _ => None,
    };
    let notice: Option<String> = r.get(o + 17)?;
    Ok(TaskLink {
        task_id: r.get(o)?,
        task_uid: uid
            .map(|u| TaskUid::parse(&u))
            .transpose()
            .map_err(|e| decode(o + 1, e))?,
        state: LinkState::parse(&state)
            .ok_or_else(|| decode(o + 2, format!("link state {state}")))?,
        reference: r.get(o + 3)?,
        task_type: r.get(o + 4)?,
        push_requested_at: r.get(o + 5)?,
        push_requested_by: r.get(o + 6)?,
        create_attempted_at: r.get(o + 7)?,
        base,
        push_failed_version: r.get(o + 15)?,
        retry_after: r.get(o + 16)?,
        notice: notice.map(Sensitive::new),
        notice_at: r.get(o + 18)?,
        completion_sent_at: r.get(o + 19)?,
    })
}

const TASK_COLUMNS: &str =
    "t.id, t.patient_id, t.title, t.assignee, t.due_at, t.status, t.created_at, t.created_by,
    t.updated_at, t.updated_by, t.version";

const TASK_COLUMN_COUNT: usize = 11;

fn linked_task_from_row(r: &Row<'_>) -> rusqlite::Result<LinkedTask> {
    let task = super::tasks::task_from_row_at(r, 0)?;
    let has_link: Option<i64> = r.get(TASK_COLUMN_COUNT)?;
    let link = if has_link.is_some() {
        Some(link_from_row(r, TASK_COLUMN_COUNT)?)
    } else {
        None
    };
    Ok(LinkedTask { task, link })
}

fn select_linked_tasks(where_clause: &str) -> String {
    let link_cols = LINK_COLUMNS
        .split(',')
        .map(|c| format!("l.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {TASK_COLUMNS}, {link_cols} FROM tasks t LEFT JOIN task_links l ON l.task_id = t.id
         JOIN patients p ON p.id = t.patient_id WHERE {where_clause} ORDER BY t.id"
    )
}

/// Every task of a patient, with its link.
pub(crate) fn tasks_of_patient(
    conn: &Connection,
    patient_id: PatientId,
) -> StoreResult<Vec<LinkedTask>> {
    let mut stmt = conn
        .prepare(&select_linked_tasks("t.patient_id = ?1"))
        .map_err(StoreError::Sqlite)?;
    let rows = stmt
        .query_map([patient_id], linked_task_from_row)
        .map_err(StoreError::Sqlite)?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::Sqlite)
}

/// Tasks the sync has work for: create requested, create in flight, or linked — of
/// patients still on the ward with an NHS number.
pub(crate) fn tasks_to_sync(conn: &Connection) -> StoreResult<Vec<(NhsNumber, LinkedTask)>> {
    let sql = select_linked_tasks(
        "l.state IN ('create_pending', 'create_in_flight', 'linked') AND p.discharged_at IS NULL AND p.nhs_number IS NOT NULL",
    )
    .replacen("SELECT ", "SELECT p.nhs_number, ", 1);
    let mut stmt = conn.prepare(&sql).map_err(StoreError::Sqlite)?;
    let rows = stmt
        .query_map([], |r| {
            let nhs: String = r.get(0)?;
            let nhs = NhsNumber::parse(&nhs).map_err(|e| decode(0, e))?;
            // Offset the reader by the leading NHS column.
            let task = super::tasks::task_from_row_at(r, 1)?;
            let has_link: Option<i64> = r.get(1 + TASK_COLUMN_COUNT)?;
            let link = if has_link.is_some() {
                Some(link_from_row(r, 1 + TASK_COLUMN_COUNT)?)
            } else {
                None
            };
            Ok((nhs, LinkedTask { task, link }))
        })
        .map_err(StoreError::Sqlite)?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::Sqlite)
}

pub(crate) fn linked_task(conn: &Connection, task_id: TaskId) -> StoreResult<LinkedTask> {
    conn.query_row(
        &select_linked_tasks("t.id = ?1"),
        [task_id],
        linked_task_from_row,
    )
    .optional()
    .map_err(StoreError::Sqlite)?
    .ok_or(StoreError::NotFound {
        what: "task",
        id: task_id.to_string(),
    })
}

/// The NHS number of a patient still on the ward, if linked to SystmOne.
pub(crate) fn patient_nhs(
    conn: &Connection,
    patient_id: PatientId,
) -> StoreResult<Option<NhsNumber>> {
    let nhs: Option<Option<String>> = conn
        .query_row(
            "SELECT nhs_number FROM patients WHERE id = ?1 AND discharged_at IS NULL",
            [patient_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::Sqlite)?;
    nhs.flatten()
        .map(|n| NhsNumber::parse(&n).map_err(|e| StoreError::Decode(e.to_string())))
        .transpose()
}

/// Writes the whole link row (insert or replace).
pub(crate) fn put_link(
    tx: &Transaction<'_>,
    link: &TaskLink,
    now: DateTime<Local>,
) -> StoreResult<()> {
    let base = link.base.as_ref();
    let assignee = base.and_then(|b| b.fields.assignee.as_ref());
    tx.execute(
        &format!(
            "INSERT INTO task_links ({LINK_COLUMNS}, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
             ON CONFLICT(task_id) DO UPDATE SET task_uid = excluded.task_uid, state = excluded.state,
               reference = excluded.reference, task_type = excluded.task_type,
               push_requested_at = excluded.push_requested_at, push_requested_by = excluded.push_requested_by,
               create_attempted_at = excluded.create_attempted_at, base_content = excluded.base_content,
               base_title = excluded.base_title, base_due = excluded.base_due,
               base_assignee_kind = excluded.base_assignee_kind, base_assignee_name = excluded.base_assignee_name,
               base_status = excluded.base_status, base_entered = excluded.base_entered,
               push_failed_version = excluded.push_failed_version, retry_after = excluded.retry_after,
               notice = excluded.notice, notice_at = excluded.notice_at,
               completion_sent_at = excluded.completion_sent_at, updated_at = excluded.updated_at"
        ),
        params![
            link.task_id,
            link.task_uid.as_ref().map(TaskUid::as_str),
            link.state.as_str(),
            link.reference,
            link.task_type,
            link.push_requested_at,
            link.push_requested_by,
            link.create_attempted_at,
            base.map(|b| b.fields.content.expose().as_str()),
            base.map(|b| b.title.expose().as_str()),
            base.and_then(|b| b.fields.due),
            assignee.map(|a| a.kind.as_str()),
            assignee.map(|a| a.name.as_str()),
            base.and_then(|b| b.status.as_deref()),
            base.and_then(|b| b.entered),
            link.push_failed_version,
            link.retry_after,
            link.notice.as_ref().map(|n| n.expose().as_str()),
            link.notice_at,
            link.completion_sent_at,
            now,
        ],
    )
    .map_err(StoreError::Sqlite)?;
    Ok(())
}

/// The most notice text kept on a task; the audit log keeps every notice whole.
const NOTICE_MAX_CHARS: usize = 4000;

/// Adds a notice to the link (after any not yet dismissed) and audits it.
pub(crate) fn add_notice(link: &mut TaskLink, text: &str, now: DateTime<Local>) {
    let stamped = format!("{}: {text}", now.format("%Y-%m-%d %H:%M"));
    let combined = match link.notice.take() {
        Some(old) if !old.expose().is_empty() => format!("{}\n{stamped}", old.expose()),
        _ => stamped,
    };
    let chars = combined.chars().count();
    let kept: String = if chars > NOTICE_MAX_CHARS {
        combined.chars().skip(chars - NOTICE_MAX_CHARS).collect()
    } else {
        combined
    };
    link.notice = Some(Sensitive::new(kept));
    link.notice_at = Some(now);
}

/// One `task.sync.*` audit row for a task, under [`SYNC_ACTOR`].
pub(crate) fn audit_sync(
    tx: &Transaction<'_>,
    action: &str,
    task_id: TaskId,
    detail: Value,
) -> StoreResult<()> {
    audit::record(
        tx,
        SYNC_ACTOR,
        action,
        "task",
        Some(&task_id.to_string()),
        detail,
    )?;
    Ok(())
}

/// Applies SystmOne's values to a local task, refusing if the task changed since
/// `expected_version` was read (the caller re-reads inside the same transaction, so this
/// only trips on a logic error, never on a race). Audited as `task.sync.pulled`.
pub(crate) fn update_local_task(
    tx: &Transaction<'_>,
    before: &Task,
    update: &LocalTaskUpdate,
    now: DateTime<Local>,
) -> StoreResult<Task> {
    let title = update.title.clone().unwrap_or_else(|| before.title.clone());
    let assignee = update
        .assignee
        .clone()
        .unwrap_or_else(|| before.assignee.clone());
    let due = update.due.unwrap_or(before.due);
    let status = update.status.unwrap_or(before.status);
    let mut diff = serde_json::Map::new();
    if title != before.title {
        diff.insert(
            "title".into(),
            json!({ "from": before.title.as_str(), "to": title.as_str() }),
        );
    }
    if assignee != before.assignee {
        diff.insert(
            "assignee".into(),
            json!({ "from": before.assignee.as_ref().map(StaffName::as_str), "to": assignee.as_ref().map(StaffName::as_str) }),
        );
    }
    if due != before.due {
        diff.insert("due".into(), json!({ "from": before.due.map(|d| d.to_rfc3339()), "to": due.map(|d| d.to_rfc3339()) }));
    }
    if status != before.status {
        diff.insert(
            "status".into(),
            json!({ "from": before.status.as_str(), "to": status.as_str() }),
        );
    }
    if diff.is_empty() {
        return Ok(before.clone());
    }
    let changed = tx
        .execute(
            "UPDATE tasks SET title = ?2, assignee = ?3, due_at = ?4, status = ?5, updated_at = ?6, updated_by = ?7,
                    version = version + 1
             WHERE id = ?1 AND version = ?8",
            params![before.id, title.as_str(), assignee.as_ref().map(StaffName::as_str), due, status.as_str(), now, SYNC_ACTOR, before.version],
        )
        .map_err(StoreError::Sqlite)?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!("task {} changed while SystmOne's changes were being applied; they will be applied on the next sync", before.id)));
    }
    audit_sync(tx, "task.sync.pulled", before.id, Value::Object(diff))?;
    Ok(linked_task(tx, before.id)?.task)
}

/// Creates a local task for a SystmOne task first seen on a pull. Audited as `task.sync.imported`.
pub(crate) fn insert_local_task(
    tx: &Transaction<'_>,
    patient_id: PatientId,
    title: &TaskTitle,
    assignee: Option<&StaffName>,
    due: Option<DateTime<Local>>,
    uid: &TaskUid,
    now: DateTime<Local>,
) -> StoreResult<TaskId> {
    tx.execute(
        "INSERT INTO tasks (patient_id, title, assignee, due_at, status, created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?5, ?6)",
        params![patient_id, title.as_str(), assignee.map(StaffName::as_str), due, now, SYNC_ACTOR],
    )
    .map_err(StoreError::Sqlite)?;
    let id = TaskId(tx.last_insert_rowid());
    audit_sync(
        tx,
        "task.sync.imported",
        id,
        json!({ "patient_id": patient_id, "task_uid": uid.as_str(), "title": title.as_str(),
                "assignee": assignee.map(StaffName::as_str), "due": due.map(|d| d.to_rfc3339()) }),
    )?;
    Ok(id)
}

fn patient_sync_from_row(r: &Row<'_>) -> rusqlite::Result<PatientTaskSync> {
    let nhs: String = r.get(1)?;
    let wanted: Option<i64> = r.get(5)?;
    Ok(PatientTaskSync {
        patient_id: r.get(0)?,
        nhs_number: NhsNumber::parse(&nhs).map_err(|e| decode(1, e))?,
        tasks_confirmed_at: r.get(2)?,
        today_pulled_at: r.get(3)?,
        full_pull_attempted_at: r.get(4)?,
        full_pull_wanted: wanted.unwrap_or(0) != 0,
    })
}

const PATIENT_SYNC_SELECT: &str =
    "SELECT p.id, p.nhs_number, s.tasks_confirmed_at, s.today_pulled_at,
        s.full_pull_attempted_at, s.full_pull_wanted
     FROM patients p LEFT JOIN task_sync_patients s ON s.patient_id = p.id
     WHERE p.discharged_at IS NULL AND p.nhs_number IS NOT NULL";

/// Every patient on the ward linked to SystmOne, with their task-sync times.
/// Read through the `patients_on_ward` partial index (v9): left alone, SQLite walks every
/// patient ever admitted in id order to skip the sort of thirty rows.
pub(crate) fn patients_to_sync_sql() -> String {
    PATIENT_SYNC_SELECT.replacen(
        "FROM patients p",
        "FROM patients p INDEXED BY patients_on_ward",
        1,
    ) + " ORDER BY p.id"
}

/// The links of the tasks of patients on the ward, driven from the `patients_on_ward` partial
/// index (v9) through each patient's tasks: never a walk over ten years of links. (`CROSS
/// JOIN` fixes SQLite's join order: left alone it starts from `task_links`.)
pub(crate) fn board_links_sql() -> String {
    let link_cols = LINK_COLUMNS
        .split(',')
        .map(|c| format!("l.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {link_cols} FROM patients p CROSS JOIN tasks t ON t.patient_id = p.id
         CROSS JOIN task_links l ON l.task_id = t.id WHERE p.discharged_at IS NULL ORDER BY l.task_id"
    )
}

pub(crate) fn patients_to_sync(conn: &Connection) -> StoreResult<Vec<PatientTaskSync>> {
    let mut stmt = conn
        .prepare(&patients_to_sync_sql())
        .map_err(StoreError::Sqlite)?;
    let rows = stmt
        .query_map([], patient_sync_from_row)
        .map_err(StoreError::Sqlite)?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::Sqlite)
}

pub(crate) fn put_patient_sync(tx: &Transaction<'_>, s: &PatientTaskSync) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO task_sync_patients (patient_id, tasks_confirmed_at, today_pulled_at, full_pull_attempted_at, full_pull_wanted)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(patient_id) DO UPDATE SET tasks_confirmed_at = excluded.tasks_confirmed_at,
           today_pulled_at = excluded.today_pulled_at, full_pull_attempted_at = excluded.full_pull_attempted_at,
           full_pull_wanted = excluded.full_pull_wanted",
        params![s.patient_id, s.tasks_confirmed_at, s.today_pulled_at, s.full_pull_attempted_at, i64::from(s.full_pull_wanted)],
    )
    .map_err(StoreError::Sqlite)?;
    Ok(())
}

pub(crate) fn patient_sync(
    conn: &Connection,
    patient_id: PatientId,
) -> StoreResult<Option<PatientTaskSync>> {
    conn.query_row(
        &format!("{PATIENT_SYNC_SELECT} AND p.id = ?1"),
        [patient_id],
        patient_sync_from_row,
    )
    .optional()
    .map_err(StoreError::Sqlite)
}

/// The newest full pull sent for any patient: GetPatientRecord's 30 s budget is per PC.
pub(crate) fn last_full_pull_attempt(conn: &Connection) -> StoreResult<Option<DateTime<Local>>> {
    let mut stmt = conn
        .prepare("SELECT full_pull_attempted_at FROM task_sync_patients WHERE full_pull_attempted_at IS NOT NULL")
        .map_err(StoreError::Sqlite)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, DateTime<Local>>(0))
        .map_err(StoreError::Sqlite)?;
    let all = rows
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::Sqlite)?;
    Ok(all.into_iter().max())
}

/// A short random reference unique to this create request, embedded in the content.
pub(crate) fn new_reference(task_id: TaskId) -> String {
    format!(
        "IH-T{}-{:06x}",
        task_id.0,
        rand::random::<u32>() & 0x00ff_ffff
    )
}

impl Store {
    /// The clinician chose to create this task in SystmOne too. Needs a patient linked to
    /// SystmOne (an NHS number) and an open task; asking twice is harmless.
    pub fn request_task_push(
        &mut self,
        actor: &StaffName,
        task_id: TaskId,
        task_type: &str,
    ) -> StoreResult<TaskLink> {
        let task_type = task_type.trim();
        if task_type.is_empty()
            || task_type.chars().count() > 100
            || task_type.chars().any(char::is_control)
        {
            return Err(StoreError::Invalid(domain::ValidationError::Other(
                "choose a SystmOne task type (for example \"Clinical Review Required\")".into(),
            )));
        }
        self.write(|tx| {
            let LinkedTask { task, link } = linked_task(tx, task_id)?;
            if patient_nhs(tx, task.patient_id)?.is_none() {
                return Err(StoreError::Conflict(format!(
                    "task {task_id} belongs to a patient not linked to SystmOne; link the patient (NHS number) first"
                )));
            }
            if task.status != TaskStatus::Open {
                return Err(StoreError::Conflict(format!("task {task_id} is {}; only open tasks can be sent to SystmOne", task.status.as_str())));
            }
            let mut link = link.unwrap_or_else(|| TaskLink::new(task_id, LinkState::Local));
            match link.state {
                LinkState::CreatePending | LinkState::CreateInFlight | LinkState::Linked => return Ok(link),
                LinkState::Local | LinkState::Detached => {}
            }
            let now = super::now();
            link.state = LinkState::CreatePending;
            link.task_uid = None;
            link.base = None;
            link.reference = Some(new_reference(task_id));
            link.task_type = Some(task_type.to_owned());
            link.push_requested_at = Some(now);
            link.push_requested_by = Some(actor.as_str().to_owned());
            link.create_attempted_at = None;
            link.push_failed_version = None;
            link.retry_after = None;
            link.completion_sent_at = None;
            put_link(tx, &link, now)?;
            audit::record(
                tx,
                actor.as_str(),
                "task.sync.push_requested",
                "task",
                Some(&task_id.to_string()),
                json!({ "task_type": task_type, "reference": link.reference }),
            )?;
            Ok(link)
        })
    }

    /// The sync state of one task (`None`: never involved with SystmOne).
    pub fn task_link(&self, task_id: TaskId) -> StoreResult<Option<TaskLink>> {
        linked_task(&self.conn, task_id).map(|lt| lt.link)
    }

    /// Links of a patient's tasks, for the board (sync state, notice, TaskUID).
    pub fn task_links_of_patient(&self, patient_id: PatientId) -> StoreResult<Vec<TaskLink>> {
        Ok(tasks_of_patient(&self.conn, patient_id)?
            .into_iter()
            .filter_map(|lt| lt.link)
            .collect())
    }

    /// Every link of a task of a patient on the ward, for the board in one query (sync
    /// state, TaskUID, notice).
    pub fn task_links(&self) -> StoreResult<Vec<TaskLink>> {
        let mut stmt = self
            .conn
            .prepare(&board_links_sql())
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| link_from_row(r, 0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Per linked patient on the ward: when its tasks were last confirmed against SystmOne.
    pub fn task_sync_patients(&self) -> StoreResult<Vec<PatientTaskSync>> {
        patients_to_sync(&self.conn)
    }

    /// Staff read the sync notice; it leaves the board (the audit log keeps it).
    pub fn dismiss_task_sync_notice(
        &mut self,
        actor: &StaffName,
        task_id: TaskId,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let mut link = linked_task(tx, task_id)?.link.ok_or(StoreError::NotFound {
                what: "sync notice for task",
                id: task_id.to_string(),
            })?;
            let Some(notice) = link.notice.take() else {
                return Ok(());
            };
            link.notice_at = None;
            put_link(tx, &link, super::now())?;
            audit::record(
                tx,
                actor.as_str(),
                "task.sync.notice_dismissed",
                "task",
                Some(&task_id.to_string()),
                json!({ "notice": notice.expose() }),
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditQuery, NewPatient};
    use chrono::NaiveDate;
    use domain::{BedLabel, NewTask, PatientName};

    fn setup(nhs: Option<&str>) -> (Store, Task, StaffName) {
        let mut store = Store::open_in_memory().unwrap();
        let p = store
            .add_patient(
                "Nurse A",
                &NewPatient {
                    bed: BedLabel::parse("Bed 1").unwrap(),
                    name: PatientName::parse("Test Patient").unwrap(),
                    nhs_number: nhs.map(|n| NhsNumber::parse(n).unwrap()),
                },
            )
            .unwrap();
        let actor = StaffName::parse("Nurse A").unwrap();
        let t = store
            .add_task(
                &actor,
                &NewTask {
                    patient_id: p.id,
                    title: TaskTitle::parse("Bloods").unwrap(),
                    assignee: None,
                    due: None,
                },
            )
            .unwrap();
        (store, t, actor)
    }

    #[test]
    fn task_uids_are_sixteen_hex_digits() {
        assert_eq!(
            TaskUid::parse("00AB00cd00ef0012").unwrap().as_str(),
            "00ab00cd00ef0012"
        );
        assert!(TaskUid::parse("00ab00cd00ef001").is_err());
        assert!(TaskUid::parse("00ab00cd00ef001g").is_err());
    }

    #[test]
    fn push_request_needs_a_linked_patient_and_is_audited() {
        let (mut store, t, actor) = setup(None);
        let err = store
            .request_task_push(&actor, t.id, "Clinical Review Required")
            .unwrap_err();
        assert!(err.to_string().contains("not linked to SystmOne"), "{err}");
        assert!(store.task_link(t.id).unwrap().is_none());

        let (mut store, t, actor) = setup(Some("9434765919"));
        let link = store
            .request_task_push(&actor, t.id, "Clinical Review Required")
            .unwrap();
        assert_eq!(link.state, LinkState::CreatePending);
        assert!(link
            .reference
            .as_deref()
            .unwrap()
            .starts_with(&format!("IH-T{}-", t.id)));
        // Asking again keeps the same reference (a create may already be on its way).
        let again = store
            .request_task_push(&actor, t.id, "Clinical Review Required")
            .unwrap();
        assert_eq!(again.reference, link.reference);
        assert_eq!(store.task_link(t.id).unwrap(), Some(link));
        let audit = store
            .audit_entries(&AuditQuery {
                entity: Some("task".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(audit[0].action, "task.sync.push_requested");
        assert!(store.request_task_push(&actor, t.id, "  ").is_err());
    }

    #[test]
    fn links_round_trip_with_base_and_notices_accumulate_until_dismissed() {
        let (mut store, t, actor) = setup(Some("9434765919"));
        let now = crate::now();
        let mut link = TaskLink::new(t.id, LinkState::Linked);
        link.task_uid = Some(TaskUid::parse("0123456789abcdef").unwrap());
        link.base = Some(LinkBase {
            fields: SyncFields {
                content: Sensitive::new("Bloods\nand more".into()),
                due: NaiveDate::from_ymd_opt(2026, 3, 4).and_then(|d| d.and_hms_opt(10, 0, 0)),
                assignee: Some(RemoteAssignee {
                    kind: AssigneeKind::Team,
                    name: "Ward 7".into(),
                }),
            },
            title: Sensitive::new("Bloods and more".into()),
            status: Some("Started".into()),
            entered: NaiveDate::from_ymd_opt(2026, 3, 1).and_then(|d| d.and_hms_opt(9, 30, 0)),
        });
        add_notice(&mut link, "first", now);
        add_notice(&mut link, "second", now);
        store.write(|tx| put_link(tx, &link, now)).unwrap();
        let back = store.task_link(t.id).unwrap().unwrap();
        assert_eq!(back, link);
        assert_eq!(store.task_links().unwrap(), vec![link.clone()]);
        let text = back.notice.unwrap().into_inner();
        assert!(text.contains("first") && text.contains("second"), "{text}");
        store.dismiss_task_sync_notice(&actor, t.id).unwrap();
        assert!(store.task_link(t.id).unwrap().unwrap().notice.is_none());
        let audit = store.audit_entries(&AuditQuery::default()).unwrap();
        assert_eq!(audit[0].action, "task.sync.notice_dismissed");
        assert!(audit[0].detail["notice"]
            .as_str()
            .unwrap()
            .contains("second"));
    }

    #[test]
    fn a_task_uid_links_at_most_one_task() {
        let (mut store, t, actor) = setup(Some("9434765919"));
        let other = store
            .add_task(
                &actor,
                &NewTask {
                    patient_id: t.patient_id,
                    title: TaskTitle::parse("ECG").unwrap(),
                    assignee: None,
                    due: None,
                },
            )
            .unwrap();
        let uid = TaskUid::parse("0123456789abcdef").unwrap();
        let now = crate::now();
        let mut a = TaskLink::new(t.id, LinkState::Linked);
        a.task_uid = Some(uid.clone());
        store.write(|tx| put_link(tx, &a, now)).unwrap();
        let mut b = TaskLink::new(other.id, LinkState::Linked);
        b.task_uid = Some(uid);
        assert!(store.write(|tx| put_link(tx, &b, now)).is_err());
    }

    #[test]
    fn sync_updates_to_local_tasks_bump_the_version_and_are_audited() {
        let (mut store, t, _actor) = setup(Some("9434765919"));
        let now = crate::now();
        let updated = store
            .write(|tx| {
                update_local_task(
                    tx,
                    &t,
                    &LocalTaskUpdate {
                        title: Some(TaskTitle::parse("Bloods (U&E)").unwrap()),
                        status: Some(TaskStatus::Done),
                        ..Default::default()
                    },
                    now,
                )
            })
            .unwrap();
        assert_eq!(updated.version, t.version + 1);
        assert_eq!(updated.updated_by, SYNC_ACTOR);
        // Applying against the stale version is refused and writes nothing.
        let err = store.write(|tx| {
            update_local_task(
                tx,
                &t,
                &LocalTaskUpdate {
                    title: Some(TaskTitle::parse("X").unwrap()),
                    ..Default::default()
                },
                now,
            )
        });
        assert!(matches!(err, Err(StoreError::Conflict(_))));
        let audit = store.audit_entries(&AuditQuery::default()).unwrap();
        assert_eq!(audit[0].action, "task.sync.pulled");
        assert_eq!(audit[0].detail["status"]["to"], "done");
        assert_eq!(store.task(t.id).unwrap().title.as_str(), "Bloods (U&E)");
    }

    #[test]
    fn patient_sync_times_are_kept_per_patient() {
        let (mut store, t, _actor) = setup(Some("9434765919"));
        let all = store.task_sync_patients().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].tasks_confirmed_at, None);
        let now = crate::now();
        let mut s = all[0].clone();
        s.tasks_confirmed_at = Some(now);
        s.full_pull_attempted_at = Some(now);
        s.full_pull_wanted = true;
        store.write(|tx| put_patient_sync(tx, &s)).unwrap();
        assert_eq!(patient_sync(&store.conn, t.patient_id).unwrap(), Some(s));
        assert_eq!(last_full_pull_attempt(&store.conn).unwrap(), Some(now));
    }
}
