#pragma once
// GGUF's vocabulary, shared by the reader and the writer. A GGUF file is:
//   "GGUF" | u32 version (2 or 3) | u64 n_tensors | u64 n_kv
//   n_kv x  (string key | u32 value type | value)
//   n_tensors x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset)
//   zero padding to `general.alignment` (default 32) | tensor data, each tensor at its offset
//   from here (a multiple of the alignment), in llama.cpp's files each padded to the alignment.
// Strings are u64 length + bytes (no terminator); arrays are u32 element type + u64 count +
// elements. Everything is little-endian. `ne` is ggml's order: ne[0] is the contiguous dimension.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mamba {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;
inline constexpr size_t kGgufMaxName = 63;  // llama.cpp rejects tensor names of 64 bytes or more

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

inline bool gguf_type_valid(uint32_t t) {
  return t <= 12;
}

// Bytes of one scalar of a fixed-size type; 0 for STRING and ARRAY.
inline size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

inline bool gguf_type_is_int(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

inline std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
      return "u8";
    case GgufType::INT8:
      return "i8";
    case GgufType::UINT16:
      return "u16";
    case GgufType::INT16:
      return "i16";
    case GgufType::UINT32:
      return "u32";
    case GgufType::INT32:
      return "i32";
    case GgufType::FLOAT32:
      return "f32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::UINT64:
      return "u64";
    case GgufType::INT64:
      return "i64";
    case GgufType::FLOAT64:
      return "f64";
  }
  return "unknown";
}

inline uint64_t gguf_align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

}  // namespace mamba
