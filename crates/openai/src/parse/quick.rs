//! The common request, read in one pass with no serde machinery.
//!
//! On the gateway's plain route the typed parser was the largest item of user time after the
//! answer check (about 4k instructions for a 130-byte request): a visitor per struct, keys
//! matched as strings, two dozen `Option<Option<_>>` slots filled and folded. Most requests
//! are simpler than what it handles: text messages and a few scalar parameters. This reader
//! takes exactly those and says "not sure" (`None`) to anything else — tools, content parts,
//! tool calls, unknown keys (they would go to `extra`), a repeated key, a `\u` escape, a
//! number it cannot read to the same bit — and the typed parser decides. Whatever it takes,
//! the typed and exact parsers take with the same result; the tests in [`super`] hold it to
//! that over every fixture, targeted cases and random edits.

use std::collections::BTreeMap;

use serde_json::Map;
use switchyard_core::{ChatRequest, Content, Message, ReasoningEffort, Role};

use crate::scan::{once, Scan, Sure};

/// The request, or `None` when a serde parser must decide.
pub(super) fn parse_request(body: &[u8]) -> Option<ChatRequest> {
    Scan::new(body).chat_request()
}

/// The parameters a request of this shape can have. `None` is absent or `null`, which the
/// serde parsers read alike.
#[derive(Default)]
struct Fields {
    model: Option<String>,
    messages: Option<Vec<Message>>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_completion_tokens: Option<u32>,
    max_tokens: Option<u32>,
    stop: Option<Vec<String>>,
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    n: Option<u32>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
    reasoning_effort: Option<ReasoningEffort>,
    stream: Option<bool>,
    include_usage: Option<bool>,
    user: Option<String>,
    parallel_tool_calls: Option<bool>,
}

impl Scan<'_> {
    /// The whole body (nothing may follow the object). The request is built last, once
    /// everything is known to be sure, so that it is written once and not moved around.
    fn chat_request(&mut self) -> Sure<ChatRequest> {
        let mut seen = 0;
        let mut f = Fields::default();
        self.object(|s, key| {
            match key {
                b"model" => {
                    once(&mut seen, 0)?;
                    f.model = s.null_or(Self::owned)?;
                }
                b"messages" => {
                    once(&mut seen, 1)?;
                    f.messages = s.null_or(|s| {
                        let mut messages = Vec::new();
                        s.array(|s| {
                            messages.push(s.input_message()?);
                            Some(())
                        })?;
                        Some(messages)
                    })?;
                }
                b"temperature" => {
                    once(&mut seen, 2)?;
                    f.temperature = s.null_or(Self::f64)?;
                }
                b"top_p" => {
                    once(&mut seen, 3)?;
                    f.top_p = s.null_or(Self::f64)?;
                }
                b"max_completion_tokens" => {
                    once(&mut seen, 4)?;
                    f.max_completion_tokens = s.null_or(Self::u32)?;
                }
                b"max_tokens" => {
                    once(&mut seen, 5)?;
                    f.max_tokens = s.null_or(Self::u32)?;
                }
                b"stop" => {
                    once(&mut seen, 6)?;
                    f.stop = s.null_or(Self::stop)?;
                }
                b"seed" => {
                    once(&mut seen, 7)?;
                    f.seed = s.null_or(Self::i64)?;
                }
                b"presence_penalty" => {
                    once(&mut seen, 8)?;
                    f.presence_penalty = s.null_or(Self::f64)?;
                }
                b"frequency_penalty" => {
                    once(&mut seen, 9)?;
                    f.frequency_penalty = s.null_or(Self::f64)?;
                }
                b"n" => {
                    once(&mut seen, 10)?;
                    f.n = s.null_or(Self::u32)?;
                }
                b"logprobs" => {
                    once(&mut seen, 11)?;
                    f.logprobs = s.null_or(Self::bool)?;
                }
                b"top_logprobs" => {
                    once(&mut seen, 12)?;
                    f.top_logprobs = s.null_or(Self::u32)?;
                }
                b"reasoning_effort" => {
                    once(&mut seen, 13)?;
                    f.reasoning_effort = s.null_or(Self::effort)?;
                }
                b"stream" => {
                    once(&mut seen, 14)?;
                    f.stream = s.null_or(Self::bool)?;
                }
                b"stream_options" => {
                    once(&mut seen, 15)?;
                    f.include_usage = s.null_or(Self::stream_options)?.flatten();
                }
                b"user" => {
                    once(&mut seen, 16)?;
                    f.user = s.null_or(Self::owned)?;
                }
                b"parallel_tool_calls" => {
                    once(&mut seen, 17)?;
                    f.parallel_tool_calls = s.null_or(Self::bool)?;
                }
                _ => return None,
            }
            Some(())
        })?;
        if !self.at_end() {
            return None;
        }
        let messages = f.messages.filter(|m| !m.is_empty())?;
        let stream = f.stream.unwrap_or(false);
        Some(ChatRequest {
            model: f.model?,
            messages,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: f.parallel_tool_calls,
            temperature: f.temperature,
            top_p: f.top_p,
            max_output_tokens: f.max_completion_tokens.or(f.max_tokens),
            stop: f.stop.unwrap_or_default(),
            seed: f.seed,
            presence_penalty: f.presence_penalty,
            frequency_penalty: f.frequency_penalty,
            n: f.n,
            logprobs: f.logprobs,
            top_logprobs: f.top_logprobs,
            response_format: None,
            reasoning_effort: f.reasoning_effort,
            stream,
            include_usage: stream && f.include_usage.unwrap_or(false),
            safety: None,
            user: f.user,
            metadata: BTreeMap::new(),
            extra: Map::new(),
        })
    }

    /// A message with text content (or none) and no tool calls. Unknown keys are skipped, as
    /// the serde parsers skip them.
    fn input_message(&mut self) -> Sure<Message> {
        let mut seen = 0;
        let mut role = None;
        let mut content = None;
        let mut name = None;
        let mut tool_call_id = None;
        let mut refusal = None;
        let mut reasoning = None;
        self.object(|s, key| {
            match key {
                b"role" => {
                    once(&mut seen, 0)?;
                    // `tool` needs its call id checked and `function` is refused with
                    // words: both are left to the serde parsers.
                    role = Some(match s.word()? {
                        b"system" => Role::System,
                        b"developer" => Role::Developer,
                        b"user" => Role::User,
                        b"assistant" => Role::Assistant,
                        _ => return None,
                    });
                }
                b"content" => {
                    once(&mut seen, 1)?;
                    content = s.null_or(Self::owned)?;
                }
                b"name" => {
                    once(&mut seen, 2)?;
                    name = s.null_or(Self::owned)?;
                }
                b"tool_call_id" => {
                    once(&mut seen, 3)?;
                    tool_call_id = s.null_or(Self::owned)?;
                }
                b"refusal" => {
                    once(&mut seen, 4)?;
                    refusal = s.null_or(Self::owned)?;
                }
                b"reasoning_content" => {
                    once(&mut seen, 5)?;
                    reasoning = s.null_or(Self::owned)?;
                }
                b"tool_calls" => {
                    once(&mut seen, 6)?;
                    s.literal(b"null")?;
                }
                b"function_call" => {
                    once(&mut seen, 7)?;
                    s.literal(b"null")?;
                }
                b"reasoning_details" => {
                    once(&mut seen, 8)?;
                    s.literal(b"null")?;
                }
                _ => s.skip(3)?,
            }
            Some(())
        })?;
        Some(Message {
            role: role?,
            content: content.map(Content::Text),
            name,
            tool_calls: Vec::new(),
            tool_call_id,
            reasoning,
            reasoning_blocks: Vec::new(),
            refusal,
        })
    }

    /// One string or an array of strings.
    fn stop(&mut self) -> Sure<Vec<String>> {
        if self.peek()? == b'"' {
            return self.owned().map(|s| vec![s]);
        }
        let mut stop = Vec::new();
        self.array(|s| {
            stop.push(s.owned()?);
            Some(())
        })?;
        Some(stop)
    }

    fn effort(&mut self) -> Sure<ReasoningEffort> {
        Some(match self.word()? {
            b"none" => ReasoningEffort::None,
            b"minimal" => ReasoningEffort::Minimal,
            b"low" => ReasoningEffort::Low,
            b"medium" => ReasoningEffort::Medium,
            b"high" => ReasoningEffort::High,
            _ => return None,
        })
    }

    /// `{"include_usage": ...}`; other keys are skipped, as serde skips them.
    fn stream_options(&mut self) -> Sure<Option<bool>> {
        let mut seen = 0;
        let mut include_usage = None;
        self.object(|s, key| {
            match key {
                b"include_usage" => {
                    once(&mut seen, 0)?;
                    include_usage = s.null_or(Self::bool)?;
                }
                _ => s.skip(2)?,
            }
            Some(())
        })?;
        Some(include_usage)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::exact;

    /// The quick reader must decline `body` or read it as the exact parser does.
    fn agrees(body: impl AsRef<[u8]>) -> Result<bool, String> {
        let body = body.as_ref();
        let Some(quick) = super::parse_request(body) else {
            return Ok(false);
        };
        let shown = String::from_utf8_lossy(body);
        match exact::parse_request(body) {
            Ok(exact) if exact == quick => Ok(true),
            Ok(exact) => Err(format!("{shown}\nquick: {quick:?}\nexact: {exact:?}")),
            Err(e) => Err(format!("{shown}\nquick took it, exact: {}", e.message)),
        }
    }

    /// Every request fixture of the OpenAI dialects, as written.
    fn fixture_requests() -> Vec<String> {
        let mut out = Vec::new();
        for dialect in ["openai", "mistral", "deepseek", "qwen"] {
            for case in switchyard_testkit::case_dirs(dialect) {
                if let Ok(body) = std::fs::read_to_string(case.join("request.json")) {
                    out.push(body);
                }
            }
        }
        out.sort();
        assert!(out.len() >= 10, "expected the request fixtures");
        out
    }

    #[test]
    fn takes_common_requests_as_the_exact_parser_reads_them() {
        let taken = [
            r#"{"model":"plain","stream":false,"messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}"#,
            r#"{"model":"m","messages":[{"role":"system","content":"Be \"brief\".\n\tOk\\/ \/ \b\f\r"},{"role":"developer","content":"d","name":"n"},{"role":"user","content":"é€😀"},{"role":"assistant","content":null,"refusal":"no","reasoning_content":"r","tool_calls":null,"function_call":null,"tool_call_id":"x","reasoning_details":null}]}"#,
            r#" { "messages" : [ { "content" : "x" , "role" : "user" , "extra" : [1, {"a": null}, -2.5, true] } ] , "model" : "m" } "#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.7,"top_p":1,"presence_penalty":-0.25,"frequency_penalty":-0,"seed":-3,"n":1,"logprobs":true,"top_logprobs":2,"reasoning_effort":"low","user":"u","parallel_tool_calls":false}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":7,"max_completion_tokens":9,"stop":["a","b"],"stream":true,"stream_options":{"include_usage":true,"other":1}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END","stream_options":{"include_usage":true},"temperature":null,"stream":null,"seed":9223372036854775}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":123456789012.345,"top_p":0.00000000000001}"#,
        ];
        for body in taken {
            assert_eq!(agrees(body), Ok(true), "{body}");
        }
    }

    #[test]
    fn declines_what_it_does_not_follow() {
        let declined = [
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"tool","tool_call_id":"c","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"prediction":{}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"\u00e9"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x","content":"y"}]}"#,
            r#"{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e0}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.1234567890123456}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":-0}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":- 1}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":4294967296}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":7.0}"#,
            r#"{"model":"m","messages":[]}"#,
            r#"{"model":null,"messages":[{"role":"user","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\nb\"}]}",
        ];
        for body in declined {
            assert_eq!(agrees(body), Ok(false), "{body}");
        }
    }

    #[test]
    fn fixtures_are_declined_or_read_alike() {
        let mut taken = 0;
        for body in fixture_requests() {
            if agrees(&body).unwrap() {
                taken += 1;
            }
        }
        assert!(taken >= 3, "the quick reader took only {taken} fixtures");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Random byte edits of real requests (the punctuation, escapes and number characters
        /// most likely to trip a hand-written reader): never a different reading.
        #[test]
        fn random_edits_never_make_the_readers_disagree(
            which in 0usize..64,
            edits in switchyard_testkit::json_edits(),
        ) {
            let requests = fixture_requests();
            let body = requests[which % requests.len()].clone().into_bytes();
            // Not always UTF-8: the edits split multi-byte characters and add stray bytes.
            let body = switchyard_testkit::apply_edits(body, &edits);
            let verdict = agrees(&body);
            prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
        }

        /// Numbers written in every way JSON allows: the same `f64` as serde_json, or none.
        #[test]
        fn numbers_read_to_the_same_bits(
            negative in any::<bool>(),
            integer in "[0-9]{1,17}",
            fraction in proptest::option::of("[0-9]{0,17}"),
        ) {
            let mut text = String::new();
            if negative {
                text.push('-');
            }
            text.push_str(&integer);
            if let Some(fraction) = &fraction {
                text.push('.');
                text.push_str(fraction);
            }
            if let Some(quick) = crate::scan::Scan::new(text.as_bytes()).f64() {
                let serde: f64 = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(quick.to_bits(), serde.to_bits(), "{}", text);
            }
        }
    }
}
