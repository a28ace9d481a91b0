"""Float64 reference for Mamba-1, written from the equations (../shared/DESIGN.md section 1).

It shares no code with the C++ library: it is what the C++ is checked against. It also holds the
small pieces the other scripts share: random checkpoints in the Hugging Face naming, a
safetensors writer and reader, and config.json writers for the HF and state-spaces layouts.

Run with Debian's PyTorch: /usr/bin/python3.
"""
import json
import math
import struct

import torch


# ---------------------------------------------------------------------------------------------
# Configuration


def make_config(d_model, n_layer, vocab_size, d_state=16, d_conv=4, expand=2, dt_rank=None,
                eps=1e-5, use_bias=False, use_conv_bias=True, tie=True, falcon=False,
                mixer_eps=1e-6):
    """The dimensions the reference needs, in the paper's names."""
    return dict(d_model=d_model, n_layer=n_layer, vocab_size=vocab_size, d_state=d_state,
                d_conv=d_conv, expand=expand, d_inner=expand * d_model,
                dt_rank=dt_rank if dt_rank is not None else math.ceil(d_model / 16), eps=eps,
                use_bias=use_bias, use_conv_bias=use_conv_bias, tie=tie, falcon=falcon,
                mixer_eps=mixer_eps)


def hf_config_json(cfg):
    """config.json as Hugging Face's MambaConfig writes it."""
    out = {
        "architectures": ["MambaForCausalLM"],
        "model_type": "falcon_mamba" if cfg["falcon"] else "mamba",
        "hidden_size": cfg["d_model"],
        "num_hidden_layers": cfg["n_layer"],
        "vocab_size": cfg["vocab_size"],
        "state_size": cfg["d_state"],
        "conv_kernel": cfg["d_conv"],
        "expand": cfg["expand"],
        "intermediate_size": cfg["d_inner"],
        "time_step_rank": cfg["dt_rank"],
        "layer_norm_epsilon": cfg["eps"],
        "use_bias": cfg["use_bias"],
        "use_conv_bias": cfg["use_conv_bias"],
        "tie_word_embeddings": cfg["tie"],
        "residual_in_fp32": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
        "torch_dtype": "float32",
    }
    if cfg["falcon"]:
        out["mixer_rms_eps"] = cfg["mixer_eps"]
    return out


def state_spaces_config_json(cfg, pad_vocab_size_multiple):
    """config.json as the original state-spaces checkpoints write it (defaults for the rest)."""
    ssm_cfg = {}
    if cfg["d_state"] != 16:
        ssm_cfg["d_state"] = cfg["d_state"]
    if cfg["d_conv"] != 4:
        ssm_cfg["d_conv"] = cfg["d_conv"]
    if cfg["expand"] != 2:
        ssm_cfg["expand"] = cfg["expand"]
    if cfg["dt_rank"] != math.ceil(cfg["d_model"] / 16):
        ssm_cfg["dt_rank"] = cfg["dt_rank"]
    return {
        "d_model": cfg["d_model"],
        "n_layer": cfg["n_layer"],
        "vocab_size": cfg["vocab_size"],
        "ssm_cfg": ssm_cfg,
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": pad_vocab_size_multiple,
        "tie_embeddings": cfg["tie"],
    }


# ---------------------------------------------------------------------------------------------
# Parameters (HF names, torch shapes)


def random_params(cfg, seed, vocab_rows=None):
    """A random checkpoint with the value ranges a trained Mamba has. float64 tensors."""
    g = torch.Generator().manual_seed(seed)
    D, E, N, K, R = cfg["d_model"], cfg["d_inner"], cfg["d_state"], cfg["d_conv"], cfg["dt_rank"]
    V = vocab_rows or cfg["vocab_size"]

    def normal(*shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    def uniform(*shape, lo, hi):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)

    p = {"backbone.embeddings.weight": normal(V, D, std=1.0)}
    for i in range(cfg["n_layer"]):
        m = f"backbone.layers.{i}.mixer."
        p[f"backbone.layers.{i}.norm.weight"] = 1 + normal(D, std=0.1)
        p[m + "in_proj.weight"] = normal(2 * E, D, std=D ** -0.5)
        p[m + "conv1d.weight"] = normal(E, 1, K, std=K ** -0.5)
        if cfg["use_conv_bias"]:
            p[m + "conv1d.bias"] = normal(E, std=0.1)
        p[m + "x_proj.weight"] = normal(R + 2 * N, E, std=E ** -0.5)
        p[m + "dt_proj.weight"] = normal(E, R, std=R ** -0.5)
        dt = torch.exp(uniform(E, lo=math.log(1e-3), hi=math.log(1e-1)))
        p[m + "dt_proj.bias"] = dt + torch.log(-torch.expm1(-dt))  # inverse softplus
        p[m + "A_log"] = torch.log(torch.arange(1, N + 1, dtype=torch.float64)).repeat(E, 1) \
            + normal(E, N, std=0.1)
        p[m + "D"] = 1 + normal(E, std=0.1)
        p[m + "out_proj.weight"] = normal(D, E, std=E ** -0.5 / cfg["n_layer"] ** 0.5)
        if cfg["use_bias"]:
            p[m + "in_proj.bias"] = normal(2 * E, std=0.1)
            p[m + "out_proj.bias"] = normal(D, std=0.1)
    p["backbone.norm_f.weight"] = 1 + normal(D, std=0.1)
    if not cfg["tie"]:
        p["lm_head.weight"] = normal(V, D, std=D ** -0.5)
    return p


def round_to(params, dtype):
    """The values a checkpoint stored as `dtype` holds, back in float64."""
    return {k: v.to(dtype).to(torch.float64) for k, v in params.items()}


# ---------------------------------------------------------------------------------------------
# The model, float64, from the equations


def softplus(v):
    return torch.where(v > 20, v, torch.log1p(torch.exp(v)))


def silu(v):
    return v * torch.sigmoid(v)


def rmsnorm(x, w, eps):
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
    return y if w is None else y * w


def mixer(p, m, cfg, u, state=None):
    """One Mamba mixer over a sequence u: (T, d_model). state = (conv (K-1, E), ssm (E, N))."""
    E, N, K, R = cfg["d_inner"], cfg["d_state"], cfg["d_conv"], cfg["dt_rank"]
    T = u.shape[0]
    xz = u @ p[m + "in_proj.weight"].T
    if m + "in_proj.bias" in p:
        xz = xz + p[m + "in_proj.bias"]
    x, z = xz[:, :E], xz[:, E:]
    conv_state = torch.zeros(K - 1, E, dtype=torch.float64) if state is None else state[0]
    xp = torch.cat([conv_state, x], 0)  # (K-1+T, E)
    w = p[m + "conv1d.weight"].reshape(E, K)
    conv = sum(xp[k:k + T] * w[:, k] for k in range(K))
    if m + "conv1d.bias" in p:
        conv = conv + p[m + "conv1d.bias"]
    new_conv_state = xp[T:]
    x = silu(conv)
    dbc = x @ p[m + "x_proj.weight"].T
    dt, B, C = dbc[:, :R], dbc[:, R:R + N], dbc[:, R + N:]
    if cfg["falcon"]:
        dt, B, C = (rmsnorm(v, None, cfg["mixer_eps"]) for v in (dt, B, C))
    dt = softplus(dt @ p[m + "dt_proj.weight"].T + p[m + "dt_proj.bias"])
    A = -torch.exp(p[m + "A_log"])
    h = torch.zeros(E, N, dtype=torch.float64) if state is None else state[1]
    ys = []
    for t in range(T):
        dA = torch.exp(dt[t][:, None] * A)
        dBx = dt[t][:, None] * B[t][None, :] * x[t][:, None]
        h = dA * h + dBx
        ys.append(h @ C[t] + p[m + "D"] * x[t])
    y = torch.stack(ys) * silu(z)
    out = y @ p[m + "out_proj.weight"].T
    if m + "out_proj.bias" in p:
        out = out + p[m + "out_proj.bias"]
    return out, (new_conv_state, h)


def forward(p, cfg, tokens, states=None):
    """Logits (T, vocab) for a token list, float64, and the recurrent state after it."""
    emb = p["backbone.embeddings.weight"]
    hidden = emb[torch.tensor(tokens, dtype=torch.long)]
    residual = torch.zeros_like(hidden)
    new_states = []
    for i in range(cfg["n_layer"]):
        residual = residual + hidden
        u = rmsnorm(residual, p[f"backbone.layers.{i}.norm.weight"], cfg["eps"])
        hidden, st = mixer(p, f"backbone.layers.{i}.mixer.", cfg, u,
                           None if states is None else states[i])
        new_states.append(st)
    residual = residual + hidden
    h = rmsnorm(residual, p["backbone.norm_f.weight"], cfg["eps"])
    head = p["lm_head.weight"] if "lm_head.weight" in p else emb
    return h @ head.T, new_states


# ---------------------------------------------------------------------------------------------
# safetensors, written and read without the safetensors package (Debian 12 does not ship it)

_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
_ST_TORCH = {v: k for k, v in _ST_DTYPES.items()}
_ST_INT16_VIEW = {torch.float16, torch.bfloat16}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in _ST_INT16_VIEW:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype=torch.float32, metadata=None):
    """tensors: name -> tensor (any float dtype, stored as `dtype`)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = tensor_bytes(t.to(dtype))
        header[name] = {"dtype": _ST_DTYPES[dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = metadata or {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> float64 tensor."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + e])
        dt = _ST_TORCH[info["dtype"]]
        if dt in _ST_INT16_VIEW:
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt)
        else:
            t = torch.frombuffer(raw, dtype=dt)
        out[name] = t.reshape(info["shape"]).to(torch.float64)
    return out
