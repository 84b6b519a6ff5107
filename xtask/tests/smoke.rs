//! The benchmark machinery end to end, tiny and short, with the gateway in-process. Checks
//! that every row and figure is produced without errors; never asserts a timing.

use std::net::SocketAddr;

use xtask::bench::{self, GatewayHandle, Options};

struct InProcess {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GatewayHandle for InProcess {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn pids(&self) -> Option<Vec<u32>> {
        None
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_in_process(text: &str) -> Result<Box<dyn GatewayHandle>, String> {
    let config = switchyard_gateway::config::parse(text, "bench.toml", &|_| None)
        .map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, addr) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            match switchyard_gateway::start(&config, async {
                let _ = stopped.await;
            })
            .await
            {
                Ok(running) => {
                    let _ = ready.send(Ok(running.addr));
                    let _ = running.task.await;
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        });
    });
    let addr = addr.recv().map_err(|e| e.to_string())??;
    Ok(Box::new(InProcess {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    }))
}

#[test]
fn a_tiny_run_produces_every_row_without_errors() {
    let dir = std::env::temp_dir().join(format!("switchyard-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = Options::smoke();
    // A second in-process gateway stands in for `--baseline-bin`'s earlier build.
    let report = bench::run(&opts, &dir, &start_in_process, Some(&start_in_process))
        .expect("the bench runs");
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", report.table());

    assert_eq!(report.total_errors(), 0, "notes: {:#?}", report.notes);
    if cfg!(target_os = "linux") {
        // The noise gauge: how much CPU the host's other guests took while we measured.
        assert!(report
            .host
            .steal_percent_rows
            .is_some_and(|p| (0.0..=100.0).contains(&p)));
        assert!(report
            .host
            .steal_percent_in_turn
            .is_some_and(|p| (0.0..=100.0).contains(&p)));
    }
    let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["direct", "nginx", "switchyard plain", "switchyard failover"]
    );
    for row in &report.rows {
        if row.skipped.is_some() {
            assert_eq!(row.name, "nginx", "only nginx may be skipped");
            assert!(
                report.notes.iter().any(|n| n.contains("nginx row skipped")),
                "{:?}",
                report.notes
            );
            continue;
        }
        let phases: Vec<&str> = row.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(phases, ["closed-1", "closed-4", "open-50"], "{}", row.name);
        for p in &row.phases {
            assert!(p.requests > 0, "{} {} sent nothing", row.name, p.name);
            assert!(
                p.p50_us > 0.0 && p.p50_us <= p.p99_us,
                "{} {}: {p:?}",
                row.name,
                p.name
            );
            assert_eq!(
                p.added_p50_us.is_some(),
                row.name != "direct",
                "{} {}",
                row.name,
                p.name
            );
        }
        let s = row.stream.as_ref().expect("stream figures");
        assert_eq!(s.streams, opts.streams, "{}", row.name);
        assert!(
            s.ttfb_p50_us > 0.0 && s.ttfb_p50_us <= s.ttlb_p50_us,
            "{}: {s:?}",
            row.name
        );
    }
    // The in-turn phase: the same rows but failover, and the baseline, each with both
    // phases, requests in both (the closed-1 part alternates, so no row can starve the
    // others).
    let names: Vec<&str> = report.interleaved.iter().map(|r| r.name.as_str()).collect();
    let with_nginx = report.rows[1].skipped.is_none();
    let expected: &[&str] = if with_nginx {
        &["direct", "nginx", "switchyard plain", "switchyard baseline"]
    } else {
        &["direct", "switchyard plain", "switchyard baseline"]
    };
    assert_eq!(names, expected);
    let closed: Vec<u64> = report
        .interleaved
        .iter()
        .map(|r| r.phases[0].requests)
        .collect();
    for row in &report.interleaved {
        let phases: Vec<&str> = row.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(phases, ["closed-1", "open-50"], "{}", row.name);
        for p in &row.phases {
            assert!(
                p.requests > 0,
                "in turn: {} {} sent nothing",
                row.name,
                p.name
            );
            assert_eq!(p.added_p50_us.is_some(), row.name != "direct");
        }
        assert!(
            closed
                .iter()
                .all(|&c| c.abs_diff(row.phases[0].requests) <= 1),
            "in turn, closed-1 counts differ by more than one round: {closed:?}"
        );
    }
    let g = &report.gateway;
    assert_eq!(g.long_run_requests, opts.long_run_requests);
    assert_eq!(g.concurrent_streams, opts.concurrent_streams);

    // The JSON round-trips and compares against itself with no change.
    let json = serde_json::to_string(&report).unwrap();
    let back: bench::report::Report = serde_json::from_str(&json).unwrap();
    let diff = bench::report::compare(&back, &report);
    assert!(
        diff.contains("rows.switchyard plain.phases.closed-1.p50_us"),
        "{diff}"
    );
    assert!(!diff.lines().skip(1).any(|l| l.contains("new")), "{diff}");
}
