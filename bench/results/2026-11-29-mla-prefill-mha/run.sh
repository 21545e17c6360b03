#!/usr/bin/env bash
# MLA prefill without absorption: tests, then TTFT and prefill-heavy load, the build before (dsserve-head) and this one.
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R; T0=$SECONDS
timeout 120 b/backend_cuda_test --gtest_filter='*MlaPrefill*' > $R/mha_test.txt 2>&1; echo "mha test rc=$? $(grep -E '^\[  PASSED|^\[  FAILED' $R/mha_test.txt | tr '\n' ' ') $((SECONDS-T0))s"
grep -E "mha prefill|Failure|Expected|Which|rel_diff" -A2 $R/mha_test.txt | head -30
CS=/usr/local/cuda/bin/compute-sanitizer
timeout 120 $CS --tool memcheck b/backend_cuda_test --gtest_filter='*MlaPrefill*' > $R/memcheck_mha.txt 2>&1; echo "memcheck rc=$? $(tail -1 $R/memcheck_mha.txt) $((SECONDS-T0))s"
for t in backend_cuda_test runtime_cuda_test; do
  timeout 200 b/$t > $R/$t.txt 2>&1; echo "$t rc=$? $(grep -E '^\[  PASSED|^\[  FAILED' $R/$t.txt | tr '\n' ' ') $((SECONDS-T0))s"
done
grep -h -B3 -A10 "Failure" $R/backend_cuda_test.txt $R/runtime_cuda_test.txt | head -30; grep -h "bf16 cache, latent" $R/runtime_cuda_test.txt
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
BENCH=(bench --backend sglang --dataset-name random --random-range-ratio 1)
for bin in dsserve-head dsserve; do
  b/$bin serve "${MODEL[@]}" --tokenizer-path data/tokenizer/deepseek-v3.2 --port 30000 > $R/serve_$bin.log 2>&1 & SERVER=$!
  for j in $(seq 1 90); do curl -sf localhost:30000/health > /dev/null 2>&1 && break; sleep 1; done
  timeout 100 b/dsserve "${BENCH[@]}" --random-input-len 1024 --random-output-len 64 --num-prompts 5 --max-concurrency 1 --seed 921 > $R/bench_1k_$bin.txt 2>&1
  timeout 100 b/dsserve "${BENCH[@]}" --random-input-len 2000 --random-output-len 64 --num-prompts 5 --max-concurrency 1 --seed 922 > $R/bench_2k_$bin.txt 2>&1
  timeout 150 b/dsserve "${BENCH[@]}" --random-input-len 1024 --random-output-len 256 --num-prompts 256 --max-concurrency 256 --seed 866 > $R/bench_c256_$bin.txt 2>&1
  kill $SERVER; wait $SERVER
  for k in 1k 2k c256; do echo "$bin $k: $(grep -E 'Output token throughput|Median ITL|Median TTFT|Mean TTFT' $R/bench_${k}_$bin.txt | tr -s ' ' | tr '\n' ';')"; done
  echo "$((SECONDS-T0))s"
done
tar czf $OUT/results.tgz -C $OUT r
