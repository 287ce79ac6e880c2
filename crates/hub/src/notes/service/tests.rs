use super::*;
use domain::{BedLabel, NhsNumber, PatientName};
use store::{AuditQuery, NewPatient};

fn setup() -> (Store, PatientId, StaffName) {
    let mut store = Store::open_in_memory().unwrap();
    let p = store
        .add_patient(
            "Nurse A",
            &NewPatient {
                bed: BedLabel::parse("Bed 1").unwrap(),
                name: PatientName::parse("Pat One").unwrap(),
                nhs_number: Some(NhsNumber::parse("9434765919").unwrap()),
            },
        )
        .unwrap();
    (store, p.id, StaffName::parse("Nurse A").unwrap())
}

#[test]
fn from_template_to_preview_to_approval() {
    let (mut store, pid, actor) = setup();
    let ward_round = list_templates(&store, false)
        .unwrap()
        .into_iter()
        .find(|t| t.name == "Ward round")
        .unwrap();
    let note = create_draft(
        &mut store,
        &actor,
        pid,
        DraftSource::Template(ward_round.id),
    )
    .unwrap();
    assert_eq!(note.template.as_deref(), Some("Ward round"));
    let note = save_draft(
        &mut store,
        &actor,
        note.id,
        &format!("{}\nPlan: continue", note.body.expose()),
        Some(note.version),
    )
    .unwrap();
    let p = preview(&mut store, note.id).unwrap();
    assert_eq!(
        p.lines.last().unwrap(),
        &render::reference_line(&note.reference)
    );
    assert_eq!(p.text, p.lines.join("\n"));
    let approved = approve(
        &mut store,
        &actor,
        Role::Registered,
        note.id,
        Some(&p.text_sha256),
        FilingRoute::Api,
    )
    .unwrap();
    assert_eq!(
        approved.note.text_sha256.as_deref(),
        Some(p.text_sha256.as_str())
    );
    assert!(approved.clipboard_text.is_none());
    assert_eq!(approved.outbox.unwrap().state, OutboxState::Queued);
    // The preview of an approved note is the frozen text.
    assert_eq!(
        preview(&mut store, note.id).unwrap().text_sha256,
        p.text_sha256
    );
    let audit: Vec<String> = store
        .audit_entries(&AuditQuery {
            entity: Some("note".into()),
            entity_id: Some(note.id.to_string()),
            limit: None,
        })
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(audit, ["note.approved", "note.draft_saved", "note.created"]);
}

#[test]
fn bad_text_is_refused_clearly() {
    let (mut store, pid, actor) = setup();
    let empty = create_draft(&mut store, &actor, pid, DraftSource::Text("  \n ")).unwrap_err();
    assert_eq!(empty.code(), "invalid_input");
    let long = create_draft(
        &mut store,
        &actor,
        pid,
        DraftSource::Text(&"x".repeat(20_001)),
    )
    .unwrap_err();
    assert!(
        long.to_string()
            .contains("20001 characters; the limit is 20000"),
        "{long}"
    );
    let ctrl = create_draft(&mut store, &actor, pid, DraftSource::Text("a\u{7}")).unwrap_err();
    assert!(ctrl.to_string().contains("control characters"), "{ctrl}");
    assert!(list_notes(&store, &NoteFilter::default())
        .unwrap()
        .is_empty());
}

#[test]
fn the_ward_cosignature_rule_uses_the_role_given() {
    let (mut store, pid, _) = setup();
    store
        .set_setting("Sister K", SettingKey::RequireCosignature, Some("true"))
        .unwrap();
    let hca = StaffName::parse("HCA Harris").unwrap();
    let role = Role::Hca;
    let note = create_draft(
        &mut store,
        &hca,
        pid,
        DraftSource::Text("Escorted to garden."),
    )
    .unwrap();
    let r = approve(&mut store, &hca, role, note.id, None, FilingRoute::Api).unwrap();
    assert_eq!(r.note.status, NoteStatus::AwaitingCosignature);
    assert!(r.outbox.is_none());
    let err = file_now(&mut store, &hca, note.id).unwrap_err();
    assert_eq!(err.code(), "conflict");
    let nurse = StaffName::parse("Nurse A").unwrap();
    let r = cosign(
        &mut store,
        &nurse,
        Role::Registered,
        note.id,
        FilingRoute::Api,
    )
    .unwrap();
    assert_eq!(r.outbox.unwrap().state, OutboxState::Queued);
}

#[test]
fn clipboard_path_then_the_api_returns_and_the_clinician_is_asked() {
    let (mut store, pid, actor) = setup();
    store
        .set_setting("Sister K", SettingKey::SystmOneApiDisabled, Some("true"))
        .unwrap();
    let route = route_from_settings(&store).unwrap();
    assert_eq!(route, FilingRoute::Clipboard);
    let a = create_draft(&mut store, &actor, pid, DraftSource::Text("Pasted one.")).unwrap();
    let b = create_draft(&mut store, &actor, pid, DraftSource::Text("Not pasted.")).unwrap();
    let ra = approve(&mut store, &actor, Role::Registered, a.id, None, route).unwrap();
    let text = ra.clipboard_text.unwrap();
    assert_eq!(
        text,
        preview(&mut store, a.id).unwrap().text,
        "the clipboard holds exactly the filed lines"
    );
    approve(&mut store, &actor, Role::Registered, b.id, None, route).unwrap();
    confirm_pasted(&mut store, &actor, a.id).unwrap();
    assert_eq!(store.note(a.id).unwrap().status, NoteStatus::Filed);
    let asked = api_available_again(&mut store, "Inpatient Hub").unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].state, OutboxState::PasteUnconfirmed);
    assert!(outbox_entries(&store, false)
        .unwrap()
        .iter()
        .all(|v| v.entry.note_id != a.id));
    let e = answer_paste_question(&mut store, &actor, b.id, false).unwrap();
    assert_eq!(e.state, OutboxState::Queued);
    let audit = store
        .audit_entries(&AuditQuery {
            entity: Some("outbox".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "outbox.filed_manually" && a.actor == "Nurse A"));
}

#[test]
fn the_queue_shows_state_attempts_and_a_paced_eta() {
    let (mut store, pid, actor) = setup();
    for i in 0..3 {
        let n = create_draft(
            &mut store,
            &actor,
            pid,
            DraftSource::Text(&format!("Note {i}")),
        )
        .unwrap();
        approve(
            &mut store,
            &actor,
            Role::Registered,
            n.id,
            None,
            FilingRoute::Api,
        )
        .unwrap();
    }
    let views = outbox_entries(&store, false).unwrap();
    assert_eq!(views.len(), 3);
    let etas: Vec<_> = views.iter().map(|v| v.eta.unwrap()).collect();
    assert!(
        etas.windows(2)
            .all(|w| (w[1] - w[0]).num_milliseconds() == 1000),
        "{etas:?}"
    );
    assert_eq!(views[0].state_kind, "queued");
    assert_eq!(views[0].entry.attempts, 0);
    let json = serde_json::to_value(&views[0]).unwrap();
    assert_eq!(json["state"]["state"], "queued");
}

#[test]
fn parked_entries_are_resolved_by_staff_and_templates_can_be_retired() {
    let (mut store, pid, actor) = setup();
    let n = create_draft(&mut store, &actor, pid, DraftSource::Text("Note")).unwrap();
    let entry = approve(
        &mut store,
        &actor,
        Role::Registered,
        n.id,
        None,
        FilingRoute::Api,
    )
    .unwrap()
    .outbox
    .unwrap();
    let policy = Policy::default();
    let claim = store
        .claim_next_outbox_entry("w#1", chrono::Duration::seconds(60), &policy)
        .unwrap()
        .unwrap();
    let reply = Event::Reply {
        worker: claim.token,
        outcome: super::super::outbox_machine::SendOutcome::Permanent("bad".into()),
    };
    store
        .apply_outbox_event("w", entry.id, &reply, &policy)
        .unwrap();
    let e = resolve_parked(&mut store, &actor, n.id, ParkedResolution::NotInRecord).unwrap();
    assert_eq!(e.state, OutboxState::Queued);
    assert!(resolve_parked(&mut store, &actor, n.id, ParkedResolution::FoundInRecord).is_err());

    let t = add_template(
        &mut store,
        &actor,
        "Seclusion review",
        "Seclusion review\nOutcome:",
    )
    .unwrap();
    let t = update_template(
        &mut store,
        &actor,
        t.id,
        Some(t.version),
        Some("Seclusion review (2h)"),
        None,
    )
    .unwrap();
    retire_template(&mut store, &actor, t.id).unwrap();
    let err = create_draft(&mut store, &actor, pid, DraftSource::Template(t.id)).unwrap_err();
    assert!(err.to_string().contains("retired"), "{err}");
    restore_template(&mut store, &actor, t.id).unwrap();
    let n = create_draft(
        &mut store,
        &actor,
        pid,
        DraftSource::TemplateNamed("seclusion REVIEW (2h)"),
    )
    .unwrap();
    assert_eq!(n.template.as_deref(), Some("Seclusion review (2h)"));
    let err = create_draft(
        &mut store,
        &actor,
        pid,
        DraftSource::TemplateNamed("No such"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "conflict");
}
