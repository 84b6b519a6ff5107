//! Client API keys: who may use the gateway, which routes, how fast and for how much.
//!
//! With `[[keys]]` in the config, every chat request and `GET /v1/models` must carry one of
//! them, as `Authorization: Bearer <key>` (what the OpenAI SDKs send) or `x-api-key: <key>`;
//! `/health` stays open (load balancers probe it without credentials). Without `[[keys]]`
//! the gateway is open, as for local use and the demo, and says so loudly at start when it
//! listens beyond loopback.
//!
//! **Stored as hashes.** The config holds `sha256:<hex>` of each key, never the key:
//! `switchyard hash-key` makes a new random key (`sy-` and 32 random bytes in hex) and prints
//! it once with its hash line. SHA-256 is the right tool because the keys are 256 random
//! bits: nobody can guess one, so nothing is gained by making each guess slow, which is all
//! that password hashes (argon2, bcrypt) add, at milliseconds of CPU on every request.
//!
//! **Looked up by digest, compared in constant time.** A presented key is hashed once; the
//! first 8 bytes of its digest find the one candidate in a hash map, and the full 32 bytes are
//! then compared with `subtle`'s constant-time equality. No comparison ever touches the
//! presented key or a configured key, only digests; the map's own hashing and probing depend
//! on the presented digest's first bytes, so their timing could at most tell an attacker
//! whether a digest of their choosing shares a prefix with a configured one. They cannot
//! choose digests (that would be a preimage attack on SHA-256), and a digest does not give
//! the key back anyway. The work is the same for one key or thousands.
//!
//! **Limits** are checked before any upstream call, in this order: the route (403), the
//! budget, tokens per minute, requests in flight, requests per minute (429 with `Retry-After`
//! for each). A request refused by one of them takes nothing from the others. Spend and
//! tokens are charged from each answer's normalized usage (a continued stream: each part),
//! so the answer that crosses a budget or token limit completes, and the next request is
//! refused.
//!
//! **Secrets.** A presented key never appears in a log line or an error: a wrong key is "an
//! invalid API key", a right one is named by its config `name`.

mod limits;

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use subtle::ConstantTimeEq;
use switchyard_routing::cost::{Ledger, SpendCap};

pub use limits::{InFlight, RequestLimit, TokenLimit, TokioClock};

use crate::config::{Config, KeyConfig};
use crate::connection::Incoming;
use crate::errors::GatewayError;

/// What a key's hash line starts with in the config.
pub const HASH_PREFIX: &str = "sha256:";
/// What keys made by `switchyard hash-key` start with (so they can be recognised in a
/// secret scanner, and a key pasted into `hash` by mistake is caught).
pub const KEY_PREFIX: &str = "sy-";

type Digest = [u8; 32];

/// SHA-256 of a key.
pub fn digest(key: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The config's form of a key's hash: `sha256:` and the digest in lower-case hex.
pub fn hash_line(key: &str) -> String {
    let mut s = String::with_capacity(HASH_PREFIX.len() + 64);
    s.push_str(HASH_PREFIX);
    push_hex(&mut s, &digest(key.as_bytes()));
    s
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// Reads a config hash line (`sha256:` and 64 hex digits, either case).
pub fn parse_hash(line: &str) -> Result<Digest, String> {
    let line = line.trim();
    if line.starts_with(KEY_PREFIX) {
        return Err(
            "this is a key, not its hash: keys are never written into the config; run `switchyard hash-key` for a new key and its hash line"
                .into(),
        );
    }
    let hex = line.strip_prefix(HASH_PREFIX).ok_or_else(|| {
        format!("expected \"{HASH_PREFIX}\" and 64 hex digits, as `switchyard hash-key` prints")
    })?;
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = hex.as_bytes();
    let mut out = [0u8; 32];
    if bytes.len() != 64 {
        return Err(format!(
            "a SHA-256 digest is 64 hex digits; this one has {}",
            bytes.len()
        ));
    }
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => out[i] = h << 4 | l,
            _ => return Err("the digest holds a character that is not a hex digit".into()),
        }
    }
    Ok(out)
}

/// A new random key (`sy-` and 32 bytes from the operating system's CSPRNG, in hex) and its
/// config hash line.
pub fn generate() -> Result<(String, String), String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the operating system's random number generator failed".to_string())?;
    let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
    key.push_str(KEY_PREFIX);
    push_hex(&mut key, &bytes);
    let hash = hash_line(&key);
    Ok((key, hash))
}

/// The key a request presents: `Authorization: Bearer <key>`, else `x-api-key: <key>`.
pub fn presented(req: &Incoming) -> Option<&str> {
    req.header("authorization")
        .and_then(bearer)
        .or_else(|| req.header("x-api-key"))
        .filter(|k| !k.is_empty())
}

/// The credentials of an `Authorization` value with the `Bearer` scheme (any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Every configured key, found by the digest of what a client presents.
pub struct Keys {
    /// The first 8 bytes of each digest, to its key.
    by_prefix: HashMap<u64, usize>,
    keys: Vec<Arc<ClientKey>>,
    /// Requests refused for a missing or unknown key.
    unauthenticated: AtomicU64,
}

fn prefix(d: &Digest) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_le_bytes(first)
}

impl Keys {
    /// The config's keys; `None` when it has none, which leaves the gateway open (with a loud
    /// warning when it listens on a non-loopback address).
    pub fn from_config(config: &Config) -> Result<Option<Box<Keys>>, String> {
        if config.keys.is_empty() {
            warn_if_open(&config.server.listen);
            return Ok(None);
        }
        let mut keys = Keys {
            by_prefix: HashMap::with_capacity(config.keys.len()),
            keys: Vec::with_capacity(config.keys.len()),
            unauthenticated: AtomicU64::new(0),
        };
        for k in &config.keys {
            let key = ClientKey::new(k.get_ref(), config)?;
            if keys
                .by_prefix
                .insert(prefix(&key.digest), keys.keys.len())
                .is_some()
            {
                return Err(format!(
                    "keys: {:?} has the same hash as another key (or the first 8 bytes of it)",
                    key.name
                ));
            }
            keys.keys.push(Arc::new(key));
        }
        tracing::info!(keys = keys.keys.len(), "client API keys required");
        Ok(Some(Box::new(keys)))
    }

    /// The key `req` presents, or 401 (missing or unknown). Neither the presented key nor
    /// anything derived from it is logged or put into the error.
    pub fn authenticate(&self, req: &Incoming) -> Result<&Arc<ClientKey>, Refusal> {
        let Some(presented) = presented(req) else {
            self.unauthenticated.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("refused a request without an API key");
            return Err(Refusal::MissingKey);
        };
        match self.find(presented) {
            Some(key) => Ok(key),
            None => {
                self.unauthenticated.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("refused a request with an invalid API key");
                Err(Refusal::InvalidKey)
            }
        }
    }

    /// The key whose hash is `presented`'s: one SHA-256, one map lookup, one constant-time
    /// comparison of digests.
    pub fn find(&self, presented: &str) -> Option<&Arc<ClientKey>> {
        let d = digest(presented.as_bytes());
        let key = &self.keys[*self.by_prefix.get(&prefix(&d))?];
        bool::from(key.digest.ct_eq(&d)).then_some(key)
    }

    /// Every key's usage so far, in config order.
    pub fn usage(&self) -> Vec<Usage> {
        self.keys.iter().map(|k| k.usage()).collect()
    }

    /// Requests refused for a missing or unknown key.
    pub fn unauthenticated(&self) -> u64 {
        self.unauthenticated.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Says loudly that the gateway is open to anyone who can reach `listen`, unless that is a
/// loopback address.
fn warn_if_open(listen: &str) {
    let exposed = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(|a| !a.ip().is_loopback()));
    if let Some(addr) = exposed {
        tracing::warn!(
            "NO CLIENT KEYS: listening on {listen} ({addr}), which is not a loopback address, with no [[keys]] in the config: anyone who can reach this port can use every route and spend every upstream key behind it. Add keys (`switchyard hash-key` makes one) or listen on 127.0.0.1."
        );
    }
}

/// Why a key refused a request; a [`GatewayError`] (401, 403 or 429) through `?`.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    MissingKey,
    InvalidKey,
    /// The key may not use this route.
    Route {
        key: String,
        route: String,
    },
    /// One of the key's limits is reached; `retry_in` says for how long.
    Limited {
        key: String,
        limit: Limit,
        retry_in: Duration,
    },
}

impl From<Refusal> for GatewayError {
    fn from(r: Refusal) -> GatewayError {
        match r {
            Refusal::MissingKey => GatewayError::InvalidApiKey { missing: true },
            Refusal::InvalidKey => GatewayError::InvalidApiKey { missing: false },
            Refusal::Route { key, route } => GatewayError::RouteNotAllowed { key, route },
            Refusal::Limited {
                key,
                limit,
                retry_in,
            } => GatewayError::KeyLimited {
                key,
                limit,
                retry_in,
            },
        }
    }
}

/// Which of a key's limits refused a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Requests { per_minute: u32 },
    Tokens { per_minute: u64 },
    Budget { usd: f64, period: Duration },
    Concurrency { max: u32 },
}

impl Limit {
    /// The OpenAI error `type` and `code` of a refusal.
    pub fn kind_and_code(&self) -> (&'static str, &'static str) {
        match self {
            Limit::Requests { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            Limit::Tokens { .. } => ("rate_limit_error", "tokens_per_minute_exceeded"),
            Limit::Budget { .. } => ("insufficient_quota", "budget_exceeded"),
            Limit::Concurrency { .. } => ("rate_limit_error", "concurrency_limit_exceeded"),
        }
    }

    /// What was reached, for the error message: "its budget of 20 USD per 1d".
    pub fn describe(&self) -> String {
        match self {
            Limit::Requests { per_minute } => {
                format!("its limit of {per_minute} requests per minute")
            }
            Limit::Tokens { per_minute } => format!("its limit of {per_minute} tokens per minute"),
            Limit::Budget { usd, period } => format!(
                "its budget of {} USD per {}",
                crate::accounting::format_usd(*usd),
                period_text(*period)
            ),
            Limit::Concurrency { max } => {
                format!("its limit of {max} requests in flight at once")
            }
        }
    }

    fn index(&self) -> usize {
        match self {
            Limit::Requests { .. } => 0,
            Limit::Tokens { .. } => 1,
            Limit::Budget { .. } => 2,
            Limit::Concurrency { .. } => 3,
        }
    }
}

/// A period as the config writes it: "1d", "12h", "30m", "90s".
fn period_text(period: Duration) -> String {
    let s = period.as_secs();
    match s {
        0 => format!("{}ms", period.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// One configured key: what it may use, its limits and what it has used.
pub struct ClientKey {
    name: String,
    digest: Digest,
    /// Aliases it may use; `None`: all.
    routes: Option<Box<[String]>>,
    requests: Option<RequestLimit>,
    tokens: Option<TokenLimit>,
    budget: Option<SpendCap>,
    max_concurrent: Option<NonZeroU32>,
    in_flight: InFlight,
    admitted: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    spent: Ledger,
    /// Requests refused, by [`Limit::index`], then for the route.
    refused: [AtomicU64; 5],
}

const REFUSED_ROUTE: usize = 4;

impl ClientKey {
    fn new(c: &KeyConfig, config: &Config) -> Result<ClientKey, String> {
        let digest = parse_hash(c.hash.get_ref()).map_err(|e| format!("keys {:?}: {e}", c.name))?;
        let budget = match &c.budget {
            None => None,
            Some(b) => {
                let period = switchyard_routing::cost::parse_period(&b.period)
                    .map_err(|e| format!("keys {:?}: budget: {e}", c.name))?;
                // Answers of unpriced targets have no cost: say which routes this concerns.
                for (alias, route) in &config.models {
                    let allowed = c.routes.as_ref().is_none_or(|r| r.contains(alias));
                    if allowed && route.get_ref().targets.iter().any(|t| t.price.is_none()) {
                        tracing::warn!(key = %c.name, route = %alias, "route has targets without a price: their answers do not count against the key's budget");
                    }
                }
                Some(SpendCap::new(b.usd, period))
            }
        };
        Ok(ClientKey {
            name: c.name.clone(),
            digest,
            routes: c.routes.clone().map(Vec::into_boxed_slice),
            requests: c
                .requests_per_minute
                .and_then(NonZeroU32::new)
                .map(RequestLimit::new),
            tokens: c
                .tokens_per_minute
                .and_then(NonZeroU64::new)
                .map(TokenLimit::new),
            budget,
            max_concurrent: c.max_concurrent.and_then(NonZeroU32::new),
            in_flight: InFlight::default(),
            admitted: AtomicU64::new(0),
            input_tokens: AtomicU64::new(0),
            output_tokens: AtomicU64::new(0),
            spent: Ledger::new(),
            refused: Default::default(),
        })
    }

    /// The key's config name (never the key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this key may use the route `alias`.
    pub fn may_use(&self, alias: &str) -> bool {
        self.routes
            .as_deref()
            .is_none_or(|r| r.iter().any(|a| a == alias))
    }

    /// Lets a request for `alias` through, or says which limit refuses it (403 for the route,
    /// 429 with the wait for the others). The ticket counts the request in flight until it
    /// is dropped, and charges the answer's usage.
    pub fn admit(self: &Arc<Self>, alias: &str) -> Result<Ticket, Refusal> {
        if !self.may_use(alias) {
            self.refused[REFUSED_ROUTE].fetch_add(1, Ordering::Relaxed);
            tracing::debug!(key = %self.name, route = %alias, "refused: the key may not use this route");
            return Err(Refusal::Route {
                key: self.name.clone(),
                route: alias.to_string(),
            });
        }
        if let Some(cap) = &self.budget {
            let now = crate::accounting::now_ms();
            if cap.is_over(now) {
                let limit = Limit::Budget {
                    usd: cap.limit(),
                    period: cap.period(),
                };
                return Err(self.refuse(limit, cap.resets_in(now)));
            }
        }
        if let Some(tokens) = &self.tokens {
            if let Err(wait) = tokens.check(tokio::time::Instant::now()) {
                let limit = Limit::Tokens {
                    per_minute: tokens.per_minute(),
                };
                return Err(self.refuse(limit, wait));
            }
        }
        if !self.in_flight.enter(self.max_concurrent) {
            let max = self.max_concurrent.map_or(0, NonZeroU32::get);
            // No way to know when one ends: a second is a fair first wait.
            return Err(self.refuse(Limit::Concurrency { max }, Duration::from_secs(1)));
        }
        // From here the ticket gives the slot back, whatever happens.
        let ticket = Ticket {
            key: Arc::clone(self),
        };
        if let Some(requests) = &self.requests {
            if let Err(wait) = requests.take() {
                let limit = Limit::Requests {
                    per_minute: requests.per_minute(),
                };
                return Err(self.refuse(limit, wait));
            }
        }
        self.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(ticket)
    }

    fn refuse(&self, limit: Limit, retry_in: Duration) -> Refusal {
        self.refused[limit.index()].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(key = %self.name, "refused: {}", limit.describe());
        Refusal::Limited {
            key: self.name.clone(),
            limit,
            retry_in,
        }
    }

    /// Charges one answer (or one part of a continued stream): its tokens, and its cost when
    /// the target that gave it has a price.
    fn charge(&self, usage: &switchyard_core::Usage, cost: Option<f64>) {
        self.input_tokens
            .fetch_add(usage.input_tokens, Ordering::Relaxed);
        self.output_tokens
            .fetch_add(usage.output_tokens, Ordering::Relaxed);
        if let Some(tokens) = &self.tokens {
            tokens.charge(
                usage.input_tokens.saturating_add(usage.output_tokens),
                tokio::time::Instant::now(),
            );
        }
        if let Some(usd) = cost {
            self.spent.add(usd);
            if let Some(cap) = &self.budget {
                cap.add(usd, crate::accounting::now_ms());
            }
        }
    }

    /// What this key has used so far.
    pub fn usage(&self) -> Usage {
        let refused = |i: usize| self.refused[i].load(Ordering::Relaxed);
        Usage {
            name: self.name.clone(),
            requests: self.admitted.load(Ordering::Relaxed),
            input_tokens: self.input_tokens.load(Ordering::Relaxed),
            output_tokens: self.output_tokens.load(Ordering::Relaxed),
            cost_usd: self.spent.total(),
            budget_spent_usd: self
                .budget
                .as_ref()
                .map(|cap| cap.spent(crate::accounting::now_ms())),
            tokens_this_minute: self
                .tokens
                .as_ref()
                .map(|t| t.used(tokio::time::Instant::now())),
            in_flight: self.in_flight.now(),
            refused: Refused {
                route: refused(REFUSED_ROUTE),
                requests_per_minute: refused(0),
                tokens_per_minute: refused(1),
                budget: refused(2),
                max_concurrent: refused(3),
            },
        }
    }
}

/// A request a key let through: counted in flight until dropped (for a stream, when its relay
/// ends), and the way its answer's usage is charged to the key.
pub struct Ticket {
    key: Arc<ClientKey>,
}

impl Ticket {
    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    /// Charges an answer's usage (input and output tokens) and its cost, if it has one.
    pub fn charge(&self, usage: &switchyard_core::Usage, cost: Option<f64>) {
        self.key.charge(usage, cost);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.key.in_flight.leave();
    }
}

/// [`Ticket::charge`] when there is a ticket (keys are configured): one call for the places
/// that know an answer's usage.
pub fn charge(ticket: Option<&Ticket>, usage: &switchyard_core::Usage, cost: Option<f64>) {
    if let Some(t) = ticket {
        t.charge(usage, cost);
    }
}

/// One key's usage since the gateway started, for reports (admin API, metrics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// The key's config name.
    pub name: String,
    /// Chat requests let through.
    pub requests: u64,
    /// Input tokens of its answers (cached ones included).
    pub input_tokens: u64,
    /// Output tokens of its answers (reasoning included).
    pub output_tokens: u64,
    /// USD its answers cost, counting only answers from targets with a price.
    pub cost_usd: f64,
    /// Spend in the budget's current period, when the key has a budget.
    pub budget_spent_usd: Option<f64>,
    /// Tokens counting against `tokens_per_minute` now, when the key has that limit.
    pub tokens_this_minute: Option<u64>,
    /// Requests being answered now.
    pub in_flight: u32,
    pub refused: Refused,
}

/// Requests of one key refused, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Refused {
    /// For a route the key may not use (403).
    pub route: u64,
    pub requests_per_minute: u64,
    pub tokens_per_minute: u64,
    pub budget: u64,
    pub max_concurrent: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &str) -> Config {
        let text = format!(
            r#"
[models.chat]
targets = [ {{ provider = "openai", base_url = "http://127.0.0.1:1", model = "m", price = {{ input_per_mtok = 1000000.0, output_per_mtok = 1000000.0 }} }} ]
[models.fast]
targets = [ {{ provider = "openai", base_url = "http://127.0.0.1:1", model = "m" }} ]
{keys}
"#
        );
        crate::config::parse(&text, "t.toml", &|_| None).unwrap()
    }

    fn keys(keys: &str) -> Box<Keys> {
        Keys::from_config(&config(keys)).unwrap().unwrap()
    }

    fn usage(input: u64, output: u64) -> switchyard_core::Usage {
        switchyard_core::Usage {
            input_tokens: input,
            output_tokens: output,
            total_tokens: input + output,
            ..Default::default()
        }
    }

    #[test]
    fn a_hash_line_is_sha256_in_hex() {
        // SHA-256 of "abc", FIPS 180-2's test vector.
        assert_eq!(
            hash_line("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d = parse_hash(&hash_line("abc").to_uppercase().replace("SHA256", "sha256")).unwrap();
        assert_eq!(d, digest(b"abc"));
    }

    #[test]
    fn generated_keys_are_random_and_match_their_hash() {
        let (a, ha) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == 3 + 64, "{a}");
        assert_eq!(ha, hash_line(&a));
        assert_eq!(parse_hash(&ha).unwrap(), digest(a.as_bytes()));
    }

    #[test]
    fn bad_hash_lines_say_why() {
        let (key, _) = generate().unwrap();
        assert!(parse_hash(&key).unwrap_err().contains("not its hash"));
        assert!(parse_hash("md5:abc").unwrap_err().contains("sha256:"));
        assert!(parse_hash("sha256:abc")
            .unwrap_err()
            .contains("64 hex digits"));
        let bad = format!("sha256:{}", "g".repeat(64));
        assert!(parse_hash(&bad).unwrap_err().contains("hex"));
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer("Bearer sy-1"), Some("sy-1"));
        assert_eq!(bearer("bearer   sy-1 "), Some("sy-1"));
        assert_eq!(bearer("Basic c3k6MQ=="), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn keys_are_found_by_their_hash_only() {
        let (a, ha) = generate().unwrap();
        let (b, hb) = generate().unwrap();
        let k = keys(&format!(
            "[[keys]]\nname = \"a\"\nhash = \"{ha}\"\n[[keys]]\nname = \"b\"\nhash = \"{hb}\"\n"
        ));
        assert_eq!(k.find(&a).unwrap().name(), "a");
        assert_eq!(k.find(&b).unwrap().name(), "b");
        assert!(k.find(&ha).is_none(), "the hash is not the key");
        assert!(k.find(&a[..a.len() - 1]).is_none());
        assert!(k.find("").is_none());
    }

    #[test]
    fn routes_limit_what_a_key_may_use() {
        let (a, ha) = generate().unwrap();
        let k = keys(&format!(
            "[[keys]]\nname = \"a\"\nhash = \"{ha}\"\nroutes = [\"fast\"]\n"
        ));
        let key = k.find(&a).unwrap();
        assert!(key.may_use("fast") && !key.may_use("chat"));
        assert!(matches!(key.admit("chat"), Err(Refusal::Route { .. })));
        assert!(key.admit("fast").is_ok());
        assert_eq!(key.usage().refused.route, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_holds_its_slot_until_dropped() {
        let (a, ha) = generate().unwrap();
        let k = keys(&format!(
            "[[keys]]\nname = \"a\"\nhash = \"{ha}\"\nmax_concurrent = 1\nrequests_per_minute = 2\n"
        ));
        let key = k.find(&a).unwrap();
        let first = key.admit("chat").unwrap();
        match key.admit("chat") {
            Err(Refusal::Limited {
                limit, retry_in, ..
            }) => {
                assert_eq!(limit, Limit::Concurrency { max: 1 });
                assert_eq!(retry_in, Duration::from_secs(1));
            }
            _ => panic!("a second request in flight is refused"),
        }
        assert_eq!(key.usage().in_flight, 1);
        drop(first);
        assert_eq!(key.usage().in_flight, 0);
        // The refusal for concurrency took nothing from the per-minute allowance.
        drop(key.admit("chat").unwrap());
        match key.admit("chat") {
            Err(Refusal::Limited { limit, .. }) => {
                assert_eq!(limit, Limit::Requests { per_minute: 2 })
            }
            _ => panic!("the third request in a minute is refused"),
        }
        // ...and the refusal for the rate gave its slot back.
        assert_eq!(key.usage().in_flight, 0);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(key.admit("chat").is_ok());
        let u = key.usage();
        assert_eq!(
            (
                u.requests,
                u.refused.max_concurrent,
                u.refused.requests_per_minute
            ),
            (3, 1, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_charged_after_the_answer() {
        let (a, ha) = generate().unwrap();
        let k = keys(&format!(
            "[[keys]]\nname = \"a\"\nhash = \"{ha}\"\ntokens_per_minute = 100\n"
        ));
        let key = k.find(&a).unwrap();
        let t = key.admit("chat").unwrap();
        t.charge(&usage(70, 50), None);
        drop(t);
        let Err(Refusal::Limited {
            limit, retry_in, ..
        }) = key.admit("chat")
        else {
            panic!("over the token limit");
        };
        assert_eq!(limit, Limit::Tokens { per_minute: 100 });
        // 20 over at 100 per minute: 12 s.
        assert!(
            retry_in > Duration::from_secs(11) && retry_in <= Duration::from_millis(12_001),
            "{retry_in:?}"
        );
        tokio::time::advance(Duration::from_millis(12_001)).await;
        assert!(key.admit("chat").is_ok());
        let u = key.usage();
        assert_eq!((u.input_tokens, u.output_tokens), (70, 50));
        assert_eq!(u.tokens_this_minute, Some(99));
    }

    #[test]
    fn spend_is_charged_and_a_spent_budget_refuses() {
        let (a, ha) = generate().unwrap();
        let k = keys(&format!(
            "[[keys]]\nname = \"a\"\nhash = \"{ha}\"\nbudget = {{ usd = 0.5, period = \"1d\" }}\n"
        ));
        let key = k.find(&a).unwrap();
        let t = key.admit("chat").unwrap();
        t.charge(&usage(1, 1), Some(0.4));
        assert!(key.admit("chat").is_ok(), "0.4 of 0.5 spent");
        t.charge(&usage(1, 1), Some(0.1));
        let Err(e @ Refusal::Limited { retry_in, .. }) = key.admit("chat") else {
            panic!("the budget is spent");
        };
        assert!(retry_in <= Duration::from_secs(86_400));
        let (status, body) = GatewayError::from(e).body();
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 429);
        assert!(body.contains("budget of 0.5 USD per 1d"), "{body}");
        assert!(body.contains("budget_exceeded"), "{body}");
        let u = key.usage();
        assert_eq!(u.budget_spent_usd, Some(0.5));
        assert!((u.cost_usd - 0.5).abs() < 1e-9);
        assert_eq!(u.refused.budget, 1);
    }

    #[test]
    fn periods_read_as_written() {
        assert_eq!(period_text(Duration::from_secs(86_400)), "1d");
        assert_eq!(period_text(Duration::from_secs(7_200)), "2h");
        assert_eq!(period_text(Duration::from_secs(1_800)), "30m");
        assert_eq!(period_text(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn no_keys_no_table() {
        assert!(Keys::from_config(&config("")).unwrap().is_none());
    }
}
