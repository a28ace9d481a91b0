#pragma once
// Storage types of weights. The numbering is ggml's (GGUF stores it), the block layouts are
// ggml's too, so a file written by llama.cpp maps straight onto these.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mamba/error.hpp"

namespace mamba {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  BF16 = 30,
};

struct DTypeTraits {
  std::string_view name;
  int64_t block_size;   // elements per block (1 for plain floats)
  int64_t block_bytes;  // bytes per block
};

inline constexpr DTypeTraits traits(DType t) {
  switch (t) {
    case DType::F32: return {"f32", 1, 4};
    case DType::F16: return {"f16", 1, 2};
    case DType::BF16: return {"bf16", 1, 2};
    case DType::Q4_0: return {"q4_0", 32, 2 + 16};
    case DType::Q8_0: return {"q8_0", 32, 2 + 32};
    case DType::Q4_K: return {"q4_k", 256, 2 + 2 + 12 + 128};
    case DType::Q6_K: return {"q6_k", 256, 128 + 64 + 16 + 2};
  }
  return {"unknown", 0, 0};
}

inline std::optional<DType> dtype_from_ggml(uint32_t id) {
  switch (id) {
    case 0: case 1: case 2: case 8: case 12: case 14: case 30: return static_cast<DType>(id);
    default: return std::nullopt;
  }
}

inline std::string_view dtype_name(DType t) { return traits(t).name; }

// Bytes of one row of n elements; n must be a multiple of the block size.
inline int64_t row_bytes(DType t, int64_t n) {
  const auto tr = traits(t);
  if (tr.block_size == 0 || n % tr.block_size != 0)
    throw ShapeError("row of " + std::to_string(n) + " elements is not a multiple of the " +
                     std::string(tr.name) + " block size " + std::to_string(tr.block_size));
  return n / tr.block_size * tr.block_bytes;
}

}  // namespace mamba
