#!/usr/bin/env python3
"""bench/scripts/compare_logits.py on two made-up logit files whose answers are known."""
import array
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "scripts", "compare_logits.py")


def write_npy(path, rows):
    """A 2-D float32 .npy file (format 1.0), as numpy.save writes it."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), len(rows[0]))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    data = array.array("f", [v for row in rows for v in row])
    if sys.byteorder != "little":
        data.byteswap()
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))
        f.write(data.tobytes())


def main():
    # Three positions of eight logits; only the last row is compared. In A token 5 leads token 2
    # by 0.25; B moves token 2 up by 0.5 (it now leads by 0.25) and token 7 down by 0.125.
    last = [0.0, 1.0, 2.75, 0.5, -1.0, 3.0, 0.25, 1.5]
    a = [[0.0] * 8, [3.0] * 8, last]
    b = [[100.0] * 8, [3.0] * 8, list(last)]  # an earlier position differs: ignored
    b[-1][2] += 0.5
    b[-1][7] -= 0.125
    with tempfile.TemporaryDirectory() as d:
        pa, pb = os.path.join(d, "a.npy"), os.path.join(d, "b.npy")
        write_npy(pa, a)
        write_npy(pb, b)
        out = subprocess.run([sys.executable, SCRIPT, pa, pb], capture_output=True, text=True,
                             check=True).stdout
        bad = subprocess.run([sys.executable, SCRIPT, pa, SCRIPT], capture_output=True, text=True)
    lines = out.splitlines()
    expect = [
        "A top5 [(5, 3.0), (2, 2.75), (7, 1.5), (1, 1.0), (3, 0.5)] margin top1-top2 0.25",
        "B top5 [(2, 3.25), (5, 3.0), (7, 1.375), (1, 1.0), (3, 0.5)] margin top1-top2 0.25",
        "max |A-B| 0.5 at 2, mean 0.0781, max |A| 3",
    ]
    if lines != expect:
        print("got:\n" + out + "want:\n" + "\n".join(expect), file=sys.stderr)
        return 1
    if bad.returncode == 0 or "not a .npy file" not in bad.stderr:
        print("a file that is not .npy was taken: " + bad.stderr, file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
