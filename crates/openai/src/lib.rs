//! OpenAI Chat Completions, translated both ways. Pure: no sockets, clocks or logging.
//!
//! - Upstream ([`OpenAi`], a [`Provider`]): canonical request → `POST {base}/chat/completions`;
//!   `chat.completion` / chunk stream / error bodies → canonical.
//! - Server side ([`OpenAiServer`], a [`ServerSide`]): the gateway's front door and the OpenAI
//!   mock: native request → canonical; canonical response, events and errors → native. Its one
//!   extension on assistant messages and deltas is `reasoning_details`, the reasoning blocks a
//!   provider wants back signed ([`response::ReasoningDetailOut`]); read back from requests,
//!   never sent to an OpenAI-format upstream.
//!
//! Building blocks for OpenAI-compatible dialects (Mistral, DeepSeek, Qwen):
//! [`wire`] types, [`request::to_native`] + [`request::map_body`], [`request::endpoint`],
//! [`response::from_native`] / [`response::usage_from_native`], [`OpenAiStreamParser`]
//! (with [`OpenAiStreamParser::feed_chunk`] for dialect-parsed chunks),
//! [`errors::classify`], [`parse::parse_request`], [`OpenAiStreamEncoder`].

pub mod encoder;
pub mod errors;
pub mod forward;
pub mod parse;
pub mod request;
pub mod response;
mod scan;
pub mod stream;
pub mod wire;

use http::{HeaderMap, StatusCode};
use switchyard_core::{
    Capabilities, ChatRequest, ChatResponse, Endpoint, NativeBody, Provider, ServerSide,
    StreamEncoder, StreamMeta, StreamParser, Target, TranslateError, UpstreamError, WireFormat,
};

pub use encoder::OpenAiStreamEncoder;
pub use errors::{classify, error_body};
pub use stream::OpenAiStreamParser;

/// The upstream OpenAI provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAi;

impl OpenAi {
    pub const NAME: &'static str = "openai";
}

impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            assistant_prefill: false,
        }
    }

    fn endpoint(&self, target: &Target<'_>, _stream: bool) -> Result<Endpoint, TranslateError> {
        request::endpoint(target.base_url, "chat/completions", target.api_key)
    }

    fn build_body(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<NativeBody, TranslateError> {
        let mut warnings = Vec::new();
        request::check_safety(Self::NAME, request, target.on_unsupported, &mut warnings)?;
        let body = request::native_body(request, target.model)?;
        Ok(NativeBody { body, warnings })
    }

    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
        response::from_native(body)
    }

    fn answer_format(&self) -> Option<WireFormat> {
        Some(WireFormat::OpenAiChat)
    }

    fn forwardable(&self, body: &[u8]) -> bool {
        forward::forwardable(body)
    }

    fn forward_check(&self, body: &[u8]) -> Option<Option<switchyard_core::Usage>> {
        forward::check(body)
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

/// The OpenAI wire format served to clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiServer;

impl ServerSide for OpenAiServer {
    fn parse_request(
        &self,
        _path_model: Option<&str>,
        body: &[u8],
    ) -> Result<ChatRequest, UpstreamError> {
        parse::parse_request(body)
    }

    fn encode_response(&self, response: &ChatResponse) -> Vec<u8> {
        response::encode(response)
    }

    fn wire_format(&self) -> Option<WireFormat> {
        Some(WireFormat::OpenAiChat)
    }

    fn stream_encoder(&self, request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder> {
        Box::new(OpenAiStreamEncoder::new(meta, request.include_usage))
    }

    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>) {
        errors::encode_error(error)
    }
}
