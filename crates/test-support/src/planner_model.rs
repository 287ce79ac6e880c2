//! A model of the task-sync planner over a whole ward, for the `board_sync` benchmark's
//! expected figures: it runs the real [`plan`] against simulated time, answering each
//! request within a second. Never linked into the app.

use chrono::{DateTime, Local, TimeDelta};
use domain::task_link::PatientTaskSync;
use domain::{NhsNumber, PatientId};
use hub::tasksync::planner::{plan, Budgets, Op, PlanInput};

/// How long until the board is confirmed against SystmOne, simulating the planner at one
/// request per `request_interval`, each answered within that interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardEstimate {
    /// Every patient has had an entered-today (or full) pull: today's new tasks are shown.
    pub today_changes_visible: TimeDelta,
    /// As above, and each of the `changed_today` patients has had a full pull too.
    pub fully_confirmed: TimeDelta,
    /// How long a full rotation of the ward takes: the worst case before a completion (in
    /// SystmOne) of a task entered on an earlier day is seen for a patient nobody flagged.
    pub full_rotation: TimeDelta,
    /// A full pull of every patient, one per 30 s, with no exemption used.
    pub naive: TimeDelta,
}

/// Estimates [`BoardEstimate`] for `patients` linked patients of whom `changed_today` need a
/// full pull (flagged, e.g. a today pull showed activity or a ward edit is waiting), the
/// others having been confirmed earlier today. `changed_today` is capped at `patients`.
pub fn estimate_board_confirmation(
    patients: usize,
    changed_today: usize,
    budgets: &Budgets,
) -> BoardEstimate {
    let changed_today = changed_today.min(patients);
    let full_rotation = budgets.full_pull_interval * patients as i32;
    let limit = budgets.full_pull_interval * (patients as i32 + 2)
        + budgets.request_interval * (patients as i32 + 2);
    // The planner never looks at the number; the NHS's published example always parses.
    let Ok(nhs) = NhsNumber::parse("9434765919") else {
        return BoardEstimate {
            today_changes_visible: limit,
            fully_confirmed: limit,
            full_rotation,
            naive: full_rotation,
        };
    };
    let start = Local::now();
    let earlier = start - TimeDelta::hours(1);
    let mut state: Vec<PatientTaskSync> = (0..patients)
        .map(|i| PatientTaskSync {
            patient_id: PatientId(i as i64 + 1),
            nhs_number: nhs.clone(),
            tasks_confirmed_at: Some(earlier),
            today_pulled_at: None,
            full_pull_attempted_at: None,
            full_pull_wanted: i < changed_today,
        })
        .collect();
    let mut last_full: Option<DateTime<Local>> = None;
    let mut now = start;
    let mut today_visible: Option<TimeDelta> = None;
    let mut confirmed: Option<TimeDelta> = None;
    while confirmed.is_none() && now - start <= limit {
        let input = PlanInput {
            patients: state.clone(),
            pushes: Vec::new(),
            reconciles: Vec::new(),
            last_full_pull_at: last_full,
        };
        let Some(op) = plan(&input, now, budgets).into_iter().next() else {
            now += budgets.request_interval;
            continue;
        };
        let done_at = now + budgets.request_interval;
        match op {
            Op::PullFull { patient_id, .. } => {
                last_full = Some(now);
                if let Some(p) = state.iter_mut().find(|p| p.patient_id == patient_id) {
                    p.tasks_confirmed_at = Some(done_at);
                    p.today_pulled_at = Some(done_at);
                    p.full_pull_wanted = false;
                }
            }
            Op::PullToday { patient_id, .. } => {
                if let Some(p) = state.iter_mut().find(|p| p.patient_id == patient_id) {
                    p.today_pulled_at = Some(done_at);
                }
            }
            Op::Create { .. } | Op::Update { .. } | Op::Complete { .. } => {}
        }
        now = done_at;
        let all_today = state
            .iter()
            .all(|p| p.today_pulled_at.is_some_and(|t| t > start));
        if all_today && today_visible.is_none() {
            today_visible = Some(now - start);
        }
        if all_today && state.iter().all(|p| !p.full_pull_wanted) {
            confirmed = Some(now - start);
        }
    }
    BoardEstimate {
        today_changes_visible: today_visible.unwrap_or(limit),
        fully_confirmed: confirmed.unwrap_or(limit),
        full_rotation,
        naive: full_rotation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_estimate_for_a_thirty_bed_ward() {
        let b = Budgets::default();
        let e = estimate_board_confirmation(30, 5, &b);
        assert_eq!(e.naive, TimeDelta::minutes(15));
        // One full pull and 29 entered-today pulls, one per second.
        assert_eq!(e.today_changes_visible, TimeDelta::seconds(30), "{e:?}");
        // 5 full pulls at 0, 30, 60, 90, 120 s, each answered within a second.
        assert_eq!(e.fully_confirmed, TimeDelta::seconds(121), "{e:?}");
        let none_changed = estimate_board_confirmation(30, 0, &b);
        assert_eq!(
            none_changed.fully_confirmed,
            none_changed.today_changes_visible
        );
        assert_eq!(none_changed.fully_confirmed, TimeDelta::seconds(30));
        let all_changed = estimate_board_confirmation(30, 30, &b);
        assert_eq!(all_changed.fully_confirmed, TimeDelta::seconds(29 * 30 + 1));
        assert_eq!(all_changed.today_changes_visible, TimeDelta::seconds(30));
    }
}
