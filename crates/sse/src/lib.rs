//! Server-Sent Events, incrementally.
//!
//! [`SseDecoder`] takes bytes exactly as they come off a socket, split anywhere (inside a line,
//! inside a `\r\n`, inside a multi-byte UTF-8 character) and yields whole [`SseFrame`]s, following
//! the WHATWG event-stream rules: `\n`, `\r\n` or `\r` end a line, a blank line ends an event,
//! `:` starts a comment, multiple `data:` lines join with `\n`, an event with no data is not
//! dispatched, and a leading byte-order mark is skipped.
//!
//! Splitting happens on bytes, which is UTF-8 safe because neither `\r` nor `\n` can occur inside
//! a multi-byte sequence; a line is decoded only once it is complete.
//!
//! We wrote this rather than take a crate because the gateway needs a push-style decoder
//! (`feed(bytes)`) with no async runtime in its signature, a bound on buffered bytes, and no
//! allocation per frame beyond the frame itself; the crates we looked at are `Stream` adapters.

use std::fmt;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseFrame {
    /// The `event:` field; `None` means the default type, `message`.
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl SseFrame {
    /// A frame with only data.
    pub fn data(data: impl Into<String>) -> Self {
        SseFrame {
            data: data.into(),
            ..SseFrame::default()
        }
    }

    /// The event type, with the spec's default.
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A line was not valid UTF-8.
    InvalidUtf8,
    /// A single line grew past the decoder's limit without ending.
    LineTooLong { limit: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::InvalidUtf8 => f.write_str("event stream line is not valid UTF-8"),
            SseError::LineTooLong { limit } => {
                write!(f, "event stream line longer than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// Push-style decoder. One per stream.
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the line being read (never contains a line terminator).
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a `\n` starting the next chunk belongs to it.
    after_cr: bool,
    at_start: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
    max_line: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// Default bound on one line: 16 MiB, far above any real chunk, well below trouble.
    pub const DEFAULT_MAX_LINE: usize = 16 << 20;

    pub fn new() -> Self {
        Self::with_max_line(Self::DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(max_line: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            retry: None,
            max_line,
        }
    }

    /// Feeds bytes; appends every event they complete to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        // An empty read must not clear a pending `\r`: its `\n` may still come next.
        if chunk.is_empty() {
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            match memchr::memchr2(b'\n', b'\r', chunk) {
                None => {
                    if self.line.len() + chunk.len() > self.max_line {
                        return Err(SseError::LineTooLong {
                            limit: self.max_line,
                        });
                    }
                    self.line.extend_from_slice(chunk);
                    return Ok(());
                }
                Some(end) => {
                    let terminator = chunk[end];
                    if self.line.is_empty() {
                        self.process_line(&chunk[..end], out)?;
                    } else {
                        self.line.extend_from_slice(&chunk[..end]);
                        let line = std::mem::take(&mut self.line);
                        self.process_line(&line, out)?;
                        self.line = line;
                        self.line.clear();
                    }
                    chunk = &chunk[end + 1..];
                    if terminator == b'\r' {
                        match chunk.first() {
                            Some(b'\n') => chunk = &chunk[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream ended. Per the spec an event not closed by a blank line is dropped; this
    /// returns true when such a partial event (or partial line) was pending, so a caller can
    /// tell a clean end from a cut one.
    pub fn finish(&mut self) -> bool {
        let partial = !self.line.is_empty() || self.has_data || self.event.is_some();
        self.line.clear();
        self.reset_event();
        partial
    }

    fn reset_event(&mut self) {
        self.event = None;
        self.data.clear();
        self.has_data = false;
        self.retry = None;
    }

    fn process_line(&mut self, mut line: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if self.at_start {
            self.at_start = false;
            if let Some(rest) = line.strip_prefix("\u{feff}".as_bytes()) {
                line = rest;
            }
        }
        if line.is_empty() {
            if self.has_data {
                out.push(SseFrame {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                    id: self.id.clone(),
                    retry: self.retry.take(),
                });
            }
            self.reset_event();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" => self.retry = value.parse().ok(),
            _ => {}
        }
        Ok(())
    }
}

/// Appends one event in wire form: optional `event:` line, one `data:` line per line of data,
/// and the blank line that dispatches it.
pub fn encode_frame(event: Option<&str>, data: &str, out: &mut Vec<u8>) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseFrame> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        out
    }

    const SAMPLE: &str = "\u{feff}: keep-alive\r\nevent: message_start\r\ndata: {\"a\":\"é漢\"}\r\n\r\ndata: one\ndata: two\n\nid: 7\rdata:nospace\r\rdata: [DONE]\n\n";

    fn expected() -> Vec<SseFrame> {
        vec![
            SseFrame {
                event: Some("message_start".into()),
                data: "{\"a\":\"é漢\"}".into(),
                id: None,
                retry: None,
            },
            SseFrame::data("one\ntwo"),
            SseFrame {
                event: None,
                data: "nospace".into(),
                id: Some("7".into()),
                retry: None,
            },
            SseFrame {
                event: None,
                data: "[DONE]".into(),
                id: Some("7".into()),
                retry: None,
            },
        ]
    }

    #[test]
    fn whole_input_decodes() {
        assert_eq!(decode_all(&[SAMPLE.as_bytes()]), expected());
    }

    #[test]
    fn byte_by_byte_decodes_the_same() {
        let bytes = SAMPLE.as_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_all(&chunks), expected());
    }

    proptest! {
        #[test]
        fn any_split_decodes_the_same(cuts in proptest::collection::vec(0usize..SAMPLE.len(), 0..12)) {
            let bytes = SAMPLE.as_bytes();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for c in cuts {
                chunks.push(&bytes[start..c.max(start)]);
                start = c.max(start);
            }
            chunks.push(&bytes[start..]);
            prop_assert_eq!(decode_all(&chunks), expected());
        }
    }

    /// Regression (found by `any_split_decodes_the_same` in CI): an empty chunk between a `\r`
    /// and its `\n` made the `\n` a blank line, dispatching the event early without its type.
    #[test]
    fn an_empty_chunk_between_cr_and_lf_changes_nothing() {
        let bytes = SAMPLE.as_bytes();
        assert_eq!(decode_all(&[&bytes[..38], b"", &bytes[38..]]), expected());
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_finish_reports_partial() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"event: ping\n\ndata: half", &mut out).unwrap();
        assert!(out.is_empty());
        assert!(d.finish());
        let mut d = SseDecoder::new();
        d.feed(b"data: x\n\n", &mut out).unwrap();
        assert!(!d.finish());
    }

    #[test]
    fn overlong_line_is_an_error_not_unbounded_memory() {
        let mut d = SseDecoder::with_max_line(8);
        let mut out = Vec::new();
        assert_eq!(
            d.feed(b"data: 0123456789", &mut out),
            Err(SseError::LineTooLong { limit: 8 })
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        assert_eq!(
            d.feed(b"data: \xff\n\n", &mut out),
            Err(SseError::InvalidUtf8)
        );
    }

    #[test]
    fn encode_then_decode_round_trips_multiline_data() {
        let mut buf = Vec::new();
        encode_frame(Some("error"), "line1\nline2", &mut buf);
        let frames = decode_all(&[&buf]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].event.as_deref(), Some("error"));
        assert_eq!(frames[0].data, "line1\nline2");
    }
}
