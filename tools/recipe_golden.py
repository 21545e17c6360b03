#!/usr/bin/env python3
"""Writes tests/golden/recipe/recipes.json: the text of every combination of the DeepSeek-V3.2
command generator, computed independently of src/recipe.

This follows the control flow of the generator in SGLang's cookbook
(sgl-project/sglang: docs/src/snippets/autoregressive/deepseek-v32-deployment.jsx,
generateCommand), re-stated here in Python, with the dsserve changes:
  - `dsserve serve` instead of `sglang serve`;
  - the V3.2 tool template path is the one in this repository (data/chat_templates/);
  - NVFP4 and MXFP4 are fixed commands; the guide's page hides the other choices for them, while
    dsserve rejects such a choice with an error in the guide's style.

Regenerate with:
    python3 tools/recipe_golden.py tests/golden/recipe/recipes.json
"""
import itertools
import json
import sys

HARDWARE = ["h200", "b200", "mi300x", "mi355x"]
MODELS = ["v32", "v32speciale", "v32exp", "v32nvfp4", "v32mxfp4"]
LABELS = {
    "v32": "DeepSeek-V3.2",
    "v32speciale": "DeepSeek-V3.2-Speciale",
    "v32exp": "DeepSeek-V3.2-Exp",
    "v32nvfp4": "DeepSeek-V3.2-NVFP4",
    "v32mxfp4": "DeepSeek-V3.2-MXFP4",
}
REPOS = {
    "v32": "deepseek-ai/DeepSeek-V3.2",
    "v32speciale": "deepseek-ai/DeepSeek-V3.2-Speciale",
    "v32exp": "deepseek-ai/DeepSeek-V3.2-Exp",
    "v32nvfp4": "nvidia/DeepSeek-V3.2-NVFP4",
    "v32mxfp4": "amd/DeepSeek-V3.2-mxfp4",
}
TEMPLATE = "./data/chat_templates/tool_chat_template_deepseekv32.jinja"


def error(message, hint):
    return f"# Error: {message}\n# {hint}"


def generate(hardware, model, strategy, reasoning, toolcall):
    amd = hardware in ("mi300x", "mi355x")
    if model == "v32nvfp4" and hardware != "b200":
        return error("DeepSeek-V3.2-NVFP4 requires NVIDIA B200 (Blackwell) hardware",
                     'Please select "B200" for Hardware Platform or choose a different model')
    if model == "v32mxfp4" and not amd:
        return error("DeepSeek-V3.2-MXFP4 requires AMD MI300X/MI355X hardware",
                     'Please select "MI300X" or "MI355X" for Hardware Platform or choose a '
                     "different model")
    if model == "v32speciale" and toolcall:
        return error("DeepSeek-V3.2-Speciale doesn't support tool calling",
                     'Please select "Disabled" for Tool Call Parser or choose a different model')
    if model in ("v32nvfp4", "v32mxfp4"):
        extras = [("dp", '"DP attention"', 'deselect "DP attention" for Deployment Strategy'),
                  ("ep", '"EP"', 'deselect "EP" for Deployment Strategy'),
                  ("mtp", '"Multi-token Prediction"',
                   'deselect "Multi-token Prediction" for Deployment Strategy'),
                  ("reasoning", '"Reasoning Parser"', 'select "Disabled" for Reasoning Parser'),
                  ("toolcall", '"Tool Call Parser"', 'select "Disabled" for Tool Call Parser')]
        chosen = set(strategy) | ({"reasoning"} if reasoning else set()) | (
            {"toolcall"} if toolcall else set())
        for key, label, hint in extras:
            if key in chosen:
                return error(f"{LABELS[model]} uses a fixed configuration without {label}",
                             f"Please {hint} or choose a different model")

    cmd = "dsserve serve \\\n"
    cmd += f"  --model {REPOS[model]}"
    if model == "v32nvfp4":
        cmd += " \\\n  --tp 4"
        cmd += " \\\n  --quantization modelopt_fp4"
        cmd += " \\\n  --moe-runner-backend flashinfer_trtllm"
        return cmd
    if model == "v32mxfp4":
        cmd += " \\\n  --tp 8"
        cmd += " \\\n  --trust-remote-code"
        return cmd
    if amd:
        cmd += " \\\n  --trust-remote-code"
        cmd += " \\\n  --nsa-prefill-backend tilelang"
        cmd += " \\\n  --nsa-decode-backend tilelang"
        cmd += " \\\n  --cuda-graph-max-bs 64"
    cmd += " \\\n  --tp 8"
    if "dp" in strategy:
        cmd += " \\\n  --dp 8 \\\n  --enable-dp-attention"
    if "ep" in strategy:
        cmd += " \\\n  --ep 8"
    if "mtp" in strategy:
        cmd += " \\\n  --speculative-algorithm EAGLE"
        cmd += " \\\n  --speculative-num-steps 3"
        cmd += " \\\n  --speculative-eagle-topk 1"
        cmd += " \\\n  --speculative-num-draft-tokens 4"
    if toolcall:
        cmd += " \\\n  --tool-call-parser " + ("deepseekv31" if model == "v32exp" else "deepseekv32")
    if reasoning:
        cmd += " \\\n  --reasoning-parser deepseek-v3"
    if toolcall and model == "v32exp":
        cmd += " \\\n  --chat-template " + TEMPLATE
    return cmd


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: recipe_golden.py OUT.json")
    table = {}
    for hardware, model in itertools.product(HARDWARE, MODELS):
        for dp, ep, mtp, reasoning, toolcall in itertools.product([False, True], repeat=5):
            strategy = ["tp"] + [s for s, on in (("dp", dp), ("ep", ep), ("mtp", mtp)) if on]
            key = " ".join([hardware, model, ",".join(strategy),
                            "enabled" if reasoning else "disabled",
                            "enabled" if toolcall else "disabled"])
            table[key] = generate(hardware, model, strategy, reasoning, toolcall)
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump(table, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main()
