//! The mock's HTTP side: accept loop, routing by wire format, fault execution.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use switchyard_core::{ChatRequest, ErrorClass, StreamMeta, UpstreamError};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

use crate::faults::{Fault, FaultRule};
use crate::{lock, reply, LoggedRequest, State, Wire};

type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("mock accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        state
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            // A `Reset` fault trips this to drop the connection with no response at all.
            let kill = Arc::new(Notify::new());
            let service = {
                let kill = Arc::clone(&kill);
                service_fn(move |req| {
                    let state = Arc::clone(&state);
                    let kill = Arc::clone(&kill);
                    async move { Ok::<_, Infallible>(handle(state, kill, req).await) }
                })
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    full(status, "application/json", body)
}

async fn handle(
    state: Arc<State>,
    kill: Arc<Notify>,
    req: http::Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let had_api_key = ["authorization", "x-api-key", "x-goog-api-key"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    let headers: Vec<(String, String)> = crate::LOGGED_HEADERS
        .iter()
        .filter_map(|h| {
            let v = req.headers().get(*h)?.to_str().ok()?;
            Some((h.to_string(), v.to_string()))
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return full(StatusCode::BAD_REQUEST, "text/plain", "unreadable body"),
    };

    if let Some(control) = path.strip_prefix("/_mock/") {
        return handle_control(&state, &method, control, &body);
    }
    if method == Method::GET && path == "/health" {
        return full(StatusCode::OK, "text/plain", "ok");
    }
    let Some((path_model, path_stream)) = route(state.config.wire, &method, &path) else {
        return full(
            StatusCode::NOT_FOUND,
            "text/plain",
            "no such route on this mock",
        );
    };

    let fault = lock(&state.plan).take();
    let n = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut log = lock(&state.log);
        // Bounded, so a long-running mock under load does not grow without end.
        if log.len() >= 100_000 {
            log.drain(..50_000);
        }
        log.push(LoggedRequest {
            path: if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            },
            had_api_key,
            headers,
            fault: fault.clone(),
            body: if state.config.log_bodies {
                body.clone()
            } else {
                Bytes::new()
            },
        });
    }

    let server = &state.server;
    let mut request = match server.parse_request(path_model.as_deref(), &body) {
        Ok(r) => r,
        Err(e) => return error_response(&state, &e, None),
    };
    if path_stream {
        request.stream = true;
    }

    match &fault {
        Some(Fault::Status {
            status,
            retry_after_s,
            code,
        }) => {
            let class = ErrorClass::from_status(*status, retry_after_s.map(Duration::from_secs));
            let mut err = UpstreamError::new(
                class,
                format!("mock {}: injected {status}", state.config.name),
            )
            .with_status(*status);
            if let Some(code) = code {
                err = err.with_code(code.clone());
            }
            return error_response(&state, &err, *retry_after_s);
        }
        Some(Fault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Reset) => {
            kill.notify_one();
            std::future::pending::<()>().await;
        }
        _ => {}
    }

    let id = format!("{}-{n}", state.config.name);
    let answer = reply::answer(
        &state.config.name,
        &request,
        state.config.reply.as_deref(),
        id,
    );
    if !request.stream {
        return full(
            StatusCode::OK,
            "application/json",
            server.encode_response(&answer),
        );
    }
    stream_response(&state, &request, &answer, fault)
}

/// Returns (model named in the path, whether the path asks for a stream) for a chat route.
fn route(wire: Wire, method: &Method, path: &str) -> Option<(Option<String>, bool)> {
    if method != Method::POST {
        return None;
    }
    match wire {
        Wire::OpenAi => path.ends_with("/chat/completions").then_some((None, false)),
        Wire::Anthropic => path.ends_with("/v1/messages").then_some((None, false)),
        Wire::Gemini => {
            let rest = path.strip_prefix("/v1beta/models/")?;
            let (model, method) = rest.rsplit_once(':')?;
            match method {
                "generateContent" => Some((Some(model.to_string()), false)),
                "streamGenerateContent" => Some((Some(model.to_string()), true)),
                _ => None,
            }
        }
    }
}

fn error_response(
    state: &State,
    err: &UpstreamError,
    retry_after_s: Option<u64>,
) -> Response<Body> {
    let (status, body) = state.server.encode_error(err);
    let mut resp = full(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        body,
    );
    if let Some(s) = retry_after_s {
        if let Ok(v) = s.to_string().parse() {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    resp
}

fn handle_control(state: &State, method: &Method, what: &str, body: &[u8]) -> Response<Body> {
    match (method.clone(), what) {
        (Method::POST, "faults") => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => {
                lock(&state.plan).push(rule);
                json(StatusCode::OK, &serde_json::json!({"ok": true}))
            }
            Err(e) => json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": format!("bad fault rule: {e}")}),
            ),
        },
        (Method::POST, "reset") => {
            lock(&state.plan).clear();
            lock(&state.log).clear();
            json(StatusCode::OK, &serde_json::json!({"ok": true}))
        }
        (Method::GET, "requests") => {
            let log = lock(&state.log);
            let entries: Vec<_> = log
                .iter()
                .map(|r| serde_json::json!({"path": r.path, "had_api_key": r.had_api_key, "fault": r.fault, "body": r.json()}))
                .collect();
            json(StatusCode::OK, &entries)
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", "unknown control route"),
    }
}

enum Step {
    Send(Bytes),
    Sleep(Duration),
    Cut,
}

fn stream_response(
    state: &Arc<State>,
    request: &ChatRequest,
    answer: &switchyard_core::ChatResponse,
    fault: Option<Fault>,
) -> Response<Body> {
    let events = reply::stream_events(answer, state.config.stream_chunks);
    let mut encoder = state.server.stream_encoder(
        request,
        StreamMeta {
            id: answer.id.clone(),
            model: answer.model.clone(),
            created: answer.created,
        },
    );
    let mut delay = state.config.chunk_delay;
    if let Some(Fault::SlowStream { chunk_delay_ms }) = fault {
        delay = Duration::from_millis(chunk_delay_ms);
    }
    // Plan every write up front; the sender task only paces them.
    let mut steps = Vec::with_capacity(events.len() * 2 + 2);
    let mut content_sent = 0usize;
    let mut buf = Vec::new();
    for event in &events {
        let trigger = match &fault {
            Some(Fault::StallAfter { chunks, .. })
            | Some(Fault::DropAfter { chunks })
            | Some(Fault::ErrorAfter { chunks, .. })
            | Some(Fault::MalformedAfter { chunks })
            | Some(Fault::EndWithoutDone { chunks }) => {
                event.is_content() && content_sent == *chunks
            }
            _ => false,
        };
        if trigger {
            match &fault {
                Some(Fault::StallAfter { ms, .. }) => {
                    let pause = if *ms == 0 {
                        Duration::from_secs(86_400)
                    } else {
                        Duration::from_millis(*ms)
                    };
                    steps.push(Step::Sleep(pause));
                }
                Some(Fault::DropAfter { .. }) => {
                    steps.push(Step::Cut);
                    break;
                }
                Some(Fault::ErrorAfter { status, .. }) => {
                    let class = ErrorClass::from_status(*status, None);
                    let err = UpstreamError::new(class, "mock: injected in-stream error")
                        .with_status(*status);
                    let mut b = Vec::new();
                    encoder.error(&err, &mut b);
                    steps.push(Step::Send(Bytes::from(b)));
                    return sse_response(state, steps, delay);
                }
                Some(Fault::MalformedAfter { .. }) => {
                    steps.push(Step::Send(Bytes::from_static(b"data: {\"broken\": \n\n")));
                }
                Some(Fault::EndWithoutDone { .. }) => return sse_response(state, steps, delay),
                _ => {}
            }
        }
        buf.clear();
        encoder.encode(event, &mut buf);
        if !buf.is_empty() {
            steps.push(Step::Send(Bytes::copy_from_slice(&buf)));
        }
        if event.is_content() {
            content_sent += 1;
        }
    }
    if !matches!(steps.last(), Some(Step::Cut)) {
        buf.clear();
        encoder.finish(&mut buf);
        if matches!(fault, Some(Fault::NoTerminal | Fault::CutBeforeTerminal)) {
            drop_last_frame(&mut buf);
        }
        if !buf.is_empty() {
            steps.push(Step::Send(Bytes::copy_from_slice(&buf)));
        }
        if matches!(fault, Some(Fault::CutBeforeTerminal)) {
            steps.push(Step::Cut);
        }
    }
    sse_response(state, steps, delay)
}

fn sse_response(state: &Arc<State>, steps: Vec<Step>, delay: Duration) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    let state = Arc::clone(state);
    // Counts streams whose reader went away before the end, so tests can prove that a client
    // leaving the gateway cancels the upstream stream too.
    let abandoned = move || {
        state.abandoned.fetch_add(1, Ordering::Relaxed);
    };
    tokio::spawn(async move {
        let mut first = true;
        for step in steps {
            match step {
                Step::Send(bytes) => {
                    if !first && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    first = false;
                    if tx.send(Ok(Frame::data(bytes))).await.is_err() {
                        abandoned();
                        return;
                    }
                }
                Step::Sleep(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = tx.closed() => {
                            abandoned();
                            return;
                        }
                    }
                }
                Step::Cut => {
                    // hyper drops unflushed writes when a body fails; give what was sent
                    // time to reach the client so the cut lands mid-answer, as intended.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "mock: injected cut",
                        )))
                        .await;
                    return;
                }
            }
        }
    });
    let stream = tokio_stream_from(rx);
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    resp
}

fn tokio_stream_from<T: Send + Sync + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + Sync + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Cuts the last SSE frame (the terminal marker) off `buf`.
fn drop_last_frame(buf: &mut Vec<u8>) {
    let body = &buf[..buf.len().saturating_sub(2)];
    let cut = body
        .windows(2)
        .rposition(|w| w == b"\n\n")
        .map(|i| i + 2)
        .unwrap_or(0);
    buf.truncate(cut);
}
