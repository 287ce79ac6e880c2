//! Case notes as staff draft, approve and file them, and the roles that decide who may
//! approve alone. The text of a note is patient data: `Debug` never shows it.

use super::{NoteId, OutboxId, PatientId, Sensitive, ValidationError};
use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

/// The body of a case note as typed. Validated on every save:
/// - empty (or whitespace only) is refused;
/// - longer than [`NoteBody::MAX_CHARS`] characters is refused, with the length;
/// - control characters are refused, except newline and tab; `\r\n` and a lone `\r` are
///   normalised to `\n` (text pasted from Windows applications carries them), as are the
///   Unicode line and paragraph separators;
/// - anything else, including text that looks like XML or HTML, is kept verbatim: escaping
///   is the SystmOne codec's job and the window renders notes with `textContent`.
///
/// Unlike the one-line inputs, the body is not trimmed: leading indentation can be meaningful.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteBody(String);

impl NoteBody {
    pub const MAX_CHARS: usize = 20_000;
    const FIELD: &'static str = "The note";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let normalised = raw
            .replace("\r\n", "\n")
            .replace(['\r', '\u{2028}', '\u{2029}'], "\n");
        if normalised.trim().is_empty() {
            return Err(ValidationError::Empty { field: Self::FIELD });
        }
        let len = normalised.chars().count();
        if len > Self::MAX_CHARS {
            return Err(ValidationError::TooLong {
                field: Self::FIELD,
                len,
                max: Self::MAX_CHARS,
            });
        }
        if normalised
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ValidationError::ControlCharacters { field: Self::FIELD });
        }
        if let Some(code) = crate::text::first_refused_character(&normalised) {
            return Err(ValidationError::InvisibleCharacter {
                field: Self::FIELD,
                code,
            });
        }
        Ok(NoteBody(normalised))
    }

    /// Deliberate access to patient data.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl std::fmt::Debug for NoteBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteBody([redacted], {} chars)", self.0.chars().count())
    }
}

impl TryFrom<String> for NoteBody {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        NoteBody::parse(&raw)
    }
}

impl From<NoteBody> for String {
    fn from(v: NoteBody) -> String {
        v.0
    }
}

/// Where a note is in its life. The outbox entry (once approved) says how filing is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    /// Editable; autosaved.
    Draft,
    /// Approved by a student or HCA while the ward requires co-signature; frozen, not queued.
    AwaitingCosignature,
    /// Approved (and co-signed if needed); frozen; its outbox entry is filing it.
    Approved,
    /// In the SystmOne record (by the API, by reconciliation, or pasted by a clinician).
    Filed,
}

impl NoteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteStatus::Draft => "draft",
            NoteStatus::AwaitingCosignature => "awaiting_cosignature",
            NoteStatus::Approved => "approved",
            NoteStatus::Filed => "filed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Some(NoteStatus::Draft),
            "awaiting_cosignature" => Some(NoteStatus::AwaitingCosignature),
            "approved" => Some(NoteStatus::Approved),
            "filed" => Some(NoteStatus::Filed),
            _ => None,
        }
    }
}

/// How a filed note reached the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FiledHow {
    /// SystmOne answered the UpdatePatientRecord.
    Api,
    /// The answer was lost; the entry was found by reading the record back.
    Reconciled,
    /// A clinician pasted it (clipboard path) or confirmed it is in the record.
    Manual,
}

impl FiledHow {
    pub fn as_str(self) -> &'static str {
        match self {
            FiledHow::Api => "api",
            FiledHow::Reconciled => "reconciled",
            FiledHow::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(FiledHow::Api),
            "reconciled" => Some(FiledHow::Reconciled),
            "manual" => Some(FiledHow::Manual),
            _ => None,
        }
    }
}

/// A clinical role, as far as approval rules care. It comes from SystmOne's logged-on user's
/// role through the administrator's role map (hub `identity`), never from anything typed in the
/// app; [`Role::parse`] only reads back what the store recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Student,
    /// Healthcare assistant / support worker.
    Hca,
    /// A registered clinician (nurse, doctor, AHP, pharmacist, psychologist...).
    Registered,
    /// Not recognised. Treated as needing co-signature when the ward requires it: an unknown
    /// role must not silently bypass the ward's rule.
    Unknown,
}

impl Role {
    /// Reads a role recorded by [`Role::as_str`]. Anything else is `Unknown` (the least
    /// privilege): SystmOne's role names are mapped by the role map, not guessed from words.
    pub fn parse(raw: &str) -> Role {
        match raw.trim() {
            "student" => Role::Student,
            "hca" => Role::Hca,
            "registered" => Role::Registered,
            _ => Role::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Hca => "hca",
            Role::Registered => "registered",
            Role::Unknown => "unknown",
        }
    }

    /// Whether a note approved by this role waits for a registered clinician's co-signature.
    pub fn needs_cosignature(self, ward_requires_cosignature: bool) -> bool {
        ward_requires_cosignature && self != Role::Registered
    }
}

/// How an approved note will reach SystmOne.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingRoute {
    /// Queued in the outbox and filed through the Client Integration API.
    Api,
    /// The API is switched off: the clinician copies the text and pastes it into SystmOne.
    Clipboard,
}

#[derive(Clone, Serialize)]
pub struct Note {
    pub id: NoteId,
    pub patient_id: PatientId,
    /// The template it started from, if any (its name at the time).
    pub template: Option<String>,
    pub body: NoteBody,
    pub status: NoteStatus,
    /// Unique per note ("IH-…"); filed with the note so it can be found when reading back.
    pub reference: String,
    pub corrects_note: Option<NoteId>,
    pub created_at: DateTime<Local>,
    pub created_by: String,
    pub updated_at: DateTime<Local>,
    /// Bumped on every draft save; lets an autosave detect a stale copy.
    pub version: i64,
    pub approved_at: Option<DateTime<Local>>,
    pub approved_by: Option<String>,
    pub approved_role: Option<Role>,
    /// SHA-256 (hex) of the filed lines joined with "\n".
    pub text_sha256: Option<String>,
    pub cosigned_at: Option<DateTime<Local>>,
    pub cosigned_by: Option<String>,
    pub filed_at: Option<DateTime<Local>>,
    pub filed_how: Option<FiledHow>,
    pub filed_event_uid: Option<String>,
    pub outbox_id: Option<OutboxId>,
}

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Note")
            .field("id", &self.id)
            .field("patient_id", &self.patient_id)
            .field("status", &self.status)
            .field("reference", &self.reference)
            .field("body", &self.body)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A ward template: data, editable by the ward, never deleted (retired instead).
#[derive(Debug, Clone, Serialize)]
pub struct NoteTemplate {
    pub id: i64,
    pub name: String,
    /// Not patient data (it is the ward's form), so it is not redacted.
    pub body: String,
    pub retired: bool,
    pub updated_at: DateTime<Local>,
    pub updated_by: String,
    pub version: i64,
}

/// The identity an approved note is filed against, frozen at approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingPayload {
    pub note_id: NoteId,
    /// Absent only on the clipboard path for a patient not yet linked to SystmOne.
    pub nhs_number: Option<super::NhsNumber>,
    pub lines: Sensitive<Vec<String>>,
    /// The exact line that identifies this note in the record ("Inpatient Hub ref IH-…").
    pub reference_line: String,
    pub text_sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_normalises_line_endings_and_refuses_bad_input() {
        assert_eq!(NoteBody::parse("a\r\nb\rc").unwrap().expose(), "a\nb\nc");
        assert_eq!(
            NoteBody::parse(" \n\t "),
            Err(ValidationError::Empty { field: "The note" })
        );
        assert!(matches!(
            NoteBody::parse(&"x".repeat(20_001)),
            Err(ValidationError::TooLong {
                len: 20_001,
                max: 20_000,
                ..
            })
        ));
        assert!(NoteBody::parse(&"é".repeat(20_000)).is_ok());
        assert!(matches!(
            NoteBody::parse("a\u{0}b"),
            Err(ValidationError::ControlCharacters { .. })
        ));
        assert!(matches!(
            NoteBody::parse("a\u{1b}[31mred"),
            Err(ValidationError::ControlCharacters { .. })
        ));
        let markup = "<Line>&amp; <script>alert(1)</script> ]]>";
        assert_eq!(NoteBody::parse(markup).unwrap().expose(), markup);
        assert_eq!(
            NoteBody::parse("\tindented").unwrap().expose(),
            "\tindented"
        );
    }

    #[test]
    fn body_debug_is_redacted() {
        let body = NoteBody::parse("Patient said something private").unwrap();
        let printed = format!("{body:?}");
        assert!(!printed.contains("private"), "{printed}");
    }

    #[test]
    fn roles_parse_from_systmone_names() {
        for role in [Role::Student, Role::Hca, Role::Registered, Role::Unknown] {
            assert_eq!(Role::parse(role.as_str()), role);
        }
        // Free text is never guessed into a role: the role map does that, in the hub.
        assert_eq!(Role::parse("Registered Nurse"), Role::Unknown);
        assert_eq!(Role::parse("Consultant"), Role::Unknown);
        assert_eq!(Role::parse(""), Role::Unknown);
        assert!(Role::Student.needs_cosignature(true));
        assert!(Role::Unknown.needs_cosignature(true));
        assert!(!Role::Registered.needs_cosignature(true));
        assert!(!Role::Student.needs_cosignature(false));
    }
}
