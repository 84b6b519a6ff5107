#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_core::{Provider, StreamEvent, Target, UnsupportedPolicy, UpstreamError};
use switchyard_gemini::Gemini;
use switchyard_sse::SseDecoder;

pub const REQ: &str = "google.ai.generativelanguage.v1beta.GenerateContentRequest";
pub const RESP: &str = "google.ai.generativelanguage.v1beta.GenerateContentResponse";
pub const BASE: &str = "https://generativelanguage.googleapis.com";
pub const KEY: &str = "test-key-AIzaSyDUMMY";

pub fn target(model: &str) -> Target<'_> {
    Target {
        base_url: BASE,
        model,
        api_key: Some(KEY),
        on_unsupported: UnsupportedPolicy::Reject,
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gemini")
}

/// Every case folder, sorted.
pub fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/gemini exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

pub fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// insta snapshot stored beside the fixture: `<dir>/<snapshot>.snap`.
pub fn snapshot(dir: &Path, snapshot: &str, value: &Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_sort_maps(true);
    settings.bind(|| insta::assert_json_snapshot!(snapshot.to_string(), value));
}

/// Our JSON must use the proto3 JSON names (lowerCamelCase). The proto parser also takes
/// snake_case, so the spec check alone would not notice. Free-form values (schemas, args,
/// responses) are skipped.
pub fn assert_camel_case(v: &Value, path: &str) {
    const FREE: &[&str] = &[
        "args",
        "response",
        "parametersJsonSchema",
        "responseJsonSchema",
        "parameters",
        "responseSchema",
    ];
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                assert!(
                    !k.contains('_') && !k.starts_with(|c: char| c.is_ascii_uppercase()),
                    "{path}.{k} is not lowerCamelCase"
                );
                if !FREE.contains(&k.as_str()) {
                    assert_camel_case(v, &format!("{path}.{k}"));
                }
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| assert_camel_case(v, &format!("{path}[{i}]"))),
        _ => {}
    }
}

pub struct Replay {
    pub events: Vec<StreamEvent>,
    pub end: Result<(), UpstreamError>,
}

/// Feeds `bytes` split at `cuts` through the SSE decoder and a fresh parser.
pub fn replay(bytes: &[u8], cuts: &[usize]) -> Replay {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| (*c).min(bytes.len())).collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    let mut decoder = SseDecoder::new();
    let mut parser = Gemini.stream_parser();
    let mut frames = Vec::new();
    let mut events = Vec::new();
    let mut start = 0;
    for cut in cuts {
        decoder.feed(&bytes[start..cut], &mut frames).unwrap();
        start = cut;
        for f in frames.drain(..) {
            if let Err(e) = parser.feed(&f, &mut events) {
                return Replay {
                    events,
                    end: Err(e),
                };
            }
        }
    }
    decoder.finish();
    let end = parser.finish(&mut events);
    Replay { events, end }
}

/// The `data:` payloads of an SSE byte stream.
pub fn frames(bytes: &[u8]) -> Vec<String> {
    let mut decoder = SseDecoder::new();
    let mut frames = Vec::new();
    decoder.feed(bytes, &mut frames).unwrap();
    frames.into_iter().map(|f| f.data).collect()
}

/// Events with `Usage::native` cleared (re-encoded usage lacks the modality details).
pub fn without_native(events: &[StreamEvent]) -> Vec<StreamEvent> {
    events
        .iter()
        .cloned()
        .map(|e| match e {
            StreamEvent::Usage(mut u) => {
                u.native = None;
                StreamEvent::Usage(u)
            }
            e => e,
        })
        .collect()
}
