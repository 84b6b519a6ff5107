//! Every response the gateway writes: a status, a few header fields and a body that is one
//! whole document or the pieces of a stream as the relay task hands them over.
//!
//! [`crate::connection`] writes a whole document behind the head, with its `content-length`,
//! in one write, and a stream as chunks, each batch of waiting pieces in one write.
//!
//! Not `http::Response`: its `HeaderMap` hashes every name and allocates twice on the first
//! insert, for an answer that carries three or four fields and is only ever written out in
//! order. Here the fields are a list.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::sync::mpsc;

/// A response as the HTTP server writes it.
pub struct Response {
    pub status: StatusCode,
    /// Written in this order. The connection adds `content-length` or `transfer-encoding`,
    /// `date` and `connection` itself; these must not be among them.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ResponseBody,
}

pub enum ResponseBody {
    /// A whole document; `None` once written.
    Whole(Option<Bytes>),
    /// Stream pieces; the body ends when the sending side (the relay) is dropped. When the
    /// client goes away the connection drops this body, the relay's next send fails and it
    /// cancels the upstream.
    Stream(mpsc::Receiver<Bytes>),
}

impl ResponseBody {
    pub fn whole(bytes: impl Into<Bytes>) -> Self {
        ResponseBody::Whole(Some(bytes.into()))
    }
}

impl Response {
    /// Room for the usual fields (content type, target, attempts, one more) without growing.
    const USUAL_FIELDS: usize = 4;

    /// `content_type` is one of the constants below: `HeaderValue::from_static` checks its
    /// text when it runs, so it runs once, at compile time.
    pub fn new(status: StatusCode, content_type: HeaderValue, body: ResponseBody) -> Self {
        let mut headers = Vec::with_capacity(Self::USUAL_FIELDS);
        headers.push((http::header::CONTENT_TYPE, content_type));
        Response {
            status,
            headers,
            body,
        }
    }

    /// Adds a field; a name may appear more than once.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.push((name, value));
    }
}

pub const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// A response with a JSON body.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response {
    Response::new(status, JSON, ResponseBody::whole(body))
}
