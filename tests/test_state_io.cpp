// Saving and loading states: a loaded state continues exactly like one that never stopped, and a
// file from another model, a truncated, damaged or future-version file is a FormatError.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mamba/mamba.hpp>
#include <mamba/model/state_io.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

std::string fixture(const char* name) {
  return std::string(MAMBA_FIXTURES_DIR) + "/" + name;
}

// FNV-1a 64, written again here so the test checks the documented checksum, not the library's.
uint64_t fnv1a(const std::byte* p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 1099511628211ull;
  return h;
}

uint64_t read_u64(const std::vector<std::byte>& b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

void write_u64(std::vector<std::byte>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.at(at + i) = static_cast<std::byte>(v >> (8 * i));
}

// After editing a header field on purpose, make the checksum right again so only the edit is wrong.
void reseal(std::vector<std::byte>& b) {
  write_u64(b, b.size() - 8, fnv1a(b.data(), b.size() - 8));
}

// A unique file in the system's temporary directory, removed afterwards.
struct TempFile {
  std::string path;
  TempFile() {
    std::random_device rd;
    path = (std::filesystem::temp_directory_path() /
            ("mamba_state_io_" + std::to_string(rd()) + std::to_string(rd()) + ".state"))
               .string();
  }
  ~TempFile() { std::filesystem::remove(path); }
};

template <class T>
int32_t argmax(const std::vector<T>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// A state with every value distinct and nonzero, quick to make for any config.
template <class T>
mamba::BasicState<T> patterned_state(const mamba::ModelConfig& c) {
  mamba::BasicState<T> s(c);
  T x = T(0.1);
  for (auto& l : s.layers) {
    for (T& v : l.conv) v = x += T(0.37);
    for (T& v : l.ssm) v = x -= T(0.11);
  }
  s.n_tokens = 17;
  return s;
}

template <class T>
class StateIo : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(StateIo, Scalars);

TYPED_TEST(StateIo, SaveLoadContinueEqualsNeverStopping) {
  using T = TypeParam;
  const auto model = mamba::BasicModel<T>::load(fixture("tiny"));
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 2, 6, 5};
  // never stopping: prompt, then 20 greedy steps
  auto state = model.new_state();
  auto logits = model.prefill(prompt, state);
  std::vector<std::vector<T>> expected_logits;
  std::vector<int32_t> expected_tokens;
  auto saved_mid = state;  // copy taken after 10 steps, below
  std::vector<T> logits_mid;
  for (int i = 0; i < 20; ++i) {
    if (i == 10) {
      saved_mid = state;
      logits_mid = logits;
    }
    expected_tokens.push_back(argmax(logits));
    logits = model.step(expected_tokens.back(), state);
    expected_logits.push_back(logits);
  }

  // stopping after the prompt: save with the prompt, load, continue
  TempFile file;
  {
    auto s = model.new_state();
    const auto first = model.prefill(prompt, s);
    mamba::save_state(file.path, model.config(), s, prompt);
    auto loaded = mamba::load_state<T>(file.path, model.config());
    EXPECT_EQ(loaded.tokens, prompt);
    EXPECT_EQ(loaded.state, s);
    auto l = first;
    for (int i = 0; i < 20; ++i) {
      const int32_t token = argmax(l);
      ASSERT_EQ(token, expected_tokens[i]) << "step " << i;
      l = model.step(token, loaded.state);
      ASSERT_EQ(l, expected_logits[i]) << "step " << i;  // bit for bit
    }
    EXPECT_EQ(loaded.state, state);
  }
  // stopping after 10 generated tokens, saved as bytes
  {
    const auto bytes = mamba::state_to_bytes(model.config(), saved_mid);
    auto loaded = mamba::state_from_bytes<T>(bytes, model.config());
    EXPECT_TRUE(loaded.tokens.empty());
    auto l = logits_mid;
    for (int i = 10; i < 20; ++i) {
      const int32_t token = argmax(l);
      ASSERT_EQ(token, expected_tokens[i]) << "step " << i;
      l = model.step(token, loaded.state);
      ASSERT_EQ(l, expected_logits[i]) << "step " << i;
    }
    EXPECT_EQ(loaded.state.n_tokens, state.n_tokens);
  }
}

TYPED_TEST(StateIo, BytesAndTokensRoundTrip) {
  using T = TypeParam;
  const auto config = mamba::ModelConfig::from_file(fixture("untied_bias") + "/config.json");
  const auto state = patterned_state<T>(config);
  for (const std::vector<int32_t>& tokens :
       {std::vector<int32_t>{}, std::vector<int32_t>{0}, std::vector<int32_t>{60, 0, 7, 7, 59}}) {
    const auto bytes = mamba::state_to_bytes(config, state, tokens);
    const size_t values =
        config.n_layer * ((config.d_conv - 1) * config.d_inner + config.d_inner * config.d_state);
    EXPECT_EQ(bytes.size(), 120 + values * sizeof(T) + tokens.size() * 4 + 8);
    const auto loaded = mamba::state_from_bytes<T>(bytes, config);
    EXPECT_EQ(loaded.state, state);
    EXPECT_EQ(loaded.tokens, tokens);
    EXPECT_EQ(mamba::state_to_bytes(config, loaded.state, loaded.tokens), bytes);
  }
}

TYPED_TEST(StateIo, FilesRoundTripAndMissingFilesAreErrors) {
  using T = TypeParam;
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto state = patterned_state<T>(config);
  const std::vector<int32_t> tokens = {1, 2, 3, 36};
  TempFile file;
  mamba::save_state(file.path, config, state, tokens);
  mamba::save_state(file.path, config, state, tokens);  // overwrites
  const auto loaded = mamba::load_state<T>(file.path, config);
  EXPECT_EQ(loaded.state, state);
  EXPECT_EQ(loaded.tokens, tokens);
  EXPECT_FALSE(std::filesystem::exists(file.path + ".tmp"));
  EXPECT_THROW(mamba::load_state<T>(file.path + ".missing", config), mamba::Error);
}

TEST(StateIo, LoadsIntoTheOtherScalarType) {
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto f = patterned_state<float>(config);
  const auto as_double = mamba::state_from_bytes<double>(mamba::state_to_bytes(config, f), config);
  for (size_t l = 0; l < f.layers.size(); ++l) {
    EXPECT_EQ(as_double.state.layers[l].conv,
              std::vector<double>(f.layers[l].conv.begin(), f.layers[l].conv.end()));
    EXPECT_EQ(as_double.state.layers[l].ssm,
              std::vector<double>(f.layers[l].ssm.begin(), f.layers[l].ssm.end()));
  }
  const auto back =
      mamba::state_from_bytes<float>(mamba::state_to_bytes(config, as_double.state), config);
  EXPECT_EQ(back.state, f);
}

TEST(StateIo, TheFormatIsAsDocumented) {
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  auto state = patterned_state<float>(config);
  state.n_tokens = 0x0102030405;
  const std::vector<int32_t> tokens = {5, 6};
  const auto b = mamba::state_to_bytes(config, state, tokens);
  EXPECT_EQ(std::memcmp(b.data(), "MAMBASTA", 8), 0);
  EXPECT_EQ(static_cast<int>(b[8]), 1);   // version, little-endian
  EXPECT_EQ(static_cast<int>(b[12]), 4);  // float32
  EXPECT_EQ(read_u64(b, 16), mamba::config_fingerprint(config));
  EXPECT_EQ(read_u64(b, 24), 16u);  // d_model
  EXPECT_EQ(read_u64(b, 32), 2u);   // n_layer
  EXPECT_EQ(read_u64(b, 104), 0x0102030405u);
  EXPECT_EQ(read_u64(b, 112), 2u);
  float first;
  std::memcpy(&first, b.data() + 120, 4);  // assumes a little-endian host, as every CI machine is
  EXPECT_EQ(first, state.layers[0].conv[0]);
  EXPECT_EQ(static_cast<int>(b[b.size() - 12]), 6);  // the last token id
  EXPECT_EQ(read_u64(b, b.size() - 8), fnv1a(b.data(), b.size() - 8));
}

TEST(StateIo, AStateFromAnotherModelIsRejected) {
  const auto tiny = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto other = mamba::ModelConfig::from_file(fixture("untied_bias") + "/config.json");
  EXPECT_NE(mamba::config_fingerprint(tiny), mamba::config_fingerprint(other));
  const auto bytes = mamba::state_to_bytes(tiny, patterned_state<float>(tiny));
  try {
    mamba::state_from_bytes<float>(bytes, other, "prompt.state");
    FAIL() << "loaded a state into the wrong model";
  } catch (const mamba::FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("prompt.state"), std::string::npos) << msg;
    EXPECT_NE(msg.find("saved for a model with d_model 16"), std::string::npos) << msg;
    EXPECT_NE(msg.find("this model has d_model 24"), std::string::npos) << msg;
  }
  // every field of the fingerprint matters, even when the shapes agree
  std::vector<void (*)(mamba::ModelConfig&)> changes = {
      [](mamba::ModelConfig& c) { c.vocab_size += 1; },
      [](mamba::ModelConfig& c) { c.dt_rank += 1; },
      [](mamba::ModelConfig& c) { c.d_model += 1; },
      [](mamba::ModelConfig& c) { c.norm_eps = 1e-6; },
      [](mamba::ModelConfig& c) { c.use_bias = !c.use_bias; },
      [](mamba::ModelConfig& c) { c.use_conv_bias = !c.use_conv_bias; },
      [](mamba::ModelConfig& c) { c.tie_embeddings = !c.tie_embeddings; },
      [](mamba::ModelConfig& c) { c.dt_b_c_rms = !c.dt_b_c_rms; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    SCOPED_TRACE(i);
    auto changed = tiny;
    changes[i](changed);
    EXPECT_NE(mamba::config_fingerprint(changed), mamba::config_fingerprint(tiny));
    EXPECT_THROW(mamba::state_from_bytes<float>(bytes, changed), mamba::FormatError);
  }
  // mixer_eps only matters to Falcon-Mamba models
  auto eps = tiny;
  eps.mixer_eps = 1e-3;
  EXPECT_NO_THROW(mamba::state_from_bytes<float>(bytes, eps));
  auto falcon = tiny;
  falcon.dt_b_c_rms = true;
  const auto falcon_bytes = mamba::state_to_bytes(falcon, patterned_state<float>(falcon));
  auto falcon_eps = falcon;
  falcon_eps.mixer_eps = 1e-3;
  EXPECT_THROW(mamba::state_from_bytes<float>(falcon_bytes, falcon_eps), mamba::FormatError);
}

TEST(StateIo, EveryTruncationIsRejected) {
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const std::vector<int32_t> tokens = {1, 2, 3};
  const auto bytes = mamba::state_to_bytes(config, patterned_state<float>(config), tokens);
  for (size_t n = 0; n < bytes.size(); ++n)
    ASSERT_THROW(mamba::state_from_bytes<float>(std::span(bytes).first(n), config),
                 mamba::FormatError)
        << "prefix of " << n << " bytes";
  auto longer = bytes;
  longer.push_back(std::byte{0});
  EXPECT_THROW(mamba::state_from_bytes<float>(longer, config), mamba::FormatError);
  // and through a file, with the file named
  TempFile file;
  {
    std::ofstream out(file.path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size() / 2);
  }
  try {
    mamba::load_state<float>(file.path, config);
    FAIL() << "loaded half a file";
  } catch (const mamba::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(file.path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(StateIo, EveryDamagedByteIsRejected) {
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const std::vector<int32_t> tokens = {1, 2, 3};
  for (int as_double = 0; as_double < 2; ++as_double) {
    const auto bytes = as_double
                           ? mamba::state_to_bytes(config, patterned_state<double>(config), tokens)
                           : mamba::state_to_bytes(config, patterned_state<float>(config), tokens);
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (uint8_t flip : {0x01, 0x80, 0xff}) {
        auto damaged = bytes;
        damaged[i] ^= std::byte{flip};
        ASSERT_THROW(mamba::state_from_bytes<double>(damaged, config), mamba::FormatError)
            << "byte " << i << " ^ " << int(flip);
      }
    }
  }
}

TEST(StateIo, WrongMagicAndVersionAreNamed) {
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto bytes = mamba::state_to_bytes(config, patterned_state<float>(config));
  auto message = [&](std::vector<std::byte> b) -> std::string {
    try {
      mamba::state_from_bytes<float>(b, config, "x.state");
    } catch (const mamba::FormatError& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto version = bytes;
  version[8] = std::byte{3};
  reseal(version);
  EXPECT_NE(message(version).find("unsupported state format version 3"), std::string::npos)
      << message(version);
  // a Mamba-1 state that says version 2 (whose header is 32 bytes longer)
  version[8] = std::byte{2};
  reseal(version);
  EXPECT_NE(message(version).find("without the Mamba-2 flag"), std::string::npos)
      << message(version);
  auto magic = bytes;
  magic[0] = std::byte{'m'};
  reseal(magic);
  EXPECT_NE(message(magic).find("wrong magic"), std::string::npos) << message(magic);
  auto damaged = bytes;
  damaged[200] ^= std::byte{4};
  EXPECT_NE(message(damaged).find("checksum mismatch"), std::string::npos) << message(damaged);
  EXPECT_EQ(message(bytes), "(no error)");
}

TEST(StateIo, HostileHeadersAllocateNothingAndFail) {
  const auto config = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto bytes = mamba::state_to_bytes(config, patterned_state<float>(config), {{1, 2}});
  auto edited = [&](size_t at, uint64_t v) {
    auto b = bytes;
    write_u64(b, at, v);
    reseal(b);
    return b;
  };
  // a token count of 2^62 (or 2^64-1) would be a huge allocation if trusted
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(112, 1ull << 62), config), mamba::FormatError);
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(112, ~0ull), config), mamba::FormatError);
  // 2^62 + 2 ids take 8 bytes modulo 2^64: exactly the two ids present
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(112, (1ull << 62) + 2), config),
               mamba::FormatError);
  // absurd dimensions: n_layer 2^40, d_inner -1
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(32, 1ull << 40), config), mamba::FormatError);
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(64, ~0ull), config), mamba::FormatError);
  // a fingerprint that does not match the header's own fields
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(16, 12345), config), mamba::FormatError);
  // negative n_tokens, a scalar size of 2
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(104, ~0ull), config), mamba::FormatError);
  auto scalar = bytes;
  scalar[12] = std::byte{2};
  reseal(scalar);
  EXPECT_THROW(mamba::state_from_bytes<float>(scalar, config), mamba::FormatError);
  // a NaN in the data, and a token id outside the vocabulary, each with a valid checksum
  auto nan = bytes;
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(nan.data() + 120, &qnan, 4);
  reseal(nan);
  EXPECT_THROW(mamba::state_from_bytes<float>(nan, config), mamba::FormatError);
  auto token = bytes;
  token[token.size() - 12] = std::byte{37};  // vocab_size is 37
  reseal(token);
  EXPECT_THROW(mamba::state_from_bytes<float>(token, config), mamba::FormatError);
}

// Mamba-2 states are version 2: 32 more header bytes (nheads, ngroups, time_step_limit), the
// conv state over conv_dim = d_inner + 2*G*N channels.
TEST(StateIo, Mamba2FormatIsAsDocumented) {
  const auto config = mamba::ModelConfig::from_file(fixture("mamba2_groups") + "/config.json");
  auto state = patterned_state<float>(config);
  const std::vector<int32_t> tokens = {5, 60};
  const auto b = mamba::state_to_bytes(config, state, tokens);
  EXPECT_EQ(static_cast<int>(b[8]), 2);  // version
  EXPECT_EQ(read_u64(b, 16), mamba::config_fingerprint(config));
  EXPECT_EQ(static_cast<int>(b[96]) & 16, 16);  // the Mamba-2 flag
  EXPECT_EQ(read_u64(b, 104), 8u);              // nheads
  EXPECT_EQ(read_u64(b, 112), 2u);              // ngroups
  double lo, hi;
  std::memcpy(&lo, b.data() + 120, 8);
  std::memcpy(&hi, b.data() + 128, 8);
  EXPECT_EQ(lo, 0.01);
  EXPECT_EQ(hi, 0.05);
  EXPECT_EQ(read_u64(b, 136), 17u);  // n_tokens
  EXPECT_EQ(read_u64(b, 144), 2u);
  const size_t conv = 2 * (48 + 2 * 2 * 10), ssm = 48 * 10;  // (d_conv-1) x conv_dim, d_inner x N
  EXPECT_EQ(b.size(), 152 + config.n_layer * (conv + ssm) * 4 + 2 * 4 + 8);
  float first;
  std::memcpy(&first, b.data() + 152, 4);
  EXPECT_EQ(first, state.layers[0].conv[0]);
  EXPECT_EQ(read_u64(b, b.size() - 8), fnv1a(b.data(), b.size() - 8));
  const auto loaded = mamba::state_from_bytes<double>(b, config);
  EXPECT_EQ(loaded.tokens, tokens);
  EXPECT_EQ(mamba::state_to_bytes(config, mamba::state_from_bytes<float>(b, config).state, tokens),
            b);
  // every damaged byte and every truncation is refused
  for (size_t i = 0; i < b.size(); ++i) {
    auto damaged = b;
    damaged[i] ^= std::byte{0x41};
    ASSERT_THROW(mamba::state_from_bytes<float>(damaged, config), mamba::FormatError) << i;
    ASSERT_THROW(mamba::state_from_bytes<float>(std::span(b).first(i), config), mamba::FormatError)
        << i;
  }
}

TEST(StateIo, Mamba2StatesBelongToTheirModel) {
  const auto m2 = mamba::ModelConfig::from_file(fixture("mamba2_groups") + "/config.json");
  const auto m1 = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto bytes = mamba::state_to_bytes(m2, patterned_state<float>(m2));
  std::vector<void (*)(mamba::ModelConfig&)> changes = {
      [](mamba::ModelConfig& c) { c.dt_max = 0.06; },
      [](mamba::ModelConfig& c) { c.dt_min = 0; },
      [](mamba::ModelConfig& c) { c.ngroups = 4; },
      [](mamba::ModelConfig& c) { c.nheads = 16, c.headdim = 3, c.dt_rank = 16; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    SCOPED_TRACE(i);
    auto changed = m2;
    changes[i](changed);
    EXPECT_NE(mamba::config_fingerprint(changed), mamba::config_fingerprint(m2));
    EXPECT_THROW(mamba::state_from_bytes<float>(bytes, changed), mamba::FormatError);
  }
  // chunk_size changes how prefill computes, not what: a state moves between them
  auto chunk = m2;
  chunk.chunk_size = 64;
  EXPECT_NO_THROW(mamba::state_from_bytes<float>(bytes, chunk));
  try {
    mamba::state_from_bytes<float>(bytes, m1, "x.state");
    ADD_FAILURE();
  } catch (const mamba::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("Mamba-2 with nheads 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Mamba-1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      mamba::state_from_bytes<float>(mamba::state_to_bytes(m1, patterned_state<float>(m1)), m2),
      mamba::FormatError);
  // absurd Mamba-2 header fields, resealed: refused before anything is allocated
  auto edited = [&](size_t at, uint64_t v) {
    auto b = bytes;
    write_u64(b, at, v);
    reseal(b);
    return b;
  };
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(104, 1ull << 40), m2), mamba::FormatError);
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(112, 0), m2), mamba::FormatError);
  EXPECT_THROW(mamba::state_from_bytes<float>(edited(128, 0x7ff8000000000000ull), m2),
               mamba::FormatError);  // NaN limit
}

TEST(StateIo, SavingAStateOfTheWrongShapeIsAnArgumentError) {
  const auto tiny = mamba::ModelConfig::from_file(fixture("tiny") + "/config.json");
  const auto other = mamba::ModelConfig::from_file(fixture("untied_bias") + "/config.json");
  EXPECT_THROW(mamba::state_to_bytes(tiny, mamba::BasicState<float>(other)), mamba::ArgumentError);
  TempFile file;
  EXPECT_THROW(mamba::save_state(file.path, tiny, mamba::BasicState<float>(other)),
               mamba::ArgumentError);
  EXPECT_FALSE(std::filesystem::exists(file.path));
  // token ids that could not be loaded back are not written
  const std::vector<int32_t> bad_tokens = {1, 37};
  EXPECT_THROW(mamba::state_to_bytes(tiny, mamba::BasicState<float>(tiny), bad_tokens),
               mamba::ArgumentError);
}

}  // namespace
