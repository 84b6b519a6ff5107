//! Shared test helpers: the common ones come from `switchyard-testkit`; this file binds them
//! to qwen.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use switchyard_core::{StreamEvent, Target, UnsupportedPolicy, UpstreamError};
use switchyard_openai::OpenAiStreamParser;
pub use switchyard_testkit::{
    case_name, data_frames, meta_of, read_json, reencode_stream, snapshot, split_at, strip_native,
    strip_native_events,
};

pub fn fixtures_root() -> PathBuf {
    switchyard_testkit::fixtures_root("qwen")
}

/// Case directories (not `errors`), sorted.
pub fn case_dirs() -> Vec<PathBuf> {
    switchyard_testkit::case_dirs("qwen")
}

pub fn streams() -> Vec<(String, Vec<u8>)> {
    switchyard_testkit::streams("qwen")
}

pub fn target(model: &str, on_unsupported: UnsupportedPolicy) -> Target<'_> {
    Target {
        base_url: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        model,
        api_key: Some("sk-test-SECRET"),
        on_unsupported,
    }
}

pub fn parse_stream_chunks(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, UpstreamError> {
    switchyard_testkit::parse_stream_chunks(OpenAiStreamParser::new(), chunks)
}

pub fn parse_stream(bytes: &[u8]) -> Result<Vec<StreamEvent>, UpstreamError> {
    parse_stream_chunks(&[bytes])
}
