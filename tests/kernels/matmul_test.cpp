// matmul against its scalar reference: every ISA path, every weight type it supports, shapes
// with edge tiles (row and token counts that are not multiples of the register tiles, columns
// that are not multiples of the vector width), one and several jobs per call.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "format_test_util.h"
#include "kernels/formats.h"
#include "kernels/thread_pool.h"
#include "test_util.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;
using testing::all_near;
using testing::random_normal;

// A random matrix stored in `type`.
struct StoredMatrix {
  std::vector<uint8_t> bytes;
  WeightMatrix view;

  StoredMatrix(Rng& rng, TensorType type, int64_t n_rows, int64_t n_cols) {
    const uint64_t row_bytes = gguf::row_bytes(type, n_cols);
    bytes.resize(row_bytes * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) {
      const std::vector<float> values = random_normal(rng, n_cols, 0.5f);
      quantize_row(type, values.data(), bytes.data() + r * row_bytes, n_cols);
    }
    view = WeightMatrix{type, bytes.data(), n_rows, n_cols};
  }
};

struct Shape {
  int64_t rows, cols, tokens;
};

class MatmulTest : public ::testing::TestWithParam<Isa> {};

// Sums of n products of unit-scale values: float accumulation in another order differs from
// the double reference by a few ulps of the running sum.
::testing::AssertionResult close_to_reference(const std::vector<float>& y, const std::vector<float>& ref,
                                               int64_t n_cols) {
  return all_near(y, ref, 2e-5 * std::sqrt(static_cast<double>(n_cols)), 1e-4);
}

TEST_P(MatmulTest, MatchesReferenceForEveryTypeAndShape) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  Rng rng(7);
  const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                              TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                              TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                              TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};
  for (TensorType type : types) {
    ASSERT_TRUE(matmul_supports(type)) << gguf::tensor_type_name(type);
    const int64_t block = gguf::tensor_type_info(type).block_elements;
    const Shape shapes[] = {{1, block, 1},      {3, block, 2},      {17, 2 * block, 5},
                            {64, 3 * block, 1}, {33, 4 * block, 9}, {70, 2 * block, 13}};
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(gguf::tensor_type_name(type)) + " rows " + std::to_string(s.rows) + " cols " +
                   std::to_string(s.cols) + " tokens " + std::to_string(s.tokens));
      const StoredMatrix w(rng, type, s.rows, s.cols);
      const std::vector<float> x = random_normal(rng, s.tokens * s.cols);
      std::vector<float> y(s.tokens * s.rows, NAN), ref(s.tokens * s.rows);
      matmul_reference(w.view, x.data(), ref.data(), s.tokens, isa);
      const MatmulJob job{w.view, x.data(), y.data(), s.tokens};
      matmul(pool, std::span<const MatmulJob>(&job, 1), isa);
      EXPECT_TRUE(close_to_reference(y, ref, s.cols));
    }
  }
}

// Columns that are not a multiple of any vector width (F32 rows can be any length).
TEST_P(MatmulTest, OddColumnCounts) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  Rng rng(11);
  for (int64_t cols : {1, 5, 15, 17, 31, 33, 100}) {
    const StoredMatrix w(rng, TensorType::F32, 9, cols);
    const std::vector<float> x = random_normal(rng, 6 * cols);
    std::vector<float> y(6 * 9), ref(6 * 9);
    matmul_reference(w.view, x.data(), ref.data(), 6, isa);
    const MatmulJob job{w.view, x.data(), y.data(), 6};
    matmul(pool, std::span<const MatmulJob>(&job, 1), isa);
    EXPECT_TRUE(close_to_reference(y, ref, cols)) << "cols " << cols;
  }
}

// Several jobs in one call, different types and token counts, each written to its own output.
TEST_P(MatmulTest, BatchOfJobs) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  Rng rng(3);
  const StoredMatrix a(rng, TensorType::Q8_0, 40, 64), b(rng, TensorType::Q4_K, 24, 256),
      c(rng, TensorType::F16, 8, 64);
  const std::vector<float> xa = random_normal(rng, 3 * 64), xb = random_normal(rng, 1 * 256),
                           xc = random_normal(rng, 0);
  std::vector<float> ya(3 * 40), yb(24), ra(3 * 40), rb(24);
  const MatmulJob jobs[] = {{a.view, xa.data(), ya.data(), 3}, {b.view, xb.data(), yb.data(), 1},
                            {c.view, xc.data(), nullptr, 0}};
  matmul(pool, jobs, isa);
  matmul_reference(a.view, xa.data(), ra.data(), 3, isa);
  matmul_reference(b.view, xb.data(), rb.data(), 1, isa);
  EXPECT_TRUE(close_to_reference(ya, ra, 64));
  EXPECT_TRUE(close_to_reference(yb, rb, 256));
}

// Jobs reading one input (a layer's Q, K and V) in the same and in different activation formats.
TEST_P(MatmulTest, JobsSharingAnInput) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  Rng rng(13);
  const StoredMatrix q(rng, TensorType::Q4_K, 32, 256), k(rng, TensorType::Q6_K, 16, 256),
      v(rng, TensorType::Q8_0, 16, 256), o(rng, TensorType::F16, 8, 256);
  const std::vector<float> x = random_normal(rng, 5 * 256);
  std::vector<float> yq(5 * 32), yk(5 * 16), yv(5 * 16), yo(5 * 8);
  const MatmulJob jobs[] = {{q.view, x.data(), yq.data(), 5},
                            {k.view, x.data(), yk.data(), 5},
                            {v.view, x.data(), yv.data(), 5},
                            {o.view, x.data(), yo.data(), 5}};
  matmul(pool, jobs, isa);
  for (const auto& [m, y] : {std::pair{&q, &yq}, {&k, &yk}, {&v, &yv}, {&o, &yo}}) {
    std::vector<float> ref(y->size());
    matmul_reference(m->view, x.data(), ref.data(), 5, isa);
    EXPECT_TRUE(close_to_reference(*y, ref, 256)) << gguf::tensor_type_name(m->view.type);
  }
}

// A batch of tokens (the prompt path, which decodes weights to 8-bit codes once per block on
// some ISAs) gives what the tokens give one at a time (the decode path's dot products).
TEST_P(MatmulTest, BatchedTokensMatchOneAtATime) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  Rng rng(19);
  for (TensorType type : {TensorType::Q4_K, TensorType::Q6_K, TensorType::Q8_0, TensorType::Q5_K, TensorType::Q4_0}) {
    const int64_t rows = 23, cols = 768, n = 11;
    const StoredMatrix w(rng, type, rows, cols);
    const std::vector<float> x = random_normal(rng, n * cols);
    std::vector<float> batched(n * rows), single(n * rows);
    const MatmulJob all{w.view, x.data(), batched.data(), n};
    matmul(pool, std::span(&all, 1), isa);
    for (int64_t t = 0; t < n; ++t) {
      const MatmulJob one{w.view, x.data() + t * cols, single.data() + t * rows, 1};
      matmul(pool, std::span(&one, 1), isa);
    }
    EXPECT_TRUE(close_to_reference(batched, single, cols)) << gguf::tensor_type_name(type);
  }
}

// Every register-tile shape and edge of the tile kernels (matmul_vnni.h: 4 runs of rows for one
// token, up to 4 x 8 rows x tokens for more) on weights of random bytes, so every code and scale pattern meets them,
// with an odd number of Q8_0 blocks (a half step) and rows long enough for the prefetches to run
// past the end of the matrix.
TEST_P(MatmulTest, TileShapesOnRandomBlocks) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  for (TensorType type : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q5_0, TensorType::IQ4_NL, TensorType::Q2_K,
                          TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_XS}) {
    const int64_t block = gguf::tensor_type_info(type).block_elements;
    for (int64_t cols : {block, 3 * block, 4096 / block * block + (block == 32 ? 32 : 0)})
      for (int64_t rows : {1, 2, 3, 4, 5, 7, 9, 23, 70})
        for (int64_t tokens : {1, 2, 3, 4, 5, 8, 9, 17}) {
          SCOPED_TRACE(std::string(gguf::tensor_type_name(type)) + " rows " + std::to_string(rows) + " cols " +
                       std::to_string(cols) + " tokens " + std::to_string(tokens));
          const std::vector<uint8_t> bytes = testing::random_blocks(type, rows * cols, rows * 1000 + tokens);
          const WeightMatrix w{type, bytes.data(), rows, cols};
          Rng rng(tokens);
          const std::vector<float> x = random_normal(rng, tokens * cols);
          std::vector<float> y(tokens * rows, NAN), ref(tokens * rows);
          matmul_reference(w, x.data(), ref.data(), tokens, isa);
          const MatmulJob job{w, x.data(), y.data(), tokens};
          matmul(pool, std::span(&job, 1), isa);
          // Random scales make large, cancelling sums: the rounding allowed scales with sum |w x|.
          const std::vector<float> wf = testing::dequantize(type, bytes, rows * cols);
          for (int64_t t = 0; t < tokens; ++t)
            for (int64_t r = 0; r < rows; ++r) {
              double magnitude = 0;
              for (int64_t c = 0; c < cols; ++c) magnitude += std::fabs(double(wf[r * cols + c]) * x[t * cols + c]);
              ASSERT_NEAR(y[t * rows + r], ref[t * rows + r], 1e-5 * magnitude + 1e-6) << "row " << r << " token " << t;
            }
        }
  }
}

// Prefill-sized products (many tokens, rows in several blocks) on one and two threads.
TEST_P(MatmulTest, LargeProductsAgreeAcrossThreadCounts) {
  const Isa isa = GetParam();
  Rng rng(5);
  const StoredMatrix w(rng, TensorType::Q4_K, 200, 1024);
  const std::vector<float> x = random_normal(rng, 37 * 1024);
  std::vector<float> ref(37 * 200);
  matmul_reference(w.view, x.data(), ref.data(), 37, isa);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<float> y(37 * 200);
    matmul(pool, w.view, x.data(), y.data(), 37);
    EXPECT_TRUE(close_to_reference(y, ref, 1024)) << threads << " threads";
  }
}

// Independently of the reference: close to the exact product of the unquantized weights, within
// the error the weight format and the 8-bit activations allow.
TEST_P(MatmulTest, CloseToTheFloatProduct) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  Rng rng(17);
  const int64_t rows = 32, cols = 1024, m = 3;
  const std::vector<float> wf = random_normal(rng, rows * cols), x = random_normal(rng, m * cols);
  // Each type with the RMS error of its weights on N(0, 1) data (docs/kernels-formats.md).
  const std::pair<TensorType, double> types[] = {
      {TensorType::F32, 0.0}, {TensorType::Q8_0, 0.0054}, {TensorType::Q6_K, 0.018}, {TensorType::Q4_K, 0.072}};
  for (const auto& [type, weight_rmse] : types) {
    std::vector<uint8_t> q(gguf::row_bytes(type, cols) * rows);
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(type, wf.data() + r * cols, q.data() + r * gguf::row_bytes(type, cols), cols);
    std::vector<float> y(m * rows);
    const MatmulJob job{{type, q.data(), rows, cols}, x.data(), y.data(), m};
    matmul(pool, std::span(&job, 1), isa);
    for (int64_t t = 0; t < m; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0;
        for (int64_t i = 0; i < cols; ++i) exact += double(wf[r * cols + i]) * x[t * cols + i];
        // The weight and activation (8-bit, ~0.7%) errors over cols random terms: five sigma.
        ASSERT_NEAR(y[t * rows + r], exact, 5 * std::sqrt(double(cols)) * (weight_rmse + 0.007) + 1e-3)
            << gguf::tensor_type_name(type) << " row " << r << " token " << t;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, MatmulTest, ::testing::ValuesIn(supported_isas()), testing::isa_param_name);

TEST(Matmul, RejectsBadJobs) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(34 * 4);
  std::vector<float> x(64), y(4);
  // 48 columns is not a whole number of Q8_0 blocks.
  EXPECT_THROW(matmul(pool, WeightMatrix{TensorType::Q8_0, bytes.data(), 2, 48}, x.data(), y.data(), 1), Error);
  EXPECT_THROW(matmul(pool, WeightMatrix{TensorType::Q8_0, nullptr, 2, 64}, x.data(), y.data(), 1), Error);
  EXPECT_THROW(matmul(pool, WeightMatrix{TensorType::I32, bytes.data(), 2, 8}, x.data(), y.data(), 1), Error);
  EXPECT_THROW(matmul(pool, WeightMatrix{TensorType::F32, bytes.data(), 0, 8}, x.data(), y.data(), 1), Error);
}

}  // namespace
}  // namespace tokenmill::kernels
