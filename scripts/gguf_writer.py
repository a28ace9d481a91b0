"""GGUF files and ggml's block-quantized types, in Python, independent of the C++ library.

Written from the format description (a GGUF file is a header, key-values, tensor infos, padding
to the alignment, then tensor data; ggml's block layouts are described per type below), not from
the library's code, so the C++ reader and codecs can be checked against it. Used to make test
fixtures. Needs numpy (and torch for the Mamba model writer); no `gguf` package.

    from gguf_writer import GGUFWriter, quantize, dequantize, write_mamba_gguf

Run with Debian's Python: /usr/bin/python3.
"""
import struct

import numpy as np

# ---------------------------------------------------------------------------------------------
# GGUF container

GGUF_MAGIC = b"GGUF"
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = \
    range(13)
_SCALAR_FMT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
               FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# ggml tensor types: id, values per block, bytes per block
GGML_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34),
              "Q4_K": (12, 256, 144), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}
GGML_TYPE_NAMES = {v[0]: k for k, v in GGML_TYPES.items()}


def _gguf_str(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def encode_value(vtype, value, elem_type=None):
    """The bytes of a value after its type tag."""
    if vtype == STRING:
        return _gguf_str(value)
    if vtype == ARRAY:
        out = struct.pack("<IQ", elem_type, len(value))
        return out + b"".join(encode_value(elem_type, v) for v in value)
    return struct.pack(_SCALAR_FMT[vtype], value)


class GGUFWriter:
    """Collects key-values and tensors; write() lays them out as llama.cpp does (v3 by default):
    tensor data in the order added, each at an offset that is a multiple of the alignment, each
    followed by zero padding up to the alignment."""

    def __init__(self, alignment=None, version=3):
        self.kvs = []  # (key, type, encoded value)
        self.tensors = []  # (name, ggml type id, ne, bytes)
        self.version = version
        self.alignment = 32 if alignment is None else alignment
        if alignment is not None:
            self.add("general.alignment", UINT32, alignment)

    def add(self, key, vtype, value, elem_type=None):
        self.kvs.append((key, vtype, encode_value(vtype, value, elem_type)))

    def add_raw(self, key, vtype, raw):
        self.kvs.append((key, vtype, raw))

    def add_tensor(self, name, type_name, ne, data):
        """ne: ggml order (torch shape reversed); data: the stored bytes."""
        tid, bs, bb = GGML_TYPES[type_name]
        n = int(np.prod(ne))
        assert ne[0] % bs == 0, (name, ne, type_name)
        assert len(data) == n // bs * bb, (name, len(data), n // bs * bb)
        self.tensors.append((name, tid, list(ne), bytes(data)))

    def to_bytes(self):
        a = self.alignment
        out = bytearray(GGUF_MAGIC + struct.pack("<IQQ", self.version, len(self.tensors),
                                                  len(self.kvs)))
        for key, vtype, raw in self.kvs:
            out += _gguf_str(key) + struct.pack("<I", vtype) + raw
        offset = 0
        for name, tid, ne, data in self.tensors:
            out += _gguf_str(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", d) for d in ne)
            out += struct.pack("<IQ", tid, offset)
            offset += -(-len(data) // a) * a
        out += b"\0" * (-len(out) % a)
        for _, _, _, data in self.tensors:
            out += data + b"\0" * (-len(data) % a)
        return bytes(out)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())


def read_gguf(path):
    """(kvs: key -> python value, tensors: name -> (type name, ne, bytes)). For checking files."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def take_str():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n]
        pos += n
        return s.decode("utf-8", errors="replace")

    def take_value(t):
        if t == STRING:
            return take_str()
        if t == ARRAY:
            et, n = take("<I"), take("<Q")
            return [take_value(et) for _ in range(n)]
        return take(_SCALAR_FMT[t])

    assert buf[:4] == GGUF_MAGIC
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    assert version in (2, 3)
    kvs = {}
    for _ in range(n_kv):
        key = take_str()
        kvs[key] = take_value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = take_str()
        ne = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, take("<I"), ne, take("<Q")))
    align = kvs.get("general.alignment", 32)
    start = -(-pos // align) * align
    tensors = {}
    for name, tid, ne, off in infos:
        tname = GGML_TYPE_NAMES[tid]
        _, bs, bb = GGML_TYPES[tname]
        nbytes = int(np.prod(ne)) // bs * bb
        tensors[name] = (tname, ne, buf[start + off:start + off + nbytes])
    return kvs, tensors


# ---------------------------------------------------------------------------------------------
# Block codecs (numpy, float32 arithmetic where the format's decoder uses float32)
#
# Q8_0  34 bytes / 32 values: f16 d, int8 q[32];                  x = d*q
# Q4_0  18 bytes / 32 values: f16 d, 16 bytes; byte j low nibble is value j, high nibble value
#       j+16;                                                      x = d*(q-8)
# Q4_K 144 bytes / 256 values: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) for 8 groups of
#       32, then 4 chunks of 32 bytes, chunk c: low nibbles are group 2c, high nibbles group 2c+1.
#       6-bit packing: groups 0-3 in bytes 0-3 (scale) and 4-7 (min), low 6 bits; groups 4-7:
#       byte 8+i-4 low nibble = scale low 4 bits, high nibble = min low 4 bits, and the top 2
#       bits of scale / min in bits 6-7 of byte i-4 / byte i.   x = d*sc*q - dmin*m
# Q6_K 210 bytes / 256 values: ql[128], qh[64], int8 scales[16] (one per 16 values), f16 d.
#       Two halves of 128 values, half h uses ql[64h:64h+64], qh[32h:32h+32]; in a half, value
#       32*k + i (k = 0..3, i < 32) has low nibble from ql[i + 32*(k%2)] (low nibble for k < 2,
#       high for k >= 2) and high bits (qh[i] >> 2k) & 3.          x = d*scale*(q6 - 32)

def f16_bits_to_f32(b):
    return np.asarray(b, dtype=np.uint16).view(np.float16).astype(np.float32)


def f32_to_f16_bits(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def _blocks(raw, nbytes):
    a = np.frombuffer(bytes(raw), dtype=np.uint8)
    assert a.size % nbytes == 0
    return a.reshape(-1, nbytes)


def _u16(lo, hi):
    return lo.astype(np.uint16) | (hi.astype(np.uint16) << 8)


def _q4k_unpack_scales(s):
    """s: (nb, 12) uint8 -> scales, mins (nb, 8) as ints."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    mn = np.empty((s.shape[0], 8), np.int32)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def _q4k_pack_scales(sc, mn):
    sc = sc.astype(np.int32)
    mn = mn.astype(np.int32)
    out = np.zeros((sc.shape[0], 12), np.int32)
    out[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    out[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:] & 0xF) | ((mn[:, 4:] & 0xF) << 4)
    return out.astype(np.uint8)


def _q6k_quants(ql, qh):
    """ql (nb, 128), qh (nb, 64) -> 6-bit quants (nb, 256) in value order."""
    nb = ql.shape[0]
    q = np.empty((nb, 256), np.int32)
    for h in range(2):
        l, hh = ql[:, 64 * h:64 * h + 64].astype(np.int32), qh[:, 32 * h:32 * h + 32].astype(np.int32)
        for k in range(4):
            low = l[:, 32 * (k % 2):32 * (k % 2) + 32]
            low = (low & 0xF) if k < 2 else (low >> 4)
            q[:, 128 * h + 32 * k:128 * h + 32 * k + 32] = low | (((hh >> (2 * k)) & 3) << 4)
    return q


def dequantize(type_name, raw, n):
    """float32 values of n stored values of a ggml type."""
    if type_name == "F32":
        return np.frombuffer(bytes(raw), dtype="<f4", count=n).astype(np.float32)
    if type_name == "F16":
        return f16_bits_to_f32(np.frombuffer(bytes(raw), dtype="<u2", count=n))
    if type_name == "BF16":
        return bf16_bits_to_f32(np.frombuffer(bytes(raw), dtype="<u2", count=n))
    f32 = np.float32
    if type_name == "Q8_0":
        b = _blocks(raw, 34)
        d = f16_bits_to_f32(_u16(b[:, 0], b[:, 1]))[:, None]
        return (d * b[:, 2:].view(np.int8).astype(f32)).reshape(-1)[:n]
    if type_name == "Q4_0":
        b = _blocks(raw, 18)
        d = f16_bits_to_f32(_u16(b[:, 0], b[:, 1]))[:, None]
        qs = b[:, 2:].astype(np.int32)
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1) - 8
        return (d * q.astype(f32)).reshape(-1)[:n]
    if type_name == "Q4_K":
        b = _blocks(raw, 144)
        d = f16_bits_to_f32(_u16(b[:, 0], b[:, 1]))
        dmin = f16_bits_to_f32(_u16(b[:, 2], b[:, 3]))
        sc, mn = _q4k_unpack_scales(b[:, 4:16])
        qs = b[:, 16:].astype(np.int32).reshape(-1, 4, 32)
        q = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(-1, 8, 32)  # group 2c, 2c+1
        d1 = (d[:, None] * sc.astype(f32))[:, :, None]
        m1 = (dmin[:, None] * mn.astype(f32))[:, :, None]
        return (d1 * q.astype(f32) - m1).astype(f32).reshape(-1)[:n]
    if type_name == "Q6_K":
        b = _blocks(raw, 210)
        q = _q6k_quants(b[:, :128], b[:, 128:192]) - 32
        sc = b[:, 192:208].view(np.int8).astype(f32)
        d = f16_bits_to_f32(_u16(b[:, 208], b[:, 209]))
        ds = (d[:, None] * sc)[:, :, None]  # (nb, 16, 1)
        return (ds * q.reshape(-1, 16, 16).astype(f32)).reshape(-1)[:n]
    raise ValueError(type_name)


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def _q4k_fit(x):
    """x: (m, 32) float32 -> (scale (m,), min (m,)) of least weighted squared error of
    x ~ scale*L - min, L in 0..15, min >= 0, weights mean-magnitude + |x|."""
    f32 = np.float32
    w = np.sqrt((x * x).mean(1, keepdims=True)) + np.abs(x)
    lo = np.minimum(x.min(1), 0).astype(f32)
    hi = x.max(1).astype(f32)
    rng = np.where(hi > lo, hi - lo, f32(1))
    best_err = np.full(x.shape[0], np.inf, f32)
    best_s = (rng / 15).astype(f32)
    best_m = -lo
    sw, swx = w.sum(1), (w * x).sum(1)
    for stretch in np.arange(-1.0, 1.0001, 0.1, dtype=np.float64):
        L = np.clip(np.rint((15 + stretch) / rng[:, None] * (x - lo[:, None])), 0, 15).astype(f32)
        sl, sl2, sxl = (w * L).sum(1), (w * L * L).sum(1), (w * L * x).sum(1)
        det = sw * sl2 - sl * sl
        ok = det > 0
        s = np.where(ok, (sw * sxl - swx * sl) / np.where(ok, det, 1), 0).astype(f32)
        off = np.where(ok, (sl2 * swx - sl * sxl) / np.where(ok, det, 1), 0).astype(f32)
        pos = off > 0
        s = np.where(pos, sxl / np.maximum(sl2, 1e-30), s)
        off = np.where(pos, 0, off)
        err = (w * (s[:, None] * L + off[:, None] - x) ** 2).sum(1)
        better = ok & (err < best_err)
        best_err = np.where(better, err, best_err)
        best_s = np.where(better, s, best_s)
        best_m = np.where(better, -off, best_m)
    flat = hi <= lo
    return np.where(flat, 0, best_s).astype(f32), np.where(flat, -lo, best_m).astype(f32)


def _q6k_fit(x):
    """x: (m, 16) -> signed scale of least x^2-weighted error for L in -32..31."""
    f32 = np.float32
    idx = np.abs(x).argmax(1)
    mx = x[np.arange(x.shape[0]), idx]
    safe = np.where(mx == 0, f32(1), mx)
    w = x * x
    best, best_s = np.full(x.shape[0], -1.0, f32), np.zeros(x.shape[0], f32)
    for stretch in np.arange(-0.9, 0.9001, 0.1):
        iscale = (-(32 + stretch) / safe).astype(f32)
        L = np.clip(np.rint(iscale[:, None] * x), -32, 31)
        slx, sl2 = (w * x * L).sum(1), (w * L * L).sum(1)
        s = np.where(sl2 > 0, slx / np.where(sl2 > 0, sl2, 1), 0)
        gain = s * slx  # error reduction of the least-squares scale
        better = gain > best
        best, best_s = np.where(better, gain, best), np.where(better, s, best_s)
    return np.where(mx == 0, 0, best_s).astype(f32)


def quantize(type_name, x):
    """The stored bytes of float values x (length a multiple of the block size)."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    f32 = np.float32
    if type_name == "F32":
        return x.astype("<f4").tobytes()
    if type_name == "F16":
        return f32_to_f16_bits(x).astype("<u2").tobytes()
    if type_name == "BF16":
        return f32_to_bf16_bits(x).astype("<u2").tobytes()
    if type_name == "Q8_0":
        xb = x.reshape(-1, 32)
        d = (np.abs(xb).max(1) / f32(127)).astype(f32)
        inv = np.where(d != 0, f32(1) / np.where(d != 0, d, 1), 0).astype(f32)
        q = _round_half_away((xb * inv[:, None]).astype(f32)).astype(np.int8)
        out = np.concatenate([f32_to_f16_bits(d)[:, None].view(np.uint8), q.view(np.uint8)], 1)
        return out.tobytes()
    if type_name == "Q4_0":
        xb = x.reshape(-1, 32)
        mx = xb[np.arange(xb.shape[0]), np.abs(xb).argmax(1)]
        d = (mx / f32(-8)).astype(f32)
        inv = np.where(d != 0, f32(1) / np.where(d != 0, d, 1), 0).astype(f32)
        q = np.minimum(15, np.trunc((xb * inv[:, None]).astype(f32) + f32(8.5))).astype(np.uint8)
        packed = q[:, :16] | (q[:, 16:] << 4)
        out = np.concatenate([f32_to_f16_bits(d)[:, None].view(np.uint8), packed], 1)
        return out.tobytes()
    if type_name == "Q4_K":
        xb = x.reshape(-1, 8, 32)
        nb = xb.shape[0]
        s, m = _q4k_fit(xb.reshape(-1, 32))
        s, m = s.reshape(nb, 8), m.reshape(nb, 8)
        smax, mmax = s.max(1), m.max(1)
        ls = np.minimum(63, np.rint(s * np.where(smax > 0, 63 / np.where(smax > 0, smax, 1), 0)[:, None]))
        lm = np.minimum(63, np.rint(m * np.where(mmax > 0, 63 / np.where(mmax > 0, mmax, 1), 0)[:, None]))
        dbits, mbits = f32_to_f16_bits(smax / 63), f32_to_f16_bits(mmax / 63)
        d = f16_bits_to_f32(dbits)[:, None] * ls.astype(f32)
        dm = f16_bits_to_f32(mbits)[:, None] * lm.astype(f32)
        L = np.clip(np.rint((xb + dm[:, :, None]) / np.where(d == 0, 1, d)[:, :, None]), 0, 15)
        L = np.where((d == 0)[:, :, None], 0, L).astype(np.uint8)  # (nb, 8, 32)
        qs = (L[:, 0::2] | (L[:, 1::2] << 4)).reshape(nb, 128)
        head = np.stack([dbits, mbits], 1).view(np.uint8).reshape(nb, 4)
        return np.concatenate([head, _q4k_pack_scales(ls, lm), qs], 1).tobytes()
    if type_name == "Q6_K":
        xb = x.reshape(-1, 16, 16)
        nb = xb.shape[0]
        s = _q6k_fit(xb.reshape(-1, 16)).reshape(nb, 16)
        imax = np.abs(s).argmax(1)
        smax = s[np.arange(nb), imax]
        zero = np.abs(smax) < 1e-15
        iscale = np.where(zero, 0, -128 / np.where(zero, 1, smax)).astype(f32)
        dbits = f32_to_f16_bits(np.where(zero, 0, 1 / np.where(zero, 1, iscale)))
        sc = np.minimum(127, np.rint(iscale[:, None] * s)).astype(np.int8)
        d = f16_bits_to_f32(dbits)[:, None] * sc.astype(f32)
        L = np.clip(np.rint(xb / np.where(d == 0, 1, d)[:, :, None]), -32, 31) + 32
        L = np.where((d == 0)[:, :, None], 32, L).astype(np.int32).reshape(nb, 256)
        ql = np.zeros((nb, 128), np.int32)
        qh = np.zeros((nb, 64), np.int32)
        for h in range(2):
            for k in range(4):
                v = L[:, 128 * h + 32 * k:128 * h + 32 * k + 32]
                c = slice(64 * h + 32 * (k % 2), 64 * h + 32 * (k % 2) + 32)
                ql[:, c] |= (v & 0xF) << (0 if k < 2 else 4)
                qh[:, 32 * h:32 * h + 32] |= (v >> 4) << (2 * k)
        out = np.concatenate([ql.astype(np.uint8), qh.astype(np.uint8), sc.view(np.uint8),
                              dbits[:, None].view(np.uint8)], 1)
        return out.tobytes()
    raise ValueError(type_name)


# ---------------------------------------------------------------------------------------------
# Mamba models (from a mamba_ref params dict: HF names, torch shapes)

# llama.cpp's general.file_type (llama_ftype); all-Q4_K is its "Q4_K_S"
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K": 14, "Q6_K": 18, "BF16": 32}


def gguf_name(hf):
    """HF tensor name -> llama.cpp's GGUF name."""
    if hf == "backbone.embeddings.weight":
        return "token_embd.weight"
    if hf == "backbone.norm_f.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    i = parts[2]
    rest = ".".join(parts[3:])
    table = {"norm.weight": "attn_norm.weight", "mixer.in_proj.weight": "ssm_in.weight",
             "mixer.conv1d.weight": "ssm_conv1d.weight", "mixer.conv1d.bias": "ssm_conv1d.bias",
             "mixer.x_proj.weight": "ssm_x.weight", "mixer.dt_proj.weight": "ssm_dt.weight",
             "mixer.dt_proj.bias": "ssm_dt.bias", "mixer.A_log": "ssm_a", "mixer.D": "ssm_d",
             "mixer.out_proj.weight": "ssm_out.weight"}
    return f"blk.{i}.{table[rest]}"


def mamba_tensor_type(gname, shape, qtype):
    """Storage type of a tensor: only 2-D .weight matrices other than norms and the conv are
    quantized; a row length not a multiple of the block size falls back to F16."""
    if len(shape) != 2 or not gname.endswith(".weight") or "norm" in gname or "conv1d" in gname:
        return "F32"
    if qtype in ("F32", "F16", "BF16"):
        return qtype
    return qtype if shape[-1] % GGML_TYPES[qtype][1] == 0 else "F16"


def mamba_gguf_tensors(params, cfg, qtype, conv_3d=False):
    """[(gguf name, type, ne, bytes, dequantized float64 torch tensor in HF shape, HF name)].
    conv_3d: store the conv weight as ne {d_conv, 1, d_inner} (older converters) instead of
    {d_conv, d_inner}."""
    import torch
    out = []
    for hf, t in params.items():
        t = t.detach().to(torch.float64)
        name = gguf_name(hf)
        if hf.endswith("mixer.A_log"):
            t = -torch.exp(t)  # GGUF stores A itself
        if hf.endswith("conv1d.weight"):
            t = t.reshape(t.shape[0], 1, t.shape[-1]) if conv_3d else t.reshape(t.shape[0], t.shape[-1])
        typ = mamba_tensor_type(name, tuple(t.shape), qtype)
        x = t.to(torch.float32).numpy()
        raw = quantize(typ, x)
        back = torch.from_numpy(dequantize(typ, raw, x.size).reshape(x.shape).copy()).to(torch.float64)
        out.append((name, typ, list(reversed(t.shape)), raw, back, hf))
    return out


def write_mamba_gguf(path, params, cfg, qtype="F32", tokenizer=None, alignment=None,
                     context_length=2048, version=3, conv_3d=False):
    """Writes a llama.cpp-style Mamba GGUF; returns the HF params dict as the file stores them
    (dequantized, float64, A_log recomputed from the stored A) for the reference model.
    tokenizer: optional dict with tokens, token_type, merges, bos_id, eos_id (and pre)."""
    import torch
    w = GGUFWriter(alignment=alignment, version=version)
    w.add("general.architecture", STRING, "mamba")
    w.add("general.name", STRING, "random-mamba")
    w.add("mamba.context_length", UINT32, context_length)
    w.add("mamba.embedding_length", UINT32, cfg["d_model"])
    w.add("mamba.block_count", UINT32, cfg["n_layer"])
    w.add("mamba.ssm.conv_kernel", UINT32, cfg["d_conv"])
    w.add("mamba.ssm.inner_size", UINT32, cfg["d_inner"])
    w.add("mamba.ssm.state_size", UINT32, cfg["d_state"])
    w.add("mamba.ssm.time_step_rank", UINT32, cfg["dt_rank"])
    w.add("mamba.attention.layer_norm_rms_epsilon", FLOAT32, cfg["eps"])
    w.add("mamba.ssm.dt_b_c_rms", BOOL, bool(cfg.get("falcon", False)))
    w.add("general.file_type", UINT32, FILE_TYPES[qtype])
    if tokenizer is not None:
        w.add("tokenizer.ggml.model", STRING, "gpt2")
        w.add("tokenizer.ggml.pre", STRING, tokenizer.get("pre", "gpt-2"))
        w.add("tokenizer.ggml.tokens", ARRAY, tokenizer["tokens"], STRING)
        w.add("tokenizer.ggml.token_type", ARRAY, tokenizer["token_type"], INT32)
        w.add("tokenizer.ggml.merges", ARRAY, tokenizer["merges"], STRING)
        w.add("tokenizer.ggml.bos_token_id", UINT32, tokenizer["bos_id"])
        w.add("tokenizer.ggml.eos_token_id", UINT32, tokenizer["eos_id"])
    stored = {}
    for name, typ, ne, raw, back, hf in mamba_gguf_tensors(params, cfg, qtype, conv_3d):
        w.add_tensor(name, typ, ne, raw)
        if hf.endswith("mixer.A_log"):
            back = torch.log(-back)
        if hf.endswith("conv1d.weight"):
            back = back.reshape(params[hf].shape)
        stored[hf] = back
    w.write(path)
    return stored
