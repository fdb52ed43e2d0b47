// Running the real tokenmill binary from tests and capturing what it prints.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tokenmill::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `tokenmill ARGS` through the shell (ARGS must be quoted by the caller).
inline CommandResult run_tokenmill(const std::string& args) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path() / "tokenmill-tests";
  std::filesystem::create_directories(dir);
  const std::string err_path =
      (dir / ("stderr-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
  const std::string cmd = std::string(TOKENMILL_BINARY) + " " + args + " 2>" + err_path;
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  std::filesystem::remove(err_path);
  return r;
}

// The llama.cpp tree from the npm bundle (scripts/fetch-testdata.sh), or empty.
inline std::string llama_tree() {
  const char* t = std::getenv("TOKENMILL_LLAMA_TREE");
  return t && std::filesystem::is_directory(t) ? t : "";
}

inline std::string shared_dir() { return std::string(TOKENMILL_SOURCE_DIR) + "/../shared"; }

}  // namespace tokenmill::testing
