#include "cli/model_options.h"

#include <memory>

#include "common/progress.h"

namespace tokenmill::cli {

model::Model load_model(const std::string& path) {
  std::unique_ptr<Progress> bar;
  uint64_t shown = 0;
  return model::Model::load(path, [&](uint64_t done, uint64_t total) {
    if (!bar) bar = std::make_unique<Progress>("loading " + path, total, true);
    bar->add(done - shown);
    shown = done;
  });
}

void add_threads_option(CLI::App& cmd, ThreadOptions& options) {
  cmd.add_option("-t,--threads", options.threads, "Threads (0: one per available CPU)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_flag("--pin-threads", options.pin,
               "Bind each compute thread to its own CPU (steadier timings where nothing else runs)");
}

void add_cache_type_option(CLI::App& cmd, gguf::TensorType& type) {
  cmd.add_option_function<std::string>(
         "--cache-type",
         [&type](const std::string& name) {
           const auto t = gguf::tensor_type_from_name(name);
           if (!t || (*t != gguf::TensorType::F32 && *t != gguf::TensorType::F16 && *t != gguf::TensorType::Q8_0))
             throw CLI::ValidationError("--cache-type", "must be f32, f16 or q8_0, not " + name);
           type = *t;
         },
         "KV cache type: f16 (default), f32 or q8_0");
}

}  // namespace tokenmill::cli
