#include "cli/model_options.h"

#include "cli/progress.h"
#include "common/error.h"

namespace tokenmill::cli {

model::Model load_model(const std::string& path) {
  ProgressBar bar("loading");
  return model::Model::load(path, [&bar](uint64_t done, uint64_t total) { bar.update(done, total); });
}

void add_threads_option(CLI::App& cmd, int& threads) {
  cmd.add_option("-t,--threads", threads, "Threads (0: one per available CPU)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

}  // namespace tokenmill::cli
