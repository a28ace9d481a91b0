"""Float64 reference for Mamba-2 (SSD), written from the equations (../shared/DESIGN.md section 1b).

It shares no code with the C++ library: it is what the C++ is checked against. The model runs
the RECURRENCE form, token by token; the chunked "state space duality" form lives only in the
self-test, which checks the two against each other:

    /usr/bin/python3 scripts/mamba2_ref.py --self-test

Also here: random checkpoints in the Hugging Face naming (value ranges like a trained model) and
config.json writers for the HF (Mamba2Config) and original state-spaces layouts. The safetensors
writer, rmsnorm, softplus and silu are mamba_ref's (Mamba-1 reference of the same family).

Run with Debian's PyTorch: /usr/bin/python3.
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_ref import (read_safetensors, rmsnorm, round_to, silu, softplus,  # noqa: E402,F401
                       write_safetensors)

INF = float("inf")
NO_LIMIT = (0.0, INF)


# ---------------------------------------------------------------------------------------------
# Configuration


def make_config(d_model, n_layer, vocab_size, d_state=128, d_conv=4, expand=2, headdim=64,
                ngroups=1, chunk_size=256, eps=1e-5, use_bias=False, use_conv_bias=True,
                tie=True, time_step_limit=NO_LIMIT, D_has_hdim=False):
    """The dimensions the reference needs, in the state-spaces names, plus the derived ones."""
    d_inner = expand * d_model
    assert d_inner % headdim == 0, "d_inner must be a multiple of headdim"
    nheads = d_inner // headdim
    assert nheads % ngroups == 0 and d_inner % ngroups == 0, "ngroups must divide nheads"
    lo, hi = (float(v) for v in time_step_limit)
    return dict(arch="mamba2", d_model=d_model, n_layer=n_layer, vocab_size=vocab_size,
                d_state=d_state, d_conv=d_conv, expand=expand, headdim=headdim, ngroups=ngroups,
                chunk_size=chunk_size, eps=eps, use_bias=use_bias, use_conv_bias=use_conv_bias,
                tie=tie, time_step_limit=(lo, hi), D_has_hdim=D_has_hdim,
                d_inner=d_inner, nheads=nheads, conv_dim=d_inner + 2 * ngroups * d_state,
                d_in_proj=2 * d_inner + 2 * ngroups * d_state + nheads)


def has_dt_limit(cfg):
    return tuple(cfg["time_step_limit"]) != NO_LIMIT


def hf_config_json(cfg):
    """config.json as transformers' Mamba2Config writes it. json.dump writes an infinite upper
    time_step_limit as a bare `Infinity`, exactly as the published files have it."""
    return {
        "architectures": ["Mamba2ForCausalLM"],
        "model_type": "mamba2",
        "bos_token_id": 0,
        "chunk_size": cfg["chunk_size"],
        "conv_kernel": cfg["d_conv"],
        "eos_token_id": 0,
        "expand": cfg["expand"],
        "head_dim": cfg["headdim"],
        "hidden_act": "silu",
        "hidden_size": cfg["d_model"],
        "initializer_range": 0.1,
        "layer_norm_epsilon": cfg["eps"],
        "n_groups": cfg["ngroups"],
        "num_heads": cfg["nheads"],
        "num_hidden_layers": cfg["n_layer"],
        "pad_token_id": 0,
        "rescale_prenorm_residual": False,
        "residual_in_fp32": True,
        "rms_norm": True,
        "state_size": cfg["d_state"],
        "tie_word_embeddings": cfg["tie"],
        "time_step_floor": 0.0001,
        "time_step_limit": list(cfg["time_step_limit"]),
        "time_step_max": 0.1,
        "time_step_min": 0.001,
        # Mamba2Config carries a Mamba-1 style dt rank (ceil(hidden_size/16)) that no Mamba-2
        # tensor uses; real files have it, so a loader must ignore it.
        "time_step_rank": math.ceil(cfg["d_model"] / 16),
        "torch_dtype": "float32",
        "use_bias": cfg["use_bias"],
        "use_cache": True,
        "use_conv_bias": cfg["use_conv_bias"],
        "vocab_size": cfg["vocab_size"],
    }


def state_spaces_config_json(cfg, pad_vocab_size_multiple=16):
    """config.json as the original state-spaces mamba2 checkpoints write it: ssm_cfg holds the
    layer type and only the values that differ from mamba_ssm's Mamba2 defaults."""
    ssm_cfg = {"layer": "Mamba2"}
    for key, name, default in (("d_state", "d_state", 128), ("d_conv", "d_conv", 4),
                               ("expand", "expand", 2), ("headdim", "headdim", 64),
                               ("ngroups", "ngroups", 1), ("chunk_size", "chunk_size", 256),
                               ("use_bias", "bias", False),
                               ("use_conv_bias", "conv_bias", True)):
        if cfg[key] != default:
            ssm_cfg[name] = cfg[key]
    if has_dt_limit(cfg):
        ssm_cfg["dt_limit"] = list(cfg["time_step_limit"])
    if cfg["D_has_hdim"]:
        ssm_cfg["D_has_hdim"] = True
    return {
        "d_model": cfg["d_model"],
        "d_intermediate": 0,
        "n_layer": cfg["n_layer"],
        "vocab_size": cfg["vocab_size"],
        "ssm_cfg": ssm_cfg,
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": pad_vocab_size_multiple,
        "tie_embeddings": cfg["tie"],
    }


# ---------------------------------------------------------------------------------------------
# Parameters (HF names, torch shapes)


def random_params(cfg, seed, vocab_rows=None, dt_scale=2.0):
    """A random checkpoint with the value ranges a trained Mamba-2 has. float64 tensors.
    The dt rows of in_proj get `dt_scale` times the std of the others, so that the dt
    pre-activations are O(1) around the bias and a time_step_limit clamps a fair share."""
    g = torch.Generator().manual_seed(seed)
    D, E, K, H = cfg["d_model"], cfg["d_inner"], cfg["d_conv"], cfg["nheads"]
    V = vocab_rows or cfg["vocab_size"]

    def normal(*shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    def uniform(*shape, lo, hi):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)

    p = {"backbone.embeddings.weight": normal(V, D, std=1.0)}
    for i in range(cfg["n_layer"]):
        m = f"backbone.layers.{i}.mixer."
        p[f"backbone.layers.{i}.norm.weight"] = 1 + normal(D, std=0.1)
        w = normal(cfg["d_in_proj"], D, std=D ** -0.5)
        w[-H:] *= dt_scale
        p[m + "in_proj.weight"] = w
        if cfg["use_bias"]:
            p[m + "in_proj.bias"] = normal(cfg["d_in_proj"], std=0.1)
        p[m + "conv1d.weight"] = normal(cfg["conv_dim"], 1, K, std=K ** -0.5)
        if cfg["use_conv_bias"]:
            p[m + "conv1d.bias"] = normal(cfg["conv_dim"], std=0.1)
        dt = torch.exp(uniform(H, lo=math.log(1e-3), hi=math.log(1e-1)))
        p[m + "dt_bias"] = dt + torch.log(-torch.expm1(-dt))  # inverse softplus
        p[m + "A_log"] = torch.log(uniform(H, lo=1.0, hi=16.0))
        p[m + "D"] = 1 + normal(E if cfg["D_has_hdim"] else H, std=0.1)
        p[m + "norm.weight"] = 1 + normal(E, std=0.1)
        p[m + "out_proj.weight"] = normal(D, E, std=E ** -0.5 / cfg["n_layer"] ** 0.5)
        if cfg["use_bias"]:
            p[m + "out_proj.bias"] = normal(D, std=0.1)
    p["backbone.norm_f.weight"] = 1 + normal(D, std=0.1)
    if not cfg["tie"]:
        p["lm_head.weight"] = normal(V, D, std=D ** -0.5)
    return p


# ---------------------------------------------------------------------------------------------
# The model, float64, from the equations


def group_of_heads(cfg):
    """g for every head hd: hd // (nheads / ngroups)."""
    return torch.arange(cfg["nheads"]) // (cfg["nheads"] // cfg["ngroups"])


def scan_recurrence(cfg, x, dt, A, B, C, h):
    """The selective scan, one token at a time.
    x (T, H, P), dt (T, H), A (H), B and C (T, G, N), h (H, P, N) -> y (T, H, P) without the
    D term, and the state after the last token."""
    g = group_of_heads(cfg)
    ys = []
    for t in range(x.shape[0]):
        Bh, Ch = B[t][g], C[t][g]  # (H, N): the group of each head
        # h[hd] = exp(dt[hd]*A[hd]) * h[hd] + dt[hd] * outer(x[hd], B[g])
        h = torch.exp(dt[t] * A)[:, None, None] * h \
            + dt[t][:, None, None] * x[t][:, :, None] * Bh[:, None, :]
        # y[hd] = h[hd] @ C[g]
        ys.append((h @ Ch[:, :, None])[..., 0])
    return torch.stack(ys), h


def mixer(p, m, cfg, u, state=None, scan=scan_recurrence, trace=None):
    """One Mamba-2 mixer over a sequence u: (T, d_model).
    state = (conv (d_conv-1, conv_dim), ssm (nheads, headdim, d_state)), None for zeros.
    scan: the selective scan to use (the recurrence; the self-test swaps in the chunked form).
    trace: a list that gets a dict of intermediate values per call, for statistics."""
    E, N, K, H, P, G = (cfg[k] for k in ("d_inner", "d_state", "d_conv", "nheads", "headdim",
                                         "ngroups"))
    CD = cfg["conv_dim"]
    T = u.shape[0]
    # z, xBC, dt = split(in_proj(u)): d_inner | conv_dim | nheads
    zxbcdt = u @ p[m + "in_proj.weight"].T
    if m + "in_proj.bias" in p:
        zxbcdt = zxbcdt + p[m + "in_proj.bias"]
    z, xBC, dt = zxbcdt[:, :E], zxbcdt[:, E:E + CD], zxbcdt[:, E + CD:]
    assert dt.shape[1] == H
    # xBC = silu(causal depthwise conv over all of xBC, carried state, + bias)
    conv_state = torch.zeros(K - 1, CD, dtype=torch.float64) if state is None else state[0]
    xp = torch.cat([conv_state, xBC], 0)  # (K-1+T, conv_dim)
    w = p[m + "conv1d.weight"].reshape(CD, K)
    conv = sum(xp[k:k + T] * w[:, k] for k in range(K))  # tap K-1 hits the current token
    if m + "conv1d.bias" in p:
        conv = conv + p[m + "conv1d.bias"]
    new_conv_state = xp[T:]
    xBC = silu(conv)
    x = xBC[:, :E].reshape(T, H, P)
    B = xBC[:, E:E + G * N].reshape(T, G, N)
    C = xBC[:, E + G * N:].reshape(T, G, N)
    # dt = softplus(dt + dt_bias), clamped to time_step_limit when one is set
    dt_raw = softplus(dt + p[m + "dt_bias"])
    dt = dt_raw
    if has_dt_limit(cfg):
        lo, hi = cfg["time_step_limit"]
        dt = dt.clamp(min=lo, max=hi)
    if trace is not None:
        trace.append(dict(dt_raw=dt_raw, dt=dt))
    A = -torch.exp(p[m + "A_log"])  # (H): one scalar per head
    h = torch.zeros(H, P, N, dtype=torch.float64) if state is None else state[1]
    y, h = scan(cfg, x, dt, A, B, C, h)
    # + D * x: D per head (H), or per channel (d_inner) when D_has_hdim
    Dp = p[m + "D"]
    y = y + (Dp.reshape(H, P) if Dp.numel() == E else Dp[:, None]) * x
    # y = rmsnorm_per_group(y * silu(z)) * norm.weight: G groups of d_inner/G channels
    y = y.reshape(T, E) * silu(z)
    y = rmsnorm(y.reshape(T, G, E // G), None, cfg["eps"]).reshape(T, E) * p[m + "norm.weight"]
    out = y @ p[m + "out_proj.weight"].T
    if m + "out_proj.bias" in p:
        out = out + p[m + "out_proj.bias"]
    return out, (new_conv_state, h)


def forward(p, cfg, tokens, states=None, scan=scan_recurrence, trace=None):
    """Logits (T, vocab) for a token list, float64, and the recurrent state after it
    (per layer: conv (d_conv-1, conv_dim), ssm (nheads, headdim, d_state))."""
    emb = p["backbone.embeddings.weight"]
    hidden = emb[torch.tensor(tokens, dtype=torch.long)]
    residual = torch.zeros_like(hidden)
    new_states = []
    for i in range(cfg["n_layer"]):
        residual = residual + hidden
        u = rmsnorm(residual, p[f"backbone.layers.{i}.norm.weight"], cfg["eps"])
        hidden, st = mixer(p, f"backbone.layers.{i}.mixer.", cfg, u,
                           None if states is None else states[i], scan=scan, trace=trace)
        new_states.append(st)
    residual = residual + hidden
    h = rmsnorm(residual, p["backbone.norm_f.weight"], cfg["eps"])
    head = p["lm_head.weight"] if "lm_head.weight" in p else emb
    return h @ head.T, new_states


def dt_clamp_fraction(p, cfg, tokens):
    """Share of the dt values (all layers, tokens, heads) that time_step_limit changes."""
    trace = []
    forward(p, cfg, tokens, trace=trace)
    changed = sum(int((t["dt"] != t["dt_raw"]).sum()) for t in trace)
    total = sum(t["dt"].numel() for t in trace)
    return changed / total


# ---------------------------------------------------------------------------------------------
# Self-test: the chunked SSD form, written separately, must equal the recurrence


def scan_chunked(chunk):
    """The chunked "state space duality" form with chunk length `chunk`, as a scan function.
    Inside a chunk: Y_diag[l] = sum_{s<=l} (C_l . B_s) exp(Acum_l - Acum_s) X_s, X = x*dt;
    Y_off[l] = exp(Acum_l) C_l . H_prev; between chunks the state passes with decay
    exp(Acum_last) plus the chunk's own contribution."""
    def scan(cfg, x, dt, A, B, C, h):
        g = group_of_heads(cfg)
        T = x.shape[0]
        ys = []
        for c0 in range(0, T, chunk):
            xc, dtc = x[c0:c0 + chunk], dt[c0:c0 + chunk]  # (L, H, P), (L, H)
            Bc, Cc = B[c0:c0 + chunk][:, g], C[c0:c0 + chunk][:, g]  # (L, H, N)
            L = xc.shape[0]
            Acum = torch.cumsum(dtc * A, 0)  # (L, H), inclusive
            X = xc * dtc[:, :, None]  # (L, H, P)
            CB = torch.einsum("lhn,shn->hls", Cc, Bc)  # (H, L, S)
            seg = Acum.T[:, :, None] - Acum.T[:, None, :]  # (H, L, S): Acum_l - Acum_s
            mask = torch.tril(torch.ones(L, L, dtype=torch.bool))
            decay = torch.where(mask, torch.exp(torch.where(mask, seg, 0.0)), 0.0)
            Y_diag = torch.einsum("hls,shp->lhp", CB * decay, X)
            Y_off = torch.exp(Acum)[:, :, None] * torch.einsum("lhn,hpn->lhp", Cc, h)
            ys.append(Y_diag + Y_off)
            to_end = torch.exp(Acum[-1][None, :] - Acum)  # (L, H): exp(Acum_last - Acum_s)
            h = torch.exp(Acum[-1])[:, None, None] * h \
                + torch.einsum("sh,shp,shn->hpn", to_end, X, Bc)
        return torch.cat(ys), h
    return scan


def _maxrel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def self_test():
    tol = 1e-12
    cases = [
        ("G=1, D per head", make_config(16, 2, 37, d_state=12, headdim=8, chunk_size=8), 1),
        ("G=2, bias, clamp", make_config(24, 2, 61, d_state=10, d_conv=3, headdim=6, ngroups=2,
                                         use_bias=True, tie=False, chunk_size=8,
                                         time_step_limit=(0.01, 0.05)), 2),
        ("G=2, D per channel", make_config(32, 2, 48, d_state=16, headdim=16, ngroups=2,
                                           chunk_size=16, D_has_hdim=True,
                                           time_step_limit=(0.002, 0.08)), 3),
    ]
    T = 21
    worst = 0.0
    for label, cfg, seed in cases:
        p = random_params(cfg, seed)
        tokens = torch.randint(0, cfg["vocab_size"], (T,),
                               generator=torch.Generator().manual_seed(seed)).tolist()
        ref_logits, ref_states = forward(p, cfg, tokens)
        assert torch.isfinite(ref_logits).all()
        # chunked SSD over the whole sequence, chunk below / at / above T (and 1)
        for chunk in (1, 3, 8, 16, T - 1, T, T + 5, 256):
            logits, states = forward(p, cfg, tokens, scan=scan_chunked(chunk))
            e = _maxrel(logits, ref_logits)
            for (c1, h1), (c0, h0) in zip(states, ref_states):
                e = max(e, _maxrel(h1, h0), _maxrel(c1, c0))
            assert e < tol, (label, "chunked", chunk, e)
            worst = max(worst, e)
        # prefill k tokens (recurrence or chunked) then single steps == the whole recurrence
        for k in (0, 1, 3, 7, 8, 9, 16, 20):
            for scan in (scan_recurrence, scan_chunked(cfg["chunk_size"])):
                rows, states = [], None
                if k:
                    lg, states = forward(p, cfg, tokens[:k], scan=scan)
                    rows.append(lg)
                for t in range(k, T):
                    lg, states = forward(p, cfg, tokens[t:t + 1], states, scan=scan)
                    rows.append(lg)
                e = _maxrel(torch.cat(rows), ref_logits)
                for (c1, h1), (c0, h0) in zip(states, ref_states):
                    e = max(e, _maxrel(h1, h0), _maxrel(c1, c0))
                assert e < tol, (label, "prefill+step", k, e)
                worst = max(worst, e)
        # a chunked prefill that starts from a non-zero state (Y_off in the first chunk)
        _, st = forward(p, cfg, tokens[:5])
        a, _ = forward(p, cfg, tokens[5:], st)
        b, _ = forward(p, cfg, tokens[5:], st, scan=scan_chunked(4))
        e = _maxrel(b, a)
        assert e < tol, (label, "chunked from state", e)
        worst = max(worst, e)
        print(f"ok  {label}: nheads {cfg['nheads']}, ngroups {cfg['ngroups']}, "
              f"dt clamped {dt_clamp_fraction(p, cfg, tokens):.0%}")
    print(f"self-test passed: chunked SSD == recurrence, prefill+step == recurrence "
          f"(worst max-relative difference {worst:.1e}, tolerance {tol:.0e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self-test", action="store_true",
                    help="check the recurrence against an independent chunked SSD form")
    args = ap.parse_args()
    if args.self_test:
        self_test()
    else:
        ap.print_help()


if __name__ == "__main__":
    main()
