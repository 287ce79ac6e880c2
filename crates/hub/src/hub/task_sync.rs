//! The hub's side of ward task ↔ SystmOne task sync: asking for a task to be created in
//! SystmOne, the board's sync information, and running the sync engine through the client.

use super::{Hub, HubError, HubResult};
use crate::conformance::StatusUpdate;
use crate::tasksync::engine::{StoreAccess, TaskSyncEngine};
use crate::tasksync::planner::{Budgets, Op};
use crate::tasksync::systmone_remote::SystmOneTasks;
use domain::task_link::{AssigneeKind, PatientTaskSync, RemoteAssignee, TaskLink};
use domain::TaskId;
use serde::Serialize;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use store::{SettingKey, Store};

/// TPP's default task type for work a clinician must look at.
pub const DEFAULT_TASK_TYPE: &str = "Clinical Review Required";
/// The simulator's ward team: demo mode's default assignee.
const DEMO_TEAM: &str = "Willow Ward Team (DEMO)";

impl StoreAccess for Hub {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.store())
    }
}

impl From<crate::tasksync::engine::TaskSyncError> for HubError {
    fn from(e: crate::tasksync::engine::TaskSyncError) -> Self {
        match e {
            crate::tasksync::engine::TaskSyncError::Store(s) => HubError::Store(s),
        }
    }
}

/// What `hubctl sync` and the window report about a task sync pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskSyncReport {
    pub operations: usize,
    pub failures: usize,
    /// Pushes still waiting (SystmOne unavailable, backing off, or out of time).
    pub pending_pushes: usize,
}

/// The board's sync view: every link (with notices) and per-patient confirmation times.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSyncView {
    pub links: Vec<TaskLink>,
    pub patients: Vec<PatientTaskSync>,
}

fn parse_assignee(raw: &str) -> Option<RemoteAssignee> {
    let (kind, name) = raw.split_once(':')?;
    let kind = AssigneeKind::parse(kind.trim())?;
    let name = name.trim();
    (!name.is_empty()).then(|| RemoteAssignee {
        kind,
        name: name.to_owned(),
    })
}

fn is_push(op: &Op) -> bool {
    matches!(
        op,
        Op::Create { .. } | Op::Update { .. } | Op::Complete { .. }
    )
}

impl Hub {
    fn task_sync_engine(&self) -> HubResult<TaskSyncEngine> {
        let configured = self
            .store()
            .setting(SettingKey::TaskDefaultAssignee)?
            .and_then(|raw| parse_assignee(&raw));
        let assignee = configured.or_else(|| {
            self.demo_mode.then(|| RemoteAssignee {
                kind: AssigneeKind::Team,
                name: DEMO_TEAM.to_owned(),
            })
        });
        // A SystmOne the conformance probe showed ignoring or refusing Status on a task update
        // is not sent completions: staff are asked to complete the task in SystmOne.
        let takes_status = !matches!(
            self.observed_systmone_profile()?
                .map(|p| p.task_status_update),
            Some(StatusUpdate::Ignored | StatusUpdate::Refused)
        );
        Ok(TaskSyncEngine::new(Budgets::default())
            .with_default_assignee(assignee)
            .with_completion_status(takes_status))
    }

    /// The clinician chose to create this ward task in SystmOne too (audited).
    pub fn request_task_push(&self, task_id: i64, task_type: Option<&str>) -> HubResult<TaskLink> {
        let actor = self.current_user()?;
        Ok(self.store().request_task_push(
            &actor,
            TaskId(task_id),
            task_type.unwrap_or(DEFAULT_TASK_TYPE),
        )?)
    }

    pub fn dismiss_task_sync_notice(&self, task_id: i64) -> HubResult<()> {
        let actor = self.current_user()?;
        Ok(self
            .store()
            .dismiss_task_sync_notice(&actor, TaskId(task_id))?)
    }

    pub fn task_sync_view(&self) -> HubResult<TaskSyncView> {
        let store = self.store();
        Ok(TaskSyncView {
            links: store.task_links()?,
            patients: store.task_sync_patients()?,
        })
    }

    /// Runs up to `max_ops` due sync operations (one request each, paced by the client).
    pub async fn sync_tasks_round(&self, max_ops: usize) -> HubResult<TaskSyncReport> {
        let client = self.verified_client().await?;
        let engine = self.task_sync_engine()?;
        let remote = SystmOneTasks::new(client);
        let round = engine
            .run_round(self, &remote, chrono::Local::now(), max_ops)
            .await?;
        let pending_pushes = engine
            .plan(self, chrono::Local::now())?
            .iter()
            .filter(|op| is_push(op))
            .count();
        Ok(TaskSyncReport {
            operations: round.ops.len(),
            failures: round.ops.iter().filter(|o| o.remote.is_err()).count(),
            pending_pushes,
        })
    }

    /// For `hubctl sync`: pushes every pending ward change and pulls each linked patient's
    /// tasks at least once, within `max_wait`.
    pub async fn sync_tasks_until_settled(&self, max_wait: Duration) -> HubResult<TaskSyncReport> {
        let client = self.verified_client().await?;
        let engine = self.task_sync_engine()?;
        let remote = SystmOneTasks::new(client);
        let linked: HashSet<_> = self
            .store()
            .task_sync_patients()?
            .into_iter()
            .map(|p| p.patient_id)
            .collect();
        let mut pulled = HashSet::new();
        let mut report = TaskSyncReport::default();
        let started = Instant::now();
        loop {
            let ops = engine.plan(self, chrono::Local::now())?;
            report.pending_pushes = ops.iter().filter(|op| is_push(op)).count();
            let settled = report.pending_pushes == 0 && linked.is_subset(&pulled);
            if settled || started.elapsed() >= max_wait {
                return Ok(report);
            }
            let Some(op) = ops.into_iter().next() else {
                // Nothing due yet (e.g. a retry backoff): wait a little for it.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let outcome = engine
                .execute(self, &remote, &op, chrono::Local::now())
                .await?;
            report.operations += 1;
            match (&op, &outcome) {
                (Op::PullToday { patient_id, .. } | Op::PullFull { patient_id, .. }, Ok(())) => {
                    pulled.insert(*patient_id);
                }
                (_, Err(domain::SystmOneFailure::Unavailable(why))) => {
                    return Err(HubError::SystmOneUnavailable(why.clone()));
                }
                (_, Err(_)) => report.failures += 1,
                _ => {}
            }
        }
    }

    /// The window's background task sync: one due operation at a time, for as long as the
    /// app runs. Interactive work goes first because the client queues these in the
    /// background lane.
    pub async fn run_background_task_sync(&self) {
        loop {
            match self.sync_tasks_round(1).await {
                Ok(r) if r.operations > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::debug!(code = e.code(), "task sync not run this round"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_assignee_setting_is_kind_and_name() {
        assert_eq!(
            parse_assignee("team: Willow Ward Team"),
            Some(RemoteAssignee {
                kind: AssigneeKind::Team,
                name: "Willow Ward Team".into()
            })
        );
        assert_eq!(
            parse_assignee("user:demo.nurse").map(|a| a.kind),
            Some(AssigneeKind::User)
        );
        assert_eq!(parse_assignee("ward team"), None);
        assert_eq!(parse_assignee("team:"), None);
    }

    /// An applied conformance profile that saw SystmOne ignore or refuse Status: task sync
    /// stops sending completions (staff complete the task in SystmOne instead).
    #[test]
    fn an_observed_profile_decides_whether_completions_are_sent() {
        use crate::conformance::{ObservedProfile, PeerKind};
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::open_with_key(
            dir.path(),
            &crate::db_key::DatabaseKey::generate().unwrap(),
            store::DatabaseEnvironment::Live,
        )
        .unwrap();
        hub.set_current_user("Ward Manager").unwrap();
        assert!(
            hub.task_sync_engine().unwrap().send_completion_status,
            "nothing observed"
        );
        for (seen, sends) in [
            (StatusUpdate::Ignored, false),
            (StatusUpdate::Refused, false),
            (StatusUpdate::Applied, true),
            (StatusUpdate::Unknown, true),
        ] {
            let profile = ObservedProfile {
                peer: PeerKind::Systmone,
                task_status_update: seen,
                ..ObservedProfile::default()
            };
            hub.apply_observed_profile(&profile).unwrap();
            assert_eq!(
                hub.task_sync_engine().unwrap().send_completion_status,
                sends,
                "{seen:?}"
            );
        }
    }
}
