//! An in-memory SystmOne record implementing [`RecordWriter`], with scripted and random
//! faults (answers lost after or before the write applied, temporary and permanent errors,
//! unavailability). For tests and demos only: the app files through the real client.

use chrono::NaiveDate;
use domain::SystmOneFailure;
use domain::{render, NhsNumber};
use hub::notes::{FiledEntry, RecordWriter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Filed, but the answer is lost (a slow client past the timeout).
    TimeoutApplied,
    /// Silently dropped (throttled): not filed, no answer.
    TimeoutNotApplied,
    /// The record is open elsewhere: not filed.
    Temporary,
    /// Refused for good.
    Permanent,
    /// Not logged in / API off: nothing happened.
    Unavailable,
}

/// Probabilities (0..1) of each fault on a send, drawn from a seeded generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    pub timeout_applied: f64,
    pub timeout_not_applied: f64,
    pub temporary: f64,
    pub read_failure: f64,
}

/// How the fake's record reads a filed entry back: the same choices as the simulator's
/// narrative profiles (`simulator::profile::NarrativeReadBack`), because real SystmOne does
/// not give lines back as sent [seen].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadBack {
    /// One Narrative, the lines as filed.
    AsSent,
    /// One padded Line: the lines joined by spaces, blank lines dropped (the real shape).
    #[default]
    JoinedSpaces,
    /// One padded Line: the lines joined by newlines.
    JoinedNewlines,
    /// One Narrative per line.
    NarrativePerLine,
}

impl ReadBack {
    pub const ALL: [ReadBack; 4] = [
        ReadBack::AsSent,
        ReadBack::JoinedSpaces,
        ReadBack::JoinedNewlines,
        ReadBack::NarrativePerLine,
    ];

    /// The Narratives (each a list of Lines) an entry of `lines` reads back as.
    pub fn narratives(self, lines: &[String]) -> Vec<Vec<String>> {
        match self {
            ReadBack::AsSent => vec![lines.to_vec()],
            ReadBack::JoinedSpaces => {
                let joined = lines
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![vec![format!(" {joined}")]]
            }
            ReadBack::JoinedNewlines => vec![vec![format!(" {}", lines.join("\n"))]],
            ReadBack::NarrativePerLine => lines.iter().map(|l| vec![l.clone()]).collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeEvent {
    pub nhs: String,
    pub lines: Vec<String>,
    pub day: NaiveDate,
    pub event_uid: String,
    pub interactive: bool,
}

#[derive(Default)]
struct State {
    events: Vec<FakeEvent>,
    /// Faults for the next sends, in order (before random ones).
    script: VecDeque<Fault>,
    /// Faults for every send of the entry with this reference line (a poison entry).
    per_reference: HashMap<String, Fault>,
    rates: FaultRates,
    rng: Option<ChaCha8Rng>,
    sends: usize,
    reads: usize,
    in_flight: Vec<String>,
    /// Two sends of one entry at the same moment: must never happen.
    concurrent_sends: Vec<String>,
    send_log: Vec<String>,
}

pub struct FakeRecord {
    state: Mutex<State>,
    latency: Duration,
    read_back: ReadBack,
}

impl Default for FakeRecord {
    fn default() -> Self {
        FakeRecord::new()
    }
}

fn reference_of(lines: &[String]) -> String {
    lines.last().cloned().unwrap_or_default()
}

impl FakeRecord {
    pub fn new() -> Self {
        FakeRecord {
            state: Mutex::new(State::default()),
            latency: Duration::ZERO,
            read_back: ReadBack::default(),
        }
    }

    /// Each request takes `latency` (widens race windows in concurrency tests).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Reads entries back in this shape (default: the real one, joined by spaces).
    pub fn with_read_back(mut self, read_back: ReadBack) -> Self {
        self.read_back = read_back;
        self
    }

    pub fn with_random_faults(self, seed: u64, rates: FaultRates) -> Self {
        {
            let mut s = self.lock();
            s.rates = rates;
            s.rng = Some(ChaCha8Rng::seed_from_u64(seed));
        }
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().script.extend(faults);
    }

    pub fn poison(&self, reference_line: &str, fault: Fault) {
        self.lock()
            .per_reference
            .insert(reference_line.to_owned(), fault);
    }

    pub fn cure(&self, reference_line: &str) {
        self.lock().per_reference.remove(reference_line);
    }

    /// Stops random faults (the "SystmOne behaves again" phase).
    pub fn calm(&self) {
        let mut s = self.lock();
        s.rates = FaultRates::default();
        s.script.clear();
    }

    /// How many times the entry with this reference line is in the record.
    pub fn copies(&self, reference_line: &str) -> usize {
        self.lock()
            .events
            .iter()
            .filter(|e| e.lines.iter().any(|l| l == reference_line))
            .count()
    }

    pub fn events(&self) -> Vec<FakeEvent> {
        self.lock().events.clone()
    }

    pub fn sends(&self) -> usize {
        self.lock().sends
    }

    pub fn reads(&self) -> usize {
        self.lock().reads
    }

    /// Reference lines in the order they were sent (one per send attempt).
    pub fn send_log(&self) -> Vec<String> {
        self.lock().send_log.clone()
    }

    pub fn concurrent_sends(&self) -> Vec<String> {
        self.lock().concurrent_sends.clone()
    }

    fn store_event(s: &mut State, nhs: &NhsNumber, lines: &[String], interactive: bool) -> String {
        let uid = format!("{:016X}", s.events.len() + 1);
        s.events.push(FakeEvent {
            nhs: nhs.digits(),
            lines: lines.to_vec(),
            day: chrono::Local::now().date_naive(),
            event_uid: uid.clone(),
            interactive,
        });
        uid
    }

    fn pick_fault(s: &mut State, reference: &str) -> Option<Fault> {
        if let Some(f) = s.per_reference.get(reference) {
            return Some(*f);
        }
        if let Some(f) = s.script.pop_front() {
            return Some(f);
        }
        let rates = s.rates;
        let rng = s.rng.as_mut()?;
        let roll: f64 = rng.gen();
        let mut edge = rates.timeout_applied;
        if roll < edge {
            return Some(Fault::TimeoutApplied);
        }
        edge += rates.timeout_not_applied;
        if roll < edge {
            return Some(Fault::TimeoutNotApplied);
        }
        edge += rates.temporary;
        if roll < edge {
            return Some(Fault::Temporary);
        }
        None
    }
}

impl RecordWriter for FakeRecord {
    async fn file_narrative(
        &self,
        nhs: &NhsNumber,
        lines: &[String],
        interactive: bool,
    ) -> Result<FiledEntry, SystmOneFailure> {
        let reference = reference_of(lines);
        {
            let mut s = self.lock();
            s.sends += 1;
            s.send_log.push(reference.clone());
            if s.in_flight.contains(&reference) {
                s.concurrent_sends.push(reference.clone());
            }
            s.in_flight.push(reference.clone());
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let mut s = self.lock();
        if let Some(pos) = s.in_flight.iter().position(|r| *r == reference) {
            s.in_flight.remove(pos);
        }
        match Self::pick_fault(&mut s, &reference) {
            None => Ok(FiledEntry {
                event_uid: Some(Self::store_event(&mut s, nhs, lines, interactive)),
            }),
            Some(Fault::TimeoutApplied) => {
                Self::store_event(&mut s, nhs, lines, interactive);
                Err(SystmOneFailure::MaybeSent)
            }
            Some(Fault::TimeoutNotApplied) => Err(SystmOneFailure::MaybeSent),
            Some(Fault::Temporary) => Err(SystmOneFailure::NotSent(
                "the patient's record is open on this PC".into(),
            )),
            Some(Fault::Permanent) => Err(SystmOneFailure::Refused("patient not found".into())),
            Some(Fault::Unavailable) => Err(SystmOneFailure::Unavailable(
                "SystmOne is not logged in".into(),
            )),
        }
    }

    async fn find_entered_today(
        &self,
        nhs: &NhsNumber,
        reference_line: &str,
    ) -> Result<Option<FiledEntry>, SystmOneFailure> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let mut s = self.lock();
        s.reads += 1;
        let rate = s.rates.read_failure;
        if let Some(rng) = s.rng.as_mut() {
            if rng.gen::<f64>() < rate {
                return Err(SystmOneFailure::MaybeSent);
            }
        }
        let today = chrono::Local::now().date_naive();
        let digits = nhs.digits();
        let read_back = self.read_back;
        Ok(s.events
            .iter()
            .find(|e| {
                let narratives = read_back.narratives(&e.lines);
                e.nhs == digits
                    && e.day == today
                    && render::narrative_carries_reference(
                        narratives.iter().flatten().map(String::as_str),
                        reference_line,
                    )
            })
            .map(|e| FiledEntry {
                event_uid: Some(e.event_uid.clone()),
            }))
    }
}
