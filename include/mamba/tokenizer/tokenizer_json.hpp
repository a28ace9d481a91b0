#pragma once
// Loading a Tokenizer from a Hugging Face tokenizer.json: model "BPE" (merges as "a b" strings
// or ["a", "b"] pairs), normalizer null or NFC, pre-tokenizer null or ByteLevel, decoder null or
// ByteLevel, and added_tokens. Anything else is refused with a FormatError that names it, rather
// than tokenizing differently from the reference. The post-processor is not applied: encode()
// never adds tokens the text does not contain.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/tokenizer/byte_level.hpp"
#include "mamba/tokenizer/tokenizer.hpp"

namespace mamba {

namespace detail {

inline const nlohmann::json* json_member(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

inline bool json_flag(const nlohmann::json& j, const char* key, bool fallback) {
  const nlohmann::json* v = json_member(j, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
}

inline std::string json_type(const nlohmann::json& j) {
  const nlohmann::json* t = json_member(j, "type");
  return t != nullptr && t->is_string() ? t->get<std::string>() : std::string("(no type)");
}

// Reads the normalizer section into options: null, NFC, or a Sequence of those.
inline void read_normalizer(const nlohmann::json& j, TokenizerOptions& options,
                            const std::string& source) {
  const std::string type = json_type(j);
  if (type == "NFC") {
    options.nfc = true;
  } else if (type == "Sequence" && json_member(j, "normalizers") != nullptr &&
             j["normalizers"].is_array()) {
    for (const auto& n : j["normalizers"]) read_normalizer(n, options, source);
  } else {
    throw FormatError(source + ": normalizer '" + type + "' is not supported (only NFC)");
  }
}

inline void read_pre_tokenizer(const nlohmann::json& j, TokenizerOptions& options,
                               const std::string& source) {
  const std::string type = json_type(j);
  if (type != "ByteLevel") {
    throw FormatError(source + ": pre_tokenizer '" + type + "' is not supported (only ByteLevel)");
  }
  options.use_regex = json_flag(j, "use_regex", true);
  options.add_prefix_space = json_flag(j, "add_prefix_space", false);
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw FormatError(path.string() + ": is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw FormatError(path.string() + ": cannot open the file");
  const std::streamoff size = in.tellg();
  if (size < 0) throw FormatError(path.string() + ": cannot read the file");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(text.data(), size)) throw FormatError(path.string() + ": read error");
  return text;
}

}  // namespace detail

// Builds a Tokenizer from the text of a tokenizer.json; source names it in error messages.
inline Tokenizer tokenizer_from_json(std::string_view json_text, const std::string& source) {
  using nlohmann::json;
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    throw FormatError(source + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw FormatError(source + ": not a tokenizer.json (not a JSON object)");
  const json* model = detail::json_member(root, "model");
  if (model == nullptr || !model->is_object()) {
    throw FormatError(source + ": no \"model\" section");
  }
  if (const std::string type = detail::json_type(*model); type != "BPE") {
    throw FormatError(source + ": model type '" + type + "' is not supported (only BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = detail::json_member(*model, key);
    if (v != nullptr && !(v->is_string() && v->get<std::string>().empty())) {
      throw FormatError(source + ": model." + key + " is not supported");
    }
  }
  if (const json* d = detail::json_member(*model, "dropout");
      d != nullptr && !(d->is_number() && d->get<double>() == 0.0)) {
    throw FormatError(source + ": BPE dropout is not supported (tokenization would be random)");
  }
  const json* vocab_json = detail::json_member(*model, "vocab");
  if (vocab_json == nullptr || !vocab_json->is_object()) {
    throw FormatError(source + ": model.vocab is missing or not an object");
  }

  // (id, token) as listed; placed by id once the added tokens are known.
  const json::object_t& vocab_object = vocab_json->get_ref<const json::object_t&>();
  std::vector<std::pair<std::int64_t, const std::string*>> listed;
  listed.reserve(vocab_object.size());
  for (const auto& [token, id_json] : vocab_object) {
    if (!id_json.is_number_integer()) {
      throw FormatError(source + ": model.vocab['" + token + "'] is not an integer id");
    }
    const auto id = id_json.get<std::int64_t>();
    if (id < 0) throw FormatError(source + ": model.vocab['" + token + "'] has negative id");
    listed.emplace_back(id, &token);
  }

  std::vector<AddedToken> added;
  if (const json* list = detail::json_member(root, "added_tokens")) {
    if (!list->is_array()) throw FormatError(source + ": added_tokens is not an array");
    for (const auto& a : *list) {
      const json* id = detail::json_member(a, "id");
      const json* content = detail::json_member(a, "content");
      if (id == nullptr || !id->is_number_integer() || content == nullptr ||
          !content->is_string()) {
        throw FormatError(source + ": an entry of added_tokens lacks an integer id or a content");
      }
      AddedToken t;
      t.content = content->get<std::string>();
      const auto id64 = id->get<std::int64_t>();
      if (id64 < 0 || id64 > INT32_MAX) {
        throw FormatError(source + ": added token '" + t.content + "' has invalid id " +
                          std::to_string(id64));
      }
      t.id = static_cast<std::int32_t>(id64);
      t.special = detail::json_flag(a, "special", false);
      t.normalized = detail::json_flag(a, "normalized", !t.special);
      t.lstrip = detail::json_flag(a, "lstrip", false);
      t.rstrip = detail::json_flag(a, "rstrip", false);
      t.single_word = detail::json_flag(a, "single_word", false);
      for (const AddedToken& other : added) {
        if (other.id == t.id) {
          throw FormatError(source + ": duplicate id " + std::to_string(t.id) + " in added_tokens");
        }
      }
      added.push_back(std::move(t));
    }
  }

  // Ids must be distinct within the vocabulary and, with the added tokens (which may repeat a
  // vocabulary id), fill 0..N-1: so no id can reach the number of entries.
  const std::size_t limit = listed.size() + added.size();
  const auto past = [&](std::int64_t id) {
    return FormatError(source + ": token id " + std::to_string(id) +
                       " is past the vocabulary: ids must run from 0 without gaps, and there are " +
                       std::to_string(limit) + " tokens");
  };
  std::vector<std::string> vocab(limit);
  std::vector<char> present(limit, 0);
  std::size_t n = 0;
  for (const auto& [id, token] : listed) {
    if (static_cast<std::uint64_t>(id) >= limit) throw past(id);
    std::string& slot = vocab[static_cast<std::size_t>(id)];
    if (present[static_cast<std::size_t>(id)]) {
      throw FormatError(source + ": duplicate id " + std::to_string(id) + " in model.vocab ('" +
                        slot + "' and '" + *token + "')");
    }
    slot = *token;
    present[static_cast<std::size_t>(id)] = 1;
    n = std::max(n, static_cast<std::size_t>(id) + 1);
  }
  for (const AddedToken& t : added) {
    if (static_cast<std::size_t>(t.id) >= limit) throw past(t.id);
    present[static_cast<std::size_t>(t.id)] = 1;
    n = std::max(n, static_cast<std::size_t>(t.id) + 1);
  }
  for (std::size_t id = 0; id < n; ++id) {
    if (!present[id]) {
      throw FormatError(source + ": token ids must run from 0 to " + std::to_string(n - 1) +
                        " without gaps, but no token has id " + std::to_string(id));
    }
  }
  vocab.resize(n);

  std::vector<std::pair<std::string, std::string>> merges;
  if (const json* list = detail::json_member(*model, "merges")) {
    if (!list->is_array()) throw FormatError(source + ": model.merges is not an array");
    merges.reserve(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json& m = (*list)[i];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const std::size_t space = s.find(' ');
        if (space == 0 || space == std::string::npos || space + 1 == s.size() ||
            s.find(' ', space + 1) != std::string::npos) {
          throw FormatError(source + ": merge " + std::to_string(i) + " ('" + s +
                            "') is not two tokens separated by one space");
        }
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        throw FormatError(source + ": merge " + std::to_string(i) +
                          " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }

  TokenizerOptions options;
  options.nfc = false;
  options.use_regex = false;
  options.ignore_merges = detail::json_flag(*model, "ignore_merges", false);
  if (const json* n = detail::json_member(root, "normalizer")) {
    detail::read_normalizer(*n, options, source);
  }
  if (const json* p = detail::json_member(root, "pre_tokenizer")) {
    detail::read_pre_tokenizer(*p, options, source);
  }
  if (const json* d = detail::json_member(root, "decoder")) {
    if (const std::string type = detail::json_type(*d); type != "ByteLevel") {
      throw FormatError(source + ": decoder '" + type + "' is not supported (only ByteLevel)");
    }
  }
  Tokenizer tok(std::move(vocab), merges, std::move(added), options, source);
  // tokenizer.json does not say which token begins or ends a text; GPT-style files use
  // <|endoftext|> for both.
  if (const auto eot = tok.token_id("<|endoftext|>")) tok.set_special_ids(*eot, *eot, -1);
  if (const auto pad = tok.token_id("<|padding|>")) {
    tok.set_special_ids(tok.bos_id(), tok.eos_id(), *pad);
  }
  return tok;
}

// Loads a tokenizer.json file.
inline Tokenizer load_tokenizer_json(const std::filesystem::path& path) {
  return tokenizer_from_json(detail::read_text_file(path), path.string());
}

// The tokenizer.json of the byte tokenizer: 256 tokens, token id == byte value, no merges, no
// normalizer and no split. Small byte-level models ship exactly this file.
inline std::string byte_tokenizer_json() {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_codepoint(static_cast<std::uint8_t>(b)));
    vocab[ch] = b;
  }
  nlohmann::ordered_json byte_level = {{"type", "ByteLevel"},
                                       {"add_prefix_space", false},
                                       {"trim_offsets", true},
                                       {"use_regex", false}};
  nlohmann::ordered_json j = {{"version", "1.0"},
                              {"truncation", nullptr},
                              {"padding", nullptr},
                              {"added_tokens", nlohmann::ordered_json::array()},
                              {"normalizer", nullptr},
                              {"pre_tokenizer", byte_level},
                              {"post_processor", nullptr},
                              {"decoder", byte_level},
                              {"model",
                               {{"type", "BPE"},
                                {"dropout", nullptr},
                                {"unk_token", nullptr},
                                {"continuing_subword_prefix", nullptr},
                                {"end_of_word_suffix", nullptr},
                                {"fuse_unk", false},
                                {"byte_fallback", false},
                                {"vocab", vocab},
                                {"merges", nlohmann::ordered_json::array()}}}};
  return j.dump();
}

// The byte tokenizer, built in memory.
inline Tokenizer byte_tokenizer() {
  return tokenizer_from_json(byte_tokenizer_json(), "byte tokenizer");
}

}  // namespace mamba
