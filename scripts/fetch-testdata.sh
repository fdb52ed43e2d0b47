#!/usr/bin/env bash
# Fetches the test data that comes from the npm registry into .testdata/ (git-ignored):
#  - node-llama-cpp 3.22.1, pinned by sha256: its git bundle of llama.cpp carries real
#    vocab-only GGUFs, tokenizer test vectors and chat templates. We use that data only.
# Idempotent: nothing is fetched when the pinned copy is already there.
# Prints the llama.cpp tree's path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.testdata
pkg=node-llama-cpp-3.22.1.tgz
sha=a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
mkdir -p "$dest"
if [ ! -f "$dest/llama.cpp/.complete" ]; then
  if ! echo "$sha  $dest/$pkg" | sha256sum -c --status 2>/dev/null; then
    echo "fetch-testdata: npm pack node-llama-cpp@3.22.1" >&2
    (cd "$dest" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null)
    echo "$sha  $dest/$pkg" | sha256sum -c --status || { echo "fetch-testdata: sha256 mismatch for $pkg" >&2; exit 1; }
  fi
  rm -rf "$dest/llama.cpp" "$dest/package"
  tar -xzf "$dest/$pkg" -C "$dest" package/llama/gitRelease.bundle
  git clone -q "$dest/package/llama/gitRelease.bundle" "$dest/llama.cpp" 2>/dev/null
  rm -rf "$dest/package"
  touch "$dest/llama.cpp/.complete"
fi
echo "$(pwd)/$dest/llama.cpp"
