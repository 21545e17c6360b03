#!/usr/bin/env python3
"""Where one decode step's GPU time goes, from an Nsight Compute CSV of kernel durations.

    ncu --metrics gpu__time_duration.sum --csv --log-file kernels.csv \
        dsserve generate ... --max-new-tokens 3
    python3 bench/scripts/ncu_step_table.py kernels.csv --last-steps 1

A step is the kernels between two launches of the step's first kernel (the embedding gather);
the table sums the durations of the last step(s) by kernel name. ncu serializes kernels, so the
sum is pure GPU time with no launch gaps: the difference to the measured step time is the
host's share.
"""
import argparse
import collections
import csv
import re


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--last-steps", type=int, default=1)
    ap.add_argument("--step-start", default="embed_rows_kernel",
                    help="the kernel that opens each forward pass")
    args = ap.parse_args()
    rows = []
    with open(args.csv, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = r.get("Metric Unit", "nsecond")
        v = float(r["Metric Value"].replace(",", ""))
        scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(unit, 1e-3)
        name = re.sub(r"\(.*", "", r["Kernel Name"]).strip()
        rows.append((int(r["ID"]), name, v * scale))
    rows.sort()
    starts = [i for i, (_, n, _) in enumerate(rows) if args.step_start in n]
    if len(starts) < args.last_steps:
        raise SystemExit(f"found {len(starts)} steps")
    first = starts[-args.last_steps]
    step = rows[first:]
    by = collections.defaultdict(lambda: [0.0, 0])
    for _, n, us in step:
        by[n][0] += us / args.last_steps
        by[n][1] += 1
    total = sum(v[0] for v in by.values())
    print(f"{len(step) // args.last_steps} kernels per step, GPU time {total:.1f} us per step\n")
    print("| kernel | launches | us per step | share |\n|---|---:|---:|---:|")
    for n, (us, c) in sorted(by.items(), key=lambda kv: -kv[1][0]):
        print(f"| {n[:70]} | {c // args.last_steps} | {us:.1f} | {100 * us / total:.1f}% |")


if __name__ == "__main__":
    main()
