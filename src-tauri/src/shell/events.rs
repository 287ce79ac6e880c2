//! Events the backend sends the window, so views redraw when something changed rather than
//! each polling on a timer:
//!
//! - `hub:changed` `{scopes: [...]}`: data changed. A command that wrote names what it
//!   changed; a change made elsewhere (the background filing and task-sync loops, `hubctl`,
//!   another process) is noticed by one cheap check a second — every change writes an audit
//!   row, so the newest audit id moves — and is sent as `["all"]`.
//! - `hub:systmone`: the SystmOne status (connection state, queue, ETAs) whenever it differs
//!   from the last one sent.

use super::HubState;
use hub::Hub;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tauri::{AppHandle, Emitter, Manager};

pub const CHANGED: &str = "hub:changed";
pub const SYSTMONE: &str = "hub:systmone";

/// What changed, so each view redraws only for what it shows.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Tasks,
    Patients,
    Notes,
    Outbox,
    Templates,
    Settings,
    TaskSync,
    All,
}

#[derive(serde::Serialize, Clone)]
struct Changed<'a> {
    scopes: &'a [Scope],
}

/// The newest audit id the window has been told about.
#[derive(Default)]
pub struct ChangeWatch {
    seen: AtomicI64,
}

/// Tells the window what a command just changed (and marks the change as told, so the
/// watcher does not announce it a second time).
pub fn changed(app: &AppHandle, hub: &Hub, scopes: &[Scope]) {
    if let Ok(marker) = hub.change_marker() {
        app.state::<ChangeWatch>()
            .seen
            .fetch_max(marker, Ordering::SeqCst);
    }
    if let Err(e) = app.emit(CHANGED, Changed { scopes }) {
        tracing::warn!(error = %e, "could not tell the window about a change");
    }
}

/// Runs for the life of the window: announces changes made outside a command, and SystmOne
/// status changes.
pub async fn watch(app: AppHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = None;
    loop {
        let state = app.state::<HubState>();
        let Ok(hub) = state.get() else { return };
        let mut systmone = hub.systmone_client().map(|c| c.state());
        tokio::select! {
            _ = tick.tick() => {}
            // A connection change is shown at once, not at the next tick.
            Some(Ok(())) = async {
                match systmone.as_mut() {
                    Some(s) => Some(s.changed().await),
                    None => std::future::pending().await,
                }
            } => {}
        }
        if let Ok(marker) = hub.change_marker() {
            let told = app
                .state::<ChangeWatch>()
                .seen
                .fetch_max(marker, Ordering::SeqCst);
            if marker > told {
                if let Err(e) = app.emit(
                    CHANGED,
                    Changed {
                        scopes: &[Scope::All],
                    },
                ) {
                    tracing::warn!(error = %e, "could not tell the window about a change");
                }
            }
        }
        let status = serde_json::to_value(hub.systmone_status()).ok();
        if status.is_some() && status != last_status {
            if let Err(e) = app.emit(SYSTMONE, &status) {
                tracing::warn!(error = %e, "could not tell the window the SystmOne status");
            }
            last_status = status;
        }
    }
}
