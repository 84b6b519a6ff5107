//! The load generator: hyper HTTP/1.1 client connections kept alive in a pool, closed-loop and
//! open-loop drivers, and stream timing. Latencies go into HdrHistograms in microseconds.
//!
//! Open loop: a plain OS thread sleeps until each intended send time (nanosleep is far finer
//! than tokio's millisecond timer) and hands that instant to the runtime; latency is measured
//! from the intended time, so a slow server cannot hide its queueing (no coordinated omission).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rand::seq::SliceRandom;
use tokio::sync::Semaphore;

type Conn = SendRequest<Full<Bytes>>;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Open-loop in-flight cap: beyond it, requests wait (and that wait is measured).
const MAX_IN_FLIGHT: usize = 512;

pub fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits; the bounds are valid, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// One endpoint under test, with its pool of idle keep-alive connections.
pub struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
    plain_body: Bytes,
    stream_body: Bytes,
    idle: Mutex<Vec<Conn>>,
    opened: AtomicUsize,
}

/// A finished phase of plain (non-streamed) requests.
pub struct Phase {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
}

/// A finished phase of streamed requests.
pub struct Streams {
    pub streams: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub ttfb: Histogram<u64>,
    pub ttlb: Histogram<u64>,
}

struct Timing {
    first_byte: Instant,
}

impl Target {
    /// `model` goes into the request body (a route alias for the gateway).
    pub fn new(addr: SocketAddr, path: &str, model: &str) -> Arc<Target> {
        let body = serde_json::json!({
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Say hello to the benchmark."}
            ],
            "max_tokens": 64,
        });
        Target::with_body(addr, path, model, &body)
    }

    /// Sends `body` (a chat completion request) with its `model` set to `model` and its
    /// `stream` set as each request needs.
    pub fn with_body(
        addr: SocketAddr,
        path: &str,
        model: &str,
        body: &serde_json::Value,
    ) -> Arc<Target> {
        let body = |stream: bool| {
            let mut body = body.clone();
            if let Some(fields) = body.as_object_mut() {
                fields.insert("model".into(), model.into());
                fields.insert("stream".into(), stream.into());
            }
            Bytes::from(body.to_string())
        };
        Arc::new(Target {
            addr,
            host: addr.to_string(),
            path: path.to_string(),
            plain_body: body(false),
            stream_body: body(true),
            idle: Mutex::new(Vec::new()),
            opened: AtomicUsize::new(0),
        })
    }

    /// Connections opened so far (a pool that keeps growing means keep-alive is failing).
    pub fn connections_opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    async fn take(&self) -> Result<Conn, String> {
        loop {
            let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match conn {
                Some(c) if !c.is_closed() => return Ok(c),
                Some(_) => continue,
                None => return self.connect().await,
            }
        }
    }

    fn give(&self, conn: Conn) {
        if !conn.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    /// One request on a pooled connection, within [`REQUEST_TIMEOUT`].
    async fn request(&self, stream: bool) -> Result<Timing, String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.request_inner(stream)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no complete answer within {REQUEST_TIMEOUT:?}")),
        }
    }

    async fn request_inner(&self, stream: bool) -> Result<Timing, String> {
        let mut conn = self.take().await?;
        conn.ready().await.map_err(|e| format!("connection: {e}"))?;
        let body = if stream {
            self.stream_body.clone()
        } else {
            self.plain_body.clone()
        };
        let req = Request::post(self.path.as_str())
            .header(http::header::HOST, self.host.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let resp = conn
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut first_byte = None;
        // The tail of the body: enough to see `[DONE]` and to quote an error.
        let mut tail: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("body: {e}"))?;
            if let Some(data) = frame.data_ref() {
                if first_byte.is_none() && !data.is_empty() {
                    first_byte = Some(Instant::now());
                }
                tail.extend_from_slice(data);
                if tail.len() > 512 {
                    tail.drain(..tail.len() - 256);
                }
            }
        }
        self.give(conn);
        if !status.is_success() {
            return Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&tail).trim()
            ));
        }
        if stream && !tail.ends_with(b"data: [DONE]\n\n") {
            return Err(format!(
                "stream did not end with [DONE]: ...{}",
                String::from_utf8_lossy(&tail)
            ));
        }
        Ok(Timing {
            first_byte: first_byte.unwrap_or_else(Instant::now),
        })
    }

    /// Opens up to `n` connections ahead of a phase, so connecting is not measured.
    pub async fn warm(self: &Arc<Self>, n: usize, duration: Duration) {
        let _ = closed(self, n, duration).await;
    }
}

/// Closed loop: `conns` connections, each sending its next request when the previous answer
/// is complete, for `duration`.
pub async fn closed(target: &Arc<Target>, conns: usize, duration: Duration) -> Phase {
    closed_until(target, conns, Some(duration), None).await
}

/// Closed loop for a fixed number of requests (the long memory run).
pub async fn closed_count(target: &Arc<Target>, conns: usize, requests: u64) -> Phase {
    closed_until(target, conns, None, Some(requests)).await
}

async fn closed_until(
    target: &Arc<Target>,
    conns: usize,
    duration: Option<Duration>,
    count: Option<u64>,
) -> Phase {
    let start = Instant::now();
    let deadline = duration.map(|d| start + d);
    let remaining = Arc::new(std::sync::atomic::AtomicU64::new(count.unwrap_or(u64::MAX)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns.max(1) {
        let target = Arc::clone(target);
        let remaining = Arc::clone(&remaining);
        tasks.spawn(async move {
            let mut phase = empty_phase();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let took = remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1));
                if took.is_err() {
                    break;
                }
                let sent = Instant::now();
                let outcome = target.request(false).await;
                note(&mut phase, sent, outcome);
            }
            phase
        });
    }
    let mut total = empty_phase();
    while let Some(done) = tasks.join_next().await {
        if let Ok(p) = done {
            merge(&mut total, p);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Open loop at `rate` requests per second for `duration`.
pub async fn open(target: &Arc<Target>, rate: u32, duration: Duration) -> Phase {
    open_in_turn(std::slice::from_ref(target), rate, duration)
        .await
        .pop()
        .unwrap_or_else(empty_phase)
}

/// Closed loop over several targets in turn, one connection each, for `duration`: one
/// request to each per round, in a fresh random order every round. Measured one after
/// another, phases of different targets meet the machine in different states (this shared
/// VM drifts by tens of microseconds over minutes); in turn, every target sees the same
/// moments. The order is shuffled because a fixed one (even with a rotating start) makes
/// each target always follow the same other one, and on two cores a request pays for the
/// work its predecessor's process still does after answering: a second gateway that always
/// followed the first measured 8-12 µs slower at p50 whichever build it ran (session 8).
pub async fn closed_in_turn(targets: &[Arc<Target>], duration: Duration) -> Vec<Phase> {
    let mut phases: Vec<Phase> = targets.iter().map(|_| empty_phase()).collect();
    let mut order: Vec<usize> = (0..targets.len()).collect();
    let mut rng = rand::rng();
    let start = Instant::now();
    while start.elapsed() < duration {
        order.shuffle(&mut rng);
        for &at in &order {
            let sent = Instant::now();
            let outcome = targets[at].request(false).await;
            note(&mut phases[at], sent, outcome);
        }
    }
    let elapsed = start.elapsed();
    for p in &mut phases {
        p.elapsed = elapsed;
    }
    phases
}

/// Open loop at `rate` requests per second to each target, for `duration`. With several
/// targets their send times interleave: `n` evenly spaced ticks per `1 / rate`, one for each
/// target, in a fresh random order every round (as in [`closed_in_turn`], so that no target
/// always follows the same one). Each sees the same machine, which carries all of them at
/// once.
pub async fn open_in_turn(targets: &[Arc<Target>], rate: u32, duration: Duration) -> Vec<Phase> {
    let n = targets.len().max(1);
    let ticks_per_sec = f64::from(rate.max(1)) * n as f64;
    let interval = Duration::from_secs_f64(1.0 / ticks_per_sec);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + duration;
    let scheduler = std::thread::spawn(move || {
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = rand::rng();
        let mut i: u32 = 0;
        loop {
            let intended = start + interval * i;
            if intended >= end {
                break;
            }
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            let slot = i as usize % n;
            if slot == 0 {
                order.shuffle(&mut rng);
            }
            if tx.send((order[slot], intended)).is_err() {
                break;
            }
            i = i.saturating_add(1);
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let results: Arc<Vec<Mutex<Phase>>> =
        Arc::new(targets.iter().map(|_| Mutex::new(empty_phase())).collect());
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = vec![0u64; targets.len()];
    while let Some((at, intended)) = rx.recv().await {
        sent[at] += 1;
        let target = Arc::clone(&targets[at]);
        let in_flight = Arc::clone(&in_flight);
        let results = Arc::clone(&results);
        tasks.spawn(async move {
            let outcome = match in_flight.acquire().await {
                Ok(_permit) => target.request(false).await,
                Err(_) => Err("semaphore closed".into()),
            };
            note(
                &mut results[at].lock().unwrap_or_else(|p| p.into_inner()),
                intended,
                outcome,
            );
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let _ = scheduler.join();
    let drain = tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drain.is_err() {
        tasks.abort_all();
    }
    results
        .iter()
        .zip(sent)
        .map(|(slot, sent)| {
            let mut phase = std::mem::replace(
                &mut *slot.lock().unwrap_or_else(|p| p.into_inner()),
                empty_phase(),
            );
            // What was sent and never noted did not finish before the drain gave up.
            let stuck = sent.saturating_sub(phase.requests);
            if stuck > 0 {
                phase.errors += stuck;
                phase.requests += stuck;
                phase
                    .first_error
                    .get_or_insert_with(|| format!("{stuck} requests never finished"));
            }
            phase.elapsed = end.saturating_duration_since(start);
            phase
        })
        .collect()
}

/// `count` streams one after another on one connection: time to first and last byte.
pub async fn streams(target: &Arc<Target>, count: u64) -> Streams {
    let mut s = Streams {
        streams: 0,
        errors: 0,
        first_error: None,
        ttfb: histogram(),
        ttlb: histogram(),
    };
    for _ in 0..count {
        let sent = Instant::now();
        s.streams += 1;
        match target.request(true).await {
            Ok(t) => {
                record(&mut s.ttfb, t.first_byte.saturating_duration_since(sent));
                record(&mut s.ttlb, sent.elapsed());
            }
            Err(e) => {
                s.errors += 1;
                s.first_error.get_or_insert(e);
            }
        }
    }
    s
}

/// Opens `n` streams at once (each on its own connection) and calls `sample` repeatedly while
/// they are all open; returns the errors seen.
pub async fn hold_streams(
    target: &Arc<Target>,
    n: usize,
    mut sample: impl FnMut(),
) -> (u64, Option<String>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let target = Arc::clone(target);
        tasks.spawn(async move { target.request(true).await.map(|_| ()) });
    }
    // The upstream paces these streams over seconds; sample while they run.
    while !tasks.is_empty() {
        sample();
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Some(done) = tasks.try_join_next() {
            if let Ok(Err(e)) = done {
                return finish_hold(tasks, Some(e)).await;
            }
        }
    }
    (0, None)
}

async fn finish_hold(
    mut tasks: tokio::task::JoinSet<Result<(), String>>,
    first: Option<String>,
) -> (u64, Option<String>) {
    let mut errors = u64::from(first.is_some());
    while let Some(done) = tasks.join_next().await {
        if !matches!(done, Ok(Ok(()))) {
            errors += 1;
        }
    }
    (errors, first)
}

fn empty_phase() -> Phase {
    Phase {
        requests: 0,
        errors: 0,
        first_error: None,
        latency: histogram(),
        elapsed: Duration::ZERO,
    }
}

fn note(phase: &mut Phase, from: Instant, outcome: Result<Timing, String>) {
    phase.requests += 1;
    match outcome {
        Ok(_) => record(&mut phase.latency, from.elapsed()),
        Err(e) => {
            phase.errors += 1;
            phase.first_error.get_or_insert(e);
        }
    }
}

fn merge(into: &mut Phase, from: Phase) {
    into.requests += from.requests;
    into.errors += from.errors;
    if into.first_error.is_none() {
        into.first_error = from.first_error;
    }
    let _ = into.latency.add(&from.latency);
}
