//! The three-way merge of one task: base (last values known to match SystmOne), the ward
//! task, and SystmOne's task (or its absence from the non-completed list). Pure: no I/O.
//! The rules are written down in the module doc of `tasksync`.

use crate::task_link::{AssigneeKind, LinkBase, RemoteAssignee, SyncFields};
use crate::{Sensitive, StaffName, Task, TaskStatus};
use chrono::{DateTime, Local, NaiveDateTime, NaiveTime, TimeZone};

/// Fields to set; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldChanges {
    pub content: Option<Sensitive<String>>,
    pub due: Option<Option<NaiveDateTime>>,
    pub assignee: Option<Option<RemoteAssignee>>,
}

impl FieldChanges {
    pub fn is_empty(&self) -> bool {
        self.content.is_none() && self.due.is_none() && self.assignee.is_none()
    }

    pub fn apply_to(&self, fields: &SyncFields) -> SyncFields {
        SyncFields {
            content: self
                .content
                .clone()
                .unwrap_or_else(|| fields.content.clone()),
            due: self.due.unwrap_or(fields.due),
            assignee: self
                .assignee
                .clone()
                .unwrap_or_else(|| fields.assignee.clone()),
        }
    }

    /// The names of the fields present, for audit rows.
    pub fn field_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.content.is_some() {
            names.push("content");
        }
        if self.due.is_some() {
            names.push("due");
        }
        if self.assignee.is_some() {
            names.push("assignee");
        }
        names
    }
}

/// The fields of `to` that differ from `from`.
pub fn diff(from: &SyncFields, to: &SyncFields) -> FieldChanges {
    FieldChanges {
        content: (from.content != to.content).then(|| to.content.clone()),
        due: (from.due != to.due).then_some(to.due),
        assignee: (from.assignee != to.assignee).then(|| to.assignee.clone()),
    }
}

/// SystmOne's side of the merge.
#[derive(Debug, Clone, Copy)]
pub enum RemoteSide<'a> {
    /// Listed among the patient's non-completed tasks, with these values.
    Present(&'a SyncFields),
    /// No longer listed: completed or removed in SystmOne.
    Gone,
}

// One value per merge, consumed at once and never stored in bulk: boxing would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still linked: apply `apply_locally` to the ward task and store `new_base`. What
    /// remains to send is `push` (always `diff(new_base, ward task after applying)`),
    /// together with the completion when `complete`.
    Linked {
        apply_locally: FieldChanges,
        new_base: SyncFields,
        push: FieldChanges,
        complete: bool,
    },
    /// SystmOne's task is gone: unlink; mark the ward task done when `mark_done`.
    Detach { mark_done: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub outcome: Outcome,
    /// Sync notices for staff (conflicts, and what happened to any edit not applied).
    pub notices: Vec<Sensitive<String>>,
}

/// Merges one task. `local` is the ward task in SystmOne's terms (see [`local_fields`]).
pub fn merge(
    base: &SyncFields,
    local: &SyncFields,
    local_status: TaskStatus,
    remote: RemoteSide<'_>,
) -> Resolution {
    let completed_here = local_status != TaskStatus::Open;
    let Some(remote) = (match remote {
        RemoteSide::Present(r) => Some(r),
        RemoteSide::Gone => None,
    }) else {
        return merge_gone(base, local, local_status);
    };
    let mut notices = Vec::new();
    let mut apply_locally = FieldChanges::default();
    // For a task completed here, SystmOne's edits are neither applied nor reverted: the base
    // takes the ward value so nothing is pushed for that field.
    let mut new_base = remote.clone();

    let content = FieldMerge::of(&base.content, &local.content, &remote.content);
    let due = FieldMerge::of(&base.due, &local.due, &remote.due);
    let assignee = FieldMerge::of(&base.assignee, &local.assignee, &remote.assignee);

    match content {
        FieldMerge::RemoteOnly if completed_here => {
            notices.push(completed_vs_remote_edit(
                Field::Content,
                &describe_content(&remote.content),
            ));
            new_base.content = local.content.clone();
        }
        FieldMerge::RemoteOnly => apply_locally.content = Some(remote.content.clone()),
        FieldMerge::Conflict => notices.push(conflict(
            Field::Content,
            &describe_content(&local.content),
            &describe_content(&remote.content),
        )),
        FieldMerge::Unchanged | FieldMerge::LocalOnly | FieldMerge::Agree => {}
    }
    match due {
        FieldMerge::RemoteOnly if completed_here => {
            notices.push(completed_vs_remote_edit(
                Field::Due,
                &describe_due(remote.due),
            ));
            new_base.due = local.due;
        }
        FieldMerge::RemoteOnly => apply_locally.due = Some(remote.due),
        FieldMerge::Conflict => notices.push(conflict(
            Field::Due,
            &describe_due(local.due),
            &describe_due(remote.due),
        )),
        FieldMerge::Unchanged | FieldMerge::LocalOnly | FieldMerge::Agree => {}
    }
    match assignee {
        FieldMerge::RemoteOnly if completed_here => {
            notices.push(completed_vs_remote_edit(
                Field::Assignee,
                &describe_assignee(&remote.assignee),
            ));
            new_base.assignee = local.assignee.clone();
        }
        FieldMerge::RemoteOnly => apply_locally.assignee = Some(remote.assignee.clone()),
        FieldMerge::Conflict => notices.push(conflict(
            Field::Assignee,
            &describe_assignee(&local.assignee),
            &describe_assignee(&remote.assignee),
        )),
        FieldMerge::Unchanged | FieldMerge::LocalOnly | FieldMerge::Agree => {}
    }
    let local_after = apply_locally.apply_to(local);
    let push = diff(&new_base, &local_after);
    Resolution {
        outcome: Outcome::Linked {
            apply_locally,
            new_base,
            push,
            complete: completed_here,
        },
        notices,
    }
}

fn merge_gone(base: &SyncFields, local: &SyncFields, local_status: TaskStatus) -> Resolution {
    let edits = describe_changes(&diff(base, local));
    match (local_status, edits.is_empty()) {
        (TaskStatus::Open, true) => Resolution {
            outcome: Outcome::Detach { mark_done: true },
            notices: vec![Sensitive::new("Completed or removed in SystmOne; marked done here.".into())],
        },
        (TaskStatus::Open, false) => Resolution {
            outcome: Outcome::Detach { mark_done: false },
            notices: vec![Sensitive::new(format!(
                "Completed or removed in SystmOne while edited here — please review. This task stays open here \
                 with your edits ({edits}); they were not sent to SystmOne."
            ))],
        },
        (_, true) => Resolution { outcome: Outcome::Detach { mark_done: false }, notices: Vec::new() },
        (_, false) => Resolution {
            outcome: Outcome::Detach { mark_done: false },
            notices: vec![Sensitive::new(format!(
                "Completed or removed in SystmOne before these edits made here were sent: {edits}. They are kept \
                 here only."
            ))],
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldMerge {
    Unchanged,
    LocalOnly,
    RemoteOnly,
    /// Both changed it to the same value.
    Agree,
    /// Both changed it to different values.
    Conflict,
}

impl FieldMerge {
    fn of<T: PartialEq>(base: &T, local: &T, remote: &T) -> FieldMerge {
        match (local != base, remote != base) {
            (false, false) => FieldMerge::Unchanged,
            (true, false) => FieldMerge::LocalOnly,
            (false, true) => FieldMerge::RemoteOnly,
            (true, true) if local == remote => FieldMerge::Agree,
            (true, true) => FieldMerge::Conflict,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Content,
    Due,
    Assignee,
}

impl Field {
    fn label(self) -> &'static str {
        match self {
            Field::Content => "the task text",
            Field::Due => "the due date",
            Field::Assignee => "the assignee",
        }
    }
}

fn conflict(field: Field, local: &str, remote: &str) -> Sensitive<String> {
    Sensitive::new(format!(
        "Changed here and in SystmOne at the same time: {} is {local} here and was {remote} in SystmOne. \
         The value from here was kept and sent to SystmOne; SystmOne's value is recorded in this notice.",
        field.label()
    ))
}

fn completed_vs_remote_edit(field: Field, remote: &str) -> Sensitive<String> {
    Sensitive::new(format!(
        "Completed here while SystmOne changed {} to {remote}. The completion was kept; SystmOne's change was \
         not applied to this completed task.",
        field.label()
    ))
}

fn describe_content(c: &Sensitive<String>) -> String {
    format!("\"{}\"", c.expose())
}

fn describe_due(d: Option<NaiveDateTime>) -> String {
    d.map_or_else(
        || "no due date".to_owned(),
        |d| {
            if d.time() == NaiveTime::MIN {
                d.format("%Y-%m-%d").to_string()
            } else {
                d.format("%Y-%m-%d %H:%M").to_string()
            }
        },
    )
}

fn describe_assignee(a: &Option<RemoteAssignee>) -> String {
    match a {
        None => "nobody".to_owned(),
        Some(a) => match a.kind {
            AssigneeKind::User => format!("\"{}\"", a.name),
            AssigneeKind::Group => format!("\"{}\" (group)", a.name),
            AssigneeKind::Team => format!("\"{}\" (team)", a.name),
        },
    }
}

/// "the task text "…", the due date 2026-03-04" — for notices.
pub fn describe_changes(changes: &FieldChanges) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &changes.content {
        parts.push(format!(
            "{} {}",
            Field::Content.label(),
            describe_content(c)
        ));
    }
    if let Some(d) = changes.due {
        parts.push(format!("{} {}", Field::Due.label(), describe_due(d)));
    }
    if let Some(a) = &changes.assignee {
        parts.push(format!(
            "{} {}",
            Field::Assignee.label(),
            describe_assignee(a)
        ));
    }
    parts.join(", ")
}

/// The ward staff name shown for a SystmOne assignee.
pub fn staff_from_assignee(a: &RemoteAssignee) -> Option<StaffName> {
    let name: String = a.name.trim().chars().take(StaffName::MAX_CHARS).collect();
    StaffName::parse(&name).ok()
}

/// The ward task in SystmOne's terms, against its base: a field the ward has not touched
/// keeps the base's exact value (full content, assignee kind), so only real edits differ.
pub fn local_fields(task: &Task, base: &LinkBase) -> SyncFields {
    let content = if task.title.as_str() == base.title.expose() {
        base.fields.content.clone()
    } else {
        Sensitive::new(task.title.as_str().to_owned())
    };
    let due = match (task.due.map(|d| d.naive_local()), base.fields.due) {
        // A base at midnight is a date whose time SystmOne did not keep (or a link made
        // before times were kept): the ward's time on that date is no change.
        (Some(mine), Some(theirs))
            if theirs.time() == NaiveTime::MIN && theirs.date() == mine.date() =>
        {
            Some(theirs)
        }
        (mine, _) => mine,
    };
    let assignee = match (&task.assignee, &base.fields.assignee) {
        (None, _) => None,
        (Some(mine), Some(theirs)) if staff_from_assignee(theirs).as_ref() == Some(mine) => {
            Some(theirs.clone())
        }
        (Some(mine), _) => Some(RemoteAssignee::user(mine.as_str())),
    };
    SyncFields {
        content,
        due,
        assignee,
    }
}

/// The ward task in SystmOne's terms for a first create (no base yet).
pub fn new_task_fields(task: &Task) -> SyncFields {
    SyncFields {
        content: Sensitive::new(task.title.as_str().to_owned()),
        due: task.due.map(|d| d.naive_local()),
        assignee: task
            .assignee
            .as_ref()
            .map(|a| RemoteAssignee::user(a.as_str())),
    }
}

/// SystmOne's due date-time (local wall time) as the ward's. A due at midnight may be a
/// SystmOne that keeps only the date: the ward keeps its own time of day when the date
/// agrees, else uses the end of that day (as `parse_due` does for a typed date). A time that
/// does not exist locally (the spring DST gap) moves to the next valid instant.
pub fn local_due(
    remote: Option<NaiveDateTime>,
    current: Option<DateTime<Local>>,
) -> Option<DateTime<Local>> {
    let remote = remote?;
    let wall = if remote.time() == NaiveTime::MIN {
        if let Some(current) = current.filter(|c| c.date_naive() == remote.date()) {
            return Some(current);
        }
        remote.date().and_time(NaiveTime::from_hms_opt(23, 59, 0)?)
    } else {
        remote
    };
    // `checked_add`: a date from SystmOne at the end of chrono's range must not panic.
    Local.from_local_datetime(&wall).earliest().or_else(|| {
        Local
            .from_local_datetime(&wall.checked_add_signed(chrono::TimeDelta::hours(1))?)
            .earliest()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    /// 10:00 on a day of March 2026.
    fn at(day: u32) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(2026, 3, day).and_then(|d| d.and_hms_opt(10, 0, 0))
    }

    fn midnight(day: u32) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(2026, 3, day).and_then(|d| d.and_hms_opt(0, 0, 0))
    }

    fn fields(content: &str, due: Option<u32>, assignee: Option<&str>) -> SyncFields {
        SyncFields {
            content: Sensitive::new(content.into()),
            due: due.and_then(at),
            assignee: assignee.map(RemoteAssignee::user),
        }
    }

    #[test]
    fn local_only_edit_is_pushed_remote_only_edit_is_applied() {
        let base = fields("Bloods", Some(4), None);
        let local = fields("Bloods and ECG", Some(4), None);
        let remote = fields("Bloods", Some(5), None);
        let r = merge(
            &base,
            &local,
            TaskStatus::Open,
            RemoteSide::Present(&remote),
        );
        assert!(r.notices.is_empty());
        let Outcome::Linked {
            apply_locally,
            push,
            complete,
            new_base,
        } = r.outcome
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            apply_locally,
            FieldChanges {
                due: Some(at(5)),
                ..Default::default()
            }
        );
        assert_eq!(
            push,
            FieldChanges {
                content: Some(Sensitive::new("Bloods and ECG".into())),
                ..Default::default()
            }
        );
        assert!(!complete);
        assert_eq!(new_base, remote);
    }

    #[test]
    fn a_conflict_keeps_the_ward_value_and_shows_systmone_s() {
        let base = fields("Bloods", None, Some("Dr A"));
        let local = fields("Bloods", None, Some("Dr B"));
        let remote = fields("Bloods", None, Some("Dr C"));
        let r = merge(
            &base,
            &local,
            TaskStatus::Open,
            RemoteSide::Present(&remote),
        );
        let Outcome::Linked { push, .. } = &r.outcome else {
            panic!()
        };
        assert_eq!(push.assignee, Some(Some(RemoteAssignee::user("Dr B"))));
        assert_eq!(r.notices.len(), 1);
        let n = r.notices[0].expose();
        assert!(
            n.contains("\"Dr C\"") && n.contains("\"Dr B\"") && n.contains("the assignee"),
            "{n}"
        );
    }

    #[test]
    fn gone_while_edited_stays_open_and_is_not_pushed() {
        let base = fields("Bloods", None, None);
        let local = fields("Bloods x2", None, None);
        let r = merge(&base, &local, TaskStatus::Open, RemoteSide::Gone);
        assert_eq!(r.outcome, Outcome::Detach { mark_done: false });
        assert!(r.notices[0].expose().contains("please review"));
        assert!(r.notices[0].expose().contains("Bloods x2"));
        let r = merge(&base, &base, TaskStatus::Open, RemoteSide::Gone);
        assert_eq!(r.outcome, Outcome::Detach { mark_done: true });
        let r = merge(&base, &base, TaskStatus::Done, RemoteSide::Gone);
        assert_eq!(
            r,
            Resolution {
                outcome: Outcome::Detach { mark_done: false },
                notices: vec![]
            }
        );
    }

    #[test]
    fn completion_wins_over_a_remote_edit_which_is_kept_in_the_notice() {
        let base = fields("Bloods", Some(4), None);
        let remote = fields("Bloods", Some(9), None);
        let r = merge(&base, &base, TaskStatus::Done, RemoteSide::Present(&remote));
        let Outcome::Linked {
            apply_locally,
            push,
            complete,
            ..
        } = &r.outcome
        else {
            panic!()
        };
        assert!(apply_locally.is_empty() && push.is_empty() && *complete);
        assert!(r.notices[0].expose().contains("2026-03-09"));
    }

    #[test]
    fn untouched_ward_fields_keep_the_base_values_exactly() {
        let base = LinkBase {
            fields: SyncFields {
                content: Sensitive::new("Line 1\nLine 2".into()),
                due: at(4),
                assignee: Some(RemoteAssignee {
                    kind: AssigneeKind::Team,
                    name: "Ward 7".into(),
                }),
            },
            title: Sensitive::new("Line 1 Line 2".into()),
            status: None,
            entered: None,
        };
        let now = Local::now();
        let mut task = Task {
            id: crate::TaskId(1),
            patient_id: crate::PatientId(1),
            title: crate::TaskTitle::parse("Line 1 Line 2").unwrap(),
            assignee: Some(StaffName::parse("Ward 7").unwrap()),
            due: local_due(at(4), None),
            status: TaskStatus::Open,
            created_at: now,
            created_by: "x".into(),
            updated_at: now,
            updated_by: "x".into(),
            version: 1,
        };
        assert_eq!(local_fields(&task, &base), base.fields);
        task.assignee = Some(StaffName::parse("Dr B").unwrap());
        assert_eq!(
            local_fields(&task, &base).assignee,
            Some(RemoteAssignee::user("Dr B"))
        );
    }

    #[test]
    fn local_due_keeps_the_ward_time_on_the_same_day() {
        let at_ten = Local.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
        // A SystmOne that kept only the date: the ward's time of day stays.
        assert_eq!(local_due(midnight(4), Some(at_ten)), Some(at_ten));
        let moved = local_due(midnight(5), Some(at_ten)).unwrap();
        assert_eq!(moved.naive_local().to_string(), "2026-03-05 23:59:00");
        // A time SystmOne reports is kept as it is.
        let half_two = at(5).map(|d| d + chrono::TimeDelta::minutes(270));
        assert_eq!(
            local_due(half_two, Some(at_ten))
                .unwrap()
                .naive_local()
                .to_string(),
            "2026-03-05 14:30:00"
        );
        assert_eq!(local_due(None, Some(at_ten)), None);
    }

    fn arb_fields() -> impl Strategy<Value = SyncFields> {
        (
            prop::sample::select(vec!["A", "B", "C"]),
            prop::option::of(1u32..4),
            prop::option::of(prop::sample::select(vec!["Dr X", "Dr Y"])),
        )
            .prop_map(|(c, d, a)| fields(c, d, a))
    }

    fn arb_status() -> impl Strategy<Value = TaskStatus> {
        prop::sample::select(vec![
            TaskStatus::Open,
            TaskStatus::Done,
            TaskStatus::Cancelled,
        ])
    }

    proptest! {
        /// Nothing is lost: every ward edit is kept (pushed, or kept open with a notice), and
        /// every SystmOne edit is applied or shown in a notice.
        #[test]
        fn no_edit_on_either_side_is_lost(base in arb_fields(), local in arb_fields(), remote in arb_fields(),
                                          status in arb_status(), gone in any::<bool>()) {
            let side = if gone { RemoteSide::Gone } else { RemoteSide::Present(&remote) };
            let r = merge(&base, &local, status, side);
            let all_notices = r.notices.iter().map(|n| n.expose().clone()).collect::<Vec<_>>().join("\n");
            let local_edits = diff(&base, &local);
            match &r.outcome {
                Outcome::Detach { mark_done } => {
                    prop_assert!(gone);
                    // A ward edit made since the last sync is never silently dropped.
                    if !local_edits.is_empty() {
                        prop_assert!(!mark_done);
                        prop_assert!(all_notices.contains(&describe_changes(&local_edits)), "{}", all_notices);
                    }
                    if status != TaskStatus::Open { prop_assert!(!mark_done); }
                }
                Outcome::Linked { apply_locally, new_base, push, complete } => {
                    prop_assert!(!gone);
                    prop_assert_eq!(*complete, status != TaskStatus::Open);
                    let local_after = apply_locally.apply_to(&local);
                    // What is left to push is exactly the ward task minus the new base.
                    prop_assert_eq!(push, &diff(new_base, &local_after));
                    // Every ward edit survives locally and reaches SystmOne.
                    let pushed_to_remote = push.apply_to(&remote);
                    if local_edits.content.is_some() {
                        prop_assert_eq!(&local_after.content, &local.content);
                        prop_assert_eq!(&pushed_to_remote.content, &local.content);
                    }
                    if local_edits.due.is_some() {
                        prop_assert_eq!(pushed_to_remote.due, local.due);
                    }
                    if local_edits.assignee.is_some() {
                        prop_assert_eq!(&pushed_to_remote.assignee, &local.assignee);
                    }
                    // Every SystmOne edit is applied here or recorded in a notice.
                    let remote_edits = diff(&base, &remote);
                    if let Some(c) = &remote_edits.content {
                        prop_assert!(local_after.content == *c || all_notices.contains(&describe_content(c)));
                    }
                    if let Some(d) = remote_edits.due {
                        prop_assert!(local_after.due == d || all_notices.contains(&describe_due(d)));
                    }
                    if let Some(a) = &remote_edits.assignee {
                        prop_assert!(local_after.assignee == *a || all_notices.contains(&describe_assignee(a)));
                    }
                    // Open tasks agree with SystmOne once the push lands.
                    if status == TaskStatus::Open {
                        prop_assert_eq!(pushed_to_remote, local_after);
                    }
                }
            }
        }

        /// Merging a settled task changes nothing and says nothing.
        #[test]
        fn merging_an_agreed_task_is_a_no_op(f in arb_fields()) {
            let r = merge(&f, &f, TaskStatus::Open, RemoteSide::Present(&f));
            prop_assert!(r.notices.is_empty());
            prop_assert_eq!(r.outcome, Outcome::Linked { apply_locally: FieldChanges::default(), new_base: f.clone(), push: FieldChanges::default(), complete: false });
        }
    }
}
