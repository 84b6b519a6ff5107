//! The fast upstream the benchmark drives: canned OpenAI answers from pre-built bytes, so that
//! each request costs it as little as possible. It runs on its own runtime (its own threads),
//! apart from the load generator's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Model name the gateway's `slow` route sends: the upstream then paces its stream, so that
/// many streams stay open at once (for the memory-at-256-streams figure).
pub const SLOW_MODEL: &str = "slow-stream";

#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 200 with a chat.completion, or an SSE stream when the request asks for one.
    Answer {
        chunks: usize,
        slow_chunk_delay: Duration,
    },
    /// 503 every time: the primary of the failover route.
    Unavailable,
}

/// A server running on its own thread and runtime; dropping it stops the thread's runtime.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(behaviour: Behaviour, threads: usize) -> std::io::Result<Server> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("bench-upstream")
            .enable_all()
            .build()?;
        let canned = Canned::new(behaviour);
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                tokio::select! {
                    _ = accept_loop(listener, canned) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        });
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every byte the server sends, built once.
#[derive(Clone)]
struct Canned {
    behaviour: Behaviour,
    completion: Bytes,
    frames: std::sync::Arc<Vec<Bytes>>,
    error: Bytes,
}

impl Canned {
    fn new(behaviour: Behaviour) -> Self {
        let chunks = match behaviour {
            Behaviour::Answer { chunks, .. } => chunks,
            Behaviour::Unavailable => 0,
        };
        Canned {
            behaviour,
            completion: Bytes::from_static(COMPLETION.as_bytes()),
            frames: std::sync::Arc::new(stream_frames(chunks)),
            error: Bytes::from_static(
                br#"{"error":{"message":"The server is overloaded. Please try again later.","type":"server_error","param":null,"code":null}}"#,
            ),
        }
    }
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench0001","object":"chat.completion","created":1730000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! I am a benchmark upstream answering as fast as it can.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26},"system_fingerprint":"fp_bench"}"#;

/// The frames of one OpenAI chat.completion.chunk stream: role, `chunks` text pieces, the
/// finish chunk, `[DONE]`.
pub fn stream_frames(chunks: usize) -> Vec<Bytes> {
    let head = r#"{"id":"chatcmpl-bench0002","object":"chat.completion.chunk","created":1730000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{"index":0,"#;
    let mut frames = Vec::with_capacity(chunks + 3);
    frames.push(Bytes::from(format!(
        "data: {head}\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    )));
    for i in 0..chunks {
        frames.push(Bytes::from(format!(
            "data: {head}\"delta\":{{\"content\":\"token{i} \"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        )));
    }
    frames.push(Bytes::from(format!(
        "data: {head}\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
    )));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

async fn accept_loop(listener: TcpListener, canned: Canned) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let canned = canned.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(canned.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn respond(canned: Canned, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    // The request body must be read for the connection to be reused; it is small.
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let slow_delay = match canned.behaviour {
        Behaviour::Unavailable => {
            return Ok(json(StatusCode::SERVICE_UNAVAILABLE, canned.error));
        }
        Behaviour::Answer {
            slow_chunk_delay, ..
        } => slow_chunk_delay,
    };
    // Substring checks rather than a JSON parse: the upstream must stay cheap. Our own
    // load generator and the gateway's OpenAI builder both write compact JSON.
    if !contains(&body, br#""stream":true"#) {
        return Ok(json(StatusCode::OK, canned.completion));
    }
    let frames = std::sync::Arc::clone(&canned.frames);
    let body: Body = if contains(&body, SLOW_MODEL.as_bytes()) {
        let n = frames.len();
        let stream = futures_util::stream::iter(0..n).then(move |i| {
            let frames = std::sync::Arc::clone(&frames);
            async move {
                if i > 0 && i + 1 < n {
                    tokio::time::sleep(slow_delay).await;
                }
                Ok::<_, Infallible>(Frame::data(frames[i].clone()))
            }
        });
        BodyExt::boxed(StreamBody::new(stream))
    } else {
        let stream = futures_util::stream::iter(
            (0..frames.len()).map(move |i| Ok::<_, Infallible>(Frame::data(frames[i].clone()))),
        );
        BodyExt::boxed(StreamBody::new(stream))
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    Ok(resp)
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(BodyExt::boxed(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
