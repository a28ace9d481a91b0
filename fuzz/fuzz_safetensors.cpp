// A safetensors file on arbitrary bytes: the header, then the tensors as the weights of a micro
// model (every name, type and shape checked against its config) and a forward pass.
#include <mamba/io/safetensors.hpp>

#include "fuzz_weights.hpp"

using namespace mamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* p = reinterpret_cast<const std::byte*>(data);
  fuzz::expect_errors([&] {
    (void)fuzz::run_weights(
        SafetensorsFile::from_file(MappedFile::from_bytes("fuzz.safetensors", {p, p + size})),
        fuzz::micro_config());
  });
  return 0;
}
