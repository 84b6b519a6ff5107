//! Gemini 3 signs its function calls (`thoughtSignature` on the `functionCall` part) and
//! rejects a later request whose history lacks the signature. The canonical `ToolCall` has no
//! slot for it, and clients echo tool-call ids verbatim, so the signature rides in the id:
//! `<id>__thought__<signature>` (the convention LiteLLM uses too). It is split off again when
//! the call goes back to Gemini.

const SEP: &str = "__thought__";

pub(crate) fn join(id: String, signature: Option<&str>) -> String {
    match signature.filter(|s| !s.is_empty()) {
        Some(sig) => format!("{id}{SEP}{sig}"),
        None => id,
    }
}

/// `(id Gemini knows, signature)`.
pub(crate) fn split(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SEP) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        _ => (id, None),
    }
}
