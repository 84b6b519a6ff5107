//! The body of every response the gateway writes: one whole document, or the pieces of a
//! stream as the relay task hands them over.
//!
//! A concrete type rather than a boxed `dyn Body`: a JSON answer is one `Bytes` with its length
//! known up front (so hyper writes `content-length` and the head and body leave in one write),
//! and neither kind costs an allocation or a virtual call per poll.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// A response as the HTTP server writes it.
pub type Response = http::Response<ResponseBody>;

pub enum ResponseBody {
    /// A whole document; `None` once written.
    Whole(Option<Bytes>),
    /// Stream pieces; the body ends when the sending side (the relay) is dropped. When the
    /// client goes away hyper drops this body, the relay's next send fails and it cancels the
    /// upstream.
    Stream(mpsc::Receiver<Bytes>),
}

impl ResponseBody {
    pub fn whole(bytes: impl Into<Bytes>) -> Self {
        ResponseBody::Whole(Some(bytes.into()))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stream(rx) => rx
                .poll_recv(cx)
                .map(|piece| piece.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Whole(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Whole(None) => SizeHint::with_exact(0),
            ResponseBody::Stream(_) => SizeHint::default(),
        }
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
