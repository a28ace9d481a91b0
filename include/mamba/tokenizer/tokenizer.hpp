#pragma once
// The byte-level BPE tokenizer: text -> ids and ids -> bytes, the pipeline of the reference
// (Hugging Face) tokenizer for GPT-2-style vocabularies such as GPT-NeoX-20B's:
//
//   1. added tokens matched in the raw text (those not marked "normalized": <|endoftext|>);
//   2. each stretch between them normalized (NFC, when the tokenizer has that normalizer);
//   3. added tokens marked "normalized" matched (GPT-NeoX's runs of spaces);
//   4. each stretch between those split by the GPT-2 pattern (unless use_regex is false);
//   5. each piece's bytes merged by BPE.
//
// Loaders build it from a tokenizer.json (tokenizer_json.hpp) or GGUF metadata (gguf_vocab.hpp).
// A Tokenizer is immutable after construction apart from its word cache, which is guarded, so
// one tokenizer can serve several threads.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/tokenizer/added_tokens.hpp"
#include "mamba/tokenizer/bpe.hpp"
#include "mamba/tokenizer/byte_level.hpp"
#include "mamba/tokenizer/gpt2_split.hpp"
#include "mamba/tokenizer/unicode.hpp"

namespace mamba {

struct TokenizerOptions {
  bool nfc = true;                // an NFC normalizer
  bool use_regex = true;          // the GPT-2 split before BPE
  bool add_prefix_space = false;  // a space put before each stretch that does not start with one
  bool ignore_merges = false;     // a word that is a whole token is taken as it is
};

class Tokenizer {
 public:
  // vocab[id]: the byte-level string of each id, "" for ids that exist only as added tokens.
  // Every added token's id must be < vocab.size().
  Tokenizer(std::vector<std::string> vocab,
            const std::vector<std::pair<std::string, std::string>>& merges,
            std::vector<AddedToken> added, TokenizerOptions options, const std::string& source)
      : bpe_(std::move(vocab), merges, options.ignore_merges, source), options_(options) {
    const std::size_t n = bpe_.vocab().size();
    added_index_.assign(n, -1);
    for (std::size_t k = 0; k < added.size(); ++k) {
      const AddedToken& t = added[k];
      if (t.id < 0 || static_cast<std::size_t>(t.id) >= n) {
        throw FormatError(source + ": added token '" + t.content + "' has id " +
                          std::to_string(t.id) + ", past the vocabulary of " + std::to_string(n));
      }
      if (t.content.empty())
        throw FormatError(source + ": added token " + std::to_string(t.id) + " has empty content");
      added_index_[static_cast<std::size_t>(t.id)] = static_cast<std::int32_t>(k);
      if (t.normalized && options.nfc) {
        // Matched in normalized text, so matched as normalized (as the reference does).
        AddedToken as_matched = t;
        as_matched.content = nfc(t.content);
        normalized_matcher_.add(as_matched);
      } else {
        (t.normalized ? normalized_matcher_ : raw_matcher_).add(t);
      }
      added_ids_.emplace(t.content, t.id);
    }
    added_ = std::move(added);
    // What each id decodes to: the byte-level characters mapped back to bytes; a token with a
    // character outside the byte alphabet (an added token such as "  ") is its own UTF-8 text.
    token_bytes_.resize(n);
    for (std::size_t id = 0; id < n; ++id) {
      const std::string& text = token(static_cast<std::int32_t>(id));
      if (text.empty()) {
        throw FormatError(source + ": token id " + std::to_string(id) +
                          " is missing (ids must run from 0 to " + std::to_string(n - 1) + ")");
      }
      std::optional<std::string> bytes = byte_level_to_bytes(text);
      token_bytes_[id] = bytes ? std::move(*bytes) : text;
    }
  }

  std::int32_t vocab_size() const { return static_cast<std::int32_t>(token_bytes_.size()); }

  // Text to ids. parse_special: special added tokens written in the text (<|endoftext|>) become
  // their id (the reference's default). Otherwise they are plain text, encoded exactly as if the
  // vocabulary had no such token (llama.cpp's parse_special = false; the reference's
  // split_special_tokens differs in also cutting the text around them). Non-special added
  // tokens always match. Nothing is added (no BOS/EOS). Invalid UTF-8 is encoded byte for byte
  // (see unicode.hpp).
  std::vector<std::int32_t> encode(std::string_view text, bool parse_special = false) const {
    std::vector<std::int32_t> out;
    out.reserve(text.size() / 3 + 1);
    for_each_gap(raw_matcher_, text, parse_special, out,
                 [&](std::string_view stretch) { encode_stretch(stretch, parse_special, out); });
    return out;
  }

  // Ids to the bytes they stand for (not necessarily valid UTF-8: a character may be split
  // across the end). skip_special drops special tokens.
  std::string decode_bytes(std::span<const std::int32_t> ids, bool skip_special = false) const {
    std::string out;
    for (const std::int32_t id : ids) {
      if (skip_special && is_special(id)) continue;
      out += token_bytes(id);
    }
    return out;
  }

  // Ids to valid UTF-8 (invalid byte sequences become U+FFFD, as the reference decoder does).
  std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const {
    return utf8_lossy(decode_bytes(ids, skip_special));
  }

  // The bytes one token stands for. Throws ArgumentError for an id outside the vocabulary.
  const std::string& token_bytes(std::int32_t id) const {
    check_id(id);
    return token_bytes_[static_cast<std::size_t>(id)];
  }

  // The token's string as the vocabulary writes it (byte-level characters, or an added
  // token's content).
  const std::string& token(std::int32_t id) const {
    check_id_in(id, bpe_.vocab().size());
    const std::int32_t k = added_index_[static_cast<std::size_t>(id)];
    return k >= 0 ? added_[static_cast<std::size_t>(k)].content
                  : bpe_.vocab()[static_cast<std::size_t>(id)];
  }

  // The id of a token given as the vocabulary writes it (or an added token's content).
  std::optional<std::int32_t> token_id(std::string_view token) const {
    if (const auto it = added_ids_.find(std::string(token)); it != added_ids_.end()) {
      return it->second;
    }
    const std::int32_t id = bpe_.find(token);
    if (id < 0) return {};
    return id;
  }

  bool is_special(std::int32_t id) const {
    check_id(id);
    const std::int32_t k = added_index_[static_cast<std::size_t>(id)];
    return k >= 0 && added_[static_cast<std::size_t>(k)].special;
  }

  const std::vector<AddedToken>& added_tokens() const { return added_; }
  const TokenizerOptions& options() const { return options_; }

  // Beginning / end of sequence and padding ids, -1 when the tokenizer file names none.
  std::int32_t bos_id() const { return bos_id_; }
  std::int32_t eos_id() const { return eos_id_; }
  std::int32_t pad_id() const { return pad_id_; }
  void set_special_ids(std::int32_t bos, std::int32_t eos, std::int32_t pad) {
    for (const std::int32_t id : {bos, eos, pad}) {
      if (id != -1) check_id(id);
    }
    bos_id_ = bos, eos_id_ = eos, pad_id_ = pad;
  }

  void clear_cache() const { bpe_.clear_cache(); }

 private:
  void check_id(std::int32_t id) const { check_id_in(id, token_bytes_.size()); }

  static void check_id_in(std::int32_t id, std::size_t n) {
    if (id < 0 || static_cast<std::size_t>(id) >= n) {
      throw ArgumentError("token id " + std::to_string(id) + " is outside the vocabulary (ids 0.." +
                          std::to_string(static_cast<std::int64_t>(n) - 1) + ")");
    }
  }

  // Calls gap(stretch) for the text between added-token matches and appends the matched ids.
  template <class F>
  static void for_each_gap(const AddedTokenMatcher& matcher, std::string_view text,
                           bool parse_special, std::vector<std::int32_t>& out, F&& gap) {
    if (matcher.empty()) {
      gap(text);
      return;
    }
    std::size_t done = 0;
    for (const AddedMatch& m : matcher.find_all(text, parse_special)) {
      if (m.begin > done) gap(text.substr(done, m.begin - done));
      out.push_back(m.id);
      done = m.end;
    }
    if (done < text.size()) gap(text.substr(done));
  }

  void encode_stretch(std::string_view raw, bool parse_special,
                      std::vector<std::int32_t>& out) const {
    std::string normalized;
    std::string_view text = raw;
    if (options_.nfc) {
      normalized = nfc(raw);
      text = normalized;
    }
    for_each_gap(normalized_matcher_, text, parse_special, out, [&](std::string_view piece) {
      std::string prefixed;
      if (options_.add_prefix_space && piece[0] != ' ') {
        prefixed = " ";
        prefixed += piece;
        piece = prefixed;
      }
      const auto word = [&](std::string_view w) { bpe_.encode_word(w, out); };
      if (options_.use_regex) {
        gpt2_split(piece, word);
      } else {
        no_split(piece, word);
      }
    });
  }

  BpeModel bpe_;
  TokenizerOptions options_;
  std::vector<AddedToken> added_;
  std::vector<std::int32_t> added_index_;  // id -> index into added_, or -1
  std::unordered_map<std::string, std::int32_t> added_ids_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  std::vector<std::string> token_bytes_;
  std::int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
};

}  // namespace mamba
