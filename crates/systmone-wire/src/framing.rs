//! Cutting XML documents out of a byte stream.
//!
//! Requests are pretty-printed, multi-line documents, so a receiver cannot stop at the
//! first newline: a document is complete when its root element closes. Between documents
//! a peer may send a newline, a literal `<EOF>`, or nothing at all [seen]; all three are
//! accepted. The scanner is incremental (it resumes where the previous call stopped), so a
//! large frame arriving in many small reads is scanned once, not once per read.
//!
//! It is a careful lexer, not a validating parser: it understands quoted attribute values
//! (which may hold `>`), comments, CDATA sections, processing instructions and the XML
//! declaration, and self-closing roots. Well-formedness is the codec's job.

use std::ops::Range;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Frames larger than this are refused (a full record with attachments listed is a few MB).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// The separator some clients send after each document.
const EOF_MARKER: &[u8] = b"<EOF>";
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error("a SystmOne message exceeded the {limit}-byte limit; the connection must be reset")]
    TooLarge { limit: usize },
    #[error("the message contains a DOCTYPE declaration, which SystmOne never sends; refused")]
    DoctypeRefused,
    #[error("the byte stream is not XML near byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("the connection closed in the middle of a message ({received} bytes received)")]
    Truncated { received: usize },
    #[error("reading from the SystmOne connection failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a document: skipping whitespace, `<EOF>` and a BOM.
    Between,
    /// In the prolog (depth 0) or in element content: text until the next `<`.
    Content,
    /// Inside `<name ...`; `quote` is the open quote character; `slash` means the last
    /// byte outside quotes was `/` (so `>` closes an empty element).
    StartTag { quote: Option<u8>, slash: bool },
    /// Inside `</name ...`.
    EndTag,
    /// Inside `<!-- ...`; how many `-` were just seen (0..=2).
    Comment { dashes: u8 },
    /// Inside `<![CDATA[ ...`; how many `]` were just seen (0..=2).
    CData { brackets: u8 },
    /// Inside `<? ...`; whether the last byte was `?`.
    Pi { question: bool },
}

/// Incremental scanner over a buffer that only grows between calls (bytes are appended at
/// the end; nothing before the returned frame end is removed until `reset`).
#[derive(Debug, Clone)]
pub struct FrameScanner {
    state: State,
    /// Next byte to look at.
    pos: usize,
    /// Where the current document starts (first byte after separators).
    start: usize,
    depth: usize,
    max_frame: usize,
}

impl Default for FrameScanner {
    fn default() -> Self {
        FrameScanner::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameScanner {
    pub fn new(max_frame: usize) -> Self {
        FrameScanner {
            state: State::Between,
            pos: 0,
            start: 0,
            depth: 0,
            max_frame,
        }
    }

    /// Forget everything: the next `scan` starts at offset 0 of a new buffer.
    pub fn reset(&mut self) {
        *self = FrameScanner::new(self.max_frame);
    }

    /// Whether part of a document has been seen (so end of stream now means truncation).
    pub fn in_document(&self) -> bool {
        self.state != State::Between
    }

    /// Scans `buf` from where the last call stopped. Returns the byte range of the first
    /// complete document (leading separators excluded); the caller consumes `..range.end`
    /// and calls `reset` before scanning the remaining bytes.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<Range<usize>>, FramingError> {
        let result = self.scan_inner(buf)?;
        let size = match &result {
            Some(range) => range.len(),
            // Separators already skipped do not count towards a frame.
            None if self.in_document() => buf.len().saturating_sub(self.start),
            None => buf.len().saturating_sub(self.pos),
        };
        if size > self.max_frame {
            return Err(FramingError::TooLarge {
                limit: self.max_frame,
            });
        }
        Ok(result)
    }

    fn scan_inner(&mut self, buf: &[u8]) -> Result<Option<Range<usize>>, FramingError> {
        while self.pos < buf.len() {
            let b = buf[self.pos];
            match self.state {
                State::Between => {
                    let rest = &buf[self.pos..];
                    if b.is_ascii_whitespace() || b == 0 {
                        self.pos += 1;
                    } else if rest.starts_with(EOF_MARKER) {
                        self.pos += EOF_MARKER.len();
                    } else if rest.starts_with(UTF8_BOM) {
                        self.pos += UTF8_BOM.len();
                    } else if EOF_MARKER.starts_with(rest) || UTF8_BOM.starts_with(rest) {
                        return Ok(None); // a separator may be arriving in pieces
                    } else if b == b'<' {
                        self.start = self.pos;
                        self.state = State::Content;
                    } else {
                        return Err(FramingError::Malformed {
                            offset: self.pos,
                            reason: "text before the document",
                        });
                    }
                }
                State::Content => {
                    if b != b'<' {
                        self.pos = match buf[self.pos..].iter().position(|&c| c == b'<') {
                            Some(i) => self.pos + i,
                            None => buf.len(),
                        };
                        continue;
                    }
                    let rest = &buf[self.pos..];
                    // Decide what the markup is; wait for more bytes if it is too short to tell.
                    if rest.len() < 2 {
                        return Ok(None);
                    }
                    match rest[1] {
                        b'?' => {
                            self.pos += 2;
                            self.state = State::Pi { question: false };
                        }
                        b'/' => {
                            if self.depth == 0 {
                                return Err(FramingError::Malformed {
                                    offset: self.pos,
                                    reason: "a closing tag before any opening tag",
                                });
                            }
                            self.pos += 2;
                            self.state = State::EndTag;
                        }
                        b'!' => {
                            const COMMENT: &[u8] = b"<!--";
                            const CDATA: &[u8] = b"<![CDATA[";
                            const DOCTYPE: &[u8] = b"<!DOCTYPE";
                            if rest.starts_with(COMMENT) {
                                self.pos += COMMENT.len();
                                self.state = State::Comment { dashes: 0 };
                            } else if rest.starts_with(CDATA) {
                                self.pos += CDATA.len();
                                self.state = State::CData { brackets: 0 };
                            } else if rest.len() >= 3 && rest[2].eq_ignore_ascii_case(&b'D') {
                                if rest.len() < DOCTYPE.len()
                                    && rest.eq_ignore_ascii_case(&DOCTYPE[..rest.len()])
                                {
                                    return Ok(None);
                                }
                                return Err(FramingError::DoctypeRefused);
                            } else if COMMENT.starts_with(rest)
                                || CDATA.starts_with(rest)
                                || rest.len() < 3
                            {
                                return Ok(None);
                            } else {
                                return Err(FramingError::Malformed {
                                    offset: self.pos,
                                    reason: "unsupported <! declaration",
                                });
                            }
                        }
                        _ => {
                            self.pos += 1;
                            self.state = State::StartTag {
                                quote: None,
                                slash: false,
                            };
                        }
                    }
                }
                State::StartTag { quote: Some(q), .. } => {
                    if b == q {
                        self.state = State::StartTag {
                            quote: None,
                            slash: false,
                        };
                    }
                    self.pos += 1;
                }
                State::StartTag { quote: None, slash } => {
                    self.pos += 1;
                    match b {
                        b'"' | b'\'' => {
                            self.state = State::StartTag {
                                quote: Some(b),
                                slash: false,
                            }
                        }
                        b'/' => {
                            self.state = State::StartTag {
                                quote: None,
                                slash: true,
                            }
                        }
                        b'>' if slash => {
                            self.state = State::Content;
                            if self.depth == 0 {
                                return Ok(Some(self.finish()));
                            }
                        }
                        b'>' => {
                            self.depth += 1;
                            self.state = State::Content;
                        }
                        b'<' => {
                            return Err(FramingError::Malformed {
                                offset: self.pos - 1,
                                reason: "'<' inside a tag",
                            });
                        }
                        _ => {
                            self.state = State::StartTag {
                                quote: None,
                                slash: false,
                            }
                        }
                    }
                }
                State::EndTag => {
                    self.pos += 1;
                    if b == b'>' {
                        self.depth -= 1;
                        self.state = State::Content;
                        if self.depth == 0 {
                            return Ok(Some(self.finish()));
                        }
                    } else if b == b'<' {
                        return Err(FramingError::Malformed {
                            offset: self.pos - 1,
                            reason: "'<' inside a closing tag",
                        });
                    }
                }
                State::Comment { dashes } => {
                    self.pos += 1;
                    self.state = match b {
                        b'-' => State::Comment {
                            dashes: (dashes + 1).min(2),
                        },
                        b'>' if dashes == 2 => State::Content,
                        _ => State::Comment { dashes: 0 },
                    };
                }
                State::CData { brackets } => {
                    self.pos += 1;
                    self.state = match b {
                        b']' => State::CData {
                            brackets: (brackets + 1).min(2),
                        },
                        b'>' if brackets == 2 => State::Content,
                        _ => State::CData { brackets: 0 },
                    };
                }
                State::Pi { question } => {
                    self.pos += 1;
                    self.state = match b {
                        b'?' => State::Pi { question: true },
                        b'>' if question => State::Content,
                        _ => State::Pi { question: false },
                    };
                }
            }
        }
        Ok(None)
    }

    fn finish(&mut self) -> Range<usize> {
        let range = self.start..self.pos;
        self.state = State::Between;
        range
    }
}

/// One-shot form of the scanner: the range of the first complete document in `buf`
/// (separators before it excluded), or None if more bytes are needed.
pub fn find_frame(buf: &[u8]) -> Result<Option<Range<usize>>, FramingError> {
    FrameScanner::default().scan(buf)
}

/// Index just past the first complete document in `buf`, or None if more bytes are needed.
pub fn find_frame_end(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    Ok(find_frame(buf)?.map(|r| r.end))
}

/// Splits a whole buffer into its documents (for tests, fixtures and the fuzz target);
/// trailing separators are fine, a trailing partial document is `Truncated`.
pub fn split_frames(mut buf: &[u8], max_frame: usize) -> Result<Vec<&[u8]>, FramingError> {
    let mut frames = Vec::new();
    loop {
        let mut scanner = FrameScanner::new(max_frame);
        match scanner.scan(buf)? {
            Some(range) => {
                frames.push(&buf[range.clone()]);
                buf = &buf[range.end..];
            }
            None if scanner.in_document() => {
                return Err(FramingError::Truncated {
                    received: buf.len(),
                })
            }
            None => return Ok(frames),
        }
    }
}

/// The body of the `framing` fuzz target, also run by property tests: never panics, and
/// every frame it finds is a non-empty slice starting with `<` and ending with `>`.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_framing(data: &[u8]) {
    if let Ok(frames) = split_frames(data, 1 << 20) {
        for f in frames {
            assert!(
                f.first() == Some(&b'<') && f.last() == Some(&b'>'),
                "a frame must start with < and end with >"
            );
        }
    }
    // Feeding the same bytes one at a time must find the same first frame.
    let mut scanner = FrameScanner::new(1 << 20);
    let mut incremental = None;
    for end in 1..=data.len().min(4096) {
        match scanner.scan(&data[..end]) {
            Ok(Some(r)) => {
                incremental = Some(Ok(r));
                break;
            }
            Ok(None) => {}
            Err(e) => {
                incremental = Some(Err(e.to_string()));
                break;
            }
        }
    }
    if data.len() <= 4096 {
        let whole = find_frame(data).map_err(|e| e.to_string());
        match (incremental, whole) {
            (Some(a), b) => assert_eq!(
                Some(a),
                b.transpose(),
                "incremental and one-shot scans disagree"
            ),
            (None, Ok(None)) => {}
            (None, other) => {
                panic!("one-shot scan found {other:?} but the incremental scan did not")
            }
        }
    }
}

/// Reads one document after another from an async byte stream, keeping bytes that arrive
/// after a document for the next call. Cancel-safe: if `next_frame` is dropped (e.g. by
/// `tokio::time::timeout`), bytes already read stay buffered. Timeouts are the caller's job.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    scanner: FrameScanner,
    max_frame: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader::with_max_frame(inner, DEFAULT_MAX_FRAME)
    }

    pub fn with_max_frame(inner: R, max_frame: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            scanner: FrameScanner::new(max_frame),
            max_frame,
        }
    }

    /// The next complete document, or None on a clean end of stream between documents.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        loop {
            if let Some(range) = self.scanner.scan(&self.buf)? {
                let frame = self.buf[range.clone()].to_vec();
                self.buf.drain(..range.end);
                self.scanner.reset();
                return Ok(Some(frame));
            }
            if !self.scanner.in_document() && self.scanner.pos > 4096 {
                // Only separators so far: drop them rather than hold them (a partial
                // `<EOF>` after them stays).
                self.buf.drain(..self.scanner.pos);
                self.scanner.reset();
            }
            self.buf.reserve(64 * 1024);
            let read = self.inner.read_buf(&mut self.buf).await?;
            if read == 0 {
                if self.scanner.in_document() {
                    return Err(FramingError::Truncated {
                        received: self.buf.len(),
                    });
                }
                return Ok(None);
            }
        }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REQUEST: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ClientIntegrationRequest>\n  <APIKey>k</APIKey>\n  <DeviceID/>\n  <FunctionParameters/>\n</ClientIntegrationRequest>";

    #[test]
    fn finds_the_end_of_a_pretty_printed_document() {
        let mut bytes = REQUEST.as_bytes().to_vec();
        bytes.extend_from_slice(b"\n");
        assert_eq!(find_frame(&bytes).unwrap(), Some(0..REQUEST.len()));
        assert_eq!(find_frame(&bytes[..REQUEST.len() - 1]).unwrap(), None);
    }

    #[test]
    fn copes_with_gt_in_attributes_comments_cdata_and_pis() {
        let doc = "<?xml version='1.0'?><!-- a > b <x> --><?pi a > b?><R a=\"x>y\" b='</R>'><C><![CDATA[</R> ]] > ]]></C><E q=\"/\"/><!----></R>";
        let mut bytes = doc.as_bytes().to_vec();
        bytes.extend_from_slice(b"<R/>");
        assert_eq!(find_frame(&bytes).unwrap(), Some(0..doc.len()));
        assert_eq!(
            split_frames(&bytes, 1024).unwrap(),
            vec![doc.as_bytes(), b"<R/>".as_slice()]
        );
    }

    #[test]
    fn accepts_newline_eof_marker_or_nothing_between_documents() {
        let stream = format!("\r\n{REQUEST}<EOF>{REQUEST}{REQUEST}\n<EOF>\n<A/>\n");
        let frames = split_frames(stream.as_bytes(), 1 << 20).unwrap();
        assert_eq!(
            frames,
            vec![
                REQUEST.as_bytes(),
                REQUEST.as_bytes(),
                REQUEST.as_bytes(),
                b"<A/>".as_slice()
            ]
        );
    }

    #[test]
    fn refuses_doctype_oversize_and_stray_text() {
        assert!(matches!(
            find_frame(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"),
            Err(FramingError::DoctypeRefused)
        ));
        assert!(matches!(
            find_frame(b"<?xml version='1.0'?><!doctype x><x/>"),
            Err(FramingError::DoctypeRefused)
        ));
        let mut scanner = FrameScanner::new(16);
        assert!(matches!(
            scanner.scan(b"<Root><Child>0123456789"),
            Err(FramingError::TooLarge { limit: 16 })
        ));
        assert!(matches!(
            find_frame(b"hello <x/>"),
            Err(FramingError::Malformed { .. })
        ));
        assert!(matches!(
            find_frame(b"</x>"),
            Err(FramingError::Malformed { .. })
        ));
    }

    #[test]
    fn a_partial_separator_or_declaration_waits_for_more_bytes() {
        assert_eq!(find_frame(b"<EO").unwrap(), None);
        assert_eq!(find_frame(b"<!-").unwrap(), None);
        assert_eq!(find_frame(b"<!DOC").unwrap(), None);
        assert_eq!(find_frame(b"<").unwrap(), None);
        assert!(matches!(
            split_frames(b"<A><B/>", 64),
            Err(FramingError::Truncated { .. })
        ));
        assert_eq!(
            split_frames(b"\n<EOF>\n<EO", 64).unwrap(),
            Vec::<&[u8]>::new()
        );
    }

    #[tokio::test]
    async fn reader_returns_frames_and_keeps_leftovers() {
        let (mut client, server) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let stream = format!("{REQUEST}\n{REQUEST}<EOF><A x='>'/>");
            for chunk in stream.as_bytes().chunks(5) {
                client.write_all(chunk).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(server);
        assert_eq!(
            reader.next_frame().await.unwrap().unwrap(),
            REQUEST.as_bytes()
        );
        assert_eq!(
            reader.next_frame().await.unwrap().unwrap(),
            REQUEST.as_bytes()
        );
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), b"<A x='>'/>");
        writer.await.unwrap();
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reader_drops_long_runs_of_separators_without_losing_a_split_marker() {
        let mut stream = "\n<EOF>".repeat(2000).into_bytes();
        stream.extend_from_slice(b"<EOF><A/>");
        let (mut client, server) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // Cut the stream inside a marker so one straddles two reads.
            for chunk in stream.chunks(4099) {
                client.write_all(chunk).await.unwrap();
            }
        });
        let mut reader = FrameReader::with_max_frame(server, 64);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), b"<A/>");
        assert!(reader.buffered().is_empty());
        writer.await.unwrap();
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reader_reports_truncation_and_oversize() {
        let mut reader = FrameReader::new(&b"<A><B>"[..]);
        assert!(matches!(
            reader.next_frame().await,
            Err(FramingError::Truncated { received: 6 })
        ));
        let big = format!("<A>{}</A>", "x".repeat(1000));
        let mut reader = FrameReader::with_max_frame(big.as_bytes(), 100);
        assert!(matches!(
            reader.next_frame().await,
            Err(FramingError::TooLarge { limit: 100 })
        ));
    }

    fn document() -> impl Strategy<Value = String> {
        let text =
            "[a-z<>&\"' \n]{0,12}".prop_map(|t| quick_xml::escape::escape(t.as_str()).into_owned());
        let leaf = (text.clone(), "[A-Z][a-z]{0,4}")
            .prop_map(|(t, n)| format!("<{n} a=\"{}\">{t}</{n}>", "&gt;/"));
        let children = prop::collection::vec(
            prop_oneof![
                leaf,
                Just("<E/>".to_string()),
                Just("<!-- > </R> -->".to_string()),
                Just("<![CDATA[</R>]]>".to_string())
            ],
            0..5,
        );
        (any::<bool>(), children, any::<bool>()).prop_map(|(decl, kids, empty_root)| {
            let prolog = if decl {
                "<?xml version=\"1.0\"?>\n"
            } else {
                ""
            };
            if empty_root && kids.is_empty() {
                format!("{prolog}<R x='/>'/>")
            } else {
                format!("{prolog}<R>\n  {}\n</R>", kids.join("\n  "))
            }
        })
    }

    proptest! {
        #[test]
        fn split_documents_reassemble_exactly(
            docs in prop::collection::vec(document(), 1..5),
            seps in prop::collection::vec(prop_oneof![Just(""), Just("\n"), Just("<EOF>"), Just("\r\n<EOF>\n")], 5),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut stream = Vec::new();
            for (i, d) in docs.iter().enumerate() {
                stream.extend_from_slice(d.as_bytes());
                stream.extend_from_slice(seps[i].as_bytes());
            }
            // Feed the stream in pieces cut at arbitrary byte offsets, as a socket might.
            let mut offsets: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            offsets.push(stream.len());
            offsets.sort_unstable();
            let mut buf = Vec::new();
            let mut scanner = FrameScanner::new(1 << 20);
            let mut got: Vec<String> = Vec::new();
            let mut fed = 0;
            for end in offsets {
                buf.extend_from_slice(&stream[fed..end]);
                fed = end;
                while let Some(range) = scanner.scan(&buf).unwrap() {
                    got.push(String::from_utf8(buf[range.clone()].to_vec()).unwrap());
                    buf.drain(..range.end);
                    scanner.reset();
                }
            }
            prop_assert!(!scanner.in_document());
            prop_assert_eq!(got, docs);
        }

        #[test]
        fn fuzz_body_never_panics_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            fuzz_framing(&data);
        }

        #[test]
        fn fuzz_body_never_panics_on_mutated_documents(doc in document(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
            let mut bytes = doc.into_bytes();
            for (i, b) in flips {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
            fuzz_framing(&bytes);
        }
    }
}
