#pragma once
// A llama.cpp Mamba GGUF (general.architecture = "mamba") seen as a Checkpoint: the config from
// the mamba.* keys, the tensors renamed to Hugging Face's names with shapes in torch order (the
// ggml `ne` reversed; no data is moved or converted).
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

// GGUF tensor name -> HF name; empty when the tensor is not one a Mamba-1 model uses.
inline std::string hf_name(const std::string& g) {
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
  auto it = per_layer.find(g.substr(dot + 1));
  if (it == per_layer.end()) return {};
  return "backbone.layers." + std::to_string(std::stoll(layer)) + "." + it->second;
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
  if (arch == "mamba2") throw Error(g.path() + ": Mamba-2 GGUF files are not supported yet");
  if (arch != "mamba")
    throw FormatError(g.path() + ": general.architecture is '" + arch + "', not 'mamba'");
  ModelConfig c;
  c.d_model = gguf_detail::dim(g, "mamba.embedding_length");
  c.n_layer = gguf_detail::dim(g, "mamba.block_count");
  c.d_conv = gguf_detail::dim(g, "mamba.ssm.conv_kernel");
  c.d_inner = gguf_detail::dim(g, "mamba.ssm.inner_size");
  c.d_state = gguf_detail::dim(g, "mamba.ssm.state_size");
  c.dt_rank = gguf_detail::dim(g, "mamba.ssm.time_step_rank");
  c.norm_eps = g.get_float("mamba.attention.layer_norm_rms_epsilon");
  c.dt_b_c_rms = g.has("mamba.ssm.dt_b_c_rms") && g.get_bool("mamba.ssm.dt_b_c_rms");
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
    const std::string name = gguf_detail::hf_name(t.name);
    if (name.empty()) continue;  // not part of a Mamba-1 model (kept out, like unknown dtypes)
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
