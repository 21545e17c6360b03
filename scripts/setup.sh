#!/usr/bin/env bash
# Installs the build and test dependencies (Debian 12 packages) and builds the release binary.
#   scripts/setup.sh            -> build/dsserve
#   BUILD_DIR=x CMAKE_ARGS=... scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build ccache pkg-config git
          nlohmann-json3-dev libpcre2-dev libcli11-dev libboost-dev libopenblas-dev
          libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev clang-format
          python3 python3-venv python3-pip python3-jinja2 python3-numpy
          chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Paths under the checkout hash relatively, so another clone reuses the compiler cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
# The CUDA backend is built where nvcc exists; CUDA's default install is often not on PATH.
if ! command -v nvcc >/dev/null && [ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
    export CUDACXX=/usr/local/cuda/bin/nvcc
fi
BUILD_DIR=${BUILD_DIR:-build}
read -r -a extra <<< "${CMAKE_ARGS:-}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "${extra[@]}"
# shellcheck disable=SC2086 # BUILD_TARGET may name several targets
cmake --build "$BUILD_DIR" -j "$(nproc)" ${BUILD_TARGET:+--target $BUILD_TARGET}
