#pragma once
// mamba.hpp: run selective state-space (Mamba and Mamba-2) language models on the CPU.
//
//   auto model = mamba::Model::load("path/to/mamba-130m-hf");   // or a .gguf, or a Mamba-2
//   auto state = model.new_state();
//   std::vector<float> logits = model.prefill(tokens, state);
//   logits = model.step(next_token, state);
//   mamba::set_num_threads(2);                                  // default: one per core
#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/generate/generator.hpp"
#include "mamba/generate/sampler.hpp"
#include "mamba/model/model.hpp"
#include "mamba/model/state.hpp"
#include "mamba/model/state_io.hpp"
#include "mamba/ops/threads.hpp"
#include "mamba/tokenizer/load_tokenizer.hpp"
