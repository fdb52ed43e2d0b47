// The matmul driver: checks the jobs, converts the activations once, cuts the work into blocks
// (a range of weight rows times a tile of tokens) and lets the pool's threads take blocks as
// they free up. Quantized weights go through the per-format integer dot products (dot.h)
// against activations quantized to the paired 8-bit format; float weights are brought to f32 a
// block at a time and multiplied in register tiles.
#include "kernels/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/dot.h"
#include "kernels/formats.h"
#include "kernels/half.h"
#include "kernels/matmul_kernels.h"
#include "kernels/thread_pool.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

void gemm_f32_scalar(const float* w, int64_t ldw, int64_t n_rows, const float* x, int64_t ldx,
                     int64_t n_tokens, int64_t n, float* y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_rows; ++r) {
      float sum = 0.0f;
      for (int64_t c = 0; c < n; ++c) sum += w[r * ldw + c] * x[t * ldx + c];
      y[t * ldy + r] = sum;
    }
}

void f16_to_f32_scalar(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

bool is_float(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16;
}

// Quantized types with an integer dot product, found once from the dot table itself.
bool has_dot(TensorType type) {
  static const std::vector<bool> known = [] {
    std::vector<bool> v;
    for (uint32_t id = 0; id < 64; ++id) {
      bool ok = false;
      if (gguf::tensor_type_info(id)) try {
          dot_activation_type(static_cast<TensorType>(id));
          ok = true;
        } catch (const Error&) {
        }
      v.push_back(ok);
    }
    return v;
  }();
  const auto id = static_cast<uint32_t>(type);
  return id < known.size() && known[id];
}

struct Paths {
  const MatmulKernels& kernels;
  const DotTable& dots;
};

Paths paths_for(Isa isa) {
  if (!isa_supported(isa, cpu_features()))
    throw Error("kernel path " + std::string(isa_name(isa)) + " is not supported by this CPU");
  switch (isa) {
    case Isa::scalar: return {scalar_matmul_kernels, dot_table(isa)};
    case Isa::avx2: return {avx2_matmul_kernels, dot_table(isa)};
    case Isa::avx512: return {avx512_matmul_kernels, dot_table(isa)};
  }
  throw Error("unknown kernel path");
}

void validate(const MatmulJob& job) {
  const WeightMatrix& w = job.w;
  const auto type_name = std::string(gguf::tensor_type_name(w.type));
  if (!matmul_supports(w.type)) throw Error("matmul: weights of type " + type_name + " are not supported");
  if (w.n_rows <= 0 || w.n_cols <= 0 || job.n_tokens < 0)
    throw Error("matmul: the matrix must have rows and columns, and the token count must not be negative");
  if (w.n_cols % gguf::tensor_type_info(w.type).block_elements != 0)
    throw Error("matmul: rows of " + std::to_string(w.n_cols) + " " + type_name +
                " values are not a whole number of blocks");
  if (job.n_tokens > 0 && (!w.data || !job.x || !job.y)) throw Error("matmul: null weights, input or output");
}

// Bytes of activations a block's token tile may take: they stay in L2 while the block's weight
// rows pass over them.
constexpr int64_t kTileBytes = 512 * 1024;

// Weight rows per block: for float weights, as many as keep the block's f32 copy within about a
// quarter of a core's L2 when there are tokens to reuse it for; otherwise 16, small enough to
// balance the threads and large enough to amortise taking a block.
int64_t rows_per_block(const MatmulJob& job) {
  if (job.n_tokens <= 1 || !is_float(job.w.type)) return 16;
  const int64_t fit = (256 * 1024) / (job.w.n_cols * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(fit / 4 * 4, 4, 64);
}

struct Block {
  int32_t job;
  int64_t row_begin, row_end;
  int64_t token_begin, token_end;
};

// A job's activations in the format its dot product takes.
struct Activations {
  TensorType type;
  const uint8_t* data;
  uint64_t row_bytes;
};

// Brings rows [begin, end) of w to f32 and returns them (ldw = n_cols): in place for F32, else
// converted into `panel`.
const float* rows_as_f32(const WeightMatrix& w, int64_t begin, int64_t end, const MatmulKernels& k,
                         std::vector<float>& panel) {
  if (w.type == TensorType::F32) return reinterpret_cast<const float*>(w.row(begin));
  panel.resize(static_cast<size_t>((end - begin) * w.n_cols));
  for (int64_t r = begin; r < end; ++r) {
    float* dst = panel.data() + (r - begin) * w.n_cols;
    if (w.type == TensorType::F16) {
      k.f16_to_f32(reinterpret_cast<const uint16_t*>(w.row(r)), dst, w.n_cols);
    } else {
      dequantize_row(w.type, w.row(r), dst, w.n_cols);
    }
  }
  return panel.data();
}

}  // namespace

constinit const MatmulKernels scalar_matmul_kernels{gemm_f32_scalar, f16_to_f32_scalar};

bool matmul_supports(TensorType type) { return is_float(type) || has_dot(type); }

TensorType activation_type(TensorType weight, Isa) {
  return is_float(weight) ? TensorType::F32 : dot_activation_type(weight);
}

void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs, Isa isa) {
  const Paths paths = paths_for(isa);
  // Quantize each job's activations once; kept between calls, so a forward pass allocates once.
  thread_local std::vector<uint8_t> quantized;
  std::vector<Activations> acts(jobs.size());
  size_t total = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    validate(jobs[j]);
    const TensorType type = activation_type(jobs[j].w.type, isa);
    acts[j] = {type, nullptr, gguf::row_bytes(type, jobs[j].w.n_cols)};
    if (type != TensorType::F32) total += acts[j].row_bytes * jobs[j].n_tokens;
  }
  quantized.resize(total);
  std::vector<std::pair<size_t, int64_t>> rows_to_quantize;  // (job, token)
  size_t offset = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (acts[j].type == TensorType::F32) {
      acts[j].data = reinterpret_cast<const uint8_t*>(jobs[j].x);
      continue;
    }
    // Jobs reading the same input in the same format (a layer's Q, K and V) share one copy.
    size_t same = 0;
    while (same < j && !(jobs[same].x == jobs[j].x && acts[same].type == acts[j].type &&
                         jobs[same].n_tokens == jobs[j].n_tokens && jobs[same].w.n_cols == jobs[j].w.n_cols))
      ++same;
    if (same < j) {
      acts[j].data = acts[same].data;
      continue;
    }
    acts[j].data = quantized.data() + offset;
    offset += acts[j].row_bytes * jobs[j].n_tokens;
    for (int64_t t = 0; t < jobs[j].n_tokens; ++t) rows_to_quantize.emplace_back(j, t);
  }
  pool.parallel_for(static_cast<int64_t>(rows_to_quantize.size()), 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto [j, t] = rows_to_quantize[i];
      const int64_t n = jobs[j].w.n_cols;
      quantize_row(acts[j].type, jobs[j].x + t * n, const_cast<uint8_t*>(acts[j].data) + t * acts[j].row_bytes, n);
    }
  });

  std::vector<Block> blocks;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    const int64_t step = rows_per_block(job);
    const int64_t tile = std::max<int64_t>(1, kTileBytes / static_cast<int64_t>(acts[j].row_bytes));
    for (int64_t t = 0; t < job.n_tokens; t += tile)
      for (int64_t r = 0; r < job.w.n_rows; r += step)
        blocks.push_back({static_cast<int32_t>(j), r, std::min(job.w.n_rows, r + step), t,
                          std::min(job.n_tokens, t + tile)});
  }
  pool.parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> panel;
    for (int64_t b = begin; b < end; ++b) {
      const Block& block = blocks[b];
      const MatmulJob& job = jobs[block.job];
      const Activations& a = acts[block.job];
      const int64_t n = job.w.n_cols;
      float* y = job.y + block.token_begin * job.w.n_rows;
      if (a.type == TensorType::F32) {
        const float* w = rows_as_f32(job.w, block.row_begin, block.row_end, paths.kernels, panel);
        paths.kernels.gemm_f32(w, n, block.row_end - block.row_begin, job.x + block.token_begin * n, n,
                               block.token_end - block.token_begin, n, y + block.row_begin, job.w.n_rows);
        continue;
      }
      const DotFn dot = paths.dots.find(job.w.type);
      for (int64_t r = block.row_begin; r < block.row_end; ++r) {
        const uint8_t* w = job.w.row(r);
        for (int64_t t = block.token_begin; t < block.token_end; ++t)
          job.y[t * job.w.n_rows + r] = dot(w, a.data + t * a.row_bytes, n);
      }
    }
  });
}

void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs) { matmul(pool, jobs, active_isa()); }

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, float* y, int64_t n_tokens) {
  const MatmulJob job{w, x, y, n_tokens};
  matmul(pool, std::span<const MatmulJob>(&job, 1));
}

void matmul_reference(const WeightMatrix& w, const float* x, float* y, int64_t n_tokens, Isa isa) {
  validate(MatmulJob{w, x, y, n_tokens});
  // The activations exactly as the isa path multiplies them.
  const TensorType act = activation_type(w.type, isa);
  std::vector<float> xs(x, x + n_tokens * w.n_cols);
  if (act != TensorType::F32) {
    std::vector<uint8_t> q(gguf::row_bytes(act, w.n_cols));
    for (int64_t t = 0; t < n_tokens; ++t) {
      quantize_row(act, x + t * w.n_cols, q.data(), w.n_cols);
      dequantize_row(act, q.data(), xs.data() + t * w.n_cols, w.n_cols);
    }
  }
  std::vector<float> row(w.n_cols);
  for (int64_t r = 0; r < w.n_rows; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.n_cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < w.n_cols; ++c) sum += static_cast<double>(row[c]) * xs[t * w.n_cols + c];
      y[t * w.n_rows + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace tokenmill::kernels
