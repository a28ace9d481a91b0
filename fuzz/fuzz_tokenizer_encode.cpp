// Tokenizer::encode on arbitrary bytes. The first byte picks the tokenizer and whether special
// tokens are parsed; the rest is the text. Promises checked: ids are in the vocabulary, a second
// encode (from the word cache) is the same, and for a tokenizer without a normalizer or a
// prefix space, decoding gives back the input byte for byte.
#include <mamba/tokenizer/load_tokenizer.hpp>
#include <memory>

#include "fuzz_common.hpp"

using namespace mamba;

namespace {

struct Case {
  Tokenizer tok;
  bool round_trip;  // decode(encode(x)) == x for every x
};

std::vector<std::unique_ptr<Case>> make_cases() {
  std::vector<std::unique_ptr<Case>> cases;
  auto synthetic = [&](fuzz::TokenizerShape s, bool round_trip) {
    cases.push_back(std::make_unique<Case>(
        Case{tokenizer_from_json(fuzz::synthetic_tokenizer_json(s), "synthetic"), round_trip}));
  };
  synthetic({.nfc = false, .use_regex = true}, true);
  synthetic({.nfc = true, .use_regex = true}, false);
  synthetic({.nfc = false, .use_regex = false}, true);
  synthetic({.nfc = true, .use_regex = true, .add_prefix_space = true, .strip_tokens = true},
            false);
  // GPT-NeoX-20B's tokenizer, the one Mamba checkpoints ship, when the shared data is there.
  if (const char* path = std::getenv("MAMBA_FUZZ_TOKENIZER"))
    cases.push_back(std::make_unique<Case>(Case{load_tokenizer(path), false}));
  return cases;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto cases = make_cases();
  if (size == 0) return 0;
  const Case& c = *cases[data[0] % cases.size()];
  const bool special = (data[0] / cases.size()) % 2 == 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  fuzz::expect_errors([&] {
    const auto ids = c.tok.encode(text, special);
    for (const int32_t id : ids) fuzz::check(id >= 0 && id < c.tok.vocab_size(), "id in range");
    fuzz::check(c.tok.encode(text, special) == ids, "encode is deterministic (word cache)");
    if (c.round_trip) fuzz::check(c.tok.decode_bytes(ids) == text, "decode(encode(x)) == x");
    fuzz::check(utf8_is_valid(c.tok.decode(ids)), "decode gives UTF-8");
  });
  return 0;
}
