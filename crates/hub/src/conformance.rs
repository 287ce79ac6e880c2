//! The conformance kit for TPP's Demo environment (`hubctl conformance`): a scripted probe
//! that finds out how the SystmOne client in front of it actually behaves where TPP's
//! documents and our captures leave a question open, and the observed profile the app
//! adapts to (`hubctl conformance --apply`, [`Hub::observed_systmone_profile`]).
//!
//! The probe goes through the app's own client, so TPP's throttle is kept like any other
//! work: one request a second from every Inpatient Hub process on the PC, and only reads
//! that are exempt from the 30-second GetPatientRecord limit (demographics only, entered
//! today).
//!
//! It runs in two steps so nothing is written before a person has seen where it would go:
//! 1. [`Hub::conformance_target`] (reads only): the functions offered, who is logged in and
//!    where, and the test patient's demographics, with a judgement on whether the record
//!    looks like a test patient.
//! 2. [`Hub::conformance_probe`], given that target and an explicit [`Consent`]: files a
//!    four-line test note and a task with a due date-time and an assignee, reads both back
//!    (entered today), sends `Status = Completed` on the task and reads it back, then deletes
//!    what it added (Reason [`DELETE_REASON`]) and checks the note is gone.
//!
//! What the client cannot see is reported as `unknown`, never guessed: the bytes on the
//! socket (whether SystmOne closes the connection after a reply, what follows a response,
//! the encoding declaration, where in an update's response the UIDs sit) are consumed inside
//! `systmone::connection`, which exposes only decoded answers.

use crate::{Hub, HubError, HubResult};
use chrono::{Local, NaiveDate, NaiveDateTime, NaiveTime};
use domain::NhsNumber;
use serde::{Deserialize, Serialize};
use store::SettingKey;
use systmone::client::{ClientError, Lane, SystmOneClient};
use systmone::codec::{
    DeletePatientRecordParams, Demographics, Event, FilterFlag, Function, GetPatientRecordParams,
    Identity, OrganisationMetaData, PatientRecord, Task, TaskAssignee, UpdatePatientRecordParams,
};

/// The Reason given to SystmOne for removing the probe's entries.
pub const DELETE_REASON: &str = "Inpatient Hub conformance probe";
/// The version of the profile file's format.
pub const PROFILE_FORMAT: u32 = 1;
/// The non-ASCII fragment in the test note: its read-back shows whether text survives the
/// response's encoding.
const NON_ASCII_SAMPLE: &str = "Siân, 37.5 °C, café – ok";
/// The site name the simulator uses (the demo guard's marker).
const SIMULATOR_MARKER: &str = "Inpatient Hub simulator";
/// The functions without which the probe cannot write, read back and clean up.
const REQUIRED: [Function; 3] = [
    Function::GetPatientRecord,
    Function::UpdatePatientRecord,
    Function::DeletePatientRecord,
];

// ---------------------------------------------------------------------------------------
// The observed profile

/// How a filed multi-line narrative reads back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NarrativeShape {
    /// One Narrative with the Lines as filed.
    AsSent,
    /// One Line: the filed lines joined by spaces.
    JoinedSpaces,
    /// One Line: the filed lines joined by newlines.
    JoinedNewlines,
    /// One Narrative per filed line.
    NarrativePerLine,
    /// Found, in a shape none of the above describes (the report shows it).
    Other,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether read-back lines carry leading spaces that were not filed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    Padded,
    NotPadded,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether non-ASCII text filed in a note reads back unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextRoundTrip {
    RoundTrips,
    Altered,
    /// A response could not be decoded because of its encoding.
    Unreadable,
    #[default]
    #[serde(other)]
    Unknown,
}

/// How a task's Content reads back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskContentShape {
    AsSent,
    /// SystmOne's own header line (`Thu 24 Sep 18:17 - SURNAME, First`) first, then the text.
    HeaderLine,
    Other,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether a field is present in task reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reporting {
    Reported,
    NotReported,
    #[default]
    #[serde(other)]
    Unknown,
}

/// What became of the time of day in a task's Due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DueTime {
    Kept,
    /// The date was kept, the time became midnight.
    DateOnly,
    Changed,
    /// Also when Due is not reported in reads.
    #[default]
    #[serde(other)]
    Unknown,
}

/// What `<Status>Completed</Status>` on a task update does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusUpdate {
    /// The task was completed (it left the Tasks filter or reads as Completed).
    Applied,
    /// Accepted, but the task stayed open: staff must complete it in SystmOne.
    Ignored,
    /// Refused with an error.
    Refused,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether an UpdatePatientRecord's answer names what it created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateUids {
    /// The EventUID and TaskUID in the answer are those the read-back shows.
    MatchReadBack,
    /// UIDs came back but the read-back shows others.
    DifferFromReadBack,
    /// The answer named nothing it created.
    NotReported,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether DeletePatientRecord removes what this device added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteOwnEntries {
    Deleted,
    Refused,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether SystmOne keeps the connection open after a reply. Not visible through the app's
/// client (it reconnects silently), so the probe always reports `unknown`; the values name
/// what a packet capture could show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionAfterReply {
    Kept,
    ClosedAfterReply,
    #[default]
    #[serde(other)]
    Unknown,
}

/// What follows a response document on the socket. Not visible through the client's
/// framing: always `unknown` from the probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseTerminator {
    Nothing,
    Newline,
    Eof,
    #[default]
    #[serde(other)]
    Unknown,
}

/// The encoding a response declares. The client transcodes before anything else sees the
/// document: always `unknown` from the probe (see `non_ascii_text` for what is observable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncodingDeclaration {
    Utf8,
    Windows1252,
    NoDeclaration,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Where an update's UIDs sit in its response. The decoder collects them from anywhere in
/// the document: always `unknown` from the probe (see `update_uids`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UidLocation {
    DirectlyUnderResponse,
    Nested,
    #[default]
    #[serde(other)]
    Unknown,
}

/// Who answered the probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerKind {
    Systmone,
    Simulator,
    #[default]
    #[serde(other)]
    Unknown,
}

/// What a conformance run observed: one field per behaviour, `unknown` where the run could
/// not observe it. Holds no patient data (it is stored as a ward setting and audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedProfile {
    pub format: u32,
    /// When the probe ran (local time, RFC 3339).
    pub observed_at: String,
    pub peer: PeerKind,
    /// The SystmOne site the probe ran at (organisation data, not patient data).
    pub site: Option<String>,
    pub supported_functions: Vec<String>,
    pub narrative_read_back: NarrativeShape,
    pub narrative_padding: Padding,
    pub non_ascii_text: TextRoundTrip,
    pub update_uids: UpdateUids,
    pub task_content: TaskContentShape,
    pub task_due: Reporting,
    pub task_due_time: DueTime,
    pub task_assignee: Reporting,
    pub task_status_update: StatusUpdate,
    pub delete_own_entries: DeleteOwnEntries,
    pub connection_after_reply: ConnectionAfterReply,
    pub response_terminator: ResponseTerminator,
    pub encoding_declaration: EncodingDeclaration,
    pub uid_location: UidLocation,
}

impl Default for ObservedProfile {
    fn default() -> Self {
        ObservedProfile {
            format: PROFILE_FORMAT,
            observed_at: String::new(),
            peer: PeerKind::Unknown,
            site: None,
            supported_functions: Vec::new(),
            narrative_read_back: NarrativeShape::Unknown,
            narrative_padding: Padding::Unknown,
            non_ascii_text: TextRoundTrip::Unknown,
            update_uids: UpdateUids::Unknown,
            task_content: TaskContentShape::Unknown,
            task_due: Reporting::Unknown,
            task_due_time: DueTime::Unknown,
            task_assignee: Reporting::Unknown,
            task_status_update: StatusUpdate::Unknown,
            delete_own_entries: DeleteOwnEntries::Unknown,
            connection_after_reply: ConnectionAfterReply::Unknown,
            response_terminator: ResponseTerminator::Unknown,
            encoding_declaration: EncodingDeclaration::Unknown,
            uid_location: UidLocation::Unknown,
        }
    }
}

impl ObservedProfile {
    /// Reads a profile file. Fields it does not name read as `unknown`; a value this version
    /// does not know reads as `unknown` too, so a newer file never makes the app assume.
    pub fn from_json(text: &str) -> HubResult<ObservedProfile> {
        let profile: ObservedProfile = serde_json::from_str(text)
            .map_err(|e| HubError::BadRequest(format!("this is not a conformance profile: {e}")))?;
        if profile.format != PROFILE_FORMAT {
            return Err(HubError::BadRequest(format!(
                "this profile has format {}; this version of Inpatient Hub reads format {PROFILE_FORMAT}",
                profile.format
            )));
        }
        Ok(profile)
    }

    pub fn to_json(&self) -> HubResult<String> {
        serde_json::to_string_pretty(self).map_err(|e| HubError::BadRequest(e.to_string()))
    }

    /// Every behaviour with its value as the profile file spells it, in file order.
    pub fn behaviours(&self) -> Vec<(&'static str, String)> {
        fn name<T: Serialize>(value: &T) -> String {
            serde_json::to_value(value)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".to_owned())
        }
        vec![
            ("narrative_read_back", name(&self.narrative_read_back)),
            ("narrative_padding", name(&self.narrative_padding)),
            ("non_ascii_text", name(&self.non_ascii_text)),
            ("update_uids", name(&self.update_uids)),
            ("task_content", name(&self.task_content)),
            ("task_due", name(&self.task_due)),
            ("task_due_time", name(&self.task_due_time)),
            ("task_assignee", name(&self.task_assignee)),
            ("task_status_update", name(&self.task_status_update)),
            ("delete_own_entries", name(&self.delete_own_entries)),
            ("connection_after_reply", name(&self.connection_after_reply)),
            ("response_terminator", name(&self.response_terminator)),
            ("encoding_declaration", name(&self.encoding_declaration)),
            ("uid_location", name(&self.uid_location)),
        ]
    }
}

/// Why the behaviours that are always `unknown` could not be observed (for the report).
pub const NOT_OBSERVABLE: [(&str, &str); 4] = [
    ("connection_after_reply", "the app's client reconnects silently when SystmOne closes a connection, and exposes no connection count"),
    ("response_terminator", "the client's framing consumes whatever follows a response document"),
    ("encoding_declaration", "the client transcodes a response before it is decoded; non_ascii_text shows whether text survives"),
    ("uid_location", "the decoder collects UIDs from anywhere in an update's response; update_uids shows whether they are right"),
];

// ---------------------------------------------------------------------------------------
// Before any write: what the probe would write to, and the consent to do it

/// The patient as shown before any write. Patient data: `Debug` redacts it.
#[derive(Clone, Serialize)]
pub struct PatientShown {
    pub nhs_number: String,
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<String>,
    pub deceased: bool,
}

impl std::fmt::Debug for PatientShown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatientShown([redacted])")
    }
}

/// What the probe would write to: shown to a person before they consent. Only
/// [`Hub::conformance_target`] makes one, so a probe always writes to what was shown.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeTarget {
    pub peer: PeerKind,
    /// The organisation's primary site (SystmOne reports sites, not an organisation name).
    pub organisation: Option<String>,
    pub site: Option<String>,
    pub site_id: Option<String>,
    /// The SystmOne user logged in ("Dr Jane Smith (jsmith), GP").
    pub user: Option<String>,
    /// The logged-in user's SystmOne user name: the probe task's default assignee.
    pub user_name: Option<String>,
    pub supported_functions: Vec<String>,
    /// Functions the probe needs that SystmOne does not offer: nothing is written if any.
    pub missing_functions: Vec<String>,
    pub patient: PatientShown,
    pub looks_like_test_patient: bool,
    /// Why the record does, or does not, look like a test patient.
    pub test_patient_reasons: Vec<String>,
    #[serde(skip)]
    nhs: NhsNumber,
}

/// A person's explicit answer to what [`ProbeTarget`] showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consent {
    /// "This is TPP's Demo system (or the simulator) and I agree to the test writes."
    pub writes_confirmed: bool,
    /// Also needed when the record does not look like a test patient.
    pub not_obviously_test_patient_confirmed: bool,
}

/// Whether a record looks like a test patient, and why. An NHS number in the never-issued
/// 999 range, or a name that says it is a test record.
pub fn assess_test_patient(nhs: &NhsNumber, demographics: &Demographics) -> (bool, Vec<String>) {
    let mut reasons = Vec::new();
    if nhs.is_test_range() {
        reasons.push(
            "the NHS number is in the 999 range, which is never issued to real patients".to_owned(),
        );
    }
    const MARKERS: [&str; 5] = ["test", "dummy", "fictitious", "demo", "zzz"];
    let names = [
        &demographics.title,
        &demographics.first_name,
        &demographics.middle_names,
        &demographics.surname,
        &demographics.known_as,
    ];
    let marked = names.iter().filter_map(|n| n.as_deref()).any(|n| {
        let lower = n.to_lowercase();
        MARKERS.iter().any(|m| lower.contains(m))
    });
    if marked {
        reasons.push("the name says it is a test record".to_owned());
    }
    let looks = !reasons.is_empty();
    if !looks {
        reasons.push(
            "the NHS number is not in the 999 test range and the name does not mark a test record"
                .to_owned(),
        );
    }
    if demographics.is_deceased() {
        reasons.push("SystmOne records a date of death".to_owned());
    }
    (looks, reasons)
}

/// Refuses a probe whose consent does not cover its target.
pub fn check_consent(target: &ProbeTarget, consent: Consent) -> HubResult<()> {
    if !target.missing_functions.is_empty() {
        return Err(HubError::BadRequest(format!(
            "SystmOne does not offer {}; the probe cannot write, read back and clean up, so it writes nothing",
            target.missing_functions.join(", ")
        )));
    }
    if !consent.writes_confirmed {
        return Err(HubError::BadRequest(
            "the probe writes a test note and a task to the patient; it needs explicit confirmation (answer y, or --yes-i-am-on-tpp-demo)".into(),
        ));
    }
    if !target.looks_like_test_patient && !consent.not_obviously_test_patient_confirmed {
        return Err(HubError::BadRequest(
            "this record does not look like a test patient; nothing was written (confirm it is one with --confirm-test-patient, or choose a test patient)".into(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The report

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Skipped,
}

/// One step of the probe. `detail` holds SystmOne's answers about the probe's own test
/// entries, never demographics.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: &'static str,
    pub outcome: StepOutcome,
    pub detail: String,
}

/// What the probe added and whether it is gone again.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleanup {
    /// "note EventUID 0123…", "task TaskUID …".
    pub removed: Vec<String>,
    /// What is still in the record (remove it by hand in SystmOne).
    pub left: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub profile: ObservedProfile,
    pub steps: Vec<StepReport>,
    pub cleanup: Cleanup,
    /// Every step completed and nothing the probe added is left in the record.
    pub passed: bool,
    /// The reference the probe's entries carry (search SystmOne for it if anything is left).
    pub reference: String,
}

impl ProbeReport {
    /// The report for people (trust IT).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(
            &mut out,
            format!(
                "Conformance probe {} ({})",
                if self.passed {
                    "PASSED"
                } else {
                    "DID NOT PASS"
                },
                self.reference
            ),
        );
        line(&mut out, String::new());
        line(&mut out, "Steps:".into());
        for s in &self.steps {
            let mark = match s.outcome {
                StepOutcome::Ok => "ok     ",
                StepOutcome::Failed => "FAILED ",
                StepOutcome::Skipped => "skipped",
            };
            line(&mut out, format!("  {mark} {}: {}", s.step, s.detail));
        }
        line(&mut out, String::new());
        line(&mut out, "Observed behaviour:".into());
        for (field, value) in self.profile.behaviours() {
            line(&mut out, format!("  {field:<24} {value}"));
        }
        line(&mut out, String::new());
        line(
            &mut out,
            "Not observable through the app's client (always unknown):".into(),
        );
        for (field, why) in NOT_OBSERVABLE {
            line(&mut out, format!("  {field}: {why}"));
        }
        line(&mut out, String::new());
        if self.cleanup.left.is_empty() {
            line(
                &mut out,
                format!(
                    "Clean-up: everything the probe added was removed ({}).",
                    self.cleanup.removed.join(", ")
                ),
            );
        } else {
            line(&mut out, format!(
                "Clean-up INCOMPLETE: still in the record: {}. Remove it by hand in SystmOne (it carries {}).",
                self.cleanup.left.join(", "),
                self.reference
            ));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// The probe

/// What the probe filed, to recognise it in reads.
struct Sent {
    reference: String,
    note_lines: Vec<String>,
    task_content: String,
    task_due: NaiveDateTime,
}

impl Sent {
    fn new(today: NaiveDate) -> Sent {
        let simple = uuid::Uuid::new_v4().simple().to_string();
        let reference = format!("IHCP-{}", &simple[..12]);
        let due_date = today.succ_opt().unwrap_or(today);
        let due_time = NaiveTime::from_hms_opt(14, 37, 0).unwrap_or(NaiveTime::MIN);
        Sent {
            note_lines: vec![
                "Inpatient Hub conformance probe: a test entry on a test patient. Please ignore."
                    .to_owned(),
                "Line 2 of 4: the probe checks how filed lines come back.".to_owned(),
                format!("Line 3 of 4: non-ASCII text {NON_ASCII_SAMPLE}."),
                format!("Ref {reference}"),
            ],
            task_content: format!(
                "Inpatient Hub conformance probe task {reference}. Please ignore."
            ),
            task_due: due_date.and_time(due_time),
            reference,
        }
    }
}

/// The note's shape in a read-back.
pub fn classify_narrative(sent: &[String], event: &Event) -> (NarrativeShape, Padding) {
    let narratives: Vec<&Vec<String>> = event.narratives.iter().map(|n| &n.lines).collect();
    let all: Vec<&String> = narratives.iter().flat_map(|n| n.iter()).collect();
    if all.is_empty() {
        return (NarrativeShape::Unknown, Padding::Unknown);
    }
    let padding = if all.iter().any(|l| l.starts_with([' ', '\t'])) {
        Padding::Padded
    } else {
        Padding::NotPadded
    };
    let same = |read: &[&String]| {
        read.len() == sent.len() && read.iter().zip(sent).all(|(r, s)| r.trim() == s.trim())
    };
    let shape = if narratives.len() == 1 && same(&all) {
        NarrativeShape::AsSent
    } else if narratives.len() == sent.len()
        && narratives.iter().all(|n| n.len() == 1)
        && same(&all)
    {
        NarrativeShape::NarrativePerLine
    } else if let [one] = all.as_slice() {
        let text = one.replace("\r\n", "\n");
        let text = text.trim();
        if text == sent.join(" ") {
            NarrativeShape::JoinedSpaces
        } else if text == sent.join("\n") {
            NarrativeShape::JoinedNewlines
        } else {
            NarrativeShape::Other
        }
    } else {
        NarrativeShape::Other
    };
    (shape, padding)
}

/// The task's Content shape in a read-back.
pub fn classify_task_content(sent: &str, read: Option<&str>) -> TaskContentShape {
    let Some(read) = read else {
        return TaskContentShape::Unknown;
    };
    let read = read.replace("\r\n", "\n");
    if read.trim() == sent.trim() {
        return TaskContentShape::AsSent;
    }
    match read.trim_start().split_once('\n') {
        Some((header, rest)) if !header.trim().is_empty() && rest.trim() == sent.trim() => {
            TaskContentShape::HeaderLine
        }
        _ => TaskContentShape::Other,
    }
}

/// Due as read back, against what was sent.
pub fn classify_due(sent: NaiveDateTime, read: Option<NaiveDateTime>) -> (Reporting, DueTime) {
    match read {
        None => (Reporting::NotReported, DueTime::Unknown),
        Some(read) if read == sent => (Reporting::Reported, DueTime::Kept),
        Some(read) if read.date() == sent.date() && read.time() == NaiveTime::MIN => {
            (Reporting::Reported, DueTime::DateOnly)
        }
        Some(_) => (Reporting::Reported, DueTime::Changed),
    }
}

fn find_note<'a>(
    record: &'a PatientRecord,
    uid: Option<&str>,
    reference: &str,
) -> Option<&'a Event> {
    record
        .events
        .iter()
        .find(|e| uid.is_some_and(|u| e.event_uid.as_deref() == Some(u)))
        .or_else(|| {
            record
                .events
                .iter()
                .find(|e| e.narrative_lines().any(|l| l.contains(reference)))
        })
}

fn find_task<'a>(
    record: &'a PatientRecord,
    uid: Option<&str>,
    reference: &str,
) -> Option<&'a Task> {
    record
        .tasks
        .iter()
        .find(|t| uid.is_some_and(|u| t.task_uid.as_deref() == Some(u)))
        .or_else(|| {
            record
                .tasks
                .iter()
                .find(|t| t.content.as_deref().is_some_and(|c| c.contains(reference)))
        })
}

fn is_encoding_error(e: &ClientError) -> bool {
    matches!(e, ClientError::Protocol(m) if m.contains("encoding"))
}

/// SystmOne's answer to a failed step, in words (the probe's own entries only).
fn failure(e: &ClientError) -> String {
    format!("{} [{}]", e, e.code())
}

fn person(user: &systmone::codec::User) -> String {
    let name = [&user.title, &user.first_name, &user.surname]
        .iter()
        .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut shown = if name.is_empty() {
        "(no name)".to_owned()
    } else {
        name
    };
    if let Some(u) = &user.user_name {
        shown.push_str(&format!(" ({u})"));
    }
    if let Some(r) = &user.role {
        shown.push_str(&format!(", {r}"));
    }
    shown
}

fn parse_assignee(raw: &str) -> HubResult<TaskAssignee> {
    let (kind, name) = raw.split_once(':').ok_or_else(|| {
        HubError::BadRequest(
            "give the assignee as user:NAME or group:NAME (SystmOne's names)".into(),
        )
    })?;
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(HubError::BadRequest("the assignee's name is empty".into()));
    }
    match kind.trim() {
        "user" => Ok(TaskAssignee::User(name)),
        "group" => Ok(TaskAssignee::Group(name)),
        "team" => Ok(TaskAssignee::Team(name)),
        other => Err(HubError::BadRequest(format!(
            "'{other}' is not an assignee kind; use user:NAME or group:NAME"
        ))),
    }
}

/// What the probe's task is (type and assignee); defaults: the ward's default task type,
/// assigned to the SystmOne user running the probe.
#[derive(Debug, Clone, Default)]
pub struct ProbeOptions {
    pub task_type: Option<String>,
    /// `user:NAME` or `group:NAME`.
    pub assignee: Option<String>,
}

struct Probe<'a> {
    client: &'a SystmOneClient,
    identity: Identity,
    today: NaiveDate,
    sent: Sent,
    profile: ObservedProfile,
    steps: Vec<StepReport>,
}

impl Probe<'_> {
    fn step(&mut self, step: &'static str, outcome: StepOutcome, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::info!(step, outcome = ?outcome, "conformance probe step");
        self.steps.push(StepReport {
            step,
            outcome,
            detail,
        });
    }

    fn note_error(&mut self, e: &ClientError) {
        if is_encoding_error(e) {
            self.profile.non_ascii_text = TextRoundTrip::Unreadable;
        }
    }

    /// Entered today (exempt from the 30 s limit): the probe's only kind of record read.
    async fn read_today(&mut self, flags: &[FilterFlag]) -> Result<PatientRecord, ClientError> {
        let params = GetPatientRecordParams::entered_on(
            Some(self.identity.clone()),
            self.today,
            flags.iter().copied(),
        );
        let read = self
            .client
            .patient_record_with(params, Lane::Interactive)
            .await;
        if let Err(e) = &read {
            self.note_error(e);
        }
        read
    }
}

impl Probe<'_> {
    /// Deletes what the probe added (all at once, else one by one) and checks the note is
    /// gone.
    async fn cleanup(
        &mut self,
        note_uid: Option<String>,
        task_uid: Option<String>,
        task_completed: bool,
        note_maybe_filed: bool,
        task_maybe_created: bool,
    ) -> Cleanup {
        let client = self.client;
        let identity = self.identity.clone();
        let mut cleanup = Cleanup::default();
        let describe = |note: bool, uid: &str| {
            if note {
                format!("note EventUID {uid}")
            } else {
                format!("task TaskUID {uid}")
            }
        };
        let mut items: Vec<(bool, String)> = Vec::new();
        if let Some(uid) = &note_uid {
            items.push((true, uid.clone()));
        } else if note_maybe_filed {
            cleanup
                .left
                .push("the note (its EventUID is unknown)".to_owned());
        }
        if let Some(uid) = &task_uid {
            items.push((false, uid.clone()));
        } else if task_maybe_created {
            cleanup
                .left
                .push("the task (its TaskUID is unknown)".to_owned());
        }
        if items.is_empty() {
            self.step(
                "remove test entries",
                StepOutcome::Skipped,
                "nothing to remove",
            );
            return cleanup;
        }
        let delete = |only: &[(bool, String)]| {
            let mut params = DeletePatientRecordParams::new(identity.clone(), DELETE_REASON);
            for (note, uid) in only {
                if *note {
                    params.event_uids.push(uid.clone());
                } else {
                    params.task_uids.push(uid.clone());
                }
            }
            params
        };
        let mut details = Vec::new();
        match client
            .delete_from_record(delete(&items), Lane::Interactive)
            .await
        {
            Ok(_) => {
                self.profile.delete_own_entries = DeleteOwnEntries::Deleted;
                cleanup
                    .removed
                    .extend(items.iter().map(|(n, u)| describe(*n, u)));
            }
            Err(ClientError::Permanent(message)) if items.len() > 1 => {
                // All or nothing: one of them (a completed task?) may be what SystmOne
                // refuses; try each on its own.
                details.push(format!("together: refused ({})", message.expose()));
                for item in &items {
                    match client
                        .delete_from_record(delete(std::slice::from_ref(item)), Lane::Interactive)
                        .await
                    {
                        Ok(_) => {
                            self.profile.delete_own_entries = DeleteOwnEntries::Deleted;
                            cleanup.removed.push(describe(item.0, &item.1));
                        }
                        Err(e) => {
                            if matches!(e, ClientError::Permanent(_))
                                && self.profile.delete_own_entries == DeleteOwnEntries::Unknown
                            {
                                self.profile.delete_own_entries = DeleteOwnEntries::Refused;
                            }
                            details.push(format!("{}: {}", describe(item.0, &item.1), failure(&e)));
                            cleanup.left.push(describe(item.0, &item.1));
                        }
                    }
                }
            }
            Err(e) => {
                if matches!(e, ClientError::Permanent(_)) {
                    self.profile.delete_own_entries = DeleteOwnEntries::Refused;
                }
                details.push(failure(&e));
                cleanup
                    .left
                    .extend(items.iter().map(|(n, u)| describe(*n, u)));
            }
        }
        // Check the note is gone (an open task's removal too, while it was still open).
        let removed_note = cleanup.removed.iter().any(|r| r.starts_with("note"));
        let removed_open_task =
            !task_completed && cleanup.removed.iter().any(|r| r.starts_with("task"));
        if removed_note || removed_open_task {
            let reference = self.sent.reference.clone();
            match self
                .read_today(&[FilterFlag::Narrative, FilterFlag::Tasks])
                .await
            {
                Ok(record) => {
                    if removed_note && find_note(&record, note_uid.as_deref(), &reference).is_some()
                    {
                        details.push("the note still reads back after its deletion".to_owned());
                        move_to_left(&mut cleanup, "note");
                    }
                    if removed_open_task
                        && find_task(&record, task_uid.as_deref(), &reference).is_some()
                    {
                        details.push("the task still reads back after its deletion".to_owned());
                        move_to_left(&mut cleanup, "task");
                    }
                }
                Err(e) => details.push(format!("could not check the deletion: {}", failure(&e))),
            }
        }
        let outcome = if cleanup.left.is_empty() {
            StepOutcome::Ok
        } else {
            StepOutcome::Failed
        };
        let mut detail = if cleanup.removed.is_empty() {
            "nothing removed".to_owned()
        } else {
            format!(
                "removed {} (Reason \"{DELETE_REASON}\")",
                cleanup.removed.join(", ")
            )
        };
        if !details.is_empty() {
            detail.push_str("; ");
            detail.push_str(&details.join("; "));
        }
        self.step("remove test entries", outcome, detail);
        cleanup
    }
}

impl Hub {
    /// Step 1 of the probe, reads only: the functions SystmOne offers, who is logged in and
    /// where, and the patient's demographics (demographics-only, exempt from the 30 s limit).
    pub async fn conformance_target(&self, nhs: &str) -> HubResult<ProbeTarget> {
        let nhs = NhsNumber::parse(nhs).map_err(|e| HubError::Field {
            field: "patient",
            source: Box::new(e.into()),
        })?;
        self.verified_client_probe().await?;
        let client = self.conformance_client()?;
        let functions = client
            .functions(Lane::Interactive)
            .await
            .map_err(HubError::SystmOne)?;
        let supported_functions: Vec<String> = functions
            .functions
            .iter()
            .map(|f| f.function.clone())
            .collect();
        let missing_functions = REQUIRED
            .iter()
            .filter(|f| !functions.supports(**f))
            .map(|f| f.as_str().to_owned())
            .collect();
        let metadata: OrganisationMetaData = client
            .organisation(true, Lane::Interactive)
            .await
            .map_err(HubError::SystmOne)?;
        let current = metadata
            .sites
            .iter()
            .find(|s| s.current_site)
            .or(metadata.sites.first());
        let primary = metadata.sites.iter().find(|s| s.primary_site).or(current);
        let user = metadata.current_user().or(match metadata.users.as_slice() {
            [only] => Some(only),
            _ => None,
        });
        let site = current.and_then(|s| s.name.clone());
        let peer = if site
            .as_deref()
            .is_some_and(|s| s.contains(SIMULATOR_MARKER))
        {
            PeerKind::Simulator
        } else {
            PeerKind::Systmone
        };
        let record = client
            .patient_record_with(
                GetPatientRecordParams::demographics_only(Some(Identity::nhs(nhs.clone()))),
                Lane::Interactive,
            )
            .await
            .map_err(|e| match e {
                ClientError::Permanent(_) => HubError::NoSuchPatient(nhs.formatted()),
                other => HubError::SystmOne(other),
            })?;
        let demographics = record
            .demographics
            .ok_or_else(|| HubError::NoSuchPatient(nhs.formatted()))?;
        let (looks_like_test_patient, test_patient_reasons) =
            assess_test_patient(&nhs, &demographics);
        let name = [
            &demographics.title,
            &demographics.first_name,
            &demographics.surname,
        ]
        .iter()
        .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
        .collect::<Vec<_>>()
        .join(" ");
        tracing::info!(
            simulator = peer == PeerKind::Simulator,
            test_patient = looks_like_test_patient,
            "conformance probe target read"
        );
        Ok(ProbeTarget {
            peer,
            organisation: primary.and_then(|s| s.name.clone()),
            site,
            site_id: current.and_then(|s| s.id.clone()),
            user: user.map(person),
            user_name: user.and_then(|u| u.user_name.clone()),
            supported_functions,
            missing_functions,
            patient: PatientShown {
                nhs_number: nhs.formatted(),
                name,
                date_of_birth: demographics.date_of_birth,
                sex: demographics.sex.map(|s| s.code().to_owned()),
                deceased: demographics.is_deceased(),
            },
            looks_like_test_patient,
            test_patient_reasons,
            nhs,
        })
    }

    fn conformance_client(&self) -> HubResult<&SystmOneClient> {
        self.systmone_client()
            .ok_or_else(|| HubError::SystmOneUnavailable("SystmOne is not set up".into()))
    }

    /// Step 2: the writes, read-backs and clean-up, once a person has consented to what
    /// `target` showed. Refuses (writing nothing) without that consent. A failed step does
    /// not stop the clean-up; the report says what passed, what was observed, and anything
    /// left in the record.
    pub async fn conformance_probe(
        &self,
        target: &ProbeTarget,
        consent: Consent,
        options: &ProbeOptions,
    ) -> HubResult<ProbeReport> {
        check_consent(target, consent)?;
        let assignee = match (&options.assignee, &target.user_name) {
            (Some(raw), _) => parse_assignee(raw)?,
            (None, Some(user)) => TaskAssignee::User(user.clone()),
            (None, None) => {
                return Err(HubError::BadRequest(
                    "SystmOne did not name the logged-in user; give the task's assignee with --assign user:NAME".into(),
                ))
            }
        };
        let task_type = options
            .task_type
            .clone()
            .unwrap_or_else(|| crate::DEFAULT_TASK_TYPE.to_owned());
        // The demo guard again: the peer must still be what this mode expects.
        self.verified_client_probe().await?;
        let client = self.conformance_client()?;
        let today = Local::now().date_naive();
        let mut probe = Probe {
            client,
            identity: Identity::nhs(target.nhs.clone()),
            today,
            sent: Sent::new(today),
            profile: ObservedProfile {
                observed_at: Local::now().to_rfc3339(),
                peer: target.peer,
                site: target.site.clone(),
                supported_functions: target.supported_functions.clone(),
                ..ObservedProfile::default()
            },
            steps: Vec::new(),
        };
        tracing::info!("conformance probe: writing test entries");

        // 1. The note.
        let note = UpdatePatientRecordParams::new(probe.identity.clone())
            .with_event(Event::with_lines(probe.sent.note_lines.clone()));
        let mut note_uid = None;
        let note_maybe_filed;
        let mut note_answered = false;
        match client.update_record(note, Lane::Interactive).await {
            Ok(answer) => {
                note_uid = answer.event_uids.first().cloned();
                note_maybe_filed = true;
                note_answered = true;
                let detail = match &note_uid {
                    Some(uid) => format!("filed a 4-line note; EventUID {uid}"),
                    None => "filed a 4-line note; the answer named no EventUID".to_owned(),
                };
                probe.step("file note", StepOutcome::Ok, detail);
            }
            Err(e) => {
                probe.note_error(&e);
                note_maybe_filed = matches!(e.failure(), domain::SystmOneFailure::MaybeSent);
                probe.step("file note", StepOutcome::Failed, failure(&e));
            }
        }

        // 2. The task: a due date-time (not midnight) and an assignee.
        let task = Task::create(
            task_type,
            probe.sent.task_content.clone(),
            assignee,
            Some(probe.sent.task_due),
        );
        let mut task_uid = None;
        let task_maybe_created;
        let mut task_answered = false;
        match client
            .update_record(
                UpdatePatientRecordParams::new(probe.identity.clone()).with_task(task),
                Lane::Interactive,
            )
            .await
        {
            Ok(answer) => {
                task_uid = answer.task_uids.first().cloned();
                task_maybe_created = true;
                task_answered = true;
                let detail = match &task_uid {
                    Some(uid) => format!(
                        "created a task due {}; TaskUID {uid}",
                        probe.sent.task_due.format("%Y-%m-%d %H:%M")
                    ),
                    None => "created a task; the answer named no TaskUID".to_owned(),
                };
                probe.step("create task", StepOutcome::Ok, detail);
            }
            Err(e) => {
                probe.note_error(&e);
                task_maybe_created = matches!(e.failure(), domain::SystmOneFailure::MaybeSent);
                probe.step("create task", StepOutcome::Failed, failure(&e));
            }
        }

        // 3. Read both back (entered today).
        let reported_note_uid = note_uid.clone();
        let reported_task_uid = task_uid.clone();
        let mut read_task_found = false;
        if note_maybe_filed || task_maybe_created {
            match probe
                .read_today(&[FilterFlag::Narrative, FilterFlag::Tasks])
                .await
            {
                Ok(record) => {
                    let mut found = Vec::new();
                    let reference = probe.sent.reference.clone();
                    if let Some(event) = find_note(&record, note_uid.as_deref(), &reference) {
                        let (shape, padding) = classify_narrative(&probe.sent.note_lines, event);
                        probe.profile.narrative_read_back = shape;
                        probe.profile.narrative_padding = padding;
                        probe.profile.non_ascii_text =
                            if event.narrative_text().contains(NON_ASCII_SAMPLE) {
                                TextRoundTrip::RoundTrips
                            } else {
                                TextRoundTrip::Altered
                            };
                        if note_uid.is_none() {
                            note_uid = event.event_uid.clone();
                        }
                        found.push(format!(
                            "note in {} Narrative(s), {} Line(s)",
                            event.narratives.len(),
                            event.narrative_lines().count()
                        ));
                    } else if note_maybe_filed {
                        found.push("the note is not in today's entries".to_owned());
                    }
                    if let Some(task) = find_task(&record, task_uid.as_deref(), &reference) {
                        read_task_found = true;
                        probe.profile.task_content = classify_task_content(
                            &probe.sent.task_content,
                            task.content.as_deref(),
                        );
                        let (due, time) = classify_due(probe.sent.task_due, task.due);
                        probe.profile.task_due = due;
                        probe.profile.task_due_time = time;
                        let assigned = task.user_name_assigned.is_some()
                            || task.group_name_assigned.is_some()
                            || task.team_name_assigned.is_some();
                        probe.profile.task_assignee = if assigned {
                            Reporting::Reported
                        } else {
                            Reporting::NotReported
                        };
                        if task_uid.is_none() {
                            task_uid = task.task_uid.clone();
                        }
                        found.push(format!(
                            "task with status {:?}",
                            task.status.as_deref().unwrap_or("(none)")
                        ));
                    } else if task_maybe_created {
                        found.push("the task is not in today's open tasks".to_owned());
                    }
                    let read_note_uid =
                        find_note(&record, None, &reference).and_then(|e| e.event_uid.clone());
                    let read_task_uid =
                        find_task(&record, None, &reference).and_then(|t| t.task_uid.clone());
                    probe.profile.update_uids = update_uids(
                        (reported_note_uid.as_deref(), read_note_uid.as_deref()),
                        (reported_task_uid.as_deref(), read_task_uid.as_deref()),
                        note_answered && task_answered,
                    );
                    // What the record shows is what gets removed, whatever the answer said.
                    if read_note_uid.is_some() {
                        note_uid = read_note_uid;
                    }
                    if read_task_uid.is_some() {
                        task_uid = read_task_uid;
                    }
                    let complete = found.iter().all(|f| !f.contains("not in today's"));
                    probe.step(
                        "read back",
                        if complete {
                            StepOutcome::Ok
                        } else {
                            StepOutcome::Failed
                        },
                        found.join("; "),
                    );
                }
                Err(e) => probe.step("read back", StepOutcome::Failed, failure(&e)),
            }
        } else {
            probe.step("read back", StepOutcome::Skipped, "nothing was filed");
        }

        // 4. Status = Completed on the task, then read back.
        let mut task_completed = false;
        match (&task_uid, read_task_found) {
            (Some(uid), true) => {
                let mut change = Task::update(uid.clone());
                change.status = Some("Completed".to_owned());
                match client
                    .update_record(
                        UpdatePatientRecordParams::new(probe.identity.clone()).with_task(change),
                        Lane::Interactive,
                    )
                    .await
                {
                    Ok(_) => match probe.read_today(&[FilterFlag::Tasks]).await {
                        Ok(record) => {
                            let reference = probe.sent.reference.clone();
                            let still = find_task(&record, Some(uid), &reference);
                            let completed = still.is_none_or(|t| {
                                t.status
                                    .as_deref()
                                    .is_some_and(|s| s.trim().eq_ignore_ascii_case("completed"))
                            });
                            task_completed = completed;
                            probe.profile.task_status_update = if completed {
                                StatusUpdate::Applied
                            } else {
                                StatusUpdate::Ignored
                            };
                            let detail = if completed {
                                "accepted; the task is no longer open".to_owned()
                            } else {
                                format!(
                                    "accepted, but the task is still open (status {:?})",
                                    still.and_then(|t| t.status.as_deref()).unwrap_or("(none)")
                                )
                            };
                            probe.step("complete task (Status)", StepOutcome::Ok, detail);
                        }
                        Err(e) => probe.step(
                            "complete task (Status)",
                            StepOutcome::Failed,
                            format!("accepted, but the read-back failed: {}", failure(&e)),
                        ),
                    },
                    Err(ClientError::Permanent(message)) => {
                        probe.profile.task_status_update = StatusUpdate::Refused;
                        probe.step(
                            "complete task (Status)",
                            StepOutcome::Ok,
                            format!("refused: {}", message.expose()),
                        );
                    }
                    Err(e) => {
                        probe.note_error(&e);
                        probe.step("complete task (Status)", StepOutcome::Failed, failure(&e));
                    }
                }
            }
            _ => probe.step(
                "complete task (Status)",
                StepOutcome::Skipped,
                "no task was read back to complete",
            ),
        }

        // 5. Clean up.
        let cleanup = probe
            .cleanup(
                note_uid,
                task_uid,
                task_completed,
                note_maybe_filed,
                task_maybe_created,
            )
            .await;
        let passed =
            cleanup.left.is_empty() && probe.steps.iter().all(|s| s.outcome == StepOutcome::Ok);
        tracing::info!(passed, "conformance probe finished");
        Ok(ProbeReport {
            profile: probe.profile,
            steps: probe.steps,
            cleanup,
            passed,
            reference: probe.sent.reference,
        })
    }

    /// Stores an observed profile as the ward's view of its SystmOne (a setting, audited
    /// under the current user), for the app to adapt to.
    pub fn apply_observed_profile(&self, profile: &ObservedProfile) -> HubResult<()> {
        let actor = self.current_user()?;
        if profile.format != PROFILE_FORMAT {
            return Err(HubError::BadRequest(format!(
                "this profile has format {}; this version reads format {PROFILE_FORMAT}",
                profile.format
            )));
        }
        if profile.peer == PeerKind::Simulator && !self.demo_mode() {
            return Err(HubError::BadRequest(
                "this profile was observed on the Inpatient Hub simulator; a ward that uses SystmOne must apply one observed on SystmOne (TPP's Demo system)".into(),
            ));
        }
        let json =
            serde_json::to_string(profile).map_err(|e| HubError::BadRequest(e.to_string()))?;
        self.store().set_setting(
            actor.as_str(),
            SettingKey::SystmOneObservedProfile,
            Some(&json),
        )?;
        tracing::info!(
            status_update = ?profile.task_status_update,
            "observed SystmOne profile applied"
        );
        Ok(())
    }

    /// The SystmOne behaviour observed by the last applied conformance run, if any. A stored
    /// profile this version cannot read counts as none (every behaviour unknown), with a
    /// warning in the log: the app then assumes nothing.
    pub fn observed_systmone_profile(&self) -> HubResult<Option<ObservedProfile>> {
        let Some(json) = self.store().setting(SettingKey::SystmOneObservedProfile)? else {
            return Ok(None);
        };
        match ObservedProfile::from_json(&json) {
            Ok(profile) => Ok(Some(profile)),
            Err(e) => {
                tracing::warn!(error = %e, "the stored SystmOne profile cannot be read; apply a new one");
                Ok(None)
            }
        }
    }
}

fn move_to_left(cleanup: &mut Cleanup, kind: &str) {
    let (gone, kept): (Vec<String>, Vec<String>) =
        cleanup.removed.drain(..).partition(|r| r.starts_with(kind));
    cleanup.removed = kept;
    cleanup.left.extend(gone);
}

/// Whether the update answers named what the read-back shows. `both_answered`: both updates
/// were answered, so a missing UID means "not reported".
fn update_uids(
    note: (Option<&str>, Option<&str>),
    task: (Option<&str>, Option<&str>),
    both_answered: bool,
) -> UpdateUids {
    let pairs = [note, task];
    if pairs
        .iter()
        .any(|(reported, read)| matches!((reported, read), (Some(a), Some(b)) if a != b))
    {
        return UpdateUids::DifferFromReadBack;
    }
    if !both_answered {
        return UpdateUids::Unknown;
    }
    if pairs.iter().all(|(reported, _)| reported.is_none()) {
        return UpdateUids::NotReported;
    }
    if pairs
        .iter()
        .all(|(reported, read)| reported.is_some() && read.is_some())
    {
        UpdateUids::MatchReadBack
    } else {
        UpdateUids::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use systmone::codec::Narrative;

    fn sent() -> Vec<String> {
        ["first line", "second line", "third line"]
            .map(String::from)
            .to_vec()
    }

    fn event(narratives: Vec<Vec<&str>>) -> Event {
        Event {
            narratives: narratives
                .into_iter()
                .map(|n| Narrative::new(n.into_iter().map(String::from).collect()))
                .collect(),
            ..Event::default()
        }
    }

    #[test]
    fn every_narrative_shape_is_told_apart() {
        let cases = [
            (
                vec![vec!["first line", "second line", "third line"]],
                NarrativeShape::AsSent,
                Padding::NotPadded,
            ),
            (
                vec![vec!["first line second line third line"]],
                NarrativeShape::JoinedSpaces,
                Padding::NotPadded,
            ),
            (
                vec![vec![" first line second line third line"]],
                NarrativeShape::JoinedSpaces,
                Padding::Padded,
            ),
            (
                vec![vec!["first line\nsecond line\nthird line"]],
                NarrativeShape::JoinedNewlines,
                Padding::NotPadded,
            ),
            (
                vec![vec![" first line\r\nsecond line\r\nthird line"]],
                NarrativeShape::JoinedNewlines,
                Padding::Padded,
            ),
            (
                vec![vec!["first line"], vec!["second line"], vec!["third line"]],
                NarrativeShape::NarrativePerLine,
                Padding::NotPadded,
            ),
            (
                vec![vec!["first line", "third line"]],
                NarrativeShape::Other,
                Padding::NotPadded,
            ),
            (
                vec![vec!["first line; second line; third line"]],
                NarrativeShape::Other,
                Padding::NotPadded,
            ),
            (vec![vec![]], NarrativeShape::Unknown, Padding::Unknown),
        ];
        for (narratives, shape, padding) in cases {
            let debug = format!("{narratives:?}");
            assert_eq!(
                classify_narrative(&sent(), &event(narratives)),
                (shape, padding),
                "{debug}"
            );
        }
    }

    #[test]
    fn task_content_with_systmones_header_is_recognised() {
        let sent = "Probe task IHCP-1. Please ignore.";
        assert_eq!(
            classify_task_content(sent, Some(sent)),
            TaskContentShape::AsSent
        );
        assert_eq!(
            classify_task_content(
                sent,
                Some("Thu 24 Sep 18:17 - CURCIN, Vasa\nProbe task IHCP-1. Please ignore.\n")
            ),
            TaskContentShape::HeaderLine
        );
        assert_eq!(
            classify_task_content(sent, Some("Probe task IHCP-1.")),
            TaskContentShape::Other
        );
        assert_eq!(classify_task_content(sent, None), TaskContentShape::Unknown);
    }

    #[test]
    fn due_times_are_classified() {
        let sent = NaiveDate::from_ymd_opt(2026, 12, 5)
            .unwrap()
            .and_hms_opt(14, 37, 0)
            .unwrap();
        assert_eq!(
            classify_due(sent, Some(sent)),
            (Reporting::Reported, DueTime::Kept)
        );
        let midnight = sent.date().and_time(NaiveTime::MIN);
        assert_eq!(
            classify_due(sent, Some(midnight)),
            (Reporting::Reported, DueTime::DateOnly)
        );
        let other = sent + chrono::Duration::hours(1);
        assert_eq!(
            classify_due(sent, Some(other)),
            (Reporting::Reported, DueTime::Changed)
        );
        assert_eq!(
            classify_due(sent, None),
            (Reporting::NotReported, DueTime::Unknown)
        );
    }

    #[test]
    fn update_uids_are_checked_against_the_read_back() {
        let a = Some("0000000000000001");
        let b = Some("0000000000000002");
        assert_eq!(update_uids((a, a), (b, b), true), UpdateUids::MatchReadBack);
        assert_eq!(
            update_uids((a, b), (b, b), true),
            UpdateUids::DifferFromReadBack
        );
        assert_eq!(
            update_uids((None, a), (None, b), true),
            UpdateUids::NotReported
        );
        assert_eq!(update_uids((a, None), (b, b), true), UpdateUids::Unknown);
        assert_eq!(
            update_uids((None, a), (None, b), false),
            UpdateUids::Unknown
        );
    }

    #[test]
    fn test_patients_are_recognised_and_others_are_not() {
        let test_range = NhsNumber::parse("9990000018").unwrap();
        let real_range = NhsNumber::parse("9434765919").unwrap();
        let plain = Demographics {
            first_name: Some("Mary".into()),
            surname: Some("Smith".into()),
            ..Demographics::default()
        };
        assert!(assess_test_patient(&test_range, &plain).0);
        let (looks, reasons) = assess_test_patient(&real_range, &plain);
        assert!(!looks);
        assert!(
            reasons[0].contains("not in the 999 test range"),
            "{reasons:?}"
        );
        let named = Demographics {
            surname: Some("XXTESTPATIENT-ABCD".into()),
            ..plain.clone()
        };
        assert!(assess_test_patient(&real_range, &named).0);
    }

    fn target(looks_like_test_patient: bool, missing: Vec<String>) -> ProbeTarget {
        ProbeTarget {
            peer: PeerKind::Systmone,
            organisation: None,
            site: None,
            site_id: None,
            user: None,
            user_name: None,
            supported_functions: Vec::new(),
            missing_functions: missing,
            patient: PatientShown {
                nhs_number: "943 476 5919".into(),
                name: "Mary Smith".into(),
                date_of_birth: None,
                sex: None,
                deceased: false,
            },
            looks_like_test_patient,
            test_patient_reasons: Vec::new(),
            nhs: NhsNumber::parse("9434765919").unwrap(),
        }
    }

    #[test]
    fn nothing_is_written_without_consent_and_a_real_looking_record_needs_more() {
        let yes = Consent {
            writes_confirmed: true,
            not_obviously_test_patient_confirmed: false,
        };
        assert!(check_consent(&target(true, vec![]), Consent::default()).is_err());
        assert!(check_consent(&target(true, vec![]), yes).is_ok());
        let err = check_consent(&target(false, vec![]), yes).unwrap_err();
        assert!(
            err.to_string()
                .contains("does not look like a test patient"),
            "{err}"
        );
        let both = Consent {
            not_obviously_test_patient_confirmed: true,
            ..yes
        };
        assert!(check_consent(&target(false, vec![]), both).is_ok());
        let err =
            check_consent(&target(true, vec!["DeletePatientRecord".into()]), both).unwrap_err();
        assert!(err.to_string().contains("DeletePatientRecord"), "{err}");
    }

    #[test]
    fn patient_data_is_redacted_in_debug() {
        let shown = format!("{:?}", target(true, vec![]));
        assert!(!shown.contains("Mary") && !shown.contains("943"), "{shown}");
    }

    #[test]
    fn profiles_round_trip_and_unknown_values_read_as_unknown() {
        let profile = ObservedProfile {
            narrative_read_back: NarrativeShape::JoinedSpaces,
            task_status_update: StatusUpdate::Ignored,
            task_due: Reporting::NotReported,
            ..ObservedProfile::default()
        };
        let json = profile.to_json().unwrap();
        assert!(
            json.contains("\"joined-spaces\"")
                && json.contains("\"task_status_update\": \"ignored\""),
            "{json}"
        );
        assert_eq!(ObservedProfile::from_json(&json).unwrap(), profile);
        // A newer file's values and missing fields never make the app assume.
        let newer = r#"{"format":1,"task_status_update":"applied-on-tuesdays","narrative_read_back":"joined-spaces"}"#;
        let read = ObservedProfile::from_json(newer).unwrap();
        assert_eq!(read.task_status_update, StatusUpdate::Unknown);
        assert_eq!(read.narrative_read_back, NarrativeShape::JoinedSpaces);
        assert_eq!(read.task_due, Reporting::Unknown);
        assert!(ObservedProfile::from_json(r#"{"format":2}"#).is_err());
        assert!(ObservedProfile::from_json("[1,2]").is_err());
        assert_eq!(profile.behaviours().len(), 14);
    }

    #[test]
    fn the_applied_profile_is_stored_audited_and_read_back() {
        let mut hub = Hub::from_store(
            store::Store::open_in_memory().unwrap(),
            std::path::PathBuf::from("/nonexistent"),
        );
        assert!(hub.observed_systmone_profile().unwrap().is_none());
        let profile = ObservedProfile {
            task_status_update: StatusUpdate::Refused,
            ..ObservedProfile::default()
        };
        // Nobody can be held to it without an OS account.
        hub.assume_os_account_for_tests(None);
        assert_eq!(
            hub.apply_observed_profile(&profile).unwrap_err().code(),
            "unattributed"
        );
        hub.assume_os_account_for_tests(Some("it-tester"));
        hub.apply_observed_profile(&profile).unwrap();
        assert_eq!(
            hub.observed_systmone_profile().unwrap(),
            Some(profile.clone())
        );
        // A simulator's profile never reaches a ward that uses SystmOne.
        let simulated = ObservedProfile {
            peer: PeerKind::Simulator,
            ..profile.clone()
        };
        let err = hub.apply_observed_profile(&simulated).unwrap_err();
        assert!(err.to_string().contains("simulator"), "{err}");
        assert_eq!(hub.observed_systmone_profile().unwrap(), Some(profile));
        let audit = hub
            .audit(&store::AuditQuery {
                entity: Some("setting".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entity_id.as_deref() == Some("systmone_observed_profile")));
        // An unreadable stored value counts as nothing observed.
        hub.store()
            .set_setting(
                "IT Tester",
                SettingKey::SystmOneObservedProfile,
                Some("{not json"),
            )
            .unwrap();
        assert_eq!(hub.observed_systmone_profile().unwrap(), None);
    }
}
