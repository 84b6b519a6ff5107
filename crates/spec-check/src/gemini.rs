use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor};
use serde_json::Value;

use crate::{openapi::pretty, spec_path, timed};

const FILES: [&str; 4] = [
    "google/ai/generativelanguage/v1beta/generative_service.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/rpc/code.proto",
];

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        timed("gemini/proto", || {
            let root = spec_path("gemini/proto");
            protox::Compiler::new([&root])
                .and_then(|mut c| c.open_files(FILES).map(|c| c.descriptor_pool()))
                .unwrap_or_else(|e| panic!("spec-check: cannot compile {}: {e}", root.display()))
        })
    })
}

fn message(full_name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("spec-check: no protobuf message {full_name} in gemini/proto"))
}

fn parse(desc: MessageDescriptor, value: &Value, strict: bool) -> Result<(), String> {
    let options = DeserializeOptions::new().deny_unknown_fields(strict);
    DynamicMessage::deserialize_with_options(desc, value, &options)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Gemini: parse `value` as protobuf message `full_name` (proto3 JSON mapping) using the protos
/// in `<specs>/gemini/proto`.
///
/// `strict` denies unknown fields and enum names: use it for our own requests and recorded
/// fixtures. Live responses may carry fields newer than the protos, so check those leniently.
/// Proto3 has no required fields (`{}` is a valid request): assert required fields yourself.
/// Panics if the message does not exist.
///
/// ```no_run
/// # use switchyard_spec_check::check_gemini;
/// const REQ: &str = "google.ai.generativelanguage.v1beta.GenerateContentRequest";
/// let typo = serde_json::json!({"systemInstructions": {"parts": [{"text": "be brief"}]}});
/// assert!(check_gemini(REQ, &typo, true).is_err());
/// ```
pub fn check_gemini(full_name: &str, value: &Value, strict: bool) -> Result<(), String> {
    parse(message(full_name), value, strict)
}

/// Panics with the error and the pretty-printed JSON unless `value` parses strictly.
///
/// ```no_run
/// # use switchyard_spec_check::assert_valid_gemini;
/// let req = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
/// assert_valid_gemini("google.ai.generativelanguage.v1beta.GenerateContentRequest", &req);
/// ```
pub fn assert_valid_gemini(full_name: &str, value: &Value) {
    if let Err(e) = check_gemini(full_name, value, true) {
        panic!(
            "{full_name}: expected valid, got: {e}\n--- value ---\n{}",
            pretty(value)
        );
    }
}

/// Gemini error bodies: `{"error": {code, message, status, details}}`.
///
/// `status` is required and must be a `google.rpc.Code` name; the rest must parse strictly as
/// `google.rpc.Status` (the `details[]` `@type`s resolve against `error_details.proto`).
///
/// ```no_run
/// # use switchyard_spec_check::check_gemini_error;
/// let body = serde_json::json!({"error": {"code": 429, "message": "quota",
///     "status": "RESOURCE_EXHAUSTED", "details": [{
///         "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}});
/// check_gemini_error(&body).unwrap();
/// ```
pub fn check_gemini_error(value: &Value) -> Result<(), String> {
    let outer = value.as_object().ok_or("error body is not a JSON object")?;
    if let Some(extra) = outer.keys().find(|k| *k != "error") {
        return Err(format!(
            "unexpected top-level key {extra:?} next to \"error\""
        ));
    }
    let mut inner = outer
        .get("error")
        .and_then(Value::as_object)
        .cloned()
        .ok_or("missing \"error\" object")?;
    let status = inner.remove("status").ok_or("missing error.status")?;
    let status = status.as_str().ok_or("error.status is not a string")?;
    let code = pool()
        .get_enum_by_name("google.rpc.Code")
        .unwrap_or_else(|| panic!("spec-check: google.rpc.Code not in the pool"));
    if code.get_value_by_name(status).is_none() {
        return Err(format!(
            "error.status {status:?} is not a google.rpc.Code name"
        ));
    }
    parse(message("google.rpc.Status"), &Value::Object(inner), true)
        .map_err(|e| format!("error: {e}"))
}
