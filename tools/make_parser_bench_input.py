#!/usr/bin/env python3
"""Writes a long synthetic V3.2 completion for timing `dsserve parse` (not a golden).

    python3 tools/make_parser_bench_input.py > completion.txt
    time ./build/dsserve parse --reasoning-parser deepseek-v3 --tool-call-parser deepseekv32 \
        --thinking --chunk 4 --file completion.txt > /dev/null

About 100 KB of reasoning, then one DSML block with 200 calls, each with a 400-byte string
parameter and a nested JSON parameter (about 190 KB of DSML).
"""
import random

rng = random.Random(7)
words = ["the", "weather", "北京", "杭州", "tool", "result", "check", "数据", "then", "answer"]
reasoning = " ".join(rng.choice(words) for _ in range(20000))
calls = []
for i in range(200):
    text = " ".join(rng.choice(words) for _ in range(80))
    calls.append(
        f'<｜DSML｜invoke name="tool_{i % 7}">\n'
        f'<｜DSML｜parameter name="text" string="true">{text}</｜DSML｜parameter>\n'
        f'<｜DSML｜parameter name="opts" string="false">{{"n": {i}, "w": [1.5, 2e-7, true]}}'
        f"</｜DSML｜parameter>\n</｜DSML｜invoke>"
    )
print(reasoning + "</think>\n\n<｜DSML｜function_calls>\n" + "\n".join(calls)
      + "\n</｜DSML｜function_calls>", end="")
