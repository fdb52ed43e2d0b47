// What the server tests share: the tiny model they serve (synthetic, byte vocabulary, a ChatML
// template with tools), its `tokenmill serve` arguments, running a command for its output, and
// finding node with the openai SDK the build installs.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "model/model_files.h"
#include "server_process.h"

namespace tokenmill::testing {

inline const std::string kTemplate = std::string(TOKENMILL_SOURCE_DIR) + "/tests/api/chatml_tools.jinja";

inline std::string tiny_model() { return synthetic_model(model::Arch::Llama, model::Preset::Tiny, "F32"); }

inline std::vector<std::string> serve_tiny(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--model", "tiny=" + tiny_model(), "--chat-template", "tiny=" + kTemplate,
                                   "--threads", "2", "--kv-budget", "64MiB"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

inline std::string run_capture(const std::string& command, int& exit_code) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The folder whose node_modules holds the openai package, or empty (the tests then skip).
inline std::string openai_modules() {
  const char* env = std::getenv("TOKENMILL_OPENAI_MODULES");
  const std::string dir = env ? env : TOKENMILL_OPENAI_MODULES;
  int code = -1;
  run_capture("node --version", code);
  if (code != 0 || !std::filesystem::exists(dir + "/node_modules/openai/package.json")) return "";
  return dir;
}

}  // namespace tokenmill::testing
