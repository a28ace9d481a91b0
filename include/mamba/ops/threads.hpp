#pragma once
// The thread count, and the one way work is split across threads: contiguous ranges of rows or
// channels, on OpenMP's persistent pool (compiled in when the consumer builds
// with OpenMP, as the CMake target does; serial otherwise). Eigen's own GEMM threads follow the
// same setting.
//
//   mamba::set_num_threads(2);   // every model and kernel from now on; 0 = the default
//                                // (OMP_NUM_THREADS, else one per core)
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace mamba {

namespace threads_detail {
inline std::atomic<int>& setting() {
  static std::atomic<int> n{0};
  return n;
}
}  // namespace threads_detail

// Threads used by the kernels (at least 1).
inline int num_threads() {
  const int n = threads_detail::setting().load(std::memory_order_relaxed);
  if (n > 0) return n;
#if defined(_OPENMP)
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

inline void set_num_threads(int n) {
  threads_detail::setting().store(std::max(0, n), std::memory_order_relaxed);
  Eigen::setNbThreads(num_threads());
}

// Calls f(begin, end) on contiguous parts of [0, n) whose boundaries are multiples of `grain`,
// spread over the threads: a few parts per thread, handed out as threads come free (OpenMP's
// dynamic schedule), so that a thread the OS has paused does not hold the others up. `work`
// estimates the cost in bytes touched or multiply-adds. Jobs below kParallelWork run on the
// calling thread: every parallel region ends in a barrier, and on a machine whose cores are busy
// with other work a barrier can wait a whole scheduler time slice for a descheduled thread (one
// decoded token opens ~100 regions), so only jobs long enough to hide that are split. A region
// costs about 2.4 us on 2 threads here; 128 KiB is 10 us of weight streaming, and splits the
// 8-bit conv and x_proj of a mamba-130m token (0.2 MB), which 256 KiB left to one thread.
inline constexpr int64_t kParallelWork = int64_t{1} << 17;

template <class F>
inline void parallel_for(int64_t n, int64_t grain, int64_t work, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t units = (n + grain - 1) / grain;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), units));
#if defined(_OPENMP)
  if (nt > 1 && work >= kParallelWork && !omp_in_parallel()) {
    const int64_t parts = std::min<int64_t>(units, 4 * nt);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t p = 0; p < parts; ++p) {
      const int64_t begin = std::min(n, units * p / parts * grain);
      const int64_t end = std::min(n, units * (p + 1) / parts * grain);
      if (begin < end) f(begin, end);
    }
    return;
  }
#else
  (void)nt;
  (void)work;
#endif
  f(int64_t{0}, n);
}

}  // namespace mamba
