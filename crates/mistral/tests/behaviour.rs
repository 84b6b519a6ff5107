//! Behaviour that fixtures do not show: unsupported fields under both policies, failed
//! generations, in-stream errors.

mod common;

use common::*;
use serde_json::Value;
use switchyard_core::{
    ChatRequest, ErrorClass, Message, Provider, Role, TranslateError, UnsupportedPolicy,
};
use switchyard_mistral::Mistral;

fn request() -> ChatRequest {
    ChatRequest {
        model: "alias".into(),
        messages: vec![Message::text(Role::User, "hi")],
        ..ChatRequest::default()
    }
}

fn body(
    r: &ChatRequest,
    policy: UnsupportedPolicy,
) -> Result<(Value, Vec<String>), TranslateError> {
    let up = Mistral.build_request(r, &target("mistral-small-latest", policy))?;
    Ok((
        serde_json::from_slice(up.request.body()).unwrap(),
        up.warnings,
    ))
}

#[test]
fn logprobs_user_and_names_are_rejected_or_dropped_with_a_warning() {
    let mut r = request();
    r.logprobs = Some(true);
    r.user = Some("u-1".into());
    r.messages[0].name = Some("alice".into());
    let err = body(&r, UnsupportedPolicy::Reject).unwrap_err();
    assert!(
        matches!(
            err,
            TranslateError::Unsupported {
                provider: "mistral",
                ..
            }
        ),
        "{err}"
    );
    let (b, warnings) = body(&r, UnsupportedPolicy::Drop).unwrap();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for key in ["logprobs", "user"] {
        assert!(b.get(key).is_none(), "{key} must be dropped");
    }
    assert!(b["messages"][0].get("name").is_none());
    if switchyard_spec_check::specs_dir().is_some() {
        switchyard_spec_check::assert_valid(
            switchyard_spec_check::Api::Mistral,
            "ChatCompletionRequest",
            &b,
        );
    }
}

#[test]
fn an_end_user_id_is_dropped_with_a_warning_even_under_reject() {
    let mut r = request();
    r.user = Some("u-1".into());
    let (b, warnings) = body(&r, UnsupportedPolicy::Reject).expect("user never blocks");
    assert!(b.get("user").is_none());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("user"));
}

#[test]
fn negative_seed_becomes_a_non_negative_random_seed() {
    let mut r = request();
    r.seed = Some(-7);
    let (b, _) = body(&r, UnsupportedPolicy::Reject).unwrap();
    let seed = b["random_seed"].as_i64().unwrap();
    assert!(seed >= 0);
    assert_eq!(
        body(&r, UnsupportedPolicy::Reject).unwrap().0["random_seed"],
        seed
    );
    assert!(b.get("seed").is_none());
}

#[test]
fn finish_reason_error_is_an_error_not_an_answer() {
    let e = Mistral
        .parse_response(br#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"half an ans"},"finish_reason":"error"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::ServerError);
    let stream = b"data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\ndata: [DONE]\n\n";
    let e = parse_stream(stream).unwrap_err();
    assert_eq!(e.class, ErrorClass::StreamInterrupted);
}

#[test]
fn in_stream_error_frames_fail_the_stream() {
    let stream = b"data: {\"object\":\"error\",\"message\":\"slow down\",\"type\":\"rate_limited\",\"param\":null,\"code\":\"1300\"}\n\n";
    let e = parse_stream(stream).unwrap_err();
    assert!(matches!(e.class, ErrorClass::RateLimited { .. }));
    assert_eq!(e.message, "slow down");
    let e = parse_stream(b"data: {not json\n\n").unwrap_err();
    assert!(e.is_malformed());
}

#[test]
fn a_2xx_error_body_is_an_error() {
    let e = Mistral
        .parse_response(br#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::QuotaExhausted);
}

#[test]
fn pdfs_become_document_urls_audio_a_string_and_the_server_reads_them_back() {
    use switchyard_core::{AudioFormat, Content, ContentPart, ServerSide};
    let parts = vec![
        ContentPart::Text { text: "t".into() },
        ContentPart::File {
            data: "JVBERi0=".into(),
            media_type: Some("application/pdf".into()),
            filename: Some("a.pdf".into()),
        },
        ContentPart::InputAudio {
            data: "UklGRg==".into(),
            format: AudioFormat::Wav,
        },
    ];
    let mut r = request();
    r.messages[0].content = Some(Content::Parts(parts.clone()));
    let (b, warnings) = body(&r, UnsupportedPolicy::Reject).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        b["messages"][0]["content"],
        serde_json::json!([
            {"type": "text", "text": "t"},
            {"type": "document_url", "document_url": "data:application/pdf;base64,JVBERi0=", "document_name": "a.pdf"},
            {"type": "input_audio", "input_audio": "UklGRg=="},
        ])
    );
    if switchyard_spec_check::specs_dir().is_some() {
        switchyard_spec_check::assert_valid(
            switchyard_spec_check::Api::Mistral,
            "ChatCompletionRequest",
            &b,
        );
    }
    let back = switchyard_mistral::MistralServer
        .parse_request(None, &serde_json::to_vec(&b).unwrap())
        .unwrap();
    assert_eq!(back.messages[0].content, Some(Content::Parts(parts)));

    for part in [
        ContentPart::FileId {
            file_id: "file-1".into(),
            filename: None,
        },
        ContentPart::File {
            data: "aGk=".into(),
            media_type: Some("text/plain".into()),
            filename: None,
        },
    ] {
        r.messages[0].content = Some(Content::Parts(vec![part]));
        assert!(matches!(
            body(&r, UnsupportedPolicy::Reject),
            Err(TranslateError::Unsupported { .. })
        ));
        let (b, warnings) = body(&r, UnsupportedPolicy::Drop).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(b["messages"][0]["content"], serde_json::json!([]));
    }
}
