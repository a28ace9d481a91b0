"""Train the byte-level Mamba-1 shipped in models/tiny-shakespeare/ ("a model in the box").

The architecture is exactly ../shared/DESIGN.md section 1 as scripts/mamba_ref.py writes it
(residual stream, pre-norm RMSNorm, final norm_f, lm_head tied to the embedding), so the C++
library runs the result. Tokens are bytes: vocab 256, token id == byte value.

Speed: the selective scan is a custom torch.autograd.Function whose forward and backward are
explicit loops over time that build no graph. Tensors are time-major (T, B, ...) so that each
step of the loop is one contiguous in-place multiply-add over (B, d_inner, d_state). The backward
recomputes the states from the saved inputs instead of storing them (as the Mamba paper does).

Usage (Debian's PyTorch, from the project root):
    /usr/bin/python3 scripts/train_tiny.py --selftest
    /usr/bin/python3 scripts/train_tiny.py --minutes 2 --out /tmp/tiny-probe     # speed probe
    /usr/bin/python3 scripts/train_tiny.py --minutes 105                          # the real run
    /usr/bin/python3 scripts/train_tiny.py --minutes 0 --init OUT/checkpoint.safetensors
        (evaluate and write a model from an interrupted run's checkpoint)

The last 10% of the corpus bytes (the held-out tail) is never trained on.
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path


def _threads_from_argv(default=1):
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(default)


# OpenBLAS and OpenMP read these when torch loads; keep their pools at the training thread
# count (spinning helper threads are costly on a machine shared with other jobs).
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads_from_argv())
os.environ.setdefault("OMP_NUM_THREADS", _threads_from_argv())

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mamba_ref  # noqa: E402  (the project's float64 reference: the oracle)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = "../shared/data/corpus/tinyshakespeare.txt"  # relative to the project root
DEFAULT_OUT = "models/tiny-shakespeare"
HELDOUT_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------
# The selective scan: h_t = exp(dt_t*A) * h_{t-1} + dt_t * B_t * x_t ;  y_t = h_t . C_t
# (D*x and the gate are applied outside, by autograd.)


# Threads for the per-step loops: each step is a small op (B*E*N elements) for which an OpenMP
# team costs more than it gains, most of all on a machine shared with other jobs.
LOOP_THREADS = 1


class _loop_threads:
    def __enter__(self):
        self.saved = torch.get_num_threads()
        if LOOP_THREADS and LOOP_THREADS != self.saved:
            torch.set_num_threads(LOOP_THREADS)

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.saved:
            torch.set_num_threads(self.saved)


def _scan_states(dA, dBx):
    """In place: dBx[t] becomes h_t = dA[t] * h_{t-1} + dBx[t] (h_{-1} = 0). (T, B, E, N)."""
    with _loop_threads():
        for t in range(1, dBx.shape[0]):
            dBx[t].addcmul_(dA[t], dBx[t - 1])
    return dBx


class SelectiveScan(torch.autograd.Function):
    """x, dt: (T, B, E); A: (E, N); Bm, Cm: (T, B, N) -> y: (T, B, E). All contiguous."""

    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm):
        x, dt, Bm, Cm = x.contiguous(), dt.contiguous(), Bm.contiguous(), Cm.contiguous()
        dA = torch.exp(dt.unsqueeze(-1) * A)                       # (T, B, E, N)
        hs = _scan_states(dA, (dt * x).unsqueeze(-1) * Bm.unsqueeze(2))
        y = torch.matmul(hs, Cm.unsqueeze(-1)).squeeze(-1)        # (T, B, E)
        ctx.save_for_backward(x, dt, A, Bm, Cm)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, dt, A, Bm, Cm = ctx.saved_tensors
        gy = gy.contiguous()
        dtx = dt * x
        dA = torch.exp(dt.unsqueeze(-1) * A)                        # recomputed, not stored
        hs = _scan_states(dA, dtx.unsqueeze(-1) * Bm.unsqueeze(2))  # recomputed states
        gC = torch.matmul(gy.unsqueeze(-2), hs).squeeze(-2)         # (T, B, N)
        # dL/dh_t = gy_t C_t + dA_{t+1} dL/dh_{t+1}, accumulated backwards in place
        gH = gy.unsqueeze(-1) * Cm.unsqueeze(2)                      # (T, B, E, N)
        with _loop_threads():
            for t in range(gH.shape[0] - 2, -1, -1):
                gH[t].addcmul_(dA[t + 1], gH[t + 1])
        # through dA_t = exp(dt_t A): d(dt_t A) = gH_t * h_{t-1} * dA_t  (zero at t = 0)
        g = hs  # reuse the buffer: g[t] = gH[t] * h[t-1] * dA[t]
        g[1:] = gH[1:] * hs[:-1]
        g[0].zero_()
        g.mul_(dA)
        del dA
        gdt = (g * A).sum(-1)                                         # (T, B, E)
        gA = (g * dt.unsqueeze(-1)).sum((0, 1))                       # (E, N)
        del g
        # through dBx_t = dt_t x_t B_t
        gHB = torch.matmul(gH, Bm.unsqueeze(-1)).squeeze(-1)          # sum_n gH * B: (T, B, E)
        gB = torch.matmul(dtx.unsqueeze(-2), gH).squeeze(-2)          # sum_e dtx * gH: (T, B, N)
        gdt = gdt + gHB * x
        gx = gHB * dt
        return gx, gdt, gA, gB, gC


# ---------------------------------------------------------------------------------------------
# The same scan as a small C kernel (float32), compiled on first use with the system g++ and
# called through ctypes: one fused pass per direction instead of ~20 passes over
# (T, B, E, N) tensors. Written from the same equations as SelectiveScan above and checked
# against it by --selftest; SelectiveScan stays the fallback when no compiler is available.

SCAN_C = r"""
#include <math.h>
#include <stddef.h>
/* time-major: x, dt, y, gy, gx, gdt: (T, B, E); Bm, Cm, gB, gC: (T, B, N); A: (E, N);
   gA: (B, E, N) per-sequence partial sums; work: (B, E, N) in scan_fwd, (B, T, E, N) in
   scan_bwd (states, recomputed), work2: (B, T, E, N) (exp(dt A), then dA dL/dh) */
void scan_fwd(int T, int B, int E, int N, const float *x, const float *dt, const float *A,
              const float *Bm, const float *Cm, float *y, float *work, int nthreads) {
  #pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int b = 0; b < B; ++b) {
    float *h = work + (size_t)b * E * N;  /* the state of sequence b */
    for (int i = 0; i < E * N; ++i) h[i] = 0.f;
    for (int t = 0; t < T; ++t) {
      size_t r = ((size_t)t * B + b);
      const float *bt = Bm + r * N, *ct = Cm + r * N;
      for (int e = 0; e < E; ++e) {
        float d = dt[r * E + e], dx = d * x[r * E + e], acc = 0.f;
        float *he = h + (size_t)e * N;
        const float *Ae = A + (size_t)e * N;
        for (int n = 0; n < N; ++n) {
          he[n] = expf(d * Ae[n]) * he[n] + dx * bt[n];
          acc += he[n] * ct[n];
        }
        y[r * E + e] = acc;
      }
    }
  }
}

void scan_bwd(int T, int B, int E, int N, const float *x, const float *dt, const float *A,
              const float *Bm, const float *Cm, const float *gy, float *gx, float *gdt,
              float *gA, float *gB, float *gC, float *work, float *work2, int nthreads) {
  #pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int b = 0; b < B; ++b) {
    float *hs = work + (size_t)b * T * E * N;    /* h_t for every t */
    float *das = work2 + (size_t)b * T * E * N;  /* exp(dt_t A) for every t */
    float *gAb = gA + (size_t)b * E * N;
    for (int t = 0; t < T; ++t) {
      size_t r = ((size_t)t * B + b);
      const float *bt = Bm + r * N;
      float *ht = hs + (size_t)t * E * N, *dat = das + (size_t)t * E * N;
      const float *hp = t ? hs + (size_t)(t - 1) * E * N : 0;
      for (int e = 0; e < E; ++e) {
        float d = dt[r * E + e], dx = d * x[r * E + e];
        const float *Ae = A + (size_t)e * N;
        for (int n = 0; n < N; ++n) {
          float a = expf(d * Ae[n]);
          dat[e * N + n] = a;
          ht[e * N + n] = a * (hp ? hp[e * N + n] : 0.f) + dx * bt[n];
        }
      }
    }
    for (int i = 0; i < E * N; ++i) gAb[i] = 0.f;
    /* backwards in time; slot t of work2 becomes dA_t dL/dh_t once dA_t has been read */
    for (int t = T - 1; t >= 0; --t) {
      size_t r = ((size_t)t * B + b);
      const float *bt = Bm + r * N, *ct = Cm + r * N;
      const float *ht = hs + (size_t)t * E * N, *dat = das + (size_t)t * E * N;
      const float *hp = t ? hs + (size_t)(t - 1) * E * N : 0;
      float *g = das + (size_t)t * E * N; /* overwritten in place: dA_t is read first */
      const float *gnext = t + 1 < T ? das + (size_t)(t + 1) * E * N : 0;
      float gBt[64], gCt[64];
      for (int n = 0; n < N; ++n) { gBt[n] = 0.f; gCt[n] = 0.f; }
      for (int e = 0; e < E; ++e) {
        float d = dt[r * E + e], xv = x[r * E + e], dx = d * xv, gyv = gy[r * E + e];
        const float *Ae = A + (size_t)e * N;
        float gd = 0.f, gxb = 0.f;
        for (int n = 0; n < N; ++n) {
          size_t i = (size_t)e * N + n;
          /* dL/dh_t = gy_t C_t + dA_{t+1} dL/dh_{t+1}; gnext already holds the product */
          float ghn = gyv * ct[n] + (gnext ? gnext[i] : 0.f);
          float a = dat[i];
          gCt[n] += gyv * ht[i];
          float hpv = hp ? hp[i] : 0.f;
          float gz = ghn * hpv * a;       /* d/d(dt*A) */
          gd += gz * Ae[n] + ghn * xv * bt[n];
          gAb[i] += gz * d;
          gxb += ghn * bt[n];
          gBt[n] += ghn * dx;
          g[i] = ghn * a;                 /* dA_t dL/dh_t, for step t-1 */
        }
        gdt[r * E + e] = gd;
        gx[r * E + e] = gxb * d;
      }
      for (int n = 0; n < N; ++n) { gB[r * N + n] = gBt[n]; gC[r * N + n] = gCt[n]; }
    }
  }
}
"""

_SCAN_LIB = None
SCAN_IMPL = "auto"  # "c", "torch" or "auto" (c when it compiles)


def scan_lib():
    """The compiled C kernel (ctypes), or None when it cannot be built."""
    global _SCAN_LIB
    if _SCAN_LIB is not None or SCAN_IMPL == "torch":
        return _SCAN_LIB or None
    import ctypes
    import hashlib
    import subprocess
    import tempfile
    tag = hashlib.sha1(SCAN_C.encode()).hexdigest()[:12]
    d = Path(tempfile.gettempdir()) / f"train_tiny_scan_{os.getuid()}"
    d.mkdir(exist_ok=True)
    so = d / f"scan_{tag}.so"
    if not so.exists():
        src = d / f"scan_{tag}.c"
        src.write_text(SCAN_C)
        tmp = d / f"scan_{tag}.{os.getpid()}.so"
        cmd = ["gcc", "-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC",
               str(src), "-o", str(tmp), "-lm"]
        try:
            subprocess.run(cmd, check=True, capture_output=True)
            os.replace(tmp, so)
        except (OSError, subprocess.CalledProcessError) as e:
            if SCAN_IMPL == "c":
                raise
            print(f"C scan kernel not built ({e}); using the PyTorch scan", flush=True)
            _SCAN_LIB = False
            return None
    lib = ctypes.CDLL(str(so))
    lib.scan_fwd.restype = None
    lib.scan_bwd.restype = None
    _SCAN_LIB = lib
    return lib


def _ptr(t):
    import ctypes
    return ctypes.c_void_p(t.data_ptr())


class SelectiveScanC(torch.autograd.Function):
    """SelectiveScan through the C kernel (float32, contiguous, time-major)."""

    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm):
        lib = scan_lib()
        x, dt, A, Bm, Cm = (v.contiguous() for v in (x, dt, A, Bm, Cm))
        T, B, E = x.shape
        N = A.shape[1]
        assert N <= 64 and all(v.dtype == torch.float32 for v in (x, dt, A, Bm, Cm))
        y = torch.empty_like(x)
        work = torch.empty(B, E * N)
        lib.scan_fwd(T, B, E, N, _ptr(x), _ptr(dt), _ptr(A), _ptr(Bm), _ptr(Cm), _ptr(y),
                     _ptr(work), torch.get_num_threads())
        ctx.save_for_backward(x, dt, A, Bm, Cm)
        return y

    @staticmethod
    def backward(ctx, gy):
        lib = scan_lib()
        x, dt, A, Bm, Cm = ctx.saved_tensors
        gy = gy.contiguous()
        T, B, E = x.shape
        N = A.shape[1]
        gx, gdt = torch.empty_like(x), torch.empty_like(x)
        gB, gC = torch.empty_like(Bm), torch.empty_like(Cm)
        gA = torch.empty(B, E, N)
        work = torch.empty(B, T, E, N)
        work2 = torch.empty(B, T, E, N)
        lib.scan_bwd(T, B, E, N, _ptr(x), _ptr(dt), _ptr(A), _ptr(Bm), _ptr(Cm), _ptr(gy),
                     _ptr(gx), _ptr(gdt), _ptr(gA), _ptr(gB), _ptr(gC), _ptr(work),
                     _ptr(work2), torch.get_num_threads())
        return gx, gdt, gA.sum(0), gB, gC


def selective_scan(x, dt, A, Bm, Cm):
    if x.dtype == torch.float32 and scan_lib():
        return SelectiveScanC.apply(x, dt, A, Bm, Cm)
    return SelectiveScan.apply(x, dt, A, Bm, Cm)


def scan_naive(x, dt, A, Bm, Cm):
    """The same scan written plainly (autograd through a loop): only for the self-test."""
    h = torch.zeros(x.shape[1], x.shape[2], A.shape[1], dtype=x.dtype)
    ys = []
    for t in range(x.shape[0]):
        h = torch.exp(dt[t].unsqueeze(-1) * A) * h \
            + (dt[t] * x[t]).unsqueeze(-1) * Bm[t].unsqueeze(1)
        ys.append((h * Cm[t].unsqueeze(1)).sum(-1))
    return torch.stack(ys)


# ---------------------------------------------------------------------------------------------
# The model (training form: time-major batches, parameters under their HF names)


def _key(name):
    return name.replace(".", "__")


class TinyMamba(torch.nn.Module):
    def __init__(self, cfg, params):
        """params: HF name -> tensor (for instance mamba_ref.random_params)."""
        super().__init__()
        self.cfg = cfg
        self.names = list(params)
        self.override = {}  # name -> tensor used instead of the parameter (self-test only)
        for k, v in params.items():
            self.register_parameter(_key(k), torch.nn.Parameter(v.clone()))

    def p(self, name):
        if name in self.override:
            return self.override[name]
        return getattr(self, _key(name))

    def hf_state(self):
        """HF name -> float32 tensor, in the reference's order."""
        return {k: self.p(k).detach().float().clone() for k in self.names}

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["eps"]) * w

    def mixer(self, m, u):
        cfg = self.cfg
        E, N, K, R = cfg["d_inner"], cfg["d_state"], cfg["d_conv"], cfg["dt_rank"]
        T = u.shape[0]
        xz = u @ self.p(m + "in_proj.weight").t()
        x, z = xz[..., :E], xz[..., E:]
        xp = F.pad(x, (0, 0, 0, 0, K - 1, 0))                      # causal: K-1 zeros in front
        w = self.p(m + "conv1d.weight").reshape(E, K)
        conv = self.p(m + "conv1d.bias") + xp[0:T] * w[:, 0]
        for k in range(1, K):
            conv = conv + xp[k:k + T] * w[:, k]
        x = F.silu(conv)
        dbc = x @ self.p(m + "x_proj.weight").t()
        dtr, Bm, Cm = dbc[..., :R], dbc[..., R:R + N], dbc[..., R + N:]
        dt = F.softplus(dtr @ self.p(m + "dt_proj.weight").t() + self.p(m + "dt_proj.bias"))
        A = -torch.exp(self.p(m + "A_log"))
        y = selective_scan(x, dt, A, Bm, Cm)
        y = (y + x * self.p(m + "D")) * F.silu(z)
        return y @ self.p(m + "out_proj.weight").t()

    def forward(self, tokens):
        """tokens: (T, B) long -> logits (T, B, vocab)."""
        emb = self.p("backbone.embeddings.weight")
        hidden = emb[tokens]
        residual = torch.zeros_like(hidden)
        for i in range(self.cfg["n_layer"]):
            residual = residual + hidden
            u = self.rmsnorm(residual, self.p(f"backbone.layers.{i}.norm.weight"))
            hidden = self.mixer(f"backbone.layers.{i}.mixer.", u)
        residual = residual + hidden
        h = self.rmsnorm(residual, self.p("backbone.norm_f.weight"))
        return h @ emb.t()


def init_params(cfg, seed):
    """mamba_ref's random checkpoint (Mamba's dt/A/D initialisation), made trainable-sized:
    small embedding (it is also the tied lm_head), unit norm weights. float32."""
    p = mamba_ref.random_params(cfg, seed)
    g = torch.Generator().manual_seed(seed + 1)
    p["backbone.embeddings.weight"] = torch.randn(cfg["vocab_size"], cfg["d_model"],
                                                  generator=g, dtype=torch.float64) * 0.02
    for k in p:
        if k.endswith("norm.weight") or k == "backbone.norm_f.weight":
            p[k] = torch.ones_like(p[k])
    return {k: v.float() for k, v in p.items()}


# ---------------------------------------------------------------------------------------------
# Tokenizer (bytes, GPT-2 byte-to-unicode table)


def bytes_to_unicode():
    """byte -> the character GPT-2's byte-level BPE uses for it."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    table, k = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + k)
            k += 1
    return table


def tokenizer_json():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}
    vocab = {ch: b for b, ch in bytes_to_unicode().items()}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": None, "pre_tokenizer": dict(byte_level), "post_processor": None,
            "decoder": dict(byte_level),
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": []}}


# ---------------------------------------------------------------------------------------------
# Self-test


def selftest():
    torch.manual_seed(0)
    ok = True
    # 1. the custom scan's gradient: gradcheck (finite differences) and naive autograd
    T, B, E, N = 6, 2, 3, 4
    dd = torch.float64
    x = torch.randn(T, B, E, dtype=dd, requires_grad=True)
    dt = (torch.rand(T, B, E, dtype=dd) * 0.5 + 0.05).requires_grad_()
    A = (-torch.rand(E, N, dtype=dd) * 2 - 0.1).requires_grad_()
    Bm = torch.randn(T, B, N, dtype=dd, requires_grad=True)
    Cm = torch.randn(T, B, N, dtype=dd, requires_grad=True)
    inputs = (x, dt, A, Bm, Cm)
    gc = torch.autograd.gradcheck(SelectiveScan.apply, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)
    print(f"gradcheck(SelectiveScan, float64, T={T} B={B} E={E} N={N}): {gc}")
    ok &= gc
    y1 = SelectiveScan.apply(*inputs)
    y2 = scan_naive(*inputs)
    gy = torch.randn_like(y1)
    g1 = torch.autograd.grad(y1, inputs, gy)
    g2 = torch.autograd.grad(y2, inputs, gy)
    err = max([(y1 - y2).abs().max().item()] + [(a - b).abs().max().item()
                                                 for a, b in zip(g1, g2)])
    print(f"custom scan vs autograd of naive scan: max |diff| (output and 5 grads) = {err:.2e}")
    ok &= err < 1e-10
    # the C kernel (float32) against the PyTorch scan (float64) on a mid-sized problem
    if scan_lib():
        T, B, E, N = 37, 3, 20, 8
        ins = (torch.randn(T, B, E), torch.rand(T, B, E) * 0.5 + 0.01,
               -torch.exp(torch.randn(E, N) * 0.5), torch.randn(T, B, N), torch.randn(T, B, N))
        gy = torch.randn(T, B, E)
        i32 = [v.clone().requires_grad_() for v in ins]
        i64 = [v.double().requires_grad_() for v in ins]
        y32 = SelectiveScanC.apply(*i32)
        y64 = SelectiveScan.apply(*i64)
        g32 = torch.autograd.grad(y32, i32, gy)
        g64 = torch.autograd.grad(y64, i64, gy.double())
        rel = [((a.double() - b).abs().max() / b.abs().max()).item()
               for a, b in zip((y32,) + g32, (y64,) + g64)]
        print("C kernel (float32) vs PyTorch scan (float64): max rel diff y, gx, gdt, gA, gB, gC"
              " = " + ", ".join(f"{r:.1e}" for r in rel))
        ok &= max(rel) < 1e-4
    else:
        print("C kernel not available: the PyTorch scan is used")
    # 2. the training model against the float64 reference forward (architecture identity)
    cfg = mamba_ref.make_config(32, 2, 256, d_state=4)
    p = mamba_ref.random_params(cfg, seed=3)
    model = TinyMamba(cfg, p).double()
    tokens = list(b"ROMEO:\nWhat light through yonder window breaks?")
    with torch.no_grad():
        ours = model(torch.tensor(tokens).unsqueeze(1))[:, 0]
    ref, _ = mamba_ref.forward(p, cfg, tokens)
    err = (ours - ref).abs().max().item() / ref.abs().max().item()
    print(f"TinyMamba vs mamba_ref.forward (float64, T={len(tokens)}): max rel diff = {err:.2e}")
    ok &= err < 1e-10
    # batched (B > 1) equals per-sequence
    seqs = torch.tensor([tokens[:20], tokens[5:25], tokens[10:30]]).t()
    with torch.no_grad():
        lb = model(seqs)
        err = max((lb[:, j] - model(seqs[:, j:j + 1])[:, 0]).abs().max().item()
                  for j in range(3))
    print(f"batched vs one sequence at a time: max |diff| = {err:.2e}")
    ok &= err < 1e-10
    # full-model gradient check on a tiny float64 model (custom scan inside)
    cfg2 = mamba_ref.make_config(8, 1, 256, d_state=2)
    m2 = TinyMamba(cfg2, mamba_ref.random_params(cfg2, seed=5)).double()
    toks = torch.tensor([[1, 7], [2, 9], [3, 200], [4, 4]])
    name = "backbone.layers.0.mixer.x_proj.weight"
    gc2 = torch.autograd.gradcheck(lambda W: _loss_with(m2, name, W, toks),
                                   (m2.p(name).detach().clone().requires_grad_(),),
                                   eps=1e-6, atol=1e-7, rtol=1e-5)
    print(f"gradcheck(model loss wrt x_proj.weight, float64): {gc2}")
    ok &= gc2
    # 3. tokenizer table
    t = bytes_to_unicode()
    good = len(set(t.values())) == 256 and t[ord("A")] == "A" and t[32] == "\u0120" \
        and t[10] == "\u010a" and t[0] == "\u0100"
    print(f"bytes_to_unicode: 256 distinct, ' '->U+0120, '\\n'->U+010A: {good}")
    ok &= good
    print("SELFTEST", "PASSED" if ok else "FAILED")
    return ok


def _loss_with(model, name, W, toks):
    """Cross-entropy of the model with parameter `name` replaced by W (for gradcheck)."""
    model.override = {name: W}
    try:
        logits = model(toks[:-1])
    finally:
        model.override = {}
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[1:].reshape(-1))


# ---------------------------------------------------------------------------------------------
# Evaluation, sampling, writing


@torch.no_grad()
def heldout_loss(model, data, start, ctx, chunk, batch):
    """Mean cross-entropy (nats/byte) over every byte of data[start:], each predicted from the
    bytes before it: windows of ctx+chunk bytes; the first ctx predictions of a window are
    context only (they may reach back into the training bytes, only as conditioning)."""
    model.eval()
    total, count = 0.0, 0
    starts = list(range(start, len(data), chunk))
    for i in range(0, len(starts), batch):
        group = starts[i:i + batch]
        L = ctx + chunk
        win = torch.zeros(L + 1, len(group), dtype=torch.long)
        mask = torch.zeros(L, len(group), dtype=torch.bool)
        for j, s in enumerate(group):
            a = s - ctx            # window starts ctx bytes before s
            e = min(s + chunk, len(data))
            seg = data[a - 1:e]    # byte a-1 is the first input; targets are a .. e-1
            win[:len(seg), j] = seg
            mask[s - a:e - a, j] = True
        logits = model(win[:-1])
        ce = F.cross_entropy(logits.reshape(-1, 256), win[1:].reshape(-1), reduction="none")
        ce = ce.reshape(L, len(group))
        total += ce[mask].double().sum().item()
        count += int(mask.sum())
    assert count == len(data) - start, (count, len(data) - start)
    return total / count


@torch.no_grad()
def generate(model, prompt, n, temperature, seed):
    """Bytes after prompt; reruns the whole prefix each step (exact, and fast enough)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    toks = list(prompt)
    for _ in range(n):
        logits = model(torch.tensor(toks).unsqueeze(1))[-1, 0].double()
        if temperature <= 0:
            nxt = int(torch.argmax(logits))
        else:
            probs = torch.softmax(logits / temperature, -1)
            nxt = int(torch.multinomial(probs, 1, generator=g))
        toks.append(nxt)
    return bytes(toks)


def ref_slice_loss(state, cfg, data, offset, length):
    """mamba_ref.forward (float64) on the float32 weights, empty state at `offset`: mean CE of
    predicting bytes offset+1 .. offset+length-1 from their prefixes."""
    p = {k: v.float().double() for k, v in state.items()}
    tokens = data[offset:offset + length].tolist()
    logits, _ = mamba_ref.forward(p, cfg, tokens)
    ce = F.cross_entropy(logits[:-1], torch.tensor(tokens[1:]), reduction="mean")
    return ce.item()


def save_checkpoint(out, model, info):
    mamba_ref.write_safetensors(out / "checkpoint.safetensors", model.hf_state())
    (out / "checkpoint.json").write_text(json.dumps(info, indent=1) + "\n")


def load_weights(path):
    return {k: v.float() for k, v in mamba_ref.read_safetensors(path).items()}


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--selftest", action="store_true", help="check the scan and model, exit")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS,
                    help="text file (relative paths: from the project root)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output dir (relative: project root)")
    ap.add_argument("--minutes", type=float, default=105.0, help="wall-clock training budget")
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--d-state", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256, help="training sequence length (bytes)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup-frac", type=float, default=0.02)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 measured fastest on a 2-core machine shared with "
                         "compile jobs: 2 threads spin against the other jobs)")
    ap.add_argument("--checkpoint-minutes", type=float, default=10.0)
    ap.add_argument("--init", default=None, help="start from these weights (safetensors)")
    ap.add_argument("--sample-bytes", type=int, default=400)
    ap.add_argument("--eval-bytes", type=int, default=0,
                    help="evaluate only this many held-out bytes (0: all; for quick probes)")
    ap.add_argument("--scan", choices=("auto", "c", "torch"), default="auto",
                    help="selective scan: C kernel (built with gcc on first use) or PyTorch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global SCAN_IMPL
    SCAN_IMPL = args.scan
    if args.selftest:
        sys.exit(0 if selftest() else 1)

    t_start = time.time()
    corpus = Path(args.corpus)
    corpus = corpus if corpus.is_absolute() else ROOT / corpus
    out = Path(args.out)
    out = out if out.is_absolute() else ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    raw = corpus.read_bytes()
    data = torch.tensor(list(raw), dtype=torch.long)
    n_total = len(data)
    split = n_total - int(n_total * HELDOUT_FRACTION)  # [split, n_total) is never trained on
    train = data[:split]
    print(f"corpus {corpus.name}: {n_total} bytes, train [0, {split}), "
          f"held-out [{split}, {n_total}) = {n_total - split} bytes", flush=True)

    cfg = mamba_ref.make_config(args.d_model, args.n_layer, 256, d_state=args.d_state,
                                d_conv=4, expand=2, eps=1e-5)
    torch.manual_seed(args.seed)
    params = load_weights(args.init) if args.init else init_params(cfg, args.seed)
    model = TinyMamba(cfg, params)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {json.dumps(cfg)}\nparameters: {n_params}", flush=True)

    decayed = ("in_proj.weight", "x_proj.weight", "dt_proj.weight", "out_proj.weight")
    decay = [model.p(k) for k in model.names if k.endswith(decayed)]
    no_decay = [model.p(k) for k in model.names if not k.endswith(decayed)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    budget = args.minutes * 60.0
    T, Bsz = args.seq, args.batch
    gen = torch.Generator().manual_seed(args.seed)
    step, tokens_seen, ema = 0, 0, None
    t0 = time.time()
    last_ckpt, last_log = t0, t0
    train_time = 0.0
    model.train()
    while budget > 0:
        elapsed = time.time() - t0
        frac = elapsed / budget
        if frac >= 1.0:
            break
        if frac < args.warmup_frac:
            lr = args.lr * max(frac / args.warmup_frac, 0.01)
        else:
            q = (frac - args.warmup_frac) / (1 - args.warmup_frac)
            lr = args.lr * (args.min_lr_frac
                            + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * q)))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, split - T - 1, (Bsz,), generator=gen)
        idx = starts.unsqueeze(0) + torch.arange(T + 1).unsqueeze(1)   # (T+1, B) time-major
        batch = train[idx]
        logits = model(batch[:-1])
        loss = F.cross_entropy(logits.reshape(-1, 256), batch[1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        tokens_seen += T * Bsz
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        now = time.time()
        if now - last_log >= 30 or step <= 3:
            print(f"step {step} t={now - t0:.0f}s lr={lr:.2e} loss={loss.item():.4f} "
                  f"ema={ema:.4f} gnorm={float(gnorm):.2f} tokens={tokens_seen} "
                  f"tok/s={tokens_seen / (now - t0):.0f}", flush=True)
            last_log = now
        if now - last_ckpt >= args.checkpoint_minutes * 60:
            save_checkpoint(out, model, {"step": step, "tokens_seen": tokens_seen,
                                         "train_loss_ema": ema, "config": cfg})
            print(f"checkpoint at step {step}", flush=True)
            last_ckpt = now
    train_time = time.time() - t0
    tok_per_s = tokens_seen / train_time if train_time > 0 else 0.0
    print(f"training done: {step} steps, {tokens_seen} tokens in {train_time:.0f}s "
          f"({tok_per_s:.0f} tokens/s), train loss (EMA) {ema}", flush=True)

    # ---- evaluation (float32, eval mode, batched)
    model.eval()
    te = time.time()
    ev = data if args.eval_bytes <= 0 else data[:split + args.eval_bytes]
    ho = heldout_loss(model, ev, split, ctx=256, chunk=512, batch=32)
    print(f"held-out loss: {ho:.4f} nats/byte over {len(ev) - split} bytes "
          f"({time.time() - te:.0f}s)", flush=True)
    train_eval = heldout_loss(model, data[:split], split - (len(ev) - split), ctx=256,
                              chunk=512, batch=32)
    print(f"train-tail loss (same procedure on the last {len(ev) - split} training bytes): "
          f"{train_eval:.4f}", flush=True)

    state = model.hf_state()
    # fixture for the C++ held-out test: float64 reference on the saved float32 weights
    offset, length = split + 10000, 512
    while raw[offset - 1] != ord("\n"):  # start at a line start, for a readable slice
        offset += 1
    slice_loss = ref_slice_loss(state, cfg, data, offset, length)
    with torch.no_grad():
        lg = model(data[offset:offset + length].unsqueeze(1))[:, 0]
        fast_slice = F.cross_entropy(lg[:-1], data[offset + 1:offset + length]).item()
    print(f"heldout slice [{offset}, {offset + length}): reference float64 {slice_loss:.6f}, "
          f"training model float32 {fast_slice:.6f}", flush=True)

    greedy = generate(model, b"ROMEO:", args.sample_bytes, 0.0, seed=0)
    sampled = generate(model, b"ROMEO:", args.sample_bytes, 0.8, seed=args.seed)
    greedy_s = greedy.decode("utf-8", errors="replace")
    sampled_s = sampled.decode("utf-8", errors="replace")
    print("greedy:\n" + greedy_s + "\n\ntemperature 0.8:\n" + sampled_s, flush=True)

    # ---- write the model
    mamba_ref.write_safetensors(out / "model.safetensors", state)
    (out / "config.json").write_text(json.dumps(mamba_ref.hf_config_json(cfg), indent=2) + "\n")
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(), ensure_ascii=False,
                                                   indent=1) + "\n", encoding="utf-8")
    fixture = {
        "corpus": corpus.name, "offset": offset, "length": length,
        "loss_nats_per_byte": slice_loss,
        "positions": (f"Run the model from an empty state over the {length} corpus bytes "
                      f"[offset, offset+{length}). The logits at slice position i "
                      f"(i = 0..{length - 2}) predict byte offset+i+1; the value is the mean "
                      f"natural-log cross-entropy over these {length - 1} predictions "
                      f"(targets offset+1 .. offset+{length - 1}). Computed with "
                      f"scripts/mamba_ref.py forward in float64 on the float32 weights of "
                      f"model.safetensors."),
        "heldout_start": split,
    }
    (out / "heldout_slice.json").write_text(json.dumps(fixture, indent=1) + "\n")
    command = "/usr/bin/python3 scripts/train_tiny.py " + " ".join(sys.argv[1:])
    size = (out / "model.safetensors").stat().st_size
    readme = f"""# tiny-shakespeare: a byte-level Mamba-1 in the box

A small Mamba-1 language model over bytes (vocab 256, token id == byte value), trained by
`scripts/train_tiny.py` on tinyshakespeare.txt so that mamba.hpp has a real model to run and test
against without downloading anything. The architecture is exactly the one in DESIGN.md section 1
and `scripts/mamba_ref.py` (pre-norm residual stream, final `norm_f`, lm_head tied to the
embedding).

| | |
|---|---|
| d_model / layers | {cfg['d_model']} / {cfg['n_layer']} |
| d_inner / d_state / d_conv / dt_rank | {cfg['d_inner']} / {cfg['d_state']} / {cfg['d_conv']} / {cfg['dt_rank']} |
| parameters | {n_params:,} (float32, {size:,} bytes in model.safetensors) |
| vocab | 256 bytes, tied embeddings, RMSNorm eps 1e-5, no projection biases, conv bias |
| training data | the first {split:,} bytes of tinyshakespeare.txt ({n_total:,} bytes); the last 10% ({n_total - split:,} bytes, from offset {split}) is held out and never trained on |
| training | {step:,} steps of {Bsz} random windows x {T} bytes, AdamW (betas 0.9/0.95, weight decay {args.weight_decay} on the projection matrices), peak lr {args.lr}, linear warmup over the first {args.warmup_frac:.0%} of the time budget then cosine decay to {args.min_lr_frac} x peak keyed to the fraction of the {args.minutes:g}-minute budget elapsed, gradient clipping {args.clip}, float32, {args.threads} CPU threads |
| training tokens seen | {tokens_seen:,} |
| training speed | {tok_per_s:,.0f} tokens/s (wall clock, including the optimizer) |
| final train loss | {ema:.4f} nats/byte (exponential moving average of the batch loss, factor 0.98) |
| loss on the last {n_total - split:,} training bytes | {train_eval:.4f} nats/byte (same procedure as the held-out figure) |
| **held-out loss** | **{ho:.4f} nats/byte** ({ho / math.log(2):.3f} bits/byte) over all {n_total - split:,} held-out bytes |

The held-out figure is computed in float32 by the training script's model in eval mode: the tail
is cut into chunks of 512 bytes, each run from an empty state with the 256 bytes before it as
context (for the first chunk those are training bytes, used only as conditioning), and every
held-out byte is predicted exactly once from the bytes before it.

Command (from the project root, Debian's PyTorch {torch.__version__}, CPU):

    {command}

`heldout_slice.json` is the fixture for the C++ held-out-loss test: {length} bytes from offset
{offset} (inside the held-out tail), loss {slice_loss:.6f} nats/byte computed with
`mamba_ref.forward` in float64 on the stored float32 weights (the training model in float32 gives
{fast_slice:.6f}); its `positions` key says which predictions are averaged.

`tokenizer.json` is a byte-level BPE with no merges: the GPT-2 byte-to-unicode character of each
byte b has id b. bos/eos/pad ids in config.json are 0 (the NUL byte, absent from the text).

## Samples (PyTorch model, prompt "ROMEO:", {args.sample_bytes} bytes)

Greedy:

```
{greedy_s}
```

Temperature 0.8 (torch.multinomial, seed {args.seed}):

```
{sampled_s}
```
"""
    (out / "README.md").write_text(readme, encoding="utf-8")
    for f in ("checkpoint.safetensors", "checkpoint.json"):
        if (out / f).exists():
            (out / f).unlink()
    print(f"wrote {out} (total {time.time() - t_start:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
