#!/usr/bin/env python3
"""Golden token ids for the tokenizer tests, made by HF `tokenizers` (the reference).

Writes tests/golden/tokenizer/:
  encode.json  the corpus of tools/golden/tokenizer_corpus.py, the three
               data/encoding/deepseek-v3.2/test_output*.txt files, ill-formed UTF-8 byte strings
               (encoded as Python's errors="replace" repairs them, which is what
               Tokenizer::encode promises), and every code point whose class membership PCRE2's
               older tables do not know; for each: ids without and with add_special_tokens, and
               decode of those ids with and without skip_special_tokens.
  decode.json  decode of seeded random id sequences (partial UTF-8, special, added and unknown
               ids) and of the whole vocab in runs of consecutive ids, both skip settings
               ("skip" is left out where it equals "keep").
  flags.json   the same tokenizer with lstrip/rstrip/single_word set on some added tokens (the
               edits are listed in the file), and ids for texts that exercise them.

Made with (tokenizers 0.23.3):
    python3 -m venv .venv && .venv/bin/pip install tokenizers==0.23.3
    .venv/bin/python tools/golden/make_tokenizer_golden.py
"""
import json
import pathlib
import random
import re
import sys

import tokenizers
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tokenizer_corpus  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
OUT = ROOT / "tests/golden/tokenizer"
TOKENIZER_JSON = DATA / "tokenizer/deepseek-v3.2/tokenizer.json"
COMMAND = ".venv/bin/python tools/golden/make_tokenizer_golden.py"


def extra_code_points() -> list[int]:
    """Code points where PCRE2's classes had to be extended, plus the \\s outliers."""
    inc = (ROOT / "src/tokenizer/unicode_ranges.inc").read_text()
    cps = set()
    for block in re.findall(r"kExtra\w+ = \{\{(.*?)\}\};", inc, re.S):
        for a, b in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", block):
            cps.update(range(int(a, 16), int(b, 16) + 1))
    cps.update([0x180E, 0x0085, 0x2028, 0x2029, 0x3000, 0x00A0, 0x1680])
    return sorted(cps)


def class_sweep_texts(cps: list[int]) -> list[tuple[str, str]]:
    """Each code point next to a space, a digit, a letter and punctuation, 100 per text."""
    contexts = [" ", "1", "a", "!", "\n", ""]
    out = []
    for start in range(0, len(cps), 100):
        chunk = cps[start:start + 100]
        text = "".join(chr(c) + contexts[i % len(contexts)] for i, c in enumerate(chunk))
        out.append((f"classes/{start // 100}", text))
    return out


def encode_case(tok: Tokenizer, case: dict, text: str) -> dict:
    ids = tok.encode(text, add_special_tokens=False).ids
    case["ids"] = ids
    case["ids_special"] = tok.encode(text, add_special_tokens=True).ids
    case["decoded_keep"] = tok.decode(ids, skip_special_tokens=False)
    case["decoded_skip"] = tok.decode(ids, skip_special_tokens=True)
    return case


def make_encode(tok: Tokenizer) -> dict:
    cps = extra_code_points()
    cases = []
    named = tokenizer_corpus.hand_written()
    named += [(f"random/{i}", t) for i, t in enumerate(tokenizer_corpus.random_texts(300, cps))]
    named += class_sweep_texts(cps)
    for name, text in named:
        cases.append(encode_case(tok, {"name": name, "text": text}, text))
    for path in sorted((DATA / "encoding/deepseek-v3.2").glob("test_output*.txt")):
        rel = path.relative_to(DATA).as_posix()
        cases.append(encode_case(tok, {"name": rel, "file": rel}, path.read_text(encoding="utf-8")))
    for name, hexbytes in tokenizer_corpus.HEX_BYTES:
        repaired = bytes.fromhex(hexbytes).decode("utf-8", errors="replace")
        cases.append(encode_case(tok, {"name": f"bytes/{name}", "bytes_hex": hexbytes}, repaired))
    return {"generator": f"tokenizers {tokenizers.__version__}", "command": COMMAND,
            "cases": cases}


def make_decode(tok: Tokenizer) -> dict:
    rng = random.Random(7)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    byte_ids = [tok.token_to_id(s) for s in "ĀāĂăĄ¡¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ"]
    byte_ids = [i for i in byte_ids if i is not None]
    interesting = [0, 1, 2, 128000, 128795, 128796, 128797, 128798, 128799, 128803, 128804, 128805,
                   128814, vocab_size, vocab_size + 100, 1 << 20]
    cases = []
    for _ in range(300):
        ids = []
        for _ in range(rng.randint(1, 40)):
            r = rng.random()
            if r < 0.5:
                ids.append(rng.randrange(0, 128000))
            elif r < 0.8:
                ids.append(rng.choice(byte_ids))
            else:
                ids.append(rng.choice(interesting))
        cases.append(ids)
    decoded = [{"ids": ids, "keep": tok.decode(ids, skip_special_tokens=False),
                "skip": tok.decode(ids, skip_special_tokens=True)} for ids in cases]
    # The whole vocab, as runs of consecutive ids (stored as first id and count).
    for first in range(0, vocab_size, 512):
        ids = list(range(first, min(first + 512, vocab_size)))
        decoded.append({"first": first, "count": len(ids),
                        "keep": tok.decode(ids, skip_special_tokens=False),
                        "skip": tok.decode(ids, skip_special_tokens=True)})
    for case in decoded:  # "skip" only where it differs, to keep the file small
        if case["skip"] == case["keep"]:
            del case["skip"]
    return {"generator": f"tokenizers {tokenizers.__version__}", "command": COMMAND,
            "cases": decoded}


FLAG_EDITS = [
    {"id": 128803, "lstrip": True, "rstrip": True},   # <｜User｜>
    {"id": 128798, "single_word": True},              # <think>
    {"id": 128799, "rstrip": True},                   # </think>
    {"id": 0, "lstrip": True},                        # <｜begin▁of▁sentence｜>, not normalized
    {"id": 128804, "single_word": True, "lstrip": True},  # <｜Assistant｜>
]

FLAG_TEXTS = [
    "Hi <｜User｜> there",
    "Hi\t\u3000 <｜User｜>\n\n there",
    "a<｜User｜>b",
    " <｜User｜><｜User｜> ",
    "x<think>y",
    "x <think> y",
    "<think>",
    "é<think>",
    "<think>é",
    "_<think>_",
    "-<think>-",
    "1<think>",
    "\u0301<think>",
    "</think>   after",
    "</think>\n\n\nafter",
    "</think>",
    "text   <｜begin▁of▁sentence｜>",
    "<｜User｜>   <｜begin▁of▁sentence｜>",
    "word <｜Assistant｜> word",
    "word<｜Assistant｜> word",
    "  <｜Assistant｜>",
    "<think> <｜User｜> </think> <｜Assistant｜>",
]


def make_flags() -> dict:
    spec = json.loads(TOKENIZER_JSON.read_text(encoding="utf-8"))
    by_id = {t["id"]: t for t in spec["added_tokens"]}
    for edit in FLAG_EDITS:
        by_id[edit["id"]].update({k: v for k, v in edit.items() if k != "id"})
    tok = Tokenizer.from_str(json.dumps(spec))
    return {"generator": f"tokenizers {tokenizers.__version__}", "command": COMMAND,
            "edits": FLAG_EDITS,
            "cases": [{"text": t, "ids": tok.encode(t).ids} for t in FLAG_TEXTS]}


def write(name: str, doc: dict) -> None:
    (OUT / name).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n",
                            encoding="utf-8")


def main() -> None:
    tok = Tokenizer.from_file(str(TOKENIZER_JSON))
    OUT.mkdir(parents=True, exist_ok=True)
    write("encode.json", make_encode(tok))
    write("decode.json", make_decode(tok))
    write("flags.json", make_flags())


if __name__ == "__main__":
    main()
