#!/usr/bin/env bash
# The main job from a fresh Debian bookworm machine: dependencies, build, a generated model with
# a real Llama 3 vocabulary, and text generated from it. When the server lands, this starts it
# with that model instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
tree="$(bash scripts/fetch-testdata.sh)"
model=.testdata/llama-small-q8_0.gguf
[ -f "$model" ] || ./build/tokenmill make-model --arch llama --preset small --quant Q8_0 \
  --vocab "$tree/models/ggml-vocab-llama-bpe.gguf" --seed 1 -o "$model"
./build/tokenmill run "$model" -p "${TOKENMILL_PROMPT:-Once upon a time}" -n 64 --seed 1
echo
