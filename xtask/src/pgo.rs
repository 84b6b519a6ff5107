//! `cargo xtask pgo`: a profile-guided release build of the gateway.
//!
//! 1. Builds the gateway instrumented (`-Cprofile-generate`), for the host triple named
//!    explicitly so that `RUSTFLAGS` reach only the target's code, not build scripts and
//!    proc macros (which would otherwise write profiles of their own while compiling).
//! 2. Trains it: the benchmark's quick run (plain, failover, open loop, streams, the long
//!    run) against the OpenAI-format bench upstream, then plain and streamed requests
//!    through the Anthropic and Gemini translations against the built-in mock providers,
//!    so that no provider's path is left cold. Every process is stopped with SIGTERM, which
//!    lets the profile runtime write its counts at exit.
//! 3. Merges the raw profiles with `llvm-profdata`.
//! 4. Builds again with `-Cprofile-use`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{self, load, procs::GatewayProcess, GatewayHandle, Options};

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
    found.sort_by(|a, b| b.0.cmp(&a.0));
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
        .args([
            "build",
            "--release",
            "-p",
            "switchyard-gateway",
            "--bin",
            "switchyard",
            "--target",
            triple,
        ])
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
        let addr = bench::procs::free_addr()?;
        let log = std::fs::File::create(dir.join(format!("mock-{provider}.log")))
            .map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args(["mock", "--provider", provider, "--name", provider])
            .args(["--port", &addr.port().to_string(), "--no-log-bodies"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the {provider} mock: {e}"))?;
        let started = Instant::now();
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("the {provider} mock did not listen on {addr}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Mock { child, addr })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain and streamed requests through the Anthropic and Gemini translations.
fn train_translations(binary: &Path, dir: &Path) -> Result<(), String> {
    let anthropic = Mock::start(binary, "anthropic", dir)?;
    let gemini = Mock::start(binary, "gemini", dir)?;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[models.anthropic]
targets = [{{ name = "anthropic", provider = "anthropic", base_url = "http://{}", api_key = "sk-train", model = "claude-train" }}]

[models.gemini]
targets = [{{ name = "gemini", provider = "gemini", base_url = "http://{}", api_key = "train", model = "gemini-train" }}]
"#,
        anthropic.addr, gemini.addr
    );
    let gateway = GatewayProcess::start(binary, dir, "pgo-translations", &config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the training runtime: {e}"))?;
    runtime.block_on(async {
        for model in ["anthropic", "gemini"] {
            let target = load::Target::new(gateway.addr(), "/v1/chat/completions", model);
            let plain = load::closed_count(&target, 4, 5_000).await;
            let streams = load::streams(&target, 300).await;
            let errors = plain.errors + streams.errors;
            if errors > 0 {
                let first = plain
                    .first_error
                    .or(streams.first_error)
                    .unwrap_or_default();
                return Err(format!(
                    "training through {model}: {errors} requests failed, first: {first}"
                ));
            }
            eprintln!(
                "pgo: {model}: {} plain requests, {} streams",
                plain.requests, streams.streams
            );
        }
        Ok(())
    })
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

/// Runs the whole pipeline; returns the profile-guided binary (`target/pgo/switchyard`).
pub fn run(root: &Path) -> Result<PathBuf, String> {
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
    train_translations(&instrumented, &dir)?;

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
    let out = pgo.join("switchyard");
    std::fs::copy(&optimized, &out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
