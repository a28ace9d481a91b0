// Tokenizer speed: GPT-NeoX-20B encode of tinyshakespeare (1.1 MB), with an empty word cache
// (every distinct word merged once) and a warm one, and decode of the same ids.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "mamba/tokenizer/tokenizer_json.hpp"

namespace {

const std::string kTokenizer = std::string(MAMBA_DATA_DIR) + "/gpt-neox-20b/tokenizer.json";
const std::string kCorpus = std::string(MAMBA_DATA_DIR) + "/corpus/tinyshakespeare.txt";

struct Data {
  std::unique_ptr<mamba::Tokenizer> tok;
  std::string text;
};

// Loaded once; null members when the shared data is absent.
const Data& data() {
  static const Data d = [] {
    Data r;
    if (!std::filesystem::exists(kTokenizer) || !std::filesystem::exists(kCorpus)) return r;
    r.tok = std::make_unique<mamba::Tokenizer>(mamba::load_tokenizer_json(kTokenizer));
    std::ifstream in(kCorpus, std::ios::binary);
    r.text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return r;
  }();
  return d;
}

bool skip_without_data(benchmark::State& state) {
  if (data().tok) return false;
  state.SkipWithError(("missing " + kTokenizer + " or " + kCorpus).c_str());
  return true;
}

void BM_TokenizerEncodeColdCache(benchmark::State& state) {
  if (skip_without_data(state)) return;
  const Data& d = data();
  std::size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    d.tok->clear_cache();
    state.ResumeTiming();
    tokens = d.tok->encode(d.text).size();
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_TokenizerEncodeColdCache)->Unit(benchmark::kMillisecond);

void BM_TokenizerEncodeWarmCache(benchmark::State& state) {
  if (skip_without_data(state)) return;
  const Data& d = data();
  d.tok->encode(d.text);
  for (auto _ : state) {
    benchmark::DoNotOptimize(d.tok->encode(d.text).size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
}
BENCHMARK(BM_TokenizerEncodeWarmCache)->Unit(benchmark::kMillisecond);

void BM_TokenizerDecode(benchmark::State& state) {
  if (skip_without_data(state)) return;
  const Data& d = data();
  const std::vector<int32_t> ids = d.tok->encode(d.text);
  for (auto _ : state) {
    benchmark::DoNotOptimize(d.tok->decode(ids).size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
}
BENCHMARK(BM_TokenizerDecode)->Unit(benchmark::kMillisecond);

}  // namespace
