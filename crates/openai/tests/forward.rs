//! `forward::forwardable`: a body it lets through unchanged must be one the canonical path
//! accepts, and must already say everything the canonical path would have written.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use switchyard_openai::forward::{checked, forwardable, quick_sure};
use switchyard_openai::response;

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

/// The quick reader says yes only where the serde reader does.
fn quick_agrees(name: &str, body: &[u8]) -> Result<(), String> {
    if quick_sure(body) && !std::str::from_utf8(body).is_ok_and(checked) {
        return Err(format!(
            "{name}: the quick reader forwards what the serde reader refuses:\n{}",
            String::from_utf8_lossy(body)
        ));
    }
    Ok(())
}

/// The two properties, for one body. Returns whether it was forwardable.
fn check(name: &str, body: &[u8]) -> bool {
    if let Err(e) = quick_agrees(name, body) {
        panic!("{e}");
    }
    if !forwardable(body) {
        return false;
    }
    let parsed = response::from_native(body).unwrap_or_else(|e| {
        panic!(
            "{name}: forwardable, but the canonical path rejects it ({e}):\n{}",
            String::from_utf8_lossy(body)
        )
    });
    // The usage the check reads on the way is the canonical path's (without the native
    // object), from both readers.
    let mut expected = parsed.usage.clone();
    if let Some(u) = expected.as_mut() {
        u.native = None;
    }
    let read = switchyard_openai::forward::check(body).expect("forwardable");
    assert_eq!(read, expected, "{name}: usage read by the check");
    if let Ok(text) = std::str::from_utf8(body) {
        assert_eq!(
            switchyard_openai::forward::checked_usage(text).expect("forwardable"),
            expected,
            "{name}: usage read by the serde check"
        );
    }
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
    // ... and the quick reader alone must take them, or it saves nothing.
    for (name, body) in fixture_answers() {
        if forwarded.contains(&name) {
            assert!(quick_sure(&body), "{name}: the quick reader was not sure");
        }
    }
}

/// Edits the quick reader must not get wrong: each is valid JSON the serde reader refuses
/// or treats specially, or a spelling of the same answer it must still accept.
#[test]
fn the_quick_reader_is_sure_only_when_the_serde_reader_agrees() {
    let plain = String::from_utf8(plain_answer()).unwrap();
    let compact: Value = serde_json::from_str(&plain).unwrap();
    let compact = compact.to_string();
    assert!(quick_sure(compact.as_bytes()) && checked(&compact));
    let with = |from: &str, to: &str| {
        assert!(compact.contains(from), "{from} is not in the plain answer");
        compact.replacen(from, to, 1)
    };
    // (edited body, whether the quick reader should still be sure)
    let cases = [
        (with("\"id\":", "\"id\":\"x\",\"id\":"), false),
        (with("\"created\":", "\"created\":0"), false),
        (with("\"created\":", "\"created\":-"), false),
        (with("\"created\":", "\"created\":1e3,\"x\":"), false),
        (with("\"created\":", "\"created\":1.0,\"x\":"), false),
        (
            with("\"created\":", "\"created\":18446744073709551616,\"x\":"),
            false,
        ),
        (with("\"index\":0", "\"index\":4294967296"), false),
        (with("\"index\":0", "\"index\":null"), false),
        (with("\"id\":", "\"\\u0069d\":\"y\",\"id\":"), false),
        (with("\"assistant\"", "\"assist\\u0061nt\""), false),
        (with("\"assistant\"", "\"assistan\\t\""), false),
        (with("\"chat.completion\"", "\"chat\\/completion\""), false),
        (with("\"role\":", "\"function_call\":{},\"role\":"), false),
        (with("\"role\":", "\"function_call\":null,\"role\":"), true),
        (
            with(
                "\"role\":",
                "\"extra\":[1,-2.5,true,false,null,{\"a\":\"b\"}],\"role\":",
            ),
            true,
        ),
        (with("\"role\":", "\"extra\":1e5,\"role\":"), false),
        (with("\"role\":", "\"extra\":01,\"role\":"), false),
        (
            with("\"role\":", "\"extra\":\"a\\ud800b\",\"role\":"),
            false,
        ),
        (with("\"role\":", "\"extra\":\"a\\x\",\"role\":"), false),
        (
            with("\"role\":", "\"extra\":\"tab\there\",\"role\":"),
            false,
        ),
        (
            with(
                "\"role\":",
                "\"extra\":\"line\\nbreak \\\"q\\\" \\\\\",\"role\":",
            ),
            true,
        ),
        (
            with(
                "\"role\":",
                &format!("\"deep\":{}{},\"role\":", "[".repeat(200), "]".repeat(200)),
            ),
            false,
        ),
        (
            with(
                "\"role\":",
                &format!("\"deep\":{}{},\"role\":", "[".repeat(20), "]".repeat(20)),
            ),
            true,
        ),
        (format!("{compact} "), true),
        (format!(" \n\t{compact}\r\n"), true),
        (format!("{compact},"), false),
        (format!("\u{feff}{compact}"), false),
        (format!("[{compact}]"), false),
        (compact.replacen("}", ",}", 1), false),
        (compact.replace(",", " , ").replace(":", " : "), true),
    ];
    for (i, (body, sure)) in cases.iter().enumerate() {
        if let Err(e) = quick_agrees(&format!("case {i}"), body.as_bytes()) {
            panic!("{e}");
        }
        assert_eq!(quick_sure(body.as_bytes()), *sure, "case {i}: {body}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Random byte edits of real answers (the JSON punctuation and escapes most likely to
    /// trip a hand-written reader): the quick reader never says yes where serde says no.
    #[test]
    fn random_edits_never_make_the_readers_disagree(
        which in 0usize..64,
        edits in switchyard_testkit::json_edits(),
    ) {
        let answers = fixture_answers();
        let (name, body) = &answers[which % answers.len()];
        let body = switchyard_testkit::apply_edits(body.clone(), &edits);
        prop_assert!(quick_agrees(name, &body).is_ok(), "{}", quick_agrees(name, &body).unwrap_err());
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
        quick_agrees("not one answer", body).unwrap();
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
