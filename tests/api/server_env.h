// What the server tests share: the tiny model they serve (synthetic, byte vocabulary, a ChatML
// template with tools), its `tokenmill serve` arguments, running a command for its output, and
// finding node with the npm SDKs the build installs.
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

// The folder whose node_modules holds `package` (the environment variable `env` overrides the
// build's `dir`), or empty when it or node is missing (the tests then skip).
inline std::string node_modules(const char* env, const std::string& dir, const std::string& package) {
  const char* given = std::getenv(env);
  const std::string folder = given ? given : dir;
  int code = -1;
  run_capture("node --version", code);
  if (code != 0 || !std::filesystem::exists(folder + "/node_modules/" + package + "/package.json")) return "";
  return folder;
}

inline std::string openai_modules() {
  return node_modules("TOKENMILL_OPENAI_MODULES", TOKENMILL_OPENAI_MODULES, "openai");
}

inline std::string anthropic_modules() {
  return node_modules("TOKENMILL_ANTHROPIC_MODULES", TOKENMILL_ANTHROPIC_MODULES, "@anthropic-ai/sdk");
}

}  // namespace tokenmill::testing
