"""GPT: token embedding + positions -> n_layer blocks -> final norm -> tied LM head.

The data flow, with the shapes at each step:
    idx                                        (B, T)    int token ids
    x = wte[idx] + pe[:T]                      (B, T, C) embedding.py, positional.py
    x = dropout(x)
    x = block_l(x)  for l = 0 .. n_layer-1     (B, T, C) block.py
    x = ln_f(x)                                (B, T, C) layernorm.py
    logits = x @ wte^T                         (B, T, V) the LM head shares wte
    loss = cross_entropy(logits, targets)      scalar    loss.py

Weight tying: the same matrix wte turns token ids into vectors at the bottom and
vectors back into token scores at the top, so its gradient is the sum of both uses.

`model.params` is a flat dict name -> array; `model.backward()` returns a dict with
exactly the same keys and shapes. Names follow nanoGPT's without "transformer." and
with ".w"/".b" for weight/bias ("h.0.attn.c_attn.w"); minigpt.interop maps them.
Linear weights are stored (in, out) so that the forward reads x @ w.
"""
import numpy as np

from .block import block_backward, block_forward, subdict
from .config import GPTConfig
from .ops.dropout import dropout_backward, dropout_forward
from .ops.embedding import embedding_backward, embedding_forward
from .ops.layernorm import layernorm_backward, layernorm_forward
from .ops.linear import linear_backward, linear_forward
from .ops.loss import cross_entropy_backward, cross_entropy_forward
from .ops.positional import (learned_positional_backward, learned_positional_forward,
                             sinusoidal_table)
from .parallel import run_halves, split_batch


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


def init_params(config: GPTConfig, seed: int = 0) -> dict:
    """GPT-2 initialisation: weights ~ N(0, 0.02^2) (std 0.02), biases 0, layer-norm gains 1.

    The two projections that write into the residual stream (attn.c_proj, mlp.c_proj)
    get std 0.02 / sqrt(2 * n_layer): each block adds two terms to the stream, and
    scaling them down keeps the stream's variance from growing with depth.
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(config.dtype)
    resid_std = 0.02 / np.sqrt(2 * config.n_layer)
    params = {}
    for name, shape in param_shapes(config).items():
        if name.endswith(".b"):
            p = np.zeros(shape)
        elif "ln_" in name:                           # layer-norm gains
            p = np.ones(shape)
        elif name.endswith("c_proj.w"):
            p = rng.normal(0.0, resid_std, shape)
        else:
            p = rng.normal(0.0, 0.02, shape)
        params[name] = p.astype(dtype)
    return params


class GPT:
    """A GPT language model whose every gradient is written by hand.

    >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    >>> logits, loss = model.forward(np.array([[1, 2, 3]]), np.array([[2, 3, 4]]))
    >>> grads = model.backward()      # same keys and shapes as model.params
    """

    def __init__(self, config: GPTConfig, seed: int = 0):
        if not isinstance(config, GPTConfig):
            raise ValueError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.params = init_params(config, seed)
        self.rng = np.random.default_rng(seed)      # dropout masks when none is given
        self._cache = None
        # the fixed sinusoidal table is computed once, in float64, then cast
        self.pe_table = sinusoidal_table(config.block_size, config.n_embd,
                                         dtype=np.dtype(config.dtype))

    # ------------------------------------------------------------------ checks
    def _check_ids(self, ids, what):
        """Refuse anything that is not a (B, T) array of valid token ids."""
        cfg = self.config
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"{what} must have shape (B, T), got an array of shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{what} must hold integer token ids, got dtype {ids.dtype}")
        B, T = ids.shape
        if B < 1 or T < 1:
            raise ValueError(f"{what} is empty (shape {ids.shape}): need at least one token")
        if T > cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {cfg.block_size}: "
                             f"crop {what} to its last {cfg.block_size} tokens")
        lo, hi = ids.min(), ids.max()
        if lo < 0 or hi >= cfg.vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{what} holds token id {bad}, outside [0, vocab_size="
                             f"{cfg.vocab_size})")
        return ids

    # ------------------------------------------------------------------ forward
    def forward(self, idx, targets=None, *, train=False, rng=None):
        """idx: (B, T) ints -> logits (B, T, V), loss (float, or None without targets).

        train=True turns dropout on; its masks come from `rng` (a np.random.Generator)
        or, if None, from the model's own generator. Passing the same seeded rng twice
        gives the same masks, which is how the gradient checks test dropout.
        Caches what backward() needs; backward() must follow the forward it belongs to.

        A batch of B >= 2 runs as two half-batches on two threads (minigpt/parallel.py);
        the loss is the halves' losses weighted by B_h / B: the mean over the batch.
        """
        cfg = self.config
        idx = self._check_ids(idx, "idx")
        if targets is not None:
            targets = self._check_ids(targets, "targets")
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {targets.shape} does not match idx shape "
                                 f"{idx.shape}")
        B = idx.shape[0]
        p_drop = cfg.dropout if train else 0.0
        if p_drop > 0.0 and rng is None:
            rng = self.rng

        halves = split_batch(B)
        rngs = [rng] * len(halves)                  # unused when dropout is off
        if p_drop > 0.0 and len(halves) == 2:
            # one generator per half, seeded from rng: the masks cannot depend on which
            # thread happens to draw first
            rngs = [np.random.default_rng(seed) for seed in rng.integers(2**63, size=2)]
        parts = run_halves(self._forward_half,
                           [(idx[h], None if targets is None else targets[h], p_drop, r)
                            for h, r in zip(halves, rngs)])
        logits = np.concatenate([logits for logits, _, _ in parts])      # (B, T, V)
        loss = None
        if targets is not None:
            loss = sum((h.stop - h.start) / B * part_loss
                       for h, (_, part_loss, _) in zip(halves, parts))
        self._cache = (halves, [cache for _, _, cache in parts], logits.shape)
        return logits, loss

    def _forward_half(self, idx, targets, p_drop, rng):
        """The forward pass proper, on (part of) a batch -> logits, loss, cache."""
        cfg, p = self.config, self.params
        T = idx.shape[1]
        tok, c_tok = embedding_forward(idx, p["wte"])                  # (B, T, C)
        if cfg.pos_encoding == "learned":
            pe, c_pos = learned_positional_forward(T, p["wpe"])        # (T, C)
        else:
            pe, c_pos = self.pe_table[:T], None                        # fixed, no grad
        x, c_drop = dropout_forward(tok + pe, p_drop, rng)             # (B, T, C)

        c_blocks = []
        for l in range(cfg.n_layer):
            x, c = block_forward(x, subdict(p, f"h.{l}."), cfg.n_head, p_drop, rng)
            c_blocks.append(c)

        x, c_lnf = layernorm_forward(x, p["ln_f.w"], p.get("ln_f.b"))  # (B, T, C)
        logits, c_head = linear_forward(x, p["wte"].T)                 # (B, T, V) tied

        loss, c_loss = None, None
        if targets is not None:
            loss, c_loss = cross_entropy_forward(logits, targets)
        return logits, loss, (c_tok, c_pos, c_drop, c_blocks, c_lnf, c_head, c_loss)

    # ------------------------------------------------------------------ backward
    def backward(self, dlogits=None):
        """Gradients of the last forward's loss (or of sum(logits * dlogits)).

        Returns a dict with exactly the keys and shapes of self.params.
        """
        if self._cache is None:
            raise ValueError("backward() called before forward()")
        halves, caches, logits_shape = self._cache
        if dlogits is None:
            if caches[0][-1] is None:
                raise ValueError("backward() needs the loss: call forward(idx, targets) "
                                 "first, or pass dlogits")
            parts_d = [None] * len(halves)
        elif np.shape(dlogits) != logits_shape:
            raise ValueError(f"dlogits shape {np.shape(dlogits)} does not match logits "
                             f"shape {logits_shape}")
        else:
            parts_d = [dlogits[h] for h in halves]
        B = logits_shape[0]
        parts = run_halves(self._backward_half,
                           [(cache, d, (h.stop - h.start) / B)
                            for cache, d, h in zip(caches, parts_d, halves)])
        grads = parts[0]
        if len(parts) == 2:               # the all-reduce: add the halves' gradients
            grads = {name: g + parts[1][name] for name, g in grads.items()}
        return {name: grads[name] for name in self.params}             # params' order

    def _backward_half(self, cache, dlogits, weight):
        """The backward pass proper, for one forward_half -> grads dict.

        Without dlogits it starts at the loss, whose share of the batch's mean is
        weight = B_h / B (1.0 for a whole batch).
        """
        c_tok, c_pos, c_drop, c_blocks, c_lnf, c_head, c_loss = cache
        cfg = self.config
        if dlogits is None:
            dlogits = cross_entropy_backward(weight, c_loss)           # (B, T, V)

        grads = {}
        # LM head: logits = x @ W with W = wte^T, so wte's gradient from the head is dW^T
        dx, dwte_T, _ = linear_backward(dlogits, c_head)
        dwte = dwte_T.T.copy()                                          # (V, C)
        dx, grads["ln_f.w"], db = layernorm_backward(dx, c_lnf)
        if db is not None:
            grads["ln_f.b"] = db
        for l in reversed(range(cfg.n_layer)):
            dx, g = block_backward(dx, c_blocks[l])
            for key, value in g.items():
                grads[f"h.{l}.{key}"] = value
        dx = dropout_backward(dx, c_drop)                               # d(tok + pe)
        if cfg.pos_encoding == "learned":
            grads["wpe"] = learned_positional_backward(dx, c_pos)
        dwte += embedding_backward(dx, c_tok)       # tied: sum of both uses of wte
        grads["wte"] = dwte
        return grads

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
