//! Demo and live never mix at the connection (issue 11): the peer on the SystmOne port is
//! identified on every new connection before anything else is sent on it, the wrong one is
//! refused before any write reaches it and nothing it offers (its DeviceID) is kept, and
//! demo mode only ever sends the simulator's key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::ports::DeviceIdentity;
use simulator::{SimConfig, SimHandle, Simulator};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::{DatabaseKey, Store};
use systmone::client::{ClientConfig, ClientError, Lane, SystmOneClient};
use systmone::codec::{
    decode_request, encode_response, Event, Function, GetFunctionsResponse, Identity,
    OrganisationMetaData, RequestParams, Response, ResponseBody, Site, SupportedFunction,
    UpdatePatientRecordParams, User,
};
use systmone::connection::ExpectedPeer;
use systmone::framing::FrameReader;
use systmone::secrets::ApiKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const REAL_DEVICE: &str = "REALDEVICE01";
/// A key a trust would have been issued (never the simulator's).
const REAL_KEY: &str = "{A1B2C3D4-0000-4000-8000-00000000A11C}";

fn key() -> DatabaseKey {
    DatabaseKey::from_hex(&"5a".repeat(32)).unwrap()
}

fn database(dir: &Path) -> PathBuf {
    let path = dir.join("ward.sqlite");
    Store::open(&path, &key()).unwrap();
    path
}

/// A stand-in for a real SystmOne: a real-looking site, and a DeviceID of its own.
struct RealLooking {
    functions: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RealLooking {
    async fn start(listener: TcpListener) -> RealLooking {
        let functions: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&functions);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                connections.spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = FrameReader::new(read);
                    while let Ok(Some(frame)) = reader.next_frame().await {
                        let request = decode_request(&frame).unwrap();
                        seen.lock()
                            .unwrap()
                            .push(request.function().as_str().to_owned());
                        let body = match request.function() {
                            Function::GetOrganisationMetaData => {
                                ResponseBody::GetOrganisationMetaData(OrganisationMetaData {
                                    sites: vec![Site {
                                        name: Some("Riverside General Hospital".into()),
                                        current_site: true,
                                        ..Default::default()
                                    }],
                                    users: vec![User {
                                        user_name: Some("jsmith".into()),
                                        current_user: true,
                                        ..Default::default()
                                    }],
                                })
                            }
                            _ => ResponseBody::GetFunctions(GetFunctionsResponse {
                                functions: vec![SupportedFunction {
                                    function: "UpdatePatientRecord".into(),
                                    version: "1".into(),
                                }],
                            }),
                        };
                        let response =
                            Response::answering(&request, Some(REAL_DEVICE.into()), body);
                        let xml = encode_response(&response).unwrap() + "\n";
                        if write.write_all(xml.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        RealLooking { functions, task }
    }

    fn functions(&self) -> Vec<String> {
        self.functions.lock().unwrap().clone()
    }

    /// SystmOne exits: the port and every open connection close.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn simulator_on(dir: &Path, port: u16, accepted_key: &str) -> SimHandle {
    let mut config = SimConfig::new(dir.join("sim"));
    config.port = port;
    config.api_key = accepted_key.into();
    Simulator::start(config).await.unwrap()
}

fn client(addr: SocketAddr, db: &Path, expected: ExpectedPeer, key: &str) -> SystmOneClient {
    let config = ClientConfig {
        follow_user: false,
        expected_peer: Some(expected),
        ..ClientConfig::new(addr)
    };
    SystmOneClient::start(
        config,
        ApiKey::parse(key).unwrap(),
        Store::open(db, &self::key()).unwrap(),
        Store::open(db, &self::key()).unwrap(),
    )
    .unwrap()
}

fn a_write() -> RequestParams {
    let mut update = UpdatePatientRecordParams::new(Identity::nhs(
        domain::NhsNumber::parse("9990000018").unwrap(),
    ));
    update
        .events
        .push(Event::narrative("Seen on the ward round."));
    RequestParams::UpdatePatientRecord(update)
}

fn saved_device_id(db: &Path) -> Option<String> {
    Store::open(db, &key()).unwrap().device_id().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_on_the_port_after_a_systmone_restart_is_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let real = RealLooking::start(listener).await;
    let client = client(addr, &db, ExpectedPeer::SystmOne, REAL_KEY);

    // A real-looking SystmOne: identified first, on the connection, then the request.
    client.functions(Lane::Interactive).await.unwrap();
    assert_eq!(
        real.functions(),
        ["GetOrganisationMetaData", "GetFunctions"]
    );
    assert_eq!(saved_device_id(&db).as_deref(), Some(REAL_DEVICE));

    // SystmOne restarts, and meanwhile a simulator takes its port; the worst case: one
    // that accepts the ward's key, so it answers the identification.
    real.stop().await;
    let sim = simulator_on(dir.path(), addr.port(), REAL_KEY).await;
    let refused = client.call(Lane::Background, a_write()).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClientError::WrongPeer {
                expected: ExpectedPeer::SystmOne
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "simulator_not_in_demo_mode");
    let reached: Vec<String> = sim
        .control()
        .unwrap()
        .request_log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.function)
        .collect();
    assert_eq!(
        reached,
        ["GetOrganisationMetaData"],
        "only the identification reached the simulator; no write"
    );
    assert!(
        sim.control()
            .unwrap()
            .filed_events("9990000018", false)
            .unwrap()
            .is_empty(),
        "nothing was filed in the simulator"
    );
    // The simulator issued a DeviceID of its own; it is not kept.
    let issued: Vec<String> = sim
        .control()
        .unwrap()
        .devices()
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert!(!issued.is_empty(), "the simulator offered a DeviceID");
    assert_eq!(saved_device_id(&db).as_deref(), Some(REAL_DEVICE));

    // Refused again on every try, never let through on a remembered site name.
    let again = client.functions(Lane::Interactive).await.unwrap_err();
    assert_eq!(again.code(), "simulator_not_in_demo_mode");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_refuses_a_real_systmone_and_keeps_nothing_it_offered() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let real = RealLooking::start(listener).await;
    let client = client(
        addr,
        &db,
        ExpectedPeer::Simulator,
        systmone_wire::SIMULATOR_API_KEY,
    );
    let refused = client.call(Lane::Background, a_write()).await.unwrap_err();
    assert_eq!(refused.code(), "real_systmone_in_demo_mode", "{refused}");
    assert_eq!(real.functions(), ["GetOrganisationMetaData"], "no write");
    assert_eq!(saved_device_id(&db), None, "its DeviceID is not kept");
    real.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_in_demo_mode_is_identified_once_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let sim = simulator_on(dir.path(), 0, systmone_wire::SIMULATOR_API_KEY).await;
    let client = client(
        sim.addr(),
        &db,
        ExpectedPeer::Simulator,
        systmone_wire::SIMULATOR_API_KEY,
    );
    client.functions(Lane::Interactive).await.unwrap();
    client.functions(Lane::Interactive).await.unwrap();
    let log = sim.control().unwrap().request_log(100).unwrap();
    let functions: Vec<&str> = log.iter().map(|e| e.function.as_str()).collect();
    assert_eq!(
        functions,
        ["GetOrganisationMetaData", "GetFunctions", "GetFunctions"],
        "one identification for the one connection"
    );
    assert!(
        saved_device_id(&db).is_some(),
        "the simulator passed the check, so its DeviceID is kept"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_sends_only_the_simulators_key_never_the_wards() {
    let dir = tempfile::tempdir().unwrap();
    // Only the simulator's key opens it, so an answer proves which key was sent.
    let sim = simulator_on(dir.path(), 0, systmone_wire::SIMULATOR_API_KEY).await;
    // The ward's real key is configured (this file's only test that reads the variable).
    std::env::set_var("INPATIENT_HUB_API_KEY", REAL_KEY);
    let data = dir.path().join("hub");
    std::fs::create_dir_all(&data).unwrap();
    let mut hub = hub::Hub::open_with_key(
        &data,
        &hub::db_key::DatabaseKey::from_hex(&"5a".repeat(32)).unwrap(),
        hub::DatabaseEnvironment::Demo,
    )
    .unwrap()
    .with_demo_mode(true);
    hub.set_current_user("Dr Demo").unwrap();
    hub.start_systmone(sim.addr()).unwrap();
    std::env::remove_var("INPATIENT_HUB_API_KEY");
    assert_eq!(
        hub.systmone_status().key_source,
        Some(hub::KeySource::DemoDefault)
    );
    let found = hub
        .search_patients(&hub::lookup::SearchInput {
            nhs_number: Some("9990000018".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        matches!(found.source, hub::SearchSource::Systmone) && found.results.len() == 1,
        "{found:?}"
    );
    sim.shutdown().await;
}
