#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "common/error.h"

namespace tokenmill::engine {
namespace {

bool by_logit_desc(const TokenLogprob& a, const TokenLogprob& b) {
  return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

// Moves the nucleus (the fewest most likely candidates whose mass reaches `target`) to the
// front; returns its size and mass. A weighted quickselect, expected linear time: sorting a
// near-flat 150k-token distribution, as random-weight models produce, costs milliseconds.
std::pair<size_t, double> select_nucleus(std::span<TokenLogprob> c, double target) {
  // Invariant: [0, lo) is in the nucleus with mass `taken` < target; [0, hi) has mass >= target.
  size_t lo = 0, hi = c.size();
  double taken = 0;
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(c.begin() + lo, c.begin() + mid, c.begin() + hi, by_logit_desc);
    double left = 0;
    for (size_t i = lo; i < mid; ++i) left += c[i].logprob;
    if (taken + left >= target) {
      hi = mid;
    } else {
      taken += left;
      lo = mid;
    }
  }
  return {lo + 1, taken + c[lo].logprob};
}

// log(sum(exp(x))) computed stably.
double log_sum_exp(std::span<const float> logits) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
  return mx + std::log(sum);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error(what);
}

}  // namespace

void SamplingParams::validate() const {
  require(std::isfinite(temperature) && temperature >= 0 && temperature <= 100,
          "temperature must be between 0 and 100");
  require(top_k >= 0, "top_k must be 0 (off) or positive");
  require(std::isfinite(top_p) && top_p > 0 && top_p <= 1, "top_p must be in (0, 1]");
  require(std::isfinite(min_p) && min_p >= 0 && min_p <= 1, "min_p must be in [0, 1]");
  require(std::isfinite(repetition_penalty) && repetition_penalty > 0 && repetition_penalty <= 10,
          "repetition_penalty must be in (0, 10]");
  require(std::isfinite(presence_penalty) && std::fabs(presence_penalty) <= 2,
          "presence_penalty must be between -2 and 2");
  require(std::isfinite(frequency_penalty) && std::fabs(frequency_penalty) <= 2,
          "frequency_penalty must be between -2 and 2");
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { params_.validate(); }

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> seen) {
  const bool any = params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                   params_.frequency_penalty != 0.0f;
  if (!any || seen.empty()) return;
  if (counts_.size() < logits.size()) counts_.assign(logits.size(), 0);
  for (int32_t t : seen) {
    if (t < 0 || static_cast<size_t>(t) >= logits.size()) continue;
    if (counts_[t]++ == 0) touched_.push_back(t);
  }
  for (int32_t t : touched_) {
    float& x = logits[t];
    if (params_.repetition_penalty != 1.0f)
      x = x > 0 ? x / params_.repetition_penalty : x * params_.repetition_penalty;
    x -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(counts_[t]);
    counts_[t] = 0;
  }
  touched_.clear();
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> seen) {
  if (logits.empty()) throw Error("cannot sample from an empty vocabulary");
  apply_penalties(logits, seen);
  if (params_.temperature == 0.0f) return argmax(logits);

  // Candidates carry the scaled logit in `logprob` until they are normalised below.
  const float inv_t = 1.0f / params_.temperature;
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isfinite(logits[i])) candidates_.push_back({static_cast<int32_t>(i), logits[i] * inv_t});
  if (candidates_.empty()) return argmax(logits);

  size_t n = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    std::nth_element(candidates_.begin(), candidates_.begin() + params_.top_k - 1, candidates_.end(), by_logit_desc);
    n = static_cast<size_t>(params_.top_k);
  }
  float max_logit = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) max_logit = std::max(max_logit, candidates_[i].logprob);

  // From here `logprob` holds the unnormalised probability. Min-p is relative to the best
  // token, so it needs no normalisation.
  double total = 0;
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p = std::exp(static_cast<double>(candidates_[i].logprob) - max_logit);
    if (p < params_.min_p) continue;
    candidates_[kept++] = {candidates_[i].token, static_cast<float>(p)};
    total += p;
  }
  n = kept;
  if (params_.top_p < 1.0f) std::tie(n, total) = select_nucleus(std::span(candidates_.data(), n), params_.top_p * total);

  const double u = static_cast<double>(rng_.uniform()) * total;
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += candidates_[i].logprob;
    if (u < acc) return candidates_[i].token;
  }
  return candidates_[n - 1].token;
}

std::vector<TokenLogprob> Sampler::top_logprobs(std::span<const float> logits, int n) {
  const double lse = log_sum_exp(logits);
  std::vector<TokenLogprob> all;
  all.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) all.push_back({static_cast<int32_t>(i), logits[i]});
  const size_t k = std::min<size_t>(static_cast<size_t>(std::max(n, 0)), all.size());
  std::partial_sort(all.begin(), all.begin() + k, all.end(), by_logit_desc);
  all.resize(k);
  for (auto& t : all) t.logprob = static_cast<float>(t.logprob - lse);
  return all;
}

float Sampler::logprob_of(std::span<const float> logits, int32_t token) {
  return static_cast<float>(logits[token] - log_sum_exp(logits));
}

}  // namespace tokenmill::engine
