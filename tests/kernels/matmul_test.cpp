// Matrix products: every output is the active dot product of its weight row and quantized
// activation row, whatever the shape and the number of threads; and close to the float product.
#include <gtest/gtest.h>

#include <cmath>
#include <utility>

#include "common/error.h"
#include "format_test_util.h"
#include "kernels/dot.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

struct Problem {
  std::vector<uint8_t> weights;
  std::vector<float> x;
  WeightMatrix w;
};

Problem make_problem(TensorType type, int64_t rows, int64_t cols, int64_t m) {
  Problem p;
  p.weights = testing::quantize(type, testing::heavy_tailed(rows * cols, rows + cols));
  p.x = testing::gaussian(m * cols, m);
  p.w = {p.weights.data(), type, rows, cols};
  return p;
}

// The outputs one dot product at a time, from activations quantized row by row.
std::vector<float> expected(const Problem& p, int64_t m) {
  const TensorType at = dot_activation_type(p.w.type);
  const uint64_t w_bytes = gguf::row_bytes(p.w.type, p.w.cols);
  std::vector<float> y(m * p.w.rows);
  for (int64_t t = 0; t < m; ++t) {
    const auto a = testing::quantize(at, std::vector<float>(p.x.begin() + t * p.w.cols, p.x.begin() + (t + 1) * p.w.cols));
    for (int64_t r = 0; r < p.w.rows; ++r)
      y[t * p.w.rows + r] = dots().find(p.w.type)(p.weights.data() + r * w_bytes, a.data(), p.w.cols);
  }
  return y;
}

TEST(Matmul, EveryOutputIsTheDotOfItsRowsOnAnyNumberOfThreads) {
  ThreadPool one(1), three(3);
  const struct {
    TensorType type;
    int64_t rows, cols, m;
  } shapes[] = {
      {TensorType::Q4_K, 70, 512, 1},  {TensorType::Q6_K, 33, 256, 5},   {TensorType::Q8_0, 100, 96, 3},
      {TensorType::Q4_0, 17, 4096, 2}, {TensorType::Q5_0, 1, 64, 40},    {TensorType::F16, 45, 100, 4},
      {TensorType::F32, 8, 7, 3},      {TensorType::IQ4_XS, 64, 768, 9}, {TensorType::Q8_0, 3, 4096, 80},
  };
  for (const auto& s : shapes) {
    const Problem p = make_problem(s.type, s.rows, s.cols, s.m);
    const auto want = expected(p, s.m);
    for (ThreadPool* pool : {&one, &three}) {
      std::vector<float> y(s.m * s.rows, -1.0f);
      matmul(p.w, p.x.data(), s.m, y.data(), *pool);
      ASSERT_EQ(y, want) << gguf::tensor_type_name(s.type) << " " << s.rows << "x" << s.cols << " m=" << s.m
                         << " threads=" << pool->size();
    }
  }
}

TEST(Matmul, CloseToTheFloatProduct) {
  ThreadPool pool(2);
  const int64_t rows = 32, cols = 1024, m = 3;
  const auto wf = testing::gaussian(rows * cols, 1);
  const auto x = testing::gaussian(m * cols, 2);
  // Each type with the RMS error of its weights on N(0, 1) data (docs/kernels-formats.md).
  const std::pair<TensorType, double> types[] = {
      {TensorType::F32, 0.0}, {TensorType::Q8_0, 0.0054}, {TensorType::Q6_K, 0.018}, {TensorType::Q4_K, 0.072}};
  for (const auto& [type, weight_rmse] : types) {
    const auto q = testing::quantize(type, wf);
    std::vector<float> y(m * rows);
    matmul({q.data(), type, rows, cols}, x.data(), m, y.data(), pool);
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

TEST(Matmul, BadShapesAndTypesAreErrors) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(1 << 16);
  std::vector<float> x(4096), y(4096);
  EXPECT_THROW(matmul({bytes.data(), TensorType::Q4_K, 4, 100}, x.data(), 1, y.data(), pool), Error);
  EXPECT_THROW(matmul({bytes.data(), TensorType::Q8_0, 4, 0}, x.data(), 1, y.data(), pool), Error);
  EXPECT_THROW(matmul({bytes.data(), TensorType::IQ2_XXS, 4, 256}, x.data(), 1, y.data(), pool), Error);
  // Nothing to compute is not an error.
  matmul({bytes.data(), TensorType::Q8_0, 0, 32}, x.data(), 1, y.data(), pool);
  matmul({bytes.data(), TensorType::Q8_0, 4, 32}, x.data(), 0, y.data(), pool);
}

}  // namespace
}  // namespace tokenmill::kernels
