//! The typed request parser: one pass over the body straight into borrowed / typed structs,
//! with no `serde_json::Value` for the whole body (only `extra` keys and tool schemas, which
//! the canonical request keeps as `Value`s, become one).
//!
//! It reports no errors: any surprise (a bad value, a duplicate key, an odd shape) returns
//! `None` and [`super::exact`] parses the body again and words the error. So its one rule is
//! that whatever it accepts, the exact parser accepts with the same result; the types below
//! are the exact parser's own, or stricter twins, and the tests compare both paths.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_core::{
    ChatRequest, Content, ContentPart, Message, ReasoningEffort, Role, SafetyPolicy, SafetySetting,
    Tool, ToolCall, ToolChoice,
};

use super::exact::{
    InAudio, InFile, InFunction, InImage, InReasoningEncrypted, InReasoningText, InResponseFormat,
    InRole, InStreamOptions,
};
use crate::wire::WireFunctionCall;

/// The request, or `None` when the exact parser must decide. The body arrives as `str`
/// because skipped values (unknown keys inside messages, tools, ...) are not checked for
/// UTF-8, nor for unpaired `\uD800`-`\uDFFF` escapes, both of which the exact parser rejects
/// anywhere.
pub(super) fn parse_request(body: &str) -> Option<ChatRequest> {
    if switchyard_core::may_hold_surrogate_escape(body.as_bytes()) {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(body);
    let request = de.deserialize_map(RequestVisitor).ok()?;
    de.end().ok()?;
    Some(request)
}

fn bail<E: de::Error>() -> E {
    E::custom("left to the exact parser")
}

/// Sets a field once; a key given twice is left to the exact parser (which keeps the last).
fn set_once<T, E: de::Error>(slot: &mut Option<Option<T>>, value: Option<T>) -> Result<(), E> {
    if slot.is_some() {
        return Err(bail());
    }
    *slot = Some(value);
    Ok(())
}

#[derive(Default)]
struct Fields {
    model: Option<Option<String>>,
    messages: Option<Option<Vec<MapOnly<InMessage>>>>,
    tools: Option<Option<Vec<MapOnly<InTool>>>>,
    tool_choice: Option<Option<InToolChoice>>,
    parallel_tool_calls: Option<Option<bool>>,
    temperature: Option<Option<f64>>,
    top_p: Option<Option<f64>>,
    max_completion_tokens: Option<Option<u32>>,
    max_tokens: Option<Option<u32>>,
    stop: Option<Option<InStop>>,
    seed: Option<Option<i64>>,
    presence_penalty: Option<Option<f64>>,
    frequency_penalty: Option<Option<f64>>,
    n: Option<Option<u32>>,
    logprobs: Option<Option<bool>>,
    top_logprobs: Option<Option<u32>>,
    response_format: Option<Option<InResponseFormat>>,
    reasoning_effort: Option<Option<ReasoningEffort>>,
    stream: Option<Option<bool>>,
    stream_options: Option<Option<InStreamOptions>>,
    safety_settings: Option<Option<Vec<SafetySetting>>>,
    user: Option<Option<String>>,
    metadata: Option<Option<BTreeMap<String, String>>>,
    extra: Map<String, Value>,
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = ChatRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chat completion request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatRequest, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            // `Option<T>` reads an explicit `null` as "not set", as the exact parser does.
            match key.0.as_ref() {
                "model" => set_once(&mut f.model, map.next_value()?)?,
                "messages" => set_once(&mut f.messages, map.next_value()?)?,
                "tools" => set_once(&mut f.tools, map.next_value()?)?,
                "tool_choice" => set_once(&mut f.tool_choice, map.next_value()?)?,
                "parallel_tool_calls" => set_once(&mut f.parallel_tool_calls, map.next_value()?)?,
                "temperature" => set_once(&mut f.temperature, map.next_value()?)?,
                "top_p" => set_once(&mut f.top_p, map.next_value()?)?,
                "max_completion_tokens" => {
                    set_once(&mut f.max_completion_tokens, map.next_value()?)?
                }
                "max_tokens" => set_once(&mut f.max_tokens, map.next_value()?)?,
                "stop" => set_once(&mut f.stop, map.next_value()?)?,
                "seed" => set_once(&mut f.seed, map.next_value()?)?,
                "presence_penalty" => set_once(&mut f.presence_penalty, map.next_value()?)?,
                "frequency_penalty" => set_once(&mut f.frequency_penalty, map.next_value()?)?,
                "n" => set_once(&mut f.n, map.next_value()?)?,
                "logprobs" => set_once(&mut f.logprobs, map.next_value()?)?,
                "top_logprobs" => set_once(&mut f.top_logprobs, map.next_value()?)?,
                "response_format" => set_once(&mut f.response_format, map.next_value()?)?,
                "reasoning_effort" => set_once(&mut f.reasoning_effort, map.next_value()?)?,
                "stream" => set_once(&mut f.stream, map.next_value()?)?,
                "stream_options" => set_once(&mut f.stream_options, map.next_value()?)?,
                super::SAFETY_SETTINGS_KEY => set_once(&mut f.safety_settings, map.next_value()?)?,
                "user" => set_once(&mut f.user, map.next_value()?)?,
                "metadata" => set_once(&mut f.metadata, map.next_value()?)?,
                // Legacy function calling is rejected, with the exact parser's words.
                "functions" | "function_call" => return Err(bail()),
                _ => {
                    let value: Value = map.next_value()?;
                    f.extra.insert(key.0.into_owned(), value);
                }
            }
        }
        f.into_request().ok_or_else(bail)
    }
}

impl Fields {
    fn into_request(self) -> Option<ChatRequest> {
        let model = self.model.flatten()?;
        let messages = self.messages.flatten()?;
        if messages.is_empty() {
            return None;
        }
        let messages = messages
            .into_iter()
            .map(|m| m.0.into_canonical())
            .collect::<Option<Vec<_>>>()?;
        let tools = self
            .tools
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0.into_canonical())
            .collect::<Option<Vec<_>>>()?;
        let stream = self.stream.flatten().unwrap_or(false);
        let include_usage = stream
            && self
                .stream_options
                .flatten()
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
        Some(ChatRequest {
            model,
            messages,
            tools,
            tool_choice: self.tool_choice.flatten().map(|c| c.0),
            parallel_tool_calls: self.parallel_tool_calls.flatten(),
            temperature: self.temperature.flatten(),
            top_p: self.top_p.flatten(),
            max_output_tokens: self
                .max_completion_tokens
                .flatten()
                .or(self.max_tokens.flatten()),
            stop: self.stop.flatten().map(|s| s.0).unwrap_or_default(),
            seed: self.seed.flatten(),
            presence_penalty: self.presence_penalty.flatten(),
            frequency_penalty: self.frequency_penalty.flatten(),
            n: self.n.flatten(),
            logprobs: self.logprobs.flatten(),
            top_logprobs: self.top_logprobs.flatten(),
            response_format: self
                .response_format
                .flatten()
                .map(InResponseFormat::into_canonical),
            reasoning_effort: self.reasoning_effort.flatten(),
            stream,
            include_usage,
            safety: self
                .safety_settings
                .flatten()
                .map(|settings| SafetyPolicy { settings }),
            user: self.user.flatten(),
            metadata: self.metadata.flatten().unwrap_or_default(),
            extra: self.extra,
        })
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `T` from a JSON object only. Derived structs also accept an array (fields by position),
/// where the exact parser, which looks keys up in a map, would not.
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MapOnly<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(MapOnly)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A message; field for field the exact parser's `InMessage`, strings borrowed where they
/// only need checking.
#[derive(Deserialize)]
struct InMessage {
    role: InRole,
    #[serde(default)]
    content: Option<InContent>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<MapOnly<InToolCall>>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning_details: Option<Vec<MapOnly<InReasoningDetail>>>,
    /// Legacy; any non-null value is rejected.
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

impl InMessage {
    fn into_canonical(self) -> Option<Message> {
        let role = match self.role {
            InRole::Developer => Role::Developer,
            InRole::System => Role::System,
            InRole::User => Role::User,
            InRole::Assistant => Role::Assistant,
            InRole::Tool => Role::Tool,
            InRole::Function => return None,
        };
        if self.function_call.is_some() || (role == Role::Tool && self.tool_call_id.is_none()) {
            return None;
        }
        let tool_calls = self
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|MapOnly(c)| {
                (c.kind == "function").then_some(ToolCall {
                    id: c.id,
                    name: c.function.name,
                    arguments: c.function.arguments,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let mut reasoning_blocks = Vec::new();
        for MapOnly(d) in self.reasoning_details.unwrap_or_default() {
            match d.kind.as_ref() {
                "reasoning.text" => reasoning_blocks.push(
                    InReasoningText {
                        text: d.text,
                        signature: d.signature,
                        format: d.format,
                    }
                    .into_canonical(),
                ),
                "reasoning.encrypted" => reasoning_blocks.push(
                    InReasoningEncrypted {
                        data: d.data?,
                        format: d.format,
                    }
                    .into_canonical(),
                ),
                _ => {}
            }
        }
        Some(Message {
            role,
            content: self.content.map(|c| c.0),
            name: self.name,
            tool_calls,
            tool_call_id: self.tool_call_id,
            reasoning: self.reasoning_content,
            reasoning_blocks,
            refusal: self.refusal,
        })
    }
}

/// One `reasoning_details` entry with every field the exact parser may read typed (stricter:
/// a field of the wrong type, even one its kind does not use, leaves the body to it).
#[derive(Deserialize)]
struct InReasoningDetail {
    #[serde(rename = "type")]
    kind: Cow<'static, str>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

/// `WireToolCall` with a borrowed `type`: absent means `function`, `null` is an error.
#[derive(Deserialize)]
struct InToolCall {
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: Cow<'static, str>,
    function: WireFunctionCall,
}

fn function_type() -> Cow<'static, str> {
    Cow::Borrowed("function")
}

/// A string, or an array of content parts.
struct InContent(Content);

impl<'de> Deserialize<'de> for InContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InContent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E>(self, s: &str) -> Result<InContent, E> {
                Ok(InContent(Content::Text(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<InContent, E> {
                Ok(InContent(Content::Text(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(MapOnly(part)) = seq.next_element::<MapOnly<InPart<'de>>>()? {
                    parts.push(part.into_canonical().ok_or_else(bail)?);
                }
                Ok(InContent(Content::Parts(parts)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A content part with its `type` read first-class; `text`, `image_url`, `file` and
/// `input_audio` are taken.
#[derive(Deserialize)]
struct InPart<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<InImage>,
    #[serde(default)]
    file: Option<MapOnly<InFile>>,
    #[serde(default)]
    input_audio: Option<MapOnly<InAudio>>,
}

impl InPart<'_> {
    fn into_canonical(self) -> Option<ContentPart> {
        match self.kind.as_ref() {
            "text" => self.text.map(|text| ContentPart::Text { text }),
            "image_url" => self.image_url.map(|image| ContentPart::ImageUrl {
                url: image.url,
                detail: image.detail,
            }),
            "file" => self.file?.0.into_canonical().ok(),
            "input_audio" => self.input_audio.map(|MapOnly(a)| ContentPart::InputAudio {
                data: a.data,
                format: a.format,
            }),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct InTool {
    #[serde(rename = "type")]
    kind: Cow<'static, str>,
    function: MapOnly<InFunction>,
}

impl InTool {
    fn into_canonical(self) -> Option<Tool> {
        let f = self.function.0;
        (self.kind == "function").then_some(Tool {
            name: f.name,
            description: f.description,
            parameters: f.parameters,
            strict: f.strict,
        })
    }
}

/// `none` / `auto` / `required`, or `{"type": "function", "function": {"name": ...}}`.
struct InToolChoice(ToolChoice);

impl<'de> Deserialize<'de> for InToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Named<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            function: MapOnly<Name>,
        }
        #[derive(Deserialize)]
        struct Name {
            name: String,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InToolChoice;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<InToolChoice, E> {
                match s {
                    "none" => Ok(InToolChoice(ToolChoice::None)),
                    "auto" => Ok(InToolChoice(ToolChoice::Auto)),
                    "required" => Ok(InToolChoice(ToolChoice::Required)),
                    _ => Err(bail()),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InToolChoice, A::Error> {
                let named = Named::deserialize(MapAccessDeserializer::new(map))?;
                if named.kind != "function" {
                    return Err(bail());
                }
                Ok(InToolChoice(ToolChoice::Function {
                    name: named.function.0.name,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// `stop`: one string or an array of strings.
struct InStop(Vec<String>);

impl<'de> Deserialize<'de> for InStop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InStop;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E>(self, s: &str) -> Result<InStop, E> {
                Ok(InStop(vec![s.to_string()]))
            }
            fn visit_string<E>(self, s: String) -> Result<InStop, E> {
                Ok(InStop(vec![s]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InStop, A::Error> {
                let mut stop = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    stop.push(s);
                }
                Ok(InStop(stop))
            }
        }
        d.deserialize_any(V)
    }
}
