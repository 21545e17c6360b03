#!/usr/bin/env python3
"""Makes tests/golden/model/<case>/ for every case in cases.json: the checkpoint is written by
`dsserve make-model` (deterministic in its seed), the reference outputs by hf_reference.py.

Exact command used (from the repository root, with torch 2.11 and transformers 5.17 installed):
    python3 tools/reference/make_golden.py --dsserve build/dsserve --out tests/golden/model
"""
import argparse
import hashlib
import json
import pathlib
import random
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def weights_digest(model_dir: pathlib.Path) -> str:
    h = hashlib.sha256()
    for f in sorted(model_dir.glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsserve", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    cases = json.loads((HERE / "cases.json").read_text())
    for case in cases:
        if args.only and case["name"] != args.only:
            continue
        out = pathlib.Path(args.out) / case["name"]
        out.mkdir(parents=True, exist_ok=True)
        vocab = case["overrides"].get("vocab_size", 129280)
        rng = random.Random(case["seed"])
        # Ids from the ordinary BPE range, avoiding BOS/EOS so nothing stops early.
        ids = [rng.randrange(2, min(vocab, 128000)) for _ in range(case["prompt_len"])]
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = pathlib.Path(tmp) / "model"
            cmd = [args.dsserve, "make-model", str(model_dir), "--preset", case["preset"],
                   "--dtype", case["dtype"], "--seed", str(case["seed"]),
                   "--json-model-override-args", json.dumps(case["overrides"])]
            if "scale_dtype" in case:
                cmd += ["--scale-dtype", case["scale_dtype"]]
            subprocess.run(cmd, check=True)
            ref = [sys.executable, str(HERE / "hf_reference.py"), "--model-path", str(model_dir),
                   "--input-ids", ",".join(map(str, ids)), "--out-dir", str(out), "--greedy", "32"]
            if case.get("topk_only"):
                ref += ["--topk-only", str(case["topk_only"])]
            subprocess.run(ref, check=True)
            meta = dict(case)
            meta["input_ids"] = ids
            meta["weights_sha256"] = weights_digest(model_dir)
            meta["make_model_command"] = " ".join(cmd[1:2] + ["MODEL_DIR"] + cmd[3:])
            (out / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
        print("wrote", out)


if __name__ == "__main__":
    main()
