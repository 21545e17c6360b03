#!/usr/bin/env python3
"""Hugging Face transformers baseline: eager DeepseekV32ForCausalLM, batch 1, random weights.

Builds DeepSeek-V3.2 at the official widths (data/models/deepseek-v3.2/config.json) with a reduced
layer count, random weights generated directly on the device (never on the host), then times a
batch-1 prefill of random token ids (TTFT) and greedy decode steps one token at a time through the
model's own KV cache. Prints one JSON line (and writes it to --out).

    python3 bench/scripts/hf_decode_baseline.py --layers 8 --out hf-8l.json      # H200, BF16
    python3 bench/scripts/hf_decode_baseline.py --device cpu --tiny              # smoke test, no GPU

Written against torch 2.11 and transformers 5.17 (modeling_deepseek_v32.py). What the eager path
of that version does, and why it is slow (worth knowing when comparing against dsserve):

* Attention (DeepseekV32Attention, attn_implementation="eager"): MLA is *not* absorbed. Each new
  token's latent goes through kv_b_proj and the cache (DynamicCache with DynamicIndexedLayer) stores
  the fully expanded per-head K (128 x 192) and V (128 x 128): 80 KiB per token per layer in BF16,
  against 1.1 KiB for the 576-wide latent. Decode attention is a dense matmul over all cached tokens
  with a float32 softmax; DSA "sparsity" is only an additive -inf mask built from the indexer's
  top-k (a [1, 1, S, T] bool scatter), so it saves no work -- and for contexts up to index_topk
  (2048) the top-k selects every token anyway.
* Indexer (DeepseekV32Indexer): BF16 wq_b/wk, LayerNorm k_norm, no Hadamard rotation, no FP8; scores
  in float32 over all T cached indexer keys for 64 heads, relu, head-weighted sum, topk. weights_proj
  is listed in _keep_in_fp32_modules, so this script keeps it in float32 as from_pretrained would.
* Masks: create_causal_mask is called with allow_is_causal_skip=False, so every forward
  materialises a full [1, 1, S, T] mask.
* MoE (DeepseekV32MoE): the router (sigmoid, group-limited top-k, e_score_correction_bias) runs in
  float32. The experts are fused 3-D parameters gate_up_proj [E, 2*I, H] and down_proj [E, H, I].
  With experts_implementation="eager" (this script's default, --experts-impl) the forward is a
  Python loop over the experts hit: one_hot -> nonzero (a host sync) -> per expert torch.where,
  gather, two F.linear, index_add_. A 1,024-token prefill hits all 256 experts in every MoE layer
  (256 loop iterations x ~10 kernels, each with a device->host sync); a decode step hits <= 8.
  transformers' own default when nothing is requested is "grouped_mm" (torch._grouped_mm over all
  experts with offsets); pass --experts-impl grouped_mm (or batched_mm) to measure that instead.
* Everything else is plain PyTorch eager: ~20-30 small kernels per layer per token, Python
  overhead per module, no CUDA graphs, no fusion. Weights are BF16 (the checkpoint's FP8 block
  quantization is dropped: quantization_config is removed).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "data", "models", "deepseek-v3.2", "config.json")

GB = 1e9
GIB = float(1 << 30)

# Small widths for a CPU smoke test. index_topk is below the default prompt so the indexer's top-k
# really drops tokens; n_routed_experts divides by n_group.
TINY_OVERRIDES = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "moe_intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 96,
    "kv_lora_rank": 64,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 16,
    "num_experts_per_tok": 4,
    "n_group": 4,
    "topk_group": 2,
    "n_shared_experts": 1,
    "index_n_heads": 4,
    "index_head_dim": 32,
    "index_topk": 16,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
}


def log(msg: str) -> None:
    print(f"[hf_decode_baseline] {msg}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG, help="model config.json (default: the official V3.2 one)")
    p.add_argument("--layers", type=int, default=None, help="num_hidden_layers (default 8; 2 with --tiny)")
    p.add_argument("--first-dense", type=int, default=None,
                   help="first_k_dense_replace: leading dense-MLP layers (default: the config's, 3; 1 with --tiny)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny widths for a CPU smoke test")
    p.add_argument("--prompt-len", type=int, default=1024)
    p.add_argument("--decode-steps", type=int, default=32)
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed decode steps in a warm-up round (prefill + N steps on a throwaway cache) "
                        "before the timed round; 0 skips the warm-up round")
    p.add_argument("--experts-impl", default="eager",
                   help="transformers experts_implementation: eager (Python loop, default), grouped_mm "
                        "(transformers' own default), batched_mm")
    p.add_argument("--init-std", type=float, default=None, help="normal init std (default: config initializer_range)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON result to this file")
    p.add_argument("--dry-run", action="store_true",
                   help="build on meta only: print parameter count and memory estimate, allocate nothing")
    return p.parse_args()


def build_config_dict(args) -> dict:
    with open(args.config) as f:
        d = json.load(f)
    d.pop("quantization_config", None)  # run unquantized (BF16 by default), not block FP8
    if args.tiny:
        d.update(TINY_OVERRIDES)
    layers = args.layers if args.layers is not None else (2 if args.tiny else 8)
    first_dense = args.first_dense
    if first_dense is None:
        first_dense = 1 if args.tiny else d.get("first_k_dense_replace", 3)
    first_dense = min(first_dense, layers)
    d["num_hidden_layers"] = layers
    d["first_k_dense_replace"] = first_dense
    d["mlp_layer_types"] = ["dense"] * first_dense + ["sparse"] * (layers - first_dense)
    d["num_nextn_predict_layers"] = 0  # no MTP layer (transformers ignores it anyway)
    d["torch_dtype"] = args.dtype
    return d


def analytic_param_count(c) -> dict:
    """Parameters from the config alone, to cross-check the module tree."""
    H = c.hidden_size
    nh = c.num_attention_heads
    qk = c.qk_nope_head_dim + c.qk_rope_head_dim
    attn = (H * c.q_lora_rank + c.q_lora_rank                      # q_a_proj, q_a_layernorm
            + c.q_lora_rank * nh * qk                              # q_b_proj
            + H * (c.kv_lora_rank + c.qk_rope_head_dim) + c.kv_lora_rank  # kv_a_proj_with_mqa, kv_a_layernorm
            + c.kv_lora_rank * nh * (c.qk_nope_head_dim + c.v_head_dim)   # kv_b_proj
            + nh * c.v_head_dim * H)                               # o_proj
    indexer = (c.q_lora_rank * c.index_n_heads * c.index_head_dim  # wq_b
               + H * c.index_head_dim + 2 * c.index_head_dim       # wk, k_norm (LayerNorm w+b)
               + H * c.index_n_heads)                              # weights_proj
    norms = 2 * H
    dense_mlp = 3 * H * c.intermediate_size
    expert = 3 * H * c.moe_intermediate_size
    moe = (c.n_routed_experts * expert + c.n_shared_experts * expert  # routed + shared
           + c.n_routed_experts * H)                               # router weight
    n_dense = sum(1 for t in c.mlp_layer_types if t == "dense")
    n_moe = c.num_hidden_layers - n_dense
    embed = c.vocab_size * H
    head = 0 if c.tie_word_embeddings else c.vocab_size * H
    total = c.num_hidden_layers * (attn + indexer + norms) + n_dense * dense_mlp + n_moe * moe + embed + H + head
    # Weights one batch-1 decode step reads (no embedding matmul: a row gather).
    active = (c.num_hidden_layers * (attn + indexer + norms) + n_dense * dense_mlp
              + n_moe * ((c.num_experts_per_tok + c.n_shared_experts) * expert + c.n_routed_experts * H)
              + H + head)
    return {"total": total, "per_layer_attention": attn + indexer, "dense_mlp": dense_mlp, "moe_layer": moe,
            "embed": embed, "lm_head": head, "n_dense": n_dense, "n_moe": n_moe, "decode_active": active}


def kv_bytes_per_token(c, elem: int) -> int:
    # transformers caches expanded K [nh, nope+rope] and V [nh, v] per layer, plus the indexer key.
    nh = c.num_attention_heads
    per_layer = nh * (c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim) + c.index_head_dim
    return c.num_hidden_layers * per_layer * elem


def prefill_activation_bytes(c, prompt_len: int, elem: int) -> int:
    """Rough peak of the eager prefill's largest temporaries (one layer at a time): the attention
    scores [nh, S, T] (elem-sized product, scaled copy, float32 softmax, cast back) and the
    indexer's float32 scores [index_n_heads, S, T] (product and relu), plus the [S, T] masks."""
    s = t = prompt_len
    attn = c.num_attention_heads * s * t * (2 * elem + 4 + elem)
    indexer = c.index_n_heads * s * t * 4 * 2
    masks = s * t * (4 + 2 * elem)
    return attn + indexer + masks


def build_model_on_meta(config, dtype, torch, transformers):
    from transformers import DeepseekV32ForCausalLM
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older layouts
        from transformers.modeling_utils import no_init_weights
    with torch.device("meta"), no_init_weights():
        model = DeepseekV32ForCausalLM._from_config(config, dtype=dtype)
    # from_pretrained keeps these in float32 (_keep_in_fp32_modules / _keep_in_fp32_modules_strict).
    # e_score_correction_bias is created float32 explicitly; weights_proj needs casting.
    keep_fp32 = getattr(model, "_keep_in_fp32_modules", None) or []
    for name, module in model.named_modules():
        if any(name.endswith(k) for k in keep_fp32):
            module.to(torch.float32)
    return model


def init_on_device(model, config, device, std, seed, torch):
    """to_empty on the device, then fill every parameter and buffer in place there."""
    import torch.nn as nn
    from transformers.models.deepseek_v32 import modeling_deepseek_v32 as m

    model.to_empty(device=device)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    covered = set()
    chunk = 1 << 28  # elements per normal_ call: keeps any temporary bounded

    def normal_(t):
        flat = t.view(-1)
        for i in range(0, flat.numel(), chunk):
            flat[i:i + chunk].normal_(0.0, std, generator=gen)
        covered.add(id(t))

    def const_(t, v):
        t.fill_(v)
        covered.add(id(t))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, m.DeepseekV32RMSNorm):
                const_(module.weight, 1.0)
            elif isinstance(module, nn.LayerNorm):  # indexer k_norm
                const_(module.weight, 1.0)
                if module.bias is not None:
                    const_(module.bias, 0.0)
            elif isinstance(module, m.DeepseekV32TopkRouter):
                normal_(module.weight)
                const_(module.e_score_correction_bias, 0.0)  # zero bias: plain sigmoid top-k routing
            elif isinstance(module, m.DeepseekV32RotaryEmbedding):
                # inv_freq was computed on meta: recompute on the host (a few floats) and copy over.
                with torch.device("cpu"):
                    ref = m.DeepseekV32RotaryEmbedding(config)
                module.inv_freq.copy_(ref.inv_freq)
                module.original_inv_freq.copy_(ref.original_inv_freq)
                module.attention_scaling = ref.attention_scaling
                covered.add(id(module.inv_freq))
                covered.add(id(module.original_inv_freq))
        for name, p in model.named_parameters():
            if id(p) not in covered:  # every Linear, embedding, lm_head, fused experts
                normal_(p)
    missing = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if id(t) not in covered]
    if missing:
        raise RuntimeError(f"init left tensors uninitialised: {missing[:10]}")


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return sorted_vals[k]


def run_round(model, prompt, steps, torch, device):
    """Prefill then `steps` greedy decode steps. Returns (ttft_s, step_times_s, tokens, finite)."""
    finite = True
    t0 = time.perf_counter()
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    nxt = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
    sync(torch, device)
    ttft = time.perf_counter() - t0
    finite &= bool(torch.isfinite(out.logits).all())
    cache = out.past_key_values
    tokens = [int(nxt)]
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
        nxt = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        sync(torch, device)
        times.append(time.perf_counter() - t0)
        finite &= bool(torch.isfinite(out.logits).all())
        cache = out.past_key_values
        tokens.append(int(nxt))
    del out, cache
    return ttft, times, tokens, finite


def main() -> int:
    args = parse_args()
    import torch
    import transformers
    from transformers import DeepseekV32Config

    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    has_cuda = device.type == "cuda" and torch.cuda.is_available()
    if device.type == "cuda" and not has_cuda and not args.dry_run:
        print("CUDA is not available here: use --device cpu (with --tiny) or --dry-run", file=sys.stderr)
        return 1
    if has_cuda and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    std = args.init_std

    cfg_dict = build_config_dict(args)
    config = DeepseekV32Config(**cfg_dict)
    config._attn_implementation = "eager"
    config._experts_implementation = args.experts_impl
    if std is None:
        std = config.initializer_range

    summary = {
        "layers": config.num_hidden_layers,
        "dense_layers": sum(1 for t in config.mlp_layer_types if t == "dense"),
        "moe_layers": sum(1 for t in config.mlp_layer_types if t == "sparse"),
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "q_lora_rank": config.q_lora_rank,
        "kv_lora_rank": config.kv_lora_rank,
        "intermediate": config.intermediate_size,
        "moe_intermediate": config.moe_intermediate_size,
        "experts": config.n_routed_experts,
        "shared_experts": config.n_shared_experts,
        "experts_per_tok": config.num_experts_per_tok,
        "index_topk": config.index_topk,
        "index_n_heads": config.index_n_heads,
        "index_head_dim": config.index_head_dim,
        "vocab": config.vocab_size,
        "rope_type": config.rope_parameters.get("rope_type"),
        "tiny": args.tiny,
    }
    result = {
        "bench": "hf_transformers_eager_decode",
        "status": "ok",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if has_cuda else device.type,
        "dtype": args.dtype,
        "attn_implementation": "eager",
        "experts_implementation": args.experts_impl,
        "config": summary,
        "prompt_len": args.prompt_len,
        "decode_steps": args.decode_steps,
        "warmup": args.warmup,
        "batch": 1,
        "seed": args.seed,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
    }

    ana = analytic_param_count(config)
    elem = torch.tensor([], dtype=dtype).element_size()
    phase = "building the model on meta"
    try:
        model = build_model_on_meta(config, dtype, torch, transformers)
        model.eval()
        n_params = sum(p.numel() for p in model.parameters())
        n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        kv_tok = kv_bytes_per_token(config, elem)
        ctx = args.prompt_len + args.decode_steps + 1
        result.update({
            "params": n_params,
            "params_analytic": ana["total"],
            "weight_bytes": n_bytes,
            "weight_gb": round(n_bytes / GB, 3),
            "weight_gib": round(n_bytes / GIB, 3),
            "decode_active_weight_bytes": ana["decode_active"] * elem,
            "kv_cache_bytes_per_token": kv_tok,
            "kv_cache_bytes_at_end": kv_tok * ctx,
            "experts_impl_resolved": model.config._experts_implementation,
            "attn_impl_resolved": model.config._attn_implementation,
        })
        log(f"config: {json.dumps(summary)}")
        log(f"parameters: {n_params:,} (analytic {ana['total']:,}; attention+indexer/layer "
            f"{ana['per_layer_attention']:,}, dense MLP {ana['dense_mlp']:,}, MoE layer {ana['moe_layer']:,}, "
            f"embed {ana['embed']:,}, lm_head {ana['lm_head']:,})")
        log(f"weights: {n_bytes:,} bytes = {n_bytes / GB:.2f} GB = {n_bytes / GIB:.2f} GiB in {args.dtype} "
            f"(+ KV cache {kv_tok:,} B/token, {kv_tok * ctx / GB:.3f} GB at {ctx} tokens)")
        act = prefill_activation_bytes(config, args.prompt_len, elem)
        result["est_prefill_activation_bytes"] = act
        result["est_peak_bytes"] = n_bytes + kv_tok * ctx + act
        log(f"estimated peak: {result['est_peak_bytes'] / GB:.2f} GB = {result['est_peak_bytes'] / GIB:.2f} GiB "
            f"(weights + KV + ~{act / GB:.2f} GB of prefill temporaries)")
        if n_params != ana["total"]:
            log(f"WARNING: module parameter count {n_params:,} != analytic {ana['total']:,}")
        if has_cuda:
            free, total = torch.cuda.mem_get_info(device)
            result["gpu_total_bytes"] = total
            result["gpu_free_before_bytes"] = free
            log(f"GPU {result['device_name']}: {free / GIB:.1f} GiB free of {total / GIB:.1f} GiB")

        if args.dry_run:
            result["status"] = "dry_run"
            print(json.dumps(result), flush=True)
            return 0

        phase = "allocating and initialising the weights on " + str(device)
        t0 = time.perf_counter()
        init_on_device(model, config, device, std, args.seed, torch)
        sync(torch, device)
        result["init_seconds"] = round(time.perf_counter() - t0, 3)
        log(f"weights initialised on {device} in {result['init_seconds']} s (normal(0, {std}); norms 1)")
        if device.type == "cuda":
            result["gpu_allocated_after_weights_bytes"] = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)

        g = torch.Generator(device="cpu").manual_seed(args.seed + 1)
        prompt = torch.randint(0, config.vocab_size, (1, args.prompt_len), generator=g).to(device)

        with torch.inference_mode():
            if args.warmup > 0:
                phase = f"warm-up round (prefill {args.prompt_len} + {args.warmup} decode steps)"
                log(phase)
                w_ttft, w_times, _, w_finite = run_round(model, prompt, args.warmup, torch, device)
                result["warmup_ttft_s"] = round(w_ttft, 6)
                result["warmup_step_s"] = [round(t, 6) for t in w_times]
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            phase = f"timed round (prefill {args.prompt_len} + {args.decode_steps} decode steps)"
            log(phase)
            ttft, times, tokens, finite = run_round(model, prompt, args.decode_steps, torch, device)

        s = sorted(times)
        result.update({
            "logits_finite": finite and (args.warmup == 0 or w_finite),
            "ttft_s": round(ttft, 6),
            "prefill_tok_per_s": round(args.prompt_len / ttft, 2),
            "decode": {
                "steps": len(times),
                "median_s": round(statistics.median(s), 6) if s else None,
                "mean_s": round(statistics.fmean(s), 6) if s else None,
                "p90_s": round(pct(s, 0.9), 6) if s else None,
                "min_s": round(s[0], 6) if s else None,
                "max_s": round(s[-1], 6) if s else None,
                "tok_per_s_at_median": round(1.0 / statistics.median(s), 3) if s else None,
            },
            "decode_step_s": [round(t, 6) for t in times],
            "generated_token_ids": tokens[:16],
        })
        if device.type == "cuda":
            result["gpu_allocated_bytes"] = torch.cuda.memory_allocated(device)
            result["gpu_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
            result["gpu_peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
            result["gpu_peak_allocated_gib"] = round(result["gpu_peak_allocated_bytes"] / GIB, 3)
        log(f"logits finite: {result['logits_finite']}")
        if s:
            log(f"TTFT {ttft * 1e3:.1f} ms; decode median {result['decode']['median_s'] * 1e3:.2f} ms, "
                f"mean {result['decode']['mean_s'] * 1e3:.2f} ms, p90 {result['decode']['p90_s'] * 1e3:.2f} ms, "
                f"min {result['decode']['min_s'] * 1e3:.2f} ms")
        rc = 0 if result["logits_finite"] else 1
        if not result["logits_finite"]:
            result["status"] = "nonfinite_logits"
    except torch.OutOfMemoryError as e:  # torch.cuda.OutOfMemoryError is the same class
        need = result.get("weight_bytes")
        msg = (f"OUT OF MEMORY while {phase}: tried {result.get('params', 0):,} parameters = "
               f"{(need or 0) / GB:.2f} GB of {args.dtype} weights ({summary['layers']} layers: "
               f"{summary['dense_layers']} dense + {summary['moe_layers']} MoE) plus KV cache and activations "
               f"for a {args.prompt_len}-token prompt")
        if device.type == "cuda":
            msg += f"; device has {result.get('gpu_total_bytes', 0) / GIB:.1f} GiB. Try fewer --layers."
        print(msg, file=sys.stderr, flush=True)
        print(f"  ({str(e).splitlines()[0] if str(e) else type(e).__name__})", file=sys.stderr, flush=True)
        result["status"] = "oom"
        result["error"] = msg
        rc = 2

    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
