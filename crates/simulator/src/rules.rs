//! What SystmOne does with each function, on typed requests and the simulator's database.
//! Transport concerns (throttle, device approval, faults) are the server's; everything here
//! answers one already-accepted request from one approved device.

use super::data::{
    self, hex16, SimEvent, SimOrganisation, SimPatient, SimTask, STATUS_NOT_STARTED,
};
use super::profile::{narratives_for, SimProfile, TaskDetailsInReads, TaskStatusUpdate};
use super::state::{SimDb, SimSettings, TaskChange};
use super::SimError;
use chrono::{NaiveDate, NaiveDateTime};
use systmone_wire::codec::{
    Address, Attachment, ClinicalCodeEntry, Code, CurrentActivity, DeletePatientRecordParams,
    DeletePatientRecordResponse, Demographics, Drug, Event, FilterFlag, Function,
    GetFunctionsResponse, GetPatientRecordParams, Identity, Medication, Narrative,
    OrganisationMetaData, PatientIdentifier, PatientRecord, PatientSearchParams,
    PatientSearchResponse, RecordFilter, RecordState, RequestParams, ResponseBody, SearchResult,
    Sex, Site, SupportedFunction, Task, Telephone, TelephoneKind, UpdatePatientRecordParams,
    UpdatePatientRecordResponse, User,
};
use systmone_wire::{NhsNumber, Sensitive};

/// Verbatim from TPP's specification.
pub const TOO_FEW_SEARCH_PARAMETERS: &str = "At least two search parameters must be specified";
pub const NO_RECORD_OPEN: &str =
    "No patient record is open in SystmOne, so no patient was identified.";
pub const PATIENT_NOT_FOUND: &str = "No patient record was found matching the given identity.";
/// The `refused` profile's answer to a task update carrying `<Status>`.
pub const TASK_STATUS_REFUSED: &str =
    "The status of a task cannot be changed through the Client Integration API.";
pub const RECORD_OPEN_ELSEWHERE: &str =
    "The patient's record is currently open in SystmOne on this computer. Please try again later.";

/// The functions the simulator implements (GetFunctions lists them).
pub const SUPPORTED: [Function; 8] = [
    Function::GetFunctions,
    Function::GetOrganisationMetaData,
    Function::GetCurrentActivity,
    Function::IsPatientRetrieved,
    Function::PatientSearch,
    Function::GetPatientRecord,
    Function::UpdatePatientRecord,
    Function::DeletePatientRecord,
];

/// Who is asking, and when.
#[derive(Debug, Clone)]
pub struct RequestContext<'a> {
    pub device_id: &'a str,
    pub device_version: &'a str,
    pub request_uid: &'a str,
    pub now: NaiveDateTime,
    pub settings: &'a SimSettings,
}

fn error(message: impl Into<String>, permanent: bool) -> ResponseBody {
    ResponseBody::Error {
        message: message.into(),
        permanent,
    }
}

/// Whether a request changes the record (the kind a lost reply leaves in doubt).
pub fn is_write(params: &RequestParams) -> bool {
    matches!(
        params,
        RequestParams::UpdatePatientRecord(_) | RequestParams::DeletePatientRecord(_)
    )
}

pub fn handle(
    db: &mut SimDb,
    ctx: &RequestContext<'_>,
    params: &RequestParams,
) -> Result<ResponseBody, SimError> {
    let org = data::organisation();
    match params {
        RequestParams::GetFunctions => Ok(get_functions()),
        RequestParams::GetOrganisationMetaData(p) => {
            Ok(organisation_metadata(&org, ctx, p.logged_on_user_only))
        }
        RequestParams::GetCurrentActivity => current_activity(db),
        RequestParams::IsPatientRetrieved(p) => {
            let found = match &p.identity {
                Some(identity) => find_patient(db, identity)?.is_some(),
                None => db.open_patient()?.is_some(),
            };
            Ok(ResponseBody::IsPatientRetrieved(found))
        }
        RequestParams::PatientSearch(p) => patient_search(db, p),
        RequestParams::GetPatientRecord(p) => get_patient_record(db, p, &ctx.settings.profile),
        RequestParams::UpdatePatientRecord(p) => update_patient_record(db, &org, ctx, p),
        RequestParams::DeletePatientRecord(p) => delete_patient_record(db, ctx, p),
        RequestParams::Other(f) => Ok(error(
            format!(
                "The function {} is not available in the Inpatient Hub SystmOne simulator.",
                f.as_str()
            ),
            true,
        )),
    }
}

fn get_functions() -> ResponseBody {
    ResponseBody::GetFunctions(GetFunctionsResponse {
        functions: SUPPORTED
            .iter()
            .map(|f| SupportedFunction {
                function: f.as_str().to_owned(),
                version: "1.0".into(),
            })
            .collect(),
    })
}

fn address(a: &data::SimAddress) -> Address {
    Address {
        house_name: a.house_name.clone(),
        house_number: a.house_number.clone(),
        road: a.road.clone(),
        locality: a.locality.clone(),
        town: a.town.clone(),
        county: a.county.clone(),
        postcode: a.postcode.clone(),
    }
}

fn organisation_metadata(
    org: &SimOrganisation,
    ctx: &RequestContext<'_>,
    logged_on_user_only: bool,
) -> ResponseBody {
    let current = &ctx.settings.logged_in_user;
    let users = org
        .users
        .iter()
        .filter(|u| !logged_on_user_only || u.user_name.eq_ignore_ascii_case(current))
        .map(|u| User {
            title: Some(u.title.clone()),
            first_name: Some(u.first_name.clone()),
            middle_names: u.middle_names.clone(),
            surname: Some(u.surname.clone()),
            user_name: Some(u.user_name.clone()),
            role: Some(u.role.clone()),
            role_code: Some(u.role_code.clone()),
            national_id: Some(u.national_id.clone()),
            access_rights: u.access_rights.clone(),
            user_groups: u.user_groups.clone(),
            teams: u.teams.clone(),
            current_user: u.user_name.eq_ignore_ascii_case(current),
        })
        .collect();
    let sites = org
        .sites
        .iter()
        .map(|s| Site {
            name: Some(s.name.clone()),
            id: Some(s.id.clone()),
            address: Some(address(&s.address)),
            current_site: s.current_site,
            primary_site: s.primary_site,
        })
        .collect();
    ResponseBody::GetOrganisationMetaData(OrganisationMetaData { sites, users })
}

fn identity_of(p: &SimPatient) -> Identity {
    let id = match NhsNumber::parse(&p.nhs_number) {
        Ok(n) => PatientIdentifier::NhsNumber(n),
        Err(_) => PatientIdentifier::UncheckedNhsNumber(Sensitive::new(p.nhs_number.clone())),
    };
    Identity {
        id,
        strategic_reporting_identifier: Some(Sensitive::new(p.strategic_reporting_id.to_string())),
    }
}

fn current_activity(db: &SimDb) -> Result<ResponseBody, SimError> {
    let open = match db.open_patient()? {
        Some(nhs) => db.patient(&nhs)?,
        None => None,
    };
    let activities = if open.is_some() {
        vec!["Patient Record".into(), "Tabbed Journal".into()]
    } else {
        vec!["Home".into()]
    };
    Ok(ResponseBody::GetCurrentActivity(CurrentActivity {
        identity: open.as_ref().map(identity_of),
        activities,
        current_selection: None,
    }))
}

/// Only NHS numbers identify the fictitious patients; any other identifier finds nobody.
fn find_patient(db: &SimDb, identity: &Identity) -> Result<Option<SimPatient>, SimError> {
    match identity.nhs_number() {
        Some(n) => db.patient(&n.digits()),
        None => Ok(None),
    }
}

fn folded(s: &str) -> String {
    s.trim().replace('\u{2019}', "'").to_lowercase()
}

fn postcode_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Names match by prefix, case-insensitively; a postcode matches in full or by its district
/// (the outward code); telephone numbers match on their digits.
pub fn matches_search(p: &SimPatient, q: &PatientSearchParams) -> bool {
    let prefix = |value: &str, wanted: &Option<String>| match wanted.as_deref().map(str::trim) {
        None | Some("") => true,
        Some(w) => folded(value).starts_with(&folded(w)),
    };
    let first_ok = prefix(&p.first_name, &q.first_name)
        || p.known_as
            .as_deref()
            .is_some_and(|k| prefix(k, &q.first_name));
    let postcode_ok = match q.post_code.as_deref().map(str::trim) {
        None | Some("") => true,
        Some(wanted) => p.address.postcode.as_deref().is_some_and(|pc| {
            let district = pc.split_whitespace().next().unwrap_or("");
            postcode_key(pc) == postcode_key(wanted)
                || postcode_key(district) == postcode_key(wanted)
        }),
    };
    let phone_ok = match q.telephone.as_deref().map(digits_of) {
        None => true,
        Some(w) if w.is_empty() => true,
        Some(w) => [&p.home_telephone, &p.mobile_telephone]
            .iter()
            .any(|t| t.as_deref().is_some_and(|t| digits_of(t) == w)),
    };
    first_ok
        && prefix(&p.surname, &q.surname)
        && q.date_of_birth.is_none_or(|d| d == p.date_of_birth)
        && q.gender.is_none_or(|g| Sex::parse(&p.sex) == g)
        && postcode_ok
        && phone_ok
}

fn patient_search(db: &SimDb, q: &PatientSearchParams) -> Result<ResponseBody, SimError> {
    if q.criteria_count() < 2 {
        return Ok(error(TOO_FEW_SEARCH_PARAMETERS, true));
    }
    let results = db
        .patients()?
        .iter()
        .filter(|p| matches_search(p, q))
        .map(|p| SearchResult {
            identity: Some(identity_of(p)),
            first_name: Some(p.first_name.clone()),
            surname: Some(p.surname.clone()),
            date_of_birth: Some(p.date_of_birth),
            sex: Some(Sex::parse(&p.sex)),
            telephone: p
                .home_telephone
                .clone()
                .or_else(|| p.mobile_telephone.clone()),
            address: Some(address(&p.address)),
        })
        .collect();
    Ok(ResponseBody::PatientSearch(PatientSearchResponse {
        results,
    }))
}

fn demographics(p: &SimPatient) -> Demographics {
    let mut telephones = Vec::new();
    if let Some(t) = &p.home_telephone {
        telephones.push(Telephone {
            kind: TelephoneKind::Home,
            number: t.clone(),
        });
    }
    if let Some(t) = &p.mobile_telephone {
        telephones.push(Telephone {
            kind: TelephoneKind::Mobile,
            number: t.clone(),
        });
    }
    Demographics {
        title: Some(p.title.clone()),
        first_name: Some(p.first_name.clone()),
        middle_names: p.middle_names.clone(),
        surname: Some(p.surname.clone()),
        known_as: p.known_as.clone(),
        date_of_birth: Some(p.date_of_birth),
        sex: Some(Sex::parse(&p.sex)),
        marital_status: None,
        ethnicity: None,
        main_language: Some("English".into()),
        address: Some(address(&p.address)),
        telephones,
        email_address: p.email.clone(),
        usual_gp_user_name: p.usual_gp_user_name.clone(),
        care_start_date: Some(p.care_start_date),
        registration_type: Some(p.registration_type.clone()),
        // [seen] in the capture; the simulator's patients all speak English and have not
        // said yes to text messages.
        english_speaker: Some("Yes".into()),
        sms_consent: Some("No".into()),
        date_of_death: p.date_of_death,
        care_end_date: p.care_end_date,
        other: Vec::new(),
    }
}

fn in_range(date: NaiveDate, min: Option<NaiveDate>, max: Option<NaiveDate>) -> bool {
    min.is_none_or(|m| date >= m) && max.is_none_or(|m| date <= m)
}

/// An event as real SystmOne shows it: its narrative shaped by the profile (one padded
/// Line by default [seen]).
/// Fictitious medication in the real shape [seen, XSD]: (name, Multilex product ID, dose, quantity).
const MEDICATIONS: [(&str, &str, &str, &str); 4] = [
    (
        "Omeprazole 20mg dispersible gastro-resistant tablets",
        "2007553",
        "ONE daily",
        "28 tablet",
    ),
    (
        "Amlodipine 5mg tablets",
        "1004521",
        "ONE each morning",
        "28 tablet",
    ),
    (
        "Paracetamol 500mg tablets",
        "1000213",
        "TWO four times a day when required",
        "100 tablet",
    ),
    (
        "Sertraline 50mg tablets",
        "1009817",
        "ONE daily",
        "28 tablet",
    ),
];

/// Which real-shape extras a generated event carries, chosen from its UID (so reads repeat
/// and the generated data, its random stream and the stored schema stay as they were):
/// medication, an attachment, a coded problem (new, or ended).
fn extras_of(e: &SimEvent) -> u8 {
    if e.device_id.is_some() {
        // Entries filed through the API carry exactly what was filed.
        return u8::MAX;
    }
    e.uid.bytes().last().unwrap_or(b'0')
}

fn generated_medication(e: &SimEvent) -> Vec<Medication> {
    let pick = match extras_of(e) {
        b'a' => 0,
        b'b' => 1,
        b'c' => 2,
        b'd' => 3,
        _ => return Vec::new(),
    };
    let (name, product_id, dose, quantity) = MEDICATIONS[pick];
    let ended = pick % 2 == 0;
    let start = e.effective_at.date();
    vec![Medication {
        medication_type: Some("NHS medication".into()),
        drug: Some(Drug {
            name: Some(name.into()),
            product_id: Some(product_id.into()),
            scheme: Some("Multilex".into()),
            pack_id: None,
        }),
        dose: Some(dose.into()),
        quantity: Some(quantity.into()),
        start_date: Some(start),
        end_date: ended.then(|| start + chrono::Duration::days(28)),
        end_reason: ended.then(|| "Course completed".into()),
        ..Medication::default()
    }]
}

fn generated_attachment(e: &SimEvent) -> Vec<Attachment> {
    if extras_of(e) != b'e' {
        return Vec::new();
    }
    vec![Attachment {
        file_name: Some(format!("Letter {}.pdf", e.effective_at.format("%d-%m-%Y"))),
        document_uid: Some(format!("d{}", e.uid.get(1..).unwrap_or_default())),
        file_size: Some("48213".into()),
        comments: Some("Clinic letter (fictitious)".into()),
        ..Attachment::default()
    }]
}

/// A generated coded entry as a problem header [seen]: episodicity and severity, and for
/// some an end date (an ended problem, which must not look active).
fn as_problem(e: &SimEvent, mut entry: ClinicalCodeEntry) -> ClinicalCodeEntry {
    match extras_of(e) {
        b'f' => {
            entry.episodicity = Some("New".into());
            entry.problem_severity = Some("Major Episode".into());
        }
        b'0' => {
            entry.episodicity = Some("Ongoing".into());
            entry.problem_severity = Some("Minor Episode".into());
            entry.problem_end_date = Some(e.effective_at.date() + chrono::Duration::days(90));
        }
        _ => {}
    }
    entry
}

fn wire_event(e: &SimEvent, profile: &SimProfile) -> Event {
    Event {
        date_time: Some(e.effective_at),
        user_name: Some(e.user_name.clone()),
        done_by: Some(e.done_by.clone()),
        done_at: Some(e.done_at.clone()),
        software: Some(e.software.clone()),
        event_uid: Some(e.uid.clone()),
        narratives: narratives_for(&e.lines, &e.uid, profile.narrative)
            .into_iter()
            .map(Narrative::new)
            .collect(),
        clinical_codes: e
            .codes
            .iter()
            .map(|c| {
                as_problem(
                    e,
                    ClinicalCodeEntry {
                        code: Some(Code {
                            scheme: Some(c.scheme.clone()),
                            code: c.code.clone(),
                            term: Some(c.term.clone()),
                        }),
                        free_text: c.free_text.clone(),
                        value: c.value.clone(),
                        ..ClinicalCodeEntry::default()
                    },
                )
            })
            .collect(),
        medications: generated_medication(e),
        attachments: generated_attachment(e),
        ..Event::default()
    }
}

/// SystmOne's header line on a task's Content [seen]: `Thu 24 Sep 18:17 - CURCIN, Vasa`,
/// the time it was entered and its author (the user logged in when it was created).
pub fn task_header(t: &SimTask, org: &SimOrganisation) -> String {
    let author = match org.user(&t.created_by) {
        Some(u) => format!("{}, {}", u.surname.to_uppercase(), u.first_name),
        None => t.created_by.to_uppercase(),
    };
    format!("{} - {author}", t.created_at.format("%a %d %b %H:%M"))
}

/// A task as real SystmOne reads it back [seen]: TaskUID, DateTime, TaskType, Status and
/// Content (header line, the text, a trailing newline); Due and the assignee only under
/// the `reported` profile.
fn wire_task(t: &SimTask, profile: &SimProfile, org: &SimOrganisation) -> Task {
    let reported = profile.task_details == TaskDetailsInReads::Reported;
    Task {
        task_uid: Some(t.uid.clone()),
        date_time: Some(t.created_at),
        task_type: Some(t.task_type.clone()),
        status: Some(t.status.clone()),
        due: t.due.filter(|_| reported),
        content: Some(format!("{}\n{}\n", task_header(t, org), t.content)),
        user_name_assigned: t.user_assigned.clone().filter(|_| reported),
        group_name_assigned: t.group_assigned.clone().filter(|_| reported),
        team_name_assigned: t.team_assigned.clone().filter(|_| reported),
        other: Vec::new(),
    }
}

/// Applies a Filter: flags select sections (none given = every section), entry and
/// effective dates bound events, entry dates bound tasks, the Tasks flag shows only tasks
/// not completed, ClinicalCode/Numeric/UserNameDoneBy narrow events further.
pub fn filter_record(
    patient: &SimPatient,
    events: &[SimEvent],
    tasks: &[SimTask],
    filter: Option<&RecordFilter>,
    profile: &SimProfile,
) -> (Option<Demographics>, Vec<Event>, Vec<Task>) {
    let org = data::organisation();
    let Some(f) = filter else {
        return (
            Some(demographics(patient)),
            events.iter().map(|e| wire_event(e, profile)).collect(),
            tasks.iter().map(|t| wire_task(t, profile, &org)).collect(),
        );
    };
    let all = f.flags.is_empty();
    let wants = |flag: FilterFlag| all || f.flags.contains(&flag);
    let demographics = wants(FilterFlag::Demographics).then(|| demographics(patient));
    let (narrative, coded, medication, attachments) = (
        wants(FilterFlag::Narrative),
        wants(FilterFlag::ClinicalCodes),
        wants(FilterFlag::Medication),
        wants(FilterFlag::Attachments),
    );
    let code_list: Vec<&String> = f.clinical_codes.iter().chain(f.numerics.iter()).collect();
    let events = events
        .iter()
        .filter(|e| in_range(e.entered_at.date(), f.min_entry_date, f.max_entry_date))
        .filter(|e| {
            in_range(
                e.effective_at.date(),
                f.min_effective_date,
                f.max_effective_date,
            )
        })
        .filter(|e| {
            f.user_names_done_by.is_empty()
                || f.user_names_done_by
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(&e.user_name))
        })
        .filter_map(|e| {
            let mut wire = wire_event(e, profile);
            if !narrative {
                wire.narratives.clear();
            }
            if !medication {
                wire.medications.clear();
            }
            if !attachments {
                wire.attachments.clear();
            }
            if !coded && code_list.is_empty() {
                wire.clinical_codes.clear();
            }
            if !code_list.is_empty() {
                wire.clinical_codes.retain(|c| {
                    c.code
                        .as_ref()
                        .is_some_and(|code| code_list.iter().any(|w| **w == code.code))
                });
                if wire.clinical_codes.is_empty() {
                    return None;
                }
            }
            (wire.has_narrative()
                || !wire.clinical_codes.is_empty()
                || !wire.medications.is_empty()
                || !wire.attachments.is_empty())
            .then_some(wire)
        })
        .collect();
    let tasks = if wants(FilterFlag::Tasks) {
        tasks
            .iter()
            .filter(|t| !t.is_completed())
            .filter(|t| in_range(t.created_at.date(), f.min_entry_date, f.max_entry_date))
            .map(|t| wire_task(t, profile, &org))
            .collect()
    } else {
        Vec::new()
    };
    (demographics, events, tasks)
}

fn record_state(db: &SimDb, nhs: &str) -> Result<RecordState, SimError> {
    Ok(if db.open_patient()?.as_deref() == Some(nhs) {
        RecordState::Open
    } else {
        RecordState::Closed
    })
}

/// Opens `nhs` on screen (LeaveRecordOpen). A different record open before is saved first,
/// as SystmOne saves when the user switches patient.
fn open_on_screen(db: &mut SimDb, nhs: &str) -> Result<(), SimError> {
    if let Some(previous) = db.open_patient()? {
        if previous == nhs {
            return Ok(());
        }
        db.save_pending(&previous)?;
    }
    db.set_open_patient(Some(nhs))
}

fn get_patient_record(
    db: &mut SimDb,
    p: &GetPatientRecordParams,
    profile: &SimProfile,
) -> Result<ResponseBody, SimError> {
    let patient = match &p.identity {
        Some(identity) => match find_patient(db, identity)? {
            Some(patient) => patient,
            None => return Ok(error(PATIENT_NOT_FOUND, true)),
        },
        None => match db.open_patient()? {
            Some(nhs) => db.patient(&nhs)?.ok_or(SimError::UnknownPatient(nhs))?,
            None => return Ok(error(NO_RECORD_OPEN, true)),
        },
    };
    if p.leave_record_open {
        open_on_screen(db, &patient.nhs_number)?;
    }
    let events = db.events(&patient.nhs_number)?;
    let tasks = db.tasks(&patient.nhs_number)?;
    let (demographics, events, tasks) =
        filter_record(&patient, &events, &tasks, p.filter.as_ref(), profile);
    Ok(ResponseBody::GetPatientRecord(PatientRecord {
        identity: Some(identity_of(&patient)),
        demographics,
        events,
        appointments: Vec::new(),
        visits: Vec::new(),
        tasks,
        record_state: Some(record_state(db, &patient.nhs_number)?),
        other: Vec::new(),
    }))
}

/// Checks an update whole before anything is written, so it lands all or nothing.
fn update_patient_record(
    db: &mut SimDb,
    org: &SimOrganisation,
    ctx: &RequestContext<'_>,
    p: &UpdatePatientRecordParams,
) -> Result<ResponseBody, SimError> {
    let Some(patient) = find_patient(db, &p.identity)? else {
        return Ok(error(PATIENT_NOT_FOUND, true));
    };
    let nhs = patient.nhs_number.clone();
    if !p.leave_record_open && db.open_patient()?.as_deref() == Some(nhs.as_str()) {
        return Ok(error(RECORD_OPEN_ELSEWHERE, false));
    }
    if p.demographics.is_some() {
        return Ok(error(
            "Changing demographics is not available in the Inpatient Hub SystmOne simulator.",
            true,
        ));
    }
    if p.events.is_empty() && p.tasks.is_empty() {
        return Ok(error("The update contains nothing to add or change.", true));
    }
    let Some(logged_in) = org.user(&ctx.settings.logged_in_user) else {
        return Err(SimError::UnknownUser(ctx.settings.logged_in_user.clone()));
    };
    let pending = p.leave_record_open;
    let mut rng = rand::thread_rng();

    let mut events = Vec::with_capacity(p.events.len());
    for e in &p.events {
        if !e.attachments.is_empty() || !e.letters.is_empty() || !e.medications.is_empty() {
            return Ok(error("Attachments, letters and medication are not available in the Inpatient Hub SystmOne simulator.", true));
        }
        if e.narrative_lines().all(|l| l.trim().is_empty()) && e.clinical_codes.is_empty() {
            return Ok(error(
                "An event must contain a narrative or a clinical code.",
                true,
            ));
        }
        let user = match &e.user_name {
            Some(name) => match org.user(name) {
                Some(u) => u,
                None => {
                    return Ok(error(
                        format!("The user name '{name}' is not a user of this organisation."),
                        true,
                    ))
                }
            },
            None => logged_in,
        };
        let mut codes = Vec::new();
        for c in &e.clinical_codes {
            let Some(code) = c.code.as_ref().filter(|code| !code.code.trim().is_empty()) else {
                return Ok(error("A clinical code entry must have a Code.", true));
            };
            codes.push(data::SimCode {
                scheme: code.scheme.clone().unwrap_or_else(|| "CTV3".into()),
                code: code.code.clone(),
                term: code.term.clone().unwrap_or_default(),
                free_text: c.free_text.clone(),
                value: c.value.clone(),
            });
        }
        events.push(SimEvent {
            uid: hex16(&mut rng),
            nhs_number: nhs.clone(),
            effective_at: e.date_time.unwrap_or(ctx.now),
            entered_at: ctx.now,
            user_name: user.user_name.clone(),
            done_by: e.done_by.clone().unwrap_or_else(|| user.display_name()),
            done_at: e
                .done_at
                .clone()
                .unwrap_or_else(|| org.sites[0].name.clone()),
            software: ctx.device_version.to_owned(),
            // Several Narratives in one filed event are kept as one run of lines.
            lines: e.narrative_lines().map(str::to_owned).collect(),
            codes,
            device_id: Some(ctx.device_id.to_owned()),
            pending,
        });
    }

    let groups: Vec<&String> = org.users.iter().flat_map(|u| &u.user_groups).collect();
    let teams: Vec<&String> = org.users.iter().flat_map(|u| &u.teams).collect();
    let mut new_tasks = Vec::new();
    let mut changes = Vec::new();
    for t in &p.tasks {
        if let Some(name) = &t.user_name_assigned {
            if org.user(name).is_none() {
                return Ok(error(
                    format!("The user name '{name}' is not a user of this organisation."),
                    true,
                ));
            }
        }
        if let Some(g) = &t.group_name_assigned {
            if !groups.iter().any(|x| x.eq_ignore_ascii_case(g)) {
                return Ok(error(
                    format!("The group '{g}' does not exist in this organisation."),
                    true,
                ));
            }
        }
        if let Some(team) = &t.team_name_assigned {
            if !teams.iter().any(|x| x.eq_ignore_ascii_case(team)) {
                return Ok(error(
                    format!("The team '{team}' does not exist in this organisation."),
                    true,
                ));
            }
        }
        if let Some(tt) = &t.task_type {
            if !data::TASK_TYPES.iter().any(|x| x.eq_ignore_ascii_case(tt)) {
                return Ok(error(
                    format!("The task type '{tt}' is not configured in this organisation."),
                    true,
                ));
            }
        }
        match &t.task_uid {
            Some(uid) => {
                let Some(existing) = db.task(uid)?.filter(|x| x.nhs_number == nhs) else {
                    return Ok(error(
                        format!("No task with TaskUID {uid} exists on this patient's record."),
                        true,
                    ));
                };
                if t.status.is_some()
                    && ctx.settings.profile.task_status == TaskStatusUpdate::Refused
                {
                    return Ok(error(TASK_STATUS_REFUSED, true));
                }
                let mut change = TaskChange {
                    task_type: t.task_type.clone(),
                    status: t.status.clone(),
                    content: t.content.clone(),
                    due: t.due,
                    user_assigned: t.user_name_assigned.clone(),
                    group_assigned: t.group_name_assigned.clone(),
                    team_assigned: t.team_name_assigned.clone(),
                };
                if change.is_empty() {
                    return Ok(error(
                        format!("The change to task {} contains no fields.", existing.uid),
                        true,
                    ));
                }
                if ctx.settings.profile.task_status == TaskStatusUpdate::Ignored {
                    // Accepted without complaint, and without effect.
                    change.status = None;
                }
                changes.push((existing.uid, change));
            }
            None => {
                let Some(task_type) = t.task_type.clone() else {
                    return Ok(error("A new task must have a TaskType.", true));
                };
                if t.user_name_assigned.is_none()
                    && t.group_name_assigned.is_none()
                    && t.team_name_assigned.is_none()
                {
                    return Ok(error(
                        "A new task must be assigned to a user, a group or a team.",
                        true,
                    ));
                }
                new_tasks.push(SimTask {
                    uid: hex16(&mut rng),
                    nhs_number: nhs.clone(),
                    created_at: ctx.now,
                    task_type,
                    status: t
                        .status
                        .clone()
                        .unwrap_or_else(|| STATUS_NOT_STARTED.into()),
                    content: t.content.clone().unwrap_or_default(),
                    due: t.due,
                    user_assigned: t.user_name_assigned.clone(),
                    group_assigned: t.group_name_assigned.clone(),
                    team_assigned: t.team_name_assigned.clone(),
                    created_by: logged_in.user_name.clone(),
                    device_id: Some(ctx.device_id.to_owned()),
                    pending,
                });
            }
        }
    }

    if p.leave_record_open {
        open_on_screen(db, &nhs)?;
    }
    db.apply_update(
        &events,
        &new_tasks,
        &changes,
        Some(ctx.request_uid),
        &logged_in.user_name,
    )?;
    Ok(ResponseBody::UpdatePatientRecord(
        UpdatePatientRecordResponse {
            identity: Some(identity_of(&patient)),
            event_uids: events.into_iter().map(|e| e.uid).collect(),
            appointment_uids: Vec::new(),
            visit_uids: Vec::new(),
            task_uids: new_tasks.into_iter().map(|t| t.uid).collect(),
            record_state: Some(if p.leave_record_open {
                RecordState::Open
            } else {
                RecordState::Closed
            }),
        },
    ))
}

fn delete_patient_record(
    db: &mut SimDb,
    ctx: &RequestContext<'_>,
    p: &DeletePatientRecordParams,
) -> Result<ResponseBody, SimError> {
    if p.reason.trim().is_empty() {
        return Ok(error(
            "A reason must be given for deleting from the patient record.",
            true,
        ));
    }
    let Some(patient) = find_patient(db, &p.identity)? else {
        return Ok(error(PATIENT_NOT_FOUND, true));
    };
    if db.open_patient()?.as_deref() == Some(patient.nhs_number.as_str()) {
        return Ok(error(RECORD_OPEN_ELSEWHERE, false));
    }
    if p.event_uids.is_empty()
        && p.task_uids.is_empty()
        && p.appointment_uids.is_empty()
        && p.visit_uids.is_empty()
    {
        return Ok(error("Nothing to delete was specified.", true));
    }
    let not_ours = |uid: &str| {
        error(
            format!("Only data added by this application can be deleted; {uid} was not, so nothing was deleted."),
            true,
        )
    };
    if let Some(uid) = p.appointment_uids.iter().chain(&p.visit_uids).next() {
        return Ok(not_ours(uid));
    }
    if let Err(uid) = db.delete_items(
        &patient.nhs_number,
        ctx.device_id,
        &p.event_uids,
        &p.task_uids,
    )? {
        return Ok(not_ours(&uid));
    }
    Ok(ResponseBody::DeletePatientRecord(
        DeletePatientRecordResponse {
            identity: Some(identity_of(&patient)),
            record_state: Some(RecordState::Closed),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultRates;
    use crate::state::ApprovalMode;
    use systmone_wire::codec::{
        GetOrganisationMetaDataParams, IsPatientRetrievedParams, TaskAssignee,
    };

    const SIAN: &str = "9990000018";
    const ZOE: &str = "9990000026";

    fn settings() -> SimSettings {
        SimSettings {
            profile: Default::default(),
            approval: ApprovalMode::Auto,
            prompt_ms: 0,
            faults: FaultRates::default(),
            slow_ms: 0,
            logged_in_user: data::DEFAULT_USER.into(),
            api_key: "k".into(),
        }
    }

    fn db() -> (tempfile::TempDir, SimDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = SimDb::open(dir.path(), Some((1, &settings()))).unwrap();
        (dir, db)
    }

    fn run(db: &mut SimDb, device: &str, params: RequestParams) -> ResponseBody {
        let s = settings();
        let ctx = RequestContext {
            device_id: device,
            device_version: "Inpatient Hub test",
            request_uid: "r",
            now: crate::state::now_local(),
            settings: &s,
        };
        handle(db, &ctx, &params).unwrap()
    }

    fn run_with(db: &mut SimDb, profile: SimProfile, params: RequestParams) -> ResponseBody {
        let mut s = settings();
        s.profile = profile;
        let ctx = RequestContext {
            device_id: "d",
            device_version: "Inpatient Hub test",
            request_uid: "r",
            now: crate::state::now_local(),
            settings: &s,
        };
        handle(db, &ctx, &params).unwrap()
    }

    /// Files a note under `profile` and reads today's narrative back.
    fn filed_and_read_back(profile: SimProfile, lines: &[&str]) -> (String, Event) {
        let (_d, mut db) = db();
        let event = Event::with_lines(lines.iter().map(|l| l.to_string()).collect());
        let p = UpdatePatientRecordParams::new(identity(SIAN)).with_event(event);
        let ResponseBody::UpdatePatientRecord(r) =
            run_with(&mut db, profile, RequestParams::UpdatePatientRecord(p))
        else {
            panic!()
        };
        let today = record(run_with(
            &mut db,
            profile,
            entered_today(SIAN, &[FilterFlag::Narrative]),
        ));
        (r.event_uids[0].clone(), today.events[0].clone())
    }

    #[test]
    fn narrative_reads_back_in_each_profiles_shape() {
        use crate::profile::NarrativeReadBack as N;
        let lines = [
            "H: Ward round",
            "",
            "Plan: home",
            "Inpatient Hub ref IH-0123456789ab",
        ];
        let profile = |narrative| SimProfile {
            narrative,
            ..SimProfile::default()
        };
        let (_, as_sent) = filed_and_read_back(profile(N::AsSent), &lines);
        assert_eq!(as_sent.narratives.len(), 1);
        assert_eq!(as_sent.narrative_lines().collect::<Vec<_>>(), lines);

        let (uid, spaces) = filed_and_read_back(profile(N::JoinedSpaces), &lines);
        let pad = if crate::profile::padded(&uid) {
            " "
        } else {
            ""
        };
        assert_eq!(spaces.narratives.len(), 1);
        assert_eq!(
            spaces.narrative_lines().collect::<Vec<_>>(),
            [format!(
                "{pad}H: Ward round Plan: home Inpatient Hub ref IH-0123456789ab"
            )]
        );

        let (uid, newlines) = filed_and_read_back(profile(N::JoinedNewlines), &lines);
        let pad = if crate::profile::padded(&uid) {
            " "
        } else {
            ""
        };
        assert_eq!(
            newlines.narrative_lines().collect::<Vec<_>>(),
            [format!("{pad}{}", lines.join("\n"))]
        );

        let (_, per_line) = filed_and_read_back(profile(N::NarrativePerLine), &lines);
        assert_eq!(per_line.narratives.len(), lines.len());
        assert_eq!(per_line.narrative_lines().collect::<Vec<_>>(), lines);
    }

    fn created_task(db: &mut SimDb, profile: SimProfile) -> String {
        let due = crate::state::today().and_hms_opt(10, 0, 0);
        let task = Task::create(
            "Clinical Review Required",
            "Review lithium level",
            TaskAssignee::User("demo.consultant".into()),
            due,
        );
        let p = UpdatePatientRecordParams::new(identity(ZOE)).with_task(task);
        let ResponseBody::UpdatePatientRecord(r) =
            run_with(db, profile, RequestParams::UpdatePatientRecord(p))
        else {
            panic!()
        };
        r.task_uids[0].clone()
    }

    fn read_task(db: &mut SimDb, profile: SimProfile, uid: &str) -> Option<Task> {
        record(run_with(
            db,
            profile,
            RequestParams::GetPatientRecord(GetPatientRecordParams {
                identity: Some(identity(ZOE)),
                leave_record_open: false,
                filter: Some(RecordFilter::with_flags([FilterFlag::Tasks])),
            }),
        ))
        .tasks
        .into_iter()
        .find(|t| t.task_uid.as_deref() == Some(uid))
    }

    #[test]
    fn task_reads_carry_systmones_header_and_only_the_captured_fields() {
        let (_d, mut db) = db();
        let profile = SimProfile::default();
        let uid = created_task(&mut db, profile);
        let t = read_task(&mut db, profile, &uid).unwrap();
        let stored = db.task(&uid).unwrap().unwrap();
        // The author is the logged-in user (demo.nurse: Nurse Nia Hughes in the fictitious org).
        let org = data::organisation();
        let me = org.user(data::DEFAULT_USER).unwrap();
        let header = format!(
            "{} - {}, {}",
            stored.created_at.format("%a %d %b %H:%M"),
            me.surname.to_uppercase(),
            me.first_name
        );
        assert_eq!(
            t.content.as_deref(),
            Some(format!("{header}\nReview lithium level\n").as_str())
        );
        assert_eq!(t.date_time, Some(stored.created_at));
        assert_eq!(t.status.as_deref(), Some(STATUS_NOT_STARTED));
        // Not reported (the default): no Due, no assignee, though both are stored.
        assert!(stored.due.is_some() && stored.user_assigned.is_some());
        assert_eq!(
            (
                t.due,
                t.user_name_assigned,
                t.group_name_assigned,
                t.team_name_assigned
            ),
            (None, None, None, None)
        );
        // Reported: Due keeps its time of day, the assignee its kind.
        let reported = SimProfile {
            task_details: TaskDetailsInReads::Reported,
            ..SimProfile::default()
        };
        let t = read_task(&mut db, reported, &uid).unwrap();
        assert_eq!(t.due, crate::state::today().and_hms_opt(10, 0, 0));
        assert_eq!(t.user_name_assigned.as_deref(), Some("demo.consultant"));
    }

    #[test]
    fn status_on_a_task_update_is_applied_ignored_or_refused_by_profile() {
        for mode in [
            TaskStatusUpdate::Applied,
            TaskStatusUpdate::Ignored,
            TaskStatusUpdate::Refused,
        ] {
            let (_d, mut db) = db();
            let profile = SimProfile {
                task_status: mode,
                ..SimProfile::default()
            };
            let uid = created_task(&mut db, profile);
            let complete = Task {
                status: Some(data::STATUS_COMPLETED.into()),
                ..Task::update(uid.clone())
            };
            let p = UpdatePatientRecordParams::new(identity(ZOE)).with_task(complete);
            let answer = run_with(&mut db, profile, RequestParams::UpdatePatientRecord(p));
            let still_open = read_task(&mut db, profile, &uid).is_some();
            match mode {
                TaskStatusUpdate::Applied => {
                    assert!(matches!(answer, ResponseBody::UpdatePatientRecord(_)));
                    assert!(!still_open, "a completed task leaves the Tasks filter");
                }
                TaskStatusUpdate::Ignored => {
                    assert!(matches!(answer, ResponseBody::UpdatePatientRecord(_)));
                    assert!(still_open, "accepted, but nothing changed");
                    assert_eq!(db.task(&uid).unwrap().unwrap().status, STATUS_NOT_STARTED);
                }
                TaskStatusUpdate::Refused => {
                    assert_error(&answer, true, "status of a task cannot be changed");
                    assert!(still_open);
                }
            }
        }
    }

    #[test]
    fn generated_records_carry_medication_attachments_and_problems_in_the_real_shapes() {
        let (_d, mut db) = db();
        let mut seen = (false, false, false, false);
        for p in db.patients().unwrap() {
            let whole = record(run(
                &mut db,
                "d",
                RequestParams::GetPatientRecord(GetPatientRecordParams {
                    identity: Some(identity(&p.nhs_number)),
                    leave_record_open: false,
                    filter: None,
                }),
            ));
            for e in &whole.events {
                for m in &e.medications {
                    let drug = m.drug.as_ref().unwrap();
                    assert_eq!(drug.scheme.as_deref(), Some("Multilex"));
                    assert!(drug.name.is_some() && drug.product_id.is_some());
                    assert!(m.dose.is_some() && m.quantity.is_some() && m.start_date.is_some());
                    assert_eq!(m.medication_type.as_deref(), Some("NHS medication"));
                    seen.0 = true;
                }
                seen.1 |= e.attachments.iter().any(|a| a.file_size.is_some());
                seen.2 |= e
                    .clinical_codes
                    .iter()
                    .any(|c| c.problem_severity.is_some());
                seen.3 |= e.clinical_codes.iter().any(|c| c.is_ended_problem());
            }
            if seen == (true, true, true, true) {
                // A Medication-only filter returns medication and nothing else.
                let meds = record(run(
                    &mut db,
                    "d",
                    RequestParams::GetPatientRecord(GetPatientRecordParams {
                        identity: Some(identity(&p.nhs_number)),
                        leave_record_open: false,
                        filter: Some(RecordFilter::with_flags([FilterFlag::Medication])),
                    }),
                ));
                assert!(meds.events.iter().all(|e| !e.medications.is_empty()
                    && !e.has_narrative()
                    && e.attachments.is_empty()));
                return;
            }
        }
        panic!("the generated records lack a real shape: {seen:?}");
    }

    #[test]
    fn demographics_carry_the_real_fields_and_end_of_record_facts() {
        let (_d, mut db) = db();
        let patients = db.patients().unwrap();
        let deceased = patients.iter().find(|p| p.date_of_death.is_some()).unwrap();
        let deregistered = patients.iter().find(|p| p.care_end_date.is_some()).unwrap();
        for (p, dead) in [(deceased, true), (deregistered, false)] {
            let rec = record(run(
                &mut db,
                "d",
                RequestParams::GetPatientRecord(GetPatientRecordParams::demographics_only(Some(
                    identity(&p.nhs_number),
                ))),
            ));
            let d = rec.demographics.unwrap();
            assert_eq!(d.english_speaker.as_deref(), Some("Yes"));
            assert_eq!(d.sms_consent.as_deref(), Some("No"));
            assert_eq!(d.date_of_death.is_some(), dead);
            assert_eq!(d.care_end_date.is_some(), !dead);
        }
    }

    fn identity(nhs: &str) -> Identity {
        Identity::nhs(NhsNumber::parse(nhs).unwrap())
    }

    fn search(f: impl FnOnce(&mut PatientSearchParams)) -> RequestParams {
        let mut p = PatientSearchParams::default();
        f(&mut p);
        RequestParams::PatientSearch(p)
    }

    fn results(body: ResponseBody) -> Vec<SearchResult> {
        match body {
            ResponseBody::PatientSearch(r) => r.results,
            other => panic!("expected search results, got {other:?}"),
        }
    }

    fn record(body: ResponseBody) -> PatientRecord {
        match body {
            ResponseBody::GetPatientRecord(r) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn assert_error(body: &ResponseBody, permanent: bool, contains: &str) {
        match body {
            ResponseBody::Error {
                message,
                permanent: p,
            } => {
                assert_eq!(*p, permanent, "{message}");
                assert!(message.contains(contains), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn narrative_update(nhs: &str, text: &str, leave_open: bool) -> RequestParams {
        let mut p =
            UpdatePatientRecordParams::new(identity(nhs)).with_event(Event::narrative(text));
        p.leave_record_open = leave_open;
        RequestParams::UpdatePatientRecord(p)
    }

    fn entered_today(nhs: &str, flags: &[FilterFlag]) -> RequestParams {
        RequestParams::GetPatientRecord(GetPatientRecordParams::entered_on(
            Some(identity(nhs)),
            crate::state::today(),
            flags.iter().copied(),
        ))
    }

    #[test]
    fn search_needs_two_parameters_and_matches_by_prefix() {
        let (_d, mut db) = db();
        let one = run(&mut db, "d", search(|p| p.surname = Some("O'Brien".into())));
        assert_eq!(
            one,
            ResponseBody::Error {
                message: TOO_FEW_SEARCH_PARAMETERS.into(),
                permanent: true
            }
        );
        let found = results(run(
            &mut db,
            "d",
            search(|p| {
                p.first_name = Some("si".into());
                p.surname = Some("o'b".into());
            }),
        ));
        assert!(
            found
                .iter()
                .any(|r| r.first_name.as_deref() == Some("Siân")),
            "prefix, case-insensitive, non-ASCII"
        );
        let by_dob = results(run(
            &mut db,
            "d",
            search(|p| {
                p.surname = Some("Smith-J".into());
                p.date_of_birth = NaiveDate::from_ymd_opt(1999, 11, 2);
            }),
        ));
        assert_eq!(by_dob.len(), 1);
        assert!(
            results(run(
                &mut db,
                "d",
                search(|p| {
                    p.first_name = Some("Nobody".into());
                    p.surname = Some("Nowhere".into());
                })
            ))
            .is_empty(),
            "no match is an empty response, not an error"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any prefix of a patient's own names, in any case, finds that patient.
        #[test]
        fn prefixes_of_a_patients_names_always_find_them(index in 0usize..240, first_len in 1usize..4, last_len in 1usize..4, upper in proptest::bool::ANY) {
            static WORLD: std::sync::OnceLock<data::SimWorld> = std::sync::OnceLock::new();
            let world = WORLD.get_or_init(|| data::generate(1, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()));
            let p = &world.patients[index].patient;
            let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
            let case = |s: String| if upper { s.to_uppercase() } else { s.to_lowercase() };
            let q = PatientSearchParams {
                first_name: Some(case(cut(&p.first_name, first_len))),
                surname: Some(case(cut(&p.surname, last_len))),
                ..Default::default()
            };
            proptest::prop_assert!(matches_search(p, &q));
            let wrong_dob = PatientSearchParams { date_of_birth: p.date_of_birth.succ_opt(), ..q };
            proptest::prop_assert!(!matches_search(p, &wrong_dob));
        }
    }

    #[test]
    fn postcode_matches_in_full_or_by_district() {
        let (_d, db) = db();
        let sian = db.patient(SIAN).unwrap().unwrap();
        let postcode = sian.address.postcode.clone().unwrap();
        let district = postcode.split(' ').next().unwrap().to_owned();
        let q = |pc: &str| PatientSearchParams {
            surname: Some("O'Brien".into()),
            post_code: Some(pc.into()),
            ..Default::default()
        };
        assert!(matches_search(&sian, &q(&postcode)));
        assert!(matches_search(
            &sian,
            &q(&postcode.to_lowercase().replace(' ', ""))
        ));
        assert!(matches_search(&sian, &q(&district)));
        assert!(
            !matches_search(&sian, &q(&district[..district.len() - 1])),
            "a partial district is not a district"
        );
        assert!(!matches_search(&sian, &q("ZZ1 1ZZ")));
    }

    #[test]
    fn get_record_without_identity_needs_an_open_record() {
        let (_d, mut db) = db();
        let none = run(
            &mut db,
            "d",
            RequestParams::GetPatientRecord(GetPatientRecordParams::default()),
        );
        assert_error(&none, true, "No patient record is open");
        db.set_open_patient(Some(ZOE)).unwrap();
        let r = record(run(
            &mut db,
            "d",
            RequestParams::GetPatientRecord(GetPatientRecordParams::default()),
        ));
        assert_eq!(r.identity.unwrap().nhs_number().unwrap().digits(), ZOE);
        assert_eq!(r.record_state, Some(RecordState::Open));
        let unknown = run(
            &mut db,
            "d",
            RequestParams::GetPatientRecord(GetPatientRecordParams {
                identity: Some(identity("9990000042")),
                ..Default::default()
            }),
        );
        assert_error(&unknown, true, "No patient record was found");
    }

    #[test]
    fn filters_select_sections_dates_and_open_tasks() {
        let (_d, mut db) = db();
        let whole = record(run(
            &mut db,
            "d",
            RequestParams::GetPatientRecord(GetPatientRecordParams {
                identity: Some(identity(SIAN)),
                ..Default::default()
            }),
        ));
        assert!(whole.demographics.is_some() && !whole.events.is_empty());
        assert_eq!(whole.record_state, Some(RecordState::Closed));
        let demo = record(run(
            &mut db,
            "d",
            RequestParams::GetPatientRecord(GetPatientRecordParams::demographics_only(Some(
                identity(SIAN),
            ))),
        ));
        assert!(demo.demographics.is_some() && demo.events.is_empty() && demo.tasks.is_empty());
        let today = record(run(
            &mut db,
            "d",
            entered_today(SIAN, &[FilterFlag::Narrative, FilterFlag::Tasks]),
        ));
        assert!(
            today.events.is_empty() && today.tasks.is_empty(),
            "generated data is never entered today"
        );
        assert!(today.demographics.is_none());

        // Entry-date window over the generated events.
        let events = db.events(SIAN).unwrap();
        let pivot = events[events.len() / 2].entered_at.date();
        let mut filter =
            RecordFilter::with_flags([FilterFlag::Narrative, FilterFlag::ClinicalCodes]);
        filter.min_entry_date = Some(pivot);
        let (_, windowed, _) = filter_record(
            &db.patient(SIAN).unwrap().unwrap(),
            &events,
            &[],
            Some(&filter),
            &SimProfile::default(),
        );
        let expected = events
            .iter()
            .filter(|e| e.entered_at.date() >= pivot)
            .count();
        assert_eq!(windowed.len(), expected);

        // Tasks filter shows only tasks not completed.
        let patient = db.patient(SIAN).unwrap().unwrap();
        let mut tasks = vec![];
        for (i, status) in ["Not Started", "Completed", "In Progress"]
            .iter()
            .enumerate()
        {
            tasks.push(SimTask {
                uid: format!("{i:016x}"),
                nhs_number: SIAN.into(),
                created_at: events[0].entered_at,
                task_type: "File".into(),
                status: (*status).into(),
                content: String::new(),
                due: None,
                user_assigned: Some("demo.nurse".into()),
                group_assigned: None,
                team_assigned: None,
                created_by: "demo.nurse".into(),
                device_id: None,
                pending: false,
            });
        }
        let (_, _, open) = filter_record(
            &patient,
            &events,
            &tasks,
            Some(&RecordFilter::with_flags([FilterFlag::Tasks])),
            &SimProfile::default(),
        );
        assert_eq!(
            open.iter()
                .map(|t| t.status.clone().unwrap())
                .collect::<Vec<_>>(),
            ["Not Started", "In Progress"]
        );
        let (_, _, all) = filter_record(&patient, &events, &tasks, None, &SimProfile::default());
        assert_eq!(
            all.len(),
            3,
            "no filter = whole record, completed tasks included"
        );
    }

    #[test]
    fn narrative_update_is_filed_and_visible_entered_today() {
        let (_d, mut db) = db();
        let body = run(
            &mut db,
            "dev1",
            narrative_update(SIAN, "Line one\nLine two", false),
        );
        let ResponseBody::UpdatePatientRecord(r) = body else {
            panic!("{body:?}")
        };
        assert_eq!(r.event_uids.len(), 1);
        assert_eq!(r.record_state, Some(RecordState::Closed));
        let today = record(run(
            &mut db,
            "dev1",
            entered_today(SIAN, &[FilterFlag::Narrative]),
        ));
        assert_eq!(today.events.len(), 1);
        // The real shape by default: one Narrative, one Line, the lines joined by a space.
        let uid = &r.event_uids[0];
        let expected = if crate::profile::padded(uid) {
            " Line one Line two"
        } else {
            "Line one Line two"
        };
        assert_eq!(
            today.events[0].narrative_lines().collect::<Vec<_>>(),
            [expected]
        );
        assert_eq!(today.events[0].event_uid.as_ref(), Some(&r.event_uids[0]));
        assert_eq!(
            today.events[0].user_name.as_deref(),
            Some(data::DEFAULT_USER)
        );
        let stored = db
            .events(SIAN)
            .unwrap()
            .into_iter()
            .find(|e| e.uid == r.event_uids[0])
            .unwrap();
        assert_eq!(stored.device_id.as_deref(), Some("dev1"));
        assert!(!stored.pending);
    }

    #[test]
    fn coded_entry_and_bad_updates_are_all_or_nothing() {
        let (_d, mut db) = db();
        let before = db.events(ZOE).unwrap().len();
        let coded = Event::coded(Code::new("Snomed", "225337009"), Some("Low risk".into()));
        let bad_user = Event {
            user_name: Some("somebody.real".into()),
            ..Event::narrative("x")
        };
        let p = UpdatePatientRecordParams::new(identity(ZOE))
            .with_event(coded.clone())
            .with_event(bad_user);
        assert_error(
            &run(&mut db, "d", RequestParams::UpdatePatientRecord(p)),
            true,
            "not a user",
        );
        assert_eq!(
            db.events(ZOE).unwrap().len(),
            before,
            "nothing filed when any part is refused"
        );
        let p = UpdatePatientRecordParams::new(identity(ZOE)).with_event(coded);
        assert!(matches!(
            run(&mut db, "d", RequestParams::UpdatePatientRecord(p)),
            ResponseBody::UpdatePatientRecord(_)
        ));
        let filed = db.events(ZOE).unwrap();
        assert_eq!(filed.len(), before + 1);
        assert_eq!(filed.last().unwrap().codes[0].code, "225337009");
        let empty = UpdatePatientRecordParams::new(identity(ZOE)).with_event(Event::default());
        assert_error(
            &run(&mut db, "d", RequestParams::UpdatePatientRecord(empty)),
            true,
            "narrative or a clinical code",
        );
    }

    #[test]
    fn record_open_on_screen_gives_a_temporary_error_unless_left_open() {
        let (_d, mut db) = db();
        db.set_open_patient(Some(SIAN)).unwrap();
        let before = db.events(SIAN).unwrap().len();
        assert_error(
            &run(&mut db, "d", narrative_update(SIAN, "background", false)),
            false,
            "open in SystmOne",
        );
        assert_eq!(db.events(SIAN).unwrap().len(), before);
        // Another patient is not affected.
        assert!(matches!(
            run(&mut db, "d", narrative_update(ZOE, "ok", false)),
            ResponseBody::UpdatePatientRecord(_)
        ));
        // Interactive work with LeaveRecordOpen goes in, pending until saved.
        let ResponseBody::UpdatePatientRecord(r) = run(
            &mut db,
            "d",
            narrative_update(SIAN, "with the clinician", true),
        ) else {
            panic!()
        };
        assert_eq!(r.record_state, Some(RecordState::Open));
        let pending = db
            .events(SIAN)
            .unwrap()
            .into_iter()
            .find(|e| e.uid == r.event_uids[0])
            .unwrap();
        assert!(pending.pending);
        db.save_pending(SIAN).unwrap();
        assert!(
            !db.events(SIAN)
                .unwrap()
                .into_iter()
                .find(|e| e.uid == r.event_uids[0])
                .unwrap()
                .pending
        );
        let delete = DeletePatientRecordParams {
            identity: identity(SIAN),
            reason: "Entered in error".into(),
            event_uids: r.event_uids.clone(),
            appointment_uids: vec![],
            task_uids: vec![],
            visit_uids: vec![],
        };
        assert_error(
            &run(&mut db, "d", RequestParams::DeletePatientRecord(delete)),
            false,
            "open in SystmOne",
        );
    }

    #[test]
    fn leave_record_open_opens_it_on_screen() {
        let (_d, mut db) = db();
        let _ = run(&mut db, "d", narrative_update(ZOE, "pending", true));
        assert_eq!(db.open_patient().unwrap().as_deref(), Some(ZOE));
        let activity = run(&mut db, "d", RequestParams::GetCurrentActivity);
        let ResponseBody::GetCurrentActivity(a) = activity else {
            panic!()
        };
        assert_eq!(a.identity.unwrap().nhs_number().unwrap().digits(), ZOE);
        db.set_open_patient(None).unwrap();
        let ResponseBody::GetCurrentActivity(a) =
            run(&mut db, "d", RequestParams::GetCurrentActivity)
        else {
            panic!()
        };
        assert!(a.identity.is_none());
    }

    #[test]
    fn tasks_create_update_complete() {
        let (_d, mut db) = db();
        let task = Task::create(
            "Clinical Review Required",
            "Review the new note",
            TaskAssignee::User("demo.consultant".into()),
            None,
        );
        let p = UpdatePatientRecordParams::new(identity(ZOE)).with_task(task);
        let ResponseBody::UpdatePatientRecord(r) =
            run(&mut db, "d", RequestParams::UpdatePatientRecord(p))
        else {
            panic!()
        };
        let uid = r.task_uids[0].clone();
        assert!(uid.len() == 16 && uid.chars().all(|c| c.is_ascii_hexdigit()));
        let open_tasks = |db: &mut SimDb| {
            record(run(
                db,
                "d",
                RequestParams::GetPatientRecord(GetPatientRecordParams {
                    identity: Some(identity(ZOE)),
                    leave_record_open: false,
                    filter: Some(RecordFilter::with_flags([FilterFlag::Tasks])),
                }),
            ))
            .tasks
        };
        let t = open_tasks(&mut db)
            .into_iter()
            .find(|t| t.task_uid.as_ref() == Some(&uid))
            .unwrap();
        assert_eq!(t.status.as_deref(), Some(STATUS_NOT_STARTED));

        let mut change = Task::update(uid.clone());
        change.assign(TaskAssignee::Group("Nurses (DEMO)".into()));
        let p = UpdatePatientRecordParams::new(identity(ZOE)).with_task(change);
        assert!(matches!(
            run(&mut db, "d", RequestParams::UpdatePatientRecord(p)),
            ResponseBody::UpdatePatientRecord(_)
        ));
        let t = db.task(&uid).unwrap().unwrap();
        assert_eq!(
            (
                t.user_assigned,
                t.group_assigned.as_deref(),
                t.content.as_str()
            ),
            (None, Some("Nurses (DEMO)"), "Review the new note")
        );

        let mut done = Task::update(uid.clone());
        done.status = Some("Completed".into());
        let p = UpdatePatientRecordParams::new(identity(ZOE)).with_task(done);
        let _ = run(&mut db, "d", RequestParams::UpdatePatientRecord(p));
        assert!(
            open_tasks(&mut db)
                .iter()
                .all(|t| t.task_uid.as_ref() != Some(&uid)),
            "completed tasks leave the Tasks filter"
        );

        let bad = Task::create(
            "Made Up Type",
            "x",
            TaskAssignee::User("demo.nurse".into()),
            None,
        );
        let p = UpdatePatientRecordParams::new(identity(ZOE)).with_task(bad);
        assert_error(
            &run(&mut db, "d", RequestParams::UpdatePatientRecord(p)),
            true,
            "task type",
        );
        let p = UpdatePatientRecordParams::new(identity(SIAN)).with_task(Task::update(uid));
        assert_error(
            &run(&mut db, "d", RequestParams::UpdatePatientRecord(p)),
            true,
            "No task",
        );
    }

    #[test]
    fn delete_needs_a_reason_and_only_this_devices_items() {
        let (_d, mut db) = db();
        let ResponseBody::UpdatePatientRecord(r) =
            run(&mut db, "dev1", narrative_update(ZOE, "to delete", false))
        else {
            panic!()
        };
        let generated = db.events(ZOE).unwrap()[0].uid.clone();
        let delete = |reason: &str, uids: Vec<String>| {
            RequestParams::DeletePatientRecord(DeletePatientRecordParams {
                identity: identity(ZOE),
                reason: reason.into(),
                event_uids: uids,
                appointment_uids: vec![],
                task_uids: vec![],
                visit_uids: vec![],
            })
        };
        assert_error(
            &run(&mut db, "dev1", delete("  ", r.event_uids.clone())),
            true,
            "reason",
        );
        assert_error(
            &run(
                &mut db,
                "dev2",
                delete("Entered in error", r.event_uids.clone()),
            ),
            true,
            "Only data added",
        );
        let mixed = vec![r.event_uids[0].clone(), generated];
        assert_error(
            &run(&mut db, "dev1", delete("Entered in error", mixed)),
            true,
            "nothing was deleted",
        );
        assert!(
            db.events(ZOE)
                .unwrap()
                .iter()
                .any(|e| e.uid == r.event_uids[0]),
            "all or nothing"
        );
        assert!(matches!(
            run(
                &mut db,
                "dev1",
                delete("Entered in error", r.event_uids.clone())
            ),
            ResponseBody::DeletePatientRecord(_)
        ));
        assert!(!db
            .events(ZOE)
            .unwrap()
            .iter()
            .any(|e| e.uid == r.event_uids[0]));
    }

    #[test]
    fn metadata_functions_and_retrieval() {
        let (_d, mut db) = db();
        let ResponseBody::GetOrganisationMetaData(all) = run(
            &mut db,
            "d",
            RequestParams::GetOrganisationMetaData(GetOrganisationMetaDataParams {
                logged_on_user_only: false,
            }),
        ) else {
            panic!()
        };
        assert_eq!(all.users.len(), 4);
        assert!(all.sites.iter().all(|s| s
            .name
            .as_deref()
            .unwrap()
            .contains("DEMO – Fictitious Hospital (Inpatient Hub simulator)")));
        let ResponseBody::GetOrganisationMetaData(me) = run(
            &mut db,
            "d",
            RequestParams::GetOrganisationMetaData(GetOrganisationMetaDataParams {
                logged_on_user_only: true,
            }),
        ) else {
            panic!()
        };
        assert_eq!(me.users.len(), 1);
        assert_eq!(
            me.current_user().unwrap().user_name.as_deref(),
            Some(data::DEFAULT_USER)
        );
        let ResponseBody::GetFunctions(f) = run(&mut db, "d", RequestParams::GetFunctions) else {
            panic!()
        };
        assert!(SUPPORTED.iter().all(|s| f.supports(*s)));
        let retrieved = |db: &mut SimDb, nhs: &str| {
            run(
                db,
                "d",
                RequestParams::IsPatientRetrieved(IsPatientRetrievedParams {
                    identity: Some(identity(nhs)),
                }),
            )
        };
        assert_eq!(
            retrieved(&mut db, SIAN),
            ResponseBody::IsPatientRetrieved(true)
        );
        assert_eq!(
            retrieved(&mut db, "9990000042"),
            ResponseBody::IsPatientRetrieved(false)
        );
    }
}
