// Kernel throughput: each weight type's matrix-vector product in GB/s of weights streamed (float
// activations, and int8 activations for the block types), on 1 and 2 threads, 4096 x 4096 and
// the 130m in_proj from cache; the product with 8 vectors at once (batched decode) on the
// mamba-130m in_proj and out_proj shapes, in GFLOP/s (compute-bound: its ceiling is the FMA rate,
// not the memory); the selective-scan step (one token) and sequence (256 tokens) in channels per
// second, d_state 16.
#include <benchmark/benchmark.h>

#include <mamba/ops/aligned_vector.hpp>
#include <mamba/ops/matmul.hpp>
#include <mamba/ops/quant.hpp>
#include <mamba/ops/threads.hpp>
#include <mamba/ssm/scan.hpp>
#include <map>
#include <random>
#include <tuple>
#include <vector>

namespace {

using mamba::DType;

// A 4096 x 4096 matrix (64 MiB in F32): larger than the L2 caches, as a model's weights are.
constexpr int64_t kRows = 4096, kCols = 4096;
// The mamba-130m in_proj (3072 x 768: 1.3 MiB in Q4_0, 9 MiB in F32), read again and again from
// the caches: what the kernels compute when the memory does not hold them back, which must be
// well above the memory's rate for decode to sit on the memory ceiling.
constexpr int64_t kInProjRows = 3072, kInProjCols = 768;

const std::vector<std::byte>& matrix(DType t, int64_t rows = kRows, int64_t cols = kCols) {
  static std::map<std::tuple<DType, int64_t, int64_t>, std::vector<std::byte>> cache;
  auto& bytes = cache[{t, rows, cols}];
  if (!bytes.empty()) return bytes;
  const int64_t stride = mamba::row_bytes(t, cols);
  bytes.resize(stride * rows);
  mamba::parallel_for(rows, 1, rows * cols * 64, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(cols);
    for (int64_t r = r0; r < r1; ++r) {
      std::minstd_rand g(static_cast<uint32_t>(r + 1));
      std::normal_distribution<float> nd;
      for (auto& v : row) v = nd(g);
      mamba::quantize_row(t, row.data(), bytes.data() + r * stride, cols);
    }
  });
  return bytes;
}

void BM_Matvec(benchmark::State& st, DType type, mamba::QuantizedDot mode, int64_t rows,
               int64_t cols) {
  mamba::set_num_threads(static_cast<int>(st.range(0)));
  mamba::QuantizedDotScope scope(mode);
  const auto& bytes = matrix(type, rows, cols);
  const mamba::MatrixView W{type, bytes.data(), rows, cols};
  std::vector<float> x(cols, 0.5f), y(rows);
  for (auto _ : st) {
    mamba::matvec(W, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * W.bytes() / 1e9,
                                           benchmark::Counter::kIsRate);
}

// Y = X W^T for 8 rows of X (batched decode), W of the 130m in_proj (3072 x 768) or out_proj
// (768 x 1536) shape, repeated to 8 copies (32 to 48 MiB in F32) so that it is read from memory.
// Block types: with int8 activations (the integer batched kernels) and with float ones.
void BM_MatmulBatch8(benchmark::State& st, DType type, mamba::QuantizedDot mode) {
  mamba::set_num_threads(static_cast<int>(st.range(0)));
  mamba::QuantizedDotScope scope(mode);
  const int64_t rows = st.range(1) == 0 ? 3072 : 768, cols = st.range(1) == 0 ? 768 : 1536;
  constexpr int copies = 8, n = 8;
  const int64_t stride = mamba::row_bytes(type, cols);
  std::vector<std::byte> bytes(stride * rows * copies);
  std::minstd_rand g(1);
  std::normal_distribution<float> nd;
  std::vector<float> row(cols), Y(n * rows);
  mamba::AlignedVector<float> X(n * cols);  // as the model's workspace holds it
  for (int64_t r = 0; r < rows * copies; ++r) {
    for (auto& v : row) v = nd(g);
    mamba::quantize_row(type, row.data(), bytes.data() + r * stride, cols);
  }
  for (auto& v : X) v = nd(g);
  int64_t c = 0;
  for (auto _ : st) {
    const mamba::MatrixView W{type, bytes.data() + (c++ % copies) * stride * rows, rows, cols};
    mamba::matmul(W, X.data(), n, Y.data());
    benchmark::DoNotOptimize(Y.data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * 2 * n * rows * cols / 1e9,
                         benchmark::Counter::kIsRate);
}

struct ScanInputs {
  int64_t E = 1536, N = 16, T;
  std::vector<float> x, dt, A, B, C, D, z, h, y;
  explicit ScanInputs(int64_t tokens) : T(tokens) {
    std::mt19937 g(1);
    std::uniform_real_distribution<float> u(-1, 1), pos(0.001f, 0.1f), neg(-4, -0.5f);
    auto fill = [&](std::vector<float>& v, int64_t n, auto& d) {
      v.resize(n);
      for (auto& e : v) e = d(g);
    };
    fill(x, T * E, u), fill(dt, T * E, pos), fill(A, E * N, neg), fill(B, T * N, u);
    fill(C, T * N, u), fill(D, E, u), fill(z, T * E, u), fill(h, E * N, u);
    y.resize(T * E);
  }
  void run() {
    mamba::selective_scan_fast(T, E, N, x.data(), E, dt.data(), A.data(), B.data(), C.data(), N,
                               D.data(), z.data(), E, h.data(), y.data());
  }
};

void BM_ScanStep(benchmark::State& st) {
  mamba::set_num_threads(static_cast<int>(st.range(0)));
  ScanInputs s(1);
  for (auto _ : st) {
    s.run();
    benchmark::DoNotOptimize(s.y.data());
  }
  st.counters["channels/s"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * s.E, benchmark::Counter::kIsRate);
}

void BM_ScanSequence256(benchmark::State& st) {
  mamba::set_num_threads(static_cast<int>(st.range(0)));
  ScanInputs s(256);
  for (auto _ : st) {
    s.run();
    benchmark::DoNotOptimize(s.y.data());
  }
  st.counters["channels/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * s.E * s.T,
                                                 benchmark::Counter::kIsRate);
}

void register_all() {
  constexpr std::pair<const char*, DType> types[] = {
      {"f32", DType::F32},   {"f16", DType::F16},   {"bf16", DType::BF16}, {"q8_0", DType::Q8_0},
      {"q4_0", DType::Q4_0}, {"q4_k", DType::Q4_K}, {"q6_k", DType::Q6_K}};
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  for (auto [name, type] : types) {
    benchmark::RegisterBenchmark((std::string("BM_Matvec/") + name).c_str(), BM_Matvec, type,
                                 mamba::QuantizedDot::Float, kRows, kCols)
        ->Apply(threads);
    if (mamba::traits(type).block_size > 1)
      benchmark::RegisterBenchmark((std::string("BM_Matvec/") + name + "_int8").c_str(), BM_Matvec,
                                   type, mamba::QuantizedDot::Int8, kRows, kCols)
          ->Apply(threads);
  }
  for (auto [name, type] : types)  // as decode runs them: int8 activations for the block types
    benchmark::RegisterBenchmark((std::string("BM_MatvecInProjCached/") + name).c_str(), BM_Matvec,
                                 type, mamba::QuantizedDot::Int8, kInProjRows, kInProjCols)
        ->Apply(threads);
  auto batch = [](benchmark::internal::Benchmark* b) {
    b->ArgNames({"threads", "out_proj"})
        ->ArgsProduct({{1, 2}, {0, 1}})
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  };
  for (auto [name, type] : types) {
    benchmark::RegisterBenchmark((std::string("BM_MatmulBatch8/") + name).c_str(), BM_MatmulBatch8,
                                 type, mamba::QuantizedDot::Float)
        ->Apply(batch);
    if (mamba::traits(type).block_size > 1)
      benchmark::RegisterBenchmark((std::string("BM_MatmulBatch8/") + name + "_int8").c_str(),
                                   BM_MatmulBatch8, type, mamba::QuantizedDot::Int8)
          ->Apply(batch);
  }
  benchmark::RegisterBenchmark("BM_ScanStep", BM_ScanStep)->Apply(threads);
  benchmark::RegisterBenchmark("BM_ScanSequence256", BM_ScanSequence256)->Apply(threads);
}

const int registered = (register_all(), 0);

}  // namespace
