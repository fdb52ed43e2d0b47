// A persistent pool of worker threads for the kernels. Threads are created once; between
// operations they spin briefly (the next op of a forward pass usually comes within
// microseconds), yielding now and then, and then sleep on a futex, so an idle server costs
// no CPU. The calling thread
// takes part in every job as thread 0, so a pool of N runs on N cores with N-1 workers.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace tokenmill::kernels {

// A 32-bit word threads wait on until it changes: spin first, then sleep in the kernel.
struct alignas(64) WaitWord {
  std::atomic<uint32_t> value{0};
  std::atomic<uint32_t> sleepers{0};

  uint32_t wait_change(uint32_t old);  // returns the new value
  void wake_all();                     // call after changing value
};

class ThreadPool {
 public:
  // n_threads counts the calling thread; 0 means one per CPU this process may use. With
  // pin_threads, worker i is bound to the i-th of those CPUs and a thread that calls run() to
  // the first (for the rest of its life), which keeps a thread's cache warm between ops. The
  // caller is bound in run(), not here, because a server builds its pool on one thread and
  // computes on another.
  explicit ThreadPool(int n_threads = 0, bool pin_threads = false);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls task(thread_index) once on every thread, the caller being 0, and returns when all
  // have finished. The first exception a task throws is rethrown here (a task that uses
  // barrier() must not throw, or the others wait forever). Calls from several threads are
  // serialised; a task must not call run() itself.
  template <class Task>
  void run(Task&& task) {
    using T = std::remove_reference_t<Task>;
    run_erased([](void* ctx, int thread) { (*static_cast<T*>(ctx))(thread); },
               const_cast<void*>(static_cast<const void*>(&task)));
  }

  // Calls body(begin, end) on disjoint ranges covering [0, n), each at least `grain` long
  // (except the last). Ranges are handed out as threads ask for them, so a thread that was
  // descheduled or got costlier ranges does not hold the others back.
  template <class Body>
  void parallel_for(int64_t n, int64_t grain, Body&& body) {
    if (n <= 0) return;
    const int64_t chunk = std::max<int64_t>({grain, 1, (n + 4 * n_threads_ - 1) / (4 * n_threads_)});
    if (n_threads_ == 1 || n <= chunk) {
      body(int64_t{0}, n);
      return;
    }
    alignas(64) std::atomic<int64_t> next{0};
    run([&](int) {
      for (;;) {
        const int64_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
        if (begin >= n) return;
        body(begin, std::min(n, begin + chunk));
      }
    });
  }

  // Inside run(): returns once every thread of the pool has reached it.
  void barrier();

 private:
  void run_erased(void (*fn)(void*, int), void* ctx);
  void worker_main(int index);
  void call_task(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  void (*job_fn_)(void*, int) = nullptr;
  void* job_ctx_ = nullptr;
  bool stopping_ = false;
  int caller_cpu_ = -1;  // where run()'s caller is bound; -1: unpinned
  std::thread::id bound_caller_;
  std::mutex error_mutex_;
  std::exception_ptr error_;

  WaitWord generation_;  // bumped to start a job (or to stop)
  WaitWord pending_;     // workers still running the current job
  WaitWord barrier_phase_;
  alignas(64) std::atomic<uint32_t> barrier_arrived_{0};
};

}  // namespace tokenmill::kernels
