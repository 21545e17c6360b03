#!/usr/bin/env bash
# The GPU figures of bench/results/2026-11-28-cuda-decode*.md in one run, on a machine with an
# H200 (or any sm_90 GPU with 141 GB): every GPU test, compute-sanitizer over the newer kernels'
# tests, the kernel micro-benchmarks, a per-kernel profile of a decode step (Nsight Compute),
# dsserve serve + bench on the official widths with 8 layers (and, with BASE set, an older
# dsserve binary on the same load, for the ratio), then transformers' eager
# DeepseekV32ForCausalLM on the same configuration.
#   cmake -S . -B build -G Ninja && ninja -C build
#   OUT=gpu-results [BASE=old/dsserve] bash bench/scripts/gpu_decode_suite.sh  # gpu-results/results.tgz
# BASE_ENV="NAME=value ..." runs the base pass with that environment (and, without BASE, this
# build's binary): BASE_ENV=DSSERVE_CUDA_PDL=0 measures what programmatic launches bring.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=${OUT:-gpu-results}
BASE=${BASE:-}
BASE_ENV=${BASE_ENV:-}
CUDA_BIN=${CUDA_BIN:-/usr/local/cuda/bin}
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt
for t in backend/backend_cuda_test backend/backend_cuda_topk_test backend/backend_cuda_mla_test \
         backend/backend_cuda_absorb_test backend/backend_cuda_sample_test \
         runtime/runtime_cuda_test model/model_golden_cuda_test; do
  timeout 300 $BUILD/tests/$t > $R/$(basename $t).txt 2>&1; echo "$t rc=$?" >> $R/summary.txt
done
MODEL=(--model-path data/models/deepseek-v3.2 --load-format dummy
       --json-model-override-args '{"num_hidden_layers": 8, "num_nextn_predict_layers": 0}' --device cuda)
serve() {  # serve BINARY LOG [env...]
  local bin=$1 log=$2; shift 2
  local t0=$SECONDS
  env "$@" $bin serve "${MODEL[@]}" --tokenizer-path data/tokenizer/deepseek-v3.2 --port 30000 > "$log" 2>&1 &
  SERVER=$!
  for i in $(seq 1 120); do curl -sf localhost:30000/health > /dev/null 2>&1 && break; sleep 1; done
  echo "server $bin ready after $((SECONDS - t0)) s" >> $R/summary.txt
}
bench() {
  local name=$1; shift
  timeout 200 $BUILD/dsserve bench --backend sglang --dataset-name random --random-range-ratio 1 "$@" > $R/bench_$name.txt 2>&1
  echo "bench $name rc=$?" >> $R/summary.txt
}
C1=(--random-input-len 1024 --random-output-len 256 --num-prompts 4 --max-concurrency 1)
if [ -n "$BASE" ] || [ -n "$BASE_ENV" ]; then
  # shellcheck disable=SC2086 # BASE_ENV holds several NAME=value words
  serve "${BASE:-$BUILD/dsserve}" $R/serve_base.log $BASE_ENV
  bench base_c1 "${C1[@]}"
  bench base_c16 --random-input-len 1024 --random-output-len 128 --num-prompts 32 --max-concurrency 16
  kill $SERVER; wait $SERVER
fi
serve $BUILD/dsserve $R/serve.log
nvidia-smi --query-gpu=memory.used --format=csv,noheader >> $R/summary.txt
bench c1 "${C1[@]}"
bench c16 --random-input-len 1024 --random-output-len 128 --num-prompts 32 --max-concurrency 16
bench c64 --random-input-len 1024 --random-output-len 512 --num-prompts 64 --max-concurrency 64
bench ttft8k --random-input-len 8192 --random-output-len 1 --num-prompts 3 --max-concurrency 1
bench ttft1k --random-input-len 1024 --random-output-len 1 --num-prompts 4 --max-concurrency 1
bench ttft2k --random-input-len 2000 --random-output-len 1 --num-prompts 4 --max-concurrency 1
bench c16_4k --random-input-len 4096 --random-output-len 256 --num-prompts 16 --max-concurrency 16
bench c256 --random-input-len 1024 --random-output-len 256 --num-prompts 256 --max-concurrency 256
curl -s localhost:30000/get_server_info > $R/server_info.json
kill $SERVER; wait $SERVER
serve $BUILD/dsserve $R/serve_profile.log DSSERVE_CUDA_PROFILE=64
bench profile_c1 --random-input-len 1024 --random-output-len 140 --num-prompts 1 --max-concurrency 1
kill $SERVER; wait $SERVER
# Clocks and caches as in service (ncu would otherwise lock base clocks and flush L2 before each
# kernel); kernels still run one at a time, so PDL's overlap does not show here. The prompt is
# 1,024 tokens, the benchmark's context: at a few tokens attention costs next to nothing.
timeout 200 $CUDA_BIN/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --log-file $R/ncu.csv \
  $BUILD/dsserve generate "${MODEL[@]}" --input-ids $(seq -s, 1000 2023) --max-new-tokens 3 --temperature 0 --ignore-eos > $R/ncu_run.txt 2>&1
echo "ncu rc=$?" >> $R/summary.txt
python3 bench/scripts/ncu_step_table.py $R/ncu.csv --last-steps 2 > $R/ncu_step.md 2>&1
gzip -f $R/ncu.csv
timeout 150 $BUILD/dsserve-cuda-bench gemv moe absorb moe-prefill indexer mla-prefill > $R/kernel_bench.md 2>&1; echo "kernel bench rc=$?" >> $R/summary.txt
for t in backend_cuda_absorb_test backend_cuda_sample_test; do
  timeout 200 $CUDA_BIN/compute-sanitizer --tool memcheck $BUILD/tests/backend/$t > $R/memcheck_$t.txt 2>&1
done
timeout 200 $CUDA_BIN/compute-sanitizer --tool memcheck $BUILD/tests/backend/backend_cuda_test \
  --gtest_filter='*Fp8*:*Moe*:*Linears*:*Mla*:*Indexer*' > $R/memcheck_backend_cuda_test.txt 2>&1
timeout 200 $CUDA_BIN/compute-sanitizer --tool memcheck $BUILD/tests/backend/backend_cuda_topk_test \
  --gtest_filter='*Moe*' > $R/memcheck_backend_cuda_topk_test.txt 2>&1
timeout 200 $CUDA_BIN/compute-sanitizer --tool racecheck $BUILD/tests/backend/backend_cuda_test \
  --gtest_filter='*Fp8Linear*:*MoeRouted*:*Mla*' > $R/racecheck.txt 2>&1
tar czf $OUT/results.tgz -C $OUT r
timeout 170 python3 bench/scripts/hf_decode_baseline.py --layers 8 --out $R/hf-eager-8l.json > $R/hf-eager-8l.log 2>&1
echo "hf eager rc=$?" >> $R/summary.txt
cat $R/summary.txt
grep -h -E "PASSED|FAILED" $R/*_test.txt
grep -h -E "ERROR SUMMARY|RACECHECK SUMMARY" $R/memcheck_*.txt $R/racecheck.txt
for f in $R/bench_*.txt; do echo "== $f"; grep -E "Output token throughput|Median ITL|P99 ITL|Median TTFT" $f; done
grep -A16 "CUDA profile" $R/serve_profile.log | tail -17
head -24 $R/ncu_step.md
grep -E "tensor|absorb|pair" $R/kernel_bench.md | grep -E "1 row|1 tok|token" | head -20
tail -2 $R/hf-eager-8l.log | cut -c1-300
tar czf $OUT/results.tgz -C $OUT r
