//! The case-note operations, one call each, for `hub` (the window) and `hubctl`. They take
//! raw input, validate it, and call the store; every change is audited under `actor`.
//! `role` is the clinical role the hub verified from SystmOne's logged-on user through the
//! role map (`hub::identity`); it is never read from a setting.

use super::outbox_machine::{Event, OutboxState, Policy};
use super::render;
use super::{NotesError, NotesResult};
use chrono::{DateTime, Local};
use domain::{
    FilingRoute, Note, NoteBody, NoteId, NoteStatus, NoteTemplate, PatientId, Role, StaffName,
};
use serde::Serialize;
use store::{NoteFilter, OutboxEntry, SettingKey, Store};

/// Where a new draft's text comes from.
#[derive(Debug, Clone)]
pub enum DraftSource<'a> {
    Text(&'a str),
    /// A template id; retired templates cannot start new notes.
    Template(i64),
    /// A template by name, case-insensitive (`hubctl notes add --template "Ward round"`).
    TemplateNamed(&'a str),
}

pub fn create_draft(
    store: &mut Store,
    actor: &StaffName,
    patient_id: PatientId,
    source: DraftSource<'_>,
) -> NotesResult<Note> {
    let (template, body) = match source {
        DraftSource::Text(text) => (None, NoteBody::parse(text)?),
        DraftSource::Template(id) => template_text(store.note_template(id)?)?,
        DraftSource::TemplateNamed(name) => {
            let found = store
                .note_templates(true)?
                .into_iter()
                .find(|t| t.name.eq_ignore_ascii_case(name.trim()));
            let t = found.ok_or_else(|| {
                NotesError::Refused(format!("there is no template called '{}'", name.trim()))
            })?;
            template_text(t)?
        }
    };
    Ok(store.create_note(actor.as_str(), patient_id, template.as_deref(), &body, None)?)
}

fn template_text(t: NoteTemplate) -> NotesResult<(Option<String>, NoteBody)> {
    if t.retired {
        return Err(NotesError::Refused(format!(
            "the template '{}' has been retired; choose another",
            t.name
        )));
    }
    let body = NoteBody::parse(&t.body)?;
    Ok((Some(t.name), body))
}

/// A correction: a new draft that references an approved note (which itself never changes).
pub fn create_correction(
    store: &mut Store,
    actor: &StaffName,
    original: NoteId,
    text: &str,
) -> NotesResult<Note> {
    let body = NoteBody::parse(text)?;
    let patient_id = store.note(original)?.patient_id;
    Ok(store.create_note(actor.as_str(), patient_id, None, &body, Some(original))?)
}

/// Autosave: one small transaction per save.
pub fn save_draft(
    store: &mut Store,
    actor: &StaffName,
    id: NoteId,
    text: &str,
    expected_version: Option<i64>,
) -> NotesResult<Note> {
    let body = NoteBody::parse(text)?;
    Ok(store.save_note_draft(actor.as_str(), id, &body, expected_version)?)
}

pub fn discard_draft(store: &mut Store, actor: &StaffName, id: NoteId) -> NotesResult<()> {
    Ok(store.discard_note_draft(actor.as_str(), id)?)
}

/// Exactly what will be filed: pass `text_sha256` back to [`approve`].
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub note_id: NoteId,
    pub status: NoteStatus,
    pub reference: String,
    pub lines: Vec<String>,
    /// The lines joined with "\n": what the clipboard path copies.
    pub text: String,
    pub text_sha256: String,
    pub width: usize,
}

pub fn preview(store: &mut Store, id: NoteId) -> NotesResult<Preview> {
    let note = store.note(id)?;
    let lines = store.note_filing_lines(id)?;
    Ok(Preview {
        note_id: id,
        status: note.status,
        reference: note.reference,
        text: lines.join("\n"),
        text_sha256: render::text_sha256(&lines),
        lines,
        width: render::WRAP_WIDTH,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalResult {
    pub note: Note,
    pub outbox: Option<OutboxEntry>,
    /// Clipboard path: the SystmOne-ready text to copy (the same lines the API would file).
    pub clipboard_text: Option<String>,
}

fn approval_result(store: &Store, note: Note) -> NotesResult<ApprovalResult> {
    let outbox = store.outbox_entry_for_note(note.id)?;
    let clipboard_text = outbox
        .as_ref()
        .filter(|e| {
            matches!(
                e.state,
                OutboxState::AwaitingPasteConfirmation | OutboxState::PasteUnconfirmed
            )
        })
        .map(|e| e.payload.lines.expose().join("\n"));
    Ok(ApprovalResult {
        note,
        outbox,
        clipboard_text,
    })
}

pub fn ward_requires_cosignature(store: &Store) -> NotesResult<bool> {
    Ok(store
        .setting(SettingKey::RequireCosignature)?
        .is_some_and(|v| is_true(&v)))
}

/// Clipboard when the ward switched API filing off, else the API.
pub fn route_from_settings(store: &Store) -> NotesResult<FilingRoute> {
    let off = store
        .setting(SettingKey::SystmOneApiDisabled)?
        .is_some_and(|v| is_true(&v));
    Ok(if off {
        FilingRoute::Clipboard
    } else {
        FilingRoute::Api
    })
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

/// Approves a draft. `expected_sha256` is the preview's hash (refused if the note changed
/// since). The ward's co-signature rule is read here; `route` from [`route_from_settings`]
/// or the caller's knowledge that SystmOne is switched off.
pub fn approve(
    store: &mut Store,
    actor: &StaffName,
    role: Role,
    id: NoteId,
    expected_sha256: Option<&str>,
    route: FilingRoute,
) -> NotesResult<ApprovalResult> {
    let cosign = ward_requires_cosignature(store)?;
    let note = store.approve_note(actor.as_str(), role, id, expected_sha256, cosign, route)?;
    approval_result(store, note)
}

pub fn cosign(
    store: &mut Store,
    actor: &StaffName,
    role: Role,
    id: NoteId,
    route: FilingRoute,
) -> NotesResult<ApprovalResult> {
    let note = store.cosign_note(actor.as_str(), role, id, route)?;
    approval_result(store, note)
}

fn entry_for(store: &Store, note_id: NoteId) -> NotesResult<OutboxEntry> {
    store.outbox_entry_for_note(note_id)?.ok_or_else(|| {
        NotesError::Refused(format!(
            "note {note_id} is not approved for filing yet (approve it, or wait for co-signature)"
        ))
    })
}

fn staff_event(
    store: &mut Store,
    actor: &StaffName,
    note_id: NoteId,
    event: Event,
) -> NotesResult<OutboxEntry> {
    let entry = entry_for(store, note_id)?;
    Ok(store.apply_outbox_event(actor.as_str(), entry.id, &event, &Policy::default())?)
}

/// The clinician pasted the note into SystmOne: filed manually, never filed by the API.
pub fn confirm_pasted(
    store: &mut Store,
    actor: &StaffName,
    note_id: NoteId,
) -> NotesResult<OutboxEntry> {
    staff_event(store, actor, note_id, Event::ConfirmInRecord)
}

/// The answer to "SystmOne is back: was this pasted?". `false` queues it for the API.
pub fn answer_paste_question(
    store: &mut Store,
    actor: &StaffName,
    note_id: NoteId,
    pasted: bool,
) -> NotesResult<OutboxEntry> {
    if pasted {
        return staff_event(store, actor, note_id, Event::ConfirmInRecord);
    }
    if entry_for(store, note_id)?.payload.nhs_number.is_none() {
        return Err(NotesError::Refused(
            "this patient is not linked to SystmOne (no NHS number), so the note cannot be filed automatically; paste it instead".into(),
        ));
    }
    staff_event(store, actor, note_id, Event::PasteNotDone)
}

/// Call when SystmOne's API is reachable again: every unconfirmed paste becomes a question
/// for its clinician (returned), instead of being filed by the API on a guess.
pub fn api_available_again(store: &mut Store, actor: &str) -> NotesResult<Vec<OutboxEntry>> {
    let waiting: Vec<OutboxEntry> = store
        .outbox_entries(false)?
        .into_iter()
        .filter(|e| e.state == OutboxState::AwaitingPasteConfirmation)
        .collect();
    let mut asked = Vec::new();
    for e in waiting {
        asked.push(store.apply_outbox_event(
            actor,
            e.id,
            &Event::ApiReturned,
            &Policy::default(),
        )?);
    }
    Ok(asked)
}

/// Copy-and-paste instead of the API for a note that is queued (not being sent, not maybe-filed).
pub fn switch_to_clipboard(
    store: &mut Store,
    actor: &StaffName,
    note_id: NoteId,
) -> NotesResult<ApprovalResult> {
    staff_event(store, actor, note_id, Event::SwitchToClipboard)?;
    let note = store.note(note_id)?;
    approval_result(store, note)
}

/// The text to paste again (e.g. the clipboard was overwritten before pasting).
pub fn clipboard_text(store: &Store, note_id: NoteId) -> NotesResult<String> {
    Ok(entry_for(store, note_id)?.payload.lines.expose().join("\n"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedResolution {
    /// Staff found the entry in SystmOne: mark it filed (manually).
    FoundInRecord,
    /// Staff checked it is not in SystmOne (or fixed the cause): send it again.
    NotInRecord,
}

pub fn resolve_parked(
    store: &mut Store,
    actor: &StaffName,
    note_id: NoteId,
    resolution: ParkedResolution,
) -> NotesResult<OutboxEntry> {
    let entry = entry_for(store, note_id)?;
    if !matches!(entry.state, OutboxState::Parked { .. }) {
        return Err(NotesError::Refused(format!(
            "note {note_id} is not waiting for attention ({})",
            entry.state.describe()
        )));
    }
    let event = match resolution {
        ParkedResolution::FoundInRecord => Event::ConfirmInRecord,
        ParkedResolution::NotInRecord => Event::Requeue,
    };
    Ok(store.apply_outbox_event(actor.as_str(), entry.id, &event, &Policy::default())?)
}

/// "File now": first in the queue, in the interactive lane.
pub fn file_now(store: &mut Store, actor: &StaffName, note_id: NoteId) -> NotesResult<OutboxEntry> {
    let entry = entry_for(store, note_id)?;
    Ok(store.file_outbox_entry_now(actor.as_str(), entry.id)?)
}

pub fn list_notes(store: &Store, filter: &NoteFilter) -> NotesResult<Vec<Note>> {
    Ok(store.notes(filter)?)
}

/// An outbox entry as the queue screen shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    #[serde(flatten)]
    pub entry: OutboxEntry,
    pub state_kind: &'static str,
    pub status_text: String,
    /// Estimated filing time at SystmOne's one-request-per-second pace (pending entries only).
    pub eta: Option<DateTime<Local>>,
}

/// The queue in draining order, with ETAs. Finished entries only when asked.
pub fn outbox_entries(store: &Store, include_finished: bool) -> NotesResult<Vec<OutboxView>> {
    let now = store::now();
    let mut requests_ahead: i64 = 0;
    let mut views = Vec::new();
    for entry in store.outbox_entries(include_finished)? {
        let eta = match &entry.state {
            OutboxState::Sending { .. } => Some(now),
            state if state.is_pending() => {
                // An unknown entry costs a read-back and (if not found) a send.
                requests_ahead += if matches!(state, OutboxState::Unknown { .. }) {
                    2
                } else {
                    1
                };
                let paced = now + chrono::Duration::seconds(requests_ahead);
                Some(state.due_at().flatten().map_or(paced, |due| due.max(paced)))
            }
            _ => None,
        };
        views.push(OutboxView {
            state_kind: entry.state.kind(),
            status_text: entry.state.describe(),
            eta,
            entry,
        });
    }
    Ok(views)
}

pub fn list_templates(store: &Store, include_retired: bool) -> NotesResult<Vec<NoteTemplate>> {
    Ok(store.note_templates(include_retired)?)
}

pub fn add_template(
    store: &mut Store,
    actor: &StaffName,
    name: &str,
    body: &str,
) -> NotesResult<NoteTemplate> {
    let body = NoteBody::parse(body)?;
    Ok(store.add_note_template(actor.as_str(), name, &body)?)
}

pub fn update_template(
    store: &mut Store,
    actor: &StaffName,
    id: i64,
    expected_version: Option<i64>,
    name: Option<&str>,
    body: Option<&str>,
) -> NotesResult<NoteTemplate> {
    let body = body.map(NoteBody::parse).transpose()?;
    if name.is_none() && body.is_none() {
        return Err(NotesError::Refused(
            "nothing to change: give a new name or text".into(),
        ));
    }
    Ok(store.update_note_template(actor.as_str(), id, expected_version, name, body.as_ref())?)
}

pub fn retire_template(store: &mut Store, actor: &StaffName, id: i64) -> NotesResult<NoteTemplate> {
    Ok(store.set_note_template_retired(actor.as_str(), id, true)?)
}

pub fn restore_template(
    store: &mut Store,
    actor: &StaffName,
    id: i64,
) -> NotesResult<NoteTemplate> {
    Ok(store.set_note_template_retired(actor.as_str(), id, false)?)
}

pub use super::worker::{drain_until_empty, run_worker_once, DrainReport, WorkerStep};

#[cfg(test)]
mod tests;
