// The thread pool under repeated use: every thread runs every job exactly once, parallel_for
// covers its range exactly once, barriers order the phases, errors come back to the caller.
// Pools larger than the machine's two cores are included on purpose: descheduled threads are
// where lost wake-ups and barrier races show.
#include <gtest/gtest.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/thread_pool.h"

namespace tokenmill::kernels {
namespace {

TEST(ThreadPool, DefaultSizeIsTheUsableCpus) {
  ThreadPool pool;
  EXPECT_GE(pool.size(), 1);
  EXPECT_LE(pool.size(), static_cast<int>(std::thread::hardware_concurrency()));
}

TEST(ThreadPool, EveryThreadRunsEveryJobOnce) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    std::vector<int> counts(n, 0);  // each slot written by one thread only
    for (int job = 0; job < 5000; ++job) {
      pool.run([&](int t) { ++counts[t]; });
    }
    for (int t = 0; t < n; ++t) EXPECT_EQ(counts[t], 5000) << "pool " << n << " thread " << t;
  }
}

TEST(ThreadPool, CallerIsThreadZero) {
  ThreadPool pool(3);
  std::thread::id ids[3];
  pool.run([&](int t) { ids[t] = std::this_thread::get_id(); });
  EXPECT_EQ(ids[0], std::this_thread::get_id());
  EXPECT_NE(ids[1], ids[0]);
  EXPECT_NE(ids[2], ids[1]);
}

TEST(ThreadPool, ParallelForCoversTheRangeExactlyOnce) {
  for (int n_threads : {1, 2, 4}) {
    ThreadPool pool(n_threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1000, 100003}) {
      for (int64_t grain : {1, 16, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
          ASSERT_LT(begin, end);
          ASSERT_TRUE(end - begin >= grain || end == n);
          for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
        });
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(hits[i].load(), 1) << "threads " << n_threads << " n " << n << " i " << i;
        }
      }
    }
  }
}

// The first range a thread takes waits until another thread has taken one too: with ranges
// handed out on demand, the worker must get one while the caller is held in its first.
TEST(ThreadPool, ParallelForSharesWorkWithTheWorkers) {
  ThreadPool pool(2);
  std::mutex mutex;
  std::condition_variable cv;
  std::set<std::thread::id> threads;
  pool.parallel_for(8, 1, [&](int64_t, int64_t) {
    std::unique_lock lock(mutex);
    threads.insert(std::this_thread::get_id());
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return threads.size() >= 2; });
  });
  EXPECT_EQ(threads.size(), 2u);
}

// Each phase, every thread writes its slot, waits, then reads every other slot: a barrier
// that let a thread through early would show a stale value.
TEST(ThreadPool, BarrierStress) {
  for (int n : {2, 3, 4}) {
    ThreadPool pool(n);
    std::vector<int64_t> slots(n * 8, -1);  // 8 apart: no false sharing to hide anything
    std::atomic<int64_t> errors{0};
    for (int job = 0; job < 50; ++job) {
      pool.run([&](int t) {
        for (int64_t phase = 0; phase < 200; ++phase) {
          slots[t * 8] = job * 1000 + phase;
          pool.barrier();
          for (int u = 0; u < n; ++u) {
            if (slots[u * 8] != job * 1000 + phase) errors.fetch_add(1);
          }
          pool.barrier();
        }
      });
    }
    EXPECT_EQ(errors.load(), 0) << "pool " << n;
  }
}

TEST(ThreadPool, WakesAfterSleeping) {
  ThreadPool pool(2);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // long past the spin phase
    std::atomic<int> ran{0};
    pool.run([&](int) { ran.fetch_add(1); });
    EXPECT_EQ(ran.load(), 2);
  }
}

TEST(ThreadPool, RethrowsATaskErrorAndStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.run([](int t) {
                 if (t == 2) throw std::runtime_error("worker failed");
               }),
               std::runtime_error);
  EXPECT_THROW(pool.run([](int t) {
                 if (t == 0) throw std::runtime_error("caller failed");
               }),
               std::runtime_error);
  std::atomic<int> ran{0};
  pool.run([&](int) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 3);
}

TEST(ThreadPool, NestedRunIsRefused) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run([&](int t) {
                 if (t == 0) pool.run([](int) {});
               }),
               std::logic_error);
}

TEST(ThreadPool, CallersFromSeveralThreadsAreSerialised) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  auto client = [&] {
    for (int i = 0; i < 2000; ++i) pool.run([&](int) { total.fetch_add(1); });
  };
  std::thread a(client), b(client);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 2000 * 2);
}

// The CPUs the calling thread may run on.
std::vector<int> affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

// A pinned pool binds thread i to the i-th allowed CPU when it computes, and binds the thread
// that calls run() (here not the one that built the pool, as in the server), not the builder.
TEST(ThreadPool, PinnedPoolBindsComputingThreads) {
  const std::vector<int> allowed = affinity();
  std::vector<std::vector<int>> seen(2);
  std::optional<ThreadPool> pool;
  std::thread([&] { pool.emplace(2, /*pin_threads=*/true); }).join();
  std::thread([&] {
    for (int i = 0; i < 100; ++i) pool->run([&](int thread) { seen[thread] = affinity(); });
  }).join();
  EXPECT_EQ(affinity(), allowed);  // this thread was never bound
  for (int t = 0; t < 2; ++t) EXPECT_EQ(seen[t], std::vector<int>{allowed[t % allowed.size()]}) << "thread " << t;
  pool.reset();
}

}  // namespace
}  // namespace tokenmill::kernels
