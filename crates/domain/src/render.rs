//! Preview = exactly what will be filed. A SystmOne journal entry is lines of plain text
//! (`<Narrative><Line>…</Line></Narrative>`); this turns a note into those lines. Pure, so the
//! preview the clinician approves and the text the worker sends are the same function's output,
//! and the approval hash covers exactly that.
//!
//! Rules (decided here, documented for the lead):
//! - line endings are already `\n` (see `NoteBody`); a tab becomes four spaces;
//! - a line that fits in [`WRAP_WIDTH`] characters is kept as typed (trailing spaces removed),
//!   so short tables and lists keep their alignment;
//! - a longer line is wrapped at word boundaries (runs of spaces between words become one);
//!   its leading indentation (up to [`MAX_INDENT`]) is kept on its first line; a word longer
//!   than the width is hard-split;
//! - blank lines separate paragraphs: runs of them become one, and leading/trailing ones go;
//! - a correction starts with a line naming the corrected note's reference;
//! - the last line is the reference line `Inpatient Hub ref IH-…`. Reconciliation must find it
//!   however SystmOne returns the entry: real records come back with an entry's lines joined
//!   into one Line (by spaces or newlines), padded with a leading space, or split over several
//!   Narratives [seen], and may be re-wrapped. So [`narrative_carries_reference`] ignores all
//!   whitespace and line/Narrative boundaries and looks for the reference line's characters,
//!   ending at a word boundary, and not as part of a correction's first line;
//! - a note needing more than [`MAX_LINES`] lines is refused rather than split over several
//!   entries: one note = one entry keeps "filed exactly once" a single atomic fact. With the
//!   20,000-character body limit only text made mostly of blank-separated fragments hits it.

use crate::NoteBody;
use sha2::{Digest, Sha256};

/// Characters per filed line. SystmOne accepts far longer lines, but ward staff read these on
/// screen and in printouts; 100 keeps them readable.
pub const WRAP_WIDTH: usize = 100;
/// Most lines one entry may carry (including the reference line).
pub const MAX_LINES: usize = 400;
/// Leading indentation kept on a wrapped paragraph.
pub const MAX_INDENT: usize = 16;
const TAB: &str = "    ";
const REFERENCE_PREFIX: &str = "Inpatient Hub ref ";
/// Refused inside a body (all whitespace and case ignored, as reconciliation ignores them) so
/// no note can carry text that reconciliation would take for another note's reference.
const REFERENCE_MARKER: &str = "inpatienthubrefih-";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("this note would need {lines} lines in SystmOne (the limit for one entry is {max}); please split it into two notes or remove blank lines")]
    TooManyLines { lines: usize, max: usize },
    #[error("the note contains the text \"Inpatient Hub ref IH-\", which the app uses to recognise its own entries in the record; please reword that part")]
    ContainsReferenceMarker,
}

/// The line that identifies a note's entry in the record.
pub fn reference_line(reference: &str) -> String {
    format!("{REFERENCE_PREFIX}{reference}")
}

/// The first line of a correction.
pub fn correction_line(corrected_reference: &str) -> String {
    format!("Correction of the entry with {REFERENCE_PREFIX}{corrected_reference}")
}

/// The lines to file for `body`, ending with the reference line.
pub fn narrative_lines(
    body: &NoteBody,
    reference: &str,
    corrects_reference: Option<&str>,
) -> Result<Vec<String>, RenderError> {
    let squashed: String = body
        .expose()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    if squashed.contains(REFERENCE_MARKER) {
        return Err(RenderError::ContainsReferenceMarker);
    }
    let mut lines = Vec::new();
    if let Some(original) = corrects_reference {
        lines.push(correction_line(original));
    }
    lines.extend(wrap_text(body.expose(), WRAP_WIDTH));
    lines.push(reference_line(reference));
    if lines.len() > MAX_LINES {
        return Err(RenderError::TooManyLines {
            lines: lines.len(),
            max: MAX_LINES,
        });
    }
    Ok(lines)
}

/// One character of a narrative with whitespace taken out: the character (ASCII letters
/// lower-cased) and whether whitespace (or a line or Narrative boundary) came before it.
struct Squashed {
    c: char,
    spaced: bool,
}

fn squash<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Squashed> {
    let mut out = Vec::new();
    let mut spaced = true;
    for line in lines {
        for c in line.chars() {
            if c.is_whitespace() {
                spaced = true;
            } else {
                out.push(Squashed {
                    c: c.to_ascii_lowercase(),
                    spaced,
                });
                spaced = false;
            }
        }
        // A line or Narrative boundary separates words like whitespace does.
        spaced = true;
    }
    out
}

fn squash_str(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether an entry's narrative — every line of every Narrative of one event, in order —
/// carries `reference_line` as its own reference.
///
/// Tolerant of everything SystmOne is known or suspected to do to filed lines: joining them
/// with spaces or newlines, padding, re-wrapping (even inside a word), splitting them over
/// several Narratives, changing letter case. Still exact about the reference itself: the
/// match must end at a word boundary (so `IH-ab` never matches `IH-abc`), and a correction's
/// first line (`Correction of the entry with Inpatient Hub ref IH-…`), which names another
/// note's reference, never counts as that note being filed.
pub fn narrative_carries_reference<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    reference_line: &str,
) -> bool {
    let needle = squash_str(reference_line);
    if needle.is_empty() {
        return false;
    }
    let intro = {
        let whole = squash_str(&correction_line(""));
        let prefix = squash_str(REFERENCE_PREFIX);
        whole[..whole.len().saturating_sub(prefix.len())].to_vec()
    };
    let hay = squash(lines);
    if hay.len() < needle.len() {
        return false;
    }
    (0..=hay.len() - needle.len()).any(|start| {
        let end = start + needle.len();
        let matches = hay[start..end].iter().zip(&needle).all(|(h, n)| h.c == *n);
        let ends_word = hay
            .get(end)
            .is_none_or(|next| next.spaced || !(next.c.is_alphanumeric() || next.c == '-'));
        let in_correction = start >= intro.len()
            && hay[start - intro.len()..start]
                .iter()
                .zip(&intro)
                .all(|(h, i)| h.c == *i);
        matches && ends_word && !in_correction
    })
}

/// SHA-256 (lowercase hex) of the lines joined with "\n": what approval records.
pub fn text_sha256(lines: &[String]) -> String {
    hex::encode(Sha256::digest(lines.join("\n").as_bytes()))
}

/// Wraps free text into lines of at most `width` characters (see the module rules).
pub fn wrap_text(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.replace('\t', TAB);
        let line = line.trim_end();
        if line.is_empty() {
            if out.last().is_some_and(|l| !l.is_empty()) {
                out.push(String::new());
            }
            continue;
        }
        if line.chars().count() <= width {
            out.push(line.to_owned());
        } else {
            wrap_paragraph(line, width, &mut out);
        }
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

fn wrap_paragraph(line: &str, width: usize, out: &mut Vec<String>) {
    let indent_len = line
        .chars()
        .take_while(|c| c.is_whitespace())
        .count()
        .min(MAX_INDENT)
        .min(width / 2);
    let mut current = " ".repeat(indent_len);
    let mut current_len = indent_len;
    let mut has_word = false;
    for word in line.split_whitespace() {
        let word_len = word.chars().count();
        let needed = if has_word { word_len + 1 } else { word_len };
        if current_len + needed <= width {
            if has_word {
                current.push(' ');
            }
            current.push_str(word);
            current_len += needed;
            has_word = true;
            continue;
        }
        if has_word {
            out.push(std::mem::take(&mut current));
            current_len = 0;
            has_word = false;
        }
        if word_len <= width - current_len {
            current.push_str(word);
            current_len += word_len;
            has_word = true;
            continue;
        }
        // A word longer than the line (a URL, a run of characters): hard-split it.
        let mut chars = word.chars().peekable();
        while chars.peek().is_some() {
            let room = width - current_len;
            let chunk: String = chars.by_ref().take(room).collect();
            current_len += chunk.chars().count();
            current.push_str(&chunk);
            has_word = true;
            if chars.peek().is_some() {
                out.push(std::mem::take(&mut current));
                current_len = 0;
                has_word = false;
            }
        }
    }
    if has_word {
        out.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn non_ws(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn short_lines_are_kept_as_typed_and_blank_lines_collapse() {
        let lines = wrap_text("\n\nObs:  BP 120/80\n\n\n\tPlan:  review\n\n", 100);
        assert_eq!(lines, ["Obs:  BP 120/80", "", "    Plan:  review"]);
    }

    #[test]
    fn long_paragraphs_wrap_at_words_and_long_words_split() {
        let text = format!("{} {}", "word ".repeat(30).trim_end(), "x".repeat(25));
        let lines = wrap_text(&text, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines[0], "word word word word");
        assert_eq!(lines.last().unwrap(), &"x".repeat(5));
        assert_eq!(lines[lines.len() - 2], "x".repeat(20));
    }

    #[test]
    fn preview_ends_with_the_reference_and_starts_corrections_with_the_original() {
        let body = NoteBody::parse("Seen on ward round. <b>Not markup</b> & kept").unwrap();
        let lines = narrative_lines(&body, "IH-ABC", Some("IH-OLD")).unwrap();
        assert_eq!(
            lines.first().unwrap(),
            "Correction of the entry with Inpatient Hub ref IH-OLD"
        );
        assert_eq!(lines[1], "Seen on ward round. <b>Not markup</b> & kept");
        assert_eq!(lines.last().unwrap(), "Inpatient Hub ref IH-ABC");
        assert_eq!(text_sha256(&lines).len(), 64);
    }

    #[test]
    fn text_that_imitates_a_reference_or_is_too_long_is_refused() {
        let body = NoteBody::parse("see inpatient hub REF ih-123").unwrap();
        assert_eq!(
            narrative_lines(&body, "IH-1", None),
            Err(RenderError::ContainsReferenceMarker)
        );
        let body = NoteBody::parse(&"a\n\n".repeat(300)).unwrap();
        assert!(matches!(
            narrative_lines(&body, "IH-1", None),
            Err(RenderError::TooManyLines { .. })
        ));
    }

    const REF: &str = "Inpatient Hub ref IH-0123456789ab";

    #[test]
    fn the_reference_is_found_however_systmone_joins_pads_or_wraps_the_lines() {
        let sent = ["Seen on ward round.", "", "  Plan: home", REF];
        let found = |lines: &[&str]| narrative_carries_reference(lines.iter().copied(), REF);
        assert!(found(&sent), "as sent");
        assert!(found(&[
            " Seen on ward round. Plan: home Inpatient Hub ref IH-0123456789ab"
        ]));
        assert!(found(&[
            " Seen on ward round.\n\n  Plan: home\nInpatient Hub ref IH-0123456789ab\n"
        ]));
        assert!(found(&[
            "Seen on ward round.",
            "Plan: home Inpatient Hub",
            "ref IH-0123456789ab"
        ]));
        // Hard-wrapped inside the reference, upper-cased, followed by text SystmOne added.
        assert!(found(&[
            "... INPATIENT HUB REF IH-01234",
            "56789AB (added by Inpatient Hub 1.0)"
        ]));
        assert!(found(&["plan: homeInpatient Hub ref IH-0123456789ab"]));
    }

    #[test]
    fn a_longer_reference_a_correction_or_another_note_does_not_match() {
        let found = |lines: &[&str]| narrative_carries_reference(lines.iter().copied(), REF);
        assert!(!found(&["Inpatient Hub ref IH-0123456789abc"]));
        assert!(!found(&["Inpatient Hub ref IH-0123456789a"]));
        assert!(!found(&["Inpatient Hub ref IH-0123456789ab-2"]));
        assert!(!found(&[
            "IH-0123456789ab mentioned without the reference words"
        ]));
        assert!(!found(&[
            " Correction of the entry with Inpatient Hub ref IH-0123456789ab Corrected text. Inpatient Hub ref IH-ffffffffffff"
        ]));
        assert!(!found(&[]));
        assert!(!narrative_carries_reference(["anything"], ""));
        // The correction itself is found by its own reference.
        assert!(narrative_carries_reference(
            [" Correction of the entry with Inpatient Hub ref IH-0123456789ab Corrected. Inpatient Hub ref IH-ffffffffffff"],
            "Inpatient Hub ref IH-ffffffffffff"
        ));
    }

    proptest! {
        /// Whatever SystmOne does to whitespace and line boundaries, a filed note's reference
        /// is found in it, and another note's reference is not.
        #[test]
        fn filed_lines_are_found_after_any_rejoining(
            text in "[a-zA-Z0-9 .,:\n]{1,300}",
            id in 0u64..(1 << 48),
            other in 0u64..(1 << 48),
            joiner in prop::sample::select(vec![" ", "\n", "", "  \n "]),
            pad in prop::bool::ANY,
            wrap in 1usize..80,
        ) {
            let Ok(body) = NoteBody::parse(&text) else { return Ok(()) };
            let reference = format!("IH-{id:012x}");
            let Ok(lines) = narrative_lines(&body, &reference, None) else { return Ok(()) };
            let mut joined = lines.join(joiner);
            if pad { joined.insert(0, ' '); }
            let rewrapped: Vec<String> = joined
                .chars()
                .collect::<Vec<_>>()
                .chunks(wrap)
                .map(|c| c.iter().collect())
                .collect();
            let line = reference_line(&reference);
            prop_assert!(narrative_carries_reference([joined.as_str()], &line));
            prop_assert!(narrative_carries_reference(rewrapped.iter().map(String::as_str), &line));
            if other != id {
                let other_line = reference_line(&format!("IH-{other:012x}"));
                prop_assert!(!narrative_carries_reference([joined.as_str()], &other_line));
            }
        }

        #[test]
        fn wrapping_keeps_every_visible_character_in_order(text in "[a-zé<>&;\\-/ \t\n]{0,600}", width in 1usize..60) {
            let lines = wrap_text(&text, width);
            prop_assert_eq!(non_ws(&lines.concat()), non_ws(&text));
            for line in &lines {
                prop_assert!(line.chars().count() <= width, "{:?} longer than {}", line, width);
                prop_assert_eq!(line.trim_end(), line.as_str());
            }
            prop_assert!(lines.first().is_none_or(|l| !l.is_empty()));
            prop_assert!(lines.last().is_none_or(|l| !l.is_empty()));
            prop_assert!(!lines.windows(2).any(|w| w[0].is_empty() && w[1].is_empty()));
        }

        #[test]
        fn filed_lines_always_end_with_the_reference(text in "\\PC{1,2000}", id in 1u32..1_000_000) {
            if let Ok(body) = NoteBody::parse(&text) {
                let reference = format!("IH-{id:08X}");
                if let Ok(lines) = narrative_lines(&body, &reference, None) {
                    prop_assert_eq!(lines.last().unwrap(), &reference_line(&reference));
                    prop_assert!(lines.iter().all(|l| l.chars().count() <= WRAP_WIDTH));
                    prop_assert!(lines.iter().all(|l| !l.chars().any(char::is_control)));
                    prop_assert_eq!(non_ws(&lines[..lines.len() - 1].concat()), non_ws(&body.expose().replace('\t', "")));
                }
            }
        }
    }
}
