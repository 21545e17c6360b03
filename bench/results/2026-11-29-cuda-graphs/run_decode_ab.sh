#!/usr/bin/env bash
# CUDA graphs: memcheck of the graph tests, then batch-1 decode with and without graphs (3 pairs).
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R
printf '#!/bin/sh\nexec "$(dirname "$0")/dsserve" "$@" --disable-cuda-graph\n' > b/dsserve-nograph
chmod +x b/dsserve-nograph
timeout 280 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 1 \
  b/runtime_cuda_test --gtest_filter='*DecodeGraphsFollowTheEagerForward/0:*CudaGraphs*' > $R/memcheck_graphs.txt 2>&1
echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" $R/memcheck_graphs.txt
OUT=$OUT timeout 300 bash bench/scripts/ab_decode.sh b/dsserve-nograph b/dsserve 3 > /dev/null 2>&1
cat $R/summary.md
tar czf $OUT/results.tgz -C $OUT r && rm -rf $R
