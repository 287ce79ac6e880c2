//! The Tauri shell: the only code that imports Tauri. Each command is one call into
//! [`hub::Hub`] (`commands`); the backend tells the window when data or the SystmOne
//! connection changed (`events`), so views redraw on events instead of polling.
//!
//! Architecture Invariant: every command is `async`, so none runs on the GTK main thread, and
//! every error crosses to the window as one serializable [`UiError`] `{code, message, field}`.

mod commands;
mod events;

use hub::{Hub, HubError};
use serde::Serialize;
use tauri::Manager;

/// The error the window receives from every command.
#[derive(Debug, Serialize)]
pub struct UiError {
    /// Stable and machine-readable (`invalid_input`, `database_read_only`, ...).
    pub code: &'static str,
    /// For staff, in plain words.
    pub message: String,
    /// The snake_case name of the input field the error is about, so the window can put the
    /// message beside that field; `None` when it is about no one field.
    pub field: Option<&'static str>,
}

impl From<HubError> for UiError {
    fn from(e: HubError) -> Self {
        UiError {
            code: e.code(),
            field: e.field(),
            message: e.to_string(),
        }
    }
}

type Res<T> = Result<T, UiError>;

/// The core, or why it could not be opened. The window starts either way, so a damaged or
/// locked database is explained on screen rather than the app silently failing to open.
pub struct HubState(Result<Hub, (&'static str, String)>);

impl HubState {
    fn get(&self) -> Res<&Hub> {
        self.0.as_ref().map_err(|(code, message)| UiError {
            code,
            message: message.clone(),
            field: None,
        })
    }
}

/// Opens the core and runs the window until it is closed.
pub fn run(hub: Result<Hub, HubError>, systmone: std::net::SocketAddr) -> Result<(), tauri::Error> {
    // The SystmOne client spawns its connection owner on the runtime Tauri also uses.
    let hub = hub.and_then(|mut hub| {
        tauri::async_runtime::block_on(async { hub.start_systmone(systmone).map(|()| hub) })
    });
    let state = HubState(hub.map_err(|e| (e.code(), e.to_string())));
    tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(state)
        .manage(events::ChangeWatch::default())
        .invoke_handler(commands::handler())
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
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move { events::watch(handle).await });
            Ok(())
        })
        .run(tauri::generate_context!())
}
