#!/usr/bin/python3
"""Writes the test fixtures: small random Mamba checkpoints and their float64 reference logits.

    /usr/bin/python3 scripts/reference.py [--out tests/fixtures]

Each fixture is a directory holding a checkpoint as a user would download it (config.json plus
safetensors, or the pytorch_model.bin that the original state-spaces repositories ship, in the
layout the case is about) and:
    reference.json   {"case": ..., "tokens": [...], "vocab_size": V, "dtype": ...}
    logits.bin       float64 little-endian, row-major [n_tokens][vocab_size], from mamba_ref.forward
The reference runs in float64 on exactly the values the checkpoint stores (rounded to its dtype).

The mamba2_* cases are Mamba-2 checkpoints (scripts/mamba2_ref.py, recurrence form): their
reference.json also says "arch": "mamba2" and the model's "chunk_size", and they have
N_TOKENS_MAMBA2 tokens, so that prefixes shorter than, equal to, a multiple of and not a multiple
of the chunk length can be prefilled.
"""
import argparse
import collections
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba2_ref as ref2  # noqa: E402
import mamba_ref as ref  # noqa: E402

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}

# name: (config arguments, seed, how it is stored)
CASES = {
    # d_state, d_conv and dt_rank all off their defaults; vocab not a multiple of 8
    "tiny": (dict(d_model=16, n_layer=2, vocab_size=37, d_state=5, d_conv=3, dt_rank=3), 1,
             dict()),
    # untied lm_head, projection biases, "auto" dt_rank
    "untied_bias": (dict(d_model=24, n_layer=3, vocab_size=61, use_bias=True, tie=False), 2,
                    dict(dt_rank_auto=True)),
    # original state-spaces naming and config; vocab 45 padded to 48
    "state_spaces": (dict(d_model=32, n_layer=2, vocab_size=48, d_state=12), 3,
                     dict(state_spaces=True, unpadded_vocab=45)),
    # the same, as those repositories ship it: torch.save's pytorch_model.bin of a state_dict,
    # lm_head.weight sharing the embedding's storage
    "state_spaces_bin": (dict(d_model=32, n_layer=2, vocab_size=48, d_state=12), 3,
                         dict(state_spaces=True, unpadded_vocab=45, torch_bin=True)),
    "bf16": (dict(d_model=16, n_layer=2, vocab_size=40, d_state=8), 4, dict(dtype="BF16")),
    "f16": (dict(d_model=16, n_layer=2, vocab_size=40, d_state=8), 5, dict(dtype="F16")),
    # two shards with an index, conv weight stored 2-D (d_inner, d_conv), no conv bias
    "sharded": (dict(d_model=16, n_layer=3, vocab_size=29, d_conv=2, use_conv_bias=False), 6,
                dict(shards=2, conv_2d=True)),
    # the same as torch.save shards with a pytorch_model.bin.index.json
    "sharded_bin": (dict(d_model=16, n_layer=3, vocab_size=29, d_conv=2, use_conv_bias=False), 6,
                    dict(shards=2, conv_2d=True, torch_bin=True)),
    # a byte-level model (vocab 256), for the generation tests
    "bytes": (dict(d_model=16, n_layer=2, vocab_size=256, d_state=4), 8, dict()),
    # Falcon-Mamba: weightless RMSNorm on dt, B and C
    "falcon": (dict(d_model=16, n_layer=2, vocab_size=33, falcon=True, mixer_eps=1e-6), 7, dict()),
}

N_TOKENS = 13

# Mamba-2 cases, name: (mamba2_ref.make_config arguments, seed, how it is stored)
MAMBA2_CASES = {
    # HF layout, one group, 4 heads of 8, D per head, no dt clamp, tied
    "mamba2_tiny": (dict(d_model=16, n_layer=2, vocab_size=37, d_state=12, d_conv=4, headdim=8,
                         chunk_size=8), 21, dict()),
    # HF layout, 2 groups of 4 heads of 6, projection biases, untied, dt clamped to
    # [0.01, 0.05] (most dt values hit one bound or the other)
    "mamba2_groups": (dict(d_model=24, n_layer=2, vocab_size=61, d_state=10, d_conv=3,
                           headdim=6, ngroups=2, chunk_size=8, use_bias=True, tie=False,
                           time_step_limit=(0.01, 0.05)), 22, dict()),
    # original state-spaces naming and config (ssm_cfg.layer "Mamba2"), vocab 45 padded to 48,
    # D per channel (D_has_hdim), dt_limit, 2 groups of 2 heads of 16, BF16 storage
    "mamba2_ss": (dict(d_model=32, n_layer=2, vocab_size=48, d_state=16, headdim=16, ngroups=2,
                       chunk_size=16, D_has_hdim=True, time_step_limit=(0.002, 0.08)), 23,
                  dict(state_spaces=True, unpadded_vocab=45, pad_vocab_size_multiple=16,
                       dtype="BF16")),
    # the same as a pytorch_model.bin of BF16 storages, its dict a plain one
    "mamba2_ss_bin": (dict(d_model=32, n_layer=2, vocab_size=48, d_state=16, headdim=16,
                           ngroups=2, chunk_size=16, D_has_hdim=True,
                           time_step_limit=(0.002, 0.08)), 23,
                      dict(state_spaces=True, unpadded_vocab=45, pad_vocab_size_multiple=16,
                           dtype="BF16", torch_bin=True)),
}

N_TOKENS_MAMBA2 = 21


def write_torch_bin(path, params, dtype, state_dict, tie=True):
    """torch.save of the weights, as the original state-spaces checkpoints are stored: with tie,
    a tied model's lm_head.weight is the embedding tensor itself (one storage, two names). With
    state_dict, the dict is what Module.state_dict() returns (an OrderedDict carrying
    _metadata); else a plain dict, as conversion scripts write."""
    sd = {k: v.to(dtype).contiguous() for k, v in params.items()}
    if tie and "lm_head.weight" not in sd:
        sd["lm_head.weight"] = sd["backbone.embedding.weight"]
    if state_dict:
        sd = collections.OrderedDict(sd)
        sd._metadata = collections.OrderedDict(
            [("", {"version": 1}), ("backbone", {"version": 1}), ("lm_head", {"version": 1})])
    torch.save(sd, path)


def write_case(out_dir, name, cfg_args, seed, how):
    d = os.path.join(out_dir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = ref.make_config(**cfg_args)
    dtype = how.get("dtype", "F32")
    params = ref.round_to(ref.random_params(cfg, seed), DTYPES[dtype])
    tokens = torch.randint(0, how.get("unpadded_vocab", cfg["vocab_size"]), (N_TOKENS,),
                           generator=torch.Generator().manual_seed(seed + 100)).tolist()
    logits, _ = ref.forward(params, cfg, tokens)

    if how.get("state_spaces"):
        conf = ref.state_spaces_config_json(
            dict(cfg, vocab_size=how["unpadded_vocab"]), pad_vocab_size_multiple=8)
        params = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v
                  for k, v in params.items()}
    else:
        conf = ref.hf_config_json(cfg)
        if how.get("dt_rank_auto"):
            conf["time_step_rank"] = "auto"
    if how.get("conv_2d"):
        params = {k: (v.reshape(v.shape[0], v.shape[2]) if k.endswith("conv1d.weight") else v)
                  for k, v in params.items()}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)

    shards = how.get("shards", 1)
    if how.get("torch_bin"):
        def write(path, tensors):
            write_torch_bin(path, tensors, DTYPES[dtype], True, tie=shards == 1)
        stem, ext = "pytorch_model", ".bin"
    else:
        def write(path, tensors):
            ref.write_safetensors(path, tensors, DTYPES[dtype])
        stem, ext = "model", ".safetensors"
    if shards == 1:
        write(os.path.join(d, stem + ext), params)
    else:
        names = list(params)
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"{stem}-{s + 1:05d}-of-{shards:05d}{ext}"
            write(os.path.join(d, fname), {k: params[k] for k in part})
            weight_map.update({k: fname for k in part})
        with open(os.path.join(d, stem + ext + ".index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)

    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump({"case": name, "tokens": tokens, "vocab_size": cfg["vocab_size"],
                   "dtype": dtype}, f)
    with open(os.path.join(d, "logits.bin"), "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f8").tobytes())


def write_mamba2_case(out_dir, name, cfg_args, seed, how):
    d = os.path.join(out_dir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = ref2.make_config(**cfg_args)
    dtype = how.get("dtype", "F32")
    params = ref2.round_to(ref2.random_params(cfg, seed), DTYPES[dtype])
    tokens = torch.randint(0, how.get("unpadded_vocab", cfg["vocab_size"]), (N_TOKENS_MAMBA2,),
                           generator=torch.Generator().manual_seed(seed + 100)).tolist()
    logits, _ = ref2.forward(params, cfg, tokens)

    if how.get("state_spaces"):
        conf = ref2.state_spaces_config_json(dict(cfg, vocab_size=how["unpadded_vocab"]),
                                             how["pad_vocab_size_multiple"])
        params = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v
                  for k, v in params.items()}
    else:
        conf = ref2.hf_config_json(cfg)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    if how.get("torch_bin"):
        write_torch_bin(os.path.join(d, "pytorch_model.bin"), params, DTYPES[dtype], False)
    else:
        ref2.write_safetensors(os.path.join(d, "model.safetensors"), params, DTYPES[dtype])
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump({"case": name, "tokens": tokens, "vocab_size": cfg["vocab_size"],
                   "dtype": dtype, "arch": "mamba2", "chunk_size": cfg["chunk_size"]}, f)
    with open(os.path.join(d, "logits.bin"), "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f8").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures"))
    args = ap.parse_args()
    for name, (cfg_args, seed, how) in CASES.items():
        write_case(args.out, name, cfg_args, seed, how)
        print("wrote", os.path.join(args.out, name))
    for name, (cfg_args, seed, how) in MAMBA2_CASES.items():
        write_mamba2_case(args.out, name, cfg_args, seed, how)
        print("wrote", os.path.join(args.out, name))


if __name__ == "__main__":
    main()
