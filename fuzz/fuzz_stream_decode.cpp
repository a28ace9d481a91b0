// StreamDecoder on arbitrary id sequences (two bytes per id, some past the vocabulary). Promises:
// every piece is valid UTF-8, at most 3 bytes are held back, the pieces concatenate to
// Tokenizer::decode of the same ids, and an id outside the vocabulary is an ArgumentError.
#include <mamba/tokenizer/load_tokenizer.hpp>
#include <mamba/tokenizer/stream_decoder.hpp>

#include "fuzz_common.hpp"

using namespace mamba;

namespace {

std::vector<Tokenizer> make_tokenizers() {
  std::vector<Tokenizer> t;
  t.push_back(tokenizer_from_json(fuzz::synthetic_tokenizer_json({.strip_tokens = true}), "s"));
  t.push_back(byte_tokenizer());
  if (const char* path = std::getenv("MAMBA_FUZZ_TOKENIZER")) t.push_back(load_tokenizer(path));
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<Tokenizer> tokenizers = make_tokenizers();
  if (size == 0) return 0;
  const Tokenizer& tok = tokenizers[data[0] % tokenizers.size()];
  const bool skip_special = (data[0] / tokenizers.size()) % 2 == 1;
  std::vector<int32_t> ids;
  for (size_t i = 1; i + 1 < size; i += 2) {
    const int32_t v = data[i] | (data[i + 1] << 8);
    // Mostly ids in the vocabulary, sometimes just past its end or negative.
    ids.push_back(v < 0xff00 ? v % tok.vocab_size() : tok.vocab_size() - 0xff00 + v - 128);
  }
  StreamDecoder stream(tok, skip_special);
  std::string joined;
  size_t good = 0;
  try {
    for (const int32_t id : ids) {
      const std::string piece = stream.put(id);
      fuzz::check(utf8_is_valid(piece), "piece is UTF-8");
      fuzz::check(stream.pending() <= 3, "at most 3 bytes held back");
      joined += piece;
      ++good;
    }
  } catch (const ArgumentError&) {
    fuzz::check(ids[good] < 0 || ids[good] >= tok.vocab_size(), "only bad ids are refused");
  } catch (const std::exception& e) {
    fuzz::check(false, e.what());
  }
  joined += stream.flush();
  const std::span<const int32_t> done(ids.data(), good);
  fuzz::check(joined == tok.decode(done, skip_special), "stream == decode");
  return 0;
}
