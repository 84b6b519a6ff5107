//! The interface every provider crate implements. Pure translation: no sockets, no clocks, no
//! logging, so adapters are fast, testable from fixtures and usable with any HTTP client.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::{TranslateError, UpstreamError};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, Usage};
use crate::safety::UnsupportedPolicy;
use crate::stream::StreamEvent;
use switchyard_sse::SseFrame;

/// Where and how one attempt goes: the parts of a route target a request builder needs.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// e.g. `https://api.openai.com/v1`; no trailing slash needed.
    pub base_url: &'a str,
    /// The model name the upstream knows.
    pub model: &'a str,
    /// Secret. Builders put it in a header marked sensitive and nowhere else.
    pub api_key: Option<&'a str>,
    /// What to do with a field this provider cannot express.
    pub on_unsupported: UnsupportedPolicy,
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .field("on_unsupported", &self.on_unsupported)
            .finish()
    }
}

/// A ready-to-send upstream request.
#[derive(Debug)]
pub struct UpstreamRequest {
    pub request: http::Request<Bytes>,
    /// What the builder dropped because the route said to (never silent: the gateway returns
    /// these to the client).
    pub warnings: Vec<String>,
}

/// The URL and headers of every request to one target (see [`Provider::endpoint`]).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub uri: http::Uri,
    /// Secrets among them are marked sensitive (their `Debug` says so instead of the value).
    pub headers: HeaderMap,
}

impl Endpoint {
    /// `url` parsed, with a JSON content type and `auth` (marked sensitive) as named. The
    /// error never repeats the key.
    pub fn json_post(
        url: &str,
        auth: Option<(&'static str, &str)>,
    ) -> Result<Self, TranslateError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| TranslateError::Invalid(format!("URL {url:?}: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some((name, value)) = auth {
            let mut value = http::HeaderValue::from_str(value).map_err(|_| {
                TranslateError::Invalid("API key is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            headers.insert(http::HeaderName::from_static(name), value);
        }
        Ok(Endpoint { uri, headers })
    }
}

/// A native request body and what was dropped to make it (never silently: the gateway returns
/// these to the client).
#[derive(Debug)]
pub struct NativeBody {
    pub body: Vec<u8>,
    pub warnings: Vec<String>,
}

/// What a provider can do beyond the common core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Accepts a final assistant message as a prefix to continue from.
    pub assistant_prefill: bool,
}

/// A wire format that more than one side speaks, so that a front door can tell when an upstream
/// answer is already in its client's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireFormat {
    /// OpenAI Chat Completions (`chat.completion`).
    OpenAiChat,
}

/// One provider's wire format, both ways.
pub trait Provider: Send + Sync + 'static {
    /// Stable lower-case name (`openai`, `anthropic`, ...), used in config and logs.
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Where requests to `target` go and the headers they carry (auth included); the method
    /// is always POST. It depends only on the target and on whether the answer is streamed,
    /// so the gateway makes it once per target, when it loads its config, and not per request.
    fn endpoint(&self, target: &Target<'_>, stream: bool) -> Result<Endpoint, TranslateError>;

    /// Canonical request → native request body for `target`.
    fn build_body(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<NativeBody, TranslateError>;

    /// [`Provider::endpoint`] and [`Provider::build_body`] as one ready-to-send request.
    fn build_request(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let endpoint = self.endpoint(target, request.stream)?;
        let NativeBody { body, warnings } = self.build_body(request, target)?;
        let mut http = http::Request::new(Bytes::from(body));
        *http.method_mut() = http::Method::POST;
        *http.uri_mut() = endpoint.uri;
        *http.headers_mut() = endpoint.headers;
        Ok(UpstreamRequest {
            request: http,
            warnings,
        })
    }

    /// A successful (2xx) native response body → canonical response. A body that is 2xx but
    /// says the request failed (e.g. Gemini's blocked prompt) is an error here.
    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, UpstreamError>;

    /// The format of this provider's non-streamed answers, when a front door may speak it too.
    /// `None` (the default): answers always go through [`Provider::parse_response`].
    fn answer_format(&self) -> Option<WireFormat> {
        None
    }

    /// True when `body` is an answer that [`Provider::parse_response`] accepts and that a
    /// client speaking [`Provider::answer_format`] can be given byte for byte: everything the
    /// canonical path would write is already there with the same value. False sends the body
    /// through `parse_response`, which also says what is wrong with it.
    ///
    /// Checking costs a fraction of parsing and re-encoding, and the client also keeps the
    /// fields the canonical model does not carry.
    fn forwardable(&self, _body: &[u8]) -> bool {
        false
    }

    /// [`Provider::forwardable`], with the usage the body reports when the check read it:
    /// `None` when the body is not forwardable, `Some(None)` when it is but says no usage (or
    /// this provider does not read it). The gateway counts a forwarded answer's tokens from
    /// this without parsing the body a second time.
    fn forward_check(&self, body: &[u8]) -> Option<Option<Usage>> {
        self.forwardable(body).then_some(None)
    }

    /// A fresh parser for one streamed response.
    fn stream_parser(&self) -> Box<dyn StreamParser>;

    /// A non-2xx answer → classified error. Reads the body too: a 429 can be a permanent
    /// quota error, a 400 can be a context-length error.
    fn classify_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8])
        -> UpstreamError;
}

/// Turns one upstream SSE stream into canonical events. Holds state across frames (tool-call
/// indices, accumulated usage); one instance per stream.
pub trait StreamParser: Send {
    /// Handles one frame, appending any events to `out`. An in-stream error event or a
    /// malformed frame is an `Err`; the stream should be treated as failed.
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError>;

    /// The byte stream ended. Appends any final events; an `Err` when the stream ended before
    /// its terminal event (`[DONE]`, `message_stop`, a finish reason), so a cut stream is never
    /// mistaken for a complete one.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError>;

    /// True once the terminal event was seen; frames after it are ignored.
    fn is_done(&self) -> bool;
}

/// Identity of a stream being encoded for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    pub id: String,
    /// The model that answers (what the client is told).
    pub model: String,
    /// Unix seconds.
    pub created: u64,
}

/// Canonical events → one provider's native stream bytes. One instance per stream; holds
/// state (whether the role was sent, tool-call indices, content-block numbering).
pub trait StreamEncoder: Send {
    /// Appends the native frames for `event` to `out` (possibly none).
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// Appends the terminal frames (`[DONE]`, `message_stop`, ...).
    fn finish(&mut self, out: &mut Vec<u8>);
    /// Appends an in-stream error frame that this provider's official SDKs raise as an error.
    /// Callers then end the stream without `finish`.
    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>);
}

/// The server side of a provider's wire format: native request in, native response out. The
/// mock providers are built on this, and the gateway's OpenAI front door is OpenAI's.
pub trait ServerSide: Send + Sync + 'static {
    /// Native request body → canonical. `path_model` is the model named in the URL, for
    /// providers that put it there (Gemini). Errors are `InvalidRequest` with a clear message.
    fn parse_request(
        &self,
        path_model: Option<&str>,
        body: &[u8],
    ) -> Result<ChatRequest, UpstreamError>;

    /// Canonical response → native JSON body.
    fn encode_response(&self, response: &ChatResponse) -> Vec<u8>;

    /// The format this side speaks, when upstream answers may already be in it (see
    /// [`Provider::forwardable`]).
    fn wire_format(&self) -> Option<WireFormat> {
        None
    }

    /// A stream encoder for one response to `request`.
    fn stream_encoder(&self, request: &ChatRequest, meta: StreamMeta) -> Box<dyn StreamEncoder>;

    /// An error → (HTTP status, native error body), e.g. 529 + `overloaded_error` for Anthropic.
    fn encode_error(&self, error: &UpstreamError) -> (u16, Vec<u8>);
}
