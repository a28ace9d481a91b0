#pragma once
// load_checkpoint(path): picks the format from what the path is.
#include <filesystem>
#include <string>

#include "mamba/io/checkpoint.hpp"

namespace mamba {

inline Checkpoint load_checkpoint(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file or directory");
  return load_safetensors_checkpoint(path);
}

}  // namespace mamba
