//! The figures of one run: printed as a table, written as JSON, compared with a saved run.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: String,
    pub settings: Settings,
    pub rows: Vec<Row>,
    /// Direct, nginx and the plain route measured in turn, request by request (absent in
    /// reports from before they were).
    #[serde(default)]
    pub interleaved: Vec<Row>,
    pub gateway: GatewayFigures,
    /// How busy the host's other guests kept our CPUs (absent in older reports).
    #[serde(default)]
    pub host: HostFigures,
    pub notes: Vec<String>,
}

/// CPU time stolen from this VM while the rows ran, in percent of all its CPU time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostFigures {
    pub steal_percent_rows: Option<f64>,
    pub steal_percent_in_turn: Option<f64>,
}

/// Above this much steal a run's tails and CPU figures say more about the neighbours than
/// about us.
pub const NOISY_STEAL_PERCENT: f64 = 2.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub quick: bool,
    pub duration_s: f64,
    pub rates: Vec<u32>,
    pub stream_chunks: usize,
    pub streams: u64,
    pub long_run_requests: u64,
    pub concurrent_streams: usize,
}

/// One way of reaching the upstream: direct, nginx, switchyard plain, switchyard failover.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    /// Why the row did not run (e.g. no nginx installed).
    pub skipped: Option<String>,
    pub phases: Vec<PhaseFigures>,
    pub stream: Option<StreamFigures>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseFigures {
    /// `closed-1`, `closed-32`, `open-1000`, ...
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub rps: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Against the direct row's same phase.
    pub added_p50_us: Option<f64>,
    pub added_p99_us: Option<f64>,
    /// CPU (user+system) of the row's process(es) per request, when they are ours to read.
    pub cpu_us_per_req: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamFigures {
    pub streams: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub ttfb_p50_us: f64,
    pub ttfb_p99_us: f64,
    pub ttlb_p50_us: f64,
    pub ttlb_p99_us: f64,
    pub added_ttfb_p50_us: Option<f64>,
    pub added_ttlb_p50_us: Option<f64>,
    pub cpu_us_per_stream: Option<f64>,
}

/// The gateway process's own figures (absent when it runs in-process, as in the smoke test).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GatewayFigures {
    pub idle_rss_kb: Option<u64>,
    /// VmHWM after the rows: the kernel's own high-water mark of resident memory.
    pub peak_rss_kb: Option<u64>,
    pub long_run_requests: u64,
    pub long_run_errors: u64,
    pub long_run_rps: f64,
    pub rss_before_long_run_kb: Option<u64>,
    pub rss_after_long_run_kb: Option<u64>,
    pub concurrent_streams: usize,
    pub concurrent_stream_errors: u64,
    /// Highest VmRSS sampled while the concurrent streams were open.
    pub rss_concurrent_streams_kb: Option<u64>,
}

pub fn percentile(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64
    }
}

impl Report {
    /// Every error the run saw, for the smoke test and the exit status.
    pub fn total_errors(&self) -> u64 {
        let rows: u64 = self
            .rows
            .iter()
            .map(|r| {
                r.phases.iter().map(|p| p.errors).sum::<u64>()
                    + r.stream.as_ref().map_or(0, |s| s.errors)
            })
            .sum();
        let interleaved: u64 = self
            .interleaved
            .iter()
            .flat_map(|r| &r.phases)
            .map(|p| p.errors)
            .sum();
        rows + interleaved + self.gateway.long_run_errors + self.gateway.concurrent_stream_errors
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "machine: {}", self.machine);
        let s = &self.settings;
        let pct = |p: Option<f64>| p.map_or("n/a".to_string(), |p| format!("{p:.1} %"));
        let noisy = [
            self.host.steal_percent_rows,
            self.host.steal_percent_in_turn,
        ]
        .iter()
        .flatten()
        .any(|&p| p > NOISY_STEAL_PERCENT);
        let _ = writeln!(
            out,
            "host: CPU time stolen by other guests {} during the rows, {} during the in-turn phase{}",
            pct(self.host.steal_percent_rows),
            pct(self.host.steal_percent_in_turn),
            if noisy {
                " (NOISY: over 2 %, read tails and CPU per request with care)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "{} run: {} s per phase, open-loop rates {:?}, {} streams of {} chunks\n",
            if s.quick { "quick" } else { "full" },
            s.duration_s,
            s.rates,
            s.streams,
            s.stream_chunks
        );
        phase_table(&mut out, &self.rows);
        if !self.interleaved.is_empty() {
            let _ = writeln!(
                out,
                "\nin turn: the rows below alternate request by request (closed-1) or send time \
                 by send time (open), each at the phase's rate"
            );
            phase_table(&mut out, &self.interleaved);
        }
        let _ = writeln!(
            out,
            "\nstreams ({} chunks, one connection, one after another)",
            s.stream_chunks
        );
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10}",
            "row",
            "ttfb p50",
            "ttfb p99",
            "ttlb p50",
            "ttlb p99",
            "+ttfb p50",
            "+ttlb p50",
            "errors",
            "cpu µs/s"
        );
        for row in &self.rows {
            if let Some(st) = &row.stream {
                let _ = writeln!(
                    out,
                    "{:<20} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>10} {:>10} {:>7} {:>10}",
                    row.name,
                    st.ttfb_p50_us,
                    st.ttfb_p99_us,
                    st.ttlb_p50_us,
                    st.ttlb_p99_us,
                    opt(st.added_ttfb_p50_us),
                    opt(st.added_ttlb_p50_us),
                    st.errors,
                    opt(st.cpu_us_per_stream)
                );
            }
        }
        let g = &self.gateway;
        let mb = |kb: Option<u64>| {
            kb.map_or("n/a".to_string(), |k| {
                format!("{:.1} MB", k as f64 / 1024.0)
            })
        };
        let _ = writeln!(out, "\ngateway memory");
        let _ = writeln!(
            out,
            "  idle RSS:                          {}",
            mb(g.idle_rss_kb)
        );
        let _ = writeln!(
            out,
            "  peak RSS over the rows (VmHWM):    {}",
            mb(g.peak_rss_kb)
        );
        let _ = writeln!(
            out,
            "  RSS at {} concurrent streams:     {} ({} errors)",
            g.concurrent_streams,
            mb(g.rss_concurrent_streams_kb),
            g.concurrent_stream_errors
        );
        let _ = writeln!(
            out,
            "  long run, {} requests at {:.0} req/s: RSS {} before, {} after ({} errors)",
            g.long_run_requests,
            g.long_run_rps,
            mb(g.rss_before_long_run_kb),
            mb(g.rss_after_long_run_kb),
            g.long_run_errors
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

fn phase_table(out: &mut String, rows: &[Row]) {
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "row",
        "phase",
        "req/s",
        "p50 µs",
        "p90",
        "p99",
        "p99.9",
        "+p50",
        "+p99",
        "errors",
        "cpu µs/r"
    );
    for row in rows {
        if let Some(why) = &row.skipped {
            let _ = writeln!(out, "{:<20} skipped: {why}", row.name);
            continue;
        }
        for p in &row.phases {
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:>9.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8} {:>8} {:>7} {:>8}",
                row.name,
                p.name,
                p.rps,
                p.p50_us,
                p.p90_us,
                p.p99_us,
                p.p999_us,
                opt(p.added_p50_us),
                opt(p.added_p99_us),
                p.errors,
                opt(p.cpu_us_per_req)
            );
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0}"))
}

/// Every numeric figure of a report by path, e.g. `rows.plain.closed-32.rps`.
pub fn flatten(report: &Report) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(report) {
        walk(&v, String::new(), &mut out);
    }
    out
}

fn walk(v: &serde_json::Value, path: String, out: &mut Vec<(String, f64)>) {
    use serde_json::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.push((path, f));
            }
        }
        Value::Object(map) => {
            for (k, child) in map {
                // Settings are inputs, not results.
                if path.is_empty() && k == "settings" {
                    continue;
                }
                walk(child, join(k), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let key = item
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_string);
                walk(item, join(&key), out);
            }
        }
        _ => {}
    }
}

/// The change of each figure from `old` to `new`.
pub fn compare(old: &Report, new: &Report) -> String {
    let old: std::collections::HashMap<String, f64> = flatten(old).into_iter().collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<48} {:>12} {:>12} {:>9}",
        "figure", "saved", "now", "change"
    );
    for (path, now) in flatten(new) {
        let Some(&was) = old.get(&path) else {
            let _ = writeln!(out, "{path:<48} {:>12} {now:>12.1} {:>9}", "-", "new");
            continue;
        };
        let change = if was == 0.0 {
            if now == 0.0 {
                "0%".to_string()
            } else {
                "n/a".to_string()
            }
        } else {
            format!("{:+.1}%", (now - was) / was.abs() * 100.0)
        };
        let _ = writeln!(out, "{path:<48} {was:>12.1} {now:>12.1} {change:>9}");
    }
    out
}
