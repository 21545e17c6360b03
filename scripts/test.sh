#!/usr/bin/env bash
# Builds and runs every test: the unit suite, the same suite under ASan+UBSan, format and layering
# checks, and each libFuzzer target for a bounded time.
#   FUZZ_SECONDS=30 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
jobs=$(nproc)

bash scripts/setup.sh
echo "== format and layering"
python3 tools/check_layering.py
git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' | xargs -r clang-format --dry-run -Werror

echo "== unit tests"
(cd build && ctest --output-on-failure -j "$jobs" -L unit)

echo "== end-to-end tests: the real server with the openai SDK and raw clients"
python3 -m venv build/e2e-venv
build/e2e-venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
(cd tests/e2e && ../../build/e2e-venv/bin/python -m pytest -q -p no:warnings)

echo "== unit tests under ASan+UBSan"
BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_ARGS="-DDSSERVE_SANITIZE=ON" bash scripts/setup.sh
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs" -L unit)

echo "== fuzzing, ${FUZZ_SECONDS}s per target"
BUILD_DIR=build-fuzz BUILD_TYPE=RelWithDebInfo \
    BUILD_TARGET="$(sed -n 's/.*dsserve_fuzz(\(fuzz_[a-z_]*\).*/\1/p' tests/fuzz/*.cmake | tr '\n' ' ')" \
    CMAKE_ARGS="-DDSSERVE_FUZZ=ON -DDSSERVE_TESTS=OFF -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang" \
    bash scripts/setup.sh
for target in build-fuzz/tests/fuzz/fuzz_*; do
    [ -x "$target" ] || continue
    name=$(basename "$target")
    corpus=tests/fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    echo "-- $name"
    "$target" "$work" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 3
    rm -rf "$work"
done
echo "== all tests passed"
