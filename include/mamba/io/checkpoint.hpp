#pragma once
// A checkpoint on disk, whatever its format, seen as: a ModelConfig plus named tensor views in
// Hugging Face naming and torch shape order. The model is built from this and nothing else.
//
//   directory/            config.json + model.safetensors, or + model.safetensors.index.json,
//                         or + pytorch_model.bin (torch.save, as the state-spaces repositories),
//                         or + pytorch_model.bin.index.json
//   file.safetensors      with config.json beside it
//   file.bin, file.pt     a torch.save archive, with config.json beside it
//   (file.gguf            see gguf_checkpoint.hpp)
//
// Names are normalised to HF's: the original state-spaces `backbone.embedding.weight` becomes
// `backbone.embeddings.weight`. A format that stores A itself rather than A_log (GGUF stores
// -exp(A_log)) names it `backbone.layers.N.mixer.A`.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/io/safetensors.hpp"
#include "mamba/io/torch_file.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba {

struct TensorRef {
  DType type = DType::F32;
  std::vector<int64_t> shape;  // torch order
  const std::byte* data = nullptr;
  uint64_t nbytes = 0;
  std::string file;  // where it came from, for messages
};

struct Checkpoint {
  std::string path;
  ModelConfig config;
  std::map<std::string, TensorRef> tensors;
  std::vector<std::shared_ptr<const void>> keep_alive;  // the mappings the views point into
  std::optional<std::string> tokenizer_json;            // tokenizer.json beside it, if any

  const TensorRef* find(const std::string& name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
};

namespace detail {

inline std::string normalise_tensor_name(const std::string& name) {
  static const std::string old_embedding = "backbone.embedding.weight";
  if (name == old_embedding) return "backbone.embeddings.weight";
  return name;
}

// The tensors of one file (a SafetensorsFile or a TorchFile), or those of them named in `only`.
// Tensors of types the library does not compute with are kept out: if the model needs one, the
// missing-tensor error says which file had it. Tied weights in a torch.save file share a storage,
// and so their bytes.
template <class File>
inline void add_file(Checkpoint& ck, const File& f,
                     const std::vector<std::string>* only = nullptr) {
  ck.keep_alive.push_back(f.file());
  for (const auto& [name, t] : f.tensors()) {
    if (only && std::find(only->begin(), only->end(), name) == only->end()) continue;
    if (!t.dtype) continue;
    const std::string key = normalise_tensor_name(name);
    if (ck.tensors.count(key))
      throw FormatError(f.path() + ": tensor '" + name + "' appears twice in the checkpoint");
    ck.tensors.emplace(key, TensorRef{*t.dtype, t.shape, t.data, t.nbytes, f.path()});
  }
}

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": bad JSON: " + e.what());
  }
}

// model.safetensors.index.json or pytorch_model.bin.index.json: {"weight_map": {tensor name:
// shard file name}}, as shard file name -> the tensors it holds.
inline std::map<std::string, std::vector<std::string>> read_shard_index(
    const std::filesystem::path& index_path) {
  const auto j = read_json_file(index_path.string());
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError(index_path.string() + ": no weight_map object");
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string())
      throw FormatError(index_path.string() + ": weight_map['" + name + "'] is not a file name");
    const auto file = shard.get<std::string>();
    if (file.find('/') != std::string::npos || file == "..")
      throw FormatError(index_path.string() + ": shard name '" + file + "' leaves the directory");
    by_shard[file].push_back(name);
  }
  return by_shard;
}

// The shards an index names, each a File (SafetensorsFile or TorchFile).
template <class File>
inline void add_sharded(Checkpoint& ck, const std::filesystem::path& index_path) {
  for (const auto& [file, names] : read_shard_index(index_path)) {
    const auto shard = File::open((index_path.parent_path() / file).string());
    add_file(ck, shard, &names);
    for (const auto& n : names)
      if (!shard.tensors().count(n))
        throw FormatError(shard.path() + ": index says it holds tensor '" + n + "', it does not");
  }
}

}  // namespace detail

// A checkpoint whose config is a config.json: a directory, or a .safetensors or torch.save file
// beside it.
inline Checkpoint load_config_json_checkpoint(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path dir = fs::is_directory(p)       ? p
                       : p.parent_path().empty() ? fs::path(".")
                                                 : p.parent_path();
  Checkpoint ck;
  ck.path = path;
  const fs::path config = dir / "config.json";
  if (!fs::exists(config)) throw Error(path + ": no config.json beside the weights");
  ck.config = ModelConfig::from_file(config.string());
  if (!fs::is_directory(p)) {
    const auto ext = p.extension();
    if (is_torch_zip(p.string()) || ext == ".bin" || ext == ".pt" || ext == ".pth")
      detail::add_file(ck, TorchFile::open(p.string()));
    else
      detail::add_file(ck, SafetensorsFile::open(p.string()));
  } else if (fs::exists(dir / "model.safetensors")) {
    detail::add_file(ck, SafetensorsFile::open((dir / "model.safetensors").string()));
  } else if (fs::exists(dir / "model.safetensors.index.json")) {
    detail::add_sharded<SafetensorsFile>(ck, dir / "model.safetensors.index.json");
  } else if (fs::exists(dir / "pytorch_model.bin")) {
    detail::add_file(ck, TorchFile::open((dir / "pytorch_model.bin").string()));
  } else if (fs::exists(dir / "pytorch_model.bin.index.json")) {
    detail::add_sharded<TorchFile>(ck, dir / "pytorch_model.bin.index.json");
  } else {
    throw Error(path +
                ": no model.safetensors, pytorch_model.bin or an index of their shards in the "
                "directory");
  }
  if (fs::exists(dir / "tokenizer.json")) ck.tokenizer_json = (dir / "tokenizer.json").string();
  return ck;
}

}  // namespace mamba
