//! The tauri shell: the only module that imports tauri. Each command is one call into
//! [`crate::hub::Hub`]; errors cross to the UI as one serializable `{code, message}`.

use crate::domain::TaskStatus;
use crate::domain::PatientId;
use crate::hub::{FollowView, SearchOutcome, SystmOneStatus};
use crate::lookup::{MatchReview, SearchInput};
use crate::hub::{AppStatus, Board, BoardFilter, HandoverPatient, Hub, HubError, PatientInput, TaskEditInput, TaskInput};
use crate::store::{AuditEntry, AuditQuery, Patient};
use serde::Serialize;
use tauri::State;

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
        ])
        .run(tauri::generate_context!())
}
