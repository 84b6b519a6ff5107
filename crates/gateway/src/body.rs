//! The body of every response the gateway writes: one whole document, or the pieces of a
//! stream as the relay task hands them over.
//!
//! [`crate::connection`] writes a whole document behind the head, with its `content-length`,
//! in one write, and a stream as chunks, each batch of waiting pieces in one write.

use bytes::Bytes;
use tokio::sync::mpsc;

/// A response as the HTTP server writes it.
pub type Response = http::Response<ResponseBody>;

pub enum ResponseBody {
    /// A whole document; `None` once written.
    Whole(Option<Bytes>),
    /// Stream pieces; the body ends when the sending side (the relay) is dropped. When the
    /// client goes away the connection drops this body, the relay's next send fails and it cancels the
    /// upstream.
    Stream(mpsc::Receiver<Bytes>),
}

impl ResponseBody {
    pub fn whole(bytes: impl Into<Bytes>) -> Self {
        ResponseBody::Whole(Some(bytes.into()))
    }
}

/// A response with a JSON body.
pub fn json(status: http::StatusCode, body: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(ResponseBody::whole(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}
