//! One `#[tauri::command]` per user operation, each one call into [`Hub`]. Commands that
//! write tell the window what they changed (`events::changed`). Argument names reach the
//! window in camelCase (`patient_id` → `patientId`); structs keep their snake_case fields.

use super::events::{changed, Scope};
use super::{HubState, Res, UiError};
use domain::task_link::TaskLink;
use domain::{FilingRoute, Note, NoteId, NoteTemplate, PatientId, Task, TaskStatus};
use hub::lookup::{MatchReview, SearchInput};
use hub::notes::{ApprovalResult, OutboxView, Preview};
use hub::{
    ActingIdentity, AppStatus, AuditEntry, AuditQuery, Board, BoardFilter, DraftInput, FollowView,
    HandoverPatient, Hub, HubResult, OutboxEntry, OutboxPage, Patient, PatientInput, SearchOutcome,
    SystmOneStatus, TaskEditInput, TaskInput, TaskSyncView, WardSetting, WardSettingView,
};
use tauri::{AppHandle, State};
use tauri_plugin_clipboard_manager::ClipboardExt;

/// A command's result; on success, the window hears what it changed.
fn wrote<T>(app: &AppHandle, hub: &Hub, scopes: &[Scope], result: HubResult<T>) -> Res<T> {
    let value = result?;
    changed(app, hub, scopes);
    Ok(value)
}

#[tauri::command]
pub async fn app_status(hub: State<'_, HubState>) -> Res<AppStatus> {
    let hub = hub.get()?;
    Ok(hub.status()?)
}

/// Who is acting: asks SystmOne afresh who is logged on (the idle lock's unlock, and "check
/// who is here"), then returns the OS account, SystmOne user and verified role.
#[tauri::command]
pub async fn recheck_identity(hub: State<'_, HubState>) -> Res<ActingIdentity> {
    let hub = hub.get()?;
    Ok(hub.recheck_identity().await?)
}

/// A display label shown beside who is acting; never who audit rows name, never a role.
#[tauri::command]
pub async fn set_current_user(
    app: AppHandle,
    hub: State<'_, HubState>,
    name: String,
) -> Res<String> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Settings],
        hub.set_current_user(&name).map(|s| s.to_string()),
    )
}

#[tauri::command]
pub async fn board(hub: State<'_, HubState>, filter: BoardFilter) -> Res<Board> {
    let hub = hub.get()?;
    Ok(hub.board(&filter)?)
}

/// The ward's patients alone, for views that only list them (notes, outbox, lookup): never
/// every task ever recorded, which is what `board` with no filter would send.
#[tauri::command]
pub async fn ward_patients(hub: State<'_, HubState>) -> Res<Vec<Patient>> {
    let hub = hub.get()?;
    Ok(hub.patients()?)
}

#[tauri::command]
pub async fn handover(hub: State<'_, HubState>) -> Res<Vec<HandoverPatient>> {
    let hub = hub.get()?;
    Ok(hub.handover()?)
}

#[tauri::command]
pub async fn add_patient(
    app: AppHandle,
    hub: State<'_, HubState>,
    input: PatientInput,
) -> Res<Patient> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Patients], hub.add_patient(&input))
}

#[tauri::command]
pub async fn add_task(app: AppHandle, hub: State<'_, HubState>, input: TaskInput) -> Res<Task> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Tasks], hub.add_task(&input))
}

#[tauri::command]
pub async fn edit_task(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    input: TaskEditInput,
) -> Res<Task> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Tasks], hub.edit_task(id, &input))
}

#[tauri::command]
pub async fn set_task_status(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    status: TaskStatus,
    version: Option<i64>,
) -> Res<Task> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Tasks],
        hub.set_task_status(id, status, version),
    )
}

#[tauri::command]
pub async fn systmone_status(hub: State<'_, HubState>) -> Res<SystmOneStatus> {
    let hub = hub.get()?;
    Ok(hub.systmone_status())
}

#[tauri::command]
pub async fn audit(
    hub: State<'_, HubState>,
    entity: Option<String>,
    entity_id: Option<String>,
) -> Res<Vec<AuditEntry>> {
    let hub = hub.get()?;
    Ok(hub.audit(&AuditQuery {
        entity,
        entity_id,
        limit: Some(500),
    })?)
}

#[tauri::command]
pub async fn create_note(app: AppHandle, hub: State<'_, HubState>, input: DraftInput) -> Res<Note> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Notes], hub.create_note(&input))
}

#[tauri::command]
pub async fn create_correction(
    app: AppHandle,
    hub: State<'_, HubState>,
    original: i64,
    text: String,
) -> Res<Note> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Notes],
        hub.create_correction(NoteId(original), &text),
    )
}

#[tauri::command]
pub async fn save_note(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    text: String,
    version: Option<i64>,
) -> Res<Note> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Notes],
        hub.save_note(NoteId(id), &text, version),
    )
}

#[tauri::command]
pub async fn discard_note(app: AppHandle, hub: State<'_, HubState>, id: i64) -> Res<()> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Notes], hub.discard_note(NoteId(id)))
}

#[tauri::command]
pub async fn preview_note(hub: State<'_, HubState>, id: i64) -> Res<Preview> {
    let hub = hub.get()?;
    Ok(hub.preview_note(NoteId(id))?)
}

#[tauri::command]
pub async fn confirm_pasted(app: AppHandle, hub: State<'_, HubState>, id: i64) -> Res<OutboxEntry> {
    let hub = hub.get()?;
    let entry = wrote(
        &app,
        hub,
        &[Scope::Notes, Scope::Outbox],
        hub.confirm_pasted(NoteId(id)),
    )?;
    clear_pasted_note(&app, hub, NoteId(id));
    Ok(entry)
}

#[tauri::command]
pub async fn answer_paste_question(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    pasted: bool,
) -> Res<OutboxEntry> {
    let hub = hub.get()?;
    let entry = wrote(
        &app,
        hub,
        &[Scope::Notes, Scope::Outbox],
        hub.answer_paste_question(NoteId(id), pasted),
    )?;
    if pasted {
        clear_pasted_note(&app, hub, NoteId(id));
    }
    Ok(entry)
}

#[tauri::command]
pub async fn file_note_now(app: AppHandle, hub: State<'_, HubState>, id: i64) -> Res<OutboxEntry> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Outbox], hub.file_note_now(NoteId(id)))
}

#[tauri::command]
pub async fn resolve_parked_note(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    found_in_record: bool,
) -> Res<OutboxEntry> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Notes, Scope::Outbox],
        hub.resolve_parked_note(NoteId(id), found_in_record),
    )
}

#[tauri::command]
pub async fn list_notes(hub: State<'_, HubState>, patient_id: Option<i64>) -> Res<Vec<Note>> {
    let hub = hub.get()?;
    Ok(hub.list_notes(patient_id, None)?)
}

/// The outbox queue (every entry still to be filed, in draining order, with ETAs); with
/// `include_finished`, then the newest page of filed entries (`Hub::outbox_history`'s default
/// size): never the whole filed history. Older pages: [`outbox_history`].
#[tauri::command]
pub async fn outbox(hub: State<'_, HubState>, include_finished: bool) -> Res<Vec<OutboxView>> {
    let hub = hub.get()?;
    let mut entries = hub.outbox(false)?;
    if include_finished {
        entries.extend(hub.outbox_history(None, None, None)?.entries);
    }
    Ok(entries)
}

/// One page of filed outbox entries, newest first, older than `before` (a page's
/// `next_before`), at most `limit` (the hub's default when not given).
#[tauri::command]
pub async fn outbox_history(
    hub: State<'_, HubState>,
    limit: Option<u32>,
    before: Option<i64>,
) -> Res<OutboxPage> {
    let hub = hub.get()?;
    Ok(hub.outbox_history(None, limit, before)?)
}

/// The outbox entries of one patient's notes, finished or not: what the case-notes view
/// shows beside each note, without reading the ward's whole outbox.
#[tauri::command]
pub async fn patient_outbox(hub: State<'_, HubState>, patient_id: i64) -> Res<Vec<OutboxView>> {
    let hub = hub.get()?;
    Ok(hub.outbox_of_patient(patient_id)?)
}

#[tauri::command]
pub async fn note_templates(
    hub: State<'_, HubState>,
    include_retired: bool,
) -> Res<Vec<NoteTemplate>> {
    let hub = hub.get()?;
    Ok(hub.note_templates(include_retired)?)
}

#[tauri::command]
pub async fn add_note_template(
    app: AppHandle,
    hub: State<'_, HubState>,
    name: String,
    body: String,
) -> Res<NoteTemplate> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Templates],
        hub.add_note_template(&name, &body),
    )
}

#[tauri::command]
pub async fn update_note_template(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    version: Option<i64>,
    name: Option<String>,
    body: Option<String>,
) -> Res<NoteTemplate> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Templates],
        hub.update_note_template(id, version, name.as_deref(), body.as_deref()),
    )
}

#[tauri::command]
pub async fn retire_note_template(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
) -> Res<NoteTemplate> {
    let hub = hub.get()?;
    wrote(&app, hub, &[Scope::Templates], hub.retire_note_template(id))
}

#[tauri::command]
pub async fn restore_note_template(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
) -> Res<NoteTemplate> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Templates],
        hub.restore_note_template(id),
    )
}

#[tauri::command]
pub async fn ward_settings(hub: State<'_, HubState>) -> Res<Vec<WardSettingView>> {
    let hub = hub.get()?;
    Ok(hub.ward_settings()?)
}

#[tauri::command]
pub async fn set_ward_setting(
    app: AppHandle,
    hub: State<'_, HubState>,
    setting: WardSetting,
    value: Option<String>,
) -> Res<()> {
    let hub = hub.get()?;
    hub.learn_who_is_logged_on().await;
    wrote(
        &app,
        hub,
        &[Scope::Settings],
        hub.set_ward_setting(setting, value.as_deref()),
    )
}

#[tauri::command]
pub async fn request_task_push(
    app: AppHandle,
    hub: State<'_, HubState>,
    task_id: i64,
    task_type: Option<String>,
) -> Res<TaskLink> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Tasks, Scope::TaskSync],
        hub.request_task_push(task_id, task_type.as_deref()),
    )
}

#[tauri::command]
pub async fn dismiss_task_sync_notice(
    app: AppHandle,
    hub: State<'_, HubState>,
    task_id: i64,
) -> Res<()> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Tasks, Scope::TaskSync],
        hub.dismiss_task_sync_notice(task_id),
    )
}

#[tauri::command]
pub async fn task_sync_view(hub: State<'_, HubState>) -> Res<TaskSyncView> {
    let hub = hub.get()?;
    Ok(hub.task_sync_view()?)
}

#[tauri::command]
pub async fn search_patients(hub: State<'_, HubState>, input: SearchInput) -> Res<SearchOutcome> {
    let hub = hub.get()?;
    Ok(hub.search_patients(&input).await?)
}

#[tauri::command]
pub async fn review_link(
    hub: State<'_, HubState>,
    patient_id: i64,
    nhs_number: String,
) -> Res<MatchReview> {
    let hub = hub.get()?;
    Ok(hub.review_link(PatientId(patient_id), &nhs_number).await?)
}

#[tauri::command]
pub async fn confirm_link(
    app: AppHandle,
    hub: State<'_, HubState>,
    patient_id: i64,
    nhs_number: String,
) -> Res<Patient> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Patients, Scope::TaskSync],
        hub.confirm_link(PatientId(patient_id), &nhs_number).await,
    )
}

#[tauri::command]
pub async fn refresh_demographics(
    app: AppHandle,
    hub: State<'_, HubState>,
    patient_id: i64,
) -> Res<MatchReview> {
    let hub = hub.get()?;
    wrote(
        &app,
        hub,
        &[Scope::Patients],
        hub.refresh_demographics(PatientId(patient_id)).await,
    )
}

#[tauri::command]
pub async fn follow_systmone(hub: State<'_, HubState>) -> Res<FollowView> {
    let hub = hub.get()?;
    Ok(hub.follow_systmone().await?)
}

/// Approves; on the clipboard route the SystmOne-ready text is put on the clipboard here.
#[tauri::command]
pub async fn approve_note(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    sha256: Option<String>,
    route: Option<FilingRoute>,
) -> Res<ApprovalResult> {
    let hub = hub.get()?;
    // The role that signs off comes from SystmOne's logged-on user: make sure it is known.
    hub.learn_who_is_logged_on().await;
    let result = wrote(
        &app,
        hub,
        &[Scope::Notes, Scope::Outbox],
        hub.approve_note(NoteId(id), sha256.as_deref(), route),
    )?;
    copy_for_paste(&app, result)
}

#[tauri::command]
pub async fn cosign_note(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
    route: Option<FilingRoute>,
) -> Res<ApprovalResult> {
    let hub = hub.get()?;
    hub.learn_who_is_logged_on().await;
    let result = wrote(
        &app,
        hub,
        &[Scope::Notes, Scope::Outbox],
        hub.cosign_note(NoteId(id), route),
    )?;
    copy_for_paste(&app, result)
}

#[tauri::command]
pub async fn copy_note_to_clipboard(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
) -> Res<String> {
    write_clipboard(&app, hub.get()?.note_clipboard_text(NoteId(id))?)
}

#[tauri::command]
pub async fn switch_note_to_clipboard(
    app: AppHandle,
    hub: State<'_, HubState>,
    id: i64,
) -> Res<String> {
    let hub = hub.get()?;
    let text = wrote(
        &app,
        hub,
        &[Scope::Notes, Scope::Outbox],
        hub.switch_note_to_clipboard(NoteId(id)),
    )?;
    write_clipboard(&app, text)
}

fn write_clipboard(app: &AppHandle, text: String) -> Res<String> {
    app.clipboard()
        .write_text(text.clone())
        .map_err(|e| UiError {
            code: "clipboard_unavailable",
            message: format!(
                "the text could not be put on the clipboard ({e}); nothing was marked as filed"
            ),
            field: None,
        })?;
    Ok(text)
}

/// Once the clinician has confirmed the paste, the note's text has no reason to stay on the
/// clipboard (where the next paste, into anything, would carry patient data): it is cleared,
/// the same way it was put there, unless the ward keeps it — and only if the clipboard still
/// holds exactly that text, so something the user copied since is never wiped. The paste is
/// already recorded, so a clipboard that cannot be read or cleared is logged, not an error.
fn clear_pasted_note(app: &AppHandle, hub: &Hub, id: NoteId) {
    let copied = match hub.clipboard_to_clear_after_paste(id) {
        Ok(Some(copied)) => copied,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not tell whether to clear the clipboard");
            return;
        }
    };
    let clipboard = app.clipboard();
    match clipboard.read_text() {
        Ok(now) if hub::clipboard_still_holds(&now, &copied) => {
            if let Err(e) = clipboard.clear() {
                tracing::warn!(error = %e, "could not clear the pasted note from the clipboard");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the clipboard to clear it"),
    }
}

fn copy_for_paste(app: &AppHandle, result: ApprovalResult) -> Res<ApprovalResult> {
    if let Some(text) = &result.clipboard_text {
        write_clipboard(app, text.clone())?;
    }
    Ok(result)
}

/// Every command the window may call.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        app_status,
        recheck_identity,
        set_current_user,
        board,
        ward_patients,
        handover,
        add_patient,
        add_task,
        edit_task,
        set_task_status,
        systmone_status,
        audit,
        create_note,
        create_correction,
        save_note,
        discard_note,
        preview_note,
        confirm_pasted,
        answer_paste_question,
        file_note_now,
        resolve_parked_note,
        list_notes,
        outbox,
        outbox_history,
        patient_outbox,
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
        search_patients,
        review_link,
        confirm_link,
        refresh_demographics,
        follow_systmone,
        approve_note,
        cosign_note,
        copy_note_to_clipboard,
        switch_note_to_clipboard,
    ]
}
