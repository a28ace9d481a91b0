// mamba-quantize: write a Mamba checkpoint as a llama.cpp GGUF in one storage type.
//
//   mamba-quantize INPUT OUTPUT.gguf TYPE
//
// INPUT: a Hugging Face or state-spaces directory, a .safetensors or pytorch_model.bin file
// (config.json beside it) or a .gguf.
// TYPE: f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m. Which tensors are quantized, the fallbacks
// and the Q4_K_M mix follow llama.cpp (see mamba/io/gguf_export.hpp). The tokenizer goes into
// tokenizer.ggml.* from a tokenizer.json beside the input, or is copied from a GGUF input.
// Progress on stderr; exit code 0 on success, 1 with a one-line message on any error.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mamba/io/gguf.hpp>
#include <mamba/io/gguf_checkpoint.hpp>
#include <mamba/io/gguf_export.hpp>
#include <mamba/io/load.hpp>
#include <mamba/ops/quant.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

const char* kUsage =
    "usage: mamba-quantize INPUT OUTPUT.gguf TYPE\n"
    "  INPUT   model directory, .safetensors or pytorch_model.bin file (config.json beside\n"
    "          it) or .gguf\n"
    "  TYPE    f32 | f16 | bf16 | q8_0 | q4_0 | q4_k | q6_k | q4_k_m\n";

double mib(uint64_t b) {
  return static_cast<double>(b) / (1024.0 * 1024.0);
}

struct Job {
  std::string name;  // GGUF name
  const mamba::TensorRef* src;
  std::vector<int64_t> ne;  // ggml order
  mamba::DType type;
  bool a_from_log;  // the source is A_log: store -exp(A_log)
};

// Sort key: token_embd, the layers in order (their tensors in a fixed order), then the output.
std::pair<int64_t, std::string> order(const std::string& g) {
  if (g == "token_embd.weight") return {-1, g};
  if (g.rfind("blk.", 0) == 0) return {std::stoll(g.substr(4)), g};
  return {INT64_MAX, g};
}

// Decodes rows of the source, converts, encodes rows of the target; rows split across threads.
void convert(const Job& j, std::span<std::byte> dst) {
  const int64_t cols = j.ne[0];
  int64_t rows = 1;
  for (size_t d = 1; d < j.ne.size(); ++d) rows *= j.ne[d];
  const int64_t src_rb = mamba::row_bytes(j.src->type, cols),
                dst_rb = mamba::row_bytes(j.type, cols);
  auto work = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      mamba::dequantize_row(j.src->type, j.src->data + r * src_rb, row.data(), cols);
      if (j.a_from_log)
        for (auto& v : row) v = -std::exp(v);
      mamba::quantize_row(j.type, row.data(), dst.data() + r * dst_rb, cols);
    }
  };
  const int64_t n_threads =
      std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, std::max<int64_t>(1, rows / 64));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < n_threads; ++t)
    pool.emplace_back(work, rows * t / n_threads, rows * (t + 1) / n_threads);
  work(0, rows / n_threads);
  for (auto& th : pool) th.join();
}

int run(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc != 4) throw mamba::ArgumentError("expected INPUT OUTPUT.gguf TYPE (see --help)");
  const std::string input = argv[1], output = argv[2];
  const auto target = mamba::parse_quant_target(argv[3]);
  if (!target)
    throw mamba::ArgumentError(std::string("unknown TYPE '") + argv[3] +
                               "' (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m)");
  const mamba::Checkpoint ck = mamba::load_checkpoint(input);
  const mamba::ModelConfig& c = ck.config;
  const bool gguf_input = std::filesystem::is_regular_file(input) && mamba::is_gguf_file(input);

  mamba::GgufWriter w;
  std::filesystem::path ip = std::filesystem::absolute(input).lexically_normal();
  if (ip.filename().empty()) ip = ip.parent_path();
  std::string name =
      std::filesystem::is_directory(ip) ? ip.filename().string() : ip.stem().string();
  uint64_t context_length = 1u << 20;  // Mamba has no limit; llama.cpp's converter writes 2^20
  std::optional<mamba::GgufFile> src_gguf;
  if (gguf_input) {
    src_gguf = mamba::GgufFile::open(input);
    if (src_gguf->has("general.name")) name = src_gguf->get_string("general.name");
    const std::string key = std::string(mamba::arch_name(c.arch)) + ".context_length";
    if (src_gguf->has(key)) context_length = src_gguf->get_uint(key);
  }
  mamba::gguf_set_model_keys(w, c, *target, name, context_length);
  if (src_gguf) {
    for (const auto& k : src_gguf->keys())
      if (k.rfind("tokenizer.", 0) == 0) {
        const auto raw = src_gguf->raw_value(k);
        w.set_raw(k, raw.type, raw.bytes);
      }
  } else if (ck.tokenizer_json) {
    mamba::gguf_set_tokenizer_json(w, *ck.tokenizer_json, c.vocab_size);
  }

  std::vector<Job> jobs;
  uint64_t before = 0;
  for (const auto& [hf, t] : ck.tensors) {
    const std::string g = mamba::gguf_tensor_name(hf);
    if (g.empty()) {
      std::fprintf(stderr, "mamba-quantize: skipping tensor '%s' (not part of a Mamba model)\n",
                   hf.c_str());
      continue;
    }
    const std::vector<int64_t> ne = mamba::gguf_tensor_ne(g, t.shape, c);
    const mamba::DType type = mamba::gguf_tensor_type(g, ne, *target, c.n_layer, c.tie_embeddings);
    const bool from_log = hf.size() >= 5 && hf.compare(hf.size() - 5, 5, "A_log") == 0;
    jobs.push_back({g, &t, ne, type, from_log});
    before += t.nbytes;
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const Job& a, const Job& b) { return order(a.name) < order(b.name); });
  for (const auto& j : jobs)
    w.add_tensor(j.name, j.type, j.ne, [&j](std::span<std::byte> dst) { convert(j, dst); });

  const uint64_t after = w.write(output, [&](size_t k, size_t n, uint64_t bytes) {
    const Job& j = jobs[k - 1];
    std::string shape;
    for (size_t d = 0; d < j.ne.size(); ++d) shape += (d ? " x " : "") + std::to_string(j.ne[d]);
    std::fprintf(stderr, "[%zu/%zu] %-28s %-5s -> %-5s {%s}  %.2f MiB written\n", k, n,
                 j.name.c_str(), std::string(mamba::dtype_name(j.src->type)).c_str(),
                 std::string(mamba::dtype_name(j.type)).c_str(), shape.c_str(), mib(bytes));
  });
  std::fprintf(stderr,
               "mamba-quantize: %s: %zu tensors, %.2f MiB of weights -> %.2f MiB file (%s)\n",
               output.c_str(), jobs.size(), mib(before), mib(after), argv[3]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mamba-quantize: error: %s\n", e.what());
    return 1;
  }
}
