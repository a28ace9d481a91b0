// model.safetensors.index.json on arbitrary bytes, in a directory that holds a config.json and
// two valid shards of a micro model (shard-1.safetensors, shard-2.safetensors): the index is what
// is hostile. The loader then builds the weights.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mamba/io/checkpoint.hpp>
#include <mamba/io/gguf_writer.hpp>
#include <mamba/model/model.hpp>

#include "fuzz_common.hpp"

using namespace mamba;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file holding `names` of the micro model, as F32 with value 0.5.
std::string shard(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (const auto& [name, shape] : tensors) {
    uint64_t n = 4;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  std::string out(8, '\0');
  const uint64_t hn = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(hn >> (8 * i));
  out += h;
  const float half = 0.5f;
  for (uint64_t i = 0; i < offset / 4; ++i) out.append(reinterpret_cast<const char*>(&half), 4);
  return out;
}

fs::path make_dir() {
  const fs::path dir =
      fs::temp_directory_path() / ("mamba-fuzz-index-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const ModelConfig c = fuzz::micro_config();
  const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, K = c.d_conv, R = c.dt_rank;
  const std::string m = "backbone.layers.0.mixer.";
  write_file(dir / "config.json", fuzz::micro_config_json());
  write_file(dir / "shard-1.safetensors", shard({{"backbone.embeddings.weight", {c.vocab_size, D}},
                                                 {"backbone.layers.0.norm.weight", {D}},
                                                 {m + "in_proj.weight", {2 * E, D}},
                                                 {m + "conv1d.weight", {E, 1, K}},
                                                 {m + "conv1d.bias", {E}}}));
  write_file(dir / "shard-2.safetensors", shard({{m + "x_proj.weight", {R + 2 * N, E}},
                                                 {m + "dt_proj.weight", {E, R}},
                                                 {m + "dt_proj.bias", {E}},
                                                 {m + "A_log", {E, N}},
                                                 {m + "D", {E}},
                                                 {m + "out_proj.weight", {D, E}},
                                                 {"backbone.norm_f.weight", {D}}}));
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = make_dir();
  write_file(dir / "model.safetensors.index.json",
             std::string(reinterpret_cast<const char*>(data), size));
  fuzz::expect_errors([&] {
    const Checkpoint ck = load_config_json_checkpoint(dir.string());
    const Model model(ck);
    auto state = model.new_state();
    (void)model.step(1, state);
  });
  return 0;
}
