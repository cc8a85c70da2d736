#!/usr/bin/env bash
# Installs what the project needs (idempotent), builds with warnings as errors, runs every
# CTest test with output on failure, then builds and runs the unit tests under
# AddressSanitizer + UndefinedBehaviorSanitizer (clang).
#   ./scripts/test.sh              everything
#   CLOG_TEST_LABELS=unit ./scripts/test.sh   only tests with these labels (regex)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

./scripts/install-deps.sh

echo "== clang-format"
./scripts/check-format.sh

echo "== build (gcc, -Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOG_WERROR=ON >/dev/null
cmake --build build -j "$jobs"

echo "== tests"
label_args=()
if [[ -n "${CLOG_TEST_LABELS:-}" ]]; then label_args=(-L "$CLOG_TEST_LABELS"); fi
ctest --test-dir build --output-on-failure -j "$jobs" "${label_args[@]}"

echo "== unit tests and a simulator smoke run under ASan+UBSan (clang)"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCLOG_SANITIZE=ON -DCLOG_BENCHMARKS=OFF -DCLOG_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L 'unit|sanitize'

echo "== all tests passed ($root)"
