//! `cargo xtask bench`: the gateway against one plain nginx hop, measured in the same run.
//!
//! One run, in order:
//! 1. a fast upstream (canned OpenAI answers, [`upstream`]) and a second server that answers
//!    503 to everything (the failover route's primary) start on their own threads;
//! 2. the gateway starts (the caller decides how: release binary or in-process) with routes
//!    `plain`, `failover` and `slow`; nginx starts if installed;
//! 3. each row (direct, nginx, switchyard plain, switchyard failover) is warmed, then driven
//!    closed-loop at 1 and 32 connections, open-loop at each rate, and with streams;
//! 4. direct, nginx and switchyard plain again, in turn (request by request), at one
//!    connection and at the interleaved open-loop rates;
//! 5. the gateway's memory: idle, peak, across a long run, with many streams open at once.

pub mod load;
pub mod proc;
pub mod procs;
pub mod report;
pub mod upstream;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use load::Target;
use report::{
    percentile, GatewayFigures, HostFigures, PhaseFigures, Report, Row, Settings, StreamFigures,
};

/// A running gateway, however it was started.
pub trait GatewayHandle {
    fn addr(&self) -> SocketAddr;
    /// The processes whose CPU and memory are the gateway's alone; `None` in-process.
    fn pids(&self) -> Option<Vec<u32>>;
}

/// Starts a gateway from config text (its `server.listen` may be overridden).
pub type Launcher<'a> = &'a dyn Fn(&str) -> Result<Box<dyn GatewayHandle>, String>;

#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub rates: Vec<u32>,
    pub stream_chunks: usize,
    pub streams: u64,
    pub long_run_requests: u64,
    pub concurrent_streams: usize,
    /// Pause between chunks of the streams held open for the memory figure.
    pub slow_chunk_delay: Duration,
    /// Try to start nginx (skipped with a note when it is not installed).
    pub nginx: bool,
    /// Closed-loop connection counts.
    pub connections: Vec<usize>,
    /// Also drive direct, nginx and the plain route in turn (closed loop at one connection,
    /// then open loop at each of `interleaved_rates`), so their latencies are compared at the
    /// same moments.
    pub interleaved: bool,
    pub interleaved_rates: Vec<u32>,
}

impl Options {
    pub fn full() -> Options {
        Options {
            quick: false,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            rates: vec![500, 1000, 2000, 5000],
            stream_chunks: 200,
            streams: 300,
            long_run_requests: 100_000,
            concurrent_streams: 256,
            slow_chunk_delay: Duration::from_millis(20),
            nginx: true,
            connections: vec![1, 32],
            interleaved: true,
            interleaved_rates: vec![1000],
        }
    }

    pub fn quick() -> Options {
        Options {
            quick: true,
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            streams: 50,
            long_run_requests: 10_000,
            ..Options::full()
        }
    }

    /// Tiny and short: for the test suite, which checks the machinery, never the timings.
    pub fn smoke() -> Options {
        Options {
            quick: true,
            duration: Duration::from_millis(250),
            warmup: Duration::from_millis(50),
            rates: vec![50],
            stream_chunks: 20,
            streams: 5,
            long_run_requests: 100,
            concurrent_streams: 8,
            slow_chunk_delay: Duration::from_millis(5),
            nginx: true,
            connections: vec![1, 4],
            interleaved: true,
            interleaved_rates: vec![50],
        }
    }
}

/// The gateway config the benchmark runs with. The breaker threshold is out of reach so the
/// failover route pays for its failing primary on every request.
pub fn gateway_config(upstream: SocketAddr, down: SocketAddr) -> String {
    let target = |name: &str, addr: SocketAddr, model: &str| {
        format!(
            "{{ name = \"{name}\", provider = \"openai\", base_url = \"http://{addr}/v1\", api_key = \"sk-bench\", model = \"{model}\" }}"
        )
    };
    format!(
        r#"[server]
listen = "127.0.0.1:0"
request_timeout_ms = 30000

[timeouts]
connect_ms = 2000
headers_ms = 30000
first_token_ms = 30000
stall_ms = 30000
total_ms = 60000

[breaker]
failure_threshold = 1000000000

[models.plain]
targets = [{up}]

[models.failover]
targets = [{down}, {up}]

[models.slow]
targets = [{slow}]
"#,
        up = target("upstream", upstream, "bench-model"),
        down = target("down", down, "bench-model"),
        slow = target("slow", upstream, upstream::SLOW_MODEL),
    )
}

/// Runs the whole benchmark. `dir` holds generated configs and logs.
/// Runs every phase against the gateway `launch` starts; a `baseline` gateway, if given,
/// joins only the in-turn phase.
pub fn run(
    opts: &Options,
    dir: &Path,
    launch: Launcher<'_>,
    baseline: Option<Launcher<'_>>,
) -> Result<Report, String> {
    let io = |e: std::io::Error| format!("cannot start a benchmark server: {e}");
    let up = upstream::Server::start(
        upstream::Behaviour::Answer {
            chunks: opts.stream_chunks,
            slow_chunk_delay: opts.slow_chunk_delay,
        },
        2,
    )
    .map_err(io)?;
    let down = upstream::Server::start(upstream::Behaviour::Unavailable, 1).map_err(io)?;
    let config = gateway_config(up.addr, down.addr);
    let gateway = launch(&config)?;
    let baseline = match baseline {
        Some(start) => Some(start(&config)?),
        None => None,
    };
    let gw_pids = gateway.pids();
    let mut notes = Vec::new();
    let nginx = if !opts.nginx {
        Err("not requested".to_string())
    } else {
        match procs::Nginx::find() {
            None => Err("nginx is not installed (Debian: apt-get install nginx-light)".to_string()),
            Some(bin) => procs::Nginx::start(&bin, dir, up.addr),
        }
    };
    if let Err(why) = &nginx {
        notes.push(format!("nginx row skipped: {why}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-load")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load generator's runtime: {e}"))?;

    runtime.block_on(async {
        let mut figures = GatewayFigures {
            concurrent_streams: opts.concurrent_streams,
            ..GatewayFigures::default()
        };
        figures.idle_rss_kb = gw_pids.as_deref().and_then(|p| proc::status_kb(p, "VmRSS"));

        const PATH: &str = "/v1/chat/completions";
        let mut host = HostFigures::default();
        let rows_started = proc::HostCpu::now();
        let mut rows = Vec::new();
        rows.push(
            drive(
                "direct",
                Target::new(up.addr, PATH, "bench-model"),
                None,
                opts,
            )
            .await,
        );
        rows.push(match &nginx {
            Ok(n) => {
                let pids = n.pids();
                drive(
                    "nginx",
                    Target::new(n.addr, PATH, "bench-model"),
                    Some(pids),
                    opts,
                )
                .await
            }
            Err(why) => Row {
                name: "nginx".into(),
                skipped: Some(why.clone()),
                phases: Vec::new(),
                stream: None,
            },
        });
        let gw = gateway.addr();
        let plain = Target::new(gw, PATH, "plain");
        rows.push(
            drive(
                "switchyard plain",
                Arc::clone(&plain),
                gw_pids.clone(),
                opts,
            )
            .await,
        );
        rows.push(
            drive(
                "switchyard failover",
                Target::new(gw, PATH, "failover"),
                gw_pids.clone(),
                opts,
            )
            .await,
        );
        added_against_direct(&mut rows);
        let steal_since = |from: Option<proc::HostCpu>| {
            from.zip(proc::HostCpu::now())
                .and_then(|(from, to)| to.steal_percent_since(&from))
        };
        host.steal_percent_rows = steal_since(rows_started);

        let mut interleaved = Vec::new();
        let in_turn_started = proc::HostCpu::now();
        if opts.interleaved {
            let mut entries = vec![("direct", Target::new(up.addr, PATH, "bench-model"), None)];
            if let Ok(n) = &nginx {
                entries.push((
                    "nginx",
                    Target::new(n.addr, PATH, "bench-model"),
                    Some(n.pids()),
                ));
            }
            entries.push((
                "switchyard plain",
                Target::new(gw, PATH, "plain"),
                gw_pids.clone(),
            ));
            if let Some(b) = &baseline {
                entries.push((
                    "switchyard baseline",
                    Target::new(b.addr(), PATH, "plain"),
                    b.pids(),
                ));
            }
            interleaved = in_turn_on_one_thread(entries, opts)?;
            added_against_direct(&mut interleaved);
            host.steal_percent_in_turn = steal_since(in_turn_started);
        }
        figures.peak_rss_kb = gw_pids.as_deref().and_then(|p| proc::status_kb(p, "VmHWM"));

        // Memory must stay flat over many requests: no growth from histograms, breakers, pools.
        let conns = opts.connections.iter().copied().max().unwrap_or(32);
        figures.rss_before_long_run_kb =
            gw_pids.as_deref().and_then(|p| proc::status_kb(p, "VmRSS"));
        let long = load::closed_count(&plain, conns, opts.long_run_requests).await;
        figures.rss_after_long_run_kb =
            gw_pids.as_deref().and_then(|p| proc::status_kb(p, "VmRSS"));
        figures.long_run_requests = long.requests;
        figures.long_run_errors = long.errors;
        figures.long_run_rps = long.requests as f64 / long.elapsed.as_secs_f64().max(1e-9);
        if let Some(e) = long.first_error {
            notes.push(format!("long run: first error: {e}"));
        }

        let slow = Target::new(gw, PATH, "slow");
        let mut max_rss = None::<u64>;
        let (errors, first) = load::hold_streams(&slow, opts.concurrent_streams, || {
            if let Some(kb) = gw_pids.as_deref().and_then(|p| proc::status_kb(p, "VmRSS")) {
                max_rss = Some(max_rss.map_or(kb, |m| m.max(kb)));
            }
        })
        .await;
        figures.rss_concurrent_streams_kb = max_rss;
        figures.concurrent_stream_errors = errors;
        if let Some(e) = first {
            notes.push(format!("concurrent streams: first error: {e}"));
        }
        if gw_pids.is_none() {
            notes.push("gateway ran in-process: no CPU or memory figures".into());
        }
        let in_turn = interleaved.iter().map(|r| ("in turn, ", r));
        for (prefix, row) in rows.iter().map(|r| ("", r)).chain(in_turn) {
            for p in &row.phases {
                if let Some(e) = &p.first_error {
                    notes.push(format!(
                        "{prefix}{} {}: {} errors, first: {e}",
                        row.name, p.name, p.errors
                    ));
                }
            }
            if let Some(e) = row.stream.as_ref().and_then(|s| s.first_error.as_ref()) {
                notes.push(format!("{prefix}{} streams: first error: {e}", row.name));
            }
        }
        Ok(Report {
            machine: proc::machine(),
            settings: Settings {
                quick: opts.quick,
                duration_s: opts.duration.as_secs_f64(),
                rates: opts.rates.clone(),
                stream_chunks: opts.stream_chunks,
                streams: opts.streams,
                long_run_requests: opts.long_run_requests,
                concurrent_streams: opts.concurrent_streams,
            },
            rows,
            interleaved,
            gateway: figures,
            host,
            notes,
        })
    })
}

/// Every phase of one row.
async fn drive(name: &str, target: Arc<Target>, pids: Option<Vec<u32>>, opts: &Options) -> Row {
    let cpu = || pids.as_deref().and_then(proc::cpu_seconds);
    let warm_conns = opts.connections.iter().copied().max().unwrap_or(1);
    target.warm(warm_conns, opts.warmup).await;
    let mut phases = Vec::new();
    for &c in &opts.connections {
        let before = cpu();
        let p = load::closed(&target, c, opts.duration).await;
        phases.push(figures(format!("closed-{c}"), &p, before, cpu()));
    }
    for &rate in &opts.rates {
        let before = cpu();
        let p = load::open(&target, rate, opts.duration).await;
        phases.push(figures(format!("open-{rate}"), &p, before, cpu()));
    }
    if opts.streams == 0 {
        return Row {
            name: name.to_string(),
            skipped: None,
            phases,
            stream: None,
        };
    }
    let before = cpu();
    let s = load::streams(&target, opts.streams).await;
    let after = cpu();
    let stream = StreamFigures {
        streams: s.streams,
        errors: s.errors,
        first_error: s.first_error,
        ttfb_p50_us: percentile(&s.ttfb, 0.5),
        ttfb_p99_us: percentile(&s.ttfb, 0.99),
        ttlb_p50_us: percentile(&s.ttlb, 0.5),
        ttlb_p99_us: percentile(&s.ttlb, 0.99),
        added_ttfb_p50_us: None,
        added_ttlb_p50_us: None,
        cpu_us_per_stream: per_request(before, after, s.streams),
    };
    Row {
        name: name.to_string(),
        skipped: None,
        phases,
        stream: Some(stream),
    }
}

/// A row of the in-turn phase: its name, where to send, and its processes (for CPU).
type InTurn<'a> = (&'a str, Arc<Target>, Option<Vec<u32>>);

/// The same phases for several rows at once, request by request in turn (see
/// [`load::closed_in_turn`]). CPU per request is still each row's own: its processes are
/// separate.
async fn drive_in_turn(entries: Vec<InTurn<'_>>, opts: &Options) -> Vec<Row> {
    let targets: Vec<Arc<Target>> = entries.iter().map(|(_, t, _)| Arc::clone(t)).collect();
    let cpus = || -> Vec<Option<f64>> {
        entries
            .iter()
            .map(|(_, _, pids)| pids.as_deref().and_then(proc::cpu_seconds))
            .collect()
    };
    for t in &targets {
        t.warm(1, opts.warmup).await;
    }
    let mut rows: Vec<Row> = entries
        .iter()
        .map(|(name, _, _)| Row {
            name: (*name).to_string(),
            skipped: None,
            phases: Vec::new(),
            stream: None,
        })
        .collect();
    let record = |rows: &mut [Row], name: &str, phases: &[load::Phase], before: &[Option<f64>]| {
        let after = cpus();
        for ((row, p), (b, a)) in rows.iter_mut().zip(phases).zip(before.iter().zip(after)) {
            row.phases.push(figures(name.to_string(), p, *b, a));
        }
    };
    let before = cpus();
    let phases = load::closed_in_turn(&targets, opts.duration).await;
    record(&mut rows, "closed-1", &phases, &before);
    for &rate in &opts.interleaved_rates {
        let before = cpus();
        let phases = load::open_in_turn(&targets, rate, opts.duration).await;
        record(&mut rows, &format!("open-{rate}"), &phases, &before);
    }
    rows
}

/// [`drive_in_turn`] on a single-threaded runtime of its own, on its own thread: the loop and
/// every connection's task on one thread, so that no request waits for a wake-up across
/// threads. On the two-thread load runtime where a connection's task landed decided by how
/// much it trailed: a second copy of the same gateway build measured 13 µs slower at p50
/// (session 8). Blocks the caller (the bench's own task) until the phase ends.
fn in_turn_on_one_thread(entries: Vec<InTurn<'_>>, opts: &Options) -> Result<Vec<Row>, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the in-turn runtime: {e}"))?;
                Ok(runtime.block_on(drive_in_turn(entries, opts)))
            })
            .join()
            .map_err(|_| "the in-turn phase panicked".to_string())?
    })
}

fn per_request(before: Option<f64>, after: Option<f64>, n: u64) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if n > 0 => Some((a - b) * 1e6 / n as f64),
        _ => None,
    }
}

fn figures(name: String, p: &load::Phase, before: Option<f64>, after: Option<f64>) -> PhaseFigures {
    PhaseFigures {
        name,
        requests: p.requests,
        errors: p.errors,
        first_error: p.first_error.clone(),
        rps: (p.requests - p.errors) as f64 / p.elapsed.as_secs_f64().max(1e-9),
        p50_us: percentile(&p.latency, 0.5),
        p90_us: percentile(&p.latency, 0.9),
        p99_us: percentile(&p.latency, 0.99),
        p999_us: percentile(&p.latency, 0.999),
        max_us: p.latency.max() as f64,
        added_p50_us: None,
        added_p99_us: None,
        cpu_us_per_req: per_request(before, after, p.requests),
    }
}

fn added_against_direct(rows: &mut [Row]) {
    let Some(direct) = rows.iter().find(|r| r.name == "direct").cloned() else {
        return;
    };
    for row in rows.iter_mut().filter(|r| r.name != "direct") {
        for p in &mut row.phases {
            if let Some(d) = direct.phases.iter().find(|d| d.name == p.name) {
                p.added_p50_us = Some(p.p50_us - d.p50_us);
                p.added_p99_us = Some(p.p99_us - d.p99_us);
            }
        }
        if let (Some(s), Some(d)) = (&mut row.stream, &direct.stream) {
            s.added_ttfb_p50_us = Some(s.ttfb_p50_us - d.ttfb_p50_us);
            s.added_ttlb_p50_us = Some(s.ttlb_p50_us - d.ttlb_p50_us);
        }
    }
}
