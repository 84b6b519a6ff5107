//! `switchyard demo`: the gateway on its embedded default config, in front of three mock
//! providers (OpenAI, Anthropic and Gemini wire formats), the primary of which is failing.
//! No API key needed.

use switchyard_sim::{Fault, FaultRule, MockConfig, MockProvider, Wire};

use crate::config::{self, Config};

/// The embedded default. `{openai}`, `{anthropic}` and `{gemini}` become the mocks' URLs.
pub const DEMO_CONFIG: &str = include_str!("demo.toml");

pub struct Demo {
    pub mocks: Vec<MockProvider>,
    pub config: Config,
}

/// Starts the mocks and returns the config that points at them. The OpenAI-format primary
/// fails its next 3 requests with 503 (enough to open its
/// breaker), then recovers, so the half-open probe after the cool-down brings it back.
pub async fn start(listen: &str) -> Result<Demo, String> {
    let mut mocks = Vec::new();
    for (wire, name) in [
        (Wire::OpenAi, "openai-mock"),
        (Wire::Anthropic, "anthropic-mock"),
        (Wire::Gemini, "gemini-mock"),
    ] {
        let mut c = MockConfig::new(wire, name);
        c.chunk_delay = std::time::Duration::from_millis(30);
        mocks.push(
            MockProvider::start(c)
                .await
                .map_err(|e| format!("cannot start the {name} mock provider: {e}"))?,
        );
    }
    mocks[0].push_fault(FaultRule::next(
        Fault::Status {
            status: 503,
            retry_after_s: None,
            code: None,
        },
        3,
    ));
    let text = DEMO_CONFIG
        .replace("{listen}", listen)
        .replace("{openai}", &mocks[0].url())
        .replace("{anthropic}", &mocks[1].url())
        .replace("{gemini}", &mocks[2].url());
    let config =
        config::parse(&text, "embedded demo config", &|_| None).map_err(|e| e.to_string())?;
    Ok(Demo { mocks, config })
}

/// What to try, for the gateway at `url` whose failing primary mock is at `primary`.
pub fn instructions(url: &str, primary: &str) -> String {
    format!(
        r#"Switchyard demo gateway on {url}
Model "demo": openai-mock (primary, failing its next 3 requests with 503) -> anthropic-mock -> gemini-mock.

Send a request (repeat it: the first ones fail over, then the breaker opens and the primary is
skipped for 10 s, then a half-open probe brings it back):
  curl -si {url}/v1/chat/completions -H 'content-type: application/json' \
    -d '{{"model":"demo","messages":[{{"role":"user","content":"Hello!"}}]}}'

Stream it:
  curl -sN {url}/v1/chat/completions -H 'content-type: application/json' \
    -d '{{"model":"demo","stream":true,"messages":[{{"role":"user","content":"Hello!"}}]}}'

Watch: the x-switchyard-target and x-switchyard-attempts response headers, and
  curl -s {url}/health        (each target's breaker state)
Inject faults into the primary yourself:
  curl -s {primary}/_mock/faults -d '{{"fault":{{"kind":"status","status":429,"retry_after_s":1}},"count":3}}'
"#
    )
}
