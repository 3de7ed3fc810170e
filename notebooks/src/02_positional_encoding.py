# %% [markdown]
# # 2 · Positional encoding
#
# The second component our text names (§3.3, Positional Encoding) tells the model
# *where* each token stands. The text gives two formulas, one for the even channels and
# one for the odd channels of a $d_{model}$-dimensional vector:
#
# $$PE(pos, 2i) = \sin\left(\frac{pos}{10000^{2i/d_{model}}}\right) \qquad
#   PE(pos, 2i+1) = \cos\left(\frac{pos}{10000^{2i/d_{model}}}\right)$$
#
# In this notebook we
# 1. see why attention needs positions at all;
# 2. build the table with `minigpt` and check it against the formulas;
# 3. look at its frequencies;
# 4. show that the dot product of two encodings depends only on their distance;
# 5. show that shifting by $k$ positions is a fixed linear map, a rotation;
# 6. compare with *learned* positions, and write the backward passes of the input layer
#    (exercises in the student edition).

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.config import GPTConfig
from minigpt.gradcheck import check, gradcheck   # check: a one-line PASS/FAIL
from minigpt.model import GPT
from minigpt.ops.attention import attention_forward, split_heads
from minigpt.ops.embedding import embedding_backward, embedding_forward
from minigpt.ops.linear import linear_forward
from minigpt.ops.positional import (learned_positional_backward, learned_positional_forward,
                                    sinusoidal_table)
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)


# %% [markdown]
# ## 1. One attention layer cannot tell order
#
# The output of attention at the last position is $y_T = \sum_j A_{Tj} v_j$, a weighted
# sum over the tokens up to and including $T$. A sum does not care in which order its
# terms come: shuffle the tokens before the last one and $y_T$ stays the same (up to
# round-off). "the dog bit the man ." and "the man bit the dog ." would give the same
# output at the final ".". (With the causal mask a second layer would already see some
# order, since each position's first-layer output depends on what came before it; a GPT
# does not rely on that, it states every position outright.) The fix is to add a vector
# that depends on the position to each token's embedding $e$:
#
# $$x_t = e(\text{token}_t) + PE(t).$$
#
# Below: random token embeddings, one attention layer whose $q, k, v$ are linear maps of
# $x$ (`minigpt`'s `linear_forward` and `attention_forward`), and a few shuffles of the
# first $T-1$ tokens, with and without positions.

# %%
T, C = 8, 16
emb = rng.standard_normal((T, C))                      # one embedding per token, (T, C)
w_qkv = rng.standard_normal((C, 3 * C)) / np.sqrt(C)   # a random attention layer
pe = sinusoidal_table(T, C)


def last_output(x):
    """x: (T, C) -> the attention output at the last position, (C,)."""
    qkv, _ = linear_forward(x[None], w_qkv)                       # (1, T, 3C)
    q, k, v = (split_heads(t, 1) for t in np.split(qkv, 3, axis=-1))  # (1, 1, T, C)
    y, _ = attention_forward(q, k, v)
    return y[0, 0, -1]


changes = {"without positions": [], "with positions": []}
for _ in range(5):
    order = np.r_[rng.permutation(T - 1), T - 1]        # shuffle all but the last token
    changes["without positions"].append(
        np.abs(last_output(emb[order]) - last_output(emb)).max())
    changes["with positions"].append(
        np.abs(last_output(emb[order] + pe) - last_output(emb + pe)).max())
assert max(changes["without positions"]) < 1e-12     # blind to the order
assert min(changes["with positions"]) > 1e-3         # now the order shows
print({key: np.round(value, 4) for key, value in changes.items()})

fig, ax = plt.subplots(figsize=(6.5, 3.2))
xs = np.arange(5)
ax.bar(xs - 0.2, changes["without positions"], width=0.4, label="x = e (no positions)")
ax.bar(xs + 0.2, changes["with positions"], width=0.4, label="x = e + PE")
for xi, change in zip(xs, changes["without positions"]):
    ax.text(xi - 0.2, 0.002, f"{change:.0f}", ha="center", va="bottom")
ax.set_xlabel("random shuffle of the first T−1 tokens")
ax.set_ylabel("max |change of y_T|")
ax.set_title("Shuffling the context changes the output only with positions")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. The table
#
# `sinusoidal_table(T, d_model)` returns the $(T, d_{model})$ table of the two formulas.
# We recompute a few entries straight from the formulas with Python's `math`, check the
# first row ($\sin 0 = 0$, $\cos 0 = 1$), and look at the whole table.

# %%
import math

T, d_model = 100, 64
table = sinusoidal_table(T, d_model)
for pos, i in [(0, 0), (1, 0), (7, 3), (42, 10), (99, 31)]:
    angle = pos / 10000 ** (2 * i / d_model)
    assert math.isclose(table[pos, 2 * i], math.sin(angle), abs_tol=1e-15)
    assert math.isclose(table[pos, 2 * i + 1], math.cos(angle), abs_tol=1e-15)
assert np.array_equal(table[0], np.tile([0.0, 1.0], d_model // 2))
assert np.all(np.abs(table) <= 1)
print("table shape", table.shape, "matches the formulas; row 0 =", table[0, :6], "...")

fig, ax = plt.subplots(figsize=(9, 4))
im = ax.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xlabel("channel (even = sin, odd = cos)")
ax.set_ylabel("position pos")
ax.set_title(f"Sinusoidal positional encoding, d_model = {d_model}")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ## 3. One frequency per pair of channels
#
# Channels $2i$ and $2i+1$ share the angular frequency
# $\omega_i = 10000^{-2i/d_{model}}$: the pair $(\sin \omega_i pos, \cos \omega_i pos)$
# is a point going round the unit circle. The frequencies fall geometrically, from one
# radian per position for $i = 0$ (a wavelength of $2\pi \approx 6.3$ positions) to
# wavelengths of tens of thousands of positions for the last pairs (approaching
# $10000 \cdot 2\pi$ as $2i$ approaches $d_{model}$): fast channels tell neighbours
# apart, slow ones tell the beginning of a text from its end.
#
# The check recovers each $\omega_i$ from row 1 of the table alone, as the angle of the
# point $(\cos\omega_i, \sin\omega_i)$, and compares it with the formula.

# %%
omega = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)       # (d_model/2,)
omega_from_table = np.arctan2(table[1, 0::2], table[1, 1::2])
assert np.allclose(omega_from_table, omega, rtol=1e-12)
assert np.allclose(table[:, 0::2] ** 2 + table[:, 1::2] ** 2, 1.0)   # on the unit circle
assert np.allclose(omega[1:] / omega[:-1], 10000 ** (-2 / d_model))  # geometric
print(f"wavelengths 2π/ω from {2 * np.pi / omega[0]:.1f} to {2 * np.pi / omega[-1]:.0f} positions")

fig, ax = plt.subplots(figsize=(9, 3.5))
for ch in (0, 1, 6, 14, 30):
    ax.plot(table[:, ch], label=f"channel {ch} ({'sin' if ch % 2 == 0 else 'cos'}, i = {ch // 2})")
ax.set_xlabel("position pos")
ax.set_ylabel("PE(pos, channel)")
ax.set_title("Low channels oscillate fast, high channels slowly")
ax.legend(loc="lower left", fontsize=8)
plt.show()

# %% [markdown]
# ## 4. The dot product depends only on the distance
#
# Multiply two encodings channel pair by channel pair and use
# $\sin a \sin b + \cos a \cos b = \cos(a - b)$:
#
# $$PE(p) \cdot PE(p+k) = \sum_i \left[\sin(\omega_i p)\sin(\omega_i (p+k)) +
#   \cos(\omega_i p)\cos(\omega_i(p+k))\right] = \sum_i \cos(\omega_i k).$$
#
# The position $p$ has dropped out. Whatever two positions an attention head compares,
# the similarity of their encodings is a function of how far apart they are.

# %%
ks = np.arange(-40, 41)
expected = np.cos(np.outer(ks, omega)).sum(axis=1)              # sum_i cos(omega_i k)
table = sinusoidal_table(200, d_model)
curves = {}
for p in (40, 80, 150):
    curves[p] = np.array([table[p] @ table[p + k] for k in ks])
    assert np.allclose(curves[p], expected)
assert np.isclose(expected[ks == 0][0], d_model / 2)              # |PE(p)|^2 = d_model/2
assert np.allclose(expected, expected[::-1])                      # symmetric in k
print("PE(p)·PE(p+k) is the same for p = 40, 80, 150 and equals sum_i cos(ω_i k)")

fig, ax = plt.subplots(figsize=(8, 3.5))
for p, style in zip(curves, ("-", "--", ":")):
    ax.plot(ks, curves[p], style, lw=2, label=f"PE({p}) · PE({p}+k)")
ax.set_xlabel("distance k")
ax.set_ylabel("dot product")
ax.set_title("Similarity of encodings falls with distance (with ripples), wherever you start")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. A shift is a rotation
#
# The angle-addition formulas give, for every pair of channels,
#
# $$\begin{pmatrix}\sin\omega_i(p+k)\\ \cos\omega_i(p+k)\end{pmatrix} =
# \begin{pmatrix}\cos\omega_i k & \sin\omega_i k\\ -\sin\omega_i k & \cos\omega_i k\end{pmatrix}
# \begin{pmatrix}\sin\omega_i p\\ \cos\omega_i p\end{pmatrix}.$$
#
# So $PE(p+k) = M_k\, PE(p)$ with $M_k$ block-diagonal, made of $2\times 2$ rotations,
# and $M_k$ does **not** depend on $p$. A layer that learns one matrix can therefore
# move "attention to the token $k$ places back" to any position: the original
# motivation for these formulas. We build $M_k$, check it on every position, check that
# it is a rotation ($M_k M_k^T = I$, $\det M_k = 1$), and then recover it from the table
# alone by least squares, without using the formula.

# %%
def shift_matrix(k, d_model):
    """M_k (d_model, d_model) with PE(p + k) = M_k @ PE(p)."""
    w = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
    M = np.zeros((d_model, d_model))
    for i, a in enumerate(w * k):
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]
    return M


k = 3
M = shift_matrix(k, d_model)
assert np.allclose(table[k:], table[:-k] @ M.T)                 # every position at once
assert np.allclose(M @ M.T, np.eye(d_model)) and np.isclose(np.linalg.det(M), 1.0)

# Least squares on a small table, where even the slowest pair turns by 11° within 200
# positions (with d_model = 64 it turns 1.5°, so many maps would fit almost equally well).
small = sinusoidal_table(200, 8)
M_fit, *_ = np.linalg.lstsq(small[:-k], small[k:], rcond=None)  # small[:-k] @ M_fit ≈ small[k:]
assert np.allclose(M_fit.T, shift_matrix(k, 8), atol=1e-10)
print(f"PE(p+{k}) = M_{k} PE(p) for every p; M_{k} is a rotation; least squares finds the same M")

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
im = axes[0].imshow(shift_matrix(k, 16), cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].set_title(f"M_{k} (d_model = 16): 2×2 rotations")
axes[0].set_xlabel("input channel")
axes[0].set_ylabel("output channel")
fig.colorbar(im, ax=axes[0])
pts = sinusoidal_table(30, 16)[:, 2:4]                          # pair i = 1: (sin, cos)
sc = axes[1].scatter(pts[:, 1], pts[:, 0], c=np.arange(30), cmap="viridis")
for p in range(0, 27, 3):
    axes[1].annotate("", xy=pts[p + 3, ::-1], xytext=pts[p, ::-1],
                     arrowprops=dict(arrowstyle="->", color="gray"))
axes[1].set_aspect("equal")
axes[1].set_xlabel("cos(ω₁ pos)  (channel 3)")
axes[1].set_ylabel("sin(ω₁ pos)  (channel 2)")
axes[1].set_title(f"Pair i = 1: shift by {k} = the same turn")
fig.colorbar(sc, ax=axes[1], label="position")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Sinusoidal or learned?
#
# GPT-2 does not use the text's formulas: it *learns* its positions, a parameter table
# `wpe` of shape `(block_size, C)` trained like any weight. `minigpt` offers both
# (`GPTConfig(pos_encoding="sinusoidal")`, the default, or `"learned"`). For a batch of
# token vectors `tok` of shape $(B, T, C)$ the input of the first block is
#
# $$x_{b,t} = tok_{b,t} + wpe_t, \qquad\text{so}\qquad
# \frac{\partial L}{\partial tok_{b,t}} = \frac{\partial L}{\partial x_{b,t}}, \qquad
# \frac{\partial L}{\partial wpe_t} = \sum_b \frac{\partial L}{\partial x_{b,t}}$$
#
# (row $t$ was added to every sequence of the batch, so it collects all their
# gradients); rows $t \ge T$ were not used and get zero.
#
# **Exercise 1.** Write the backward of `add_positions`. The cache holds `T` and the
# shape of `wpe`.

# %%
def add_positions(tok, wpe):
    """x = tok + wpe[:T]. tok: (B, T, C), wpe: (block_size, C) -> x (B, T, C), cache."""
    T = tok.shape[1]
    pe, _ = learned_positional_forward(T, wpe)              # (T, C), minigpt's lookup
    return tok + pe, (T, wpe.shape)


def my_add_positions_backward(dx, cache):
    """dx: (B, T, C) -> {"tok": (B, T, C), "wpe": (block_size, C)}."""
    T, wpe_shape = cache
    # BEGIN SOLUTION
    dtok = dx                                  # a sum passes its gradient through
    dwpe = np.zeros(wpe_shape)
    dwpe[:T] = dx.sum(axis=0)                  # row t served every sequence of the batch
    # END SOLUTION
    return {"tok": dtok, "wpe": dwpe}

# %% tags=["check"]
inputs = {"tok": rng.standard_normal((3, 5, 4)), "wpe": rng.standard_normal((8, 4))}
assert check("add_positions backward", add_positions, my_add_positions_backward, inputs)

# %% tags=["solution-only"]
dx = rng.standard_normal((3, 5, 4))
_, cache = learned_positional_forward(5, rng.standard_normal((8, 4)))
mine = my_add_positions_backward(dx, (5, (8, 4)))["wpe"]
assert np.allclose(mine, learned_positional_backward(dx, cache))
print("my_add_positions_backward == minigpt.ops.positional.learned_positional_backward")

# %% [markdown]
# The token vectors themselves come from the embedding table `wte` (V, C): a lookup
# $tok_{b,t} = wte_{idx_{b,t}}$. Its backward sends each position's gradient back to
# the row it read, and a token that occurs several times collects *all* of them:
#
# $$\frac{\partial L}{\partial wte_v} = \sum_{(b,t):\ idx_{b,t} = v}
#   \frac{\partial L}{\partial tok_{b,t}}.$$
#
# **Exercise 2.** Write the embedding backward. Careful: the ids below repeat. (Hint:
# look up `np.add.at`, and ask yourself what `dwte[idx] += dtok` does when `idx`
# holds the same id twice.)

# %%
def lookup(wte, idx):
    """wte: (V, C), idx: (B, T) int -> tok (B, T, C), cache (idx, V)."""
    tok, _ = embedding_forward(idx, wte)
    return tok, (idx, wte.shape[0])


def my_embedding_backward(dtok, cache):
    """dtok: (B, T, C) -> {"wte": (V, C)}."""
    idx, V = cache
    C = dtok.shape[-1]
    # BEGIN SOLUTION
    dwte = np.zeros((V, C))
    np.add.at(dwte, idx.reshape(-1), dtok.reshape(-1, C))   # accumulates repeated ids
    # END SOLUTION
    return {"wte": dwte}


idx = np.array([[1, 4, 1, 0], [4, 4, 2, 1]])                 # ids 1 and 4 repeat
wte = rng.standard_normal((6, 3))

# %% tags=["check"]
inputs = {"wte": wte, "idx": idx}
assert check("embedding backward", lookup, my_embedding_backward, inputs)

# %% tags=["solution-only"]
dtok = rng.standard_normal((2, 4, 3))
_, cache = embedding_forward(idx, wte)
assert np.allclose(my_embedding_backward(dtok, (idx, 6))["wte"], embedding_backward(dtok, cache))
print("my_embedding_backward == minigpt.ops.embedding.embedding_backward")

# %% [markdown]
# The tempting one-liner `dwte[idx] += dtok` is a classic bug: NumPy's buffered fancy
# indexing writes each repeated row once, the last write wins, and the other
# occurrences are lost. `gradcheck` catches it, but only when some id repeats, which is
# why a test must use repeated ids.

# %%
def buggy_embedding_backward(dtok, cache):
    idx, V = cache
    dwte = np.zeros((V, dtok.shape[-1]))
    dwte[idx] += dtok                              # loses repeated ids
    return {"wte": dwte}


distinct = np.array([[0, 1, 2], [3, 4, 5]])
assert gradcheck(lookup, buggy_embedding_backward, {"wte": wte, "idx": distinct}).ok
assert not gradcheck(lookup, buggy_embedding_backward, {"wte": wte, "idx": idx}).ok
print("buggy version: passes with distinct ids, FAILS with repeated ids")

counts = np.bincount(idx.ravel(), minlength=6)
dwte = embedding_backward(np.ones((2, 4, 3)), embedding_forward(idx, wte)[1])
assert np.allclose(dwte[:, 0], counts)         # with dtok = 1, row v collects count(v)
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(np.arange(6) - 0.2, counts, width=0.4, label="occurrences of the id in idx")
ax.bar(np.arange(6) + 0.2, dwte[:, 0], width=0.4, label="dwte[v, 0] when dtok = 1")
ax.set_xlabel("token id v")
ax.set_ylabel("count / gradient")
ax.set_title("Each embedding row collects one gradient per occurrence")
ax.set_ylim(0, counts.max() + 1.5)
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# Now the two kinds of position side by side, in `minigpt`'s GPT. The learned table
# costs `block_size × C` extra parameters and stops at `block_size`; the sinusoidal one
# is free and defined for every position (whether a model trained on short texts can
# *use* far positions is another matter). At initialisation the learned table is
# noise, $\mathcal{N}(0, 0.02^2)$: all its structure has to come from training, while the
# sinusoidal table has its distance structure from the start.

# %%
config = GPTConfig(vocab_size=50, block_size=64, n_layer=1, n_head=2, n_embd=32)
sin_model = GPT(config)
learned_model = GPT(config.replace(pos_encoding="learned"))
extra = learned_model.num_params() - sin_model.num_params()
assert extra == config.block_size * config.n_embd
print(f"sinusoidal: {sin_model.num_params():,} parameters, "
      f"learned: {learned_model.num_params():,} (+{extra:,} = block_size × C)")

assert sinusoidal_table(1000, 32).shape == (1000, 32)        # any length
try:
    learned_positional_forward(65, learned_model.params["wpe"])
    raise AssertionError("a learned table should refuse positions past block_size")
except ValueError as err:
    print("learned:", err)

wpe = learned_model.params["wpe"].astype(np.float64)
sin_t = sinusoidal_table(64, 32)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for ax, tab, title in [(axes[0], sin_t, "sinusoidal table"),
                       (axes[1], wpe, "learned table wpe at initialisation")]:
    lim = np.abs(tab).max()
    im = ax.imshow(tab, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xlabel("channel")
    ax.set_ylabel("position")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
for tab, label in [(sin_t, "sinusoidal"), (wpe, "learned, at init")]:
    dots = np.array([tab[20] @ tab[20 + kk] for kk in range(-20, 41)])
    axes[2].plot(range(-20, 41), dots / dots[20], label=label)
axes[2].set_xlabel("distance k")
axes[2].set_ylabel("PE(20)·PE(20+k) / |PE(20)|²")
axes[2].set_title("Distance structure: built in vs not yet learned")
axes[2].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# One more difference matters when the table is *added* to the token embeddings: its
# size. The table's entries are sines and cosines, whose root mean square is
# $1/\sqrt 2 \approx 0.71$; GPT-2 draws token embeddings with standard deviation 0.02. In
# $x_t = e(\text{token}_t) + PE(t)$ the position is then 35 times louder than the token.
# The paper that introduced the table (Vaswani et al., §3.4) multiplies the embeddings
# by $\sqrt{C}$ and draws them with standard deviation $C^{-1/2}$, so both terms have
# size ~1: `GPTConfig(scale_embeddings=True)`. Notebook 5 trains all three and shows
# what the gap costs.

# %%
rms = lambda a: float(np.sqrt(np.mean(np.square(a))))
C = config.n_embd
gpt2_tokens = sin_model.params["wte"]
paper_model = GPT(config.replace(scale_embeddings=True))
paper_tokens = paper_model.embed_scale * paper_model.params["wte"]     # sqrt(C) * wte
sizes = {"sinusoidal table PE": rms(sin_t), "tokens, GPT-2 init (std 0.02)": rms(gpt2_tokens),
         "tokens, the paper's way (sqrt(C) x std C^-1/2)": rms(paper_tokens)}
for what, size in sizes.items():
    print(f"RMS of {what:<48} {size:.3f}")
assert 0.6 < sizes["sinusoidal table PE"] < 0.8
assert rms(sin_t) / rms(gpt2_tokens) > 25                # the position drowns the token
assert 0.8 < rms(paper_tokens) < 1.2                     # scaled: the same size as PE

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
lim = np.abs(sin_t).max()
for ax, tab, title in [(axes[0], gpt2_tokens[:20], "token embeddings, GPT-2 init"),
                       (axes[1], sin_t[:20], "sinusoidal table, positions 0-19")]:
    im = ax.imshow(tab, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xlabel("channel")
    ax.set_title(title)
axes[0].set_ylabel("row")
fig.colorbar(im, ax=axes, label="value (one colour scale for both)")
plt.show()

# %% [markdown]
# **Summary.** One attention layer sees its context as a set; adding $PE(t)$ makes it a
# sequence. The text's sinusoids give every pair of channels its own clock, so the
# similarity of two positions depends only on their distance and a shift is a rotation.
# Learned positions trade those guarantees for flexibility. Added to GPT-2-sized token
# embeddings, the table is 35 times louder than the tokens; the paper's scale evens
# them out. Their backward, and the embedding's, is a sum over every use of a row.
# Next: notebook 3, layer normalisation and backpropagation.

# %% [markdown]
# ## Questions to think about (思考题)
#
# Answer in words first, then, where it says so, settle it with a few lines of code in a
# new cell. None of them is checked automatically.
#
# 1. **Two tokens swapped, no positions.** Section 1 shuffled every token *before* the
#    last one and watched only $y_T$. Now swap just the tokens at positions 2 and 5 of
#    the 8 and leave positions out ($x = e$). For each position $t = 0, \dots, 7$,
#    predict whether its output $y_t$ changes, and say why. Then test your prediction:
#    copy `last_output` into a function that returns all eight outputs (`y[0, 0]`
#    instead of `y[0, 0, -1]`) and compare `emb` with `emb[[0, 1, 5, 3, 4, 2, 6, 7]]`.
#    What changes once you add `pe`? And without the causal mask, if every token may
#    attend to every other, what would reordering all eight tokens do to the outputs?
# 2. **Loud positions, quiet tokens.** The last section measured an RMS of 0.71 for the
#    table against 0.02 for GPT-2's token embeddings. Estimate what share of
#    $|x_t|^2 = |e + PE(t)|^2$ comes from the token. The first thing each block does
#    with $x_t$ is a layer norm (notebook 3): take two *different* tokens at the *same*
#    position, pass both sums through `layernorm_forward` (import it from
#    `minigpt.ops.layernorm`), and compute the cosine similarity of the two results.
#    What does the first attention layer have to tell the tokens apart with? Is the
#    token information gone, or only quiet? Repeat with `paper_model`'s scaled tokens.
# 3. **Past `block_size`.** A model is trained with `block_size = 64`. Which of the two
#    encodings can produce a vector for position 100 at all? For the one that can,
#    would you expect the trained model to make good use of it, and why (think of what
#    its weights saw during training)? Call `sin_model.forward` on 65 token ids to see
#    what `minigpt` does, and explain how generation still writes texts longer than 64
#    characters.
