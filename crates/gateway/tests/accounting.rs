//! The bill for each provider's own usage report: a fixture answer through its provider's
//! translation, then through the cost arithmetic, against figures worked out by hand. Cached
//! input is billed at the cache-read price, cache writes at the cache-write price, reasoning
//! as output.

use switchyard_routing::cost::{cost_of, Price};

const PRICE: Price = Price {
    input_per_mtok: 1.0,
    output_per_mtok: 10.0,
    cache_read_per_mtok: Some(0.1),
    cache_write_per_mtok: Some(2.0),
};

fn bill(provider: &str, fixture: &str) -> f64 {
    let path = format!(
        "{}/../../fixtures/{provider}/{fixture}/response.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (p, _) = switchyard_gateway::providers::get(provider).expect("compiled in");
    let response = p.parse_response(&body).expect("the fixture parses");
    cost_of(&response.usage.expect("usage"), &PRICE)
}

fn assert_usd(got: f64, want_micro_usd: f64) {
    let want = want_micro_usd / 1e6;
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn openai_cached_input_and_reasoning() {
    // 2048 prompt tokens of which 1920 cached; 530 completion tokens of which 512 reasoning.
    assert_usd(
        bill("openai", "usage_cached_reasoning"),
        128.0 + 1920.0 * 0.1 + 530.0 * 10.0,
    );
}

#[test]
fn anthropic_cache_reads_and_writes() {
    // Anthropic reports input without the cache: 12 fresh, 8000 read, 2000 written; 50 out.
    assert_usd(
        bill("anthropic", "cache_usage"),
        12.0 + 8000.0 * 0.1 + 2000.0 * 2.0 + 50.0 * 10.0,
    );
}

#[test]
fn gemini_cached_content_and_thoughts() {
    // 2100 prompt tokens of which 2048 cached; 40 candidate tokens plus 300 thought tokens.
    assert_usd(
        bill("gemini", "usage_cache_thoughts"),
        52.0 + 2048.0 * 0.1 + 340.0 * 10.0,
    );
}

#[test]
fn deepseek_cache_hits_and_reasoning() {
    // 64 prompt tokens, 40 of them cache hits; 120 completion tokens, 100 of them reasoning.
    assert_usd(
        bill("deepseek", "reasoning"),
        24.0 + 40.0 * 0.1 + 120.0 * 10.0,
    );
}
