#!/usr/bin/env python3
"""bench/scripts/kernel_trace_steps.py on a made-up timeline whose answers are known."""
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "scripts", "kernel_trace_steps.py")


def main():
    # Four steps of three kernels (gather, a, b), then a fifth step's first kernel. In every
    # step, a starts 5 us before gather ends (programmatic overlap) and b runs after a with a
    # 3 us gap, except in the last step, where the host paused 200 us before b (its median
    # charge stays 30 us, its mean becomes 80); the gap before steps 2-4 is 20 us. A prefill
    # step of a different kernel count comes first and must be left out.
    rows = ["kind,start_ns,end_ns,correlation,grid,block,name"]
    def kernel(start_us, end_us, name, grid=1):
        rows.append(f"kernel,{int(start_us * 1000)},{int(end_us * 1000)},0,{grid},128,\"{name}\"")
    kernel(0, 10, "embed_rows_kernel")
    kernel(10, 40, "prefill_only_kernel")
    for step in range(4):
        t = 100 + 100 * step
        pause = 200 if step == 3 else 0
        kernel(t, t + 10, "embed_rows_kernel")
        kernel(t + 5, t + 50, "a_kernel", grid=7)
        kernel(t + 53 + pause, t + 80 + pause, "b_kernel")
    kernel(700, 710, "embed_rows_kernel")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write("\n".join(rows) + "\n")
    out = subprocess.run([sys.executable, SCRIPT, f.name, "--positions"], capture_output=True,
                         text=True, check=True).stdout
    os.unlink(f.name)
    print(out)
    checks = [
        "4 steps of 3 kernels: wall median 100.0 us",
        "gap before the step median 20.0 us",
        # idle: 3 us between a and b, and 20 us after b until the next step
        "GPU idle (no kernel resident) median 23.0 us",
        "| a_kernel | 1 | 40.0 | 40.0 | 45.0 |",  # charged from gather's end (t + 10) to t + 50
        "| b_kernel | 1 | 30.0 | 80.0 | 27.0 |",  # from a's end, gap included
        "| embed_rows_kernel | 1 | 10.0 | 10.0 | 10.0 |",
        "| 1 | a_kernel | 7 | 40.0 |",
    ]
    missing = [c for c in checks if c not in out]
    if missing or "prefill_only_kernel" in out:
        print("missing:", missing)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
