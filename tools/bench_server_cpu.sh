#!/usr/bin/env bash
# Serving figures of `dsserve serve` on the embedded tiny model, measured with `dsserve bench`:
# requests per second at one output token (what the server adds around a request), output
# throughput at concurrency 1, 16 and 64 (greedy), concurrency 16 with top_p 0.95 sampling, and
# 256 requests decoding together (the server log's "Decode batch." lines then show the
# scheduler's time per step at 256 running requests).
# Each run also keeps /get_server_info before and after, so the summary splits the engine's time
# in that run into forward, sampling and the scheduler's own work. Usage, from the repository root
# after building build/dsserve:
#
#   tools/bench_server_cpu.sh OUT_DIR [SERVER_BINARY] [RUNS]
#
# SERVER_BINARY (default build/dsserve) is the server under test; the client is always
# build/dsserve. RUNS (default: all) picks runs by name: overhead_c64 out_c1 out_c16 out_c64
# top_p_c16 decode_c256.
set -euo pipefail
OUT=$1
SERVER_BIN=${2:-build/dsserve}
RUNS=${3:-"overhead_c64 out_c1 out_c16 out_c64 top_p_c16 decode_c256"}
PORT=${PORT:-31701}
mkdir -p "$OUT"
"$SERVER_BIN" serve --host 127.0.0.1 --port "$PORT" 2> "$OUT/serve.log" &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.2
done
# Runs share prompts (same seed), so each starts from an empty prefix cache.
COMMON=(--host 127.0.0.1 --port "$PORT" --dataset-name random --random-range-ratio 1.0 --seed 1
        --disable-progress --flush-cache)
declare -A ARGS=(
    [overhead_c64]="--backend sglang --random-input-len 16 --random-output-len 1 --num-prompts 1024 --max-concurrency 64"
    [out_c1]="--backend sglang --random-input-len 128 --random-output-len 128 --num-prompts 8 --max-concurrency 1"
    [out_c16]="--backend sglang --random-input-len 128 --random-output-len 128 --num-prompts 64 --max-concurrency 16"
    [out_c64]="--backend sglang --random-input-len 128 --random-output-len 128 --num-prompts 256 --max-concurrency 64"
    [top_p_c16]="--backend openai --random-input-len 128 --random-output-len 128 --num-prompts 64 --max-concurrency 16"
    [decode_c256]="--backend sglang --random-input-len 128 --random-output-len 128 --num-prompts 256 --max-concurrency 256"
)
for name in $RUNS; do
    read -r -a args <<< "${ARGS[$name]}"
    extra=()
    if [ "$name" = top_p_c16 ]; then
        extra=(--extra-request-body '{"temperature": 1.0, "top_p": 0.95}')
    fi
    curl -sf "http://127.0.0.1:$PORT/get_server_info" > "$OUT/$name.before.json"
    # A run that does not finish is stopped and reported without figures.
    timeout "${RUN_TIMEOUT:-900}" build/dsserve bench "${COMMON[@]}" "${args[@]}" "${extra[@]}" \
        --output-file "$OUT/$name.jsonl" > "$OUT/$name.txt" 2>&1 || echo "exit status $?" >> "$OUT/$name.txt"
    curl -sf "http://127.0.0.1:$PORT/get_server_info" > "$OUT/$name.after.json"
done
# shellcheck disable=SC2086 # RUNS is a list of names
python3 - "$OUT" $RUNS <<'PYEOF'
import json, sys
out = sys.argv[1]
keys = ["forward_seconds", "sampling_seconds", "scheduler_seconds", "scheduler_plan_seconds",
        "scheduler_commit_seconds", "num_steps"]
for name in sys.argv[2:]:
    try:
        res = [json.loads(l) for l in open(f"{out}/{name}.jsonl")][-1]
    except FileNotFoundError:
        print(f"{name}: no result (see {name}.txt)")
        continue
    a = json.load(open(f"{out}/{name}.before.json"))["internal_states"][0]
    b = json.load(open(f"{out}/{name}.after.json"))["internal_states"][0]
    d = {k: b[k] - a[k] for k in keys if k in a and k in b}
    steps = max(d.get("num_steps", 0), 1)
    per_step = ", ".join(f"{k.replace('_seconds', '')} {1000 * v / steps:.3f} ms"
                         for k, v in d.items() if k != "num_steps")
    print(f"{name}: {res['completed']} requests in {res['duration']:.2f} s, "
          f"{res['request_throughput']:.2f} req/s, {res['output_throughput']:.2f} output tok/s, "
          f"mean TTFT {res['mean_ttft_ms']:.1f} ms, mean TPOT {res['mean_tpot_ms']:.2f} ms; "
          f"engine over the run (warm-up included): {int(d.get('num_steps', 0))} steps, "
          f"per step: {per_step}")
PYEOF
