//! Patient lookup: turning what staff type into a query SystmOne will accept, and laying a
//! SystmOne record beside the local ward patient so a clinician can check the match before
//! linking. Pure logic; the hub does the I/O.

use chrono::NaiveDate;
use domain::{NhsNumber, NhsNumberError};
use serde::{Deserialize, Serialize};
use store::Patient;
use systmone::codec::{Demographics, PatientSearchParams, SearchResult, Sex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    NhsNumber(#[from] NhsNumberError),
    #[error("search by NHS number, or give at least two of surname, first name, date of birth, postcode, sex and telephone")]
    TooFewCriteria,
    #[error("'{0}' is not a date of birth (use YYYY-MM-DD)")]
    BadDate(String),
    #[error("the date of birth {0} is in the future")]
    FutureDateOfBirth(NaiveDate),
    #[error("the date of birth {0} is implausibly early")]
    AncientDateOfBirth(NaiveDate),
    #[error("sex must be M or F for a SystmOne search")]
    BadSex,
    #[error("{label} may contain letters, spaces, apostrophes and hyphens only")]
    BadName {
        field: &'static str,
        label: &'static str,
    },
    #[error("'{0}' is not a UK postcode or postcode district")]
    BadPostcode(String),
    #[error("a telephone number contains digits, spaces and + only")]
    BadTelephone,
    #[error("{label} is too long")]
    TooLong {
        field: &'static str,
        label: &'static str,
    },
}

impl LookupError {
    /// The search field this error is about (`SearchInput`'s field name), if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            LookupError::NhsNumber(_) => Some("nhs_number"),
            LookupError::TooFewCriteria => None,
            LookupError::BadDate(_)
            | LookupError::FutureDateOfBirth(_)
            | LookupError::AncientDateOfBirth(_) => Some("date_of_birth"),
            LookupError::BadSex => Some("sex"),
            LookupError::BadName { field, .. } | LookupError::TooLong { field, .. } => Some(field),
            LookupError::BadPostcode(_) => Some("postcode"),
            LookupError::BadTelephone => Some("telephone"),
        }
    }
}

/// What staff typed in the lookup form (or on `hubctl search`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchInput {
    pub nhs_number: Option<String>,
    pub surname: Option<String>,
    pub first_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub postcode: Option<String>,
    pub sex: Option<String>,
    pub telephone: Option<String>,
}

/// A query SystmOne will accept.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupQuery {
    /// An exact NHS number: read with a Demographics-only GetPatientRecord (exempt from the 30 s limit).
    ByNhsNumber(NhsNumber),
    /// PatientSearch with at least two parameters (TPP refuses fewer).
    ByDetails(PatientSearchParams),
}

fn clean(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn name(
    field: &'static str,
    label: &'static str,
    raw: Option<&str>,
) -> Result<Option<String>, LookupError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().count() > 60 {
        return Err(LookupError::TooLong { field, label });
    }
    // Names may be Siân, O'Brien, Smith-Jones, Zoë: letters in any script, spaces, apostrophes (both
    // typewriter and typographic), hyphens and full stops.
    let ok = raw
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '’' | '-' | '.'));
    if !ok {
        return Err(LookupError::BadName { field, label });
    }
    Ok(Some(raw.replace('’', "'")))
}

/// Validates `input` and decides how to look the patient up. `today` bounds the date of birth.
pub fn parse_query(input: &SearchInput, today: NaiveDate) -> Result<LookupQuery, LookupError> {
    if let Some(nhs) = clean(&input.nhs_number) {
        return Ok(LookupQuery::ByNhsNumber(NhsNumber::parse(nhs)?));
    }
    let date_of_birth = clean(&input.date_of_birth)
        .map(|raw| {
            let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| LookupError::BadDate(raw.chars().take(20).collect()))?;
            if d > today {
                return Err(LookupError::FutureDateOfBirth(d));
            }
            if d < NaiveDate::from_ymd_opt(1880, 1, 1).unwrap_or(d) {
                return Err(LookupError::AncientDateOfBirth(d));
            }
            Ok(d)
        })
        .transpose()?;
    let gender = clean(&input.sex)
        .map(|s| match s.to_ascii_uppercase().as_str() {
            "M" | "MALE" => Ok(Sex::Male),
            "F" | "FEMALE" => Ok(Sex::Female),
            _ => Err(LookupError::BadSex),
        })
        .transpose()?;
    let post_code = clean(&input.postcode)
        .map(|raw| {
            let upper = raw.to_ascii_uppercase();
            let compact: String = upper.chars().filter(|c| !c.is_whitespace()).collect();
            let valid = (2..=7).contains(&compact.len())
                && compact.chars().all(|c| c.is_ascii_alphanumeric())
                && compact
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic());
            if valid {
                Ok(upper.split_whitespace().collect::<Vec<_>>().join(" "))
            } else {
                Err(LookupError::BadPostcode(raw.chars().take(12).collect()))
            }
        })
        .transpose()?;
    let telephone = clean(&input.telephone)
        .map(|raw| {
            let ok = raw
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '+')
                && raw.chars().filter(char::is_ascii_digit).count() >= 6;
            if ok {
                Ok(raw.replace(' ', ""))
            } else {
                Err(LookupError::BadTelephone)
            }
        })
        .transpose()?;
    let params = PatientSearchParams {
        first_name: name("first_name", "The first name", clean(&input.first_name))?,
        surname: name("surname", "The surname", clean(&input.surname))?,
        date_of_birth,
        post_code,
        telephone,
        gender,
    };
    if params.criteria_count() < 2 {
        return Err(LookupError::TooFewCriteria);
    }
    Ok(LookupQuery::ByDetails(params))
}

impl LookupQuery {
    /// What was asked, for the audit row of the read: the validated criteria exactly as sent
    /// to SystmOne (never what came back). Criteria not given are left out.
    pub fn audit_criteria(&self) -> serde_json::Value {
        match self {
            LookupQuery::ByNhsNumber(nhs) => serde_json::json!({ "nhs_number": nhs.digits() }),
            LookupQuery::ByDetails(p) => {
                let mut criteria = serde_json::Map::new();
                let given = [
                    ("surname", p.surname.clone()),
                    ("first_name", p.first_name.clone()),
                    ("date_of_birth", p.date_of_birth.map(|d| d.to_string())),
                    ("postcode", p.post_code.clone()),
                    ("telephone", p.telephone.clone()),
                    ("sex", p.gender.map(|g| g.code().to_owned())),
                ];
                for (field, value) in given {
                    if let Some(value) = value {
                        criteria.insert(field.to_owned(), value.into());
                    }
                }
                serde_json::Value::Object(criteria)
            }
        }
    }
}

/// One row of the results list.
#[derive(Debug, Clone, Serialize)]
pub struct LookupResult {
    pub nhs_number: Option<NhsNumber>,
    pub nhs_number_formatted: Option<String>,
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<String>,
    pub address: String,
    /// True when this row is the exact NHS number searched for.
    pub exact_nhs_match: bool,
    /// Deceased / registration ended, when SystmOne said so (only a demographics read can:
    /// PatientSearch results do not carry these facts).
    pub warnings: Vec<RecordWarning>,
}

/// What a clinician must see before linking or filing: the patient has died, or is no
/// longer registered. From SystmOne's `DateOfDeath` and `CareEndDate` [XSD].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordWarning {
    /// `deceased` | `registration_ended`: stable, for the UI to style.
    pub kind: &'static str,
    pub date: NaiveDate,
    /// Ready to show, e.g. "Deceased (date of death 2026-01-02)".
    pub message: String,
}

/// The warnings SystmOne's demographics call for, most serious first.
pub fn record_warnings(d: &Demographics) -> Vec<RecordWarning> {
    let mut out = Vec::new();
    if let Some(date) = d.date_of_death {
        out.push(RecordWarning {
            kind: "deceased",
            date,
            message: format!("Deceased (date of death {})", date.format("%Y-%m-%d")),
        });
    }
    if let Some(date) = d.care_end_date {
        out.push(RecordWarning {
            kind: "registration_ended",
            date,
            message: format!("Registration ended {}", date.format("%Y-%m-%d")),
        });
    }
    out
}

fn full_name(first: Option<&str>, surname: Option<&str>) -> String {
    [first, surname]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn one_line_address(a: Option<&systmone::codec::Address>) -> String {
    a.map(|a| {
        [
            &a.house_name,
            &a.house_number,
            &a.road,
            &a.locality,
            &a.town,
            &a.county,
            &a.postcode,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
    })
    .unwrap_or_default()
}

pub fn result_from_search(r: &SearchResult) -> LookupResult {
    let nhs = r.identity.as_ref().and_then(|i| i.nhs_number()).cloned();
    LookupResult {
        nhs_number_formatted: nhs.as_ref().map(NhsNumber::formatted),
        nhs_number: nhs,
        name: full_name(r.first_name.as_deref(), r.surname.as_deref()),
        date_of_birth: r.date_of_birth,
        sex: r.sex.map(|s| s.code().to_owned()),
        address: one_line_address(r.address.as_ref()),
        exact_nhs_match: false,
        warnings: Vec::new(),
    }
}

pub fn result_from_demographics(nhs: &NhsNumber, d: &Demographics) -> LookupResult {
    LookupResult {
        nhs_number: Some(nhs.clone()),
        nhs_number_formatted: Some(nhs.formatted()),
        name: full_name(d.first_name.as_deref(), d.surname.as_deref()),
        date_of_birth: d.date_of_birth,
        sex: d.sex.map(|s| s.code().to_owned()),
        address: one_line_address(d.address.as_ref()),
        exact_nhs_match: true,
        warnings: record_warnings(d),
    }
}

/// One field of the side-by-side review.
#[derive(Debug, Clone, Serialize)]
pub struct FieldComparison {
    pub label: &'static str,
    pub local: Option<String>,
    pub systmone: Option<String>,
    /// Both sides have a value and they differ (after ignoring case and spacing): highlighted.
    pub differs: bool,
}

/// The review shown before a clinician confirms a link.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReview {
    pub patient: Patient,
    pub nhs_number: NhsNumber,
    pub nhs_number_formatted: String,
    pub fields: Vec<FieldComparison>,
    pub demographics: Demographics,
    /// True when any compared field differs: the UI asks for explicit confirmation.
    pub any_differences: bool,
    /// Deceased / registration ended: to be shown prominently above the comparison.
    pub warnings: Vec<RecordWarning>,
    /// SystmOne's date of death, if the patient has died.
    pub date_of_death: Option<NaiveDate>,
    /// SystmOne's end of registration (CareEndDate), if the registration has ended.
    pub registration_ended: Option<NaiveDate>,
}

fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace('’', "'")
}

fn compare(
    label: &'static str,
    local: Option<String>,
    systmone: Option<String>,
) -> FieldComparison {
    let differs = matches!((&local, &systmone), (Some(a), Some(b)) if normalise(a) != normalise(b));
    FieldComparison {
        label,
        local,
        systmone,
        differs,
    }
}

/// Lays SystmOne's demographics beside the local patient (and the cached demographics of a
/// previous link, when refreshing) field by field.
pub fn review(
    patient: Patient,
    nhs: NhsNumber,
    fresh: Demographics,
    cached: Option<&Demographics>,
) -> MatchReview {
    let mut fields = vec![
        compare(
            "Name",
            Some(patient.name.expose().to_owned()),
            Some(full_name(
                fresh.first_name.as_deref(),
                fresh.surname.as_deref(),
            )),
        ),
        compare(
            "NHS number",
            patient.nhs_number.as_ref().map(NhsNumber::formatted),
            Some(nhs.formatted()),
        ),
    ];
    let date = |d: Option<NaiveDate>| d.map(|d| d.format("%d %b %Y").to_string());
    let sex = |d: &Demographics| d.sex.map(|s| s.code().to_owned());
    let addr =
        |d: &Demographics| Some(one_line_address(d.address.as_ref())).filter(|s| !s.is_empty());
    fields.push(compare(
        "Date of birth",
        cached.and_then(|c| date(c.date_of_birth)),
        date(fresh.date_of_birth),
    ));
    fields.push(compare("Sex", cached.and_then(sex), sex(&fresh)));
    fields.push(compare("Address", cached.and_then(addr), addr(&fresh)));
    fields.push(compare(
        "Usual GP",
        cached.and_then(|c| c.usual_gp_user_name.clone()),
        fresh.usual_gp_user_name.clone(),
    ));
    // Shown side by side too, so a death or deregistration recorded since the last link
    // stands out as a change.
    fields.push(compare(
        "Date of death",
        cached.and_then(|c| date(c.date_of_death)),
        date(fresh.date_of_death),
    ));
    fields.push(compare(
        "Registration ended",
        cached.and_then(|c| date(c.care_end_date)),
        date(fresh.care_end_date),
    ));
    let any_differences = fields.iter().any(|f| f.differs);
    let warnings = record_warnings(&fresh);
    MatchReview {
        warnings,
        date_of_death: fresh.date_of_death,
        registration_ended: fresh.care_end_date,
        nhs_number_formatted: nhs.formatted(),
        patient,
        nhs_number: nhs,
        fields,
        demographics: fresh,
        any_differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn input(f: impl FnOnce(&mut SearchInput)) -> SearchInput {
        let mut i = SearchInput::default();
        f(&mut i);
        i
    }

    #[test]
    fn an_nhs_number_is_checked_before_anything_is_sent() {
        let q = parse_query(
            &input(|i| i.nhs_number = Some("943 476 5919".into())),
            today(),
        )
        .unwrap();
        assert!(matches!(q, LookupQuery::ByNhsNumber(_)));
        let err = parse_query(
            &input(|i| i.nhs_number = Some("943 476 5918".into())),
            today(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            LookupError::NhsNumber(NhsNumberError::BadCheckDigit)
        ));
    }

    #[test]
    fn one_field_is_refused_two_are_accepted() {
        let err = parse_query(&input(|i| i.surname = Some("Smith".into())), today()).unwrap_err();
        assert_eq!(err, LookupError::TooFewCriteria);
        let q = parse_query(
            &input(|i| {
                i.surname = Some("O’Brien-Jones".into());
                i.first_name = Some("Siân".into());
            }),
            today(),
        )
        .unwrap();
        let LookupQuery::ByDetails(p) = q else {
            panic!("details search")
        };
        assert_eq!(p.surname.as_deref(), Some("O'Brien-Jones"));
        assert_eq!(p.first_name.as_deref(), Some("Siân"));
    }

    #[test]
    fn bad_dates_names_and_postcodes_are_clear_errors() {
        let future = parse_query(
            &input(|i| {
                i.surname = Some("Smith".into());
                i.date_of_birth = Some("2027-01-01".into())
            }),
            today(),
        );
        assert!(matches!(future, Err(LookupError::FutureDateOfBirth(_))));
        let ancient = parse_query(
            &input(|i| {
                i.surname = Some("Smith".into());
                i.date_of_birth = Some("0001-01-01".into())
            }),
            today(),
        );
        assert!(matches!(ancient, Err(LookupError::AncientDateOfBirth(_))));
        let bad = parse_query(
            &input(|i| {
                i.surname = Some("Smith".into());
                i.date_of_birth = Some("31/01/1980".into())
            }),
            today(),
        );
        assert!(matches!(bad, Err(LookupError::BadDate(_))));
        let markup = parse_query(
            &input(|i| {
                i.surname = Some("<script>".into());
                i.first_name = Some("A".into())
            }),
            today(),
        );
        assert!(matches!(markup, Err(LookupError::BadName { .. })));
        let pc = parse_query(
            &input(|i| {
                i.surname = Some("Smith".into());
                i.postcode = Some("!!".into())
            }),
            today(),
        );
        assert!(matches!(pc, Err(LookupError::BadPostcode(_))));
        let ok = parse_query(
            &input(|i| {
                i.surname = Some("Smith".into());
                i.postcode = Some("ls1  4ab".into())
            }),
            today(),
        )
        .unwrap();
        let LookupQuery::ByDetails(p) = ok else {
            panic!()
        };
        assert_eq!(p.post_code.as_deref(), Some("LS1 4AB"));
    }

    #[test]
    fn review_highlights_differences_only_where_both_sides_have_values() {
        use domain::{BedLabel, PatientId, PatientName};
        let patient = Patient {
            id: PatientId(1),
            bed: BedLabel::parse("Bed 1").unwrap(),
            name: PatientName::parse("ann o'neill").unwrap(),
            nhs_number: None,
            created_at: chrono::Local::now(),
            created_by: "x".into(),
            systmone_linked_at: None,
            systmone_linked_by: None,
            demographics_as_of: None,
        };
        let fresh = Demographics {
            first_name: Some("Ann".into()),
            surname: Some("O'Neill".into()),
            ..Default::default()
        };
        let r = review(
            patient.clone(),
            NhsNumber::parse("9434765919").unwrap(),
            fresh,
            None,
        );
        assert!(!r.any_differences, "{:?}", r.fields);
        let other = Demographics {
            first_name: Some("Anne".into()),
            surname: Some("Neill".into()),
            ..Default::default()
        };
        let r = review(
            patient,
            NhsNumber::parse("9434765919").unwrap(),
            other,
            None,
        );
        assert!(r.fields[0].differs);
        assert!(r.any_differences);
    }

    fn ward_patient() -> Patient {
        use domain::{BedLabel, PatientId, PatientName};
        Patient {
            id: PatientId(1),
            bed: BedLabel::parse("Bed 1").unwrap(),
            name: PatientName::parse("Ffion Testwright").unwrap(),
            nhs_number: None,
            created_at: chrono::Local::now(),
            created_by: "x".into(),
            systmone_linked_at: None,
            systmone_linked_by: None,
            demographics_as_of: None,
        }
    }

    #[test]
    fn review_warns_prominently_of_death_and_ended_registration() {
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let fresh = Demographics {
            first_name: Some("Ffion".into()),
            surname: Some("Testwright".into()),
            date_of_death: NaiveDate::from_ymd_opt(2026, 1, 2),
            care_end_date: NaiveDate::from_ymd_opt(2025, 3, 4),
            ..Default::default()
        };
        let r = review(ward_patient(), nhs.clone(), fresh.clone(), None);
        let messages: Vec<&str> = r.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Deceased (date of death 2026-01-02)",
                "Registration ended 2025-03-04"
            ]
        );
        assert_eq!(r.warnings[0].kind, "deceased");
        assert_eq!(r.warnings[1].kind, "registration_ended");
        assert_eq!(r.date_of_death, NaiveDate::from_ymd_opt(2026, 1, 2));
        assert_eq!(r.registration_ended, NaiveDate::from_ymd_opt(2025, 3, 4));
        // In the JSON the window receives.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["warnings"][0]["message"],
            "Deceased (date of death 2026-01-02)"
        );
        assert_eq!(json["date_of_death"], "2026-01-02");
        assert_eq!(json["registration_ended"], "2025-03-04");
        // A death recorded since the cached link shows as a difference.
        let before = Demographics {
            date_of_death: None,
            ..fresh.clone()
        };
        let r = review(ward_patient(), nhs.clone(), fresh.clone(), Some(&before));
        let death = r
            .fields
            .iter()
            .find(|f| f.label == "Date of death")
            .unwrap();
        assert_eq!(death.systmone.as_deref(), Some("02 Jan 2026"));
        // The exact-NHS-number lookup row carries the same warnings.
        assert_eq!(result_from_demographics(&nhs, &fresh).warnings.len(), 2);
    }

    #[test]
    fn a_living_registered_patient_has_no_warnings() {
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let r = review(ward_patient(), nhs.clone(), Demographics::default(), None);
        assert!(r.warnings.is_empty() && r.date_of_death.is_none());
        assert!(result_from_demographics(&nhs, &Demographics::default())
            .warnings
            .is_empty());
    }
}
