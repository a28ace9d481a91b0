#pragma once
// ModelConfig: the dimensions of a Mamba-1 or Mamba-2 model, read from a Hugging Face config.json
// (MambaConfig / FalconMambaConfig / Mamba2Config) or an original state-spaces config.json, and
// validated. The family is read from the file (model_type, ssm_cfg.layer), never chosen by the
// caller.
#include <cctype>
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

// The model family. Mamba-2 (SSD): A is one scalar per head, B and C are shared by a group of
// heads, and the gate is a grouped RMSNorm (../shared/DESIGN.md section 1b).
enum class Arch { Mamba1, Mamba2 };

inline const char* arch_name(Arch a) {
  return a == Arch::Mamba2 ? "mamba2" : "mamba";
}

struct ModelConfig {
  Arch arch = Arch::Mamba1;
  int64_t d_model = 0;     // hidden size D
  int64_t n_layer = 0;     // number of Mamba blocks
  int64_t vocab_size = 0;  // rows of the embedding (padded, as stored)
  int64_t d_state = 16;    // N
  int64_t d_conv = 4;      // K
  int64_t expand = 2;
  int64_t d_inner = 0;      // expand * d_model unless the checkpoint says otherwise
  int64_t dt_rank = 0;      // R, ceil(d_model / 16) by default; Mamba-2: nheads (dt is per head)
  double norm_eps = 1e-5;   // RMSNorm epsilon of the block and final norms
  double mixer_eps = 1e-6;  // Falcon-Mamba's weightless RMSNorm on dt, B, C
  bool use_bias = false;    // in_proj / out_proj biases
  bool use_conv_bias = true;
  bool tie_embeddings = true;  // lm_head is the embedding unless the checkpoint has its own
  bool dt_b_c_rms = false;     // Falcon-Mamba
  // Mamba-2 only
  int64_t nheads = 0;        // H = d_inner / headdim
  int64_t headdim = 0;       // P, channels per head
  int64_t ngroups = 1;       // G, groups of heads sharing B and C
  int64_t chunk_size = 256;  // tokens per chunk of the SSD prefill
  double dt_min = 0.0;       // time_step_limit: softplus(dt) is clamped to [dt_min, dt_max]
  double dt_max = std::numeric_limits<double>::infinity();

  // Channels of the causal conv: x for Mamba-1; x, B and C for Mamba-2.
  int64_t conv_dim() const {
    return arch == Arch::Mamba2 ? d_inner + 2 * ngroups * d_state : d_inner;
  }
  // Rows of in_proj: [x | z] for Mamba-1, [z | xBC | dt] for Mamba-2.
  int64_t d_in_proj() const {
    return arch == Arch::Mamba2 ? 2 * d_inner + 2 * ngroups * d_state + nheads : 2 * d_inner;
  }
  bool clamps_dt() const { return dt_min > 0 || dt_max < std::numeric_limits<double>::infinity(); }

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
    if (arch == Arch::Mamba1) in_range("dt_rank", dt_rank, 1, d_inner);
    check(std::isfinite(norm_eps) && norm_eps > 0 && norm_eps < 1,
          "layer_norm_epsilon = " + std::to_string(norm_eps) + ", expected in (0, 1)");
    check(std::isfinite(mixer_eps) && mixer_eps > 0 && mixer_eps < 1,
          "mixer_rms_eps = " + std::to_string(mixer_eps) + ", expected in (0, 1)");
    if (arch != Arch::Mamba2) return;
    in_range("headdim", headdim, 1, d_inner);
    check(d_inner % headdim == 0, "d_inner = " + std::to_string(d_inner) +
                                      " is not a multiple of headdim = " + std::to_string(headdim));
    in_range("nheads", nheads, d_inner / headdim, d_inner / headdim);
    in_range("ngroups", ngroups, 1, nheads);
    check(nheads % ngroups == 0, "nheads = " + std::to_string(nheads) +
                                     " is not a multiple of ngroups = " + std::to_string(ngroups));
    in_range("dt_rank", dt_rank, nheads, nheads);
    in_range("chunk_size", chunk_size, 1, 1 << 16);
    check(!std::isnan(dt_min) && !std::isnan(dt_max) && dt_min >= 0 && dt_min < dt_max &&
              std::isfinite(dt_min),
          "time_step_limit = [" + std::to_string(dt_min) + ", " + std::to_string(dt_max) +
              "], expected 0 <= min < max");
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
      // Python's json writes float("inf") as a bare Infinity (time_step_limit): strict JSON
      // rejects it, so such words are read as the strings "Infinity", "-Infinity", "NaN".
      const std::string quoted = quote_nonfinite(text);
      if (quoted.size() == text.size()) throw FormatError(source + ": bad JSON: " + e.what());
      try {
        j = nlohmann::json::parse(quoted);
      } catch (const nlohmann::json::exception&) {
        throw FormatError(source + ": bad JSON: " + e.what());
      }
    }
    return from_json(j, source);
  }

  // `text` with every bare Infinity, -Infinity and NaN outside a string put in quotes.
  static std::string quote_nonfinite(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
      const char ch = text[i];
      if (in_string) {
        out += ch;
        if (ch == '\\' && i + 1 < text.size())
          out += text[++i];
        else if (ch == '"')
          in_string = false;
        continue;
      }
      if (ch == '"') in_string = true;
      bool replaced = false;
      for (std::string_view word : {"-Infinity", "Infinity", "NaN"}) {
        if (text.substr(i, word.size()) == word) {
          out += '"';
          out += word;
          out += '"';
          i += word.size() - 1;
          replaced = true;
          break;
        }
      }
      if (!replaced) out += ch;
    }
    return out;
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

  // A bound of time_step_limit: a number, "Infinity"/"-Infinity"/"inf" (also what a bare
  // Infinity was quoted to), or {"__float__": "Infinity"}.
  static double limit_value(const nlohmann::json& v, const std::string& source) {
    if (v.is_number()) return v.get<double>();
    const nlohmann::json* s = &v;
    if (v.is_object() && v.size() == 1 && v.contains("__float__")) s = &v["__float__"];
    if (s->is_string()) {
      std::string t = s->get<std::string>();
      for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const double inf = std::numeric_limits<double>::infinity();
      if (t == "infinity" || t == "inf" || t == "+infinity" || t == "+inf") return inf;
      if (t == "-infinity" || t == "-inf") return -inf;
    }
    throw FormatError(source + ": time_step_limit bound " + v.dump() +
                      " is not a number or Infinity");
  }

  static void read_time_step_limit(const nlohmann::json& j, const char* key, ModelConfig& c,
                                   const std::string& source) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_array() || it->size() != 2)
      throw FormatError(source + ": config key '" + key + "' must be [min, max], is " + it->dump());
    c.dt_min = limit_value((*it)[0], source);
    c.dt_max = limit_value((*it)[1], source);
  }

  // nheads from num_heads when given, else d_inner / headdim (0, for validate(), if undefined).
  static int64_t default_nheads(int64_t d_inner, int64_t headdim) {
    return headdim > 0 && d_inner % headdim == 0 ? d_inner / headdim : 0;
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
    if (type == "mamba2") return from_hf_mamba2(j, source);
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

  // transformers' Mamba2Config. Absent keys take its defaults (n_groups 8, as it says).
  static ModelConfig from_hf_mamba2(const nlohmann::json& j, const std::string& source) {
    ModelConfig c;
    c.arch = Arch::Mamba2;
    c.d_model = require<int64_t>(j, "hidden_size", source);
    c.n_layer = require<int64_t>(j, "num_hidden_layers", source);
    c.vocab_size = require<int64_t>(j, "vocab_size", source);
    c.d_state = get<int64_t>(j, "state_size", 128, source);
    c.d_conv = get<int64_t>(j, "conv_kernel", 4, source);
    c.expand = get<int64_t>(j, "expand", 2, source);
    c.d_inner = default_d_inner(c.expand, c.d_model);
    c.headdim = get<int64_t>(j, "head_dim", 64, source);
    c.nheads = get<int64_t>(j, "num_heads", default_nheads(c.d_inner, c.headdim), source);
    c.ngroups = get<int64_t>(j, "n_groups", 8, source);
    c.chunk_size = get<int64_t>(j, "chunk_size", 256, source);
    c.dt_rank = c.nheads;
    read_time_step_limit(j, "time_step_limit", c, source);
    c.norm_eps = get<double>(j, "layer_norm_epsilon", 1e-5, source);
    c.use_bias = get<bool>(j, "use_bias", false, source);
    c.use_conv_bias = get<bool>(j, "use_conv_bias", true, source);
    c.tie_embeddings = get<bool>(j, "tie_word_embeddings", false, source);
    if (!get<bool>(j, "rms_norm", true, source))
      throw Error(source + ": Mamba-2 without the gated RMSNorm (rms_norm false) is not supported");
    return c;
  }

  // state-spaces' Mamba2 ssm_cfg (mamba_ssm.modules.mamba2.Mamba2 arguments and defaults).
  static void state_spaces_mamba2(const nlohmann::json& ssm, ModelConfig& c,
                                  const std::string& source) {
    c.arch = Arch::Mamba2;
    c.d_state = get<int64_t>(ssm, "d_state", 128, source);
    c.d_conv = get<int64_t>(ssm, "d_conv", 4, source);
    c.expand = get<int64_t>(ssm, "expand", 2, source);
    c.d_inner = default_d_inner(c.expand, c.d_model);
    c.headdim = get<int64_t>(ssm, "headdim", 64, source);
    c.nheads = default_nheads(c.d_inner, c.headdim);
    c.ngroups = get<int64_t>(ssm, "ngroups", 1, source);
    c.chunk_size = get<int64_t>(ssm, "chunk_size", 256, source);
    c.dt_rank = c.nheads;
    read_time_step_limit(ssm, "dt_limit", c, source);
    c.use_bias = get<bool>(ssm, "bias", false, source);
    c.use_conv_bias = get<bool>(ssm, "conv_bias", true, source);
    if (!get<bool>(ssm, "rmsnorm", true, source) ||
        get<bool>(ssm, "norm_before_gate", false, source))
      throw Error(source +
                  ": Mamba-2 needs the gated RMSNorm after the gate (rmsnorm true, "
                  "norm_before_gate false)");
    const int64_t d_ssm = get<int64_t>(ssm, "d_ssm", c.d_inner, source);
    if (d_ssm != c.d_inner)
      throw Error(source + ": Mamba-2 with d_ssm " + std::to_string(d_ssm) + " != d_inner " +
                  std::to_string(c.d_inner) + " (a gated MLP beside the SSM) is not supported");
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
    const nlohmann::json ssm =
        j.contains("ssm_cfg") && j["ssm_cfg"].is_object() ? j["ssm_cfg"] : nlohmann::json::object();
    if (get<int64_t>(j, "d_intermediate", 0, source) != 0)
      throw Error(source + ": d_intermediate > 0 (an MLP after each mixer) is not supported");
    if (j.contains("attn_layer_idx") && j["attn_layer_idx"].is_array() &&
        !j["attn_layer_idx"].empty())
      throw Error(source + ": attention layers (attn_layer_idx) are not supported");
    const std::string layer = get<std::string>(ssm, "layer", "Mamba1", source);
    if (layer == "Mamba2") {
      state_spaces_mamba2(ssm, c, source);
      return c;
    }
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
