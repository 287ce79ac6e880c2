//! The clipboard after a confirmed paste (issue 11): the app clears an approved note's text
//! from the clipboard once the clinician confirms the paste, only if the clipboard still
//! holds that text, unless the ward keeps it (`keep-clipboard-after-paste`, default off).
//! The window does the clearing (`shell::commands::clear_pasted_note`) with exactly these
//! two answers from the hub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::FilingRoute;
use hub::{
    clipboard_still_holds, DraftInput, Hub, PatientInput, RoleMap, SystmOneUserView, WardSetting,
};
use store::Store;

fn hub() -> Hub {
    Hub::from_store(
        Store::open_in_memory().unwrap(),
        std::path::PathBuf::from("/nonexistent"),
    )
    .with_role_map(RoleMap::built_in())
}

fn logged_on(hub: &Hub, name: &str, role: &str) {
    hub.assume_systmone_user_for_tests(Some(SystmOneUserView {
        name: name.into(),
        user_name: Some(name.to_lowercase().replace(' ', ".")),
        role: Some(role.into()),
    }));
}

/// A note approved by the clipboard route: its id and the text put on the clipboard.
fn approved_for_paste(hub: &Hub) -> (domain::NoteId, String) {
    let patient = hub
        .add_patient(&PatientInput {
            bed: "Bed 1".into(),
            name: "Pat One".into(),
            nhs_number: Some("9434765919".into()),
        })
        .unwrap();
    let id = hub
        .create_note(&DraftInput {
            patient_id: patient.id.0,
            text: Some("Comfortable overnight.\nObs stable.".into()),
            ..Default::default()
        })
        .unwrap()
        .id;
    let sha = hub.preview_note(id).unwrap().text_sha256;
    let approved = hub
        .approve_note(id, Some(&sha), Some(FilingRoute::Clipboard))
        .unwrap();
    (
        id,
        approved
            .clipboard_text
            .expect("the clipboard route copies the text"),
    )
}

#[test]
fn a_confirmed_paste_clears_the_notes_text_unless_the_ward_keeps_it() {
    let hub = hub();
    logged_on(&hub, "Nurse Reg", "Registered Nurse");
    let (id, copied) = approved_for_paste(&hub);
    hub.confirm_pasted(id).unwrap();
    // By default: the note's own text is the one to clear.
    assert_eq!(
        hub.clipboard_to_clear_after_paste(id).unwrap().as_deref(),
        Some(copied.as_str())
    );
    // The ward keeps the clipboard: nothing is cleared. Loosening needs a verified role
    // allowed to change ward settings; switching it back off (safer) does not.
    logged_on(&hub, "Ward Boss", "Ward Manager");
    hub.set_ward_setting(WardSetting::KeepClipboardAfterPaste, Some("yes"))
        .unwrap();
    assert_eq!(hub.clipboard_to_clear_after_paste(id).unwrap(), None);
    hub.assume_systmone_user_for_tests(None);
    hub.set_ward_setting(WardSetting::KeepClipboardAfterPaste, Some("no"))
        .unwrap();
    assert!(hub.clipboard_to_clear_after_paste(id).unwrap().is_some());
}

#[test]
fn keeping_the_clipboard_is_a_loosening_that_needs_a_verified_role() {
    let hub = hub();
    logged_on(&hub, "Sam Student", "Student Nurse");
    assert!(hub
        .set_ward_setting(WardSetting::KeepClipboardAfterPaste, Some("true"))
        .is_err());
    let view = hub.ward_settings().unwrap();
    let keep = view
        .iter()
        .find(|v| v.setting == WardSetting::KeepClipboardAfterPaste)
        .unwrap();
    assert_eq!(keep.value, None, "default off: the clipboard is cleared");
    assert_eq!(
        WardSetting::KeepClipboardAfterPaste.name(),
        "keep-clipboard-after-paste"
    );
}

#[test]
fn only_the_notes_own_text_is_cleared_never_something_copied_since() {
    let copied = "Comfortable overnight.\nObs stable.\nInpatient Hub ref IH-1";
    assert!(clipboard_still_holds(copied, copied));
    // The OS may hand text back with Windows line ends or a trailing line end.
    assert!(clipboard_still_holds(&copied.replace('\n', "\r\n"), copied));
    assert!(clipboard_still_holds(&format!("{copied}\n"), copied));
    // Anything else the user copied since is left alone.
    assert!(!clipboard_still_holds("a phone number", copied));
    assert!(!clipboard_still_holds("", copied));
    assert!(!clipboard_still_holds(&copied[..20], copied));
    assert!(!clipboard_still_holds(
        &format!("{copied} and more"),
        copied
    ));
    assert!(!clipboard_still_holds("", ""));
}
