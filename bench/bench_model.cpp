// Whole-model prefill and decode on a mamba-130m-shaped model with random weights, with the two
// ceilings measured in the same run (DESIGN.md section 4):
//   decode efficiency  = weight bytes read per token x tokens/s / streaming read bandwidth
//   prefill efficiency = FLOPs per token x tokens/s / Eigen SGEMM FLOP/s on (512x768)x(768x3072)
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <map>
#include <mamba/mamba.hpp>
#include <numeric>

#include "random_checkpoint.hpp"

namespace {

using mamba::DType;

const mamba::Model& model_for(DType type) {
  static std::map<DType, std::unique_ptr<mamba::Model>> models;
  auto& m = models[type];
  if (!m)
    m = std::make_unique<mamba::Model>(
        mamba::bench::random_checkpoint(mamba::bench::mamba_130m_config(), type));
  return *m;
}

// Bytes of weights one decoded token reads: every matrix once, the tied embedding as lm_head.
double weight_bytes_per_token(const mamba::Model& model) {
  const auto& w = model.weights();
  double bytes = w.lm_head.bytes();
  for (const auto& l : w.layers)
    bytes += l.in_proj.bytes() + l.x_proj.bytes() + l.dt_proj.bytes() + l.out_proj.bytes();
  return bytes;
}

// 2 x (in_proj + x_proj + dt_proj + out_proj) x n_layer: the projections' multiply-adds.
double prefill_flops_per_token(const mamba::ModelConfig& c) {
  const double per_layer = 2.0 * c.d_inner * c.d_model + (c.dt_rank + 2.0 * c.d_state) * c.d_inner +
                           double(c.d_inner) * c.dt_rank + double(c.d_model) * c.d_inner;
  return 2.0 * per_layer * c.n_layer;
}

void BM_Decode(benchmark::State& st, DType type) {
  const auto& model = model_for(type);
  auto state = model.new_state();
  std::vector<float> logits(model.vocab_size());
  int32_t token = 1;
  for (auto _ : st) {
    model.step(token, state, logits);
    token = (token * 31 + 7) % 50000;
    benchmark::DoNotOptimize(logits.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(st.iterations(), benchmark::Counter::kIsRate);
  st.counters["weight_bytes/token"] = weight_bytes_per_token(model);
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * weight_bytes_per_token(model)));
}

void BM_Prefill512(benchmark::State& st, DType type) {
  const auto& model = model_for(type);
  std::vector<int32_t> tokens(512);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (i * 131 + 17) % 50000;
  for (auto _ : st) {
    auto state = model.new_state();
    benchmark::DoNotOptimize(model.prefill(tokens, state));
  }
  st.counters["tokens/s"] =
      benchmark::Counter(st.iterations() * 512.0, benchmark::Counter::kIsRate);
  st.counters["FLOP/s"] = benchmark::Counter(
      st.iterations() * 512.0 * prefill_flops_per_token(model.config()), benchmark::Counter::kIsRate);
}

// Ceiling for decode: read 1 GiB of floats once per iteration.
void BM_StreamingRead(benchmark::State& st) {
  std::vector<float> buf((1u << 30) / sizeof(float), 1.0f);
  for (auto _ : st) {
    Eigen::Map<const Eigen::VectorXf> v(buf.data(), buf.size());
    benchmark::DoNotOptimize(v.sum());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * buf.size() * sizeof(float)));
}

// Ceiling for prefill: Eigen SGEMM (512 x 768) x (768 x 3072).
void BM_EigenSgemm(benchmark::State& st) {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(512, 768), b = Eigen::MatrixXf::Random(768, 3072);
  Eigen::MatrixXf c(512, 3072);
  for (auto _ : st) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  st.counters["FLOP/s"] =
      benchmark::Counter(st.iterations() * 2.0 * 512 * 768 * 3072, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_StreamingRead)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_EigenSgemm)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, f32, DType::F32)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, f16, DType::F16)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Prefill512, f32, DType::F32)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Prefill512, f16, DType::F16)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace
