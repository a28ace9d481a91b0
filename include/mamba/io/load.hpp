#pragma once
// load_checkpoint(path): picks the format from what the path is.
#include <filesystem>
#include <string>

#include "mamba/io/checkpoint.hpp"
#include "mamba/io/gguf_checkpoint.hpp"

namespace mamba {

inline Checkpoint load_checkpoint(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file or directory");
  if (std::filesystem::is_regular_file(path) && is_gguf_file(path))
    return load_gguf_checkpoint(path);
  return load_config_json_checkpoint(path);
}

}  // namespace mamba
