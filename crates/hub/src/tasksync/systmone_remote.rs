//! [`RemoteTasks`] over the real SystmOne client: the Tasks filter of GetPatientRecord
//! (entered-today when asked, so it is exempt from the 30 s limit) and UpdatePatientRecord
//! NonClinical/Task, on the background lane (a clinician at the screen goes first).

use super::engine::RemoteTasks;
use super::{NewRemoteTask, RemoteTask, RemoteTaskChanges};
use chrono::{Local, NaiveDate, NaiveDateTime};
use domain::task_link::{AssigneeKind, RemoteAssignee, TaskUid};
use domain::SystmOneFailure;
use domain::{NhsNumber, Sensitive};
use systmone::client::{Lane, SystmOneClient};
use systmone::codec::{
    FilterFlag, Identity, RecordFilter, Task, TaskAssignee, UpdatePatientRecordParams,
};

/// The sync's view of SystmOne through the app's one client.
#[derive(Clone, Copy)]
pub struct SystmOneTasks<'a> {
    client: &'a SystmOneClient,
    lane: Lane,
}

impl<'a> SystmOneTasks<'a> {
    /// Background sync: queued behind interactive requests.
    pub fn new(client: &'a SystmOneClient) -> SystmOneTasks<'a> {
        SystmOneTasks {
            client,
            lane: Lane::Background,
        }
    }

    /// E.g. `Lane::Interactive` when a clinician pressed "sync now" and is waiting.
    pub fn on_lane(client: &'a SystmOneClient, lane: Lane) -> SystmOneTasks<'a> {
        SystmOneTasks { client, lane }
    }
}

/// The Tasks filter; with `today`, MinEntryDate = MaxEntryDate = that date (not throttled).
pub fn tasks_filter(today: Option<NaiveDate>) -> RecordFilter {
    let mut filter = RecordFilter::with_flags([FilterFlag::Tasks]);
    filter.min_entry_date = today;
    filter.max_entry_date = today;
    filter
}

/// A task as the sync sees it; `None` for an entry without a usable TaskUID.
pub fn remote_task(t: &Task) -> Option<RemoteTask> {
    let uid = TaskUid::parse(t.task_uid.as_deref()?).ok()?;
    let assignee = if let Some(u) = &t.user_name_assigned {
        Some(RemoteAssignee {
            kind: AssigneeKind::User,
            name: u.clone(),
        })
    } else if let Some(g) = &t.group_name_assigned {
        Some(RemoteAssignee {
            kind: AssigneeKind::Group,
            name: g.clone(),
        })
    } else {
        t.team_name_assigned.as_ref().map(|team| RemoteAssignee {
            kind: AssigneeKind::Team,
            name: team.clone(),
        })
    };
    Some(RemoteTask {
        uid,
        task_type: t.task_type.clone().unwrap_or_default(),
        content: Sensitive::new(t.content.clone().unwrap_or_default()),
        due: t.due,
        assignee,
        status: t.status.clone().unwrap_or_default(),
        // Unknown entry time: never treated as "entered today", so an entered-today pull
        // never takes its absence as a completion.
        entered: t.date_time.unwrap_or(NaiveDateTime::MIN),
    })
}

fn codec_assignee(a: &RemoteAssignee) -> TaskAssignee {
    match a.kind {
        AssigneeKind::User => TaskAssignee::User(a.name.clone()),
        AssigneeKind::Group => TaskAssignee::Group(a.name.clone()),
        AssigneeKind::Team => TaskAssignee::Team(a.name.clone()),
    }
}

/// UpdatePatientRecord's Task for a new task.
pub fn create_request(task: &NewRemoteTask) -> Task {
    let mut t = Task {
        task_type: Some(task.task_type.clone()),
        content: Some(task.content.expose().clone()),
        due: task.due,
        ..Task::default()
    };
    if let Some(a) = &task.assignee {
        t.assign(codec_assignee(a));
    }
    t
}

/// UpdatePatientRecord's Task for a change. The API has no way to clear a due date or an
/// assignee (an absent element means "unchanged"), so such a change is refused here, before
/// anything is sent, and the sync shows staff a notice rather than pretend it was made.
pub fn update_request(uid: &TaskUid, changes: &RemoteTaskChanges) -> Result<Task, SystmOneFailure> {
    let mut t = Task::update(uid.as_str());
    if let Some(c) = &changes.content {
        t.content = Some(c.expose().clone());
    }
    match changes.due {
        Some(None) => {
            return Err(SystmOneFailure::Refused(
                "SystmOne's interface cannot remove a task's due date; change it in SystmOne"
                    .into(),
            ))
        }
        Some(Some(d)) => t.due = Some(d),
        None => {}
    }
    match &changes.assignee {
        Some(None) => {
            return Err(SystmOneFailure::Refused(
                "SystmOne's interface cannot unassign a task; reassign it in SystmOne".into(),
            ))
        }
        Some(Some(a)) => t.assign(codec_assignee(a)),
        None => {}
    }
    t.status = changes.status.clone();
    Ok(t)
}

impl RemoteTasks for SystmOneTasks<'_> {
    async fn pull(
        &self,
        nhs: &NhsNumber,
        today_only: bool,
    ) -> Result<Vec<RemoteTask>, SystmOneFailure> {
        let filter = tasks_filter(today_only.then(|| Local::now().date_naive()));
        let record = self
            .client
            .patient_record(nhs, Some(filter), self.lane)
            .await
            .map_err(|e| e.failure())?;
        if record
            .identity
            .as_ref()
            .and_then(Identity::nhs_number)
            .is_some_and(|n| n != nhs)
        {
            return Err(SystmOneFailure::Refused(
                "SystmOne answered with a different patient's record".into(),
            ));
        }
        Ok(record.tasks.iter().filter_map(remote_task).collect())
    }

    async fn create(
        &self,
        nhs: &NhsNumber,
        task: &NewRemoteTask,
    ) -> Result<TaskUid, SystmOneFailure> {
        let mut params = UpdatePatientRecordParams::new(Identity::nhs(nhs.clone()));
        params.tasks.push(create_request(task));
        let response = self
            .client
            .update_record(params, self.lane)
            .await
            .map_err(|e| e.failure())?;
        // Filed but no TaskUID in the answer: settle it like an unanswered create.
        response
            .task_uids
            .first()
            .and_then(|u| TaskUid::parse(u).ok())
            .ok_or(SystmOneFailure::MaybeSent)
    }

    async fn update(
        &self,
        nhs: &NhsNumber,
        uid: &TaskUid,
        changes: &RemoteTaskChanges,
    ) -> Result<(), SystmOneFailure> {
        let mut params = UpdatePatientRecordParams::new(Identity::nhs(nhs.clone()));
        params.tasks.push(update_request(uid, changes)?);
        self.client
            .update_record(params, self.lane)
            .await
            .map_err(|e| e.failure())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_tasks_map_both_ways() {
        let t = Task {
            task_uid: Some("00AB00CD00EF0012".into()),
            date_time: NaiveDate::from_ymd_opt(2026, 3, 4).and_then(|d| d.and_hms_opt(9, 0, 0)),
            task_type: Some("File".into()),
            status: Some("Not Started".into()),
            due: NaiveDate::from_ymd_opt(2026, 3, 6).and_then(|d| d.and_hms_opt(0, 0, 0)),
            content: Some("Chase echo [IH-T1-0a0b0c]".into()),
            team_name_assigned: Some("Ward 7".into()),
            ..Task::default()
        };
        let r = remote_task(&t).unwrap();
        assert_eq!(r.uid.as_str(), "00ab00cd00ef0012");
        assert_eq!(
            r.assignee,
            Some(RemoteAssignee {
                kind: AssigneeKind::Team,
                name: "Ward 7".into()
            })
        );
        assert_eq!(r.reference().as_deref(), Some("IH-T1-0a0b0c"));
        assert!(remote_task(&Task {
            task_uid: None,
            ..t.clone()
        })
        .is_none());
        let undated = remote_task(&Task {
            date_time: None,
            ..t.clone()
        })
        .unwrap();
        assert_ne!(undated.entered.date(), Local::now().date_naive());

        let new = NewRemoteTask {
            task_type: "File".into(),
            content: Sensitive::new("Bloods [IH-T2-000001]".into()),
            due: None,
            assignee: Some(RemoteAssignee::user("jsmith")),
        };
        let req = create_request(&new);
        assert_eq!(req.user_name_assigned.as_deref(), Some("jsmith"));
        assert_eq!(req.task_uid, None);
    }

    #[test]
    fn updates_send_only_changes_and_refuse_what_the_api_cannot_express() {
        let uid = TaskUid::from_number(7);
        let changes = RemoteTaskChanges {
            status: Some("Completed".into()),
            ..Default::default()
        };
        let req = update_request(&uid, &changes).unwrap();
        assert_eq!(req.task_uid.as_deref(), Some(uid.as_str()));
        assert_eq!(
            (req.content, req.due, req.status.as_deref()),
            (None, None, Some("Completed"))
        );
        let clear_due = RemoteTaskChanges {
            due: Some(None),
            ..Default::default()
        };
        assert!(matches!(
            update_request(&uid, &clear_due),
            Err(SystmOneFailure::Refused(_))
        ));
        let unassign = RemoteTaskChanges {
            assignee: Some(None),
            ..Default::default()
        };
        assert!(matches!(
            update_request(&uid, &unassign),
            Err(SystmOneFailure::Refused(_))
        ));
    }

    #[test]
    fn the_tasks_filter_is_entered_today_or_everything() {
        let f = tasks_filter(NaiveDate::from_ymd_opt(2026, 3, 4));
        assert_eq!(f.min_entry_date, f.max_entry_date);
        assert!(f.flags.contains(&FilterFlag::Tasks));
        assert_eq!(tasks_filter(None).min_entry_date, None);
    }
}
