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
#include <vector>

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
// handed out in order as threads come free. The parts shrink as the work runs out, in the shape
// of OpenMP's guided schedule: each is 1/threads of what is left, and none is under
// 1/(16 threads) of the whole. The large first parts start few weight streams cold; the small
// last ones let the threads finish together. Against 4 equal parts per thread, a decoded token
// on 2 threads here took 0.4-10% less time, depending on the weight type (medians of 500-600
// tokens each, the two splits alternating token by token), batch-8 decode 3-4% and prefill 1-3%
// less. `work` estimates the cost in bytes touched or multiply-adds.
//
// Jobs below kParallelWork run on the calling thread: every parallel region ends in a barrier,
// and on a machine whose cores are busy with other work a barrier can wait a whole scheduler time
// slice for a descheduled thread (one decoded token opens ~100 regions), so only jobs long enough
// to hide that are split. A region costs about 2.4 us on 2 threads on the AVX-512 machine, 0.9-1.3
// us on the AVX2 one (empty parts, warmed: about a bare OpenMP region's 0.8-0.9 us, so 0.1 ms of
// a 5.4 ms Q4_0 token there); 128 KiB is 10 us of weight streaming, and splits the 8-bit conv and
// x_proj of a mamba-130m token (0.2 MB), which 256 KiB left to one thread.
inline constexpr int64_t kParallelWork = int64_t{1} << 17;

template <class F>
inline void parallel_for(int64_t n, int64_t grain, int64_t work, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t units = (n + grain - 1) / grain;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), units));
#if defined(_OPENMP)
  if (nt > 1 && work >= kParallelWork && !omp_in_parallel()) {
    // The parts' ends, in units: 3-4 parts per thread (6 for 2 threads), since parts of
    // 1/threads of what is left take it down to 1/16 of the whole in at most 2.8 x threads parts.
    // Kept per calling thread so that a decoded token does not allocate.
    thread_local std::vector<int64_t> part_ends;
    part_ends.clear();
    const int64_t min_part = std::max<int64_t>(1, units / (16 * nt));
    for (int64_t done = 0; done < units;) {
      done += std::min(units - done, std::max(min_part, (units - done + nt - 1) / nt));
      part_ends.push_back(done);
    }
    const int64_t* ends = part_ends.data();  // the workers see the caller's list, not their own
    const int64_t parts = static_cast<int64_t>(part_ends.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t p = 0; p < parts; ++p)
      f(p == 0 ? 0 : ends[p - 1] * grain, std::min(n, ends[p] * grain));
    return;
  }
#else
  (void)nt;
  (void)work;
#endif
  f(int64_t{0}, n);
}

}  // namespace mamba
