"""GPT: token embedding + positions -> n_layer blocks -> final norm -> tied LM head.

The data flow, with the shapes at each step:
    idx                                        (B, T)    int token ids
    x = s * wte[idx] + pe[:T]                  (B, T, C) embedding.py, positional.py
    x = dropout(x)
    x = block_l(x)  for l = 0 .. n_layer-1     (B, T, C) block.py
    x = ln_f(x)                                (B, T, C) layernorm.py
    logits = x @ wte^T                         (B, T, V) the LM head shares wte
    loss = cross_entropy(logits, targets)      scalar    loss.py

Weight tying: the same matrix wte turns token ids into vectors at the bottom and
vectors back into token scores at the top, so its gradient is the sum of both uses.

The embedding scale s. GPT-2 draws wte with std 0.02 and adds it as it is (s = 1).
The sinusoidal table's entries are sin and cos, of size ~0.7, so next to tokens of
size 0.02 the position drowns the token, and a model with the text's table starts
out unable to tell characters apart. Vaswani et al. (section 3.4) scale the
embeddings instead: wte ~ N(0, 1/C) and s = sqrt(C), so s * wte[idx] has entries of
size ~1, like the table. GPTConfig(scale_embeddings=True) does that; the tied head
still reads logits = x @ wte^T, with wte's own, smaller entries.

`model.params` is a flat dict name -> array; `model.backward()` returns a dict with
exactly the same keys and shapes. Names follow nanoGPT's without "transformer." and
with ".w"/".b" for weight/bias ("h.0.attn.c_attn.w"); minigpt.interop maps them.
Linear weights are stored (in, out) so that the forward reads x @ w.

GPT.forward and GPT.backward below are the whole pass, in the order the data flows,
on the whole batch: no threads anywhere. Training spreads a batch over two cores by
running this same model on each half (minigpt/data_parallel.py, as DDP wraps a
model); generation runs this same forward with a KV cache (minigpt/generate.py).
"""
from dataclasses import dataclass

import numpy as np

from .block import block_backward, block_forward, put_grads, subdict
from .config import GPTConfig
from .ops.dropout import dropout_backward, dropout_forward
from .ops.embedding import embedding_backward, embedding_forward
from .ops.layernorm import layernorm_backward, layernorm_forward
from .ops.linear import linear_backward, linear_forward
from .ops.loss import cross_entropy_backward, cross_entropy_forward
from .ops.positional import (learned_positional_backward, learned_positional_forward,
                             sinusoidal_table)
from .tape import keep, keep_grad, under


def param_shapes(config: GPTConfig) -> dict:
    """name -> shape of every parameter, in the order the data meets them."""
    V, C, L = config.vocab_size, config.n_embd, config.n_layer
    shapes = {"wte": (V, C)}
    if config.pos_encoding == "learned":
        shapes["wpe"] = (config.block_size, C)
    for l in range(L):
        h = f"h.{l}."
        layer = {"ln_1.w": (C,), "ln_1.b": (C,),
                 "attn.c_attn.w": (C, 3 * C), "attn.c_attn.b": (3 * C,),
                 "attn.c_proj.w": (C, C), "attn.c_proj.b": (C,),
                 "ln_2.w": (C,), "ln_2.b": (C,),
                 "mlp.c_fc.w": (C, 4 * C), "mlp.c_fc.b": (4 * C,),
                 "mlp.c_proj.w": (4 * C, C), "mlp.c_proj.b": (C,)}
        for name, shape in layer.items():
            if config.bias or not name.endswith(".b"):
                shapes[h + name] = shape
    shapes["ln_f.w"] = (C,)
    if config.bias:
        shapes["ln_f.b"] = (C,)
    return shapes


def param_count(config: GPTConfig) -> int:
    """How many numbers param_shapes(config) holds, by arithmetic alone (a checkpoint's
    config is checked with it before any shape is listed)."""
    V, C, L, b = config.vocab_size, config.n_embd, config.n_layer, int(config.bias)
    per_layer = 12 * C * C + b * 11 * C + 2 * C        # c_attn, c_proj, c_fc, mlp.c_proj;
    learned = config.block_size * C if config.pos_encoding == "learned" else 0  # + ln_1, ln_2
    return V * C + learned + L * per_layer + C + b * C


def init_params(config: GPTConfig, seed: int = 0) -> dict:
    """GPT-2 initialisation: weights ~ N(0, 0.02^2) (std 0.02), biases 0, layer-norm gains 1
    (wte ~ N(0, 1/C) with scale_embeddings, the paper's).

    The two projections that write into the residual stream (attn.c_proj, mlp.c_proj)
    get std 0.02 / sqrt(2 * n_layer): each block adds two terms to the stream, and
    scaling them down keeps the stream's variance from growing with depth.
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(config.dtype)
    resid_std = 0.02 / np.sqrt(2 * config.n_layer)
    params = {}
    for name, shape in param_shapes(config).items():
        if name == "wte" and config.scale_embeddings:   # std C^-0.5: s * wte has std 1
            p = rng.normal(0.0, config.n_embd ** -0.5, shape)
        elif name.endswith(".b"):
            p = np.zeros(shape)
        elif "ln_" in name:                           # layer-norm gains
            p = np.ones(shape)
        elif name.endswith("c_proj.w"):
            p = rng.normal(0.0, resid_std, shape)
        else:
            p = rng.normal(0.0, 0.02, shape)
        params[name] = p.astype(dtype)
    return params


@dataclass(slots=True)
class GPTCache:
    """What one forward pass keeps for its backward, op by op, in the order of the data.

    blocks[l].attn.heads.att is block l's attention weights (B, nh, T, T); attention(l)
    returns them.
    """
    tok: tuple              # token embedding lookup (the ids)
    pos: tuple              # learned positions (None for the fixed sinusoidal table)
    drop: object            # dropout on the embeddings
    blocks: list            # one BlockCache per block
    ln_f: tuple             # final layer norm
    lm_head: tuple          # the tied head: a linear cache with w = wte^T
    loss: tuple             # cross-entropy (None without targets)
    logits_shape: tuple     # (B, T, V)

    def attention(self, l):
        """Block l's attention weights, (B, nh, T, T): row i is what position i looked at."""
        return self.blocks[l].attn.heads.att


def check_ids(ids, vocab_size, what="idx", block_size=None):
    """ids as an array, if it is a non-empty (B, T) array of token ids in [0, vocab_size)
    with T <= block_size (no limit if None); else a ValueError that says what is wrong."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"{what} must have shape (B, T), got an array of shape {ids.shape} "
                         f"(for one sequence of ids use {what}[None, :])")
    if ids.dtype.kind not in "iu":                    # signed or unsigned integers
        raise ValueError(f"{what} must hold integer token ids, got dtype {ids.dtype}")
    B, T = ids.shape
    if B < 1 or T < 1:
        raise ValueError(f"{what} is empty (shape {ids.shape}): need at least one token")
    if block_size is not None and T > block_size:
        raise ValueError(f"sequence length {T} exceeds block_size {block_size}: "
                         f"crop {what} to its last {block_size} tokens")
    lo, hi = ids.min(), ids.max()
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{what} holds token id {bad}, outside [0, vocab_size={vocab_size})")
    return ids


class GPT:
    """A GPT language model whose every gradient is written by hand.

    >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    >>> logits, loss = model.forward(np.array([[1, 2, 3]]), np.array([[2, 3, 4]]))
    >>> grads = model.backward()      # same keys and shapes as model.params
    >>> model.cache.attention(0).shape   # block 0's attention weights (B, nh, T, T)
    (1, 2, 3, 3)
    """

    def __init__(self, config: GPTConfig, seed: int = 0):
        if not isinstance(config, GPTConfig):
            raise ValueError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.params = init_params(config, seed)
        self.rng = np.random.default_rng(seed)      # dropout masks when none is given
        self.cache = None                           # the last forward's GPTCache
        # s in x = s * wte[idx] + pe: sqrt(C) with the paper's scale, else 1 (GPT-2)
        self.embed_scale = config.n_embd ** 0.5 if config.scale_embeddings else 1.0
        # block l's parameter names, local ("ln_1.w") and full ("h.0.ln_1.w"), listed
        # once, so that each forward hands block l its arrays without a search
        self.block_names = [[(name[len(f"h.{l}."):], name) for name in self.params
                             if name.startswith(f"h.{l}.")] for l in range(config.n_layer)]
        # the fixed sinusoidal table is computed once, in float64, then cast
        self.pe_table = sinusoidal_table(config.block_size, config.n_embd,
                                         dtype=np.dtype(config.dtype))

    # ------------------------------------------------------------------ forward
    def forward(self, idx, targets=None, *, train=False, rng=None, kv_cache=None,
                label_smoothing=0.0, tape=None):
        """idx: (B, T) ints -> logits (B, T, V), loss (float, or None without targets).

        train=True turns dropout on; its masks come from `rng` (a np.random.Generator)
        or, if None, from the model's own generator. Passing the same seeded rng twice
        gives the same masks, which is how the gradient checks test dropout.
        Keeps what backward() needs in self.cache (a GPTCache).
        label_smoothing: eps of the loss's smoothed target (minigpt/ops/loss.py); 0.0,
        the default, is the plain cross-entropy.

        kv_cache (generation only; minigpt.generate.KVCache): the keys and values of
        the kv_cache.length positions already run. idx then holds the positions after
        them; each block appends their keys and values, and only the last position's
        logits are computed, (B, 1, V): the next token needs no others. Such a pass
        keeps nothing for backward.

        tape (a minigpt.tape.Tape; minigpt.reference.trace passes one): every
        intermediate is kept on it by name ("tok_emb", "h.0.ln_1", ..., "logits").
        """
        cfg, p = self.config, self.params
        t0 = 0 if kv_cache is None else kv_cache.length           # first position of idx
        idx = check_ids(idx, cfg.vocab_size, "idx", cfg.block_size)
        T = idx.shape[1]
        if t0 + T > cfg.block_size:
            raise ValueError(f"the KV cache holds {t0} positions; {T} more exceed block_size "
                             f"{cfg.block_size}")
        if targets is not None:
            targets = check_ids(targets, cfg.vocab_size, "targets")
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {targets.shape} does not match idx shape "
                                 f"{idx.shape}")
        p_drop = cfg.dropout if train else 0.0
        if p_drop > 0.0 and rng is None:
            rng = self.rng

        # embeddings: x = s * wte[idx] + pe[t0 : t0 + T]
        tok, tok_cache = embedding_forward(idx, p["wte"])                   # (B, T, C)
        if cfg.scale_embeddings:
            tok = tok * self.embed_scale                                    # s * wte[idx]
        if cfg.pos_encoding == "learned":
            pe, pos_cache = learned_positional_forward(T, p["wpe"], t0)     # (T, C)
        else:
            pe, pos_cache = self.pe_table[t0:t0 + T], None                  # fixed, no grad
        tok, pe = keep(tape, "tok_emb", tok), keep(tape, "pos_emb", pe)
        x, drop_cache = dropout_forward(tok + pe, p_drop, rng)              # (B, T, C)
        x = keep(tape, "emb", x)

        # the blocks
        block_caches = []
        for l in range(cfg.n_layer):
            kv = None if kv_cache is None else kv_cache.layers[l]
            block_p = {local: p[name] for local, name in self.block_names[l]}  # subdict(p, "h.l.")
            x, c = block_forward(x, block_p, cfg.n_head, p_drop, rng, kv, under(tape, f"h.{l}."))
            if kv_cache is None:             # (generation keeps nothing for backward)
                block_caches.append(c)                                      # x: (B, T, C)

        # final norm and the tied head: logits = ln_f(x) @ wte^T
        if kv_cache is not None:
            x = x[:, -1:]                                                   # (B, 1, C)
        x, lnf_cache = layernorm_forward(x, p["ln_f.w"], p.get("ln_f.b"))   # (B, T, C)
        x = keep(tape, "ln_f", x)
        logits, head_cache = linear_forward(x, p["wte"].T)                  # (B, T, V)
        logits = keep(tape, "logits", logits)

        loss, loss_cache = None, None
        if targets is not None:
            loss, loss_cache = cross_entropy_forward(logits, targets, label_smoothing)
            keep(tape, "loss", loss)
        self.cache = None if kv_cache is not None else GPTCache(
            tok_cache, pos_cache, drop_cache, block_caches, lnf_cache, head_cache, loss_cache,
            logits.shape)
        return logits, loss

    # ------------------------------------------------------------------ backward
    def backward(self, dlogits=None, *, dloss=1.0, tape=None):
        """Gradients of the last forward's loss (times dloss), or of sum(logits * dlogits).

        Returns a dict with exactly the keys and shapes of self.params.
        tape: keeps the gradient of every intermediate the forward kept ("grad.logits",
        ..., "grad.tok_emb").
        """
        cache = self.cache
        if cache is None:
            raise ValueError("backward() called before forward() (or after a generation "
                             "pass with kv_cache, which keeps nothing for backward)")
        if dlogits is None:
            if cache.loss is None:
                raise ValueError("backward() needs the loss: call forward(idx, targets) "
                                 "first, or pass dlogits")
            dlogits = cross_entropy_backward(dloss, cache.loss)            # (B, T, V)
        elif np.shape(dlogits) != cache.logits_shape:
            raise ValueError(f"dlogits shape {np.shape(dlogits)} does not match logits "
                             f"shape {cache.logits_shape}")
        cfg = self.config

        grads = {}
        keep_grad(tape, "logits", dlogits)
        # LM head: logits = x @ W with W = wte^T, so wte's gradient from the head is dW^T
        dx, dwte_T, _ = linear_backward(dlogits, cache.lm_head)
        dwte = dwte_T.T.copy()                                              # (V, C)
        keep_grad(tape, "ln_f", dx)
        dx, grads["ln_f.w"], db = layernorm_backward(dx, cache.ln_f)
        put_grads(grads, "ln_f.", {"b": db})
        for l in reversed(range(cfg.n_layer)):
            dx, g = block_backward(dx, cache.blocks[l], under(tape, f"h.{l}."))
            put_grads(grads, f"h.{l}.", g)
        keep_grad(tape, "emb", dx)
        dx = dropout_backward(dx, cache.drop)                               # d(tok + pe)
        keep_grad(tape, "tok_emb", dx)
        if tape is not None:                # pe is the same for every row: sum over b
            keep_grad(tape, "pos_emb", dx.sum(axis=0))
        if cfg.pos_encoding == "learned":
            grads["wpe"] = learned_positional_backward(dx, cache.pos)
        if cfg.scale_embeddings:                    # x = s * tok  ->  dL/dtok = s * dL/dx
            dx = dx * self.embed_scale
        dwte += embedding_backward(dx, cache.tok)   # tied: sum of both uses of wte
        grads["wte"] = dwte
        return {name: grads[name] for name in self.params}                 # params' order

    __call__ = forward

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                 **kwargs):
        """Continue idx (B, T) by max_new_tokens sampled ids -> (B, T + n).

        A thin front door to minigpt.generate.generate (KV cache, sliding window,
        greedy / top_k / top_p, stop_token, rng): see that module for the details.
        """
        from .generate import generate   # lazily: generation builds on the model, not the reverse
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, **kwargs)

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())
