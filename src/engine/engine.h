// The engine thread: one thread steps the scheduler of every served model in turn while any has
// work, and sleeps when none has. One thread for all models keeps the kernels' thread pool to
// one forward pass at a time (each pass already uses every core), and gives models fair turns.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/scheduler.h"
#include "kernels/thread_pool.h"

namespace tokenmill::engine {

class Engine {
 public:
  // n_threads: the kernels' pool, the engine thread included (0 = one per CPU); pin_threads
  // binds each to its own CPU (ThreadPool).
  explicit Engine(int n_threads = 0, bool pin_threads = false);
  ~Engine();  // stop(true)
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  kernels::ThreadPool& pool() { return pool_; }

  // Before start(): serves `model` under `name`. The model and tokenizer must outlive the engine.
  Scheduler& add(const std::string& name, const model::Model& model, const tokenizer::Tokenizer& tokenizer,
                 const SchedulerConfig& config);
  Scheduler* find(const std::string& name);

  void start();
  // Stops admitting; finishes the sequences in flight, or cancels them with `cancel`; joins.
  void stop(bool cancel);

 private:
  void run();
  void wake();

  kernels::ThreadPool pool_;
  std::map<std::string, std::unique_ptr<Scheduler>> schedulers_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool signalled_ = false;
  bool stopping_ = false;
};

}  // namespace tokenmill::engine
