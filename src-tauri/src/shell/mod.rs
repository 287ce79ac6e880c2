//! The tauri shell: the only module that imports tauri. Each command is one call into
//! [`crate::hub::Hub`]; errors cross to the UI as one serializable `{code, message}`.

use crate::domain::TaskStatus;
use crate::domain::PatientId;
use crate::hub::{FollowView, SearchOutcome, SystmOneStatus};
use crate::lookup::{MatchReview, SearchInput};
use crate::hub::{AppStatus, Board, BoardFilter, HandoverPatient, Hub, HubError, PatientInput, TaskEditInput, TaskInput};
use crate::store::{AuditEntry, AuditQuery, Patient};
use serde::Serialize;
use crate::domain::{FilingRoute, Note, NoteId, NoteTemplate};
use crate::hub::{DraftInput, TaskSyncView};
use crate::store::task_links::TaskLink;
use crate::notes::{ApprovalResult, OutboxView, Preview};
use crate::store::OutboxEntry;
use tauri::{AppHandle, Manager, State};
use tauri_plugin_clipboard_manager::ClipboardExt;

/// The error the UI receives from every command.
#[derive(Debug, Serialize)]
pub struct UiError {
    pub code: &'static str,
    pub message: String,
}

impl From<HubError> for UiError {
    fn from(e: HubError) -> Self {
        UiError { code: e.code(), message: e.to_string() }
    }
}

type Res<T> = Result<T, UiError>;

/// The core, or why it could not be opened. The window starts either way, so a damaged or
/// locked database is explained on screen rather than the app silently failing to open.
pub struct HubState(Result<Hub, (&'static str, String)>);

impl HubState {
    fn get(&self) -> Res<&Hub> {
        self.0.as_ref().map_err(|(code, message)| UiError { code, message: message.clone() })
    }
}

#[tauri::command]
fn app_status(hub: State<'_, HubState>) -> Res<AppStatus> {
    Ok(hub.get()?.status()?)
}

#[tauri::command]
fn set_current_user(hub: State<'_, HubState>, name: String) -> Res<String> {
    Ok(hub.get()?.set_current_user(&name)?.to_string())
}

#[tauri::command]
fn board(hub: State<'_, HubState>, filter: BoardFilter) -> Res<Board> {
    Ok(hub.get()?.board(&filter)?)
}

#[tauri::command]
fn handover(hub: State<'_, HubState>) -> Res<Vec<HandoverPatient>> {
    Ok(hub.get()?.handover()?)
}

#[tauri::command]
fn add_patient(hub: State<'_, HubState>, input: PatientInput) -> Res<Patient> {
    Ok(hub.get()?.add_patient(&input)?)
}

#[tauri::command]
fn add_task(hub: State<'_, HubState>, input: TaskInput) -> Res<crate::domain::Task> {
    Ok(hub.get()?.add_task(&input)?)
}

#[tauri::command]
fn edit_task(hub: State<'_, HubState>, id: i64, input: TaskEditInput) -> Res<crate::domain::Task> {
    Ok(hub.get()?.edit_task(id, &input)?)
}

#[tauri::command]
fn set_task_status(hub: State<'_, HubState>, id: i64, status: TaskStatus, version: Option<i64>) -> Res<crate::domain::Task> {
    Ok(hub.get()?.set_task_status(id, status, version)?)
}

#[tauri::command]
fn systmone_status(hub: State<'_, HubState>) -> Res<SystmOneStatus> {
    Ok(hub.get()?.systmone_status())
}

#[tauri::command]
async fn search_patients(hub: State<'_, HubState>, input: SearchInput) -> Res<SearchOutcome> {
    Ok(hub.get()?.search_patients(&input).await?)
}

#[tauri::command]
async fn review_link(hub: State<'_, HubState>, patient_id: i64, nhs_number: String) -> Res<MatchReview> {
    Ok(hub.get()?.review_link(PatientId(patient_id), &nhs_number).await?)
}

#[tauri::command]
async fn confirm_link(hub: State<'_, HubState>, patient_id: i64, nhs_number: String) -> Res<Patient> {
    Ok(hub.get()?.confirm_link(PatientId(patient_id), &nhs_number).await?)
}

#[tauri::command]
async fn refresh_demographics(hub: State<'_, HubState>, patient_id: i64) -> Res<MatchReview> {
    Ok(hub.get()?.refresh_demographics(PatientId(patient_id)).await?)
}

#[tauri::command]
async fn follow_systmone(hub: State<'_, HubState>) -> Res<FollowView> {
    Ok(hub.get()?.follow_systmone().await?)
}

#[tauri::command]
fn create_note(hub: State<'_, HubState>, input: DraftInput) -> Res<Note> {
    Ok(hub.get()?.create_note(&input)?)
}

#[tauri::command]
fn create_correction(hub: State<'_, HubState>, original: i64, text: String) -> Res<Note> {
    Ok(hub.get()?.create_correction(NoteId(original), &text)?)
}

#[tauri::command]
fn save_note(hub: State<'_, HubState>, id: i64, text: String, version: Option<i64>) -> Res<Note> {
    Ok(hub.get()?.save_note(NoteId(id), &text, version)?)
}

#[tauri::command]
fn discard_note(hub: State<'_, HubState>, id: i64) -> Res<()> {
    Ok(hub.get()?.discard_note(NoteId(id))?)
}

#[tauri::command]
fn preview_note(hub: State<'_, HubState>, id: i64) -> Res<Preview> {
    Ok(hub.get()?.preview_note(NoteId(id))?)
}

/// Approves; on the clipboard route the SystmOne-ready text is put on the clipboard here.
#[tauri::command]
fn approve_note(app: AppHandle, hub: State<'_, HubState>, id: i64, sha256: Option<String>, route: Option<FilingRoute>) -> Res<ApprovalResult> {
    copy_for_paste(&app, hub.get()?.approve_note(NoteId(id), sha256.as_deref(), route)?)
}

#[tauri::command]
fn cosign_note(app: AppHandle, hub: State<'_, HubState>, id: i64, route: Option<FilingRoute>) -> Res<ApprovalResult> {
    copy_for_paste(&app, hub.get()?.cosign_note(NoteId(id), route)?)
}

#[tauri::command]
fn copy_note_to_clipboard(app: AppHandle, hub: State<'_, HubState>, id: i64) -> Res<String> {
    write_clipboard(&app, hub.get()?.note_clipboard_text(NoteId(id))?)
}

#[tauri::command]
fn switch_note_to_clipboard(app: AppHandle, hub: State<'_, HubState>, id: i64) -> Res<String> {
    write_clipboard(&app, hub.get()?.switch_note_to_clipboard(NoteId(id))?)
}

#[tauri::command]
fn confirm_pasted(hub: State<'_, HubState>, id: i64) -> Res<OutboxEntry> {
    Ok(hub.get()?.confirm_pasted(NoteId(id))?)
}

#[tauri::command]
fn answer_paste_question(hub: State<'_, HubState>, id: i64, pasted: bool) -> Res<OutboxEntry> {
    Ok(hub.get()?.answer_paste_question(NoteId(id), pasted)?)
}

#[tauri::command]
fn file_note_now(hub: State<'_, HubState>, id: i64) -> Res<OutboxEntry> {
    Ok(hub.get()?.file_note_now(NoteId(id))?)
}

#[tauri::command]
fn resolve_parked_note(hub: State<'_, HubState>, id: i64, found_in_record: bool) -> Res<OutboxEntry> {
    Ok(hub.get()?.resolve_parked_note(NoteId(id), found_in_record)?)
}

#[tauri::command]
fn list_notes(hub: State<'_, HubState>, patient_id: Option<i64>) -> Res<Vec<Note>> {
    Ok(hub.get()?.list_notes(patient_id, None)?)
}

#[tauri::command]
fn outbox(hub: State<'_, HubState>, include_finished: bool) -> Res<Vec<OutboxView>> {
    Ok(hub.get()?.outbox(include_finished)?)
}

#[tauri::command]
fn note_templates(hub: State<'_, HubState>, include_retired: bool) -> Res<Vec<NoteTemplate>> {
    Ok(hub.get()?.note_templates(include_retired)?)
}

#[tauri::command]
fn add_note_template(hub: State<'_, HubState>, name: String, body: String) -> Res<NoteTemplate> {
    Ok(hub.get()?.add_note_template(&name, &body)?)
}

#[tauri::command]
fn update_note_template(hub: State<'_, HubState>, id: i64, version: Option<i64>, name: Option<String>, body: Option<String>) -> Res<NoteTemplate> {
    Ok(hub.get()?.update_note_template(id, version, name.as_deref(), body.as_deref())?)
}

#[tauri::command]
fn retire_note_template(hub: State<'_, HubState>, id: i64) -> Res<NoteTemplate> {
    Ok(hub.get()?.retire_note_template(id)?)
}

#[tauri::command]
fn ward_settings(hub: State<'_, HubState>) -> Res<Vec<(&'static str, Option<String>)>> {
    Ok(hub.get()?.ward_settings()?)
}

#[tauri::command]
fn set_ward_setting(hub: State<'_, HubState>, name: String, value: Option<String>) -> Res<()> {
    Ok(hub.get()?.set_ward_setting(&name, value.as_deref())?)
}

#[tauri::command]
fn request_task_push(hub: State<'_, HubState>, task_id: i64, task_type: Option<String>) -> Res<TaskLink> {
    Ok(hub.get()?.request_task_push(task_id, task_type.as_deref())?)
}

#[tauri::command]
fn dismiss_task_sync_notice(hub: State<'_, HubState>, task_id: i64) -> Res<()> {
    Ok(hub.get()?.dismiss_task_sync_notice(task_id)?)
}

#[tauri::command]
fn task_sync_view(hub: State<'_, HubState>) -> Res<TaskSyncView> {
    Ok(hub.get()?.task_sync_view()?)
}

#[tauri::command]
fn restore_note_template(hub: State<'_, HubState>, id: i64) -> Res<NoteTemplate> {
    Ok(hub.get()?.restore_note_template(id)?)
}

fn write_clipboard(app: &AppHandle, text: String) -> Res<String> {
    app.clipboard().write_text(text.clone()).map_err(|e| UiError {
        code: "clipboard_unavailable",
        message: format!("the text could not be put on the clipboard ({e}); nothing was marked as filed"),
    })?;
    Ok(text)
}

fn copy_for_paste(app: &AppHandle, result: ApprovalResult) -> Res<ApprovalResult> {
    if let Some(text) = &result.clipboard_text {
        write_clipboard(app, text.clone())?;
    }
    Ok(result)
}

#[tauri::command]
fn audit(hub: State<'_, HubState>, entity: Option<String>, entity_id: Option<String>) -> Res<Vec<AuditEntry>> {
    Ok(hub.get()?.audit(&AuditQuery { entity, entity_id, limit: Some(500) })?)
}

/// Opens the core and runs the window until it is closed.
pub fn run(hub: Result<Hub, HubError>, systmone: std::net::SocketAddr) -> Result<(), tauri::Error> {
    // The SystmOne client spawns its connection owner on the runtime tauri also uses.
    let hub = hub.and_then(|mut hub| tauri::async_runtime::block_on(async { hub.start_systmone(systmone).map(|()| hub) }));
    let state = HubState(hub.map_err(|e| (e.code(), e.to_string())));
    tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            app_status,
            set_current_user,
            board,
            handover,
            add_patient,
            add_task,
            edit_task,
            set_task_status,
            audit,
            systmone_status,
            search_patients,
            review_link,
            confirm_link,
            refresh_demographics,
            follow_systmone,
            create_note,
            create_correction,
            save_note,
            discard_note,
            preview_note,
            approve_note,
            cosign_note,
            copy_note_to_clipboard,
            switch_note_to_clipboard,
            confirm_pasted,
            answer_paste_question,
            file_note_now,
            resolve_parked_note,
            list_notes,
            outbox,
            note_templates,
            add_note_template,
            update_note_template,
            retire_note_template,
            restore_note_template,
            ward_settings,
            set_ward_setting,
            request_task_push,
            dismiss_task_sync_notice,
            task_sync_view,
        ])
        .setup(|app| {
            // Approved notes are filed, and ward tasks synced, in the background for as long
            // as the window is open (both through the one paced SystmOne queue).
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<HubState>();
                if let Ok(hub) = state.get() {
                    hub.run_background_filing("Inpatient Hub window").await;
                }
            });
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<HubState>();
                if let Ok(hub) = state.get() {
                    hub.run_background_task_sync().await;
                }
            });
            Ok(())
        })
        .run(tauri::generate_context!())
}
