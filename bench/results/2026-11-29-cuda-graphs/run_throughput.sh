#!/usr/bin/env bash
# CUDA graphs: 1,024 in / 1,024 out at concurrency 64 and 256, with and without graphs.
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy
       --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
bench() {  # name seed args
  local name=$1 seed=$2; shift 2
  timeout 200 b/dsserve bench --backend sglang --dataset-name random --random-range-ratio 1 --seed $seed "$@" > $R/bench_$name.txt 2>&1
  echo "$name: $(grep -E '^Output token throughput' $R/bench_$name.txt | tr -s ' ') | $(grep -E '^Median ITL' $R/bench_$name.txt | tr -s ' ') | $(grep -E '^Median TTFT' $R/bench_$name.txt | tr -s ' ')"
}
for mode in nograph graph; do
  flag=""; [ $mode = nograph ] && flag="--disable-cuda-graph"
  b/dsserve serve "${MODEL[@]}" --tokenizer-path data/tokenizer/deepseek-v3.2 --port 30000 $flag > $R/serve_$mode.log 2>&1 &
  server=$!
  for _ in $(seq 1 120); do curl -sf localhost:30000/health > /dev/null 2>&1 && break; sleep 1; done
  bench ${mode}_c64 21 --random-input-len 1024 --random-output-len 1024 --num-prompts 64 --max-concurrency 64
  bench ${mode}_c256 22 --random-input-len 1024 --random-output-len 1024 --num-prompts 256 --max-concurrency 256
  kill $server; wait $server
  echo "$mode: $(grep -c 'cuda graph: True' $R/serve_$mode.log) of $(grep -c 'Decode batch' $R/serve_$mode.log) decode log lines on graphs"
done
tar czf $OUT/results.tgz -C $OUT r && rm -rf $R
