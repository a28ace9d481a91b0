#pragma once
// What the fuzz harnesses and the corpus generator share: a micro model shape, the tokenizers
// the tokenizer harnesses run, and the rule that a harness may only ever see mamba::Error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mamba/config.hpp>
#include <mamba/error.hpp>
#include <mamba/tokenizer/byte_level.hpp>
#include <mamba/tokenizer/tokenizer_json.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mamba::fuzz {

// A model small enough that loading and running it costs microseconds.
inline ModelConfig micro_config() {
  ModelConfig c;
  c.d_model = 4;
  c.n_layer = 1;
  c.vocab_size = 8;
  c.d_state = 2;
  c.d_conv = 2;
  c.expand = 2;
  c.d_inner = 8;
  c.dt_rank = 1;
  c.validate("micro");
  return c;
}

// A micro Mamba-2: 2 heads of 4 channels, 2 groups, a time_step_limit.
inline ModelConfig micro_mamba2_config() {
  ModelConfig c = micro_config();
  c.arch = Arch::Mamba2;
  c.headdim = 4;
  c.nheads = 2;
  c.dt_rank = 2;
  c.ngroups = 2;
  c.dt_min = 0.001;
  c.dt_max = 0.1;
  c.validate("micro-mamba2");
  return c;
}

// The same as a Hugging Face config.json.
inline std::string micro_config_json() {
  const ModelConfig c = micro_config();
  nlohmann::ordered_json j = {{"model_type", "mamba"},
                              {"hidden_size", c.d_model},
                              {"num_hidden_layers", c.n_layer},
                              {"vocab_size", c.vocab_size},
                              {"state_size", c.d_state},
                              {"conv_kernel", c.d_conv},
                              {"expand", c.expand},
                              {"intermediate_size", c.d_inner},
                              {"time_step_rank", c.dt_rank},
                              {"layer_norm_epsilon", 1e-5},
                              {"use_bias", false},
                              {"use_conv_bias", true},
                              {"tie_word_embeddings", true}};
  return j.dump(1);
}

// A byte-level BPE tokenizer.json with merges and added tokens, exercising every branch the
// loader accepts: NFC or not, the GPT-2 split or not, a prefix space, stripping added tokens.
struct TokenizerShape {
  bool nfc = true;
  bool use_regex = true;
  bool add_prefix_space = false;
  bool strip_tokens = false;  // an added token with lstrip/rstrip/single_word
};

inline std::string synthetic_tokenizer_json(const TokenizerShape& shape) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  std::vector<std::string> tokens;
  auto add = [&](const std::string& t) {
    if (vocab.contains(t)) return false;
    vocab[t] = static_cast<int64_t>(tokens.size());
    tokens.push_back(t);
    return true;
  };
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_codepoint(static_cast<std::uint8_t>(b)));
    add(ch);
  }
  auto bl = [](std::string_view bytes) { return bytes_to_byte_level(bytes); };
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  auto merge = [&](const std::string& a, const std::string& b) {
    if (add(a + b)) merges.push_back(a + " " + b);
  };
  const std::string letters = " etaoinsrhd";
  for (char x : letters)
    for (char y : letters) merge(bl(std::string(1, x)), bl(std::string(1, y)));
  for (char x : letters)
    for (char y : std::string("etaon"))
      for (char z : std::string("ehn ")) merge(bl(std::string{x, y}), bl(std::string(1, z)));
  merge(bl("\xc3"), bl("\xa9"));      // é
  merge(bl("\xe2\x80"), bl("\x99"));  // ’ (three bytes)
  merge(bl("\xe2"), bl("\x80"));
  merge(bl("\xf0\x9f"), bl("\x98\x80"));  // 😀 (four bytes, two halves)
  merge(bl("\xf0"), bl("\x9f"));
  merge(bl("\x98"), bl("\x80"));
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  auto added_token = [&](const std::string& content, bool special, bool normalized, bool lstrip,
                         bool rstrip, bool single_word) {
    const auto id = static_cast<int64_t>(tokens.size());
    tokens.push_back(content);
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", single_word},
                     {"lstrip", lstrip},
                     {"rstrip", rstrip},
                     {"normalized", normalized},
                     {"special", special}});
  };
  added_token("<|endoftext|>", true, false, false, false, false);
  added_token("<|padding|>", true, false, false, false, false);
  added_token("  ", false, true, false, false, false);
  added_token("   ", false, true, false, false, false);
  // Content matched after NFC. (It decodes as byte-level text, as the reference decoder does:
  // "é" is a byte-level character, so only the NFC tokenizers, which promise no round trip,
  // have it.)
  if (shape.nfc) added_token("\xc3\xa9t\xc3\xa9", false, true, false, false, false);
  if (shape.strip_tokens) {
    added_token("<mask>", true, false, true, true, false);
    added_token("word", false, false, false, false, true);
  }
  nlohmann::ordered_json byte_level = {{"type", "ByteLevel"},
                                       {"add_prefix_space", shape.add_prefix_space},
                                       {"trim_offsets", true},
                                       {"use_regex", shape.use_regex}};
  nlohmann::ordered_json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", shape.nfc ? nlohmann::ordered_json{{"type", "NFC"}} : nullptr},
      {"pre_tokenizer", byte_level},
      {"decoder", byte_level},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merges}}}};
  return j.dump();
}

// Runs f on hostile input: a mamba::Error is an expected outcome; any other exception (a
// std::out_of_range from a container, nlohmann's type errors, bad_alloc) is a finding.
template <class F>
void expect_errors(F&& f) {
  try {
    f();
  } catch (const Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: not a mamba::Error: %s\n", e.what());
    std::abort();
  }
}

// A finding: the library accepted input and then broke a promise.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace mamba::fuzz
