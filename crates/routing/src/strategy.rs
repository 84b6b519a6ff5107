//! The order in which one request tries a route's targets.
//!
//! A [`Router`] per route turns its [`Strategy`] and the targets' live statistics into an
//! [`Order`]; failover then walks that order exactly as it walks a fixed list, so breakers,
//! timeouts, retries and stream continuation work the same under every strategy.
//!
//! - `priority`: the configured order (the default, and what the others fall back to).
//! - `latency`: the fastest target first by a recent quantile of first-token latency (streams)
//!   or total latency (the rest), recomputed every `recompute`. Hysteresis keeps the order
//!   from flapping: a challenger must beat the current leader by `margin` for `hold` before it
//!   takes the lead. Targets with too few recent samples to have a score get a small share of
//!   requests first (`explore`), so their statistics stay fresh.
//! - `cost`: the cheapest target whose quality score for the request's task meets the route's
//!   floor first; targets below the floor are left out.
//! - `weighted`: the first target is chosen by weight (smooth weighted round robin, so shares
//!   are exact over every cycle and interleaved), the rest follow in configured order as
//!   fallbacks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::cost::{estimate, estimate_input_tokens, Price};
use crate::stats::{Quantile, TargetStats};

/// Most targets one route may have (an [`Order`] is kept inline, with no allocation per
/// request).
pub const MAX_TARGETS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    Priority,
    Latency(LatencyPolicy),
    Cost(CostPolicy),
    Weighted,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Latency(_) => "latency",
            Strategy::Cost(_) => "cost",
            Strategy::Weighted => "weighted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyPolicy {
    /// Which quantile scores a target (p50 or p90 in practice).
    pub quantile: Quantile,
    /// How often the order is recomputed from the statistics.
    pub recompute: Duration,
    /// How much faster a challenger must be than the leader (0.2: 20 % faster).
    pub margin: f64,
    /// How long the challenger must stay that much faster before it takes the lead.
    pub hold: Duration,
    /// Share of requests that try a target without a score first (0.05: one in twenty).
    pub explore: f64,
}

impl Default for LatencyPolicy {
    fn default() -> Self {
        LatencyPolicy {
            quantile: Quantile::P50,
            recompute: Duration::from_secs(2),
            margin: 0.2,
            hold: Duration::from_secs(5),
            explore: 0.05,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostPolicy {
    /// A target is acceptable for a task when its quality score for it is at least this.
    /// `None`: every target is acceptable.
    pub quality_floor: Option<f64>,
    /// Output tokens assumed for a request without `max_tokens` from a target that has no
    /// recent mean yet.
    pub default_output_tokens: u64,
}

impl Default for CostPolicy {
    fn default() -> Self {
        CostPolicy {
            quality_floor: None,
            default_output_tokens: 256,
        }
    }
}

/// What the router knows of one target, fixed when the config is loaded.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub stats: Arc<TargetStats>,
    pub price: Option<Price>,
    /// Weight under `weighted` (0: never chosen first, still a fallback).
    pub weight: u32,
    /// Quality score per task (a route alias or a tag the request carries).
    pub quality: HashMap<String, f64>,
}

/// What the strategy needs to know of one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestInfo<'a> {
    pub streamed: bool,
    pub body_bytes: usize,
    pub max_tokens: Option<u64>,
    /// The task the quality floor is checked for.
    pub task: &'a str,
}

/// Target indices in the order to try them; at most [`MAX_TARGETS`], kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Order {
    idx: [u8; MAX_TARGETS],
    len: u8,
}

impl Order {
    pub fn identity(n: usize) -> Self {
        let mut o = Order::empty();
        for i in 0..n.min(MAX_TARGETS) {
            o.push(i);
        }
        o
    }

    fn empty() -> Self {
        Order {
            idx: [0; MAX_TARGETS],
            len: 0,
        }
    }

    /// The target at position `pos`, which must be below [`Order::len`].
    pub fn get(&self, pos: usize) -> usize {
        usize::from(self.idx[pos.min(MAX_TARGETS - 1)])
    }

    /// Appends target `i`; ignored once the order holds [`MAX_TARGETS`].
    pub fn push(&mut self, i: usize) {
        if usize::from(self.len) < MAX_TARGETS {
            // `i` < MAX_TARGETS (32) by construction, so it fits a byte.
            self.idx[usize::from(self.len)] = i as u8;
            self.len += 1;
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.iter().any(|j| j == i)
    }

    /// Moves target `i` to the front, keeping the others in their order.
    fn promote(&mut self, i: usize) {
        let Some(pos) = self.iter().position(|j| j == i) else {
            return;
        };
        self.idx[..=pos].rotate_right(1);
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.idx[..self.len()].iter().map(|&i| usize::from(i))
    }

    pub fn first(&self) -> Option<usize> {
        self.iter().next()
    }
}

impl Default for Order {
    fn default() -> Self {
        Order::empty()
    }
}

impl std::fmt::Debug for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One target's place in a route's current order, for `/health`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub index: usize,
    /// The number the strategy ordered by (ms for latency, USD for cost, weight), if any.
    pub score: Option<f64>,
    pub reason: String,
}

/// Per route: the strategy and what it remembers between requests.
#[derive(Debug)]
pub struct Router {
    strategy: Strategy,
    targets: Vec<TargetInfo>,
    /// Requests seen, for exploration's one-in-n.
    requests: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Latency: one order for streams and one for the rest (they are scored differently).
    latency: [LatencyState; 2],
    /// Weighted: the smooth round robin's running credits.
    credits: Vec<i64>,
    /// Cost: each target's recent mean output tokens, refreshed with `refreshed`.
    mean_output: Vec<Option<f64>>,
    refreshed: Option<Instant>,
}

#[derive(Debug, Clone)]
struct LatencyState {
    order: Order,
    leader: Option<usize>,
    /// A faster target and since when it has been faster by the margin.
    challenger: Option<(usize, Instant)>,
    computed: Option<Instant>,
    /// Targets with no score at the last recompute, the ones exploration sends to.
    cold: Order,
    scores: Vec<Option<Duration>>,
}

impl Router {
    /// `targets` in configured order; at most [`MAX_TARGETS`] are used.
    pub fn new(strategy: Strategy, mut targets: Vec<TargetInfo>) -> Self {
        targets.truncate(MAX_TARGETS);
        let n = targets.len();
        let latency = LatencyState {
            order: Order::identity(n),
            leader: None,
            challenger: None,
            computed: None,
            cold: Order::empty(),
            scores: vec![None; n],
        };
        Router {
            strategy,
            requests: AtomicU64::new(0),
            state: Mutex::new(State {
                latency: [latency.clone(), latency],
                credits: vec![0; n],
                mean_output: vec![None; n],
                refreshed: None,
            }),
            targets,
        }
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment of derived numbers; a panic cannot leave them
        // in a state worse than stale.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The order for one request.
    pub fn order(&self, now: Instant, req: &RequestInfo<'_>) -> Order {
        let n = self.targets.len();
        match &self.strategy {
            Strategy::Priority => Order::identity(n),
            Strategy::Weighted => self.weighted(),
            Strategy::Latency(policy) => self.latency(now, req.streamed, policy),
            Strategy::Cost(policy) => self.cost(now, req, policy),
        }
    }

    fn weighted(&self) -> Order {
        let n = self.targets.len();
        let total: i64 = self.targets.iter().map(|t| i64::from(t.weight)).sum();
        let mut order = Order::identity(n);
        if total == 0 {
            return order;
        }
        let mut state = self.lock();
        // nginx's smooth weighted round robin: every target gains its weight, the richest
        // is chosen and pays the total. Over one cycle of `total` requests each target is
        // chosen exactly `weight` times, spread out rather than in runs.
        let mut best = 0;
        for (i, t) in self.targets.iter().enumerate() {
            state.credits[i] += i64::from(t.weight);
            if state.credits[i] > state.credits[best] {
                best = i;
            }
        }
        state.credits[best] -= total;
        drop(state);
        order.promote(best);
        order
    }

    fn latency(&self, now: Instant, streamed: bool, policy: &LatencyPolicy) -> Order {
        let seen = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let ls = &mut state.latency[usize::from(streamed)];
        if ls
            .computed
            .is_none_or(|at| now.saturating_duration_since(at) >= policy.recompute)
        {
            self.recompute_latency(ls, now, streamed, policy);
        }
        let mut order = ls.order;
        let cold = ls.cold;
        drop(state);
        if !cold.is_empty() && policy.explore > 0.0 {
            let every = (1.0 / policy.explore).round().max(1.0) as u64;
            if seen % every == every - 1 {
                // Rotate through the cold targets so each gets its turn.
                let k = usize::try_from((seen / every) % cold.len() as u64).unwrap_or(0);
                if let Some(target) = cold.iter().nth(k) {
                    order.promote(target);
                }
            }
        }
        order
    }

    fn recompute_latency(
        &self,
        ls: &mut LatencyState,
        now: Instant,
        streamed: bool,
        policy: &LatencyPolicy,
    ) {
        ls.computed = Some(now);
        let scores: Vec<Option<Duration>> = self
            .targets
            .iter()
            .map(|t| t.stats.quick(now, streamed, policy.quantile))
            .collect();
        // Scored targets fastest first (configured order breaks ties), then the cold ones in
        // configured order.
        let mut ranked: Vec<usize> = (0..self.targets.len()).collect();
        ranked.sort_by_key(|&i| (scores[i].is_none(), scores[i], i));
        let fastest = ranked.first().copied().filter(|&i| scores[i].is_some());
        let leader = match (ls.leader, fastest) {
            (_, None) => None,
            (None, Some(f)) => Some(f),
            (Some(l), Some(f)) if l == f => {
                ls.challenger = None;
                Some(l)
            }
            (Some(l), Some(f)) => match scores[l] {
                // The leader lost its score (its samples aged out): nothing to hold against.
                None => {
                    ls.challenger = None;
                    Some(f)
                }
                Some(leader_score) => {
                    let beats = scores[f].is_some_and(|s| {
                        s.as_secs_f64() < leader_score.as_secs_f64() * (1.0 - policy.margin)
                    });
                    match ls.challenger {
                        _ if !beats => {
                            ls.challenger = None;
                            Some(l)
                        }
                        Some((c, since)) if c == f => {
                            if now.saturating_duration_since(since) >= policy.hold {
                                ls.challenger = None;
                                Some(f)
                            } else {
                                Some(l)
                            }
                        }
                        _ => {
                            ls.challenger = Some((f, now));
                            if policy.hold.is_zero() {
                                ls.challenger = None;
                                Some(f)
                            } else {
                                Some(l)
                            }
                        }
                    }
                }
            },
        };
        let mut order = Order::empty();
        let mut cold = Order::empty();
        if let Some(l) = leader {
            order.push(l);
        }
        for &i in &ranked {
            if !order.contains(i) {
                order.push(i);
            }
            if scores[i].is_none() {
                cold.push(i);
            }
        }
        ls.leader = leader;
        ls.order = order;
        ls.cold = cold;
        ls.scores = scores;
    }

    fn cost(&self, now: Instant, req: &RequestInfo<'_>, policy: &CostPolicy) -> Order {
        let mean_output = self.mean_output(now);
        let input = estimate_input_tokens(req.body_bytes);
        let mut ranked: Vec<(usize, Option<f64>)> = Vec::with_capacity(self.targets.len());
        for (i, t) in self.targets.iter().enumerate() {
            if !self.acceptable(t, req.task, policy) {
                continue;
            }
            let output = req
                .max_tokens
                .or_else(|| mean_output[i].map(|m| m.round() as u64))
                .unwrap_or(policy.default_output_tokens);
            ranked.push((i, t.price.map(|p| estimate(&p, input, output))));
        }
        // Priced targets cheapest first; unpriced ones after them, in configured order (a
        // missing price is not a free target).
        ranked.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.total_cmp(&y).then(a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        let mut order = Order::empty();
        for (i, _) in ranked {
            order.push(i);
        }
        order
    }

    fn acceptable(&self, t: &TargetInfo, task: &str, policy: &CostPolicy) -> bool {
        match policy.quality_floor {
            None => true,
            Some(floor) => t.quality.get(task).is_some_and(|&q| q >= floor),
        }
    }

    /// Each target's recent mean output tokens, read from the statistics at most once per
    /// second (a summary merges histograms; not something to do per request).
    fn mean_output(&self, now: Instant) -> Vec<Option<f64>> {
        let mut state = self.lock();
        if state
            .refreshed
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1))
        {
            state.refreshed = Some(now);
            state.mean_output = self
                .targets
                .iter()
                .map(|t| t.stats.summary(now).mean_output_tokens)
                .collect();
        }
        state.mean_output.clone()
    }

    /// The current order with each target's score and why it stands where it does, for a
    /// typical request (non-streamed unless `streamed`, empty body, the given task).
    pub fn explain(&self, now: Instant, streamed: bool, task: &str) -> Vec<Ranked> {
        let req = RequestInfo {
            streamed,
            body_bytes: 0,
            max_tokens: None,
            task,
        };
        match &self.strategy {
            Strategy::Priority => (0..self.targets.len())
                .map(|i| Ranked {
                    index: i,
                    score: None,
                    reason: format!("priority: position {} in the config", i + 1),
                })
                .collect(),
            Strategy::Weighted => {
                let total: u32 = self.targets.iter().map(|t| t.weight).sum();
                (0..self.targets.len())
                    .map(|i| {
                        let w = self.targets[i].weight;
                        Ranked {
                            index: i,
                            score: Some(f64::from(w)),
                            reason: if total == 0 {
                                "weighted: no weights, configured order".into()
                            } else {
                                format!(
                                    "weighted: first for {:.1} % of requests, else a fallback in configured order",
                                    100.0 * f64::from(w) / f64::from(total)
                                )
                            },
                        }
                    })
                    .collect()
            }
            Strategy::Latency(policy) => {
                let mut state = self.lock();
                let ls = &mut state.latency[usize::from(streamed)];
                if ls
                    .computed
                    .is_none_or(|at| now.saturating_duration_since(at) >= policy.recompute)
                {
                    self.recompute_latency(ls, now, streamed, policy);
                }
                let what = if streamed { "first token" } else { "total" };
                ls.order
                    .iter()
                    .map(|i| {
                        let score = ls.scores.get(i).copied().flatten();
                        let reason = match (score, ls.leader == Some(i)) {
                            (Some(d), true) => format!(
                                "latency: leader, {:?} {what} {:.1} ms{}",
                                policy.quantile,
                                ms(d),
                                match ls.challenger {
                                    Some((c, since)) => format!(
                                        "; target {} has been faster for {:.1} s (takes the lead after {:.1} s)",
                                        c,
                                        now.saturating_duration_since(since).as_secs_f64(),
                                        policy.hold.as_secs_f64()
                                    ),
                                    None => String::new(),
                                }
                            ),
                            (Some(d), false) => {
                                format!("latency: {:?} {what} {:.1} ms", policy.quantile, ms(d))
                            }
                            (None, _) => format!(
                                "latency: no recent samples; gets {:.1} % of requests to explore",
                                100.0 * policy.explore
                            ),
                        };
                        Ranked {
                            index: i,
                            score: score.map(ms),
                            reason,
                        }
                    })
                    .collect()
            }
            Strategy::Cost(policy) => {
                let mean_output = self.mean_output(now);
                let order = self.cost(now, &req, policy);
                let mut out: Vec<Ranked> = order
                    .iter()
                    .map(|i| {
                        let t = &self.targets[i];
                        let output = mean_output[i]
                            .map(|m| m.round() as u64)
                            .unwrap_or(policy.default_output_tokens);
                        let score = t.price.map(|p| estimate(&p, 0, output));
                        Ranked {
                            index: i,
                            score,
                            reason: match score {
                                Some(usd) => format!(
                                    "cost: about ${usd:.6} per answer of {output} output tokens"
                                ),
                                None => {
                                    "cost: no price configured, after the priced targets".into()
                                }
                            },
                        }
                    })
                    .collect();
                for i in 0..self.targets.len() {
                    if !order.contains(i) {
                        out.push(Ranked {
                            index: i,
                            score: None,
                            reason: format!(
                                "cost: left out, quality for task {task:?} below the floor of {}",
                                policy.quality_floor.unwrap_or(0.0)
                            ),
                        });
                    }
                }
                out
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Answered, StatsConfig};

    fn stats() -> Arc<TargetStats> {
        Arc::new(TargetStats::new(StatsConfig {
            window: Duration::from_secs(60),
            slices: 6,
            shards: 1,
            refresh: Duration::from_millis(100),
        }))
    }

    fn target(price: Option<(f64, f64)>, weight: u32, quality: &[(&str, f64)]) -> TargetInfo {
        TargetInfo {
            stats: stats(),
            price: price.map(|(i, o)| Price {
                input_per_mtok: i,
                output_per_mtok: o,
                cache_read_per_mtok: None,
                cache_write_per_mtok: None,
            }),
            weight,
            quality: quality.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn answers(t: &TargetInfo, ms: u64, n: usize) {
        let now = Instant::now();
        for _ in 0..n {
            t.stats.record_answer(
                now,
                &Answered {
                    streamed: false,
                    ttft: None,
                    total: Duration::from_millis(ms),
                    output_tokens: Some(100),
                    generation: None,
                },
            );
        }
    }

    fn plain() -> RequestInfo<'static> {
        RequestInfo {
            streamed: false,
            body_bytes: 400,
            max_tokens: None,
            task: "chat",
        }
    }

    fn firsts(router: &Router, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                router
                    .order(Instant::now(), &plain())
                    .first()
                    .expect("an order")
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn priority_keeps_the_configured_order() {
        let r = Router::new(
            Strategy::Priority,
            vec![
                target(None, 1, &[]),
                target(None, 1, &[]),
                target(None, 1, &[]),
            ],
        );
        let o = r.order(Instant::now(), &plain());
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_shares_are_exact_per_cycle_and_spread_out() {
        let r = Router::new(
            Strategy::Weighted,
            vec![
                target(None, 3, &[]),
                target(None, 1, &[]),
                target(None, 0, &[]),
            ],
        );
        let f = firsts(&r, 8);
        assert_eq!(f.iter().filter(|&&i| i == 0).count(), 6, "{f:?}");
        assert_eq!(f.iter().filter(|&&i| i == 1).count(), 2, "{f:?}");
        assert!(!f.contains(&2), "weight 0 is never first: {f:?}");
        assert!(
            !f.windows(4).any(|w| w == [0, 0, 0, 0]),
            "smooth: no run longer than the weight: {f:?}"
        );
        // The others stay behind the chosen one as fallbacks, in configured order.
        let o = r.order(Instant::now(), &plain());
        assert_eq!(o.len(), 3);
        let rest: Vec<usize> = o.iter().skip(1).collect();
        let mut sorted = rest.clone();
        sorted.sort_unstable();
        assert_eq!(rest, sorted);
    }

    fn latency(hold_s: u64, explore: f64) -> Strategy {
        Strategy::Latency(LatencyPolicy {
            quantile: Quantile::P50,
            recompute: Duration::from_secs(1),
            margin: 0.2,
            hold: Duration::from_secs(hold_s),
            explore,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn latency_puts_the_fastest_first_and_changes_leader_only_after_the_hold() {
        let slow = target(None, 1, &[]);
        let fast = target(None, 1, &[]);
        answers(&slow, 100, 20);
        answers(&fast, 10, 20);
        let r = Router::new(latency(5, 0.0), vec![slow.clone(), fast.clone()]);
        assert_eq!(r.order(Instant::now(), &plain()).first(), Some(1));
        // The slow one becomes much faster: its median drops below 8 ms.
        answers(&slow, 2, 60);
        tokio::time::advance(Duration::from_millis(1_100)).await;
        assert_eq!(
            r.order(Instant::now(), &plain()).first(),
            Some(1),
            "a challenger does not take the lead at once"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            r.order(Instant::now(), &plain()).first(),
            Some(1),
            "still holding"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            r.order(Instant::now(), &plain()).first(),
            Some(0),
            "faster by the margin for the whole hold: it leads"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn latency_does_not_flap_on_a_small_lead() {
        let a = target(None, 1, &[]);
        let b = target(None, 1, &[]);
        answers(&a, 100, 20);
        answers(&b, 110, 20);
        let r = Router::new(latency(2, 0.0), vec![a.clone(), b.clone()]);
        assert_eq!(r.order(Instant::now(), &plain()).first(), Some(0));
        // b is now 10 % faster than a: less than the 20 % margin.
        answers(&b, 90, 100);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert_eq!(r.order(Instant::now(), &plain()).first(), Some(0));
        }
        let why = r.explain(Instant::now(), false, "chat");
        assert!(why[0].reason.contains("leader"), "{why:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cold_target_gets_the_exploration_share() {
        let a = target(None, 1, &[]);
        let cold = target(None, 1, &[]);
        answers(&a, 10, 20);
        let r = Router::new(latency(5, 0.1), vec![a, cold]);
        let f = firsts(&r, 100);
        assert_eq!(f.iter().filter(|&&i| i == 1).count(), 10, "{f:?}");
        let why = r.explain(Instant::now(), false, "chat");
        assert!(why[1].reason.contains("explore"), "{why:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn cost_puts_the_cheapest_acceptable_first() {
        let r = Router::new(
            Strategy::Cost(CostPolicy::default()),
            vec![
                target(Some((10.0, 30.0)), 1, &[]),
                target(None, 1, &[]),
                target(Some((0.1, 0.4)), 1, &[]),
            ],
        );
        let o = r.order(Instant::now(), &plain());
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![2, 0, 1], "unpriced last");
    }

    #[tokio::test(start_paused = true)]
    async fn cost_weighs_input_against_output_for_this_request() {
        // Cheap input, dear output against the opposite.
        let r = Router::new(
            Strategy::Cost(CostPolicy::default()),
            vec![
                target(Some((0.1, 20.0)), 1, &[]),
                target(Some((5.0, 1.0)), 1, &[]),
            ],
        );
        let long_prompt = RequestInfo {
            body_bytes: 400_000,
            max_tokens: Some(10),
            ..plain()
        };
        assert_eq!(r.order(Instant::now(), &long_prompt).first(), Some(0));
        let long_answer = RequestInfo {
            body_bytes: 400,
            max_tokens: Some(4_000),
            ..plain()
        };
        assert_eq!(r.order(Instant::now(), &long_answer).first(), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn cost_leaves_out_targets_below_the_quality_floor_for_the_task() {
        let r = Router::new(
            Strategy::Cost(CostPolicy {
                quality_floor: Some(0.7),
                ..CostPolicy::default()
            }),
            vec![
                target(Some((10.0, 30.0)), 1, &[("chat", 0.9), ("code", 0.9)]),
                target(Some((0.1, 0.4)), 1, &[("chat", 0.8), ("code", 0.5)]),
                target(Some((0.01, 0.01)), 1, &[]),
            ],
        );
        let chat = r.order(Instant::now(), &plain());
        assert_eq!(chat.iter().collect::<Vec<_>>(), vec![1, 0]);
        let code = RequestInfo {
            task: "code",
            ..plain()
        };
        assert_eq!(
            r.order(Instant::now(), &code).iter().collect::<Vec<_>>(),
            vec![0]
        );
        let unknown = RequestInfo {
            task: "poetry",
            ..plain()
        };
        assert!(r.order(Instant::now(), &unknown).is_empty());
        let why = r.explain(Instant::now(), false, "code");
        assert!(
            why.iter().any(|w| w.reason.contains("below the floor")),
            "{why:?}"
        );
    }

    #[test]
    fn an_order_moves_one_target_to_the_front() {
        let mut o = Order::identity(4);
        o.promote(2);
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![2, 0, 1, 3]);
        assert_eq!(o.get(0), 2);
    }
}
