//! Tauri's build step, with the app's own commands declared: Tauri then generates an
//! `allow-<command>` permission for each, and the window may call a command only if
//! `capabilities/default.json` grants it (without this list every command would be allowed
//! whatever the capability says). The list must name exactly the commands in
//! `shell::commands::handler()`; `tests/least_privilege.rs` fails when they differ.

const APP_COMMANDS: &[&str] = &[
    "app_status",
    "recheck_identity",
    "set_current_user",
    "board",
    "ward_patients",
    "handover",
    "add_patient",
    "add_task",
    "edit_task",
    "set_task_status",
    "systmone_status",
    "audit",
    "create_note",
    "create_correction",
    "save_note",
    "discard_note",
    "preview_note",
    "confirm_pasted",
    "answer_paste_question",
    "file_note_now",
    "resolve_parked_note",
    "list_notes",
    "outbox",
    "outbox_history",
    "patient_outbox",
    "note_templates",
    "add_note_template",
    "update_note_template",
    "retire_note_template",
    "restore_note_template",
    "ward_settings",
    "set_ward_setting",
    "request_task_push",
    "dismiss_task_sync_notice",
    "task_sync_view",
    "search_patients",
    "review_link",
    "confirm_link",
    "refresh_demographics",
    "follow_systmone",
    "approve_note",
    "cosign_note",
    "copy_note_to_clipboard",
    "switch_note_to_clipboard",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(APP_COMMANDS)),
    )
    .unwrap_or_else(|e| panic!("tauri build step failed: {e:#}"));
}
