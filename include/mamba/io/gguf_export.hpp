#pragma once
// Writing a Checkpoint as a llama.cpp Mamba or Mamba-2 GGUF: tensor names and shapes, which
// tensors are quantized to what (llama.cpp's rules), the mamba.* / mamba2.* keys and the
// tokenizer. mamba-quantize is built on this.
//
// Which tensors are quantized (llama.cpp's llama-quantize): 2-D tensors whose name ends in
// "weight", except norms and ssm_conv1d.weight; everything else (norms, conv, biases, A, D) is
// F32. A row that is not a multiple of the target's block size falls back: Q6_K -> Q8_0 (as
// llama.cpp), and otherwise -> F16 (llama.cpp picks Q5_0 for Q4_K, a type we do not have).
// Q4_K_M (llama.cpp's mix): Q4_K, but Q6_K for the output matrix (the embedding when tied), and
// for ssm_in / ssm_out of the layers llama.cpp gives more bits (its use_more_bits rule: the first
// and last eighth of the layers and every third in between, about half) in the places where a
// transformer's attn_v / ffn_down would be.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/io/checkpoint.hpp"
#include "mamba/io/gguf_writer.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba {

// What mamba-quantize can produce: one storage type, or llama.cpp's Q4_K_M mix.
struct QuantTarget {
  DType type = DType::F32;
  bool q4_k_m = false;
};

inline std::optional<QuantTarget> parse_quant_target(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "q4_k_m") return QuantTarget{DType::Q4_K, true};
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
    if (dtype_name(t) == s) return QuantTarget{t, false};
  return std::nullopt;
}

// llama.cpp's general.file_type (llama_ftype) for a target.
inline uint32_t gguf_file_type(const QuantTarget& q) {
  if (q.q4_k_m) return 15;  // MOSTLY_Q4_K_M
  switch (q.type) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 7;
    case DType::Q4_K:
      return 14;  // MOSTLY_Q4_K_S: all Q4_K
    case DType::Q6_K:
      return 18;
    case DType::BF16:
      return 32;
  }
  return 0;
}

// HF tensor name -> llama.cpp's GGUF name ("" if no Mamba model has such a tensor). A_log and
// A both become ssm_a (GGUF stores A = -exp(A_log)).
inline std::string gguf_tensor_name(const std::string& hf) {
  static const std::map<std::string, std::string, std::less<>> top = {
      {"backbone.embeddings.weight", "token_embd.weight"},
      {"backbone.norm_f.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string, std::less<>> per_layer = {
      {"norm.weight", "attn_norm.weight"},
      {"mixer.in_proj.weight", "ssm_in.weight"},
      {"mixer.in_proj.bias", "ssm_in.bias"},
      {"mixer.conv1d.weight", "ssm_conv1d.weight"},
      {"mixer.conv1d.bias", "ssm_conv1d.bias"},
      {"mixer.x_proj.weight", "ssm_x.weight"},
      {"mixer.dt_proj.weight", "ssm_dt.weight"},
      {"mixer.dt_proj.bias", "ssm_dt.bias"},
      {"mixer.A_log", "ssm_a"},
      {"mixer.A", "ssm_a"},
      {"mixer.D", "ssm_d"},
      {"mixer.out_proj.weight", "ssm_out.weight"},
      {"mixer.out_proj.bias", "ssm_out.bias"},
      {"mixer.dt_bias", "ssm_dt.bias"},  // Mamba-2
      {"mixer.norm.weight", "ssm_norm.weight"}};
  if (auto it = top.find(hf); it != top.end()) return it->second;
  const std::string prefix = "backbone.layers.";
  if (hf.rfind(prefix, 0) != 0) return {};
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return {};
  auto it = per_layer.find(hf.substr(dot + 1));
  if (it == per_layer.end()) return {};
  return "blk." + hf.substr(prefix.size(), dot - prefix.size()) + "." + it->second;
}

// The ggml shape (ne) of a tensor of `c` with torch shape `shape` named `gguf` in the file: the
// torch shape reversed, except the conv weight {d_conv, conv_dim} (never {d_conv, 1, conv_dim}),
// and for Mamba-2 as llama.cpp writes them: A and D per head {1, nheads} (D per channel
// {headdim, nheads}), the grouped norm {d_inner/G, G}.
inline std::vector<int64_t> gguf_tensor_ne(const std::string& gguf,
                                           const std::vector<int64_t>& shape,
                                           const ModelConfig& c) {
  auto is = [&](const char* suffix) {
    const std::string s = std::string(".") + suffix;
    return gguf.size() >= s.size() && gguf.compare(gguf.size() - s.size(), s.size(), s) == 0;
  };
  if (is("ssm_conv1d.weight")) return {c.d_conv, c.conv_dim()};
  if (c.arch == Arch::Mamba2) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (is("ssm_a") || is("ssm_d"))
      return n == c.nheads ? std::vector<int64_t>{1, c.nheads}
                           : std::vector<int64_t>{c.headdim, c.nheads};
    if (is("ssm_norm.weight")) return {c.d_inner / c.ngroups, c.ngroups};
  }
  std::vector<int64_t> ne(shape.rbegin(), shape.rend());
  if (ne.empty()) ne = {1};
  return ne;
}

// llama.cpp's use_more_bits(i_layer, n_layers).
inline bool gguf_use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// The storage type of GGUF tensor `name` with ggml shape `ne` for this target.
inline DType gguf_tensor_type(const std::string& name, const std::vector<int64_t>& ne,
                              const QuantTarget& q, int64_t n_layer, bool tied) {
  const bool is_weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
  const bool quantize = is_weight && ne.size() >= 2 &&
                        name.find("norm.weight") == std::string::npos &&
                        name.find("ssm_conv1d.weight") == std::string::npos;
  if (!quantize) return DType::F32;
  DType t = q.type;
  if (q.q4_k_m) {
    const bool output = name == "output.weight" || (tied && name == "token_embd.weight");
    bool more_bits = false;
    if (name.rfind("blk.", 0) == 0 && (name.find(".ssm_in.weight") != std::string::npos ||
                                       name.find(".ssm_out.weight") != std::string::npos))
      more_bits = gguf_use_more_bits(std::stoll(name.substr(4)), n_layer);
    if (output || more_bits) t = DType::Q6_K;
  }
  const int64_t bs = traits(t).block_size;
  if (ne[0] % bs == 0) return t;
  if (t == DType::Q6_K && ne[0] % traits(DType::Q8_0).block_size == 0) return DType::Q8_0;
  return DType::F16;
}

// The mamba.* (or mamba2.*) and general.* keys of a model. A Mamba-2 time_step_limit, which
// llama.cpp has no key for, is kept in mamba2.ssm.time_step_min / time_step_max (read back by
// gguf_model_config, ignored by llama.cpp) so that a converted model computes the same.
inline void gguf_set_model_keys(GgufWriter& w, const ModelConfig& c, const QuantTarget& q,
                                const std::string& name, uint64_t context_length = 1u << 20) {
  const std::string a = arch_name(c.arch);
  w.set("general.architecture", a);
  w.set("general.name", name);
  w.set(a + ".context_length", static_cast<uint32_t>(context_length));
  w.set(a + ".embedding_length", static_cast<uint32_t>(c.d_model));
  w.set(a + ".block_count", static_cast<uint32_t>(c.n_layer));
  w.set(a + ".ssm.conv_kernel", static_cast<uint32_t>(c.d_conv));
  w.set(a + ".ssm.inner_size", static_cast<uint32_t>(c.d_inner));
  w.set(a + ".ssm.state_size", static_cast<uint32_t>(c.d_state));
  w.set(a + ".ssm.time_step_rank", static_cast<uint32_t>(c.dt_rank));
  w.set(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
  if (c.arch == Arch::Mamba2) {
    w.set(a + ".ssm.group_count", static_cast<uint32_t>(c.ngroups));
    if (c.clamps_dt()) {
      w.set(a + ".ssm.time_step_min", static_cast<float>(c.dt_min));
      w.set(a + ".ssm.time_step_max", static_cast<float>(c.dt_max));
    }
  } else {
    w.set(a + ".ssm.dt_b_c_rms", c.dt_b_c_rms);
  }
  w.set("general.file_type", gguf_file_type(q));
  if (traits(q.type).block_size > 1) w.set("general.quantization_version", uint32_t{2});
}

// tokenizer.ggml.* from a Hugging Face tokenizer.json (a byte-level BPE): every id below
// max(vocab_size, ids used) gets a token ("[PAD<id>]" of type user-defined for ids the file
// lacks, as llama.cpp's converter writes them),
// added tokens are control (special) or user-defined, merges as "a b". bos/eos come from
// config.json beside it when it says, else from "<|endoftext|>".
inline void gguf_set_tokenizer_json(GgufWriter& w, const std::string& path, int64_t vocab_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": bad JSON: " + e.what());
  }
  try {
    const auto& model = j.at("model");
    if (model.value("type", "BPE") != "BPE") throw FormatError(path + ": model type is not BPE");
    std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> (token, type)
    for (const auto& [tok, id] : model.at("vocab").items()) by_id[id.get<int64_t>()] = {tok, 1};
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const auto& a : j["added_tokens"])
        by_id[a.at("id").get<int64_t>()] = {a.at("content").get<std::string>(),
                                            a.value("special", false) ? 3 : 4};
    if (!by_id.empty() && by_id.begin()->first < 0) throw FormatError(path + ": negative token id");
    const int64_t n = std::max<int64_t>(vocab_size, by_id.empty() ? 0 : by_id.rbegin()->first + 1);
    if (n > (int64_t{1} << 24))
      throw FormatError(path + ": token ids up to " + std::to_string(n) + " are absurd");
    std::vector<std::string> tokens(static_cast<size_t>(n));
    std::vector<int32_t> types(static_cast<size_t>(n), 4);
    for (int64_t i = 0; i < n; ++i) tokens[i] = "[PAD" + std::to_string(i) + "]";
    for (const auto& [id, tt] : by_id) {
      tokens[id] = tt.first;
      types[id] = tt.second;
    }
    std::vector<std::string> merges;
    if (model.contains("merges"))
      for (const auto& m : model["merges"])
        merges.push_back(m.is_array()
                             ? m.at(0).get<std::string>() + " " + m.at(1).get<std::string>()
                             : m.get<std::string>());
    // GPT-NeoX's tokenizer (NFC normalizer) is llama.cpp's "olmo"; no normalizer is plain GPT-2.
    const bool nfc = j.contains("normalizer") && !j["normalizer"].is_null();
    std::optional<int64_t> bos, eos;
    const auto cfg = std::filesystem::path(path).parent_path() / "config.json";
    if (std::filesystem::exists(cfg)) {
      std::ifstream cf(cfg);
      const auto c = nlohmann::json::parse(cf, nullptr, false);
      if (c.is_object() && c.contains("bos_token_id") && c["bos_token_id"].is_number_integer())
        bos = c["bos_token_id"].get<int64_t>();
      if (c.is_object() && c.contains("eos_token_id") && c["eos_token_id"].is_number_integer())
        eos = c["eos_token_id"].get<int64_t>();
    }
    const auto eot = std::find(tokens.begin(), tokens.end(), "<|endoftext|>");
    if (eot != tokens.end()) {
      if (!bos) bos = eot - tokens.begin();
      if (!eos) eos = eot - tokens.begin();
    }
    w.set("tokenizer.ggml.model", "gpt2");
    w.set("tokenizer.ggml.pre", nfc ? "olmo" : "gpt-2");
    w.set_array("tokenizer.ggml.tokens", tokens);
    w.set_array("tokenizer.ggml.token_type", types);
    w.set_array("tokenizer.ggml.merges", merges);
    if (bos && *bos >= 0 && *bos < n)
      w.set("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*bos));
    if (eos && *eos >= 0 && *eos < n)
      w.set("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*eos));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not a tokenizer.json this can convert: " + e.what());
  }
}

// Adds every tensor of an F32-vector checkpoint as stored, under its GGUF name and ggml shape
// (gguf_tensor_ne): A_log becomes ssm_a = -exp(A_log). For tools that write a checkpoint built in
// memory (benchmarks, fuzz seeds) without converting its matrices.
inline void gguf_add_checkpoint_tensors(GgufWriter& w, const Checkpoint& ck) {
  for (const auto& [name, t] : ck.tensors) {
    const std::string g = gguf_tensor_name(name);
    std::vector<int64_t> ne = gguf_tensor_ne(g, t.shape, ck.config);
    std::vector<std::byte> data(t.data, t.data + t.nbytes);
    if (name.find("A_log") != std::string::npos) {
      if (t.type != DType::F32) throw ArgumentError(name + ": A_log must be F32 here");
      for (size_t i = 0; i < data.size(); i += 4) {
        float v;
        std::memcpy(&v, &data[i], 4);
        v = -std::exp(v);
        std::memcpy(&data[i], &v, 4);
      }
    }
    w.add_tensor(g, t.type, ne, std::move(data));
  }
}

}  // namespace mamba
