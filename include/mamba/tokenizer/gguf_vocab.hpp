#pragma once
// Loading a Tokenizer from a GGUF's tokenizer.ggml.* metadata (a model file or a vocab-only
// file): model "gpt2", tokens, token_type, merges, bos/eos/padding ids, and tokenizer.ggml.pre.
//
// The reference is the Hugging Face tokenizer the GGUF was converted from, so:
// - token_type 3 (control) and 2 (unknown) become special added tokens matched in the raw text;
//   4 (user-defined: GPT-NeoX's runs of spaces) become non-special added tokens matched after
//   normalization, except the "[PAD<id>]" placeholders the converter writes for padding ids,
//   which the reference vocabulary does not have (they decode to their text, never match);
// - tokenizer.ggml.pre "mpt" and "olmo" (GPT-NeoX-20B's tokenizer) mean NFC + the GPT-2 split;
//   "gpt-2" means the GPT-2 split without a normalizer; when the key is absent (GGUFs written
//   before it existed: Mamba's are GPT-NeoX) NFC + the GPT-2 split. Any other pre-tokenizer is
//   refused rather than approximated.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/io/gguf.hpp"
#include "mamba/tokenizer/tokenizer.hpp"

namespace mamba {

// True when the GGUF carries a tokenizer (a GGUF without one still loads as a model).
inline bool gguf_has_tokenizer(const GgufFile& f) {
  return f.has("tokenizer.ggml.model");
}

inline Tokenizer tokenizer_from_gguf(const GgufFile& f) {
  const std::string& source = f.path();
  if (!gguf_has_tokenizer(f)) {
    throw FormatError(source + ": no tokenizer (the key tokenizer.ggml.model is absent)");
  }
  if (const std::string model = f.get_string("tokenizer.ggml.model"); model != "gpt2") {
    throw FormatError(source + ": tokenizer.ggml.model is '" + model +
                      "'; only 'gpt2' (byte-level BPE) is supported");
  }
  TokenizerOptions options;  // NFC + GPT-2 split
  if (f.has("tokenizer.ggml.pre")) {
    const std::string pre = f.get_string("tokenizer.ggml.pre");
    if (pre == "gpt-2") {
      options.nfc = false;
    } else if (pre != "mpt" && pre != "olmo") {
      throw FormatError(source + ": tokenizer.ggml.pre '" + pre +
                        "' is not supported (only gpt-2, mpt, olmo)");
    }
  }
  std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  std::vector<std::int64_t> types;
  if (f.has("tokenizer.ggml.token_type")) {
    types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != tokens.size()) {
      throw FormatError(source + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                        " entries for " + std::to_string(tokens.size()) + " tokens");
    }
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (f.has("tokenizer.ggml.merges")) {
    const std::vector<std::string> list = f.get_string_array("tokenizer.ggml.merges");
    merges.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string& s = list[i];
      const std::size_t space = s.find(' ');
      if (space == 0 || space == std::string::npos || space + 1 == s.size() ||
          s.find(' ', space + 1) != std::string::npos) {
        throw FormatError(source + ": tokenizer.ggml.merges[" + std::to_string(i) + "] ('" + s +
                          "') is not two tokens separated by one space");
      }
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    }
  }
  std::vector<AddedToken> added;
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    const std::int64_t type = types.empty() ? 1 : types[id];
    const std::string& text = tokens[id];
    AddedToken t;
    t.content = text;
    t.id = static_cast<std::int32_t>(id);
    if (type == 2 || type == 3) {  // unknown, control
      t.special = true;
      t.normalized = false;
    } else if (type == 4) {  // user-defined
      if (text == "[PAD" + std::to_string(id) + "]") continue;
      t.special = false;
      t.normalized = true;
    } else {
      continue;
    }
    if (!text.empty()) added.push_back(std::move(t));
  }
  Tokenizer tok(std::move(tokens), merges, std::move(added), options, source);
  const auto id_or_none = [&](const char* key) -> std::int32_t {
    if (!f.has(key)) return -1;
    const std::uint64_t id = f.get_uint(key);
    if (id >= static_cast<std::uint64_t>(tok.vocab_size())) {
      throw FormatError(source + ": " + key + " = " + std::to_string(id) +
                        " is past the vocabulary of " + std::to_string(tok.vocab_size()));
    }
    return static_cast<std::int32_t>(id);
  };
  tok.set_special_ids(id_or_none("tokenizer.ggml.bos_token_id"),
                      id_or_none("tokenizer.ggml.eos_token_id"),
                      id_or_none("tokenizer.ggml.padding_token_id"));
  return tok;
}

inline Tokenizer load_tokenizer_gguf(const std::string& path) {
  return tokenizer_from_gguf(GgufFile::open(path));
}

}  // namespace mamba
