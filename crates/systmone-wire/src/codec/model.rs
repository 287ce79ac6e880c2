//! Types shared by several functions: patient identity, demographics, clinical events,
//! tasks, appointments and visits. Each knows how to read itself from an element tree and
//! write itself in the wire order.
//!
//! Patient data lives in plain `String` fields so values are easy to build; `Debug` is
//! written by hand (see `redacted_debug!`) and prints only identifiers that are not
//! patient-identifiable (UIDs, dates of entry, code schemes).

use super::xml::{Element, XmlOut};
use super::CodecError;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use domain::{NhsNumber, Sensitive};
use serde::Serialize;
use std::fmt;

/// Debug that names the struct, prints only the listed (non-identifying) fields and marks
/// the rest as redacted.
macro_rules! redacted_debug {
    ($ty:ident $(; $($field:ident),*)?) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut s = f.debug_struct(stringify!($ty));
                $($( s.field(stringify!($field), &self.$field); )*)?
                s.finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use redacted_debug;

pub(crate) const DATE_FORMAT: &str = "%Y-%m-%d";
pub(crate) const DATE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Element dates are `YYYY-MM-DD`; a date-time there is tolerated (its date is kept).
pub(crate) fn parse_date(element: &str, raw: &str) -> Result<NaiveDate, CodecError> {
    let raw = raw.trim();
    let date_part = raw.split('T').next().unwrap_or(raw);
    NaiveDate::parse_from_str(date_part, DATE_FORMAT)
        .ok()
        .filter(|d| plausible_year(d.year()))
        .ok_or_else(|| CodecError::InvalidValue {
            element: element.to_string(),
            reason: "expected a date YYYY-MM-DD".into(),
        })
}

/// Four-digit years only: anything else cannot be written back in the same form.
fn plausible_year(year: i32) -> bool {
    (1..=9999).contains(&year)
}

/// Attribute date-times are `YYYY-MM-DDTHH:MM:SS`, local time; a bare date means midnight
/// and fractional seconds are tolerated.
pub(crate) fn parse_date_time(element: &str, raw: &str) -> Result<NaiveDateTime, CodecError> {
    let raw = raw.trim();
    // Every event has one: the exact wire form is read without chrono's format parser.
    if let Some(dt) = plain_date_time(raw) {
        return Ok(dt);
    }
    // Fractions of a second are dropped: the wire format has whole seconds.
    let parsed = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .and_then(|dt| dt.with_nanosecond(0))
        .or_else(|| {
            NaiveDate::parse_from_str(raw, DATE_FORMAT)
                .ok()
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        });
    if let Some(dt) = parsed.filter(|dt| plausible_year(dt.year())) {
        return Ok(dt);
    }
    Err(CodecError::InvalidValue {
        element: element.to_string(),
        reason: "expected a date-time YYYY-MM-DDTHH:MM:SS".into(),
    })
}

/// `YYYY-MM-DDTHH:MM:SS` exactly, a valid date and time with a four-digit year; anything
/// else (fractions, leap seconds, bad values) is left to chrono, which decides as before.
fn plain_date_time(raw: &str) -> Option<NaiveDateTime> {
    let b = raw.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?;
    let dt = date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?;
    plausible_year(dt.year()).then_some(dt)
}

pub(crate) fn fmt_date(d: &NaiveDate) -> String {
    d.format(DATE_FORMAT).to_string()
}

pub(crate) fn fmt_date_time(d: &NaiveDateTime) -> String {
    d.format(DATE_TIME_FORMAT).to_string()
}

pub(crate) fn opt_date(parent: &Element, name: &str) -> Result<Option<NaiveDate>, CodecError> {
    match parent.child(name) {
        Some(e) if !e.text.trim().is_empty() => parse_date(name, &e.text).map(Some),
        _ => Ok(None),
    }
}

pub(crate) fn opt_date_time(
    parent: &Element,
    name: &str,
) -> Result<Option<NaiveDateTime>, CodecError> {
    match parent.child(name) {
        Some(e) if !e.text.trim().is_empty() => parse_date_time(name, &e.text).map(Some),
        _ => Ok(None),
    }
}

pub(crate) fn attr_date_time(e: &Element, name: &str) -> Result<Option<NaiveDateTime>, CodecError> {
    match e.attr(name) {
        Some(v) if !v.trim().is_empty() => parse_date_time(name, v).map(Some),
        _ => Ok(None),
    }
}

pub(crate) fn parse_bool(element: &str, raw: &str) -> Result<bool, CodecError> {
    match raw.trim() {
        "true" | "True" | "TRUE" | "1" => Ok(true),
        "false" | "False" | "FALSE" | "0" => Ok(false),
        _ => Err(CodecError::InvalidValue {
            element: element.to_string(),
            reason: "expected true or false".into(),
        }),
    }
}

fn attr_string(e: &Element, name: &str) -> Option<String> {
    e.attr(name).map(str::to_string)
}

// ---------------------------------------------------------------------------------------
// Elements the codec does not model

/// An element the codec does not model, kept (with its attributes, text and children) so
/// `hubctl decode` shows it instead of dropping it, and so re-encoding keeps it. Text of an
/// element with children is trimmed: whitespace between child elements is layout, not data.
#[derive(Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct OtherElement {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<OtherElement>,
}
// Values may be patient data; the element name is not.
redacted_debug!(OtherElement; name);

impl OtherElement {
    pub(crate) fn from_element(e: &Element<'_>) -> OtherElement {
        let text = if e.children.is_empty() {
            e.text.to_string()
        } else {
            e.text.trim().to_string()
        };
        OtherElement {
            name: e.name.to_string(),
            attributes: e
                .attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            text,
            children: e.children.iter().map(OtherElement::from_element).collect(),
        }
    }

    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        let attrs: Vec<(&str, &str)> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if self.children.is_empty() {
            if self.text.is_empty() {
                return out.empty_attrs(&self.name, &attrs);
            }
            return out.leaf_attrs(&self.name, &attrs, &self.text);
        }
        out.open_attrs(&self.name, &attrs)?;
        if !self.text.is_empty() {
            out.text(&self.name, &self.text)?;
        }
        for c in &self.children {
            c.write(out)?;
        }
        out.close(&self.name);
        Ok(())
    }
}

/// The children of `e` whose names are not in `known`, in document order.
pub(crate) fn others(e: &Element, known: &[&str]) -> Vec<OtherElement> {
    e.children
        .iter()
        .filter(|c| !known.contains(&c.name.as_ref()))
        .map(OtherElement::from_element)
        .collect()
}

pub(crate) fn write_others(out: &mut XmlOut, others: &[OtherElement]) -> Result<(), CodecError> {
    for o in others {
        o.write(out)?;
    }
    Ok(())
}

fn write_all(out: &mut XmlOut, name: &str, values: &[String]) -> Result<(), CodecError> {
    for v in values {
        out.leaf(name, v)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Identity

/// Which identifier names the patient. `UncheckedNhsNumber` is what a *received* NHS number
/// becomes when its Modulus 11 check fails: the document stays decodable (SystmOne is the
/// source of truth for what it returns) but the value is never a `domain::NhsNumber`, and
/// `encode_request` refuses to send it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub enum PatientIdentifier {
    NhsNumber(NhsNumber),
    UncheckedNhsNumber(Sensitive<String>),
    PseudoNumber(Sensitive<String>),
    ClientId(Sensitive<String>),
}

impl fmt::Debug for PatientIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            PatientIdentifier::NhsNumber(_) => "NhsNumber",
            PatientIdentifier::UncheckedNhsNumber(_) => "UncheckedNhsNumber",
            PatientIdentifier::PseudoNumber(_) => "PseudoNumber",
            PatientIdentifier::ClientId(_) => "ClientId",
        };
        write!(f, "{kind}([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub id: PatientIdentifier,
    /// Sent by SystmOne in responses; read but never written in a request.
    pub strategic_reporting_identifier: Option<Sensitive<String>>,
}

impl Identity {
    pub fn nhs(number: NhsNumber) -> Self {
        Identity {
            id: PatientIdentifier::NhsNumber(number),
            strategic_reporting_identifier: None,
        }
    }
    pub fn pseudo(number: impl Into<String>) -> Self {
        Identity {
            id: PatientIdentifier::PseudoNumber(Sensitive::new(number.into())),
            strategic_reporting_identifier: None,
        }
    }
    pub fn client_id(id: impl Into<String>) -> Self {
        Identity {
            id: PatientIdentifier::ClientId(Sensitive::new(id.into())),
            strategic_reporting_identifier: None,
        }
    }

    /// The validated NHS number, if the patient is identified by one.
    pub fn nhs_number(&self) -> Option<&NhsNumber> {
        match &self.id {
            PatientIdentifier::NhsNumber(n) => Some(n),
            _ => None,
        }
    }

    /// Whether two identities name the same patient (ignores the reporting identifier).
    pub fn same_patient(&self, other: &Identity) -> bool {
        self.id == other.id
    }

    pub(crate) fn read(e: &Element) -> Result<Identity, CodecError> {
        let nhs = e.child("NhsNumber").or_else(|| e.child("NHSNumber"));
        let id = if let Some(n) = nhs {
            let raw = n.text.trim();
            match NhsNumber::parse(raw) {
                Ok(valid) => PatientIdentifier::NhsNumber(valid),
                Err(_) => PatientIdentifier::UncheckedNhsNumber(Sensitive::new(raw.to_string())),
            }
        } else if let Some(p) = e.child("PseudoNumber") {
            PatientIdentifier::PseudoNumber(Sensitive::new(p.text.trim().to_string()))
        } else if let Some(c) = e.child("ClientID") {
            PatientIdentifier::ClientId(Sensitive::new(c.text.trim().to_string()))
        } else {
            return Err(CodecError::MissingElement(
                "Identity/NhsNumber|PseudoNumber|ClientID".into(),
            ));
        };
        let strategic_reporting_identifier = e
            .trimmed_of("StrategicReportingIdentifier")
            .filter(|s| !s.is_empty())
            .map(Sensitive::new);
        Ok(Identity {
            id,
            strategic_reporting_identifier,
        })
    }

    pub(crate) fn read_opt(parent: &Element) -> Result<Option<Identity>, CodecError> {
        parent.child("Identity").map(Identity::read).transpose()
    }

    /// Requests spell it `NhsNumber` and never carry the reporting identifier; responses
    /// spell it `NHSNumber`, as SystmOne does.
    pub(crate) fn write(&self, out: &mut XmlOut, in_response: bool) -> Result<(), CodecError> {
        out.open("Identity");
        let nhs_name = if in_response {
            "NHSNumber"
        } else {
            "NhsNumber"
        };
        match &self.id {
            PatientIdentifier::NhsNumber(n) => out.leaf(nhs_name, &n.digits())?,
            PatientIdentifier::UncheckedNhsNumber(raw) => {
                if !in_response {
                    return Err(CodecError::InvalidValue {
                        element: "Identity/NhsNumber".into(),
                        reason: "the NHS number fails its check digit and will not be sent".into(),
                    });
                }
                out.leaf(nhs_name, raw.expose())?
            }
            PatientIdentifier::PseudoNumber(p) => out.leaf("PseudoNumber", p.expose())?,
            PatientIdentifier::ClientId(c) => out.leaf("ClientID", c.expose())?,
        }
        if in_response {
            if let Some(sri) = &self.strategic_reporting_identifier {
                out.leaf("StrategicReportingIdentifier", sri.expose())?;
            }
        }
        out.close("Identity");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Small value types

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Sex {
    Male,
    Female,
    Indeterminate,
    Unknown,
}

impl Sex {
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::Indeterminate => "I",
            Sex::Unknown => "U",
        }
    }
    /// Unrecognised values read as `Unknown` rather than failing the whole record.
    pub fn parse(raw: &str) -> Sex {
        match raw.trim() {
            "M" | "Male" | "male" => Sex::Male,
            "F" | "Female" | "female" => Sex::Female,
            "I" | "Indeterminate" => Sex::Indeterminate,
            _ => Sex::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordState {
    Open,
    Closed,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Open => "Open",
            RecordState::Closed => "Closed",
        }
    }
    pub(crate) fn read_opt(parent: &Element) -> Result<Option<RecordState>, CodecError> {
        match parent.trimmed_of("RecordState").as_deref() {
            None | Some("") => Ok(None),
            Some("Open") => Ok(Some(RecordState::Open)),
            Some("Closed") => Ok(Some(RecordState::Closed)),
            Some(_) => Err(CodecError::InvalidValue {
                element: "RecordState".into(),
                reason: "expected Open or Closed".into(),
            }),
        }
    }
    pub(crate) fn write_opt(
        state: Option<RecordState>,
        out: &mut XmlOut,
    ) -> Result<(), CodecError> {
        out.opt_leaf("RecordState", state.map(RecordState::as_str))
    }
}

/// `<Code Scheme="CTV3" Code="XaXXX" Term="..."/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Code {
    pub scheme: Option<String>,
    pub code: String,
    pub term: Option<String>,
}

impl Code {
    pub fn new(scheme: impl Into<String>, code: impl Into<String>) -> Self {
        Code {
            scheme: Some(scheme.into()),
            code: code.into(),
            term: None,
        }
    }
    fn read(e: &Element) -> Code {
        Code {
            scheme: attr_string(e, "Scheme"),
            code: attr_string(e, "Code").unwrap_or_default(),
            term: attr_string(e, "Term"),
        }
    }
    fn write(&self, name: &str, out: &mut XmlOut) -> Result<(), CodecError> {
        let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(3);
        if let Some(s) = &self.scheme {
            attrs.push(("Scheme", s));
        }
        attrs.push(("Code", &self.code));
        if let Some(t) = &self.term {
            attrs.push(("Term", t));
        }
        out.empty_attrs(name, &attrs)
    }
}

#[derive(Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Address {
    pub house_name: Option<String>,
    pub house_number: Option<String>,
    pub road: Option<String>,
    pub locality: Option<String>,
    pub town: Option<String>,
    pub county: Option<String>,
    pub postcode: Option<String>,
}
redacted_debug!(Address);

impl Address {
    pub(crate) fn read(e: &Element) -> Address {
        Address {
            house_name: e.text_of("HouseName"),
            house_number: e.text_of("HouseNumber"),
            road: e.text_of("Road"),
            locality: e.text_of("Locality"),
            town: e.text_of("Town"),
            county: e.text_of("County"),
            postcode: e.text_of("Postcode").or_else(|| e.text_of("PostCode")),
        }
    }
    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Address");
        out.opt_leaf("HouseName", self.house_name.as_deref())?;
        out.opt_leaf("HouseNumber", self.house_number.as_deref())?;
        out.opt_leaf("Road", self.road.as_deref())?;
        out.opt_leaf("Locality", self.locality.as_deref())?;
        out.opt_leaf("Town", self.town.as_deref())?;
        out.opt_leaf("County", self.county.as_deref())?;
        out.opt_leaf("Postcode", self.postcode.as_deref())?;
        out.close("Address");
        Ok(())
    }
}

/// Telephone element names are not in our copy of the spec; these are the ones seen in
/// captured records [seen]. A plain `<Telephone>` reads as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum TelephoneKind {
    Home,
    Mobile,
    Work,
    /// `AlternateTelephone` [seen, XSD].
    Alternate,
    Other,
}

impl TelephoneKind {
    fn element(self) -> &'static str {
        match self {
            TelephoneKind::Home => "HomeTelephone",
            TelephoneKind::Mobile => "MobileTelephone",
            TelephoneKind::Work => "WorkTelephone",
            TelephoneKind::Alternate => "AlternateTelephone",
            TelephoneKind::Other => "Telephone",
        }
    }
    fn from_element(name: &str) -> Option<TelephoneKind> {
        match name {
            "HomeTelephone" => Some(TelephoneKind::Home),
            "MobileTelephone" => Some(TelephoneKind::Mobile),
            "WorkTelephone" => Some(TelephoneKind::Work),
            "AlternateTelephone" => Some(TelephoneKind::Alternate),
            "Telephone" => Some(TelephoneKind::Other),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Telephone {
    pub kind: TelephoneKind,
    pub number: String,
}
redacted_debug!(Telephone; kind);

// ---------------------------------------------------------------------------------------
// Demographics

#[derive(Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Demographics {
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub middle_names: Option<String>,
    pub surname: Option<String>,
    pub known_as: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    /// [XSD] Present when the patient has died: a lookup must show it.
    #[serde(default)]
    pub date_of_death: Option<NaiveDate>,
    pub sex: Option<Sex>,
    /// Coded values are kept as their display term.
    pub marital_status: Option<String>,
    pub ethnicity: Option<String>,
    pub main_language: Option<String>,
    /// [seen, XSD] `Unknown` | `Yes` | `No`, kept as sent.
    #[serde(default)]
    pub english_speaker: Option<String>,
    pub address: Option<Address>,
    pub telephones: Vec<Telephone>,
    pub email_address: Option<String>,
    /// [seen, XSD] `Yes` | `No`, kept as sent.
    #[serde(default)]
    pub sms_consent: Option<String>,
    pub usual_gp_user_name: Option<String>,
    pub care_start_date: Option<NaiveDate>,
    /// [XSD] Present when the registration has ended (deregistered): a lookup must show it.
    #[serde(default)]
    pub care_end_date: Option<NaiveDate>,
    pub registration_type: Option<String>,
    /// Elements this codec does not model, as received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(Demographics);

const DEMOGRAPHICS_KNOWN: &[&str] = &[
    "Title",
    "FirstName",
    "MiddleNames",
    "Surname",
    "KnownAs",
    "DateOfBirth",
    "DateOfDeath",
    "Sex",
    "MaritalStatus",
    "Ethnicity",
    "MainLanguage",
    "EnglishSpeaker",
    "Address",
    "HomeTelephone",
    "MobileTelephone",
    "WorkTelephone",
    "AlternateTelephone",
    "Telephone",
    "EmailAddress",
    "SMSConsent",
    "UsualGPUserName",
    "CareStartDate",
    "CareEndDate",
    "RegistrationType",
];

/// A coded demographic value: the `Term` attribute, or a `<Code Term>` child, or its text;
/// found by fuzzing: an untrimmed attribute term changed after a round trip.
fn coded_term(parent: &Element, name: &str) -> Option<String> {
    let e = parent.child(name)?;
    let term = e
        .attr("Term")
        .or_else(|| e.child("Code").and_then(|c| c.attr("Term")))
        .unwrap_or(&e.text);
    // Trimmed whichever form it came in, so a value written back as text reads the same.
    Some(term.trim().to_string())
}

/// A short coded flag (`Yes`/`No`/`Unknown`), trimmed; an empty element reads as absent.
fn flag_text(parent: &Element, name: &str) -> Option<String> {
    parent.trimmed_of(name).filter(|s| !s.is_empty())
}

impl Demographics {
    /// Whether SystmOne reports the patient as deceased.
    pub fn is_deceased(&self) -> bool {
        self.date_of_death.is_some()
    }

    pub(crate) fn read(e: &Element) -> Result<Demographics, CodecError> {
        Ok(Demographics {
            title: e.text_of("Title"),
            first_name: e.text_of("FirstName"),
            middle_names: e.text_of("MiddleNames"),
            surname: e.text_of("Surname"),
            known_as: e.text_of("KnownAs"),
            date_of_birth: opt_date(e, "DateOfBirth")?,
            date_of_death: opt_date(e, "DateOfDeath")?,
            sex: e
                .trimmed_of("Sex")
                .filter(|s| !s.is_empty())
                .map(|s| Sex::parse(&s)),
            marital_status: coded_term(e, "MaritalStatus"),
            ethnicity: coded_term(e, "Ethnicity"),
            main_language: coded_term(e, "MainLanguage"),
            english_speaker: flag_text(e, "EnglishSpeaker"),
            address: e.child("Address").map(Address::read),
            telephones: e
                .children
                .iter()
                .filter_map(|c| {
                    TelephoneKind::from_element(&c.name).map(|kind| Telephone {
                        kind,
                        number: c.text.trim().to_string(),
                    })
                })
                .collect(),
            email_address: e.text_of("EmailAddress"),
            sms_consent: flag_text(e, "SMSConsent"),
            usual_gp_user_name: e.text_of("UsualGPUserName"),
            care_start_date: opt_date(e, "CareStartDate")?,
            care_end_date: opt_date(e, "CareEndDate")?,
            registration_type: e.text_of("RegistrationType"),
            other: others(e, DEMOGRAPHICS_KNOWN),
        })
    }

    /// In the XSD's order.
    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Demographics");
        out.opt_leaf("Title", self.title.as_deref())?;
        out.opt_leaf("FirstName", self.first_name.as_deref())?;
        out.opt_leaf("MiddleNames", self.middle_names.as_deref())?;
        out.opt_leaf("Surname", self.surname.as_deref())?;
        out.opt_leaf("KnownAs", self.known_as.as_deref())?;
        out.opt_leaf(
            "DateOfBirth",
            self.date_of_birth.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf(
            "DateOfDeath",
            self.date_of_death.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf("Sex", self.sex.map(Sex::code))?;
        out.opt_leaf("MaritalStatus", self.marital_status.as_deref())?;
        out.opt_leaf("Ethnicity", self.ethnicity.as_deref())?;
        out.opt_leaf("MainLanguage", self.main_language.as_deref())?;
        out.opt_leaf("EnglishSpeaker", self.english_speaker.as_deref())?;
        if let Some(a) = &self.address {
            a.write(out)?;
        }
        for t in &self.telephones {
            out.leaf(t.kind.element(), &t.number)?;
        }
        out.opt_leaf("EmailAddress", self.email_address.as_deref())?;
        out.opt_leaf("SMSConsent", self.sms_consent.as_deref())?;
        out.opt_leaf("UsualGPUserName", self.usual_gp_user_name.as_deref())?;
        out.opt_leaf(
            "CareStartDate",
            self.care_start_date.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf(
            "CareEndDate",
            self.care_end_date.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf("RegistrationType", self.registration_type.as_deref())?;
        write_others(out, &self.other)?;
        out.close("Demographics");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Clinical events

/// A coded entry [spec, seen, XSD]. `problem_severity` makes it a problem header;
/// `problem_end_date` means the problem has ended (it must not look active).
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct ClinicalCodeEntry {
    pub code: Option<Code>,
    /// `New` | `Ongoing` [seen, XSD].
    pub episodicity: Option<String>,
    pub value: Option<String>,
    pub units: Option<String>,
    /// e.g. `Major Episode` [seen, XSD].
    pub problem_severity: Option<String>,
    pub problem_end_date: Option<NaiveDate>,
    pub free_text: Option<String>,
    pub problem_uid: Option<String>,
    pub linked_problem_uids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(ClinicalCodeEntry; code, problem_uid, episodicity, problem_severity, problem_end_date);

const CLINICAL_CODE_KNOWN: &[&str] = &[
    "Code",
    "Episodicity",
    "Value",
    "Units",
    "ProblemSeverity",
    "ProblemEndDate",
    "FreeText",
    "ProblemUID",
    "LinkedProblemUID",
];

impl ClinicalCodeEntry {
    /// A problem header whose end date is set: ended, not active.
    pub fn is_ended_problem(&self) -> bool {
        self.problem_end_date.is_some()
    }

    fn read(e: &Element) -> Result<ClinicalCodeEntry, CodecError> {
        Ok(ClinicalCodeEntry {
            code: e.child("Code").map(Code::read),
            episodicity: flag_text(e, "Episodicity"),
            value: e.text_of("Value"),
            units: e.text_of("Units"),
            problem_severity: flag_text(e, "ProblemSeverity"),
            problem_end_date: opt_date(e, "ProblemEndDate")?,
            free_text: e.text_of("FreeText"),
            problem_uid: e.trimmed_of("ProblemUID"),
            linked_problem_uids: e.all_trimmed("LinkedProblemUID"),
            other: others(e, CLINICAL_CODE_KNOWN),
        })
    }

    /// In the XSD's order (ProblemUID, which the XSD lacks, after FreeText).
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("ClinicalCode");
        if let Some(c) = &self.code {
            c.write("Code", out)?;
        }
        out.opt_leaf("Episodicity", self.episodicity.as_deref())?;
        out.opt_leaf("Value", self.value.as_deref())?;
        out.opt_leaf("Units", self.units.as_deref())?;
        out.opt_leaf("ProblemSeverity", self.problem_severity.as_deref())?;
        out.opt_leaf(
            "ProblemEndDate",
            self.problem_end_date.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf("FreeText", self.free_text.as_deref())?;
        out.opt_leaf("ProblemUID", self.problem_uid.as_deref())?;
        write_all(out, "LinkedProblemUID", &self.linked_problem_uids)?;
        write_others(out, &self.other)?;
        out.close("ClinicalCode");
        Ok(())
    }
}

/// `<Drug Name="…" ProductID="…" Scheme="Multilex|Dmd" PackID="…"/>` [seen, XSD].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Drug {
    /// The drug's display name (staff-facing product data, not patient data).
    pub name: Option<String>,
    pub product_id: Option<String>,
    pub scheme: Option<String>,
    pub pack_id: Option<String>,
}

impl Drug {
    /// The real shape first; the shape our early simulator wrote (`Code`/`Term` attributes,
    /// or a `<Code>` child instead of `<Drug>`) is still read, as ProductID and Name.
    fn read(e: &Element) -> Drug {
        Drug {
            name: attr_string(e, "Name").or_else(|| attr_string(e, "Term")),
            product_id: attr_string(e, "ProductID").or_else(|| attr_string(e, "Code")),
            scheme: attr_string(e, "Scheme"),
            pack_id: attr_string(e, "PackID"),
        }
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(4);
        for (k, v) in [
            ("Name", &self.name),
            ("ProductID", &self.product_id),
            ("Scheme", &self.scheme),
            ("PackID", &self.pack_id),
        ] {
            if let Some(v) = v {
                attrs.push((k, v));
            }
        }
        out.empty_attrs("Drug", &attrs)
    }
}

/// Medication as SystmOne returns it [seen, XSD]. Read-only for the hub; written only so
/// the simulator can answer with it.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Medication {
    /// `NHS medication` | `Other medication` | `Private issue`.
    pub medication_type: Option<String>,
    pub drug: Option<Drug>,
    pub dose: Option<String>,
    pub quantity: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// [seen] Why it was stopped; present only on ended courses.
    pub end_reason: Option<String>,
    /// `<RepeatIssue/>` [XSD].
    pub repeat_issue: bool,
    pub linked_problem_uids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
// What a patient takes is patient data in context: nothing is printed.
redacted_debug!(Medication);

const MEDICATION_KNOWN: &[&str] = &[
    "MedicationType",
    "Drug",
    "Code",
    "Dose",
    "Dosage",
    "Quantity",
    "StartDate",
    "EndDate",
    "EndReason",
    "RepeatIssue",
    "LinkedProblemUID",
];

impl Medication {
    fn read(e: &Element) -> Result<Medication, CodecError> {
        Ok(Medication {
            medication_type: e.text_of("MedicationType"),
            drug: e.child("Drug").or_else(|| e.child("Code")).map(Drug::read),
            dose: e.text_of("Dose").or_else(|| e.text_of("Dosage")),
            quantity: e.text_of("Quantity"),
            start_date: opt_date(e, "StartDate")?,
            end_date: opt_date(e, "EndDate")?,
            end_reason: e.text_of("EndReason"),
            repeat_issue: e.has("RepeatIssue"),
            linked_problem_uids: e.all_trimmed("LinkedProblemUID"),
            other: others(e, MEDICATION_KNOWN),
        })
    }
    /// Always the real shape, in the XSD's order.
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Medication");
        out.opt_leaf("MedicationType", self.medication_type.as_deref())?;
        if let Some(d) = &self.drug {
            d.write(out)?;
        }
        out.opt_leaf("Dose", self.dose.as_deref())?;
        out.opt_leaf("Quantity", self.quantity.as_deref())?;
        out.opt_leaf(
            "StartDate",
            self.start_date.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf("EndDate", self.end_date.as_ref().map(fmt_date).as_deref())?;
        out.opt_leaf("EndReason", self.end_reason.as_deref())?;
        out.flag("RepeatIssue", self.repeat_issue);
        write_all(out, "LinkedProblemUID", &self.linked_problem_uids)?;
        write_others(out, &self.other)?;
        out.close("Medication");
        Ok(())
    }
}

/// In a request: `DocumentPath` (a file the SystmOne client reads) and `Comments`; in a
/// response: `FileName`, `DocumentUID` (the XSD spells it `DocumentUid`; both are read),
/// `FileSize` [seen], `Comments`.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Attachment {
    pub document_path: Option<String>,
    pub file_name: Option<String>,
    pub document_uid: Option<String>,
    /// As SystmOne sends it (bytes, as text).
    pub file_size: Option<String>,
    pub url: Option<String>,
    pub comments: Option<String>,
    pub linked_problem_uids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(Attachment; document_uid, file_size);

const ATTACHMENT_KNOWN: &[&str] = &[
    "DocumentPath",
    "FileName",
    "DocumentUID",
    "DocumentUid",
    "FileSize",
    "URL",
    "Comments",
    "LinkedProblemUID",
];

impl Attachment {
    fn read(e: &Element) -> Attachment {
        Attachment {
            document_path: e.text_of("DocumentPath"),
            file_name: e.text_of("FileName"),
            document_uid: e
                .trimmed_of("DocumentUID")
                .or_else(|| e.trimmed_of("DocumentUid")),
            file_size: e.trimmed_of("FileSize"),
            url: e.text_of("URL"),
            comments: e.text_of("Comments"),
            linked_problem_uids: e.all_trimmed("LinkedProblemUID"),
            other: others(e, ATTACHMENT_KNOWN),
        }
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Attachment");
        out.opt_leaf("DocumentPath", self.document_path.as_deref())?;
        out.opt_leaf("FileName", self.file_name.as_deref())?;
        out.opt_leaf("DocumentUID", self.document_uid.as_deref())?;
        out.opt_leaf("FileSize", self.file_size.as_deref())?;
        out.opt_leaf("URL", self.url.as_deref())?;
        out.opt_leaf("Comments", self.comments.as_deref())?;
        write_all(out, "LinkedProblemUID", &self.linked_problem_uids)?;
        write_others(out, &self.other)?;
        out.close("Attachment");
        Ok(())
    }
}

#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Letter {
    pub document_path: Option<String>,
    /// e.g. "Miscellaneous".
    pub letter_type: Option<String>,
    /// Incoming | Outgoing | Other.
    pub direction: Option<String>,
    pub date_sent_received: Option<NaiveDate>,
    pub recipient_name: Option<String>,
    pub recipient_organisation: Option<String>,
    pub file_name: Option<String>,
    pub document_uid: Option<String>,
    pub comments: Option<String>,
}
redacted_debug!(Letter; letter_type, direction, document_uid);

impl Letter {
    fn read(e: &Element) -> Result<Letter, CodecError> {
        Ok(Letter {
            document_path: e.text_of("DocumentPath"),
            letter_type: e.trimmed_of("Type"),
            direction: e.trimmed_of("Direction"),
            date_sent_received: opt_date(e, "DateSentReceived")?,
            recipient_name: e.text_of("RecipientName"),
            recipient_organisation: e.text_of("RecipientOrganisation"),
            file_name: e.text_of("FileName"),
            document_uid: e
                .trimmed_of("DocumentUID")
                .or_else(|| e.trimmed_of("DocumentUid")),
            comments: e.text_of("Comments"),
        })
    }
    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Letter");
        out.opt_leaf("DocumentPath", self.document_path.as_deref())?;
        out.opt_leaf("Type", self.letter_type.as_deref())?;
        out.opt_leaf("Direction", self.direction.as_deref())?;
        out.opt_leaf(
            "DateSentReceived",
            self.date_sent_received.as_ref().map(fmt_date).as_deref(),
        )?;
        out.opt_leaf("RecipientName", self.recipient_name.as_deref())?;
        out.opt_leaf(
            "RecipientOrganisation",
            self.recipient_organisation.as_deref(),
        )?;
        out.opt_leaf("FileName", self.file_name.as_deref())?;
        out.opt_leaf("DocumentUID", self.document_uid.as_deref())?;
        out.opt_leaf("Comments", self.comments.as_deref())?;
        out.close("Letter");
        Ok(())
    }
}

/// One `<Narrative>`: its `<Line>`s in order. The XSD allows several per Event, and real
/// SystmOne returns one padded Line per Narrative [seen]; a Narrative with no Line is an
/// empty narrative, and bare text directly inside `<Narrative>` reads as one line.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Narrative {
    pub lines: Vec<String>,
}
redacted_debug!(Narrative);

impl Narrative {
    pub fn new(lines: Vec<String>) -> Narrative {
        Narrative { lines }
    }

    fn read(n: &Element) -> Narrative {
        let lines = if n.has("Line") {
            n.children_named("Line")
                .map(|l| l.text.to_string())
                .collect()
        } else if !n.text.trim().is_empty() {
            vec![n.text.to_string()]
        } else {
            Vec::new()
        };
        Narrative { lines }
    }

    /// `read`, moving the text out of the element instead of copying it.
    fn take(n: &mut Element<'_>) -> Narrative {
        let lines = if n.has("Line") {
            n.children
                .iter_mut()
                .filter(|l| l.name == "Line")
                .map(|l| std::mem::take(&mut l.text).into_owned())
                .collect()
        } else if !n.text.trim().is_empty() {
            vec![std::mem::take(&mut n.text).into_owned()]
        } else {
            Vec::new()
        };
        Narrative { lines }
    }

    fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        if self.lines.is_empty() {
            out.empty("Narrative");
            return Ok(());
        }
        out.open("Narrative");
        for line in &self.lines {
            out.leaf("Line", line)?;
        }
        out.close("Narrative");
        Ok(())
    }
}

const EVENT_KNOWN: &[&str] = &[
    "Narrative",
    "ClinicalCode",
    "Medication",
    "Attachment",
    "Letter",
];

/// One journal event. In a request every attribute is optional (SystmOne defaults to now
/// and the logged-in user); `event_uid` is only ever set by SystmOne.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Event {
    pub date_time: Option<NaiveDateTime>,
    pub user_name: Option<String>,
    /// As sent, trailing space included (`TAPURIA, Archana (Administrator) ` [seen]).
    pub done_by: Option<String>,
    pub done_at: Option<String>,
    pub software: Option<String>,
    pub event_uid: Option<String>,
    /// Every `<Narrative>` in document order; empty = no narrative.
    pub narratives: Vec<Narrative>,
    pub clinical_codes: Vec<ClinicalCodeEntry>,
    pub medications: Vec<Medication>,
    pub attachments: Vec<Attachment>,
    pub letters: Vec<Letter>,
    /// Children this codec does not model (Reminder, Recall, Vaccination, Report, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(Event; event_uid, date_time);

impl Event {
    /// A free-text journal entry: one Narrative whose `<Line>`s are `text`'s lines.
    pub fn narrative(text: &str) -> Event {
        Event::with_lines(text.lines().map(str::to_string).collect())
    }

    /// A free-text journal entry of exactly these lines, in one Narrative.
    pub fn with_lines(lines: Vec<String>) -> Event {
        Event {
            narratives: vec![Narrative::new(lines)],
            ..Event::default()
        }
    }

    pub fn coded(code: Code, free_text: Option<String>) -> Event {
        Event {
            clinical_codes: vec![ClinicalCodeEntry {
                code: Some(code),
                free_text,
                ..Default::default()
            }],
            ..Event::default()
        }
    }

    pub fn attachment(document_path: impl Into<String>, comments: Option<String>) -> Event {
        Event {
            attachments: vec![Attachment {
                document_path: Some(document_path.into()),
                comments,
                ..Default::default()
            }],
            ..Event::default()
        }
    }

    /// Every line of every Narrative, in document order. Nothing may assume the lines come
    /// back as they were sent: SystmOne joins and pads them [seen].
    pub fn narrative_lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.narratives
            .iter()
            .flat_map(|n| n.lines.iter().map(String::as_str))
    }

    /// Whether any Narrative has a line.
    pub fn has_narrative(&self) -> bool {
        self.narrative_lines().next().is_some()
    }

    /// The narrative as one text, every line of every Narrative joined with `\n`.
    pub fn narrative_text(&self) -> String {
        self.narrative_lines().collect::<Vec<_>>().join("\n")
    }

    pub(crate) fn read(e: &Element) -> Result<Event, CodecError> {
        let narratives = e.children_named("Narrative").map(Narrative::read).collect();
        Event::read_with(e, narratives)
    }

    /// `read` of an element no longer needed: the narrative text, most of a record's
    /// bytes, is moved into the event rather than copied.
    pub(crate) fn read_owned(mut e: Element<'_>) -> Result<Event, CodecError> {
        let narratives = e
            .children
            .iter_mut()
            .filter(|c| c.name == "Narrative")
            .map(Narrative::take)
            .collect();
        Event::read_with(&e, narratives)
    }

    /// Reading narratives cannot fail, so reading them first changes no error.
    fn read_with(e: &Element, narratives: Vec<Narrative>) -> Result<Event, CodecError> {
        Ok(Event {
            date_time: attr_date_time(e, "DateTime")?,
            user_name: attr_string(e, "UserName"),
            done_by: attr_string(e, "DoneBy"),
            done_at: attr_string(e, "DoneAt"),
            software: attr_string(e, "Software"),
            event_uid: attr_string(e, "EventUID"),
            narratives,
            clinical_codes: e
                .children_named("ClinicalCode")
                .map(ClinicalCodeEntry::read)
                .collect::<Result<_, _>>()?,
            medications: e
                .children_named("Medication")
                .map(Medication::read)
                .collect::<Result<_, _>>()?,
            attachments: e
                .children_named("Attachment")
                .map(Attachment::read)
                .collect(),
            letters: e
                .children_named("Letter")
                .map(Letter::read)
                .collect::<Result<_, _>>()?,
            other: others(e, EVENT_KNOWN),
        })
    }

    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        let date_time = self.date_time.as_ref().map(fmt_date_time);
        let mut attrs: Vec<(&str, &str)> = Vec::new();
        let named = [
            ("DateTime", date_time.as_deref()),
            ("UserName", self.user_name.as_deref()),
            ("DoneBy", self.done_by.as_deref()),
            ("DoneAt", self.done_at.as_deref()),
            ("Software", self.software.as_deref()),
            ("EventUID", self.event_uid.as_deref()),
        ];
        for (k, v) in named {
            if let Some(v) = v {
                attrs.push((k, v));
            }
        }
        out.open_attrs("Event", &attrs)?;
        for m in &self.medications {
            m.write(out)?;
        }
        for c in &self.clinical_codes {
            c.write(out)?;
        }
        for l in &self.letters {
            l.write(out)?;
        }
        for a in &self.attachments {
            a.write(out)?;
        }
        for n in &self.narratives {
            n.write(out)?;
        }
        write_others(out, &self.other)?;
        out.close("Event");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Non-clinical: tasks, appointments, visits

/// A task as SystmOne returns it, as created (type, content, assignee, due) or as
/// changed (`task_uid` plus only the changed fields).
///
/// Evidence: the XSD's Task has TaskType, Due (`xs:dateTime`), Content, UserNameAssigned,
/// GroupNameAssigned and TaskUID; a real read carried only TaskUID, DateTime, TaskType,
/// Status and Content [seen]. `TeamNameAssigned` (from TPP's prose) and `Status` on an update
/// (ours) are in neither the XSD nor the capture: UNPROVEN. They are read and written
/// because the simulator accepts them and SystmOne may, but nothing may rely on SystmOne
/// honouring them until a conformance run on TPP's Demo system shows it.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Task {
    pub task_uid: Option<String>,
    /// When the task was entered (a date-time in reads [seen]).
    pub date_time: Option<NaiveDateTime>,
    pub task_type: Option<String>,
    /// e.g. "Not Started" [seen]; on an update: UNPROVEN (see above).
    pub status: Option<String>,
    /// `xs:dateTime` [XSD]: written `YYYY-MM-DDTHH:MM:SS`; a date-only value reads as midnight.
    pub due: Option<NaiveDateTime>,
    /// In reads SystmOne prefixes its own header line (`Thu 24 Sep 18:17 - SURNAME, First`)
    /// and adds a trailing newline [seen]: kept exactly as received here.
    pub content: Option<String>,
    pub user_name_assigned: Option<String>,
    pub group_name_assigned: Option<String>,
    /// UNPROVEN (see above).
    pub team_name_assigned: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(Task; task_uid, date_time, task_type, status, due);

const TASK_KNOWN: &[&str] = &[
    "TaskUID",
    "DateTime",
    "TaskType",
    "Status",
    "Due",
    "Content",
    "UserNameAssigned",
    "GroupNameAssigned",
    "TeamNameAssigned",
];

/// Who a new task goes to: exactly one of a user, a group or a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAssignee {
    User(String),
    Group(String),
    /// UNPROVEN: not in the XSD.
    Team(String),
}

impl Task {
    pub fn create(
        task_type: impl Into<String>,
        content: impl Into<String>,
        assignee: TaskAssignee,
        due: Option<NaiveDateTime>,
    ) -> Task {
        let mut task = Task {
            task_type: Some(task_type.into()),
            content: Some(content.into()),
            due,
            ..Task::default()
        };
        task.assign(assignee);
        task
    }

    /// A change to an existing task: set only the fields that change.
    pub fn update(task_uid: impl Into<String>) -> Task {
        Task {
            task_uid: Some(task_uid.into()),
            ..Task::default()
        }
    }

    pub fn assign(&mut self, assignee: TaskAssignee) {
        self.user_name_assigned = None;
        self.group_name_assigned = None;
        self.team_name_assigned = None;
        match assignee {
            TaskAssignee::User(u) => self.user_name_assigned = Some(u),
            TaskAssignee::Group(g) => self.group_name_assigned = Some(g),
            TaskAssignee::Team(t) => self.team_name_assigned = Some(t),
        }
    }

    pub(crate) fn read(e: &Element) -> Result<Task, CodecError> {
        Ok(Task {
            task_uid: e.trimmed_of("TaskUID"),
            date_time: opt_date_time(e, "DateTime")?,
            task_type: e.text_of("TaskType"),
            status: e.text_of("Status"),
            due: opt_date_time(e, "Due")?,
            content: e.text_of("Content"),
            user_name_assigned: e.text_of("UserNameAssigned"),
            group_name_assigned: e.text_of("GroupNameAssigned"),
            team_name_assigned: e.text_of("TeamNameAssigned"),
            other: others(e, TASK_KNOWN),
        })
    }

    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Task");
        out.opt_leaf("TaskUID", self.task_uid.as_deref())?;
        out.opt_leaf(
            "DateTime",
            self.date_time.as_ref().map(fmt_date_time).as_deref(),
        )?;
        out.opt_leaf("TaskType", self.task_type.as_deref())?;
        out.opt_leaf("Status", self.status.as_deref())?;
        out.opt_leaf("Due", self.due.as_ref().map(fmt_date_time).as_deref())?;
        out.opt_leaf("Content", self.content.as_deref())?;
        out.opt_leaf("UserNameAssigned", self.user_name_assigned.as_deref())?;
        out.opt_leaf("GroupNameAssigned", self.group_name_assigned.as_deref())?;
        out.opt_leaf("TeamNameAssigned", self.team_name_assigned.as_deref())?;
        write_others(out, &self.other)?;
        out.close("Task");
        Ok(())
    }
}

/// An appointment as the XSD describes it; the hub only lists them.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Appointment {
    pub appointment_uid: Option<String>,
    pub date_time: Option<NaiveDateTime>,
    /// Minutes, as sent (`xs:decimal`).
    pub duration: Option<String>,
    pub clinician: Option<String>,
    pub user_name: Option<String>,
    pub site: Option<String>,
    pub clinic_type: Option<String>,
    pub status: Option<String>,
    pub comments: Option<String>,
    pub linked_referral_uid: Option<String>,
    pub flags: Vec<String>,
    /// [ours] Not in the XSD; kept for documents written by early simulators.
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(Appointment; appointment_uid, date_time, status);

const APPOINTMENT_KNOWN: &[&str] = &[
    "AppointmentUID",
    "DateTime",
    "Duration",
    "Clinician",
    "UserName",
    "Site",
    "ClinicType",
    "Status",
    "Comments",
    "LinkedReferralUID",
    "Flag",
    "Location",
];

impl Appointment {
    pub(crate) fn read(e: &Element) -> Result<Appointment, CodecError> {
        Ok(Appointment {
            appointment_uid: e.trimmed_of("AppointmentUID"),
            date_time: opt_date_time(e, "DateTime")?,
            duration: e.trimmed_of("Duration"),
            clinician: e.text_of("Clinician"),
            user_name: e.text_of("UserName"),
            site: e.text_of("Site"),
            clinic_type: e.text_of("ClinicType"),
            status: e.text_of("Status"),
            comments: e.text_of("Comments"),
            linked_referral_uid: e.trimmed_of("LinkedReferralUID"),
            flags: e
                .children_named("Flag")
                .map(|f| f.text.to_string())
                .collect(),
            location: e.text_of("Location"),
            other: others(e, APPOINTMENT_KNOWN),
        })
    }
    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Appointment");
        out.opt_leaf(
            "DateTime",
            self.date_time.as_ref().map(fmt_date_time).as_deref(),
        )?;
        out.opt_leaf("Duration", self.duration.as_deref())?;
        out.opt_leaf("Clinician", self.clinician.as_deref())?;
        out.opt_leaf("UserName", self.user_name.as_deref())?;
        out.opt_leaf("Site", self.site.as_deref())?;
        out.opt_leaf("ClinicType", self.clinic_type.as_deref())?;
        out.opt_leaf("AppointmentUID", self.appointment_uid.as_deref())?;
        out.opt_leaf("Status", self.status.as_deref())?;
        out.opt_leaf("Comments", self.comments.as_deref())?;
        out.opt_leaf("LinkedReferralUID", self.linked_referral_uid.as_deref())?;
        write_all(out, "Flag", &self.flags)?;
        out.opt_leaf("Location", self.location.as_deref())?;
        write_others(out, &self.other)?;
        out.close("Appointment");
        Ok(())
    }
}

/// A visit as the XSD describes it; the hub only lists them.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct Visit {
    pub visit_uid: Option<String>,
    pub date_time: Option<NaiveDateTime>,
    pub duration: Option<String>,
    pub comments: Option<String>,
    pub status: Option<String>,
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}
redacted_debug!(Visit; visit_uid, date_time, status);

const VISIT_KNOWN: &[&str] = &[
    "VisitUID", "DateTime", "Duration", "Comments", "Status", "UserName",
];

impl Visit {
    pub(crate) fn read(e: &Element) -> Result<Visit, CodecError> {
        Ok(Visit {
            visit_uid: e.trimmed_of("VisitUID"),
            date_time: opt_date_time(e, "DateTime")?,
            duration: e.trimmed_of("Duration"),
            comments: e.text_of("Comments"),
            status: e.text_of("Status"),
            user_name: e.text_of("UserName"),
            other: others(e, VISIT_KNOWN),
        })
    }
    pub(crate) fn write(&self, out: &mut XmlOut) -> Result<(), CodecError> {
        out.open("Visit");
        out.opt_leaf(
            "DateTime",
            self.date_time.as_ref().map(fmt_date_time).as_deref(),
        )?;
        out.opt_leaf("Duration", self.duration.as_deref())?;
        out.opt_leaf("Comments", self.comments.as_deref())?;
        out.opt_leaf("UserName", self.user_name.as_deref())?;
        out.opt_leaf("Status", self.status.as_deref())?;
        out.opt_leaf("VisitUID", self.visit_uid.as_deref())?;
        write_others(out, &self.other)?;
        out.close("Visit");
        Ok(())
    }
}
