// Writes the seed corpora of the fuzz harnesses: fuzz/corpus/<harness>/, small valid files made
// by the project's own writers, the small fixtures of tests/fixtures/, and edge cases. The output
// is deterministic; re-run it (build target mamba-fuzz-corpus) after a format change:
//
//   build-fuzz/bin/mamba-fuzz-corpus fuzz/corpus tests/fixtures
//
// fuzz/corpus/torch/ (torch.save archives) is written by fuzz/make_torch_seed.py instead.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mamba/io/gguf_export.hpp>
#include <mamba/model/state_io.hpp>
#include <mamba/ops/half.hpp>
#include <mamba/tokenizer/tokenizer_json.hpp>

#include "../bench/random_checkpoint.hpp"
#include "fuzz_common.hpp"

using namespace mamba;
namespace fs = std::filesystem;

namespace {

fs::path out_root;

void put(const std::string& harness, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_root / harness;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error((dir / name).string() + ": cannot write");
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open");
  return {std::istreambuf_iterator<char>(in), {}};
}

void copy(const std::string& harness, const fs::path& from, const std::string& name) {
  put(harness, name, read(from));
}

// A checkpoint's tensors as a safetensors file, converted to `type` (F32, F16 or BF16).
std::string safetensors_bytes(const Checkpoint& ck, DType type, bool state_spaces_names = false) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const auto& [name, t] : ck.tensors) {
    std::vector<float> v(t.nbytes / 4);
    std::memcpy(v.data(), t.data, v.size() * 4);
    const size_t begin = data.size();
    for (float x : v) {
      if (type == DType::F32) {
        data.append(reinterpret_cast<const char*>(&x), 4);
      } else {
        const uint16_t h = type == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
        data.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
    const std::string key = state_spaces_names && name == "backbone.embeddings.weight"
                                ? "backbone.embedding.weight"
                                : name;
    header[key] = {{"dtype", type == DType::F32   ? "F32"
                             : type == DType::F16 ? "F16"
                                                  : "BF16"},
                   {"shape", t.shape},
                   {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>(static_cast<uint64_t>(h.size()) >> (8 * i));
  return out + h + data;
}

std::string gguf_bytes(const Checkpoint& ck, DType type, const fs::path& tokenizer_json = {}) {
  const fs::path tmp = fs::temp_directory_path() / "mamba-fuzz-corpus.gguf";
  GgufWriter w;
  gguf_set_model_keys(w, ck.config, QuantTarget{type, false}, "micro");
  if (!tokenizer_json.empty()) gguf_set_tokenizer_json(w, tokenizer_json.string(), 0);
  gguf_add_checkpoint_tensors(w, ck);
  w.write(tmp.string());
  std::string bytes = read(tmp);
  fs::remove(tmp);
  return bytes;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 3) throw ArgumentError("usage: mamba-fuzz-corpus OUT_DIR FIXTURES_DIR");
    out_root = argv[1];
    const fs::path fixtures = argv[2];
    const ModelConfig micro = fuzz::micro_config();

    // GGUF: the micro model as F32 and F16, with a tokenizer, and with Q8_0 matrices; the small
    // GGUF fixtures (every key and tensor type; version 2 with alignment 64); edge cases.
    const Checkpoint f32 = bench::random_checkpoint(micro, DType::F32, 1);
    put("gguf", "micro_f32.gguf", gguf_bytes(f32, DType::F32));
    put("gguf", "micro_f16_tokenizer.gguf",
        gguf_bytes(bench::random_checkpoint(micro, DType::F16, 2), DType::F16,
                   fixtures / "gguf_models/hf256/tokenizer.json"));
    ModelConfig wide = micro;
    wide.d_model = 32;
    wide.d_inner = 64;
    put("gguf", "q8_0.gguf",
        gguf_bytes(bench::random_checkpoint(wide, DType::Q8_0, 3), DType::Q8_0));
    put("gguf", "micro_mamba2_f32.gguf",
        gguf_bytes(bench::random_checkpoint(fuzz::micro_mamba2_config(), DType::F32, 4),
                   DType::F32));
    copy("gguf", fixtures / "gguf/all_types.gguf", "all_types.gguf");
    copy("gguf", fixtures / "gguf/v2_align64.gguf", "v2_align64.gguf");
    put("gguf", "empty", "");
    put("gguf", "magic_only", "GGUF");
    put("gguf", "huge_counts", std::string("GGUF\3\0\0\0", 8) + le64(~0ull) + le64(~0ull));

    // safetensors: the micro model as F32, F16 and BF16, with state-spaces naming; edge cases.
    put("safetensors", "micro_f32.safetensors", safetensors_bytes(f32, DType::F32));
    put("safetensors", "micro_f16.safetensors", safetensors_bytes(f32, DType::F16));
    put("safetensors", "micro_bf16_state_spaces.safetensors",
        safetensors_bytes(f32, DType::BF16, true));
    put("safetensors", "empty_header", le64(2) + "{}");
    put("safetensors", "other_dtypes",
        le64(120) + R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)" +
            R"("b":{"dtype":"U8","shape":[2,0],"data_offsets":[8,8]},"__metadata__":{}}       )" +
            std::string(8, '\0'));
    put("safetensors", "huge_header", le64(~0ull));

    // model.safetensors.index.json for the shards the harness writes beside it.
    {
      nlohmann::ordered_json map = nlohmann::ordered_json::object();
      const std::string m = "backbone.layers.0.mixer.";
      for (const char* n : {"backbone.embeddings.weight", "backbone.layers.0.norm.weight"})
        map[n] = "shard-1.safetensors";
      for (const char* n : {"in_proj.weight", "conv1d.weight", "conv1d.bias"})
        map[m + n] = "shard-1.safetensors";
      for (const char* n :
           {"x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight"})
        map[m + n] = "shard-2.safetensors";
      map["backbone.norm_f.weight"] = "shard-2.safetensors";
      nlohmann::ordered_json j = {{"metadata", {{"total_size", 1000}}}, {"weight_map", map}};
      put("safetensors_index", "valid.json", j.dump(1));
      map["backbone.norm_f.weight"] = "../shard-2.safetensors";
      put("safetensors_index", "escape.json", nlohmann::ordered_json{{"weight_map", map}}.dump());
      put("safetensors_index", "fixture.json",
          read(fixtures / "sharded/model.safetensors.index.json"));
    }

    // config.json: every fixture's, the micro one, and edge cases.
    for (const char* d : {"tiny", "bytes", "falcon", "state_spaces", "untied_bias", "sharded",
                          "mamba2_tiny", "mamba2_groups", "mamba2_ss"})
      copy("config", fixtures / d / "config.json", std::string(d) + ".json");
    put("config", "micro.json", fuzz::micro_config_json());
    put("config", "mamba2.json", R"({"model_type":"mamba2","hidden_size":8})");
    put("config", "auto_rank.json",
        R"({"d_model":8,"n_layer":1,"vocab_size":5,"ssm_cfg":{"dt_rank":"auto","d_state":2},)"
        R"("pad_vocab_size_multiple":8})");
    put("config", "huge.json",
        R"({"hidden_size":9223372036854775807,"num_hidden_layers":1,"vocab_size":1,)"
        R"("expand":9223372036854775807,"time_step_rank":-1})");

    // tokenizer.json: the fixtures, the synthetic tokenizer the other harnesses use (small
    // variant: no regex), the byte tokenizer.
    copy("tokenizer_json", fixtures / "gguf_models/hf256/tokenizer.json", "hf256.json");
    copy("tokenizer_json", fixtures / "byte_tokenizer.json", "bytes.json");
    put("tokenizer_json", "minimal.json",
        R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},)"
        R"("added_tokens":[{"id":3,"content":"<s>","special":true}],"normalizer":{"type":"NFC"}})");

    // encode: first byte picks the tokenizer and parse_special; the rest is text.
    const std::vector<std::string> texts = {
        "ROMEO:\nBut soft, what light through yonder window breaks?\n",
        "Hello  world,   the end<|endoftext|>  x's 123 4567 don't",
        "h\xc3\xa9llo e\xcc\x81t\xc3\xa9 \xe2\x80\x99 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
        "bad \xff\xfe \xc3 \xe2\x80 \xf0\x9f\x98 <mask> word words",
        std::string("\0\t\r\n \x7f", 6)};
    for (size_t i = 0; i < texts.size(); ++i)
      for (int sel : {0, 1, 4, 7})
        put("tokenizer_encode", "text" + std::to_string(i) + "_" + std::to_string(sel),
            std::string(1, static_cast<char>(sel)) + texts[i]);

    // streaming decode: ids (two bytes each), a multi-byte character split over tokens.
    {
      auto ids = [](int sel, std::vector<int> v) {
        std::string s(1, static_cast<char>(sel));
        for (int id : v) s += std::string{static_cast<char>(id & 0xff), static_cast<char>(id >> 8)};
        return s;
      };
      put("stream_decode", "bytes_utf8", ids(1, {0x68, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x21}));
      put("stream_decode", "bytes_cut", ids(1, {0xe4, 0xb8, 0x41, 0xff}));
      put("stream_decode", "synthetic", ids(0, {300, 256, 1, 600, 700, 770, 771, 772, 776}));
      put("stream_decode", "skip_special", ids(3, {72, 773, 774, 105}));
      put("stream_decode", "past_end", ids(0, {65, 0xff90}));
    }

    // State files of the micro model: float and double, with and without token ids.
    {
      BasicState<float> s(micro);
      for (auto& l : s.layers) {
        for (size_t i = 0; i < l.conv.size(); ++i) l.conv[i] = 0.25f * static_cast<float>(i);
        for (size_t i = 0; i < l.ssm.size(); ++i) l.ssm[i] = -0.5f * static_cast<float>(i);
      }
      s.n_tokens = 3;
      auto str = [](const std::vector<std::byte>& b) {
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
      };
      const int32_t toks[] = {1, 2, 7};
      put("state", "float_tokens.state", str(state_to_bytes(micro, s, toks)));
      put("state", "float.state", str(state_to_bytes(micro, s)));
      BasicState<double> d(micro);
      d.n_tokens = 0;
      put("state", "double.state", str(state_to_bytes(micro, d)));
      put("state", "header_only", str(state_to_bytes(micro, s)).substr(0, 128));
      const ModelConfig micro2 = fuzz::micro_mamba2_config();
      put("state", "mamba2.state", str(state_to_bytes(micro2, BasicState<float>(micro2), toks)));
    }
    std::cout << "wrote seeds under " << out_root.string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mamba-fuzz-corpus: " << e.what() << "\n";
    return 1;
  }
}
