//! Shared test helpers: the common ones come from `switchyard-testkit`; this file binds them
//! to mistral.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use switchyard_core::{StreamEvent, Target, UnsupportedPolicy, UpstreamError};
use switchyard_mistral::MistralStreamParser;
pub use switchyard_testkit::{
    case_name, data_frames, meta_of, read_json, reencode_stream, snapshot, split_at, strip_native,
    strip_native_events,
};

pub fn fixtures_root() -> PathBuf {
    switchyard_testkit::fixtures_root("mistral")
}

/// Case directories (not `errors`), sorted.
pub fn case_dirs() -> Vec<PathBuf> {
    switchyard_testkit::case_dirs("mistral")
}

pub fn streams() -> Vec<(String, Vec<u8>)> {
    switchyard_testkit::streams("mistral")
}

pub fn target(model: &str, on_unsupported: UnsupportedPolicy) -> Target<'_> {
    Target {
        base_url: "https://api.mistral.ai/v1/",
        model,
        api_key: Some("mk-test-SECRET"),
        on_unsupported,
    }
}

pub fn parse_stream_chunks(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, UpstreamError> {
    switchyard_testkit::parse_stream_chunks(MistralStreamParser::new(), chunks)
}

pub fn parse_stream(bytes: &[u8]) -> Result<Vec<StreamEvent>, UpstreamError> {
    parse_stream_chunks(&[bytes])
}
