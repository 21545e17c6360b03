#!/usr/bin/env python3
"""Rejects an #include that points up or sideways in the layer graph (docs/ARCHITECTURE.md)."""
import pathlib
import re
import sys

ALLOWED = {
    "core": set(),
    "model": {"core"},
    "backend": {"core", "model"},
    "runtime": {"core", "model", "backend"},
    "tokenizer": {"core"},
    "chat": {"core", "tokenizer"},
    "parsers": {"core"},
    "recipe": {"core"},
    "web": set(),
    "server": {"core", "model", "backend", "runtime", "tokenizer", "chat", "parsers", "web"},
    "bench": {"core", "tokenizer", "chat"},
    "cli": None,  # the top: may include anything
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent / "src"
    bad = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in {".h", ".cpp", ".cu", ".cuh"}:
            continue
        layer = path.relative_to(root).parts[0]
        allowed = ALLOWED.get(layer)
        if allowed is None:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) != layer and m.group(1) not in allowed:
                bad.append(f"{path.relative_to(root.parent)}:{lineno}: {layer} may not include {m.group(1)}/")
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
