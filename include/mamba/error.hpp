#pragma once
// One exception hierarchy: every failure the library reports is a mamba::Error, and its message
// names the file, the tensor or key, what was expected and what was found.
#include <stdexcept>
#include <string>

namespace mamba {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The file is unreadable, truncated, or not what its format says.
struct FormatError : Error {
  using Error::Error;
};

// A tensor or dimension has the wrong shape or value.
struct ShapeError : Error {
  using Error::Error;
};

// The caller passed something invalid (a token id past the vocab, a mismatched state).
struct ArgumentError : Error {
  using Error::Error;
};

}  // namespace mamba
