//! What to do next within SystmOne's limits. Pure: the engine gathers a [`PlanInput`]
//! from the store; the scheduler runs the returned operations in order, one request per
//! `request_interval`, and asks again.
//!
//! Order of work in one plan:
//! 1. entered-today pulls that settle a create whose outcome is unknown (exempt from the
//!    30 s limit), once the grace period has passed;
//! 2. pushes of pending ward changes (creates, updates, completions: not throttled);
//! 3. at most one full Tasks pull, when GetPatientRecord's 30 s budget allows: a patient
//!    with an unknown create from an earlier day first, then patients flagged
//!    `full_pull_wanted`, then never-confirmed patients, then the longest-unconfirmed;
//! 4. entered-today pulls of every linked patient not pulled within `today_pull_every`,
//!    least recently pulled first.

use crate::tasksync::merge::FieldChanges;
use chrono::{DateTime, Local, TimeDelta};
use domain::task_link::{PatientTaskSync, TaskUid};
use domain::{NhsNumber, PatientId, TaskId};
use std::collections::HashSet;

/// One unit of work for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// GetPatientRecord Tasks with MinEntryDate = MaxEntryDate = today (not throttled).
    PullToday {
        patient_id: PatientId,
        nhs: NhsNumber,
    },
    /// GetPatientRecord Tasks, no date filter (once per 30 s per PC).
    PullFull {
        patient_id: PatientId,
        nhs: NhsNumber,
    },
    /// UpdatePatientRecord NonClinical/Task without a TaskUID.
    Create { task_id: TaskId },
    /// UpdatePatientRecord NonClinical/Task with the TaskUID and only the changed fields.
    /// The engine re-reads the task before sending, so a newer edit is sent instead.
    Update {
        task_id: TaskId,
        task_uid: TaskUid,
        changes: FieldChanges,
    },
    /// As `Update`, with Status Completed (plus any unsent ward edits, so none is lost).
    Complete {
        task_id: TaskId,
        task_uid: TaskUid,
        changes: FieldChanges,
    },
}

impl Op {
    pub fn is_full_pull(&self) -> bool {
        matches!(self, Op::PullFull { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::PullToday { .. } => "pull_today",
            Op::PullFull { .. } => "pull_full",
            Op::Create { .. } => "create",
            Op::Update { .. } => "update",
            Op::Complete { .. } => "complete",
        }
    }
}

/// SystmOne's limits and the sync's own pacing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgets {
    /// At most one request per second from all applications on the PC.
    pub request_interval: TimeDelta,
    /// GetPatientRecord (other than the exemptions) at most once per 30 s.
    pub full_pull_interval: TimeDelta,
    /// How often each linked patient gets an entered-today pull.
    pub today_pull_every: TimeDelta,
    /// How long after an unanswered create before a pull may prove it was not filed
    /// (a slow SystmOne may still file a request after we stopped waiting).
    pub unknown_outcome_grace: TimeDelta,
    /// Wait before resending after a temporary error or no answer.
    pub retry_backoff: TimeDelta,
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            request_interval: TimeDelta::seconds(1),
            full_pull_interval: TimeDelta::seconds(30),
            today_pull_every: TimeDelta::seconds(30),
            unknown_outcome_grace: TimeDelta::seconds(60),
            retry_backoff: TimeDelta::seconds(30),
        }
    }
}

/// A create whose outcome is unknown, waiting for a pull that can settle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileNeed {
    pub patient_id: PatientId,
    pub nhs: NhsNumber,
    /// Sent on an earlier day: only a full pull can show it.
    pub needs_full_pull: bool,
    pub ready_at: DateTime<Local>,
}

#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    pub patients: Vec<PatientTaskSync>,
    /// Ready pushes, in the order they should go.
    pub pushes: Vec<Op>,
    pub reconciles: Vec<ReconcileNeed>,
    /// The last full pull sent from this PC (the 30 s budget is per PC).
    pub last_full_pull_at: Option<DateTime<Local>>,
}

pub use domain::task_link::{today_pull_can_settle, MIDNIGHT_MARGIN_MINUTES};

/// Whether GetPatientRecord's 30 s budget allows a full pull at `now`.
pub fn full_pull_allowed(
    last: Option<DateTime<Local>>,
    now: DateTime<Local>,
    budgets: &Budgets,
) -> bool {
    last.is_none_or(|last| now - last >= budgets.full_pull_interval)
}

pub fn plan(input: &PlanInput, now: DateTime<Local>, budgets: &Budgets) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut pulled: HashSet<PatientId> = HashSet::new();

    for r in input
        .reconciles
        .iter()
        .filter(|r| !r.needs_full_pull && r.ready_at <= now)
    {
        if pulled.insert(r.patient_id) {
            ops.push(Op::PullToday {
                patient_id: r.patient_id,
                nhs: r.nhs.clone(),
            });
        }
    }

    ops.extend(input.pushes.iter().cloned());

    if full_pull_allowed(input.last_full_pull_at, now, budgets) {
        let urgent: HashSet<PatientId> = input
            .reconciles
            .iter()
            .filter(|r| r.needs_full_pull && r.ready_at <= now)
            .map(|r| r.patient_id)
            .collect();
        let next = input.patients.iter().min_by_key(|p| {
            (
                !urgent.contains(&p.patient_id),
                !p.full_pull_wanted,
                // `None` (never confirmed) sorts first.
                p.tasks_confirmed_at,
                p.patient_id,
            )
        });
        if let Some(p) = next {
            pulled.insert(p.patient_id);
            ops.push(Op::PullFull {
                patient_id: p.patient_id,
                nhs: p.nhs_number.clone(),
            });
        }
    }

    let mut due_today: Vec<&PatientTaskSync> = input
        .patients
        .iter()
        .filter(|p| !pulled.contains(&p.patient_id))
        .filter(|p| {
            p.today_pulled_at
                .is_none_or(|at| now - at >= budgets.today_pull_every)
        })
        .collect();
    due_today.sort_by_key(|p| (p.today_pulled_at, p.patient_id));
    ops.extend(due_today.into_iter().map(|p| Op::PullToday {
        patient_id: p.patient_id,
        nhs: p.nhs_number.clone(),
    }));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn patient(
        id: i64,
        confirmed: Option<i64>,
        today: Option<i64>,
        base: DateTime<Local>,
    ) -> PatientTaskSync {
        PatientTaskSync {
            patient_id: PatientId(id),
            nhs_number: NhsNumber::parse("9434765919").unwrap(),
            tasks_confirmed_at: confirmed.map(|s| base + TimeDelta::seconds(s)),
            today_pulled_at: today.map(|s| base + TimeDelta::seconds(s)),
            full_pull_attempted_at: None,
            full_pull_wanted: false,
        }
    }

    fn full_pulls(ops: &[Op]) -> Vec<PatientId> {
        ops.iter()
            .filter_map(|o| {
                if let Op::PullFull { patient_id, .. } = o {
                    Some(*patient_id)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn the_most_stale_patient_gets_the_full_pull_never_confirmed_first() {
        let t0 = Local::now();
        let now = t0 + TimeDelta::seconds(1000);
        let b = Budgets::default();
        let input = PlanInput {
            patients: vec![
                patient(1, Some(500), None, t0),
                patient(2, Some(100), None, t0),
                patient(3, Some(900), None, t0),
            ],
            ..Default::default()
        };
        assert_eq!(full_pulls(&plan(&input, now, &b)), vec![PatientId(2)]);
        let mut input = input;
        input.patients.push(patient(4, None, None, t0));
        assert_eq!(full_pulls(&plan(&input, now, &b)), vec![PatientId(4)]);
        input.patients[2].full_pull_wanted = true;
        assert_eq!(full_pulls(&plan(&input, now, &b)), vec![PatientId(3)]);
        // Within 30 s of the last full pull, none is planned; today pulls still are.
        input.last_full_pull_at = Some(now - TimeDelta::seconds(29));
        let ops = plan(&input, now, &b);
        assert!(full_pulls(&ops).is_empty());
        assert_eq!(ops.len(), 4);
        input.last_full_pull_at = Some(now - TimeDelta::seconds(30));
        assert_eq!(full_pulls(&plan(&input, now, &b)).len(), 1);
    }

    #[test]
    fn today_pulls_skip_recently_pulled_patients_least_recent_first() {
        let t0 = Local::now();
        let now = t0 + TimeDelta::seconds(100);
        let b = Budgets::default();
        let input = PlanInput {
            patients: vec![
                patient(1, Some(0), Some(90), t0),
                patient(2, Some(0), Some(20), t0),
                patient(3, Some(0), Some(60), t0),
            ],
            last_full_pull_at: Some(now),
            ..Default::default()
        };
        let ops = plan(&input, now, &b);
        let ids: Vec<_> = ops
            .iter()
            .map(|o| {
                if let Op::PullToday { patient_id, .. } = o {
                    patient_id.0
                } else {
                    0
                }
            })
            .collect();
        assert_eq!(ids, vec![2, 3]);
    }

    #[test]
    fn reconciles_and_pushes_come_first() {
        let t0 = Local::now();
        let b = Budgets::default();
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let input = PlanInput {
            patients: vec![patient(1, Some(0), None, t0), patient(2, Some(0), None, t0)],
            pushes: vec![Op::Create { task_id: TaskId(7) }],
            reconciles: vec![
                ReconcileNeed {
                    patient_id: PatientId(2),
                    nhs: nhs.clone(),
                    needs_full_pull: false,
                    ready_at: t0,
                },
                ReconcileNeed {
                    patient_id: PatientId(1),
                    nhs: nhs.clone(),
                    needs_full_pull: true,
                    ready_at: t0,
                },
            ],
            last_full_pull_at: None,
        };
        let ops = plan(&input, t0, &b);
        assert_eq!(
            ops[0],
            Op::PullToday {
                patient_id: PatientId(2),
                nhs: nhs.clone()
            }
        );
        assert_eq!(ops[1], Op::Create { task_id: TaskId(7) });
        assert_eq!(
            ops[2],
            Op::PullFull {
                patient_id: PatientId(1),
                nhs
            }
        );
        assert_eq!(ops.len(), 3, "no second pull of the same patient: {ops:?}");
        // Not before the grace period.
        let mut early = input.clone();
        early
            .reconciles
            .iter_mut()
            .for_each(|r| r.ready_at = t0 + TimeDelta::seconds(5));
        let ops = plan(&early, t0, &b);
        assert_eq!(ops[0], Op::Create { task_id: TaskId(7) });
    }

    /// A 30-bed ward from cold: today pulls reach every patient in about 30 s at 1/s, and
    /// full pulls rotate one every 30 s, most stale first, none twice before all once.
    #[test]
    fn a_thirty_bed_ward_rotates_within_the_budgets() {
        let b = Budgets::default();
        let t0 = Local::now();
        let mut state: Vec<PatientTaskSync> =
            (1..=30).map(|i| patient(i, None, None, t0)).collect();
        let mut last_full = None;
        let mut now = t0;
        let mut full_order = Vec::new();
        let mut today_all_at = None;
        let mut sent = Vec::new();
        for _ in 0..(30 * 30 + 5) {
            let input = PlanInput {
                patients: state.clone(),
                last_full_pull_at: last_full,
                ..Default::default()
            };
            if let Some(op) = plan(&input, now, &b).into_iter().next() {
                sent.push((now, op.clone()));
                let p = match &op {
                    Op::PullFull { patient_id, .. } | Op::PullToday { patient_id, .. } => {
                        *patient_id
                    }
                    _ => unreachable!(),
                };
                let p = state.iter_mut().find(|s| s.patient_id == p).unwrap();
                p.today_pulled_at = Some(now + b.request_interval);
                if op.is_full_pull() {
                    last_full = Some(now);
                    p.tasks_confirmed_at = Some(now + b.request_interval);
                    full_order.push(p.patient_id.0);
                }
            }
            now += b.request_interval;
            if today_all_at.is_none() && state.iter().all(|s| s.today_pulled_at.is_some()) {
                today_all_at = Some(now - t0);
            }
        }
        let today_all_at = today_all_at.unwrap();
        assert!(today_all_at <= TimeDelta::seconds(31), "{today_all_at}");
        assert_eq!(full_order.len(), 31, "one full pull per 30 s");
        let first_round: HashSet<_> = full_order[..30].iter().collect();
        assert_eq!(
            first_round.len(),
            30,
            "every patient once before anyone twice: {full_order:?}"
        );
        // Never more than one full pull in any 30 s window.
        let fulls: Vec<_> = sent
            .iter()
            .filter(|(_, o)| o.is_full_pull())
            .map(|(t, _)| *t)
            .collect();
        assert!(fulls
            .windows(2)
            .all(|w| w[1] - w[0] >= b.full_pull_interval));
    }

    #[test]
    fn creates_near_midnight_need_a_full_pull_to_settle() {
        let at = |d: u32, h: u32, m: u32| Local.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap();
        assert!(today_pull_can_settle(at(4, 9, 0), at(4, 9, 2)));
        assert!(!today_pull_can_settle(at(4, 23, 55), at(4, 23, 57)));
        assert!(!today_pull_can_settle(at(5, 0, 5), at(5, 0, 7)));
        assert!(!today_pull_can_settle(at(4, 12, 0), at(5, 12, 0)));
    }
}
