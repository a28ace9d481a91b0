// The Mamba-2 scan on a mamba2-130m layer (24 heads of 64 channels, one group, d_state 128), in
// tokens per second (items_per_second): the threaded recurrence against the chunked SSD form at
// chunk lengths 64, 128 and 256, for runs of 1 to 2048 tokens (the short runs find where the
// chunked form starts to win), on 1 and 2 threads. The inputs sit where the mixer has them: x, B
// and C inside the rows of the conv output xBC.
#include <benchmark/benchmark.h>

#include <mamba/ops/threads.hpp>
#include <mamba/ssm/ssd.hpp>
#include <random>
#include <vector>

namespace {

struct SsdInputs {
  static constexpr int64_t kMaxTokens = 2048;
  mamba::SsdShape s{24, 64, 1, 128, false};
  int64_t d_inner = 24 * 64, conv_dim = d_inner + 2 * 128;
  std::vector<float> xBC, dt, A, D, h, y;

  SsdInputs() {
    std::mt19937 g(1);
    std::uniform_real_distribution<float> u(-1, 1), unit(0, 1);
    auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(n);
      for (auto& e : v) e = u(g);
    };
    fill(xBC, kMaxTokens * conv_dim), fill(D, s.nheads), fill(h, d_inner * s.d_state);
    dt.resize(kMaxTokens * s.nheads);
    // dt after softplus: log-uniform in [1e-3, 0.1], one in twenty in [1, 5]
    for (auto& v : dt)
      v = unit(g) < 0.05f ? 1 + 4 * unit(g)
                          : std::exp(std::log(1e-3f) + unit(g) * std::log(100.0f));
    A.resize(s.nheads);
    for (auto& v : A) v = -std::exp(unit(g) * std::log(16.0f));
    y.resize(kMaxTokens * d_inner);
  }

  const float* x() const { return xBC.data(); }
  const float* B() const { return xBC.data() + d_inner; }
  const float* C() const { return xBC.data() + d_inner + s.d_state; }
};

SsdInputs& inputs() {
  static SsdInputs in;
  return in;
}

void BM_SsdRecurrent(benchmark::State& st) {
  const int64_t n = st.range(0);
  mamba::set_num_threads(static_cast<int>(st.range(1)));
  auto& in = inputs();
  for (auto _ : st) {
    mamba::ssd_scan_recurrent_fast(in.s, n, in.x(), in.conv_dim, in.dt.data(), in.s.nheads,
                                   in.A.data(), in.B(), in.C(), in.conv_dim, in.D.data(),
                                   in.h.data(), in.y.data(), in.d_inner);
    benchmark::DoNotOptimize(in.y.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BM_SsdChunked(benchmark::State& st) {
  const int64_t chunk = st.range(0), n = st.range(1);
  mamba::set_num_threads(static_cast<int>(st.range(2)));
  auto& in = inputs();
  for (auto _ : st) {
    mamba::ssd_scan_chunked(in.s, chunk, n, in.x(), in.conv_dim, in.dt.data(), in.s.nheads,
                            in.A.data(), in.B(), in.C(), in.conv_dim, in.D.data(), in.h.data(),
                            in.y.data(), in.d_inner);
    benchmark::DoNotOptimize(in.y.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void register_all() {
  auto* rec = benchmark::RegisterBenchmark("BM_SsdRecurrent", BM_SsdRecurrent);
  rec->ArgNames({"tokens", "threads"});
  for (int threads : {1, 2})
    for (int64_t n : {1, 4, 8, 16, 32, 64, 128, 256, 512, 2048}) rec->Args({n, threads});
  rec->UseRealTime()->Unit(benchmark::kMicrosecond);

  auto* chunked = benchmark::RegisterBenchmark("BM_SsdChunked", BM_SsdChunked);
  chunked->ArgNames({"chunk", "tokens", "threads"});
  for (int threads : {1, 2})
    for (int64_t chunk : {64, 128, 256}) {
      // below 64 tokens the whole run is one chunk whatever the chunk size: measured once
      if (chunk == 64)
        for (int64_t n : {4, 8, 16, 32}) chunked->Args({chunk, n, threads});
      for (int64_t n : {64, 128, 256, 512, 2048}) chunked->Args({chunk, n, threads});
    }
  chunked->UseRealTime()->Unit(benchmark::kMicrosecond);
}

const int registered = (register_all(), 0);

}  // namespace
