// The matmul driver: checks the jobs, cuts them into blocks of weight rows, and lets the pool's
// threads take blocks as they free up. A block's rows are brought to f32 once (dequantized, or
// read in place for F32 weights) and multiplied with every token in register tiles, so prefill
// pays the conversion once per row, not once per token.
#include "kernels/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
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

const MatmulKernels& kernels_for(Isa isa) {
  if (!isa_supported(isa, cpu_features()))
    throw Error("kernel path " + std::string(isa_name(isa)) + " is not supported by this CPU");
  switch (isa) {
    case Isa::scalar: return scalar_matmul_kernels;
    case Isa::avx2: return avx2_matmul_kernels;
    case Isa::avx512: return avx512_matmul_kernels;
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

// Weight rows per block: as many as keep the block's f32 copy within about half of a core's L2
// when there are tokens to reuse it for, and a small block for one token, where each row is
// used once and small blocks balance the threads best.
int64_t rows_per_block(const MatmulJob& job) {
  if (job.n_tokens <= 1) return 16;
  const int64_t fit = (256 * 1024) / (job.w.n_cols * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(fit / 4 * 4, 4, 64);
}

struct Block {
  int32_t job;
  int64_t row_begin;
  int64_t row_end;
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

bool matmul_supports(TensorType type) { return can_dequantize(type); }

TensorType activation_type(TensorType, Isa) { return TensorType::F32; }

void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs, Isa isa) {
  const MatmulKernels& k = kernels_for(isa);
  std::vector<Block> blocks;
  for (size_t j = 0; j < jobs.size(); ++j) {
    validate(jobs[j]);
    if (jobs[j].n_tokens == 0) continue;
    const int64_t step = rows_per_block(jobs[j]);
    for (int64_t r = 0; r < jobs[j].w.n_rows; r += step)
      blocks.push_back({static_cast<int32_t>(j), r, std::min(jobs[j].w.n_rows, r + step)});
  }
  pool.parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> panel;
    for (int64_t b = begin; b < end; ++b) {
      const Block& block = blocks[b];
      const MatmulJob& job = jobs[block.job];
      const float* w = rows_as_f32(job.w, block.row_begin, block.row_end, k, panel);
      k.gemm_f32(w, job.w.n_cols, block.row_end - block.row_begin, job.x, job.w.n_cols, job.n_tokens,
                 job.w.n_cols, job.y + block.row_begin, job.w.n_rows);
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
