#!/usr/bin/env python3
"""Reference logits and greedy continuations from Hugging Face transformers for a checkpoint that
`dsserve make-model` wrote.

FP8 checkpoints are dequantized here (weight * weight_scale_inv per block) into a float32 copy that
transformers loads with from_pretrained, so transformers' own name mapping (per-expert tensors into
fused expert weights) is used. The model runs in float32 with eager attention.

Usage: hf_reference.py --model-path DIR --input-ids 1,2,3 --out-dir OUT [--greedy 32] [--topk-only 100]
Writes OUT/logits.npy (float32 [T, vocab]) or, with --topk-only K, OUT/topk_ids.npy and
OUT/topk_values.npy; OUT/greedy.json (the continuation); OUT/reference.json (versions).
"""
import argparse
import json
import math
import pathlib
import shutil
import tempfile

import numpy as np
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file


def dequantized_copy(src: pathlib.Path, dst: pathlib.Path) -> None:
    config = json.loads((src / "config.json").read_text())
    quant = config.pop("quantization_config", None)
    tensors = {}
    files = sorted(p for p in src.glob("*.safetensors"))
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            for name in sf.keys():
                tensors[name] = sf.get_tensor(name)
    out = {}
    for name, t in tensors.items():
        if name.endswith("_scale_inv"):
            continue
        if t.dtype == torch.float8_e4m3fn:
            scale = tensors[name + "_scale_inv"]
            if scale.dtype == torch.uint8 or str(scale.dtype) == "torch.float8_e8m0fnu":
                scale = torch.pow(2.0, scale.view(torch.uint8).float() - 127.0)
            bn, bk = quant["weight_block_size"]
            w = t.float()
            s = scale.float().repeat_interleave(bn, 0)[: w.shape[0]].repeat_interleave(bk, 1)[:, : w.shape[1]]
            out[name] = (w * s).contiguous()
        else:
            out[name] = t.float().contiguous()
    save_file(out, str(dst / "model.safetensors"), metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    for extra in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        if (src / extra).exists():
            shutil.copy(src / extra, dst / extra)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--input-ids", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--greedy", type=int, default=32)
    ap.add_argument("--topk-only", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(0)
    src = pathlib.Path(args.model_path)
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [int(x) for x in args.input_ids.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        dequantized_copy(src, tmp)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(tmp), dtype=torch.float32, attn_implementation="eager")
        model.eval()
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float().numpy()
            gen_config = transformers.GenerationConfig(
                max_new_tokens=args.greedy, do_sample=False, eos_token_id=None, pad_token_id=0)
            generated = model.generate(torch.tensor([ids]), generation_config=gen_config)
    if args.topk_only:
        k = args.topk_only
        order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        np.save(out_dir / "topk_ids.npy", order.astype(np.float32))
        np.save(out_dir / "topk_values.npy", np.take_along_axis(logits, order, axis=1).astype(np.float32))
    else:
        np.save(out_dir / "logits.npy", logits.astype(np.float32))
    (out_dir / "greedy.json").write_text(json.dumps(generated[0, len(ids):].tolist()) + "\n")
    (out_dir / "reference.json").write_text(json.dumps({
        "transformers": transformers.__version__, "torch": torch.__version__,
        "model_class": type(model).__name__, "dtype": "float32", "attn_implementation": "eager",
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
