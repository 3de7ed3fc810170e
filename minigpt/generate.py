"""Generation: turn a trained GPT into text, one token at a time, with a KV cache.

The loop every GPT uses to write (autoregressive decoding):
    context = the prompt                                         (B, T) ids
    repeat max_new_tokens times:
        logits = model(context)[:, -1]    scores for the next token   (B, V)
        next   = pick(logits)             greedy, or sample (temperature, top-k, top-p)
        context = context + next

The KV cache. Run naively, step n recomputes the keys and values of all T + n
positions, although only the newest position is new: causal attention means an
earlier position's k and v never depend on what comes after it. So we keep them:
    prefill:  run the prompt once, storing every layer's k, v   (B, nh, T, hs) each
    step:     run ONE new position; its query attends to the stored keys plus its own
The model's own forward does it: model.forward(ids, kv_cache=cache) runs the new
positions through the same blocks as training, and each block's attention appends
their keys and values to the cache and attends to all of them (Tq new queries, Tk
keys; see the causal-mask note in ops/attention.py). So each step costs O(T)
instead of O(T^2), with one definition of every layer.

The sliding window, and why the cache is rebuilt when it slides. The model only
knows positions 0 .. block_size-1, so once the text is longer than block_size we
must drop its oldest tokens. minigpt adds ABSOLUTE positions to the token
embeddings (pe[t], sinusoidal or learned): when the window moves, every token moves
to a new position, so every stored key and value (computed from wte[id] + pe[t]) is
now wrong, and the cache must be rebuilt with a fresh prefill of the window. How far
the window moves each time is the `slide` argument:
    slide = 1   nanoGPT's window: every step sees the last block_size tokens. Past
                block_size the window moves at every step, so every step is a full
                prefill again and the cache saves nothing.
    slide = k   when the text outgrows the window, drop the oldest k tokens at once;
                the next k - 1 steps then extend the cache one position each. The
                model sees between block_size - k + 1 and block_size tokens, and the
                cache is rebuilt once every k tokens instead of at every one.
Either way generation is EXACT: the cached and uncached paths keep the same window,
so they give the same logits (tests/test_generate.py checks this to 1e-10 in
float64, far past block_size). The default, slide = block_size // 4, keeps at least
three quarters of the window in view. (Models with relative positions, e.g. RoPE or
ALiBi, can instead drop the oldest cache entry and keep the rest.)

Public API
    generate(model, idx, max_new_tokens, ...)  -> (B, T + n) ids   (also GPT.generate)
    stream(model, idx, max_new_tokens, ...)    -> yields each step's (B,) ids, for
                                                  showing a reply as it is written
    sample_next(logits, ...)                   -> (B,) ids: greedy / temperature /
                                                  top-k / top-p on one step's scores
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from .blas import one_blas_thread
from .model import check_ids
from .ops.softmax import softmax_forward


# ----------------------------------------------------------------------------- arguments
def check_sampling_args(max_new_tokens=1, temperature=1.0, top_k=None, top_p=None,
                        greedy=False):
    """Refuse settings that make no sense, with a message that says what to do instead."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) \
            or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if not isinstance(greedy, bool):
        raise ValueError(f"greedy must be True or False, got {greedy!r}")
    if not greedy:
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
                or not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a number > 0, got {temperature!r} "
                             f"(for deterministic argmax decoding use greedy=True, "
                             f"--greedy on the command line)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                              or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 (or None for no limit), got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be a number in (0, 1] (or None), got {top_p!r}")


def make_rng(rng):
    """None -> a fresh generator; an int -> a seeded one; a Generator is used as is."""
    if rng is None or isinstance(rng, numbers.Integral):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise ValueError(f"rng must be None, an int seed or a np.random.Generator, "
                     f"got {type(rng).__name__}")


def check_prompt(model, idx):
    """idx as int64 ids, if it is a non-empty (B, T) array of valid ids (T may exceed
    block_size: only the last block_size are used); else a ValueError saying why."""
    return check_ids(idx, model.config.vocab_size, "idx").astype(np.int64)


# ----------------------------------------------------------------------------- picking
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, greedy=False, rng=None):
    """One step's scores -> the next token of each row.

    logits: (B, V) -> ids (B,) int64.
        greedy       argmax (temperature, top_k, top_p are ignored)
        temperature  p = softmax(logits / temperature): < 1 sharpens, > 1 flattens
        top_k        keep only the k highest-scoring tokens (ties at the k-th are kept)
        top_p        nucleus sampling (Holtzman et al. 2019): keep the smallest set of
                     most likely tokens whose probabilities add up to >= top_p
    A token is then drawn from what is left, by inverting the cumulative distribution
    with one uniform number per row from `rng`.
    """
    check_sampling_args(1, temperature, top_k, top_p, greedy)
    logits = np.asarray(logits, dtype=np.float64)                 # (B, V)
    if greedy:
        return logits.argmax(axis=-1).astype(np.int64)
    rng = make_rng(rng)
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.sort(z, axis=-1)[:, -top_k][:, None]             # (B, 1) k-th largest
        z = np.where(z < kth, -np.inf, z)
    p, _ = softmax_forward(z)                                     # (B, V)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, axis=-1, kind="stable")            # most likely first
        p_sorted = np.take_along_axis(p, order, axis=-1)
        before = np.cumsum(p_sorted, axis=-1) - p_sorted          # mass ranked above
        keep_sorted = before < top_p                              # the top one always
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    cdf = np.cumsum(p, axis=-1)                                   # (B, V)
    u = rng.random((p.shape[0], 1)) * cdf[:, -1:]                 # (B, 1)
    ids = (cdf <= u).sum(axis=-1)                                 # first cdf > u
    return np.minimum(ids, p.shape[-1] - 1).astype(np.int64)


# ----------------------------------------------------------------------------- KV cache
class LayerKV:
    """One layer's keys and values for the positions run so far.

    k, v: (B, nh, block_size, hs), filled left to right; the first `length` positions
    are valid. Preallocated, so a step writes one column instead of copying the lot.
    """

    def __init__(self, shape, dtype):
        self.k = np.zeros(shape, dtype)
        self.v = np.zeros(shape, dtype)
        self.length = 0

    def append(self, k, v):
        """Store k, v (B, nh, Tn, hs) after the valid ones -> all keys, all values,
        each (B, nh, length + Tn, hs). block.self_attention_forward calls this."""
        t0, Tn = self.length, k.shape[2]
        self.k[:, :, t0:t0 + Tn] = k
        self.v[:, :, t0:t0 + Tn] = v
        self.length = t0 + Tn
        return self.k[:, :, :self.length], self.v[:, :, :self.length]


class KVCache:
    """Every layer's keys and values, for model.forward(ids, kv_cache=cache).

    layers[l]: block l's LayerKV. length: how many positions have run, so the next
    ids sit at positions length, length + 1, ... .
    """

    def __init__(self, config, B):
        shape = (B, config.n_head, config.block_size, config.head_size)
        self.layers = [LayerKV(shape, np.dtype(config.dtype)) for _ in range(config.n_layer)]

    @property
    def length(self):
        return self.layers[0].length


def next_logits(model, ids, cache):
    """Run ids (B, Tn), the positions after the cached ones, through the model ->
    the logits of the next token, (B, V). Fills the cache as it goes."""
    logits, _ = model.forward(ids, kv_cache=cache)                      # (B, 1, V)
    return logits[:, -1]


# ----------------------------------------------------------------------------- the loop
def check_slide(slide, block_size):
    """slide must be an int in [1, block_size]; None means the default, block_size // 4."""
    if slide is None:
        return max(1, block_size // 4)
    if isinstance(slide, bool) or not isinstance(slide, numbers.Integral) \
            or not 1 <= slide <= block_size:
        raise ValueError(f"slide must be an int in [1, block_size={block_size}] (how many "
                         f"tokens the window drops when the text outgrows it), got {slide!r}")
    return int(slide)


def blas_for(B):
    """The BLAS setting for generating B sequences: one thread when B == 1 (one
    sequence is too small to share between cores, see blas.one_blas_thread),
    else BLAS's own. A context manager."""
    return one_blas_thread() if B == 1 else contextlib.nullcontext()


def stream(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
           greedy=False, rng=None, use_cache=True, with_logits=False, slide=None):
    """Yield each new token as it is chosen: (B,) ids, or (ids, logits (B, V)).

    idx: (B, T) prompt ids; T may exceed block_size (only the last block_size count).
    slide: how many of the oldest tokens to drop when the text outgrows block_size
    (see the module docstring; None = block_size // 4, 1 = nanoGPT's window).
    use_cache=False recomputes model.forward over the window at every step: the
    slow, obviously-correct reference the cached path is tested against.
    """
    check_sampling_args(max_new_tokens, temperature, top_k, top_p, greedy)
    idx = check_prompt(model, idx)
    rng = None if greedy else make_rng(rng)
    bs = model.config.block_size
    slide = check_slide(slide, bs)
    B = idx.shape[0]
    context = idx[:, -bs:]                                              # (B, <= bs)

    def window_logits():
        """Logits of the next token given the whole window, from scratch."""
        nonlocal cache
        if use_cache:
            cache = KVCache(model.config, B)
            return next_logits(model, context, cache)                   # prefill
        logits, _ = model.forward(context)
        return logits[:, -1]

    cache = None
    with blas_for(B):
        logits = window_logits()
    for step in range(max_new_tokens):
        ids = sample_next(logits, temperature, top_k, top_p, greedy, rng)   # (B,)
        yield (ids, logits) if with_logits else ids
        if step == max_new_tokens - 1:
            break                                    # no one will read the next logits
        context = np.concatenate([context, ids[:, None]], axis=1)      # (B, T + 1)
        with blas_for(B):
            if context.shape[1] <= bs:               # still fits: the window stays put
                if use_cache:
                    logits = next_logits(model, ids[:, None], cache)    # one position
                else:
                    logits = window_logits()
            else:                                    # outgrown: drop the oldest `slide`
                context = context[:, slide:]         # (B, bs + 1 - slide)
                logits = window_logits()             # positions shifted: rebuild


def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
             greedy=False, rng=None, stop_token=None, use_cache=True, slide=None):
    """Continue idx (B, T) by up to max_new_tokens tokens -> (B, T + n) int64 ids.

    stop_token: an id (e.g. the tokenizer's end-of-turn) after which a row is done;
    generation ends early once every row has produced it. Rows that finish first
    are padded with stop_token, so each row reads "... reply <stop> <stop> ...".
    rng: a np.random.Generator, an int seed, or None (fresh randomness); unused
    when greedy.
    slide: how the window moves past block_size (see stream and the module docstring).
    """
    idx = check_prompt(model, idx)
    if stop_token is not None and not (isinstance(stop_token, numbers.Integral)
                                       and 0 <= stop_token < model.config.vocab_size):
        raise ValueError(f"stop_token must be a token id in [0, {model.config.vocab_size}), "
                         f"got {stop_token!r}")
    out = [idx]
    done = np.zeros(idx.shape[0], dtype=bool)
    with blas_for(idx.shape[0]):      # once for the loop: stream's per-step ones are free
        for ids in stream(model, idx, max_new_tokens, temperature, top_k, top_p, greedy,
                          rng, use_cache, slide=slide):
            if stop_token is not None:
                ids = np.where(done, stop_token, ids)
                done |= ids == stop_token
            out.append(ids[:, None])
            if done.all():
                break
    return np.concatenate(out, axis=1)
