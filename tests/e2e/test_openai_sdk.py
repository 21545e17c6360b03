"""The deployment guide's client examples, unchanged apart from base_url and model name."""
import json

import openai
import pytest

from conftest import FORCED_TEXT

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get current weather for a location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}]


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="EMPTY", timeout=60, max_retries=0)


def test_streaming_with_thinking(server):
    stream = client(server).chat.completions.create(
        model="deepseek-ai/DeepSeek-V3.2",
        messages=[{"role": "user", "content": "What is 15% of 240?"}],
        max_tokens=24, stream=True,
        extra_body={"chat_template_kwargs": {"thinking": True}},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["length"], ["stop"], ["tool_calls"])
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and len(next(iter(ids))) == 32
    # Thinking on: the output starts inside the reasoning.
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                        for c in chunks if c.choices)
    assert reasoning


def test_forced_reasoning_and_content_split(forced_server):
    c = client(forced_server)
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    full = c.chat.completions.create(model="forced", messages=msgs, max_tokens=64,
                                     extra_body={"chat_template_kwargs": {"thinking": True}})
    m = full.choices[0].message
    assert m.reasoning_content == "Let me think about the weather"
    assert m.content == "It is sunny in Paris."
    assert full.choices[0].finish_reason == "stop"
    stream = c.chat.completions.create(model="forced", messages=msgs, max_tokens=64, stream=True,
                                       stream_options={"include_usage": True},
                                       extra_body={"chat_template_kwargs": {"thinking": True}})
    chunks = list(stream)
    reasoning = "".join(getattr(ch.choices[0].delta, "reasoning_content", None) or "" for ch in chunks if ch.choices)
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert (reasoning, content) == (m.reasoning_content, m.content)
    # Reasoning chunks all come before content chunks.
    kinds = [("r" if getattr(ch.choices[0].delta, "reasoning_content", None) else "c")
             for ch in chunks if ch.choices and (getattr(ch.choices[0].delta, "reasoning_content", None) or ch.choices[0].delta.content)]
    assert kinds == sorted(kinds, reverse=True)
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    # Thinking off: the prompt ends with </think>, which is part of the forced text, so the model
    # continues after it: all content, no reasoning.
    off = c.chat.completions.create(model="forced", messages=msgs, max_tokens=64)
    assert off.choices[0].message.content == "It is sunny in Paris."
    assert off.choices[0].message.reasoning_content is None


def test_stop_string_never_leaks(forced_server):
    c = client(forced_server)
    kwargs = dict(model="forced", messages=[{"role": "user", "content": "Hi"}], max_tokens=64,
                  stop=["sunny"])
    full = c.chat.completions.create(**kwargs)
    assert full.choices[0].message.content == "It is "
    assert full.choices[0].finish_reason == "stop"
    chunks = list(c.chat.completions.create(stream=True, **kwargs))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "It is " and "sun" not in text


def test_tool_calling_request_is_well_formed(server):
    resp = client(server).chat.completions.create(
        model="deepseek-ai/DeepSeek-V3.2",
        messages=[{"role": "user", "content": "What's the weather in Beijing?"}],
        tools=TOOLS, max_tokens=16)
    choice = resp.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert isinstance(choice.message.content, str)
    assert choice.message.tool_calls is None or all(t.type == "function" for t in choice.message.tool_calls)
    stream = client(server).chat.completions.create(
        model="deepseek-ai/DeepSeek-V3.2",
        messages=[{"role": "user", "content": "What's the weather in Beijing?"}],
        tools=TOOLS, max_tokens=16, stream=True)
    assert [c for c in stream][-1].choices[0].finish_reason is not None


def test_tool_result_round_trip(server):
    messages = [
        {"role": "user", "content": "What's the weather in Beijing?"},
        {"role": "assistant", "content": "", "reasoning_content": "I should call the tool.",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": json.dumps({"location": "Beijing"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"temperature": 22, "condition": "sunny"})},
    ]
    for thinking in (False, True):
        resp = client(server).chat.completions.create(
            model="deepseek-ai/DeepSeek-V3.2", messages=messages, tools=TOOLS, max_tokens=12,
            extra_body={"chat_template_kwargs": {"thinking": thinking}})
        assert resp.choices[0].finish_reason in ("stop", "length", "tool_calls")
        assert resp.usage.prompt_tokens > 40


def test_completions_and_models(server):
    c = client(server)
    models = c.models.list()
    assert models.data[0].id == "deepseek-ai/DeepSeek-V3.2"
    r = c.completions.create(model="x", prompt="The capital of France is", max_tokens=5, n=2)
    assert len(r.choices) == 2 and r.usage.completion_tokens == 10
    chunks = list(c.completions.create(model="x", prompt="Hello", max_tokens=4, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("nope")


def test_generate_cli_prompt_on_forced_model(forced_model):
    import subprocess
    from conftest import BINARY
    out = subprocess.run([str(BINARY), "generate", "--model-path", str(forced_model), "--prompt", "Hello",
                          "--max-new-tokens", "40", "--temperature", "0"],
                         check=True, capture_output=True, text=True).stdout
    assert out == FORCED_TEXT + "\n"
