#!/usr/bin/env bash
# MLA at prefill sizes, plain against absorbed.
cd "$(dirname "$0")/.."
rm -rf b && mkdir -p b && tar xJf gpu-bundle/bin.tgz -C b
R=$OUT/r; mkdir -p $R
timeout 200 b/dsserve-cuda-bench mla-prefill > $R/bench_mla_prefill.md 2>&1; echo "rc=$?"; cat $R/bench_mla_prefill.md
