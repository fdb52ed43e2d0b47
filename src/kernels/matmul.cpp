// The matmul driver: checks the jobs, converts the activations once, cuts the work into blocks
// (a range of weight rows times a tile of tokens) and lets the pool's threads take blocks as
// they free up. Quantized weights go through the per-format integer dot products (dot.h)
// against activations quantized to the paired 8-bit format; float weights are brought to f32 a
// block at a time and multiplied in register tiles.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/block_layouts.h"
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

void bf16_to_f32_scalar(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

bool is_float(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16;
}

// Types with a dot product, found once from the dot table itself.
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

// How a job's products are computed.
enum class Path {
  Dot,    // one dot product (dot.h) per output, against activations in the paired format
  Float,  // float weight rows converted to f32 once per block, times a tile of tokens
  Codes,  // quantized weight rows decoded to 8-bit codes once per block, times a tile of tokens
  Tiles,  // the path's tile kernel for the type (QuantTiles): several rows and tokens per pass
};

// Jobs with this many tokens convert each block of weight rows once for all of them (float rows,
// or 8-bit codes where the path can decode the type): a conversion costs about one dot product,
// so it pays once a few tokens share it. Fewer tokens (decode) take the dot products, which read
// the weights straight from the file's bytes.
constexpr int64_t kBatchMinTokens = 4;
// Weight rows per block of the dot and code paths: few enough to balance the threads, enough to
// amortise taking a block.
constexpr int64_t kBlockRows = 16;
// A decode through the tile kernels takes longer blocks: they read a block as a few runs of
// contiguous rows side by side, and longer runs stream faster (Q4_K GEMV +11% over 16 rows).
constexpr int64_t kDecodeTileRows = 64;
// Bytes of activations a block's token tile may take, so that they stay in L2 while the block's
// weight rows pass over them.
constexpr int64_t kTileBytes = 768 * 1024;

// Rows per block of the float path: as many as keep the block's f32 copy within about a
// quarter of a core's L2 when there are tokens to reuse it for.
int64_t float_rows_per_block(const MatmulJob& job) {
  if (job.n_tokens <= 1) return kBlockRows;
  const int64_t fit = (256 * 1024) / (job.w.n_cols * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(fit / 4 * 4, 4, 64);
}

int64_t padded(int64_t n) { return (n + kCodeChunk - 1) / kCodeChunk * kCodeChunk; }

// A job's activations in the form its path takes: float rows, quantized rows, or code rows.
struct Activations {
  Path path = Path::Float;
  TensorType type = TensorType::F32;  // the dot product's activation type
  uint64_t row_bytes = 0;             // of a quantized row
  const uint8_t* rows = nullptr;      // float or quantized rows
  CodeActivations codes{};
  int64_t tile_bytes = 0;             // per token, for sizing token tiles
};

// Quantized activation rows as codes in the interleaved order (CodeRows), with a scale and a code
// sum per 16 elements.
void to_codes(TensorType type, const uint8_t* row, int64_t n, int8_t* codes, float* d, float* sum) {
  const int64_t n_pad = padded(n);
  thread_local std::vector<int8_t> natural;
  natural.assign(n_pad, 0);
  if (type == TensorType::Q8_0) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(row);
    for (int64_t i = 0; i < n / 32; ++i) {
      std::memcpy(natural.data() + 32 * i, b[i].qs, 32);
      for (int h = 0; h < 2; ++h) {
        int s = 0;
        for (int e = 16 * h; e < 16 * h + 16; ++e) s += b[i].qs[e];
        d[2 * i + h] = f16_to_f32(b[i].d);
        sum[2 * i + h] = d[2 * i + h] * static_cast<float>(s);
      }
    }
  } else {  // Q8_K
    const auto* b = reinterpret_cast<const BlockQ8_K*>(row);
    for (int64_t i = 0; i < n / 256; ++i) {
      std::memcpy(natural.data() + 256 * i, b[i].qs, 256);
      for (int g = 0; g < 16; ++g) {
        d[16 * i + g] = b[i].d;
        sum[16 * i + g] = b[i].d * static_cast<float>(b[i].bsums[g]);
      }
    }
  }
  for (int64_t c = 0; c < n_pad; c += kCodeChunk)
    for (int64_t e = 0; e < kCodeChunk; e += 4) std::memcpy(codes + c + interleaved(e), natural.data() + c + e, 4);
  std::fill(d + n / 16, d + n_pad / 16, 0.0f);
  std::fill(sum + n / 16, sum + n_pad / 16, 0.0f);
}

// Storage for a call's converted activations, kept between calls (one per calling thread), so
// a forward pass allocates once.
struct Scratch {
  std::vector<uint8_t> quantized;
  std::vector<int8_t> codes;
  std::vector<float> floats;  // code scales and sums
};

// Decides each job's path and converts its activations: each input once per format, jobs reading
// the same input (a layer's Q, K and V) sharing the copy.
std::vector<Activations> prepare(ThreadPool& pool, std::span<const MatmulJob> jobs, const MatmulKernels& k,
                                 Isa isa, Scratch& scratch) {
  std::vector<Activations> acts(jobs.size());
  std::vector<size_t> owner(jobs.size());  // the job whose conversion this job uses
  size_t quantized_bytes = 0, code_bytes = 0, code_floats = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    validate(job);
    Activations& a = acts[j];
    a.type = activation_type(job.w.type, isa);
    a.row_bytes = gguf::row_bytes(a.type, job.w.n_cols);
    const bool batch = job.n_tokens >= kBatchMinTokens;
    a.path = batch && is_float(job.w.type)                             ? Path::Float
             : batch && k.decodes_codes && k.decodes_codes(job.w.type) ? Path::Codes
             : k.quant.find(job.w.type)                                ? Path::Tiles
                                                                       : Path::Dot;
    a.tile_bytes = a.path == Path::Codes ? padded(job.w.n_cols) * 3 / 2 : static_cast<int64_t>(a.row_bytes);
    owner[j] = j;
    for (size_t i = 0; i < j; ++i)
      if (jobs[i].x == job.x && acts[i].type == a.type && acts[i].path == a.path && jobs[i].n_tokens == job.n_tokens &&
          jobs[i].w.n_cols == job.w.n_cols) {
        owner[j] = i;
        break;
      }
    if (owner[j] != j || a.type == TensorType::F32) continue;
    quantized_bytes += a.row_bytes * job.n_tokens;
    if (a.path == Path::Codes) {
      code_bytes += padded(job.w.n_cols) * job.n_tokens;
      code_floats += 2 * padded(job.w.n_cols) / 16 * job.n_tokens;
    }
  }
  scratch.quantized.resize(quantized_bytes);
  scratch.codes.resize(code_bytes);
  scratch.floats.resize(code_floats);
  uint8_t* q = scratch.quantized.data();
  int8_t* c = scratch.codes.data();
  float* f = scratch.floats.data();
  std::vector<std::pair<size_t, int64_t>> rows;  // (job, token) rows to convert
  for (size_t j = 0; j < jobs.size(); ++j) {
    Activations& a = acts[j];
    if (a.type == TensorType::F32) {  // float weights read the activations as they are
      a.rows = reinterpret_cast<const uint8_t*>(jobs[j].x);
      continue;
    }
    if (owner[j] != j) continue;
    const int64_t n_tokens = jobs[j].n_tokens, n_pad = padded(jobs[j].w.n_cols);
    a.rows = q;
    q += a.row_bytes * n_tokens;
    if (a.path == Path::Codes) {
      a.codes = {c, f, f + n_pad / 16 * n_tokens, n_pad, n_pad / 16};
      c += n_pad * n_tokens;
      f += 2 * n_pad / 16 * n_tokens;
    }
    for (int64_t t = 0; t < n_tokens; ++t) rows.emplace_back(j, t);
  }
  for (size_t j = 0; j < jobs.size(); ++j)
    if (owner[j] != j) acts[j] = acts[owner[j]];
  pool.parallel_for(static_cast<int64_t>(rows.size()), 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto [j, t] = rows[i];
      const Activations& a = acts[j];
      const int64_t n = jobs[j].w.n_cols;
      uint8_t* row = const_cast<uint8_t*>(a.rows) + t * a.row_bytes;
      quantize_row(a.type, jobs[j].x + t * n, row, n);
      if (a.path == Path::Codes)
        to_codes(a.type, row, n, const_cast<int8_t*>(a.codes.codes) + t * a.codes.n_pad,
                 const_cast<float*>(a.codes.d) + t * a.codes.n_groups, const_cast<float*>(a.codes.sum) + t * a.codes.n_groups);
    }
  });
  return acts;
}

struct Block {
  int32_t job;
  int64_t row_begin, row_end;
  int64_t token_begin, token_end;
};

// Brings rows [begin, end) of float weights to f32 and returns them (ldw = n_cols): in place
// for F32, else converted into `panel`.
const float* rows_as_f32(const WeightMatrix& w, int64_t begin, int64_t end, const MatmulKernels& k,
                         std::vector<float>& panel) {
  if (w.type == TensorType::F32) return reinterpret_cast<const float*>(w.row(begin));
  panel.resize(static_cast<size_t>((end - begin) * w.n_cols));
  for (int64_t r = begin; r < end; ++r) {
    const auto* src = reinterpret_cast<const uint16_t*>(w.row(r));
    float* dst = panel.data() + (r - begin) * w.n_cols;
    (w.type == TensorType::F16 ? k.f16_to_f32 : k.bf16_to_f32)(src, dst, w.n_cols);
  }
  return panel.data();
}

// One block of a job on one thread.
void run_block(const Block& block, const MatmulJob& job, const Activations& a, const Paths& paths) {
  const int64_t n = job.w.n_cols, n_rows = block.row_end - block.row_begin;
  const int64_t n_tokens = block.token_end - block.token_begin;
  float* y = job.y + block.token_begin * job.w.n_rows + block.row_begin;
  switch (a.path) {
    case Path::Float: {
      thread_local std::vector<float> panel;
      const float* w = rows_as_f32(job.w, block.row_begin, block.row_end, paths.kernels, panel);
      paths.kernels.gemm_f32(w, n, n_rows, job.x + block.token_begin * n, n, n_tokens, n, y, job.w.n_rows);
      return;
    }
    case Path::Dot: {
      const DotFn dot = paths.dots.find(job.w.type);
      for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t* w = job.w.row(block.row_begin + r);
        for (int64_t t = 0; t < n_tokens; ++t)
          y[t * job.w.n_rows + r] = dot(w, a.rows + (block.token_begin + t) * a.row_bytes, n);
      }
      return;
    }
    case Path::Tiles:
      paths.kernels.quant.find(job.w.type)(job.w.row(block.row_begin), job.w.row_bytes(), n_rows,
                                           a.rows + block.token_begin * a.row_bytes, a.row_bytes, n_tokens, n, y,
                                           job.w.n_rows);
      return;
    case Path::Codes: {
      thread_local std::vector<uint8_t> codes;
      thread_local std::vector<float> scales;
      const int64_t n_pad = padded(n), n_groups = n_pad / 16;
      codes.resize(n_rows * n_pad);
      scales.resize(2 * n_rows * n_groups);
      const CodeRows w{codes.data(), scales.data(), scales.data() + n_rows * n_groups, n_pad, n_groups};
      for (int64_t r = 0; r < n_rows; ++r)
        paths.kernels.decode_codes(job.w.type, job.w.row(block.row_begin + r), n, codes.data() + r * n_pad,
                                   scales.data() + r * n_groups, scales.data() + (n_rows + r) * n_groups);
      const CodeActivations tile{a.codes.codes + block.token_begin * n_pad, a.codes.d + block.token_begin * n_groups,
                                 a.codes.sum + block.token_begin * n_groups, n_pad, n_groups};
      paths.kernels.gemm_codes(w, n_rows, tile, n_tokens, y, job.w.n_rows);
      return;
    }
  }
}

}  // namespace

constinit const MatmulKernels scalar_matmul_kernels{gemm_f32_scalar, f16_to_f32_scalar, bf16_to_f32_scalar,
                                                   nullptr, nullptr, nullptr, {}};

bool matmul_supports(TensorType type) { return has_dot(type); }

QuantTileFn QuantTiles::find(TensorType weight) const {
  switch (weight) {
    case TensorType::Q8_0: return q8_0;
    case TensorType::Q4_0: return q4_0;
    case TensorType::Q5_0: return q5_0;
    case TensorType::IQ4_NL: return iq4_nl;
    case TensorType::IQ4_XS: return iq4_xs;
    case TensorType::Q2_K: return q2_k;
    case TensorType::Q3_K: return q3_k;
    case TensorType::Q4_K: return q4_k;
    case TensorType::Q5_K: return q5_k;
    case TensorType::Q6_K: return q6_k;
    default: return nullptr;
  }
}

TensorType activation_type(TensorType weight, Isa) { return dot_activation_type(weight); }

void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs, Isa isa) {
  const Paths paths = paths_for(isa);
  thread_local Scratch scratch;
  const std::vector<Activations> acts = prepare(pool, jobs, paths.kernels, isa, scratch);
  std::vector<Block> blocks;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    const int64_t step = acts[j].path == Path::Float                       ? float_rows_per_block(job)
                         : acts[j].path == Path::Tiles && job.n_tokens == 1 ? kDecodeTileRows
                                                                             : kBlockRows;
    const int64_t tile = std::max<int64_t>(4, kTileBytes / acts[j].tile_bytes / 4 * 4);
    for (int64_t t = 0; t < job.n_tokens; t += tile)
      for (int64_t r = 0; r < job.w.n_rows; r += step)
        blocks.push_back({static_cast<int32_t>(j), r, std::min(job.w.n_rows, r + step), t,
                          std::min(job.n_tokens, t + tile)});
  }
  pool.parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) run_block(blocks[b], jobs[blocks[b].job], acts[blocks[b].job], paths);
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
