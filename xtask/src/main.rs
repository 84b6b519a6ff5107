//! Project tasks: `cargo xtask bench [--quick] [--pgo] [--json FILE] [--compare FILE] ...`,
//! `cargo xtask pgo [--fixtures-only]`, `cargo xtask schemas [--check]`,
//! `cargo xtask fixtures [--check]`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Parser, Subcommand};
use xtask::bench::{self, procs::GatewayProcess, report::Report, GatewayHandle, Launcher, Options};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Switchyard project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Measure the gateway against a direct connection and one nginx hop (see BENCHMARKS.md).
    Bench(Box<BenchArgs>),
    /// Build the gateway with profile-guided optimisation: an instrumented build, trained on
    /// the bench workload and the fixture requests through the mock providers, then rebuilt
    /// with the profile (needs llvm-profdata; writes target/pgo/switchyard).
    Pgo {
        /// Train on the fixture requests only, never the benchmark's request, and write
        /// target/pgo/switchyard-fixtures-only: shows whether the profile is fitted to the
        /// benchmark.
        #[arg(long)]
        fixtures_only: bool,
    },
    /// Regenerate `schemas/` from the code (`--check`: fail if they drift instead).
    Schemas {
        #[arg(long)]
        check: bool,
    },
    /// Regenerate the canonical snapshots beside `fixtures/` (`--check`: fail on drift).
    Fixtures {
        #[arg(long)]
        check: bool,
    },
}

/// The provider crates whose tests own `fixtures/<provider>/`.
const FIXTURE_CRATES: &[&str] = &[
    "switchyard-openai",
    "switchyard-anthropic",
    "switchyard-gemini",
    "switchyard-mistral",
    "switchyard-deepseek",
    "switchyard-qwen",
];

/// Runs `cargo test` with `env` for the given packages (and test filter args).
fn cargo_test(packages: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Result<ExitCode, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("test");
    for p in packages {
        cmd.args(["-p", p]);
    }
    cmd.args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(clap::Args)]
struct BenchArgs {
    /// About a minute: 1 s phases, a shorter long run.
    #[arg(long)]
    quick: bool,
    /// Write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Print the change of every figure against a saved JSON report.
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Seconds per phase (default 10, or 1 with --quick).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Open-loop rates in requests per second.
    #[arg(long, value_delimiter = ',', value_name = "R,R,...")]
    rates: Option<Vec<u32>>,
    /// Content chunks per streamed answer.
    #[arg(long, value_name = "N")]
    chunks: Option<usize>,
    /// Requests in the long memory run.
    #[arg(long, value_name = "N")]
    long_run: Option<u64>,
    /// Closed-loop connection counts (default 1,32).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    connections: Option<Vec<usize>>,
    /// Streamed requests per row for the time-to-first-byte figures; 0 leaves them out.
    #[arg(long, value_name = "N")]
    streams: Option<u64>,
    /// Use this gateway binary instead of building it (`cargo build --release`).
    #[arg(long, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
    /// Measure the profile-guided build (`cargo xtask pgo`, run first) as the gateway, with
    /// the plain release build beside it as the `baseline` row unless `--baseline-bin` names
    /// another.
    #[arg(long, conflicts_with = "gateway_bin")]
    pgo: bool,
    /// Leave out the nginx row even if nginx is installed.
    #[arg(long)]
    no_nginx: bool,
    /// Open-loop rates of the phase that drives direct, nginx and the plain route in turn
    /// (default 1000; 0: only its closed-loop part).
    #[arg(long, value_delimiter = ',', value_name = "R,R,...")]
    interleaved_rates: Option<Vec<u32>>,
    /// Leave out the in-turn phase.
    #[arg(long)]
    no_interleaved: bool,
    /// A second gateway binary (an earlier build, say), run beside the first with the same
    /// config and driven in the in-turn phase as the `baseline` row: an A/B of two builds
    /// measured at the same moments, which separate runs on a noisy machine are not.
    #[arg(long, value_name = "PATH")]
    baseline_bin: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Bench(args) => run_bench(*args),
        Task::Pgo { fixtures_only } => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let training = if fixtures_only {
                xtask::pgo::Training::FixturesOnly
            } else {
                xtask::pgo::Training::Full
            };
            xtask::pgo::run(&root, training).map(|bin| {
                println!("{}", bin.display());
                ExitCode::SUCCESS
            })
        }
        // The generators live in the tests that check them, so generation and the drift check
        // can never disagree.
        Task::Schemas { check } => cargo_test(
            &["switchyard-gateway"],
            &["--test", "schemas"],
            if check {
                &[]
            } else {
                &[("UPDATE_SCHEMAS", "1")]
            },
        ),
        Task::Fixtures { check } => cargo_test(
            FIXTURE_CRATES,
            &[],
            if check {
                &[("CI", "true")]
            } else {
                &[("INSTA_UPDATE", "always"), ("INSTA_FORCE_PASS", "1")]
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(args: BenchArgs) -> Result<ExitCode, String> {
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    if let Some(d) = args.duration {
        opts.duration = Duration::try_from_secs_f64(d).map_err(|e| format!("--duration: {e}"))?;
    }
    if let Some(r) = args.rates {
        // `--rates 0` runs no open-loop phase (e.g. to profile one closed-loop phase).
        opts.rates = r.into_iter().filter(|&r| r > 0).collect();
    }
    if let Some(c) = args.connections {
        opts.connections = c.into_iter().filter(|&c| c > 0).collect();
    }
    if let Some(n) = args.streams {
        opts.streams = n;
    }
    if let Some(c) = args.chunks {
        opts.stream_chunks = c;
    }
    if let Some(n) = args.long_run {
        opts.long_run_requests = n;
    }
    opts.nginx = !args.no_nginx;
    if let Some(r) = args.interleaved_rates {
        opts.interleaved_rates = r.into_iter().filter(|&r| r > 0).collect();
    }
    opts.interleaved = !args.no_interleaved;
    let saved = match &args.compare {
        Some(path) => Some(read_report(path)?),
        None => None,
    };
    let (binary, baseline_bin) = if args.pgo {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let pgo = xtask::pgo::run(&root, xtask::pgo::Training::Full)?;
        let baseline = match args.baseline_bin {
            Some(b) => b,
            None => build_gateway()?,
        };
        (pgo, Some(baseline))
    } else {
        let binary = match args.gateway_bin {
            Some(b) => b,
            None => build_gateway()?,
        };
        (binary, args.baseline_bin)
    };
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!(
        "bench: gateway {}, logs and configs in {}",
        binary.display(),
        dir.display()
    );
    let launch = launcher(&binary, &dir, "gateway");
    let baseline = baseline_bin
        .as_deref()
        .map(|bin| launcher(bin, &dir, "baseline"));
    let report = bench::run(
        &opts,
        &dir,
        &launch,
        baseline.as_ref().map(|l| l as Launcher<'_>),
    )?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench: figures written to {}", path.display());
    }
    if let Some(saved) = &saved {
        println!(
            "\nchange against {}",
            args.compare.as_deref().unwrap_or(Path::new("")).display()
        );
        print!("{}", bench::report::compare(saved, &report));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if report.total_errors() == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "bench: {} requests failed (see the notes above)",
            report.total_errors()
        );
        ExitCode::FAILURE
    })
}

/// Starts `binary` as a child process for each config it is given; its files are named after
/// `label` in `dir`.
fn launcher<'a>(
    binary: &'a Path,
    dir: &'a Path,
    label: &'a str,
) -> impl Fn(&str) -> Result<Box<dyn GatewayHandle>, String> + 'a {
    move |config| Ok(Box::new(GatewayProcess::start(binary, dir, label, config)?))
}

fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a bench report: {e}", path.display()))
}

/// Builds the gateway in release mode and returns the `switchyard` binary cargo reports.
fn build_gateway() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!("bench: cargo build --release -p switchyard-gateway");
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(xtask::BUILD_GATEWAY)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("building the gateway failed".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "switchyard")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no switchyard binary".to_string())
}
