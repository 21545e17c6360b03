#!/usr/bin/env python3
"""YaRN frequencies, attention factor and softmax scale as transformers computes them, for the
official DeepSeek-V3.2 config and a plain-RoPE variant.

Command (repository root): python3 tools/reference/rope_reference.py > tests/golden/model/rope.json
"""
import json
import pathlib

from transformers import DeepseekV32Config
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.deepseek_v32.modeling_deepseek_v32 import (
    DeepseekV32Attention, DeepseekV32RotaryEmbedding)

root = pathlib.Path(__file__).resolve().parents[2]
official = json.loads((root / "data/models/deepseek-v3.2/config.json").read_text())
out = {}
for name, overrides in [("official", {}), ("plain", {"rope_scaling": None, "rope_theta": 50000.0})]:
    cfg_dict = dict(official)
    cfg_dict.pop("quantization_config")
    cfg_dict.update(overrides)
    if cfg_dict.get("rope_scaling") is None:
        cfg_dict.pop("rope_scaling")
    config = DeepseekV32Config(**cfg_dict)
    rope = DeepseekV32RotaryEmbedding(config)
    attn_scale = DeepseekV32Attention(config, 0).scaling
    out[name] = {
        "config_overrides": overrides,
        "inv_freq": [float(x) for x in rope.inv_freq.tolist()],
        "attention_factor": float(rope.attention_scaling),
        "softmax_scale": float(attn_scale),
    }
print(json.dumps(out, indent=1))
