//! The Tauri shell: the only code that imports Tauri. Each command is one call into
//! [`hub::Hub`] (`commands`); the backend tells the window when data or the SystmOne
//! connection changed (`events`), so views redraw on events instead of polling.
//!
//! Architecture Invariant: every command is `async`, so none runs on the GTK main thread, and
//! every error crosses to the window as one serializable [`UiError`] `{code, message, field}`.

mod commands;
mod events;
mod single_instance;

use hub::{Hub, HubError};
use serde::Serialize;
use std::path::Path;
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

/// Runs the window on the ward database in `data_dir` until it is closed. `open_hub` opens the
/// core; it runs only once this process is that database's one window, so a second launch
/// never opens the database (or SystmOne) at all: it brings the running window to the front
/// and exits.
pub fn run(
    data_dir: &Path,
    open_hub: impl FnOnce() -> Result<Hub, HubError> + Send + 'static,
    systmone: std::net::SocketAddr,
) -> Result<(), tauri::Error> {
    tauri::Builder::default()
        // First, so a second instance is found before any other plugin or the setup runs.
        .plugin(single_instance::plugin(data_dir))
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(events::ChangeWatch::default())
        .invoke_handler(commands::handler())
        // One line when the window's page has loaded (its HTML, styles and scripts have run):
        // IT can see the window came up, and scripts/measure-app.sh times start-up by it.
        .on_page_load(|_, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Finished {
                tracing::info!("window page loaded");
            }
        })
        .setup(move |app| {
            // The SystmOne client spawns its connection owner on the runtime Tauri also uses.
            // Setup runs on the main thread before the window's first command is handled, so
            // every command finds the state managed.
            let hub = open_hub().and_then(|mut hub| {
                tauri::async_runtime::block_on(async { hub.start_systmone(systmone).map(|()| hub) })
            });
            app.manage(HubState(hub.map_err(|e| (e.code(), e.to_string()))));
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
            // The database's integrity check, daily, on its own read-only connection (no longer
            // at every open: seconds on a ten-year store).
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<HubState>();
                if let Ok(hub) = state.get() {
                    hub.run_background_integrity_check().await;
                }
            });
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move { events::watch(handle).await });
            Ok(())
        })
        .run(tauri::generate_context!())
}
