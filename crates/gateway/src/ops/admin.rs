//! The admin API: a listener of its own (`[admin] listen`), off unless configured, never on
//! the request path.
//!
//! - `GET /admin/targets`: every upstream target with its breaker (state, mode, recovery
//!   stage, an operator's override), whether it is drained, its live statistics and spend
//!   (the entry `/health` shows, [`crate::health::target_report`]), and the routes using it.
//! - `POST /admin/targets/{name}/open`, `/close`, `/release`: force the target's breaker open
//!   (every request skips it, "forced open by an operator"), closed (every request is let
//!   through and no failure counts) or back to automatic.
//! - `POST /admin/targets/{name}/drain`, `/undrain`: a drained target gets no new requests
//!   (failover skips it, "drained by an operator"); requests in flight finish.
//! - `GET /admin/config`: the effective config as JSON, every secret redacted (upstream API
//!   keys, key hashes, URL credentials and queries).
//! - `GET /admin/keys`: each client key's usage and what is left of its budget.
//! - `GET /metrics`: the same text as on the main listener.
//!
//! A target's name may hold a `/` (the default name is `provider/model`); it may be sent as is
//! or percent-encoded. Targets that are the same upstream share one breaker and one drain
//! flag, so an action on one name acts on them all.
//!
//! Every request must present the admin key (`Authorization: Bearer <key>`), checked as the
//! client keys are ([`crate::keys`]: one SHA-256, a constant-time comparison of digests).
//! Without `key_hash` the listener starts only on a loopback address, with a warning.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, watch};

use crate::body::{self, Response};
use crate::config::{AdminConfig, Config};
use crate::connection::{self, Incoming, Limits};
use crate::route::RouteTarget;
use crate::server::Gateway;

/// What the admin handlers read: the gateway, the admin key's digest, the redacted config.
pub struct Admin {
    gateway: Arc<Gateway>,
    /// `None`: open (allowed only on loopback).
    key: Option<[u8; 32]>,
    /// `GET /admin/config`, made once.
    config: Bytes,
    /// Each client key's budget in USD, by key name.
    budgets: Vec<(String, f64)>,
    read_timeout: Duration,
}

impl Admin {
    /// Checks the `[admin]` section (a key, or a loopback address) and binds its listener.
    pub fn bind(
        gateway: Arc<Gateway>,
        config: &Config,
        admin: &AdminConfig,
    ) -> Result<(Arc<Admin>, TcpListener), String> {
        let key = match &admin.key_hash {
            Some(hash) => Some(
                crate::keys::parse_hash(hash.get_ref())
                    .map_err(|e| format!("admin.key_hash: {e}"))?,
            ),
            None => None,
        };
        let addrs: Vec<SocketAddr> = admin
            .listen
            .to_socket_addrs()
            .map_err(|e| format!("admin.listen: cannot resolve {}: {e}", admin.listen))?
            .collect();
        if addrs.is_empty() {
            return Err(format!(
                "admin.listen: {} resolves to no address",
                admin.listen
            ));
        }
        if key.is_none() {
            if let Some(exposed) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(format!(
                    "admin.listen is {} ({exposed}), not a loopback address, and admin.key_hash is not set: the admin API can force breakers and drain targets, so it needs a key off loopback (`switchyard hash-key` makes one)",
                    admin.listen
                ));
            }
            tracing::warn!(
                "NO ADMIN KEY: the admin API on {} is open to every local user; set admin.key_hash (`switchyard hash-key`)",
                admin.listen
            );
        }
        let listener = crate::listen::bind(&admin.listen, 1)
            .map_err(|e| format!("admin: {e}"))?
            .pop()
            .ok_or_else(|| "admin: no listening socket".to_string())?;
        let config_json = serde_json::to_vec(config)
            .map_err(|e| format!("admin: cannot encode the config: {e}"))?;
        let budgets = config
            .keys
            .iter()
            .filter_map(|k| {
                let k = k.get_ref();
                Some((k.name.clone(), k.budget.as_ref()?.usd))
            })
            .collect();
        Ok((
            Arc::new(Admin {
                gateway,
                key,
                config: Bytes::from(config_json),
                budgets,
                read_timeout: Duration::from_millis(config.server.client_read_timeout_ms),
            }),
            listener,
        ))
    }
}

/// Accepts admin connections until `stop` turns true, then lets open ones finish their
/// request. Runs on its own thread's runtime, apart from the workers.
pub async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let limits = Limits {
        max_body: 64 << 10,
        read_timeout: admin.read_timeout,
    };
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::debug!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = tcp.set_nodelay(true);
        let admin = Arc::clone(&admin);
        let mut stop = stop.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let _open = open;
            connection::serve(tcp, limits, stopped(&mut stop), |req| {
                let admin = Arc::clone(&admin);
                async move { handle(&admin, req) }
            })
            .await;
        });
    }
    drop(open_tx);
    let _ = open_rx.recv().await;
    Ok(())
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// What a target action does.
#[derive(Clone, Copy)]
enum Action {
    Open,
    Close,
    Release,
    Drain,
    Undrain,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "open" => Action::Open,
            "close" => Action::Close,
            "release" => Action::Release,
            "drain" => Action::Drain,
            "undrain" => Action::Undrain,
            _ => return None,
        })
    }

    fn apply(self, t: &RouteTarget) {
        match self {
            Action::Open => t.breaker.force_open(),
            Action::Close => t.breaker.force_closed(),
            Action::Release => t.breaker.release(),
            Action::Drain => t.set_drained(true),
            Action::Undrain => t.set_drained(false),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Close => "close",
            Action::Release => "release",
            Action::Drain => "drain",
            Action::Undrain => "undrain",
        }
    }
}

/// One admin request.
pub fn handle(admin: &Admin, req: Incoming) -> Response {
    if let Some(expected) = &admin.key {
        let ok = crate::keys::presented(&req).is_some_and(|presented| {
            bool::from(crate::keys::digest(presented.as_bytes()).ct_eq(expected))
        });
        if !ok {
            tracing::info!(path = %req.path(), "admin request refused: missing or invalid admin key");
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                "missing or invalid admin key: send Authorization: Bearer <admin key>",
                "authentication_error",
                "invalid_api_key",
            );
            resp.append(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    let path = req.path();
    let get = |f: &dyn Fn() -> Response| match req.method {
        Method::GET | Method::HEAD => f(),
        _ => method_not_allowed(&req, "GET, HEAD"),
    };
    match path {
        "/admin/targets" => get(&|| targets(admin)),
        "/admin/config" => get(&|| body::json(StatusCode::OK, admin.config.clone())),
        "/admin/keys" => get(&|| keys(admin)),
        "/metrics" => get(&|| metrics(admin, &req)),
        _ => match path.strip_prefix("/admin/targets/") {
            Some(rest) => target_action(admin, &req, rest),
            None => not_found(&req),
        },
    }
}

/// Every target (one entry per name), sorted by name, with the routes that use it.
fn targets(admin: &Admin) -> Response {
    let now = tokio::time::Instant::now();
    let now_ms = crate::accounting::now_ms();
    let mut by_name: std::collections::BTreeMap<&str, (&RouteTarget, Vec<&str>)> =
        Default::default();
    for route in admin.gateway.routes() {
        for t in &route.targets {
            by_name
                .entry(&t.name)
                .or_insert_with(|| (t, Vec::new()))
                .1
                .push(&route.alias);
        }
    }
    let list: Vec<Value> = by_name
        .into_iter()
        .map(|(name, (t, mut routes))| {
            routes.sort_unstable();
            let mut v = crate::health::target_report(t, now, now_ms);
            if let Value::Object(m) = &mut v {
                m.insert("name".into(), json!(name));
                m.insert("routes".into(), json!(routes));
            }
            v
        })
        .collect();
    body::json(StatusCode::OK, json!({"targets": list}).to_string())
}

/// `POST /admin/targets/{name}/{action}`.
fn target_action(admin: &Admin, req: &Incoming, rest: &str) -> Response {
    let Some((name, action)) = rest.rsplit_once('/') else {
        return not_found(req);
    };
    let Some(action) = Action::parse(action) else {
        return not_found(req);
    };
    if req.method != Method::POST {
        return method_not_allowed(req, "POST");
    }
    let Some(name) = percent_decode(name) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the target name is not valid percent-encoded UTF-8",
            "invalid_request_error",
            "invalid_target_name",
        );
    };
    let matching: Vec<&Arc<RouteTarget>> = admin
        .gateway
        .routes()
        .flat_map(|r| r.targets.iter())
        .filter(|t| t.name == name)
        .collect();
    let Some(first) = matching.first() else {
        let mut known: Vec<&str> = admin
            .gateway
            .routes()
            .flat_map(|r| r.targets.iter().map(|t| t.name.as_str()))
            .collect();
        known.sort_unstable();
        known.dedup();
        return error(
            StatusCode::NOT_FOUND,
            &format!("no target named {name:?}; targets: {}", known.join(", ")),
            "invalid_request_error",
            "target_not_found",
        );
    };
    for t in &matching {
        action.apply(t);
    }
    tracing::warn!(target = %name, action = action.name(), "admin: operator action on a target");
    let report = crate::health::target_report(
        first,
        tokio::time::Instant::now(),
        crate::accounting::now_ms(),
    );
    body::json(
        StatusCode::OK,
        json!({"target": name, "action": action.name(), "state": report}).to_string(),
    )
}

/// Each client key's usage, with its budget and what is left of it.
fn keys(admin: &Admin) -> Response {
    let Some(keys) = admin.gateway.keys() else {
        return body::json(
            StatusCode::OK,
            json!({"required": false, "keys": []}).to_string(),
        );
    };
    let list: Vec<Value> = keys
        .usage()
        .into_iter()
        .map(|u| {
            let budget = admin
                .budgets
                .iter()
                .find(|(name, _)| *name == u.name)
                .map(|&(_, usd)| usd);
            let remaining = budget.map(|b| (b - u.budget_spent_usd.unwrap_or(0.0)).max(0.0));
            let mut v = json!(u);
            if let Value::Object(m) = &mut v {
                m.insert("budget_usd".into(), json!(budget));
                m.insert("budget_remaining_usd".into(), json!(remaining));
            }
            v
        })
        .collect();
    body::json(
        StatusCode::OK,
        json!({
            "required": true,
            "unauthenticated": keys.unauthenticated(),
            "keys": list,
        })
        .to_string(),
    )
}

/// The same text as the main listener's `GET /metrics`.
fn metrics(admin: &Admin, req: &Incoming) -> Response {
    crate::ops::metrics::response(admin.gateway.metrics(), req)
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let mut resp = body::json(
        status,
        switchyard_openai::error_body(message, kind, None, Some(code)),
    );
    resp.append(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

fn not_found(req: &Incoming) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "no admin route for {} {}; this listener serves GET /admin/targets, POST /admin/targets/{{name}}/{{open|close|release|drain|undrain}}, GET /admin/config, GET /admin/keys and GET /metrics",
            req.method,
            req.path()
        ),
        "invalid_request_error",
        "unknown_url",
    )
}

fn method_not_allowed(req: &Incoming, allowed: &'static str) -> Response {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "method {} is not allowed on {}; use {allowed}",
            req.method,
            req.path()
        ),
        "invalid_request_error",
        "method_not_allowed",
    );
    resp.append(http::header::ALLOW, HeaderValue::from_static(allowed));
    resp
}

/// `%XX` escapes decoded; `None` for a bad escape or text that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("openai%2Fgpt-4o").as_deref(),
            Some("openai/gpt-4o")
        );
        assert_eq!(percent_decode("a/b").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn url_credentials_and_queries_are_redacted() {
        use crate::config::redact_url;
        assert_eq!(
            redact_url("http://user:pass@proxy.example:8080/v1"),
            "http://[redacted]@proxy.example:8080/v1"
        );
        assert_eq!(
            redact_url("https://api.example/v1?key=abc"),
            "https://api.example/v1?[redacted]"
        );
        assert_eq!(
            redact_url("https://api.example/v1"),
            "https://api.example/v1"
        );
        assert_eq!(
            redact_url("https://a@b@host/p@q"),
            "https://[redacted]@host/p@q"
        );
    }
}
