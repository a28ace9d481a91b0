// How a host application uses mamba.hpp: load a checkpoint, feed a prompt, decode greedily.
//   minimal MODEL_DIR [TOKEN_ID ...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <mamba/mamba.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: minimal MODEL_DIR [TOKEN_ID ...]\n");
    return 1;
  }
  try {
    // Weights are loaded once (memory-mapped) and can be shared by many sequences.
    const auto model = mamba::Model::load(argv[1]);

    // Each sequence owns its recurrent state: a few KiB per layer, no matter how long the text.
    auto state = model.new_state();

    std::vector<int32_t> prompt;
    for (int i = 2; i < argc; ++i) prompt.push_back(std::atoi(argv[i]));
    if (prompt.empty()) prompt = {0};

    // Prefill returns the logits of the last prompt position.
    std::vector<float> logits = model.prefill(prompt, state);
    for (int i = 0; i < 8; ++i) {
      const auto next = static_cast<int32_t>(
          std::max_element(logits.begin(), logits.end()) - logits.begin());
      std::printf("%d ", next);
      logits = model.step(next, state);  // one token in, the next logits out
    }
    std::printf("\n");
  } catch (const mamba::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
