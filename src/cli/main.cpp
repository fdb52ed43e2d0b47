// cli/: the tokenmill command-line program. Each subcommand lives in its own cmd_*.cpp and is
// registered here; the subsystems do the work, this layer parses arguments and prints.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  CLI::App app{"tokenmill: self-hosted model-as-a-service for GGUF models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tokenmill 0.1.0");
  tokenmill::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tokenmill::Error& e) {
    std::fprintf(stderr, "tokenmill: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenmill: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
