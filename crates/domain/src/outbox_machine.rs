//! The outbox state machine: pure, so every rule of "file exactly once" is in one place and
//! property-tested against a model. `store::outbox` loads an entry, asks [`apply`] for the
//! next state under the write lock, and saves it in the same transaction.
//!
//! The rules that make a kill at any instant safe:
//! - a claim (`Sending`) is committed *before* anything is sent, with a lease;
//! - a lease that expires (a crashed or killed worker) makes the entry `Unknown`, never
//!   `Queued`: the request may have reached SystmOne;
//! - `Unknown` is only ever left by reading the record back (found → `Filed`, not found →
//!   send again), and only after a short settle (see [`Policy::reconcile_grace`]): the
//!   request's own timeout has already run by then, so the read-back goes at the next free
//!   slot after it rather than after a fixed long wait;
//! - an `Unknown` entry whose earliest possible send was on an earlier day is parked for a
//!   human: the entered-today read (exempt from the 30 s limit) cannot see it;
//! - a success reply is the truth whoever hears it (a stale worker included); any other
//!   reply from a worker that no longer holds the claim is ignored;
//! - `Filed` and `FiledManually` are final (the database refuses to change them too).

use crate::FiledHow;
use chrono::{DateTime, Duration, Local};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to be sent; never sent (or known not filed).
    Queued,
    /// Claimed by a worker until `lease_until`. With `unknown_since`, the entry came from
    /// `Unknown` and the record must be read back before anything is sent.
    Sending {
        claimed_by: String,
        claimed_at: DateTime<Local>,
        lease_until: DateTime<Local>,
        unknown_since: Option<DateTime<Local>>,
    },
    /// Sent (or possibly sent) with no answer. `since` is the earliest moment it may have
    /// been sent; it is read back no earlier than `check_after`.
    Unknown {
        since: DateTime<Local>,
        check_after: DateTime<Local>,
    },
    /// A temporary error (the record is open elsewhere on this PC): not filed, try later.
    Retrying { after: DateTime<Local> },
    /// In the record. `how` is `Api` or `Reconciled`.
    Filed {
        event_uid: Option<String>,
        how: FiledHow,
    },
    /// Needs a person. `maybe_filed` when it may already be in the record (check first).
    Parked { reason: String, maybe_filed: bool },
    /// Clipboard path: the text was handed to the clinician to paste.
    AwaitingPasteConfirmation,
    /// The API came back while a paste was unconfirmed: ask the clinician, don't guess.
    PasteUnconfirmed,
    /// Pasted (or found in the record) by a clinician. Never sent by the API afterwards.
    FiledManually,
}

impl OutboxState {
    /// The value of the `outbox.state` column (the full state is in `state_detail`).
    pub fn kind(&self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending { .. } => "sending",
            OutboxState::Unknown { .. } => "unknown",
            OutboxState::Retrying { .. } => "retrying",
            OutboxState::Filed { .. } => "filed",
            OutboxState::Parked { .. } => "parked",
            OutboxState::AwaitingPasteConfirmation => "awaiting_paste_confirmation",
            OutboxState::PasteUnconfirmed => "paste_unconfirmed",
            OutboxState::FiledManually => "filed_manually",
        }
    }

    /// Final: nothing ever changes it again.
    pub fn is_final(&self) -> bool {
        matches!(self, OutboxState::Filed { .. } | OutboxState::FiledManually)
    }

    /// Work the worker will do without anyone's help.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            OutboxState::Queued
                | OutboxState::Sending { .. }
                | OutboxState::Unknown { .. }
                | OutboxState::Retrying { .. }
        )
    }

    /// When a worker may claim it (`None`: not claimable).
    pub fn due_at(&self) -> Option<Option<DateTime<Local>>> {
        match self {
            OutboxState::Queued => Some(None),
            OutboxState::Retrying { after } => Some(Some(*after)),
            OutboxState::Unknown { check_after, .. } => Some(Some(*check_after)),
            _ => None,
        }
    }

    /// A short sentence for staff.
    pub fn describe(&self) -> String {
        match self {
            OutboxState::Queued => "waiting to be filed".into(),
            OutboxState::Sending { .. } => "being filed now".into(),
            OutboxState::Unknown { .. } => {
                "sent, no answer yet: checking the record before trying again".into()
            }
            OutboxState::Retrying { .. } => {
                "the record is open elsewhere on this PC: will try again".into()
            }
            OutboxState::Filed {
                how: FiledHow::Reconciled,
                ..
            } => "filed (found in the record)".into(),
            OutboxState::Filed { .. } => "filed".into(),
            OutboxState::Parked { reason, .. } => format!("needs attention: {reason}"),
            OutboxState::AwaitingPasteConfirmation => {
                "copied for pasting: confirm once pasted into SystmOne".into()
            }
            OutboxState::PasteUnconfirmed => {
                "SystmOne can be reached again: was this note pasted into SystmOne? Please answer"
                    .into()
            }
            OutboxState::FiledManually => "pasted into SystmOne by a clinician".into(),
        }
    }
}

/// What the worker heard back from `file_narrative`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Filed {
        event_uid: Option<String>,
    },
    /// Timeout / silent drop: may or may not be filed.
    OutcomeUnknown,
    Temporary(String),
    Permanent(String),
    /// SystmOne not running / not logged in / device blocked / API switched off: nothing was sent.
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Claim {
        worker: String,
        lease: Duration,
    },
    ReconcileFound {
        worker: String,
        event_uid: Option<String>,
    },
    ReconcileNotFound {
        worker: String,
    },
    /// The read-back failed; `unavailable` when SystmOne could not be reached at all.
    ReadFailed {
        worker: String,
        unavailable: bool,
        error: String,
    },
    Reply {
        worker: String,
        outcome: SendOutcome,
    },
    /// Applied to a `Sending` entry whose lease has run out (its worker died).
    ExpireLease,
    /// A clinician confirms the text is in SystmOne (pasted, or found when checking).
    ConfirmInRecord,
    /// The clinician says the paste did NOT happen: file it by the API.
    PasteNotDone,
    ApiReturned,
    SwitchToClipboard,
    /// Staff checked a parked entry is not in the record (or fixed its cause): try again.
    Requeue,
}

/// Tunables, so tests can run the whole dance in milliseconds.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long after an answer was lost (or a worker's lease ran out) the record is read
    /// back. Counted from the moment the outcome became unknown, which for a silent reply
    /// is *after* the request's read timeout (30 s by default, against SystmOne's usual
    /// sub-second answer), so the write has had all that time to land already.
    ///
    /// Why it can be short (the default, [`RECONCILE_SETTLE_SECS`]): SystmOne answers an
    /// `UpdatePatientRecord` once it has filed it (without `LeaveRecordOpen` the record is
    /// saved at once [spec]), so a reply lost to a dropped connection or to garbage comes
    /// after the filing, and a throttled request is never processed at all [spec]. Why it is
    /// not zero: TPP says the same silence happens, rarely, when its servers are
    /// unresponsive [spec], and the client fetches from them on a slow path — a write can
    /// then still be in progress when we stop waiting. Whether the client serialises a later
    /// read behind it is not known (to be probed on TPP's Demo system), so a few seconds are
    /// kept for a write that was just completing; the 1 s send slot means the read-back
    /// could not go much sooner anyway. If the read-back itself meets silence, the entry
    /// stays `Unknown` with backoff: it is never resent until a read answers.
    pub reconcile_grace: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// After this many attempts the entry is parked instead of retried.
    pub max_attempts: u32,
}

/// The default settle after a lost answer before reading back (see
/// [`Policy::reconcile_grace`]). It was 90 s, which made one lost reply cost two minutes.
pub const RECONCILE_SETTLE_SECS: i64 = 5;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            reconcile_grace: Duration::seconds(RECONCILE_SETTLE_SECS),
            backoff_base: Duration::seconds(5),
            backoff_max: Duration::minutes(5),
            max_attempts: 60,
        }
    }
}

impl Policy {
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1i32 << attempts.min(16);
        let base = self.backoff_base * factor;
        if base > self.backoff_max {
            self.backoff_max
        } else {
            base
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub next: OutboxState,
    /// Counts towards `attempts` (a request reached SystmOne, or was refused by it).
    pub counts_attempt: bool,
    /// Replaces `last_error` when present.
    pub error: Option<String>,
    /// A success reply for an entry already filed: SystmOne may hold two copies. Audited
    /// loudly; should never happen with leases longer than the request timeout.
    pub duplicate_success: bool,
}

impl Transition {
    fn to(next: OutboxState) -> Self {
        Transition {
            next,
            counts_attempt: false,
            error: None,
            duplicate_success: false,
        }
    }
    fn attempt(next: OutboxState, error: Option<String>) -> Self {
        Transition {
            next,
            counts_attempt: true,
            error,
            duplicate_success: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this entry is {0}; that action does not apply")]
    NotApplicable(&'static str),
    #[error("this entry is not due yet")]
    NotDue,
    #[error("the record must be read back before this entry is sent again")]
    MustReconcileFirst,
    #[error("this entry may already be in the record: check SystmOne, then choose 'not in the record' to send it again")]
    MaybeFiled,
}

/// The next state for `event`, or why it does not apply. `attempts` is the entry's count so far.
pub fn apply(
    state: &OutboxState,
    attempts: u32,
    event: &Event,
    now: DateTime<Local>,
    policy: &Policy,
) -> Result<Transition, Refusal> {
    use OutboxState as S;
    let held_by =
        |worker: &str| matches!(state, S::Sending { claimed_by, .. } if claimed_by == worker);
    match event {
        Event::Claim { worker, lease } => {
            let due = state.due_at().ok_or(Refusal::NotApplicable(state.kind()))?;
            if due.is_some_and(|at| at > now) {
                return Err(Refusal::NotDue);
            }
            let unknown_since = match state {
                S::Unknown { since, .. } => Some(*since),
                _ => None,
            };
            if let Some(since) = unknown_since {
                if since.date_naive() != now.date_naive() {
                    return Ok(Transition::to(S::Parked {
                        reason: format!(
                            "sent on {} with no answer and not confirmed since; check SystmOne for this note's reference, then mark it filed or send it again",
                            since.format("%d/%m/%Y %H:%M")
                        ),
                        maybe_filed: true,
                    }));
                }
            }
            Ok(Transition::to(S::Sending {
                claimed_by: worker.clone(),
                claimed_at: now,
                lease_until: now + *lease,
                unknown_since,
            }))
        }
        Event::ReconcileFound { worker, event_uid } => match state {
            S::Filed { .. } | S::FiledManually => Ok(Transition::to(state.clone())),
            S::Sending {
                unknown_since: Some(_),
                ..
            } if held_by(worker) => Ok(Transition::to(S::Filed {
                event_uid: event_uid.clone(),
                how: FiledHow::Reconciled,
            })),
            // Found in the record, whoever looked: that is the truth.
            S::Unknown { .. } | S::Sending { .. } | S::Parked { .. } => {
                Ok(Transition::to(S::Filed {
                    event_uid: event_uid.clone(),
                    how: FiledHow::Reconciled,
                }))
            }
            _ => Err(Refusal::NotApplicable(state.kind())),
        },
        Event::ReconcileNotFound { worker } => match state {
            S::Sending {
                claimed_by,
                claimed_at,
                lease_until,
                unknown_since: Some(_),
            } if held_by(worker) => Ok(Transition::to(S::Sending {
                claimed_by: claimed_by.clone(),
                claimed_at: *claimed_at,
                lease_until: *lease_until,
                unknown_since: None,
            })),
            _ => Ok(Transition::to(state.clone())),
        },
        Event::ReadFailed {
            worker,
            unavailable,
            error,
        } => match state {
            S::Sending {
                unknown_since: Some(since),
                ..
            } if held_by(worker) => {
                let back = S::Unknown {
                    since: *since,
                    check_after: now + policy.backoff(attempts),
                };
                if *unavailable {
                    Ok(Transition {
                        error: Some(error.clone()),
                        ..Transition::to(back)
                    })
                } else if attempts + 1 >= policy.max_attempts {
                    Ok(Transition::attempt(
                        S::Parked {
                            reason: format!("the record could not be checked: {error}"),
                            maybe_filed: true,
                        },
                        Some(error.clone()),
                    ))
                } else {
                    Ok(Transition::attempt(back, Some(error.clone())))
                }
            }
            _ => Ok(Transition::to(state.clone())),
        },
        Event::Reply { worker, outcome } => {
            let mine = match state {
                S::Sending {
                    claimed_at,
                    unknown_since,
                    ..
                } if held_by(worker) => Some((*claimed_at, *unknown_since)),
                _ => None,
            };
            match (outcome, mine) {
                // The worker skipped the read-back: a protocol bug. Refused; the lease expiry
                // then sends the entry through reconciliation, which finds it if it was filed.
                (_, Some((_, Some(_)))) => Err(Refusal::MustReconcileFirst),
                (SendOutcome::Filed { event_uid }, _) => Ok(match state {
                    S::Filed { .. } | S::FiledManually => Transition {
                        duplicate_success: true,
                        ..Transition::to(state.clone())
                    },
                    // A success is the truth whoever hears it, even a worker that lost its claim.
                    _ => Transition::attempt(
                        S::Filed {
                            event_uid: event_uid.clone(),
                            how: FiledHow::Api,
                        },
                        None,
                    ),
                }),
                // A worker that lost its claim: the current holder (or the lease expiry) decides.
                (_, None) => Ok(Transition::to(state.clone())),
                (SendOutcome::OutcomeUnknown, Some((claimed_at, None))) => Ok(Transition::attempt(
                    S::Unknown {
                        since: claimed_at,
                        check_after: now + policy.reconcile_grace,
                    },
                    Some(
                        "SystmOne did not answer in time; the note may or may not be filed".into(),
                    ),
                )),
                (SendOutcome::Temporary(msg), _) if attempts + 1 >= policy.max_attempts => {
                    Ok(Transition::attempt(
                        S::Parked {
                            reason: format!("still failing after {} attempts: {msg}", attempts + 1),
                            maybe_filed: false,
                        },
                        Some(msg.clone()),
                    ))
                }
                (SendOutcome::Temporary(msg), _) => Ok(Transition::attempt(
                    S::Retrying {
                        after: now + policy.backoff(attempts),
                    },
                    Some(msg.clone()),
                )),
                (SendOutcome::Permanent(msg), _) => Ok(Transition::attempt(
                    S::Parked {
                        reason: format!("SystmOne refused it: {msg}"),
                        maybe_filed: false,
                    },
                    Some(msg.clone()),
                )),
                (SendOutcome::Unavailable(msg), _) => Ok(Transition {
                    error: Some(msg.clone()),
                    ..Transition::to(S::Queued)
                }),
            }
        }
        Event::ExpireLease => match state {
            S::Sending {
                lease_until,
                claimed_at,
                unknown_since,
                ..
            } if *lease_until <= now => {
                let since = unknown_since.map_or(*claimed_at, |s| s.min(*claimed_at));
                Ok(Transition {
                    error: Some(
                        "the app stopped while filing; checking the record before trying again"
                            .into(),
                    ),
                    ..Transition::to(S::Unknown {
                        since,
                        check_after: now + policy.reconcile_grace,
                    })
                })
            }
            S::Sending { .. } => Err(Refusal::NotDue),
            _ => Err(Refusal::NotApplicable(state.kind())),
        },
        Event::ConfirmInRecord => match state {
            S::AwaitingPasteConfirmation | S::PasteUnconfirmed | S::Parked { .. } => {
                Ok(Transition::to(S::FiledManually))
            }
            _ => Err(Refusal::NotApplicable(state.kind())),
        },
        Event::PasteNotDone => match state {
            S::PasteUnconfirmed => Ok(Transition::to(S::Queued)),
            _ => Err(Refusal::NotApplicable(state.kind())),
        },
        Event::ApiReturned => match state {
            S::AwaitingPasteConfirmation => Ok(Transition::to(S::PasteUnconfirmed)),
            _ => Ok(Transition::to(state.clone())),
        },
        Event::SwitchToClipboard => match state {
            S::Queued
            | S::Retrying { .. }
            | S::Parked {
                maybe_filed: false, ..
            } => Ok(Transition::to(S::AwaitingPasteConfirmation)),
            S::Parked {
                maybe_filed: true, ..
            } => Err(Refusal::MaybeFiled),
            _ => Err(Refusal::NotApplicable(state.kind())),
        },
        Event::Requeue => match state {
            S::Parked { .. } => Ok(Transition::to(S::Queued)),
            _ => Err(Refusal::NotApplicable(state.kind())),
        },
    }
}

#[cfg(test)]
mod tests;
