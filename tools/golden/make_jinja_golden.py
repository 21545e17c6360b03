#!/usr/bin/env python3
"""Writes tests/golden/chat/*.json: expected prompts for dsserve's chat encoders.

Oracles:
  * Jinja: Python jinja2 with the environment transformers builds for chat templates
    (transformers/utils/chat_template_utils.py, _compile_jinja_template): an
    ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the loopcontrols extension, a
    {% generation %} tag, transformers' tojson, raise_exception, strftime_now, dict and namespace.
    Rendered over every template in data/chat_templates/ (variants/ included) and the
    chat_template of data/tokenizer/deepseek-v3.2/tokenizer_config.v3.json, for many
    conversations, plus small templates that exercise one feature each.
  * DeepSeek-V3.2 encoder: SGLang's copy of DeepSeek's encoding_dsv32.py from the sglang 0.5.6
    wheel (pure Python), with its tools text replaced by DeepSeek's own, which is taken from the
    official vector data/encoding/deepseek-v3.2/test_output.txt (SGLang's copy has single
    newlines there; docs/chat-encoding.md).
  * CLI requests: OpenAI request bodies, prepared as SGLang's serving_chat prepares them, then
    rendered with the two oracles above.

Exact command (run from the repository root; uses Debian's python3-jinja2):
    pip download sglang==0.5.6 --no-deps -d .whl
    /usr/bin/python3 tools/golden/make_jinja_golden.py --sglang-wheel .whl/sglang-0.5.6-py3-none-any.whl
"""
import argparse
import copy
import importlib.util
import json
import pathlib
import sys
import tempfile
import zipfile
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
OUT = ROOT / "tests" / "golden" / "chat"
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


# ---------------------------------------------------------------- transformers' environment
class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker without tracking: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class TemplateNamespace(jinja2.utils.Namespace):
    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError("underscore-prefixed namespace attribute")


class TemplateDict:
    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env


ENV = make_env()


def render(source, variables):
    """The rendered text, or None when jinja2 raises (any exception, as apply_chat_template)."""
    try:
        return ENV.from_string(source).render(**copy.deepcopy(variables))
    except Exception:  # noqa: BLE001 - every failure is an expected error case
        return None


# ---------------------------------------------------------------- conversations
def call(id_, name, args):
    return {"id": id_, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. 杭州"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7.5}},
        "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the web \"quoted\" \\ backslash",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"}, "filters": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number", "default": 0.5}}}}}
NO_DESC_TOOL = {"type": "function", "function": {
    "name": "ping", "parameters": {"type": "object", "properties": {}}}}

CONVERSATIONS = {
    "plain": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system": {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                            {"role": "user", "content": "What is 2+2?"}]},
    "two_systems": {"messages": [{"role": "system", "content": "Rule one."},
                                 {"role": "system", "content": "Rule two."},
                                 {"role": "user", "content": "Go."}]},
    "multi_turn": {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "No."},
        {"role": "user", "content": "Please?"}]},
    "ends_with_assistant": {"messages": [
        {"role": "user", "content": "Start a story"},
        {"role": "assistant", "content": "Once upon a time"}]},
    "think_in_content": {"messages": [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>hidden</think>Visible answer"},
        {"role": "user", "content": "Q2"}]},
    "reasoning": {"messages": [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Rayleigh scattering.",
         "reasoning_content": "Short wavelengths scatter more."},
        {"role": "user", "content": "And sunsets?"}]},
    "unicode": {"messages": [
        {"role": "system", "content": "你是一个助手。Ünïcødé ✓ “quotes” 'single' \\ back\nslash"},
        {"role": "user", "content": "明天杭州的天气怎么样？😀\t tab\r\nCRLF"}]},
    "empty_content": {"messages": [{"role": "system", "content": ""},
                                   {"role": "user", "content": ""}]},
    "tools": {"tools": [WEATHER_TOOL, SEARCH_TOOL], "messages": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Hangzhou?"}]},
    "tools_no_system": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Paris?"}]},
    "tool_calls": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Hangzhou and Beijing?"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("c1", "get_weather", {"city": "Hangzhou", "days": 2}),
            call("c2", "get_weather", {"city": "北京"})]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 12}"},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny ☀"},
        {"role": "assistant", "content": "Hangzhou 12°C, Beijing sunny."}]},
    "tool_calls_then_user": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            call("c1", "get_weather", {"city": "Oslo"})]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "user", "content": "Thanks, and tomorrow?"}]},
    "tool_result_last": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            call("c1", "get_weather", {"city": "Oslo"})]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"}]},
    "dict_arguments": {"tools": [SEARCH_TOOL], "messages": [
        {"role": "user", "content": "Search"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c9", "type": "function", "function": {"name": "search", "arguments": {
                "query": "dsserve 中文", "filters": ["a", "b"], "score": 1.0, "n": 3,
                "nested": {"x": None, "y": True, "z": 1e-07}}}}]},
        {"role": "tool", "tool_call_id": "c9", "content": "[]"},
        {"role": "user", "content": "ok"}]},
    "tool_no_description": {"tools": [NO_DESC_TOOL], "messages": [
        {"role": "user", "content": "ping"}]},
    "prefix_assistant": {"messages": [
        {"role": "user", "content": "Continue"},
        {"role": "assistant", "content": "The answer is", "prefix": True}]},
}

OPTION_SETS = [
    {"add_generation_prompt": True},
    {"add_generation_prompt": False},
    {},
]
THINKING_SETS = [
    {"thinking": True},
    {"thinking": False},
    {"enable_thinking": True},
    {"thinking": True, "drop_thinking": False},
]


def templates():
    out = {}
    for path in sorted((DATA / "chat_templates").rglob("*.jinja")):
        out[str(path.relative_to(DATA))] = path.read_text(encoding="utf-8")
    config = json.loads((DATA / "tokenizer" / "deepseek-v3.2" / "tokenizer_config.v3.json")
                        .read_text(encoding="utf-8"))
    out["tokenizer/deepseek-v3.2/tokenizer_config.v3.json#chat_template"] = config["chat_template"]
    return out


def template_cases():
    cases = []
    for name, source in templates().items():
        thinking_aware = "thinking" in source
        for conv_name, conv in CONVERSATIONS.items():
            option_sets = [dict(o) for o in OPTION_SETS]
            if thinking_aware:
                option_sets += [dict(t, add_generation_prompt=True) for t in THINKING_SETS]
            for options in option_sets:
                variables = {"bos_token": BOS, "eos_token": EOS,
                             "messages": conv["messages"], "tools": conv.get("tools"),
                             "documents": None}
                variables.update(options)
                cases.append({"template": name, "conversation": conv_name, "options": options,
                              "expected": render(source, variables)})
    return cases


# Small templates, each exercising one part of the language. Variables are shared.
SNIPPET_VARS = {
    "s": "  Hello, World  ", "u": "héllo wörld 😀", "n": 7, "f": 2.5, "neg": -3, "t": True,
    "z": None, "items": [3, 1, 2], "words": ["b", "A", "c", "a"],
    "d": {"b": 1, "a": 2, "items": "key-named-items"},
    "msgs": [{"role": "user", "content": "hi", "n": 1}, {"role": "assistant", "content": "yo"},
             {"role": "user", "content": "bye", "n": 3}],
    "nested": {"x": {"y": [10, {"z": "deep"}]}}, "empty": [], "es": "",
}
SNIPPETS = [
    # output and literals
    "{{ 1 }}|{{ 1.0 }}|{{ 1e16 }}|{{ 0.1 + 0.2 }}|{{ -0.0 }}|{{ 10 / 4 }}|{{ 1_000 }}",
    "{{ true }}|{{ none }}|{{ [1, 'a', none, true] }}|{{ {'k': 'v', 'n': [1]} }}|{{ (1,) }}|{{ () }}",
    "{{ 'a' 'b' \"c\" }}|{{ 'it\\'s' }}|{{ \"q\\\"q\" }}|{{ '\\n\\t\\\\' }}|{{ '\\u00e9\\x41\\101' }}",
    "{{ [\"it's\", 'say \"hi\"', 'both \\' \"'] }}",
    "{{ undefined_var }}|{{ z }}|{{ d }}|{{ nested.x.y }}",
    # arithmetic
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -2 }} {{ -7 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ 7.5 % 2 }}",
    "{{ 'ab' * 3 }}|{{ [1] * 3 }}|{{ 3 * 'x' }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}|{{ n + f }}|{{ t + 1 }}",
    "{{ 'a' ~ 1 ~ none ~ undefined_var ~ [1] }}",
    "{{ -n }} {{ +f }} {{ not n }} {{ n and 'yes' }} {{ z or 'default' }} {{ 0 or '' or 'last' }}",
    "{{ 1 + 'a' }}",
    "{{ undefined_var + 1 }}",
    "{{ 1 / 0 }}",
    # comparisons
    "{{ 1 == 1.0 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ t == 1 }} {{ none == none }}",
    "{{ 'ell' in 'hello' }} {{ 2 in items }} {{ 'a' in d }} {{ 'zz' not in d }} {{ 'x' in undefined_var }}",
    "{{ 1 < 'a' }}",
    "{{ 1 in 'abc' }}",
    # strings
    "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxhixx'.strip('x') }}]",
    "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }}",
    "{{ s.startswith('  He') }} {{ s.endswith('d') }} {{ 'abc'.startswith(('x', 'a')) }}",
    "{{ 'aaa'.replace('a', 'b', 2) }} {{ 'Hello'.upper() }} {{ 'Hello'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}",
    "{{ u[0] }}|{{ u[-1] }}|{{ u[1:4] }}|{{ u[::-1] }}|{{ u[::2] }}|{{ u|length }}|{{ u[100] }}|{{ items[-1] }}|{{ items[1:] }}",
    "{{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abcabc'.count('bc') }} {{ '-'.join(['a', 'b']) }}",
    "{{ 'line1\\nline2\\r\\nline3'.splitlines() }} {{ '42'.isdigit() }} {{ 'ab'.isalpha() }}",
    "{{ s.nosuch }}|{{ s.nosuch is defined }}",
    # filters
    "{{ s|trim }}|{{ 'xxhixx'|trim('x') }}|{{ s|length }}|{{ items|length }}|{{ d|length }}|{{ undefined_var|length }}",
    "{{ items|join(', ') }}|{{ words|join }}|{{ msgs|join('/', attribute='role') }}|{{ undefined_var|join(',') }}",
    "{{ d|items|list }}|{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('a') }}|{{ d.get('q', 'dflt') }}",
    "{{ d['items'] }}|{{ d.get('items') }}|{{ d.keys is defined }}",
    "{{ undefined_var|default('dflt') }}|{{ z|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ 0|d('zero', boolean=true) }}",
    "{{ 'Hi'|upper }}{{ 'Hi'|lower }}{{ 'hi there'|title }}{{ 'hi there'|capitalize }}{{ undefined_var|upper }}",
    "{{ 'aXbX'|replace('X', '-') }}|{{ 'aaa'|replace('a', 'b', 1) }}|{{ 42|replace('4', 'x') }}",
    "{{ items|first }}|{{ items|last }}|{{ 'abc'|first }}|{{ 'abc'|last }}|{{ empty|first }}|{{ u|last }}",
    "{{ 42|string }}|{{ none|string }}|{{ [1]|string }}|{{ '42'|int + 1 }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(5) }}|{{ 3.9|int }}|{{ '3.5'|float }}|{{ 'x'|float }}",
    "{{ items|list }}|{{ 'ab'|list }}|{{ d|list }}|{{ items|sort }}|{{ words|sort }}|{{ words|sort(case_sensitive=true) }}|{{ items|sort(reverse=true) }}",
    "{{ msgs|map(attribute='role')|list }}|{{ msgs|map(attribute='n', default=0)|list }}|{{ words|map('upper')|list }}",
    "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|{{ msgs|rejectattr('role', 'eq', 'user')|list|length }}|{{ msgs|selectattr('n')|list|length }}",
    "{{ items|select('odd')|list }}|{{ items|reject('odd')|list }}|{{ [0, 1, '', 'a', none]|select|list }}",
    "{{ items|min }}|{{ items|max }}|{{ words|min }}|{{ items|sum }}|{{ msgs|sum(attribute='n', start=0) if false else 0 }}|{{ [1.5, 2]|sum }}",
    "{{ words|unique|list }}|{{ [1, 2, 1, 3]|unique|list }}|{{ items|reverse|list }}|{{ 'abc'|reverse }}",
    "{{ -3|abs }}|{{ neg|abs }}|{{ 2.567|round(1) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 7|round }}|{{ 2.567|round(2, 'floor') }}|{{ 2.1|round(0, 'ceil') }}",
    "{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}|{{ {'x': 2, 'Y': 1}|dictsort(by='value') }}",
    "{{ d|dictsort(by='value') }}",
    "{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|escape }}|{{ '<i>'|safe }}",
    "{{ 'one two  three'|wordcount }}|{{ 'hi'|center(10) }}|[{{ 'a\\nb\\n\\nc'|indent(2) }}]|[{{ 'a\\nb'|indent(2, true) }}]|[{{ 'a\\n\\nb'|indent('> ', blank=true) }}]",
    "{{ msgs|tojson }}|{{ 'é\"\\n'|tojson }}|{{ 'é'|tojson(ensure_ascii=true) }}|{{ d|tojson(indent=2) }}|{{ d|tojson(sort_keys=true) }}|{{ items|tojson(separators=(',', ':')) }}",
    "{{ {'f': 1.0, 'g': 1e-7, 'h': 123456789.125, 'big': 1e22, 'i': -0.5}|tojson }}",
    "{{ undefined_var|tojson }}",
    "{{ nested|attr('x') }}|{{ 'abc'|attr('upper')() }}",
    # tests
    "{{ n is defined }} {{ undefined_var is defined }} {{ undefined_var is undefined }} {{ z is none }} {{ n is not none }}",
    "{{ s is string }} {{ n is string }} {{ d is mapping }} {{ items is mapping }} {{ items is iterable }} {{ n is iterable }} {{ s is sequence }} {{ undefined_var is iterable }}",
    "{{ n is number }} {{ f is number }} {{ t is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ t is true }} {{ 1 is true }} {{ false is false }}",
    "{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ n is eq 7 }} {{ n is equalto(7) }} {{ n is ne 7 }} {{ n is gt 3 }} {{ n is lt 3 }} {{ n is ge 7 }} {{ n is le 6 }}",
    "{{ 2 is in items }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ none is sameas none }} {{ d.get is callable }} {{ n is callable }}",
    # statements
    "{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %}|{% if z %}x{% else %}y{% endif %}",
    "{% for x in items %}{{ loop.index }}:{{ x }}{{ ',' if not loop.last }}{% endfor %}",
    "{% for x in items %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }}|{% endfor %}",
    "{% for x in empty %}never{% else %}empty-else{% endfor %}|{% for x in undefined_var %}n{% else %}undef-else{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for c in 'héy' %}[{{ c }}]{% endfor %}",
    "{% for x in items if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}",
    "{% for x in items %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for m in msgs %}{% for c in m.content %}{{ loop.index }}{% endfor %}/{{ loop.index }} {% endfor %}",
    "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(total=0, seen=[]) %}{% for i in items %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
    "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}",
    "{% set block %}inner {{ n }}{% endset %}[{{ block }}]{% set up | upper %}shout{% endset %}{{ up }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(name='Cy', punct='.') }} {{ greet() }}",
    "{% macro rec(k) %}{% if k > 0 %}{{ k }}{{ rec(k - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
    "{% filter upper %}quiet {{ n }}{% endfilter %}",
    "{% with a = 5, b = n %}{{ a + b }}{% endwith %}{{ a }}",
    "{% raw %}{{ not rendered }} {% if %}{% endraw %}",
    "{% generation %}gen {{ n }}{% endgeneration %}",
    "{{ n if n > 10 else 'small' }}|{{ n if n > 10 }}|{{ 'yes' if t }}",
    "{{ range(5)|list }}|{{ range(2, 10, 3)|list }}|{{ range(5, 0, -2)|list }}|{{ dict(a=1, b='x') }}|{{ namespace(a=1).a }}",
    "{{ range(200000)|length }}",
    "{{ raise_exception('custom failure') }}",
    "{% set l = [] %}{{ l.append(1) }}",
    "{% set l = [] %}{{ l.append is defined }}|{{ d.pop is defined }}",
    "{{ msgs[0].content }}|{{ msgs[0]['role'] }}|{{ msgs[5] }}|{{ msgs[0].missing }}|{{ nested['x']['y'][1]['z'] }}|{{ nested.x.y.1.z }}",
    "{{ undefined_var.attr }}",
    "{{ z.attr }}|{{ z['k'] }}|{{ n.attr }}|{{ t['x'] }}",
    "{{ undefined_var() }}",
    "{{ n() }}",
    # whitespace control
    "a\n  {% if true %}\n  b\n  {% endif %}\n  c\n",
    "a  {%- if true -%}  b  {%- endif -%}  c",
    "a  {{- n -}}  b\n  {{ n }}\n",
    "x\n  {%+ if true %}y{% endif +%}\nz",
    "{# comment #}\n  {#- another -#}  text {# trailing #}\nend",
    "line\n    {% for i in items %}\n    {{ i }}\n    {% endfor %}\nafter\n",
    "  {% set x = 1 %}  x={{ x }}\n\t{% if true %}\ttab\n{% endif %}",
    "{{ n }}\n{% if true %}\n\n{% endif %}\nend\n\n",
    "a {% raw -%}  raw  {%- endraw %} b",
    "\r\nwin\r\n{% if true %}\r\nline\r\n{% endif %}\r\n",
    # syntax errors
    "{% if %}",
    "{% for x in %}{% endfor %}",
    "{{ n | nosuchfilter }}",
    "{{ n is nosuchtest }}",
    "{% include 'x' %}",
    "{% endif %}",
    "{{ (1 }}",
    "{% if true %}unclosed",
    "{{ 'unterminated }}",
    "{% break %}",
]


def snippet_cases():
    cases = []
    for source in SNIPPETS:
        cases.append({"source": source, "expected": render(source, SNIPPET_VARS)})
    return cases


# ---------------------------------------------------------------- DeepSeek-V3.2 encoder
def load_dsv32(wheel):
    """SGLang's encoding_dsv32 module with DeepSeek's tools text."""
    tmp = pathlib.Path(tempfile.mkdtemp())
    member = "sglang/srt/entrypoints/openai/encoding_dsv32.py"
    with zipfile.ZipFile(wheel) as zf:
        (tmp / "encoding_dsv32.py").write_bytes(zf.read(member))
    spec = importlib.util.spec_from_file_location("encoding_dsv32", tmp / "encoding_dsv32.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    official = (DATA / "encoding" / "deepseek-v3.2" / "test_output.txt").read_text(encoding="utf-8")
    start = official.index("## Tools")
    end = official.index("<functions>\n", start) + len("<functions>\n")
    tools_text = official[start:end]
    assert "{" not in tools_text and "}" not in tools_text
    module.TOOLS_SYSTEM_TEMPLATE = tools_text + "{tool_schemas}\n</functions>\n"
    return module


def dsv32_cases(dsv32):
    def with_tools(messages, tools):
        messages = copy.deepcopy(messages)
        messages[0]["tools"] = tools
        return messages

    tool_messages = CONVERSATIONS["tool_calls"]["messages"]
    convs = {
        "plain": [{"role": "user", "content": "Hello!"}],
        "system": CONVERSATIONS["system"]["messages"],
        "multi_turn_reasoning": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1", "reasoning_content": "R1"},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2", "reasoning_content": "R2"}],
        "tools_history": with_tools(tool_messages, CONVERSATIONS["tool_calls"]["tools"]),
        "tools_agent_loop": with_tools([
            {"role": "system", "content": ""},
            {"role": "user", "content": "Weather in Oslo and 北京?"},
            {"role": "assistant", "content": "", "reasoning_content": "Need both.",
             "tool_calls": [call("a", "get_weather", {"city": "Oslo", "days": 3}),
                            call("b", "get_weather", {"city": "北京", "flags": [1, 2.5, None],
                                                      "opts": {"x": True, "y": "é"}})]},
            {"role": "tool", "content": "rain"},
            {"role": "tool", "content": "sun"}], [WEATHER_TOOL, SEARCH_TOOL]),
        "partial_results": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "reasoning_content": "r",
             "tool_calls": [call("a", "search", {"query": "x"}), call("b", "search", {"query": "y"})]},
            {"role": "tool", "content": "only one"}],
        "developer": [
            {"role": "developer", "content": "Do the task.", "tools": [SEARCH_TOOL],
             "response_format": {"type": "object", "properties": {"answer": {"type": "string"}}}},
            {"role": "assistant", "content": "", "reasoning_content": "think",
             "tool_calls": [call("a", "search", {"query": "q", "score": 0.25})]},
            {"role": "tool", "content": "result"}],
        "response_format": [
            {"role": "system", "content": "JSON only.",
             "response_format": {"type": "json_schema", "schema": {"a": 1.5, "b": [True]}}},
            {"role": "user", "content": "data"}],
        "dropped_developer": [
            {"role": "developer", "content": "First instructions"},
            {"role": "assistant", "content": "ok", "reasoning_content": "gone"},
            {"role": "user", "content": "Now this"}],
        "unicode": CONVERSATIONS["unicode"]["messages"],
        "tool_without_call": [
            {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
            {"role": "tool", "content": "z"}],
        "thinking_assistant_no_reasoning": [
            {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
        "empty_developer": [{"role": "developer", "content": ""}],
    }
    cases = []
    for name, messages in convs.items():
        for mode in ("chat", "thinking"):
            for drop in (True, False):
                if mode == "chat" and not drop:
                    continue
                try:
                    expected = dsv32.encode_messages(copy.deepcopy(messages), thinking_mode=mode,
                                                     drop_thinking=drop)
                except Exception:  # noqa: BLE001
                    expected = None
                cases.append({"conversation": name, "messages": messages, "mode": mode,
                              "drop_thinking": drop, "expected": expected})
    return cases


# ---------------------------------------------------------------- CLI requests
def sglang_prepare(request):
    """SGLang serving_chat's message preparation (string content, parsed arguments)."""
    messages = []
    for msg in request["messages"]:
        m = {k: v for k, v in msg.items() if v is not None}
        if m["role"] == "user":
            m = {"role": "user", "content": m.get("content", "")}
        m.setdefault("content", "")
        if "tool_calls" in m:
            m["tool_calls"] = [{"id": t.get("id"), "index": None, "type": "function",
                                "function": {"name": t["function"]["name"],
                                             "arguments": json.loads(t["function"]["arguments"])}}
                               for t in m["tool_calls"]]
        messages.append(m)
    prefix = None
    if messages and messages[-1]["role"] == "assistant":
        if request.get("continue_final_message"):
            prefix = messages.pop()["content"]
        else:
            messages[-1] = {"role": "user", "content": messages[-1]["content"]}
    return messages, prefix


def cli_cases(dsv32):
    requests = {
        "chat": {"messages": [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Hi 你好"}]},
        "thinking_tools": {"messages": copy.deepcopy(CONVERSATIONS["tool_calls_then_user"]["messages"]),
                           "tools": [WEATHER_TOOL], "chat_template_kwargs": {"thinking": True}},
        "effort": {"messages": [{"role": "user", "content": "Think hard"}],
                   "reasoning_effort": "high"},
        "continue": {"messages": [{"role": "user", "content": "Count"},
                                  {"role": "assistant", "content": "1, 2,"}],
                     "continue_final_message": True},
    }
    source = (DATA / "chat_templates" / "tool_chat_template_deepseekv32.jinja").read_text("utf-8")
    cases = []
    for name, req in requests.items():
        messages, prefix = sglang_prepare(copy.deepcopy(req))
        kwargs = dict(req.get("chat_template_kwargs", {}))
        if "reasoning_effort" in req:
            thinking = req["reasoning_effort"] != "none"
            kwargs.setdefault("thinking", thinking)
            kwargs.setdefault("enable_thinking", thinking)
        variables = {"bos_token": BOS, "eos_token": EOS, "unk_token": None, "messages": messages,
                     "tools": req.get("tools"), "documents": None, "add_generation_prompt": True}
        variables.pop("unk_token")
        if "reasoning_effort" in req:
            variables["reasoning_effort"] = req["reasoning_effort"]
        variables.update(kwargs)
        jinja_out = render(source, variables)
        ds_messages = [dict(m) for m in messages]
        for m in ds_messages:
            for tc in m.get("tool_calls", []):
                tc["function"] = dict(tc["function"],
                                      arguments=json.dumps(tc["function"]["arguments"], ensure_ascii=False))
        if ds_messages[0]["role"] != "system":
            ds_messages.insert(0, {"role": "system", "content": ""})
        if req.get("tools"):
            ds_messages[0]["tools"] = req["tools"]
        mode = "thinking" if kwargs.get("thinking") else "chat"
        ds_out = dsv32.encode_messages(ds_messages, thinking_mode=mode)
        cases.append({"name": name, "request": req,
                      "jinja_template": "chat_templates/tool_chat_template_deepseekv32.jinja",
                      "expected_jinja": None if jinja_out is None else jinja_out + (prefix or ""),
                      "expected_dsv32": ds_out + (prefix or "")})
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sglang-wheel", required=True, help="path to sglang-0.5.6 wheel")
    args = parser.parse_args()
    dsv32 = load_dsv32(args.sglang_wheel)
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "tools/golden/make_jinja_golden.py", "jinja2": jinja2.__version__,
            "python": sys.version.split()[0]}
    files = {
        "jinja_templates.json": {"meta": meta, "conversations": CONVERSATIONS,
                                 "cases": template_cases()},
        "jinja_snippets.json": {"meta": meta, "variables": SNIPPET_VARS, "cases": snippet_cases()},
        "dsv32_encoder.json": {"meta": meta, "cases": dsv32_cases(dsv32)},
        "chat_requests.json": {"meta": meta, "cases": cli_cases(dsv32)},
    }
    for name, content in files.items():
        text = json.dumps(content, ensure_ascii=False, indent=1) + "\n"
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(content['cases'])} cases")


if __name__ == "__main__":
    main()
