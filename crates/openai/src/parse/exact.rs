//! The general request parser: the whole body as a `serde_json::Value`, then field by field.
//! Slower than [`super::typed`], but it checks and words every error; it runs whenever the
//! typed path does not take a body.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_core::{
    AudioFormat, ChatRequest, Content, ContentPart, ErrorClass, ImageDetail, Message,
    ReasoningBlock, ResponseFormat, Role, SafetyPolicy, SafetySetting, Tool, ToolCall, ToolChoice,
    UpstreamError,
};

use super::SAFETY_SETTINGS_KEY;
use crate::wire::WireToolCall;

/// Parses an OpenAI chat completion request. Unknown top-level keys go to `extra` verbatim.
pub(super) fn parse_request(body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(invalid("request body must be a JSON object"));
    };
    let mut f = Fields(map);

    for legacy in ["functions", "function_call"] {
        if f.0.contains_key(legacy) {
            return Err(invalid(format!(
                "`{legacy}` (legacy function calling) is not supported; use `tools` and `tool_choice`"
            )));
        }
    }

    let model: String = f
        .take("model")?
        .ok_or_else(|| invalid("missing required field `model`"))?;
    let raw_messages: Vec<InMessage> = f
        .take("messages")?
        .ok_or_else(|| invalid("missing required field `messages`"))?;
    if raw_messages.is_empty() {
        return Err(invalid("`messages` must contain at least one message"));
    }
    let messages = raw_messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| convert_message(i, m))
        .collect::<Result<Vec<_>, _>>()?;

    let tools = match f.take::<Vec<Value>>("tools")? {
        None => Vec::new(),
        Some(tools) => tools
            .into_iter()
            .enumerate()
            .map(|(i, t)| convert_tool(i, t))
            .collect::<Result<_, _>>()?,
    };
    let tool_choice = match f.0.remove("tool_choice") {
        None | Some(Value::Null) => None,
        Some(v) => Some(convert_tool_choice(v)?),
    };
    let max_completion: Option<u32> = f.take("max_completion_tokens")?;
    let max_tokens: Option<u32> = f.take("max_tokens")?;
    let stop = match f.0.remove("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(v) => serde_path_to_error::deserialize::<_, Vec<String>>(v)
            .map_err(|e| field_error("stop", e))?,
    };
    let stream = f.take::<bool>("stream")?.unwrap_or(false);
    let stream_options: Option<InStreamOptions> = f.take("stream_options")?;
    let response_format = f
        .take::<InResponseFormat>("response_format")?
        .map(InResponseFormat::into_canonical);
    let safety = f
        .take::<Vec<SafetySetting>>(SAFETY_SETTINGS_KEY)?
        .map(|settings| SafetyPolicy { settings });

    Ok(ChatRequest {
        model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: f.take("parallel_tool_calls")?,
        temperature: f.take("temperature")?,
        top_p: f.take("top_p")?,
        max_output_tokens: max_completion.or(max_tokens),
        stop,
        seed: f.take("seed")?,
        presence_penalty: f.take("presence_penalty")?,
        frequency_penalty: f.take("frequency_penalty")?,
        n: f.take("n")?,
        logprobs: f.take("logprobs")?,
        top_logprobs: f.take("top_logprobs")?,
        response_format,
        reasoning_effort: f.take("reasoning_effort")?,
        stream,
        include_usage: stream
            && stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        safety,
        user: f.take("user")?,
        metadata: f.take("metadata")?.unwrap_or_default(),
        extra: f.0,
    })
}

fn invalid(message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(ErrorClass::InvalidRequest, message).with_code("invalid_request_error")
}

fn field_error(key: &str, e: serde_path_to_error::Error<serde_json::Error>) -> UpstreamError {
    let path = e.path().to_string();
    let at = join_path(key, &path);
    invalid(format!("`{at}`: {}", e.into_inner()))
}

fn join_path(key: &str, path: &str) -> String {
    match path {
        "." | "" => key.to_string(),
        p if p.starts_with('[') => format!("{key}{p}"),
        p => format!("{key}.{p}"),
    }
}

fn de_at<T: DeserializeOwned>(at: &str, v: Value) -> Result<T, UpstreamError> {
    serde_path_to_error::deserialize(v).map_err(|e| field_error(at, e))
}

/// The top-level object; known keys are taken out, what is left becomes `extra`.
struct Fields(Map<String, Value>);

impl Fields {
    /// An explicit `null` means "not set", as OpenAI's nullable fields do.
    fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, UpstreamError> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => de_at(key, v).map(Some),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum InRole {
    Developer,
    System,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Deserialize)]
struct InMessage {
    role: InRole,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning_details: Option<Value>,
    #[serde(default)]
    function_call: Option<Value>,
}

fn convert_message(i: usize, m: InMessage) -> Result<Message, UpstreamError> {
    let at = format!("messages[{i}]");
    let role = match m.role {
        InRole::Developer => Role::Developer,
        InRole::System => Role::System,
        InRole::User => Role::User,
        InRole::Assistant => Role::Assistant,
        InRole::Tool => Role::Tool,
        InRole::Function => {
            return Err(invalid(format!(
                "`{at}.role`: the legacy `function` role is not supported; use `tool` messages"
            )))
        }
    };
    if m.function_call.is_some_and(|v| !v.is_null()) {
        return Err(invalid(format!(
            "`{at}.function_call`: legacy function calls are not supported; use `tool_calls`"
        )));
    }
    let content = match m.content {
        None | Some(Value::Null) => None,
        Some(c) => Some(convert_content(&format!("{at}.content"), c)?),
    };
    if role == Role::Tool && m.tool_call_id.is_none() {
        return Err(invalid(format!(
            "`{at}.tool_call_id`: required for role `tool`"
        )));
    }
    let mut tool_calls = Vec::new();
    for (j, call) in m.tool_calls.unwrap_or_default().into_iter().enumerate() {
        let call_at = format!("{at}.tool_calls[{j}]");
        match call.get("type").and_then(Value::as_str) {
            None | Some("function") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "`{call_at}.type`: `{other}` tool calls are not supported; only `function`"
                )))
            }
        }
        let call: WireToolCall = de_at(&call_at, call)?;
        tool_calls.push(ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        });
    }
    let reasoning_blocks = match m.reasoning_details {
        None => Vec::new(),
        Some(details) => convert_reasoning_details(&format!("{at}.reasoning_details"), details)?,
    };
    Ok(Message {
        role,
        content,
        name: m.name,
        tool_calls,
        tool_call_id: m.tool_call_id,
        reasoning: m.reasoning_content,
        reasoning_blocks,
        refusal: m.refusal,
    })
}

/// `reasoning.text` in `reasoning_details`; `null`s read as absent.
#[derive(Deserialize)]
pub(super) struct InReasoningText {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) signature: Option<String>,
    #[serde(default)]
    pub(super) format: Option<String>,
}

/// `reasoning.encrypted` in `reasoning_details`.
#[derive(Deserialize)]
pub(super) struct InReasoningEncrypted {
    pub(super) data: String,
    #[serde(default)]
    pub(super) format: Option<String>,
}

impl InReasoningText {
    pub(super) fn into_canonical(self) -> ReasoningBlock {
        ReasoningBlock::Text {
            text: self.text.unwrap_or_default(),
            signature: self.signature,
            format: self.format,
        }
    }
}

impl InReasoningEncrypted {
    pub(super) fn into_canonical(self) -> ReasoningBlock {
        ReasoningBlock::Encrypted {
            data: self.data,
            format: self.format,
        }
    }
}

/// `reasoning_details` (see `response::ReasoningDetailOut`). Entries of other types (OpenRouter's
/// `reasoning.summary`, ...) are skipped: no provider takes them back, and a client that got
/// them elsewhere should not be refused for echoing them.
fn convert_reasoning_details(at: &str, v: Value) -> Result<Vec<ReasoningBlock>, UpstreamError> {
    let Value::Array(items) = v else {
        return Err(invalid(format!(
            "`{at}`: expected an array of reasoning blocks"
        )));
    };
    let mut blocks = Vec::with_capacity(items.len());
    for (k, item) in items.into_iter().enumerate() {
        let item_at = format!("{at}[{k}]");
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning.text") => {
                blocks.push(de_at::<InReasoningText>(&item_at, item)?.into_canonical())
            }
            Some("reasoning.encrypted") => {
                blocks.push(de_at::<InReasoningEncrypted>(&item_at, item)?.into_canonical())
            }
            Some(_) => {}
            None => {
                return Err(invalid(format!(
                    "`{item_at}.type`: missing; expected `reasoning.text` or `reasoning.encrypted`"
                )))
            }
        }
    }
    Ok(blocks)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InPart {
    Text { text: String },
    ImageUrl { image_url: InImage },
    File { file: InFile },
    InputAudio { input_audio: InAudio },
}

/// `file`: exactly one of `file_data` (a `data:<MIME type>;base64,` URL, or bare base64) and
/// `file_id`, and an optional `filename`.
#[derive(Deserialize)]
pub(super) struct InFile {
    #[serde(default)]
    pub(super) file_data: Option<String>,
    #[serde(default)]
    pub(super) file_id: Option<String>,
    #[serde(default)]
    pub(super) filename: Option<String>,
}

impl InFile {
    /// The canonical part, or what is wrong with it (the caller names the field).
    pub(super) fn into_canonical(self) -> Result<ContentPart, &'static str> {
        match (self.file_data, self.file_id) {
            (Some(data), None) => {
                let (media_type, data) =
                    match data.strip_prefix("data:") {
                        Some(rest) => match rest.split_once(";base64,") {
                            Some((mime, b64)) if !mime.is_empty() && !mime.contains(',') => {
                                (Some(mime.to_string()), b64.to_string())
                            }
                            _ => return Err(
                                "`file_data` must be base64 or a `data:<MIME type>;base64,` URL",
                            ),
                        },
                        None => (None, data),
                    };
                Ok(ContentPart::File {
                    data,
                    media_type,
                    filename: self.filename,
                })
            }
            (None, Some(file_id)) => Ok(ContentPart::FileId {
                file_id,
                filename: self.filename,
            }),
            _ => Err("expected exactly one of `file_data` and `file_id`"),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct InAudio {
    pub(super) data: String,
    pub(super) format: AudioFormat,
}

#[derive(Deserialize)]
pub(super) struct InImage {
    pub(super) url: String,
    #[serde(default)]
    pub(super) detail: Option<ImageDetail>,
}

fn convert_content(at: &str, c: Value) -> Result<Content, UpstreamError> {
    match c {
        Value::String(s) => Ok(Content::Text(s)),
        Value::Array(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| {
                let part_at = format!("{at}[{j}]");
                const EXPECTED: &str = "expected `text`, `image_url`, `file` or `input_audio`";
                match part.get("type").and_then(Value::as_str) {
                    Some("refusal") => {
                        return Err(invalid(format!(
                            "`{part_at}`: `refusal` content parts are not supported; {EXPECTED}"
                        )))
                    }
                    Some("text" | "image_url" | "file" | "input_audio") => {}
                    Some(other) => {
                        return Err(invalid(format!(
                            "`{part_at}.type`: unknown content part type `{other}`; {EXPECTED}"
                        )))
                    }
                    None => return Err(invalid(format!("`{part_at}.type`: missing; {EXPECTED}"))),
                }
                Ok(match de_at::<InPart>(&part_at, part)? {
                    InPart::Text { text } => ContentPart::Text { text },
                    InPart::ImageUrl { image_url } => ContentPart::ImageUrl {
                        url: image_url.url,
                        detail: image_url.detail,
                    },
                    InPart::File { file } => file
                        .into_canonical()
                        .map_err(|e| invalid(format!("`{part_at}.file`: {e}")))?,
                    InPart::InputAudio { input_audio } => ContentPart::InputAudio {
                        data: input_audio.data,
                        format: input_audio.format,
                    },
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Content::Parts),
        _ => Err(invalid(format!(
            "`{at}`: expected a string or an array of content parts"
        ))),
    }
}

#[derive(Deserialize)]
pub(super) struct InFunction {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) parameters: Option<Value>,
    #[serde(default)]
    pub(super) strict: Option<bool>,
}

fn convert_tool(i: usize, t: Value) -> Result<Tool, UpstreamError> {
    let at = format!("tools[{i}]");
    match t.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some("custom") => {
            return Err(invalid(format!(
                "`{at}.type`: custom tools are not supported; use `function` tools"
            )))
        }
        Some(other) => {
            return Err(invalid(format!(
                "`{at}.type`: unknown tool type `{other}`; expected `function`"
            )))
        }
        None => {
            return Err(invalid(format!(
                "`{at}.type`: missing; expected `function`"
            )))
        }
    }
    let f = t
        .get("function")
        .cloned()
        .ok_or_else(|| invalid(format!("`{at}.function`: missing")))?;
    let f: InFunction = de_at(&format!("{at}.function"), f)?;
    Ok(Tool {
        name: f.name,
        description: f.description,
        parameters: f.parameters,
        strict: f.strict,
    })
}

fn convert_tool_choice(v: Value) -> Result<ToolChoice, UpstreamError> {
    match &v {
        Value::String(s) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid(format!(
                "`tool_choice`: unknown value `{other}`; expected `none`, `auto`, `required` or an object"
            ))),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|name| ToolChoice::Function {
                    name: name.to_string(),
                })
                .ok_or_else(|| invalid("`tool_choice.function.name`: missing or not a string")),
            Some(other) => Err(invalid(format!(
                "`tool_choice.type`: `{other}` is not supported; expected `function`"
            ))),
            None => Err(invalid("`tool_choice.type`: missing")),
        },
        _ => Err(invalid(
            "`tool_choice`: expected a string or an object",
        )),
    }
}

#[derive(Deserialize)]
pub(super) struct InStreamOptions {
    #[serde(default)]
    pub(super) include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum InResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: InJsonSchema },
}

#[derive(Deserialize)]
pub(super) struct InJsonSchema {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

impl InResponseFormat {
    pub(super) fn into_canonical(self) -> ResponseFormat {
        match self {
            InResponseFormat::Text => ResponseFormat::Text,
            InResponseFormat::JsonObject => ResponseFormat::JsonObject,
            InResponseFormat::JsonSchema { json_schema: s } => ResponseFormat::JsonSchema {
                name: s.name,
                description: s.description,
                schema: s.schema.unwrap_or_else(|| Value::Object(Map::new())),
                strict: s.strict,
            },
        }
    }
}
