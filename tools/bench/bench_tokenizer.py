#!/usr/bin/env python3
"""Single-threaded encoding throughput: dsserve's tokenizer against HF `tokenizers`, same texts.

Both encode the texts one at a time (HF with RAYON_NUM_THREADS=1, no encode_batch), first with
an empty cache and then in repeated passes for --seconds. Two corpora:
  golden   every text of tests/golden/tokenizer/encode.json (the test corpus: many scripts,
           long runs, rare code points)
  natural  prose, code, world languages and the three chat-encoding test outputs, repeated
Prints a Markdown table.

    cmake --build build -j1 --target dsserve-tokenizer-bench
    .venv/bin/python tools/bench/bench_tokenizer.py [--bench build/src/tokenizer/dsserve-tokenizer-bench]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool
from tokenizers import Tokenizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools/golden"))
import tokenizer_corpus  # noqa: E402

MODEL_DIR = ROOT / "data/tokenizer/deepseek-v3.2"


def golden_texts() -> list[str]:
    cases = json.loads((ROOT / "tests/golden/tokenizer/encode.json").read_text())["cases"]
    texts = []
    for c in cases:
        if "text" in c:
            texts.append(c["text"])
        elif "file" in c:
            texts.append((ROOT / "data" / c["file"]).read_text(encoding="utf-8"))
        else:
            texts.append(bytes.fromhex(c["bytes_hex"]).decode("utf-8", errors="replace"))
    return texts


def natural_texts() -> list[str]:
    c = tokenizer_corpus
    texts = c.PROSE + c.CODE + c.WORLD + c.EMOJI + c.DIGITS
    for path in sorted((ROOT / "data/encoding/deepseek-v3.2").glob("test_output*.txt")):
        texts.append(path.read_text(encoding="utf-8"))
    return texts * 4


def bench_hf(texts: list[str], seconds: float) -> dict:
    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    nbytes = sum(len(t.encode()) for t in texts)
    start = time.perf_counter()
    tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    first_s = time.perf_counter() - start
    passes, start = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - start < seconds:
        for t in texts:
            tok.encode(t, add_special_tokens=False)
        passes += 1
    steady_s = time.perf_counter() - start
    return {"bytes_per_pass": nbytes, "tokens_per_pass": tokens,
            "first_pass_mb_per_s": nbytes / first_s / 1e6,
            "steady_mb_per_s": passes * nbytes / steady_s / 1e6}


def bench_dsserve(binary: str, texts: list[str], seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
        f.flush()
        out = subprocess.run([binary, str(MODEL_DIR), f.name, str(seconds)], check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", default=str(ROOT / "build/src/tokenizer/dsserve-tokenizer-bench"))
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print("| corpus | texts | MB | tokens | HF first MB/s | HF steady MB/s | dsserve first MB/s "
          "| dsserve steady MB/s | ratio first | ratio steady |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, texts in [("golden", golden_texts()), ("natural", natural_texts())]:
        hf = bench_hf(texts, args.seconds)
        ds = bench_dsserve(args.bench, texts, args.seconds)
        assert ds["tokens_per_pass"] == hf["tokens_per_pass"], "token counts differ"
        print(f"| {name} | {len(texts)} | {hf['bytes_per_pass'] / 1e6:.2f} | {hf['tokens_per_pass']} "
              f"| {hf['first_pass_mb_per_s']:.2f} | {hf['steady_mb_per_s']:.2f} "
              f"| {ds['first_pass_mb_per_s']:.2f} | {ds['steady_mb_per_s']:.2f} "
              f"| {ds['first_pass_mb_per_s'] / hf['first_pass_mb_per_s']:.1f}x "
              f"| {ds['steady_mb_per_s'] / hf['steady_mb_per_s']:.1f}x |")


if __name__ == "__main__":
    main()
