#!/usr/bin/env python3
"""Where decode steps' wall time goes, from the CUPTI timeline of libdsserve-kernel-trace.so.

    export CUDA_INJECTION64_PATH=build/libdsserve-kernel-trace.so
    DSSERVE_KERNEL_TRACE=trace.csv dsserve serve ...   # or generate; the trace is written at exit
    python3 bench/scripts/kernel_trace_steps.py trace.csv [--positions]

A step runs from the start of one forward's embedding kernel to the start of the next one's;
only steps with the most common kernel count are kept (decode steps at one batch size and
context regime, not prefills). The stream runs kernels in order, so each kernel is charged the
time from its predecessor's end to its own end: what the step would lose without it; the table
gives each kernel's median over steps (and the mean, which the few steps where the host paused
pull up). Under programmatic dependent launch a kernel starts before its predecessor ends, so its
own duration (end - start) includes waiting and adds up to more than the step; the embedding,
which starts the step, is charged its own duration. The gap before a step, from the previous
step's last kernel to its first, is host time where the host paces the GPU (negative when the
next step was already queued).
"""
import argparse
import collections
import csv
import re
import statistics
import subprocess


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                             check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        out = list(names)
    short = {}
    for n, d in zip(names, out):
        d = re.sub(r"^void |dsserve::backend::cuda::|\(anonymous namespace\)::", "", d)
        short[n] = without_parameters(d)
    return short


def without_parameters(name):
    """The name less its trailing parameter list (template arguments may hold parentheses)."""
    if not name.endswith(")"):
        return name
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(name[i], 0)
        if depth == 0:
            return name[:i]
    return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--step-start", default="embed_rows_kernel")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--positions", action="store_true",
                    help="also the median time charged to each kernel by its place in the step "
                         "(the first layer against the others, say)")
    args = ap.parse_args()
    rows = []
    with open(args.csv, newline="") as f:
        for r in csv.DictReader(f):
            if r["kind"] == "kernel":
                rows.append((int(r["start_ns"]), int(r["end_ns"]), r["name"], int(r["grid"])))
    rows.sort()
    short = demangle(sorted({k[2] for k in rows}))
    kernels = [(s, e, short[n]) for s, e, n, _ in rows]
    grids = [g for _, _, _, g in rows]
    starts = [i for i, k in enumerate(kernels) if args.step_start in k[2]]
    spans = [(starts[j], starts[j + 1]) for j in range(len(starts) - 1)]
    if not spans:
        raise SystemExit("no complete step")
    count = collections.Counter(b - a for a, b in spans).most_common(1)[0][0]
    steps = [(a, b) for a, b in spans if b - a == count and a > 0]
    n = len(steps)
    walls, gaps, idles = [], [], []
    # Per kernel name, its time in each step: medians keep the few steps where the host paused
    # (a request starting or ending) from being charged to whichever kernel followed the pause.
    charged = collections.defaultdict(lambda: [0.0] * n)
    own = collections.defaultdict(lambda: [0.0] * n)
    for j, (a, b) in enumerate(steps):
        walls.append((kernels[b][0] - kernels[a][0]) / 1e3)
        gaps.append((kernels[a][0] - kernels[a - 1][1]) / 1e3)
        idle, reach = 0.0, kernels[a][0]
        for i in range(a, b):
            s, e, name = kernels[i]
            prev_end = kernels[i - 1][1] if i > a else s
            charged[name][j] += (e - max(prev_end, s if i == a else prev_end)) / 1e3
            own[name][j] += (e - s) / 1e3
            if s > reach:
                idle += (s - reach) / 1e3
            reach = max(reach, e)
        idles.append(idle + (kernels[b][0] - reach) / 1e3 if kernels[b][0] > reach else idle)
    print(f"{n} steps of {count} kernels: wall median {statistics.median(walls):.1f} us "
          f"(mean {statistics.mean(walls):.1f}); gap before the step median "
          f"{statistics.median(gaps):.1f} us; GPU idle (no kernel resident) median "
          f"{statistics.median(idles):.1f} us a step, gap included\n")
    print("| kernel | a step | us a step, charged, median | mean | us a step, own duration, median |"
          "\n|---|---:|---:|---:|---:|")
    launches = collections.Counter(k[2] for a, b in steps for k in kernels[a:b])
    ranked = sorted(charged.items(), key=lambda kv: -statistics.median(kv[1]))
    for name, us in ranked[: args.top]:
        print(f"| {name[:70]} | {launches[name] / n:.0f} | {statistics.median(us):.1f} | "
              f"{statistics.mean(us):.1f} | {statistics.median(own[name]):.1f} |")
    if args.positions:
        print("\n| place | kernel | grid | us charged, median |\n|---:|---|---:|---:|")
        for p in range(count):
            times = []
            for a, _ in steps:
                s, e, _ = kernels[a + p]
                prev_end = kernels[a + p - 1][1] if p > 0 else s
                times.append((e - max(prev_end, s if p == 0 else prev_end)) / 1e3)
            name = kernels[steps[0][0] + p][2]
            print(f"| {p} | {name[:60]} | {grids[steps[0][0] + p]} | {statistics.median(times):.1f} |")


if __name__ == "__main__":
    main()
