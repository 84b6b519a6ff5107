//! Mistral chat completions (`POST {base}/chat/completions`, base `https://api.mistral.ai/v1`):
//! the OpenAI dialect, delegating to `switchyard-openai` for everything that is the same.
//! Pure: no sockets, clocks or logging.
//!
//! What differs, and where it is handled:
//! - requests ([`request`]): closed schema, `max_tokens`, `random_seed`, `safe_prompt`,
//!   `tool_choice: "any"`, 9-character tool call ids ([`ids`]), `prefix` on a final assistant
//!   turn; no logprobs or `user`;
//! - responses and streams ([`response`], [`stream`]): content may be an array of chunks
//!   (thinking → reasoning), tool `arguments` may be an object (→ JSON text), finish reasons
//!   `model_length` (→ `Length`) and `error` (→ an error, never a complete-looking answer);
//! - errors ([`errors`]): FastAPI `{"detail": [...]}` validation bodies and the flat
//!   `{"object": "error", ...}` shape.

pub mod errors;
pub mod ids;
pub mod request;
pub mod response;
pub mod server;
pub mod stream;
pub mod wire;

use http::{HeaderMap, StatusCode};
use switchyard_core::{
    Capabilities, ChatRequest, ChatResponse, Endpoint, NativeBody, Provider, ServerSide,
    StreamEncoder, StreamMeta, StreamParser, Target, TranslateError, UpstreamError,
};

pub use stream::{MistralStreamEncoder, MistralStreamParser};

/// The upstream Mistral provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mistral;

impl Mistral {
    pub const NAME: &'static str = "mistral";
}

impl Provider for Mistral {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn capabilities(&self) -> Capabilities {
        // A final assistant turn is sent with `prefix: true`.
        Capabilities {
            assistant_prefill: true,
        }
    }

    fn endpoint(&self, target: &Target<'_>, _stream: bool) -> Result<Endpoint, TranslateError> {
        switchyard_openai::request::endpoint(target.base_url, "chat/completions", target.api_key)
    }

    fn build_body(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<NativeBody, TranslateError> {
        let mut warnings = Vec::new();
        let body = request::to_native(request, target.model, target.on_unsupported, &mut warnings)?;
        let body = switchyard_openai::request::map_body(&body)?;
        Ok(NativeBody { body, warnings })
    }

    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
        response::from_native(body)
    }

    fn stream_parser(&self) -> Box<dyn StreamParser> {
        Box::new(MistralStreamParser::new())
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

/// The Mistral wire format served to clients (the Mistral mock).
#[derive(Debug, Clone, Copy, Default)]
pub struct MistralServer;

impl ServerSide for MistralServer {
    fn parse_request(
        &self,
        _path_model: Option<&str>,
        body: &[u8],
    ) -> Result<ChatRequest, UpstreamError> {
        server::parse_request(body)
    }

    fn encode_response(&self, response: &ChatResponse) -> Vec<u8> {
        response::encode(response)
    }

    fn stream_encoder(&self, _request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder> {
        // Mistral always sends usage; there is no `stream_options`.
        Box::new(MistralStreamEncoder::new(meta))
    }

    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>) {
        errors::encode_error(error)
    }
}
