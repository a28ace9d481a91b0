#pragma once
// What the model benchmarks measure against, in the same run (DESIGN.md section 4): the streaming
// read bandwidth (decode's ceiling), Eigen's SGEMM FLOP/s (prefill's), and the weight bytes one
// decoded token reads; the decode loop both model suites time. Shared by bench_model.cpp (Mamba-1)
// and bench_mamba2.cpp.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <mamba/mamba.hpp>
#include <mamba/ops/simd/simd.hpp>
#include <mamba/ops/threads.hpp>
#include <map>
#include <numeric>
#include <vector>

namespace mamba::bench {

using Clock = std::chrono::steady_clock;

// Bytes of weights one decoded token reads: every matrix once (the tied embedding as lm_head;
// the embedding row itself is negligible), and the per-channel vectors (norms, conv, dt bias, A,
// D, biases), of either family.
inline double weight_bytes_per_token(const Model& model) {
  const auto& w = model.weights();
  double bytes = w.lm_head.bytes() + 4.0 * w.norm_f.size();
  for (const auto& l : w.layers)
    bytes +=
        l.in_proj.bytes() + l.x_proj.bytes() + l.dt_proj.bytes() + l.out_proj.bytes() +
        4.0 * (l.norm.size() + l.conv_w.size() + l.conv_b.size() + l.dt_bias.size() + l.A.size() +
               l.D.size() + l.gate_norm.size() + l.in_proj_bias.size() + l.out_proj_bias.size());
  return bytes;
}

template <class F>
inline double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

// Ceiling for decode: bytes/s reading 1 GiB of floats once, split across `threads` threads the
// way the matrix-vector products split their rows, summed with the same SIMD width; the best of
// `reps` reads.
inline double measure_streaming_bandwidth(int threads, int reps) {
  static std::vector<float> buf((1u << 30) / sizeof(float), 1.0f);
  set_num_threads(threads);
  const int64_t n = static_cast<int64_t>(buf.size()), grain = 1 << 16;
  std::vector<float> part(n / grain, 0.0f);  // each part's sum, at its first grain
  float sink = 0;
  const double s = best_seconds(reps, [&] {
    parallel_for(n, grain, n * 4, [&](int64_t b, int64_t e) {
      // buf . buf: both operands come from the same cache line, so each byte is read once
      part[b / grain] =
          simd::dot_row(DType::F32, reinterpret_cast<const std::byte*>(&buf[b]), &buf[b], e - b);
    });
    sink += std::accumulate(part.begin(), part.end(), 0.0f);
  });
  benchmark::DoNotOptimize(sink);
  return buf.size() * sizeof(float) / s;
}

// The same, measured once per thread count (BM_StreamingRead).
inline double streaming_bandwidth(int threads) {
  static std::map<int, double> cache;
  if (!cache.count(threads)) cache[threads] = measure_streaming_bandwidth(threads, 7);
  return cache[threads];
}

// Ceiling for prefill: Eigen SGEMM FLOP/s on (512 x 768) x (768 x 3072) with `threads` threads,
// the best of `reps` products.
inline double measure_sgemm_flops(int threads, int reps) {
  set_num_threads(threads);
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(512, 768),
                        b = Eigen::MatrixXf::Random(768, 3072);
  Eigen::MatrixXf c(512, 3072);
  const double s = best_seconds(reps, [&] {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  });
  return 2.0 * 512 * 768 * 3072 / s;
}

// The same, measured once per thread count (BM_EigenSgemm).
inline double sgemm_flops(int threads) {
  static std::map<int, double> cache;
  if (!cache.count(threads)) cache[threads] = measure_sgemm_flops(threads, 15);
  return cache[threads];
}

// A prefill benchmark: prefill() once per iteration of `st` (a fresh state each time, `tokens`
// tokens) with `threads` threads; returns its tokens/s and the SGEMM ceiling probed right before
// and right after it, the higher taken: as for decode (run_decode), the ceiling then reflects the
// same minutes' load (over a day here the 2-thread SGEMM moved between 205 and 274 GFLOP/s).
struct PrefillRate {
  double tokens_per_s, sgemm_flops;
};
template <class F>
inline PrefillRate run_prefill(benchmark::State& st, int threads, int64_t tokens, F&& prefill) {
  const double before = measure_sgemm_flops(threads, 5);
  set_num_threads(threads);
  const auto t0 = Clock::now();
  for (auto _ : st) prefill();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return {st.iterations() * double(tokens) / seconds,
          std::max(before, measure_sgemm_flops(threads, 5))};
}

// Decodes one token per iteration of `st` with `threads` threads, from a warmed state, and sets
// the decode counters (tokens/s, MB/token, the streaming ceiling, efficiency).
// The ceiling is probed right before and right after the decode, and the higher taken: on this
// shared machine the bandwidth left by other guests moves by 20% within minutes, so a probe from
// the start of the run would credit or blame the decode for the neighbours' load.
inline void run_decode(benchmark::State& st, const Model& model, int threads) {
  const double before = measure_streaming_bandwidth(threads, 3);
  set_num_threads(threads);
  auto state = model.new_state();
  std::vector<float> logits(model.vocab_size());
  int32_t token = 1;
  for (int i = 0; i < 4; ++i) model.step(token, state, logits);  // warm
  const auto t0 = Clock::now();
  for (auto _ : st) {
    model.step(token, state, logits);
    token = (token * 31 + 7) % 50000;
    benchmark::DoNotOptimize(logits.data());
  }
  const double tps = st.iterations() / std::chrono::duration<double>(Clock::now() - t0).count();
  const double ceiling = std::max(before, measure_streaming_bandwidth(threads, 3));
  const double bytes = weight_bytes_per_token(model);
  st.counters["tokens/s"] = tps;
  st.counters["MB/token"] = bytes / 1e6;
  st.counters["stream_GB/s"] = ceiling / 1e9;
  st.counters["efficiency"] = bytes * tps / ceiling;
}

}  // namespace mamba::bench
