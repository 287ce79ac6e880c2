//! Decoding a large GetPatientRecord response: typed decode vs a raw quick-xml event scan
//! (the floor any quick-xml-based decoder pays) vs a roxmltree DOM parse.
//!
//! `cargo bench --bench decode -- --warm-up-time 1 --measurement-time 5`
//!
//! Also reports the decoder's peak heap use as a multiple of the input size (a counting
//! global allocator, switched on only around those decodes), for the realistic record, a
//! 16 MiB realistic record, and a 16 MiB document of empty elements (which must be refused).
//! `DECODE_BENCH_WRITE=DIR` writes the two 16 MiB documents to DIR (for measuring
//! `hubctl decode`'s peak RSS) and exits.

use chrono::NaiveDate;
use criterion::{black_box, Criterion, Throughput};
use domain::NhsNumber;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use systmone_wire::codec::{
    decode_response, encode_response, ClinicalCodeEntry, Code, Demographics, Event, Function,
    Identity, PatientRecord, RecordState, Response, ResponseBody, Task,
};

const EVENTS: usize = 5_000;
const SIXTEEN_MIB: usize = 16 * 1024 * 1024;

/// Counts live heap bytes and their peak while `COUNTING` is on; otherwise only forwards,
/// so the timed benchmarks pay one relaxed load per allocation.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            note_grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            // Saturating: a block allocated before counting started may be freed during it.
            let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(l.saturating_sub(layout.size()))
            });
        }
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            if new_size >= layout.size() {
                note_grow(new_size - layout.size());
            } else {
                let shrink = layout.size() - new_size;
                let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                    Some(l.saturating_sub(shrink))
                });
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Peak heap bytes allocated while `f` ran (what it kept and what it freed on the way).
fn peak_heap<T>(f: impl FnOnce() -> T) -> (usize, T) {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (PEAK.load(Ordering::Relaxed), out)
}

/// A record like a long-stay patient's: many events, some with very long narrative lines
/// (pasted letters, discharge summaries) and characters that need escaping.
fn large_record_xml() -> String {
    record_xml(EVENTS)
}

fn record_xml(event_count: usize) -> String {
    let nhs = NhsNumber::parse("9990000018").expect("valid test NHS number");
    let start = NaiveDate::from_ymd_opt(2015, 1, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("valid date");
    let mut events = Vec::with_capacity(event_count);
    for i in 0..event_count {
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

/// The same generator, with enough events for at least 16 MiB.
fn sixteen_mib_record_xml() -> String {
    let mut events = EVENTS * SIXTEEN_MIB / large_record_xml().len() + 1;
    loop {
        let xml = record_xml(events);
        if xml.len() >= SIXTEEN_MIB {
            return xml;
        }
        events += events / 50 + 1;
    }
}

/// A valid GetPatientRecord envelope whose `<Response>` holds `open`, 16 MiB of `element`
/// repeated, and `close`.
fn repeated_xml(open: &str, element: &str, close: &str) -> String {
    let head = "<?xml version=\"1.0\" encoding=\"utf-8\"?><ClientIntegrationResponse>\
        <DeviceID>392752167bd7f69b</DeviceID><RequestUID>bench</RequestUID>\
        <Function>GetPatientRecord</Function><FunctionVersion>1.0</FunctionVersion>\
        <ResponseUID>bench</ResponseUID><Response>";
    let tail = "</Response></ClientIntegrationResponse>";
    let mut xml = String::with_capacity(SIXTEEN_MIB + 64);
    xml.push_str(head);
    xml.push_str(open);
    while xml.len() + close.len() + tail.len() < SIXTEEN_MIB {
        xml.push_str(element);
    }
    xml.push_str(close);
    xml.push_str(tail);
    xml
}

/// 16 MiB of empty unknown elements (one per 4 bytes), which a record keeps in its `other`
/// bag: the document that took ~615 MB (1 GB RSS in `hubctl decode`) before the cap.
fn empty_elements_xml() -> String {
    repeated_xml("", "<a/>", "")
}

/// The worst document the element cap lets through: bare events (the largest typed item),
/// padded to exactly the accepted density of one element per 16 bytes.
fn densest_events_xml() -> String {
    repeated_xml("<Clinical>", "<Event/>        ", "</Clinical>")
}

/// Prints the decoder's peak heap use for each document, as a multiple of its size.
fn report_peak_memory() {
    for (name, xml) in [
        ("5,000-event record", large_record_xml()),
        ("16 MiB realistic record", sixteen_mib_record_xml()),
        ("16 MiB of empty elements", empty_elements_xml()),
        (
            "16 MiB of bare events at the accepted density",
            densest_events_xml(),
        ),
    ] {
        let (peak, decoded) = peak_heap(|| decode_response(black_box(xml.as_bytes())).map(|_| ()));
        let outcome = match decoded {
            Ok(()) => "decoded".to_string(),
            Err(e) => format!("refused: {e}"),
        };
        eprintln!(
            "peak heap decoding {name} ({} bytes): {:.1} MiB = {:.2} x input; {outcome}",
            xml.len(),
            peak as f64 / (1024.0 * 1024.0),
            peak as f64 / xml.len() as f64,
        );
    }
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

fn main() {
    if let Some(dir) = std::env::var_os("DECODE_BENCH_WRITE") {
        let dir = std::path::PathBuf::from(dir);
        for (file, xml) in [
            ("record_16mib.xml", sixteen_mib_record_xml()),
            ("empty_elements_16mib.xml", empty_elements_xml()),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, xml).expect("the output directory is writable");
            eprintln!("wrote {}", path.display());
        }
        return;
    }
    report_peak_memory();
    let mut criterion = Criterion::default().configure_from_args();
    bench_decode(&mut criterion);
    criterion.final_summary();
}
