//! The byte encoding of a document, settled before parsing.
//!
//! Evidence: TPP's documents and our captures are UTF-8 with an `encoding="utf-8"`
//! declaration, but the encoding of real responses on the socket is one of the things still
//! to be probed on TPP's Demo system (SystmOne is a Windows program). So, rather than let the
//! parser guess:
//! - a UTF-8 byte-order mark, a UTF-8 (or US-ASCII) declaration, or none: the bytes must be
//!   valid UTF-8, else the document is refused, naming the first bad byte;
//! - a UTF-16 byte-order mark: decoded (a `hubctl decode` of a file saved by a Windows tool);
//! - a declared Windows-1252 / ISO-8859-1 (which WHATWG reads as Windows-1252): transcoded;
//!   but if such a document's bytes are also valid UTF-8 with non-ASCII characters, the
//!   declaration and the bytes disagree and it is refused rather than turned into mojibake;
//! - any other declared encoding: refused, naming it.
//!
//! A refusal is a `CodecError::Encoding`, never a panic or a silently misread value.

use super::CodecError;
use std::borrow::Cow;

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// Windows-1252 for 0x80..=0x9F; the five undefined bytes map to the C1 control of the same
/// value, as WHATWG's decoder does.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

fn refuse(message: impl Into<String>) -> CodecError {
    CodecError::Encoding(message.into())
}

/// The document as UTF-8 text, or a clear refusal.
pub(crate) fn to_utf8(bytes: &[u8]) -> Result<Cow<'_, str>, CodecError> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return require_utf8(rest, "it starts with a UTF-8 byte-order mark").map(Cow::Borrowed);
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return utf16(bytes).map(Cow::Owned);
    }
    let declared = declared_encoding(bytes).map(|e| e.to_ascii_lowercase());
    match declared.as_deref() {
        None => require_utf8(
            bytes,
            "no encoding is declared, so XML's default UTF-8 applies",
        )
        .map(Cow::Borrowed),
        Some("utf-8" | "utf8") => require_utf8(bytes, "it declares UTF-8").map(Cow::Borrowed),
        Some("us-ascii" | "ascii") => match bytes.iter().position(|b| !b.is_ascii()) {
            None => require_utf8(bytes, "it declares US-ASCII").map(Cow::Borrowed),
            Some(at) => Err(refuse(format!(
                "it declares US-ASCII but byte {at} is not ASCII"
            ))),
        },
        Some(
            "windows-1252" | "cp1252" | "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "l1",
        ) => cp1252(bytes),
        Some(name) if name.starts_with("utf-16") => Err(refuse(format!(
            "it declares {name} but has no byte-order mark"
        ))),
        Some(name) => Err(refuse(format!(
            "it declares the encoding {:?}; only UTF-8 and Windows-1252 are read",
            name.chars().take(40).collect::<String>()
        ))),
    }
}

fn require_utf8<'a>(bytes: &'a [u8], why: &str) -> Result<&'a str, CodecError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => Err(refuse(format!(
            "byte {} is not valid UTF-8 ({why}); it may be Windows-1252 text without a declaration saying so",
            e.valid_up_to()
        ))),
    }
}

fn cp1252(bytes: &[u8]) -> Result<Cow<'_, str>, CodecError> {
    if bytes.is_ascii() {
        return require_utf8(bytes, "it is ASCII").map(Cow::Borrowed);
    }
    if std::str::from_utf8(bytes).is_ok() {
        // Both readings are possible and give different text: refuse rather than guess.
        return Err(refuse(
            "it declares Windows-1252 but its bytes are UTF-8 text; refusing rather than guessing which is meant",
        ));
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    for &b in bytes {
        let c = match b {
            0x00..=0x7F => char::from(b),
            0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        };
        out.push(c);
    }
    Ok(Cow::Owned(out))
}

fn utf16(bytes: &[u8]) -> Result<String, CodecError> {
    let big_endian = bytes.starts_with(&[0xFE, 0xFF]);
    let body = &bytes[2..];
    if !body.len().is_multiple_of(2) {
        return Err(refuse("UTF-16 text with an odd number of bytes"));
    }
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|e| {
            refuse(format!(
                "invalid UTF-16 (unpaired surrogate {:#06x})",
                e.unpaired_surrogate()
            ))
        })
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>` declaration, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = bytes.get(start..)?;
    if !rest.starts_with(b"<?xml") {
        return None;
    }
    // A declaration is short; never scan a large document for its end.
    let window = &rest[..rest.len().min(512)];
    let end = window.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&window[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    let close = value.find(quote)?;
    Some(value[..close].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_documents_pass_through_unchanged() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-8\"?><a>café</a>".as_bytes();
        assert!(matches!(to_utf8(doc), Ok(Cow::Borrowed(b)) if b.as_bytes() == doc));
        let bom = [UTF8_BOM, b"<a>x</a>"].concat();
        assert_eq!(to_utf8(&bom).unwrap(), "<a>x</a>");
    }

    #[test]
    fn invalid_utf8_is_refused_naming_the_byte() {
        let doc = b"<a>caf\xe9</a>";
        let err = to_utf8(doc).unwrap_err();
        assert!(
            err.to_string().contains("byte 6 is not valid UTF-8"),
            "{err}"
        );
        let declared = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>caf\xe9</a>";
        assert!(matches!(to_utf8(declared), Err(CodecError::Encoding(_))));
    }

    #[test]
    fn declared_windows_1252_is_transcoded() {
        let doc = b"<?xml version='1.0' encoding='Windows-1252'?><a>caf\xe9 \x80 \x93ok\x94</a>";
        let text = to_utf8(doc).unwrap();
        assert!(text.ends_with("<a>café € “ok”</a>"), "{text}");
    }

    #[test]
    fn a_declaration_the_bytes_contradict_is_refused() {
        let doc = "<?xml version=\"1.0\" encoding=\"windows-1252\"?><a>café</a>".as_bytes();
        assert!(matches!(to_utf8(doc), Err(CodecError::Encoding(m)) if m.contains("refusing")));
        let ascii = b"<?xml version=\"1.0\" encoding=\"us-ascii\"?><a>\xc3\xa9</a>";
        assert!(matches!(to_utf8(ascii), Err(CodecError::Encoding(_))));
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_decoded_and_without_one_refused() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>é</a>";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            le.extend_from_slice(&unit.to_le_bytes());
            be.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(to_utf8(&le).unwrap(), text);
        assert_eq!(to_utf8(&be).unwrap(), text);
        assert!(matches!(
            to_utf8(&le[..le.len() - 1]),
            Err(CodecError::Encoding(_))
        ));
        assert!(
            matches!(to_utf8(text.as_bytes()), Err(CodecError::Encoding(m)) if m.contains("byte-order mark"))
        );
    }

    #[test]
    fn unknown_encodings_are_refused_by_name() {
        let doc = b"<?xml version=\"1.0\" encoding=\"EBCDIC-US\"?><a/>";
        let err = to_utf8(doc).unwrap_err();
        assert!(err.to_string().contains("ebcdic-us"), "{err}");
    }
}
