//! Native `CreateChatCompletionRequest` → canonical request (the gateway's front door).
//!
//! Every error is `InvalidRequest` and names the field (`messages[2].content[0]`), because this
//! is what a client sees when its request is wrong.
//!
//! Three parsers, one behaviour: [`quick`] reads the common request (text messages, scalar
//! parameters) in one pass without serde; [`typed`] reads the body in one pass into typed
//! structs and takes every well-formed request; anything neither takes goes to [`exact`], the
//! general parser (the body as a `Value`, then field by field), which also words every error.
//! The quick and typed paths only ever accept what the exact one accepts, with the same
//! result; the tests below (and in `quick`) hold them to that. One known difference: the typed
//! path skips unknown nested fields without building them, so nesting deeper than
//! serde_json's 128 levels inside an unknown field is accepted there, where the exact parser
//! would refuse it. The quick path declines nesting past 64 levels.

mod exact;
mod quick;
mod typed;

use switchyard_core::{ChatRequest, UpstreamError};

/// The Switchyard extension key for a canonical safety policy.
pub const SAFETY_SETTINGS_KEY: &str = "safety_settings";

/// Parses an OpenAI chat completion request. Unknown top-level keys go to `extra` verbatim.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    if let Some(request) = quick::parse_request(body) {
        return Ok(request);
    }
    // The quick reader checks UTF-8 as it goes; the serde readers need the whole body checked.
    match std::str::from_utf8(body)
        .ok()
        .and_then(typed::parse_request)
    {
        Some(request) => Ok(request),
        None => exact::parse_request(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::ErrorClass;

    fn err(body: &str) -> String {
        let e = parse_request(body.as_bytes()).unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        e.message
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("{").contains("not valid JSON"));
        assert!(err("[]").contains("JSON object"));
        assert!(err(r#"{"messages":[{"role":"user","content":"x"}]}"#).contains("`model`"));
        assert!(err(r#"{"model":"m"}"#).contains("`messages`"));
        let m =
            err(r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"wizard"}]}"#);
        assert!(
            m.contains("`messages[1].role`") && m.contains("wizard"),
            "{m}"
        );
        let m =
            err(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#);
        assert!(m.contains("`temperature`"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
        );
        assert!(
            m.contains("`messages[0].content[0]`") && m.contains("`data`"),
            "{m}"
        );
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"input_audio","input_audio":{"data":"x","format":"ogg"}}]}]}"#,
        );
        assert!(
            m.contains("`messages[0].content[1]`") && m.contains("ogg"),
            "{m}"
        );
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"x","file_id":"f"}}]}]}"#,
        );
        assert!(
            m.contains("`messages[0].content[0].file`") && m.contains("exactly one"),
            "{m}"
        );
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/plain,hi"}}]}]}"#,
        );
        assert!(
            m.contains("`messages[0].content[0].file`") && m.contains("base64"),
            "{m}"
        );
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"refusal","refusal":"no"}]}]}"#,
        );
        assert!(
            m.contains("`messages[0].content[0]`") && m.contains("refusal"),
            "{m}"
        );
        let m = err(r#"{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}"#);
        assert!(m.contains("legacy `function` role"), "{m}");
        let m = err(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"functions":[]}"#);
        assert!(m.contains("`functions`"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"x"}}]}"#,
        );
        assert!(m.contains("`tools[0].type`") && m.contains("custom"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}"#,
        );
        assert!(m.contains("`response_format`") && m.contains("name"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"safety_settings":[{"category":"harassment","threshold":"block_some"}]}"#,
        );
        assert!(m.contains("`safety_settings[0].threshold`"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y","reasoning_details":{"type":"reasoning.text"}}]}"#,
        );
        assert!(m.contains("`messages[1].reasoning_details`"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"assistant","content":"y","reasoning_details":[{"text":"t"}]}]}"#,
        );
        assert!(m.contains("`messages[0].reasoning_details[0].type`"), "{m}");
        let m = err(
            r#"{"model":"m","messages":[{"role":"assistant","content":"y","reasoning_details":[{"type":"reasoning.encrypted"}]}]}"#,
        );
        assert!(
            m.contains("`messages[0].reasoning_details[0]`") && m.contains("data"),
            "{m}"
        );
    }

    #[test]
    fn reasoning_details_become_blocks_and_other_kinds_are_skipped() {
        use switchyard_core::ReasoningBlock;
        let r = parse_request(
            br#"{"model":"m","messages":[{"role":"assistant","content":"y","reasoning_details":[{"type":"reasoning.text","text":"t","signature":"s","format":"anthropic-claude-v1","index":0},{"type":"reasoning.summary","summary":"x","index":1},{"type":"reasoning.encrypted","data":"d","index":2},{"type":"reasoning.text","text":null,"signature":null}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages[0].reasoning_blocks,
            vec![
                ReasoningBlock::Text {
                    text: "t".into(),
                    signature: Some("s".into()),
                    format: Some("anthropic-claude-v1".into()),
                },
                ReasoningBlock::Encrypted {
                    data: "d".into(),
                    format: None,
                },
                ReasoningBlock::Text {
                    text: String::new(),
                    signature: None,
                    format: None,
                },
            ]
        );
    }

    #[test]
    fn files_and_audio_become_their_parts() {
        use switchyard_core::{AudioFormat, Content, ContentPart};
        let r = parse_request(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}},{"type":"file","file":{"file_data":"JVBERi0="}},{"type":"file","file":{"file_id":"file-1"}},{"type":"input_audio","input_audio":{"data":"SUQz","format":"mp3"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages[0].content,
            Some(Content::Parts(vec![
                ContentPart::File {
                    data: "JVBERi0=".into(),
                    media_type: Some("application/pdf".into()),
                    filename: Some("a.pdf".into()),
                },
                ContentPart::File {
                    data: "JVBERi0=".into(),
                    media_type: None,
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
            ]))
        );
    }

    #[test]
    fn unknown_keys_go_to_extra_and_nulls_mean_unset() {
        let r = parse_request(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"prediction":{"type":"content","content":"y"},"temperature":null,"max_tokens":7,"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert_eq!(r.extra.len(), 1);
        assert!(r.extra.contains_key("prediction"));
        assert_eq!(r.temperature, None);
        assert_eq!(r.max_output_tokens, Some(7));
        assert!(r.stream && r.include_usage);
    }

    #[test]
    fn max_completion_tokens_wins_and_include_usage_needs_stream() {
        let r = parse_request(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":7,"max_completion_tokens":9,"stream_options":{"include_usage":true},"stop":"END"}"#,
        )
        .unwrap();
        assert_eq!(r.max_output_tokens, Some(9));
        assert!(!r.include_usage);
        assert_eq!(r.stop, vec!["END".to_string()]);
    }
}

#[cfg(test)]
mod paths_agree {
    use super::*;

    /// Both parsers on `body`: the typed one must either decline or agree with the exact one.
    fn check(body: &str) -> Option<ChatRequest> {
        let exact = exact::parse_request(body.as_bytes());
        let typed = typed::parse_request(body);
        if let Some(t) = &typed {
            assert_eq!(Ok(t), exact.as_ref().map_err(|e| &e.message), "{body}");
        }
        typed
    }

    #[test]
    fn typed_path_takes_well_formed_requests_like_the_exact_one() {
        let taken = [
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"developer","content":"d","name":"n"},{"role":"user","content":[{"type":"text","text":"t"},{"type":"image_url","image_url":{"url":"http://x/a.png","detail":"low"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","function":{"name":"g"}}],"refusal":null,"reasoning_content":"r","function_call":null},{"role":"tool","tool_call_id":"c1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"a":{"type":"integer"}}},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,"temperature":0.5,"top_p":1,"max_tokens":7,"max_completion_tokens":9,"stop":["a","b"],"seed":-3,"presence_penalty":0.1,"frequency_penalty":-0.2,"n":1,"logprobs":true,"top_logprobs":2,"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},"reasoning_effort":"low","stream":true,"stream_options":{"include_usage":true},"safety_settings":[{"category":"harassment","threshold":"block_none"}],"user":"u","metadata":{"k":"v"},"prediction":{"type":"content"},"store":null}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required","stop":"END","response_format":{"type":"json_object"},"temperature":null,"stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"\u00e9\n\"","extra_key":[1,{"a":null}]}],"tool_choice":null,"tools":null,"stop":null,"x":1,"x":2}"#,
            "\n {\"messages\":[{\"role\":\"user\",\"content\":[]}],\"model\":\"m\"} \n",
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}},{"type":"file","file":{"file_data":"JVBERi0=","file_id":null}},{"type":"file","file":{"file_id":"file-1","filename":"b.pdf","other":1}},{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},{"type":"input_audio","input_audio":{"format":"mp3","data":"SUQz"},"prompt_cache_breakpoint":null}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","function":{"name":"f"}}],"reasoning_details":[{"type":"reasoning.text","text":"t","signature":"s","format":"anthropic-claude-v1","index":0},{"type":"reasoning.encrypted","data":"d","format":null},{"type":"reasoning.summary","summary":"x"},{"type":"thinking","thinking":"t"}]},{"role":"assistant","content":"x","reasoning_details":null},{"role":"assistant","content":"x","reasoning_details":[]}]}"#,
        ];
        for body in taken {
            assert!(check(body).is_some(), "typed path declined {body}");
        }
    }

    #[test]
    fn typed_path_declines_what_only_the_exact_one_can_word_or_decide() {
        let declined = [
            "{",
            "[]",
            r#"{"model":"m"}"#,
            r#"{"model":"m","messages":[]}"#,
            r#"{"model":null,"messages":[{"role":"user","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"wizard"}]}"#,
            r#"{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"text":"no type"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":null}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"x","file_id":"y"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf,x"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:;base64,x"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":5}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":["x"]}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"ogg"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav","format":"mp3"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"refusal","refusal":"no"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x","function_call":{}}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":null,"function":{"name":"f"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","function":{"name":"f"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"functions":[]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"function_call":null}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{}}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[["function",{"name":"f"}]]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":["function",{"name":"f"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            r#"{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","role":"user","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x","other":"\ud800"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":{}}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[["reasoning.text"]]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[{"text":"t"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[{"type":"reasoning.encrypted"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[{"type":"reasoning.text","signature":5}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[{"type":"reasoning.text","text":"a","text":"b"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":"x","reasoning_details":[{"type":"reasoning.summary","data":1}]}]}"#,
        ];
        for body in declined {
            assert!(check(body).is_none(), "typed path took {body}");
        }
    }

    #[test]
    fn a_duplicate_key_still_means_the_last_one() {
        let r = parse_request(
            br#"{"model":"m","messages":[{"role":"user","content":"x","content":"y"}],"model":"n"}"#,
        )
        .unwrap();
        assert_eq!(r.model, "n");
        assert_eq!(
            r.messages[0].content,
            Some(switchyard_core::Content::Text("y".into()))
        );
    }
}
