"""The transformer block, composed from the ops: attention, MLP, residuals, norms.

Pre-LN residual block (GPT-2):
    x = x + dropout(attn(ln_1(x)))
    x = x + dropout(mlp(ln_2(x)))

Every composite here follows the ops' convention: `*_forward(...) -> (out, cache)`
where the cache nests the caches of the ops it called, and `*_backward(dout, cache)`
unwinds them in reverse order. Parameters arrive as a dict whose keys are the
local names ("ln_1.w", "attn.c_attn.w", ...); gradients leave as a dict with the
same keys, so the gradient tree mirrors the parameter tree.

A residual connection y = x + f(x) has the Jacobian dy/dx = I + df/dx (I the
identity): the upstream gradient flows through unchanged *and* through f, and the
two are added. That identity path is why deep stacks of blocks still train.
"""
import numpy as np

from .ops.attention import (attention_backward, attention_forward, merge_heads, split_heads,
                            split_qkv)
from .ops.dropout import dropout_backward, dropout_forward
from .ops.gelu import gelu_backward, gelu_forward
from .ops.layernorm import layernorm_backward, layernorm_forward
from .ops.linear import linear_backward, linear_forward


def subdict(d, prefix):
    """The entries of d whose key starts with prefix, with the prefix removed."""
    n = len(prefix)
    return {key[n:]: value for key, value in d.items() if key.startswith(prefix)}


def put_grads(grads, prefix, local):
    """Store local gradients under prefix, skipping the absent (None) bias grads."""
    for key, value in local.items():
        if value is not None:
            grads[prefix + key] = value


# ----------------------------------------------------------------------------- attention
def self_attention_forward(x, p, n_head, dropout=0.0, rng=None):
    """Multi-head causal self-attention, all heads in one batched matmul.

    x: (B, T, C); p: "c_attn.w" (C, 3C), "c_attn.b" (3C,), "c_proj.w" (C, C),
    "c_proj.b" (C,) (biases optional) -> out (B, T, C), cache.
    """
    qkv, c_attn = linear_forward(x, p["c_attn.w"], p.get("c_attn.b"))  # (B, T, 3C) fused
    q, k, v = split_qkv(qkv)                                            # 3 x (B, T, C)
    q, k, v = (split_heads(t, n_head) for t in (q, k, v))               # (B, nh, T, hs)
    y, c_sdpa = attention_forward(q, k, v, dropout, rng)                # (B, nh, T, hs)
    y = merge_heads(y)                                                  # (B, T, C)
    out, c_proj = linear_forward(y, p["c_proj.w"], p.get("c_proj.b"))   # (B, T, C)
    return out, (c_attn, c_sdpa, c_proj, n_head)


def self_attention_backward(dout, cache):
    """dout: (B, T, C) -> dx (B, T, C), grads dict: p's keys, with "c_attn.b" and
    "c_proj.b" None when p has no biases (put_grads drops those)."""
    c_attn, c_sdpa, c_proj, n_head = cache
    dy, dw_proj, db_proj = linear_backward(dout, c_proj)               # (B, T, C)
    dq, dk, dv = attention_backward(split_heads(dy, n_head), c_sdpa)    # (B, nh, T, hs)
    dqkv = np.concatenate([merge_heads(t) for t in (dq, dk, dv)], axis=-1)  # (B, T, 3C)
    dx, dw_attn, db_attn = linear_backward(dqkv, c_attn)
    return dx, {"c_attn.w": dw_attn, "c_attn.b": db_attn,
                "c_proj.w": dw_proj, "c_proj.b": db_proj}


# ----------------------------------------------------------------------------- MLP
def mlp_forward(x, p):
    """x: (B, T, C); p: "c_fc.w" (C, 4C), "c_proj.w" (4C, C) (+ biases) -> (B, T, C)."""
    h, c_fc = linear_forward(x, p["c_fc.w"], p.get("c_fc.b"))           # (B, T, 4C)
    a, c_gelu = gelu_forward(h)                                         # (B, T, 4C)
    out, c_proj = linear_forward(a, p["c_proj.w"], p.get("c_proj.b"))   # (B, T, C)
    return out, (c_fc, c_gelu, c_proj)


def mlp_backward(dout, cache):
    c_fc, c_gelu, c_proj = cache
    da, dw_proj, db_proj = linear_backward(dout, c_proj)
    dh = gelu_backward(da, c_gelu)
    dx, dw_fc, db_fc = linear_backward(dh, c_fc)
    return dx, {"c_fc.w": dw_fc, "c_fc.b": db_fc, "c_proj.w": dw_proj, "c_proj.b": db_proj}


# ----------------------------------------------------------------------------- block
def block_forward(x, p, n_head, dropout=0.0, rng=None):
    """One pre-LN transformer block. x: (B, T, C) -> (B, T, C), cache."""
    h, c_ln1 = layernorm_forward(x, p["ln_1.w"], p.get("ln_1.b"))
    a, c_attn = self_attention_forward(h, subdict(p, "attn."), n_head, dropout, rng)
    a, c_drop1 = dropout_forward(a, dropout, rng)
    x = x + a                                                   # residual 1
    h, c_ln2 = layernorm_forward(x, p["ln_2.w"], p.get("ln_2.b"))
    m, c_mlp = mlp_forward(h, subdict(p, "mlp."))
    m, c_drop2 = dropout_forward(m, dropout, rng)
    x = x + m                                                   # residual 2
    return x, (c_ln1, c_attn, c_drop1, c_ln2, c_mlp, c_drop2)


def block_backward(dx, cache):
    """dx: (B, T, C) gradient of the block's output -> dx of its input, grads dict."""
    c_ln1, c_attn, c_drop1, c_ln2, c_mlp, c_drop2 = cache
    grads = {}
    # residual 2: x_out = x_mid + m  ->  dx_mid = dx + (gradient through the MLP branch)
    dm = dropout_backward(dx, c_drop2)
    dh, g = mlp_backward(dm, c_mlp)
    put_grads(grads, "mlp.", g)
    dh, grads["ln_2.w"], db = layernorm_backward(dh, c_ln2)
    put_grads(grads, "ln_2.", {"b": db})
    dx = dx + dh
    # residual 1: x_mid = x_in + a  ->  dx_in = dx_mid + (gradient through attention)
    da = dropout_backward(dx, c_drop1)
    dh, g = self_attention_backward(da, c_attn)
    put_grads(grads, "attn.", g)
    dh, grads["ln_1.w"], db = layernorm_backward(dh, c_ln1)
    put_grads(grads, "ln_1.", {"b": db})
    dx = dx + dh
    return dx, grads
