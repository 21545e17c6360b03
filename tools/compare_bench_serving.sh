#!/usr/bin/env bash
# Runs `dsserve bench` and PyPI sglang's `python -m sglang.bench_serving` against the same
# `dsserve serve` (embedded tiny model) with the same workload, one after the other, and keeps
# both outputs. Usage (from the repository root, after building build/dsserve):
#
#   python3 -m venv venv && venv/bin/pip install --no-deps sglang==0.5.23 && \
#     venv/bin/pip install aiohttp numpy transformers tqdm requests pandas pillow pybase64 orjson \
#       psutil torch starlette msgspec pyzmq IPython datasets torchvision apache-tvm-ffi \
#       sentencepiece compressed-tensors gguf      # what bench_serving's imports pull in
#   tools/compare_bench_serving.sh venv/bin/python OUT_DIR [BACKEND]
#
# SGLang's random dataset takes prompt text from a ShareGPT file of two-turn conversations;
# the repository's copy has first turns only, so a second (unused) turn is added to a copy.
set -euo pipefail
PY=$1
OUT=$2
BACKEND=${3:-sglang}
PORT=${PORT:-31517}
mkdir -p "$OUT"
python3 - "$OUT/sharegpt_2turn.json" <<'PYEOF'
import json, sys
src = json.load(open("data/datasets/sharegpt/ShareGPT_V3_filtered_500.json"))
for c in src:
    c["conversations"].append({"from": "gpt", "value": "ok"})
json.dump(src, open(sys.argv[1], "w"))
PYEOF
"${DSSERVE_SERVE_BIN:-build/dsserve}" serve --host 127.0.0.1 --port "$PORT" 2> "$OUT/serve.log" &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/get_model_info" > /dev/null && break; sleep 0.2; done
COMMON=(--backend "$BACKEND" --host 127.0.0.1 --port "$PORT" --dataset-name random
        --num-prompts 64 --random-input-len 256 --random-output-len 64 --random-range-ratio 0.5
        --max-concurrency 8 --seed 1 --warmup-requests 1)
run_sglang() {
    timeout 120 "$PY" -m sglang.bench_serving "${COMMON[@]}" --dataset-path "$OUT/sharegpt_2turn.json" \
        --tokenizer data/tokenizer/deepseek-v3.2 --output-file "$OUT/sglang_$BACKEND.jsonl" \
        --disable-tqdm >> "$OUT/sglang_$BACKEND.txt" 2>&1
}
run_dsserve() {
    timeout 120 build/dsserve bench "${COMMON[@]}" --dataset-path "$OUT/sharegpt_2turn.json" \
        --output-file "$OUT/dsserve_$BACKEND.jsonl" --disable-progress \
        >> "$OUT/dsserve_$BACKEND.txt" 2>&1
}
# ROUNDS alternating runs (sglang, dsserve, dsserve, sglang, ...), so drift on a shared machine
# hits both tools alike; every run appends one JSON line.
# A run that hangs is stopped after 120 s (seen once: bench_serving waiting on a stream).
for r in $(seq "${ROUNDS:-1}"); do
    if (( r % 2 == 1 )); then run_sglang || true; run_dsserve || true; else run_dsserve || true; run_sglang || true; fi
done
