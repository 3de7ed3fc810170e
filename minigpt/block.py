"""The transformer block, composed from the ops: attention, MLP, residuals, norms.

Pre-LN residual block (GPT-2):
    x = x + dropout(attn(ln_1(x)))
    x = x + dropout(mlp(ln_2(x)))

Every composite here follows the ops' convention: `*_forward(...) -> (out, cache)`
where the cache is a small record (a dataclass) of the caches of the ops it called, and
`*_backward(dout, cache)` unwinds them in reverse order (dout: the gradient of the
loss with respect to the forward's output). Parameters arrive as a mapping whose
keys are the local names ("ln_1.w", "attn.c_attn.w", ...); gradients leave as a dict
with the same keys, so the gradient tree mirrors the parameter tree.

A residual connection y = x + f(x) has the Jacobian dy/dx = I + df/dx (I the
identity): the upstream gradient flows through unchanged *and* through f, and the
two are added. That identity path is why deep stacks of blocks still train.

One definition for training and for generation. Generation passes `kv`, one layer's
store of the keys and values of the positions already run (minigpt.generate.KVCache):
the new positions' keys and values are appended to it, and their queries attend to
all of them. Nothing else in the block changes, so what trains is what generates.
"""
import functools
from dataclasses import dataclass

import numpy as np

from .ops.attention import (AttentionCache, attention_backward, attention_forward,
                            merge_heads, split_heads, split_qkv)
from .ops.dropout import dropout_backward, dropout_forward
from .ops.gelu import gelu_backward, gelu_forward
from .ops.layernorm import layernorm_backward, layernorm_forward
from .ops.linear import linear_backward, linear_forward
from .tape import keep, keep_grad, under


# ----------------------------------------------------------------------------- parameters
def subdict(d, prefix):
    """d's entries under `prefix`, the prefix removed: subdict(p, "h.0.")["ln_1.w"].

    A new dict holding the same arrays (nothing is copied): a gradient check that
    nudges subdict(p, "h.0.")["ln_1.w"] in place nudges p["h.0.ln_1.w"].
    """
    return {local: d[name] for local, name in names_under(tuple(d), prefix)}


@functools.lru_cache(maxsize=1024)
def names_under(names, prefix):
    """The (local, full) name pairs of `names` under `prefix`, in order. Worked out
    once per set of names: generation splits each block's parameters twice per
    layer per token, and finding the names again every time cost ~5% of a step."""
    n = len(prefix)
    return tuple((name[n:], name) for name in names if name.startswith(prefix))


def put_grads(grads, prefix, local):
    """Store local gradients under prefix, skipping the absent (None) bias grads."""
    for key, value in local.items():
        if value is not None:
            grads[prefix + key] = value


# ----------------------------------------------------------------------------- attention
@dataclass(slots=True)
class SelfAttentionCache:
    qkv: tuple              # linear cache of the fused projection x -> (q, k, v)  (c_attn)
    heads: AttentionCache   # heads.att: the attention weights (B, nh, Tq, Tk)
    out: tuple              # linear cache of the output projection  (c_proj)
    n_head: int


def self_attention_forward(x, p, n_head, dropout=0.0, rng=None, kv=None, tape=None):
    """Multi-head causal self-attention, all heads in one batched matmul.

    x: (B, T, C); p: "c_attn.w" (C, 3C), "c_attn.b" (3C,), "c_proj.w" (C, C),
    "c_proj.b" (C,) (biases optional) -> out (B, T, C), SelfAttentionCache.
    kv: None in training; in generation, this layer's key/value store: k and v of
    the T new positions are appended, and q attends to every stored position.
    tape (minigpt.tape, for a trace): keeps "c_attn", "q", "k", "v", "scores",
    "att", "y" and "c_proj" (the names of minigpt.reference.manifest, under "attn.").
    """
    qkv, qkv_cache = linear_forward(x, p["c_attn.w"], p.get("c_attn.b"))  # (B, T, 3C) fused
    qkv = keep(tape, "c_attn", qkv)
    q, k, v = split_qkv(qkv)                                              # 3 x (B, T, C)
    q, k, v = (split_heads(t, n_head) for t in (q, k, v))                 # (B, nh, T, hs)
    if kv is not None:
        k, v = kv.append(k, v)                             # (B, nh, Tk, hs): past + new
    q, k, v = (keep(tape, name, t) for name, t in (("q", q), ("k", k), ("v", v)))
    y, heads_cache = attention_forward(q, k, v, dropout, rng, tape)       # (B, nh, T, hs)
    y = merge_heads(y)                                                    # (B, T, C)
    y = keep(tape, "y", y)
    out, out_cache = linear_forward(y, p["c_proj.w"], p.get("c_proj.b"))  # (B, T, C)
    out = keep(tape, "c_proj", out)
    return out, SelfAttentionCache(qkv_cache, heads_cache, out_cache, n_head)


def self_attention_backward(dout, cache, tape=None):
    """dout: (B, T, C) -> dx (B, T, C), grads dict: p's keys, with "c_attn.b" and
    "c_proj.b" None when p has no biases (put_grads drops those).
    tape: keeps the gradient of each name the forward kept."""
    keep_grad(tape, "c_proj", dout)
    dy, dw_proj, db_proj = linear_backward(dout, cache.out)                   # (B, T, C)
    keep_grad(tape, "y", dy)
    dq, dk, dv = attention_backward(split_heads(dy, cache.n_head), cache.heads,
                                    tape)                                     # (B, nh, T, hs)
    for name, t in (("q", dq), ("k", dk), ("v", dv)):
        keep_grad(tape, name, t)
    dqkv = np.concatenate([merge_heads(t) for t in (dq, dk, dv)], axis=-1)      # (B, T, 3C)
    keep_grad(tape, "c_attn", dqkv)
    dx, dw_attn, db_attn = linear_backward(dqkv, cache.qkv)
    return dx, {"c_attn.w": dw_attn, "c_attn.b": db_attn,
                "c_proj.w": dw_proj, "c_proj.b": db_proj}


# ----------------------------------------------------------------------------- MLP
@dataclass(slots=True)
class MLPCache:
    up: tuple       # linear cache of C -> 4C  (c_fc)
    gelu: tuple     # GELU's cache
    down: tuple     # linear cache of 4C -> C  (c_proj)


def mlp_forward(x, p, tape=None):
    """x: (B, T, C); p: "c_fc.w" (C, 4C), "c_proj.w" (4C, C) (+ biases) -> (B, T, C), MLPCache.
    tape: keeps "c_fc" (the hidden layer), "gelu" and "c_proj" (the output)."""
    h, up_cache = linear_forward(x, p["c_fc.w"], p.get("c_fc.b"))          # (B, T, 4C)
    h = keep(tape, "c_fc", h)
    a, gelu_cache = gelu_forward(h)                                        # (B, T, 4C)
    a = keep(tape, "gelu", a)
    out, down_cache = linear_forward(a, p["c_proj.w"], p.get("c_proj.b"))  # (B, T, C)
    out = keep(tape, "c_proj", out)
    return out, MLPCache(up_cache, gelu_cache, down_cache)


def mlp_backward(dout, cache, tape=None):
    """dout: (B, T, C) -> dx (B, T, C), grads dict (bias grads None without biases)."""
    keep_grad(tape, "c_proj", dout)
    da, dw_proj, db_proj = linear_backward(dout, cache.down)               # (B, T, 4C)
    keep_grad(tape, "gelu", da)
    dh = gelu_backward(da, cache.gelu)                                     # (B, T, 4C)
    keep_grad(tape, "c_fc", dh)
    dx, dw_fc, db_fc = linear_backward(dh, cache.up)                       # (B, T, C)
    return dx, {"c_fc.w": dw_fc, "c_fc.b": db_fc, "c_proj.w": dw_proj, "c_proj.b": db_proj}


# ----------------------------------------------------------------------------- block
@dataclass(slots=True)
class BlockCache:
    ln1: tuple                  # layer norm before attention
    attn: SelfAttentionCache    # attn.heads.att: this block's attention weights
    drop1: object               # dropout on the attention branch
    ln2: tuple                  # layer norm before the MLP
    mlp: MLPCache
    drop2: object               # dropout on the MLP branch


def block_forward(x, p, n_head, dropout=0.0, rng=None, kv=None, tape=None):
    """One pre-LN transformer block. x: (B, T, C) -> (B, T, C), BlockCache.

    kv: generation's key/value store for this layer (see self_attention_forward).
    tape (minigpt.tape, for a trace): keeps "ln_1", "attn.*", "resid_attn", "ln_2",
    "mlp.*" and "resid_mlp" (the block's output).
    """
    h, ln1_cache = layernorm_forward(x, p["ln_1.w"], p.get("ln_1.b"))
    h = keep(tape, "ln_1", h)
    a, attn_cache = self_attention_forward(h, subdict(p, "attn."), n_head, dropout, rng, kv,
                                           under(tape, "attn."))
    a, drop1_cache = dropout_forward(a, dropout, rng)
    x = keep(tape, "resid_attn", x + a)                         # residual 1
    if kv is not None:     # generation: no backward will read these, so free them before
        ln1_cache = attn_cache = None   # the MLP allocates (held, they grew the heap past
        # malloc's trim threshold, and every generated token paid ~200 page faults)
    h, ln2_cache = layernorm_forward(x, p["ln_2.w"], p.get("ln_2.b"))
    h = keep(tape, "ln_2", h)
    m, mlp_cache = mlp_forward(h, subdict(p, "mlp."), under(tape, "mlp."))
    m, drop2_cache = dropout_forward(m, dropout, rng)
    x = keep(tape, "resid_mlp", x + m)                          # residual 2
    return x, BlockCache(ln1_cache, attn_cache, drop1_cache, ln2_cache, mlp_cache, drop2_cache)


def block_backward(dout, cache, tape=None):
    """dout: (B, T, C) gradient of the block's output -> dx of its input, grads dict.
    tape: keeps the gradient of each name the forward kept."""
    grads = {}
    keep_grad(tape, "resid_mlp", dout)
    # residual 2: x_out = x_mid + m  ->  dx_mid = dout + (gradient through the MLP branch)
    dm = dropout_backward(dout, cache.drop2)
    dh, g = mlp_backward(dm, cache.mlp, under(tape, "mlp."))
    put_grads(grads, "mlp.", g)
    keep_grad(tape, "ln_2", dh)
    dh, grads["ln_2.w"], db = layernorm_backward(dh, cache.ln2)
    put_grads(grads, "ln_2.", {"b": db})
    dx_mid = dout + dh
    keep_grad(tape, "resid_attn", dx_mid)
    # residual 1: x_mid = x_in + a  ->  dx_in = dx_mid + (gradient through attention)
    da = dropout_backward(dx_mid, cache.drop1)
    dh, g = self_attention_backward(da, cache.attn, under(tape, "attn."))
    put_grads(grads, "attn.", g)
    keep_grad(tape, "ln_1", dh)
    dh, grads["ln_1.w"], db = layernorm_backward(dh, cache.ln1)
    put_grads(grads, "ln_1.", {"b": db})
    dx = dx_mid + dh
    return dx, grads
