// mamba-generate: run a Mamba model on a prompt of token ids.
//
//   mamba-generate -m MODEL --tokens 1,2,3 [-n N] [--logits-out FILE]
//
// Exit code 0 on success; 1 with a one-line message on any error.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <mamba/mamba.hpp>

namespace {

struct Options {
  std::string model = MAMBA_DEFAULT_MODEL;
  std::vector<int32_t> tokens;
  int n_predict = 0;
  std::string logits_out;
  bool quiet = false;
};

const char* kUsage =
    "usage: mamba-generate [-m MODEL] --tokens ID,ID,... [-n N] [--logits-out FILE] [--quiet]\n"
    "  -m MODEL            checkpoint directory, .safetensors file (config.json beside it)\n"
    "                      or .gguf file (default: the model shipped in the repository)\n"
    "  --tokens IDS        the prompt as comma-separated token ids\n"
    "  -n N                greedily decode N more tokens and print their ids (default 0)\n"
    "  --logits-out FILE   write float32 logits for every prompt position, row-major\n"
    "                      [n_tokens][vocab_size]\n"
    "  --quiet             no timing line on stderr\n"
    "  -h, --help          this text\n";

[[noreturn]] void usage_error(const std::string& what) {
  throw mamba::ArgumentError(what + " (see --help)");
}

long parse_int(const std::string& flag, const std::string& s, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    usage_error(flag + ": '" + s + "' is not an integer in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return v;
}

std::vector<int32_t> parse_tokens(const std::string& s) {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    out.push_back(static_cast<int32_t>(
        parse_int("--tokens", s.substr(pos, comma - pos), 0, INT32_MAX)));
    pos = comma + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "-m" || a == "--model") {
      o.model = value(i);
    } else if (a == "--tokens") {
      o.tokens = parse_tokens(value(i));
    } else if (a == "-n" || a == "--n-predict") {
      o.n_predict = static_cast<int>(parse_int(a, value(i), 0, 1 << 24));
    } else if (a == "--logits-out") {
      o.logits_out = value(i);
    } else if (a == "--quiet") {
      o.quiet = true;
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }
  if (o.tokens.empty()) usage_error("no prompt: give --tokens");
  return o;
}

void write_logits(const std::string& path, const std::vector<float>& logits) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(logits.data()),
            static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) throw mamba::Error(path + ": cannot write logits");
}

int32_t argmax(const float* v, int64_t n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

int run(const Options& o) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto model = mamba::Model::load(o.model);
  const auto t1 = clock::now();
  auto state = model.new_state();
  const int64_t vocab = model.vocab_size();

  const auto which = o.logits_out.empty() ? mamba::Logits::Last : mamba::Logits::All;
  std::vector<float> logits = model.prefill(o.tokens, state, which);
  const auto t2 = clock::now();
  if (!o.logits_out.empty()) write_logits(o.logits_out, logits);

  std::vector<float> next_logits(logits.end() - vocab, logits.end());
  for (int i = 0; i < o.n_predict; ++i) {
    const int32_t next = argmax(next_logits.data(), vocab);
    std::printf("%s%d", i ? " " : "", next);
    std::fflush(stdout);
    if (i + 1 < o.n_predict) model.step(next, state, next_logits);
  }
  if (o.n_predict > 0) std::printf("\n");
  const auto t3 = clock::now();

  if (!o.quiet) {
    const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
    std::fprintf(stderr,
                 "load %.1f ms | prompt %zu tokens, %.1f tokens/s | generated %d tokens, "
                 "%.1f tokens/s\n",
                 1e3 * secs(t1 - t0), o.tokens.size(), o.tokens.size() / secs(t2 - t1),
                 o.n_predict, o.n_predict > 1 ? (o.n_predict - 1) / secs(t3 - t2) : 0.0);
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
