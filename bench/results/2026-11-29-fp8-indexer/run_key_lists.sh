#!/usr/bin/env bash
# Key lists once a forward: tests, the indexer bench, then servers: the build before (dsserve-fp8idx) and this one.
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R; T0=$SECONDS
timeout 120 b/backend_cuda_test --gtest_filter='*Indexer*:*ForwardKey*:*MlaAttention*' > $R/key_tests.txt 2>&1; echo "tests rc=$? $(grep -E '^\[  PASSED|^\[  FAILED' $R/key_tests.txt | tr '\n' ' ') $((SECONDS-T0))s"
grep -B3 -A12 "Failure" $R/key_tests.txt | head -30
timeout 150 b/dsserve-cuda-bench indexer > $R/bench_indexer.md 2>&1; echo "bench rc=$? $((SECONDS-T0))s"; tail -11 $R/bench_indexer.md
CS=/usr/local/cuda/bin/compute-sanitizer
timeout 120 $CS --tool memcheck b/backend_cuda_test --gtest_filter='*Indexer*:*ForwardKey*' > $R/memcheck.txt 2>&1; echo "memcheck rc=$? $(tail -1 $R/memcheck.txt) $((SECONDS-T0))s"
timeout 200 b/runtime_cuda_test > $R/runtime_cuda_test.txt 2>&1; echo "runtime rc=$? $(grep -E '^\[  PASSED|^\[  FAILED' $R/runtime_cuda_test.txt | tr '\n' ' ') $((SECONDS-T0))s"
grep -h -B3 -A10 "Failure" $R/runtime_cuda_test.txt | head -30
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
BENCH=(bench --backend sglang --dataset-name random --random-range-ratio 1)
for bin in dsserve-fp8idx dsserve; do
  b/$bin serve "${MODEL[@]}" --tokenizer-path data/tokenizer/deepseek-v3.2 --port 30000 > $R/serve_$bin.log 2>&1 & SERVER=$!
  for j in $(seq 1 90); do curl -sf localhost:30000/health > /dev/null 2>&1 && break; sleep 1; done
  timeout 150 b/dsserve "${BENCH[@]}" --random-input-len 4096 --random-output-len 256 --num-prompts 32 --max-concurrency 32 --seed 913 > $R/bench_4k_c32_$bin.txt 2>&1
  timeout 150 b/dsserve "${BENCH[@]}" --random-input-len 1024 --random-output-len 256 --num-prompts 256 --max-concurrency 256 --seed 866 > $R/bench_c256_$bin.txt 2>&1
  kill $SERVER; wait $SERVER
  for k in 4k_c32 c256; do echo "$bin $k: $(grep -E 'Output token throughput|Median ITL|Median TTFT' $R/bench_${k}_$bin.txt | tr -s ' ' | tr '\n' ';')"; done
  echo "$((SECONDS-T0))s"
done
tar czf $OUT/results.tgz -C $OUT r
