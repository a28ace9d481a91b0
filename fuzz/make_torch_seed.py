#!/usr/bin/python3
"""Writes the seeds of fuzz_torch: torch.save archives of a micro model's weights, a few KB each.

    /usr/bin/python3 fuzz/make_torch_seed.py [fuzz/corpus/torch]

The shapes are those of micro_config() and micro_mamba2_config() in fuzz/fuzz_common.hpp (keep
them in step). mamba-fuzz-corpus writes the other harnesses' seeds; this one needs PyTorch. The
output is deterministic for one PyTorch version (fixed seed; torch.save writes no timestamps).
"""
import collections
import io
import os
import sys
import zipfile

import torch

# micro_config(): d_model 4, n_layer 1, vocab 8, d_state 2, d_conv 2, d_inner 8, dt_rank 1
D, E, N, K, R, V = 4, 8, 2, 2, 1, 8
# micro_mamba2_config(): the same with headdim 4 (2 heads), 2 groups
H, G = 2, 2


def mamba1(embedding_name):
    m = "backbone.layers.0.mixer."
    shapes = {
        embedding_name: (V, D),
        "backbone.layers.0.norm.weight": (D,),
        m + "in_proj.weight": (2 * E, D),
        m + "conv1d.weight": (E, 1, K),
        m + "conv1d.bias": (E,),
        m + "x_proj.weight": (R + 2 * N, E),
        m + "dt_proj.weight": (E, R),
        m + "dt_proj.bias": (E,),
        m + "A_log": (E, N),
        m + "D": (E,),
        m + "out_proj.weight": (D, E),
        "backbone.norm_f.weight": (D,),
    }
    return {k: 0.5 * torch.randn(s) for k, s in shapes.items()}


def mamba2():
    m = "backbone.layers.0.mixer."
    conv_dim = E + 2 * G * N
    shapes = {
        "backbone.embedding.weight": (V, D),
        "backbone.layers.0.norm.weight": (D,),
        m + "in_proj.weight": (2 * E + 2 * G * N + H, D),
        m + "conv1d.weight": (conv_dim, 1, K),
        m + "conv1d.bias": (conv_dim,),
        m + "dt_bias": (H,),
        m + "A_log": (H,),
        m + "D": (H,),
        m + "norm.weight": (E,),
        m + "out_proj.weight": (D, E),
        "backbone.norm_f.weight": (D,),
    }
    return {k: 0.5 * torch.randn(s) for k, s in shapes.items()}


def one_storage(params):
    """Every tensor a contiguous view into one flat storage, at its own offset."""
    flat = torch.cat([t.reshape(-1) for t in params.values()])
    out, at = {}, 0
    for k, t in params.items():
        out[k] = flat[at:at + t.numel()].view(t.shape)
        at += t.numel()
    return out


def saved(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def with_byteorder(data, order):
    """The archive with a `<prefix>/byteorder` entry, as newer PyTorch versions write it."""
    src = zipfile.ZipFile(io.BytesIO(data))
    prefix = src.namelist()[0].split("/")[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(zipfile.ZipInfo(prefix + "/byteorder"), order)
    return buf.getvalue()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "torch")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    seeds = {}
    # A module's state_dict as the state-spaces checkpoints hold it: an OrderedDict with
    # _metadata, lm_head.weight the embedding tensor itself.
    sd = collections.OrderedDict(mamba1("backbone.embedding.weight"))
    sd["lm_head.weight"] = sd["backbone.embedding.weight"]
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    seeds["micro_f32_state_dict.bin"] = saved(sd)
    # A plain dict of BF16 Parameters (torch._utils._rebuild_parameter), HF naming.
    seeds["micro_bf16_params.bin"] = saved(
        {k: torch.nn.Parameter(v.to(torch.bfloat16), requires_grad=False)
         for k, v in mamba1("backbone.embeddings.weight").items()})
    # F16 views into one storage (non-zero storage offsets), with a byteorder entry.
    seeds["micro_f16_one_storage.bin"] = with_byteorder(
        saved(one_storage({k: v.to(torch.float16)
                           for k, v in mamba1("backbone.embedding.weight").items()})), "little")
    seeds["micro_mamba2_f32.bin"] = saved(mamba2())
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
