//! What a mock provider answers: deterministic, derived from the request, so tests can tell
//! which mock answered and what it was asked.

use switchyard_core::{
    AssistantMessage, ChatRequest, ChatResponse, Choice, FinishReason, Role, StreamEvent, ToolCall,
    ToolChoice, Usage,
};

/// The canonical answer to `request` from the mock called `name`.
pub fn answer(name: &str, request: &ChatRequest, fixed: Option<&str>, id: String) -> ChatResponse {
    let last = request.messages.last();
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.text_content())
        .unwrap_or_default();
    let wants_tool = !request.tools.is_empty()
        && last.is_some_and(|m| m.role == Role::User)
        && match &request.tool_choice {
            Some(ToolChoice::None) => false,
            Some(ToolChoice::Required) | Some(ToolChoice::Function { .. }) => true,
            _ => {
                let t = last_user.to_lowercase();
                t.contains("weather") || t.contains("tool")
            }
        };
    let (message, finish) = if wants_tool {
        let tool = match &request.tool_choice {
            Some(ToolChoice::Function { name }) => request
                .tools
                .iter()
                .find(|t| &t.name == name)
                .unwrap_or(&request.tools[0]),
            _ => &request.tools[0],
        };
        let parallel = request.parallel_tool_calls != Some(false)
            && last_user.to_lowercase().contains("parallel");
        let cities: &[&str] = if parallel {
            &["Paris", "Tokyo"]
        } else {
            &["Paris"]
        };
        let tool_calls = cities
            .iter()
            .enumerate()
            .map(|(i, city)| ToolCall {
                id: format!("call_{}_{i}", id.replace('-', "_")),
                name: tool.name.clone(),
                arguments: format!("{{\"location\":\"{city}\"}}"),
            })
            .collect();
        (
            AssistantMessage {
                tool_calls,
                ..AssistantMessage::default()
            },
            FinishReason::ToolCalls,
        )
    } else {
        let full = match (fixed, last) {
            (Some(text), _) => text.to_string(),
            (None, Some(m)) if m.role == Role::Tool => {
                format!("{name} read the tool result: {}", m.text_content())
            }
            _ => format!("Hello from {name}! You said: {last_user}"),
        };
        // An assistant turn at the end is a prefill: continue after it, as Anthropic does.
        let text = match last {
            Some(m) if m.role == Role::Assistant => {
                let prefix = m.text_content();
                full.strip_prefix(prefix.as_str())
                    .map(str::to_string)
                    .unwrap_or(full)
            }
            _ => full,
        };
        (
            AssistantMessage {
                content: Some(text),
                ..AssistantMessage::default()
            },
            FinishReason::Stop,
        )
    };
    let input_chars: usize = request
        .messages
        .iter()
        .map(|m| m.text_content().len())
        .sum();
    let input_tokens = (input_chars / 4 + 1) as u64;
    let output_tokens = message
        .content
        .as_deref()
        .map(|t| t.split_whitespace().count() as u64)
        .unwrap_or(0)
        + 10 * message.tool_calls.len() as u64;
    ChatResponse {
        id,
        model: request.model.clone(),
        created: 1_767_225_600,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish),
            native_finish_reason: None,
            logprobs: None,
        }],
        usage: Some(Usage {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens + output_tokens,
            ..Usage::default()
        }),
        system_fingerprint: None,
        service_tier: None,
        warnings: Vec::new(),
    }
}

/// The answer as stream events: the text in `chunks` pieces (0: one per word), tool calls as
/// a start and two argument fragments each.
pub fn stream_events(response: &ChatResponse, chunks: usize) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        id: response.id.clone(),
        model: response.model.clone(),
        created: response.created,
    }];
    let Some(choice) = response.choices.first() else {
        return events;
    };
    if let Some(text) = &choice.message.content {
        for piece in split_text(text, chunks) {
            events.push(StreamEvent::TextDelta {
                choice: 0,
                text: piece,
            });
        }
    }
    for (i, call) in choice.message.tool_calls.iter().enumerate() {
        events.push(StreamEvent::ToolCallStart {
            choice: 0,
            index: i as u32,
            id: call.id.clone(),
            name: call.name.clone(),
        });
        let mid = call.arguments.len() / 2;
        let mid = (mid..=call.arguments.len())
            .find(|&i| call.arguments.is_char_boundary(i))
            .unwrap_or(call.arguments.len());
        for part in [&call.arguments[..mid], &call.arguments[mid..]] {
            if !part.is_empty() {
                events.push(StreamEvent::ToolCallArguments {
                    choice: 0,
                    index: i as u32,
                    arguments: part.to_string(),
                });
            }
        }
    }
    events.push(StreamEvent::Finish {
        choice: 0,
        reason: choice.finish_reason.unwrap_or(FinishReason::Stop),
        native_reason: None,
    });
    if let Some(usage) = &response.usage {
        events.push(StreamEvent::Usage(usage.clone()));
    }
    events
}

fn split_text(text: &str, chunks: usize) -> Vec<String> {
    if chunks == 0 {
        // One piece per word, the space going with the following word, as real models do.
        let mut out = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == ' ' && i > start {
                out.push(text[start..i].to_string());
                start = i;
            }
        }
        if start < text.len() {
            out.push(text[start..].to_string());
        }
        return out;
    }
    // Exactly `chunks` pieces (fewer only when the text has fewer characters), sizes within one.
    let chars: Vec<char> = text.chars().collect();
    let n = chunks.min(chars.len()).max(1);
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::{Message, Tool};

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, text)],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn text_names_the_mock_and_echoes_the_user() {
        let r = answer("alpha", &request("hi there"), None, "x-1".into());
        assert_eq!(
            r.choices[0].message.content.as_deref(),
            Some("Hello from alpha! You said: hi there")
        );
    }

    #[test]
    fn prefill_is_continued_not_repeated() {
        let mut req = request("hi");
        req.messages
            .push(Message::text(Role::Assistant, "Hello from alpha!"));
        let r = answer("alpha", &req, None, "x".into());
        assert_eq!(
            r.choices[0].message.content.as_deref(),
            Some(" You said: hi")
        );
    }

    #[test]
    fn tools_are_called_when_asked_for_weather() {
        let mut req = request("weather in parallel please");
        req.tools.push(Tool {
            name: "get_weather".into(),
            description: None,
            parameters: None,
            strict: None,
        });
        let r = answer("a", &req, None, "r-1".into());
        assert_eq!(r.choices[0].message.tool_calls.len(), 2);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    }

    #[test]
    fn word_split_rejoins_to_the_text() {
        let text = "Hello from alpha! You said: hé";
        assert_eq!(split_text(text, 0).concat(), text);
        assert_eq!(split_text(text, 7).concat(), text);
        assert_eq!(split_text(text, 7).len(), 7);
    }
}
