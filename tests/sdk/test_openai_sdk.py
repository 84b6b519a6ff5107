"""The official OpenAI Python SDK against a running gateway: drop-in compatibility proven by
the SDK's own parsing, not ours."""

import json

import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_plain_completion(client, mocks):
    r = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.choices[0].message.content == "Hello from primary! You said: hi"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == "primary-model"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    assert len(mocks["fallback"].requests()) == 0


def test_streaming_with_usage(client, mocks):
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Hello from primary! You said: stream please"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_tool_call(client, mocks):
    r = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    sent = mocks["primary"].requests()[0]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_streamed_tool_call(client, mocks):
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    name, args, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == {"location": "Paris"}
    assert finish == "tool_calls"


def test_failover_is_invisible_to_the_sdk(client, mocks):
    mocks["primary"].fault({"fault": {"kind": "status", "status": 503}, "count": 1})
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )
    r = raw.parse()
    assert r.choices[0].message.content == "Hello from fallback! You said: hi"
    assert raw.headers["x-switchyard-target"] == "fallback"
    assert raw.headers["x-switchyard-attempts"] == "2"


def test_unknown_model_raises_not_found(client, mocks):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404
    assert "nope" in e.value.message


def test_bad_request_raises_bad_request(client, mocks):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="chat", messages=[{"role": "wizard", "content": "x"}])
    assert e.value.status_code == 400


def test_upstream_auth_error_raises_and_does_not_leak_the_key(client, mocks):
    mocks["primary"].fault({"fault": {"kind": "status", "status": 401}, "count": 1})
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert "sk-sdk-test-secret" not in str(e.value.body)
    assert len(mocks["fallback"].requests()) == 0


def test_stream_cut_mid_answer_raises_in_the_sdk(client, mocks):
    mocks["primary"].fault({"fault": {"kind": "drop_after", "chunks": 2}, "count": 1})
    mocks["fallback"].fault({"fault": {"kind": "status", "status": 503}, "always": True})
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "a long answer please"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
