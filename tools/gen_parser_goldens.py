#!/usr/bin/env python3
"""Golden outputs of Python's json module for the parsers' JsonNormalizer and float repr.

Tool-call arguments must be byte-identical to json.dumps(json.loads(text), ensure_ascii=False), so
the expected strings come from CPython itself. Made with (Python 3.11, standard library only):

    python3 tools/gen_parser_goldens.py tests/golden/parsers

Writes python_json.jsonl ({"input", "output"}; output null when json.loads rejects the input) and
float_repr.jsonl ({"bits": 64-bit pattern as 16 hex digits, "repr": json.dumps of that float}).
"""
import json
import math
import pathlib
import random
import struct
import sys

CASES = [
    '{"location": "Beijing", "days": 3}',
    '{"location":"Tokyo"}',
    '  {"a" :1 ,"b":[1,2 , {"c":null}], "d": true, "e": false}  ',
    '{}', '[]', '[ ]', '{ }', '0', '-0', '-0.0', '0.0', '1', '-1', '12345678901234567890123456789',
    '-98765432109876543210', '1.0', '1.5', '1e5', '1E5', '1e+5', '1e-5', '1.5e-7', '0.0001',
    '0.00001', '123456789012345678', '123456789012345678.0', '1e16', '1e15', '9007199254740993.0',
    '1e400', '-1e400', '1e-400', '2.5e-320', '3.141592653589793', '0.1', '100', '1.7976931348623157e308',
    'NaN', 'Infinity', '-Infinity', 'true', 'false', 'null',
    '"plain"', '"caf\\u00e9"', '"\\u4f60\\u597d"', '"raw 你好 🌍"', '"\\ud83d\\ude00"',
    '"tab\\tnew\\nline\\rret\\bback\\fform"', '"quote \\" slash \\/ back \\\\"',
    '"\\u0000\\u0001\\u001f\\u007f\\u0080"', '"\\u2028\\u2029"', '"\\u00A9"',
    '{"nested": {"deep": [[[]], {}, [{"x": [1.25, -3, "y"]}]]}}',
    '{"unicode key 键": "值"}', '{"k\\"ey": "v\\\\al"}',
    '[1, 2.0, 3e0, -4.5E-1]',
    '{"a": 1,}', '[1,]', '{"a" 1}', '{a: 1}', "{'a': 1}", '01', '1.', '.5', '-', '+1', '1e', 'tru',
    'nul', 'True', '"unterminated', '{"a": 1', '"bad \\x escape"', '"ctrl \n raw"', '',
    '   ', '{"a": 1} x', '1 2', '[1] ]', '"\\u12"', '"\\uZZZZ"', '-Infinity1', 'NaNx',
    '{"a": [1, 2, {"b": "c"}], "d": {"e": {"f": [true, false, null]}}}',
    '{"query": "搜索智能体 基准测试", "topn": 10, "source": "web"}',
]


def dumps_or_none(text):
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def main():
    out_dir = pathlib.Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "python_json.jsonl", "w", encoding="utf-8") as f:
        for case in CASES:
            f.write(json.dumps({"input": case, "output": dumps_or_none(case)}, ensure_ascii=False))
            f.write("\n")

    rng = random.Random(20240915)
    values = [0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1e-4, 1e-5, 9.999e-5, 1e15, 1e16, 9.999999999999998e15,
              5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 123.456, -0.0, 0.0,
              float("inf"), float("-inf"), 100.0, 1234567890123456.0, 12345678901234567.0]
    for _ in range(2000):
        bits = rng.getrandbits(64)
        v = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if not math.isnan(v):
            values.append(v)
    for _ in range(1000):
        values.append(rng.uniform(-1e6, 1e6))
        values.append(round(rng.uniform(-1000, 1000), rng.randint(0, 6)))
        values.append(rng.randint(-10**6, 10**6) * 10.0 ** rng.randint(-25, 25))
    with open(out_dir / "float_repr.jsonl", "w", encoding="utf-8") as f:
        for v in values:
            bits = struct.unpack("<Q", struct.pack("<d", v))[0]
            f.write(json.dumps({"bits": f"{bits:016x}", "repr": json.dumps(v)}) + "\n")


if __name__ == "__main__":
    main()
