//! The other processes a run drives: the release-built gateway and nginx, each started as a
//! child on a free loopback port with a generated config, and stopped when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::GatewayHandle;

/// A free loopback port (there is a small race until the child binds it; fine on a bench box).
pub fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Waits until `addr` accepts connections, or the child exits, or 30 s pass.
pub(crate) fn wait_listening(
    child: &mut Child,
    addr: SocketAddr,
    log: &Path,
    what: &str,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "{what} exited ({status}) before listening:\n{tail}"
            ));
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("{what} did not listen on {addr} within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `path` created, as a child's standard output and standard error.
pub(crate) fn log_file(path: &Path) -> Result<(Stdio, Stdio), String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let g = f.try_clone().map_err(|e| e.to_string())?;
    Ok((Stdio::from(f), Stdio::from(g)))
}

/// `switchyard serve` as a child process.
pub struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
}

impl GatewayProcess {
    /// Starts `binary` on a free port; its config and log are `<label>.toml` and
    /// `<label>.log` in `dir`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        label: &str,
        config: &str,
    ) -> Result<GatewayProcess, String> {
        let config_path = dir.join(format!("{label}.toml"));
        std::fs::write(&config_path, config)
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let addr = free_addr()?;
        let log = dir.join(format!("{label}.log"));
        let (out, err) = log_file(&log)?;
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if let Err(e) = wait_listening(&mut child, addr, &log, "the gateway") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(GatewayProcess { child, addr })
    }
}

impl GatewayHandle for GatewayProcess {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn pids(&self) -> Option<Vec<u32>> {
        Some(vec![self.child.id()])
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        stop_gracefully(&mut self.child);
    }
}

/// A graceful stop (SIGTERM), as a service manager would: the process exits normally, so
/// what it writes at exit is written (an instrumented build's profile, for `xtask pgo`).
/// Killed if it has not exited after 10 s.
pub(crate) fn stop_gracefully(child: &mut Child) {
    let asked = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    let started = Instant::now();
    while asked && started.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// nginx (master + workers) proxying to the upstream.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
}

impl Nginx {
    /// `None` when there is no `nginx` on PATH (or in /usr/sbin, where Debian puts it).
    pub fn find() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("nginx"))
            .find(|p| p.is_file())
    }

    pub fn start(binary: &Path, dir: &Path, upstream: SocketAddr) -> Result<Nginx, String> {
        let addr = free_addr()?;
        let tmp = dir.join("nginx-tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let d = dir.display();
        let t = tmp.display();
        let config = format!(
            r#"daemon off;
master_process on;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {t}/body;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  upstream bench_upstream {{
    server {upstream};
    keepalive 256;
    keepalive_requests 10000000;
  }}
  server {{
    listen {addr};
    keepalive_requests 10000000;
    location / {{
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"#
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let log = dir.join("nginx.log");
        let (out, err) = log_file(&log)?;
        let mut child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if let Err(e) = wait_listening(&mut child, addr, &log, "nginx") {
            stop_nginx(&mut child);
            return Err(e);
        }
        Ok(Nginx { child, addr })
    }

    /// Master and workers.
    pub fn pids(&self) -> Vec<u32> {
        super::proc::with_children(self.child.id())
    }
}

/// SIGQUIT to our own nginx master (by its pid) makes it stop its workers too; a plain kill
/// would leave them running.
fn stop_nginx(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-QUIT")
        .arg(child.id().to_string())
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop_nginx(&mut self.child);
    }
}
