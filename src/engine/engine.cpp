#include "engine/engine.h"

#include "common/error.h"

namespace tokenmill::engine {

Engine::Engine(int n_threads, bool pin_threads) : pool_(n_threads, pin_threads) {}

Engine::~Engine() { stop(true); }

Scheduler& Engine::add(const std::string& name, const model::Model& model, const tokenizer::Tokenizer& tokenizer,
                       const SchedulerConfig& config) {
  if (thread_.joinable()) throw Error("engine: models are added before it starts");
  if (schedulers_.contains(name)) throw Error("model name '" + name + "' is given twice");
  auto s = std::make_unique<Scheduler>(model, tokenizer, pool_, config, [this] { wake(); });
  return *schedulers_.emplace(name, std::move(s)).first->second;
}

Scheduler* Engine::find(const std::string& name) {
  const auto it = schedulers_.find(name);
  return it == schedulers_.end() ? nullptr : it->second.get();
}

void Engine::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void Engine::wake() {
  {
    std::lock_guard lock(mutex_);
    signalled_ = true;
  }
  cv_.notify_one();
}

void Engine::stop(bool cancel) {
  for (auto& [name, s] : schedulers_) s->close(cancel);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

// Steps every scheduler with work in turn; sleeps until woken when none has any. Stopping
// waits for the schedulers to drain (close() has stopped new work coming in).
void Engine::run() {
  for (;;) {
    bool busy = false;
    for (auto& [name, s] : schedulers_) {
      if (s->has_work()) {
        s->step();
        busy = true;
      }
    }
    if (busy) continue;
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    cv_.wait(lock, [this] { return signalled_ || stopping_; });
    signalled_ = false;
  }
}

}  // namespace tokenmill::engine
