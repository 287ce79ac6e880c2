//! Who acts and what their role allows, through the façade as the window and hubctl use it:
//! role escalation refused, every audit row attributed (OS account + SystmOne user), the offline
//! policy (approval by clipboard only, co-signature waits for a verified role), and the demo
//! organisation's users mapping through the built-in role map.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::{FilingRoute, NoteStatus};
use hub::{
    os_account, DraftInput, Hub, PatientInput, Permission, Profile, RoleLookup, RoleMap,
    SystmOneUserView, WardSetting,
};
use store::{AuditQuery, SettingKey, Store};

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

fn offline(hub: &Hub) {
    hub.assume_systmone_user_for_tests(None);
}

/// A patient with an NHS number (so the API route can queue) and a draft note about them.
fn draft(hub: &Hub) -> domain::NoteId {
    let patient = hub
        .add_patient(&PatientInput {
            bed: "Bed 1".into(),
            name: "Pat One".into(),
            nhs_number: Some("9434765919".into()),
        })
        .unwrap();
    hub.create_note(&DraftInput {
        patient_id: patient.id.0,
        text: Some("Comfortable overnight.".into()),
        ..Default::default()
    })
    .unwrap()
    .id
}

fn sha(hub: &Hub, id: domain::NoteId) -> String {
    hub.preview_note(id).unwrap().text_sha256
}

#[test]
fn a_student_cannot_cosign_their_own_note_whatever_they_type() {
    let hub = hub();
    logged_on(&hub, "Sam Student", "Student Nurse");
    hub.set_ward_setting(WardSetting::RequireCosignature, Some("true"))
        .unwrap();
    // What a student might type to escalate: a label, and the retired role setting.
    hub.set_current_user("Registered Nurse").unwrap();
    hub.store()
        .set_setting(
            "Sam Student",
            SettingKey::CurrentUserRole,
            Some("Registered Nurse"),
        )
        .unwrap();
    let id = draft(&hub);
    let approved = hub
        .approve_note(id, Some(&sha(&hub, id)), Some(FilingRoute::Api))
        .unwrap();
    assert_eq!(approved.note.status, NoteStatus::AwaitingCosignature);
    assert_eq!(approved.note.approved_by.as_deref(), Some("Sam Student"));
    let err = hub.cosign_note(id, Some(FilingRoute::Api)).unwrap_err();
    assert_eq!(err.code(), "not_permitted");
    assert!(err.to_string().contains("'Student Nurse'"), "{err}");
    // Nor can they loosen the ward's rule.
    assert_eq!(
        hub.set_ward_setting(WardSetting::RequireCosignature, Some("false"))
            .unwrap_err()
            .code(),
        "not_permitted"
    );
    // A registered nurse logged on to SystmOne can.
    logged_on(&hub, "Jo Nurse", "Staff Nurse");
    let cosigned = hub.cosign_note(id, Some(FilingRoute::Api)).unwrap();
    assert_eq!(cosigned.note.status, NoteStatus::Approved);
    assert_eq!(cosigned.note.cosigned_by.as_deref(), Some("Jo Nurse"));
    assert!(cosigned.outbox.is_some());
}

#[test]
fn an_unmapped_role_gets_least_privilege_with_a_message_naming_it() {
    let hub = hub();
    logged_on(&hub, "Alex Porter", "Hospital Porter");
    let id = draft(&hub);
    let err = hub
        .approve_note(id, Some(&sha(&hub, id)), Some(FilingRoute::Api))
        .unwrap_err();
    assert_eq!(err.code(), "not_permitted");
    assert!(err.to_string().contains("'Hospital Porter'"), "{err}");
    assert!(err.to_string().contains("role map"), "{err}");
    let err = hub.require(Permission::ConfirmDischarge).unwrap_err();
    assert!(err.to_string().contains("'Hospital Porter'"), "{err}");
    let identity = hub.identity().unwrap();
    assert!(
        identity.summary.contains("Hospital Porter"),
        "{}",
        identity.summary
    );
}

#[test]
fn every_audit_row_carries_the_os_account_and_when_connected_the_systmone_user() {
    let hub = hub();
    let os = os_account().unwrap();
    offline(&hub);
    hub.add_patient(&PatientInput {
        bed: "Bed 1".into(),
        name: "Pat One".into(),
        nhs_number: None,
    })
    .unwrap();
    logged_on(&hub, "Jo Nurse", "Staff Nurse");
    hub.add_patient(&PatientInput {
        bed: "Bed 2".into(),
        name: "Pat Two".into(),
        nhs_number: None,
    })
    .unwrap();
    // A label typed in Settings is not who acts.
    hub.set_current_user("Someone Else").unwrap();
    let rows = hub.audit(&AuditQuery::default()).unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.os_account.as_deref(), Some(os.as_str()), "{row:?}");
    }
    // Newest first: the label, the connected add, the offline add.
    assert_eq!(rows[0].actor, "Jo Nurse");
    assert_eq!(rows[1].actor, "Jo Nurse");
    assert_eq!(rows[1].systmone_user.as_deref(), Some("Jo Nurse"));
    assert_eq!(rows[2].actor, os);
    assert_eq!(rows[2].systmone_user, None);
}

#[test]
fn offline_an_approval_goes_only_by_clipboard_and_cosignature_waits_for_a_verified_role() {
    let hub = hub();
    offline(&hub);
    // Tightening a ward setting is open to anyone identified.
    hub.set_ward_setting(WardSetting::RequireCosignature, Some("true"))
        .unwrap();
    let id = draft(&hub);
    let err = hub
        .approve_note(id, Some(&sha(&hub, id)), Some(FilingRoute::Api))
        .unwrap_err();
    assert_eq!(err.code(), "not_permitted");
    assert!(err.to_string().contains("clipboard"), "{err}");
    assert_eq!(hub.outbox(true).unwrap().len(), 0);
    // The default route for an unverified approver is the clipboard; the role is unknown,
    // so the ward's rule holds it for a verified co-signature.
    let approved = hub.approve_note(id, Some(&sha(&hub, id)), None).unwrap();
    assert_eq!(approved.note.status, NoteStatus::AwaitingCosignature);
    assert_eq!(approved.note.approved_role, Some(domain::Role::Unknown));
    let err = hub.cosign_note(id, None).unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
    // A verified registered clinician co-signs; only then may the API file it.
    logged_on(&hub, "Dr Reg", "Specialty Registrar");
    let cosigned = hub.cosign_note(id, Some(FilingRoute::Api)).unwrap();
    assert_eq!(cosigned.note.status, NoteStatus::Approved);
    assert!(cosigned.outbox.is_some());
}

#[test]
fn nothing_is_written_when_the_os_account_cannot_be_determined() {
    let mut hub = hub();
    hub.assume_os_account_for_tests(None);
    logged_on(&hub, "Dr Reg", "Consultant");
    let err = hub
        .add_patient(&PatientInput {
            bed: "Bed 1".into(),
            name: "Pat One".into(),
            nhs_number: None,
        })
        .unwrap_err();
    assert_eq!(err.code(), "unattributed");
    assert!(hub.audit(&AuditQuery::default()).unwrap().is_empty());
    assert!(hub.status().unwrap().current_user.is_none());
}

#[test]
fn the_demo_organisations_users_map_through_the_built_in_role_map() {
    let map = RoleMap::built_in();
    let org = simulator::data::organisation();
    let profiles: Vec<(String, RoleLookup)> = org
        .users
        .iter()
        .map(|u| (u.role.clone(), map.lookup(&u.role)))
        .collect();
    for (role, lookup) in &profiles {
        assert!(
            matches!(lookup, RoleLookup::Mapped(_)),
            "the demo role '{role}' is not mapped"
        );
    }
    for wanted in [
        Profile::Senior,
        Profile::Registered,
        Profile::Student,
        Profile::Hca,
    ] {
        assert!(
            profiles
                .iter()
                .any(|(_, l)| *l == RoleLookup::Mapped(wanted)),
            "no demo user is {}",
            wanted.name()
        );
    }
}
