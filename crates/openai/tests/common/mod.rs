//! Shared test helpers: the fixture walker, SSE replay and snapshot placement.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_core::{StreamEvent, StreamParser, Target, UnsupportedPolicy, UpstreamError};
use switchyard_openai::OpenAiStreamParser;
use switchyard_sse::SseDecoder;

pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/openai")
}

/// Every fixture case directory, sorted, so failures name the case.
pub fn cases() -> Vec<(String, PathBuf)> {
    let mut out: Vec<_> = std::fs::read_dir(fixtures_root())
        .expect("fixtures/openai exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the fixture cases, found {}",
        out.len()
    );
    out
}

/// Cases that have `file`, with its bytes.
pub fn cases_with(file: &str) -> Vec<(String, PathBuf, Vec<u8>)> {
    cases()
        .into_iter()
        .filter_map(|(name, dir)| {
            let bytes = std::fs::read(dir.join(file)).ok()?;
            Some((name, dir, bytes))
        })
        .collect()
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("fixture is JSON")
}

pub fn target(model: &str) -> Target<'_> {
    Target {
        base_url: "https://api.openai.com/v1/",
        model,
        api_key: Some("sk-test-SECRET"),
        on_unsupported: UnsupportedPolicy::Reject,
    }
}

/// A canonical-form snapshot stored beside the fixture: `<case>/<name>.snap`.
pub fn snapshot(dir: &Path, name: &str, value: &impl serde::Serialize) {
    insta::with_settings!({
        snapshot_path => dir,
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, value);
    });
}

/// Feeds `chunks` through an SSE decoder and a fresh parser, as the gateway would.
pub fn parse_stream_chunks(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, UpstreamError> {
    let mut decoder = SseDecoder::new();
    let mut parser = OpenAiStreamParser::new();
    let mut frames = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut frames).expect("valid SSE");
        for f in frames.drain(..) {
            parser.feed(&f, &mut events)?;
        }
    }
    decoder.finish();
    parser.finish(&mut events)?;
    Ok(events)
}

pub fn parse_stream(bytes: &[u8]) -> Result<Vec<StreamEvent>, UpstreamError> {
    parse_stream_chunks(&[bytes])
}

/// The JSON `data:` payloads of a stream, without `[DONE]`.
pub fn data_frames(bytes: &[u8]) -> Vec<Value> {
    let mut decoder = SseDecoder::new();
    let mut frames = Vec::new();
    decoder.feed(bytes, &mut frames).unwrap();
    frames
        .into_iter()
        .filter(|f| f.data != "[DONE]")
        .map(|f| serde_json::from_str(&f.data).expect("data frame is JSON"))
        .collect()
}
