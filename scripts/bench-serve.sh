#!/usr/bin/env bash
# The serving figures of docs/PERFORMANCE.md: a generated model served on loopback, then 1, 4,
# 16 and 32 concurrent streaming clients through the openai SDK (tests/api/load_test.mjs) and
# the prefix-cache time to first token (bench/serve/prefix_ttft.mjs). Needs a build with the
# SDK installed (scripts/build.sh; the build puts it in build/npm/openai_sdk).
#   scripts/bench-serve.sh [MODEL.gguf] [MAX_TOKENS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-.testdata/llama-1b-q4_k_m.gguf}
max_tokens=${2:-64}
rounds=${3:-2}
mkdir -p .testdata
[ -f "$model" ] || ./build/tokenmill make-model --arch llama --preset 1b --quant Q4_K_M --seed 1 -o "$model"
log=$(mktemp)
./build/tokenmill serve --model bench="$model" --listen 127.0.0.1:0 --kv-budget 4GiB 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 600); do grep -q "listening on http" "$log" && break; sleep 0.1; done
url=$(grep -o "http://127.0.0.1:[0-9]*" "$log")
export OPENAI_MODULES=build/npm/openai_sdk
echo "model $model, $max_tokens tokens per request, $rounds rounds per client, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
node tests/api/load_test.mjs "$url" bench 1,4,16,32 "$max_tokens" "$rounds"
node bench/serve/prefix_ttft.mjs "$url" bench 5
kill -TERM $server
wait $server
