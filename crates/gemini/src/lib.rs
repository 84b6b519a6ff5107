//! Google Gemini (`generateContent` / `streamGenerateContent?alt=sse`, API `v1beta`),
//! translated both ways. Pure: no sockets, clocks, randomness or logging.
//!
//! - [`Gemini`] is the client side ([`Provider`]): canonical request → HTTP request,
//!   native response / SSE stream / error → canonical.
//! - [`GeminiServer`] is the server side ([`ServerSide`]) used by the mock provider.
//!
//! `Target::base_url` is the API host without a version, e.g.
//! `https://generativelanguage.googleapis.com`; the builder appends
//! `/v1beta/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`). The key goes
//! in `x-goog-api-key`, marked sensitive, never in the URL.
//!
//! Translation choices worth knowing:
//! - Tools are sent as `parametersJsonSchema`, the JSON Schema exactly as the client gave it.
//!   The older `parameters` field takes an OpenAPI 3.0 subset (upper-case types, no `$ref`,
//!   `additionalProperties`, `oneOf`, ...) and converting to it loses constraints silently.
//!   Likewise structured output uses `responseJsonSchema`.
//! - `strict: true` on any tool (with `tool_choice` auto or unset) → mode `VALIDATED`
//!   (constrained decoding of calls) for all tools.
//! - Tool results become `functionResponse {id, name, response: {"result": ...}}` in a user
//!   turn; the name comes from the assistant call with that `tool_call_id`.
//! - Function calls without an id (the Developer API often omits them) get `call_<n>`, `n`
//!   being the call's position in the candidate; such ids are left out again when the call
//!   and its result go back to Gemini. Other ids (Gemini's own, or another provider's after a
//!   failover) are sent as given. Gemini 3's `thoughtSignature` rides in the id (see
//!   `signature.rs`) and is restored on the way back.
//! - `reasoning_effort` → `thinkingConfig.thinkingBudget` (none 0, minimal 512, low 1024,
//!   medium 8192, high 24576) with `includeThoughts` when thinking is on. `thinkingLevel`
//!   (Gemini 3) can be sent through `extra`.
//! - Not expressible, so `Unsupported` (or dropped with a warning under `Drop`):
//!   `parallel_tool_calls: false`, `user`, `metadata`, message `name` on user/system turns,
//!   image `detail` other than auto, images in system messages, seeds outside i32.
//! - Assistant `reasoning` is not sent back (Gemini takes no thought text as input).
//! - `extra` is deep-merged into the body (`{"generationConfig": {"topK": 40}}` adds a key).
//! - Usage: see [`response`]'s `usage` notes: `promptTokenCount` already includes cached
//!   tokens; output = candidates + thoughts.
//! - Errors: see the table in [`errors`].

pub mod errors;
mod request;
mod response;
mod server_request;
mod server_response;
mod signature;
mod stream;
pub mod wire;

use http::{HeaderMap, StatusCode};
use switchyard_core::{
    Capabilities, ChatRequest, ChatResponse, Endpoint, NativeBody, Provider, ServerSide,
    StreamEncoder, StreamMeta, StreamParser, Target, TranslateError, UpstreamError,
};

pub use request::MAX_REQUEST_BYTES;
pub use server_response::GeminiStreamEncoder;
pub use stream::GeminiStreamParser;

pub(crate) const PROVIDER: &str = "gemini";

/// The Gemini API as an upstream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gemini;

impl Provider for Gemini {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    /// No prefill: Gemini documents no "continue this model turn" behaviour for a request
    /// ending in a model turn.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            assistant_prefill: false,
        }
    }

    fn endpoint(&self, target: &Target<'_>, stream: bool) -> Result<Endpoint, TranslateError> {
        request::endpoint(target, stream)
    }

    fn build_body(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<NativeBody, TranslateError> {
        request::build_body_bytes(request, target)
    }

    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
        response::parse(body)
    }

    fn stream_parser(&self) -> Box<dyn StreamParser> {
        Box::new(GeminiStreamParser::new())
    }

    fn classify_error(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> UpstreamError {
        errors::classify(status, headers, body)
    }
}

/// Gemini's server side, for the mock provider.
///
/// - `parse_request` leaves `stream` false: streaming is chosen by the URL
///   (`:streamGenerateContent`), which the caller knows. `include_usage` is true because
///   Gemini always reports usage.
/// - `encode_error` of a `ContentFiltered` error answers 200 with
///   `promptFeedback.blockReason`, as Gemini does for a blocked prompt; every other class is
///   a Google error body with its HTTP status.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiServer;

impl ServerSide for GeminiServer {
    fn parse_request(
        &self,
        path_model: Option<&str>,
        body: &[u8],
    ) -> Result<ChatRequest, UpstreamError> {
        server_request::parse(path_model, body)
    }

    fn encode_response(&self, response: &ChatResponse) -> Vec<u8> {
        server_response::encode(response)
    }

    fn stream_encoder(&self, _request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder> {
        Box::new(GeminiStreamEncoder::new(meta))
    }

    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>) {
        server_response::encode_error(error)
    }
}
