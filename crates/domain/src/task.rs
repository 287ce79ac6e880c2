//! Ward tasks as the board shows them.

use super::{PatientId, StaffName, TaskId, TaskTitle};
use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Some(TaskStatus::Open),
            "done" | "complete" | "completed" => Some(TaskStatus::Done),
            "cancelled" | "canceled" => Some(TaskStatus::Cancelled),
            _ => None,
        }
    }
}

/// What staff type to create a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTask {
    pub patient_id: PatientId,
    pub title: TaskTitle,
    pub assignee: Option<StaffName>,
    pub due: Option<DateTime<Local>>,
}

/// An edit: only the fields present change. `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskChanges {
    pub title: Option<TaskTitle>,
    pub assignee: Option<Option<StaffName>>,
    pub due: Option<Option<DateTime<Local>>>,
}

impl TaskChanges {
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.assignee.is_none() && self.due.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub patient_id: PatientId,
    pub title: TaskTitle,
    pub assignee: Option<StaffName>,
    pub due: Option<DateTime<Local>>,
    pub status: TaskStatus,
    pub created_at: DateTime<Local>,
    pub created_by: String,
    pub updated_at: DateTime<Local>,
    pub updated_by: String,
    /// Bumped on every change; lets an edit detect it was made against a stale copy.
    pub version: i64,
}

impl Task {
    /// Open and past its due time.
    pub fn is_overdue(&self, now: DateTime<Local>) -> bool {
        self.status == TaskStatus::Open && self.due.is_some_and(|due| due < now)
    }

    /// Open and due before the end of today.
    pub fn is_due_today(&self, now: DateTime<Local>) -> bool {
        self.status == TaskStatus::Open
            && self
                .due
                .is_some_and(|due| due >= now && due.date_naive() == now.date_naive())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilter {
    pub patient_id: Option<PatientId>,
    pub assignee: Option<String>,
    pub status: Option<TaskStatus>,
}
