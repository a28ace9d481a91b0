// mamba-generate: text generation with a Mamba model.
//
//   mamba-generate [-m MODEL] -p "ROMEO:" [-n 200] [--temp 0.8] [--seed 1] ...
//
// Text streams to stdout as it is generated; the timing line goes to stderr. Exit code 0 on
// success; 1 with a one-line message on any error.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mamba/generate/generator.hpp>
#include <mamba/mamba.hpp>
#include <mamba/model/check_weights.hpp>
#include <mamba/model/state_io.hpp>
#include <mamba/tokenizer/load_tokenizer.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string model = MAMBA_DEFAULT_MODEL;
  std::optional<std::string> prompt;
  std::optional<std::vector<int32_t>> tokens;
  int n_predict = 128;
  int threads = 0;  // 0: the library's default
  mamba::SamplerParams sampling;
  std::vector<std::string> stop;
  std::string prompt_cache;
  std::string logits_out;
  bool interactive = false;
  bool quiet = false;
  bool check_weights = false;
  bool float_dot = false;
};

const char* kUsage =
    "usage: mamba-generate [options]\n"
    "  -m, --model PATH        checkpoint directory, .safetensors or pytorch_model.bin file\n"
    "                          (config.json beside it) or .gguf file (default: the model\n"
    "                          shipped in the repository)\n"
    "  -p, --prompt TEXT       the prompt\n"
    "  -f, --file FILE         read the prompt from FILE\n"
    "      --tokens IDS        the prompt as comma-separated token ids\n"
    "  -n, --n-predict N       tokens to generate (default 128)\n"
    "  -t, --threads N         threads (default: all cores)\n"
    "      --temp T            temperature; 0 is greedy (default 0.8)\n"
    "      --top-k K           keep the K most likely tokens; 0 is off (default 40)\n"
    "      --top-p P           nucleus sampling; 1 is off (default 0.95)\n"
    "      --min-p P           drop tokens below P x the top probability; 0 is off (default 0.05)\n"
    "      --repeat-penalty X  penalty for tokens in the recent window; 1 is off (default 1)\n"
    "      --repeat-last-n N   size of that window (default 64)\n"
    "      --frequency-penalty X, --presence-penalty X   OpenAI-style penalties (default 0)\n"
    "      --seed S            random seed (default 0); the same seed gives the same text\n"
    "      --stop TEXT         stop when TEXT is generated (may be given several times)\n"
    "      --prompt-cache FILE reuse (or create) the state after the prompt\n"
    "      --logits-out FILE   write float32 logits for every prompt position, row-major\n"
    "                          [n_tokens][vocab_size]\n"
    "  -i, --interactive       after generating, read further input from stdin, one line a turn,\n"
    "                          keeping the state across turns\n"
    "      --quiet             no timing line on stderr\n"
    "      --check-weights     scan every weight for NaN/Inf, report where, and exit (1 if any)\n"
    "      --float-dot         decode block-quantized weights against float activations (exact\n"
    "                          up to float rounding, slower) instead of 8-bit ones (the\n"
    "                          default where the CPU has AVX2 or AVX-512 VNNI)\n"
    "  -h, --help              this text\n";

[[noreturn]] void usage_error(const std::string& what) {
  throw mamba::ArgumentError(what + " (see --help)");
}

template <class V>
V parse_number(const std::string& flag, const std::string& s, V lo, V hi) {
  char* end = nullptr;
  errno = 0;
  const auto v = std::is_integral_v<V> ? static_cast<long double>(std::strtoll(s.c_str(), &end, 10))
                                       : std::strtold(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno != 0 || !(v >= lo && v <= hi))
    usage_error(flag + ": '" + s + "' is not a number in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return static_cast<V>(v);
}

std::vector<int32_t> parse_tokens(const std::string& s) {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    out.push_back(parse_number<int32_t>("--tokens", s.substr(pos, comma - pos), 0, INT32_MAX));
    pos = comma + 1;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw mamba::Error(path + ": cannot open prompt file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Options parse(int argc, char** argv) {
  Options o;
  o.sampling.seed = 0;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto& s = o.sampling;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "-m" || a == "--model") {
      o.model = value(i);
    } else if (a == "-p" || a == "--prompt") {
      o.prompt = value(i);
    } else if (a == "-f" || a == "--file") {
      o.prompt = read_file(value(i));
    } else if (a == "--tokens") {
      o.tokens = parse_tokens(value(i));
    } else if (a == "-n" || a == "--n-predict") {
      o.n_predict = parse_number<int>(a, value(i), 0, 1 << 24);
    } else if (a == "-t" || a == "--threads") {
      o.threads = parse_number<int>(a, value(i), 1, 1024);
    } else if (a == "--temp") {
      s.temperature = parse_number<float>(a, value(i), 0, 1e6);
    } else if (a == "--top-k") {
      s.top_k = parse_number<int32_t>(a, value(i), 0, INT32_MAX);
    } else if (a == "--top-p") {
      s.top_p = parse_number<float>(a, value(i), 0, 1);
    } else if (a == "--min-p") {
      s.min_p = parse_number<float>(a, value(i), 0, 1);
    } else if (a == "--repeat-penalty") {
      s.repeat_penalty = parse_number<float>(a, value(i), 0, 1e6);
    } else if (a == "--repeat-last-n") {
      s.repeat_last_n = parse_number<int32_t>(a, value(i), 0, 1 << 20);
    } else if (a == "--frequency-penalty") {
      s.frequency_penalty = parse_number<float>(a, value(i), -1e6, 1e6);
    } else if (a == "--presence-penalty") {
      s.presence_penalty = parse_number<float>(a, value(i), -1e6, 1e6);
    } else if (a == "--seed") {
      s.seed = parse_number<uint64_t>(a, value(i), 0, UINT32_MAX);
    } else if (a == "--stop") {
      o.stop.push_back(value(i));
      if (o.stop.back().empty()) usage_error("--stop: empty text");
    } else if (a == "--prompt-cache") {
      o.prompt_cache = value(i);
    } else if (a == "--logits-out") {
      o.logits_out = value(i);
    } else if (a == "-i" || a == "--interactive") {
      o.interactive = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--check-weights") {
      o.check_weights = true;
    } else if (a == "--float-dot") {
      o.float_dot = true;
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }
  if (o.prompt && o.tokens)
    usage_error("give the prompt as text (-p, -f) or as --tokens, not both");
  if (!o.prompt && !o.tokens && !o.interactive && !o.check_weights)
    usage_error("no prompt: give -p, -f or --tokens");
  return o;
}

// The model's own tokenizer: tokenizer.json beside the checkpoint, or the GGUF's vocabulary.
std::optional<mamba::Tokenizer> model_tokenizer(const mamba::Model& model) {
  if (model.tokenizer_json()) return mamba::load_tokenizer(*model.tokenizer_json());
  if (std::filesystem::is_regular_file(model.path()) && model.path().ends_with(".gguf")) {
    const auto gguf = mamba::GgufFile::open(model.path());
    if (mamba::gguf_has_tokenizer(gguf)) return mamba::tokenizer_from_gguf(gguf);
  }
  return std::nullopt;
}

void write_logits(const std::string& path, const std::vector<float>& logits) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(logits.data()),
            static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) throw mamba::Error(path + ": cannot write logits");
}

// Prefills all of `prompt` but its last token into `state`, through the prompt cache when one is
// given: the cache holds the state after a prefix of a prompt, together with that prefix; a
// prompt that starts with it prefills only the rest. (The last token is left for the generator,
// whose first sample needs its logits.) Returns the number of tokens reused from the cache.
size_t prefill_with_cache(const mamba::Model& model, const std::string& cache,
                          const std::vector<int32_t>& prompt, mamba::State& state) {
  const std::span<const int32_t> head(prompt.data(), prompt.size() - 1);
  size_t reused = 0;
  if (!cache.empty() && std::filesystem::exists(cache)) {
    auto saved = mamba::load_state<float>(cache, model.config());
    const auto& t = saved.tokens;
    if (t.size() <= head.size() && std::equal(t.begin(), t.end(), head.begin())) {
      state = std::move(saved.state);
      reused = t.size();
    }
  }
  if (reused < head.size()) model.prefill(head.subspan(reused), state);
  if (!cache.empty() && reused < head.size()) mamba::save_state(cache, model.config(), state, head);
  return reused;
}

int run(const Options& o) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto model = mamba::Model::load(o.model);
  if (o.check_weights) {
    const auto issues = mamba::check_weights(model);
    for (const auto& w : issues) std::printf("%s\n", w.describe().c_str());
    if (!issues.empty())
      throw mamba::Error(o.model + ": " + std::to_string(issues.size()) +
                         " tensors hold NaN or Inf weights (first: " + issues[0].describe() + ")");
    std::printf("%s: every weight is finite\n", o.model.c_str());
    return 0;
  }
  const std::optional<mamba::Tokenizer> tok = model_tokenizer(model);
  const double load_ms = 1e3 * std::chrono::duration<double>(clock::now() - t0).count();
  if (o.threads > 0) mamba::set_num_threads(o.threads);
  if (o.float_dot) mamba::set_quantized_dot(mamba::QuantizedDot::Float);
  if (!tok && (o.prompt || o.interactive || !o.stop.empty()))
    throw mamba::Error(o.model + ": the model has no tokenizer; give the prompt as --tokens");

  std::vector<int32_t> prompt = o.tokens ? *o.tokens : std::vector<int32_t>();
  if (o.prompt) prompt = tok->encode(*o.prompt);
  if (prompt.empty() && tok && tok->bos_id() >= 0) prompt = {tok->bos_id()};
  if (prompt.empty() && !o.interactive) throw mamba::ArgumentError("the prompt is empty");

  auto state = model.new_state();
  if (!o.logits_out.empty() && !prompt.empty()) {
    auto probe = model.new_state();
    write_logits(o.logits_out, model.prefill(prompt, probe, mamba::Logits::All));
  }

  mamba::Sampler sampler(o.sampling);
  mamba::GenerateParams params;
  params.max_tokens = o.n_predict;
  params.stop = o.stop;
  const mamba::Generator generator(model, tok ? &*tok : nullptr);
  bool first_id = true;
  auto print = [&](const mamba::TokenEvent& e) {
    if (tok) {
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
    } else {
      std::printf("%s%d", first_id ? "" : " ", e.id);
      first_id = false;
    }
    std::fflush(stdout);
    return true;
  };
  // One turn: `input` is all prefilled but its last token, which starts the generation.
  auto turn = [&](const std::vector<int32_t>& input, size_t reused, double prefill_seconds) {
    const std::span<const int32_t> last = std::span(input).last(1);
    mamba::GenerateStats stats;
    if (o.n_predict > 0)
      stats = generator.generate(last, state, sampler, params, print);
    else
      model.prefill(last, state);
    if (!tok && o.n_predict > 0) std::printf("\n");
    const double prompt_seconds = prefill_seconds + stats.prompt_seconds;
    if (!o.quiet)
      std::fprintf(stderr,
                   "\nload %.1f ms | prompt %zu tokens (%zu from cache), %.1f tokens/s | "
                   "generated %lld tokens, %.1f tokens/s\n",
                   load_ms, input.size(), reused,
                   prompt_seconds > 0 ? (input.size() - reused) / prompt_seconds : 0.0,
                   static_cast<long long>(stats.generated_tokens),
                   stats.generated_tokens_per_second());
  };

  if (!prompt.empty()) {
    const auto t1 = clock::now();
    const size_t reused = prefill_with_cache(model, o.prompt_cache, prompt, state);
    const double prefill_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    if (tok && o.prompt) std::fwrite(o.prompt->data(), 1, o.prompt->size(), stdout);
    turn(prompt, reused, prefill_seconds);
  }
  if (o.interactive) {
    std::string line;
    while (true) {
      if (!o.quiet) std::fputs("\n> ", stderr);
      if (!std::getline(std::cin, line)) break;
      std::vector<int32_t> input = tok->encode(line + "\n");
      if (input.empty()) continue;
      const auto t1 = clock::now();
      if (input.size() > 1) model.prefill(std::span(input).first(input.size() - 1), state);
      turn(input, 0, std::chrono::duration<double>(clock::now() - t1).count());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mamba-generate: %s\n", e.what());
    return 1;
  }
}
