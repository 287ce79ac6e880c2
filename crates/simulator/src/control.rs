//! What a SystmOne user would do on screen, and what tests want to inspect, done through the
//! simulator's database so it works from another process while the server runs.

use super::data::{hex16, SimEvent, SimPatient, SimTask, SOFTWARE_NAME, STATUS_COMPLETED};
use super::faults::FaultRates;
use super::profile::SimProfile;
use super::state::{
    now_local, ApprovalMode, Device, DeviceStatus, LogEntry, SimDb, SimSettings, TaskChange,
};
use super::SimError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::Path;
use systmone_wire::NhsNumber;

/// An event as the control surface reports it, with how many events on the same record
/// carry exactly the same narrative (a duplicate filing shows up as a count above 1).
#[derive(Debug, Clone, Serialize)]
pub struct FiledEvent {
    pub uid: String,
    pub entered_at: chrono::NaiveDateTime,
    pub effective_at: chrono::NaiveDateTime,
    pub user_name: String,
    /// The DeviceID that filed it through the API, if any.
    pub device_id: Option<String>,
    /// Filed under LeaveRecordOpen and not yet saved.
    pub pending: bool,
    pub narrative: String,
    pub codes: Vec<String>,
    pub identical_narrative_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatientSummary {
    pub nhs_number: String,
    pub name: String,
    pub date_of_birth: chrono::NaiveDate,
    pub sex: String,
    pub postcode: Option<String>,
    /// Some fictitious patients have died or left the practice, so lookups can show it.
    pub date_of_death: Option<chrono::NaiveDate>,
    pub care_end_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimStatus {
    pub seed: u64,
    pub settings: SimSettings,
    pub open_patient: Option<String>,
    pub devices: usize,
    pub requests_logged: usize,
    pub throttle_violations: u64,
}

#[derive(Debug)]
pub struct SimControl {
    db: SimDb,
}

fn narrative_of(event: &SimEvent) -> String {
    event.lines.join("\n")
}

fn check_nhs(nhs: &str) -> Result<String, SimError> {
    NhsNumber::parse(nhs)
        .map(|n| n.digits())
        .map_err(|e| SimError::Invalid(e.to_string()))
}

impl SimControl {
    /// Opens the simulator data in `data_dir` (the server must have generated it once).
    pub fn open(data_dir: &Path) -> Result<SimControl, SimError> {
        Ok(SimControl {
            db: SimDb::open(data_dir, None)?,
        })
    }

    pub fn db(&self) -> &SimDb {
        &self.db
    }

    fn patient(&self, nhs: &str) -> Result<SimPatient, SimError> {
        let digits = check_nhs(nhs)?;
        self.db
            .patient(&digits)?
            .ok_or(SimError::UnknownPatient(digits))
    }

    /// The user opens this patient's record on screen. A record already open is saved first.
    pub fn open_patient(&mut self, nhs: &str) -> Result<(), SimError> {
        let patient = self.patient(nhs)?;
        if let Some(previous) = self.db.open_patient()? {
            self.db.save_pending(&previous)?;
        }
        self.db.set_open_patient(Some(&patient.nhs_number))
    }

    /// The user closes the open record, saving pending changes unless `discard`.
    /// Returns how many pending items were saved or discarded.
    pub fn close_patient(&mut self, discard: bool) -> Result<usize, SimError> {
        let Some(open) = self.db.open_patient()? else {
            return Ok(0);
        };
        let n = if discard {
            self.db.discard_pending(&open)?
        } else {
            self.db.save_pending(&open)?
        };
        self.db.set_open_patient(None)?;
        Ok(n)
    }

    /// The user presses Save on the open record. Returns how many pending items were committed.
    pub fn save_record(&mut self) -> Result<usize, SimError> {
        let open = self.db.open_patient()?.ok_or(SimError::NoOpenRecord)?;
        self.db.save_pending(&open)
    }

    fn user_or_logged_in(&self, user: Option<&str>) -> Result<String, SimError> {
        let org = super::data::organisation();
        let name = match user {
            Some(u) => u.to_owned(),
            None => self.db.settings()?.logged_in_user,
        };
        org.user(&name)
            .map(|u| u.user_name.clone())
            .ok_or(SimError::UnknownUser(name))
    }

    pub fn complete_task(&mut self, task_uid: &str, by: Option<&str>) -> Result<SimTask, SimError> {
        let change = TaskChange {
            status: Some(STATUS_COMPLETED.into()),
            ..TaskChange::default()
        };
        self.edit_task(task_uid, &change, by)
    }

    pub fn edit_task(
        &mut self,
        task_uid: &str,
        change: &TaskChange,
        by: Option<&str>,
    ) -> Result<SimTask, SimError> {
        let by = self.user_or_logged_in(by)?;
        self.db.change_task(task_uid, change, &by)?;
        self.db
            .task(task_uid)?
            .ok_or_else(|| SimError::UnknownTask(task_uid.to_owned()))
    }

    /// A user types a journal entry on screen now (entered today). Returns its EventUID.
    pub fn add_event_today(
        &mut self,
        nhs: &str,
        text: &str,
        user: Option<&str>,
    ) -> Result<String, SimError> {
        let patient = self.patient(nhs)?;
        let user_name = self.user_or_logged_in(user)?;
        let org = super::data::organisation();
        let user = org
            .user(&user_name)
            .ok_or_else(|| SimError::UnknownUser(user_name.clone()))?;
        let now = now_local();
        let mut rng = ChaCha8Rng::from_entropy();
        let event = SimEvent {
            uid: hex16(&mut rng),
            nhs_number: patient.nhs_number,
            effective_at: now,
            entered_at: now,
            user_name: user.user_name.clone(),
            done_by: user.display_name(),
            done_at: org.sites[0].name.clone(),
            software: SOFTWARE_NAME.into(),
            lines: text.lines().map(str::to_owned).collect(),
            codes: Vec::new(),
            device_id: None,
            pending: false,
        };
        self.db.apply_update(
            std::slice::from_ref(&event),
            &[],
            &[],
            None,
            &user.user_name,
        )?;
        Ok(event.uid)
    }

    /// Events on a patient's record: only those filed through the API unless `all`.
    pub fn filed_events(&self, nhs: &str, all: bool) -> Result<Vec<FiledEvent>, SimError> {
        let patient = self.patient(nhs)?;
        let events = self.db.events(&patient.nhs_number)?;
        let count = |text: &str| {
            events
                .iter()
                .filter(|e| !e.lines.is_empty() && narrative_of(e) == text)
                .count()
        };
        Ok(events
            .iter()
            .filter(|e| all || e.device_id.is_some())
            .map(|e| {
                let narrative = narrative_of(e);
                FiledEvent {
                    uid: e.uid.clone(),
                    entered_at: e.entered_at,
                    effective_at: e.effective_at,
                    user_name: e.user_name.clone(),
                    device_id: e.device_id.clone(),
                    pending: e.pending,
                    identical_narrative_count: if narrative.is_empty() {
                        0
                    } else {
                        count(&narrative)
                    },
                    narrative,
                    codes: e
                        .codes
                        .iter()
                        .map(|c| format!("{} {} {}", c.scheme, c.code, c.term))
                        .collect(),
                }
            })
            .collect())
    }

    pub fn tasks(&self, nhs: &str) -> Result<Vec<SimTask>, SimError> {
        let patient = self.patient(nhs)?;
        self.db.tasks(&patient.nhs_number)
    }

    pub fn patients(&self, limit: usize) -> Result<Vec<PatientSummary>, SimError> {
        Ok(self
            .db
            .patients()?
            .into_iter()
            .take(limit)
            .map(|p| PatientSummary {
                name: format!("{} {} {}", p.title, p.first_name, p.surname),
                nhs_number: p.nhs_number,
                date_of_birth: p.date_of_birth,
                sex: p.sex,
                postcode: p.address.postcode,
                date_of_death: p.date_of_death,
                care_end_date: p.care_end_date,
            })
            .collect())
    }

    pub fn request_log(&self, limit: u32) -> Result<Vec<LogEntry>, SimError> {
        self.db.request_log(limit)
    }

    pub fn violation_count(&self) -> Result<u64, SimError> {
        self.db.violation_count()
    }

    pub fn devices(&self) -> Result<Vec<Device>, SimError> {
        self.db.devices()
    }

    pub fn set_device_status(
        &mut self,
        device_id: &str,
        status: DeviceStatus,
    ) -> Result<(), SimError> {
        let device = self
            .db
            .device(device_id)?
            .ok_or_else(|| SimError::Invalid(format!("no device {device_id}")))?;
        self.db
            .put_device(&device.device_id, &device.device_version, status)
    }

    pub fn set_approval(
        &mut self,
        mode: ApprovalMode,
        prompt_ms: Option<u64>,
    ) -> Result<SimSettings, SimError> {
        self.db.update_settings(|s| {
            s.approval = mode;
            if let Some(ms) = prompt_ms {
                s.prompt_ms = ms;
            }
        })
    }

    pub fn set_faults(
        &mut self,
        faults: FaultRates,
        slow_ms: Option<u64>,
    ) -> Result<SimSettings, SimError> {
        self.db.update_settings(|s| {
            s.faults = faults;
            if let Some(ms) = slow_ms {
                s.slow_ms = ms;
            }
        })
    }

    /// The behaviour profile the server answers with.
    pub fn profile(&self) -> Result<SimProfile, SimError> {
        Ok(self.db.settings()?.profile)
    }

    /// Changes the behaviour profile; the running server uses it from its next request.
    pub fn set_profile(&mut self, profile: SimProfile) -> Result<SimSettings, SimError> {
        self.db.update_settings(|s| s.profile = profile)
    }

    pub fn set_logged_in_user(&mut self, user: &str) -> Result<SimSettings, SimError> {
        let user = self.user_or_logged_in(Some(user))?;
        self.db.update_settings(|s| s.logged_in_user = user)
    }

    pub fn status(&self) -> Result<SimStatus, SimError> {
        Ok(SimStatus {
            seed: self.db.seed()?,
            settings: self.db.settings()?,
            open_patient: self.db.open_patient()?,
            devices: self.db.devices()?.len(),
            requests_logged: self.db.request_log(u32::MAX)?.len(),
            throttle_violations: self.db.violation_count()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DEFAULT_USER;

    fn control() -> (tempfile::TempDir, SimControl) {
        let dir = tempfile::tempdir().unwrap();
        let settings = SimSettings {
            profile: Default::default(),
            approval: ApprovalMode::Auto,
            prompt_ms: 0,
            faults: FaultRates::default(),
            slow_ms: 0,
            logged_in_user: DEFAULT_USER.into(),
            api_key: "k".into(),
        };
        SimDb::open(dir.path(), Some((1, &settings))).unwrap();
        let control = SimControl::open(dir.path()).unwrap();
        (dir, control)
    }

    #[test]
    fn screen_events_tasks_and_settings() {
        let (_dir, mut c) = control();
        assert!(matches!(
            c.open_patient("999 000 0019"),
            Err(SimError::Invalid(_))
        ));
        c.open_patient("999 000 0018").unwrap();
        assert_eq!(
            c.status().unwrap().open_patient.as_deref(),
            Some("9990000018")
        );
        assert_eq!(c.close_patient(false).unwrap(), 0);
        assert!(matches!(c.save_record(), Err(SimError::NoOpenRecord)));

        c.add_event_today("9990000026", "Seen by the simulator user.", None)
            .unwrap();
        c.add_event_today(
            "9990000026",
            "Seen by the simulator user.",
            Some("demo.hca"),
        )
        .unwrap();
        let all = c.filed_events("9990000026", true).unwrap();
        let mine: Vec<_> = all
            .iter()
            .filter(|e| e.narrative == "Seen by the simulator user.")
            .collect();
        assert_eq!(mine.len(), 2);
        assert!(mine.iter().all(|e| e.identical_narrative_count == 2));
        assert!(
            c.filed_events("9990000026", false).unwrap().is_empty(),
            "screen entries are not API filings"
        );

        let task =
            c.db.patients()
                .unwrap()
                .iter()
                .find_map(|p| c.tasks(&p.nhs_number).unwrap().into_iter().next())
                .unwrap();
        assert!(c
            .complete_task(&task.uid, Some("demo.consultant"))
            .unwrap()
            .is_completed());
        assert!(matches!(
            c.complete_task(&task.uid, Some("nobody")),
            Err(SimError::UnknownUser(_))
        ));

        c.set_approval(ApprovalMode::Block, None).unwrap();
        c.set_faults("drop=0.5".parse().unwrap(), Some(10)).unwrap();
        let s = c.status().unwrap().settings;
        assert_eq!(
            (s.approval, s.faults.drop, s.slow_ms),
            (ApprovalMode::Block, 0.5, 10)
        );
    }
}
