// config.json on arbitrary bytes (either layout): a config that loads is a valid one.
#include <mamba/config.hpp>
#include <mamba/model/state.hpp>

#include "fuzz_common.hpp"

using namespace mamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_errors([&] {
    const ModelConfig c = ModelConfig::from_json_text(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
    c.validate("again");  // what from_json_text returns must pass validate()
    fuzz::check(c.dt_rank <= c.d_inner && c.vocab_size > 0 && c.n_layer > 0, "bounds");
  });
  return 0;
}
