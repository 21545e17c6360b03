#!/usr/bin/env bash
# FP8 indexer: tests, the indexer bench, an 8K prefill profile, TTFT against the build before.
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R; T0=$SECONDS
timeout 120 b/backend_cuda_test --gtest_filter='*Indexer*:*Fused*:*MlaAttentionReads*' > $R/indexer_tests.txt 2>&1; echo "indexer tests rc=$? $(grep -E '^\[  PASSED|^\[  FAILED' $R/indexer_tests.txt | tr '\n' ' ') $((SECONDS-T0))s"
grep -B3 -A12 "Failure" $R/indexer_tests.txt | head -50
timeout 150 b/dsserve-cuda-bench indexer > $R/bench_indexer.md 2>&1; echo "bench rc=$? $((SECONDS-T0))s"; tail -14 $R/bench_indexer.md
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
DSSERVE_CUDA_PROFILE=1 timeout 100 b/dsserve generate "${MODEL[@]}" --input-ids $(seq -s, 1000 9191) --max-new-tokens 2 --temperature 0 --ignore-eos > $R/prefill8k_profile.txt 2>&1; echo "profile rc=$? $((SECONDS-T0))s"
grep -A8 "CUDA profile" $R/prefill8k_profile.txt | head -9
CS=/usr/local/cuda/bin/compute-sanitizer
timeout 120 $CS --tool memcheck b/backend_cuda_test --gtest_filter='*IndexerFp8*' > $R/memcheck_indexer.txt 2>&1; echo "memcheck rc=$? $(tail -1 $R/memcheck_indexer.txt) $((SECONDS-T0))s"
for t in backend_cuda_test runtime_cuda_test model_golden_cuda_test; do
  timeout 200 b/$t > $R/$t.txt 2>&1; echo "$t rc=$? $(grep -E '^\[  PASSED|^\[  FAILED' $R/$t.txt | tr '\n' ' ') $((SECONDS-T0))s"
done
grep -h -B3 -A10 "Failure" $R/backend_cuda_test.txt $R/runtime_cuda_test.txt | head -40; grep -h "max |logit\|correlation" $R/runtime_cuda_test.txt | head
tar czf $OUT/results.tgz -C $OUT r
