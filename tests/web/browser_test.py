#!/usr/bin/env python3
"""The web page in headless Chromium, driven by Selenium.

- Generator: clicking options gives exactly what `dsserve recipe` prints (a scripted sample of
  clicks, checked against both the CLI line the page shows and the arguments the test expects),
  and every one of the 640 combinations rendered by the page equals the CLI's output.
- Disabled choices carry their reasons; copy button; dark mode; 360 px layout; labels and
  keyboard use (Tab reaches every option group and the copy button).
- Playground against a stub SSE stream (thinking shown apart from the answer while it streams,
  tool calls assembled), served with the page by Python's http.server (index.html at /, the
  other files under /static/), and against a real `dsserve serve` on the embedded tiny model:
  the page it ships, and a reply that appears piece by piece.

Needs: Debian packages chromium and chromium-driver, PyPI package selenium. Without them the
script prints why and exits 77, which ctest reports as skipped; with DSSERVE_REQUIRE_BROWSER=1 in
the environment it fails instead.

    python3 tests/web/browser_test.py --dsserve build/dsserve --web-dir web \
        --table build/src/web/recipe-table.json --artifacts build/test-artifacts/web
"""
import argparse
import http.server
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

SKIP = 77
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

ARGS = None
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported by main()
    webdriver = None


# ---------------------------------------------------------------- the CLI

def cli(args):
    """What `dsserve recipe ARGS` prints: stdout when it succeeds, the error block otherwise."""
    proc = subprocess.run([ARGS.dsserve, "recipe"] + shlex.split(args), capture_output=True,
                          text=True, check=False)
    text = proc.stdout if proc.returncode == 0 else proc.stderr
    assert proc.returncode in (0, 1), (args, proc.returncode, proc.stderr)
    assert text.endswith("\n"), repr(text)
    return text[:-1]


def cli_line(line):
    """Runs the `dsserve recipe ...` line the page shows."""
    prefix = "dsserve recipe"
    assert line.startswith(prefix), line
    return cli(line[len(prefix):])


# ---------------------------------------------------------------- stub server

STUB_MODEL = "stub-model"


def sse(obj):
    return ("data: " + json.dumps(obj) + "\n\n").encode()


def chunk(delta=None, finish=None, choices=True, usage=None):
    body = {"id": "0123", "object": "chat.completion.chunk", "created": 1, "model": STUB_MODEL}
    body["choices"] = [{"index": 0, "delta": delta or {}, "logprobs": None,
                        "finish_reason": finish, "matched_stop": None}] if choices else []
    if usage:
        body["usage"] = usage
    return body


# A stream shaped as the serving spec's section 1.5 describes: role, reasoning, content, one
# tool call in three pieces, finish, usage, [DONE]. `pause` splits it where the test looks.
STUB_STREAM_HEAD = [
    chunk({"reasoning_content": None, "role": "assistant", "content": ""}),
    chunk({"reasoning_content": "The user wants the weather. "}),
    chunk({"reasoning_content": "I should call get_weather."}),
]
STUB_STREAM_TAIL = [
    chunk({"reasoning_content": None, "content": "Let me check that for you."}),
    chunk({"role": None, "content": None, "reasoning_content": None, "tool_calls": [
        {"id": "call_1", "index": 0, "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"role": None, "content": None, "reasoning_content": None, "tool_calls": [
        {"id": None, "index": 0, "type": "function",
         "function": {"name": None, "arguments": "{\"location\": \"Bei"}}]}),
    chunk({"role": None, "content": None, "reasoning_content": None, "tool_calls": [
        {"id": None, "index": 0, "type": "function",
         "function": {"name": None, "arguments": "jing\"}"}}]}),
    chunk({"reasoning_content": None}, finish="tool_calls"),
    chunk(choices=False, usage={"prompt_tokens": 21, "completion_tokens": 9,
                                "total_tokens": 30}),
]


class StubHandler(http.server.SimpleHTTPRequestHandler):
    requests = []
    release = threading.Event()

    def log_message(self, *args):  # keep the test output short
        pass

    def do_GET(self):
        if self.path == "/v1/models":
            body = json.dumps({"object": "list", "data": [{"id": STUB_MODEL}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        StubHandler.requests.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        head = b"".join(sse(c) for c in STUB_STREAM_HEAD)
        tail = b"".join(sse(c) for c in STUB_STREAM_TAIL) + b"data: [DONE]\n\n"
        # Cut inside an event too, as TCP may.
        self.wfile.write(head + tail[:7])
        self.wfile.flush()
        StubHandler.release.wait(timeout=20)
        self.wfile.write(tail[7:])
        self.wfile.flush()


def serve_page(root):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: StubHandler(*a, directory=root, **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def page_root():
    """index.html at /, every other file under /static/, as dsserve serves them."""
    root = tempfile.mkdtemp(prefix="dsserve_web_")
    os.mkdir(os.path.join(root, "static"))
    for name in os.listdir(ARGS.web_dir):
        path = os.path.join(ARGS.web_dir, name)
        if os.path.isfile(path):
            shutil.copy(path, os.path.join(root, "static", name))
    shutil.copy(os.path.join(ARGS.web_dir, "index.html"), os.path.join(root, "index.html"))
    shutil.copy(ARGS.table, os.path.join(root, "static", "recipe-table.json"))
    return root


# ---------------------------------------------------------------- browser

def make_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-extensions", "--disable-sync",
                 "--no-first-run", "--metrics-recording-only", "--window-size=1200,1000",
                 "--force-color-profile=srgb", "--disable-features=Translate"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait(driver, condition, timeout=20):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


class PageTest(unittest.TestCase):
    driver = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.root = page_root()
        cls.server = serve_page(cls.root)
        cls.url = "http://127.0.0.1:%d/" % cls.server.server_address[1]
        cls.driver = make_driver()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.shutdown()
        cls.server.server_close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self):
        d = self.driver
        d.set_window_size(1200, 1000)
        d.get(self.url)
        d.execute_script("localStorage.clear()")
        d.get(self.url)
        wait(d, lambda d: d.find_element(By.ID, "generator").get_attribute("data-ready"))

    def shot(self, name, scroll_to=None):
        if scroll_to:
            self.driver.execute_script(
                "document.getElementById(arguments[0]).scrollIntoView({block: 'center'})",
                scroll_to)
        os.makedirs(ARGS.artifacts, exist_ok=True)
        self.driver.save_screenshot(os.path.join(ARGS.artifacts, name + ".png"))

    def command(self):
        return self.driver.execute_script("return document.getElementById('command').textContent")

    def shown_cli(self):
        return self.driver.find_element(By.ID, "cli-equivalent").text

    def click(self, option, item):
        self.driver.find_element(By.CSS_SELECTOR, "label[for='choice-%s-%s']" % (option, item)).click()

    def choice_input(self, option, item):
        return self.driver.find_element(By.ID, "choice-%s-%s" % (option, item))

    def stub_clipboard(self):
        # Headless Chromium grants no clipboard permission; the page's own call is what is tested.
        self.driver.execute_script("""
            window.__copied = null;
            navigator.clipboard.writeText = function (t) {
              window.__copied = t; return Promise.resolve(); };""")

    def copied(self):
        return self.driver.execute_script("return window.__copied")

    def tab_until(self, element_id, limit=60):
        """Presses Tab from the top of the page until `element_id` has focus; the ids visited."""
        d = self.driver
        d.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
        visited = []
        for _ in range(limit):
            d.switch_to.active_element.send_keys(Keys.TAB)
            focused = d.switch_to.active_element
            visited.append(focused.get_attribute("id") or focused.tag_name)
            if visited[-1] == element_id:
                break
        return visited

    def assert_page_is_cli(self, expected_args):
        text = self.command()
        self.assertEqual(self.shown_cli(), ("dsserve recipe " + expected_args).strip())
        self.assertEqual(text, cli(expected_args), expected_args)
        self.assertEqual(text, cli_line(self.shown_cli()))

    # -------------------------------------------------------- generator

    def test_default_is_cli_default(self):
        self.assertEqual(self.command(), cli(""))
        self.assert_page_is_cli("--hardware h200 --model v32")
        self.shot("generator_default")

    def test_clicks_match_cli(self):
        steps = [
            (("hardware", "b200"), "--hardware b200 --model v32"),
            (("modelname", "v32nvfp4"), "--hardware b200 --model v32nvfp4"),
            # NVFP4 cannot run on H200: the page falls back to H200's default model.
            (("hardware", "h200"), "--hardware h200 --model v32"),
            (("hardware", "mi355x"), "--hardware mi355x --model v32"),
            (("strategy", "dp"), "--hardware mi355x --model v32 --strategy tp,dp"),
            (("strategy", "mtp"), "--hardware mi355x --model v32 --strategy tp,dp,mtp"),
            (("strategy", "ep"), "--hardware mi355x --model v32 --strategy tp,dp,ep,mtp"),
            (("reasoningParser", "enabled"),
             "--hardware mi355x --model v32 --strategy tp,dp,ep,mtp --reasoning-parser"),
            (("toolcall", "enabled"), "--hardware mi355x --model v32 --strategy tp,dp,ep,mtp "
             "--reasoning-parser --tool-call-parser"),
            (("strategy", "dp"), "--hardware mi355x --model v32 --strategy tp,ep,mtp "
             "--reasoning-parser --tool-call-parser"),
            (("modelname", "v32exp"), "--hardware mi355x --model v32exp --strategy tp,ep,mtp "
             "--reasoning-parser --tool-call-parser"),
            # Speciale with tool calling on: the guide's error.
            (("modelname", "v32speciale"), "--hardware mi355x --model v32speciale "
             "--strategy tp,ep,mtp --reasoning-parser --tool-call-parser"),
            (("toolcall", "disabled"), "--hardware mi355x --model v32speciale "
             "--strategy tp,ep,mtp --reasoning-parser"),
            (("hardware", "mi300x"), "--hardware mi300x --model v32speciale "
             "--strategy tp,ep,mtp --reasoning-parser"),
            # MXFP4 is a fixed command: the strategies still selected are named in the error.
            (("modelname", "v32mxfp4"), "--hardware mi300x --model v32mxfp4 "
             "--strategy tp,ep,mtp --reasoning-parser"),
            (("strategy", "ep"), "--hardware mi300x --model v32mxfp4 --strategy tp,mtp "
             "--reasoning-parser"),
            (("strategy", "mtp"), "--hardware mi300x --model v32mxfp4 --reasoning-parser"),
            (("reasoningParser", "disabled"), "--hardware mi300x --model v32mxfp4"),
            (("hardware", "b200"), "--hardware b200 --model v32nvfp4"),
        ]
        errors = 0
        for (option, item), expected in steps:
            self.click(option, item)
            self.assert_page_is_cli(expected)
            if self.command().startswith("# Error:"):
                errors += 1
                if errors == 1:
                    self.shot("generator_error")
        self.assertGreaterEqual(errors, 3)
        self.shot("generator_after_clicks")

    def test_every_combination_matches_cli(self):
        with open(ARGS.table, encoding="utf-8") as f:
            table = json.load(f)
        combos = list(table["recipes"].keys())
        self.assertEqual(len(combos), 640)
        rendered = self.driver.execute_script("""
            var out = [];
            arguments[0].forEach(function (key) {
              var p = key.split(' ');
              window.dsserveRecipe.setState({hardware: p[0], modelname: p[1],
                strategy: p[2].split(','), reasoningParser: p[3], toolcall: p[4]});
              out.push([document.getElementById('cli-equivalent').textContent,
                        document.getElementById('command').textContent]);
            });
            return out;""", combos)
        mismatches = []
        for line, text in rendered:
            if cli_line(line) != text:
                mismatches.append(line)
        self.assertEqual(mismatches, [])

    def test_disabled_choices_say_why(self):
        nvfp4 = self.choice_input("modelname", "v32nvfp4")
        self.assertFalse(nvfp4.is_enabled())
        self.assertEqual(self.driver.find_element(By.ID, "choice-modelname-v32nvfp4-reason").text,
                         "NVFP4 requires B200 (Blackwell)")
        self.assertFalse(self.choice_input("modelname", "v32mxfp4").is_enabled())
        self.assertFalse(self.choice_input("strategy", "tp").is_enabled())
        self.assertTrue(self.choice_input("strategy", "tp").is_selected())
        self.click("modelname", "v32speciale")
        self.assertFalse(self.choice_input("toolcall", "enabled").is_enabled())
        self.assertEqual(self.driver.find_element(By.ID, "choice-toolcall-enabled-reason").text,
                         "DeepSeek-V3.2-Speciale doesn't support tool calling")
        self.click("hardware", "mi300x")
        self.assertTrue(self.choice_input("modelname", "v32mxfp4").is_enabled())
        self.assertFalse(self.choice_input("modelname", "v32nvfp4").is_enabled())
        self.click("modelname", "v32mxfp4")
        for option, item in (("strategy", "dp"), ("strategy", "ep"), ("strategy", "mtp"),
                             ("reasoningParser", "enabled"), ("toolcall", "enabled")):
            self.assertFalse(self.choice_input(option, item).is_enabled(), (option, item))
        self.shot("generator_disabled")

    def test_copy_button_copies_the_command(self):
        self.click("hardware", "b200")
        self.stub_clipboard()
        self.driver.find_element(By.ID, "copy").click()
        wait(self.driver, lambda d: d.find_element(By.ID, "copy-status").text == "Copied")
        self.assertEqual(self.copied(), self.command())

    def test_dark_mode(self):
        d = self.driver
        background = lambda: d.execute_script(
            "return getComputedStyle(document.body).backgroundColor")
        light = background()
        toggle = d.find_element(By.ID, "theme-toggle")
        self.assertEqual(toggle.get_attribute("aria-pressed"), "false")
        toggle.click()
        self.assertEqual(d.find_element(By.TAG_NAME, "html").get_attribute("data-theme"), "dark")
        self.assertEqual(toggle.get_attribute("aria-pressed"), "true")
        self.assertNotEqual(background(), light)
        self.click("modelname", "v32exp")
        self.click("toolcall", "enabled")
        self.shot("generator_dark")
        d.get(self.url)  # the choice is remembered
        wait(d, lambda d: d.find_element(By.ID, "generator").get_attribute("data-ready"))
        self.assertEqual(d.find_element(By.TAG_NAME, "html").get_attribute("data-theme"), "dark")

    def test_usable_at_360px(self):
        d = self.driver
        d.set_window_size(360, 900)
        width = d.execute_script("return window.innerWidth")
        self.assertLessEqual(width, 360)
        self.click("hardware", "mi355x")
        self.click("strategy", "mtp")
        self.click("toolcall", "enabled")
        overflow = d.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        self.assertLessEqual(overflow, 0, "page scrolls sideways at 360 px")
        d.find_element(By.CSS_SELECTOR, "#tools-details summary").click()
        # Every rendered control and text block of both sections lies inside the viewport.
        outside = d.execute_script("""
            var width = document.documentElement.clientWidth, out = [];
            document.querySelectorAll(
                'label.choice, button, textarea, input:not(.choice input), summary, label, ' +
                'pre, code, h1, h2, p').forEach(function (el) {
              var r = el.getBoundingClientRect();
              if (r.width === 0 && r.height === 0) return;  // not rendered
              if (r.left < -0.5 || r.right > width + 0.5) {
                out.push((el.id || el.tagName) + ' ' + el.textContent.slice(0, 40) + ' [' +
                         Math.round(r.left) + ', ' + Math.round(r.right) + ']');
              }
            });
            return out;""")
        self.assertEqual(outside, [])
        overflow = d.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        self.assertLessEqual(overflow, 0, "the open tools editor makes the page scroll sideways")
        self.assertEqual(self.command(), cli(
            "--hardware mi355x --model v32 --strategy tp,mtp --tool-call-parser"))
        d.execute_script("window.scrollTo(0, 0)")
        self.shot("narrow_360_generator")
        d.execute_script("document.getElementById('playground-title').scrollIntoView()")
        self.shot("narrow_360_playground")

    def test_accessibility_basics(self):
        d = self.driver
        self.assertEqual(d.find_element(By.TAG_NAME, "html").get_attribute("lang"), "en")
        unnamed = d.execute_script("""
            function name(el) {
              if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
              var by = el.getAttribute('aria-labelledby');
              if (by) return by.split(' ').map(function (id) {
                var t = document.getElementById(id); return t ? t.textContent : ''; }).join(' ');
              if (el.labels && el.labels.length) return el.labels[0].textContent;
              if (['BUTTON', 'SUMMARY', 'A'].indexOf(el.tagName) >= 0) return el.textContent;
              return '';
            }
            var out = [];
            document.querySelectorAll(
                'input, textarea, select, button, summary, a[href], pre[tabindex]')
              .forEach(function (el) { if (!name(el).trim()) out.push(el.outerHTML); });
            document.querySelectorAll('fieldset').forEach(function (f) {
              var l = f.querySelector('legend');
              if (!l || !l.textContent.trim()) out.push(f.id);
            });
            return out;""")
        self.assertEqual(unnamed, [])
        # Keyboard: Tab reaches the hardware choices; arrows move the selection; Space toggles
        # a strategy; focus is visible.
        d.execute_script("document.activeElement && document.activeElement.blur()")
        focused = None
        for _ in range(12):
            d.switch_to.active_element.send_keys(Keys.TAB)
            focused = d.switch_to.active_element.get_attribute("id")
            if focused.startswith("choice-hardware-"):
                break
        self.assertEqual(focused, "choice-hardware-h200")
        outline = d.execute_script(
            "return getComputedStyle(document.activeElement.parentElement).outlineStyle")
        self.assertNotEqual(outline, "none")
        d.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
        self.assertEqual(d.switch_to.active_element.get_attribute("id"), "choice-hardware-b200")
        self.assertEqual(self.command(), cli("--hardware b200 --model v32"))
        for _ in range(12):
            d.switch_to.active_element.send_keys(Keys.TAB)
            if d.switch_to.active_element.get_attribute("id") == "choice-strategy-dp":
                break
        self.assertEqual(d.switch_to.active_element.get_attribute("id"), "choice-strategy-dp")
        d.switch_to.active_element.send_keys(Keys.SPACE)
        self.assertEqual(self.command(), cli("--hardware b200 --model v32 --strategy tp,dp"))
        self.shot("keyboard_focus")

    def test_keyboard_reaches_every_option_and_copy(self):
        d = self.driver
        with open(ARGS.table, encoding="utf-8") as f:
            option_names = {o["name"] for o in json.load(f)["options"]}
        self.stub_clipboard()
        visited = self.tab_until("copy")
        self.assertEqual(visited[-1], "copy", visited)
        # A radio group is one Tab stop (arrows move inside it); each usable checkbox is its own.
        reached = {i.split("-")[1] for i in visited if i.startswith("choice-")}
        self.assertEqual(reached, option_names)
        usable_checkboxes = d.execute_script("""
            return Array.from(document.querySelectorAll('#generator input[type=checkbox]'))
              .filter(function (el) { return !el.disabled; })
              .map(function (el) { return el.id; });""")
        self.assertTrue(usable_checkboxes)
        for checkbox in usable_checkboxes:
            self.assertIn(checkbox, visited)
        d.switch_to.active_element.send_keys(Keys.ENTER)
        wait(d, lambda d: d.find_element(By.ID, "copy-status").text == "Copied")
        self.assertEqual(self.copied(), self.command())
        self.assertEqual(self.command(), cli(""))
        self.shot("keyboard_copy", scroll_to="copy")

    # -------------------------------------------------------- playground, stub stream

    def test_playground_streams_thinking_answer_and_tool_calls(self):
        d = self.driver
        StubHandler.requests.clear()
        StubHandler.release.clear()
        wait(d, lambda d: d.find_element(By.ID, "model").get_attribute("value") == STUB_MODEL)
        tools = json.loads(d.find_element(By.ID, "tools").get_attribute("value"))
        self.assertEqual(tools[0]["function"]["name"], "get_weather")
        self.assertEqual(tools[0]["function"]["parameters"]["required"], ["location"])
        d.find_element(By.CSS_SELECTOR, "label[for='use-tools']").click()
        d.find_element(By.ID, "send").click()
        # Thinking arrives first and is shown on its own while the answer has not come yet.
        wait(d, lambda d: d.find_element(By.ID, "thinking-text").text ==
             "The user wants the weather. I should call get_weather.")
        self.assertFalse(d.find_element(By.ID, "answer-out").is_displayed())
        self.assertEqual(d.find_element(By.ID, "chat-status").text, "Streaming…")
        self.shot("playground_stub_thinking", scroll_to="reply")
        StubHandler.release.set()
        wait(d, lambda d: d.find_element(By.ID, "chat-status").get_attribute("data-finish"))
        self.assertEqual(d.find_element(By.ID, "answer-text").text, "Let me check that for you.")
        self.assertEqual(d.find_element(By.CSS_SELECTOR, "#tool-call-0 .tool-name").text,
                         "get_weather")
        self.assertEqual(d.find_element(By.CSS_SELECTOR, "#tool-call-0 .tool-arguments").text,
                         '{"location": "Beijing"}')
        wait(d, lambda d: "completion tokens" in d.find_element(By.ID, "chat-status").text)
        self.assertEqual(d.find_element(By.ID, "chat-status").text,
                         "Finished: tool_calls · 21 prompt + 9 completion tokens")
        request = StubHandler.requests[-1]
        self.assertTrue(request["stream"])
        self.assertEqual(request["model"], STUB_MODEL)
        self.assertEqual(request["chat_template_kwargs"], {"thinking": True})
        self.assertEqual(request["tools"], tools)
        self.assertEqual(request["messages"],
                         [{"role": "user", "content": "What's the weather in Beijing?"}])
        self.shot("playground_stub_done", scroll_to="reply")

    def test_playground_thinking_switch_and_bad_tools(self):
        d = self.driver
        StubHandler.requests.clear()
        StubHandler.release.set()
        d.find_element(By.CSS_SELECTOR, "label[for='thinking']").click()
        d.find_element(By.ID, "send").click()
        wait(d, lambda d: d.find_element(By.ID, "chat-status").get_attribute("data-finish"))
        self.assertEqual(StubHandler.requests[-1]["chat_template_kwargs"], {"thinking": False})
        self.assertNotIn("tools", StubHandler.requests[-1])
        d.find_element(By.CSS_SELECTOR, "label[for='use-tools']").click()
        d.find_element(By.CSS_SELECTOR, "#tools-details summary").click()
        tools = d.find_element(By.ID, "tools")
        tools.clear()
        tools.send_keys("[{not json")
        d.find_element(By.ID, "send").click()
        self.assertIn("not valid JSON", d.find_element(By.ID, "tools-error").text)
        self.assertEqual(len(StubHandler.requests), 1)


# ---------------------------------------------------------------- real server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REAL_MAX_TOKENS = 24


class RealServerTest(unittest.TestCase):
    """The page as `dsserve serve` ships it, with the playground talking to the tiny model."""

    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.log = tempfile.TemporaryFile()
        cls.proc = subprocess.Popen([ARGS.dsserve, "serve", "--port", str(cls.port)],
                                    stdout=cls.log, stderr=subprocess.STDOUT)
        cls.url = "http://127.0.0.1:%d/" % cls.port
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(cls.url + "health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if cls.proc.poll() is not None or time.time() > deadline:
                cls.proc.kill()
                cls.proc.wait()
                cls.log.seek(0)
                output = cls.log.read().decode(errors="replace")[-4000:]
                cls.log.close()
                raise AssertionError("dsserve serve did not come up:\n" + output)
            time.sleep(0.2)
        cls.driver = make_driver()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.log.close()

    def test_page_and_streamed_reply(self):
        d = self.driver
        d.set_window_size(1200, 1000)
        d.get(self.url)
        wait(d, lambda d: d.find_element(By.ID, "generator").get_attribute("data-ready"))
        self.assertEqual(d.execute_script(
            "return document.getElementById('command').textContent"), cli(""))
        prompt = d.find_element(By.ID, "prompt")
        prompt.clear()
        prompt.send_keys("Hello!")
        count = d.find_element(By.ID, "max-tokens")
        count.clear()
        count.send_keys(str(REAL_MAX_TOKENS))
        # Counts the times the shown reply grew. Mutations made while handling one network read
        # reach the observer together, so two or more growths mean the reply arrived in pieces
        # and was shown as it came.
        d.execute_script("""
            window.__growths = 0;
            var shown = 0;
            var observer = new MutationObserver(function () {
              var n = document.getElementById('thinking-text').textContent.length +
                      document.getElementById('answer-text').textContent.length;
              if (n > shown) { shown = n; window.__growths += 1; }
            });
            ['thinking-text', 'answer-text'].forEach(function (id) {
              observer.observe(document.getElementById(id),
                               {childList: true, characterData: true, subtree: true});
            });""")
        d.find_element(By.ID, "send").click()
        status = d.find_element(By.ID, "chat-status")
        wait(d, lambda d: "completion tokens" in status.text or status.text.startswith("Error"),
             timeout=90)
        self.assertFalse(status.text.startswith("Error"), status.text)
        self.assertIn(status.get_attribute("data-finish"), ("length", "stop"))
        completion_tokens = int(status.text.split(" + ")[1].split()[0])
        self.assertGreaterEqual(completion_tokens, 1)
        self.assertLessEqual(completion_tokens, REAL_MAX_TOKENS)
        streamed = d.find_element(By.ID, "thinking-text").get_attribute("textContent") + \
            d.find_element(By.ID, "answer-text").get_attribute("textContent")
        self.assertTrue(streamed, "no text shown")
        # One growth per token is typical (the tiny model's random weights almost never pick EOS
        # within REAL_MAX_TOKENS); one growth in all means the page waited for the whole reply.
        self.assertGreaterEqual(d.execute_script("return window.__growths"), 2,
                                "the reply was shown all at once")
        d.execute_script("document.getElementById('reply').scrollIntoView({block: 'center'})")
        os.makedirs(ARGS.artifacts, exist_ok=True)
        d.save_screenshot(os.path.join(ARGS.artifacts, "playground_real_server.png"))


# ---------------------------------------------------------------- main

def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsserve", required=True)
    parser.add_argument("--web-dir", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--artifacts", required=True)
    ARGS, rest = parser.parse_known_args()
    missing = [what for what, ok in (
        ("Debian package chromium", os.path.exists(CHROMIUM)),
        ("Debian package chromium-driver", os.path.exists(CHROMEDRIVER)),
        ("PyPI package selenium", webdriver is not None)) if not ok]
    if missing:
        if os.environ.get("DSSERVE_REQUIRE_BROWSER") == "1":
            print("FAILED: missing " + ", ".join(missing))
            return 1
        print("SKIPPED: missing " + ", ".join(missing))
        return SKIP
    for path in (ARGS.dsserve, ARGS.table):
        if not os.path.exists(path):
            print("missing " + path + " (build dsserve and web_test first)")
            return 1
    # The folder holds this run's screenshots only, so a missing one is not hidden by an old one.
    if os.path.isdir(ARGS.artifacts):
        for name in os.listdir(ARGS.artifacts):
            if name.endswith(".png"):
                os.remove(os.path.join(ARGS.artifacts, name))
    # Selenium must not go looking for drivers on the network.
    os.environ["SE_OFFLINE"] = "true"
    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
