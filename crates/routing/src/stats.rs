//! Rolling per-target statistics over a sliding time window: first-token and total latency
//! percentiles, tokens per second, output sizes and failures by class, so routing can follow
//! what a target does now rather than what it did at start-up.
//!
//! The window is a ring of `slices` time slices aligned on the instant the stats were created;
//! a read merges the slices still inside the window, so traffic ages out a slice at a time
//! (the window actually covered is between `window - window / slices` and `window` long).
//!
//! Recording is on the request path of every worker thread, so it must neither contend nor
//! write memory another thread writes. Each thread records into its own shard (a mutex that,
//! with a shard per worker, only that worker and the occasional reader take), which holds just
//! the slice being filled; when the thread moves on to a new slice it folds the finished one
//! into the shared ring. That happens once per slice per thread, and keeps memory at
//! (shards + slices) histograms per kind rather than shards x slices: with 16 workers and 10
//! slices a busy target would otherwise hold 160 histograms of ~13 KB per kind.
//!
//! Latencies are kept in microseconds in HDR histograms with 2 significant figures (under 1%
//! error, far below the noise of a network round trip) up to an hour; longer values count as an
//! hour. A slice's histograms are allocated on its first sample of that kind and reset, not
//! freed, when the slice is reused, so an idle target costs no histogram memory and a busy one
//! allocates only while warming up.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// [`TargetStats::quick`] has no opinion on fewer samples than this in the window: a single
/// slow answer should not steer routing on its own.
pub const QUICK_MIN_SAMPLES: u64 = 5;

/// Streams that generated for less than this are left out of tokens per second: over a short
/// generation the rate is dominated by how the last chunks were batched, not by the target's
/// speed.
pub const TOKENS_PER_SEC_MIN_GENERATION: Duration = Duration::from_millis(200);

/// The longest latency a histogram tells apart (an hour, in microseconds).
const HISTOGRAM_MAX_MICROS: u64 = 3_600_000_000;
/// 2 significant figures: ~13 KB per histogram with u32 counts; 3 would be ~8x that.
const HISTOGRAM_SIGFIG: u8 = 2;
/// The quick cache's "no opinion".
const NO_VALUE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsConfig {
    /// How far back reads look.
    pub window: Duration,
    /// How many slices the window is cut into: more ages traffic out more smoothly, each costs
    /// up to two histograms while it holds samples. At least 1.
    pub slices: u32,
    /// Shards for concurrent recording; the gateway passes its worker count. At least 1.
    pub shards: usize,
    /// How stale [`TargetStats::quick`] may be. Zero recomputes on every call.
    pub refresh: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            window: Duration::from_secs(300),
            slices: 10,
            shards: 1,
            refresh: Duration::from_secs(1),
        }
    }
}

/// One attempt that produced an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    pub streamed: bool,
    /// Streams: request sent to first content. Ignored for non-streamed answers.
    pub ttft: Option<Duration>,
    /// Attempt start to answer complete. Only non-streamed answers' totals are kept: a
    /// stream's total mostly measures how much the model had to say.
    pub total: Duration,
    pub output_tokens: Option<u64>,
    /// Streams: first content to end, for tokens per second.
    pub generation: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantile {
    P50,
    P90,
    P95,
    P99,
}

impl Quantile {
    pub const ALL: [Quantile; 4] = [Quantile::P50, Quantile::P90, Quantile::P95, Quantile::P99];

    pub fn as_f64(self) -> f64 {
        match self {
            Quantile::P50 => 0.5,
            Quantile::P90 => 0.9,
            Quantile::P95 => 0.95,
            Quantile::P99 => 0.99,
        }
    }
}

/// Everything in the window, merged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Answers plus failures.
    pub requests: u64,
    pub answers: u64,
    pub failures: u64,
    /// Sorted by class name; classes with no failures in the window are left out.
    pub failures_by_class: Vec<(&'static str, u64)>,
    /// Failures / requests; 0.0 with no requests.
    pub error_rate: f64,
    /// Streams' first-token latency.
    pub ttft: Option<Percentiles>,
    /// Non-streamed answers' total latency.
    pub total: Option<Percentiles>,
    /// The mean of per-stream rates, over streams that reported output tokens and generated
    /// for at least [`TOKENS_PER_SEC_MIN_GENERATION`].
    pub tokens_per_sec: Option<f64>,
    /// Over answers that reported output tokens.
    pub mean_output_tokens: Option<f64>,
}

/// Each value is the upper edge of its histogram bucket, so within 1% above the exact figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Percentiles {
    pub fn get(&self, q: Quantile) -> Duration {
        match q {
            Quantile::P50 => self.p50,
            Quantile::P90 => self.p90,
            Quantile::P95 => self.p95,
            Quantile::P99 => self.p99,
        }
    }

    fn of(h: &Histogram<u32>) -> Self {
        let mut v = [0u64; 4];
        for (slot, value) in v
            .iter_mut()
            .zip(h.value_at_quantiles(Quantile::ALL.map(Quantile::as_f64)))
        {
            *slot = value;
        }
        Percentiles {
            count: h.len(),
            p50: Duration::from_micros(v[0]),
            p90: Duration::from_micros(v[1]),
            p95: Duration::from_micros(v[2]),
            p99: Duration::from_micros(v[3]),
        }
    }
}

/// Rolling statistics of one target, shared by all worker threads.
#[derive(Debug)]
pub struct TargetStats {
    /// Slices are numbered from here, so slice boundaries are the same for every thread.
    base: Instant,
    slice_micros: u64,
    slices: u64,
    refresh_micros: u64,
    shards: Box<[Shard]>,
    /// Finished slices, at `index % slices`. Lock order: the ring before any shard.
    ring: Mutex<Box<[Slice]>>,
    /// Indexed by [`Kind`].
    quick: [QuickCache; 2],
}

/// One thread's slice in the making, on cache lines of its own so that threads recording into
/// neighbouring shards do not invalidate each other's.
#[derive(Debug)]
#[repr(align(64))]
struct Shard(Mutex<Slice>);

/// [`TargetStats::quick`]'s cached answers for one kind. Read by every request of every
/// thread and written about once per `refresh`, so it is kept off the lines the ring's and
/// shards' locks write.
#[derive(Debug)]
#[repr(align(64))]
struct QuickCache {
    /// Microseconds since `base` at which the values go stale.
    next_refresh: AtomicU64,
    /// Microseconds per [`Quantile`], or [`NO_VALUE`].
    values: [AtomicU64; 4],
}

impl QuickCache {
    fn new() -> Self {
        QuickCache {
            next_refresh: AtomicU64::new(0),
            values: std::array::from_fn(|_| AtomicU64::new(NO_VALUE)),
        }
    }
}

/// Which latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Streams' first token.
    Ttft = 0,
    /// Non-streamed answers' total.
    Total = 1,
}

/// What was recorded during one slice of time.
#[derive(Debug)]
struct Slice {
    /// Which slice of time (since `base`) this holds.
    index: u64,
    ttft: Option<Histogram<u32>>,
    total: Option<Histogram<u32>>,
    answers: u64,
    failures: u64,
    /// Counts are zeroed, not removed, when the slice is reused: the classes are a small
    /// fixed set, and keeping them saves an allocation per slice.
    failures_by_class: Vec<(&'static str, u64)>,
    output_tokens_sum: u64,
    output_tokens_count: u64,
    tokens_per_sec_sum: f64,
    tokens_per_sec_count: u64,
}

impl Slice {
    fn new(index: u64) -> Self {
        Slice {
            index,
            ttft: None,
            total: None,
            answers: 0,
            failures: 0,
            failures_by_class: Vec::new(),
            output_tokens_sum: 0,
            output_tokens_count: 0,
            tokens_per_sec_sum: 0.0,
            tokens_per_sec_count: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.answers == 0 && self.failures == 0
    }

    /// Makes the slice hold `index`, empty, keeping its allocations.
    fn reset(&mut self, index: u64) {
        self.index = index;
        for h in [&mut self.ttft, &mut self.total].into_iter().flatten() {
            h.reset();
        }
        self.answers = 0;
        self.failures = 0;
        for (_, n) in &mut self.failures_by_class {
            *n = 0;
        }
        self.output_tokens_sum = 0;
        self.output_tokens_count = 0;
        self.tokens_per_sec_sum = 0.0;
        self.tokens_per_sec_count = 0;
    }

    fn histogram(&self, kind: Kind) -> Option<&Histogram<u32>> {
        match kind {
            Kind::Ttft => self.ttft.as_ref(),
            Kind::Total => self.total.as_ref(),
        }
    }

    fn add_answer(&mut self, a: &Answered) {
        self.answers += 1;
        if a.streamed {
            if let Some(ttft) = a.ttft {
                record_latency(&mut self.ttft, ttft);
            }
            if let (Some(tokens), Some(generation)) = (a.output_tokens, a.generation) {
                if generation >= TOKENS_PER_SEC_MIN_GENERATION {
                    self.tokens_per_sec_sum += tokens as f64 / generation.as_secs_f64();
                    self.tokens_per_sec_count += 1;
                }
            }
        } else {
            record_latency(&mut self.total, a.total);
        }
        if let Some(tokens) = a.output_tokens {
            self.output_tokens_sum = self.output_tokens_sum.saturating_add(tokens);
            self.output_tokens_count += 1;
        }
    }

    fn add_failures(&mut self, class: &'static str, n: u64) {
        self.failures += n;
        match self.failures_by_class.iter_mut().find(|(c, _)| *c == class) {
            Some((_, count)) => *count += n,
            None => self.failures_by_class.push((class, n)),
        }
    }

    /// Adds this slice's records to `into` (whatever slice it holds).
    fn merge_into(&self, into: &mut Slice) {
        merge_histogram(&mut into.ttft, self.ttft.as_ref());
        merge_histogram(&mut into.total, self.total.as_ref());
        into.answers += self.answers;
        for &(class, n) in &self.failures_by_class {
            if n > 0 {
                into.add_failures(class, n);
            }
        }
        into.output_tokens_sum = into
            .output_tokens_sum
            .saturating_add(self.output_tokens_sum);
        into.output_tokens_count += self.output_tokens_count;
        into.tokens_per_sec_sum += self.tokens_per_sec_sum;
        into.tokens_per_sec_count += self.tokens_per_sec_count;
    }
}

fn new_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

fn record_latency(h: &mut Option<Histogram<u32>>, d: Duration) {
    h.get_or_insert_with(new_histogram)
        .saturating_record(micros(d));
}

/// Allocates `into` only when there is something to add.
fn merge_histogram(into: &mut Option<Histogram<u32>>, from: Option<&Histogram<u32>>) {
    let Some(from) = from.filter(|h| !h.is_empty()) else {
        return;
    };
    // Cannot fail: every histogram here has the same bounds, so none holds a value another
    // cannot.
    let _ = into.get_or_insert_with(new_histogram).add(from);
}

/// Whole microseconds, saturating; without `as_micros`'s 128-bit arithmetic, as this runs on
/// every record.
fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands each recording thread the next index on its first record, so as long as only the
/// worker threads record, worker i records into shard i.
static NEXT_THREAD_INDEX: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn thread_index() -> usize {
    THREAD_INDEX.with(|cell| match cell.get() {
        usize::MAX => {
            let i = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed);
            cell.set(i);
            i
        }
        i => i,
    })
}

impl TargetStats {
    pub fn new(config: StatsConfig) -> Self {
        let slices = u64::from(config.slices.max(1));
        let slice_micros = (micros(config.window) / slices).max(1);
        TargetStats {
            base: Instant::now(),
            slice_micros,
            slices,
            refresh_micros: micros(config.refresh),
            shards: (0..config.shards.max(1))
                .map(|_| Shard(Mutex::new(Slice::new(0))))
                .collect(),
            // Slot i starts as slice i, empty: never newer than a slice that maps to it.
            ring: Mutex::new((0..slices).map(Slice::new).collect()),
            quick: [QuickCache::new(), QuickCache::new()],
        }
    }

    /// An attempt that produced an answer.
    pub fn record_answer(&self, now: Instant, a: &Answered) {
        self.record(now, |s| s.add_answer(a));
    }

    /// A failed attempt; `class` is an error-class name such as "timeout" or "slow_answer".
    pub fn record_failure(&self, now: Instant, class: &'static str) {
        self.record(now, |s| s.add_failures(class, 1));
    }

    /// Everything merged over the window as of `now` (allocates; for /health and strategy
    /// refreshes).
    pub fn summary(&self, now: Instant) -> Summary {
        let mut all = Slice::new(0);
        self.for_each_live(now, |s| s.merge_into(&mut all));
        let requests = all.answers + all.failures;
        let mut failures_by_class: Vec<_> = all
            .failures_by_class
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .collect();
        failures_by_class.sort_unstable_by_key(|&(class, _)| class);
        let mean = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
        Summary {
            requests,
            answers: all.answers,
            failures: all.failures,
            failures_by_class,
            error_rate: if requests == 0 {
                0.0
            } else {
                all.failures as f64 / requests as f64
            },
            ttft: all.ttft.as_ref().map(Percentiles::of),
            total: all.total.as_ref().map(Percentiles::of),
            tokens_per_sec: mean(all.tokens_per_sec_sum, all.tokens_per_sec_count),
            mean_output_tokens: mean(all.output_tokens_sum as f64, all.output_tokens_count),
        }
    }

    /// The given quantile of first-token latency (`streamed`) or of non-streamed total
    /// latency, for ordering targets on every request: atomic loads only.
    ///
    /// The answer is as of the last recompute, at most `refresh` ago: samples recorded since,
    /// and slices aged out since, are not reflected yet. The first caller to find it stale
    /// recomputes (merging the window's histograms of that kind, tens of microseconds) while
    /// the others go on with the stale answer rather than wait. None until the window holds
    /// [`QUICK_MIN_SAMPLES`] samples of that kind, as of the last recompute.
    pub fn quick(&self, now: Instant, streamed: bool, q: Quantile) -> Option<Duration> {
        let kind = if streamed { Kind::Ttft } else { Kind::Total };
        let cache = &self.quick[kind as usize];
        let now_micros = micros(now.saturating_duration_since(self.base));
        let due = cache.next_refresh.load(Ordering::Acquire);
        if now_micros >= due
            && cache
                .next_refresh
                .compare_exchange(
                    due,
                    now_micros.saturating_add(self.refresh_micros),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            && !self.refresh_quick(now, kind, cache)
        {
            // Too few samples to say anything yet: ask again on the next read rather than a
            // whole `refresh` later. A target is in this state only while its traffic is a
            // handful of requests, so the merge this repeats is cheap and rare, and a new
            // target's first slow answers are judged as soon as it has a median.
            cache.next_refresh.store(now_micros, Ordering::Release);
        }
        match cache.values[q as usize].load(Ordering::Acquire) {
            NO_VALUE => None,
            v => Some(Duration::from_micros(v)),
        }
    }

    /// Recomputes the cached quantiles; false when there are too few samples for any.
    fn refresh_quick(&self, now: Instant, kind: Kind, cache: &QuickCache) -> bool {
        let mut merged = None;
        self.for_each_live(now, |s| merge_histogram(&mut merged, s.histogram(kind)));
        let values = match merged {
            Some(h) if h.len() >= QUICK_MIN_SAMPLES => {
                let p = Percentiles::of(&h);
                Quantile::ALL.map(|q| micros(p.get(q)))
            }
            _ => [NO_VALUE; 4],
        };
        for (slot, v) in cache.values.iter().zip(values) {
            slot.store(v, Ordering::Release);
        }
        values[0] != NO_VALUE
    }

    fn slice_of(&self, now: Instant) -> u64 {
        micros(now.saturating_duration_since(self.base)) / self.slice_micros
    }

    /// Whether slice `index` is inside the window that ends in slice `current`. Slices after
    /// `current` count too: another thread's `now` may be a little ahead of the reader's.
    fn live(&self, index: u64, current: u64) -> bool {
        index.saturating_add(self.slices) > current
    }

    fn record(&self, now: Instant, add: impl FnOnce(&mut Slice)) {
        let index = self.slice_of(now);
        let shard = match self.shards.len() {
            1 => &self.shards[0].0,
            n => &self.shards[thread_index() % n].0,
        };
        let mut s = lock(shard);
        // A `now` older than the slice being filled (taken a moment before another record on
        // this shard) lands in that slice: a slice late at most by the delay, rather than a
        // second slice in the making.
        if index > s.index {
            if s.is_empty() {
                s.index = index;
            } else {
                // Lock order: ring, then shard. The finished slice leaves the shard only under
                // both locks, so a reader (who holds the ring while visiting the shards) sees
                // each sample exactly once.
                drop(s);
                let mut ring = lock(&self.ring);
                s = lock(shard);
                // Another thread sharing this shard may have moved it on meanwhile.
                if index > s.index {
                    self.retire(&mut ring, &mut s, index);
                }
            }
        }
        add(&mut s);
    }

    /// Moves the shard's finished slice into the ring and starts slice `current` in it.
    fn retire(&self, ring: &mut [Slice], staged: &mut Slice, current: u64) {
        if !staged.is_empty() && self.live(staged.index, current) {
            let slot = &mut ring[(staged.index % self.slices) as usize];
            if slot.index < staged.index {
                slot.reset(staged.index);
            }
            // A slot already holding a later slice means the staged one has left the window
            // for some thread's clock; it is dropped like any aged-out slice.
            if slot.index == staged.index {
                staged.merge_into(slot);
            }
        }
        staged.reset(current);
    }

    /// Calls `f` with every slice inside the window as of `now`: the ring's and the shards'.
    fn for_each_live(&self, now: Instant, mut f: impl FnMut(&Slice)) {
        let current = self.slice_of(now);
        let ring = lock(&self.ring);
        for s in ring.iter().filter(|s| self.live(s.index, current)) {
            f(s);
        }
        for shard in self.shards.iter() {
            let s = lock(&shard.0);
            if self.live(s.index, current) {
                f(&s);
            }
        }
        drop(ring);
    }
}

impl Default for TargetStats {
    fn default() -> Self {
        TargetStats::new(StatsConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::advance;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stream(ttft: Duration) -> Answered {
        Answered {
            streamed: true,
            ttft: Some(ttft),
            total: ttft + ms(500),
            ..Answered::default()
        }
    }

    fn plain(total: Duration) -> Answered {
        Answered {
            total,
            ..Answered::default()
        }
    }

    /// Within histogram precision: never below the exact value, at most 1% above it.
    fn assert_near(got: Duration, want: Duration) {
        assert!(
            got >= want && got.as_secs_f64() <= want.as_secs_f64() * 1.01,
            "{got:?} is not within 1% above {want:?}"
        );
    }

    /// 10 s in 1 s slices, so tests can step through slices.
    fn small() -> StatsConfig {
        StatsConfig {
            window: Duration::from_secs(10),
            ..StatsConfig::default()
        }
    }

    #[test]
    fn is_shareable_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<TargetStats>();
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_recorded_is_an_empty_summary() {
        let stats = TargetStats::default();
        let now = Instant::now();
        assert_eq!(stats.summary(now), Summary::default());
        assert_eq!(stats.quick(now, true, Quantile::P50), None);
    }

    #[tokio::test(start_paused = true)]
    async fn percentiles_of_known_samples() {
        let stats = TargetStats::default();
        let now = Instant::now();
        for i in 1..=100 {
            stats.record_answer(now, &plain(ms(i)));
            stats.record_answer(now, &stream(ms(10 * i)));
        }
        let s = stats.summary(now);
        let total = s.total.expect("non-streamed answers were recorded");
        assert_eq!(total.count, 100);
        assert_near(total.p50, ms(50));
        assert_near(total.p90, ms(90));
        assert_near(total.p95, ms(95));
        assert_near(total.p99, ms(99));
        let ttft = s.ttft.expect("streams were recorded");
        assert_eq!(ttft.count, 100);
        assert_near(ttft.p50, ms(500));
        assert_near(ttft.p99, ms(990));
        assert_eq!(s.answers, 200);
        // Streams' totals are not in the total latency, and nothing is lost to the cap: an
        // hour and more counts as an hour.
        stats.record_answer(now, &plain(Duration::from_secs(7200)));
        let total = stats.summary(now).total.unwrap();
        assert_eq!(total.count, 101);
        assert_near(total.p50, ms(51));
    }

    #[tokio::test(start_paused = true)]
    async fn samples_older_than_the_window_age_out() {
        let stats = TargetStats::new(small());
        stats.record_answer(Instant::now(), &plain(ms(100)));
        advance(Duration::from_secs(5)).await;
        stats.record_answer(Instant::now(), &plain(ms(200)));
        assert_eq!(stats.summary(Instant::now()).answers, 2);
        // The first sample's slice (0) leaves the window when slice 10 begins.
        advance(ms(4_999)).await;
        assert_eq!(stats.summary(Instant::now()).answers, 2);
        advance(ms(1)).await;
        let s = stats.summary(Instant::now());
        assert_eq!(s.answers, 1);
        assert_near(s.total.unwrap().p50, ms(200));
        advance(Duration::from_secs(5)).await;
        assert_eq!(stats.summary(Instant::now()), Summary::default());
    }

    /// Slices are recycled by position; a reused slot must hold nothing of its old slice.
    #[tokio::test(start_paused = true)]
    async fn a_reused_slice_does_not_leak_old_counts() {
        let stats = TargetStats::new(small());
        for _ in 0..50 {
            stats.record_answer(Instant::now(), &plain(Duration::from_secs(1)));
            stats.record_failure(Instant::now(), "timeout");
        }
        // Moving on to slice 1 retires slice 0 into the ring.
        advance(Duration::from_secs(1)).await;
        stats.record_failure(Instant::now(), "rate_limited");
        // Slice 10 takes slot 0 again; slice 11 retires it there.
        advance(Duration::from_secs(9)).await;
        stats.record_answer(Instant::now(), &plain(ms(10)));
        advance(Duration::from_secs(1)).await;
        stats.record_answer(Instant::now(), &plain(ms(20)));
        let s = stats.summary(Instant::now());
        assert_eq!((s.answers, s.failures), (2, 0));
        assert!(s.failures_by_class.is_empty());
        let total = s.total.unwrap();
        assert_eq!(total.count, 2);
        assert_near(total.p99, ms(20));
    }

    /// One answer a second for three windows: the window always holds the last ten.
    #[tokio::test(start_paused = true)]
    async fn a_steady_trickle_keeps_one_window_of_samples() {
        let stats = TargetStats::new(small());
        for second in 0..35u64 {
            stats.record_answer(Instant::now(), &plain(ms(second + 1)));
            let s = stats.summary(Instant::now());
            assert_eq!(s.answers, (second + 1).min(10), "at {second} s");
            assert_eq!(s.total.unwrap().count, s.answers);
            advance(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn error_rate_and_failures_by_class() {
        let stats = TargetStats::default();
        let now = Instant::now();
        for _ in 0..3 {
            stats.record_answer(now, &plain(ms(5)));
        }
        stats.record_failure(now, "timeout");
        stats.record_failure(now, "slow_answer");
        stats.record_failure(now, "timeout");
        let s = stats.summary(now);
        assert_eq!((s.requests, s.answers, s.failures), (6, 3, 3));
        assert_eq!(s.error_rate, 0.5);
        assert_eq!(
            s.failures_by_class,
            vec![("slow_answer", 1), ("timeout", 2)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_sec_is_the_mean_over_long_enough_streams() {
        let stats = TargetStats::default();
        let now = Instant::now();
        let gen = |tokens, generation| Answered {
            output_tokens: Some(tokens),
            generation: Some(generation),
            ..stream(ms(100))
        };
        stats.record_answer(now, &gen(100, Duration::from_secs(1))); // 100/s
        stats.record_answer(now, &gen(300, Duration::from_secs(2))); // 150/s
        stats.record_answer(now, &gen(1_000, ms(199))); // too short to judge
        stats.record_answer(
            now,
            &Answered {
                output_tokens: Some(50),
                ..plain(ms(900))
            },
        );
        stats.record_answer(now, &stream(ms(100))); // no usage reported
        let s = stats.summary(now);
        assert_eq!(s.tokens_per_sec, Some(125.0));
        assert_eq!(
            s.mean_output_tokens,
            Some((100 + 300 + 1_000 + 50) as f64 / 4.0)
        );
        let none = TargetStats::default();
        none.record_answer(now, &stream(ms(100)));
        assert_eq!(none.summary(now).tokens_per_sec, None);
        assert_eq!(none.summary(now).mean_output_tokens, None);
    }

    #[tokio::test(start_paused = true)]
    async fn quick_is_stale_for_at_most_refresh() {
        let stats = TargetStats::default();
        for _ in 0..5 {
            stats.record_answer(Instant::now(), &stream(ms(100)));
        }
        assert_near(
            stats.quick(Instant::now(), true, Quantile::P50).unwrap(),
            ms(100),
        );
        for _ in 0..20 {
            stats.record_answer(Instant::now(), &stream(Duration::from_secs(1)));
        }
        assert_near(
            stats.quick(Instant::now(), true, Quantile::P50).unwrap(),
            ms(100),
        );
        advance(ms(999)).await;
        assert_near(
            stats.quick(Instant::now(), true, Quantile::P50).unwrap(),
            ms(100),
        );
        advance(ms(1)).await;
        let now = Instant::now();
        assert_near(
            stats.quick(now, true, Quantile::P50).unwrap(),
            Duration::from_secs(1),
        );
        assert_near(
            stats.quick(now, true, Quantile::P90).unwrap(),
            Duration::from_secs(1),
        );
        // The other kind has its own samples, and none yet.
        assert_eq!(stats.quick(now, false, Quantile::P50), None);
    }

    #[tokio::test(start_paused = true)]
    async fn quick_needs_min_samples() {
        let stats = TargetStats::default();
        for _ in 0..QUICK_MIN_SAMPLES - 1 {
            stats.record_answer(Instant::now(), &plain(ms(40)));
        }
        assert_eq!(stats.quick(Instant::now(), false, Quantile::P99), None);
        stats.record_answer(Instant::now(), &plain(ms(40)));
        // Enough now, and seen at once: while there were too few, every read looks again.
        assert_near(
            stats.quick(Instant::now(), false, Quantile::P99).unwrap(),
            ms(40),
        );
        // Aged out, and seen at the next refresh after.
        advance(Duration::from_secs(300)).await;
        assert_eq!(stats.quick(Instant::now(), false, Quantile::P99), None);
    }

    /// Threads record into their own shards, across slice boundaries (each thread retires
    /// its slices while the other records), and all of it is counted once.
    #[tokio::test(start_paused = true)]
    async fn records_from_several_threads_are_all_counted() {
        let stats = Arc::new(TargetStats::new(StatsConfig {
            shards: 2,
            ..small()
        }));
        let start = Instant::now();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let now = start + ms(i);
                        stats.record_answer(now, &plain(ms(10)));
                        if i % 2 == 0 {
                            stats.record_failure(now, "timeout");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = stats.summary(start + ms(5_000));
        assert_eq!((s.answers, s.failures), (15_000, 7_500));
        assert_eq!(s.total.unwrap().count, 15_000);
        assert_eq!(s.failures_by_class, vec![("timeout", 7_500)]);
    }

    /// A `now` taken before the shard moved on still counts.
    #[tokio::test(start_paused = true)]
    async fn a_late_now_still_counts() {
        let stats = TargetStats::new(small());
        let early = Instant::now();
        advance(Duration::from_secs(3)).await;
        stats.record_answer(Instant::now(), &plain(ms(10)));
        stats.record_answer(early, &plain(ms(10)));
        assert_eq!(stats.summary(Instant::now()).answers, 2);
    }
}
