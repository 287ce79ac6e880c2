//! Validated free-text inputs. Each constructor refuses bad input with a message a ward
//! clinician can act on, before anything reaches the store.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is too long ({len} characters; the limit is {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains control characters; please retype it")]
    ControlCharacters { field: &'static str },
    #[error("'{input}' is not a date and time this app understands (use YYYY-MM-DD or YYYY-MM-DD HH:MM)")]
    BadDate { input: String },
    #[error(
        "{field} contains an invisible or direction-changing character ({code}); please retype it"
    )]
    InvisibleCharacter { field: &'static str, code: String },
    #[error("{0}")]
    Other(String),
}

/// Characters refused in anything typed, because they pass the eye but not the record:
/// the XML noncharacters U+FFFE/U+FFFF (SystmOne's XML cannot carry them, so a note holding
/// one would be approved and then refused after approval); bidirectional overrides and
/// isolates and direction marks (text that displays in a different order from what is
/// stored, e.g. a look-alike reference line); the zero-width space, word joiner and
/// byte-order mark (invisible differences between two texts that look the same). Zero-width
/// (non-)joiners stay allowed: names in Persian, Indic and other scripts need them.
pub fn refused_character(c: char) -> bool {
    matches!(c,
        '\u{FFFE}' | '\u{FFFF}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200B}' | '\u{200E}' | '\u{200F}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
    )
}

/// The first refused character of `text`, as `U+XXXX`.
pub fn first_refused_character(text: &str) -> Option<String> {
    text.chars()
        .find(|c| refused_character(*c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
}

/// Trims, then checks length (in characters) and refuses control characters (tabs and
/// newlines only where `multiline`).
fn clean(
    field: &'static str,
    raw: &str,
    max: usize,
    multiline: bool,
) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(ValidationError::TooLong { field, len, max });
    }
    let bad = trimmed
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')));
    if bad {
        return Err(ValidationError::ControlCharacters { field });
    }
    if let Some(code) = first_refused_character(trimmed) {
        return Err(ValidationError::InvisibleCharacter { field, code });
    }
    Ok(trimmed.to_owned())
}

macro_rules! validated_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $multiline:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                clean($field, raw, $max, $multiline).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                $name::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_text!(/// A ward task's title.
    TaskTitle, "The task title", 200, false);
validated_text!(/// A member of staff (the current user, an assignee).
    StaffName, "The staff name", 80, false);
validated_text!(/// A bed or bay label ("Bay 2 Bed 4").
    BedLabel, "The bed", 30, false);

/// A patient's name. Not `validated_text!` because its `Debug` must be redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PatientName(String);

impl PatientName {
    pub const MAX_CHARS: usize = 120;
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        clean("The patient's name", raw, Self::MAX_CHARS, false).map(PatientName)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PatientName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatientName([redacted])")
    }
}

impl TryFrom<String> for PatientName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        PatientName::parse(&raw)
    }
}

impl From<PatientName> for String {
    fn from(v: PatientName) -> String {
        v.0
    }
}

/// Parses a due date typed by staff: `YYYY-MM-DD` (end of that day, 23:59 local),
/// `YYYY-MM-DD HH:MM`, `YYYY-MM-DDTHH:MM[:SS]`, or RFC 3339. Impossible dates
/// (2025-02-30, 25:00) are refused. The result is local time, as SystmOne uses.
pub fn parse_due(input: &str) -> Result<DateTime<Local>, ValidationError> {
    let s = input.trim();
    let bad = || ValidationError::BadDate {
        input: input.chars().take(40).collect(),
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Local));
    }
    let naive = if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_time(NaiveTime::from_hms_opt(23, 59, 0).ok_or_else(bad)?)
    } else {
        [
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
        ]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .ok_or_else(bad)?
    };
    use chrono::Datelike;
    if !(2000..=2100).contains(&naive.year()) {
        return Err(bad());
    }
    Local.from_local_datetime(&naive).earliest().ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 11): U+FFFE passed input and preview, then SystmOne's XML refused
    /// it after approval; bidi overrides made look-alike text possible.
    #[test]
    fn invisible_and_direction_changing_characters_are_refused_at_input() {
        for bad in [
            '\u{FFFE}', '\u{FFFF}', '\u{202E}', '\u{2066}', '\u{200B}', '\u{200F}', '\u{FEFF}',
            '\u{2060}',
        ] {
            let text = format!("Obs at 14{bad}:00");
            assert!(
                matches!(
                    TaskTitle::parse(&text),
                    Err(ValidationError::InvisibleCharacter { .. })
                ),
                "U+{:04X} in a title",
                u32::from(bad)
            );
            assert!(
                matches!(
                    crate::NoteBody::parse(&text),
                    Err(ValidationError::InvisibleCharacter { .. })
                ),
                "U+{:04X} in a note",
                u32::from(bad)
            );
        }
        let err = PatientName::parse("Ann\u{202E}Other").unwrap_err();
        assert!(err.to_string().contains("U+202E"), "{err}");
        // Joiners are part of real names in several scripts.
        assert!(PatientName::parse("Mehr\u{200C}dad").is_ok());
    }
    use chrono::Timelike;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(
            TaskTitle::parse("  Obs at 14:00 ").unwrap().as_str(),
            "Obs at 14:00"
        );
        assert_eq!(
            TaskTitle::parse("   "),
            Err(ValidationError::Empty {
                field: "The task title"
            })
        );
        let long = "x".repeat(201);
        assert!(matches!(
            TaskTitle::parse(&long),
            Err(ValidationError::TooLong {
                len: 201,
                max: 200,
                ..
            })
        ));
        assert!(matches!(
            TaskTitle::parse("a\u{7}b"),
            Err(ValidationError::ControlCharacters { .. })
        ));
        // Non-ASCII counts as characters, not bytes.
        assert!(TaskTitle::parse(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn due_dates_accept_staff_forms_and_refuse_impossible_ones() {
        let d = parse_due("2026-03-04").unwrap();
        assert_eq!((d.hour(), d.minute()), (23, 59));
        let d = parse_due("2026-03-04 14:30").unwrap();
        assert_eq!((d.hour(), d.minute()), (14, 30));
        assert!(parse_due("2026-02-30").is_err());
        assert!(parse_due("2026-03-04 25:00").is_err());
        assert!(parse_due("tomorrow").is_err());
        assert!(parse_due("1850-01-01").is_err());
    }

    #[test]
    fn patient_name_debug_is_redacted() {
        let n = PatientName::parse("Siân O'Brien-Smith").unwrap();
        assert_eq!(n.expose(), "Siân O'Brien-Smith");
        assert!(!format!("{n:?}").contains("Siân"));
    }
}
