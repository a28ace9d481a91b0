#pragma once
// A std::vector whose data is aligned for the widest vector registers the build uses (Eigen's
// allocator: 64 bytes with AVX-512). The kernels load activations a register at a time, and a
// load that straddles two cache lines costs two (batched decode, 8 rows of x: F16 58 -> 97
// GFLOP/s from cache).
#include <Eigen/Core>
#include <vector>

namespace mamba {

template <class T>
using AlignedVector = std::vector<T, Eigen::aligned_allocator<T>>;

}  // namespace mamba
