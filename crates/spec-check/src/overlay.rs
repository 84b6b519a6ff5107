use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use jsonschema::{Draft, Validator};
use serde_json::Value;

use crate::{spec_path, timed};

/// Hand-written JSON Schema overlays for OpenAI-compatible providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overlay {
    DeepSeek,
    Qwen,
}

impl Overlay {
    fn file(self) -> &'static str {
        match self {
            Overlay::DeepSeek => "deepseek/openai-extensions.schema.json",
            Overlay::Qwen => "qwen/openai-extensions.schema.json",
        }
    }
}

type Cache = Mutex<HashMap<(Overlay, String), Arc<Validator>>>;
static VALIDATORS: LazyLock<Cache> = LazyLock::new(Default::default);

/// Validate against `$defs/<def>` of `<specs>/<deepseek|qwen>/openai-extensions.schema.json`
/// (Draft 2020-12). Panics if the file or the definition is missing.
///
/// ```no_run
/// # use switchyard_spec_check::{check_overlay, Overlay};
/// let usage = serde_json::json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
///     "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 1});
/// check_overlay(Overlay::DeepSeek, "Usage", &usage).unwrap();
/// ```
pub fn check_overlay(overlay: Overlay, def: &str, value: &Value) -> Result<(), String> {
    let validator = validator(overlay, def);
    crate::openapi::collect_errors(&validator, value)
}

fn document(overlay: Overlay) -> &'static Value {
    static DOCS: [OnceLock<Value>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = match overlay {
        Overlay::DeepSeek => &DOCS[0],
        Overlay::Qwen => &DOCS[1],
    };
    slot.get_or_init(|| {
        let path = spec_path(overlay.file());
        timed(overlay.file(), || {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("spec-check: cannot read {}: {e}", path.display()));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("spec-check: bad JSON in {}: {e}", path.display()))
        })
    })
}

fn validator(overlay: Overlay, def: &str) -> Arc<Validator> {
    let mut cache = VALIDATORS.lock().unwrap_or_else(|e| e.into_inner());
    let key = (overlay, def.to_owned());
    if let Some(v) = cache.get(&key) {
        return v.clone();
    }
    let mut doc = document(overlay).clone();
    if doc
        .pointer(&format!("/$defs/{}", crate::openapi::escape(def)))
        .is_none()
    {
        panic!("spec-check: no $defs/{def} in {}", overlay.file());
    }
    // The file's relative `$id` would become the base URI; point the root at the def instead.
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("$id");
        obj.insert(
            "$ref".into(),
            Value::String(format!("#/$defs/{}", crate::openapi::escape(def))),
        );
    }
    let built = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .offline()
        .build(&doc)
        .unwrap_or_else(|e| panic!("spec-check: cannot build {overlay:?} $defs/{def}: {e}"));
    let built = Arc::new(built);
    cache.insert(key, built.clone());
    built
}
