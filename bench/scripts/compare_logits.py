"""Compares the last position's logits of two `dsserve forward --out` files.

    python3 bench/scripts/compare_logits.py a.npy b.npy

Prints each file's five largest logits (token, value) with the margin between its first two, then
the largest and mean absolute difference between the two rows: whether a change in greedy tokens
between two builds is a near tie moved by rounding or something larger. Reads only the last row
of each file (a 3,000-token prompt's logits are 1.5 GB), with the standard library alone.
"""
import array
import ast
import struct
import sys


def last_row(path):
    """The last row of a 2-D little-endian float32 .npy file, as a list of floats."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path}: not a .npy file")
        major = f.read(2)[0]
        size = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))[0]
        header = ast.literal_eval(f.read(size).decode("latin1"))
        shape = header["shape"]
        if header["descr"] != "<f4" or header["fortran_order"] or len(shape) != 2:
            raise ValueError(f"{path}: want a 2-D C-order <f4 array, got {header}")
        rows, cols = shape
        f.seek((rows - 1) * cols * 4, 1)
        row = array.array("f")
        row.frombytes(f.read(cols * 4))
        if sys.byteorder != "little":
            row.byteswap()
        return row.tolist()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    a, b = (last_row(path) for path in sys.argv[1:])
    if len(a) != len(b):
        print(f"rows of {len(a)} and {len(b)} logits", file=sys.stderr)
        return 1
    for name, x in zip("AB", (a, b)):
        top = sorted(range(len(x)), key=lambda i: (-x[i], i))[:5]
        print(name, "top5", [(i, round(x[i], 6)) for i in top],
              "margin top1-top2 %.3g" % (x[top[0]] - x[top[1]]))
    d = [abs(p - q) for p, q in zip(a, b)]
    worst = max(range(len(d)), key=d.__getitem__)
    print("max |A-B| %.3g at %d, mean %.3g, max |A| %.3g" % (d[worst], worst, sum(d) / len(d),
                                                             max(abs(v) for v in a)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
