// The Mamba-2 scan (ssm/ssd.hpp): the recurrent twin, the threaded recurrence and the chunked SSD
// form against a double-precision recurrence written here from the equations, on random inputs
// with sizes that are not multiples of any vector width, strided rows, a nonzero incoming state
// and realistic dt and A.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mamba/ops/threads.hpp>
#include <mamba/ssm/ssd.hpp>
#include <random>
#include <vector>

#include "reference_fixture.hpp"

namespace {

using mamba::SsdShape;

// The inputs of one scan, rows padded to the strides a mixer would use: x and y inside wider
// rows, B and C side by side in one (n, 2 G N + pad) array as they come out of xBC, dt strided.
struct Problem {
  SsdShape s;
  int64_t n, width, ldx, lddt, ldbc, ldy;
  std::vector<double> x, dt, A, BC, D, h0;

  Problem(SsdShape shape, int64_t tokens, uint32_t seed) : s(shape), n(tokens) {
    width = s.nheads * s.headdim;
    ldx = width + 3, lddt = s.nheads + 2, ldbc = 2 * s.ngroups * s.d_state + 5, ldy = width + 1;
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> u(-1, 1), unit(0, 1);
    auto fill = [&](std::vector<double>& v, int64_t size) {
      v.resize(size);
      for (auto& e : v) e = u(g);
    };
    fill(x, n * ldx), fill(BC, n * ldbc), fill(h0, s.nheads * s.headdim * s.d_state);
    fill(D, s.d_per_channel ? width : s.nheads);
    // dt after softplus: log-uniform in [1e-3, 0.1], one in ten in [1, 5]
    dt.resize(n * lddt);
    for (auto& v : dt)
      v = unit(g) < 0.1 ? 1 + 4 * unit(g) : std::exp(std::log(1e-3) + unit(g) * std::log(100.0));
    // A = -exp(A_log), A_log = log(1..16) as Mamba-2 initializes it
    A.resize(s.nheads);
    for (auto& v : A) v = -std::exp(unit(g) * std::log(16.0));
  }

  const double* B() const { return BC.data(); }
  const double* C() const { return BC.data() + s.ngroups * s.d_state; }
};

// Rounds every input to T and back, so that the reference sees what the kernel sees.
template <class T>
Problem rounded(Problem p) {
  for (auto* v : {&p.x, &p.dt, &p.A, &p.BC, &p.D, &p.h0})
    for (auto& e : *v) e = static_cast<double>(static_cast<T>(e));
  return p;
}

// The recurrence in double, from the equations:
//   h[hd] = exp(dt A) h[hd] + dt outer(x[hd], B[g]);  y[hd] = h[hd] C[g] + D x[hd]
// Returns y as contiguous (n, H P); h is updated.
std::vector<double> reference(const Problem& q, std::vector<double>& h) {
  const auto& s = q.s;
  const int64_t H = s.nheads, P = s.headdim, N = s.d_state, G = s.ngroups;
  std::vector<double> y(q.n * H * P);
  for (int64_t t = 0; t < q.n; ++t)
    for (int64_t hd = 0; hd < H; ++hd) {
      const int64_t g = hd * G / H;  // heads in G equal consecutive blocks
      const double d = q.dt[t * q.lddt + hd];
      for (int64_t p = 0; p < P; ++p) {
        const double xv = q.x[t * q.ldx + hd * P + p];
        double out = 0;
        for (int64_t k = 0; k < N; ++k) {
          double& hv = h[(hd * P + p) * N + k];
          hv = std::exp(d * q.A[hd]) * hv + d * xv * q.B()[t * q.ldbc + g * N + k];
          out += hv * q.C()[t * q.ldbc + g * N + k];
        }
        const double skip = s.d_per_channel ? q.D[hd * P + p] : q.D[hd];
        y[t * H * P + hd * P + p] = out + skip * xv;
      }
    }
  return y;
}

enum class Path { Recurrent, RecurrentFast, Chunked };
const char* name(Path p) {
  return p == Path::Recurrent       ? "recurrent"
         : p == Path::RecurrentFast ? "recurrent_fast"
                                    : "chunked";
}

// Runs one path in T on tokens [t0, t1) of q, carrying h; writes rows t0..t1 of y (stride ldy).
template <class T>
void run(Path path, int64_t chunk, const Problem& q, const std::vector<T>& x,
         const std::vector<T>& dt, const std::vector<T>& A, const std::vector<T>& BC, const T* D,
         std::vector<T>& h, std::vector<T>& y, int64_t t0, int64_t t1) {
  const int64_t GN = q.s.ngroups * q.s.d_state;
  const T* xs = x.data() + t0 * q.ldx;
  const T* dts = dt.data() + t0 * q.lddt;
  const T* Bs = BC.data() + t0 * q.ldbc;
  const T* Cs = Bs + GN;
  T* ys = y.data() + t0 * q.ldy;
  const int64_t n = t1 - t0;
  switch (path) {
    case Path::Recurrent:
      mamba::ssd_scan_recurrent(q.s, n, xs, q.ldx, dts, q.lddt, A.data(), Bs, Cs, q.ldbc, D,
                                h.data(), ys, q.ldy);
      break;
    case Path::RecurrentFast:
      mamba::ssd_scan_recurrent_fast(q.s, n, xs, q.ldx, dts, q.lddt, A.data(), Bs, Cs, q.ldbc, D,
                                     h.data(), ys, q.ldy);
      break;
    case Path::Chunked:
      mamba::ssd_scan_chunked(q.s, chunk, n, xs, q.ldx, dts, q.lddt, A.data(), Bs, Cs, q.ldbc, D,
                              h.data(), ys, q.ldy);
      break;
  }
}

template <class T>
std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// y rows (stride ldy) packed to (n, H P)
template <class T>
std::vector<double> packed_y(const Problem& q, const std::vector<T>& y) {
  std::vector<double> out(q.n * q.width);
  for (int64_t t = 0; t < q.n; ++t)
    for (int64_t i = 0; i < q.width; ++i) out[t * q.width + i] = y[t * q.ldy + i];
  return out;
}

// Every path in T against the double recurrence; split_at > 0 runs the sequence as two calls.
template <class T>
void check_against_reference(const Problem& raw, int64_t chunk, double tol) {
  const Problem q = rounded<T>(raw);
  std::vector<double> h_want = q.h0;
  const auto y_want = reference(q, h_want);
  const auto x = as<T>(q.x), dt = as<T>(q.dt), A = as<T>(q.A), BC = as<T>(q.BC), D = as<T>(q.D);
  for (Path path : {Path::Recurrent, Path::RecurrentFast, Path::Chunked}) {
    SCOPED_TRACE(name(path));
    std::vector<T> h = as<T>(q.h0), y(q.n * q.ldy, T(-7));
    run(path, chunk, q, x, dt, A, BC, D.data(), h, y, 0, q.n);
    EXPECT_LE(relative_error(packed_y(q, y), y_want), tol);
    EXPECT_LE(relative_error(h, h_want), tol);
    // the padding between rows of y is not written
    for (int64_t t = 0; t < q.n; ++t) EXPECT_EQ(y[t * q.ldy + q.width], T(-7));
  }
}

struct Case {
  SsdShape s;
  const char* what;
};

const Case kCases[] = {
    {{4, 6, 1, 5, false}, "P 6, N 5, one group, D per head"},
    {{6, 13, 2, 12, true}, "P 13, N 12, two groups, D per channel"},
    {{6, 13, 3, 17, false}, "P 13, N 17, three groups, D per head"},
    {{3, 16, 3, 16, true}, "P 16, N 16, a group per head, D per channel"},
    {{1, 1, 1, 1, false}, "one channel, one state"},
};

TEST(Ssd, EveryPathMatchesTheDoubleRecurrence) {
  for (const auto& c : kCases)
    for (int64_t chunk : {8, 3, 1, 64})
      for (int64_t n : {1, 5, 8, 16, 21}) {
        SCOPED_TRACE(testing::Message() << c.what << ", chunk " << chunk << ", n " << n);
        const Problem q(c.s, n, static_cast<uint32_t>(n * 131 + chunk));
        {
          SCOPED_TRACE("float");
          check_against_reference<float>(q, chunk, 1e-5);
        }
        {
          SCOPED_TRACE("double");
          check_against_reference<double>(q, chunk, 1e-12);
        }
      }
}

// A long sequence with chunk 256 (the checkpoints' chunk_size): chunk totals of Acum reach
// hundreds, where exp(Acum) underflows and only the differences of Acum may be exponentiated.
TEST(Ssd, LongSequenceWithDefaultChunk) {
  const Problem q({4, 24, 2, 40, false}, 600, 7);
  check_against_reference<float>(q, 256, 1e-5);
  check_against_reference<double>(q, 256, 1e-12);
}

// Two calls carrying h (as prefill then decode, or a prompt fed in pieces) give what one call
// gives: bit for bit for the recurrences (the same operations in the same order), to rounding
// for the chunked form (the chunk boundaries move).
template <class T>
void check_split(const Problem& q, int64_t chunk, int64_t split, double tol) {
  const auto x = as<T>(q.x), dt = as<T>(q.dt), A = as<T>(q.A), BC = as<T>(q.BC), D = as<T>(q.D);
  for (Path path : {Path::Recurrent, Path::RecurrentFast, Path::Chunked}) {
    SCOPED_TRACE(name(path));
    std::vector<T> h1 = as<T>(q.h0), y1(q.n * q.ldy), h2 = h1, y2(q.n * q.ldy);
    run(path, chunk, q, x, dt, A, BC, D.data(), h1, y1, 0, q.n);
    run(path, chunk, q, x, dt, A, BC, D.data(), h2, y2, 0, split);
    run(path, chunk, q, x, dt, A, BC, D.data(), h2, y2, split, q.n);
    if (path == Path::Chunked) {
      EXPECT_LE(relative_error(packed_y(q, y2), packed_y(q, y1)), tol);
      EXPECT_LE(relative_error(h2, h1), tol);
    } else {
      EXPECT_EQ(packed_y(q, y2), packed_y(q, y1));
      EXPECT_EQ(h2, h1);
    }
  }
}

TEST(Ssd, TwoCallsCarryingTheStateEqualOne) {
  for (const auto& c : kCases)
    for (int64_t split : {1, 5, 8, 13, 20}) {
      SCOPED_TRACE(testing::Message() << c.what << ", split at " << split << " of 21");
      const Problem q(c.s, 21, static_cast<uint32_t>(split + 1000));
      check_split<float>(q, 8, split, 1e-6);
      check_split<double>(q, 8, split, 1e-13);
    }
}

// Without D (nullptr) there is no skip term.
TEST(Ssd, NoSkipTermWithoutD) {
  Problem q({4, 6, 2, 5, false}, 11, 3);
  std::fill(q.D.begin(), q.D.end(), 0.0);
  std::vector<double> h_want = q.h0;
  const auto y_want = reference(q, h_want);
  for (Path path : {Path::Recurrent, Path::RecurrentFast, Path::Chunked}) {
    SCOPED_TRACE(name(path));
    std::vector<double> h = q.h0, y(q.n * q.ldy);
    run(path, 4, q, q.x, q.dt, q.A, q.BC, static_cast<const double*>(nullptr), h, y, 0, q.n);
    EXPECT_LE(relative_error(packed_y(q, y), y_want), 1e-12);
    EXPECT_LE(relative_error(h, h_want), 1e-12);
  }
}

// Shapes big enough that the heads are split across two threads (and the CB products of the
// chunked form across chunks and groups).
TEST(Ssd, TwoThreadsMatchTheReference) {
  const Problem q({8, 32, 2, 64, true}, 150, 11);
  mamba::set_num_threads(2);
  check_against_reference<float>(q, 64, 1e-5);
  mamba::set_num_threads(0);
}

TEST(Ssd, NoTokensLeaveTheStateAlone) {
  const Problem q({4, 6, 2, 5, true}, 1, 5);
  for (Path path : {Path::Recurrent, Path::RecurrentFast, Path::Chunked}) {
    SCOPED_TRACE(name(path));
    std::vector<double> h = q.h0, y(q.ldy, 3.0);
    run(path, 8, q, q.x, q.dt, q.A, q.BC, q.D.data(), h, y, 0, 0);
    EXPECT_EQ(h, q.h0);
    EXPECT_EQ(y, std::vector<double>(q.ldy, 3.0));
  }
}

TEST(Ssd, RejectsBadShapes) {
  std::vector<float> v(64, 0.0f);
  const SsdShape bad{6, 4, 4, 2, false};  // 4 groups do not divide 6 heads
  EXPECT_THROW(mamba::ssd_scan_recurrent(bad, 1, v.data(), 24, v.data(), 6, v.data(), v.data(),
                                         v.data(), 16, v.data(), v.data(), v.data(), 24),
               mamba::ShapeError);
  const SsdShape ok{2, 2, 1, 2, false};
  EXPECT_THROW(mamba::ssd_scan_chunked(ok, 0, 1, v.data(), 4, v.data(), 2, v.data(), v.data(),
                                       v.data(), 4, v.data(), v.data(), v.data(), 4),
               mamba::ArgumentError);
}

}  // namespace
