#pragma once
// Added tokens: strings matched in the text before pre-tokenization and turned into their id
// directly (the special <|endoftext|>, and GPT-NeoX's runs of 2 to 24 spaces, ids 50254-50276).
// Matching is leftmost-longest, as in the reference tokenizer: the earliest position where any
// token matches, and the longest token there. A byte trie finds it in one walk per position.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mamba/tokenizer/unicode.hpp"

namespace mamba {

struct AddedToken {
  std::string content;  // the text matched, as it appears in the (normalized) input
  std::int32_t id = -1;
  bool special = false;      // matched only when the caller asks to parse special tokens
  bool normalized = false;   // matched after normalization (NFC) rather than in the raw text
  bool lstrip = false;       // the match also takes the whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // matched only when no letter, number or '_' touches it
};

// A match of an added token: the bytes [begin, end) of the text (lstrip/rstrip included).
struct AddedMatch {
  std::size_t begin, end;
  std::int32_t id;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() : nodes_(1) {}

  void add(const AddedToken& t) {
    if (t.content.empty()) return;
    std::int32_t node = 0;
    for (const char c : t.content) {
      const auto b = static_cast<unsigned char>(c);
      std::int32_t child = find_child(node, b);
      if (child < 0) {
        child = static_cast<std::int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[node].token = static_cast<std::int32_t>(tokens_.size());
    tokens_.push_back(t);
    const auto first = static_cast<unsigned char>(t.content[0]);
    if (!first_byte_[first]) ++distinct_first_bytes_;
    first_byte_[first] = true;
    only_first_byte_ = static_cast<char>(first);
    if (!t.special) ++non_special_;
  }

  bool empty() const { return tokens_.empty(); }

  // Every match in s, left to right, without overlaps. Tokens with special == true are
  // skipped unless parse_special.
  std::vector<AddedMatch> find_all(std::string_view s, bool parse_special) const {
    std::vector<AddedMatch> out;
    if (tokens_.empty() || (!parse_special && non_special_ == 0)) return out;
    std::size_t floor = 0;  // lstrip may not eat into the previous match
    for (std::size_t i = 0; i < s.size();) {
      if (distinct_first_bytes_ == 1) {  // all tokens start alike (GPT-NeoX's spaces): jump
        const void* hit = std::memchr(s.data() + i, only_first_byte_, s.size() - i);
        if (hit == nullptr) break;
        i = static_cast<std::size_t>(static_cast<const char*>(hit) - s.data());
      } else if (!first_byte_[static_cast<unsigned char>(s[i])]) {
        ++i;
        continue;
      }
      const std::int32_t t = longest_at(s, i, parse_special);
      if (t < 0) {
        ++i;
        continue;
      }
      const AddedToken& tok = tokens_[static_cast<std::size_t>(t)];
      std::size_t begin = i, end = i + tok.content.size();
      if (tok.single_word && !(is_word_boundary(s, begin, end))) {
        ++i;
        continue;
      }
      if (tok.lstrip) {
        while (begin > floor && is_space_byte(s[begin - 1])) --begin;
      }
      if (tok.rstrip) {
        while (end < s.size() && is_space_byte(s[end])) ++end;
      }
      out.push_back({begin, end, tok.id});
      floor = end;
      i = end;
    }
    return out;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> children;
    std::int32_t token = -1;  // index into tokens_ of the token ending here
  };

  std::int32_t find_child(std::int32_t node, unsigned char b) const {
    for (const auto& [c, child] : nodes_[static_cast<std::size_t>(node)].children) {
      if (c == b) return child;
    }
    return -1;
  }

  std::int32_t longest_at(std::string_view s, std::size_t i, bool parse_special) const {
    std::int32_t node = 0, best = -1;
    for (std::size_t k = i; k < s.size(); ++k) {
      node = find_child(node, static_cast<unsigned char>(s[k]));
      if (node < 0) break;
      const std::int32_t t = nodes_[static_cast<std::size_t>(node)].token;
      if (t >= 0 && (parse_special || !tokens_[static_cast<std::size_t>(t)].special)) best = t;
    }
    return best;
  }

  static bool is_space_byte(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

  static bool is_word_byte(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }

  static bool is_word_boundary(std::string_view s, std::size_t begin, std::size_t end) {
    return (begin == 0 || !is_word_byte(s[begin - 1])) &&
           (end == s.size() || !is_word_byte(s[end]));
  }

  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
  int distinct_first_bytes_ = 0;
  char only_first_byte_ = 0;
  std::size_t non_special_ = 0;
};

}  // namespace mamba
