//! `cargo xtask pgo`: a profile-guided release build of the gateway.
//!
//! 1. Builds the gateway instrumented (`-Cprofile-generate`), for the host triple named
//!    explicitly so that `RUSTFLAGS` reach only the target's code, not build scripts and
//!    proc macros (which would otherwise write profiles of their own while compiling).
//! 2. Trains it: the benchmark's quick run (plain, failover, open loop, streams, the long
//!    run) against the OpenAI-format bench upstream, then the benchmark's request and every
//!    fixture request (`fixtures/openai/*/request.json`: tools, images, several turns,
//!    structured output) plain and streamed through the OpenAI, Anthropic and Gemini
//!    translations against the binary's own mock providers, so that no provider's path is
//!    left cold. Every process is stopped with SIGTERM, which lets the profile runtime write
//!    its counts at exit. `--fixtures-only` trains on the fixture requests alone, to check
//!    that the profile helps requests it was not trained on (the benchmark's).
//! 3. Merges the raw profiles with `llvm-profdata`.
//! 4. Builds again with `-Cprofile-use`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::bench::{self, load, procs, procs::GatewayProcess, GatewayHandle, Options};

/// Where `llvm-profdata` may be, in the order tried: `$LLVM_PROFDATA`, `PATH`, rustup's
/// `llvm-tools` component for the active toolchain, then Debian's versioned LLVM packages,
/// newest first. Each is tried in turn, because an older LLVM on `PATH` (Debian's default
/// `llvm-profdata` is LLVM 14) cannot read the raw profiles of a newer rustc's LLVM.
pub fn llvm_profdata_candidates(sysroot: Option<&Path>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(p) = std::env::var_os("LLVM_PROFDATA") {
        found.push(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("llvm-profdata");
            if candidate.is_file() {
                found.push(candidate);
            }
        }
    }
    if let Some(root) = sysroot {
        if let Ok(entries) = std::fs::read_dir(root.join("lib/rustlib")) {
            for entry in entries.flatten() {
                let candidate = entry.path().join("bin/llvm-profdata");
                if candidate.is_file() {
                    found.push(candidate);
                }
            }
        }
    }
    found.extend(versioned_newest_first(Path::new("/usr/lib")));
    found
}

/// Every `<dir>/llvm-<N>/bin/llvm-profdata`, the largest N first.
fn versioned_newest_first(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let version = name.to_str()?.strip_prefix("llvm-")?.parse::<u32>().ok()?;
            let bin = e.path().join("bin/llvm-profdata");
            bin.is_file().then_some((version, bin))
        })
        .collect();
    found.sort_by_key(|b| std::cmp::Reverse(b.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// What `rustc -vV` says: the host triple and the sysroot.
fn host_and_sysroot() -> Result<(String, Option<PathBuf>), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let host = text
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .ok_or("rustc -vV named no host triple")?
        .to_string();
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    Ok((host, sysroot))
}

/// `cargo build --release` of the gateway binary for `triple` into `target_dir`, with
/// `flag` added to the `RUSTFLAGS` the user already has.
fn build(root: &Path, target_dir: &Path, triple: &str, flag: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !flags.is_empty() {
        flags.push(' ');
    }
    flags.push_str(flag);
    eprintln!("pgo: cargo build --release ({flag})");
    let status = Command::new(cargo)
        .current_dir(root)
        .env("RUSTFLAGS", flags)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(crate::BUILD_GATEWAY)
        .args(["--target", triple])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("the build with {flag} failed"));
    }
    Ok(target_dir.join(triple).join("release").join("switchyard"))
}

/// A mock provider from the instrumented binary itself (`switchyard mock`), so its run
/// adds to the profile too; stopped with SIGTERM when dropped.
struct Mock {
    child: Child,
    addr: SocketAddr,
}

impl Mock {
    fn start(binary: &Path, provider: &str, dir: &Path) -> Result<Mock, String> {
        let addr = procs::free_addr()?;
        let log = dir.join(format!("mock-{provider}.log"));
        let (out, err) = procs::log_file(&log)?;
        let mut child = Command::new(binary)
            .args(["mock", "--provider", provider, "--name", provider])
            .args(["--port", &addr.port().to_string(), "--no-log-bodies"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start the {provider} mock: {e}"))?;
        if let Err(e) =
            procs::wait_listening(&mut child, addr, &log, &format!("the {provider} mock"))
        {
            procs::stop_gracefully(&mut child);
            return Err(e);
        }
        Ok(Mock { child, addr })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        procs::stop_gracefully(&mut self.child);
    }
}

/// What the training sends besides the benchmark's own run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Training {
    /// The benchmark's quick run, then every fixture request through each mock provider.
    Full,
    /// The fixture requests through the mock providers only: never the benchmark's request
    /// or its upstream, so that measuring the result with `cargo xtask bench` shows whether
    /// the profile helps requests it was not trained on.
    FixturesOnly,
}

/// The OpenAI-format requests in `fixtures/openai/*/request.json` (tools, images, several
/// turns, structured output, ...), with the directory each came from.
fn fixture_requests(root: &Path) -> Result<Vec<(String, serde_json::Value)>, String> {
    let dir = root.join("fixtures").join("openai");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let case = entry.map_err(|e| e.to_string())?.path();
        let file = case.join("request.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let body: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        found.push((name, body));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if found.is_empty() {
        return Err(format!("no fixture requests under {}", dir.display()));
    }
    Ok(found)
}

/// The providers trained through the built-in mocks: every translation the binary ships
/// that has a mock, so no provider's path is left cold.
const MOCKED: [&str; 3] = ["openai", "anthropic", "gemini"];

/// Plain and streamed requests through each mocked provider: the benchmark's small request
/// (unless `training` leaves it out), then each fixture request.
fn train_providers(
    binary: &Path,
    root: &Path,
    dir: &Path,
    training: Training,
) -> Result<(), String> {
    let mocks = MOCKED
        .iter()
        .map(|p| Mock::start(binary, p, dir))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for (provider, mock) in MOCKED.iter().zip(&mocks) {
        // The OpenAI adapter's base URL includes the version; the others add their own.
        let base = match *provider {
            "openai" => format!("http://{}/v1", mock.addr),
            _ => format!("http://{}", mock.addr),
        };
        config.push_str(&format!(
            "\n[models.{provider}]\ntargets = [{{ name = \"{provider}\", provider = \"{provider}\", \
             base_url = \"{base}\", api_key = \"train\", model = \"{provider}-train\" }}]\n"
        ));
    }
    let fixtures = fixture_requests(root)?;
    let gateway = GatewayProcess::start(binary, dir, "pgo-providers", &config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the training runtime: {e}"))?;
    runtime.block_on(async {
        for provider in MOCKED {
            if training == Training::Full {
                let target = load::Target::new(gateway.addr(), "/v1/chat/completions", provider);
                exercise(&target, provider, BENCH, 5_000, 300).await?;
            }
            for (name, body) in &fixtures {
                let target =
                    load::Target::with_body(gateway.addr(), "/v1/chat/completions", provider, body);
                exercise(&target, provider, name, 500, 50).await?;
            }
        }
        Ok(())
    })
}

const BENCH: &str = "bench request";

/// `plain` requests at 4 connections, then `streams` streams; any failure fails the
/// training (but for a fixture its provider refuses every time), since a request that fails
/// trains the error path instead of the one it names.
async fn exercise(
    target: &std::sync::Arc<load::Target>,
    provider: &str,
    name: &str,
    plain: u64,
    streams: u64,
) -> Result<(), String> {
    let answered = load::closed_count(target, 4, plain).await;
    let streamed = load::streams(target, streams).await;
    let errors = answered.errors + streamed.errors;
    let first = answered.first_error.or(streamed.first_error);
    // A fixture a provider cannot take (Anthropic has no `n`, say) is turned away with a 400
    // every time: that refusal is a real path too, trained as such.
    let refused = first
        .as_deref()
        .is_some_and(|e| e.starts_with("status 400"));
    if refused && errors == answered.requests + streamed.streams && name != BENCH {
        eprintln!("pgo: {provider}: {name}: refused with 400, as it should be");
        return Ok(());
    }
    if errors > 0 {
        return Err(format!(
            "training {name} through {provider}: {errors} requests failed, first: {}",
            first.unwrap_or_default()
        ));
    }
    eprintln!(
        "pgo: {provider}: {name}: {} plain requests, {} streams",
        answered.requests, streamed.streams
    );
    Ok(())
}

const NO_PROFDATA: &str = "no llvm-profdata found: set LLVM_PROFDATA, or install one as new \
     as rustc's LLVM (rustc -vV names it; Debian: apt-get install llvm-19; rustup: rustup \
     component add llvm-tools)";

/// Merges `raws` into `out` with the first of `tools` that can read them.
fn merge(tools: &[PathBuf], raws: &[PathBuf], out: &Path) -> Result<(), String> {
    for tool in tools {
        let merged = Command::new(tool)
            .arg("merge")
            .arg("-o")
            .arg(out)
            .args(raws)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if merged {
            eprintln!(
                "pgo: {} raw profiles merged by {}",
                raws.len(),
                tool.display()
            );
            return Ok(());
        }
        eprintln!("pgo: {} cannot read these profiles", tool.display());
    }
    Err(NO_PROFDATA.into())
}

/// Runs the whole pipeline; returns the profile-guided binary (`target/pgo/switchyard`, or
/// `target/pgo/switchyard-fixtures-only`).
pub fn run(root: &Path, training: Training) -> Result<PathBuf, String> {
    let (triple, sysroot) = host_and_sysroot()?;
    let tools = llvm_profdata_candidates(sysroot.as_deref());
    if tools.is_empty() {
        return Err(NO_PROFDATA.into());
    }
    let pgo = root.join("target").join("pgo");
    let raw = pgo.join("raw");
    let _ = std::fs::remove_dir_all(&raw);
    std::fs::create_dir_all(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    let instrumented = build(
        root,
        &pgo.join("instrumented"),
        &triple,
        &format!("-Cprofile-generate={}", raw.display()),
    )?;

    eprintln!("pgo: training {}", instrumented.display());
    let dir = pgo.join("training");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let launch = |config: &str| -> Result<Box<dyn GatewayHandle>, String> {
        Ok(Box::new(GatewayProcess::start(
            &instrumented,
            &dir,
            "pgo",
            config,
        )?))
    };
    if training == Training::Full {
        let opts = Options {
            nginx: false,
            interleaved: false,
            ..Options::quick()
        };
        let report = bench::run(&opts, &dir, &launch, None)?;
        if report.total_errors() > 0 {
            return Err(format!(
                "the training run had {} failed requests (logs in {})",
                report.total_errors(),
                dir.display()
            ));
        }
    }
    train_providers(&instrumented, root, &dir, training)?;

    let raws: Vec<PathBuf> = std::fs::read_dir(&raw)
        .map_err(|e| format!("{}: {e}", raw.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .collect();
    if raws.is_empty() {
        return Err(format!(
            "training wrote no profile into {} (did the gateway exit on SIGTERM?)",
            raw.display()
        ));
    }
    let merged = pgo.join("switchyard.profdata");
    merge(&tools, &raws, &merged)?;

    let optimized = build(
        root,
        &pgo.join("optimized"),
        &triple,
        &format!("-Cprofile-use={}", merged.display()),
    )?;
    let out = pgo.join(match training {
        Training::Full => "switchyard",
        Training::FixturesOnly => "switchyard-fixtures-only",
    });
    std::fs::copy(&optimized, &out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_openai_fixture_request_is_in_the_training() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = fixture_requests(&root).expect("the fixtures load");
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        for case in ["plain", "tools", "images", "multi_turn", "json_schema"] {
            assert!(names.contains(&case), "{case} missing from {names:?}");
        }
        // Error cases have no request and are not training.
        assert!(!names.iter().any(|n| n.starts_with("error_")), "{names:?}");
        assert!(found.iter().all(|(_, b)| b["messages"].is_array()));
    }

    #[test]
    fn debian_llvms_are_tried_newest_first() {
        let dir = std::env::temp_dir().join(format!("xtask-pgo-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (version, with_tool) in [("14", true), ("19", true), ("21", false), ("9", true)] {
            let bin = dir.join(format!("llvm-{version}/bin"));
            std::fs::create_dir_all(&bin).unwrap();
            if with_tool {
                std::fs::write(bin.join("llvm-profdata"), "").unwrap();
            }
        }
        std::fs::create_dir_all(dir.join("llvm-x/bin")).unwrap();
        std::fs::write(dir.join("llvm-x/bin/llvm-profdata"), "").unwrap();
        // 21 has no llvm-profdata, and "x" is no version.
        let tool = |v: &str| dir.join(format!("llvm-{v}/bin/llvm-profdata"));
        assert_eq!(
            versioned_newest_first(&dir),
            vec![tool("19"), tool("14"), tool("9")]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
