#!/usr/bin/env python3
"""Writes the goldens of tests/bench (Python 3 + numpy; Debian's python3-numpy 1.24 was used).

    python3 tools/gen_bench_goldens.py tests/golden/bench   # Debian python3 with python3-numpy

- numpy_random.json: what numpy's legacy global generator draws after np.random.seed(s):
  randint(low, high, size=n) and exponential(scale) values, the calls SGLang's bench_serving
  makes for the random dataset lengths and the Poisson request gaps.
- python_random.json: what Python's `random` draws after random.seed(s): getrandbits(k) values
  and random.shuffle of list(range(n)), the call SGLang's bench_serving orders the ShareGPT
  conversations with.
- table.txt: the "Serving Benchmark Result" table for the figures of the V3.2 cookbook example,
  printed with the format strings SGLang's bench_serving uses ("{:<40} {:<10}" rows, 2-decimal
  floats, rules of 50 characters with centred titles); the input figures are in table_input.json.
"""
import json
import pathlib
import random
import sys

import numpy as np


def numpy_goldens():
    cases = []
    for seed, low, high, n in [(1, 1, 1025, 64), (1, 512, 1025, 64), (7, 1, 4097, 32),
                               (123, 100, 101, 4), (2**31, 1, 3, 16)]:
        np.random.seed(seed)
        values = np.random.randint(low, high, size=n).tolist()
        cases.append({"seed": seed, "low": low, "high": high, "n": n, "values": values})
    np.random.seed(1)
    first = np.random.randint(1, 1025, size=8).tolist()
    gaps = [float(np.random.exponential(1.0 / 4.0)) for _ in range(8)]
    return {"randint": cases,
            "randint_then_exponential": {"seed": 1, "randint": [1, 1025, 8], "values": first,
                                         "scale": 0.25, "exponentials": gaps}}


def python_random_goldens():
    bits = []
    for seed, k, n in [(1, 32, 8), (0, 7, 16), (2**32 + 5, 13, 8)]:
        random.seed(seed)
        bits.append({"seed": seed, "k": k, "values": [random.getrandbits(k) for _ in range(n)]})
    shuffles = []
    for seed, n in [(1, 500), (0, 10), (7, 3), (2**31, 64), (1, 1)]:
        random.seed(seed)
        order = list(range(n))
        random.shuffle(order)
        shuffles.append({"seed": seed, "n": n, "order": order})
    return {"getrandbits": bits, "shuffle": shuffles}


TABLE_INPUT = {
    "backend": "sglang", "request_rate": float("inf"), "max_concurrency": 1,
    "completed": 10, "duration": 29.11, "total_input": 1972, "total_output": 2784,
    "total_output_retokenized": 2777, "request_throughput": 0.34, "input_throughput": 67.73,
    "output_throughput": 95.62, "max_output_tokens_per_s": 157.0,
    "max_concurrent_requests": 3, "total_throughput": 163.36, "concurrency": 1.0,
    "accept_length": 2.46,
    "e2e": [2909.74, 3088.27, 4200.62, 5588.52], "ttft": [317.58, 191.31, 740.79],
    "tpot": [9.09, 9.25, 11.73], "itl": [9.35, 7.64, 22.81, 23.33, 31.45],
}


def table(d):
    out = ["", "{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="=")]
    row = lambda label, value: out.append("{:<40} {:<10}".format(label, value))
    rowf = lambda label, value: out.append("{:<40} {:<10.2f}".format(label, value))
    row("Backend:", d["backend"])
    row("Traffic request rate:", d["request_rate"])
    row("Max request concurrency:", d["max_concurrency"] if d["max_concurrency"] else "not set")
    row("Successful requests:", d["completed"])
    rowf("Benchmark duration (s):", d["duration"])
    row("Total input tokens:", d["total_input"])
    row("Total input text tokens:", d["total_input"])
    row("Total input vision tokens:", 0)
    row("Total generated tokens:", d["total_output"])
    row("Total generated tokens (retokenized):", d["total_output_retokenized"])
    rowf("Request throughput (req/s):", d["request_throughput"])
    rowf("Input token throughput (tok/s):", d["input_throughput"])
    rowf("Output token throughput (tok/s):", d["output_throughput"])
    rowf("Peak output token throughput (tok/s):", d["max_output_tokens_per_s"])
    row("Peak concurrent requests:", d["max_concurrent_requests"])
    rowf("Total token throughput (tok/s):", d["total_throughput"])
    rowf("Concurrency:", d["concurrency"])
    if d["accept_length"]:
        rowf("Accept length:", d["accept_length"])
    out.append("{s:{c}^{n}}".format(s="End-to-End Latency", n=50, c="-"))
    for name, v in zip(["Mean", "Median", "P90", "P99"], d["e2e"]):
        rowf(f"{name} E2E Latency (ms):", v)
    out.append("{s:{c}^{n}}".format(s="Time to First Token", n=50, c="-"))
    for name, v in zip(["Mean", "Median", "P99"], d["ttft"]):
        rowf(f"{name} TTFT (ms):", v)
    out.append("{s:{c}^{n}}".format(s="Time per Output Token (excl. 1st token)", n=50, c="-"))
    for name, v in zip(["Mean", "Median", "P99"], d["tpot"]):
        rowf(f"{name} TPOT (ms):", v)
    out.append("{s:{c}^{n}}".format(s="Inter-Token Latency", n=50, c="-"))
    for name, v in zip(["Mean", "Median", "P95", "P99", "Max"], d["itl"]):
        rowf(f"{name} ITL (ms):", v)
    out.append("=" * 50)
    return "\n".join(out) + "\n"


def main():
    out = pathlib.Path(sys.argv[1])
    (out / "numpy_random.json").write_text(json.dumps(numpy_goldens(), indent=1) + "\n")
    (out / "python_random.json").write_text(json.dumps(python_random_goldens()) + "\n")
    d = dict(TABLE_INPUT)
    (out / "table_input.json").write_text(
        json.dumps({**d, "request_rate": "inf"}, indent=1) + "\n")
    (out / "table.txt").write_text(table(d))


if __name__ == "__main__":
    main()
