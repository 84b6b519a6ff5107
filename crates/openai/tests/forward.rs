//! `forward::forwardable`: a body it lets through unchanged must be one the canonical path
//! accepts, and must already say everything the canonical path would have written.

use std::path::PathBuf;

use serde_json::Value;
use switchyard_openai::{forward::forwardable, response};

fn fixture_answers() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/openai");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures/openai") {
        let case = entry.expect("fixture entry").path();
        let file = case.join("response.json");
        if let Ok(body) = std::fs::read(&file) {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, body));
        }
    }
    out.sort();
    assert!(
        out.len() >= 5,
        "expected the OpenAI answer fixtures in {dir:?}"
    );
    out
}

fn plain_answer() -> Vec<u8> {
    let all = fixture_answers();
    all.into_iter().find(|(n, _)| n == "plain").unwrap().1
}

/// `encoded` (what the canonical path writes) is contained in `native`: every field it has is
/// in `native` with the same value, a `null` matching an absent field.
fn covered(encoded: &Value, native: Option<&Value>, at: &str) -> Result<(), String> {
    match (encoded, native) {
        (Value::Null, None | Some(Value::Null)) => Ok(()),
        (Value::Object(e), Some(Value::Object(n))) => e
            .iter()
            .try_for_each(|(k, v)| covered(v, n.get(k), &format!("{at}.{k}"))),
        (Value::Array(e), Some(Value::Array(n))) if e.len() == n.len() => e
            .iter()
            .zip(n)
            .enumerate()
            .try_for_each(|(i, (ev, nv))| covered(ev, Some(nv), &format!("{at}[{i}]"))),
        (e, Some(n)) if e == n => Ok(()),
        (e, n) => Err(format!(
            "{at}: the canonical path writes {e}, the body has {n:?}"
        )),
    }
}

/// The two properties, for one body. Returns whether it was forwardable.
fn check(name: &str, body: &[u8]) -> bool {
    if !forwardable(body) {
        return false;
    }
    let parsed = response::from_native(body).unwrap_or_else(|e| {
        panic!(
            "{name}: forwardable, but the canonical path rejects it ({e}):\n{}",
            String::from_utf8_lossy(body)
        )
    });
    let encoded: Value = serde_json::from_slice(&response::encode(&parsed)).unwrap();
    let native: Value = serde_json::from_slice(body).unwrap();
    if let Err(e) = covered(&encoded, Some(&native), "$") {
        panic!(
            "{name}: forwardable, but the client would see something else: {e}\n{}",
            String::from_utf8_lossy(body)
        );
    }
    true
}

#[test]
fn real_answers_are_forwarded_and_say_what_the_canonical_path_says() {
    let mut forwarded = Vec::new();
    for (name, body) in fixture_answers() {
        if check(&name, &body) {
            forwarded.push(name);
        }
    }
    // These are ordinary OpenAI answers: the fast path must take them.
    for must in [
        "plain",
        "tools",
        "parallel_tools",
        "usage_cached_reasoning",
        "refusal",
    ] {
        assert!(
            forwarded.iter().any(|n| n == must),
            "{must} was not forwardable; forwarded: {forwarded:?}"
        );
    }
}

/// Every field of every fixture removed, nulled, or given a value of another type: whatever
/// the check lets through must still pass both properties.
#[test]
fn broken_answers_are_never_forwarded_wrongly() {
    let replacements = [
        None,
        Some(Value::Null),
        Some(Value::from(7)),
        Some(Value::from(-1)),
        Some(Value::from("x")),
        Some(Value::from("")),
        Some(Value::Array(vec![])),
        Some(serde_json::json!([1, 2, 3])),
        Some(serde_json::json!(["assistant", "x", "function", "stop"])),
        Some(serde_json::json!({})),
    ];
    let (mut forwarded, mut refused) = (0, 0);
    for (name, body) in fixture_answers() {
        let original: Value = serde_json::from_slice(&body).unwrap();
        for path in paths(&original, Vec::new()) {
            for r in &replacements {
                let mut v = original.clone();
                set(&mut v, &path, r.clone());
                let bytes = serde_json::to_vec(&v).unwrap();
                if check(&format!("{name} with {path:?} = {r:?}"), &bytes) {
                    forwarded += 1;
                } else {
                    refused += 1;
                }
            }
        }
    }
    // Both outcomes happen, so the property above was exercised both ways.
    assert!(
        forwarded > 50 && refused > 500,
        "{forwarded} forwarded, {refused} refused"
    );
}

#[test]
fn what_the_encoder_would_fill_in_takes_the_canonical_path() {
    let plain = plain_answer();
    let base: Value = serde_json::from_slice(&plain).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 8] = [
        ("no id", |v| v["id"] = "".into()),
        ("no created", |v| v["created"] = 0.into()),
        ("no object", |v| {
            v.as_object_mut().unwrap().remove("object");
        }),
        ("no role", |v| {
            v["choices"][0]["message"]
                .as_object_mut()
                .unwrap()
                .remove("role");
        }),
        ("unknown finish reason", |v| {
            v["choices"][0]["finish_reason"] = "eos".into()
        }),
        ("no finish reason", |v| {
            v["choices"][0]["finish_reason"] = Value::Null
        }),
        ("legacy function_call", |v| {
            v["choices"][0]["message"]["function_call"] =
                serde_json::json!({"name": "f", "arguments": "{}"})
        }),
        ("usage total of 0", |v| {
            v["usage"]["total_tokens"] = 0.into()
        }),
    ];
    for (what, edit) in cases {
        let mut v = base.clone();
        edit(&mut v);
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(!forwardable(&bytes), "{what}: should not be forwarded");
        assert!(response::from_native(&bytes).is_ok(), "{what}: still valid");
    }
}

#[test]
fn bytes_that_are_not_one_json_answer_are_not_forwarded() {
    let plain = plain_answer();
    assert!(forwardable(&plain));
    let mut trailing = plain.clone();
    trailing.extend_from_slice(b" {}");
    let cases: [&[u8]; 4] = [&plain[..plain.len() / 2], &trailing, b"", b"null"];
    for body in cases {
        assert!(!forwardable(body), "{}", String::from_utf8_lossy(body));
    }
    // Escapes in the text are fine: the client gets them as they were.
    let escaped = String::from_utf8(plain).unwrap().replacen(
        "\"content\": \"",
        "\"content\": \"line\\none \\u00e9 \\\"q\\\" ",
        1,
    );
    assert!(escaped.contains("\\n"), "the fixture's content moved");
    assert!(check("escaped", escaped.as_bytes()));
}

/// Every path to a value inside `v` (object keys and array indices).
fn paths(v: &Value, at: Vec<Step>) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = at.clone();
                p.push(Step::Key(k.clone()));
                out.push(p.clone());
                out.extend(paths(child, p));
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(Step::Index(i));
                out.push(p.clone());
                out.extend(paths(child, p));
            }
        }
        _ => {}
    }
    out
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Replaces (or with `None`, removes) the value at `path`.
fn set(v: &mut Value, path: &[Step], to: Option<Value>) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for step in parents {
        cur = match step {
            Step::Key(k) => &mut cur[k.as_str()],
            Step::Index(i) => &mut cur[*i],
        };
    }
    match (last, to) {
        (Step::Key(k), Some(x)) => cur[k.as_str()] = x,
        (Step::Key(k), None) => {
            cur.as_object_mut().unwrap().remove(k);
        }
        (Step::Index(i), Some(x)) => cur[*i] = x,
        (Step::Index(i), None) => {
            cur.as_array_mut().unwrap().remove(*i);
        }
    }
}
