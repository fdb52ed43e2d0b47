// One registration function per subcommand; each is defined in its cmd_*.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace tokenmill::cli {

void register_inspect(CLI::App& app);
void register_make_model(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_detokenize(CLI::App& app);
void register_chat_template(CLI::App& app);
void register_run(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_bench(CLI::App& app);
// Adds `kernels` under the `bench` command (called by register_bench).
void register_bench_kernels(CLI::App& bench);
void register_serve(CLI::App& app);
void register_admin(CLI::App& app);

inline void register_all(CLI::App& app) {
  register_inspect(app);
  register_make_model(app);
  register_tokenize(app);
  register_detokenize(app);
  register_chat_template(app);
  register_run(app);
  register_perplexity(app);
  register_bench(app);
  register_serve(app);
  register_admin(app);
}

}  // namespace tokenmill::cli
