#pragma once
// ModelConfig: the dimensions of a Mamba-1 model, read from a Hugging Face config.json
// (MambaConfig / FalconMambaConfig) or an original state-spaces config.json, and validated.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>

#include "mamba/error.hpp"

namespace mamba {

struct ModelConfig {
  int64_t d_model = 0;     // hidden size D
  int64_t n_layer = 0;     // number of Mamba blocks
  int64_t vocab_size = 0;  // rows of the embedding (padded, as stored)
  int64_t d_state = 16;    // N
  int64_t d_conv = 4;      // K
  int64_t expand = 2;
  int64_t d_inner = 0;  // expand * d_model unless the checkpoint says otherwise
  int64_t dt_rank = 0;  // R, ceil(d_model / 16) by default
  double norm_eps = 1e-5;   // RMSNorm epsilon of the block and final norms
  double mixer_eps = 1e-6;  // Falcon-Mamba's weightless RMSNorm on dt, B, C
  bool use_bias = false;    // in_proj / out_proj biases
  bool use_conv_bias = true;
  bool tie_embeddings = true;  // lm_head is the embedding unless the checkpoint has its own
  bool dt_b_c_rms = false;     // Falcon-Mamba

  // Throws ShapeError naming the first impossible value. `source` names the file in the message.
  void validate(const std::string& source = "config") const {
    auto check = [&](bool ok, const std::string& what) {
      if (!ok) throw ShapeError(source + ": invalid config: " + what);
    };
    auto in_range = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
      check(v >= lo && v <= hi, std::string(name) + " = " + std::to_string(v) + ", expected " +
                                    std::to_string(lo) + ".." + std::to_string(hi));
    };
    in_range("d_model", d_model, 1, 1 << 16);
    in_range("n_layer", n_layer, 1, 1024);
    in_range("vocab_size", vocab_size, 1, 1 << 24);
    in_range("d_state", d_state, 1, 1024);
    in_range("d_conv", d_conv, 1, 64);
    in_range("expand", expand, 1, 64);
    in_range("d_inner", d_inner, 1, 1 << 18);
    in_range("dt_rank", dt_rank, 1, d_inner);
    check(std::isfinite(norm_eps) && norm_eps > 0 && norm_eps < 1,
          "layer_norm_epsilon = " + std::to_string(norm_eps) + ", expected in (0, 1)");
    check(std::isfinite(mixer_eps) && mixer_eps > 0 && mixer_eps < 1,
          "mixer_rms_eps = " + std::to_string(mixer_eps) + ", expected in (0, 1)");
  }

  // Either layout; the HF one is recognised by `hidden_size`, the state-spaces one by `d_model`.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source) {
    if (!j.is_object()) throw FormatError(source + ": config is not a JSON object");
    ModelConfig c = j.contains("d_model") ? from_state_spaces(j, source) : from_hf(j, source);
    c.validate(source);
    return c;
  }

  static ModelConfig from_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open config");
    std::stringstream ss;
    ss << in.rdbuf();
    return from_json_text(ss.str(), path);
  }

  // The text of a config.json; `source` names it in messages.
  static ModelConfig from_json_text(std::string_view text, const std::string& source) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(source + ": bad JSON: " + e.what());
    }
    return from_json(j, source);
  }

 private:
  template <class V>
  static V get(const nlohmann::json& j, const char* key, V fallback, const std::string& source) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    try {
      if constexpr (std::is_same_v<V, int64_t>) {
        if (!it->is_number_integer()) throw FormatError("not an integer");
        return it->template get<int64_t>();
      } else {
        return it->template get<V>();
      }
    } catch (const std::exception&) {
      throw FormatError(source + ": config key '" + key + "' has the wrong type: " + it->dump());
    }
  }

  template <class V>
  static V require(const nlohmann::json& j, const char* key, const std::string& source) {
    if (!j.contains(key) || j[key].is_null())
      throw FormatError(source + ": config is missing required key '" + key + "'");
    return get<V>(j, key, V{}, source);
  }

  // The values below come from the file: derived sizes must not overflow before validate()
  // gets to say which field is out of range.
  static int64_t default_dt_rank(int64_t d_model) { return d_model / 16 + (d_model % 16 > 0); }
  // expand * d_model, or 0 (rejected by validate(), after d_model or expand) when out of range.
  static int64_t default_d_inner(int64_t expand, int64_t d_model) {
    return expand > 0 && d_model > 0 && expand <= INT64_MAX / d_model ? expand * d_model : 0;
  }

  static ModelConfig from_hf(const nlohmann::json& j, const std::string& source) {
    ModelConfig c;
    const std::string type = get<std::string>(j, "model_type", "mamba", source);
    if (type == "mamba2") throw Error(source + ": Mamba-2 checkpoints are not supported yet");
    if (type != "mamba" && type != "falcon_mamba")
      throw FormatError(source + ": model_type '" + type + "' is not a Mamba model");
    c.dt_b_c_rms = type == "falcon_mamba";
    c.d_model = require<int64_t>(j, "hidden_size", source);
    c.n_layer = require<int64_t>(j, "num_hidden_layers", source);
    c.vocab_size = require<int64_t>(j, "vocab_size", source);
    c.d_state = get<int64_t>(j, "state_size", 16, source);
    c.d_conv = get<int64_t>(j, "conv_kernel", 4, source);
    c.expand = get<int64_t>(j, "expand", 2, source);
    c.d_inner = get<int64_t>(j, "intermediate_size", default_d_inner(c.expand, c.d_model), source);
    const auto rank = j.find("time_step_rank");
    if (rank == j.end() || (rank->is_string() && *rank == "auto"))
      c.dt_rank = default_dt_rank(c.d_model);
    else
      c.dt_rank = get<int64_t>(j, "time_step_rank", 0, source);
    c.norm_eps = get<double>(j, "layer_norm_epsilon", 1e-5, source);
    c.mixer_eps = get<double>(j, "mixer_rms_eps", 1e-6, source);
    c.use_bias = get<bool>(j, "use_bias", false, source);
    c.use_conv_bias = get<bool>(j, "use_conv_bias", true, source);
    c.tie_embeddings = get<bool>(j, "tie_word_embeddings", true, source);
    return c;
  }

  static ModelConfig from_state_spaces(const nlohmann::json& j, const std::string& source) {
    ModelConfig c;
    c.d_model = require<int64_t>(j, "d_model", source);
    c.n_layer = require<int64_t>(j, "n_layer", source);
    const int64_t vocab = require<int64_t>(j, "vocab_size", source);
    const int64_t pad = get<int64_t>(j, "pad_vocab_size_multiple", 8, source);
    if (pad < 1 || pad > (1 << 24))
      throw ShapeError(source + ": pad_vocab_size_multiple = " + std::to_string(pad) +
                       ", expected 1.." + std::to_string(1 << 24));
    // vocab_size beyond validate()'s bound is left as it is, for validate() to name.
    c.vocab_size = vocab > 0 && vocab <= (1 << 24) ? (vocab + pad - 1) / pad * pad : vocab;
    c.tie_embeddings = get<bool>(j, "tie_embeddings", true, source);
    if (!get<bool>(j, "rms_norm", true, source))
      throw Error(source + ": LayerNorm checkpoints (rms_norm false) are not supported");
    const nlohmann::json ssm = j.contains("ssm_cfg") && j["ssm_cfg"].is_object()
                                   ? j["ssm_cfg"]
                                   : nlohmann::json::object();
    const std::string layer = get<std::string>(ssm, "layer", "Mamba1", source);
    if (layer != "Mamba1") throw Error(source + ": ssm_cfg.layer '" + layer + "' is not supported");
    c.d_state = get<int64_t>(ssm, "d_state", 16, source);
    c.d_conv = get<int64_t>(ssm, "d_conv", 4, source);
    c.expand = get<int64_t>(ssm, "expand", 2, source);
    c.d_inner = default_d_inner(c.expand, c.d_model);
    const auto rank = ssm.find("dt_rank");
    if (rank == ssm.end() || (rank->is_string() && *rank == "auto"))
      c.dt_rank = default_dt_rank(c.d_model);
    else
      c.dt_rank = get<int64_t>(ssm, "dt_rank", 0, source);
    c.use_bias = get<bool>(ssm, "bias", false, source);
    c.use_conv_bias = get<bool>(ssm, "conv_bias", true, source);
    return c;
  }
};

}  // namespace mamba
