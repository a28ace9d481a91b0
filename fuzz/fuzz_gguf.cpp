// The GGUF reader on arbitrary bytes: header, every key read as every type, the Mamba config,
// the tensors as a checkpoint and weights, the tokenizer, and a forward pass when the model
// that comes out is small.
#include <mamba/io/gguf.hpp>
#include <mamba/io/gguf_checkpoint.hpp>
#include <mamba/model/model.hpp>
#include <mamba/tokenizer/gguf_vocab.hpp>

#include "fuzz_common.hpp"

using namespace mamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* p = reinterpret_cast<const std::byte*>(data);
  fuzz::expect_errors([&] {
    const GgufFile g = GgufFile::from_file(MappedFile::from_bytes("fuzz.gguf", {p, p + size}));
    for (const std::string& key : g.keys()) {
      (void)g.raw_value(key);
      fuzz::expect_errors([&] { (void)g.get_string(key); });
      fuzz::expect_errors([&] { (void)g.get_uint(key); });
      fuzz::expect_errors([&] { (void)g.get_float(key); });
      fuzz::expect_errors([&] { (void)g.get_bool(key); });
      fuzz::expect_errors([&] { (void)g.get_string_array(key); });
      fuzz::expect_errors([&] { (void)g.get_int_array(key); });
      fuzz::expect_errors([&] { (void)g.get_float_array(key); });
    }
    for (const auto& t : g.tensors()) {
      fuzz::check(
          t.data >= g.file()->data() &&
              t.nbytes <= static_cast<uint64_t>(g.file()->data() + g.file()->size() - t.data),
          "tensor inside the file");
      volatile std::byte sink{};
      if (t.nbytes > 0) sink = t.data[0] ^ t.data[t.nbytes - 1];
      (void)sink;
    }
    fuzz::expect_errors([&] {
      const Tokenizer tok = tokenizer_from_gguf(g);
      const auto ids = tok.encode("Hello world, h\xc3\xa9llo <|endoftext|>  x", true);
      (void)tok.decode(ids);
    });
    const Checkpoint ck = gguf_checkpoint(g);
    const Model model(ck);
    const ModelConfig& c = model.config();
    // Run it only when it is small: every dimension was checked against tensors in the file.
    if (c.d_model * c.d_inner * c.n_layer <= (1 << 16) && c.vocab_size <= (1 << 12)) {
      auto state = model.new_state();
      const int32_t ids[] = {0, static_cast<int32_t>(c.vocab_size - 1)};
      (void)model.prefill(ids, state);
    }
  });
  return 0;
}
