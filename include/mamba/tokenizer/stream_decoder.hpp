#pragma once
// Decoding token by token during generation. A token may end in the middle of a multi-byte
// character (GPT-NeoX splits most emoji and CJK characters over two or more tokens), so the
// bytes of an unfinished character are held back until a later token completes them. Whatever
// is emitted is valid UTF-8, and the concatenation of everything put() and flush() return is
// exactly Tokenizer::decode() of all the ids.
#include <cstdint>
#include <string>
#include <string_view>

#include "mamba/tokenizer/tokenizer.hpp"
#include "mamba/tokenizer/unicode.hpp"

namespace mamba {

class StreamDecoder {
 public:
  // The tokenizer must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}

  // The text that token id completes (often the token's own text, sometimes "" while a
  // character is unfinished, sometimes more when it finishes one).
  std::string put(std::int32_t id) {
    if (skip_special_ && tokenizer_->is_special(id)) return {};
    return put_bytes(tokenizer_->token_bytes(id));
  }

  // Raw bytes, for callers that hold them already.
  std::string put_bytes(std::string_view bytes) {
    pending_ += bytes;
    const std::size_t keep = utf8_incomplete_tail(pending_);
    std::string out = utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
    pending_.erase(0, pending_.size() - keep);
    return out;
  }

  // At the end of the sequence: an unfinished character left over becomes U+FFFD.
  std::string flush() {
    std::string out = utf8_lossy(pending_);
    pending_.clear();
    return out;
  }

  // Bytes held back, waiting for the rest of their character (0 to 3).
  std::size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace mamba
