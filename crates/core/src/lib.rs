//! Switchyard's canonical model: one request, response, stream-event, usage and error model
//! that every provider crate translates to and from, plus the [`Provider`] trait they
//! implement.
//!
//! Invariant: this crate does no I/O. It knows no sockets, clocks or HTTP clients; it only
//! describes data, so it can be shared by the gateway, the mock providers and any user who
//! brings their own HTTP stack.

pub mod error;
pub mod json;
pub mod provider;
pub mod request;
pub mod response;
pub mod safety;
pub mod stream;

pub use error::{retry_after, ErrorClass, ErrorPolicy, TranslateError, UpstreamError};
pub use json::may_hold_surrogate_escape;
pub use provider::{
    Capabilities, Endpoint, NativeBody, Provider, ServerSide, StreamEncoder, StreamMeta,
    StreamParser, Target, UpstreamRequest, WireFormat,
};
pub use request::{
    base64_decode, base64_decoded_len, base64_encode, AudioFormat, ChatRequest, Content,
    ContentPart, ImageDetail, Message, ReasoningBlock, ReasoningEffort, ResponseFormat, Role, Tool,
    ToolCall, ToolChoice,
};
pub use response::{AssistantMessage, ChatResponse, Choice, FinishReason, NativeJson, Usage};
pub use safety::{HarmCategory, SafetyPolicy, SafetySetting, SafetyThreshold, UnsupportedPolicy};
pub use stream::StreamEvent;
pub use switchyard_sse::SseFrame;
