//! The native request body serialized straight from borrowed structs, for the usual request
//! with no `extra` keys. Field order is alphabetical at every level, so the bytes are those
//! of serializing [`super::to_native`]'s (sorted) map; the tests compare the two.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use switchyard_core::{ChatRequest, Content, ContentPart, Message, ResponseFormat, ToolChoice};

use super::{detail_str, effort_str, file_data, role_str};
use std::borrow::Cow;

#[derive(Serialize)]
pub(super) struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormatOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

impl<'a> Body<'a> {
    pub(super) fn new(r: &'a ChatRequest, model: &'a str) -> Self {
        Body {
            frequency_penalty: r.frequency_penalty,
            logprobs: r.logprobs,
            max_completion_tokens: r.max_output_tokens,
            messages: r.messages.iter().map(MessageOut::new).collect(),
            metadata: &r.metadata,
            model,
            n: r.n,
            parallel_tool_calls: r.parallel_tool_calls,
            presence_penalty: r.presence_penalty,
            reasoning_effort: r.reasoning_effort.map(effort_str),
            response_format: r.response_format.as_ref().map(ResponseFormatOut::new),
            seed: r.seed,
            stop: &r.stop,
            stream: r.stream.then_some(true),
            stream_options: r.stream.then_some(StreamOptions {
                include_usage: true,
            }),
            temperature: r.temperature,
            tool_choice: r.tool_choice.as_ref().map(ToolChoiceOut::new),
            tools: r
                .tools
                .iter()
                .map(|t| ToolOut {
                    function: FunctionOut {
                        description: t.description.as_deref(),
                        name: &t.name,
                        parameters: t.parameters.as_ref(),
                        strict: t.strict,
                    },
                    kind: "function",
                })
                .collect(),
            top_logprobs: r.top_logprobs,
            top_p: r.top_p,
            user: r.user.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

impl<'a> MessageOut<'a> {
    fn new(m: &'a Message) -> Self {
        MessageOut {
            content: m.content.as_ref().map(|c| match c {
                Content::Text(t) => ContentOut::Text(t),
                Content::Parts(parts) => ContentOut::Parts(
                    parts
                        .iter()
                        .map(|p| match p {
                            ContentPart::Text { text } => PartOut::Text { text, kind: "text" },
                            ContentPart::ImageUrl { url, detail } => PartOut::ImageUrl {
                                image_url: ImageOut {
                                    detail: detail.map(detail_str),
                                    url,
                                },
                                kind: "image_url",
                            },
                            ContentPart::File {
                                data,
                                media_type,
                                filename,
                            } => PartOut::File {
                                file: FileOut {
                                    file_data: Some(file_data(data, media_type.as_deref())),
                                    file_id: None,
                                    filename: filename.as_deref(),
                                },
                                kind: "file",
                            },
                            ContentPart::FileId { file_id, filename } => PartOut::File {
                                file: FileOut {
                                    file_data: None,
                                    file_id: Some(file_id),
                                    filename: filename.as_deref(),
                                },
                                kind: "file",
                            },
                            ContentPart::InputAudio { data, format } => PartOut::InputAudio {
                                input_audio: AudioOut {
                                    data,
                                    format: format.as_str(),
                                },
                                kind: "input_audio",
                            },
                        })
                        .collect(),
                ),
            }),
            name: m.name.as_deref(),
            refusal: m.refusal.as_deref(),
            role: role_str(m.role),
            tool_call_id: m.tool_call_id.as_deref(),
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| ToolCallOut {
                    function: CallOut {
                        arguments: &c.arguments,
                        name: &c.name,
                    },
                    id: &c.id,
                    kind: "function",
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ContentOut<'a> {
    Text(&'a str),
    Parts(Vec<PartOut<'a>>),
}

/// Tagged by hand: serde's internal tagging writes `type` first, the sorted map last.
#[derive(Serialize)]
#[serde(untagged)]
enum PartOut<'a> {
    Text {
        text: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    ImageUrl {
        image_url: ImageOut<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    File {
        file: FileOut<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    InputAudio {
        input_audio: AudioOut<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'a str>,
}

#[derive(Serialize)]
struct AudioOut<'a> {
    data: &'a str,
    format: &'static str,
}

#[derive(Serialize)]
struct ImageOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
    url: &'a str,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    function: CallOut<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct CallOut<'a> {
    arguments: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    function: FunctionOut<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Function {
        function: NameOut<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct NameOut<'a> {
    name: &'a str,
}

impl<'a> ToolChoiceOut<'a> {
    fn new(tc: &'a ToolChoice) -> Self {
        match tc {
            ToolChoice::None => ToolChoiceOut::Mode("none"),
            ToolChoice::Auto => ToolChoiceOut::Mode("auto"),
            ToolChoice::Required => ToolChoiceOut::Mode("required"),
            ToolChoice::Function { name } => ToolChoiceOut::Function {
                function: NameOut { name },
                kind: "function",
            },
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResponseFormatOut<'a> {
    Plain {
        #[serde(rename = "type")]
        kind: &'static str,
    },
    JsonSchema {
        json_schema: JsonSchemaOut<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct JsonSchemaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

impl<'a> ResponseFormatOut<'a> {
    fn new(rf: &'a ResponseFormat) -> Self {
        match rf {
            ResponseFormat::Text => ResponseFormatOut::Plain { kind: "text" },
            ResponseFormat::JsonObject => ResponseFormatOut::Plain {
                kind: "json_object",
            },
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => ResponseFormatOut::JsonSchema {
                json_schema: JsonSchemaOut {
                    description: description.as_deref(),
                    name,
                    schema,
                    strict: *strict,
                },
                kind: "json_schema",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_request;
    use crate::request::{native_body, to_native};
    use switchyard_core::{ImageDetail, Role, Tool, ToolCall};

    fn rich() -> ChatRequest {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"developer","content":"d","name":"n"},{"role":"user","content":[{"type":"text","text":"t\"\u00e9"},{"type":"image_url","image_url":{"url":"http://x/a.png","detail":"low"}},{"type":"image_url","image_url":{"url":"http://x/b.png"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}},{"type":"file","file":{"file_data":"JVBERi0="}},{"type":"file","file":{"file_id":"file-1","filename":"b.pdf"}},{"type":"file","file":{"file_id":"file-2"}},{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},{"type":"input_audio","input_audio":{"format":"mp3","data":"SUQz"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}],"refusal":"no","reasoning_content":"r"},{"role":"tool","tool_call_id":"c1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"b":{},"a":{"type":"integer"}}},"strict":true}},{"type":"function","function":{"name":"g"}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,"temperature":0.5,"top_p":1,"max_tokens":7,"stop":["a","b"],"seed":-3,"presence_penalty":0.1,"frequency_penalty":-0.2,"n":2,"logprobs":true,"top_logprobs":2,"response_format":{"type":"json_schema","json_schema":{"name":"s","description":"x","schema":{"type":"object"},"strict":true}},"reasoning_effort":"low","stream":true,"user":"u","metadata":{"k":"v","a":"b"}}"#;
        parse_request(body).unwrap()
    }

    fn same_bytes(r: &ChatRequest) {
        let via_map = serde_json::to_vec(&to_native(r, "upstream")).unwrap();
        let direct = serde_json::to_vec(&Body::new(r, "upstream")).unwrap();
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(via_map).unwrap()
        );
    }

    #[test]
    fn structs_write_the_bytes_of_the_sorted_map() {
        let mut r = rich();
        same_bytes(&r);
        for (tc, rf) in [
            (ToolChoice::None, ResponseFormat::Text),
            (ToolChoice::Auto, ResponseFormat::JsonObject),
            (ToolChoice::Required, ResponseFormat::Text),
        ] {
            r.tool_choice = Some(tc);
            r.response_format = Some(rf);
            same_bytes(&r);
        }
        r.temperature = Some(f64::NAN);
        r.stream = false;
        r.messages.push(Message {
            role: Role::Assistant,
            content: Some(Content::Parts(vec![ContentPart::ImageUrl {
                url: "u".into(),
                detail: Some(ImageDetail::High),
            }])),
            name: None,
            tool_calls: vec![ToolCall {
                id: "i".into(),
                name: "n".into(),
                arguments: "a".into(),
            }],
            tool_call_id: None,
            reasoning: None,
            reasoning_blocks: Vec::new(),
            refusal: None,
        });
        r.tools.push(Tool {
            name: "h".into(),
            description: None,
            parameters: None,
            strict: Some(false),
        });
        same_bytes(&r);
        same_bytes(&ChatRequest {
            messages: vec![Message::text(Role::User, "x")],
            ..ChatRequest::default()
        });
    }

    #[test]
    fn extra_keys_take_the_map_path_and_never_override() {
        let mut r = rich();
        r.extra.insert("model".into(), Value::from("client"));
        r.extra.insert("prediction".into(), Value::from(1));
        let body: Value = serde_json::from_slice(&native_body(&r, "upstream").unwrap()).unwrap();
        assert_eq!(body["model"], "upstream");
        assert_eq!(body["prediction"], 1);
    }
}
