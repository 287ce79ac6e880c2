//! The hub's case-note operations: one method per user action, each one call into
//! [`crate::notes`], plus the outbox drain that files approved notes through SystmOne.

use super::filing::SystmOneRecordWriter;
use super::{Hub, HubError, HubResult, InField};
use crate::notes::{
    self, ApprovalResult, DraftSource, DrainReport, OutboxView, ParkedResolution, Preview,
    WorkerConfig,
};
use domain::{FilingRoute, Note, NoteBody, NoteId, NoteStatus, NoteTemplate, PatientId, Role};
use serde::Deserialize;
use std::time::Duration;
use store::{NoteFilter, OutboxEntry};
use systmone::connection::ConnectionState;

impl From<notes::NotesError> for HubError {
    fn from(e: notes::NotesError) -> Self {
        HubError::Notes(e)
    }
}

/// A new draft: free text, or a template by id or name.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DraftInput {
    pub patient_id: i64,
    pub text: Option<String>,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
}

impl Hub {
    /// The acting person's clinical role, when SystmOne reports one the role map knows
    /// (`Role::Unknown` otherwise). Never from a window setting.
    pub fn current_role(&self) -> Role {
        match self.acting().role {
            super::RoleStanding::Verified { clinical_role, .. } => clinical_role,
            _ => Role::Unknown,
        }
    }

    /// Clipboard when the API is off (switched off in Settings, no APIKey, SystmOne not
    /// running, nobody logged in, device blocked or awaiting approval); else the outbox.
    pub fn default_filing_route(&self) -> HubResult<FilingRoute> {
        if notes::route_from_settings(&self.store())? == FilingRoute::Clipboard {
            return Ok(FilingRoute::Clipboard);
        }
        let usable = self
            .systmone_client()
            .is_some_and(|c| matches!(&*c.state().borrow(), ConnectionState::Connected { .. }));
        Ok(if usable {
            FilingRoute::Api
        } else {
            FilingRoute::Clipboard
        })
    }

    pub fn create_note(&self, input: &DraftInput) -> HubResult<Note> {
        let actor = self.current_user()?;
        let source = match (&input.text, input.template_id, &input.template_name) {
            (Some(text), None, None) => DraftSource::Text(text),
            (None, Some(id), None) => DraftSource::Template(id),
            (None, None, Some(name)) => DraftSource::TemplateNamed(name),
            _ => {
                return Err(HubError::BadRequest(
                    "start a note from text or from one template".into(),
                ))
            }
        };
        notes::create_draft(
            &mut self.store(),
            &actor,
            PatientId(input.patient_id),
            source,
        )
        .in_field("text")
    }

    pub fn create_correction(&self, original: NoteId, text: &str) -> HubResult<Note> {
        let actor = self.current_user()?;
        notes::create_correction(&mut self.store(), &actor, original, text).in_field("text")
    }

    /// Autosave of a draft.
    pub fn save_note(&self, id: NoteId, text: &str, version: Option<i64>) -> HubResult<Note> {
        let actor = self.current_user()?;
        notes::save_draft(&mut self.store(), &actor, id, text, version).in_field("text")
    }

    pub fn discard_note(&self, id: NoteId) -> HubResult<()> {
        let actor = self.current_user()?;
        Ok(notes::discard_draft(&mut self.store(), &actor, id)?)
    }

    pub fn preview_note(&self, id: NoteId) -> HubResult<Preview> {
        Ok(notes::preview(&mut self.store(), id)?)
    }

    /// Approves exactly the previewed text (`sha256` from the preview). `route` None = the
    /// default for the current SystmOne state — and the clipboard when the approver's role is
    /// not verified, since only the clipboard route is open to them (see [`super::identity`]).
    pub fn approve_note(
        &self,
        id: NoteId,
        sha256: Option<&str>,
        route: Option<FilingRoute>,
    ) -> HubResult<ApprovalResult> {
        let acting = self.acting();
        let actor = acting.actor()?;
        let route = match route {
            Some(r) => r,
            None if !matches!(acting.role, super::RoleStanding::Verified { .. }) => {
                FilingRoute::Clipboard
            }
            None => self.default_filing_route()?,
        };
        let role = acting.approval_role(route)?;
        Ok(notes::approve(
            &mut self.store(),
            &actor,
            role,
            id,
            sha256,
            route,
        )?)
    }

    /// Co-signing needs a verified role that permits it (never offline, never a typed role).
    pub fn cosign_note(&self, id: NoteId, route: Option<FilingRoute>) -> HubResult<ApprovalResult> {
        let acting = self.acting();
        let actor = acting.actor()?;
        let role = acting.require(super::Permission::Cosign)?;
        let route = match route {
            Some(r) => r,
            None => self.default_filing_route()?,
        };
        Ok(notes::cosign(&mut self.store(), &actor, role, id, route)?)
    }

    pub fn confirm_pasted(&self, id: NoteId) -> HubResult<OutboxEntry> {
        let actor = self.current_user()?;
        Ok(notes::confirm_pasted(&mut self.store(), &actor, id)?)
    }

    /// SystmOne came back while a paste confirmation was pending: the clinician says whether
    /// they pasted it (never guessed).
    pub fn answer_paste_question(&self, id: NoteId, pasted: bool) -> HubResult<OutboxEntry> {
        let actor = self.current_user()?;
        Ok(notes::answer_paste_question(
            &mut self.store(),
            &actor,
            id,
            pasted,
        )?)
    }

    pub fn switch_note_to_clipboard(&self, id: NoteId) -> HubResult<String> {
        let actor = self.current_user()?;
        let mut store = self.store();
        notes::switch_to_clipboard(&mut store, &actor, id)?;
        Ok(notes::clipboard_text(&store, id)?)
    }

    pub fn note_clipboard_text(&self, id: NoteId) -> HubResult<String> {
        Ok(notes::clipboard_text(&self.store(), id)?)
    }

    pub fn file_note_now(&self, id: NoteId) -> HubResult<OutboxEntry> {
        let actor = self.current_user()?;
        Ok(notes::file_now(&mut self.store(), &actor, id)?)
    }

    pub fn resolve_parked_note(&self, id: NoteId, found_in_record: bool) -> HubResult<OutboxEntry> {
        let actor = self.current_user()?;
        let resolution = if found_in_record {
            ParkedResolution::FoundInRecord
        } else {
            ParkedResolution::NotInRecord
        };
        Ok(notes::resolve_parked(
            &mut self.store(),
            &actor,
            id,
            resolution,
        )?)
    }

    pub fn list_notes(
        &self,
        patient_id: Option<i64>,
        status: Option<NoteStatus>,
    ) -> HubResult<Vec<Note>> {
        Ok(notes::list_notes(
            &self.store(),
            &NoteFilter {
                patient_id: patient_id.map(PatientId),
                status,
            },
        )?)
    }

    pub fn outbox(&self, include_finished: bool) -> HubResult<Vec<OutboxView>> {
        Ok(notes::outbox_entries(&self.store(), include_finished)?)
    }

    pub fn note_templates(&self, include_retired: bool) -> HubResult<Vec<NoteTemplate>> {
        Ok(notes::list_templates(&self.store(), include_retired)?)
    }

    pub fn add_note_template(&self, name: &str, body: &str) -> HubResult<NoteTemplate> {
        let actor = self.current_user()?;
        // Checked here first so the window can say which of the two fields is wrong.
        store::clean_template_name(name).in_field("name")?;
        NoteBody::parse(body).in_field("body")?;
        Ok(notes::add_template(&mut self.store(), &actor, name, body)?)
    }

    pub fn update_note_template(
        &self,
        id: i64,
        version: Option<i64>,
        name: Option<&str>,
        body: Option<&str>,
    ) -> HubResult<NoteTemplate> {
        let actor = self.current_user()?;
        name.map(store::clean_template_name)
            .transpose()
            .in_field("name")?;
        body.map(NoteBody::parse).transpose().in_field("body")?;
        Ok(notes::update_template(
            &mut self.store(),
            &actor,
            id,
            version,
            name,
            body,
        )?)
    }

    pub fn retire_note_template(&self, id: i64) -> HubResult<NoteTemplate> {
        let actor = self.current_user()?;
        Ok(notes::retire_template(&mut self.store(), &actor, id)?)
    }

    pub fn restore_note_template(&self, id: i64) -> HubResult<NoteTemplate> {
        let actor = self.current_user()?;
        Ok(notes::restore_template(&mut self.store(), &actor, id)?)
    }

    fn writer(&self) -> HubResult<SystmOneRecordWriter> {
        let client = self.systmone_client().ok_or_else(|| {
            HubError::SystmOneUnavailable(
                self.systmone_problem
                    .clone()
                    .unwrap_or_else(|| "SystmOne is not set up".into()),
            )
        })?;
        Ok(SystmOneRecordWriter::new(client.clone()))
    }

    /// Files queued notes through SystmOne until none is due (or SystmOne is unavailable, or
    /// `max_wait` passes). Used by the window's background worker and `hubctl sync`.
    pub async fn drain_outbox(
        &self,
        worker_name: &str,
        max_wait: Duration,
    ) -> HubResult<DrainReport> {
        self.verified_client().await?;
        // The worker locks the store itself: bring the acting identity its audit rows carry
        // up to date first (taking the lock through `store()` does that).
        drop(self.store());
        let writer = self.writer()?;
        let mut config = WorkerConfig::new(worker_name);
        config.call_timeout = self.filing_call_timeout;
        config.lease_margin = Duration::from_secs(5);
        config.policy = self.filing_policy.clone();
        Ok(notes::drain_until_empty(&self.store, &writer, &config, max_wait).await?)
    }
}

impl Hub {
    /// SystmOne has become usable: notes copied to the clipboard while it was away now wait
    /// for the clinician's answer ("was it pasted?") instead of being filed on a guess.
    pub fn systmone_came_back(&self, worker_name: &str) -> HubResult<usize> {
        let actor = self
            .current_user()
            .map(|u| u.to_string())
            .unwrap_or_else(|_| worker_name.to_owned());
        Ok(notes::api_available_again(&mut self.store(), &actor)?.len())
    }

    fn systmone_connected(&self) -> bool {
        self.systmone_client()
            .is_some_and(|c| matches!(&*c.state().borrow(), ConnectionState::Connected { .. }))
    }

    /// The window's background filing: drains the outbox whenever SystmOne is usable, for
    /// as long as the app runs. Errors are logged (without patient data) and retried.
    pub async fn run_background_filing(&self, worker_name: &str) {
        let mut was_connected = self.systmone_connected();
        loop {
            let connected = self.systmone_connected();
            if connected && !was_connected {
                if let Err(e) = self.systmone_came_back(worker_name) {
                    tracing::warn!(
                        code = e.code(),
                        "could not mark clipboard notes for a paste question"
                    );
                }
            }
            was_connected = connected;
            match self
                .drain_outbox(worker_name, Duration::from_secs(10))
                .await
            {
                Ok(report) if !report.filed.is_empty() || !report.parked.is_empty() => {
                    tracing::info!(
                        filed = report.filed.len(),
                        parked = report.parked.len(),
                        "outbox drained"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(code = e.code(), "outbox not drained this round"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
