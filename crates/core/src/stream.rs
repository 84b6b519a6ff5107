//! Canonical stream events: what every provider's stream parser emits and every client-side
//! stream encoder consumes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::request::ReasoningBlock;
use crate::response::{FinishReason, Usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The stream's metadata, known from the first upstream event. Carries no content.
    Start {
        id: String,
        model: String,
        created: u64,
    },
    TextDelta {
        choice: u32,
        text: String,
    },
    ReasoningDelta {
        choice: u32,
        text: String,
    },
    /// One reasoning block, whole, once the provider has closed it (Anthropic sends a thinking
    /// block's signature last). Its text has already gone out as `ReasoningDelta`s; the block
    /// is what a client keeps to send the turn back.
    ReasoningBlock {
        choice: u32,
        block: ReasoningBlock,
    },
    RefusalDelta {
        choice: u32,
        text: String,
    },
    /// A new tool call begins. `index` orders the calls within one choice.
    ToolCallStart {
        choice: u32,
        index: u32,
        id: String,
        name: String,
    },
    /// A fragment of a tool call's JSON arguments text.
    ToolCallArguments {
        choice: u32,
        index: u32,
        arguments: String,
    },
    Finish {
        choice: u32,
        reason: FinishReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        native_reason: Option<String>,
    },
    /// Usage for the whole stream. A parser emits it once, when the provider's figures are
    /// final (some providers repeat cumulative usage; the parser keeps the last).
    Usage(Usage),
}

impl StreamEvent {
    /// True when this event carries something a user would see. Before the first such event a
    /// failed stream can be retried or failed over transparently; after it, it cannot.
    pub fn is_content(&self) -> bool {
        match self {
            StreamEvent::TextDelta { text, .. }
            | StreamEvent::ReasoningDelta { text, .. }
            | StreamEvent::RefusalDelta { text, .. } => !text.is_empty(),
            StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallArguments { .. }
            | StreamEvent::ReasoningBlock { .. } => true,
            StreamEvent::Start { .. } | StreamEvent::Finish { .. } | StreamEvent::Usage(_) => false,
        }
    }
}
