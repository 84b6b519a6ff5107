//! The Anthropic Messages API (`POST /v1/messages`, `anthropic-version: 2023-06-01`),
//! translated both ways:
//!
//! - [`Anthropic`] is the upstream [`Provider`]: canonical request → native HTTP request,
//!   native response / SSE stream / error → canonical.
//! - [`AnthropicServer`] is the [`ServerSide`]: native request → canonical, canonical response
//!   / stream / error → native. The Anthropic mock provider is built on it.
//!
//! Pure translation: no I/O, no clocks (`created` is 0 where Anthropic sends no timestamp; the
//! gateway stamps it), no logging.
//!
//! `base_url` is the API origin without `/v1` (`https://api.anthropic.com`); the path
//! `/v1/messages` is appended. A base URL that already ends in `/v1` is accepted too, so the
//! OpenAI-style habit of configuring `.../v1` does not produce `/v1/v1/messages`.
//!
//! Mapping choices worth knowing:
//! - `reasoning_effort` → `thinking: {type: enabled, budget_tokens}` with budgets
//!   minimal 1024, low 4096, medium 8192, high 16384 ([`thinking_budget`]); `none` →
//!   `{type: disabled}`. Without a client limit, `max_tokens` becomes
//!   [`DEFAULT_MAX_TOKENS`] + budget, since Anthropic counts thinking inside `max_tokens`.
//! - `response_format: json_schema` → `output_config.format` (structured outputs);
//!   `json_object` has no Anthropic form and is unsupported.
//! - Thinking comes back as canonical `reasoning_blocks` (text with its signature, redacted
//!   data), and assistant turns that carry them send them back unmodified, first in the turn.
//!   With thinking on, the assistant turn in progress (a tool loop, a prefill) must start with
//!   signed thinking or Anthropic answers 400; when it has none (it came from another provider,
//!   or the client dropped the blocks), thinking is turned off for that request, with a
//!   warning. With thinking off no block is sent: Anthropic refuses them in the turn in
//!   progress and ignores them elsewhere.
//! - `created` and usage `reasoning_tokens` are not reported by Anthropic.

mod errors;
mod request;
mod response;
mod server_request;
mod stream;
mod wire;

use http::{header, HeaderMap, HeaderValue, StatusCode};
use switchyard_core::{
    Capabilities, ChatRequest, ChatResponse, Endpoint, NativeBody, Provider, ServerSide,
    StreamEncoder, StreamMeta, StreamParser, Target, TranslateError, UpstreamError,
};

pub use request::{thinking_budget, DEFAULT_MAX_TOKENS, MAX_REQUEST_BYTES};
pub use stream::{AnthropicStreamEncoder, AnthropicStreamParser};

/// The `format` of the reasoning blocks Anthropic signs (OpenRouter's name for them). Blocks
/// with another format are never sent to Anthropic.
pub const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// The `anthropic-version` header value we speak.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub(crate) const PROVIDER: &str = "anthropic";

/// The Messages API as an upstream provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

/// The Messages API as a server (native requests in, native responses out).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicServer;

/// `{base_url}/v1/messages`, tolerating a trailing `/` or `/v1`.
pub fn messages_url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/messages")
}

impl Provider for Anthropic {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            assistant_prefill: true,
        }
    }

    fn endpoint(&self, target: &Target<'_>, _stream: bool) -> Result<Endpoint, TranslateError> {
        let mut endpoint = Endpoint::json_post(
            &messages_url(target.base_url),
            target.api_key.map(|key| ("x-api-key", key)),
        )?;
        endpoint.headers.insert(
            header::HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        Ok(endpoint)
    }

    fn build_body(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<NativeBody, TranslateError> {
        let (body, warnings) = request::build_body(request, target.model, target.on_unsupported)?;
        let body = serde_json::to_vec(&body)
            .map_err(|e| TranslateError::Invalid(format!("cannot encode request: {e}")))?;
        request::check_size(&body)?;
        Ok(NativeBody { body, warnings })
    }

    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
        response::parse_response(body)
    }

    fn stream_parser(&self) -> Box<dyn StreamParser> {
        Box::new(AnthropicStreamParser::new())
    }

    fn classify_error(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> UpstreamError {
        errors::classify_error(status, headers, body)
    }
}

impl ServerSide for AnthropicServer {
    fn parse_request(
        &self,
        _path_model: Option<&str>,
        body: &[u8],
    ) -> Result<ChatRequest, UpstreamError> {
        server_request::parse_request(body)
    }

    fn encode_response(&self, response: &ChatResponse) -> Vec<u8> {
        response::encode_response(response)
    }

    fn stream_encoder(&self, request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder> {
        Box::new(AnthropicStreamEncoder::new(request, meta))
    }

    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>) {
        errors::encode_error(error)
    }
}
