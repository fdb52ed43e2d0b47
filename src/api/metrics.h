// Counters and histograms for GET /metrics, rendered in Prometheus' text format: requests by
// model, endpoint and status; prompt, cached and generated tokens; latency histograms (queue
// time, time to first token, whole request); and, from the schedulers at scrape time, queue
// depth, running sequences, KV-cache use and prefix-cache hits. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "api/access.h"
#include "engine/scheduler.h"

namespace tokenmill::api {

class Metrics {
 public:
  void count_request(const std::string& model, const std::string& endpoint, int status);
  void observe_generation(const std::string& model, const Usage& usage, const Timings& timings, Outcome outcome);

  // The whole exposition, with each model's scheduler stats as gauges.
  std::string render(const std::vector<std::pair<std::string, engine::SchedulerStats>>& schedulers) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bound, not cumulative; one more for +Inf
    double sum = 0;
    uint64_t total = 0;
    void observe(double x);
  };
  struct ModelMetrics {
    int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
    int64_t disconnects = 0;
    Histogram queue, ttft, duration;
    ModelMetrics();
  };

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, int64_t> requests_;
  std::map<std::string, ModelMetrics> models_;
};

}  // namespace tokenmill::api
