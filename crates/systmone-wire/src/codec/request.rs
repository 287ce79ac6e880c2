//! Typed `FunctionParameters` for each function the hub calls.

use super::model::{fmt_date, opt_date, Demographics, Event, Identity, Sex, Task};
use super::xml::{Element, XmlOut};
use super::{CodecError, Function};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeSet;

// One value per message, never stored in bulk: unboxed variants keep construction plain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RequestParams {
    GetFunctions,
    GetOrganisationMetaData(GetOrganisationMetaDataParams),
    GetCurrentActivity,
    IsPatientRetrieved(IsPatientRetrievedParams),
    PatientSearch(PatientSearchParams),
    GetPatientRecord(GetPatientRecordParams),
    UpdatePatientRecord(UpdatePatientRecordParams),
    DeletePatientRecord(DeletePatientRecordParams),
    /// A function the hub does not call; its parameters are not modelled (an empty
    /// `<FunctionParameters/>` is written, and read parameters are dropped).
    Other(Function),
}

impl RequestParams {
    pub fn function(&self) -> Function {
        match self {
            RequestParams::GetFunctions => Function::GetFunctions,
            RequestParams::GetOrganisationMetaData(_) => Function::GetOrganisationMetaData,
            RequestParams::GetCurrentActivity => Function::GetCurrentActivity,
            RequestParams::IsPatientRetrieved(_) => Function::IsPatientRetrieved,
            RequestParams::PatientSearch(_) => Function::PatientSearch,
            RequestParams::GetPatientRecord(_) => Function::GetPatientRecord,
            RequestParams::UpdatePatientRecord(_) => Function::UpdatePatientRecord,
            RequestParams::DeletePatientRecord(_) => Function::DeletePatientRecord,
            RequestParams::Other(f) => *f,
        }
    }

    pub(crate) fn read(function: Function, p: &Element) -> Result<RequestParams, CodecError> {
        Ok(match function {
            Function::GetFunctions => RequestParams::GetFunctions,
            Function::GetCurrentActivity => RequestParams::GetCurrentActivity,
            Function::GetOrganisationMetaData => {
                RequestParams::GetOrganisationMetaData(GetOrganisationMetaDataParams {
                    logged_on_user_only: p.has("LoggedOnUserOnly"),
                })
            }
            Function::IsPatientRetrieved => {
                RequestParams::IsPatientRetrieved(IsPatientRetrievedParams {
                    identity: read_request_identity(p)?,
                })
            }
            Function::PatientSearch => RequestParams::PatientSearch(PatientSearchParams::read(p)?),
            Function::GetPatientRecord => {
                RequestParams::GetPatientRecord(GetPatientRecordParams::read(p)?)
            }
            Function::UpdatePatientRecord => {
                RequestParams::UpdatePatientRecord(UpdatePatientRecordParams::read(p)?)
            }
            Function::DeletePatientRecord => {
                RequestParams::DeletePatientRecord(DeletePatientRecordParams::read(p)?)
            }
            other => RequestParams::Other(other),
        })
    }

    /// Writes `<FunctionParameters>`.
    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        match self {
            RequestParams::GetFunctions
            | RequestParams::GetCurrentActivity
            | RequestParams::Other(_) => {
                out.empty("FunctionParameters");
                return Ok(());
            }
            _ => {}
        }
        out.open("FunctionParameters");
        match self {
            RequestParams::GetOrganisationMetaData(p) => {
                out.flag("LoggedOnUserOnly", p.logged_on_user_only)
            }
            RequestParams::IsPatientRetrieved(p) => {
                if let Some(i) = &p.identity {
                    i.write(out, false)?;
                }
            }
            RequestParams::PatientSearch(p) => p.write(out)?,
            RequestParams::GetPatientRecord(p) => p.write(out)?,
            RequestParams::UpdatePatientRecord(p) => p.write(out)?,
            RequestParams::DeletePatientRecord(p) => p.write(out)?,
            RequestParams::GetFunctions
            | RequestParams::GetCurrentActivity
            | RequestParams::Other(_) => {}
        }
        out.close("FunctionParameters");
        Ok(())
    }
}

/// Requests never carry the reporting identifier, so one read from a request is dropped.
fn read_request_identity(p: &Element) -> Result<Option<Identity>, CodecError> {
    Ok(Identity::read_opt(p)?.map(|mut i| {
        i.strategic_reporting_identifier = None;
        i
    }))
}

fn require_identity(p: &Element) -> Result<Identity, CodecError> {
    read_request_identity(p)?
        .ok_or_else(|| CodecError::MissingElement("FunctionParameters/Identity".into()))
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GetOrganisationMetaDataParams {
    pub logged_on_user_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IsPatientRetrievedParams {
    pub identity: Option<Identity>,
}

/// At least two criteria are required by SystmOne (it answers "At least two search
/// parameters must be specified" otherwise); the codec does not refuse fewer, so the
/// simulator's error path can be exercised. Names match by prefix.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct PatientSearchParams {
    pub first_name: Option<String>,
    pub surname: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    /// Full postcode or district.
    pub post_code: Option<String>,
    pub telephone: Option<String>,
    /// M or F.
    pub gender: Option<Sex>,
}
super::model::redacted_debug!(PatientSearchParams);

impl PatientSearchParams {
    /// How many criteria are given (non-empty).
    pub fn criteria_count(&self) -> usize {
        let texts = [
            &self.first_name,
            &self.surname,
            &self.post_code,
            &self.telephone,
        ];
        texts
            .iter()
            .filter(|t| t.as_deref().is_some_and(|s| !s.trim().is_empty()))
            .count()
            + usize::from(self.date_of_birth.is_some())
            + usize::from(self.gender.is_some())
    }

    fn read(p: &Element) -> Result<Self, CodecError> {
        Ok(PatientSearchParams {
            first_name: p.text_of("FirstName"),
            surname: p.text_of("Surname"),
            date_of_birth: opt_date(p, "DateOfBirth")?,
            post_code: p.text_of("PostCode").or_else(|| p.text_of("Postcode")),
            telephone: p.text_of("Telephone"),
            gender: p
                .trimmed_of("Gender")
                .filter(|g| !g.is_empty())
                .map(|g| Sex::parse(&g)),
        })
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.opt_leaf("FirstName", self.first_name.as_deref())?;
        out.opt_leaf("Surname", self.surname.as_deref())?;
        out.opt_leaf(
            "DateOfBirth",
            self.date_of_birth.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf("PostCode", self.post_code.as_deref())?;
        out.opt_leaf("Telephone", self.telephone.as_deref())?;
        out.opt_leaf("Gender", self.gender.map(Sex::code))
    }
}

/// The empty flag elements of a GetPatientRecord `<Filter>`, in the spec's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FilterFlag {
    Appointments,
    CarePlans,
    Demographics,
    ClinicalCodes,
    Letters,
    Medication,
    Sensitivities,
    Recalls,
    Referrals,
    Relationships,
    Results,
    Vaccinations,
    Reminders,
    Activity,
    Attachments,
    Narrative,
    Visits,
    Tasks,
}

impl FilterFlag {
    pub const ALL: [FilterFlag; 18] = [
        FilterFlag::Appointments,
        FilterFlag::CarePlans,
        FilterFlag::Demographics,
        FilterFlag::ClinicalCodes,
        FilterFlag::Letters,
        FilterFlag::Medication,
        FilterFlag::Sensitivities,
        FilterFlag::Recalls,
        FilterFlag::Referrals,
        FilterFlag::Relationships,
        FilterFlag::Results,
        FilterFlag::Vaccinations,
        FilterFlag::Reminders,
        FilterFlag::Activity,
        FilterFlag::Attachments,
        FilterFlag::Narrative,
        FilterFlag::Visits,
        FilterFlag::Tasks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FilterFlag::Appointments => "Appointments",
            FilterFlag::CarePlans => "CarePlans",
            FilterFlag::Demographics => "Demographics",
            FilterFlag::ClinicalCodes => "ClinicalCodes",
            FilterFlag::Letters => "Letters",
            FilterFlag::Medication => "Medication",
            FilterFlag::Sensitivities => "Sensitivities",
            FilterFlag::Recalls => "Recalls",
            FilterFlag::Referrals => "Referrals",
            FilterFlag::Relationships => "Relationships",
            FilterFlag::Results => "Results",
            FilterFlag::Vaccinations => "Vaccinations",
            FilterFlag::Reminders => "Reminders",
            FilterFlag::Activity => "Activity",
            FilterFlag::Attachments => "Attachments",
            FilterFlag::Narrative => "Narrative",
            FilterFlag::Visits => "Visits",
            FilterFlag::Tasks => "Tasks",
        }
    }

    pub fn parse(name: &str) -> Option<FilterFlag> {
        FilterFlag::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// `<Filter>`: no filter at all means the whole record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RecordFilter {
    pub min_effective_date: Option<NaiveDate>,
    pub max_effective_date: Option<NaiveDate>,
    pub min_entry_date: Option<NaiveDate>,
    pub max_entry_date: Option<NaiveDate>,
    pub flags: BTreeSet<FilterFlag>,
    /// CTV3 codes.
    pub clinical_codes: Vec<String>,
    /// CTV3 codes of numeric values.
    pub numerics: Vec<String>,
    pub user_names_done_by: Vec<String>,
}

impl RecordFilter {
    pub fn with_flags(flags: impl IntoIterator<Item = FilterFlag>) -> Self {
        RecordFilter {
            flags: flags.into_iter().collect(),
            ..RecordFilter::default()
        }
    }

    fn read(f: &Element) -> Result<Self, CodecError> {
        Ok(RecordFilter {
            min_effective_date: opt_date(f, "MinEffectiveDate")?,
            max_effective_date: opt_date(f, "MaxEffectiveDate")?,
            min_entry_date: opt_date(f, "MinEntryDate")?,
            max_entry_date: opt_date(f, "MaxEntryDate")?,
            flags: f
                .children
                .iter()
                .filter_map(|c| FilterFlag::parse(&c.name))
                .collect(),
            clinical_codes: f.all_trimmed("ClinicalCode"),
            numerics: f.all_trimmed("Numeric"),
            user_names_done_by: f.all_trimmed("UserNameDoneBy"),
        })
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Filter");
        for (name, date) in [
            ("MinEffectiveDate", &self.min_effective_date),
            ("MaxEffectiveDate", &self.max_effective_date),
            ("MinEntryDate", &self.min_entry_date),
            ("MaxEntryDate", &self.max_entry_date),
        ] {
            out.opt_leaf(name, date.as_ref().map(fmt_date).as_deref())?;
        }
        for flag in &self.flags {
            out.empty(flag.as_str());
        }
        for c in &self.clinical_codes {
            out.leaf("ClinicalCode", c)?;
        }
        for n in &self.numerics {
            out.leaf("Numeric", n)?;
        }
        for u in &self.user_names_done_by {
            out.leaf("UserNameDoneBy", u)?;
        }
        out.close("Filter");
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GetPatientRecordParams {
    /// None: the record open on screen (SystmOne errors if none is open).
    pub identity: Option<Identity>,
    pub leave_record_open: bool,
    /// None: the whole record.
    pub filter: Option<RecordFilter>,
}

impl GetPatientRecordParams {
    /// Demographics only: exempt from the 30-second GetPatientRecord limit.
    pub fn demographics_only(identity: Option<Identity>) -> Self {
        GetPatientRecordParams {
            identity,
            leave_record_open: false,
            filter: Some(RecordFilter::with_flags([FilterFlag::Demographics])),
        }
    }

    /// What was entered today (both entry dates = `today`): exempt from the 30-second limit.
    /// This is how the hub reads a record back to reconcile an update of unknown outcome.
    pub fn entered_on(
        identity: Option<Identity>,
        today: NaiveDate,
        flags: impl IntoIterator<Item = FilterFlag>,
    ) -> Self {
        let mut filter = RecordFilter::with_flags(flags);
        filter.min_entry_date = Some(today);
        filter.max_entry_date = Some(today);
        GetPatientRecordParams {
            identity,
            leave_record_open: false,
            filter: Some(filter),
        }
    }

    /// Whether SystmOne exempts this request from the once-per-30-seconds limit [spec]:
    /// the Filter asks for Demographics only (the only flag, and nothing else in the
    /// filter), or MinEntryDate and MaxEntryDate are both `today`.
    pub fn is_throttle_exempt(&self, today: NaiveDate) -> bool {
        let Some(f) = &self.filter else { return false };
        let demographics_only = f.flags.len() == 1
            && f.flags.contains(&FilterFlag::Demographics)
            && f.min_effective_date.is_none()
            && f.max_effective_date.is_none()
            && f.min_entry_date.is_none()
            && f.max_entry_date.is_none()
            && f.clinical_codes.is_empty()
            && f.numerics.is_empty()
            && f.user_names_done_by.is_empty();
        let entered_today = f.min_entry_date == Some(today) && f.max_entry_date == Some(today);
        demographics_only || entered_today
    }

    fn read(p: &Element) -> Result<Self, CodecError> {
        Ok(GetPatientRecordParams {
            identity: read_request_identity(p)?,
            leave_record_open: p.has("LeaveRecordOpen"),
            filter: p.child("Filter").map(RecordFilter::read).transpose()?,
        })
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if let Some(i) = &self.identity {
            i.write(out, false)?;
        }
        out.flag("LeaveRecordOpen", self.leave_record_open);
        if let Some(f) = &self.filter {
            f.write(out)?;
        }
        Ok(())
    }
}

/// Identity plus what to add or change. Events go under `<Clinical>`, tasks under
/// `<NonClinical>`; `demographics` carries only the fields to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdatePatientRecordParams {
    pub identity: Identity,
    pub leave_record_open: bool,
    pub demographics: Option<Demographics>,
    pub events: Vec<Event>,
    pub tasks: Vec<Task>,
}

impl UpdatePatientRecordParams {
    pub fn new(identity: Identity) -> Self {
        UpdatePatientRecordParams {
            identity,
            leave_record_open: false,
            demographics: None,
            events: Vec::new(),
            tasks: Vec::new(),
        }
    }

    pub fn with_event(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }

    pub fn with_task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }

    fn read(p: &Element) -> Result<Self, CodecError> {
        let events = match p.child("Clinical") {
            Some(c) => c
                .children_named("Event")
                .map(Event::read)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let tasks = match p.child("NonClinical") {
            Some(n) => n
                .children_named("Task")
                .map(Task::read)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(UpdatePatientRecordParams {
            identity: require_identity(p)?,
            leave_record_open: p.has("LeaveRecordOpen"),
            demographics: p
                .child("Demographics")
                .map(Demographics::read)
                .transpose()?,
            events,
            tasks,
        })
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        self.identity.write(out, false)?;
        out.flag("LeaveRecordOpen", self.leave_record_open);
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
        if !self.tasks.is_empty() {
            out.open("NonClinical");
            for t in &self.tasks {
                t.write(out)?;
            }
            out.close("NonClinical");
        }
        Ok(())
    }
}

/// Deletes data this application added; all or nothing. `reason` is mandatory and
/// `encode_request` refuses an empty one. Decoding keeps an empty reason so the
/// simulator can answer with SystmOne's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletePatientRecordParams {
    pub identity: Identity,
    pub reason: String,
    pub event_uids: Vec<String>,
    pub appointment_uids: Vec<String>,
    pub task_uids: Vec<String>,
    pub visit_uids: Vec<String>,
}

impl DeletePatientRecordParams {
    pub fn new(identity: Identity, reason: impl Into<String>) -> Self {
        DeletePatientRecordParams {
            identity,
            reason: reason.into(),
            event_uids: Vec::new(),
            appointment_uids: Vec::new(),
            task_uids: Vec::new(),
            visit_uids: Vec::new(),
        }
    }

    fn read(p: &Element) -> Result<Self, CodecError> {
        Ok(DeletePatientRecordParams {
            identity: require_identity(p)?,
            reason: p.text_of("Reason").unwrap_or_default(),
            event_uids: p.all_trimmed("EventUID"),
            appointment_uids: p.all_trimmed("AppointmentUID"),
            task_uids: p.all_trimmed("TaskUID"),
            visit_uids: p.all_trimmed("VisitUID"),
        })
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if self.reason.trim().is_empty() {
            return Err(CodecError::InvalidValue {
                element: "Reason".into(),
                reason: "SystmOne requires a reason for every deletion".into(),
            });
        }
        self.identity.write(out, false)?;
        out.leaf("Reason", &self.reason)?;
        for (name, uids) in [
            ("EventUID", &self.event_uids),
            ("AppointmentUID", &self.appointment_uids),
            ("TaskUID", &self.task_uids),
            ("VisitUID", &self.visit_uids),
        ] {
            for uid in uids {
                out.leaf(name, uid)?;
            }
        }
        Ok(())
    }
}
