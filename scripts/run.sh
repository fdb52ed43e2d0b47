#!/usr/bin/env bash
# The main job from a fresh Debian bookworm machine: dependencies, build, a generated model with
# a real Llama 3 vocabulary and chat template, and the metered server on it with the embedded
# SQLite store. The first run creates a demo tenant with a balance, prices the model and prints
# a new API key (shown once); later runs reuse the database.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
tree="$(bash scripts/fetch-testdata.sh)"
model=.testdata/llama-small-q8_0.gguf
template="$tree/models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja"
db="sqlite:.testdata/tokenmill.db"
listen="${TOKENMILL_LISTEN:-127.0.0.1:8080}"
[ -f "$model" ] || ./build/tokenmill make-model --arch llama --preset small --quant Q8_0 \
  --vocab "$tree/models/ggml-vocab-llama-bpe.gguf" --seed 1 -o "$model"
if [ ! -f .testdata/tokenmill.db ]; then
  admin=(./build/tokenmill admin --db "$db")
  "${admin[@]}" currency set USD >&2
  "${admin[@]}" tenants create demo >&2
  "${admin[@]}" balance top-up --tenant demo --amount 10 >&2
  "${admin[@]}" prices set --model llama-small --input 0.10 --cached-input 0.01 --output 0.40 >&2
  key=$("${admin[@]}" keys create --tenant demo --json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
  echo "run.sh: demo API key (shown once): $key" >&2
  echo "run.sh: try: curl -s http://$listen/v1/chat/completions -H 'Authorization: Bearer $key' -H 'content-type: application/json' -d '{\"model\":\"llama-small\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":16}'" >&2
fi
exec ./build/tokenmill serve --model "llama-small=$model" --chat-template "llama-small=$template" --db "$db" --listen "$listen"
