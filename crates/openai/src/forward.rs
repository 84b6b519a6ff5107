//! Deciding whether an upstream `chat.completion` can go to an OpenAI client byte for byte.
//!
//! Parsing an answer into the canonical model and encoding it again was a fifth of the
//! gateway's own CPU time on a plain OpenAI route. When the upstream already speaks OpenAI,
//! a check that reads the body once, allocates nothing for its strings and builds nothing
//! is enough, and the client then also gets the fields we do not model.
//!
//! The check accepts a body only when
//! - [`crate::response::from_native`] would accept it (the same fields are required with
//!   the same types), so a malformed answer still fails over, with the same error; and
//! - everything [`crate::response::encode`] would write is already in it with the same value,
//!   so the client cannot tell which path its answer took. Where the encoder would fill in or
//!   normalise something (a missing `role`, a finish reason it maps to `stop`, a legacy
//!   `function_call`, a usage total of 0), the body takes the canonical path instead.
//!
//! The tests check both properties over every OpenAI fixture and over broken variants of them.
//!
//! Two readers implement the check: [`quick`] takes the common case in one pass over the
//! bytes and says yes only when sure; the serde reader below decides everything else.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use crate::wire::{null_as_default, CompletionTokensDetails, PromptTokensDetails};

mod quick;

/// True when `body` can be forwarded unchanged (see the module docs).
pub fn forwardable(body: &[u8]) -> bool {
    check(body).is_some()
}

/// [`forwardable`], with the usage the body reports (`Some(None)`: forwardable, no usage),
/// read on the way: both readers parse the counts anyway.
pub fn check(body: &[u8]) -> Option<Option<switchyard_core::Usage>> {
    // The quick reader checks UTF-8 as it reads; the serde reader takes a checked `&str` so
    // that it does not check every key and string again.
    if let Some(usage) = quick::sure_usage(body) {
        return Some(usage);
    }
    checked_usage(std::str::from_utf8(body).ok()?)
}

/// The quick reader alone: true only when it is sure. For the tests, which hold it to
/// [`checked`].
#[doc(hidden)]
pub fn quick_sure(body: &[u8]) -> bool {
    quick::sure(body)
}

/// The serde reader alone: the reference for every case.
#[doc(hidden)]
pub fn checked(text: &str) -> bool {
    checked_usage(text).is_some()
}

/// The serde reader, with the usage it read.
#[doc(hidden)]
pub fn checked_usage(text: &str) -> Option<Option<switchyard_core::Usage>> {
    let Ok(Object(c)) = serde_json::from_str::<Object<Completion>>(text) else {
        return None;
    };
    let forwardable = c.object == Some("chat.completion")
        && !c.id.0
        && c.created != 0
        && c.choices.iter().all(|c| c.0.forwardable())
        && c.usage.as_ref().is_none_or(|u| u.0.forwardable());
    forwardable.then(|| c.usage.map(|Object(u)| u.canonical()))
}

/// Canonical usage from the counts of OpenAI's `CompletionUsage`, as
/// [`crate::response::usage_from_native`] reads them (without keeping the native object).
pub(crate) fn canonical_usage(
    prompt: u64,
    completion: u64,
    total: u64,
    prompt_details: &PromptTokensDetails,
    completion_details: &CompletionTokensDetails,
) -> switchyard_core::Usage {
    switchyard_core::Usage {
        input_tokens: prompt,
        output_tokens: completion,
        total_tokens: total,
        cached_input_tokens: prompt_details.cached_tokens,
        cache_creation_input_tokens: prompt_details.cache_write_tokens,
        reasoning_tokens: completion_details.reasoning_tokens,
        input_audio_tokens: prompt_details.audio_tokens,
        output_audio_tokens: completion_details.audio_tokens,
        accepted_prediction_tokens: completion_details.accepted_prediction_tokens,
        rejected_prediction_tokens: completion_details.rejected_prediction_tokens,
        native: None,
    }
}

/// A struct read from a JSON object only. serde also reads a struct from an array, by field
/// position, and so does `from_native` (with its own field order); the encoder would write an
/// object, so only objects are forwarded.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// `wire::WireUsage` with the counts required rather than defaulted: the encoder writes all
/// three.
#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<Object<PromptTokensDetails>>,
    #[serde(default)]
    completion_tokens_details: Option<Object<CompletionTokensDetails>>,
}

impl Usage {
    fn canonical(self) -> switchyard_core::Usage {
        canonical_usage(
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
            &self.prompt_tokens_details.map(|o| o.0).unwrap_or_default(),
            &self
                .completion_tokens_details
                .map(|o| o.0)
                .unwrap_or_default(),
        )
    }

    fn forwardable(&self) -> bool {
        usage_forwardable(
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
        )
    }
}

/// A total of 0 is filled in by the encoder, unless there is nothing to add up.
fn usage_forwardable(prompt: u64, completion: u64, total: u64) -> bool {
    total != 0 || (prompt == 0 && completion == 0)
}

/// `wire::ChatCompletion`, checked instead of owned.
#[derive(Deserialize)]
struct Completion<'a> {
    id: Str,
    #[serde(default, borrow)]
    object: Option<&'a str>,
    #[serde(default)]
    created: u64,
    #[allow(dead_code)]
    model: Str,
    #[serde(borrow)]
    choices: Vec<Object<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Object<Usage>>,
    #[allow(dead_code)]
    #[serde(default)]
    system_fingerprint: Option<Str>,
    #[allow(dead_code)]
    #[serde(default)]
    service_tier: Option<Str>,
}

/// `wire::CompletionChoice`.
#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow)]
    message: Object<Message<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<&'a str>,
    #[allow(dead_code)]
    #[serde(default)]
    logprobs: Option<IgnoredAny>,
}

impl Choice<'_> {
    fn forwardable(&self) -> bool {
        // The encoder writes `stop` for a missing or unknown reason; these it writes as read.
        let known = matches!(
            self.finish_reason,
            Some("stop" | "length" | "tool_calls" | "content_filter")
        );
        self.index.is_some() && known && self.message.0.forwardable()
    }
}

/// `wire::ResponseMessage`.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    role: Option<&'a str>,
    #[allow(dead_code)]
    #[serde(default)]
    content: Option<Str>,
    #[allow(dead_code)]
    #[serde(default)]
    refusal: Option<Str>,
    #[serde(default, borrow, deserialize_with = "null_as_default")]
    tool_calls: Vec<Object<ToolCall<'a>>>,
    #[allow(dead_code)]
    #[serde(default)]
    reasoning_content: Option<Str>,
    /// Deprecated; the encoder turns it into a tool call, so it takes the canonical path.
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

impl Message<'_> {
    fn forwardable(&self) -> bool {
        self.role == Some("assistant")
            && self.function_call.is_none()
            && self.tool_calls.iter().all(|Object(t)| {
                // The encoder always writes the type and the arguments.
                t.kind == Some("function") && t.function.0.arguments.is_some()
            })
    }
}

/// `wire::WireToolCall`.
#[derive(Deserialize)]
struct ToolCall<'a> {
    #[allow(dead_code)]
    id: Str,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a str>,
    function: Object<Function>,
}

/// `wire::WireFunctionCall`.
#[derive(Deserialize)]
struct Function {
    #[allow(dead_code)]
    name: Str,
    #[serde(default)]
    arguments: Option<Str>,
}

/// A JSON string, checked and not kept. serde_json hands an escaped string to `visit_str`
/// from its scratch buffer, so this never allocates. Holds whether the string was empty.
struct Str(bool);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Str, E> {
                Ok(Str(s.is_empty()))
            }
        }
        d.deserialize_str(V)
    }
}
