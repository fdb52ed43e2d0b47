#!/usr/bin/env bash
# The main job from a fresh Debian bookworm machine: dependencies, build, a generated model.
# Until the inference commands land this writes a small generated Llama-shape model with a real
# vocabulary and shows what it holds; later it starts the server with that model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
tree="$(bash scripts/fetch-testdata.sh)"
model=.testdata/llama-small-q8_0.gguf
[ -f "$model" ] || ./build/tokenmill make-model --arch llama --preset small --quant Q8_0 \
  --vocab "$tree/models/ggml-vocab-llama-bpe.gguf" --seed 1 -o "$model"
./build/tokenmill inspect "$model"
