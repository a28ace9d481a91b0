// Whole-model Mamba-2 prefill and decode on a mamba2-130m-shaped model with random weights
// (24 layers, d_model 768, headdim 64, d_state 128, 1 group, vocab 50288), 1 and 2 threads:
//   prefill tokens/s for 512 and 2048 tokens through the recurrence and the chunked SSD scan,
//     and prefill efficiency = projection FLOPs per token x tokens/s / Eigen SGEMM FLOP/s
//     (the scan's own work is not counted, as for Mamba-1; the counter scan_share says how much
//     of the model's arithmetic it is);
//   decode tokens/s and efficiency = weight bytes per token x tokens/s / streaming bandwidth.
#include <benchmark/benchmark.h>

#include <mamba/mamba.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ceilings.hpp"
#include "random_checkpoint.hpp"

namespace {

using mamba::DType;
using mamba::ScanPath;

const mamba::Model& mamba2_for(DType type) {
  static std::map<DType, std::unique_ptr<mamba::Model>> models;
  auto& m = models[type];
  if (!m)
    m = std::make_unique<mamba::Model>(
        mamba::bench::random_checkpoint(mamba::bench::mamba2_130m_config(), type));
  return *m;
}

// 2 x (in_proj + out_proj) x n_layer multiply-adds per token.
double projection_flops_per_token(const mamba::ModelConfig& c) {
  return 2.0 * (double(c.d_in_proj()) * c.d_model + double(c.d_model) * c.d_inner) * c.n_layer;
}

// The recurrence's arithmetic per token: h = a*h + dt*x*B and y = h.C over (d_inner, d_state).
double scan_flops_per_token(const mamba::ModelConfig& c) {
  return 4.0 * c.d_inner * c.d_state * c.n_layer;
}

void BM_Mamba2Decode(benchmark::State& st, DType type) {
  mamba::bench::run_decode(st, mamba2_for(type), static_cast<int>(st.range(0)));
}

void BM_Mamba2Prefill(benchmark::State& st, DType type, ScanPath path) {
  const int threads = static_cast<int>(st.range(0));
  const int64_t n = st.range(1);
  const auto& model = mamba2_for(type);
  std::vector<int32_t> tokens(n);
  for (int64_t i = 0; i < n; ++i) tokens[i] = (i * 131 + 17) % 50000;
  const auto [tps, ceiling] = mamba::bench::run_prefill(st, threads, n, [&] {
    auto state = model.new_state();
    benchmark::DoNotOptimize(model.prefill(tokens, state, mamba::Logits::Last, path));
  });
  const auto& c = model.config();
  st.counters["tokens/s"] = tps;
  st.counters["sgemm_GFLOP/s"] = ceiling / 1e9;
  st.counters["efficiency"] = projection_flops_per_token(c) * tps / ceiling;
  st.counters["scan_share"] =
      scan_flops_per_token(c) / (scan_flops_per_token(c) + projection_flops_per_token(c));
}

constexpr std::pair<const char*, DType> kTypes[] = {
    {"f32", DType::F32}, {"f16", DType::F16}, {"q8_0", DType::Q8_0}, {"q4_k", DType::Q4_K}};

void register_all() {
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
  };
  for (auto [name, type] : kTypes)
    benchmark::RegisterBenchmark((std::string("BM_Mamba2Decode/") + name).c_str(), BM_Mamba2Decode,
                                 type)
        ->Apply(threads)
        ->MinTime(2.0);
  for (auto [path_name, path] :
       {std::pair{"recurrence", ScanPath::Recurrence}, std::pair{"chunked", ScanPath::Chunked}})
    for (auto [name, type] : {kTypes[0], kTypes[2]})
      benchmark::RegisterBenchmark(
          (std::string("BM_Mamba2Prefill/") + name + "/" + path_name).c_str(), BM_Mamba2Prefill,
          type, path)
          ->ArgNames({"threads", "tokens"})
          ->ArgsProduct({{1, 2}, {512, 2048}})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(2.0);
}

const int registered = (register_all(), 0);

}  // namespace
