//! The outbox worker: claims one due entry at a time and files it through a [`RecordWriter`]
//! (implemented by the lead over `systmone::client::SystmOneClient`).
//!
//! Kill-safety (a `kill -9` at any instant keeps "exactly once"):
//! 1. the claim is committed (with a lease) before any request is sent;
//! 2. an entry claimed from `Unknown` is read back first (`find_entered_today`, exempt from
//!    TPP's 30 s limit): found → filed (reconciled); not found → that fact is committed,
//!    then the entry is sent;
//! 3. the reply is committed; if the process dies between 1 and 3, the lease expires and the
//!    entry becomes `Unknown` — so it goes through step 2 again, never straight to a resend.
//!
//! The store lock is never held across a SystmOne request: the window keeps working while a
//! request waits for its answer. Each call is bounded by `call_timeout` (a backstop: the
//! client has its own read timeout); the lease covers a read-back plus a send.

use super::outbox_machine::{Event, OutboxState, Policy, SendOutcome};
use super::NotesError;
use chrono::{DateTime, Local};
use domain::{NhsNumber, OutboxId, SystmOneFailure};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use store::{OutboxClaim, Store};

/// What SystmOne created for a filed entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FiledEntry {
    /// UpdatePatientRecord's `EventUID`, when SystmOne returned one.
    pub event_uid: Option<String>,
}

/// Files narrative entries in SystmOne and finds them again. Implementations must not retry
/// an `UpdatePatientRecord` on their own: the outbox decides (after reconciling).
pub trait RecordWriter: Sync {
    /// One `UpdatePatientRecord` with one Narrative event of `lines`. `interactive` =
    /// LeaveRecordOpen (the clinician's "file now"); background filing omits it.
    fn file_narrative(
        &self,
        nhs: &NhsNumber,
        lines: &[String],
        interactive: bool,
    ) -> impl Future<Output = Result<FiledEntry, SystmOneFailure>> + Send;

    /// Reads the Narrative entered today (MinEntryDate = MaxEntryDate = today) and returns the
    /// event whose narrative carries `reference_line` (`render::narrative_carries_reference`:
    /// whitespace, padding, joined lines and several Narratives tolerated), if any.
    fn find_entered_today(
        &self,
        nhs: &NhsNumber,
        reference_line: &str,
    ) -> impl Future<Output = Result<Option<FiledEntry>, SystmOneFailure>> + Send;
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this process in claims and the audit ("hub on WARD-PC-3", "hubctl").
    pub worker_name: String,
    /// Upper bound on one SystmOne request, after which the outcome is unknown.
    pub call_timeout: Duration,
    /// Added to the lease beyond two calls (store writes, clock steps).
    pub lease_margin: Duration,
    pub policy: Policy,
}

impl WorkerConfig {
    pub fn new(worker_name: impl Into<String>) -> Self {
        WorkerConfig {
            worker_name: worker_name.into(),
            call_timeout: Duration::from_secs(45),
            lease_margin: Duration::from_secs(15),
            policy: Policy::default(),
        }
    }

    /// Long enough for a read-back and a send, with a margin: a live worker never loses its
    /// claim mid-request, which is what keeps two workers from sending one entry.
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.call_timeout * 2 + self.lease_margin)
            .unwrap_or(chrono::Duration::minutes(5))
    }
}

/// What one worker step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerStep {
    /// Nothing is due now.
    Idle,
    /// An entry was worked on; this is its state afterwards.
    Worked { id: OutboxId, state: OutboxState },
    /// SystmOne is not available; the entry stays queued with no attempt counted. Stop draining.
    Unavailable { id: OutboxId, reason: String },
    /// The lease ran too short to send safely; the entry will be reconciled later.
    Abandoned { id: OutboxId },
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock cannot leave a half-written row: every write is a transaction.
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn record(
    store: &Mutex<Store>,
    cfg: &WorkerConfig,
    id: OutboxId,
    event: &Event,
) -> Result<OutboxState, NotesError> {
    // A busy database (another process writing) is retried briefly; if it stays busy the
    // lease expires and the entry is reconciled, so giving up here is safe.
    let mut last = None;
    for _ in 0..3 {
        match lock(store).apply_outbox_event(&cfg.worker_name, id, event, &cfg.policy) {
            Ok(entry) => return Ok(entry.state),
            Err(store::StoreError::Locked) => last = Some(store::StoreError::Locked),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or(
        NotesError::Refused("could not record the outcome".into()),
        NotesError::from,
    ))
}

async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, SystmOneFailure>>,
) -> Result<T, SystmOneFailure> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(SystmOneFailure::MaybeSent))
}

fn still_leased(claim: &OutboxClaim, cfg: &WorkerConfig) -> bool {
    let needed =
        chrono::Duration::from_std(cfg.call_timeout).unwrap_or(chrono::Duration::minutes(1));
    store::now() + needed < claim.lease_until
}

/// Claims and works the first due entry. Never holds the store lock across a request.
pub async fn run_worker_once<W: RecordWriter>(
    store: &Mutex<Store>,
    writer: &W,
    cfg: &WorkerConfig,
) -> Result<WorkerStep, NotesError> {
    let token = format!(
        "{}#{}",
        cfg.worker_name,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let claim = lock(store).claim_next_outbox_entry(&token, cfg.lease(), &cfg.policy)?;
    let Some(claim) = claim else {
        return Ok(WorkerStep::Idle);
    };
    let id = claim.entry.id;
    // Refused before anything is sent, and parked for a person: a note with no NHS number
    // (only reachable if an unlinked clipboard note was switched back to the API), and one
    // whose queued lines no longer hash to the approved SHA-256 (a damaged or edited
    // database, a bug): what goes out must be exactly what the clinician approved.
    let nhs = claim.entry.payload.nhs_number.clone();
    let refusal = match &nhs {
        None => Some("the patient has no NHS number linked to SystmOne"),
        Some(_)
            if domain::render::text_sha256(claim.entry.payload.lines.expose())
                != claim.entry.payload.text_sha256 =>
        {
            tracing::error!(outbox = %id, "queued note text does not match its approval hash");
            Some(
                "the text queued for SystmOne no longer matches what was approved; it was not sent",
            )
        }
        Some(_) => None,
    };
    let (Some(nhs), None) = (nhs, refusal) else {
        let outcome = SendOutcome::Permanent(refusal.unwrap_or_default().into());
        let state = record(
            store,
            cfg,
            id,
            &Event::Reply {
                worker: token,
                outcome,
            },
        )?;
        return Ok(WorkerStep::Worked { id, state });
    };
    let payload = &claim.entry.payload;

    if claim.reconcile_first {
        let found = bounded(
            cfg.call_timeout,
            writer.find_entered_today(&nhs, &payload.reference_line),
        )
        .await;
        let event = match found {
            Ok(Some(filed)) => Event::ReconcileFound {
                worker: token.clone(),
                event_uid: filed.event_uid,
            },
            Ok(None) => Event::ReconcileNotFound {
                worker: token.clone(),
            },
            Err(SystmOneFailure::Unavailable(reason)) => {
                record(
                    store,
                    cfg,
                    id,
                    &Event::ReadFailed {
                        worker: token,
                        unavailable: true,
                        error: reason.clone(),
                    },
                )?;
                return Ok(WorkerStep::Unavailable { id, reason });
            }
            Err(e) => Event::ReadFailed {
                worker: token.clone(),
                unavailable: false,
                error: e.to_string(),
            },
        };
        let state = record(store, cfg, id, &event)?;
        if !matches!(
            state,
            OutboxState::Sending {
                unknown_since: None,
                ..
            }
        ) {
            return Ok(WorkerStep::Worked { id, state });
        }
    }

    if !still_leased(&claim, cfg) {
        return Ok(WorkerStep::Abandoned { id });
    }
    let lines = payload.lines.expose();
    let outcome = match bounded(
        cfg.call_timeout,
        writer.file_narrative(&nhs, lines, claim.entry.interactive),
    )
    .await
    {
        Ok(filed) => SendOutcome::Filed {
            event_uid: filed.event_uid,
        },
        Err(SystmOneFailure::MaybeSent) => SendOutcome::OutcomeUnknown,
        Err(SystmOneFailure::NotSent(m)) => SendOutcome::Temporary(m),
        Err(SystmOneFailure::Refused(m)) => SendOutcome::Permanent(m),
        Err(SystmOneFailure::Unavailable(m)) => SendOutcome::Unavailable(m),
    };
    let unavailable = match &outcome {
        SendOutcome::Unavailable(reason) => Some(reason.clone()),
        _ => None,
    };
    let state = record(
        store,
        cfg,
        id,
        &Event::Reply {
            worker: token,
            outcome,
        },
    )?;
    Ok(match unavailable {
        Some(reason) => WorkerStep::Unavailable { id, reason },
        None => WorkerStep::Worked { id, state },
    })
}

/// What a drain did, for `hubctl sync --until-empty` and the window's status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub steps: usize,
    pub filed: Vec<OutboxId>,
    pub parked: Vec<(OutboxId, String)>,
    /// Set when SystmOne was unavailable: draining stopped, entries stay queued.
    pub unavailable: Option<String>,
    /// Entries still waiting (retry not yet due, reconciliation grace, another worker's claim)
    /// when `max_wait` ran out.
    pub still_pending: usize,
}

/// Works entries until none is pending (or SystmOne is unavailable, or `max_wait` passes),
/// sleeping until the next entry is due.
pub async fn drain_until_empty<W: RecordWriter>(
    store: &Mutex<Store>,
    writer: &W,
    cfg: &WorkerConfig,
    max_wait: Duration,
) -> Result<DrainReport, NotesError> {
    let started = std::time::Instant::now();
    let mut report = DrainReport::default();
    loop {
        match run_worker_once(store, writer, cfg).await? {
            WorkerStep::Worked { id, state } => {
                report.steps += 1;
                match state {
                    OutboxState::Filed { .. } => report.filed.push(id),
                    OutboxState::Parked { reason, .. } => report.parked.push((id, reason)),
                    _ => {}
                }
                continue;
            }
            WorkerStep::Abandoned { .. } => {
                report.steps += 1;
                continue;
            }
            WorkerStep::Unavailable { reason, .. } => {
                report.steps += 1;
                report.unavailable = Some(reason);
            }
            WorkerStep::Idle => {}
        }
        let pending: Vec<OutboxState> = lock(store)
            .outbox_entries(false)?
            .into_iter()
            .map(|e| e.state)
            .filter(OutboxState::is_pending)
            .collect();
        report.still_pending = pending.len();
        if pending.is_empty() || report.unavailable.is_some() || started.elapsed() >= max_wait {
            return Ok(report);
        }
        let wait = next_wake(&pending, store::now())
            .min(max_wait.saturating_sub(started.elapsed()))
            .max(Duration::from_millis(5));
        tokio::time::sleep(wait).await;
    }
}

/// How long until some pending entry may be due (capped at one second, so new work is seen).
fn next_wake(pending: &[OutboxState], now: DateTime<Local>) -> Duration {
    let soonest = pending
        .iter()
        .filter_map(|s| match s {
            OutboxState::Sending { lease_until, .. } => Some(*lease_until),
            other => other.due_at().map(|due| due.unwrap_or(now)),
        })
        .min()
        .unwrap_or(now);
    (soonest - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .min(Duration::from_secs(1))
}
