//! Patient lookup against the SystmOne simulator, through the hub as the window uses it:
//! search, review side by side, confirm the link (audited), follow the patient open in
//! SystmOne, fall back to the ward's own patients when SystmOne is away, and refuse a
//! simulator outside demo mode.

use hub::lookup::SearchInput;
use hub::{Hub, PatientInput, SearchSource};
use simulator::{SimConfig, SimControl, Simulator};
use store::AuditQuery;

/// The tests set and clear INPATIENT_HUB_API_KEY; this keeps them from interleaving.
static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn simulator() -> (simulator::SimHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SimConfig::new(dir.path().to_path_buf());
    config.port = 0;
    (Simulator::start(config).await.unwrap(), dir)
}

fn hub(data: &std::path::Path, demo: bool, addr: std::net::SocketAddr) -> Hub {
    std::env::remove_var("INPATIENT_HUB_API_KEY");
    let mut hub = Hub::open_with_key(
        data,
        &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        hub::DatabaseEnvironment::from_demo_flag(demo),
    )
    .unwrap();
    hub.set_current_user("Dr Lookup").unwrap();
    hub.start_systmone(addr).unwrap();
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_review_confirm_follow_and_fall_back() {
    let _env = ENV.lock().await;
    let (sim, _sim_dir) = simulator().await;
    let data = tempfile::tempdir().unwrap();
    let hub = hub(data.path(), true, sim.addr());

    // Two details with an apostrophe and a non-ASCII letter; names match by prefix.
    let found = hub
        .search_patients(&SearchInput {
            surname: Some("O'Bri".into()),
            first_name: Some("Siân".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(matches!(found.source, SearchSource::Systmone));
    let sian = found
        .results
        .iter()
        .find(|r| r.name.contains("O'Brien"))
        .expect("Siân O'Brien is found");
    assert_eq!(sian.nhs_number_formatted.as_deref(), Some("999 000 0018"));

    // One detail is refused before anything is sent; a future date of birth too.
    let err = hub
        .search_patients(&SearchInput {
            surname: Some("Smith".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_search");
    let err = hub
        .search_patients(&SearchInput {
            surname: Some("Smith".into()),
            date_of_birth: Some("2099-01-01".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");

    // Exact NHS number: demographics-only read, marked as an exact match.
    let exact = hub
        .search_patients(&SearchInput {
            nhs_number: Some("999 000 0018".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(exact.results[0].exact_nhs_match);

    // Review beside the ward patient, then confirm.
    let local = hub
        .add_patient(&PatientInput {
            bed: "Bed 4".into(),
            name: "Sian O'Brien".into(),
            nhs_number: None,
        })
        .unwrap();
    let review = hub.review_link(local.id, "9990000018").await.unwrap();
    let name = review.fields.iter().find(|f| f.label == "Name").unwrap();
    assert!(
        name.differs,
        "Sian vs Siân is highlighted for the clinician"
    );
    let linked = hub.confirm_link(local.id, "9990000018").await.unwrap();
    assert_eq!(
        linked.nhs_number.as_ref().map(|n| n.digits()).as_deref(),
        Some("9990000018")
    );
    assert!(linked.demographics_as_of.is_some());
    let audit = hub
        .audit(&AuditQuery {
            entity: Some("patient".into()),
            entity_id: Some(local.id.to_string()),
            limit: None,
        })
        .unwrap();
    assert_eq!(audit[0].action, "patient.linked");
    // Connected: the actor is SystmOne's logged-on user (the simulator's demo nurse), never
    // the label typed with set_current_user; the OS account rides along on the row.
    assert_eq!(audit[0].actor, "Mx Demo Staff-Nurse");
    assert_eq!(
        audit[0].systmone_user.as_deref(),
        Some("Mx Demo Staff-Nurse")
    );
    assert_eq!(audit[0].os_account, Some(hub::os_account().unwrap()));
    assert!(hub
        .board(&Default::default())
        .unwrap()
        .patients
        .iter()
        .any(|p| p.nhs_number.is_some()));

    // Follow: the clinician opens the patient in SystmOne; the hub shows them.
    SimControl::open(sim.data_dir())
        .unwrap()
        .open_patient("9990000018")
        .unwrap();
    let follow = hub.follow_systmone().await.unwrap();
    assert_eq!(follow.patient.map(|p| p.id), Some(local.id));

    // SystmOne goes away: the search degrades to the ward's own patients, with a banner.
    sim.shutdown().await;
    let fallback = hub
        .search_patients(&SearchInput {
            surname: Some("O'Brien".into()),
            first_name: Some("Sian".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(matches!(fallback.source, SearchSource::LocalCache));
    assert!(fallback.notice.unwrap().contains("already on this ward"));
    assert_eq!(fallback.results.len(), 1);
    assert_eq!(hub.patients().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_is_refused_outside_demo_mode() {
    let _env = ENV.lock().await;
    let (sim, _sim_dir) = simulator().await;
    let data = tempfile::tempdir().unwrap();
    // The simulator's APIKey, given explicitly as trust IT would give a real one.
    std::env::set_var("INPATIENT_HUB_API_KEY", simulator::DEFAULT_API_KEY);
    let mut hub = Hub::open_with_key(
        data.path(),
        &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        hub::DatabaseEnvironment::Live,
    )
    .unwrap();
    hub.set_current_user("Dr Lookup").unwrap();
    hub.start_systmone(sim.addr()).unwrap();
    std::env::remove_var("INPATIENT_HUB_API_KEY");
    let err = hub
        .search_patients(&SearchInput {
            nhs_number: Some("9990000018".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "simulator_not_in_demo_mode", "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_give_a_clear_outcome_never_a_crash_or_a_wrong_patient() {
    let _env = ENV.lock().await;
    let (sim, _sim_dir) = simulator().await;
    let data = tempfile::tempdir().unwrap();
    let hub = hub(data.path(), true, sim.addr());
    let local = hub
        .add_patient(&PatientInput {
            bed: "Bed 1".into(),
            name: "Zoe Smith-Jones".into(),
            nhs_number: None,
        })
        .unwrap();
    // Prove the connection (and the demo guard) before the faults start.
    hub.verified_client_probe().await.unwrap();
    let mut control = SimControl::open(sim.data_dir()).unwrap();

    // Every connection reset: reads are asked once more, then the ward's own patients are searched.
    control
        .set_faults("reset=1.0".parse().unwrap(), None)
        .unwrap();
    let outcome = hub
        .search_patients(&SearchInput {
            surname: Some("Smith-J".into()),
            first_name: Some("Zo".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        matches!(outcome.source, SearchSource::LocalCache),
        "{outcome:?}"
    );
    assert_eq!(outcome.results.len(), 1);

    // SystmOne asks to try again later: a clear, typed error; nothing is linked.
    control
        .set_faults("temporary=1.0".parse().unwrap(), None)
        .unwrap();
    let err = hub.review_link(local.id, "9990000026").await.unwrap_err();
    assert!(err.to_string().contains("try again"), "{err}");
    let err = hub.confirm_link(local.id, "9990000026").await.unwrap_err();
    assert!(err.to_string().contains("try again"), "{err}");
    assert!(
        hub.patients().unwrap()[0].nhs_number.is_none(),
        "nothing linked on a failed read"
    );

    // Garbage instead of an answer: refused as unreadable, never taken for a patient.
    control
        .set_faults("garbage=1.0".parse().unwrap(), None)
        .unwrap();
    let result = hub
        .search_patients(&SearchInput {
            nhs_number: Some("9990000026".into()),
            ..Default::default()
        })
        .await;
    match result {
        Ok(o) => assert!(matches!(o.source, SearchSource::LocalCache), "{o:?}"),
        Err(e) => assert_eq!(e.code(), "systmone_protocol_error", "{e}"),
    }

    // Faults off: the same lookup works and links.
    control.set_faults("".parse().unwrap(), None).unwrap();
    hub.review_link(local.id, "9990000026").await.unwrap();
    let linked = hub.confirm_link(local.id, "9990000026").await.unwrap();
    assert!(linked.nhs_number.is_some());
    assert_eq!(control.violation_count().unwrap(), 0);
    sim.shutdown().await;
}

/// Every read of patient data from SystmOne writes an audit row under the acting person:
/// search (the criteria, not the answer), lookup by NHS number, the review before linking,
/// a record read, and follow mode (once when the patient open in SystmOne changes, not at
/// every poll). The chain still verifies afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_reads_are_audited_under_the_acting_person() {
    let _env = ENV.lock().await;
    let (sim, _sim_dir) = simulator().await;
    let data = tempfile::tempdir().unwrap();
    let hub = hub(data.path(), true, sim.addr());
    let reads = |nhs: Option<&str>| {
        let entries = hub
            .audit(&AuditQuery {
                entity: Some("patient".into()),
                entity_id: nhs.map(str::to_owned),
                limit: None,
            })
            .unwrap();
        entries
            .into_iter()
            .filter(|e| e.action.starts_with("systmone."))
            .collect::<Vec<_>>()
    };

    hub.search_patients(&SearchInput {
        surname: Some("O'Bri".into()),
        first_name: Some("Siân".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let search = &reads(None)[0];
    assert_eq!(search.action, "systmone.search");
    assert_eq!(search.entity_id, None);
    assert_eq!(search.detail["criteria"]["surname"], "O'Bri");
    assert_eq!(search.detail["criteria"]["first_name"], "Siân");
    assert!(search.detail["nhs_numbers_shown"]
        .as_array()
        .unwrap()
        .contains(&"9990000018".into()));
    // What was asked, never what came back: the full name is not in the audit row.
    assert!(
        !search.detail.to_string().contains("O'Brien"),
        "{}",
        search.detail
    );
    let actor = hub.current_user().unwrap();
    assert_eq!(search.actor, actor.as_str());
    assert_eq!(search.os_account, Some(hub::os_account().unwrap()));

    // A refused search sends nothing and reads nothing: no row.
    let before = reads(None).len();
    assert!(hub
        .search_patients(&SearchInput {
            surname: Some("Smith".into()),
            ..Default::default()
        })
        .await
        .is_err());
    assert_eq!(reads(None).len(), before);

    hub.search_patients(&SearchInput {
        nhs_number: Some("999 000 0018".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let local = hub
        .add_patient(&PatientInput {
            bed: "Bed 4".into(),
            name: "Sian O'Brien".into(),
            nhs_number: None,
        })
        .unwrap();
    hub.review_link(local.id, "9990000018").await.unwrap();
    hub.patient_record("9990000018", &["Demographics".into()])
        .await
        .unwrap();
    let actions: Vec<String> = reads(Some("9990000018"))
        .iter()
        .rev()
        .map(|e| e.action.clone())
        .collect();
    assert_eq!(
        actions,
        ["systmone.lookup", "systmone.lookup", "systmone.record_read"]
    );
    let record_read = &reads(Some("9990000018"))[0];
    assert_eq!(record_read.detail["parts"][0], "Demographics");
    assert!(!record_read.detail.to_string().contains("Brien"));

    // Follow mode: polled, but audited once per change of patient.
    let control = || SimControl::open(sim.data_dir()).unwrap();
    control().open_patient("9990000018").unwrap();
    for _ in 0..3 {
        hub.follow_systmone().await.unwrap();
    }
    control().open_patient("9990000026").unwrap();
    hub.follow_systmone().await.unwrap();
    control().open_patient("9990000018").unwrap();
    hub.follow_systmone().await.unwrap();
    let follows = |nhs| {
        reads(Some(nhs))
            .iter()
            .filter(|e| e.action == "systmone.follow_read")
            .count()
    };
    assert_eq!(
        follows("9990000018"),
        2,
        "opened, polled 3 times, left, came back"
    );
    assert_eq!(follows("9990000026"), 1);

    assert!(hub.verify_audit_chain().unwrap().is_intact());
    assert_eq!(hub.status().unwrap().audit_warning, None);
    sim.shutdown().await;
}
