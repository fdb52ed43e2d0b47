#!/usr/bin/env bash
# Configures and builds tokenmill (Release, Ninja, ccache when present) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Paths relative to the checkout in ccache's keys: a fresh clone reuses the cache of another.
export CCACHE_BASEDIR="$(pwd)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
cmake --build build -j"$(nproc)" "$@" >&2
