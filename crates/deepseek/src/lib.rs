//! DeepSeek chat completions (`POST {base}/chat/completions`, base `https://api.deepseek.com`):
//! the OpenAI dialect, delegating to `switchyard-openai` for everything that is the same.
//! Pure: no sockets, clocks or logging.
//!
//! What differs: `max_tokens` and `thinking` in requests, `reasoning_content` sent back only in
//! thinking-mode tool loops ([`request`]); cache hit/miss usage and the
//! `insufficient_system_resource` finish reason, read as [`switchyard_core::ErrorClass::Overloaded`]
//! ([`response`], [`stream`]); 402 insufficient balance and 503 overload ([`errors`]).
//! `reasoning_content` in responses and deltas is read by the OpenAI crate itself.

pub mod errors;
pub mod request;
pub mod response;
pub mod server;
pub mod stream;

use http::{HeaderMap, StatusCode};
use switchyard_core::{
    ChatRequest, ChatResponse, Endpoint, NativeBody, Provider, ServerSide, StreamEncoder,
    StreamMeta, StreamParser, Target, TranslateError, UpstreamError,
};

pub use stream::{DeepSeekStreamEncoder, DeepSeekStreamParser};

/// The upstream DeepSeek provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeepSeek;

impl DeepSeek {
    pub const NAME: &'static str = "deepseek";
}

impl Provider for DeepSeek {
    fn name(&self) -> &'static str {
        Self::NAME
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
        // DeepSeek has no request-side safety filter either.
        switchyard_openai::request::check_safety(
            Self::NAME,
            request,
            target.on_unsupported,
            &mut warnings,
        )?;
        let body = request::to_native(request, target.model, target.on_unsupported, &mut warnings)?;
        let body = switchyard_openai::request::map_body(&body)?;
        Ok(NativeBody { body, warnings })
    }

    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
        response::from_native(body)
    }

    fn stream_parser(&self) -> Box<dyn StreamParser> {
        Box::new(DeepSeekStreamParser::new())
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

/// The DeepSeek wire format served to clients (the DeepSeek mock).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeepSeekServer;

impl ServerSide for DeepSeekServer {
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

    fn stream_encoder(&self, request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder> {
        Box::new(DeepSeekStreamEncoder::new(meta, request.include_usage))
    }

    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>) {
        errors::encode_error(error)
    }
}
