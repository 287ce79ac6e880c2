//! A small element tree read with quick-xml's pull `Reader`, and a pretty-printing writer.
//!
//! Why not serde: the body of `<Response>` depends on the `<Function>` element read
//! before it, the identity element has two spellings, NHS numbers with a bad check digit
//! must not make a response undecodable, and `<Event>` mixes repeated children in any
//! order. A tree of at most `MAX_DEPTH` levels plus explicit mapping code handles all of
//! that plainly, ignores unknown elements by construction, and keeps the wire order of
//! every element we write under our control.

use super::CodecError;
use quick_xml::events::Event;
use quick_xml::Reader;

/// SystmOne documents are at most ~8 levels deep; anything far deeper is hostile or broken
/// (and a deep tree would overflow the stack when dropped).
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Text and CDATA directly inside this element, concatenated (entity references resolved).
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.child(name).is_some()
    }

    /// The exact text of a child element (free text keeps its spaces).
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
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
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one document into its root element. A DOCTYPE is refused (no entity tricks),
/// only the five predefined entities and character references are resolved, and content
/// after the root element closes is ignored (framing already cut the document out).
pub(crate) fn parse(bytes: &[u8]) -> Result<Element, CodecError> {
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut stack: Vec<Element> = Vec::new();
    let malformed = |reader: &Reader<&[u8]>, message: String| CodecError::Malformed {
        position: reader.error_position().max(reader.buffer_position()),
        message,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if stack.len() >= MAX_DEPTH => {
                let _ = start;
                return Err(malformed(
                    &reader,
                    format!("elements nested deeper than {MAX_DEPTH}"),
                ));
            }
            Event::Start(start) => {
                let element = start_element(&start).map_err(|m| malformed(&reader, m))?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = start_element(&start).map_err(|m| malformed(&reader, m))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(malformed(
                        &reader,
                        "closing tag without an opening tag".into(),
                    ));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed(&reader, "text outside the root element".into())),
                }
            }
            Event::CData(cdata) => match stack.last_mut() {
                Some(current) => current.text.push_str(&cdata.xml10_content()),
                None => return Err(malformed(&reader, "CDATA outside the root element".into())),
            },
            Event::GeneralRef(reference) => {
                let resolved: String = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&reference) {
                        Some(s) => s.to_string(),
                        None => {
                            return Err(malformed(&reader, "unknown entity reference".into()));
                        }
                    },
                    Err(e) => return Err(malformed(&reader, e.to_string())),
                };
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&resolved),
                    None => {
                        return Err(malformed(
                            &reader,
                            "reference outside the root element".into(),
                        ))
                    }
                }
            }
            Event::DocType(_) => return Err(CodecError::DoctypeRefused),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                return Err(malformed(
                    &reader,
                    if stack.is_empty() {
                        "no root element".into()
                    } else {
                        "the document ended before its root element closed".into()
                    },
                ));
            }
        }
    }
}

fn start_element(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = start.name().as_ref().to_string();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attrs.push((attr.key.as_ref().to_string(), value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Characters XML 1.0 allows in a document (the `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

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
        let doc = br#"<?xml version="1.0"?><!-- c --><A x="1 &amp; 2"><B>a &lt; b &#233;</B><C/><B><![CDATA[<raw>]]></B></A>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "A");
        assert_eq!(root.attr("x"), Some("1 & 2"));
        assert_eq!(root.all_trimmed("B"), vec!["a < b \u{e9}", "<raw>"]);
        assert!(root.has("C"));
    }

    #[test]
    fn refuses_doctype_unknown_entities_and_truncation() {
        assert!(matches!(
            parse(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>"),
            Err(CodecError::DoctypeRefused)
        ));
        assert!(matches!(
            parse(b"<a>&x;</a>"),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"<a><b></b>"),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"<a></b>"),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(parse(b""), Err(CodecError::Malformed { .. })));
    }

    #[test]
    fn refuses_absurd_nesting_without_overflowing() {
        let deep = "<a>".repeat(100_000);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(CodecError::Malformed { .. })
        ));
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
        let root = parse(xml.as_bytes()).unwrap();
        assert_eq!(root.text_of("T").unwrap(), nasty);
        assert_eq!(root.child("E").unwrap().attr("v"), Some(nasty));
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
