// A torch.save archive (pytorch_model.bin) on arbitrary bytes: the zip structure and the pickle,
// then the tensors as the weights of a micro model (Mamba-2 when the file has dt_bias) and a
// forward pass.
#include <mamba/io/torch_file.hpp>

#include "fuzz_weights.hpp"

using namespace mamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* p = reinterpret_cast<const std::byte*>(data);
  fuzz::expect_errors([&] {
    const auto f = TorchFile::from_file(MappedFile::from_bytes("fuzz.bin", {p, p + size}));
    (void)fuzz::run_weights(f, fuzz::micro_config_for(f));
  });
  return 0;
}
