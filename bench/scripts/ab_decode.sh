#!/usr/bin/env bash
# Batch-1 decode of two dsserve binaries side by side on one GPU: servers alternate (A, B, A, B,
# ...) on the same load, and each pass reports the bench's median ITL and the engine's own
# forward time from its last `Decode batch` log line. Host speed differs between server
# processes of one run by a few percent, so compare means over several pairs.
#   bash bench/scripts/ab_decode.sh old/dsserve build/dsserve [pairs]   # OUT=ab-results
# Configuration: the official DeepSeek-V3.2 widths with 8 layers, dummy weights, 1,024-token
# prompts, 512 output tokens, 5 prompts a pass (the pairs of bench/results/2026-11-29-decode-fusions.md).
set -u
cd "$(dirname "$0")/../.."
A=$1 B=$2 PAIRS=${3:-2}
OUT=${OUT:-ab-results}
R=$OUT/r; mkdir -p $R
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy
       --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
BENCH=(bench --backend sglang --dataset-name random --random-range-ratio 1 --random-input-len 1024
       --random-output-len 512 --num-prompts 5 --max-concurrency 1 --seed 861)
echo "| pass | binary | median ITL (ms) | engine forward (ms) |" > $R/summary.md
echo "|---:|---|---:|---:|" >> $R/summary.md
pass=0
for ((i = 0; i < PAIRS; ++i)); do
  for bin in "$A" "$B"; do
    pass=$((pass + 1))
    "$bin" serve "${MODEL[@]}" --tokenizer-path data/tokenizer/deepseek-v3.2 --port 30000 \
      > $R/serve_$pass.log 2>&1 &
    server=$!
    for _ in $(seq 1 120); do curl -sf localhost:30000/health > /dev/null 2>&1 && break; sleep 1; done
    timeout 120 "$B" "${BENCH[@]}" > $R/bench_$pass.txt 2>&1
    kill $server; wait $server
    itl=$(sed -n 's/^Median ITL (ms): *//p' $R/bench_$pass.txt | tr -d ' ')
    fwd=$(grep 'Decode batch' $R/serve_$pass.log | tail -1 | sed -n 's/.*forward \([0-9.]*\).*/\1/p')
    echo "| $pass | $bin | ${itl:-?} | ${fwd:-?} |" >> $R/summary.md
  done
done
cat $R/summary.md
