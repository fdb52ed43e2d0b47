// What metering adds to one request: authenticate the key, admit (the reservation
// transaction), settle (the ledger transaction), against a SQLite database file in WAL mode,
// and (the postgres_ cases) against the PostgreSQL database TOKENMILL_BENCH_POSTGRES names,
// e.g. postgres://tokenmill@127.0.0.1:5432/bench (skipped when unset).
// Reports the mean and the p50 / p99 / max latency of the whole round trip per request, in
// wall-clock time and in this thread's CPU time (on a shared machine the wall-clock tail is
// mostly other processes' time slices).
//   build/bench/bench_store --benchmark_filter=Metering
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>

#include "maas/admin.h"
#include "maas/crypto.h"
#include "maas/gateway.h"
#include "maas/plans.h"
#include "store/open_store.h"

namespace {

using namespace tokenmill;
using namespace tokenmill::maas;

enum class Billing { Balance, BalanceWithLimits, Plan };

struct Fixture {
  Fixture(Billing billing, const char* postgres_url) {
    path = (std::filesystem::temp_directory_path() / ("tokenmill-metering-" + std::to_string(::getpid()) + ".db")).string();
    remove();
    store = store::open_store(postgres_url ? postgres_url : "sqlite:" + path);
    Admin admin(*store, "bench");
    // A tenant of its own: a PostgreSQL database outlives the run.
    static int fixtures = 0;
    const std::string tenant = "acme-" + std::to_string(::getpid()) + "-" + std::to_string(fixtures++);
    admin.create_tenant(tenant);
    admin.top_up(tenant, "1000000", "bench");
    admin.set_price(PriceOptions{"glm", "2", "0.5", "8", {}});
    KeyOptions k;
    k.tenant = tenant;
    if (billing == Billing::BalanceWithLimits) {
      k.limits = Limits{1'000'000'000, 1'000'000'000'000, 1000};
      admin.set_model_limits("glm", Limits{1'000'000'000, 1'000'000'000'000, 1000});
    }
    key = admin.create_key(k)["key"];
    if (billing == Billing::Plan) {
      admin.set_plan(nlohmann::json::parse(R"({"name": "lite", "period": "30d", "models": ["glm"],
        "windows": [{"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "prompts", "limit": 1000000000},
                    {"name": "week", "duration": "7d", "unit": "weighted_tokens", "limit": 1000000000000}]})"));
      admin.subscribe(tenant, "lite");
    }
    gateway = std::make_unique<Gateway>(*store);
  }
  ~Fixture() {
    gateway.reset();
    store.reset();
    remove();
  }
  void remove() {
    for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path + s);
    std::filesystem::remove_all(path + ".instances");
  }

  std::string path;
  std::unique_ptr<Store> store;
  std::unique_ptr<Gateway> gateway;
  std::string key;
};

std::unique_ptr<Fixture> fixture;

// This thread's CPU time: what the work costs, without the time the scheduler gave to others.
double thread_cpu_micros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

void report(benchmark::State& state, const std::string& prefix, std::vector<double>& micros) {
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<size_t>(q * static_cast<double>(micros.size() - 1))]; };
  state.counters[prefix + "p50_us"] = benchmark::Counter(at(0.50), benchmark::Counter::kAvgThreads);
  state.counters[prefix + "p99_us"] = benchmark::Counter(at(0.99), benchmark::Counter::kAvgThreads);
  state.counters[prefix + "max_us"] = benchmark::Counter(micros.back(), benchmark::Counter::kAvgThreads);
}

void BM_Metering(benchmark::State& state, Billing billing, bool postgres) {
  const char* url = postgres ? std::getenv("TOKENMILL_BENCH_POSTGRES") : nullptr;
  if (postgres && !url) {
    state.SkipWithError("set TOKENMILL_BENCH_POSTGRES=postgres://USER@HOST:PORT/DB to measure PostgreSQL");
    for (auto _ : state) {
    }
    return;
  }
  if (state.thread_index() == 0) fixture = std::make_unique<Fixture>(billing, url);
  std::vector<double> wall, cpu;
  wall.reserve(100'000);
  cpu.reserve(100'000);
  int64_t n = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = thread_cpu_micros();
    const auto who = fixture->gateway->authenticate(fixture->key);
    auto admitted = fixture->gateway->admit(std::get<Principal>(who),
                                            AdmitRequest{"t" + std::to_string(state.thread_index()) + "-" + std::to_string(n++),
                                                         "glm", 500, 500});
    std::get<Ticket>(admitted).settle({500, 100, 200, 0}, Outcome::Completed);
    wall.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    cpu.push_back(thread_cpu_micros() - cpu_start);
  }
  report(state, "", wall);
  report(state, "cpu_", cpu);
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) fixture.reset();
}

// The control: about as much CPU work per iteration (SHA-256 over 128 KiB) with no store at all.
// Its wall-clock tail on the same machine at the same time shows how much of the metering tail
// is the machine's, not the metering's.
void BM_ControlCpuWork(benchmark::State& state) {
  const std::string buffer(128 * 1024, 'x');
  std::vector<double> wall, cpu;
  wall.reserve(100'000);
  cpu.reserve(100'000);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = thread_cpu_micros();
    benchmark::DoNotOptimize(sha256(buffer));
    wall.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    cpu.push_back(thread_cpu_micros() - cpu_start);
  }
  report(state, "", wall);
  report(state, "cpu_", cpu);
}

BENCHMARK(BM_ControlCpuWork)->Iterations(20'000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, balance, Billing::Balance, false)->Iterations(20'000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, balance_key_and_model_limits, Billing::BalanceWithLimits, false)
    ->Iterations(20'000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, plan_two_windows, Billing::Plan, false)->Iterations(20'000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, balance_8_threads, Billing::Balance, false)
    ->Iterations(2'500)->Threads(8)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, postgres_balance, Billing::Balance, true)
    ->Iterations(5'000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, postgres_balance_key_and_model_limits, Billing::BalanceWithLimits, true)
    ->Iterations(5'000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Metering, postgres_balance_8_threads, Billing::Balance, true)
    ->Iterations(1'000)->Threads(8)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
