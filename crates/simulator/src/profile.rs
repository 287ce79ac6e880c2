//! Behaviour profiles: how the simulator answers where the evidence about real SystmOne
//! leaves a choice open (see "What real SystmOne returns" in the shared API notes).
//!
//! The defaults are the shapes seen in real captures; every other value is a behaviour that
//! real SystmOne might show and that the app must survive. Tests run the app against each
//! one; `hubctl sim --narrative … --task-status … --task-details … --connection …
//! --terminator …` selects them, and `hubctl simctl profile` shows or changes them while the
//! simulator runs (they are re-read for every request, like the faults).

use serde::{Deserialize, Serialize};

/// How a filed narrative's lines come back in a GetPatientRecord.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum NarrativeReadBack {
    /// One Narrative with the Lines exactly as filed [ours: what the simulator used to do].
    AsSent,
    /// One Narrative holding one Line: the lines joined with a space, blank lines dropped,
    /// some entries padded with a leading space [seen: the real capture's shape].
    #[default]
    JoinedSpaces,
    /// One Narrative holding one Line: the lines joined with newlines, padded as above.
    JoinedNewlines,
    /// One Narrative per filed line (the XSD allows several per Event).
    NarrativePerLine,
}

/// What a `<Status>` on a task update does (not in the XSD: unproven).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatusUpdate {
    /// The status changes (a `Completed` task leaves the Tasks filter) [ours].
    #[default]
    Applied,
    /// Accepted without error, but the status does not change.
    Ignored,
    /// The whole update is refused with a permanent error.
    Refused,
}

/// Whether task reads carry Due and the assignee.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum TaskDetailsInReads {
    /// Only TaskUID, DateTime, TaskType, Status and Content [seen].
    #[default]
    NotReported,
    /// Due and UserNameAssigned / GroupNameAssigned / TeamNameAssigned too.
    Reported,
}

/// What happens to the connection after a reply.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionMode {
    /// Further requests may follow on the same connection [spec].
    #[default]
    Kept,
    /// The simulator closes the connection after each reply.
    ClosedAfterReply,
}

/// What follows each response document on the socket.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseTerminator {
    /// Nothing: the reader must see the root element close [seen: a public client reads
    /// until a short receive].
    #[default]
    None,
    /// A newline.
    Newline,
    /// A literal `<EOF>` [seen: what one public client sends after requests].
    Eof,
}

impl ResponseTerminator {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            ResponseTerminator::None => b"",
            ResponseTerminator::Newline => b"\n",
            ResponseTerminator::Eof => b"<EOF>",
        }
    }
}

/// One choice for each open question; the default is the real shapes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct SimProfile {
    pub narrative: NarrativeReadBack,
    pub task_status: TaskStatusUpdate,
    pub task_details: TaskDetailsInReads,
    pub connection: ConnectionMode,
    pub terminator: ResponseTerminator,
}

impl SimProfile {
    /// Every narrative read-back, for test matrices.
    pub const NARRATIVES: [NarrativeReadBack; 4] = [
        NarrativeReadBack::AsSent,
        NarrativeReadBack::JoinedSpaces,
        NarrativeReadBack::JoinedNewlines,
        NarrativeReadBack::NarrativePerLine,
    ];

    /// The profile that answers as the simulator did before real captures were known.
    pub fn as_sent() -> SimProfile {
        SimProfile {
            narrative: NarrativeReadBack::AsSent,
            task_details: TaskDetailsInReads::Reported,
            terminator: ResponseTerminator::Newline,
            ..SimProfile::default()
        }
    }
}

/// Whether an entry gets SystmOne's leading-space padding: deterministic per event (from its
/// UID) so reads repeat, and only some entries, as in the capture.
pub fn padded(event_uid: &str) -> bool {
    event_uid.bytes().last().is_some_and(|b| b % 2 == 0)
}

/// The Narratives one filed entry reads back as, under `mode`.
pub fn narratives_for(
    lines: &[String],
    event_uid: &str,
    mode: NarrativeReadBack,
) -> Vec<Vec<String>> {
    if lines.is_empty() {
        return Vec::new();
    }
    let pad = |s: String| {
        if padded(event_uid) {
            format!(" {s}")
        } else {
            s
        }
    };
    match mode {
        NarrativeReadBack::AsSent => vec![lines.to_vec()],
        NarrativeReadBack::JoinedSpaces => {
            // Headings and paragraphs are flattened into one run of text.
            let joined = lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            vec![vec![pad(joined)]]
        }
        NarrativeReadBack::JoinedNewlines => vec![vec![pad(lines.join("\n"))]],
        NarrativeReadBack::NarrativePerLine => lines.iter().map(|l| vec![l.clone()]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<String> {
        [
            "H: Review",
            "",
            "  Plan: home",
            "Inpatient Hub ref IH-0123456789ab",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn each_narrative_mode_has_its_shape() {
        let uid_plain = "0000000000000001";
        let uid_padded = "0000000000000002";
        assert_eq!(
            narratives_for(&lines(), uid_plain, NarrativeReadBack::AsSent),
            vec![lines()]
        );
        assert_eq!(
            narratives_for(&lines(), uid_plain, NarrativeReadBack::JoinedSpaces),
            vec![vec![
                "H: Review Plan: home Inpatient Hub ref IH-0123456789ab".to_string()
            ]]
        );
        assert_eq!(
            narratives_for(&lines(), uid_padded, NarrativeReadBack::JoinedSpaces),
            vec![vec![
                " H: Review Plan: home Inpatient Hub ref IH-0123456789ab".to_string()
            ]]
        );
        assert_eq!(
            narratives_for(&lines(), uid_padded, NarrativeReadBack::JoinedNewlines),
            vec![vec![
                " H: Review\n\n  Plan: home\nInpatient Hub ref IH-0123456789ab".to_string()
            ]]
        );
        let per_line = narratives_for(&lines(), uid_plain, NarrativeReadBack::NarrativePerLine);
        assert_eq!(per_line.len(), 4);
        assert!(per_line.iter().all(|n| n.len() == 1));
        assert!(narratives_for(&[], uid_plain, NarrativeReadBack::JoinedSpaces).is_empty());
    }

    #[test]
    fn profiles_round_trip_through_json_and_default_to_the_real_shapes() {
        let p = SimProfile {
            narrative: NarrativeReadBack::NarrativePerLine,
            task_status: TaskStatusUpdate::Refused,
            task_details: TaskDetailsInReads::Reported,
            connection: ConnectionMode::ClosedAfterReply,
            terminator: ResponseTerminator::Eof,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"narrative-per-line\"") && json.contains("\"closed-after-reply\""));
        assert_eq!(serde_json::from_str::<SimProfile>(&json).unwrap(), p);
        // Settings stored before profiles existed read as the default.
        assert_eq!(
            serde_json::from_str::<SimProfile>("{}").unwrap(),
            SimProfile::default()
        );
        let d = SimProfile::default();
        assert_eq!(d.narrative, NarrativeReadBack::JoinedSpaces);
        assert_eq!(d.task_details, TaskDetailsInReads::NotReported);
        assert_eq!(d.terminator, ResponseTerminator::None);
    }
}
