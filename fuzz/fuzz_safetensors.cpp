// A safetensors file on arbitrary bytes: the header, then the tensors as the weights of a micro
// model (every name, type and shape checked against its config) and a forward pass.
#include <mamba/io/checkpoint.hpp>
#include <mamba/io/safetensors.hpp>
#include <mamba/model/model.hpp>

#include "fuzz_common.hpp"

using namespace mamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* p = reinterpret_cast<const std::byte*>(data);
  fuzz::expect_errors([&] {
    const auto f =
        SafetensorsFile::from_file(MappedFile::from_bytes("fuzz.safetensors", {p, p + size}));
    fuzz::check_inside(*f.file(), f.tensors());
    Checkpoint ck;
    ck.path = f.path();
    ck.config = fuzz::micro_config();
    detail::add_file(ck, f);
    const Model model(ck);
    auto state = model.new_state();
    const int32_t ids[] = {0, 7, 3};
    (void)model.prefill(ids, state);
  });
  return 0;
}
