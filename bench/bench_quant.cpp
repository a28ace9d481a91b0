// Scalar codec throughput per weight type: bytes of stored weights decoded (or dotted with a float
// vector) per second. A 1024 x 4096 matrix, decoded row by row into one L1-resident row buffer,
// so the weights stream from memory as they do in a matrix-vector product.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <mamba/ops/quant.hpp>
#include <random>
#include <vector>

namespace {

using mamba::DType;

constexpr int64_t kRows = 1024;
constexpr int64_t kCols = 4096;

struct Matrix {
  DType type;
  int64_t row_bytes;
  std::vector<std::byte> data;
};

const Matrix& matrix(DType t) {
  static std::vector<Matrix> cache;
  for (const auto& m : cache)
    if (m.type == t) return m;
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> row(kCols);
  Matrix m{t, mamba::row_bytes(t, kCols), {}};
  m.data.resize(static_cast<size_t>(m.row_bytes * kRows));
  for (int64_t r = 0; r < kRows; ++r) {
    for (auto& v : row) v = nd(g);
    mamba::quantize_row(t, row.data(), m.data.data() + r * m.row_bytes, kCols);
  }
  cache.push_back(std::move(m));
  return cache.back();
}

void BM_Dequantize(benchmark::State& state, DType t) {
  const Matrix& m = matrix(t);
  std::vector<float> out(kCols);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) {
      mamba::dequantize_row(t, m.data.data() + r * m.row_bytes, out.data(), kCols);
      benchmark::DoNotOptimize(out.data());
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.data.size()));
  state.counters["values/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kRows * kCols), benchmark::Counter::kIsRate);
}

void BM_VecDotRow(benchmark::State& state, DType t) {
  const Matrix& m = matrix(t);
  std::vector<float> x(kCols, 0.5f);
  for (auto _ : state) {
    float acc = 0;
    for (int64_t r = 0; r < kRows; ++r)
      acc += mamba::vec_dot_row(t, m.data.data() + r * m.row_bytes, x.data(), kCols);
    benchmark::DoNotOptimize(acc);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.data.size()));
}

void BM_Quantize(benchmark::State& state, DType t) {
  std::vector<float> row(kCols);
  std::mt19937 g(2);
  std::normal_distribution<float> nd;
  for (auto& v : row) v = nd(g);
  std::vector<std::byte> out(static_cast<size_t>(mamba::row_bytes(t, kCols)));
  for (auto _ : state) {
    mamba::quantize_row(t, row.data(), out.data(), kCols);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * kCols * 4);  // float input consumed
}

#define MAMBA_QUANT_BENCH(fn, T) BENCHMARK_CAPTURE(fn, T, DType::T)->Unit(benchmark::kMillisecond)
MAMBA_QUANT_BENCH(BM_Dequantize, F32);
MAMBA_QUANT_BENCH(BM_Dequantize, F16);
MAMBA_QUANT_BENCH(BM_Dequantize, BF16);
MAMBA_QUANT_BENCH(BM_Dequantize, Q8_0);
MAMBA_QUANT_BENCH(BM_Dequantize, Q4_0);
MAMBA_QUANT_BENCH(BM_Dequantize, Q4_K);
MAMBA_QUANT_BENCH(BM_Dequantize, Q6_K);
MAMBA_QUANT_BENCH(BM_VecDotRow, F32);
MAMBA_QUANT_BENCH(BM_VecDotRow, F16);
MAMBA_QUANT_BENCH(BM_VecDotRow, BF16);
MAMBA_QUANT_BENCH(BM_VecDotRow, Q8_0);
MAMBA_QUANT_BENCH(BM_VecDotRow, Q4_0);
MAMBA_QUANT_BENCH(BM_VecDotRow, Q4_K);
MAMBA_QUANT_BENCH(BM_VecDotRow, Q6_K);
BENCHMARK_CAPTURE(BM_Quantize, Q8_0, DType::Q8_0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Quantize, Q4_0, DType::Q4_0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Quantize, Q4_K, DType::Q4_K)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Quantize, Q6_K, DType::Q6_K)->Unit(benchmark::kMicrosecond);

}  // namespace
