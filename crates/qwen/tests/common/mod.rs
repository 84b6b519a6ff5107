//! Shared test helpers: fixture walking, SSE replay, snapshots beside the fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_core::{StreamEvent, StreamParser, Target, UnsupportedPolicy, UpstreamError};
use switchyard_openai::OpenAiStreamParser;
use switchyard_sse::SseDecoder;

pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/qwen")
}

/// Case directories (not `errors`), sorted.
pub fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_root())
        .expect("fixtures/qwen exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "errors"))
        .collect();
    dirs.sort();
    dirs
}

pub fn case_name(dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string()
}

pub fn streams() -> Vec<(String, Vec<u8>)> {
    case_dirs()
        .into_iter()
        .filter_map(|d| Some((case_name(&d), std::fs::read(d.join("stream.sse")).ok()?)))
        .collect()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn target(model: &str, on_unsupported: UnsupportedPolicy) -> Target<'_> {
    Target {
        base_url: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        model,
        api_key: Some("sk-test-SECRET"),
        on_unsupported,
    }
}

pub fn snapshot(dir: &Path, name: &str, value: &impl serde::Serialize) {
    insta::with_settings!({
        snapshot_path => dir,
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, value);
    });
}

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
    decoder.feed(bytes, &mut frames).expect("valid SSE");
    frames
        .into_iter()
        .filter(|f| f.data != "[DONE]")
        .map(|f| serde_json::from_str(&f.data).expect("data frame is JSON"))
        .collect()
}

pub fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&bytes[start..c]);
        start = c;
    }
    out.push(&bytes[start..]);
    out
}
