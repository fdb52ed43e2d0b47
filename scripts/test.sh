#!/usr/bin/env bash
# The whole test suite from a fresh Debian bookworm machine: dependencies, build, test data,
# then every test through ctest. Tests that need ../shared skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
TOKENMILL_LLAMA_TREE="$(bash scripts/fetch-testdata.sh)"
export TOKENMILL_LLAMA_TREE
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 1800
