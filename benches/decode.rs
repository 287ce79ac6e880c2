//! Decoding a large GetPatientRecord response: typed decode vs a raw quick-xml event scan
//! (the floor any quick-xml-based decoder pays) vs a roxmltree DOM parse.
//!
//! `cargo bench --bench decode -- --warm-up-time 1 --measurement-time 5`

use chrono::NaiveDate;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use domain::NhsNumber;
use systmone_wire::codec::{
    decode_response, encode_response, ClinicalCodeEntry, Code, Demographics, Event, Function,
    Identity, PatientRecord, RecordState, Response, ResponseBody, Task,
};

const EVENTS: usize = 5_000;

/// A record like a long-stay patient's: many events, some with very long narrative lines
/// (pasted letters, discharge summaries) and characters that need escaping.
fn large_record_xml() -> String {
    let nhs = NhsNumber::parse("9990000018").expect("valid test NHS number");
    let start = NaiveDate::from_ymd_opt(2015, 1, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("valid date");
    let mut events = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let long_line = format!(
            "Line {i}: obs stable, NEWS2 = {} & eating <50% of meals; \"review\" ",
            i % 7
        )
        .repeat(12 + i % 40);
        let mut event = Event::narrative(&format!(
            "{long_line}\nPlan: continue — review in 48h\n{}",
            "x".repeat(i % 500)
        ));
        event.date_time = Some(start + chrono::Duration::minutes(i as i64 * 37));
        event.user_name = Some(format!("user{}", i % 30));
        event.done_by = Some("Dr Example".into());
        event.event_uid = Some(format!("{:016x}", 0xa000_0000_0000u64 + i as u64));
        if i % 3 == 0 {
            event.clinical_codes.push(ClinicalCodeEntry {
                code: Some(Code {
                    scheme: Some("CTV3".into()),
                    code: "XaIPs".into(),
                    term: Some("Community acquired pneumonia".into()),
                }),
                value: Some(format!("{}", i % 200)),
                ..Default::default()
            });
        }
        events.push(event);
    }
    let tasks = (0..50)
        .map(|i| Task {
            task_uid: Some(format!("{:016x}", 0xc000u64 + i)),
            content: Some("Chase bloods".into()),
            ..Default::default()
        })
        .collect();
    let record = PatientRecord {
        identity: Some(Identity::nhs(nhs)),
        demographics: Some(Demographics {
            first_name: Some("Testy".into()),
            surname: Some("McTestface".into()),
            ..Default::default()
        }),
        events,
        tasks,
        record_state: Some(RecordState::Closed),
        ..Default::default()
    };
    let response = Response {
        device_id: Some("392752167bd7f69b".into()),
        request_uid: "bench".into(),
        function: Function::GetPatientRecord,
        function_version: "1.0".into(),
        response_uid: "bench".into(),
        body: ResponseBody::GetPatientRecord(record),
    };
    encode_response(&response).expect("the generated record encodes")
}

fn raw_scan(bytes: &[u8]) -> usize {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return events,
            Ok(_) => events += 1,
            Err(e) => panic!("the generated record is not XML: {e}"),
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    let xml = large_record_xml();
    let bytes = xml.as_bytes();
    assert!(
        bytes.len() >= 5 * 1024 * 1024,
        "record is only {} bytes",
        bytes.len()
    );
    let decoded = decode_response(bytes).expect("decodes");
    match &decoded.body {
        ResponseBody::GetPatientRecord(r) => assert_eq!(r.events.len(), EVENTS),
        _ => panic!("wrong body"),
    }
    eprintln!(
        "GetPatientRecord response: {} bytes, {EVENTS} events",
        bytes.len()
    );

    let mut group = c.benchmark_group("get_patient_record_large");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(10);
    group.bench_function("typed_decode", |b| {
        b.iter(|| decode_response(black_box(bytes)).expect("decodes"))
    });
    group.bench_function("raw_quick_xml_scan", |b| {
        b.iter(|| raw_scan(black_box(bytes)))
    });
    group.bench_function("roxmltree_parse", |b| {
        b.iter(|| {
            roxmltree::Document::parse(black_box(xml.as_str()))
                .expect("parses")
                .descendants()
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
