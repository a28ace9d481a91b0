#pragma once
// Reads a fixture written by scripts/reference.py: reference.json and float64 logits.bin.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

struct ReferenceFixture {
  std::string dir;
  std::vector<int32_t> tokens;
  int64_t vocab_size = 0;
  std::vector<double> logits;  // (n_tokens, vocab_size)

  static ReferenceFixture load(const std::string& name) {
    ReferenceFixture f;
    f.dir = std::string(MAMBA_FIXTURES_DIR) + "/" + name;
    std::ifstream j(f.dir + "/reference.json");
    if (!j) throw std::runtime_error("missing fixture " + f.dir + " (run scripts/reference.py)");
    const auto meta = nlohmann::json::parse(j);
    f.tokens = meta["tokens"].get<std::vector<int32_t>>();
    f.vocab_size = meta["vocab_size"].get<int64_t>();
    f.logits.resize(f.tokens.size() * f.vocab_size);
    std::ifstream b(f.dir + "/logits.bin", std::ios::binary);
    b.read(reinterpret_cast<char*>(f.logits.data()), f.logits.size() * sizeof(double));
    if (!b) throw std::runtime_error(f.dir + "/logits.bin is short");
    return f;
  }
};

// ||got - ref|| / ||ref|| over the whole arrays.
template <class A, class B>
double relative_error(const A& got, const B& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(ref[i]);
    num += d * d;
    den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  return std::sqrt(num / den);
}
