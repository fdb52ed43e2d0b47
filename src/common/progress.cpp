#include "common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace tokenmill {

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total, bool bytes)
    : label_(std::move(label)), total_(total), bytes_(bytes), enabled_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::add(uint64_t n) {
  const uint64_t done = done_.fetch_add(n, std::memory_order_relaxed) + n;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_ || now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done, false);
}

void Progress::finish() {
  std::lock_guard lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(done_.load(), true);
}

void Progress::draw(uint64_t done, bool final) {
  constexpr int kWidth = 30;
  const double frac = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const int filled = static_cast<int>(frac * kWidth);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = '\0';
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (bytes_)
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %.0f/%.0f MiB %.1f s", label_.c_str(), bar, frac * 100,
                 static_cast<double>(done) / 1048576.0, static_cast<double>(total_) / 1048576.0, secs);
  else
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %llu/%llu %.1f s", label_.c_str(), bar, frac * 100,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), secs);
  if (final) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace tokenmill
