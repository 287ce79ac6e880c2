//! The tauri shell: the only module that imports tauri. Each command is one call into
//! [`crate::hub::Hub`]; errors cross to the UI as one serializable `{code, message}`.

use crate::domain::TaskStatus;
use crate::hub::{AppStatus, Board, BoardFilter, HandoverPatient, Hub, HubError, PatientInput, TaskEditInput, TaskInput};
use crate::store::{AuditEntry, AuditQuery, Patient};
use serde::Serialize;
use std::path::PathBuf;
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

#[tauri::command]
fn app_status(hub: State<'_, Hub>) -> Res<AppStatus> {
    Ok(hub.status()?)
}

#[tauri::command]
fn set_current_user(hub: State<'_, Hub>, name: String) -> Res<String> {
    Ok(hub.set_current_user(&name)?.to_string())
}

#[tauri::command]
fn board(hub: State<'_, Hub>, filter: BoardFilter) -> Res<Board> {
    Ok(hub.board(&filter)?)
}

#[tauri::command]
fn handover(hub: State<'_, Hub>) -> Res<Vec<HandoverPatient>> {
    Ok(hub.handover()?)
}

#[tauri::command]
fn add_patient(hub: State<'_, Hub>, input: PatientInput) -> Res<Patient> {
    Ok(hub.add_patient(&input)?)
}

#[tauri::command]
fn add_task(hub: State<'_, Hub>, input: TaskInput) -> Res<crate::domain::Task> {
    Ok(hub.add_task(&input)?)
}

#[tauri::command]
fn edit_task(hub: State<'_, Hub>, id: i64, input: TaskEditInput) -> Res<crate::domain::Task> {
    Ok(hub.edit_task(id, &input)?)
}

#[tauri::command]
fn set_task_status(hub: State<'_, Hub>, id: i64, status: TaskStatus, version: Option<i64>) -> Res<crate::domain::Task> {
    Ok(hub.set_task_status(id, status, version)?)
}

#[tauri::command]
fn audit(hub: State<'_, Hub>, entity: Option<String>, entity_id: Option<String>) -> Res<Vec<AuditEntry>> {
    Ok(hub.audit(&AuditQuery { entity, entity_id, limit: Some(500) })?)
}

/// Options the app binary was started with.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub data_dir: PathBuf,
}

/// Opens the core and runs the window until it is closed.
pub fn run(hub: Hub) -> Result<(), tauri::Error> {
    tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(hub)
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
        ])
        .run(tauri::generate_context!())
}
