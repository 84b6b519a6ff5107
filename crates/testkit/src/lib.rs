//! Test-only helpers the provider crates share (dev-dependency only): walking
//! `fixtures/<provider>/<case>/`, insta snapshots stored beside the fixtures, and replaying a
//! recorded SSE stream through [`SseDecoder`] and a provider's parser, whole or cut anywhere;
//! random byte edits of JSON bodies for the quick readers' property tests ([`json_edits`]).

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_core::{
    ChatRequest, ChatResponse, ServerSide, StreamEvent, StreamMeta, StreamParser, UpstreamError,
};
use switchyard_sse::SseDecoder;

/// One random edit of a body: insert, remove or overwrite one byte.
#[derive(Debug, Clone)]
pub struct ByteEdit {
    at: proptest::sample::Index,
    op: u8,
    byte: u8,
}

/// One to three byte edits, each with one of the JSON punctuation, escape and number
/// characters most likely to trip a hand-written reader, or a byte that breaks UTF-8 (a
/// stray continuation byte, a lead byte without its continuation, a byte UTF-8 never uses).
pub fn json_edits() -> impl proptest::strategy::Strategy<Value = Vec<ByteEdit>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        (
            any::<proptest::sample::Index>(),
            0u8..3,
            proptest::sample::select(
                b"{}[]\",:\\/-.0159eEu tnfl\x00\x1f\x80\xbf\xc3\xe2\xf0\xff".to_vec(),
            ),
        )
            .prop_map(|(at, op, byte)| ByteEdit { at, op, byte }),
        1..4,
    )
}

/// `body` with `edits` applied in order.
pub fn apply_edits(mut body: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for edit in edits {
        let i = edit.at.index(body.len() + 1);
        match edit.op {
            0 => body.insert(i, edit.byte),
            1 if i < body.len() => {
                body.remove(i);
            }
            _ if i < body.len() => body[i] = edit.byte,
            _ => body.push(edit.byte),
        }
    }
    body
}

/// `fixtures/<provider>` of this workspace.
pub fn fixtures_root(provider: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(provider)
}

/// The provider's case directories (not `errors`), sorted.
pub fn case_dirs(provider: &str) -> Vec<PathBuf> {
    let root = fixtures_root(provider);
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
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

/// (case name, bytes of `stream.sse`) for every case that has one.
pub fn streams(provider: &str) -> Vec<(String, Vec<u8>)> {
    case_dirs(provider)
        .into_iter()
        .filter_map(|d| Some((case_name(&d), std::fs::read(d.join("stream.sse")).ok()?)))
        .collect()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An insta JSON snapshot named `name`, stored in `dir` (beside the fixture it describes).
pub fn snapshot(dir: &Path, name: &str, value: &impl serde::Serialize) {
    insta::with_settings!({
        snapshot_path => dir,
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, value);
    });
}

/// Feeds `chunks` (one stream cut at arbitrary points) through an SSE decoder and `parser`.
pub fn parse_stream_chunks(
    mut parser: impl StreamParser,
    chunks: &[&[u8]],
) -> Result<Vec<StreamEvent>, UpstreamError> {
    let mut decoder = SseDecoder::new();
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

/// `bytes` cut at `cuts` (taken modulo the length, in any order).
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

/// The stream identity from a parsed stream's first (`Start`) event.
pub fn meta_of(events: &[StreamEvent]) -> StreamMeta {
    match events.first() {
        Some(StreamEvent::Start { id, model, created }) => StreamMeta {
            id: id.clone(),
            model: model.clone(),
            created: *created,
        },
        other => panic!("first event must be Start, got {other:?}"),
    }
}

/// `response` without the provider's verbatim usage object, for comparing round trips (the
/// native object legitimately differs after re-encoding).
pub fn strip_native(mut response: ChatResponse) -> ChatResponse {
    if let Some(u) = response.usage.as_mut() {
        u.native = None;
    }
    response
}

/// `events` without the verbatim usage objects, for the same reason.
pub fn strip_native_events(events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    events
        .into_iter()
        .map(|e| match e {
            StreamEvent::Usage(mut u) => {
                u.native = None;
                StreamEvent::Usage(u)
            }
            e => e,
        })
        .collect()
}

/// Encodes parsed `events` back into the provider's stream with its server side, as for a
/// streamed request with `include_usage` as given.
pub fn reencode_stream(
    server: &dyn ServerSide,
    events: &[StreamEvent],
    include_usage: bool,
) -> Vec<u8> {
    let request = ChatRequest {
        stream: true,
        include_usage,
        ..ChatRequest::default()
    };
    let mut encoder = server.stream_encoder(&request, meta_of(events));
    let mut out = Vec::new();
    for e in events {
        encoder.encode(e, &mut out);
    }
    encoder.finish(&mut out);
    out
}

/// For an OpenAI dialect that takes neither files nor audio: a file, a file id and an audio
/// part are each refused under `reject` and dropped with one warning under `drop`, leaving the
/// text beside them. `body` builds the dialect's native body and its warnings.
pub fn assert_files_and_audio_refused(
    body: impl Fn(
        &ChatRequest,
        switchyard_core::UnsupportedPolicy,
    ) -> Result<(Value, Vec<String>), switchyard_core::TranslateError>,
) {
    use switchyard_core::{
        AudioFormat, Content, ContentPart, Message, Role, TranslateError, UnsupportedPolicy,
    };
    let parts = [
        ContentPart::File {
            data: "JVBERi0=".into(),
            media_type: Some("application/pdf".into()),
            filename: None,
        },
        ContentPart::FileId {
            file_id: "file-1".into(),
            filename: None,
        },
        ContentPart::InputAudio {
            data: "SUQz".into(),
            format: AudioFormat::Mp3,
        },
    ];
    for part in parts {
        let mut message = Message::text(Role::User, "hi");
        message.content = Some(Content::Parts(vec![
            ContentPart::Text { text: "t".into() },
            part,
        ]));
        let r = ChatRequest {
            model: "alias".into(),
            messages: vec![message],
            ..ChatRequest::default()
        };
        assert!(matches!(
            body(&r, UnsupportedPolicy::Reject),
            Err(TranslateError::Unsupported { .. })
        ));
        let (b, warnings) = body(&r, UnsupportedPolicy::Drop).expect("dropped, not refused");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            b["messages"][0]["content"],
            serde_json::json!([{"type": "text", "text": "t"}])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_at_keeps_every_byte_in_order() {
        let bytes = b"hello world";
        let parts = split_at(bytes, &[20, 3, 3, 7]);
        assert_eq!(parts.concat(), bytes);
        assert_eq!(parts.len(), 5);
    }
}
