//! One window per ward database. Two windows on one database would show staff two boards that
//! drift apart and run two background filers and task syncs, so a second launch (a second
//! double-click) brings the running window to the front and exits, through Tauri's own
//! single-instance plugin.
//!
//! On Linux the plugin owns a D-Bus name on the user's session bus; the name here is made from
//! the database folder, so the ward's database and the demo one (or a test's throw-away one)
//! each get their own window while a second launch on the same folder is refused. Without a
//! session bus the plugin logs a warning and lets the app start (it cannot find other
//! instances). On Windows (a named mutex in the logon session) and macOS (a socket) the plugin
//! uses the app's identifier alone: one window per user.

use sha2::{Digest, Sha256};
use std::path::Path;
use tauri::{AppHandle, Manager, Runtime};

/// The window from tauri.conf.json.
const MAIN_WINDOW: &str = "main";

/// The plugin, to be registered before every other plugin.
pub fn plugin<R: Runtime>(data_dir: &Path) -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_single_instance::Builder::new()
        .dbus_id(dbus_id(data_dir))
        .callback(|app, _args, _cwd| bring_to_front(app))
        .build()
}

/// `uk.nhs.inpatienthub.db<first 16 hex digits of SHA-256 of the folder>`. The folder is
/// canonicalised when it exists, so `./ward` and `/home/nurse/ward` are one database; a
/// cryptographic hash (not std's hasher) because a debug and a release build, or two app
/// versions, must agree on the name.
fn dbus_id(data_dir: &Path) -> String {
    let folder = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = Sha256::digest(folder.as_os_str().as_encoded_bytes());
    // A D-Bus name element may not start with a digit: hence the "db" prefix.
    format!("uk.nhs.inpatienthub.db{}", hex::encode(&digest[..8]))
}

/// Called in the first instance when a second one starts: unminimise, show and focus the
/// window. Each step is best effort: the second launch has already been refused, and a window
/// manager that declines to raise a window is not an error staff can act on.
fn bring_to_front<R: Runtime>(app: &AppHandle<R>) {
    tracing::info!("a second launch was refused; bringing the running window to the front");
    let Some(window) = app.get_webview_window(MAIN_WINDOW) else {
        tracing::warn!("a second launch was refused but the main window is gone");
        return;
    };
    for (step, result) in [
        ("unminimize", window.unminimize()),
        ("show", window.show()),
        ("focus", window.set_focus()),
    ] {
        if let Err(e) = result {
            tracing::warn!("could not {step} the running window: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dbus_id_is_a_valid_name_and_the_same_for_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let id = dbus_id(dir.path());
        assert_eq!(id, dbus_id(dir.path()));
        assert_eq!(id.len(), "uk.nhs.inpatienthub.db".len() + 16);
        // D-Bus well-known names: elements of [A-Za-z0-9_-], none starting with a digit.
        for element in id.split('.') {
            assert!(!element.is_empty(), "{id}");
            assert!(!element.starts_with(|c: char| c.is_ascii_digit()), "{id}");
            assert!(
                element
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{id}"
            );
        }
    }

    #[test]
    fn different_folders_get_different_ids_and_two_spellings_of_one_folder_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let demo = dir.path().join("demo");
        std::fs::create_dir_all(&demo).unwrap();
        assert_ne!(dbus_id(dir.path()), dbus_id(&demo));
        assert_eq!(dbus_id(dir.path()), dbus_id(&demo.join("..")));
    }
}
