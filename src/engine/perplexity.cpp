#include "engine/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/forward.h"

namespace tokenmill::engine {
namespace {

// log p(target) under the softmax of one row of logits, in double like the reference tool.
double log_prob(std::span<const float> logits, int32_t target) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x - mx));
  return static_cast<double>(logits[target] - mx) - std::log(sum);
}

// Rows of logits one call may return: with a 150k-token vocabulary, 512 rows take 300 MB.
constexpr int64_t kMaxLogitRows = 512;

}  // namespace

PerplexityResult perplexity(const model::Model& model, kernels::ThreadPool& pool, std::span<const int32_t> tokens,
                            const PerplexityParams& p, const ChunkDone& on_chunk) {
  if (p.n_ctx < 2) throw Error("perplexity: the context must hold at least 2 tokens");
  if (p.n_batch < 1) throw Error("perplexity: the batch size must be positive");
  if (static_cast<int64_t>(tokens.size()) < 2 * p.n_ctx)
    throw Error("perplexity: the text has " + std::to_string(tokens.size()) + " tokens; a context of " +
                std::to_string(p.n_ctx) + " needs at least " + std::to_string(2 * p.n_ctx));
  const auto start_time = std::chrono::steady_clock::now();
  const int64_t available = static_cast<int64_t>(tokens.size()) / p.n_ctx;
  const int64_t n_chunks = p.max_chunks < 0 ? available : std::min(p.max_chunks, available);
  const int64_t first = p.n_ctx / 2;  // the first scored position of a window
  const int64_t n_seq = std::max<int64_t>(1, p.n_batch / p.n_ctx);
  const size_t V = model.hparams().n_vocab;

  model::Forward forward(model, pool);
  std::vector<model::ContiguousCache> caches;
  for (int64_t s = 0; s < std::min(n_seq, n_chunks); ++s) caches.emplace_back(model.hparams(), p.n_ctx, p.kv_type);

  PerplexityResult r;
  double nll = 0, nll2 = 0;
  for (int64_t chunk = 0; chunk < n_chunks; chunk += n_seq) {
    const int64_t seqs = std::min(n_seq, n_chunks - chunk);
    std::vector<std::vector<int32_t>> windows(seqs);
    for (int64_t s = 0; s < seqs; ++s) {
      const auto begin = tokens.begin() + (chunk + s) * p.n_ctx;
      windows[s].assign(begin, begin + p.n_ctx);
      if (p.bos >= 0) windows[s][0] = p.bos;
      caches[s].truncate(0);
    }
    // The unscored first half feeds the caches; the second half is run in pieces of at most
    // n_batch tokens per call (kMaxLogitRows while logits are wanted), every window side by side.
    const int64_t piece = std::max<int64_t>(1, p.n_batch / seqs);
    const int64_t scored_piece = std::max<int64_t>(1, std::min(p.n_batch, kMaxLogitRows) / seqs);
    std::vector<double> seq_nll(seqs, 0.0), seq_nll2(seqs, 0.0);
    for (int64_t pos = 0; pos < p.n_ctx;) {
      const int64_t end = pos < first ? std::min(first, pos + piece) : std::min(p.n_ctx, pos + scored_piece);
      const model::Logits wanted = pos < first ? model::Logits::None : model::Logits::All;
      std::vector<model::SequenceInput> batch;
      for (int64_t s = 0; s < seqs; ++s)
        batch.push_back({&caches[s], std::span(windows[s]).subspan(pos, end - pos), wanted});
      const std::span<const float> logits = forward.run(batch);
      if (wanted == model::Logits::All)
        for (int64_t s = 0; s < seqs; ++s)
          for (int64_t i = pos; i < end && i + 1 < p.n_ctx; ++i) {
            const size_t row = static_cast<size_t>(s * (end - pos) + (i - pos));
            const double v = -log_prob(logits.subspan(row * V, V), windows[s][i + 1]);
            seq_nll[s] += v;
            seq_nll2[s] += v * v;
          }
      pos = end;
    }
    // Windows are accounted one after the other, as the reference tool reports them.
    for (int64_t s = 0; s < seqs; ++s) {
      nll += seq_nll[s];
      nll2 += seq_nll2[s];
      r.n_scored += p.n_ctx - 1 - first;
      if (on_chunk) on_chunk(chunk + s + 1, std::exp(nll / static_cast<double>(r.n_scored)));
    }
  }
  r.n_chunks = n_chunks;
  r.mean_nll = nll / static_cast<double>(r.n_scored);
  r.perplexity = std::exp(r.mean_nll);
  const double variance = nll2 / static_cast<double>(r.n_scored) - r.mean_nll * r.mean_nll;
  if (variance > 0 && r.n_scored > 1) r.perplexity_error = std::sqrt(variance / (r.n_scored - 1)) * r.perplexity;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return r;
}

}  // namespace tokenmill::engine
