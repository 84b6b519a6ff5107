use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use jsonschema::{Draft, Registry, Validator};
use serde_json::{json, Map, Value};

use crate::{spec_path, timed};

/// A provider with an OpenAPI document in the specs folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// `openai/openapi.yaml`
    OpenAi,
    /// `anthropic/openapi.json`
    Anthropic,
    /// `mistral/openapi.yaml`
    Mistral,
}

impl Api {
    const ALL: [Api; 3] = [Api::OpenAi, Api::Anthropic, Api::Mistral];

    fn file(self) -> &'static str {
        match self {
            Api::OpenAi => "openai/openapi.yaml",
            Api::Anthropic => "anthropic/openapi.json",
            Api::Mistral => "mistral/openapi.yaml",
        }
    }

    fn uri(self) -> &'static str {
        match self {
            Api::OpenAi => "urn:switchyard:openai",
            Api::Anthropic => "urn:switchyard:anthropic",
            Api::Mistral => "urn:switchyard:mistral",
        }
    }

    fn index(self) -> usize {
        Api::ALL.iter().position(|a| *a == self).unwrap_or(0)
    }
}

struct Spec {
    doc: &'static Value,
    registry: Registry<'static>,
}

fn spec(api: Api) -> &'static Spec {
    static SPECS: [OnceLock<Spec>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    SPECS[api.index()].get_or_init(|| load(api))
}

fn load(api: Api) -> Spec {
    let path = spec_path(api.file());
    let doc: Value = timed(&format!("{} (parse)", api.file()), || {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("spec-check: cannot read {}: {e}", path.display()));
        // serde_yaml & co. reject OpenAI's `seed.minimum` (past i64); serde-saphyr reads it as f64.
        if api.file().ends_with(".json") {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("spec-check: {}: {e}", api.file()))
        } else {
            serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("spec-check: {}: {e}", api.file()))
        }
    });
    timed(&format!("{} (rewrite + registry)", api.file()), || {
        index(api, doc)
    })
}

fn index(api: Api, mut doc: Value) -> Spec {
    rewrite_openapi30(&mut doc);
    // Leaked on purpose: test-process lifetime, and the registry borrows it.
    let doc: &'static Value = Box::leak(Box::new(doc));
    let registry = Registry::new()
        .draft(Draft::Draft202012)
        .add(api.uri(), Draft::Draft202012.create_resource_ref(doc))
        .and_then(|b| b.prepare())
        .unwrap_or_else(|e| panic!("spec-check: registry for {}: {e}", api.file()));
    Spec { doc, registry }
}

/// Turns OpenAPI 3.0 keywords that JSON Schema ignores or rejects into their 2020-12 forms.
fn rewrite_openapi30(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(rewrite_openapi30),
        Value::Object(obj) => {
            obj.values_mut().for_each(rewrite_openapi30);
            fix_exclusive(obj, "exclusiveMinimum", "minimum");
            fix_exclusive(obj, "exclusiveMaximum", "maximum");
            if let Some(Value::Bool(nullable)) = obj.get("nullable") {
                let nullable = *nullable;
                obj.remove("nullable");
                if nullable {
                    make_nullable(obj);
                }
            }
        }
        _ => {}
    }
}

fn make_nullable(obj: &mut Map<String, Value>) {
    let null = Value::String("null".into());
    if ["$ref", "oneOf", "anyOf", "allOf"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        let inner = std::mem::take(obj);
        obj.insert(
            "anyOf".into(),
            json!([Value::Object(inner), {"type": "null"}]),
        );
        return;
    }
    match obj.get_mut("type") {
        Some(Value::String(t)) => {
            let t = Value::String(std::mem::take(t));
            obj.insert("type".into(), Value::Array(vec![t, null]));
        }
        Some(Value::Array(types)) if !types.contains(&null) => types.push(null),
        _ => {}
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
}

/// 3.0 `exclusiveMinimum: true` + `minimum: n` becomes 2020-12 `exclusiveMinimum: n`.
fn fix_exclusive(obj: &mut Map<String, Value>, exclusive: &str, bound: &str) {
    match obj.get(exclusive) {
        Some(Value::Bool(true)) => {
            obj.remove(exclusive);
            if let Some(n) = obj.remove(bound) {
                obj.insert(exclusive.into(), n);
            }
        }
        Some(Value::Bool(false)) => {
            obj.remove(exclusive);
        }
        _ => {}
    }
}

/// JSON Pointer escaping for one reference token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn schema_node(api: Api, schema: &str) -> &'static Value {
    spec(api)
        .doc
        .pointer(&format!("/components/schemas/{}", escape(schema)))
        .unwrap_or_else(|| {
            panic!(
                "spec-check: no #/components/schemas/{schema} in {}",
                api.file()
            )
        })
}

type Cache = Mutex<HashMap<(Api, String), Arc<Validator>>>;
static VALIDATORS: LazyLock<Cache> = LazyLock::new(Default::default);

fn validator(api: Api, schema: &str) -> Arc<Validator> {
    let key = (api, schema.to_owned());
    if let Some(v) = VALIDATORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return v.clone();
    }
    schema_node(api, schema);
    let spec = spec(api);
    let root = json!({"$ref": format!("{}#/components/schemas/{}", api.uri(), escape(schema))});
    let built = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(&spec.registry)
        .offline()
        .build(&root)
        .unwrap_or_else(|e| panic!("spec-check: cannot build {api:?} {schema}: {e}"));
    let built = Arc::new(built);
    let mut cache = VALIDATORS.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(key).or_insert(built).clone()
}

pub(crate) fn collect_errors(validator: &Validator, value: &Value) -> Result<(), String> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            format!("{path}: {e}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Validate `value` against `#/components/schemas/<schema>` of that API's OpenAPI document.
///
/// `Err` lists every error, one per line, as `<instance path>: <message>`. Documents are loaded
/// once and validators built once per `(api, schema)`. Panics if the schema does not exist.
///
/// ```no_run
/// # use switchyard_spec_check::{check, Api};
/// let bad = serde_json::json!({"model": "gpt-4o"});
/// let err = check(Api::OpenAi, "CreateChatCompletionRequest", &bad).unwrap_err();
/// assert!(err.contains("messages"));
/// ```
pub fn check(api: Api, schema: &str, value: &Value) -> Result<(), String> {
    collect_errors(&validator(api, schema), value)
}

/// Panics with the errors and the pretty-printed JSON unless `value` is valid.
///
/// ```no_run
/// # use switchyard_spec_check::{assert_valid, Api};
/// let usage = serde_json::json!({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3});
/// assert_valid(Api::OpenAi, "CompletionUsage", &usage);
/// ```
pub fn assert_valid(api: Api, schema: &str, value: &Value) {
    if let Err(errors) = check(api, schema, value) {
        panic!(
            "{api:?} {schema}: expected valid, got:\n{errors}\n--- value ---\n{}",
            pretty(value)
        );
    }
}

/// Panics with the pretty-printed JSON if `value` is valid.
///
/// ```no_run
/// # use switchyard_spec_check::{assert_invalid, Api};
/// let req = serde_json::json!({"model": "m", "messages": [], "temperature": "hot"});
/// assert_invalid(Api::OpenAi, "CreateChatCompletionRequest", &req);
/// ```
pub fn assert_invalid(api: Api, schema: &str, value: &Value) {
    if check(api, schema, value).is_ok() {
        panic!(
            "{api:?} {schema}: expected invalid, but it passed:\n{}",
            pretty(value)
        );
    }
}

pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Top-level keys of `value` that are not in the schema's `properties`, following `$ref` and
/// `allOf` (the OpenAPI chat schemas are open, so typos like `max_tokenz` would pass `check`).
///
/// ```no_run
/// # use switchyard_spec_check::{unknown_keys, Api};
/// let req = serde_json::json!({"model": "m", "messages": [], "max_tokenz": 5});
/// assert_eq!(unknown_keys(Api::OpenAi, "CreateChatCompletionRequest", &req), ["max_tokenz"]);
/// ```
pub fn unknown_keys(api: Api, schema: &str, value: &Value) -> Vec<String> {
    let mut known = BTreeSet::new();
    collect_properties(spec(api).doc, schema_node(api, schema), &mut known, 0);
    match value {
        Value::Object(obj) => obj
            .keys()
            .filter(|k| !known.contains(k.as_str()))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

fn collect_properties<'a>(doc: &'a Value, node: &'a Value, out: &mut BTreeSet<&'a str>, depth: u8) {
    // Guards against $ref cycles; real schemas nest two or three levels.
    if depth > 8 {
        return;
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        out.extend(props.keys().map(String::as_str));
    }
    if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| doc.pointer(p))
    {
        collect_properties(doc, target, out, depth + 1);
    }
    for part in node
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect_properties(doc, part, out, depth + 1);
    }
}
