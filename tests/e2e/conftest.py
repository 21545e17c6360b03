"""End-to-end tests: the real dsserve binary serving real checkpoints, driven by real clients."""
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("DSSERVE_BIN", ROOT / "build" / "dsserve"))
FORCED_TEXT = "Let me think about the weather</think>It is sunny in Paris."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=60):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Server:
    def __init__(self, args, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="dsserve-e2e-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([str(BINARY), "serve", "--port", str(self.port), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.output())
            try:
                if http("GET", self.url + "/health", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy:\n" + self.output())

    def output(self):
        return pathlib.Path(self.log.name).read_text(errors="replace")

    def info(self):
        return json.loads(http("GET", self.url + "/get_server_info")[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="dsserve-e2e-") as d:
        yield pathlib.Path(d)


@pytest.fixture(scope="session")
def tiny_model(workdir):
    path = workdir / "tiny"
    subprocess.run([str(BINARY), "make-model", str(path), "--preset", "tiny"], check=True,
                   capture_output=True)
    return path


@pytest.fixture(scope="session")
def forced_model(workdir):
    path = workdir / "forced"
    subprocess.run([str(BINARY), "make-model", str(path), "--preset", "tiny",
                    "--json-model-override-args", '{"num_hidden_layers": 2}',
                    "--force-output", FORCED_TEXT], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def server(tiny_model):
    s = Server(["--model-path", str(tiny_model), "--served-model-name", "deepseek-ai/DeepSeek-V3.2",
                "--enable-metrics", "--enable-cache-report", "--max-total-tokens", "65536",
                "--decode-log-interval", "4"])
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="session")
def forced_server(forced_model):
    s = Server(["--model-path", str(forced_model), "--served-model-name", "forced"])
    yield s
    assert s.stop() == 0, s.output()


def sse_events(raw: bytes):
    """Splits an SSE body into its data payloads, checking the framing byte for byte."""
    text = raw.decode()
    assert text.endswith("data: [DONE]\n\n"), text[-200:]
    events = text.split("\n\n")
    assert events[-1] == ""
    out = []
    for e in events[:-1]:
        assert e.startswith("data: "), e
        out.append(e[len("data: "):])
    return out
