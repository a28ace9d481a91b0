// tokenizer.json on arbitrary bytes: a tokenizer that loads encodes and decodes without failing.
#include <mamba/tokenizer/stream_decoder.hpp>
#include <mamba/tokenizer/tokenizer_json.hpp>

#include "fuzz_common.hpp"

using namespace mamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_errors([&] {
    const Tokenizer tok = tokenizer_from_json(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/tokenizer.json");
    for (const bool special : {false, true}) {
      const auto ids =
          tok.encode("Hello  world,\th\xc3\xa9llo <|endoftext|> 123 \xff\xc3", special);
      for (const int32_t id : ids) fuzz::check(id >= 0 && id < tok.vocab_size(), "id in range");
      (void)tok.decode(ids);
    }
    StreamDecoder stream(tok);
    std::string text;
    for (int32_t id = 0; id < std::min(tok.vocab_size(), 300); ++id) text += stream.put(id);
    text += stream.flush();
    fuzz::check(utf8_is_valid(text), "streamed text is UTF-8");
  });
  return 0;
}
