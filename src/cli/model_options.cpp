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

void add_threads_option(CLI::App& cmd, int& threads) {
  cmd.add_option("-t,--threads", threads, "Threads (0: one per available CPU)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

}  // namespace tokenmill::cli
