#!/usr/bin/env bash
# Configures and builds tokenmill (Release, Ninja, ccache when present) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
cmake --build build -j"$(nproc)" "$@" >&2
