#pragma once
// One entry point for every place a tokenizer comes from: a tokenizer.json, a GGUF (a model
// or a vocab-only file), or a model directory holding a tokenizer.json.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "mamba/error.hpp"
#include "mamba/tokenizer/gguf_vocab.hpp"
#include "mamba/tokenizer/tokenizer_json.hpp"

namespace mamba {

inline Tokenizer load_tokenizer(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const std::filesystem::path json = path / "tokenizer.json";
    if (!std::filesystem::is_regular_file(json, ec)) {
      throw FormatError(path.string() + ": the directory has no tokenizer.json");
    }
    return load_tokenizer_json(json);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path.string() + ": cannot open the file");
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) {
    return load_tokenizer_gguf(path.string());
  }
  return load_tokenizer_json(path);
}

}  // namespace mamba
