//! Stream parser and encoder behaviour beyond the fixtures: random split points, block order,
//! error frames, usage merging.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use switchyard_anthropic::Anthropic;
use switchyard_core::{
    ErrorClass, FinishReason, Provider, SseFrame, StreamEvent, UpstreamError, Usage,
};

fn stream_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_root()).expect("fixtures") {
        let path = entry.expect("entry").path().join("stream.sse");
        if path.exists() {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read"),
            ));
        }
    }
    out.sort();
    assert!(out.len() >= 6);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_split_points_give_identical_results(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..24)) {
        for (name, bytes) in stream_fixtures() {
            let whole = replay_whole(&bytes);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&bytes[start..p]);
                start = p;
            }
            chunks.push(&bytes[start..]);
            let split = replay(chunks);
            prop_assert_eq!(&split, &whole, "{}", name);
        }
    }
}

fn names(bytes: &[u8]) -> Vec<String> {
    frames(bytes).into_iter().map(|(n, _)| n).collect()
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "msg_x".into(),
        model: MODEL.into(),
        created: 0,
    }
}

#[test]
fn encoder_closes_text_before_tool_use_and_ends_properly() {
    let events = vec![
        start(),
        StreamEvent::TextDelta {
            choice: 0,
            text: "Let me look.".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "toolu_a".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallArguments {
            choice: 0,
            index: 0,
            arguments: "{\"q\":".into(),
        },
        StreamEvent::ToolCallArguments {
            choice: 0,
            index: 0,
            arguments: "1}".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 1,
            id: "toolu_b".into(),
            name: "g".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
            native_reason: Some("tool_calls".into()),
        },
        StreamEvent::Usage(Usage {
            input_tokens: 110,
            output_tokens: 20,
            total_tokens: 130,
            cached_input_tokens: Some(100),
            ..Usage::default()
        }),
    ];
    let bytes = encode_stream(&events, None);
    spec_valid_stream(&bytes);
    assert_eq!(
        names(&bytes),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let f = frames(&bytes);
    assert_eq!(f[2].1["index"], 0);
    assert_eq!(f[5].1["index"], 1);
    assert_eq!(f[5].1["content_block"]["type"], "tool_use");
    assert_eq!(f[9].1["index"], 2);
    let delta = &f[11].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"]["input_tokens"], 10,
        "cache reads are split back out"
    );
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 100);
    assert_eq!(delta["usage"]["output_tokens"], 20);

    let (parsed, result) = replay_whole(&bytes);
    assert_eq!(result, Ok(()));
    let usage = parsed.iter().find_map(|e| match e {
        StreamEvent::Usage(u) => Some(u.clone()),
        _ => None,
    });
    let usage = usage.expect("usage event");
    assert_eq!(
        (
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens
        ),
        (110, Some(100), 20)
    );
}

#[test]
fn encoder_starts_even_without_start_event_and_maps_reasoning() {
    let events = vec![
        StreamEvent::ReasoningDelta {
            choice: 0,
            text: "hmm".into(),
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "ok".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Length,
            native_reason: None,
        },
    ];
    let bytes = encode_stream(&events, None);
    spec_valid_stream(&bytes);
    let f = frames(&bytes);
    assert_eq!(f[0].0, "message_start");
    assert_eq!(f[2].1["content_block"]["type"], "thinking");
    assert_eq!(
        f[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "hmm"})
    );
    assert_eq!(f[4].0, "content_block_stop");
    assert_eq!(f[5].1["content_block"]["type"], "text");
    let delta = f
        .iter()
        .find(|(n, _)| n == "message_delta")
        .expect("message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "max_tokens");
}

#[test]
fn error_frame_is_an_anthropic_error_event() {
    let err = UpstreamError::new(ErrorClass::Overloaded, "Overloaded");
    let bytes = encode_stream(
        &[
            start(),
            StreamEvent::TextDelta {
                choice: 0,
                text: "Hi".into(),
            },
        ],
        Some(&err),
    );
    spec_valid_stream(&bytes);
    let f = frames(&bytes);
    let (name, data) = f.last().expect("frames");
    assert_eq!(name, "error");
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(!names(&bytes).contains(&"message_stop".to_string()));
    let (_, result) = replay_whole(&bytes);
    let e = result.expect_err("error event fails the stream");
    assert_eq!(e.class, ErrorClass::Overloaded);
    assert_eq!(e.provider_code.as_deref(), Some("overloaded_error"));
}

#[test]
fn parser_edge_cases() {
    let mut p = Anthropic.stream_parser();
    let mut out = Vec::new();
    // finish before anything arrived
    assert_eq!(
        p.finish(&mut out).unwrap_err().class,
        ErrorClass::StreamInterrupted
    );

    let mut p = Anthropic.stream_parser();
    let bad = SseFrame {
        event: Some("message_start".into()),
        data: "{not json".into(),
        ..SseFrame::default()
    };
    let e = p.feed(&bad, &mut out).unwrap_err();
    assert_eq!(e.class, ErrorClass::StreamInterrupted);

    // unknown event types are ignored; frames after message_stop too
    let mut p = Anthropic.stream_parser();
    let mut out = Vec::new();
    for data in [
        json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        json!({"type": "some_future_event", "x": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "some_future_reason", "stop_sequence": null}, "usage": {"output_tokens": 4}}),
        json!({"type": "message_stop"}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "late"}}),
    ] {
        p.feed(&SseFrame::data(data.to_string()), &mut out)
            .expect("feeds");
    }
    assert!(p.is_done());
    p.finish(&mut out).expect("complete");
    assert_eq!(
        out[1],
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Other,
            native_reason: Some("some_future_reason".into())
        }
    );
    let StreamEvent::Usage(u) = &out[2] else {
        panic!("usage expected: {out:?}")
    };
    assert_eq!((u.input_tokens, u.output_tokens, u.total_tokens), (3, 4, 7));
    assert_eq!(out.len(), 3, "nothing after message_stop");

    // a delta for a block that never started is malformed
    let mut p = Anthropic.stream_parser();
    let d = json!({"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "x"}});
    assert!(p.feed(&SseFrame::data(d.to_string()), &mut out).is_err());
}

#[test]
fn late_arguments_go_to_their_own_block_index() {
    // OpenAI-style sources may send a call's arguments after the next call started; Anthropic
    // blocks cannot reopen, so the delta keeps the first block's index and nothing is lost.
    let events = vec![
        start(),
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "toolu_a".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 1,
            id: "toolu_b".into(),
            name: "g".into(),
        },
        StreamEvent::ToolCallArguments {
            choice: 0,
            index: 0,
            arguments: "{}".into(),
        },
    ];
    let bytes = encode_stream(&events, None);
    let f = frames(&bytes);
    let late = f
        .iter()
        .find(|(n, _)| n == "content_block_delta")
        .expect("delta");
    assert_eq!(late.1["index"], 0);
    assert_eq!(late.1["delta"]["partial_json"], "{}");
    let (parsed, result) = replay_whole(&bytes);
    assert_eq!(result, Ok(()));
    assert!(parsed.contains(&StreamEvent::ToolCallArguments {
        choice: 0,
        index: 0,
        arguments: "{}".into()
    }));
    let finish = parsed
        .iter()
        .find(|e| matches!(e, StreamEvent::Finish { .. }));
    assert!(matches!(
        finish,
        Some(StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
            ..
        })
    ));
}
