#include "api/metrics.h"

#include <sstream>
#include <tuple>

namespace tokenmill::api {
namespace {

// Seconds, from a fast prefix hit on a small model to a long generation.
const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string model_label(const std::string& model) { return "model=\"" + escape_label(model) + "\""; }

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

void Metrics::Histogram::observe(double x) {
  size_t i = 0;
  while (i < bounds.size() && x > bounds[i]) ++i;
  ++counts[i];
  sum += x;
  ++total;
}

Metrics::ModelMetrics::ModelMetrics() {
  for (Histogram* h : {&queue, &ttft, &duration}) {
    h->bounds = kLatencyBounds;
    h->counts.assign(kLatencyBounds.size() + 1, 0);
  }
}

void Metrics::count_request(const std::string& model, const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{model, endpoint, status}];
}

void Metrics::observe_generation(const std::string& model, const Usage& usage, const Timings& timings, Outcome outcome) {
  std::lock_guard lock(mutex_);
  ModelMetrics& m = models_[model];
  m.prompt_tokens += usage.prompt_tokens;
  m.cached_tokens += usage.cached_tokens;
  m.completion_tokens += usage.completion_tokens;
  m.reasoning_tokens += usage.reasoning_tokens;
  if (outcome == Outcome::ClientDisconnected) ++m.disconnects;
  m.queue.observe(timings.queued_seconds);
  if (usage.completion_tokens > 0) m.ttft.observe(timings.time_to_first_token);
  m.duration.observe(timings.total_seconds);
}

std::string Metrics::render(const std::vector<std::pair<std::string, engine::SchedulerStats>>& schedulers) const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  family(out, "tokenmill_requests_total", "counter", "HTTP requests by model, endpoint and status code.");
  for (const auto& [key, n] : requests_) {
    const auto& [model, endpoint, status] = key;
    out << "tokenmill_requests_total{" << model_label(model) << ",endpoint=\"" << escape_label(endpoint)
        << "\",status=\"" << status << "\"} " << n << '\n';
  }
  auto counter = [&](const char* name, const char* help, int64_t ModelMetrics::*field) {
    family(out, name, "counter", help);
    for (const auto& [model, m] : models_) out << name << '{' << model_label(model) << "} " << m.*field << '\n';
  };
  counter("tokenmill_prompt_tokens_total", "Prompt tokens of finished requests.", &ModelMetrics::prompt_tokens);
  counter("tokenmill_cached_prompt_tokens_total", "Prompt tokens served from the prefix cache.", &ModelMetrics::cached_tokens);
  counter("tokenmill_completion_tokens_total", "Generated tokens of finished requests.", &ModelMetrics::completion_tokens);
  counter("tokenmill_reasoning_tokens_total", "Generated tokens inside reasoning blocks.", &ModelMetrics::reasoning_tokens);
  counter("tokenmill_client_disconnects_total", "Requests cancelled because the client went away.",
          &ModelMetrics::disconnects);
  auto histogram = [&](const char* name, const char* help, Histogram ModelMetrics::*field) {
    family(out, name, "histogram", help);
    for (const auto& [model, m] : models_) {
      const Histogram& h = m.*field;
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= h.bounds.size(); ++i) {
        cumulative += h.counts[i];
        out << name << "_bucket{" << model_label(model) << ",le=\"";
        if (i < h.bounds.size()) out << h.bounds[i]; else out << "+Inf";
        out << "\"} " << cumulative << '\n';
      }
      out << name << "_sum{" << model_label(model) << "} " << h.sum << '\n';
      out << name << "_count{" << model_label(model) << "} " << h.total << '\n';
    }
  };
  histogram("tokenmill_queue_seconds", "Time from admission to the first forward pass.", &ModelMetrics::queue);
  histogram("tokenmill_time_to_first_token_seconds", "Time from admission to the first generated token.", &ModelMetrics::ttft);
  histogram("tokenmill_request_duration_seconds", "Time from admission to the last token.", &ModelMetrics::duration);

  auto gauge = [&](const char* name, const char* type, const char* help, auto value) {
    family(out, name, type, help);
    for (const auto& [model, s] : schedulers) out << name << '{' << model_label(model) << "} " << value(s) << '\n';
  };
  using S = engine::SchedulerStats;
  gauge("tokenmill_queue_depth", "gauge", "Sequences waiting for admission.", [](const S& s) { return s.waiting; });
  gauge("tokenmill_running_sequences", "gauge", "Sequences in the running batch.", [](const S& s) { return s.running; });
  gauge("tokenmill_kv_blocks_used", "gauge", "KV-cache blocks in use (sequences and prefix cache).",
        [](const S& s) { return s.kv_blocks_used; });
  gauge("tokenmill_kv_blocks_total", "gauge", "KV-cache blocks in the budget.", [](const S& s) { return s.kv_blocks_total; });
  gauge("tokenmill_kv_usage_ratio", "gauge", "Share of the KV budget in use.", [](const S& s) {
    return s.kv_blocks_total ? static_cast<double>(s.kv_blocks_used) / static_cast<double>(s.kv_blocks_total) : 0.0;
  });
  gauge("tokenmill_prefix_cache_blocks", "gauge", "KV blocks held by the prefix cache.",
        [](const S& s) { return s.prefix_cache_blocks; });
  gauge("tokenmill_prefix_cache_hit_tokens_total", "counter", "Prompt tokens found in the prefix cache on admission.",
        [](const S& s) { return s.prefix_hit_tokens; });
  gauge("tokenmill_generated_tokens_total", "counter", "Tokens generated by the scheduler.",
        [](const S& s) { return s.generated_tokens; });
  gauge("tokenmill_preemptions_total", "counter", "Sequences preempted for KV memory.", [](const S& s) { return s.preemptions; });
  gauge("tokenmill_forward_steps_total", "counter", "Batched forward passes.", [](const S& s) { return s.steps; });
  return out.str();
}

}  // namespace tokenmill::api
