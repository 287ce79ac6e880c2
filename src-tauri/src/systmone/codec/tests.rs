use super::*;
use crate::domain::NhsNumber;
use chrono::NaiveDate;

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
        e.narrative,
        vec![
            "Seen on ward round & reviewed.".to_string(),
            "  Plan: <none>".to_string()
        ]
    );
    assert_eq!(e.clinical_codes[0].code.as_ref().unwrap().code, "XaXXX");
    assert_eq!(e.attachments[0].document_uid.as_deref(), Some("d1"));
    assert_eq!(rec.tasks[0].status.as_deref(), Some("Not Started"));
    assert_eq!(rec.tasks[0].due, NaiveDate::from_ymd_opt(2026, 11, 26));
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
            NaiveDate::from_ymd_opt(2026, 11, 27),
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
fn json_view_has_the_decoded_values() {
    let r = response(
        Function::IsPatientRetrieved,
        ResponseBody::IsPatientRetrieved(true),
    );
    let json = r.to_json().unwrap();
    assert!(json.contains("\"IsPatientRetrieved\": true"), "{json}");
}
