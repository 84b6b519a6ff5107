//! Mistral's response and stream-chunk shapes where they differ from OpenAI's: `content` may be
//! an array of chunks (`text`, `thinking`, ...) and a tool call's `arguments` may be an object.
//! Everything else is read by the OpenAI crate.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// `ChatCompletionResponse`.
#[derive(Debug, Deserialize)]
pub struct Completion {
    pub id: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: Message,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Chunks(Vec<Chunk>),
}

/// A `ContentChunk`. Only text and thinking carry anything the canonical model keeps.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Chunk {
    Text {
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: Vec<Chunk>,
    },
    #[serde(other)]
    Other,
}

impl Content {
    /// (text, thinking text); `None` where there was none.
    pub fn split(self) -> (Option<String>, Option<String>) {
        match self {
            Content::Text(t) => (Some(t), None),
            Content::Chunks(chunks) => {
                let (mut text, mut thinking) = (None::<String>, None::<String>);
                for c in chunks {
                    match c {
                        Chunk::Text { text: t } => {
                            text.get_or_insert_with(String::new).push_str(&t)
                        }
                        Chunk::Thinking { thinking: inner } => {
                            let t = thinking.get_or_insert_with(String::new);
                            for i in inner {
                                if let Chunk::Text { text } = i {
                                    t.push_str(&text);
                                }
                            }
                        }
                        Chunk::Other => {}
                    }
                }
                (text, thinking)
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub id: Option<String>,
    pub function: FunctionCall,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// `arguments` as JSON text: a string is taken as is, an object is serialized compactly.
pub fn arguments_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One `data:` frame: a `CompletionChunk`, or an error object (`"object": "error"`).
#[derive(Debug, Deserialize)]
pub struct StreamChunk<'a> {
    #[serde(default, borrow)]
    pub object: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default, borrow)]
    pub choices: Vec<StreamChoice<'a>>,
    #[serde(default, borrow)]
    pub usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct StreamChoice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct Delta<'a> {
    /// A string, `null`, or an array of chunks.
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallChunk<'a>>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallChunk<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function: Option<FunctionChunk<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionChunk<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    /// A string or an object.
    #[serde(default, borrow)]
    pub arguments: Option<&'a RawValue>,
}
