// What the model-running commands (run, perplexity, bench) share: loading a model with a
// progress bar, and the thread options.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "model/model.h"

namespace tokenmill::cli {

// Loads and validates the model, drawing a progress bar while its weights are read in.
model::Model load_model(const std::string& path);

// How many threads compute, and whether each is bound to its own CPU.
struct ThreadOptions {
  int threads = 0;  // 0: one per CPU this process may use
  bool pin = false;
};

// -t/--threads and --pin-threads.
void add_threads_option(CLI::App& cmd, ThreadOptions& options);

// --cache-type: how the KV cache stores keys and values (f16, the default, f32 or q8_0).
void add_cache_type_option(CLI::App& cmd, gguf::TensorType& type);

}  // namespace tokenmill::cli
