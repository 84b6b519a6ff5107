//! Qwen through DashScope's OpenAI-compatible mode (`POST {base}/chat/completions`, base
//! `https://dashscope-intl.aliyuncs.com/compatible-mode/v1`): the OpenAI dialect, delegating to
//! `switchyard-openai` for everything that is the same. Pure: no sockets, clocks or logging.
//!
//! What differs: `max_tokens` and the thinking switches `enable_thinking` / `thinking_budget`
//! (stream-only) in requests ([`request`]); DashScope error codes ([`errors`]). Responses,
//! `reasoning_content`, streams and usage (`prompt_tokens_details.cached_tokens`,
//! `completion_tokens_details.reasoning_tokens`) are OpenAI's and read by the OpenAI crate.

pub mod errors;
pub mod request;
pub mod server;

use http::{HeaderMap, StatusCode};
use switchyard_core::{
    ChatRequest, ChatResponse, Endpoint, NativeBody, Provider, ServerSide, StreamEncoder,
    StreamMeta, StreamParser, Target, TranslateError, UpstreamError,
};
use switchyard_openai::{OpenAiServer, OpenAiStreamParser};

/// The upstream Qwen (DashScope compatible mode) provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qwen;

impl Qwen {
    pub const NAME: &'static str = "qwen";
}

impl Provider for Qwen {
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
        // The compatible mode documents no request-side safety settings.
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
        switchyard_openai::response::from_native(body)
    }

    fn stream_parser(&self) -> Box<dyn StreamParser> {
        Box::new(OpenAiStreamParser::new())
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

/// The Qwen wire format served to clients (the Qwen mock).
#[derive(Debug, Clone, Copy, Default)]
pub struct QwenServer;

impl ServerSide for QwenServer {
    fn parse_request(
        &self,
        _path_model: Option<&str>,
        body: &[u8],
    ) -> Result<ChatRequest, UpstreamError> {
        server::parse_request(body)
    }

    fn encode_response(&self, response: &ChatResponse) -> Vec<u8> {
        OpenAiServer.encode_response(response)
    }

    fn stream_encoder(&self, request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder> {
        OpenAiServer.stream_encoder(request, meta)
    }

    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>) {
        errors::encode_error(error)
    }
}
