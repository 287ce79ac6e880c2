//! Validated free-text inputs. Each constructor refuses bad input with a message a ward
//! clinician can act on, before anything reaches the store.

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
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
    #[error("{field} contains a character that cannot be filed safely ({code}); please retype it")]
    InvisibleCharacter { field: &'static str, code: String },
    #[error(
        "'{input}' is not a due date this app accepts: the year must be between {first} and {last}"
    )]
    DueDateOutOfRange {
        input: String,
        first: i32,
        last: i32,
    },
    #[error(
        "{time} does not exist on {date}: the clocks go forward an hour then; use {suggestion} instead"
    )]
    NonexistentLocalTime {
        time: String,
        date: String,
        suggestion: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Characters XML 1.0 allows in a document (its `Char` production). The one definition the
/// SystmOne writer and reader (`systmone-wire`) and input validation share: everything
/// validation accepts is a character the writer can carry, so a frozen, approved note can
/// never be refused by our own writer after approval.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Unicode noncharacters (U+FDD0–U+FDEF and the last two code points of every plane):
/// reserved for a program's internal use, never text. XML 1.0 lets most of them through,
/// but what SystmOne or a receiving system does with them is unknown, so none is filed.
fn is_noncharacter(c: char) -> bool {
    let code = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

/// Why a character is refused in anything typed, in words for the message; `None` if it
/// is allowed. Control characters are refused separately (with their own message), before
/// this is asked. Refused, because they pass the eye but not the record:
/// - characters XML cannot carry and Unicode noncharacters (U+FFFE/U+FFFF: a note holding
///   one was approved and then refused by the writer after approval);
/// - bidirectional embeddings, overrides, isolates and direction marks (text that displays
///   in a different order from what is stored, e.g. a look-alike reference line);
/// - zero-width space, word joiner, invisible operators and the byte-order mark (invisible
///   differences between two texts that look the same).
///
/// The zero-width non-joiner and joiner (U+200C/U+200D) are part of real words in Persian,
/// Arabic and Indic scripts (and of emoji sequences), which are all non-ASCII: they are
/// allowed straight after a non-ASCII character and refused anywhere else (after a Latin
/// letter, a digit, at the start), where they do nothing visible but make two texts differ.
fn refusal(previous: Option<char>, c: char) -> Option<&'static str> {
    match c {
        '\u{202A}' | '\u{202B}' => Some("a direction embedding"),
        '\u{202C}' => Some("a direction formatting end"),
        '\u{202D}' | '\u{202E}' => Some("a direction override"),
        '\u{2066}'..='\u{2069}' => Some("a direction isolate"),
        '\u{200E}' | '\u{200F}' | '\u{061C}' => Some("an invisible direction mark"),
        '\u{200B}' => Some("a zero-width space"),
        '\u{2060}' => Some("an invisible word joiner"),
        '\u{2061}'..='\u{2064}' => Some("an invisible operator"),
        '\u{FEFF}' => Some("a zero-width no-break space (byte-order mark)"),
        '\u{200C}' | '\u{200D}' if previous.is_none_or(|p| p.is_ascii()) => {
            Some("a zero-width joiner outside a script that uses it")
        }
        c if is_noncharacter(c) => Some("a Unicode noncharacter"),
        c if !is_xml_char(c) && !c.is_control() => Some("a character SystmOne's XML cannot carry"),
        _ => None,
    }
}

/// Whether `c` is refused wherever it stands (everything [`first_refused_character`]
/// refuses, except the joiners, which depend on the character before them).
pub fn refused_character(c: char) -> bool {
    refusal(Some('\u{10000}'), c).is_some()
}

/// The first refused character of `text`, as `U+XXXX` and what it is, for the message.
pub fn first_refused_character(text: &str) -> Option<String> {
    let mut previous = None;
    for c in text.chars() {
        if let Some(what) = refusal(previous, c) {
            return Some(format!("U+{:04X}, {what}", u32::from(c)));
        }
        previous = Some(c);
    }
    None
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

/// The years a typed due date may fall in. A ward task is due within days or weeks; a year
/// outside this is a typing slip (`0001-01-01`, `20266-…`), and SystmOne would be sent a
/// date it may refuse or misfile.
pub const DUE_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Parses a due date typed by staff: `YYYY-MM-DD` (end of that day, 23:59 local),
/// `YYYY-MM-DD HH:MM`, `YYYY-MM-DDTHH:MM[:SS]`, or RFC 3339. Impossible dates
/// (2025-02-30, 25:00) and years outside [`DUE_YEARS`] are refused. The result is local
/// time, as SystmOne uses.
pub fn parse_due(input: &str) -> Result<DateTime<Local>, ValidationError> {
    parse_due_in(input, &Local)
}

/// [`parse_due`] in a given time zone: the window and `hubctl` pass `Local`; tests pass a
/// named zone so they do not depend on the machine's.
pub fn parse_due_in<Tz: TimeZone>(input: &str, zone: &Tz) -> Result<DateTime<Tz>, ValidationError> {
    use chrono::Datelike;
    let s = input.trim();
    let shown = || -> String { input.chars().take(40).collect() };
    let bad = || ValidationError::BadDate { input: shown() };
    let in_range = |year: i32| {
        if DUE_YEARS.contains(&year) {
            Ok(())
        } else {
            Err(ValidationError::DueDateOutOfRange {
                input: shown(),
                first: *DUE_YEARS.start(),
                last: *DUE_YEARS.end(),
            })
        }
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        let local = dt.with_timezone(zone);
        in_range(local.naive_local().year())?;
        return Ok(local);
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
    in_range(naive.year())?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(due) => Ok(due),
        // The clocks go back: the wall time happens twice. The earlier instant is taken: a
        // task shown as due an hour early is looked at early, while one shown due an hour
        // late may be missed; and it is what staff mean by "01:30" that night far more often
        // than not (the first 01:30 is the one on the ward clock when they plan).
        LocalResult::Ambiguous(earlier, _) => Ok(earlier),
        LocalResult::None => Err(ValidationError::NonexistentLocalTime {
            time: naive.format("%H:%M").to_string(),
            date: naive.format("%Y-%m-%d").to_string(),
            suggestion: first_existing_time_after(&naive, zone),
        }),
    }
}

/// The first whole minute after `gap` that exists in `zone` (the end of a DST gap), as
/// `HH:MM`. Gaps are at most a few hours; a zone with none found within a day says so.
fn first_existing_time_after<Tz: TimeZone>(gap: &NaiveDateTime, zone: &Tz) -> String {
    let mut candidate = chrono::Timelike::with_second(gap, 0).unwrap_or(*gap);
    for _ in 0..24 * 60 {
        let Some(next) = candidate.checked_add_signed(chrono::TimeDelta::minutes(1)) else {
            break;
        };
        candidate = next;
        if zone.from_local_datetime(&candidate).earliest().is_some() {
            return candidate.format("%H:%M").to_string();
        }
    }
    "a later time".to_owned()
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
        // Joiners are part of real words in several scripts (Persian "mi-khaham" with a
        // non-joiner), and invisible anywhere else.
        assert!(
            PatientName::parse("\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}").is_ok()
        );
        let err = PatientName::parse("Mehr\u{200C}dad").unwrap_err();
        assert!(err.to_string().contains("U+200C"), "{err}");
        assert!(StaffName::parse("\u{200D}Ann").is_err());
    }

    /// Every kind of hostile character, in every validated text that is filed, is refused
    /// with the field and the code point named.
    #[test]
    fn hostile_characters_are_refused_naming_the_field_and_code_point() {
        // Noncharacters; direction embeddings, overrides, isolates and marks; zero-width
        // characters and the byte-order mark.
        let hostile = concat!(
            "\u{FFFE}\u{FFFF}\u{FDD0}\u{FDEF}\u{1FFFE}\u{10FFFF}",
            "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}",
            "\u{200E}\u{200F}\u{061C}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
        );
        for c in hostile.chars() {
            let text = format!("Ref IH-1{c}2");
            let code = format!("U+{:04X}", u32::from(c));
            let errors = [
                ("The task title", TaskTitle::parse(&text).unwrap_err()),
                ("The staff name", StaffName::parse(&text).unwrap_err()),
                ("The bed", BedLabel::parse(&text).unwrap_err()),
                ("The patient's name", PatientName::parse(&text).unwrap_err()),
                ("The note", crate::NoteBody::parse(&text).unwrap_err()),
            ];
            for (field, err) in errors {
                let message = err.to_string();
                assert!(message.starts_with(field), "{message}");
                assert!(message.contains(&code), "{code}: {message}");
            }
        }
        // Lone C0, DEL and C1 controls are refused too (with their own message).
        for c in ['\u{0}', '\u{1}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9F}'] {
            assert!(matches!(
                crate::NoteBody::parse(&format!("a{c}b")),
                Err(ValidationError::ControlCharacters { .. })
            ));
        }
    }

    /// The shared XML predicate is XML 1.0's `Char` production.
    #[test]
    fn xml_char_is_the_xml_char_production() {
        for ok in [
            '\t',
            '\n',
            '\r',
            ' ',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
        ] {
            assert!(is_xml_char(ok), "{ok:?}");
        }
        for bad in [
            '\u{0}', '\u{8}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
        ] {
            assert!(!is_xml_char(bad), "{bad:?}");
        }
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

    /// Regression (issue 11): an RFC 3339 due date skipped the range check.
    #[test]
    fn due_dates_outside_the_accepted_years_are_refused_in_every_form() {
        for input in [
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59Z",
            "1999-12-31",
            "2101-01-01 09:00",
            "0001-01-01T00:00",
        ] {
            let err = parse_due_in(input, &chrono_tz::Europe::London).unwrap_err();
            assert!(
                matches!(err, ValidationError::DueDateOutOfRange { .. }),
                "{input}: {err:?}"
            );
            assert!(err.to_string().contains("between 2000 and 2100"), "{err}");
        }
        assert!(parse_due_in("2026-03-04T09:00:00+00:00", &chrono_tz::Europe::London).is_ok());
    }

    /// Regression (issue 11): a time in the spring DST gap got the "not a date" message.
    #[test]
    fn a_time_in_the_dst_gap_is_refused_with_the_clocks_go_forward_and_a_suggestion() {
        let london = chrono_tz::Europe::London;
        let err = parse_due_in("2027-03-28 01:30", &london).unwrap_err();
        assert_eq!(
            err,
            ValidationError::NonexistentLocalTime {
                time: "01:30".into(),
                date: "2027-03-28".into(),
                suggestion: "02:00".into(),
            }
        );
        let message = err.to_string();
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains("clocks go forward"), "{message}");
        assert!(message.contains("02:00"), "{message}");
        // The first minute after the gap is fine.
        let due = parse_due_in("2027-03-28 02:00", &london).unwrap();
        assert_eq!(due.to_rfc3339(), "2027-03-28T02:00:00+01:00");
    }

    /// When the clocks go back 01:30 happens twice; the earlier instant (BST) is taken.
    #[test]
    fn an_ambiguous_time_when_the_clocks_go_back_is_the_earlier_instant() {
        let due = parse_due_in("2027-10-31 01:30", &chrono_tz::Europe::London).unwrap();
        assert_eq!(due.to_rfc3339(), "2027-10-31T01:30:00+01:00");
    }

    /// Dates SystmOne sends outside any sane range are kept as data and never panic when
    /// turned into the ward's local time.
    #[test]
    fn extreme_dates_from_systmone_never_panic() {
        for remote in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
            let _ = crate::merge::local_due(Some(remote), None);
        }
    }

    #[test]
    fn patient_name_debug_is_redacted() {
        let n = PatientName::parse("Siân O'Brien-Smith").unwrap();
        assert_eq!(n.expose(), "Siân O'Brien-Smith");
        assert!(!format!("{n:?}").contains("Siân"));
    }
}
