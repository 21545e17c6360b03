#!/usr/bin/env bash
# Runs `dsserve bench` and PyPI sglang's `python -m sglang.bench_serving` on one workload and
# keeps both outputs, in two parts:
#   1. against tests/bench/fake_server.py (20 ms per token, recording every request body): the
#      two tools must send the same requests, and on a server whose timing is fixed their TTFT,
#      ITL and E2E may differ only by the clients' own overhead;
#   2. against one `dsserve serve` (embedded tiny model, CPU): ROUNDS rounds of dsserve then
#      sglang, the prefix cache flushed after each warmup, since with the same seed both tools
#      send the same prompts and a run would otherwise reuse the KV cache of the run before.
#      The server's /metrics are kept before and after each run: its own TTFT, ITL and E2E
#      histograms tell what the server did apart from what each client measured.
# With two or more cores the server gets core 0 and the clients core 1 (taskset), so that a
# client's own CPU time does not slow the server it measures.
#
# Usage (from the repository root, after building build/dsserve):
#
#   python3 -m venv venv && venv/bin/pip install --no-deps sglang==0.5.23 && \
#     venv/bin/pip install aiohttp numpy transformers tqdm requests pandas pillow pybase64 orjson \
#       psutil torch torchvision starlette msgspec pyzmq IPython datasets sentencepiece \
#       apache-tvm-ffi compressed-tensors gguf      # what bench_serving's imports pull in
#   ROUNDS=4 tools/compare_bench_serving.sh venv/bin/python OUT_DIR [BACKEND]
#   python3 tools/bench/compare_bench_results.py OUT_DIR     # the tables
#
# Knobs: ROUNDS (4), PARTS ("fake serve"), NUM_PROMPTS (64), MAX_CONCURRENCY (8), PORT.
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

SERVER_CPU=() CLIENT_CPU=()
if [ "$(nproc)" -ge 2 ]; then
    SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1)
fi
PARTS=${PARTS:-fake serve}
WORKLOAD=(--backend "$BACKEND" --host 127.0.0.1 --dataset-name random
          --num-prompts "${NUM_PROMPTS:-64}" --random-input-len 256 --random-output-len 64
          --random-range-ratio 0.5 --max-concurrency "${MAX_CONCURRENCY:-8}" --seed 1
          --warmup-requests 1 --flush-cache
          --dataset-path "$OUT/sharegpt_2turn.json")
# run TOOL PART PORT: one run, its table appended to PART_TOOL.txt, its JSON line to
# PART_TOOL.jsonl and its client CPU seconds (user system) to PART_TOOL.cpu.
run() {
    local tool=$1 part=$2 port=$3 cmd
    if [ "$tool" = dsserve ]; then
        cmd=(build/dsserve bench --disable-progress)
    else
        cmd=("$PY" -m sglang.bench_serving --tokenizer data/tokenizer/deepseek-v3.2 --disable-tqdm)
    fi
    # A run that hangs is stopped (seen once with bench_serving, waiting on a stream).
    "${CLIENT_CPU[@]}" /usr/bin/time -f "%U %S" -a -o "$OUT/${part}_$tool.cpu" timeout 300 \
        "${cmd[@]}" "${WORKLOAD[@]}" --port "$port" --output-file "$OUT/${part}_$tool.jsonl" \
        >> "$OUT/${part}_$tool.txt" 2>&1 || echo "$tool run failed (rc $?)" >> "$OUT/${part}_$tool.txt"
}

# Part 1: the recording stand-in, restarted per run so each run's bodies are its own.
for r in $(seq "${ROUNDS:-4}"); do
    [[ " $PARTS " == *" fake "* ]] || break
    for tool in dsserve sglang; do
        "${SERVER_CPU[@]}" python3 tests/bench/fake_server.py --record --token-delay 0.02 \
            > "$OUT/fake.port" &
        FAKE=$!
        for _ in $(seq 50); do [ -s "$OUT/fake.port" ] && break; sleep 0.1; done
        run "$tool" fake "$(head -1 "$OUT/fake.port")"
        curl -sf "http://127.0.0.1:$(head -1 "$OUT/fake.port")/stats" \
            > "$OUT/fake_${tool}_$r.bodies.json"
        kill "$FAKE"
        wait "$FAKE" 2> /dev/null || true
        rm -f "$OUT/fake.port"
    done
done

# Part 2: one dsserve serve for every run.
[[ " $PARTS " == *" serve "* ]] || exit 0
OPENBLAS_NUM_THREADS=1 "${SERVER_CPU[@]}" "${DSSERVE_SERVE_BIN:-build/dsserve}" serve \
    --host 127.0.0.1 --port "$PORT" --threads 1 --enable-metrics 2> "$OUT/serve.log" &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/get_model_info" > /dev/null && break; sleep 0.2; done
for r in $(seq "${ROUNDS:-4}"); do
    for tool in dsserve sglang; do
        curl -sf "http://127.0.0.1:$PORT/metrics" > "$OUT/serve_${tool}_$r.before.prom"
        run "$tool" serve "$PORT"
        curl -sf "http://127.0.0.1:$PORT/metrics" > "$OUT/serve_${tool}_$r.after.prom"
    done
done
