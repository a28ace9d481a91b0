#pragma once
// What the weight-file harnesses share: the tensors a reader returned, checked to lie inside the
// file, as the weights of a micro model (every name, type and shape checked against its config),
// then a forward pass.
#include <cstddef>
#include <cstdint>
#include <mamba/io/checkpoint.hpp>
#include <mamba/model/model.hpp>
#include <vector>

#include "fuzz_common.hpp"

namespace mamba::fuzz {

// The micro model whose weights `f` (a SafetensorsFile or a TorchFile) would be: Mamba-2 when it
// has a dt_bias.
template <class File>
ModelConfig micro_config_for(const File& f) {
  return f.tensors().count("backbone.layers.0.mixer.dt_bias") ? micro_mamba2_config()
                                                              : micro_config();
}

// The logits of a few tokens through the micro model of `config` with the weights of `f` (a
// SafetensorsFile or a TorchFile).
template <class File>
std::vector<float> run_weights(const File& f, const ModelConfig& config) {
  for (const auto& [name, t] : f.tensors()) {
    const MappedFile& file = *f.file();
    check(t.data >= file.data() &&
              t.nbytes <= static_cast<uint64_t>(file.data() + file.size() - t.data),
          "tensor inside the file");
    volatile std::byte sink{};  // its first and last bytes read, for AddressSanitizer to see
    if (t.nbytes > 0) sink = t.data[0] ^ t.data[t.nbytes - 1];
    (void)sink;
  }
  Checkpoint ck;
  ck.path = f.path();
  ck.config = config;
  detail::add_file(ck, f);
  const Model model(ck);
  auto state = model.new_state();
  const int32_t ids[] = {0, 7, 3};
  return model.prefill(ids, state);
}

}  // namespace mamba::fuzz
