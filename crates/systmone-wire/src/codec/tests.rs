use super::*;
use chrono::NaiveDate;
use domain::NhsNumber;

fn nhs() -> NhsNumber {
    NhsNumber::parse("9434765919").unwrap()
}

fn request(params: RequestParams) -> Request {
    Request {
        api_key: "f31e26725b5491f2".into(),
        device_id: Some("392752167bd7f69b".into()),
        device_version: "Inpatient Hub 1.0".into(),
        request_uid: "c0ffee".into(),
        function_version: "1.0".into(),
        output_scheme: None,
        params,
    }
}

fn response(function: Function, body: ResponseBody) -> Response {
    Response {
        device_id: Some("392752167bd7f69b".into()),
        request_uid: "c0ffee".into(),
        function,
        function_version: "1.0".into(),
        response_uid: "beef".into(),
        body,
    }
}

#[test]
fn request_envelope_is_written_in_the_spec_order_with_a_declaration() {
    let mut r = request(RequestParams::GetFunctions);
    r.device_id = None;
    r.output_scheme = Some(OutputScheme {
        drugs: Some(DrugScheme::Dmd),
        codes: Some(CodeScheme::Snomed),
    });
    let xml = encode_request(&r).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ClientIntegrationRequest>"),
        "{xml}"
    );
    let order = [
        "<APIKey>",
        "<DeviceID/>",
        "<DeviceVersion>",
        "<RequestUID>",
        "<Function>",
        "<FunctionVersion>",
        "<OutputScheme>",
        "<FunctionParameters",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|t| {
            xml.find(t)
                .unwrap_or_else(|| panic!("{t} missing in {xml}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
    assert!(!xml.ends_with('\n'), "the transport appends the newline");
    assert_eq!(decode_request(xml.as_bytes()).unwrap(), r);
}

#[test]
fn decodes_a_response_to_get_patient_record_with_unknown_elements() {
    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<ClientIntegrationResponse>
  <DeviceID>392752167bd7f69b</DeviceID>
  <RequestUID>c0ffee</RequestUID>
  <Function>GetPatientRecord</Function>
  <FunctionVersion>1.0</FunctionVersion>
  <ResponseUID>abc</ResponseUID>
  <SomethingNew>ignored</SomethingNew>
  <Response>
    <Identity><NHSNumber>9434765919</NHSNumber><StrategicReportingIdentifier>123</StrategicReportingIdentifier></Identity>
    <Demographics>
      <Title>Mrs</Title><FirstName>Jane</FirstName><Surname>Smith</Surname>
      <DateOfBirth>1950-03-04</DateOfBirth><Sex>F</Sex>
      <Address><HouseNumber>12</HouseNumber><Road>High St</Road><Town>Leeds</Town><Postcode>LS1 1AA</Postcode></Address>
      <MobileTelephone>07700 900000</MobileTelephone>
      <NewField><Deep/></NewField>
    </Demographics>
    <Clinical>
      <Event DateTime="2026-11-25T09:30:00" UserName="drwho" DoneBy="Dr Who" EventUID="00112233445566aa" Extra="x">
        <Narrative><Line>Seen on ward round &amp; reviewed.</Line><Line>  Plan: &lt;none&gt;</Line></Narrative>
        <ClinicalCode><Code Scheme="CTV3" Code="XaXXX" Term="Something"/><FreeText>ft</FreeText><ProblemUID>p1</ProblemUID></ClinicalCode>
        <Attachment><FileName>a.pdf</FileName><DocumentUID>d1</DocumentUID><Comments>c</Comments></Attachment>
      </Event>
    </Clinical>
    <NonClinical>
      <Task><TaskUID>aa00bb11cc22dd33</TaskUID><DateTime>2026-11-25T10:00:00</DateTime><TaskType>Clinical Review Required</TaskType><Status>Not Started</Status><Content>Check bloods</Content><Due>2026-11-26</Due><GroupNameAssigned>Ward 7</GroupNameAssigned></Task>
    </NonClinical>
    <RecordState>Closed</RecordState>
  </Response>
</ClientIntegrationResponse>"#;
    let r = decode_response(xml.as_bytes()).unwrap();
    assert_eq!(r.function, Function::GetPatientRecord);
    let ResponseBody::GetPatientRecord(rec) = &r.body else {
        panic!("wrong body")
    };
    let identity = rec.identity.as_ref().unwrap();
    assert_eq!(identity.nhs_number(), Some(&nhs()));
    assert_eq!(
        identity
            .strategic_reporting_identifier
            .as_ref()
            .unwrap()
            .expose(),
        "123"
    );
    let d = rec.demographics.as_ref().unwrap();
    assert_eq!(d.first_name.as_deref(), Some("Jane"));
    assert_eq!(d.date_of_birth, NaiveDate::from_ymd_opt(1950, 3, 4));
    assert_eq!(d.sex, Some(Sex::Female));
    assert_eq!(
        d.address.as_ref().unwrap().postcode.as_deref(),
        Some("LS1 1AA")
    );
    assert_eq!(
        d.telephones,
        vec![Telephone {
            kind: TelephoneKind::Mobile,
            number: "07700 900000".into()
        }]
    );
    let e = &rec.events[0];
    assert_eq!(e.event_uid.as_deref(), Some("00112233445566aa"));
    assert_eq!(
        e.narrative_lines().collect::<Vec<_>>(),
        vec!["Seen on ward round & reviewed.", "  Plan: <none>"]
    );
    assert_eq!(e.clinical_codes[0].code.as_ref().unwrap().code, "XaXXX");
    assert_eq!(e.attachments[0].document_uid.as_deref(), Some("d1"));
    assert_eq!(rec.tasks[0].status.as_deref(), Some("Not Started"));
    // A date-only Due reads as midnight.
    assert_eq!(
        rec.tasks[0].due,
        NaiveDate::from_ymd_opt(2026, 11, 26).and_then(|d| d.and_hms_opt(0, 0, 0))
    );
    // Unknown elements are kept, not dropped.
    let d_other: Vec<&str> = d.other.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(d_other, ["NewField"]);
    assert_eq!(d.other[0].children[0].name, "Deep");
    assert_eq!(rec.record_state, Some(RecordState::Closed));
    // Round trip through our own encoder.
    assert_eq!(
        decode_response(encode_response(&r).unwrap().as_bytes()).unwrap(),
        r
    );
}

#[test]
fn error_response_is_recognised_for_any_function() {
    let xml = "<ClientIntegrationResponse><DeviceID/><RequestUID>1</RequestUID><Function>PatientSearch</Function><FunctionVersion>1.0</FunctionVersion><ResponseUID>2</ResponseUID><Response><ErrorMessage>At least two search parameters must be specified</ErrorMessage><PermanentError>true</PermanentError></Response></ClientIntegrationResponse>";
    let r = decode_response(xml.as_bytes()).unwrap();
    assert_eq!(r.device_id, None);
    assert_eq!(
        r.body,
        ResponseBody::Error {
            message: "At least two search parameters must be specified".into(),
            permanent: true
        }
    );
}

#[test]
fn typed_errors_for_wrong_root_unknown_function_doctype_and_size() {
    let req = encode_request(&request(RequestParams::GetFunctions)).unwrap();
    assert!(matches!(
        decode_response(req.as_bytes()),
        Err(CodecError::WrongRoot { .. })
    ));
    let unknown = "<ClientIntegrationResponse><Function>Teleport</Function><Response/></ClientIntegrationResponse>";
    assert!(
        matches!(decode_response(unknown.as_bytes()), Err(CodecError::UnknownFunction(f)) if f == "Teleport")
    );
    let missing = "<ClientIntegrationResponse><Response/></ClientIntegrationResponse>";
    assert!(matches!(
        decode_response(missing.as_bytes()),
        Err(CodecError::MissingElement(_))
    ));
    let doctype = "<!DOCTYPE ClientIntegrationResponse><ClientIntegrationResponse/>";
    assert_eq!(
        decode_response(doctype.as_bytes()),
        Err(CodecError::DoctypeRefused)
    );
    let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    assert!(matches!(
        decode_response(&huge),
        Err(CodecError::TooLarge { .. })
    ));
}

#[test]
fn invalid_nhs_number_in_a_response_stays_decodable_but_cannot_be_sent() {
    let xml = "<ClientIntegrationResponse><Function>GetCurrentActivity</Function><Response><Identity><NHSNumber>9434765918</NHSNumber></Identity><Activity>Clinical</Activity></Response></ClientIntegrationResponse>";
    let r = decode_response(xml.as_bytes()).unwrap();
    let ResponseBody::GetCurrentActivity(a) = r.body else {
        panic!()
    };
    let identity = a.identity.unwrap();
    assert!(matches!(
        identity.id,
        PatientIdentifier::UncheckedNhsNumber(_)
    ));
    let update = request(RequestParams::UpdatePatientRecord(
        UpdatePatientRecordParams::new(identity),
    ));
    assert!(matches!(
        encode_request(&update),
        Err(CodecError::InvalidValue { .. })
    ));
}

#[test]
fn throttle_exemption_follows_the_spec() {
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let id = Some(Identity::nhs(nhs()));
    assert!(GetPatientRecordParams::demographics_only(id.clone()).is_throttle_exempt(today));
    assert!(GetPatientRecordParams::entered_on(
        id.clone(),
        today,
        [FilterFlag::Narrative, FilterFlag::Tasks]
    )
    .is_throttle_exempt(today));
    let yesterday = today.pred_opt().unwrap();
    assert!(
        !GetPatientRecordParams::entered_on(id.clone(), yesterday, [FilterFlag::Narrative])
            .is_throttle_exempt(today)
    );
    assert!(!GetPatientRecordParams {
        identity: id.clone(),
        ..Default::default()
    }
    .is_throttle_exempt(today));
    let mut demographics_and_more = GetPatientRecordParams::demographics_only(id.clone());
    demographics_and_more
        .filter
        .as_mut()
        .unwrap()
        .flags
        .insert(FilterFlag::Tasks);
    assert!(!demographics_and_more.is_throttle_exempt(today));
    let mut demographics_with_dates = GetPatientRecordParams::demographics_only(id);
    demographics_with_dates
        .filter
        .as_mut()
        .unwrap()
        .min_effective_date = Some(yesterday);
    assert!(!demographics_with_dates.is_throttle_exempt(today));
}

#[test]
fn debug_output_never_shows_patient_data() {
    let mut record = PatientRecord {
        identity: Some(Identity::nhs(nhs())),
        demographics: Some(Demographics {
            first_name: Some("Jane".into()),
            surname: Some("Smithson".into()),
            date_of_birth: NaiveDate::from_ymd_opt(1950, 3, 4),
            address: Some(Address {
                road: Some("Acacia Avenue".into()),
                postcode: Some("LS1 1AA".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    record.events.push(Event::narrative(
        "Confused overnight, daughter Priscilla visited",
    ));
    record.tasks.push(Task::create(
        "Clinical Review Required",
        "Review Priscilla's concerns",
        TaskAssignee::Group("Ward 7".into()),
        None,
    ));
    let search = PatientSearchParams {
        first_name: Some("Jane".into()),
        surname: Some("Smithson".into()),
        ..Default::default()
    };
    let printed = format!(
        "{:?} {:?} {:?}",
        response(
            Function::GetPatientRecord,
            ResponseBody::GetPatientRecord(record)
        ),
        request(RequestParams::PatientSearch(search)),
        Identity::pseudo("999123")
    );
    for secret in [
        "Jane",
        "Smithson",
        "1950",
        "Acacia",
        "LS1",
        "Priscilla",
        "943",
        "4765919",
        "999123",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked: {printed}");
    }
}

#[test]
fn update_request_with_narrative_task_create_and_update_round_trips() {
    let nasty = "<b>bold</b> & \"quoted\" 'single' – naïve café ✓ ]]> &amp;";
    let long_line = "x".repeat(20_000);
    let params = UpdatePatientRecordParams::new(Identity::nhs(nhs()))
        .with_event(Event::narrative(&format!("{nasty}\n{long_line}")))
        .with_event(Event::coded(
            Code::new("CTV3", "XaJ9A"),
            Some("fever".into()),
        ))
        .with_event(Event::attachment(
            "C:\\Users\\ward\\Discharge <draft>.pdf",
            Some("summary".into()),
        ))
        .with_task(Task::create(
            "Clinical Review Required",
            "Bloods & obs",
            TaskAssignee::User("drwho".into()),
            NaiveDate::from_ymd_opt(2026, 11, 27).and_then(|d| d.and_hms_opt(10, 30, 0)),
        ))
        .with_task(Task {
            status: Some("Completed".into()),
            ..Task::update("aa00bb11cc22dd33")
        });
    let r = request(RequestParams::UpdatePatientRecord(params));
    let xml = encode_request(&r).unwrap();
    assert!(xml.contains("<NhsNumber>9434765919</NhsNumber>"));
    assert!(xml.contains("&lt;b&gt;bold&lt;/b&gt; &amp;"));
    let back = decode_request(xml.as_bytes()).unwrap();
    assert_eq!(back, r);
    let RequestParams::UpdatePatientRecord(p) = &back.params else {
        panic!()
    };
    assert_eq!(
        p.events[0].narrative_text(),
        format!("{nasty}\n{long_line}")
    );
    // The task update carries only the UID and the changed status.
    let update_xml = xml.split("<Task>").nth(2).unwrap();
    assert!(
        update_xml.contains("<TaskUID>aa00bb11cc22dd33</TaskUID>")
            && update_xml.contains("<Status>Completed</Status>")
    );
    assert!(!update_xml.contains("<Content>"));
}

#[test]
fn delete_requires_a_reason() {
    let mut params = DeletePatientRecordParams::new(Identity::nhs(nhs()), "  ");
    params.event_uids.push("00112233445566aa".into());
    assert!(matches!(
        encode_request(&request(RequestParams::DeletePatientRecord(params.clone()))),
        Err(CodecError::InvalidValue { .. })
    ));
    params.reason = "Filed against the wrong patient".into();
    let r = request(RequestParams::DeletePatientRecord(params));
    assert_eq!(
        decode_request(encode_request(&r).unwrap().as_bytes()).unwrap(),
        r
    );
}

#[test]
fn reads_nhs_number_in_either_spelling() {
    for name in ["NhsNumber", "NHSNumber"] {
        let xml = format!("<ClientIntegrationRequest><APIKey>k</APIKey><DeviceID></DeviceID><RequestUID>u</RequestUID><Function>GetPatientRecord</Function><FunctionParameters><Identity><{name}>943 476 5919</{name}></Identity><LeaveRecordOpen/><Filter><MinEntryDate>2026-11-25</MinEntryDate><Demographics/><Tasks/><Bogus/><ClinicalCode>XaJ9A</ClinicalCode></Filter></FunctionParameters></ClientIntegrationRequest>");
        let r = decode_request(xml.as_bytes()).unwrap();
        assert_eq!(r.device_id, None);
        let RequestParams::GetPatientRecord(p) = r.params else {
            panic!()
        };
        assert_eq!(p.identity.unwrap().nhs_number(), Some(&nhs()));
        assert!(p.leave_record_open);
        let f = p.filter.unwrap();
        assert_eq!(
            f.flags.iter().copied().collect::<Vec<_>>(),
            vec![FilterFlag::Demographics, FilterFlag::Tasks]
        );
        assert_eq!(f.clinical_codes, vec!["XaJ9A".to_string()]);
    }
}

#[test]
fn header_lets_the_simulator_answer_a_request_with_bad_parameters() {
    let xml = "<ClientIntegrationRequest><APIKey>k</APIKey><DeviceID/><DeviceVersion>X 1</DeviceVersion><RequestUID>r1</RequestUID><Function>UpdatePatientRecord</Function><FunctionVersion>1.0</FunctionVersion><FunctionParameters/></ClientIntegrationRequest>";
    assert!(matches!(
        decode_request(xml.as_bytes()),
        Err(CodecError::MissingElement(_))
    ));
    let header = decode_request_header(xml.as_bytes()).unwrap();
    assert_eq!(header.device_id, None);
    let answer = header
        .error_response(None, "No patient specified", true)
        .unwrap();
    assert_eq!(answer.request_uid, "r1");
    assert_eq!(answer.function, Function::UpdatePatientRecord);
    let unknown = RequestHeader {
        function_name: "Teleport".into(),
        ..header
    };
    assert!(unknown.error_response(None, "x", true).is_none());
}

#[test]
fn decode_document_dispatches_on_the_root() {
    let req = encode_request(&request(RequestParams::GetCurrentActivity)).unwrap();
    assert!(matches!(
        decode_document(req.as_bytes()),
        Ok(Document::Request(_))
    ));
    let resp = encode_response(&response(
        Function::IsPatientRetrieved,
        ResponseBody::IsPatientRetrieved(false),
    ))
    .unwrap();
    let doc = decode_document(resp.as_bytes()).unwrap();
    assert!(matches!(doc, Document::Response(_)));
    assert!(doc
        .to_json()
        .unwrap()
        .contains("\"IsPatientRetrieved\": false"));
    assert!(matches!(
        decode_document(b"<Other/>"),
        Err(CodecError::WrongRoot { .. })
    ));
}

#[test]
fn json_view_has_the_decoded_values() {
    let r = response(
        Function::IsPatientRetrieved,
        ResponseBody::IsPatientRetrieved(true),
    );
    let json = r.to_json().unwrap();
    assert!(json.contains("\"IsPatientRetrieved\": true"), "{json}");
}

// ---------------------------------------------------------------------------------------
// Fixtures: documents shaped like captured SystmOne traffic.

const FIXTURES: [(&str, &str); 9] = [
    (
        "get_patient_record_capture_shape",
        include_str!("fixtures/get_patient_record_capture_shape.xml"),
    ),
    (
        "get_patient_record_response",
        include_str!("fixtures/get_patient_record_response.xml"),
    ),
    (
        "update_patient_record_request",
        include_str!("fixtures/update_patient_record_request.xml"),
    ),
    (
        "update_patient_record_response",
        include_str!("fixtures/update_patient_record_response.xml"),
    ),
    (
        "error_response",
        include_str!("fixtures/error_response.xml"),
    ),
    (
        "get_functions_response",
        include_str!("fixtures/get_functions_response.xml"),
    ),
    (
        "get_organisation_metadata_response",
        include_str!("fixtures/get_organisation_metadata_response.xml"),
    ),
    (
        "get_current_activity_response",
        include_str!("fixtures/get_current_activity_response.xml"),
    ),
    (
        "patient_search_response",
        include_str!("fixtures/patient_search_response.xml"),
    ),
];

fn fixture(name: &str) -> &'static str {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, x)| *x)
        .unwrap()
}

#[test]
fn fixture_patient_record_decodes_every_part() {
    let r = decode_response(fixture("get_patient_record_response").as_bytes()).unwrap();
    let ResponseBody::GetPatientRecord(rec) = r.body else {
        panic!("wrong body")
    };
    let d = rec.demographics.unwrap();
    assert_eq!(d.marital_status.as_deref(), Some("Married"));
    assert_eq!(d.ethnicity.as_deref(), Some("White British"));
    assert_eq!(d.main_language.as_deref(), Some("English"));
    assert_eq!(
        d.address.unwrap().house_name.as_deref(),
        Some("Rose Cottage")
    );
    assert_eq!(d.telephones.len(), 2);
    assert_eq!(d.care_start_date, NaiveDate::from_ymd_opt(2001, 1, 1));
    assert_eq!(d.registration_type.as_deref(), Some("Regular"));
    assert_eq!(rec.events.len(), 2);
    let first = &rec.events[0];
    assert_eq!(first.done_at.as_deref(), Some("Ward 7"));
    assert_eq!(
        first.narrative_lines().nth(1).unwrap(),
        "Plan: <b>continue IV abx</b> — review 48h"
    );
    assert_eq!(first.clinical_codes[1].value.as_deref(), Some("128"));
    let second = &rec.events[1];
    assert_eq!(
        second.medications[0]
            .drug
            .as_ref()
            .unwrap()
            .scheme
            .as_deref(),
        Some("Dmd")
    );
    assert_eq!(
        second.attachments[0].file_name.as_deref(),
        Some("ECG 24-11.pdf")
    );
    assert_eq!(second.letters[0].direction.as_deref(), Some("Incoming"));
    assert_eq!(
        rec.appointments[0].appointment_uid.as_deref(),
        Some("00000000000a0a01")
    );
    assert_eq!(
        rec.tasks[0].group_name_assigned.as_deref(),
        Some("Ward 7 Doctors")
    );
}

/// The shapes seen in a real SystmOne capture and in the public XSD (fictitious data).
#[test]
fn fixture_capture_shaped_record_decodes_every_real_shape() {
    let r = decode_response(fixture("get_patient_record_capture_shape").as_bytes()).unwrap();
    let ResponseBody::GetPatientRecord(rec) = &r.body else {
        panic!("wrong body")
    };
    let d = rec.demographics.as_ref().unwrap();
    assert_eq!(d.date_of_death, NaiveDate::from_ymd_opt(2026, 1, 2));
    assert!(d.is_deceased());
    assert_eq!(d.care_end_date, NaiveDate::from_ymd_opt(2025, 3, 4));
    assert_eq!(d.english_speaker.as_deref(), Some("Yes"));
    assert_eq!(d.sms_consent.as_deref(), Some("No"));
    assert_eq!(d.marital_status.as_deref(), Some("Widowed"));
    assert!(d.telephones.contains(&Telephone {
        kind: TelephoneKind::Alternate,
        number: "07700 900456".into()
    }));
    assert_eq!(d.other.len(), 1);
    assert_eq!(d.other[0].name, "PreferredPharmacy");
    assert_eq!(d.other[0].text, "Fictional Pharmacy Ltd");

    let [bp, gord, ward] = &rec.events[..] else {
        panic!("three events")
    };
    // DoneBy keeps SystmOne's trailing space.
    assert_eq!(bp.done_by.as_deref(), Some("TESTER, Ann (Administrator) "));
    assert_eq!(
        bp.narrative_text(),
        "H: Raised blood pressure (XM02V) D: Hypertension"
    );
    let hypertension = &bp.clinical_codes[0];
    assert_eq!(hypertension.episodicity.as_deref(), Some("New"));
    assert_eq!(
        hypertension.problem_severity.as_deref(),
        Some("Major Episode")
    );
    assert!(!hypertension.is_ended_problem());
    assert_eq!(hypertension.linked_problem_uids, ["0000000000f00001"]);

    // The leading space of a padded line is kept exactly.
    assert_eq!(
        gord.narrative_lines().collect::<Vec<_>>(),
        [" D: Gastro-oesophageal reflux disease (X3003)"]
    );
    let reflux = &gord.clinical_codes[0];
    assert_eq!(
        reflux.problem_end_date,
        NaiveDate::from_ymd_opt(2018, 6, 30)
    );
    assert!(
        reflux.is_ended_problem(),
        "an ended problem must not look active"
    );
    let m = &gord.medications[0];
    assert_eq!(m.medication_type.as_deref(), Some("NHS medication"));
    let drug = m.drug.as_ref().unwrap();
    assert_eq!(
        drug.name.as_deref(),
        Some("Omeprazole 20mg dispersible gastro-resistant tablets")
    );
    assert_eq!(drug.product_id.as_deref(), Some("2007553"));
    assert_eq!(drug.scheme.as_deref(), Some("Multilex"));
    assert_eq!(m.dose.as_deref(), Some("ONE daily"));
    assert_eq!(m.quantity.as_deref(), Some("28 tablet"));
    assert_eq!(m.start_date, NaiveDate::from_ymd_opt(2016, 3, 2));
    assert_eq!(m.end_date, NaiveDate::from_ymd_opt(2018, 6, 30));
    assert_eq!(m.end_reason.as_deref(), Some("Course completed"));

    // Several Narratives per event, one of them empty; lines of all of them, in order.
    assert_eq!(ward.narratives.len(), 3);
    assert!(ward.narratives[2].lines.is_empty());
    assert_eq!(
        ward.narrative_lines().collect::<Vec<_>>(),
        [
            " Seen on ward round. Comfortable. Inpatient Hub ref IH-0123456789ab",
            "Second narrative of the same event."
        ]
    );
    assert_eq!(ward.attachments[0].file_size.as_deref(), Some("48213"));
    assert_eq!(ward.other[0].name, "Reminder");
    assert_eq!(ward.other[0].children[1].text, "High");

    let a = &rec.appointments[0];
    assert_eq!(a.duration.as_deref(), Some("15"));
    assert_eq!(a.clinician.as_deref(), Some("Dr Fictional"));
    assert_eq!(a.site.as_deref(), Some("Fictional Surgery"));
    assert_eq!(a.clinic_type.as_deref(), Some("Routine"));
    assert_eq!(a.comments.as_deref(), Some("Bring medication"));
    assert_eq!(a.flags, ["Wheelchair", "Interpreter"]);

    let t = &rec.tasks[0];
    assert_eq!(
        t.date_time,
        NaiveDate::from_ymd_opt(2015, 9, 24).and_then(|d| d.and_hms_opt(18, 17, 1))
    );
    assert_eq!(
        t.content.as_deref(),
        Some("Thu 24 Sep 18:17 - TESTER, Ann\nPlease review blood pressure readings\n")
    );
    assert_eq!((t.due, t.user_name_assigned.as_ref()), (None, None));

    // `hubctl decode` shows what the models do not: the JSON carries the other bags.
    let json = r.to_json().unwrap();
    assert!(json.contains("PreferredPharmacy") && json.contains("Check potassium"));
    // And re-encoding keeps them.
    let again = decode_response(encode_response(&r).unwrap().as_bytes()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn a_narrative_without_lines_is_empty_and_bare_text_is_one_line() {
    let xml = "<ClientIntegrationResponse><Function>GetPatientRecord</Function><Response><Clinical><Event><Narrative/><Narrative>  </Narrative><Narrative>bare text</Narrative></Event></Clinical></Response></ClientIntegrationResponse>";
    let r = decode_response(xml.as_bytes()).unwrap();
    let ResponseBody::GetPatientRecord(rec) = r.body else {
        panic!()
    };
    let e = &rec.events[0];
    assert_eq!(e.narratives.len(), 3);
    assert!(e.narratives[0].lines.is_empty() && e.narratives[1].lines.is_empty());
    assert_eq!(e.narrative_lines().collect::<Vec<_>>(), ["bare text"]);
}

#[test]
fn task_due_is_a_date_time_and_a_bare_date_reads_as_midnight() {
    let at = |h, m| NaiveDate::from_ymd_opt(2026, 12, 5).and_then(|d| d.and_hms_opt(h, m, 0));
    let task = Task::create(
        "Clinical Review Required",
        "Review lithium level",
        TaskAssignee::User("drbaker".into()),
        at(10, 0),
    );
    let r = request(RequestParams::UpdatePatientRecord(
        UpdatePatientRecordParams::new(Identity::nhs(nhs())).with_task(task),
    ));
    let xml = encode_request(&r).unwrap();
    assert!(xml.contains("<Due>2026-12-05T10:00:00</Due>"), "{xml}");
    assert_eq!(decode_request(xml.as_bytes()).unwrap(), r);
    let bare = xml.replace("2026-12-05T10:00:00", "2026-12-05");
    let RequestParams::UpdatePatientRecord(p) = decode_request(bare.as_bytes()).unwrap().params
    else {
        panic!()
    };
    assert_eq!(p.tasks[0].due, at(0, 0));
}

#[test]
fn old_medication_shape_is_still_read_and_written_in_the_real_shape() {
    let xml = "<ClientIntegrationResponse><Function>GetPatientRecord</Function><Response><Clinical><Event><Medication><Drug Scheme=\"Dmd\" Code=\"39732411000001106\" Term=\"Amoxicillin 500mg capsules\"/><Dosage>One three times a day</Dosage><Quantity>21 capsule</Quantity></Medication></Event></Clinical></Response></ClientIntegrationResponse>";
    let r = decode_response(xml.as_bytes()).unwrap();
    let ResponseBody::GetPatientRecord(rec) = &r.body else {
        panic!()
    };
    let m = &rec.events[0].medications[0];
    let drug = m.drug.as_ref().unwrap();
    assert_eq!(drug.name.as_deref(), Some("Amoxicillin 500mg capsules"));
    assert_eq!(drug.product_id.as_deref(), Some("39732411000001106"));
    assert_eq!(m.dose.as_deref(), Some("One three times a day"));
    let written = encode_response(&r).unwrap();
    assert!(written.contains("Name=\"Amoxicillin 500mg capsules\" ProductID=\"39732411000001106\""));
    assert!(written.contains("<Dose>") && !written.contains("<Dosage>"));
}

#[test]
fn update_response_uids_are_found_wherever_they_sit() {
    let xml = "<ClientIntegrationResponse><Function>UpdatePatientRecord</Function><Response><Identity><NHSNumber>9434765919</NHSNumber></Identity><Clinical><Event EventUID=\"00000000000a0001\"><EventUID>00000000000a0001</EventUID></Event></Clinical><Created><Item><TaskUID> 00000000000c0009 </TaskUID></Item></Created><EventUID>00000000000a0002</EventUID><RecordState>Closed</RecordState></Response></ClientIntegrationResponse>";
    let r = decode_response(xml.as_bytes()).unwrap();
    let ResponseBody::UpdatePatientRecord(u) = r.body else {
        panic!()
    };
    assert_eq!(u.event_uids, ["00000000000a0001", "00000000000a0002"]);
    assert_eq!(u.task_uids, ["00000000000c0009"]);
    assert_eq!(u.record_state, Some(RecordState::Closed));
    // Markup where a UID should be is refused, not read as an empty UID.
    let nested = "<ClientIntegrationResponse><Function>UpdatePatientRecord</Function><Response><EventUID><Value>1</Value></EventUID></Response></ClientIntegrationResponse>";
    assert!(matches!(
        decode_response(nested.as_bytes()),
        Err(CodecError::InvalidValue { element, .. }) if element == "EventUID"
    ));
}

#[test]
fn responses_in_an_unexpected_encoding_are_decoded_or_refused_clearly() {
    let body = |decl: &str, name: &[u8]| {
        [
            decl.as_bytes(),
            b"<ClientIntegrationResponse><Function>PatientSearch</Function><Response><Result><FirstName>",
            name,
            b"</FirstName></Result></Response></ClientIntegrationResponse>",
        ]
        .concat()
    };
    let first_name = |bytes: &[u8]| match decode_response(bytes).map(|r| r.body) {
        Ok(ResponseBody::PatientSearch(s)) => Ok(s.results[0].first_name.clone().unwrap()),
        Ok(_) => panic!("wrong body"),
        Err(e) => Err(e),
    };
    // Windows-1252 declared: transcoded.
    let cp1252 = body(
        "<?xml version=\"1.0\" encoding=\"windows-1252\"?>",
        b"Ren\xe9e",
    );
    assert_eq!(first_name(&cp1252).unwrap(), "Renée");
    // The same bytes with no declaration (or a UTF-8 one): refused, naming the byte.
    for decl in ["", "<?xml version=\"1.0\" encoding=\"utf-8\"?>"] {
        let err = first_name(&body(decl, b"Ren\xe9e")).unwrap_err();
        assert!(matches!(err, CodecError::Encoding(_)), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }
    // An encoding we do not read: refused by name.
    let err = first_name(&body(
        "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>",
        b"A",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("shift_jis"), "{err}");
    // UTF-8 passes untouched.
    assert_eq!(first_name(&body("", "Renée".as_bytes())).unwrap(), "Renée");
}

#[test]
fn fixture_update_request_and_response() {
    let req = decode_request(fixture("update_patient_record_request").as_bytes()).unwrap();
    assert_eq!(req.function(), Function::UpdatePatientRecord);
    let RequestParams::UpdatePatientRecord(p) = &req.params else {
        panic!()
    };
    assert_eq!(p.events[0].narrative_lines().count(), 2);
    assert_eq!(p.tasks[0].user_name_assigned.as_deref(), Some("drwho"));
    assert_eq!(p.tasks[1].status.as_deref(), Some("Completed"));
    assert_eq!(p.tasks[1].content, None);
    // Our encoder writes the same document TPP's template shape describes.
    assert_eq!(
        encode_request(&req).unwrap(),
        fixture("update_patient_record_request").trim_end()
    );

    let resp = decode_response(fixture("update_patient_record_response").as_bytes()).unwrap();
    let ResponseBody::UpdatePatientRecord(u) = resp.body else {
        panic!()
    };
    assert_eq!(u.event_uids, vec!["00000000000a1b2e".to_string()]);
    assert_eq!(u.task_uids, vec!["00000000000c0002".to_string()]);
    assert_eq!(u.record_state, Some(RecordState::Closed));
}

#[test]
fn fixture_small_responses() {
    let e = decode_response(fixture("error_response").as_bytes()).unwrap();
    assert!(matches!(
        e.body,
        ResponseBody::Error {
            permanent: false,
            ..
        }
    ));
    let f = decode_response(fixture("get_functions_response").as_bytes()).unwrap();
    let ResponseBody::GetFunctions(f) = f.body else {
        panic!()
    };
    assert!(
        f.supports(Function::UpdatePatientRecord) && !f.supports(Function::DeletePatientRecord)
    );
    assert_eq!(f.functions[3].function, "SomeFutureFunction");
    let o = decode_response(fixture("get_organisation_metadata_response").as_bytes()).unwrap();
    let ResponseBody::GetOrganisationMetaData(o) = o.body else {
        panic!()
    };
    assert!(o.sites[0].current_site && o.sites[0].primary_site);
    let me = o.current_user().unwrap();
    assert_eq!(me.user_name.as_deref(), Some("drwho"));
    assert_eq!(me.teams, vec!["Acute Medicine".to_string()]);
    let a = decode_response(fixture("get_current_activity_response").as_bytes()).unwrap();
    let ResponseBody::GetCurrentActivity(a) = a.body else {
        panic!()
    };
    assert_eq!(
        a.identity.unwrap().nhs_number().unwrap().digits(),
        "9990000018"
    );
    assert_eq!(a.activities.len(), 2);
    let s = decode_response(fixture("patient_search_response").as_bytes()).unwrap();
    let ResponseBody::PatientSearch(s) = s.body else {
        panic!()
    };
    assert_eq!(s.results.len(), 2);
    assert!(matches!(
        s.results[1].identity.as_ref().unwrap().id,
        PatientIdentifier::PseudoNumber(_)
    ));
}

#[test]
fn every_fixture_is_one_frame_and_round_trips() {
    for (name, xml) in FIXTURES {
        let with_newline = format!("{xml}\n");
        assert_eq!(
            crate::framing::find_frame(with_newline.as_bytes()).unwrap(),
            Some(0..xml.trim_end().len()),
            "{name}"
        );
        fuzz_decode(xml.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// Property tests

mod props {
    use super::super::*;
    use super::FIXTURES;
    use chrono::{NaiveDate, NaiveDateTime};
    use domain::NhsNumber;
    use proptest::option::of;
    use proptest::prelude::*;

    /// Text a clinician might type, including markup, quotes, entities, non-ASCII and
    /// line breaks (free-text fields keep it exactly).
    fn text() -> BoxedStrategy<String> {
        let strategy = {
            prop_oneof![
                "[ -~]{0,20}",
                "[a-zA-Z0-9 <>&\"'\\]\\[;/=\n\r\t£€éü✓—]{0,30}",
                Just("<script>alert('x')</script> &amp; ]]>".to_string()),
            ]
        };
        strategy.boxed()
    }

    /// Identifiers and codes are trimmed when read, so generate them trimmed.
    fn token() -> BoxedStrategy<String> {
        let strategy = { "[0-9a-zA-Z.]{1,16}" };
        strategy.boxed()
    }

    fn date() -> BoxedStrategy<NaiveDate> {
        let strategy = {
            (1900i32..2100, 1u32..=12, 1u32..=28)
                .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
        };
        strategy.boxed()
    }

    fn date_time() -> BoxedStrategy<NaiveDateTime> {
        let strategy = {
            (date(), 0u32..24, 0u32..60, 0u32..60)
                .prop_map(|(d, h, m, s)| d.and_hms_opt(h, m, s).unwrap())
        };
        strategy.boxed()
    }

    fn identity() -> BoxedStrategy<Identity> {
        let strategy = {
            prop_oneof![
                proptest::array::uniform9(0u8..10)
                    .prop_filter_map("no check digit", NhsNumber::from_nine_digits)
                    .prop_map(Identity::nhs),
                token().prop_map(Identity::pseudo),
                token().prop_map(Identity::client_id),
            ]
        };
        strategy.boxed()
    }

    fn response_identity() -> BoxedStrategy<Identity> {
        let strategy = {
            (identity(), of("[0-9]{1,9}")).prop_map(|(mut i, sri)| {
                i.strategic_reporting_identifier = sri.map(domain::Sensitive::new);
                i
            })
        };
        strategy.boxed()
    }

    fn code() -> BoxedStrategy<Code> {
        let strategy = {
            (of(token()), token(), of(text())).prop_map(|(scheme, code, term)| Code {
                scheme,
                code,
                term,
            })
        };
        strategy.boxed()
    }

    fn drug() -> BoxedStrategy<Drug> {
        let strategy = {
            (of(text()), of(token()), of(token()), of(token())).prop_map(
                |(name, product_id, scheme, pack_id)| Drug {
                    name,
                    product_id,
                    scheme,
                    pack_id,
                },
            )
        };
        strategy.boxed()
    }

    /// Unknown elements with names no model knows: leaves, attributes and small trees.
    fn others() -> BoxedStrategy<Vec<OtherElement>> {
        let strategy = {
            let leaf = (
                prop::sample::select(vec!["Reminder", "Recall", "Vaccination", "Zz"]),
                prop::collection::vec(("[a-z]{1,6}", text()), 0..2),
                text(),
            )
                .prop_map(|(name, attributes, text)| {
                    let mut attributes = attributes;
                    attributes.sort();
                    attributes.dedup_by(|a, b| a.0 == b.0);
                    OtherElement {
                        name: name.to_string(),
                        attributes,
                        text,
                        children: Vec::new(),
                    }
                });
            prop::collection::vec(
                (
                    leaf.clone(),
                    prop::collection::vec(leaf, 0..2),
                    any::<bool>(),
                )
                    .prop_map(|(mut top, children, tree)| {
                        if tree && !children.is_empty() {
                            top.text = top.text.trim().to_string();
                            top.children = children;
                        }
                        top
                    }),
                0..2,
            )
        };
        strategy.boxed()
    }

    fn event() -> BoxedStrategy<Event> {
        let strategy = {
            let attrs = (
                of(date_time()),
                of(text()),
                of(text()),
                of(text()),
                of(text()),
                of(token()),
            );
            let codes = prop::collection::vec(
                (
                    (of(code()), of(text()), of(text()), of(token())),
                    (of(token()), of(text()), of(token()), of(date())),
                    prop::collection::vec(token(), 0..2),
                    others(),
                )
                    .prop_map(
                        |(
                            (code, free_text, value, problem_uid),
                            (episodicity, units, problem_severity, problem_end_date),
                            linked_problem_uids,
                            other,
                        )| ClinicalCodeEntry {
                            code,
                            episodicity,
                            value,
                            units,
                            problem_severity,
                            problem_end_date,
                            free_text,
                            problem_uid,
                            linked_problem_uids,
                            other,
                        },
                    ),
                0..3,
            );
            let meds = prop::collection::vec(
                (
                    (of(text()), of(drug()), of(text()), of(text())),
                    (of(date()), of(date()), of(text()), any::<bool>()),
                    prop::collection::vec(token(), 0..2),
                    others(),
                )
                    .prop_map(
                        |(
                            (medication_type, drug, dose, quantity),
                            (start_date, end_date, end_reason, repeat_issue),
                            linked_problem_uids,
                            other,
                        )| Medication {
                            medication_type,
                            drug,
                            dose,
                            quantity,
                            start_date,
                            end_date,
                            end_reason,
                            repeat_issue,
                            linked_problem_uids,
                            other,
                        },
                    ),
                0..2,
            );
            let attachments = prop::collection::vec(
                (
                    (of(text()), of(text()), of(token()), of(token())),
                    (of(text()), of(text())),
                    others(),
                )
                    .prop_map(
                        |(
                            (document_path, file_name, document_uid, file_size),
                            (url, comments),
                            other,
                        )| {
                            Attachment {
                                document_path,
                                file_name,
                                document_uid,
                                file_size,
                                url,
                                comments,
                                other,
                                ..Default::default()
                            }
                        },
                    ),
                0..2,
            );
            let letters = prop::collection::vec(
                (
                    of(text()),
                    of(token()),
                    of(token()),
                    of(date()),
                    of(text()),
                    of(token()),
                )
                    .prop_map(
                        |(
                            document_path,
                            letter_type,
                            direction,
                            date_sent_received,
                            recipient_name,
                            document_uid,
                        )| Letter {
                            document_path,
                            letter_type,
                            direction,
                            date_sent_received,
                            recipient_name,
                            document_uid,
                            ..Default::default()
                        },
                    ),
                0..2,
            );
            (
                attrs,
                prop::collection::vec(
                    prop::collection::vec(text(), 0..4).prop_map(Narrative::new),
                    0..3,
                ),
                codes,
                meds,
                attachments,
                letters,
                others(),
            )
                .prop_map(
                    |(
                        (date_time, user_name, done_by, done_at, software, event_uid),
                        narratives,
                        clinical_codes,
                        medications,
                        attachments,
                        letters,
                        other,
                    )| {
                        Event {
                            date_time,
                            user_name,
                            done_by,
                            done_at,
                            software,
                            event_uid,
                            narratives,
                            clinical_codes,
                            medications,
                            attachments,
                            letters,
                            other,
                        }
                    },
                )
        };
        strategy.boxed()
    }

    fn task() -> BoxedStrategy<Task> {
        let strategy = {
            (
                of(token()),
                of(date_time()),
                of(text()),
                of(text()),
                of(date_time()),
                of(text()),
                of(text()),
                of(text()),
                of(text()),
            )
                .prop_map(
                    |(task_uid, date_time, task_type, status, due, content, user, group, team)| {
                        Task {
                            task_uid,
                            date_time,
                            task_type,
                            status,
                            due,
                            content,
                            user_name_assigned: user,
                            group_name_assigned: group,
                            team_name_assigned: team,
                            other: Vec::new(),
                        }
                    },
                )
        };
        strategy.boxed()
    }

    fn sex() -> BoxedStrategy<Sex> {
        let strategy = {
            prop_oneof![
                Just(Sex::Male),
                Just(Sex::Female),
                Just(Sex::Indeterminate),
                Just(Sex::Unknown)
            ]
        };
        strategy.boxed()
    }

    fn address() -> BoxedStrategy<Address> {
        let strategy = {
            (
                of(text()),
                of(text()),
                of(text()),
                of(text()),
                of(text()),
                of(text()),
                of(text()),
            )
                .prop_map(
                    |(house_name, house_number, road, locality, town, county, postcode)| Address {
                        house_name,
                        house_number,
                        road,
                        locality,
                        town,
                        county,
                        postcode,
                    },
                )
        };
        strategy.boxed()
    }

    fn demographics() -> BoxedStrategy<Demographics> {
        let strategy = {
            let names = (of(text()), of(text()), of(text()), of(text()), of(text()));
            let telephones = prop::collection::vec(
                (
                    prop_oneof![
                        Just(TelephoneKind::Home),
                        Just(TelephoneKind::Mobile),
                        Just(TelephoneKind::Work),
                        Just(TelephoneKind::Other)
                    ],
                    "[0-9]([0-9 ]{0,8}[0-9])?",
                )
                    .prop_map(|(kind, number)| Telephone { kind, number }),
                0..3,
            );
            let rest = (
                of(date()),
                of(sex()),
                of(token()),
                of(address()),
                telephones,
                of(text()),
                of(date()),
            );
            (names, rest).prop_map(
                |(
                    (title, first_name, middle_names, surname, known_as),
                    (
                        date_of_birth,
                        sex,
                        ethnicity,
                        address,
                        telephones,
                        email_address,
                        care_start_date,
                    ),
                )| Demographics {
                    title,
                    first_name,
                    middle_names,
                    surname,
                    known_as,
                    date_of_birth,
                    sex,
                    ethnicity,
                    address,
                    telephones,
                    email_address,
                    care_start_date,
                    ..Default::default()
                },
            )
        };
        strategy.boxed()
    }

    fn filter() -> BoxedStrategy<RecordFilter> {
        let strategy = {
            let dates = (of(date()), of(date()), of(date()), of(date()));
            (
                dates,
                prop::collection::btree_set(prop::sample::select(FilterFlag::ALL.to_vec()), 0..6),
                prop::collection::vec(token(), 0..3),
                prop::collection::vec(token(), 0..2),
                prop::collection::vec(token(), 0..2),
            )
                .prop_map(
                    |((a, b, c, d), flags, clinical_codes, numerics, user_names_done_by)| {
                        RecordFilter {
                            min_effective_date: a,
                            max_effective_date: b,
                            min_entry_date: c,
                            max_entry_date: d,
                            flags,
                            clinical_codes,
                            numerics,
                            user_names_done_by,
                        }
                    },
                )
        };
        strategy.boxed()
    }

    fn params() -> BoxedStrategy<RequestParams> {
        let strategy = {
            prop_oneof![
                Just(RequestParams::GetFunctions),
                Just(RequestParams::GetCurrentActivity),
                any::<bool>().prop_map(|b| RequestParams::GetOrganisationMetaData(
                    GetOrganisationMetaDataParams {
                        logged_on_user_only: b
                    }
                )),
                of(identity()).prop_map(|identity| RequestParams::IsPatientRetrieved(
                    IsPatientRetrievedParams { identity }
                )),
                (
                    of(text()),
                    of(text()),
                    of(date()),
                    of(text()),
                    of(text()),
                    of(sex())
                )
                    .prop_map(
                        |(first_name, surname, date_of_birth, post_code, telephone, gender)| {
                            RequestParams::PatientSearch(PatientSearchParams {
                                first_name,
                                surname,
                                date_of_birth,
                                post_code,
                                telephone,
                                gender,
                            })
                        }
                    ),
                (of(identity()), any::<bool>(), of(filter())).prop_map(
                    |(identity, leave_record_open, filter)| {
                        RequestParams::GetPatientRecord(GetPatientRecordParams {
                            identity,
                            leave_record_open,
                            filter,
                        })
                    }
                ),
                (
                    identity(),
                    any::<bool>(),
                    of(demographics()),
                    prop::collection::vec(event(), 0..3),
                    prop::collection::vec(task(), 0..3)
                )
                    .prop_map(
                        |(identity, leave_record_open, demographics, events, tasks)| {
                            RequestParams::UpdatePatientRecord(UpdatePatientRecordParams {
                                identity,
                                leave_record_open,
                                demographics,
                                events,
                                tasks,
                            })
                        }
                    ),
                (
                    identity(),
                    "[a-zA-Z<&][ -~]{0,20}",
                    prop::collection::vec(token(), 0..3),
                    prop::collection::vec(token(), 0..2)
                )
                    .prop_map(|(identity, reason, event_uids, task_uids)| {
                        let mut p = DeletePatientRecordParams::new(identity, reason);
                        p.event_uids = event_uids;
                        p.task_uids = task_uids;
                        RequestParams::DeletePatientRecord(p)
                    }),
                prop::sample::select(vec![
                    Function::GetDocument,
                    Function::ExitClient,
                    Function::GetDiary
                ])
                .prop_map(RequestParams::Other),
            ]
        };
        strategy.boxed()
    }

    fn request() -> BoxedStrategy<Request> {
        let strategy = {
            (token(), of(token()), text(), token(), params()).prop_map(
                |(api_key, device_id, device_version, request_uid, params)| Request {
                    api_key: api_key.into(),
                    device_id,
                    device_version,
                    request_uid,
                    function_version: "1.0".into(),
                    output_scheme: None,
                    params,
                },
            )
        };
        strategy.boxed()
    }

    fn record() -> BoxedStrategy<PatientRecord> {
        let strategy = {
            let appointment = (of(token()), of(date_time()), of(text())).prop_map(
                |(appointment_uid, date_time, status)| Appointment {
                    appointment_uid,
                    date_time,
                    status,
                    ..Default::default()
                },
            );
            let visit = (of(token()), of(date_time())).prop_map(|(visit_uid, date_time)| Visit {
                visit_uid,
                date_time,
                ..Default::default()
            });
            (
                of(response_identity()),
                of(demographics()),
                prop::collection::vec(event(), 0..4),
                prop::collection::vec(appointment, 0..2),
                prop::collection::vec(visit, 0..2),
                prop::collection::vec(task(), 0..3),
                of(prop_oneof![
                    Just(RecordState::Open),
                    Just(RecordState::Closed)
                ]),
            )
                .prop_map(
                    |(
                        identity,
                        demographics,
                        events,
                        appointments,
                        visits,
                        tasks,
                        record_state,
                    )| PatientRecord {
                        identity,
                        demographics,
                        events,
                        appointments,
                        visits,
                        tasks,
                        record_state,
                        other: Vec::new(),
                    },
                )
        };
        strategy.boxed()
    }

    fn body() -> BoxedStrategy<(Function, ResponseBody)> {
        let strategy = {
            prop_oneof![
                record().prop_map(|r| (
                    Function::GetPatientRecord,
                    ResponseBody::GetPatientRecord(r)
                )),
                (text(), any::<bool>()).prop_map(|(message, permanent)| (
                    Function::UpdatePatientRecord,
                    ResponseBody::Error {
                        message: message.trim().to_string(),
                        permanent
                    }
                )),
                any::<bool>().prop_map(|b| (
                    Function::IsPatientRetrieved,
                    ResponseBody::IsPatientRetrieved(b)
                )),
                (
                    of(response_identity()),
                    // Each UID once: a repeated UID is one created item.
                    prop::collection::btree_set(token(), 0..3),
                    prop::collection::btree_set(token(), 0..3)
                )
                    .prop_map(|(identity, event_uids, task_uids)| {
                        let event_uids: Vec<String> = event_uids.into_iter().collect();
                        let task_uids: Vec<String> = task_uids.into_iter().collect();
                        (
                            Function::UpdatePatientRecord,
                            ResponseBody::UpdatePatientRecord(UpdatePatientRecordResponse {
                                identity,
                                event_uids,
                                task_uids,
                                record_state: Some(RecordState::Open),
                                ..Default::default()
                            }),
                        )
                    }),
                (
                    of(response_identity()),
                    prop::collection::vec(token(), 0..3)
                )
                    .prop_map(|(identity, activities)| {
                        (
                            Function::GetCurrentActivity,
                            ResponseBody::GetCurrentActivity(CurrentActivity {
                                identity,
                                activities,
                                current_selection: None,
                            }),
                        )
                    }),
                prop::collection::vec(
                    (
                        of(response_identity()),
                        of(text()),
                        of(text()),
                        of(date()),
                        of(sex()),
                        of(address())
                    ),
                    0..3
                )
                .prop_map(|rows| {
                    let results = rows
                        .into_iter()
                        .map(
                            |(identity, first_name, surname, date_of_birth, sex, address)| {
                                SearchResult {
                                    identity,
                                    first_name,
                                    surname,
                                    date_of_birth,
                                    sex,
                                    telephone: None,
                                    address,
                                }
                            },
                        )
                        .collect();
                    (
                        Function::PatientSearch,
                        ResponseBody::PatientSearch(PatientSearchResponse { results }),
                    )
                }),
                prop::collection::vec((token(), token()), 0..4).prop_map(|fs| {
                    let functions = fs
                        .into_iter()
                        .map(|(function, version)| SupportedFunction { function, version })
                        .collect();
                    (
                        Function::GetFunctions,
                        ResponseBody::GetFunctions(GetFunctionsResponse { functions }),
                    )
                }),
            ]
        };
        strategy.boxed()
    }

    fn response() -> BoxedStrategy<Response> {
        let strategy = {
            (of(token()), token(), token(), body()).prop_map(
                |(device_id, request_uid, response_uid, (function, body))| Response {
                    device_id,
                    request_uid,
                    function,
                    function_version: "1.0".into(),
                    response_uid,
                    body,
                },
            )
        };
        strategy.boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn any_request_round_trips(r in request()) {
            let xml = encode_request(&r).unwrap();
            let back = decode_request(xml.as_bytes()).unwrap();
            // Debug is redacted, so compare the JSON views first to see any difference.
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&r).unwrap());
            prop_assert_eq!(back, r);
        }

        #[test]
        fn any_response_round_trips(r in response()) {
            let xml = encode_response(&r).unwrap();
            let back = decode_response(xml.as_bytes()).unwrap();
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&r).unwrap());
            prop_assert_eq!(back, r);
        }

        #[test]
        fn encoded_documents_are_single_frames(r in response()) {
            let xml = encode_response(&r).unwrap();
            let stream = format!("{xml}<EOF>{xml}\n");
            let frames = crate::framing::split_frames(stream.as_bytes(), 1 << 24).unwrap();
            prop_assert_eq!(frames, vec![xml.as_bytes(), xml.as_bytes()]);
        }

        #[test]
        fn fuzz_body_never_panics_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
            fuzz_decode(&data);
        }

        #[test]
        fn fuzz_body_never_panics_on_mutated_documents(
            which in 0..FIXTURES.len(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..6),
        ) {
            let mut bytes = FIXTURES[which].1.as_bytes().to_vec();
            for (at, kind, byte) in edits {
                if bytes.is_empty() { break; }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = byte,
                    1 => { bytes.remove(i); }
                    2 => bytes.insert(i, byte),
                    // Cut a chunk out, often removing a whole tag.
                    _ => { let end = (i + usize::from(byte)).min(bytes.len()); bytes.drain(i..end); }
                }
            }
            fuzz_decode(&bytes);
        }
    }
}

/// Inputs the fuzzer found that once broke an invariant; each must now pass the fuzz body.
#[test]
fn fuzz_regressions_stay_fixed() {
    // crash-9df3f50d: a demographics `Term` attribute with leading spaces was kept as-is,
    // written back as element text and then read trimmed, so the round trip changed it.
    fuzz_decode(include_bytes!("fixtures/fuzz/crash-9df3f50d.xml"));
}

/// The decoder reads a GetPatientRecord body as it parses, and the rest as a tree; these
/// check that it decides exactly as reading the whole document as a tree first did, and
/// that the caps on element count and depth refuse hostile documents early and cleanly.
mod streaming {
    use super::*;
    use chrono::{Datelike, NaiveDateTime, Timelike};
    use proptest::prelude::*;

    /// The decoder as it was before streaming: the whole document as a tree, then mapped.
    fn decode_response_as_a_tree(bytes: &[u8]) -> Result<Response, CodecError> {
        let text = document_text(bytes)?;
        let root = parse_root(&text, RESPONSE_ROOT)?;
        let function = Function::parse(&required(&root, "Function")?)?;
        let body_element = root
            .child("Response")
            .ok_or_else(|| CodecError::MissingElement("Response".into()))?;
        Ok(Response {
            device_id: non_empty(root.trimmed_of("DeviceID")),
            request_uid: root.trimmed_of("RequestUID").unwrap_or_default(),
            function,
            function_version: root.trimmed_of("FunctionVersion").unwrap_or_default(),
            response_uid: root.trimmed_of("ResponseUID").unwrap_or_default(),
            body: ResponseBody::read(function, body_element)?,
        })
    }

    fn record_envelope(record: &str) -> String {
        format!(
            "<ClientIntegrationResponse><Function>GetPatientRecord</Function>\
             <Response>{record}</Response></ClientIntegrationResponse>"
        )
    }

    #[test]
    fn streamed_records_decode_as_the_tree_did_for_every_fixture() {
        for (name, xml) in FIXTURES {
            assert_eq!(
                decode_response(xml.as_bytes()),
                decode_response_as_a_tree(xml.as_bytes()),
                "{name}"
            );
        }
    }

    #[test]
    fn errors_keep_their_precedence() {
        // A bad value in an event, then a malformed tail: malformed, as when the whole
        // document was parsed before anything was read.
        let bad_then_broken = "<ClientIntegrationResponse><Function>GetPatientRecord</Function>\
             <Response><Clinical><Event DateTime=\"yesterday\"/></Clinical><Oops></Response>\
             </ClientIntegrationResponse>";
        assert!(matches!(
            decode_response(bad_then_broken.as_bytes()),
            Err(CodecError::Malformed { .. })
        ));
        // A bad task and a bad event: the task's error, as PatientRecord::read checks
        // non-clinical items first.
        let both = record_envelope(
            "<Clinical><Event DateTime=\"yesterday\"/></Clinical>\
             <NonClinical><Task><Due>someday</Due></Task></NonClinical>",
        );
        let err = decode_response(both.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, CodecError::InvalidValue { element, .. } if element == "Due"),
            "{err}"
        );
        assert_eq!(Err(err), decode_response_as_a_tree(both.as_bytes()));
        // An error body wins over a record that would not decode, wherever it sits.
        let error_last = record_envelope(
            "<Clinical><Event DateTime=\"yesterday\"/></Clinical><ErrorMessage> busy </ErrorMessage>\
             <PermanentError>false</PermanentError>",
        );
        assert_eq!(
            decode_response(error_last.as_bytes()).unwrap().body,
            ResponseBody::Error {
                message: "busy".into(),
                permanent: false
            }
        );
        // <Response> before <Function>: read as a tree, the same answer.
        let response_first = "<ClientIntegrationResponse><Response><Clinical><Event/></Clinical>\
             </Response><Function>GetPatientRecord</Function></ClientIntegrationResponse>";
        let decoded = decode_response(response_first.as_bytes()).unwrap();
        assert_eq!(
            Ok(decoded.clone()),
            decode_response_as_a_tree(response_first.as_bytes())
        );
        assert!(matches!(decoded.body, ResponseBody::GetPatientRecord(r) if r.events.len() == 1));
    }

    #[test]
    fn sixteen_mib_of_empty_elements_is_refused_after_reading_little_of_it() {
        let mut record = String::with_capacity(16 << 20);
        while record.len() < 16 << 20 {
            record.push_str("<a/>");
        }
        let doc = record_envelope(&record);
        match decode_response(doc.as_bytes()) {
            // Refused within the first 64 KiB: what was decoded before then is all the
            // memory it took, however long the document.
            Err(CodecError::TooManyElements { position, count }) => {
                assert!(position < 64 * 1024, "refused only at byte {position}");
                assert!(count > xml::ELEMENT_ALLOWANCE);
            }
            other => panic!("expected TooManyElements, got {other:?}"),
        }
        // The same inside an event, and as a request (the simulator's side).
        let events = record_envelope(&format!(
            "<Clinical>{}</Clinical>",
            "<Event/>".repeat(1 << 20)
        ));
        assert!(matches!(
            decode_response(events.as_bytes()),
            Err(CodecError::TooManyElements { .. })
        ));
        let request = format!("<ClientIntegrationRequest>{record}</ClientIntegrationRequest>");
        let err = decode_request(request.as_bytes()).unwrap_err();
        assert!(matches!(err, CodecError::TooManyElements { .. }));
        assert!(
            err.to_string().contains("refused as broken or hostile"),
            "{err}"
        );
    }

    #[test]
    fn documents_as_dense_as_real_ones_are_not_refused() {
        // Far more elements than the allowance, each a short line of text (~27 bytes).
        let lines = "<Line>obs stable, eating</Line>".repeat(20_000);
        let doc = record_envelope(&format!(
            "<Clinical><Event><Narrative>{lines}</Narrative></Event></Clinical>"
        ));
        let decoded = decode_response(doc.as_bytes()).unwrap();
        let ResponseBody::GetPatientRecord(record) = decoded.body else {
            panic!("wrong body");
        };
        assert_eq!(record.events[0].narrative_lines().count(), 20_000);
    }

    #[test]
    fn deep_nesting_inside_a_streamed_record_is_refused_not_overflowed() {
        let deep = format!(
            "<Clinical><Event>{}{}</Event></Clinical>",
            "<x>".repeat(100_000),
            "</x>".repeat(100_000)
        );
        let err = decode_response(record_envelope(&deep).as_bytes()).unwrap_err();
        assert!(
            matches!(&err, CodecError::Malformed { message, .. } if message.contains("deeper than 64")),
            "{err}"
        );
    }

    #[test]
    fn the_fast_date_time_reader_agrees_with_chrono() {
        for raw in [
            "2024-02-29T23:59:59",
            "2023-02-29T10:00:00",
            "2024-01-01T24:00:00",
            "2024-06-30T23:59:60",
            "0000-01-01T00:00:00",
            "2024-1-01T00:00:00",
            " 2024-05-01T08:30:00 ",
            "2024-05-01",
            "2024-05-01T08:30:00.5",
        ] {
            let chrono_only = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .and_then(|dt| dt.with_nanosecond(0))
                .or_else(|| {
                    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                        .ok()
                        .map(|d| d.and_time(chrono::NaiveTime::MIN))
                })
                .filter(|dt| (1..=9999).contains(&dt.year()));
            assert_eq!(
                model::parse_date_time("DateTime", raw).ok(),
                chrono_only,
                "{raw}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn streamed_decode_matches_the_tree_on_mutated_documents(
            which in 0..FIXTURES.len(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..6),
        ) {
            let mut bytes = FIXTURES[which].1.as_bytes().to_vec();
            for (at, kind, byte) in edits {
                if bytes.is_empty() { break; }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = byte,
                    1 => { bytes.remove(i); }
                    2 => bytes.insert(i, byte),
                    _ => { let end = (i + usize::from(byte)).min(bytes.len()); bytes.drain(i..end); }
                }
            }
            prop_assert_eq!(decode_response(&bytes), decode_response_as_a_tree(&bytes));
        }
    }
}

/// Regression (issue 11): the request types derived Debug and Serialize with the APIKey as
/// a plain string, so a logged request or `hubctl decode` showed it.
#[test]
fn the_api_key_never_shows_in_debug_or_serialised_requests() {
    let r = request(RequestParams::GetFunctions);
    let debug = format!("{r:?}");
    assert!(!debug.contains("f31e26725b5491f2"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("f31e26725b5491f2"), "{json}");
    // The key still goes on the wire, and comes back off it.
    let xml = encode_request(&r).unwrap();
    assert!(xml.contains("<APIKey>f31e26725b5491f2</APIKey>"));
    let back = decode_request(xml.as_bytes()).unwrap();
    assert_eq!(back.api_key.expose(), "f31e26725b5491f2");
    let header = decode_request_header(xml.as_bytes()).unwrap();
    assert!(!format!("{header:?}").contains("f31e26725b5491f2"));
    assert!(!serde_json::to_string(&Document::Request(back))
        .unwrap()
        .contains("f31e26725b5491f2"));
}
