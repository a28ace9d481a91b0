// State files on arbitrary bytes, as float and as double, for a micro Mamba-1 and Mamba-2 model.
// The input is tried as it is and once more with its checksum (and config fingerprint) made right,
// so the fuzzer gets past the checksum to the checks behind it. A state that loads saves back to
// the bytes.
#include <mamba/model/state_io.hpp>

#include "fuzz_common.hpp"

using namespace mamba;

namespace {

template <class T>
void load(std::span<const std::byte> bytes, const ModelConfig& c) {
  fuzz::expect_errors([&] {
    const SavedState<T> s = state_from_bytes<T>(bytes, c, "fuzz.state");
    const auto again = state_to_bytes(c, s.state, s.tokens);
    if (bytes.size() >= 16 && static_cast<uint8_t>(bytes[12]) == sizeof(T))
      fuzz::check(
          again.size() == bytes.size() && std::equal(again.begin(), again.end(), bytes.begin()),
          "load then save gives the same bytes");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ModelConfig configs[] = {fuzz::micro_config(), fuzz::micro_mamba2_config()};
  const auto* p = reinterpret_cast<const std::byte*>(data);
  std::vector<std::byte> bytes(p, p + size);
  for (const auto& c : configs) {
    load<float>(bytes, c);
    load<double>(bytes, c);
  }
  using namespace state_io_detail;
  // The fingerprint of the stored config fields (bytes 24..104, and 32 more in version 2), then
  // the checksum.
  const size_t fields = kFieldsSize + (size > 8 && bytes[8] == std::byte{2} ? kMamba2Size : 0);
  if (size >= 24 + fields + 16 + 8) {
    const uint64_t fp = fnv1a64(std::span(bytes).subspan(24, fields));
    for (int i = 0; i < 8; ++i) bytes[16 + i] = static_cast<std::byte>(fp >> (8 * i));
    const uint64_t sum = fnv1a64(std::span(bytes).first(size - 8));
    for (int i = 0; i < 8; ++i) bytes[size - 8 + i] = static_cast<std::byte>(sum >> (8 * i));
    for (const auto& c : configs) {
      load<float>(bytes, c);
      load<double>(bytes, c);
    }
  }
  return 0;
}
