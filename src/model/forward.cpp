#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "common/error.h"
#include "kernels/attention.h"
#include "kernels/formats.h"
#include "kernels/ops.h"

namespace tokenmill::model {
namespace {

using K = TensorKind;
using kernels::MatmulJob;

void add_in_place(float* y, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += b[i];
}

// The smallest positive normal half: llama.cpp's floor under the sum of the chosen experts'
// weights, kept so a router whose weights underflow gives the same (finite) result.
constexpr float kMinWeightSum = 6.103515625e-5f;

}  // namespace

Forward::Forward(const Model& model, kernels::ThreadPool& pool) : model_(model), pool_(pool) {}

template <class Fn>
void Forward::each_row(int64_t n, Fn&& fn) {
  if (n <= 1) {
    if (n == 1) fn(int64_t{0});
    return;
  }
  pool_.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) fn(t);
  });
}

void Forward::prepare(std::span<const SequenceInput> batch) {
  const HParams& hp = model_.hparams();
  std::set<const SequenceCache*> seen;
  tokens_.clear();
  output_rows_.clear();
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& in = batch[s];
    if (!in.cache) throw Error("forward: sequence " + std::to_string(s) + " has no KV cache");
    if (!seen.insert(in.cache).second) throw Error("forward: a KV cache appears twice in one batch");
    in.cache->reserve(static_cast<int64_t>(in.tokens.size()));
    for (size_t i = 0; i < in.tokens.size(); ++i) {
      const int32_t id = in.tokens[i];
      if (id < 0 || static_cast<uint32_t>(id) >= hp.n_vocab)
        throw Error("forward: token id " + std::to_string(id) + " is outside the vocabulary of " +
                    std::to_string(hp.n_vocab));
      const bool wanted = in.logits == Logits::All || (in.logits == Logits::Last && i + 1 == in.tokens.size());
      if (wanted) output_rows_.push_back(static_cast<int64_t>(tokens_.size()));
      tokens_.push_back({id, static_cast<int32_t>(s), in.cache->size() + static_cast<int64_t>(i)});
    }
  }
  const auto n = static_cast<size_t>(tokens_.size());
  const size_t ff = std::max<size_t>(hp.n_ff, size_t{hp.n_ff_exp} * hp.n_expert_shared);
  x_.resize(n * hp.n_embd);
  h_.resize(n * hp.n_embd);
  o_.resize(n * hp.n_embd);
  ff_out_.resize(n * hp.n_embd);
  q_.resize(n * hp.q_dim());
  att_.resize(n * hp.q_dim());
  k_.resize(n * hp.kv_dim());
  v_.resize(n * hp.kv_dim());
  ff_a_.resize(n * 2 * ff);  // room for a fused gate/up output
  ff_b_.resize(n * ff);
  rope_cos_.resize(n * hp.n_rot);
  rope_sin_.resize(n * hp.n_rot);
}

std::span<const float> Forward::run(std::span<const SequenceInput> batch) {
  prepare(batch);
  const HParams& hp = model_.hparams();
  const int64_t n = static_cast<int64_t>(tokens_.size());
  const int64_t E = hp.n_embd;

  const kernels::WeightMatrix embd = model_.global(K::TokenEmbd).matrix();
  each_row(n, [&](int64_t t) {
    kernels::dequantize_row(embd.type, embd.row(tokens_[t].id), x_.data() + t * E, E);
    kernels::rope_rotation(model_.rope(), tokens_[t].pos, rope_cos_.data() + t * hp.n_rot,
                           rope_sin_.data() + t * hp.n_rot);
  });

  int64_t n_rows = n;
  for (uint32_t layer = 0; layer < hp.n_layer(); ++layer) {
    attention_block(static_cast<int>(layer), batch);
    // Only the rows whose logits are wanted matter after the last attention.
    if (layer + 1 == hp.n_layer()) n_rows = keep_output_rows();
    ffn_block(static_cast<int>(layer), n_rows);
  }
  for (const SequenceInput& in : batch) in.cache->commit(static_cast<int64_t>(in.tokens.size()));

  const kernels::OpTable& k = kernels::ops();
  const float* norm = model_.global(K::OutputNorm).data();
  each_row(n_rows, [&](int64_t t) { k.rms_norm(x_.data() + t * E, norm, h_.data() + t * E, E, hp.rms_eps); });
  logits_.resize(static_cast<size_t>(n_rows) * hp.n_vocab);
  kernels::matmul(pool_, model_.output().matrix(), h_.data(), logits_.data(), n_rows);
  return logits_;
}

int64_t Forward::keep_output_rows() {
  const int64_t E = model_.hparams().n_embd;
  for (size_t i = 0; i < output_rows_.size(); ++i)
    if (output_rows_[i] != static_cast<int64_t>(i))
      std::copy_n(x_.begin() + output_rows_[i] * E, E, x_.begin() + static_cast<int64_t>(i) * E);
  return static_cast<int64_t>(output_rows_.size());
}

void Forward::attention_block(int layer, std::span<const SequenceInput> batch) {
  const HParams& hp = model_.hparams();
  const kernels::OpTable& k = kernels::ops();
  const int64_t n = static_cast<int64_t>(tokens_.size());
  const int64_t E = hp.n_embd, QD = hp.q_dim(), KVD = hp.kv_dim(), hd = hp.head_dim;
  auto w = [&](K kind) -> const Weight& { return model_.block(layer, kind); };

  each_row(n, [&](int64_t t) {
    k.rms_norm(x_.data() + t * E, w(K::AttnNorm).data(), h_.data() + t * E, E, hp.rms_eps);
  });
  const Weight& fused = w(K::AttnQkv);
  if (fused) {
    // One matrix of QD + 2*KVD rows: queries, then keys, then values.
    qkv_.resize(static_cast<size_t>(n) * hp.qkv_dim());
    kernels::matmul(pool_, fused.matrix(), h_.data(), qkv_.data(), n);
  } else {
    const MatmulJob qkv[] = {{w(K::AttnQ).matrix(), h_.data(), q_.data(), n},
                             {w(K::AttnK).matrix(), h_.data(), k_.data(), n},
                             {w(K::AttnV).matrix(), h_.data(), v_.data(), n}};
    kernels::matmul(pool_, qkv);
  }

  const float* qkv_bias = w(K::AttnQkvBias).data();
  const float *q_bias = w(K::AttnQBias).data(), *k_bias = w(K::AttnKBias).data(), *v_bias = w(K::AttnVBias).data();
  const float *q_norm = w(K::AttnQNorm).data(), *k_norm = w(K::AttnKNorm).data();
  const kernels::RopeConfig& rope = model_.rope();
  each_row(n, [&](int64_t t) {
    float* q = q_.data() + t * QD;
    float* kr = k_.data() + t * KVD;
    float* v = v_.data() + t * KVD;
    if (fused) {
      // Split the fused row so everything below (and attention) sees separate q, k and v.
      float* row = qkv_.data() + t * (QD + 2 * KVD);
      if (qkv_bias) add_in_place(row, qkv_bias, QD + 2 * KVD);
      std::copy_n(row, QD, q);
      std::copy_n(row + QD, KVD, kr);
      std::copy_n(row + QD + KVD, KVD, v);
    }
    if (q_bias) add_in_place(q, q_bias, QD);
    if (k_bias) add_in_place(kr, k_bias, KVD);
    if (v_bias) add_in_place(v, v_bias, KVD);
    if (q_norm)
      for (int64_t h = 0; h < hp.n_head; ++h) k.rms_norm(q + h * hd, q_norm, q + h * hd, hd, hp.rms_eps);
    if (k_norm)
      for (int64_t h = 0; h < hp.n_head_kv; ++h) k.rms_norm(kr + h * hd, k_norm, kr + h * hd, hd, hp.rms_eps);
    const float* cos = rope_cos_.data() + t * hp.n_rot;
    const float* sin = rope_sin_.data() + t * hp.n_rot;
    k.rope(q, hp.n_head, hd, rope.mode, rope.n_rot, cos, sin);
    k.rope(kr, hp.n_head_kv, hd, rope.mode, rope.n_rot, cos, sin);
    SequenceCache& cache = *batch[tokens_[t].seq].cache;
    kernels::quantize_row(cache.type(), kr, cache.key_row(layer, tokens_[t].pos), KVD);
    kernels::quantize_row(cache.type(), v, cache.value_row(layer, tokens_[t].pos), KVD);
  });

  // Every sequence attends over its own cache; all of them in one pass over the pool.
  std::vector<kernels::AttentionArgs> calls;
  int64_t first = 0;
  for (const SequenceInput& in : batch) {
    const auto count = static_cast<int64_t>(in.tokens.size());
    kernels::AttentionArgs args;
    args.n_head = static_cast<int>(hp.n_head);
    args.n_head_kv = static_cast<int>(hp.n_head_kv);
    args.head_dim = static_cast<int>(hd);
    args.scale = model_.attention_scale();
    args.q = q_.data() + first * QD;
    args.out = att_.data() + first * QD;
    args.n_tokens = count;
    args.first_pos = in.cache->size();
    args.k = in.cache->keys(layer);
    args.v = in.cache->values(layer);
    calls.push_back(args);
    first += count;
  }
  kernels::attention(pool_, calls);

  kernels::matmul(pool_, w(K::AttnOut).matrix(), att_.data(), o_.data(), n);
  const float* post_norm = w(K::AttnPostNorm).data();
  each_row(n, [&](int64_t t) {
    float* o = o_.data() + t * E;
    if (post_norm) k.rms_norm(o, post_norm, o, E, hp.rms_eps);
    add_in_place(x_.data() + t * E, o, E);
  });
}

void Forward::ffn_block(int layer, int64_t n_rows) {
  const HParams& hp = model_.hparams();
  const kernels::OpTable& k = kernels::ops();
  const int64_t E = hp.n_embd;
  // GLM-4.5 files name the pre-FFN norm post_attention_norm; it plays the same part.
  const Weight& norm_w = model_.block(layer, K::FfnNorm);
  const float* norm = norm_w ? norm_w.data() : model_.block(layer, K::FfnNormPostAttn).data();
  each_row(n_rows, [&](int64_t t) { k.rms_norm(x_.data() + t * E, norm, h_.data() + t * E, E, hp.rms_eps); });

  if (hp.is_moe_block(static_cast<uint32_t>(layer))) {
    moe_ffn(layer, n_rows);
  } else {
    dense_ffn(layer, n_rows);
  }

  const float* post_norm = model_.block(layer, K::FfnPostNorm).data();
  each_row(n_rows, [&](int64_t t) {
    float* f = ff_out_.data() + t * E;
    if (post_norm) k.rms_norm(f, post_norm, f, E, hp.rms_eps);
    add_in_place(x_.data() + t * E, f, E);
  });
}

void Forward::dense_ffn(int layer, int64_t n_rows) {
  const HParams& hp = model_.hparams();
  const kernels::OpTable& k = kernels::ops();
  const int64_t FF = hp.n_ff;
  auto w = [&](K kind) -> const Weight& { return model_.block(layer, kind); };
  float* act = ff_a_.data();  // silu(gate) * up, [n_rows][FF]
  if (const Weight& gate_up = w(K::FfnGateUp)) {
    // One matrix of 2*FF rows: the gate's outputs, then the up projection's.
    kernels::matmul(pool_, gate_up.matrix(), h_.data(), ff_a_.data(), n_rows);
    act = ff_b_.data();
    each_row(n_rows, [&](int64_t t) {
      const float* gu = ff_a_.data() + t * 2 * FF;
      k.swiglu(gu, gu + FF, act + t * FF, FF);
    });
  } else {
    const MatmulJob jobs[] = {{w(K::FfnGate).matrix(), h_.data(), ff_a_.data(), n_rows},
                              {w(K::FfnUp).matrix(), h_.data(), ff_b_.data(), n_rows}};
    kernels::matmul(pool_, jobs);
    each_row(n_rows, [&](int64_t t) { k.swiglu(act + t * FF, ff_b_.data() + t * FF, act + t * FF, FF); });
  }
  kernels::matmul(pool_, w(K::FfnDown).matrix(), act, ff_out_.data(), n_rows);
}

void Forward::moe_ffn(int layer, int64_t n_rows) {
  const HParams& hp = model_.hparams();
  const kernels::OpTable& k = kernels::ops();
  const Routing& routing = model_.routing();
  const int64_t E = hp.n_embd, n_expert = hp.n_expert, top = hp.n_expert_used, FFE = hp.n_ff_exp;
  auto w = [&](K kind) -> const Weight& { return model_.block(layer, kind); };

  // Route: every token picks its top experts and their weights.
  router_.resize(n_rows * n_expert);
  moe_experts_.resize(n_rows * top);
  moe_weights_.resize(n_rows * top);
  kernels::matmul(pool_, w(K::FfnGateInp).matrix(), h_.data(), router_.data(), n_rows);
  const float* selection_bias = w(K::ExpProbsBias).data();
  each_row(n_rows, [&](int64_t t) {
    float* p = router_.data() + t * n_expert;
    if (routing.gating == Routing::Gating::Softmax) {
      k.softmax(p, p, n_expert);
    } else {
      for (int64_t e = 0; e < n_expert; ++e) p[e] = 1.0f / (1.0f + std::exp(-p[e]));
    }
    int32_t* chosen = moe_experts_.data() + t * top;
    if (selection_bias) {
      // The bias steers which experts are chosen; their weights stay the unbiased scores.
      thread_local std::vector<float> biased;
      biased.resize(n_expert);
      for (int64_t e = 0; e < n_expert; ++e) biased[e] = p[e] + selection_bias[e];
      kernels::top_k(biased.data(), n_expert, top, chosen);
    } else {
      kernels::top_k(p, n_expert, top, chosen);
    }
    float* weights = moe_weights_.data() + t * top;
    float sum = 0.0f;
    for (int64_t j = 0; j < top; ++j) sum += weights[j] = p[chosen[j]];
    const float factor = (routing.normalize ? 1.0f / std::max(sum, kMinWeightSum) : 1.0f) * routing.scale;
    for (int64_t j = 0; j < top; ++j) weights[j] *= factor;
  });

  // Gather each expert's tokens into consecutive rows, so each expert runs once over exactly
  // the tokens routed to it.
  std::vector<int64_t> first_row(n_expert + 1, 0);
  for (int32_t e : moe_experts_) ++first_row[e + 1];
  for (int64_t e = 0; e < n_expert; ++e) first_row[e + 1] += first_row[e];
  std::vector<int64_t> next = first_row;
  moe_row_of_.resize(n_rows * top);
  const int64_t n_routed = n_rows * top;
  moe_in_.resize(n_routed * E);
  moe_gate_.resize(n_routed * FFE);
  moe_up_.resize(n_routed * FFE);
  moe_out_.resize(n_routed * E);
  for (int64_t i = 0; i < n_routed; ++i) {
    const int64_t row = next[moe_experts_[i]]++;
    moe_row_of_[i] = static_cast<int32_t>(row);
    std::copy_n(h_.begin() + (i / top) * E, E, moe_in_.begin() + row * E);
  }

  const Weight& shared_gate = w(K::FfnGateShexp);
  const int64_t FFS = shared_gate ? shared_gate.info->shape[1] : 0;
  std::vector<MatmulJob> jobs;
  auto expert_jobs = [&](K kind, const float* in, int64_t in_width, float* out, int64_t out_width) {
    for (int64_t e = 0; e < n_expert; ++e)
      if (const int64_t count = first_row[e + 1] - first_row[e])
        jobs.push_back({w(kind).slice(e), in + first_row[e] * in_width, out + first_row[e] * out_width, count});
  };
  expert_jobs(K::FfnGateExps, moe_in_.data(), E, moe_gate_.data(), FFE);
  expert_jobs(K::FfnUpExps, moe_in_.data(), E, moe_up_.data(), FFE);
  if (shared_gate) {
    jobs.push_back({shared_gate.matrix(), h_.data(), ff_a_.data(), n_rows});
    jobs.push_back({w(K::FfnUpShexp).matrix(), h_.data(), ff_b_.data(), n_rows});
  }
  kernels::matmul(pool_, jobs);
  each_row(n_routed, [&](int64_t r) {
    k.swiglu(moe_gate_.data() + r * FFE, moe_up_.data() + r * FFE, moe_gate_.data() + r * FFE, FFE);
  });
  if (shared_gate)
    each_row(n_rows, [&](int64_t t) {
      k.swiglu(ff_a_.data() + t * FFS, ff_b_.data() + t * FFS, ff_a_.data() + t * FFS, FFS);
    });

  jobs.clear();
  expert_jobs(K::FfnDownExps, moe_gate_.data(), FFE, moe_out_.data(), E);
  if (shared_gate) jobs.push_back({w(K::FfnDownShexp).matrix(), ff_a_.data(), ff_out_.data(), n_rows});
  kernels::matmul(pool_, jobs);

  each_row(n_rows, [&](int64_t t) {
    float* out = ff_out_.data() + t * E;
    if (!shared_gate) std::fill(out, out + E, 0.0f);
    for (int64_t j = 0; j < top; ++j) {
      const float weight = moe_weights_[t * top + j];
      const float* expert_out = moe_out_.data() + static_cast<int64_t>(moe_row_of_[t * top + j]) * E;
      for (int64_t i = 0; i < E; ++i) out[i] += weight * expert_out[i];
    }
  });
}

}  // namespace tokenmill::model
