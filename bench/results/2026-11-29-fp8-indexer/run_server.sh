#!/usr/bin/env bash
# FP8 indexer: server TTFT and long-prompt throughput, the build before (dsserve-base) and this one.
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R; T0=$SECONDS
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
BENCH=(bench --backend sglang --dataset-name random --random-range-ratio 1)
for bin in dsserve-base dsserve; do
  b/$bin serve "${MODEL[@]}" --tokenizer-path data/tokenizer/deepseek-v3.2 --port 30000 > $R/serve_$bin.log 2>&1 & SERVER=$!
  for j in $(seq 1 90); do curl -sf localhost:30000/health > /dev/null 2>&1 && break; sleep 1; done
  timeout 100 b/dsserve "${BENCH[@]}" --random-input-len 8192 --random-output-len 128 --num-prompts 3 --max-concurrency 1 --seed 911 > $R/bench_8k_$bin.txt 2>&1
  timeout 150 b/dsserve "${BENCH[@]}" --random-input-len 4096 --random-output-len 256 --num-prompts 16 --max-concurrency 16 --seed 912 > $R/bench_4k_c16_$bin.txt 2>&1
  timeout 100 b/dsserve "${BENCH[@]}" --random-input-len 1024 --random-output-len 128 --num-prompts 5 --max-concurrency 1 --seed 912 > $R/bench_1k_$bin.txt 2>&1
  kill $SERVER; wait $SERVER
  grep -i "kv\|capacity\|tokens" $R/serve_$bin.log | head -3
  for k in 8k 4k_c16 1k; do echo "$bin $k: $(grep -E 'Output token throughput|Median ITL|Median TTFT|Mean TTFT' $R/bench_${k}_$bin.txt | tr -s ' ' | tr '\n' ';')"; done
  echo "$((SECONDS-T0))s"
done
tar czf $OUT/results.tgz -C $OUT r
