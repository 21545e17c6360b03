#!/usr/bin/env python3
"""Tables for the output of tools/compare_bench_serving.sh (standard library only).

    python3 tools/bench/compare_bench_results.py OUT_DIR

Part 1 (fake_*): whether every run sent the same requests (prompt text and sampling
parameters, as the stand-in recorded them). Then, for both parts, every run in the order it ran,
the ratio of the means (dsserve / sglang) and the range of the ratios of each round's pair; for
part 2 (serve_*) also the server's own means over each run, from the difference of its
Prometheus histograms before and after the run (the one warmup request included).
"""
import json
import pathlib
import statistics
import sys

METRICS = [
    "completed", "total_input_tokens", "total_output_tokens", "total_output_tokens_retokenized",
    "duration", "output_throughput", "mean_e2e_latency_ms", "median_e2e_latency_ms",
    "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms",
    "mean_itl_ms", "median_itl_ms", "p99_itl_ms", "concurrency", "max_concurrent_requests",
    "max_output_tokens_per_s",
]


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def cpu_seconds(path):
    out = []
    for x in path.read_text().splitlines():
        parts = x.split()
        if len(parts) == 2:
            try:
                out.append(float(parts[0]) + float(parts[1]))
            except ValueError:
                pass
    return out


def fmt(v):
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.2f}"
    return str(int(v)) if isinstance(v, float) else str(v)


def ratio(a, b):
    return f"{a / b:.3f}" if b else "-"


def requests_of(path):
    bodies = json.loads(path.read_text())["bodies"]
    return sorted(json.dumps([b.get("text"), b.get("sampling_params")], sort_keys=True)
                  for b in bodies)


def part1(out):
    bodies = sorted(out.glob("fake_*_*.bodies.json"))
    if not list(out.glob("fake_*")):
        return  # run with PARTS=serve
    if not bodies:
        table(out, "fake")
        print()
        return
    reference = requests_of(bodies[0])
    differ = [p.name for p in bodies if requests_of(p) != reference]
    print(f"Requests recorded per run: {len(reference)}, in {len(bodies)} runs; runs whose "
          f"requests (text and sampling_params, in any order) differ from {bodies[0].name}: "
          f"{', '.join(differ) or 'none'}\n")
    table(out, "fake")
    print()


SERVER_HISTOGRAMS = [
    ("server mean TTFT (ms)", "sglang:time_to_first_token_seconds"),
    ("server mean ITL (ms)", "sglang:inter_token_latency_seconds"),
    ("server mean E2E (ms)", "sglang:e2e_request_latency_seconds"),
]


def prom_sums(path):
    """{metric name: (sum, count)} of the histograms in a Prometheus text scrape."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        base = name.split("{", 1)[0]
        for suffix, slot in (("_sum", 0), ("_count", 1)):
            if base.endswith(suffix):
                key = base[: -len(suffix)]
                pair = list(out.get(key, (0.0, 0.0)))
                pair[slot] += float(value)
                out[key] = tuple(pair)
    return out


def server_means(out, part, tool, n):
    """Per run, {row label: mean ms} from the scrapes around it; None when a scrape is missing."""
    runs = []
    for r in range(1, n + 1):
        before, after = (out / f"{part}_{tool}_{r}.{w}.prom" for w in ("before", "after"))
        if not before.exists() or not after.exists():
            return None
        b, a = prom_sums(before), prom_sums(after)
        means = {}
        for label, metric in SERVER_HISTOGRAMS:
            s = a.get(metric, (0, 0))[0] - b.get(metric, (0, 0))[0]
            c = a.get(metric, (0, 0))[1] - b.get(metric, (0, 0))[1]
            means[label] = 1000 * s / c if c else 0.0
        runs.append(means)
    return runs


def table(out, part):
    d, s = out / f"{part}_dsserve.jsonl", out / f"{part}_sglang.jsonl"
    if not d.exists() or not s.exists():
        print(f"No {part} runs: see {part}_*.txt")
        return
    rd, rs = lines(d), lines(s)
    n = min(len(rd), len(rs))
    head = [f"dsserve {i + 1} | sglang {i + 1}" for i in range(n)]
    print("| metric | " + " | ".join(head) + " | mean ratio | pair ratios |")
    print("|---|" + "---|---|" * n + "---|---|")
    rows = [(m, [r[m] for r in rd[:n]], [r[m] for r in rs[:n]]) for m in METRICS]
    cd, cs = cpu_seconds(out / f"{part}_dsserve.cpu"), cpu_seconds(out / f"{part}_sglang.cpu")
    if len(cd) >= n and len(cs) >= n:
        rows.append(("client CPU (s)", cd[:n], cs[:n]))
    sd, ss = server_means(out, part, "dsserve", n), server_means(out, part, "sglang", n)
    if sd and ss:
        for label, _ in SERVER_HISTOGRAMS:
            rows.append((label, [x[label] for x in sd], [x[label] for x in ss]))
        rows.append(("client mean TTFT - server mean TTFT (ms)",
                     [r["mean_ttft_ms"] - x["server mean TTFT (ms)"] for r, x in zip(rd, sd)],
                     [r["mean_ttft_ms"] - x["server mean TTFT (ms)"] for r, x in zip(rs, ss)]))
    for m, a, b in rows:
        cells = " | ".join(f"{fmt(x)} | {fmt(y)}" for x, y in zip(a, b))
        pairs = [x / y for x, y in zip(a, b) if y]
        spread = f"{min(pairs):.3f}-{max(pairs):.3f}" if pairs else "-"
        print(f"| {m} | {cells} | {ratio(statistics.mean(a), statistics.mean(b))} | {spread} |")


def main():
    out = pathlib.Path(sys.argv[1])
    part1(out)
    table(out, "serve")


if __name__ == "__main__":
    main()
