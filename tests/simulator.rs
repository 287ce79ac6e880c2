//! The SystmOne simulator over real TCP, the way a client meets it: raw request XML with
//! each of the three terminators seen in the field, responses read with the framing reader
//! and checked with an independent XML parser (roxmltree).

use simulator::{ApprovalMode, FaultRates, SimConfig, SimControl, SimHandle, Simulator};
use std::time::{Duration, Instant};
use systmone::framing::FrameReader;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const API_KEY: &str = "f31e26725b5491f2";
const SIAN: &str = "9990000018";
const ZOE: &str = "9990000026";
/// Just over TPP's one-request-per-second limit.
const PACE: Duration = Duration::from_millis(1_050);

async fn start(dir: &tempfile::TempDir, tune: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig::new(dir.path().to_path_buf());
    config.port = 0;
    tune(&mut config);
    Simulator::start(config).await.expect("simulator starts")
}

struct Client {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    terminators: std::iter::Cycle<std::array::IntoIter<&'static str, 3>>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn request(device_id: &str, function: &str, params: &str) -> String {
    let device = if device_id.is_empty() {
        "<DeviceID/>".to_owned()
    } else {
        format!("<DeviceID>{device_id}</DeviceID>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ClientIntegrationRequest>\n  <APIKey>{API_KEY}</APIKey>\n  {device}\n  \
         <DeviceVersion>Inpatient Hub integration test</DeviceVersion>\n  <RequestUID>{}</RequestUID>\n  \
         <Function>{function}</Function>\n  <FunctionVersion>1.0</FunctionVersion>\n  \
         <FunctionParameters>{params}</FunctionParameters>\n</ClientIntegrationRequest>",
        uuid::Uuid::new_v4()
    )
}

impl Client {
    async fn connect(sim: &SimHandle) -> Client {
        let stream = TcpStream::connect(sim.addr()).await.expect("connects");
        let (read, writer) = stream.into_split();
        Client {
            reader: FrameReader::new(read),
            writer,
            terminators: ["\n", "<EOF>", ""].into_iter().cycle(),
        }
    }

    async fn send(&mut self, xml: &str) {
        let terminator = self.terminators.next().unwrap_or("\n");
        self.writer
            .write_all(format!("{xml}{terminator}").as_bytes())
            .await
            .expect("sends");
    }

    /// The next response document, or None if nothing complete arrives within `wait`.
    async fn receive(&mut self, wait: Duration) -> Option<String> {
        match tokio::time::timeout(wait, self.reader.next_frame()).await {
            Ok(Ok(Some(bytes))) => Some(String::from_utf8(bytes).expect("UTF-8 response")),
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => None,
        }
    }

    async fn call(&mut self, xml: &str) -> String {
        self.send(xml).await;
        self.receive(Duration::from_secs(5))
            .await
            .expect("a response within 5 s")
    }
}

fn text_of(doc: &roxmltree::Document<'_>, name: &str) -> Option<String> {
    doc.descendants()
        .find(|n| n.has_tag_name(name))
        .map(|n| n.text().unwrap_or("").to_owned())
}

fn all_texts(doc: &roxmltree::Document<'_>, name: &str) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name(name))
        .map(|n| n.text().unwrap_or("").to_owned())
        .collect()
}

fn today() -> String {
    chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn narrative_update(nhs: &str, lines: &[&str]) -> String {
    let lines: String = lines
        .iter()
        .map(|l| format!("<Line>{}</Line>", escape(l)))
        .collect();
    format!("<Identity><NhsNumber>{nhs}</NhsNumber></Identity><Clinical><Event><Narrative>{lines}</Narrative></Event></Clinical>")
}

#[tokio::test]
async fn approval_throttle_search_update_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&dir, |_| {}).await;
    let mut client = Client::connect(&sim).await;

    // First use: empty DeviceID, auto approval, the request runs and carries the new ID.
    let xml = client.call(&request("", "GetFunctions", "")).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let device_id = text_of(&doc, "DeviceID").unwrap();
    assert_eq!(device_id.len(), 16);
    assert!(
        device_id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{device_id}"
    );
    assert!(all_texts(&doc, "Function").contains(&"UpdatePatientRecord".to_owned()));

    // Within the second: no answer at all, and the socket stays open.
    client.send(&request(&device_id, "GetFunctions", "")).await;
    let started = Instant::now();
    assert_eq!(
        client.receive(Duration::from_millis(1_500)).await,
        None,
        "a throttled request gets no response"
    );
    assert!(started.elapsed() >= Duration::from_millis(1_450));
    let control = SimControl::open(sim.data_dir()).unwrap();
    assert_eq!(control.violation_count().unwrap(), 1);
    let log = control.request_log(10).unwrap();
    assert_eq!(
        log.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(),
        ["answered", "dropped-throttle"]
    );

    // Same connection, 1.5 s later: PatientSearch with one parameter gets TPP's exact error.
    let xml = client
        .call(&request(
            &device_id,
            "PatientSearch",
            "<Surname>O'Brien</Surname>",
        ))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        text_of(&doc, "ErrorMessage").as_deref(),
        Some("At least two search parameters must be specified")
    );
    assert_eq!(text_of(&doc, "PermanentError").as_deref(), Some("true"));

    // A narrative filed in the background is persisted...
    tokio::time::sleep(PACE).await;
    let note = [
        "Siân's review – mood \"brighter\" & <settled>",
        "Plan: continue observations.",
    ];
    let xml = client
        .call(&request(
            &device_id,
            "UpdatePatientRecord",
            &narrative_update(SIAN, &note),
        ))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let event_uid = text_of(&doc, "EventUID").expect("an EventUID");
    assert_eq!(event_uid.len(), 16);
    assert_eq!(text_of(&doc, "RecordState").as_deref(), Some("Closed"));
    let filed = control.filed_events(SIAN, false).unwrap();
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0].uid, event_uid);
    assert_eq!(filed[0].narrative, note.join("\n"));
    assert_eq!(filed[0].identical_narrative_count, 1);
    assert_eq!(filed[0].device_id.as_deref(), Some(device_id.as_str()));

    // ...and visible through GetPatientRecord with the entered-today filter, on a new connection.
    tokio::time::sleep(PACE).await;
    let mut second = Client::connect(&sim).await;
    let d = today();
    let filter = format!(
        "<Identity><NhsNumber>{SIAN}</NhsNumber></Identity><Filter><MinEntryDate>{d}</MinEntryDate>\
         <MaxEntryDate>{d}</MaxEntryDate><Narrative/></Filter>"
    );
    let xml = second
        .call(&request(&device_id, "GetPatientRecord", &filter))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let events: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Event"))
        .collect();
    assert_eq!(events.len(), 1, "only today's entry: {xml}");
    assert_eq!(events[0].attribute("EventUID"), Some(event_uid.as_str()));
    // Real SystmOne's shape (the default profile): one Line, the filed lines joined by a
    // space, sometimes padded with a leading space.
    let lines = all_texts(&doc, "Line");
    assert_eq!(lines.len(), 1, "{xml}");
    assert_eq!(lines[0].trim_start(), note.join(" "));
    assert_eq!(text_of(&doc, "NHSNumber").as_deref(), Some(SIAN));

    // The record opened on screen by the user (another process) refuses background updates, temporarily.
    let mut screen = SimControl::open(sim.data_dir()).unwrap();
    screen.open_patient(SIAN).unwrap();
    tokio::time::sleep(PACE).await;
    let xml = client
        .call(&request(
            &device_id,
            "UpdatePatientRecord",
            &narrative_update(SIAN, &["again"]),
        ))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(text_of(&doc, "ErrorMessage").is_some());
    assert_eq!(text_of(&doc, "PermanentError").as_deref(), Some("false"));
    assert_eq!(control.filed_events(SIAN, false).unwrap().len(), 1);
    assert_eq!(control.violation_count().unwrap(), 1);

    sim.shutdown().await;
}

#[tokio::test]
async fn blocked_device_and_wrong_api_key_are_permanent_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&dir, |c| c.approval = ApprovalMode::Block).await;
    let mut client = Client::connect(&sim).await;
    let xml = client.call(&request("", "GetCurrentActivity", "")).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(text_of(&doc, "ErrorMessage").unwrap().contains("blocked"));
    assert_eq!(text_of(&doc, "PermanentError").as_deref(), Some("true"));
    assert_eq!(sim.control().unwrap().devices().unwrap().len(), 1);

    tokio::time::sleep(PACE).await;
    let wrong_key = request("", "GetFunctions", "").replace(API_KEY, "0000000000000000");
    let xml = client.call(&wrong_key).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(text_of(&doc, "ErrorMessage").unwrap().contains("APIKey"));
    assert_eq!(text_of(&doc, "PermanentError").as_deref(), Some("true"));
    sim.shutdown().await;
}

#[tokio::test]
async fn prompt_mode_holds_the_first_request_then_approves() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&dir, |c| {
        c.approval = ApprovalMode::Prompt;
        c.prompt_ms = 400;
    })
    .await;
    let mut client = Client::connect(&sim).await;
    let started = Instant::now();
    let xml = client
        .call(&request(
            "",
            "GetOrganisationMetaData",
            "<LoggedOnUserOnly/>",
        ))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(text_of(&doc, "DeviceID").map(|d| d.len()), Some(16));
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("User")).count(),
        1
    );
    assert!(text_of(&doc, "Name")
        .unwrap()
        .contains("Inpatient Hub simulator"));
    let device_id = text_of(&doc, "DeviceID").unwrap();

    // Parameters that cannot be read are answered with a permanent error, not silence.
    tokio::time::sleep(PACE).await;
    let bad_date = "<Surname>Smith</Surname><DateOfBirth>2nd of May</DateOfBirth>";
    let xml = client
        .call(&request(&device_id, "PatientSearch", bad_date))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(text_of(&doc, "ErrorMessage").is_some());
    assert_eq!(text_of(&doc, "PermanentError").as_deref(), Some("true"));
    assert_eq!(text_of(&doc, "Function").as_deref(), Some("PatientSearch"));
    assert_eq!(
        sim.control().unwrap().request_log(1).unwrap()[0].outcome,
        "error"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dropped_update_reply_may_or_may_not_have_been_filed_and_the_log_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&dir, |c| {
        c.faults = FaultRates {
            drop: 1.0,
            ..FaultRates::default()
        }
    })
    .await;
    let mut client = Client::connect(&sim).await;
    client
        .send(&request(
            "",
            "UpdatePatientRecord",
            &narrative_update(ZOE, &["outcome unknown"]),
        ))
        .await;
    assert_eq!(client.receive(Duration::from_millis(600)).await, None);
    let control = sim.control().unwrap();
    let entry = control.request_log(1).unwrap().pop().unwrap();
    assert_eq!(entry.outcome, "fault-drop");
    let applied = entry
        .applied
        .expect("a write under a lost reply records whether it was applied");
    assert_eq!(
        control.filed_events(ZOE, false).unwrap().len(),
        usize::from(applied)
    );
    assert_eq!(
        control.violation_count().unwrap(),
        0,
        "a fault is not a throttle violation"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_and_garbage_faults_end_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&dir, |c| {
        c.faults = FaultRates {
            reset: 1.0,
            ..FaultRates::default()
        }
    })
    .await;
    let mut client = Client::connect(&sim).await;
    client.send(&request("", "GetFunctions", "")).await;
    let started = Instant::now();
    assert_eq!(client.receive(Duration::from_secs(2)).await, None);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "closed at once, not left to time out"
    );
    let mut control = sim.control().unwrap();
    assert_eq!(control.request_log(1).unwrap()[0].outcome, "fault-reset");

    control
        .set_faults(
            FaultRates {
                garbage: 1.0,
                ..FaultRates::default()
            },
            None,
        )
        .unwrap();
    tokio::time::sleep(PACE).await;
    let mut raw = TcpStream::connect(sim.addr()).await.unwrap();
    raw.write_all(request("", "GetFunctions", "").as_bytes())
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut bytes),
    )
    .await;
    assert!(matches!(read, Ok(Ok(n)) if n > 0), "garbage then close");
    assert!(
        std::str::from_utf8(&bytes).is_err()
            || !String::from_utf8_lossy(&bytes).contains("</ClientIntegrationResponse>")
    );
    assert_eq!(control.request_log(1).unwrap()[0].outcome, "fault-garbage");
    sim.shutdown().await;
}

#[tokio::test]
async fn thirty_second_record_rule_and_the_device_registry() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&dir, |_| {}).await;
    let mut client = Client::connect(&sim).await;
    let whole = format!("<Identity><NhsNumber>{ZOE}</NhsNumber></Identity>");

    let xml = client.call(&request("", "GetPatientRecord", &whole)).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let device_id = text_of(&doc, "DeviceID").unwrap();
    assert!(
        text_of(&doc, "Surname").is_some() && doc.descendants().any(|n| n.has_tag_name("Event"))
    );

    // A second full record inside 30 s is dropped even though a second has passed...
    tokio::time::sleep(PACE).await;
    client
        .send(&request(&device_id, "GetPatientRecord", &whole))
        .await;
    assert_eq!(client.receive(Duration::from_millis(1_100)).await, None);
    let mut control = sim.control().unwrap();
    assert_eq!(control.violation_count().unwrap(), 1);
    assert!(control.request_log(1).unwrap()[0]
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("30 seconds"));

    // ...but a demographics-only read is exempt.
    let demographics = format!("{whole}<Filter><Demographics/></Filter>");
    let xml = client
        .call(&request(&device_id, "GetPatientRecord", &demographics))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(text_of(&doc, "FirstName").as_deref(), Some("Zoë"));
    assert!(!doc.descendants().any(|n| n.has_tag_name("Event")));

    // Blocked in the Device Manager: the block message; lifted: served again under the same ID.
    control
        .set_device_status(&device_id, simulator::state::DeviceStatus::Blocked)
        .unwrap();
    tokio::time::sleep(PACE).await;
    let xml = client.call(&request(&device_id, "GetFunctions", "")).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(text_of(&doc, "ErrorMessage").unwrap().contains("blocked"));
    control
        .set_device_status(&device_id, simulator::state::DeviceStatus::Approved)
        .unwrap();
    tokio::time::sleep(PACE).await;
    let xml = client.call(&request(&device_id, "GetFunctions", "")).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        text_of(&doc, "DeviceID").as_deref(),
        Some(device_id.as_str())
    );

    // A DeviceID SystmOne never issued goes back for approval and a new one is issued.
    tokio::time::sleep(PACE).await;
    let xml = client
        .call(&request("0123456789abcdef", "GetFunctions", ""))
        .await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let issued = text_of(&doc, "DeviceID").unwrap();
    assert!(issued != "0123456789abcdef" && issued != device_id && issued.len() == 16);
    assert_eq!(control.devices().unwrap().len(), 2);
    sim.shutdown().await;
}

/// Reads whatever arrives until the peer closes or is quiet for `quiet`; and whether it closed.
async fn read_raw(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (all, true),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return (all, false),
        }
    }
}

#[tokio::test]
async fn response_terminator_and_connection_follow_the_profile() {
    use simulator::profile::{ConnectionMode, ResponseTerminator};
    for (terminator, expected) in [
        (ResponseTerminator::None, ""),
        (ResponseTerminator::Newline, "\n"),
        (ResponseTerminator::Eof, "<EOF>"),
    ] {
        for connection in [ConnectionMode::Kept, ConnectionMode::ClosedAfterReply] {
            let dir = tempfile::tempdir().unwrap();
            let sim = start(&dir, |c| {
                c.profile.terminator = terminator;
                c.profile.connection = connection;
            })
            .await;
            let mut raw = TcpStream::connect(sim.addr()).await.unwrap();
            raw.write_all(format!("{}\n", request("", "GetFunctions", "")).as_bytes())
                .await
                .unwrap();
            let (bytes, closed) = read_raw(&mut raw, Duration::from_millis(400)).await;
            let text = String::from_utf8(bytes).unwrap();
            let end = text
                .find("</ClientIntegrationResponse>")
                .expect("a response")
                + "</ClientIntegrationResponse>".len();
            assert_eq!(&text[end..], expected, "{terminator:?} {connection:?}");
            assert_eq!(
                closed,
                connection == ConnectionMode::ClosedAfterReply,
                "{terminator:?} {connection:?}"
            );
            // Kept: a second request on the same connection is answered.
            if connection == ConnectionMode::Kept {
                let doc = roxmltree::Document::parse(&text[..end]).unwrap();
                let device = text_of(&doc, "DeviceID").unwrap();
                tokio::time::sleep(PACE).await;
                raw.write_all(request(&device, "GetFunctions", "").as_bytes())
                    .await
                    .unwrap();
                let (again, _) = read_raw(&mut raw, Duration::from_millis(400)).await;
                assert!(String::from_utf8(again)
                    .unwrap()
                    .contains("</ClientIntegrationResponse>"));
            }
            sim.shutdown().await;
        }
    }
}
