#pragma once
// A llama.cpp Mamba GGUF (general.architecture "mamba" or "mamba2") seen as a Checkpoint: the
// config from the mamba.* / mamba2.* keys, the tensors renamed to Hugging Face's names with shapes
// in torch order (the ggml `ne` reversed; no data is moved or converted).
//
//   token_embd.weight          backbone.embeddings.weight         (vocab, d_model)
//   output_norm.weight         backbone.norm_f.weight
//   output.weight              lm_head.weight                     absent: tied to the embedding
//   blk.N.attn_norm.weight     backbone.layers.N.norm.weight
//   blk.N.ssm_in.weight        ...mixer.in_proj.weight            (+ .bias if present)
//   blk.N.ssm_conv1d.weight    ...mixer.conv1d.weight             ne {d_conv, d_inner} or
//                                                                 {d_conv, 1, d_inner}
//   blk.N.ssm_conv1d.bias      ...mixer.conv1d.bias
//   blk.N.ssm_x.weight         ...mixer.x_proj.weight
//   blk.N.ssm_dt.weight/.bias  ...mixer.dt_proj.weight / .bias
//   blk.N.ssm_a                ...mixer.A                         A itself, -exp(A_log)
//   blk.N.ssm_d                ...mixer.D
//   blk.N.ssm_out.weight       ...mixer.out_proj.weight           (+ .bias if present)
//
// Mamba-2 has no ssm_x / ssm_dt.weight; instead
//   blk.N.ssm_dt.bias          ...mixer.dt_bias                   (nheads)
//   blk.N.ssm_a / ssm_d        ...mixer.A / mixer.D               ne {1, nheads}
//   blk.N.ssm_norm.weight      ...mixer.norm.weight               ne {d_inner/G, G}
// and the keys mamba2.ssm.group_count, mamba2.ssm.time_step_rank (= nheads). llama.cpp's files
// carry neither chunk_size (256 is used) nor time_step_limit (none); ours add
// mamba2.ssm.time_step_min / time_step_max when the model has a limit.
//
// Falcon-Mamba: `mamba.ssm.dt_b_c_rms = true`. GGUF has no key for its epsilon (llama.cpp uses
// the layer-norm epsilon); we keep Hugging Face's mixer_rms_eps default, 1e-6, as DESIGN.md says.
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/io/checkpoint.hpp"
#include "mamba/io/gguf.hpp"

namespace mamba {

namespace gguf_detail {

// GGUF tensor name -> HF name; empty when the tensor is not one the model uses.
inline std::string hf_name(const std::string& g, Arch arch = Arch::Mamba1) {
  static const std::map<std::string, std::string, std::less<>> top = {
      {"token_embd.weight", "backbone.embeddings.weight"},
      {"output_norm.weight", "backbone.norm_f.weight"},
      {"output.weight", "lm_head.weight"}};
  static const std::map<std::string, std::string, std::less<>> per_layer = {
      {"attn_norm.weight", "norm.weight"},
      {"ssm_in.weight", "mixer.in_proj.weight"},
      {"ssm_in.bias", "mixer.in_proj.bias"},
      {"ssm_conv1d.weight", "mixer.conv1d.weight"},
      {"ssm_conv1d.bias", "mixer.conv1d.bias"},
      {"ssm_x.weight", "mixer.x_proj.weight"},
      {"ssm_dt.weight", "mixer.dt_proj.weight"},
      {"ssm_dt.bias", "mixer.dt_proj.bias"},
      {"ssm_a", "mixer.A"},
      {"ssm_d", "mixer.D"},
      {"ssm_out.weight", "mixer.out_proj.weight"},
      {"ssm_out.bias", "mixer.out_proj.bias"}};
  if (auto it = top.find(g); it != top.end()) return it->second;
  if (g.rfind("blk.", 0) != 0) return {};
  const size_t dot = g.find('.', 4);
  if (dot == std::string::npos || dot == 4) return {};
  const std::string layer = g.substr(4, dot - 4);
  if (layer.size() > 6 || layer.find_first_not_of("0123456789") != std::string::npos) return {};
  // Mamba-2's names where they differ from Mamba-1's
  static const std::map<std::string, std::string, std::less<>> per_layer2 = {
      {"ssm_dt.bias", "mixer.dt_bias"}, {"ssm_norm.weight", "mixer.norm.weight"}};
  const std::string rest = g.substr(dot + 1);
  std::string hf;
  if (auto it2 = per_layer2.find(rest); arch == Arch::Mamba2 && it2 != per_layer2.end())
    hf = it2->second;
  else if (auto it = per_layer.find(rest); it != per_layer.end())
    hf = it->second;
  else
    return {};
  return "backbone.layers." + std::to_string(std::stoll(layer)) + "." + hf;
}

inline int64_t dim(const GgufFile& g, const char* key) {
  const uint64_t v = g.get_uint(key);
  if (v > (uint64_t{1} << 31))
    throw FormatError(g.path() + ": key '" + key + "' = " + std::to_string(v) + " is absurd");
  return static_cast<int64_t>(v);
}

}  // namespace gguf_detail

inline ModelConfig gguf_model_config(const GgufFile& g) {
  const std::string arch = g.get_string("general.architecture");
  if (arch != "mamba" && arch != "mamba2")
    throw FormatError(g.path() + ": general.architecture is '" + arch +
                      "', not 'mamba' or 'mamba2'");
  auto key = [&](const char* k) { return arch + "." + k; };
  auto dim = [&](const char* k) { return gguf_detail::dim(g, key(k).c_str()); };
  ModelConfig c;
  c.arch = arch == "mamba2" ? Arch::Mamba2 : Arch::Mamba1;
  c.d_model = dim("embedding_length");
  c.n_layer = dim("block_count");
  c.d_conv = dim("ssm.conv_kernel");
  c.d_inner = dim("ssm.inner_size");
  c.d_state = dim("ssm.state_size");
  c.dt_rank = dim("ssm.time_step_rank");
  c.norm_eps = g.get_float(key("attention.layer_norm_rms_epsilon"));
  if (c.arch == Arch::Mamba2) {
    c.nheads = c.dt_rank;
    c.headdim = c.nheads > 0 && c.d_inner % c.nheads == 0 ? c.d_inner / c.nheads : 0;
    c.ngroups = dim("ssm.group_count");
    // written by gguf_set_model_keys for a model with a time_step_limit; llama.cpp has no such key
    if (g.has(key("ssm.time_step_min"))) c.dt_min = g.get_float(key("ssm.time_step_min"));
    if (g.has(key("ssm.time_step_max"))) c.dt_max = g.get_float(key("ssm.time_step_max"));
  }
  c.dt_b_c_rms = g.has(key("ssm.dt_b_c_rms")) && g.get_bool(key("ssm.dt_b_c_rms"));
  c.expand =
      c.d_model > 0 && c.d_inner % c.d_model == 0 ? c.d_inner / c.d_model : 1;  // informative only
  const auto* embd = g.find_tensor("token_embd.weight");
  if (!embd) throw FormatError(g.path() + ": missing tensor 'token_embd.weight'");
  if (embd->ne.size() != 2) throw ShapeError(g.path() + ": tensor 'token_embd.weight' is not 2-D");
  c.vocab_size = embd->ne[1];
  c.tie_embeddings = g.find_tensor("output.weight") == nullptr;
  c.use_conv_bias = g.find_tensor("blk.0.ssm_conv1d.bias") != nullptr;
  c.use_bias = g.find_tensor("blk.0.ssm_in.bias") != nullptr;
  c.validate(g.path());
  return c;
}

inline Checkpoint gguf_checkpoint(const GgufFile& g) {
  const std::string& path = g.path();
  Checkpoint ck;
  ck.path = path;
  ck.config = gguf_model_config(g);
  ck.keep_alive.push_back(g.file());
  for (const auto& t : g.tensors()) {
    const std::string name = gguf_detail::hf_name(t.name, ck.config.arch);
    if (name.empty()) continue;  // not part of the model (kept out, like unknown dtypes)
    // torch order is ggml's reversed: ssm_conv1d {d_conv, d_inner} -> (d_inner, d_conv),
    // {d_conv, 1, d_inner} -> (d_inner, 1, d_conv); ssm_a {d_state, d_inner} -> (d_inner, d_state).
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    ck.tensors.emplace(name, TensorRef{t.type, std::move(shape), t.data, t.nbytes, path});
  }
  return ck;
}

inline Checkpoint load_gguf_checkpoint(const std::string& path) {
  return gguf_checkpoint(GgufFile::open(path));
}

// True when `path` is a regular file that starts with the GGUF magic.
inline bool is_gguf_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  return f.read(magic, 4) && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' &&
         magic[3] == 'F';
}

}  // namespace mamba
