//! Test support: validate JSON against the providers' official specs in `/work/shared/specs`.
//!
//! Use it only as a dev-dependency. The specs are never copied into the repository; they are
//! found through [`specs_dir`]. Every spec test should start with [`require_specs!`], so that a
//! checkout without the specs skips (printing why) while CI (`CI=true`) fails loudly.
//!
//! Setup problems (specs missing inside a check, unknown schema or message name, a validator that
//! cannot be built) panic instead of returning `Err`: otherwise a typo in a schema name would
//! make [`assert_invalid`] pass for the wrong reason.
//!
//! # OpenAPI specs (OpenAI, Anthropic, Mistral)
//!
//! ```no_run
//! use serde_json::json;
//! use switchyard_spec_check::{assert_valid, check, unknown_keys, Api};
//!
//! switchyard_spec_check::require_specs!();
//! let req = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
//! assert_valid(Api::OpenAi, "CreateChatCompletionRequest", &req);
//! assert!(check(Api::OpenAi, "CreateChatCompletionRequest", &json!({"model": "x"})).is_err());
//! // The chat schemas are open, so typos need their own check.
//! assert!(unknown_keys(Api::OpenAi, "CreateChatCompletionRequest", &req).is_empty());
//! ```
//!
//! # Gemini (protos)
//!
//! ```no_run
//! use serde_json::json;
//! use switchyard_spec_check::{assert_valid_gemini, check_gemini, check_gemini_error};
//!
//! switchyard_spec_check::require_specs!();
//! const REQ: &str = "google.ai.generativelanguage.v1beta.GenerateContentRequest";
//! assert_valid_gemini(REQ, &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}));
//! assert!(check_gemini(REQ, &json!({"systemInstructions": {}}), true).is_err());
//! let err = json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}});
//! assert!(check_gemini_error(&err).is_ok());
//! ```
//!
//! # DeepSeek / Qwen overlays
//!
//! ```no_run
//! use serde_json::json;
//! use switchyard_spec_check::{check_overlay, Overlay};
//!
//! switchyard_spec_check::require_specs!();
//! let usage = json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5});
//! assert!(check_overlay(Overlay::DeepSeek, "Usage", &usage).is_ok());
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod gemini;
mod openapi;
mod overlay;

pub use gemini::{assert_valid_gemini, check_gemini, check_gemini_error};
pub use openapi::{assert_invalid, assert_valid, check, unknown_keys, Api};
pub use overlay::{check_overlay, Overlay};

/// The specs folder: env `SWITCHYARD_SPECS`, else `<workspace root>/../shared/specs`.
///
/// When the folder is missing this panics if env `CI` is `"true"`; otherwise it prints once
/// `spec-check: specs not found at <path>; skipping spec validation` to stderr and returns `None`.
///
/// ```no_run
/// if let Some(dir) = switchyard_spec_check::specs_dir() {
///     assert!(dir.join("openai/openapi.yaml").is_file());
/// }
/// ```
pub fn specs_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let path = match std::env::var_os("SWITCHYARD_SPECS") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs"),
        };
        if path.is_dir() {
            return Some(path.canonicalize().unwrap_or(path));
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "spec-check: specs not found at {} (CI=true)",
                path.display()
            );
        }
        eprintln!(
            "spec-check: specs not found at {}; skipping spec validation",
            path.display()
        );
        None
    })
    .as_deref()
}

/// Early-return from a test when the specs are absent (and not in CI).
///
/// ```no_run
/// #[test]
/// fn request_matches_spec() {
///     switchyard_spec_check::require_specs!();
///     // ... checks ...
/// }
/// ```
#[macro_export]
macro_rules! require_specs {
    () => {
        if $crate::specs_dir().is_none() {
            return;
        }
    };
}

/// Path of a spec file, panicking when the specs are absent (the caller forgot `require_specs!`).
pub(crate) fn spec_path(rel: &str) -> PathBuf {
    match specs_dir() {
        Some(dir) => dir.join(rel),
        None => panic!(
            "spec-check: specs not found; call switchyard_spec_check::require_specs!() first"
        ),
    }
}

/// Loads and reports how long it took, so slow spec loading shows up in `--nocapture` runs.
pub(crate) fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    eprintln!("spec-check: loaded {what} in {:?}", start.elapsed());
    out
}
