//! The native body of the common request, written straight into bytes.
//!
//! [`super::body`] serializes borrowed structs through serde: every key goes through the
//! string escaper, every optional field through a skip test, and the messages are collected
//! into a vector first. For the request most clients send (text messages, scalar parameters)
//! this writes the same bytes directly; anything else (tools, content parts, tool calls,
//! response formats, metadata) is `None` and serde writes it. The tests compare the two byte
//! for byte.

use switchyard_core::{ChatRequest, Content};

use super::{effort_str, role_str};

/// The bytes `serde_json::to_vec(&Body::new(request, model))` would give, or `None` when the
/// request has a part this writer does not know.
pub(super) fn plain(r: &ChatRequest, model: &str) -> Option<Vec<u8>> {
    let simple = r.tools.is_empty()
        && r.tool_choice.is_none()
        && r.response_format.is_none()
        && r.metadata.is_empty()
        && r.messages
            .iter()
            .all(|m| m.tool_calls.is_empty() && !matches!(m.content, Some(Content::Parts(_))));
    if !simple {
        return None;
    }
    let text_len: usize = r
        .messages
        .iter()
        .map(|m| {
            m.content.as_ref().map_or(0, |c| match c {
                Content::Text(t) => t.len(),
                Content::Parts(_) => 0,
            })
        })
        .sum();
    let mut w = Writer {
        out: Vec::with_capacity(128 + text_len + 48 * r.messages.len()),
        first: true,
    };
    w.out.push(b'{');
    // Alphabetical, as `Body` declares its fields.
    w.float("frequency_penalty", r.frequency_penalty)?;
    w.opt("logprobs", r.logprobs, Writer::bool);
    w.opt("max_completion_tokens", r.max_output_tokens, Writer::u32);
    w.key("messages");
    w.out.push(b'[');
    for (i, m) in r.messages.iter().enumerate() {
        if i > 0 {
            w.out.push(b',');
        }
        w.out.push(b'{');
        w.first = true;
        if let Some(Content::Text(text)) = &m.content {
            w.key("content");
            w.string(text);
        }
        w.opt("name", m.name.as_deref(), Writer::string);
        w.opt("refusal", m.refusal.as_deref(), Writer::string);
        w.key("role");
        w.string(role_str(m.role));
        w.opt("tool_call_id", m.tool_call_id.as_deref(), Writer::string);
        w.out.push(b'}');
    }
    w.out.push(b']');
    w.first = false;
    w.key("model");
    w.string(model);
    w.opt("n", r.n, Writer::u32);
    w.opt("parallel_tool_calls", r.parallel_tool_calls, Writer::bool);
    w.float("presence_penalty", r.presence_penalty)?;
    w.opt(
        "reasoning_effort",
        r.reasoning_effort.map(effort_str),
        Writer::string,
    );
    w.opt("seed", r.seed, Writer::i64);
    if !r.stop.is_empty() {
        w.key("stop");
        w.out.push(b'[');
        for (i, s) in r.stop.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            w.string(s);
        }
        w.out.push(b']');
    }
    if r.stream {
        w.key("stream");
        w.out.extend_from_slice(b"true");
        w.key("stream_options");
        w.out.extend_from_slice(br#"{"include_usage":true}"#);
    }
    w.float("temperature", r.temperature)?;
    w.opt("top_logprobs", r.top_logprobs, Writer::u32);
    w.float("top_p", r.top_p)?;
    w.opt("user", r.user.as_deref(), Writer::string);
    w.out.push(b'}');
    Some(w.out)
}

struct Writer {
    out: Vec<u8>,
    /// No field written yet in the current object.
    first: bool,
}

impl Writer {
    /// `"name":`, after a comma unless it is the object's first field. Names are plain ASCII
    /// and need no escaping.
    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn opt<T>(&mut self, name: &str, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        if let Some(v) = value {
            self.key(name);
            write(self, v);
        }
    }

    fn bool(&mut self, v: bool) {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }

    fn u32(&mut self, v: u32) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// Floats through serde_json itself: its shortest-representation formatting is the one
    /// the serde path writes, and `null` for a non-finite value.
    fn float(&mut self, name: &str, value: Option<f64>) -> Option<()> {
        if let Some(v) = value {
            self.key(name);
            serde_json::to_writer(&mut self.out, &v).ok()?;
        }
        Some(())
    }

    /// A JSON string escaped as serde_json escapes: `"` and `\`, the short forms `\b \t \n
    /// \f \r`, `\u00xx` (lower-case hex) for other control characters, everything else as is.
    fn string(&mut self, s: &str) {
        self.out.push(b'"');
        let bytes = s.as_bytes();
        let mut from = 0;
        // The bytes to escape are the scanner's stops inside a string, found a word at a time.
        while let Some(i) = crate::scan::stop_at(bytes, from, false) {
            let c = bytes[i];
            let short = match c {
                b'"' => b'"',
                b'\\' => b'\\',
                0x08 => b'b',
                b'\t' => b't',
                b'\n' => b'n',
                0x0c => b'f',
                b'\r' => b'r',
                _ => b'u',
            };
            self.out.extend_from_slice(&bytes[from..i]);
            from = i + 1;
            if short == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(c >> 4)],
                    HEX[usize::from(c & 0xf)],
                ]);
            } else {
                self.out.extend_from_slice(&[b'\\', short]);
            }
        }
        self.out.extend_from_slice(&bytes[from..]);
        self.out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchyard_core::{ChatRequest, Content, Message, ReasoningEffort, Role};

    use super::super::body::Body;

    /// The writer must decline or write exactly serde's bytes; whether it wrote.
    fn agrees(r: &ChatRequest) -> bool {
        let serde = serde_json::to_vec(&Body::new(r, "up-model")).unwrap();
        match super::plain(r, "up-model") {
            Some(ours) => {
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&serde)
                );
                true
            }
            None => false,
        }
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: "alias".into(),
            messages,
            ..ChatRequest::default()
        }
    }

    #[test]
    fn writes_serde_bytes_for_every_field_it_knows() {
        let mut r = request(vec![
            Message::text(Role::System, "be brief"),
            Message {
                name: Some("n\"1".into()),
                refusal: Some("no".into()),
                tool_call_id: Some("c".into()),
                reasoning: Some("not written".into()),
                content: None,
                ..Message::text(Role::Assistant, "")
            },
            Message::text(
                Role::User,
                "tab\there \u{1} \u{1f} \u{7f} é \\ / \u{8}\u{c}\r\n",
            ),
        ]);
        assert!(agrees(&r));
        r.frequency_penalty = Some(-0.2);
        r.presence_penalty = Some(0.0);
        r.temperature = Some(1.0);
        r.top_p = Some(1e-7);
        r.logprobs = Some(false);
        r.top_logprobs = Some(3);
        r.max_output_tokens = Some(u32::MAX);
        r.n = Some(1);
        r.parallel_tool_calls = Some(true);
        r.reasoning_effort = Some(ReasoningEffort::Minimal);
        r.seed = Some(i64::MIN);
        r.stop = vec!["a".into(), "\"b\"".into()];
        r.user = Some("u".into());
        assert!(agrees(&r));
        r.stream = true;
        r.include_usage = false;
        assert!(agrees(&r));
    }

    #[test]
    fn declines_what_only_serde_writes() {
        let mut r = request(vec![Message::text(Role::User, "x")]);
        r.metadata.insert("k".into(), "v".into());
        assert!(!agrees(&r));
        let mut r = request(vec![Message::text(Role::User, "x")]);
        r.messages[0].content = Some(Content::Parts(Vec::new()));
        assert!(!agrees(&r));
    }

    #[test]
    fn every_request_fixture_is_declined_or_written_alike() {
        let mut written = 0;
        for dialect in ["openai", "mistral", "deepseek", "qwen"] {
            for case in switchyard_testkit::case_dirs(dialect) {
                let Ok(body) = std::fs::read(case.join("request.json")) else {
                    continue;
                };
                // Dialect requests the OpenAI front door does not take are not inputs here.
                let Ok(r) = crate::parse::parse_request(&body) else {
                    continue;
                };
                if r.extra.is_empty() && agrees(&r) {
                    written += 1;
                }
            }
        }
        assert!(written >= 3, "the writer took only {written} fixtures");
    }

    proptest! {
        /// Any text and any numbers: the same bytes as serde_json.
        #[test]
        fn any_text_and_numbers_are_written_as_serde_writes_them(
            texts in proptest::collection::vec(any::<String>(), 1..4),
            float in any::<f64>(),
            seed in any::<i64>(),
            tokens in any::<u32>(),
        ) {
            let mut r = request(
                texts.iter().map(|t| Message::text(Role::User, t.clone())).collect(),
            );
            r.temperature = Some(float);
            r.seed = Some(seed);
            r.max_output_tokens = Some(tokens);
            r.user = texts.first().cloned();
            prop_assert!(agrees(&r));
        }
    }
}
