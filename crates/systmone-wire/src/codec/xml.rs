//! Small element trees read with quick-xml's pull `Reader`, and a pretty-printing writer.
//!
//! Why not serde: the body of `<Response>` depends on the `<Function>` element read
//! before it, the identity element has two spellings, NHS numbers with a bad check digit
//! must not make a response undecodable, and `<Event>` mixes repeated children in any
//! order. A tree of at most `MAX_DEPTH` levels plus explicit mapping code handles all of
//! that plainly, ignores unknown elements by construction, and keeps the wire order of
//! every element we write under our control.
//!
//! Trees stay small: `Parser` hands out one child at a time, so a large record is decoded
//! event by event (see `response::read_record_streamed`) and never held as a whole tree;
//! trees borrow names and plain text from the document instead of copying them; and every
//! document is held to a depth cap and an element-count cap proportional to its size.

use super::CodecError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use std::io::BufRead;

/// SystmOne documents are at most ~8 levels deep; anything far deeper is hostile or broken
/// (and a deep tree would overflow the stack when dropped).
pub(crate) const MAX_DEPTH: usize = 64;

/// Elements any document may have, however short: small documents are never refused.
pub(crate) const ELEMENT_ALLOWANCE: u64 = 4096;
/// Beyond the allowance, at most one element per this many bytes read so far. Real
/// documents have one per 30–50 bytes (the densest fixture, pretty-printed metadata, 32);
/// `<a/>` has one per 4. Each element costs ~100–300 bytes once decoded, so the cap is what
/// keeps decoded memory proportional to the input, and checking it against the bytes read
/// *so far* refuses a document of empty elements after a few thousand of them, not after
/// it has been built.
pub(crate) const BYTES_PER_ELEMENT: u64 = 16;

/// Text is borrowed from the document where it can be (no entity or CDATA joined into
/// it, no `\r` to normalise); names and attribute keys always are.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    pub name: Cow<'a, str>,
    pub attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub children: Vec<Element<'a>>,
    /// Text and CDATA directly inside this element, concatenated (entity references resolved).
    pub text: Cow<'a, str>,
}

impl<'a> Element<'a> {
    pub fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s Element<'a>> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.child(name).is_some()
    }

    /// The exact text of a child element (free text keeps its spaces).
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.to_string())
    }

    /// The trimmed text of a child element (identifiers, codes, dates, flags).
    pub fn trimmed_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.trim().to_string())
    }

    /// Trimmed text of every child with this name.
    pub fn all_trimmed(&self, name: &str) -> Vec<String> {
        self.children_named(name)
            .map(|c| c.text.trim().to_string())
            .collect()
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// Parses one document into its root element. A DOCTYPE is refused (no entity tricks),
/// only the five predefined entities and character references are resolved, and content
/// after the root element closes is ignored (framing already cut the document out).
pub(crate) fn parse(text: &str) -> Result<Element<'_>, CodecError> {
    let mut parser = Parser::new(text);
    let root = parser.root()?;
    parser.element(root)
}

/// A start tag just read: the element's name and attributes, and whether it is `<x/>`.
pub(crate) struct Start<'a> {
    pub name: Cow<'a, str>,
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    empty: bool,
}

impl<'a> Start<'a> {
    /// The element with its name and attributes but without its content: stands in a tree
    /// for an element decoded as it was read.
    pub fn placeholder(&self) -> Element<'a> {
        Element {
            name: self.name.clone(),
            attrs: self.attrs.clone(),
            children: Vec::new(),
            text: Cow::Borrowed(""),
        }
    }

    fn into_element(self) -> Element<'a> {
        Element {
            name: self.name,
            attrs: self.attrs,
            children: Vec::new(),
            text: Cow::Borrowed(""),
        }
    }
}

/// A pull parser over one document that hands out one child element at a time, so a
/// caller can decode the large repeated parts (a record's events) one by one and keep only
/// the typed result, instead of building the whole document as a tree first. It enforces
/// the depth and element-count caps however the document is consumed.
pub(crate) struct Parser<'a> {
    input: &'a str,
    reader: Reader<&'a [u8]>,
    /// Elements open (started and not yet ended).
    depth: usize,
    elements: u64,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str) -> Self {
        let mut reader = Reader::from_str(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Parser {
            input,
            reader,
            depth: 0,
            elements: 0,
        }
    }

    fn not_allowed(&self, ch: char) -> CodecError {
        self.malformed(format!(
            "a character reference to U+{:04X}, a character XML does not allow",
            u32::from(ch)
        ))
    }

    fn malformed(&self, message: impl Into<String>) -> CodecError {
        CodecError::Malformed {
            position: self
                .reader
                .error_position()
                .max(self.reader.buffer_position()),
            message: message.into(),
        }
    }

    fn read(&mut self) -> Result<Event<'a>, CodecError> {
        self.reader
            .read_event()
            .map_err(|e| self.malformed(e.to_string()))
    }

    /// Reads up to and including the root element's start tag.
    pub fn root(&mut self) -> Result<Start<'a>, CodecError> {
        loop {
            match self.read()? {
                Event::Start(start) => return self.start(&start, false),
                Event::Empty(start) => return self.start(&start, true),
                Event::End(_) => return Err(self.malformed("closing tag without an opening tag")),
                Event::Text(text) => {
                    if !text.xml10_content().trim().is_empty() {
                        return Err(self.malformed("text outside the root element"));
                    }
                }
                Event::CData(_) => return Err(self.malformed("CDATA outside the root element")),
                Event::GeneralRef(reference) => {
                    // Resolved first so an invalid reference reports what the tree did.
                    self.resolve(&reference)?;
                    return Err(self.malformed("reference outside the root element"));
                }
                Event::DocType(_) => return Err(CodecError::DoctypeRefused),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => return Err(self.malformed("no root element")),
            }
        }
    }

    /// Inside the element whose start was last handed out: the next child's start, with
    /// the element's own text appended to `text` on the way; `None` once its end tag is read.
    /// An empty element (`<x/>`) has no children: call this only for `Start::has_content`.
    pub fn next_child(&mut self, text: &mut Cow<'a, str>) -> Result<Option<Start<'a>>, CodecError> {
        loop {
            match self.read()? {
                Event::Start(start) => return self.start(&start, false).map(Some),
                Event::Empty(start) => return self.start(&start, true).map(Some),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(None);
                }
                Event::Text(t) => self.append(text, t.xml10_content()),
                Event::CData(c) => self.append(text, c.xml10_content()),
                Event::GeneralRef(reference) => {
                    let resolved = self.resolve(&reference)?;
                    let mut buf = [0u8; 4];
                    self.join(text, resolved.encode_utf8(&mut buf), &reference);
                }
                Event::DocType(_) => return Err(CodecError::DoctypeRefused),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    return Err(self.malformed("the document ended before its root element closed"))
                }
            }
        }
    }

    /// The rest of the element whose start was just handed out, as a tree.
    pub fn element(&mut self, start: Start<'a>) -> Result<Element<'a>, CodecError> {
        let empty = start.empty;
        let mut element = start.into_element();
        if !empty {
            if let Some(text) = self.leaf_text(&element.name) {
                element.text = text;
            }
            while let Some(child) = self.next_child(&mut element.text)? {
                let child = self.element(child)?;
                element.children.push(child);
            }
        }
        Ok(element)
    }

    /// Reads the element whose start was just handed out, passing each child's start to
    /// `each`, which must read the child (`element`, `skip` or `stream`) and may add to the
    /// returned element's children. The element's own text is not kept: only containers
    /// are streamed, and whitespace between their children is layout.
    pub fn stream<F>(&mut self, start: Start<'a>, mut each: F) -> Result<Element<'a>, CodecError>
    where
        F: FnMut(&mut Self, &mut Element<'a>, Start<'a>) -> Result<(), CodecError>,
    {
        let empty = start.empty;
        let mut element = start.into_element();
        if !empty {
            let mut text = Cow::Borrowed("");
            while let Some(child) = self.next_child(&mut text)? {
                text = Cow::Borrowed("");
                each(self, &mut element, child)?;
            }
        }
        Ok(element)
    }

    /// Reads past the rest of the element whose start was just handed out, keeping
    /// nothing (still checking it is well formed and within the caps).
    pub fn skip(&mut self, start: Start<'a>) -> Result<(), CodecError> {
        if start.empty {
            return Ok(());
        }
        let mut text = Cow::Borrowed("");
        while let Some(child) = self.next_child(&mut text)? {
            // Keeps the skipped text from growing: only its well-formedness matters.
            text = Cow::Borrowed("");
            self.skip(child)?;
        }
        Ok(())
    }

    fn start(&mut self, start: &BytesStart<'a>, empty: bool) -> Result<Start<'a>, CodecError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.malformed(format!("elements nested deeper than {MAX_DEPTH}")));
        }
        self.elements += 1;
        let read = self.reader.buffer_position();
        let limit = ELEMENT_ALLOWANCE + read / BYTES_PER_ELEMENT;
        if self.elements > limit {
            return Err(CodecError::TooManyElements {
                position: read,
                count: self.elements,
            });
        }
        let name = self.lift(Cow::Borrowed(start.name().as_ref()));
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.malformed(e.to_string()))?;
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| self.malformed(e.to_string()))?;
            // quick-xml resolves an attribute's references itself: a value it had to build
            // (`Owned`) is where a reference was, and is checked as `resolve` checks text.
            if let Cow::Owned(built) = &value {
                if let Some(ch) = built.chars().find(|c| !is_xml_char(*c)) {
                    return Err(self.not_allowed(ch));
                }
            }
            let key = self.lift(Cow::Borrowed(attr.key.as_ref()));
            attrs.push((key, self.lift(value)));
        }
        if !empty {
            self.depth += 1;
        }
        Ok(Start { name, attrs, empty })
    }

    /// The fast path for an element that holds only text, where most of a record's bytes
    /// are: if the next markup is this element's own end tag, its text is decoded here in
    /// one pass and the reader moved up to that tag (through quick-xml's `stream`, which
    /// keeps its positions right), instead of event by event — quick-xml hands out the text
    /// between every two entity references as separate events. Anything unusual (markup,
    /// an unterminated or unknown reference) is left to the event path, which reports it.
    fn leaf_text(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let at = usize::try_from(self.reader.buffer_position()).ok()?;
        let rest = self.input.get(at..)?;
        // After a start tag the reader is exactly there; checked rather than assumed.
        if self.reader.get_ref().as_ptr() != rest.as_ptr() {
            return None;
        }
        let lt = rest.find('<')?;
        let end_tag = rest[lt..].strip_prefix("</")?.strip_prefix(name)?;
        if !end_tag.starts_with('>') {
            return None;
        }
        let text = self.unescape(&rest[..lt])?;
        self.reader.stream().consume(lt);
        Some(text)
    }

    /// Text as the event path builds it, in one pass: references resolved, and line ends
    /// normalised as quick-xml does for each piece between references (`\r\n` and a lone
    /// `\r` become `\n`). `None` where the event path would fail.
    fn unescape(&self, raw: &'a str) -> Option<Cow<'a, str>> {
        let bytes = raw.as_bytes();
        let mut out: Option<String> = None;
        let (mut i, mut copied) = (0, 0);
        while let Some(found) = bytes[i..].iter().position(|&b| b == b'&' || b == b'\r') {
            i += found;
            let joined = out.get_or_insert_with(|| String::with_capacity(raw.len()));
            joined.push_str(&raw[copied..i]);
            if bytes[i] == b'\r' {
                joined.push('\n');
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            } else {
                let semi = i
                    + 1
                    + bytes[i + 1..]
                        .iter()
                        .position(|&b| b == b';' || b == b'&')?;
                if bytes[semi] != b';' {
                    return None;
                }
                let name = &raw[i + 1..semi];
                joined.push(match name {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => self.resolve(&BytesRef::new(name)).ok()?,
                });
                i = semi + 1;
            }
            copied = i;
        }
        Some(match out {
            None => Cow::Borrowed(raw),
            Some(mut joined) => {
                joined.push_str(&raw[copied..]);
                Cow::Owned(joined)
            }
        })
    }

    /// A reference's character. A character reference to something XML does not allow
    /// (`&#1;`, `&#xFFFE;`; quick-xml refuses only `&#0;` and surrogates) is refused: a
    /// document holding one is not XML, and passing the character on would put it in names
    /// and notes where nothing typed could have put it.
    fn resolve(&self, reference: &BytesRef<'_>) -> Result<char, CodecError> {
        match reference.resolve_char_ref() {
            Ok(Some(ch)) if is_xml_char(ch) => Ok(ch),
            Ok(Some(ch)) => Err(self.not_allowed(ch)),
            Ok(None) => match quick_xml::escape::resolve_predefined_entity(reference) {
                Some(s) => s
                    .chars()
                    .next()
                    .ok_or_else(|| self.malformed("unknown entity reference")),
                None => Err(self.malformed("unknown entity reference")),
            },
            Err(e) => Err(self.malformed(e.to_string())),
        }
    }

    /// Appends one piece of text, borrowing it when it is the first. Text with entity
    /// references arrives in many pieces; the first copy is sized for the whole run up to
    /// the next tag, so joining them does not reallocate as it grows.
    fn append(&self, text: &mut Cow<'a, str>, piece: Cow<'a, str>) {
        if piece.is_empty() {
            return;
        }
        if text.is_empty() {
            *text = piece;
        } else {
            self.join(text, &piece, "");
        }
    }

    /// Appends `piece` (found at `origin` in the document), copying what came before it
    /// into a string sized for the whole run.
    fn join(&self, text: &mut Cow<'a, str>, piece: &str, origin: &str) {
        match text {
            Cow::Borrowed(first) => {
                let start = if first.is_empty() { origin } else { *first };
                let run = self.run_from(start).max(first.len() + piece.len());
                let mut joined = String::with_capacity(run);
                joined.push_str(first);
                joined.push_str(piece);
                *text = Cow::Owned(joined);
            }
            Cow::Owned(joined) => joined.push_str(piece),
        }
    }

    /// Bytes from where `piece` sits in the document to the next `<`: how long the text
    /// run it starts can be at most (0 if it is not part of the document).
    fn run_from(&self, piece: &str) -> usize {
        let whole = self.input.as_bytes().as_ptr_range();
        let at = piece.as_ptr();
        if !(whole.start <= at && at <= whole.end) {
            return 0;
        }
        // `find` of a char is a memchr.
        let rest = self
            .input
            .get(at as usize - whole.start as usize..)
            .unwrap_or("");
        rest.find('<').unwrap_or(rest.len())
    }

    /// A borrowed piece of an event as a borrow of the whole document, so it can outlive
    /// the event without being copied: quick-xml hands out names and unescaped values that
    /// point into the input, but typed with the event's shorter lifetime.
    fn lift(&self, piece: Cow<'_, str>) -> Cow<'a, str> {
        let whole = self.input.as_bytes().as_ptr_range();
        if let Cow::Borrowed(borrowed) = &piece {
            let range = borrowed.as_bytes().as_ptr_range();
            if whole.start <= range.start && range.end <= whole.end {
                let at = range.start as usize - whole.start as usize;
                if let Some(s) = self.input.get(at..at + borrowed.len()) {
                    return Cow::Borrowed(s);
                }
            }
        }
        Cow::Owned(piece.into_owned())
    }
}

// Characters XML 1.0 allows in a document (the `Char` production): the one predicate
// input validation uses too, so whatever staff may type, the writer can carry.
use domain::text::is_xml_char;

/// A pretty-printing writer, two-space indent, like TPP's request templates. Leaf
/// elements keep their text on one line so no whitespace is added to values.
pub(crate) struct XmlOut {
    buf: String,
    depth: usize,
}

impl XmlOut {
    pub fn new() -> Self {
        let mut buf = String::with_capacity(1024);
        buf.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        XmlOut { buf, depth: 0 }
    }

    fn indent(&mut self) {
        self.buf.push('\n');
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), CodecError> {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        for (key, value) in attrs {
            self.buf.push(' ');
            self.buf.push_str(key);
            self.buf.push_str("=\"");
            escape_into(&mut self.buf, value, true, key)?;
            self.buf.push('"');
        }
        Ok(())
    }

    pub fn open(&mut self, name: &str) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self.depth += 1;
    }

    pub fn open_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), CodecError> {
        self.start_tag(name, attrs)?;
        self.buf.push('>');
        self.depth += 1;
        Ok(())
    }

    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }

    /// `<name/>`: a flag element.
    pub fn empty(&mut self, name: &str) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str("/>");
    }

    pub fn empty_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), CodecError> {
        self.start_tag(name, attrs)?;
        self.buf.push_str("/>");
        Ok(())
    }

    /// `<name>text</name>`, text escaped; an empty string gives `<name></name>`.
    pub fn leaf(&mut self, name: &str, text: &str) -> Result<(), CodecError> {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        escape_into(&mut self.buf, text, false, name)?;
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        Ok(())
    }

    /// `<name a="v">text</name>`.
    pub fn leaf_attrs(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        text: &str,
    ) -> Result<(), CodecError> {
        self.start_tag(name, attrs)?;
        self.buf.push('>');
        escape_into(&mut self.buf, text, false, name)?;
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        Ok(())
    }

    /// Text inside an open element that also has children, on its own indented line; only
    /// for values whose surrounding whitespace is not data (it is trimmed when read).
    pub fn text(&mut self, element: &str, text: &str) -> Result<(), CodecError> {
        self.indent();
        escape_into(&mut self.buf, text, false, element)
    }

    pub fn opt_leaf(&mut self, name: &str, text: Option<&str>) -> Result<(), CodecError> {
        match text {
            Some(t) => self.leaf(name, t),
            None => Ok(()),
        }
    }

    pub fn flag(&mut self, name: &str, set: bool) {
        if set {
            self.empty(name);
        }
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// Escapes markup characters, and in attributes the whitespace that attribute-value
/// normalisation would otherwise turn into spaces; `\r` always, so it survives end-of-line
/// normalisation. Characters XML cannot carry at all are refused rather than dropped: a
/// note must be filed exactly as the clinician approved it, or not at all.
fn escape_into(
    out: &mut String,
    text: &str,
    attribute: bool,
    element: &str,
) -> Result<(), CodecError> {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => {
                return Err(CodecError::InvalidCharacter {
                    element: element.to_string(),
                    code: format!("U+{:04X}", u32::from(c)),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_text_attributes_and_references() {
        let doc = r#"<?xml version="1.0"?><!-- c --><A x="1 &amp; 2"><B>a &lt; b &#233;</B><C/><B><![CDATA[<raw>]]></B></A>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "A");
        assert_eq!(root.attr("x"), Some("1 & 2"));
        assert_eq!(root.all_trimmed("B"), vec!["a < b \u{e9}", "<raw>"]);
        assert!(root.has("C"));
    }

    #[test]
    fn refuses_doctype_unknown_entities_and_truncation() {
        assert!(matches!(
            parse("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>"),
            Err(CodecError::DoctypeRefused)
        ));
        assert!(matches!(
            parse("<a>&x;</a>"),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            parse("<a><b></b>"),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            parse("<a></b>"),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(parse(""), Err(CodecError::Malformed { .. })));
    }

    #[test]
    fn refuses_absurd_nesting_without_overflowing() {
        let deep = "<a>".repeat(100_000);
        assert!(matches!(parse(&deep), Err(CodecError::Malformed { .. })));
    }

    #[test]
    fn writer_escapes_and_round_trips_awkward_text() {
        let nasty = "<script>alert(\"x\") & 'y'</script>\r\n\tünïcødé ]]> &amp;";
        let mut out = XmlOut::new();
        out.open("Root");
        out.leaf("T", nasty).unwrap();
        out.empty_attrs("E", &[("v", nasty)]).unwrap();
        out.close("Root");
        let xml = out.finish();
        let root = parse(&xml).unwrap();
        assert_eq!(root.text_of("T").unwrap(), nasty);
        assert_eq!(root.child("E").unwrap().attr("v"), Some(nasty));
    }

    /// The one-pass reader of a text-only element must give what the event path gives (a
    /// trailing comment sends the same text down the event path), errors included.
    #[test]
    fn text_fast_path_matches_the_event_path() {
        use proptest::prelude::*;
        let piece = prop::sample::select(vec![
            "a", " ", "\r", "\n", "\r\n", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#13;",
            "&#x41;", "&#0;", "&bogus;", "&", ";", "é", "]]>", "&amp", "&#xD800;",
        ]);
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&prop::collection::vec(piece, 0..12), |pieces| {
                let raw = pieces.concat();
                let fast = parse(&format!("<a>{raw}</a>")).map(|e| e.text.into_owned());
                let events = parse(&format!("<a>{raw}<!----></a>")).map(|e| e.text.into_owned());
                match (&fast, &events) {
                    (Ok(f), Ok(e)) => prop_assert_eq!(f, e),
                    (Err(_), Err(_)) => {}
                    _ => prop_assert!(false, "{raw:?}: {fast:?} vs {events:?}"),
                }
                Ok(())
            })
            .unwrap();
    }

    /// Regression (issue 11): references to characters outside XML's `Char` were passed
    /// through into decoded text and attributes.
    #[test]
    fn character_references_outside_xml_are_refused() {
        for reference in [
            "&#0;",
            "&#1;",
            "&#x1B;",
            "&#xFFFE;",
            "&#65535;",
            "&#xD800;",
            "&#x110000;",
        ] {
            for doc in [
                format!("<a>x{reference}y</a>"),
                format!("<a>x{reference}y<!----></a>"),
                format!("<a v=\"x{reference}y\"/>"),
            ] {
                let result = parse(&doc);
                assert!(
                    matches!(result, Err(CodecError::Malformed { .. })),
                    "{doc}: {:?}",
                    result.map(|e| e.text.into_owned())
                );
            }
        }
        let err = match parse("<a>&#x1B;[2J</a>") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an escape by reference was accepted"),
        };
        assert!(err.contains("U+001B"), "{err}");
        // Allowed references still resolve.
        let ok = parse("<a v=\"&#x9;&#233;\">&#10;&#xE9;&#x1F600;</a>").unwrap();
        assert_eq!(ok.text, "\n\u{e9}\u{1F600}");
        assert_eq!(ok.attr("v"), Some("\t\u{e9}"));
    }

    /// Anything input validation accepts (a note, a title, a name) the writer can carry and
    /// the reader gives back exactly: an approved note is never refused by our own writer.
    #[test]
    fn everything_validation_accepts_the_writer_accepts() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&any::<String>(), |raw| {
                if let Ok(note) = domain::NoteBody::parse(&raw) {
                    let mut out = XmlOut::new();
                    prop_assert!(out.leaf("Line", note.expose()).is_ok(), "{raw:?}");
                    let xml = out.finish();
                    let back = parse(&xml).map(|e| e.text.into_owned()).ok();
                    prop_assert_eq!(back.as_deref(), Some(note.expose()));
                }
                if let Ok(title) = domain::TaskTitle::parse(&raw) {
                    let mut out = XmlOut::new();
                    prop_assert!(out.empty_attrs("T", &[("v", title.as_str())]).is_ok());
                }
                if let Ok(name) = domain::PatientName::parse(&raw) {
                    prop_assert!(XmlOut::new().leaf("Surname", name.expose()).is_ok());
                }
                Ok(())
            })
            .unwrap();
        // And characters at the edges, one at a time, through the shared predicate.
        for code in (0..=0x10FFFFu32)
            .step_by(7)
            .chain([0xFFFE, 0xFFFF, 0xFDD0, 0x1B])
        {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let text = format!("a{c}b");
            if domain::NoteBody::parse(&text).is_ok() {
                assert!(XmlOut::new().leaf("Line", &text).is_ok(), "U+{code:04X}");
            }
        }
    }

    #[test]
    fn writer_refuses_characters_xml_cannot_carry() {
        let mut out = XmlOut::new();
        assert!(matches!(
            out.leaf("Line", "bell\u{7}"),
            Err(CodecError::InvalidCharacter { .. })
        ));
    }
}
