//! JSON Schemas of the canonical model and of the config file, as committed under `schemas/`.
//! `cargo xtask schemas` writes them; a test fails when the committed files drift.

use schemars::schema_for;
use switchyard_core::{ChatRequest, ChatResponse, ErrorClass, StreamEvent, UpstreamError, Usage};

use crate::config::Config;

/// (file name, pretty JSON with a trailing newline) for every schema we publish.
pub fn all() -> Vec<(&'static str, String)> {
    let schemas = [
        ("chat-request.schema.json", schema_for!(ChatRequest)),
        ("chat-response.schema.json", schema_for!(ChatResponse)),
        ("stream-event.schema.json", schema_for!(StreamEvent)),
        ("usage.schema.json", schema_for!(Usage)),
        ("error-class.schema.json", schema_for!(ErrorClass)),
        ("upstream-error.schema.json", schema_for!(UpstreamError)),
        ("config.schema.json", schema_for!(Config)),
    ];
    schemas
        .into_iter()
        .map(|(name, schema)| {
            let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
            text.push('\n');
            (name, text)
        })
        .collect()
}
