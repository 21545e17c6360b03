#!/usr/bin/env bash
# Builds and runs every test: the unit suite, the end-to-end and browser tests against the real
# server, the unit suite under ASan+UBSan, format and layering checks, and each libFuzzer target
# for a bounded time.
#   FUZZ_SECONDS=30 scripts/test.sh
#   scripts/test.sh browser      # builds, then runs only the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
jobs=$(nproc)

# One venv for the Python-driven suites: the openai SDK and pytest, and selenium.
test_venv() {
    python3 -m venv build/e2e-venv
    build/e2e-venv/bin/pip install -q --disable-pip-version-check \
        -r tests/e2e/requirements.txt -r tests/web/requirements.txt
}

# The page in headless Chromium (tests/web/browser_test.py). The test reports itself skipped where
# Chromium or selenium is missing; here that is a failure. Screenshots: build/test-artifacts/web/.
browser_tests() {
    echo "== browser tests: the web page in headless Chromium"
    cmake -S . -B build -DDSSERVE_BROWSER_PYTHON="$PWD/build/e2e-venv/bin/python" > /dev/null
    local start=$SECONDS
    (cd build && DSSERVE_REQUIRE_BROWSER=1 ctest --output-on-failure -L browser --no-tests=error)
    echo "browser tests: $((SECONDS - start)) s; screenshots in build/test-artifacts/web:" \
        "$(find build/test-artifacts/web -name '*.png' | sort | xargs -r -n1 basename | tr '\n' ' ')"
}

bash scripts/setup.sh
if [ "${1:-}" = browser ]; then
    test_venv
    browser_tests
    exit 0
fi
echo "== format and layering"
python3 tools/check_layering.py
git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' | xargs -r clang-format --dry-run -Werror

echo "== unit tests"
(cd build && ctest --output-on-failure -j "$jobs" -L unit)

echo "== end-to-end tests: the real server with the openai SDK and raw clients"
test_venv
(cd tests/e2e && ../../build/e2e-venv/bin/python -m pytest -q -p no:warnings)

browser_tests

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
