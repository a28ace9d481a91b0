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
gguf_models/<case>/        model.gguf (a random Mamba from mamba_ref.random_params, stored as the
                           case says), reference.json and logits.bin: float64 logits of
                           mamba_ref.forward on the weights as stored (dequantized), the format
                           of scripts/reference.py's fixtures
gguf_models/hf256/         a Hugging Face checkpoint (BF16 safetensors, config.json, a small
                           tokenizer.json) with rows of 256, for mamba-quantize round trips
gguf_models/mamba2_<type>/ a random Mamba-2 (mamba2_ref.random_params) in llama.cpp's "mamba2"
                           GGUF layout, with float64 logits of mamba2_ref.forward on the stored
                           (dequantized) weights; reference.json also says "arch": "mamba2" and
                           "chunk_size": 256 (GGUF has no chunk size or dt limit: the defaults,
                           256 and no clamp, apply and the logits are computed without a clamp)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import mamba2_ref as ref2  # noqa: E402
import mamba_ref as ref  # noqa: E402

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


# name: (config arguments, seed, storage type, extra write_mamba_gguf arguments)
MODEL_CASES = {
    "f32": (dict(d_model=16, n_layer=2, vocab_size=37, d_state=5, d_conv=3, dt_rank=3), 11, "F32",
            dict()),
    "f16": (dict(d_model=16, n_layer=2, vocab_size=37, d_state=5, d_conv=3, dt_rank=3), 12, "F16",
            dict(conv_3d=True)),
    "bf16": (dict(d_model=16, n_layer=2, vocab_size=40, d_state=8, tie=False), 13, "BF16",
             dict(alignment=64)),
    "q8_0": (dict(d_model=32, n_layer=2, vocab_size=40, d_state=8), 14, "Q8_0", dict()),
    "q4_0": (dict(d_model=32, n_layer=2, vocab_size=40, d_state=8, tie=False), 15, "Q4_0", dict()),
    "q4_k": (dict(d_model=256, n_layer=1, vocab_size=32, d_state=8, expand=1), 16, "Q4_K",
             dict(tokenizer=True)),
    "q6_k": (dict(d_model=256, n_layer=1, vocab_size=32, d_state=8, expand=1, tie=False), 17,
             "Q6_K", dict(version=2)),
    "falcon": (dict(d_model=32, n_layer=2, vocab_size=33, d_state=8, falcon=True, mixer_eps=1e-6),
               18, "Q8_0", dict()),
}
N_TOKENS = 13


def tiny_tokenizer(vocab_size):
    """A byte-level BPE vocabulary of vocab_size entries: tokens, types, merges."""
    letters = ["a", "b", "c", "d", "e", "\u0120"]
    tokens, merges = ["<|endoftext|>"] + letters, []
    while len(tokens) < vocab_size:
        a, b = letters[len(merges) % 6], letters[(len(merges) * 5 + 1) % 6]
        if a + b not in tokens:
            tokens.append(a + b)
            merges.append(a + " " + b)
        else:
            tokens.append(f"x{len(tokens)}")
    types = [3] + [1] * (vocab_size - 1)
    return dict(tokens=tokens, token_type=types, merges=merges, bos_id=0, eos_id=0)


def write_reference(d, name, cfg, params, seed, dtype):
    import torch
    tokens = torch.randint(0, cfg["vocab_size"], (N_TOKENS,),
                           generator=torch.Generator().manual_seed(seed + 100)).tolist()
    logits, _ = ref.forward(params, cfg, tokens)
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump({"case": name, "tokens": tokens, "vocab_size": cfg["vocab_size"],
                   "dtype": dtype}, f)
    with open(os.path.join(d, "logits.bin"), "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f8").tobytes())


def model_fixtures(out):
    import torch
    for name, (cfg_args, seed, qtype, extra) in MODEL_CASES.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg = ref.make_config(**cfg_args)
        params = ref.random_params(cfg, seed)
        extra = dict(extra)
        if extra.pop("tokenizer", False):
            extra["tokenizer"] = tiny_tokenizer(cfg["vocab_size"])
        stored = gw.write_mamba_gguf(os.path.join(d, "model.gguf"), params, cfg, qtype, **extra)
        write_reference(d, name, cfg, stored, seed, qtype)

    # An HF checkpoint to quantize: BF16 values, rows of 256 so that every type applies.
    d = os.path.join(out, "hf256")
    os.makedirs(d, exist_ok=True)
    cfg = ref.make_config(d_model=256, n_layer=2, vocab_size=32, d_state=8, expand=1)
    params = ref.round_to(ref.random_params(cfg, 19), torch.bfloat16)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(ref.hf_config_json(cfg), f, indent=2)
    ref.write_safetensors(os.path.join(d, "model.safetensors"), params, torch.bfloat16)
    tok = tiny_tokenizer(cfg["vocab_size"])
    vocab = {t: i for i, t in enumerate(tok["tokens"]) if i > 0}
    tj = {"version": "1.0", "added_tokens": [
        {"id": 0, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                                              "trim_offsets": True, "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "vocab": vocab, "merges": tok["merges"]}}
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tj, f, indent=1, ensure_ascii=False)
    write_reference(d, "hf256", cfg, params, 19, "BF16")


# ---------------------------------------------------------------------------------------------
# Mamba-2 GGUFs, as llama.cpp's convert_hf_to_gguf.py (Mamba2Model) writes them

# name: (mamba2_ref.make_config arguments, seed, storage type, unpadded vocabulary)
# The checkpoint vocabulary is the unpadded one rounded up to a multiple of 16 (the converter's
# padding); the tokens are drawn from the unpadded part.
MAMBA2_CASES = {
    # 2 groups of 2 heads of 8, tied, vocab 45 -> 48
    "mamba2_f32": (dict(d_model=16, n_layer=2, vocab_size=48, d_state=8, d_conv=4, headdim=8,
                        ngroups=2), 31, "F32", 45),
    # 1 group of 4 heads of 16, untied (output.weight quantized too), rows of 32 and 64
    "mamba2_q8_0": (dict(d_model=32, n_layer=2, vocab_size=48, d_state=16, d_conv=4,
                         headdim=16, tie=False), 32, "Q8_0", 40),
    # rows of 256 (d_model 256, expand 1): 2 groups of 4 heads of 32, d_conv 3
    "mamba2_q4_k": (dict(d_model=256, n_layer=1, vocab_size=32, d_state=16, d_conv=3, expand=1,
                         headdim=32, ngroups=2), 33, "Q4_K", 32),
}
N_TOKENS_MAMBA2 = 21


def mamba2_gguf_name(hf):
    """HF Mamba-2 tensor name -> llama.cpp's GGUF name."""
    parts = hf.split(".")
    if len(parts) > 3 and parts[1] == "layers":
        rest = ".".join(parts[3:])
        extra = {"mixer.dt_bias": "ssm_dt.bias", "mixer.norm.weight": "ssm_norm.weight"}
        if rest in extra:
            return f"blk.{parts[2]}.{extra[rest]}"
    return gw.gguf_name(hf)


def write_mamba2_gguf(path, params, cfg, qtype="F32", context_length=1 << 20):
    """Writes a llama.cpp-style Mamba-2 GGUF; returns the HF params dict as the file stores
    them (dequantized, float64, A_log recomputed from the stored A) for the reference model.
    Tensor shapes as the converter makes them (ggml ne = torch shape reversed):
    conv1d (conv_dim, 1, K) -> (conv_dim, K); A_log (H) -> A = -exp(A_log) as (H, 1);
    D (H) -> (H, 1); mixer norm (d_inner) -> (G, d_inner/G)."""
    import torch
    w = gw.GGUFWriter()
    w.add("general.architecture", gw.STRING, "mamba2")
    w.add("general.name", gw.STRING, "random-mamba2")
    w.add("mamba2.context_length", gw.UINT32, context_length)
    w.add("mamba2.embedding_length", gw.UINT32, cfg["d_model"])
    w.add("mamba2.feed_forward_length", gw.UINT32, 0)  # unused; the converter writes it
    w.add("mamba2.attention.head_count", gw.UINT32, 0)  # likewise
    w.add("mamba2.block_count", gw.UINT32, cfg["n_layer"])
    w.add("mamba2.ssm.conv_kernel", gw.UINT32, cfg["d_conv"])
    w.add("mamba2.ssm.inner_size", gw.UINT32, cfg["d_inner"])
    w.add("mamba2.ssm.state_size", gw.UINT32, cfg["d_state"])
    w.add("mamba2.ssm.time_step_rank", gw.UINT32, cfg["nheads"])
    w.add("mamba2.ssm.group_count", gw.UINT32, cfg["ngroups"])
    w.add("mamba2.attention.layer_norm_rms_epsilon", gw.FLOAT32, cfg["eps"])
    w.add("general.file_type", gw.UINT32, gw.FILE_TYPES[qtype])
    stored = {}
    for hf, t in params.items():
        t = t.detach().to(torch.float64)
        name = mamba2_gguf_name(hf)
        if hf.endswith("mixer.A_log"):
            t = -torch.exp(t)  # GGUF stores A itself
        if hf.endswith("mixer.A_log") or hf.endswith("mixer.D"):
            t = t.reshape(*t.shape, 1)
        elif hf.endswith("conv1d.weight"):
            t = t.reshape(t.shape[0], t.shape[-1])
        elif hf.endswith("mixer.norm.weight"):
            t = t.reshape(cfg["ngroups"], cfg["d_inner"] // cfg["ngroups"])
        typ = gw.mamba_tensor_type(name, tuple(t.shape), qtype)
        x = t.to(torch.float32).numpy()
        raw = gw.quantize(typ, x)
        w.add_tensor(name, typ, list(reversed(t.shape)), raw)
        back = torch.from_numpy(gw.dequantize(typ, raw, x.size).copy()).to(torch.float64)
        if hf.endswith("mixer.A_log"):
            back = torch.log(-back)
        stored[hf] = back.reshape(params[hf].shape)
    w.write(path)
    return stored


def mamba2_model_fixtures(out):
    import torch
    for name, (cfg_args, seed, qtype, unpadded) in MAMBA2_CASES.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg = ref2.make_config(**cfg_args)
        assert cfg["vocab_size"] == -(-unpadded // 16) * 16
        params = ref2.random_params(cfg, seed)
        stored = write_mamba2_gguf(os.path.join(d, "model.gguf"), params, cfg, qtype)
        tokens = torch.randint(0, unpadded, (N_TOKENS_MAMBA2,),
                               generator=torch.Generator().manual_seed(seed + 100)).tolist()
        logits, _ = ref2.forward(stored, cfg, tokens)
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump({"case": name, "tokens": tokens, "vocab_size": cfg["vocab_size"],
                       "dtype": qtype, "arch": "mamba2", "chunk_size": cfg["chunk_size"]}, f)
        with open(os.path.join(d, "logits.bin"), "wb") as f:
            f.write(logits.contiguous().numpy().astype("<f8").tobytes())


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    quant_fixtures(os.path.join(root, "quant"))
    gguf_fixtures(os.path.join(root, "gguf"))
    model_fixtures(os.path.join(root, "gguf_models"))
    mamba2_model_fixtures(os.path.join(root, "gguf_models"))


if __name__ == "__main__":
    main()
