//! The hub's SystmOne side: starting the one client, the status the UI shows, patient
//! lookup with review before linking, and following the patient open in SystmOne.
//!
//! The demo guard is chosen here: a simulator is used only in demo mode, and demo mode never
//! talks to a real SystmOne (the peer's site name tells them apart). The connection applies
//! it to every new connection before anything else is sent on it ([`ExpectedPeer`]), and
//! demo mode only ever sends the simulator's key.

use super::{Hub, HubError, HubResult};
use crate::lookup::{self, LookupQuery, LookupResult, MatchReview, SearchInput};
use domain::{NhsNumber, PatientId};
use serde::Serialize;
use std::net::SocketAddr;
use store::Patient;
use systmone::client::{ClientConfig, ClientError, Lane, SystmOneClient};
use systmone::codec::{Demographics, FilterFlag, RecordFilter};
use systmone::connection::{ConnectionState, ExpectedPeer, SIMULATOR_SITE_MARKER};
use systmone::scheduler::QueueSnapshot;
use systmone::secrets::{self, ApiKey, SecretSource};

/// More rows than staff can sensibly review: ask for more details instead.
const MAX_RESULTS_SHOWN: usize = 50;

/// Where the APIKey in use came from (shown in Settings, so nobody wonders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    Keychain,
    Environment,
    /// Demo mode only: the simulator's published key.
    DemoDefault,
}

pub(super) struct SystmOneLink {
    pub(super) client: SystmOneClient,
    key_source: KeySource,
    /// The patient the last audited follow read showed, and when (see `audit_follow_read`).
    last_follow_read: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

/// How often following the same patient is audited again while it stays open in SystmOne.
const FOLLOW_READ_REAUDIT: std::time::Duration = std::time::Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Serialize)]
pub struct SystmOneStatus {
    pub state: ConnectionState,
    pub queue: Option<QueueSnapshot>,
    pub key_source: Option<KeySource>,
    /// Why there is no connection at all (e.g. no APIKey), in words for staff.
    pub problem: Option<String>,
    pub demo_mode: bool,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchSource {
    Systmone,
    /// SystmOne is unavailable: only patients already on this ward were searched.
    LocalCache,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchOutcome {
    pub source: SearchSource,
    pub results: Vec<LookupResult>,
    /// How many SystmOne found (may exceed what is shown).
    pub total: usize,
    /// A message for the banner above the results (fallback, too many, not found).
    pub notice: Option<String>,
}

/// What "follow SystmOne" shows.
#[derive(Debug, Clone, Serialize)]
pub struct FollowView {
    /// The patient open in SystmOne, if any.
    pub nhs_number: Option<NhsNumber>,
    pub nhs_number_formatted: Option<String>,
    /// That patient on this ward, if linked.
    pub patient: Option<Patient>,
    /// True when polling was skipped because queued work is waiting (the budget goes to it).
    pub skipped_busy: bool,
}

/// The simulator's published key, the only one demo mode sends.
fn demo_api_key() -> Result<ApiKey, secrets::SecretError> {
    ApiKey::parse(systmone_wire::SIMULATOR_API_KEY)
}

impl Hub {
    /// Starts the SystmOne connection owner. Must run inside a tokio runtime. Without an
    /// APIKey the app still runs (offline), and the status says why SystmOne is unavailable.
    pub fn start_systmone(&mut self, addr: SocketAddr) -> HubResult<()> {
        self.start_systmone_with(addr, None)
    }

    /// As [`Hub::start_systmone`], with SystmOne's read timeout set (IT tuning; tests). The
    /// outbox's per-call bound follows it, so a live worker never loses its claim mid-call.
    pub fn start_systmone_with(
        &mut self,
        addr: SocketAddr,
        read_timeout: Option<std::time::Duration>,
    ) -> HubResult<()> {
        self.systmone_addr = Some(addr);
        let (key, key_source) = match self.api_key_for_mode() {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "SystmOne APIKey unavailable; running offline"
                );
                self.systmone_problem = Some(e.to_string());
                return Ok(());
            }
        };
        // Two connections of their own: neither the DeviceID nor a send-slot reservation
        // ever waits behind the window's writes. The ledger is shared with every other
        // Inpatient Hub process on the PC through the same database file.
        let (device_store, pacing_ledger) = {
            let store = self.store();
            (store.open_another()?, store.open_another()?)
        };
        let mut config = ClientConfig::new(addr);
        config.expected_peer = Some(self.expected_peer());
        if let Some(read) = read_timeout {
            config.timeouts.read = read;
            self.filing_call_timeout = read + std::time::Duration::from_secs(5);
        }
        let client = SystmOneClient::start(config, key, device_store, pacing_ledger)
            .map_err(HubError::SystmOne)?;
        self.systmone = Some(SystmOneLink {
            client,
            key_source,
            last_follow_read: std::sync::Mutex::new(None),
        });
        self.systmone_problem = None;
        Ok(())
    }

    /// The APIKey this mode may send. Demo mode only ever sends the simulator's published
    /// key: the keychain's APIKey (or `INPATIENT_HUB_API_KEY`) is never read, so a real key
    /// cannot reach a simulator or anything else listening in its place.
    fn api_key_for_mode(&self) -> Result<(ApiKey, KeySource), secrets::SecretError> {
        if self.demo_mode {
            return Ok((demo_api_key()?, KeySource::DemoDefault));
        }
        Ok(match secrets::load_api_key()? {
            (key, SecretSource::Keychain) => (key, KeySource::Keychain),
            (key, SecretSource::Environment) => (key, KeySource::Environment),
        })
    }

    /// The only peer this mode may talk to.
    pub fn expected_peer(&self) -> ExpectedPeer {
        if self.demo_mode {
            ExpectedPeer::Simulator
        } else {
            ExpectedPeer::SystmOne
        }
    }

    pub fn systmone_client(&self) -> Option<&SystmOneClient> {
        self.systmone.as_ref().map(|l| &l.client)
    }

    pub fn systmone_status(&self) -> SystmOneStatus {
        let link = self.systmone.as_ref();
        SystmOneStatus {
            state: link.map_or(ConnectionState::NotRunning, |l| {
                l.client.state().borrow().clone()
            }),
            queue: link.map(|l| l.client.queue()),
            key_source: link.map(|l| l.key_source),
            problem: self.systmone_problem.clone(),
            demo_mode: self.demo_mode,
            address: self.systmone_addr.map(|a| a.to_string()),
        }
    }

    /// The client, once the peer is known to be what this mode expects: SystmOne in normal
    /// use, the simulator in demo mode. Asks who is logged in first if not yet known.
    pub(super) async fn verified_client(&self) -> HubResult<&SystmOneClient> {
        let link = self.systmone.as_ref().ok_or_else(|| {
            HubError::SystmOneUnavailable(
                self.systmone_problem
                    .clone()
                    .unwrap_or_else(|| "SystmOne is not set up".into()),
            )
        })?;
        let site = |state: &ConnectionState| match state {
            ConnectionState::Connected {
                site: Some(site), ..
            } => Some(site.clone()),
            _ => None,
        };
        let mut known = site(&link.client.state().borrow());
        if known.is_none() {
            let metadata = link
                .client
                .organisation(true, Lane::Interactive)
                .await
                .map_err(|e| match e {
                    ClientError::WrongPeer {
                        expected: ExpectedPeer::SystmOne,
                    } => HubError::SimulatorNotInDemoMode,
                    ClientError::WrongPeer {
                        expected: ExpectedPeer::Simulator,
                    } => HubError::RealSystmOneInDemoMode,
                    other => HubError::SystmOne(other),
                })?;
            known = metadata
                .sites
                .iter()
                .find(|s| s.current_site)
                .or(metadata.sites.first())
                .and_then(|s| s.name.clone());
        }
        let is_simulator = known
            .as_deref()
            .is_some_and(|s| s.contains(SIMULATOR_SITE_MARKER));
        match (self.demo_mode, is_simulator) {
            (false, true) => Err(HubError::SimulatorNotInDemoMode),
            (true, false) => Err(HubError::RealSystmOneInDemoMode),
            _ => Ok(&link.client),
        }
    }

    /// Looks a patient up in SystmOne; falls back to this ward's own patients when SystmOne
    /// is unavailable, saying so. Invalid input is refused before anything is sent.
    pub async fn search_patients(&self, input: &SearchInput) -> HubResult<SearchOutcome> {
        let query = lookup::parse_query(input, chrono::Local::now().date_naive())?;
        let client = match self.verified_client().await {
            Ok(client) => client,
            Err(e) if e.is_unavailable() => return self.search_local(&query, &e),
            Err(e) => return Err(e),
        };
        let remote = match &query {
            LookupQuery::ByNhsNumber(nhs) => {
                self.fetch_demographics(client, nhs).await.map(|found| {
                    found
                        .map(|d| vec![lookup::result_from_demographics(nhs, &d)])
                        .unwrap_or_default()
                })
            }
            LookupQuery::ByDetails(params) => client
                .patient_search(params.clone(), Lane::Interactive)
                .await
                .map(|r| r.results.iter().map(lookup::result_from_search).collect())
                .map_err(HubError::SystmOne),
        };
        let mut results = match remote {
            Ok(results) => results,
            Err(e) if e.is_unavailable() => return self.search_local(&query, &e),
            Err(e) => return Err(e),
        };
        let total = results.len();
        let notice = match total {
            0 => Some("No patients in SystmOne match these details. Check the spelling or try other details.".to_owned()),
            n if n > MAX_RESULTS_SHOWN => {
                results.truncate(MAX_RESULTS_SHOWN);
                Some(format!("{n} patients match; the first {MAX_RESULTS_SHOWN} are shown. Add more details to narrow the search."))
            }
            _ => None,
        };
        // Audited before anything is shown; if the audit cannot be written, nothing is.
        let (action, nhs) = match &query {
            LookupQuery::ByNhsNumber(nhs) => ("systmone.lookup", Some(nhs)),
            LookupQuery::ByDetails(_) => ("systmone.search", None),
        };
        let shown: Vec<String> = results
            .iter()
            .filter_map(|r| r.nhs_number.as_ref().map(NhsNumber::digits))
            .collect();
        self.audit_patient_read(
            action,
            nhs,
            serde_json::json!({
                "criteria": query.audit_criteria(),
                "matches": total,
                "nhs_numbers_shown": shown,
            }),
        )?;
        Ok(SearchOutcome {
            source: SearchSource::Systmone,
            results,
            total,
            notice,
        })
    }

    /// Demographics-only GetPatientRecord (exempt from the 30 s limit). None: no such patient.
    async fn fetch_demographics(
        &self,
        client: &SystmOneClient,
        nhs: &NhsNumber,
    ) -> HubResult<Option<Demographics>> {
        let filter = RecordFilter::with_flags([FilterFlag::Demographics]);
        match client
            .patient_record(nhs, Some(filter), Lane::Interactive)
            .await
        {
            Ok(record) => Ok(record.demographics),
            // SystmOne answers an unknown NHS number with a permanent error.
            Err(ClientError::Permanent(_)) => Ok(None),
            Err(e) => Err(HubError::SystmOne(e)),
        }
    }

    fn search_local(&self, query: &LookupQuery, why: &HubError) -> HubResult<SearchOutcome> {
        let patients = self.store().patients()?;
        let results: Vec<LookupResult> = patients
            .iter()
            .filter(|p| match query {
                LookupQuery::ByNhsNumber(nhs) => p.nhs_number.as_ref() == Some(nhs),
                LookupQuery::ByDetails(params) => {
                    let name = p.name.expose().to_lowercase();
                    // "Smith-Jones" matches "smith", "jones" and "smith-j" alike.
                    let words: Vec<&str> = name
                        .split_whitespace()
                        .chain(name.split([' ', '-']))
                        .collect();
                    let matches = |term: &Option<String>| {
                        term.as_ref()
                            .is_none_or(|t| words.iter().any(|w| w.starts_with(&t.to_lowercase())))
                    };
                    (params.surname.is_some() || params.first_name.is_some())
                        && matches(&params.surname)
                        && matches(&params.first_name)
                }
            })
            .map(|p| LookupResult {
                nhs_number: p.nhs_number.clone(),
                nhs_number_formatted: p.nhs_number.as_ref().map(NhsNumber::formatted),
                name: p.name.expose().to_owned(),
                date_of_birth: None,
                sex: None,
                address: format!("On this ward: {}", p.bed),
                exact_nhs_match: matches!(query, LookupQuery::ByNhsNumber(_)),
                // The ward's own copy carries no SystmOne end-of-record facts.
                warnings: Vec::new(),
            })
            .collect();
        Ok(SearchOutcome {
            source: SearchSource::LocalCache,
            total: results.len(),
            results,
            notice: Some(format!("{why} Showing patients already on this ward only.")),
        })
    }

    /// Fetches SystmOne's demographics and lays them beside the ward patient, field by field,
    /// for the clinician to check before confirming the link.
    pub async fn review_link(&self, patient_id: PatientId, nhs: &str) -> HubResult<MatchReview> {
        let nhs = NhsNumber::parse(nhs)?;
        let patient = self.store().patient(patient_id)?;
        let client = self.verified_client().await?;
        let fresh = self
            .fetch_demographics(client, &nhs)
            .await?
            .ok_or_else(|| HubError::NoSuchPatient(nhs.formatted()))?;
        self.audit_patient_read(
            "systmone.lookup",
            Some(&nhs),
            serde_json::json!({ "criteria": { "nhs_number": nhs.digits() }, "for_review_of_ward_patient": patient_id }),
        )?;
        let cached = self.cached_demographics(patient_id)?;
        let review = lookup::review(patient, nhs.clone(), fresh.clone(), cached.as_ref());
        self.pending_reviews()
            .insert((patient_id, nhs.digits()), fresh);
        Ok(review)
    }

    /// Links the ward patient to the reviewed SystmOne record: audited with who confirmed and
    /// when. Without an on-screen review (scripts), the demographics are fetched now.
    pub async fn confirm_link(&self, patient_id: PatientId, nhs: &str) -> HubResult<Patient> {
        let nhs = NhsNumber::parse(nhs)?;
        let actor = self.current_user()?;
        let reviewed = self.pending_reviews().remove(&(patient_id, nhs.digits()));
        let demographics = match reviewed {
            Some(d) => d,
            None => {
                let client = self.verified_client().await?;
                self.fetch_demographics(client, &nhs)
                    .await?
                    .ok_or_else(|| HubError::NoSuchPatient(nhs.formatted()))?
            }
        };
        let json = serde_json::to_string(&demographics)
            .map_err(|e| HubError::BadRequest(e.to_string()))?;
        let patient = self
            .store()
            .link_patient(actor.as_str(), patient_id, &nhs, &json)?;
        tracing::info!(patient = %patient_id, "patient linked to SystmOne record");
        Ok(patient)
    }

    /// Re-reads a linked patient's demographics (one click), saves them with a new "as of"
    /// time, and shows what changed since the last copy.
    pub async fn refresh_demographics(&self, patient_id: PatientId) -> HubResult<MatchReview> {
        let actor = self.current_user()?;
        let patient = self.store().patient(patient_id)?;
        let nhs = patient.nhs_number.clone().ok_or_else(|| {
            HubError::BadRequest("this patient is not linked to SystmOne yet".into())
        })?;
        let client = self.verified_client().await?;
        let fresh = self
            .fetch_demographics(client, &nhs)
            .await?
            .ok_or_else(|| HubError::NoSuchPatient(nhs.formatted()))?;
        let cached = self.cached_demographics(patient_id)?;
        let json =
            serde_json::to_string(&fresh).map_err(|e| HubError::BadRequest(e.to_string()))?;
        let patient = self
            .store()
            .refresh_demographics(actor.as_str(), patient_id, &json)?;
        Ok(lookup::review(patient, nhs, fresh, cached.as_ref()))
    }

    fn cached_demographics(&self, patient_id: PatientId) -> HubResult<Option<Demographics>> {
        Ok(self
            .store()
            .cached_demographics(patient_id)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// The patient open in SystmOne now. Polled by the window while it is visible; skipped
    /// while other work is queued, so following never takes the 1/s budget from it.
    pub async fn follow_systmone(&self) -> HubResult<FollowView> {
        let client = self.verified_client().await?;
        let queue = client.queue();
        if queue.interactive + queue.background > 0 || queue.in_flight.is_some() {
            return Ok(FollowView {
                nhs_number: None,
                nhs_number_formatted: None,
                patient: None,
                skipped_busy: true,
            });
        }
        let activity = client
            .current_activity(Lane::Background)
            .await
            .map_err(HubError::SystmOne)?;
        let nhs = activity
            .identity
            .as_ref()
            .and_then(|i| i.nhs_number())
            .cloned();
        let patient = match &nhs {
            Some(nhs) => self.store().patient_by_nhs_number(nhs)?,
            None => None,
        };
        if let Some(nhs) = &nhs {
            self.audit_follow_read(nhs)?;
        }
        Ok(FollowView {
            nhs_number_formatted: nhs.as_ref().map(NhsNumber::formatted),
            nhs_number: nhs,
            patient,
            skipped_busy: false,
        })
    }
}

impl Hub {
    /// A patient's record (or the parts named by `flags`) for `hubctl record`. A whole or
    /// filtered record waits for SystmOne's 30 s budget; demographics-only does not.
    pub async fn patient_record(
        &self,
        nhs: &str,
        flags: &[String],
    ) -> HubResult<systmone::codec::PatientRecord> {
        let nhs = NhsNumber::parse(nhs)?;
        let filter = if flags.is_empty() {
            None
        } else {
            let parsed = flags
                .iter()
                .map(|f| {
                    FilterFlag::parse(f.trim()).ok_or_else(|| {
                        HubError::BadRequest(format!(
                            "'{f}' is not a record filter; use one of {}",
                            FilterFlag::ALL
                                .iter()
                                .map(|f| f.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
                })
                .collect::<HubResult<Vec<_>>>()?;
            Some(RecordFilter::with_flags(parsed))
        };
        let client = self.verified_client().await?;
        let record = client
            .patient_record(&nhs, filter, Lane::Interactive)
            .await
            .map_err(HubError::SystmOne)?;
        // What was asked for (the parts), never what came back.
        let parts: Vec<&str> = if flags.is_empty() {
            vec!["whole record"]
        } else {
            flags.iter().map(|f| f.trim()).collect()
        };
        self.audit_patient_read(
            "systmone.record_read",
            Some(&nhs),
            serde_json::json!({ "criteria": { "nhs_number": nhs.digits() }, "parts": parts }),
        )?;
        Ok(record)
    }

    /// Writes the audit row of a read of patient data from SystmOne, under the acting person.
    /// Callers write it before showing anything, and show nothing when it fails: no read of
    /// a record goes unaudited.
    fn audit_patient_read(
        &self,
        action: &str,
        nhs: Option<&NhsNumber>,
        detail: serde_json::Value,
    ) -> HubResult<()> {
        let actor = self.current_user()?;
        let nhs = nhs.map(NhsNumber::digits);
        self.store()
            .audit_patient_read(actor.as_str(), action, nhs.as_deref(), detail)?;
        Ok(())
    }

    /// Follow mode polls every few seconds, so each poll is not audited: a follow read is
    /// audited when the patient open in SystmOne changes, and again at most once an hour while
    /// the same patient stays open. Chosen over "once per patient per hour" alone because
    /// returning to a patient (A, B, A) is a new look at A and is recorded as one; the hourly
    /// repeat shows a long stay on one record without an audit row every poll.
    fn audit_follow_read(&self, nhs: &NhsNumber) -> HubResult<()> {
        let Some(link) = &self.systmone else {
            return Ok(());
        };
        let digits = nhs.digits();
        let now = std::time::Instant::now();
        let due = {
            let last = link
                .last_follow_read
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match &*last {
                Some((previous, at)) => {
                    *previous != digits || now.duration_since(*at) >= FOLLOW_READ_REAUDIT
                }
                None => true,
            }
        };
        if !due {
            return Ok(());
        }
        self.audit_patient_read(
            "systmone.follow_read",
            Some(nhs),
            serde_json::json!({ "criteria": "the patient open in SystmOne" }),
        )?;
        *link
            .last_follow_read
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((digits, now));
        Ok(())
    }

    /// Saves the SystmOne APIKey in this PC's keychain (from Settings or `hubctl`).
    pub fn set_api_key(&self, raw: &str) -> HubResult<()> {
        let actor = self.current_user()?;
        secrets::store_api_key(raw).map_err(|e| HubError::BadRequest(e.to_string()))?;
        // The key itself is never audited or logged; that it changed, and by whom, is.
        self.store().set_setting(
            actor.as_str(),
            store::SettingKey::SystmOneApiKeyChangedAt,
            Some(&chrono::Local::now().to_rfc3339()),
        )?;
        Ok(())
    }

    pub fn clear_api_key(&self) -> HubResult<bool> {
        let actor = self.current_user()?;
        let removed = secrets::clear_api_key().map_err(|e| HubError::BadRequest(e.to_string()))?;
        self.store().set_setting(
            actor.as_str(),
            store::SettingKey::SystmOneApiKeyChangedAt,
            Some(&chrono::Local::now().to_rfc3339()),
        )?;
        Ok(removed)
    }
}

impl Hub {
    /// Proves the connection (and the demo guard) for `hubctl status`.
    pub async fn verified_client_probe(&self) -> HubResult<()> {
        self.verified_client().await.map(|_| ())
    }
}

impl Hub {
    /// The ward patient with this NHS number; one not yet on the ward is looked up in
    /// SystmOne and added from its demographics (bed not yet allocated), audited as added
    /// and linked by the current user. For scripted use (`hubctl notes add --nhs`).
    pub async fn patient_for_nhs(&self, nhs: &str) -> HubResult<Patient> {
        let nhs = NhsNumber::parse(nhs)?;
        if let Some(existing) = self.store().patient_by_nhs_number(&nhs)? {
            return Ok(existing);
        }
        let actor = self.current_user()?;
        let client = self.verified_client().await?;
        let demographics = self
            .fetch_demographics(client, &nhs)
            .await?
            .ok_or_else(|| HubError::NoSuchPatient(nhs.formatted()))?;
        let name = [
            demographics.first_name.as_deref(),
            demographics.surname.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let new = store::NewPatient {
            bed: domain::BedLabel::parse("Not yet allocated")?,
            name: domain::PatientName::parse(&name)?,
            nhs_number: None,
        };
        let json = serde_json::to_string(&demographics)
            .map_err(|e| HubError::BadRequest(e.to_string()))?;
        let mut store = self.store();
        let added = store.add_patient(actor.as_str(), &new)?;
        Ok(store.link_patient(actor.as_str(), added.id, &nhs, &json)?)
    }
}
