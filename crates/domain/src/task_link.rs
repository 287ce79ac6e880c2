//! Values of the link between a ward task and a SystmOne task: the TaskUID, the merge base
//! (the last values known to match SystmOne), the link state, and SystmOne's tasks as the
//! Tasks filter returns them. Pure values; the store persists them, task sync decides with them.

use crate::{
    NhsNumber, PatientId, Sensitive, StaffName, Task, TaskId, TaskStatus, TaskTitle,
    ValidationError,
};
use chrono::{DateTime, Local, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who the audit log names for changes the sync makes on its own.
pub const SYNC_ACTOR: &str = "SystmOne sync";

/// A SystmOne TaskUID: 16 hexadecimal digits, kept lowercase.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskUid(String);

impl TaskUid {
    pub fn parse(raw: &str) -> Result<TaskUid, ValidationError> {
        let s = raw.trim();
        if s.len() == 16 && s.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(TaskUid(s.to_ascii_lowercase()))
        } else {
            Err(ValidationError::Other(format!(
                "'{}' is not a SystmOne TaskUID (16 hexadecimal digits)",
                s.chars().take(40).collect::<String>()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A TaskUID from a number (simulators and tests).
    pub fn from_number(n: u64) -> TaskUid {
        TaskUid(format!("{n:016x}"))
    }
}

impl fmt::Debug for TaskUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskUid({})", self.0)
    }
}

impl fmt::Display for TaskUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TaskUid {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        TaskUid::parse(&raw)
    }
}

impl From<TaskUid> for String {
    fn from(uid: TaskUid) -> String {
        uid.0
    }
}

/// SystmOne assigns a task to a user, a group or a team (`UserNameAssigned` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssigneeKind {
    User,
    Group,
    Team,
}

impl AssigneeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssigneeKind::User => "user",
            AssigneeKind::Group => "group",
            AssigneeKind::Team => "team",
        }
    }

    pub fn parse(s: &str) -> Option<AssigneeKind> {
        match s {
            "user" => Some(AssigneeKind::User),
            "group" => Some(AssigneeKind::Group),
            "team" => Some(AssigneeKind::Team),
            _ => None,
        }
    }
}

/// A staff member, group or team as SystmOne names them (staff names, not patient data).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RemoteAssignee {
    pub kind: AssigneeKind,
    pub name: String,
}

impl RemoteAssignee {
    pub fn user(name: &str) -> RemoteAssignee {
        RemoteAssignee {
            kind: AssigneeKind::User,
            name: name.to_owned(),
        }
    }
}

/// The fields both sides share, in SystmOne's terms. `content` never holds the
/// `[IH-…]` reference tag (see `tasksync::strip_reference`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFields {
    pub content: Sensitive<String>,
    /// Local wall-clock time (SystmOne's Due is an `xs:dateTime` with no zone).
    pub due: Option<NaiveDateTime>,
    pub assignee: Option<RemoteAssignee>,
}

/// Where a local task stands with SystmOne.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// On the ward board only (never sent, or SystmOne refused it).
    Local,
    /// A clinician asked for it to be created in SystmOne; not yet sent, or known not created.
    CreatePending,
    /// A create was sent and its outcome is not known yet: never resent before a pull
    /// proved it was not filed.
    CreateInFlight,
    /// Linked to a non-completed SystmOne task (`task_uid`).
    Linked,
    /// Was linked; the SystmOne task was completed or removed. No further sync.
    Detached,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Local => "local",
            LinkState::CreatePending => "create_pending",
            LinkState::CreateInFlight => "create_in_flight",
            LinkState::Linked => "linked",
            LinkState::Detached => "detached",
        }
    }

    pub fn parse(s: &str) -> Option<LinkState> {
        Some(match s {
            "local" => LinkState::Local,
            "create_pending" => LinkState::CreatePending,
            "create_in_flight" => LinkState::CreateInFlight,
            "linked" => LinkState::Linked,
            "detached" => LinkState::Detached,
            _ => return None,
        })
    }
}

/// The last state of the SystmOne task known to this PC: the merge base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkBase {
    pub fields: SyncFields,
    /// The local title rendered from `fields.content` (content may be longer than a title).
    pub title: Sensitive<String>,
    /// SystmOne's status text ("Not Started", "Started"), when known.
    pub status: Option<String>,
    /// When the SystmOne task was entered; decides what an entered-today pull can prove.
    pub entered: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskLink {
    pub task_id: TaskId,
    pub task_uid: Option<TaskUid>,
    pub state: LinkState,
    /// The `[IH-…]` tag embedded in the content of tasks this PC creates, so a create whose
    /// outcome is unknown can be found again instead of being filed twice.
    pub reference: Option<String>,
    pub task_type: Option<String>,
    pub push_requested_at: Option<DateTime<Local>>,
    pub push_requested_by: Option<String>,
    pub create_attempted_at: Option<DateTime<Local>>,
    pub base: Option<LinkBase>,
    /// The local task version SystmOne refused; pushes wait until the task changes again.
    pub push_failed_version: Option<i64>,
    pub retry_after: Option<DateTime<Local>>,
    /// Shown to staff on the board until dismissed.
    pub notice: Option<Sensitive<String>>,
    pub notice_at: Option<DateTime<Local>>,
    /// When the ward's completion was sent and SystmOne answered without error. Not yet a
    /// completion in SystmOne: that is believed only when a read no longer lists the task.
    pub completion_sent_at: Option<DateTime<Local>>,
}

impl TaskLink {
    pub fn new(task_id: TaskId, state: LinkState) -> TaskLink {
        TaskLink {
            task_id,
            task_uid: None,
            state,
            reference: None,
            task_type: None,
            push_requested_at: None,
            push_requested_by: None,
            create_attempted_at: None,
            base: None,
            push_failed_version: None,
            retry_after: None,
            notice: None,
            notice_at: None,
            completion_sent_at: None,
        }
    }
}

/// Per patient: when its tasks were last confirmed against SystmOne.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientTaskSync {
    pub patient_id: PatientId,
    pub nhs_number: NhsNumber,
    /// The last full Tasks pull: everything on the board for this patient matched SystmOne then.
    pub tasks_confirmed_at: Option<DateTime<Local>>,
    /// The last entered-today pull (shows tasks entered today only).
    pub today_pulled_at: Option<DateTime<Local>>,
    pub full_pull_attempted_at: Option<DateTime<Local>>,
    /// Something changed today: a full pull should come before the normal rotation.
    pub full_pull_wanted: bool,
}

/// A task with its link (absent for tasks never touched by the sync).
#[derive(Debug, Clone)]
pub struct LinkedTask {
    pub task: Task,
    pub link: Option<TaskLink>,
}

/// What the sync sets on a local task.
#[derive(Debug, Clone, Default)]
pub struct LocalTaskUpdate {
    pub title: Option<TaskTitle>,
    pub assignee: Option<Option<StaffName>>,
    pub due: Option<Option<DateTime<Local>>>,
    pub status: Option<TaskStatus>,
}

/// Which tasks a pull can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullCoverage {
    /// The Tasks filter with no dates: every non-completed task of the patient.
    Full,
    /// MinEntryDate = MaxEntryDate = today: only tasks entered today.
    EnteredToday,
}

/// How close to midnight a create may have been sent for an entered-today pull to settle it:
/// SystmOne dates the entry by its own clock, which may sit either side of midnight.
pub const MIDNIGHT_MARGIN_MINUTES: i64 = 10;

/// Whether an entered-today pull at `now` must show a task created at `attempted` if it was
/// filed (same day, not within [`MIDNIGHT_MARGIN_MINUTES`] of midnight); else only a full
/// pull can prove a create was not filed.
pub fn today_pull_can_settle(attempted: DateTime<Local>, now: DateTime<Local>) -> bool {
    use chrono::Timelike;
    let minute_of_day = i64::from(attempted.hour()) * 60 + i64::from(attempted.minute());
    attempted.date_naive() == now.date_naive()
        && (MIDNIGHT_MARGIN_MINUTES..24 * 60 - MIDNIGHT_MARGIN_MINUTES).contains(&minute_of_day)
}

/// The status sent to complete a SystmOne task (also used for a ward cancellation).
pub const COMPLETED_STATUS: &str = "Completed";

/// A SystmOne task as the Tasks filter returns it (non-completed only).
///
/// What a read carries is not what was sent (captured from a real SystmOne): the content
/// comes back with SystmOne's own header line first (`Thu 24 Sep 18:17 - CURCIN, Vasa`) and a
/// trailing newline, and reads have been seen with no Due and no assignee at all. So an
/// absent `due` or `assignee` here means **not reported**, never "cleared": see
/// [`RemoteTask::fields_against`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTask {
    pub uid: TaskUid,
    pub task_type: String,
    /// As SystmOne holds it: header line and reference tag included.
    pub content: Sensitive<String>,
    /// `None`: SystmOne's read did not report a due date-time (not: "no due date").
    pub due: Option<NaiveDateTime>,
    /// `None`: SystmOne's read did not report an assignee (not: "unassigned").
    pub assignee: Option<RemoteAssignee>,
    /// "Not Started", "Started", …
    pub status: String,
    pub entered: NaiveDateTime,
}

impl RemoteTask {
    /// The shared fields as far as this read tells them, against the last values known to
    /// match (`base`): SystmOne's header line and our reference tag removed from the content;
    /// a field the read did not report keeps its base value (so it can never look like a
    /// SystmOne-side clearing); a due that comes back at midnight on the base's date is the
    /// base's due (in case SystmOne keeps only the date of a date-time — unknown, so built
    /// for both).
    pub fn fields_against(&self, base: Option<&SyncFields>) -> SyncFields {
        let due = match (self.due, base.and_then(|b| b.due)) {
            (None, base_due) => base_due,
            (Some(due), Some(base_due)) if date_only_match(due, base_due) => Some(base_due),
            (Some(due), _) => Some(due),
        };
        let assignee = self
            .assignee
            .clone()
            .or_else(|| base.and_then(|b| b.assignee.clone()));
        SyncFields {
            content: Sensitive::new(self.text()),
            due,
            assignee,
        }
    }

    /// The task's text: SystmOne's header line and our reference tag removed.
    pub fn text(&self) -> String {
        strip_reference(&strip_systmone_header(self.content.expose())).0
    }

    pub fn reference(&self) -> Option<String> {
        strip_reference(self.content.expose()).1
    }
}

/// True when `reported` is `known` with its time of day lost (midnight on the same date).
fn date_only_match(reported: NaiveDateTime, known: NaiveDateTime) -> bool {
    reported == known
        || (reported.date() == known.date() && reported.time() == chrono::NaiveTime::MIN)
}

/// Removes the header line SystmOne puts before a task's text when it is read back:
/// `Ddd DD Mon HH:MM - SURNAME, First` (seen in a real capture). Whether SystmOne stacks a
/// new header and text on each edit is unknown; if several header lines are present, the
/// text after the last one is taken as the current text. Content without a header (as
/// sent, or from a SystmOne that does not add one) is returned as it is, trimmed.
pub fn strip_systmone_header(content: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    match lines.iter().rposition(|l| is_systmone_header(l)) {
        Some(i) => lines[i + 1..].join("\n").trim().to_owned(),
        None => content.trim().to_owned(),
    }
}

fn is_systmone_header(line: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let line = line.trim();
    let Some((stamp, author)) = line.split_once(" - ") else {
        return false;
    };
    let parts: Vec<&str> = stamp.split(' ').collect();
    let [day, date, month, time] = parts.as_slice() else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
    let time_ok = time
        .split_once(':')
        .is_some_and(|(h, m)| digits(h, 2) && digits(m, 2));
    DAYS.contains(day)
        && (digits(date, 2) || digits(date, 1))
        && MONTHS.contains(month)
        && time_ok
        && author.contains(',')
}

/// UpdatePatientRecord NonClinical/Task for a new task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRemoteTask {
    pub task_type: String,
    /// Reference tag included.
    pub content: Sensitive<String>,
    pub due: Option<NaiveDateTime>,
    pub assignee: Option<RemoteAssignee>,
}

/// Only the fields to change, sent with the TaskUID. `Some(None)` clears a field (the
/// client writes an empty element).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteTaskChanges {
    /// Reference tag included.
    pub content: Option<Sensitive<String>>,
    pub due: Option<Option<NaiveDateTime>>,
    pub assignee: Option<Option<RemoteAssignee>>,
    pub status: Option<String>,
}

impl RemoteTaskChanges {
    pub fn is_empty(&self) -> bool {
        self.content.is_none()
            && self.due.is_none()
            && self.assignee.is_none()
            && self.status.is_none()
    }
}

/// Embeds a reference at the end of the content: `Bloods [IH-T12-0a1b2c]`.
pub fn with_reference(content: &str, reference: Option<&str>) -> String {
    match reference {
        Some(r) => format!("{content} [{r}]"),
        None => content.to_owned(),
    }
}

/// Splits the last `[IH-…]` tag off a content: (content without it, the reference).
pub fn strip_reference(content: &str) -> (String, Option<String>) {
    if let Some(start) = content.rfind("[IH-") {
        if let Some(len) = content[start..].find(']') {
            let reference = &content[start + 1..start + len];
            let valid = reference.len() > 3
                && reference
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if valid {
                let mut rest = String::with_capacity(content.len());
                rest.push_str(content[..start].trim_end());
                let after = content[start + len + 1..].trim();
                if !after.is_empty() {
                    if !rest.is_empty() {
                        rest.push(' ');
                    }
                    rest.push_str(after);
                }
                return (rest.trim().to_owned(), Some(reference.to_owned()));
            }
        }
    }
    (content.trim().to_owned(), None)
}

/// The ward title for a SystmOne content: one line, within a title's length (SystmOne's
/// content may be longer and multi-line; the full text stays in the merge base).
pub fn title_from_content(
    content: &str,
    task_type: &str,
) -> Result<TaskTitle, crate::ValidationError> {
    let flat = content
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let max = TaskTitle::MAX_CHARS;
    let text = if flat.chars().count() > max {
        flat.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        flat
    };
    TaskTitle::parse(&text)
        .or_else(|_| TaskTitle::parse(task_type))
        .or_else(|_| TaskTitle::parse("SystmOne task"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(
        content: &str,
        due: Option<NaiveDateTime>,
        assignee: Option<RemoteAssignee>,
    ) -> RemoteTask {
        RemoteTask {
            uid: TaskUid::from_number(1),
            task_type: "Clinical Review Required".into(),
            content: Sensitive::new(content.into()),
            due,
            assignee,
            status: "Not Started".into(),
            entered: chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
                .and_then(|d| d.and_hms_opt(0, 36, 1))
                .unwrap(),
        }
    }

    fn ten_am() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 5)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap()
    }

    /// Regression (issue 10): SystmOne's header line became part of the ward task's title.
    #[test]
    fn systmone_s_header_line_is_not_task_text() {
        let sent = with_reference("Review lithium level", Some("IH-T7-0a1b2c"));
        let back = format!("Wed 02 Dec 00:36 - STRICT, Rhea\n{sent}\n");
        let t = read(&back, None, None);
        assert_eq!(t.text(), "Review lithium level");
        assert_eq!(t.reference().as_deref(), Some("IH-T7-0a1b2c"));
        // As sent, without a header (a SystmOne that does not add one): unchanged.
        assert_eq!(read(&sent, None, None).text(), "Review lithium level");
        // Text that merely looks like a date is kept.
        assert_eq!(
            strip_systmone_header("Wed 02 Dec - bloods\nthen ECG"),
            "Wed 02 Dec - bloods\nthen ECG"
        );
        // Several headers (if SystmOne stacks edits): the text after the last one.
        assert_eq!(
            strip_systmone_header(
                "Thu 24 Sep 18:17 - CURCIN, Vasa\nold\nFri 25 Sep 09:01 - CURCIN, Vasa\nnew\n"
            ),
            "new"
        );
    }

    /// Regression (issue 10): a read without Due or assignee wiped them on the ward.
    #[test]
    fn an_unreported_due_or_assignee_is_not_a_clearing() {
        let team = RemoteAssignee {
            kind: AssigneeKind::Team,
            name: "Ward 7".into(),
        };
        let base = SyncFields {
            content: Sensitive::new("Review lithium level".into()),
            due: Some(ten_am()),
            assignee: Some(team.clone()),
        };
        let header = "Wed 02 Dec 00:36 - STRICT, Rhea\nReview lithium level\n";
        assert_eq!(read(header, None, None).fields_against(Some(&base)), base);
        // Reported values are taken as they are...
        let dr = RemoteAssignee::user("Dr Baker");
        let later = ten_am() + chrono::TimeDelta::hours(2);
        let moved = read(header, Some(later), Some(dr.clone())).fields_against(Some(&base));
        assert_eq!((moved.due, moved.assignee), (Some(later), Some(dr)));
        // ...but midnight on the base's date is the base's due with its time of day lost.
        let midnight = ten_am().date().and_hms_opt(0, 0, 0);
        assert_eq!(
            read(header, midnight, None).fields_against(Some(&base)).due,
            Some(ten_am())
        );
        // With no base (a task first seen in SystmOne) nothing is invented.
        let fresh = read(header, None, None).fields_against(None);
        assert_eq!((fresh.due, fresh.assignee), (None, None));
    }

    #[test]
    fn references_round_trip_and_survive_user_text_after_them() {
        let c = with_reference("Bloods", Some("IH-T12-0a1b2c"));
        assert_eq!(c, "Bloods [IH-T12-0a1b2c]");
        assert_eq!(
            strip_reference(&c),
            ("Bloods".to_owned(), Some("IH-T12-0a1b2c".to_owned()))
        );
        assert_eq!(
            strip_reference("Bloods [IH-T12-0a1b2c] done by FY1").0,
            "Bloods done by FY1"
        );
        assert_eq!(
            strip_reference("see [IH notes]"),
            ("see [IH notes]".to_owned(), None)
        );
        assert_eq!(strip_reference("  plain "), ("plain".to_owned(), None));
    }

    #[test]
    fn titles_from_long_multiline_content_are_one_bounded_line() {
        let t = title_from_content("Line one\nline two\t\u{7}", "File").unwrap();
        assert_eq!(t.as_str(), "Line one line two");
        let long = "x".repeat(500);
        assert_eq!(
            title_from_content(&long, "File")
                .unwrap()
                .as_str()
                .chars()
                .count(),
            TaskTitle::MAX_CHARS
        );
        assert_eq!(
            title_from_content("   ", "Clinical Review Required")
                .unwrap()
                .as_str(),
            "Clinical Review Required"
        );
        assert_eq!(
            title_from_content("", "").unwrap().as_str(),
            "SystmOne task"
        );
    }

    proptest! {
        #[test]
        fn stripping_a_tagged_content_gives_back_the_text(text in "[a-zA-Z0-9 ,.]{0,60}", id in 1i64..100000, r in 0u32..0xffffff) {
            let reference = format!("IH-T{id}-{r:06x}");
            let (back, found) = strip_reference(&with_reference(&text, Some(&reference)));
            prop_assert_eq!(back, text.trim().to_owned());
            prop_assert_eq!(found, Some(reference));
        }

        #[test]
        fn any_content_gives_a_valid_title(content in "\\PC{0,400}") {
            let t = title_from_content(&content, "File").unwrap();
            prop_assert!(TaskTitle::parse(t.as_str()).is_ok());
        }
    }
}
