// Whole-model prefill and decode on a mamba-130m-shaped model with random weights, for every
// weight type and 1 and 2 threads, with the two ceilings measured in the same run (DESIGN.md
// section 4):
//   decode efficiency  = weight bytes read per token x tokens/s / streaming read bandwidth
//   prefill efficiency = FLOPs per token x tokens/s / Eigen SGEMM FLOP/s on (512x768)x(768x3072)
// plus batch-8 decode (aggregate tokens/s over single-sequence tokens/s), the time to load a GGUF
// file with a warm page cache, and the resident memory a decoding sequence adds over the file.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mamba/mamba.hpp>
#include <mamba/ops/simd/simd.hpp>
#include <mamba/ops/threads.hpp>
#include <map>
#include <numeric>
#include <string>

#include "ceilings.hpp"
#include "random_checkpoint.hpp"

namespace {

using mamba::DType;
using mamba::bench::best_seconds;
using mamba::bench::Clock;
using mamba::bench::sgemm_flops;
using mamba::bench::streaming_bandwidth;

const mamba::Model& model_for(DType type) {
  static std::map<DType, std::unique_ptr<mamba::Model>> models;
  auto& m = models[type];
  if (!m)
    m = std::make_unique<mamba::Model>(
        mamba::bench::random_checkpoint(mamba::bench::mamba_130m_config(), type));
  return *m;
}

// 2 x (in_proj + x_proj + dt_proj + out_proj) x n_layer: the projections' multiply-adds.
double prefill_flops_per_token(const mamba::ModelConfig& c) {
  const double per_layer = 2.0 * c.d_inner * c.d_model + (c.dt_rank + 2.0 * c.d_state) * c.d_inner +
                           double(c.d_inner) * c.dt_rank + double(c.d_model) * c.d_inner;
  return 2.0 * per_layer * c.n_layer;
}

void BM_StreamingRead(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(threads);
  st.counters["GB/s"] = streaming_bandwidth(threads) / 1e9;
  st.SetLabel(mamba::simd::isa());
}

void BM_EigenSgemm(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(threads);
  st.counters["GFLOP/s"] = sgemm_flops(threads) / 1e9;
}

void BM_Decode(benchmark::State& st, DType type) {
  mamba::bench::run_decode(st, model_for(type), static_cast<int>(st.range(0)));
}

// Decode with float activations for block-quantized weights (QuantizedDot::Float, exact), and
// the accuracy effect of the default int8 ones: the relative error of their logits against the
// float path's after the same 16 tokens.
void BM_DecodeFloatDot(benchmark::State& st, DType type) {
  const int threads = static_cast<int>(st.range(0));
  const auto& model = model_for(type);
  mamba::set_num_threads(threads);
  std::vector<int32_t> prefix(16);
  for (size_t i = 0; i < prefix.size(); ++i) prefix[i] = (i * 977 + 5) % 50000;
  std::vector<float> exact, approx;
  {
    auto s = model.new_state();
    for (int32_t t : prefix) approx = model.step(t, s);
  }
  mamba::QuantizedDotScope scope(mamba::QuantizedDot::Float);
  {
    auto s = model.new_state();
    for (int32_t t : prefix) exact = model.step(t, s);
  }
  mamba::bench::run_decode(st, model, threads);
  double num = 0, den = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    num += double(approx[i] - exact[i]) * (approx[i] - exact[i]);
    den += double(exact[i]) * exact[i];
  }
  st.counters["int8_logits_rel_err"] = std::sqrt(num / den);
}

void BM_Prefill512(benchmark::State& st, DType type) {
  const int threads = static_cast<int>(st.range(0));
  const auto& model = model_for(type);
  std::vector<int32_t> tokens(512);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (i * 131 + 17) % 50000;
  const auto [tps, ceiling] = mamba::bench::run_prefill(st, threads, 512, [&] {
    auto state = model.new_state();
    benchmark::DoNotOptimize(model.prefill(tokens, state));
  });
  st.counters["tokens/s"] = tps;
  st.counters["sgemm_GFLOP/s"] = ceiling / 1e9;
  st.counters["efficiency"] = prefill_flops_per_token(model.config()) * tps / ceiling;
}

// Aggregate tokens/s of 8 sequences in one step_batch, and its speedup over single-sequence
// decode. Each iteration times one batched step and then one single step, so that the two rates
// the speedup divides are measured under the same load (on this shared machine a rate taken
// seconds earlier can differ by 20%).
void BM_DecodeBatch8(benchmark::State& st, DType type) {
  const int threads = static_cast<int>(st.range(0));
  const auto& model = model_for(type);
  mamba::set_num_threads(threads);
  std::vector<mamba::State> states(8, model.new_state());
  std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8};
  auto single = model.new_state();
  std::vector<float> logits(model.vocab_size());
  model.step_batch(tokens, states);  // warm
  model.step(1, single, logits);
  double batch_seconds = 0, single_seconds = 0;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    benchmark::DoNotOptimize(model.step_batch(tokens, states));
    const auto t1 = Clock::now();
    model.step(tokens[0], single, logits);
    benchmark::DoNotOptimize(logits.data());
    single_seconds += std::chrono::duration<double>(Clock::now() - t1).count();
    batch_seconds += std::chrono::duration<double>(t1 - t0).count();
    for (auto& t : tokens) t = (t * 31 + 7) % 50000;
  }
  const double tps = st.iterations() * 8.0 / batch_seconds;
  const double single_tps = st.iterations() / single_seconds;
  st.counters["tokens/s"] = tps;
  st.counters["single_tokens/s"] = single_tps;
  st.counters["speedup"] = tps / single_tps;
}

// A GGUF of the random model in the temporary directory, written once per type.
std::string gguf_for(DType type) {
  static std::map<DType, std::string> paths;
  auto& p = paths[type];
  if (p.empty()) {
    p = (std::filesystem::temp_directory_path() /
         ("mamba-bench-130m-" + std::string(mamba::dtype_name(type)) + ".gguf"))
            .string();
    mamba::bench::write_gguf(
        mamba::bench::random_checkpoint(mamba::bench::mamba_130m_config(), type), type, p);
  }
  return p;
}

void BM_LoadGguf(benchmark::State& st, DType type) {
  const std::string path = gguf_for(type);
  { auto warm = mamba::Model::load(path); }
  for (auto _ : st) benchmark::DoNotOptimize(mamba::Model::load(path));
  st.counters["file_MB"] = std::filesystem::file_size(path) / 1e6;
}

// Peak resident memory of a fresh process that loads the GGUF and decodes 32 tokens of one
// sequence (the benchmark binary itself, re-run with MAMBA_BENCH_RSS_CHILD=<gguf>): the program,
// the weights mapped from the file, the state and the workspace; against the file size.
int64_t peak_resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

const bool rss_child = [] {
  const char* path = std::getenv("MAMBA_BENCH_RSS_CHILD");
  if (!path) return false;
  mamba::set_num_threads(2);
  const auto model = mamba::Model::load(path);
  auto state = model.new_state();
  std::vector<float> logits(model.vocab_size());
  for (int32_t t = 0; t < 32; ++t) model.step(t, state, logits);
  std::printf("%lld\n", static_cast<long long>(peak_resident_bytes()));
  std::exit(0);
}();

void BM_ResidentDecode(benchmark::State& st, DType type) {
  const std::string path = gguf_for(type);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  double peak = 0;
  for (auto _ : st) {
    FILE* child = popen(("MAMBA_BENCH_RSS_CHILD='" + path + "' '" + self + "'").c_str(), "r");
    long long bytes = 0;
    if (!child || std::fscanf(child, "%lld", &bytes) != 1) st.SkipWithError("child failed");
    if (child) pclose(child);
    peak = double(bytes);
  }
  const double file = double(std::filesystem::file_size(path));
  st.counters["file_MiB"] = file / (1 << 20);
  st.counters["peak_resident_MiB"] = peak / (1 << 20);
  st.counters["over_file_MiB"] = (peak - file) / (1 << 20);
}

constexpr std::pair<const char*, DType> kTypes[] = {
    {"f32", DType::F32},   {"f16", DType::F16},   {"bf16", DType::BF16}, {"q8_0", DType::Q8_0},
    {"q4_0", DType::Q4_0}, {"q4_k", DType::Q4_K}, {"q6_k", DType::Q6_K}};

void register_all() {
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
  };
  benchmark::RegisterBenchmark("BM_StreamingRead", BM_StreamingRead)->Apply(threads)->Iterations(1);
  benchmark::RegisterBenchmark("BM_EigenSgemm", BM_EigenSgemm)->Apply(threads)->Iterations(1);
  for (auto [name, type] : kTypes)
    benchmark::RegisterBenchmark((std::string("BM_Decode/") + name).c_str(), BM_Decode, type)
        ->Apply(threads)
        ->MinTime(2.0);
  for (auto [name, type] : {kTypes[3], kTypes[4], kTypes[5], kTypes[6]})
    benchmark::RegisterBenchmark((std::string("BM_DecodeFloatDot/") + name).c_str(),
                                 BM_DecodeFloatDot, type)
        ->Apply(threads)
        ->MinTime(2.0);
  for (auto [name, type] : kTypes)
    benchmark::RegisterBenchmark((std::string("BM_DecodeBatch8/") + name).c_str(), BM_DecodeBatch8,
                                 type)
        ->Apply(threads)
        ->MinTime(2.0);
  for (auto [name, type] : kTypes)
    benchmark::RegisterBenchmark((std::string("BM_Prefill512/") + name).c_str(), BM_Prefill512,
                                 type)
        ->Apply(threads)
        ->MinTime(3.0);
  for (auto [name, type] : {kTypes[0], kTypes[1], kTypes[3], kTypes[5]}) {
    benchmark::RegisterBenchmark((std::string("BM_LoadGguf/") + name).c_str(), BM_LoadGguf, type)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
    benchmark::RegisterBenchmark((std::string("BM_ResidentDecode/") + name).c_str(),
                                 BM_ResidentDecode, type)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
}

const int registered = (register_all(), 0);

}  // namespace
