//! `switchyard`: run the gateway, the demo, or a mock provider.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An LLM gateway that keeps answering when a provider fails"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to standard output: `text` (coloured only at a terminal)
    /// or `json` (one JSON object per line, event fields at the top level, for a log
    /// collector).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to standard output at `RUST_LOG` (default `info`). The request path writes nothing
/// at `info` for an answered request; its spans are `debug` (see `ops::trace`), so with the
/// default filter they are disabled at their call sites and nothing is formatted per request.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            // A line per closed span, with its fields, only when spans are enabled
            // (`RUST_LOG=switchyard_gateway=debug`); none at the default level.
            .with_span_events(FmtSpan::CLOSE)
            // Colour only for a person at a terminal: a log file, journald or `docker logs`
            // would get the escape codes as text (and writing them cost 4.3k of the 53k
            // instructions of a failover answer, whose failed attempt is logged).
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry().with(layer).init();
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a config file.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Overrides server.listen.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate a config file and exit.
    CheckConfig {
        config: PathBuf,
        /// Also print each route's effective reaction to every error class (README's table,
        /// with the config's overrides applied).
        #[arg(long)]
        explain: bool,
    },
    /// Make a new client API key: prints the key (once: it is stored nowhere) and the
    /// `[[keys]]` entry with its hash to paste into the config.
    HashKey {
        /// The entry's `name` (who holds the key; shown in logs, errors and usage).
        #[arg(long, default_value = "new-key")]
        name: String,
    },
    /// Serve on the embedded default config with built-in mock providers (no keys needed).
    #[cfg(feature = "sim")]
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Run one mock provider.
    #[cfg(feature = "sim")]
    Mock {
        /// openai, anthropic or gemini.
        #[arg(long)]
        provider: String,
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value = "mock")]
        name: String,
        /// Answer with this text instead of a greeting.
        #[arg(long)]
        reply: Option<String>,
        /// Text pieces per streamed answer (0: one per word).
        #[arg(long, default_value_t = 0)]
        chunks: usize,
        #[arg(long, default_value_t = 0)]
        chunk_delay_ms: u64,
        /// Do not keep request bodies in the request log (for load tests).
        #[arg(long)]
        no_log_bodies: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, the signal service managers and container
/// runtimes stop a process with: either starts a graceful stop, in which requests already
/// being answered are finished. Without a SIGTERM handler the process would die at once and
/// cut them off.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch for SIGTERM ({e}); only Ctrl-C stops gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn load(path: &PathBuf) -> Result<switchyard_gateway::Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    switchyard_gateway::config::parse(&text, &path.display().to_string(), &|v| {
        std::env::var(v).ok()
    })
    .map_err(|e| e.to_string())
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve { config, listen } => {
            let mut config = load(&config)?;
            if let Some(l) = listen {
                config.server.listen = l;
            }
            let running = switchyard_gateway::start(&config, shutdown_signal()).await?;
            tracing::info!("switchyard listening on {}", running.url());
            wait(running).await
        }
        Command::CheckConfig { config, explain } => {
            let c = load(&config)?;
            // Builds the routes too: a URL or key no request could be made with is found now.
            let routes = switchyard_gateway::route::build(&c)?;
            println!(
                "{}: ok ({} model aliases)",
                config.display(),
                c.models.len()
            );
            if explain {
                let mut aliases: Vec<&String> = routes.routes.keys().collect();
                aliases.sort();
                for alias in aliases {
                    let route = &routes.routes[alias];
                    println!(
                        "\n## models.{alias} (strategy {})\n\n{}",
                        route.router.strategy().name(),
                        route.policy.markdown()
                    );
                }
            }
            Ok(())
        }
        Command::HashKey { name } => {
            let (key, hash) = switchyard_gateway::keys::generate()?;
            let name = toml::Value::String(name);
            println!(
                "# The key, for the client (Authorization: Bearer <key>). It is not stored anywhere\n\
                 # and cannot be shown again:\n\
                 {key}\n\
                 \n\
                 # The entry for the gateway's config (only the hash; add routes and limits):\n\
                 [[keys]]\n\
                 name = {name}\n\
                 hash = \"{hash}\""
            );
            Ok(())
        }
        #[cfg(feature = "sim")]
        Command::Demo { listen } => {
            let demo = switchyard_gateway::demo::start(&listen).await?;
            for m in &demo.mocks {
                tracing::info!("mock provider on {}", m.url());
            }
            let running = switchyard_gateway::start(&demo.config, shutdown_signal()).await?;
            println!(
                "{}",
                switchyard_gateway::demo::instructions(&running.url(), &demo.mocks[0].url())
            );
            wait(running).await
        }
        #[cfg(feature = "sim")]
        Command::Mock {
            provider,
            port,
            name,
            reply,
            chunks,
            chunk_delay_ms,
            no_log_bodies,
        } => {
            use switchyard_sim::{MockConfig, MockProvider};
            let wire = provider.parse()?;
            let mut c = MockConfig::new(wire, name);
            c.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            c.reply = reply;
            c.stream_chunks = chunks;
            c.chunk_delay = std::time::Duration::from_millis(chunk_delay_ms);
            c.log_bodies = !no_log_bodies;
            let mock = MockProvider::start(c)
                .await
                .map_err(|e| format!("cannot start mock: {e}"))?;
            println!("mock {provider} provider on {}", mock.url());
            shutdown_signal().await;
            Ok(())
        }
    }
}

async fn wait(running: switchyard_gateway::Running) -> Result<(), String> {
    match running.task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("server error: {e}")),
        Err(e) => Err(format!("server task failed: {e}")),
    }
}
