//! Typed `<Response>` bodies for each function the hub calls, plus SystmOne's error body.

use super::model::{
    fmt_date, opt_date, others, parse_bool, redacted_debug, write_others, Address, Appointment,
    Demographics, Event, Identity, OtherElement, RecordState, Sex, Task, Visit,
};
use super::xml::{Element, Parser, Start, XmlOut};
use super::{CodecError, Function};
use chrono::NaiveDate;
use serde::Serialize;

// One value per message, never stored in bulk: unboxed variants keep construction plain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ResponseBody {
    GetFunctions(GetFunctionsResponse),
    GetOrganisationMetaData(OrganisationMetaData),
    GetCurrentActivity(CurrentActivity),
    IsPatientRetrieved(bool),
    PatientSearch(PatientSearchResponse),
    GetPatientRecord(PatientRecord),
    UpdatePatientRecord(UpdatePatientRecordResponse),
    DeletePatientRecord(DeletePatientRecordResponse),
    /// A function the hub does not call; the body is not modelled.
    Other(Function),
    /// `<ErrorMessage>` + `<PermanentError>`; `permanent: false` means retry later.
    Error {
        message: String,
        permanent: bool,
    },
}

impl ResponseBody {
    /// SystmOne's error body, if `r` is one.
    fn read_error(r: &Element) -> Option<Result<ResponseBody, CodecError>> {
        let message = r.child("ErrorMessage")?;
        // Without PermanentError we cannot know a retry is safe, so assume it is not.
        let permanent = match r.child("PermanentError") {
            Some(p) => match parse_bool("PermanentError", &p.text) {
                Ok(permanent) => permanent,
                Err(e) => return Some(Err(e)),
            },
            None => true,
        };
        Some(Ok(ResponseBody::Error {
            message: message.text.trim().to_string(),
            permanent,
        }))
    }

    pub(crate) fn read(function: Function, r: &Element) -> Result<ResponseBody, CodecError> {
        if let Some(error) = ResponseBody::read_error(r) {
            return error;
        }
        Ok(match function {
            Function::GetFunctions => ResponseBody::GetFunctions(GetFunctionsResponse::read(r)),
            Function::GetOrganisationMetaData => {
                ResponseBody::GetOrganisationMetaData(OrganisationMetaData::read(r))
            }
            Function::GetCurrentActivity => {
                ResponseBody::GetCurrentActivity(CurrentActivity::read(r)?)
            }
            Function::IsPatientRetrieved => {
                let raw = r.child("IsPatientRetrieved").ok_or_else(|| {
                    CodecError::MissingElement("Response/IsPatientRetrieved".into())
                })?;
                ResponseBody::IsPatientRetrieved(parse_bool("IsPatientRetrieved", &raw.text)?)
            }
            Function::PatientSearch => ResponseBody::PatientSearch(PatientSearchResponse::read(r)?),
            Function::GetPatientRecord => ResponseBody::GetPatientRecord(PatientRecord::read(r)?),
            Function::UpdatePatientRecord => {
                ResponseBody::UpdatePatientRecord(UpdatePatientRecordResponse::read(r)?)
            }
            Function::DeletePatientRecord => {
                ResponseBody::DeletePatientRecord(DeletePatientRecordResponse::read(r)?)
            }
            other => ResponseBody::Other(other),
        })
    }

    /// Writes `<Response>`.
    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if let ResponseBody::Other(_) = self {
            out.empty("Response");
            return Ok(());
        }
        out.open("Response");
        match self {
            ResponseBody::Error { message, permanent } => {
                out.leaf("ErrorMessage", message)?;
                out.leaf("PermanentError", if *permanent { "true" } else { "false" })?;
            }
            ResponseBody::GetFunctions(b) => b.write(out)?,
            ResponseBody::GetOrganisationMetaData(b) => b.write(out)?,
            ResponseBody::GetCurrentActivity(b) => b.write(out)?,
            ResponseBody::IsPatientRetrieved(b) => {
                out.leaf("IsPatientRetrieved", if *b { "true" } else { "false" })?
            }
            ResponseBody::PatientSearch(b) => b.write(out)?,
            ResponseBody::GetPatientRecord(b) => b.write(out)?,
            ResponseBody::UpdatePatientRecord(b) => b.write(out)?,
            ResponseBody::DeletePatientRecord(b) => b.write(out)?,
            ResponseBody::Other(_) => {}
        }
        out.close("Response");
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SupportedFunction {
    /// Kept as text: SystmOne may list functions newer than this codec.
    pub function: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GetFunctionsResponse {
    pub functions: Vec<SupportedFunction>,
}

impl GetFunctionsResponse {
    /// Whether SystmOne offers `function` (any version).
    pub fn supports(&self, function: Function) -> bool {
        self.functions
            .iter()
            .any(|f| f.function == function.as_str())
    }

    fn read(r: &Element) -> Self {
        GetFunctionsResponse {
            functions: r
                .children_named("SupportedFunction")
                .map(|s| SupportedFunction {
                    function: s.trimmed_of("Function").unwrap_or_default(),
                    version: s.trimmed_of("Version").unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        for f in &self.functions {
            out.open("SupportedFunction");
            out.leaf("Function", &f.function)?;
            out.leaf("Version", &f.version)?;
            out.close("SupportedFunction");
        }
        Ok(())
    }
}

/// A flag is either an empty element or `true`/`false` text.
fn flag(e: &Element, name: &str) -> bool {
    e.child(name)
        .is_some_and(|f| !matches!(f.text.trim(), "false" | "False" | "0"))
}

/// Children of a list element (`<Teams><Team>A</Team></Teams>`), or its own text when it has none.
fn list(e: &Element, name: &str) -> Vec<String> {
    match e.child(name) {
        None => Vec::new(),
        Some(l) if !l.children.is_empty() => l
            .children
            .iter()
            .map(|c| c.text.trim().to_string())
            .collect(),
        Some(l) if !l.text.trim().is_empty() => vec![l.text.trim().to_string()],
        Some(_) => Vec::new(),
    }
}

fn write_list(
    out: &mut XmlOut,
    name: &str,
    item: &str,
    values: &[String],
) -> Result<(), CodecError> {
    if values.is_empty() {
        return Ok(());
    }
    out.open(name);
    for v in values {
        out.leaf(item, v)?;
    }
    out.close(name);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Site {
    pub name: Option<String>,
    pub id: Option<String>,
    pub address: Option<Address>,
    pub current_site: bool,
    pub primary_site: bool,
}

/// A SystmOne user (staff, not patient data).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct User {
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub middle_names: Option<String>,
    pub surname: Option<String>,
    pub user_name: Option<String>,
    pub role: Option<String>,
    pub role_code: Option<String>,
    pub national_id: Option<String>,
    pub access_rights: Vec<String>,
    pub user_groups: Vec<String>,
    pub teams: Vec<String>,
    pub current_user: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OrganisationMetaData {
    pub sites: Vec<Site>,
    pub users: Vec<User>,
}

impl OrganisationMetaData {
    /// The user logged in to SystmOne, if listed.
    pub fn current_user(&self) -> Option<&User> {
        self.users.iter().find(|u| u.current_user)
    }

    fn read(r: &Element) -> Self {
        OrganisationMetaData {
            sites: r
                .children_named("Site")
                .map(|s| Site {
                    name: s.text_of("Name"),
                    id: s.trimmed_of("ID"),
                    address: s.child("Address").map(Address::read),
                    current_site: flag(s, "CurrentSite"),
                    primary_site: flag(s, "PrimarySite"),
                })
                .collect(),
            users: r
                .children_named("User")
                .map(|u| User {
                    title: u.text_of("Title"),
                    first_name: u.text_of("FirstName"),
                    middle_names: u.text_of("MiddleNames"),
                    surname: u.text_of("Surname"),
                    user_name: u.trimmed_of("UserName"),
                    role: u.text_of("Role"),
                    role_code: u.trimmed_of("RoleCode"),
                    national_id: u.trimmed_of("NationalID"),
                    access_rights: list(u, "AccessRights"),
                    user_groups: list(u, "UserGroups"),
                    teams: list(u, "Teams"),
                    current_user: flag(u, "CurrentUser"),
                })
                .collect(),
        }
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        for s in &self.sites {
            out.open("Site");
            out.opt_leaf("Name", s.name.as_deref())?;
            out.opt_leaf("ID", s.id.as_deref())?;
            if let Some(a) = &s.address {
                a.write(out)?;
            }
            out.flag("CurrentSite", s.current_site);
            out.flag("PrimarySite", s.primary_site);
            out.close("Site");
        }
        for u in &self.users {
            out.open("User");
            out.opt_leaf("Title", u.title.as_deref())?;
            out.opt_leaf("FirstName", u.first_name.as_deref())?;
            out.opt_leaf("MiddleNames", u.middle_names.as_deref())?;
            out.opt_leaf("Surname", u.surname.as_deref())?;
            out.opt_leaf("UserName", u.user_name.as_deref())?;
            out.opt_leaf("Role", u.role.as_deref())?;
            out.opt_leaf("RoleCode", u.role_code.as_deref())?;
            out.opt_leaf("NationalID", u.national_id.as_deref())?;
            write_list(out, "AccessRights", "AccessRight", &u.access_rights)?;
            write_list(out, "UserGroups", "UserGroup", &u.user_groups)?;
            write_list(out, "Teams", "Team", &u.teams)?;
            out.flag("CurrentUser", u.current_user);
            out.close("User");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CurrentActivity {
    /// The patient open in SystmOne; None when no record is open.
    pub identity: Option<Identity>,
    /// The screens/areas in use.
    pub activities: Vec<String>,
    /// The text of `<CurrentSelection>`, if any.
    pub current_selection: Option<String>,
}

impl CurrentActivity {
    fn read(r: &Element) -> Result<Self, CodecError> {
        Ok(CurrentActivity {
            identity: Identity::read_opt(r)?,
            activities: r.all_trimmed("Activity"),
            current_selection: r.trimmed_of("CurrentSelection"),
        })
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if let Some(i) = &self.identity {
            i.write(out, true)?;
        }
        for a in &self.activities {
            out.leaf("Activity", a)?;
        }
        out.opt_leaf("CurrentSelection", self.current_selection.as_deref())
    }
}

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    pub identity: Option<Identity>,
    pub first_name: Option<String>,
    pub surname: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub telephone: Option<String>,
    pub address: Option<Address>,
}
redacted_debug!(SearchResult; identity);

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PatientSearchResponse {
    /// Empty when nothing matched (not an error).
    pub results: Vec<SearchResult>,
}

impl PatientSearchResponse {
    fn read(r: &Element) -> Result<Self, CodecError> {
        let results = r
            .children_named("Result")
            .map(|e| {
                Ok(SearchResult {
                    identity: Identity::read_opt(e)?,
                    first_name: e.text_of("FirstName"),
                    surname: e.text_of("Surname"),
                    date_of_birth: opt_date(e, "DateOfBirth")?,
                    sex: e
                        .trimmed_of("Sex")
                        .filter(|s| !s.is_empty())
                        .map(|s| Sex::parse(&s)),
                    telephone: e.text_of("Telephone"),
                    address: e.child("Address").map(Address::read),
                })
            })
            .collect::<Result<_, CodecError>>()?;
        Ok(PatientSearchResponse { results })
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        for r in &self.results {
            out.open("Result");
            if let Some(i) = &r.identity {
                i.write(out, true)?;
            }
            out.opt_leaf("FirstName", r.first_name.as_deref())?;
            out.opt_leaf("Surname", r.surname.as_deref())?;
            out.opt_leaf(
                "DateOfBirth",
                r.date_of_birth.as_ref().map(fmt_date).as_deref(),
            )?;
            out.opt_leaf("Sex", r.sex.map(Sex::code))?;
            out.opt_leaf("Telephone", r.telephone.as_deref())?;
            if let Some(a) = &r.address {
                a.write(out)?;
            }
            out.close("Result");
        }
        Ok(())
    }
}

/// A patient record, or the part of it the Filter asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PatientRecord {
    pub identity: Option<Identity>,
    pub demographics: Option<Demographics>,
    /// `<Clinical>` events in document order.
    pub events: Vec<Event>,
    pub appointments: Vec<Appointment>,
    pub visits: Vec<Visit>,
    /// With the Tasks filter: the patient's non-completed tasks.
    pub tasks: Vec<Task>,
    pub record_state: Option<RecordState>,
    /// Children of `<Response>` this codec does not model, as received.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}

const RECORD_KNOWN: &[&str] = &[
    "Identity",
    "Demographics",
    "Clinical",
    "NonClinical",
    "RecordState",
];

impl PatientRecord {
    /// Every event's narrative lines, event by event (see `Event::narrative_lines`).
    pub fn narrative_events(&self) -> impl Iterator<Item = &Event> + '_ {
        self.events.iter().filter(|e| e.has_narrative())
    }

    fn read(r: &Element) -> Result<Self, CodecError> {
        let (appointments, visits, tasks) = match r.child("NonClinical") {
            Some(n) => (
                n.children_named("Appointment")
                    .map(Appointment::read)
                    .collect::<Result<_, _>>()?,
                n.children_named("Visit")
                    .map(Visit::read)
                    .collect::<Result<_, _>>()?,
                n.children_named("Task")
                    .map(Task::read)
                    .collect::<Result<_, _>>()?,
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        Ok(PatientRecord {
            identity: Identity::read_opt(r)?,
            demographics: r
                .child("Demographics")
                .map(Demographics::read)
                .transpose()?,
            events: match r.child("Clinical") {
                Some(c) => c
                    .children_named("Event")
                    .map(Event::read)
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
            appointments,
            visits,
            tasks,
            record_state: RecordState::read_opt(r)?,
            other: others(r, RECORD_KNOWN),
        })
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if let Some(i) = &self.identity {
            i.write(out, true)?;
        }
        if let Some(d) = &self.demographics {
            d.write(out)?;
        }
        if !self.events.is_empty() {
            out.open("Clinical");
            for e in &self.events {
                e.write(out)?;
            }
            out.close("Clinical");
        }
        if !(self.appointments.is_empty() && self.visits.is_empty() && self.tasks.is_empty()) {
            out.open("NonClinical");
            for a in &self.appointments {
                a.write(out)?;
            }
            for v in &self.visits {
                v.write(out)?;
            }
            for t in &self.tasks {
                t.write(out)?;
            }
            out.close("NonClinical");
        }
        RecordState::write_opt(self.record_state, out)?;
        write_others(out, &self.other)
    }
}

/// Adds one decoded item, or keeps the first error (later items are then not decoded).
fn push_item<T>(list: &mut Result<Vec<T>, CodecError>, item: Result<T, CodecError>) {
    if let Ok(items) = list {
        match item {
            Ok(item) => items.push(item),
            Err(e) => *list = Err(e),
        }
    }
}

/// Reads a GetPatientRecord `<Response>` from the parser, decoding each event, task,
/// appointment and visit as soon as its element has been read and dropping the element,
/// so only one of them is ever held as a tree. The result is what `ResponseBody::read`
/// gives for the same element, errors included: the outer `Result` is the document's
/// (malformed, over a cap), the inner one the record's, reported in the order
/// `PatientRecord::read` checks the parts.
pub(crate) fn read_record_streamed<'a>(
    parser: &mut Parser<'a>,
    start: Start<'a>,
) -> Result<Result<ResponseBody, CodecError>, CodecError> {
    let mut events = Ok(Vec::new());
    let mut appointments = Ok(Vec::new());
    let mut visits = Ok(Vec::new());
    let mut tasks = Ok(Vec::new());
    let mut other = Vec::new();
    let (mut clinical, mut non_clinical) = (false, false);
    // The small parts, first of each name, as a tree the existing readers take.
    let kept = parser.stream(start, |parser, kept, child| {
        let name = child.name.clone();
        match name.as_ref() {
            "Clinical" if !clinical => {
                clinical = true;
                parser.stream(child, |parser, _, item| {
                    if item.name == "Event" && events.is_ok() {
                        let e = parser.element(item)?;
                        push_item(&mut events, Event::read_owned(e));
                        Ok(())
                    } else {
                        parser.skip(item)
                    }
                })?;
            }
            "NonClinical" if !non_clinical => {
                non_clinical = true;
                parser.stream(child, |parser, _, item| {
                    match item.name.as_ref() {
                        "Appointment" if appointments.is_ok() => {
                            let e = parser.element(item)?;
                            push_item(&mut appointments, Appointment::read(&e));
                        }
                        "Visit" if visits.is_ok() => {
                            let e = parser.element(item)?;
                            push_item(&mut visits, Visit::read(&e));
                        }
                        "Task" if tasks.is_ok() => {
                            let e = parser.element(item)?;
                            push_item(&mut tasks, Task::read(&e));
                        }
                        _ => parser.skip(item)?,
                    }
                    Ok(())
                })?;
            }
            name @ ("Identity" | "Demographics" | "RecordState") => {
                if kept.has(name) {
                    parser.skip(child)?;
                } else {
                    let e = parser.element(child)?;
                    kept.children.push(e);
                }
            }
            name if RECORD_KNOWN.contains(&name) => parser.skip(child)?,
            name => {
                // Unknown to the record, so kept in its `other` bag; the error elements
                // are also kept to be found as `ResponseBody::read` finds them.
                let e = parser.element(child)?;
                other.push(OtherElement::from_element(&e));
                if matches!(name, "ErrorMessage" | "PermanentError") && !kept.has(name) {
                    kept.children.push(e);
                }
            }
        }
        Ok(())
    })?;
    if let Some(error) = ResponseBody::read_error(&kept) {
        return Ok(error);
    }
    let record = (|| {
        let (appointments, visits, tasks) = (appointments?, visits?, tasks?);
        Ok(PatientRecord {
            identity: Identity::read_opt(&kept)?,
            demographics: kept
                .child("Demographics")
                .map(Demographics::read)
                .transpose()?,
            events: events?,
            appointments,
            visits,
            tasks,
            record_state: RecordState::read_opt(&kept)?,
            other,
        })
    })();
    Ok(record.map(ResponseBody::GetPatientRecord))
}

/// UIDs (16 hex digits) of what the update created, in document order.
///
/// Where SystmOne puts them is not proven: the spec lists them directly under `<Response>`,
/// and one public client searches the whole document. So they are collected from anywhere
/// in the Response tree, as elements or as attributes (`<Event EventUID="…"/>`), each UID
/// once, in document order. A UID element that holds markup instead of a value is refused
/// with a clear error rather than read as an empty or partial UID.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UpdatePatientRecordResponse {
    pub identity: Option<Identity>,
    pub event_uids: Vec<String>,
    pub appointment_uids: Vec<String>,
    pub visit_uids: Vec<String>,
    pub task_uids: Vec<String>,
    pub record_state: Option<RecordState>,
}

const UID_NAMES: [&str; 4] = ["EventUID", "AppointmentUID", "VisitUID", "TaskUID"];

/// Depth-first, document order: every UID element's text and UID attribute's value.
fn collect_uids(e: &Element, found: &mut [Vec<String>; 4], depth: usize) -> Result<(), CodecError> {
    for (k, v) in &e.attrs {
        if let Some(i) = UID_NAMES.iter().position(|n| n == k) {
            push_uid(&mut found[i], v);
        }
    }
    for c in &e.children {
        // The Identity is the patient's, never a created item.
        if depth == 0 && c.name == "Identity" {
            continue;
        }
        if let Some(i) = UID_NAMES.iter().position(|n| *n == c.name) {
            if !c.children.is_empty() {
                return Err(CodecError::InvalidValue {
                    element: c.name.to_string(),
                    reason: "expected a UID but found nested elements".into(),
                });
            }
            push_uid(&mut found[i], &c.text);
        }
        collect_uids(c, found, depth + 1)?;
    }
    Ok(())
}

fn push_uid(list: &mut Vec<String>, raw: &str) {
    let uid = raw.trim();
    if !uid.is_empty() && !list.iter().any(|u| u == uid) {
        list.push(uid.to_string());
    }
}

impl UpdatePatientRecordResponse {
    fn read(r: &Element) -> Result<Self, CodecError> {
        let mut found: [Vec<String>; 4] = Default::default();
        collect_uids(r, &mut found, 0)?;
        let [event_uids, appointment_uids, visit_uids, task_uids] = found;
        Ok(UpdatePatientRecordResponse {
            identity: Identity::read_opt(r)?,
            event_uids,
            appointment_uids,
            visit_uids,
            task_uids,
            record_state: RecordState::read_opt(r)?,
        })
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if let Some(i) = &self.identity {
            i.write(out, true)?;
        }
        for (name, uids) in [
            ("EventUID", &self.event_uids),
            ("AppointmentUID", &self.appointment_uids),
            ("VisitUID", &self.visit_uids),
            ("TaskUID", &self.task_uids),
        ] {
            for uid in uids {
                out.leaf(name, uid)?;
            }
        }
        RecordState::write_opt(self.record_state, out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeletePatientRecordResponse {
    pub identity: Option<Identity>,
    pub record_state: Option<RecordState>,
}

impl DeletePatientRecordResponse {
    fn read(r: &Element) -> Result<Self, CodecError> {
        Ok(DeletePatientRecordResponse {
            identity: Identity::read_opt(r)?,
            record_state: RecordState::read_opt(r)?,
        })
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if let Some(i) = &self.identity {
            i.write(out, true)?;
        }
        RecordState::write_opt(self.record_state, out)
    }
}
