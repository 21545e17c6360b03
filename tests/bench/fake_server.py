#!/usr/bin/env python3
"""A stand-in for an SGLang-compatible server, for the bench and eval tests (stdlib only).

Answers /generate, /v1/completions and /v1/chat/completions with the response shapes of SGLang
(docs: spec/serving-api.md sections 1.4-1.6, 1.9, 1.10), streaming with chunked SSE. The prompt
picks a behaviour, so one run can mix good and broken requests:
  FAIL500    -> HTTP 500 with an error body
  MALFORMED  -> one good event, then a line that is not JSON
  DROP       -> one good event, then the connection is closed mid-body
  STREAMERR  -> an error event inside the stream, then [DONE]
  NODONE     -> a complete chunked body that never sends [DONE]
  MULTI      -> two tokens per event
  STALL      -> the response header (streams only), then nothing until the client hangs up
otherwise one token per event ("tok0 tok1 ..."), max_new_tokens / max_tokens of them.
--answers FILE (JSON object suffix -> reply) makes a prompt ending in `suffix` get `reply`.
Prints the port it listens on as the first line of stdout.
"""
import argparse
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"in_flight": 0, "max_in_flight": 0, "requests": 0, "bodies": []}
LOCK = threading.Lock()
ARGS = None
ANSWERS = {}


def prompt_of(path, body):
    if path == "/v1/chat/completions":
        return body["messages"][-1]["content"]
    if path == "/v1/completions":
        return body["prompt"]
    return body.get("text", "")


def max_tokens_of(path, body):
    if path == "/v1/chat/completions":
        return body.get("max_completion_tokens", body.get("max_tokens", 16))
    if path == "/v1/completions":
        return body.get("max_tokens", 16)
    return body.get("sampling_params", {}).get("max_new_tokens", 128)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, obj):
        self.chunk("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n")

    def parse_request(self):
        # Routes are matched on the path alone: bench_serving's flush sends "?timeout=...".
        ok = super().parse_request()
        self.path = self.path.split("?", 1)[0]
        return ok

    def do_GET(self):
        if self.path == "/get_server_info":
            info = {"version": "fake", "internal_states": [{}]}
            if ARGS.accept_length is not None:
                info["internal_states"][0]["avg_spec_accept_length"] = ARGS.accept_length
            self.send_json(200, info)
        elif self.path == "/get_model_info":
            self.send_json(200, {"model_path": "fake-model", "is_generation": True})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        elif self.path == "/stats":
            with LOCK:
                self.send_json(200, STATE)
        elif self.path == "/health":
            self.send_json(200, {})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path == "/flush_cache":
            self.send_json(200, {})
            return
        if self.path not in ("/generate", "/v1/completions", "/v1/chat/completions"):
            self.send_json(404, {"error": "not found"})
            return
        body = json.loads(raw)
        with LOCK:
            STATE["in_flight"] += 1
            STATE["requests"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
            if ARGS.record:
                STATE["bodies"].append(body)
        try:
            self.answer(body)
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def answer(self, body):
        path = self.path
        prompt = prompt_of(path, body)
        n = max_tokens_of(path, body)
        if "FAIL500" in prompt:
            self.send_json(500, {"object": "error", "message": "Internal server error: forced",
                                 "type": "InternalServerError", "param": None, "code": 500})
            return
        reply = None
        for suffix, text in ANSWERS.items():
            if prompt.endswith(suffix):
                reply = text
                break
        if reply is not None:
            # A token is a word with the whitespace before it; trailing whitespace joins the last.
            tokens = re.findall(r"\s*\S+", reply) or [reply]
            tokens[-1] += reply[len("".join(tokens)):]
            tokens = tokens[:n]
        else:
            tokens = ["tok%d " % i for i in range(n)]
        if not body.get("stream", False):
            if "STALL" in prompt:
                self.stall()
                return
            self.send_json(200, self.whole(path, body, "".join(tokens), len(tokens)))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if "STALL" in prompt:
            self.wfile.flush()
            self.stall()
            return
        step = 2 if "MULTI" in prompt else 1
        rid = "0123456789abcdef0123456789abcdef"
        if path == "/v1/chat/completions":
            self.event({"id": rid, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            self.event({"id": rid, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"reasoning_content": "thinking"}, "finish_reason": None}]})
        text = ""
        sent = 0
        while sent < len(tokens):
            piece = "".join(tokens[sent:sent + step])
            sent = min(sent + step, len(tokens))
            text += piece
            time.sleep(ARGS.token_delay)
            if path == "/generate":
                self.event({"text": text, "output_ids": [], "meta_info": {
                    "id": rid, "finish_reason": None, "prompt_tokens": 3,
                    "completion_tokens": sent, "cached_tokens": 0}})
            elif path == "/v1/completions":
                self.event({"id": rid, "object": "text_completion", "choices": [
                    {"index": 0, "text": piece, "logprobs": None, "finish_reason": None}],
                    "usage": None})
            else:
                self.event({"id": rid, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            if "MALFORMED" in prompt:
                self.chunk("data: {\"text\": \"broken\n\n")
                break
            if "DROP" in prompt:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if "STREAMERR" in prompt:
                self.event({"error": {"message": "engine exploded"}})
                break
        if path != "/generate" and (body.get("stream_options") or {}).get("include_usage"):
            self.event({"id": rid, "choices": [], "usage": {
                "prompt_tokens": 3, "completion_tokens": sent, "total_tokens": 3 + sent}})
        if "NODONE" not in prompt:
            self.event("[DONE]")
        self.chunk("")  # terminating zero-length chunk

    def stall(self):
        """Holds the connection, sending nothing, until the client closes it."""
        self.close_connection = True
        try:
            while self.connection.recv(4096):
                pass
        except OSError:
            pass

    def whole(self, path, body, text, count):
        usage = {"prompt_tokens": 3, "completion_tokens": count, "total_tokens": 3 + count}
        if path == "/generate":
            return {"text": text, "output_ids": [], "meta_info": {
                "id": "x", "finish_reason": {"type": "length", "length": count},
                "prompt_tokens": 3, "completion_tokens": count, "cached_tokens": 0}}
        if path == "/v1/completions":
            return {"id": "x", "object": "text_completion", "choices": [
                {"index": 0, "text": text, "finish_reason": "length"}], "usage": usage}
        return {"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text,
                                     "reasoning_content": None, "tool_calls": None},
             "finish_reason": "length"}], "usage": usage}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048


def main():
    global ARGS, ANSWERS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-delay", type=float, default=0.001)
    parser.add_argument("--accept-length", type=float, default=None)
    parser.add_argument("--answers", default=None)
    parser.add_argument("--record", action="store_true")
    ARGS = parser.parse_args()
    if ARGS.answers:
        with open(ARGS.answers) as f:
            ANSWERS = json.load(f)
    server = Server(("127.0.0.1", ARGS.port), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
