//! The common case of [`super::forwardable`], decided in one pass over the bytes.
//!
//! The serde check reads the body through serde_json's general machinery: a visitor per
//! struct, field names matched as strings, an allocation for the choices. On the gateway's
//! plain route that was the largest single item of user time per request (about 7k
//! instructions for a 400-byte answer). This scanner reads the same shape directly.
//!
//! It answers only "certainly forwardable" or "not sure". Whenever it answers yes, the serde
//! check would too (the tests hold it to that over every fixture, every broken variant and
//! random byte edits); anything it does not follow exactly — a `\u` escape, a number with
//! an exponent or a sign, a repeated key, an escaped key or enum word, deep nesting, any
//! value of an unexpected type — makes it say "not sure", and the serde check decides.

use switchyard_core::Usage;

use crate::scan::{once, Scan, Sure};
use crate::wire::{CompletionTokensDetails, PromptTokensDetails};

/// True only when [`super::checked`] would be true for the same text.
pub(super) fn sure(body: &[u8]) -> bool {
    sure_usage(body).is_some()
}

/// [`sure`], with the usage the body reports (`Some(None)`: none).
pub(super) fn sure_usage(body: &[u8]) -> Option<Option<Usage>> {
    let mut s = Scan::new(body);
    let usage = s.completion()?;
    s.at_end().then_some(usage)
}

/// The answer's shape, read with the shared scanner.
impl Scan<'_> {
    /// `forward::Completion` and its `forwardable` conditions; the usage it reports.
    fn completion(&mut self) -> Sure<Option<Usage>> {
        let mut seen = 0;
        let mut usage = None;
        let (mut id, mut object, mut created, mut model, mut choices) =
            (false, false, false, false, false);
        self.object(|s, key| {
            match key {
                b"id" => {
                    once(&mut seen, 0)?;
                    id = !s.text()?;
                }
                b"object" => {
                    once(&mut seen, 1)?;
                    object = s.word()? == b"chat.completion";
                }
                b"created" => {
                    once(&mut seen, 2)?;
                    created = s.u64()? != 0;
                }
                b"model" => {
                    once(&mut seen, 3)?;
                    s.text()?;
                    model = true;
                }
                b"choices" => {
                    once(&mut seen, 4)?;
                    s.array(Self::choice)?;
                    choices = true;
                }
                b"usage" => {
                    once(&mut seen, 5)?;
                    usage = s.null_or(Self::usage)?;
                }
                b"system_fingerprint" => {
                    once(&mut seen, 6)?;
                    s.null_or(Self::text)?;
                }
                b"service_tier" => {
                    once(&mut seen, 7)?;
                    s.null_or(Self::text)?;
                }
                _ => s.skip(1)?,
            }
            Some(())
        })?;
        (id && object && created && model && choices).then_some(usage)
    }

    /// `forward::Choice`: an index, a message, a finish reason written as read.
    fn choice(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut index, mut message, mut finish) = (false, false, false);
        self.object(|s, key| {
            match key {
                b"index" => {
                    once(&mut seen, 0)?;
                    index = s.u64()? <= u64::from(u32::MAX);
                }
                b"message" => {
                    once(&mut seen, 1)?;
                    s.message()?;
                    message = true;
                }
                b"finish_reason" => {
                    once(&mut seen, 2)?;
                    finish = matches!(
                        s.word()?,
                        b"stop" | b"length" | b"tool_calls" | b"content_filter"
                    );
                }
                b"logprobs" => {
                    once(&mut seen, 3)?;
                    s.skip(3)?;
                }
                _ => s.skip(3)?,
            }
            Some(())
        })?;
        (index && message && finish).then_some(())
    }

    /// `forward::Message`: the assistant's, with tool calls the encoder would write as read.
    fn message(&mut self) -> Sure<()> {
        let mut seen = 0;
        let mut role = false;
        self.object(|s, key| {
            match key {
                b"role" => {
                    once(&mut seen, 0)?;
                    role = s.word()? == b"assistant";
                }
                b"content" => {
                    once(&mut seen, 1)?;
                    s.null_or(Self::text)?;
                }
                b"refusal" => {
                    once(&mut seen, 2)?;
                    s.null_or(Self::text)?;
                }
                b"tool_calls" => {
                    once(&mut seen, 3)?;
                    s.null_or(|s| s.array(Self::tool_call))?;
                }
                b"reasoning_content" => {
                    once(&mut seen, 4)?;
                    s.null_or(Self::text)?;
                }
                b"function_call" => {
                    // Anything but null is the legacy form, which takes the canonical path.
                    once(&mut seen, 5)?;
                    s.literal(b"null")?;
                }
                _ => s.skip(4)?,
            }
            Some(())
        })?;
        role.then_some(())
    }

    /// `forward::ToolCall` with a `function` type and arguments.
    fn tool_call(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut id, mut kind, mut function) = (false, false, false);
        self.object(|s, key| {
            match key {
                b"id" => {
                    once(&mut seen, 0)?;
                    s.text()?;
                    id = true;
                }
                b"type" => {
                    once(&mut seen, 1)?;
                    kind = s.word()? == b"function";
                }
                b"function" => {
                    once(&mut seen, 2)?;
                    s.function()?;
                    function = true;
                }
                _ => s.skip(6)?,
            }
            Some(())
        })?;
        (id && kind && function).then_some(())
    }

    /// `forward::Function` with its arguments present.
    fn function(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut name, mut arguments) = (false, false);
        self.object(|s, key| {
            match key {
                b"name" => {
                    once(&mut seen, 0)?;
                    s.text()?;
                    name = true;
                }
                b"arguments" => {
                    once(&mut seen, 1)?;
                    s.text()?;
                    arguments = true;
                }
                _ => s.skip(7)?,
            }
            Some(())
        })?;
        (name && arguments).then_some(())
    }

    /// `forward::Usage`: the three counts, a total the encoder would not fill in.
    fn usage(&mut self) -> Sure<Usage> {
        let mut seen = 0;
        let (mut prompt, mut completion, mut total) = (None, None, None);
        let (mut p, mut c) = ([None; 4], [None; 4]);
        self.object(|s, key| {
            match key {
                b"prompt_tokens" => {
                    once(&mut seen, 0)?;
                    prompt = Some(s.u64()?);
                }
                b"completion_tokens" => {
                    once(&mut seen, 1)?;
                    completion = Some(s.u64()?);
                }
                b"total_tokens" => {
                    once(&mut seen, 2)?;
                    total = Some(s.u64()?);
                }
                b"prompt_tokens_details" => {
                    once(&mut seen, 3)?;
                    if let Some(found) = s.null_or(|s| {
                        s.counts(&[b"cached_tokens", b"audio_tokens", b"cache_write_tokens"])
                    })? {
                        p = found;
                    }
                }
                b"completion_tokens_details" => {
                    once(&mut seen, 4)?;
                    if let Some(found) = s.null_or(|s| {
                        s.counts(&[
                            b"reasoning_tokens",
                            b"audio_tokens",
                            b"accepted_prediction_tokens",
                            b"rejected_prediction_tokens",
                        ])
                    })? {
                        c = found;
                    }
                }
                _ => s.skip(2)?,
            }
            Some(())
        })?;
        let (prompt, completion, total) = (prompt?, completion?, total?);
        super::usage_forwardable(prompt, completion, total).then_some(())?;
        Some(super::canonical_usage(
            prompt,
            completion,
            total,
            &PromptTokensDetails {
                cached_tokens: p[0],
                audio_tokens: p[1],
                cache_write_tokens: p[2],
            },
            &CompletionTokensDetails {
                reasoning_tokens: c[0],
                audio_tokens: c[1],
                accepted_prediction_tokens: c[2],
                rejected_prediction_tokens: c[3],
            },
        ))
    }

    /// An object whose `known` fields (at most four) are optional counts
    /// (`wire::PromptTokensDetails`, `wire::CompletionTokensDetails`); their values, by
    /// position in `known`.
    fn counts(&mut self, known: &[&[u8]]) -> Sure<[Option<u64>; 4]> {
        let mut seen = 0;
        let mut found = [None; 4];
        self.object(|s, key| {
            match known.iter().position(|k| *k == key) {
                Some(bit) => {
                    once(&mut seen, u32::try_from(bit).ok()?)?;
                    *found.get_mut(bit)? = s.null_or(Self::u64)?;
                }
                None => s.skip(3)?,
            }
            Some(())
        })?;
        Some(found)
    }
}
