// A progress bar on stderr for long work (writing or loading models, benchmarks). It draws only
// when stderr is a terminal, so logs and pipes stay clean; redraws at most ten times a second.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace tokenmill {

class Progress {
 public:
  // `bytes`: show amounts as MiB rather than plain counts.
  Progress(std::string label, uint64_t total, bool bytes = false);
  ~Progress();  // finishes the line if it was drawn
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t n);  // thread-safe
  void finish();

  static bool stderr_is_terminal();

 private:
  void draw(uint64_t done, bool final);

  std::string label_;
  uint64_t total_;
  bool bytes_;
  bool enabled_;
  bool finished_ = false;
  std::atomic<uint64_t> done_{0};
  std::mutex draw_mutex_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace tokenmill
