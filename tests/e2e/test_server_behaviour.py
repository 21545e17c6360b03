"""Native routes, bad input, load, disconnects, prefix caching, flags and shutdown."""
import asyncio
import json
import socket
import subprocess
import threading
import time

from conftest import BINARY, Server, http, sse_events

CHAT = "/v1/chat/completions"


def chat_body(**kw):
    body = {"model": "m", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}
    body.update(kw)
    return body


BAD_REQUESTS = [
    # (method, path, body bytes or dict, headers, expected status, fragment of the message)
    ("POST", CHAT, b"{not json", None, 400, "JSON"),
    ("POST", CHAT, b"[1, 2]", None, 400, "object"),
    ("POST", CHAT, chat_body(), {"Content-Type": "text/plain"}, 400, "application/json"),
    ("POST", CHAT, {"model": "m"}, None, 400, "messages"),
    ("POST", CHAT, {"messages": []}, None, 400, "Messages cannot be empty."),
    ("POST", CHAT, {"messages": "hi"}, None, 400, "messages"),
    ("POST", CHAT, {"messages": [{"content": "hi"}]}, None, 400, "role"),
    ("POST", CHAT, {"messages": [{"role": "wizard", "content": "hi"}]}, None, 400, "role"),
    ("POST", CHAT, {"messages": [{"role": "user", "content": 5}]}, None, 400, "content"),
    ("POST", CHAT, chat_body(temperature=-1), None, 400, "temperature must be a non-negative finite number, got -1.0."),
    ("POST", CHAT, chat_body(temperature="hot"), None, 400, "temperature"),
    ("POST", CHAT, chat_body(top_p=0), None, 400, "top_p must be in (0, 1], got 0.0."),
    ("POST", CHAT, chat_body(top_p=1.5), None, 400, "top_p"),
    ("POST", CHAT, chat_body(top_k=0), None, 400, "top_k"),
    ("POST", CHAT, chat_body(min_p=2), None, 400, "min_p"),
    ("POST", CHAT, chat_body(frequency_penalty=3), None, 400, "frequency_penalty"),
    ("POST", CHAT, chat_body(presence_penalty=-3), None, 400, "presence_penalty"),
    ("POST", CHAT, chat_body(repetition_penalty=0), None, 400, "repetition_penalty"),
    ("POST", CHAT, chat_body(max_tokens=-1), None, 400, "max_completion_tokens"),
    ("POST", CHAT, chat_body(max_tokens=10, min_tokens=20), None, 400, "min_new_tokens"),
    ("POST", CHAT, chat_body(n=0), None, 400, "n must be"),
    ("POST", CHAT, chat_body(logit_bias={"999999": 1}), None, 400, "logit_bias"),
    ("POST", CHAT, chat_body(logit_bias={"abc": 1}), None, 400, "logit_bias"),
    ("POST", CHAT, chat_body(stop=5), None, 400, "stop"),
    ("POST", CHAT, chat_body(max_tokens=200000), None, 400, "Requested token count exceeds the model's maximum context length"),
    ("POST", CHAT, chat_body(tool_choice="required"), None, 400, "Tools cannot be empty if tool choice is set to required."),
    ("POST", CHAT, chat_body(tools=[{"type": "function"}]), None, 400, "tools[0]"),
    ("POST", CHAT, chat_body(tools=[{"type": "function", "function": {"name": "f", "parameters": 7}}]), None, 400, "invalid 'parameters' schema"),
    ("POST", CHAT, chat_body(tools=[{"type": "function", "function": {"name": "f"}}],
                             tool_choice={"type": "function", "function": {"name": "g"}}), None, 400, "Tool 'g' not found in tools list."),
    ("POST", CHAT, chat_body(tool_choice="sometimes"), None, 400, "tool_choice"),
    ("POST", CHAT, chat_body(messages=[{"role": "tool", "content": "x"}]), None, 400, ""),
    ("POST", CHAT, chat_body(messages=[{"role": "assistant", "content": "x", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "not json"}}]}]), None, 400, ""),
    ("POST", CHAT, chat_body(regex="a+"), None, 400, "constrained decoding"),
    ("POST", "/v1/completions", {"prompt": "   "}, None, 400, "empty"),
    ("POST", "/v1/completions", {}, None, 400, "prompt"),
    ("POST", "/v1/completions", {"prompt": [-1, 2]}, None, 400, "non-negative"),
    ("POST", "/v1/completions", {"prompt": [1, 999999]}, None, 400, "vocabulary"),
    ("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 0}, None, 400, "max_tokens"),
    ("POST", "/v1/completions", {"prompt": {"a": 1}}, None, 400, "prompt"),
    ("POST", "/generate", {}, None, 400, "text or input_ids"),
    ("POST", "/generate", {"input_ids": []}, None, 400, "empty"),
    ("POST", "/generate", {"input_ids": ["a"]}, None, 400, "input_ids"),
    ("POST", "/generate", {"text": "hi", "sampling_params": {"temperature": -2}}, None, 400, "temperature"),
    ("POST", "/generate", {"text": "hi", "sampling_params": "hot"}, None, 400, "sampling_params"),
    ("GET", "/v1/models/unknown-model", None, None, 404, "does not exist"),
    ("GET", "/no/such/route", None, None, 404, "Not Found"),
]


def test_oversized_body_is_refused_before_it_is_read(server):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 73400320\r\n\r\n{\"messages\": ")
    reply = s.recv(65536)
    s.close()
    assert reply.startswith(b"HTTP/1.1 413") and b"too large" in reply


def test_bad_inputs_get_4xx_while_good_requests_succeed(server):
    good_results = []

    def good():
        for _ in range(3):
            status, body = http("POST", server.url + CHAT, chat_body(max_tokens=6))
            good_results.append((status, json.loads(body)["choices"][0]["finish_reason"]))

    threads = [threading.Thread(target=good) for _ in range(4)]
    for t in threads:
        t.start()
    assert len(BAD_REQUESTS) + 1 >= 40  # and the oversized body below
    for method, path, body, headers, want, fragment in BAD_REQUESTS:
        status, raw = http(method, server.url + path, body, headers)
        assert status == want, (path, body if not isinstance(body, bytes) else body[:40], status, raw[:300])
        if fragment:
            assert fragment in raw.decode(errors="replace"), (fragment, raw[:300])
        if path.startswith("/v1/") and want == 400:
            err = json.loads(raw)
            assert err["object"] == "error" and err["code"] == 400, err
    for t in threads:
        t.join()
    assert good_results == [(200, "length")] * 12
    assert http("GET", server.url + "/health")[0] == 200


def test_generate_native_route(server):
    status, body = http("POST", server.url + "/generate",
                        {"text": "The capital city of France is", "sampling_params": {"max_new_tokens": 8, "temperature": 0}})
    assert status == 200
    out = json.loads(body)
    assert set(out) == {"text", "output_ids", "meta_info"}
    assert out["meta_info"]["completion_tokens"] == 8 and out["meta_info"]["finish_reason"]["type"] == "length"
    # Prefill only.
    status, body = http("POST", server.url + "/generate", {"text": "warm the cache", "sampling_params": {"max_new_tokens": 0}})
    assert status == 200 and json.loads(body)["text"] == ""
    # Streaming: text is cumulative.
    status, raw = http("POST", server.url + "/generate",
                       {"input_ids": [0, 100, 200], "stream": True, "sampling_params": {"max_new_tokens": 5, "temperature": 0}})
    events = [json.loads(e) for e in sse_events(raw)[:-1]]
    texts = [e["text"] for e in events]
    assert all(texts[i + 1].startswith(texts[i]) for i in range(len(texts) - 1))
    assert events[-1]["meta_info"]["finish_reason"] is not None
    # Batch input gives a list.
    status, body = http("POST", server.url + "/generate", {"text": ["a", "b"], "sampling_params": {"max_new_tokens": 2}})
    assert status == 200 and len(json.loads(body)) == 2


def test_operational_routes(server):
    assert http("GET", server.url + "/health_generate")[0] == 200
    info = json.loads(http("GET", server.url + "/get_model_info")[1])
    assert info["is_generation"] is True and "model_path" in info
    sinfo = server.info()
    assert sinfo["max_total_num_tokens"] == 65536 and "internal_states" in sinfo
    assert sinfo["tool_call_parser"] == "deepseekv32" and sinfo["reasoning_parser"] == "deepseek-v3"
    status, body = http("POST", server.url + "/flush_cache")
    assert status == 200 and body.startswith(b"Cache flushed.")
    metrics = http("GET", server.url + "/metrics")[1].decode()
    for name in ["sglang:prompt_tokens_total", "sglang:generation_tokens_total", "sglang:token_usage",
                 "sglang:cache_hit_rate", "sglang:time_to_first_token_seconds_bucket",
                 "sglang:e2e_request_latency_seconds_count", "sglang:inter_token_latency_seconds_sum",
                 "sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:num_used_tokens",
                 "sglang:gen_throughput", "sglang:spec_accept_length"]:
        assert name in metrics, name
    assert 'model_name="deepseek-ai/DeepSeek-V3.2"' in metrics


def test_step_time_breakdown(server):
    before = server.info()["internal_states"][0]
    status, _ = http("POST", server.url + "/generate",
                     {"text": "time me", "sampling_params": {"max_new_tokens": 12, "ignore_eos": True,
                                                             "temperature": 1.0, "top_p": 0.9}})
    assert status == 200
    st = server.info()["internal_states"][0]
    for key in ["scheduler_plan_seconds", "scheduler_commit_seconds", "sampling_seconds",
                "forward_seconds"]:
        assert st[key] > before[key], key
    # scheduler_seconds is the scheduler's own time, without sampling or the forward.
    assert abs(st["scheduler_seconds"] - st["scheduler_plan_seconds"]
               - st["scheduler_commit_seconds"]) < 1e-6
    lines = [l for l in server.output().splitlines() if "Decode batch." in l]
    assert lines and "gen throughput (token/s): " in lines[-1], server.output()[-2000:]
    assert "ms per step: scheduler " in lines[-1] and ", sampling " in lines[-1]
    assert st["last_gen_throughput"] > 0
    # The CPU server runs one step at a time (the overlap schedule is for GPUs).
    assert st["num_overlapped_steps"] == 0


def test_chat_sse_framing_and_order(server):
    status, raw = http("POST", server.url + CHAT, chat_body(stream=True, max_tokens=5, n=2,
                                                             stream_options={"include_usage": True}))
    assert status == 200
    events = sse_events(raw)
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 10
    for index in (0, 1):
        mine = [c for c in chunks if c["choices"] and c["choices"][0]["index"] == index]
        assert mine[0]["choices"][0]["delta"]["role"] == "assistant"
        assert mine[-1]["choices"][0]["finish_reason"] == "length"


def test_long_shared_prefix_is_cached(server):
    system = "You are a meticulous assistant. " * 60
    a = chat_body(messages=[{"role": "system", "content": system}, {"role": "user", "content": "first"}])
    b = chat_body(messages=[{"role": "system", "content": system}, {"role": "user", "content": "second"}])
    http("POST", server.url + CHAT, a)
    before = server.info()["internal_states"][0]["num_prefill_tokens"]
    status, body = http("POST", server.url + CHAT, b)
    usage = json.loads(body)["usage"]
    after = server.info()["internal_states"][0]["num_prefill_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] > 300
    assert after - before < usage["prompt_tokens"] - 300


def test_disconnect_mid_stream_returns_pages(server):
    body = json.dumps(chat_body(stream=True, max_tokens=5000, ignore_eos=True)).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while got.count(b"data: ") < 5:
        got += s.recv(65536)
    busy = server.info()["internal_states"][0]
    assert busy["num_running_reqs"] == 1 and busy["num_used_tokens"] > busy["num_cached_tokens"]
    s.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        st = server.info()["internal_states"][0]
        if st["num_running_reqs"] == 0 and st["num_used_tokens"] == st["num_cached_tokens"]:
            break
        time.sleep(0.1)
    assert st["num_running_reqs"] == 0 and st["num_used_tokens"] == st["num_cached_tokens"], st
    assert "sglang:num_aborted_requests_total" in http("GET", server.url + "/metrics")[1].decode()


async def one_stream(port, i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"messages": [{"role": "user", "content": f"client {i}"}], "max_tokens": 3,
                       "stream": True}).encode()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


def test_1024_concurrent_streams(server):
    async def run():
        return await asyncio.wait_for(asyncio.gather(*[one_stream(server.port, i) for i in range(1024)]), 300)
    results = asyncio.run(run())
    done = sum(1 for r in results if r.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in r)
    assert done == 1024


async def one_token(port, i):
    """One /generate of one token on a fresh keep-alive connection, closed once answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"text": f"q{i}", "stream": True,
                       "sampling_params": {"max_new_tokens": 1, "temperature": 0}}).encode()
    writer.write(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    data = b""
    try:
        while not data.endswith(b"0\r\n\r\n"):
            chunk = await asyncio.wait_for(reader.read(65536), 30)
            if not chunk:
                break
            data += chunk
    except asyncio.TimeoutError:
        pass
    writer.close()
    return data


def test_many_short_requests_on_fresh_connections(server):
    # Each connection's disconnect watch starts right after its request is read; a readiness
    # report left over from that read once blocked the connection's strand, so about one
    # request in a thousand was never answered.
    async def run():
        sem = asyncio.Semaphore(64)

        async def limited(i):
            async with sem:
                return await one_token(server.port, i)
        return await asyncio.gather(*[limited(i) for i in range(4000)])
    results = asyncio.run(run())
    unanswered = [i for i, r in enumerate(results) if b"data: [DONE]" not in r]
    assert unanswered == [], f"{len(unanswered)} of 4000 unanswered"


def test_api_key_and_flags(tiny_model):
    s = Server(["--model-path", str(tiny_model), "--api-key", "sekret", "--mem-frac", "0.01",
                "--nsa-prefill-backend", "tilelang", "--max-total-tokens", "4096"])
    try:
        assert http("POST", s.url + CHAT, chat_body())[0] == 401
        assert json.loads(http("POST", s.url + CHAT, chat_body())[1]) == {"error": "Unauthorized"}
        assert http("POST", s.url + CHAT, chat_body(), {"Authorization": "Bearer sekret",
                                                       "Content-Type": "application/json"})[0] == 200
        assert http("GET", s.url + "/health")[0] == 200
        assert "has no effect on the CPU backend" in s.output()
        info = json.loads(http("GET", s.url + "/get_server_info", headers={"Authorization": "Bearer sekret"})[1])
        assert info["mem_fraction_static"] == 0.01  # --mem-frac is a unique prefix
    finally:
        assert s.stop() == 0
    for flags, message in [(["--tp", "8"], "needs 8 GPUs"),
                           (["--speculative-algorithm", "EAGLE"], "MTP speculative decoding"),
                           (["--kv-cache-dtype", "fp8_e4m3"], "FP8 KV cache"),
                           (["--tool-call-parser", "deepseekv32", "--served-model-name", "DeepSeek-V3.2-Speciale"], "Speciale")]:
        r = subprocess.run([str(BINARY), "serve", "--model-path", str(tiny_model), *flags],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and message in r.stderr, (flags, r.stderr[-500:])


def test_speciale_rejects_tools(tiny_model):
    s = Server(["--model-path", str(tiny_model), "--served-model-name", "deepseek-ai/DeepSeek-V3.2-Speciale"])
    try:
        assert s.info()["tool_call_parser"] is None
        status, body = http("POST", s.url + CHAT, chat_body(tools=[{"type": "function", "function": {"name": "f"}}]))
        assert status == 400 and b"Speciale does not support tool calls" in body
        assert http("POST", s.url + CHAT, chat_body())[0] == 200
    finally:
        assert s.stop() == 0
