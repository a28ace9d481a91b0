"""Writes the fixtures of tests/test_quant.cpp and tests/test_gguf.cpp with scripts/gguf_writer.py
(independent of the C++). Deterministic: re-running it reproduces the committed files.

    /usr/bin/python3 scripts/make_gguf_fixtures.py [tests/fixtures]

quant/<type>.input.f32     float32 values quantized by the Python encoder
quant/<type>.blocks        those blocks, then blocks of random bits (every bit pattern decodes)
quant/<type>.expected.f32  the Python decoding of every block in .blocks
quant/summary.json         counts and the Python encoder's relative RMS error per type
gguf/all_types.gguf        v3, every key type and array type, a tensor of every storage type
                           ("<type>.w") with its decoding as F32 ("<type>.expected")
gguf/v2_align64.gguf       version 2 with general.alignment = 64
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"]


def test_values(rng, n):
    """Gaussian values with the awkward cases in the first 256: zeros, all positive, an outlier."""
    x = rng.standard_normal(n).astype(np.float32)
    x[:32] = 0
    x[32:64] = np.abs(x[32:64]) + 0.5
    x[64:96] = -np.abs(x[64:96]) * 3
    x[100] = 25.0
    return x


def random_blocks(rng, typ, nblocks):
    """Blocks of random bits, with the F16 scales kept finite and of sane size."""
    tid, bs, bb = gw.GGML_TYPES[typ]
    b = rng.integers(0, 256, size=(nblocks, bb), dtype=np.uint8)

    def f16(lo, hi, signed):
        v = rng.uniform(lo, hi, size=nblocks).astype(np.float32)
        if signed:
            v *= rng.choice([-1, 1], size=nblocks).astype(np.float32)
        return gw.f32_to_f16_bits(v).view(np.uint8).reshape(nblocks, 2)

    if typ == "F32":
        return rng.standard_normal(nblocks).astype("<f4").view(np.uint8).reshape(nblocks, 4)
    if typ in ("F16", "BF16"):
        u = b.view("<u2").reshape(-1).copy()
        if typ == "F16":
            nan = (u & 0x7C00) == 0x7C00
            u[nan] &= 0xBFFF  # clear an exponent bit: no NaN or inf patterns
        else:
            nan = (u & 0x7F80) == 0x7F80
            u[nan] &= 0xBFFF
        return u.view(np.uint8).reshape(nblocks, 2)
    if typ in ("Q8_0", "Q4_0"):
        b[:, 0:2] = f16(1e-3, 1.0, True)
    elif typ == "Q4_K":
        b[:, 0:2] = f16(1e-3, 0.1, False)
        b[:, 2:4] = f16(1e-3, 0.1, False)
    elif typ == "Q6_K":
        b[:, 208:210] = f16(1e-4, 0.01, True)
    return b


def quant_fixtures(out):
    os.makedirs(out, exist_ok=True)
    summary = {}
    for k, typ in enumerate(TYPES):
        rng = np.random.default_rng(1000 + k)
        _, bs, bb = gw.GGML_TYPES[typ]
        n_in = 4 * 256 if bs > 1 else 1024
        x = test_values(rng, n_in)
        raw = gw.quantize(typ, x)
        nrand = 4 if bs == 256 else 16 if bs == 32 else 256
        raw += random_blocks(rng, typ, nrand).tobytes()
        n_all = n_in + nrand * bs
        expected = gw.dequantize(typ, raw, n_all)
        back = expected[:n_in]
        rel = float(np.sqrt(((back - x) ** 2).sum() / (x ** 2).sum()))
        name = typ.lower()
        x.astype("<f4").tofile(os.path.join(out, f"{name}.input.f32"))
        with open(os.path.join(out, f"{name}.blocks"), "wb") as f:
            f.write(raw)
        expected.astype("<f4").tofile(os.path.join(out, f"{name}.expected.f32"))
        summary[name] = {"n_input": n_in, "n_blocks_values": n_all, "python_rel_rmse": rel}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")


def gguf_fixtures(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    w = gw.GGUFWriter()
    w.add("general.architecture", gw.STRING, "test")
    w.add("t.u8", gw.UINT8, 200)
    w.add("t.i8", gw.INT8, -100)
    w.add("t.u16", gw.UINT16, 60000)
    w.add("t.i16", gw.INT16, -30000)
    w.add("t.u32", gw.UINT32, 4000000000)
    w.add("t.i32", gw.INT32, -2000000000)
    w.add("t.f32", gw.FLOAT32, 0.25)
    w.add("t.bool", gw.BOOL, True)
    w.add("t.string", gw.STRING, "h\u00e9llo")
    w.add("t.u64", gw.UINT64, 2 ** 63 + 5)
    w.add("t.i64", gw.INT64, -(2 ** 40))
    w.add("t.f64", gw.FLOAT64, 1e-300)
    w.add("t.arr_u8", gw.ARRAY, [1, 2, 255], gw.UINT8)
    w.add("t.arr_i16", gw.ARRAY, [-1, 2, -300], gw.INT16)
    w.add("t.arr_i32", gw.ARRAY, [7, -8, 9, -10], gw.INT32)
    w.add("t.arr_u64", gw.ARRAY, [2 ** 40], gw.UINT64)
    w.add("t.arr_i64", gw.ARRAY, [-(2 ** 40), 3], gw.INT64)
    w.add("t.arr_f32", gw.ARRAY, [0.5, -1.5, 3.0], gw.FLOAT32)
    w.add("t.arr_f64", gw.ARRAY, [0.1, 0.2], gw.FLOAT64)
    w.add("t.arr_bool", gw.ARRAY, [True, False, True], gw.BOOL)
    w.add("t.arr_str", gw.ARRAY, ["a", "", "\u0120the", "xyz"], gw.STRING)
    w.add("t.arr_empty", gw.ARRAY, [], gw.INT32)
    shapes = {"F32": [3, 5], "F16": [7], "BF16": [4, 3, 2], "Q8_0": [64, 3],
              "Q4_0": [32, 2, 2], "Q4_K": [256, 3], "Q6_K": [512, 1, 1, 2]}
    for typ in TYPES:
        ne = shapes[typ]
        n = int(np.prod(ne))
        x = rng.standard_normal(n).astype(np.float32)
        raw = gw.quantize(typ, x)
        w.add_tensor(f"{typ.lower()}.w", typ, ne, raw)
        w.add_tensor(f"{typ.lower()}.expected", "F32", ne, gw.dequantize(typ, raw, n).tobytes())
    w.write(os.path.join(out, "all_types.gguf"))

    w = gw.GGUFWriter(alignment=64, version=2)
    w.add("general.architecture", gw.STRING, "test")
    for i in range(3):
        ne = [5 + i, 2]
        x = np.arange(int(np.prod(ne)), dtype=np.float32) + 100 * i
        w.add_tensor(f"t{i}", "F32", ne, x.tobytes())
    w.write(os.path.join(out, "v2_align64.gguf"))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    quant_fixtures(os.path.join(root, "quant"))
    gguf_fixtures(os.path.join(root, "gguf"))


if __name__ == "__main__":
    main()
