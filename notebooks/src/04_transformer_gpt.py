# %% [markdown]
# # 4 · The Transformer block and the whole GPT
#
# Our text describes the Transformer (§3.1) as built from two key components, attention
# and positional encoding, and credits it with three strengths: it can process every
# position of a sequence in parallel (并行处理序列中的每个位置), it captures long-distance
# dependencies (长距离依赖关系), and it has good expressive power (较好的表达能力); the first two we
# can show numerically. A working GPT needs a few more parts: token embeddings, an MLP,
# residual connections, layer norms and an output head. This notebook assembles them,
# with `minigpt` doing every computation:
#
# 1. the block: attention and MLP, each wrapped in a layer norm and a residual (five
#    exercises: the backwards of GELU, dropout, the split into heads, the MLP, the block);
# 2. the whole model, with the shape of every intermediate array;
# 3. how many parameters, and where they sit;
# 4. the text's two claims, shown numerically;
# 5. a gradient check of the whole model;
# 6. checking another implementation against this one, tensor by tensor.

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
%matplotlib inline

from minigpt.block import (block_backward, block_forward, mlp_backward, mlp_forward,
                           self_attention_backward, self_attention_forward, subdict)
from minigpt.config import GPTConfig
from minigpt.gradcheck import check, gradcheck, gradcheck_model   # check: a one-line PASS/FAIL
from minigpt.model import GPT, param_shapes
from minigpt.ops.attention import causal_mask, merge_heads, split_heads
from minigpt.ops.dropout import dropout_backward, dropout_forward
from minigpt.ops.embedding import embedding_forward
from minigpt.ops.gelu import gelu_backward, gelu_forward
from minigpt.ops.layernorm import layernorm_backward, layernorm_forward
from minigpt.ops.linear import linear_backward, linear_forward
from minigpt.ops.loss import cross_entropy_forward
from minigpt.ops.positional import sinusoidal_table
from minigpt.ops.softmax import softmax_forward
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)

# %% [markdown]
# ## 1. The block
#
# A GPT block (the "pre-norm" layout of GPT-2) updates a residual stream $x$ of shape
# $(B, T, C)$ twice:
#
# $$x \leftarrow x + \text{Attn}(\text{LN}_1(x)) \qquad
#   x \leftarrow x + \text{MLP}(\text{LN}_2(x))$$
#
# Attention is where positions exchange information; the MLP then works on each position
# alone: $\text{MLP}(h) = \text{GELU}(hW_{fc} + b_{fc})W_{proj} + b_{proj}$ with a hidden
# width of $4C$, and GPT-2's smooth non-linearity
#
# $$\text{GELU}(x) = \tfrac12 x\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right).$$
#
# The residual "$x + \dots$" matters for learning: $\partial(x + f(x))/\partial x = I +
# \partial f/\partial x$ ($I$ the identity), so the gradient always has a direct path
# through a block. We check GELU against its formula, its backward numerically, and that
# a block whose two output projections are zero is exactly the identity.

# %%
z = np.linspace(-4, 4, 401)
gelu, cache = gelu_forward(z)
formula = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
assert np.allclose(gelu, formula, atol=1e-15)
report = gradcheck(gelu_forward, gelu_backward, {"x": rng.standard_normal((4, 5)) * 2})
assert report.ok
dgelu = gelu_backward(np.ones_like(z), cache)
print(f"GELU matches its formula; its backward passes gradcheck "
      f"(rel error {report.max_rel_error:.0e})")

config = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=32,
                   dtype="float64")
block_params = subdict(GPT(config).params, "h.0.")       # "ln_1.w", "attn.c_attn.w", ...
x = rng.standard_normal((2, 10, config.n_embd))
silent = dict(block_params)
for name in ("attn.c_proj.w", "attn.c_proj.b", "mlp.c_proj.w", "mlp.c_proj.b"):
    silent[name] = np.zeros_like(silent[name])
assert np.array_equal(block_forward(x, silent, config.n_head)[0], x)
print("a block with zero output projections is the identity: the residual path")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(z, gelu, label="GELU(x)")
ax.plot(z, dgelu, "--", label="GELU'(x)  (from gelu_backward)")
ax.plot(z, np.maximum(z, 0), ":", color="gray", label="ReLU(x), for comparison")
ax.set_xlabel("x")
ax.set_ylabel("value")
ax.set_title("GELU: a smooth ReLU, with a small negative dip")
ax.legend()
plt.show()

# %% [markdown]
# Now write the block's backward yourself, one piece at a time, in five exercises,
# smallest first: GELU, dropout, the split into heads, the MLP, and then the block
# itself with its two residuals. Each one
# runs on its own small random inputs (its own generator, so the rest of the notebook
# sees the same random numbers with or without them) and is checked by
# `check`, which compares your backward with finite differences and prints one line.
#
# **GELU's derivative.** Write $u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)$ and
# $y = \tfrac12 x\,(1 + \tanh u)$. The product rule gives two terms, and the chain rule
# through $\tanh$ (whose derivative is $1 - \tanh^2$) gives the second its factors:
#
# $$\frac{dy}{dx} = \underbrace{\tfrac12\left(1 + \tanh u\right)}_{\text{term 1: } x\text{'s own factor}}
#   + \underbrace{\tfrac12\,x\left(1 - \tanh^2 u\right)\frac{du}{dx}}_{\text{term 2: through }\tanh},
#   \qquad \frac{du}{dx} = \sqrt{2/\pi}\,\left(1 + 3 \cdot 0.044715\,x^2\right).$$
#
# Term 1 alone is a smoothed step (the "gate"); term 2 is what makes GELU dip below
# zero for negative $x$ and overshoot 1 just right of zero, the shape of the dashed
# curve above. (`minigpt` computes the same thing through $\tfrac12(1 + \tanh u) =
# \sigma(2u)$, which keeps more digits; the value is the same.)
#
# **Exercise 1.** Write `my_gelu_backward` from the formula above. The forward caches
# only its input `x`, so the backward recomputes $u$ and $\tanh u$ from it. Do not
# forget the upstream gradient `dy`.

# %%
def gelu_with_cache(x):
    """x: any shape -> y (same shape), cache = x (the backward recomputes tanh from it)."""
    y, _ = gelu_forward(x)
    return y, x


def my_gelu_backward(dy, x):
    """dy: dL/dy, x: the cached input, both the same shape -> {"x": dL/dx}."""
    # BEGIN SOLUTION
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    t = np.tanh(u)
    du_dx = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2)
    dx = dy * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * du_dx)   # term 1 + term 2
    # END SOLUTION
    return {"x": dx}

# %% tags=["check"]
inputs = {"x": np.random.default_rng(41).standard_normal((4, 6)) * 2}
assert check("GELU backward", gelu_with_cache, my_gelu_backward, inputs)

# %% tags=["solution-only"]
x_ex = np.random.default_rng(1).standard_normal((3, 5, 8)) * 3
dy_ex = np.random.default_rng(2).standard_normal(x_ex.shape)
assert np.allclose(my_gelu_backward(dy_ex, x_ex)["x"],
                   gelu_backward(dy_ex, gelu_forward(x_ex)[1]), atol=1e-14)
print("my_gelu_backward == minigpt.ops.gelu.gelu_backward")

# %% [markdown]
# **Dropout (随机失活).** In training, each branch's output passes through dropout
# before it joins the residual stream: every entry is zeroed with probability $p$ and
# the survivors are divided by $1 - p$ ("inverted" dropout), so that the expected value
# is unchanged and evaluation can simply skip the step:
#
# $$y = x \odot m, \qquad m_i = \begin{cases} 1/(1-p) & \text{kept (probability } 1-p) \\
#   0 & \text{dropped} \end{cases}$$
#
# Once the mask is drawn, $y$ is $x$ times a constant, so $\partial L/\partial x =
# \partial L/\partial y \odot m$: dropped entries pass no gradient, kept ones pass it
# scaled by the same $1/(1-p)$. A gradient check needs the *same* mask in every
# forward (otherwise nudging $x$ also changes which entries survive, and the finite
# differences measure noise). `dropout_forward` draws its mask from a generator the
# caller passes, so a fresh generator with a fixed seed in each call gives the same
# mask every time; that is how `tests/test_ops.py` checks it, and how the forward below
# works.
#
# **Exercise 2.** Write `my_dropout_backward`. The forward caches which entries were
# kept (a boolean array `keep`, the same shape as `x`) and the drop probability `p`.

# %%
P_DROP = 0.3


def dropout_fixed_mask(x):
    """x: any shape -> y, cache (keep, p). A new generator with seed 7 on every call:
    the same mask every time, so y is a smooth (linear) function of x."""
    y, cache = dropout_forward(x, P_DROP, np.random.default_rng(7))
    return y, (cache.mask != 0, P_DROP)


def my_dropout_backward(dy, cache):
    """dy: dL/dy (shape of x), cache: (keep: bool array, p) -> {"x": dL/dx}."""
    keep, p = cache
    # BEGIN SOLUTION
    dx = dy * keep / (1 - p)          # the forward's mask: 1/(1-p) where kept, 0 elsewhere
    # END SOLUTION
    return {"x": dx}

# %% tags=["check"]
inputs = {"x": np.random.default_rng(42).standard_normal((4, 6))}
assert check("dropout backward", dropout_fixed_mask, my_dropout_backward, inputs)

# %% tags=["solution-only"]
x_ex = np.random.default_rng(3).standard_normal((2, 5, 8))
dy_ex = np.random.default_rng(4).standard_normal(x_ex.shape)
y_ex, cache_ex = dropout_fixed_mask(x_ex)
assert np.allclose(my_dropout_backward(dy_ex, cache_ex)["x"],
                   dropout_backward(dy_ex, dropout_forward(x_ex, P_DROP,
                                                           np.random.default_rng(7))[1]))
print(f"my_dropout_backward == minigpt.ops.dropout.dropout_backward "
      f"({(~cache_ex[0]).mean():.0%} of the entries dropped here, p = {P_DROP})")

# %% [markdown]
# **Splitting into heads (多头).** Attention runs $n_h$ heads side by side, each on its own
# $h_s = C / n_h$ channels. `split_heads` does it with no arithmetic at all: a reshape
# $(B, T, C) \to (B, T, n_h, h_s)$ cuts each position's channels into $n_h$ groups, and
# a transpose $\to (B, n_h, T, h_s)$ puts the head axis in front, so that one batched
# matmul computes every head's $QK^T$. `merge_heads` undoes both steps in reverse order.
#
# What is the backward of a reshape and a transpose? Neither changes a single value;
# they only move entries to new places. So each entry of $x$ ends up in exactly one
# place of the output, and its gradient is the upstream gradient found at that place:
# move `dq` back where the entries came from, which is the inverse transpose followed by
# the inverse reshape. In other words, the backward of `split_heads` is `merge_heads`
# (and vice versa); `self_attention_backward` uses exactly that.
#
# **Exercise 3.** Write `my_split_heads_backward` with `transpose` and `reshape`
# (not by calling `merge_heads`: the point is to see why it is the answer).
# Careful: a reshape of `dq` straight to $(B, T, C)$ has the right shape and the wrong
# order of entries.

# %%
N_HEAD = 3


def split_with_cache(x):
    """x: (B, T, C) -> (B, nh, T, hs), no cache (the shapes are all the backward needs)."""
    return split_heads(x, N_HEAD), None


def my_split_heads_backward(dq, cache):
    """dq: (B, nh, T, hs) = dL/d(split) -> {"x": dL/dx (B, T, C)}."""
    B, nh, T, hs = dq.shape
    # BEGIN SOLUTION
    dx = dq.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)   # (B, T, nh, hs) -> (B, T, C)
    # END SOLUTION
    return {"x": dx}

# %% tags=["check"]
inputs = {"x": np.random.default_rng(43).standard_normal((2, 5, 12))}   # C = 12, hs = 4
assert check("split_heads backward", split_with_cache, my_split_heads_backward, inputs)

# %% tags=["solution-only"]
x_ex = np.random.default_rng(5).standard_normal((2, 7, 12))
dq_ex = np.random.default_rng(6).standard_normal((2, N_HEAD, 7, 4))
assert np.array_equal(my_split_heads_backward(dq_ex, None)["x"], merge_heads(dq_ex))
assert np.array_equal(merge_heads(split_heads(x_ex, N_HEAD)), x_ex)       # the inverse
print("my_split_heads_backward == minigpt.ops.attention.merge_heads, "
      "and merge_heads(split_heads(x)) == x")

# %% [markdown]
# **The MLP's backward.** The MLP is three ops in a row, and its backward is their
# backwards in the reverse order, each handing its input gradient to the one before:
#
# | forward | backward |
# |---|---|
# | $h = xW_{fc} + b_{fc}$ | `dx, dW_fc, db_fc = linear_backward(dh, cache.up)` |
# | $a = \text{GELU}(h)$ | `dh = gelu_backward(da, cache.gelu)` |
# | $\text{out} = aW_{proj} + b_{proj}$ | `da, dW_proj, db_proj = linear_backward(dout, cache.down)` |
#
# (read the backward column from the bottom up). `mlp_forward` returns an `MLPCache`
# with one cache per op: `up`, `gelu`, `down`.
#
# **Exercise 4.** Write `my_mlp_backward` by composing `minigpt`'s
# `linear_backward` and `gelu_backward` (or your own GELU backward:
# `my_gelu_backward(da, cache.gelu.x)["x"]`). Return every gradient under the
# parameter's name.

# %%
def mlp(x, **p):
    """x: (B, T, C), p: "c_fc.w" (C, 4C), "c_fc.b" (4C,), "c_proj.w" (4C, C), "c_proj.b" (C,)."""
    return mlp_forward(x, p)


def my_mlp_backward(dout, cache):
    """dout: (B, T, C), cache: MLPCache -> {"x", "c_fc.w", "c_fc.b", "c_proj.w", "c_proj.b"}."""
    # BEGIN SOLUTION
    da, dw_proj, db_proj = linear_backward(dout, cache.down)   # out = a W_proj + b_proj
    dh = gelu_backward(da, cache.gelu)                          # a = GELU(h)
    dx, dw_fc, db_fc = linear_backward(dh, cache.up)            # h = x W_fc + b_fc
    # END SOLUTION
    return {"x": dx, "c_fc.w": dw_fc, "c_fc.b": db_fc, "c_proj.w": dw_proj, "c_proj.b": db_proj}

# %% tags=["check"]
ex_rng = np.random.default_rng(44)
inputs = {"x": ex_rng.standard_normal((2, 3, 4)), "c_fc.w": ex_rng.standard_normal((4, 16)),
          "c_fc.b": ex_rng.standard_normal(16), "c_proj.w": ex_rng.standard_normal((16, 4)),
          "c_proj.b": ex_rng.standard_normal(4)}
assert check("MLP backward", mlp, my_mlp_backward, inputs)

# %% tags=["solution-only"]
out_ex, cache_ex = mlp_forward(inputs["x"], inputs)
dout_ex = np.random.default_rng(7).standard_normal(out_ex.shape)
mine = my_mlp_backward(dout_ex, cache_ex)
dx_ex, theirs = mlp_backward(dout_ex, cache_ex)
assert np.allclose(mine.pop("x"), dx_ex)
assert mine.keys() == theirs.keys() and all(np.allclose(mine[k], theirs[k]) for k in mine)
print("my_mlp_backward == minigpt.block.mlp_backward")

# %% [markdown]
# **The block's backward: residuals add gradients.** Read `block_forward` as four lines:
#
# $$x_{mid} = x + \text{drop}(\text{Attn}(\text{LN}_1(x))) \qquad
#   x_{out} = x_{mid} + \text{drop}(\text{MLP}(\text{LN}_2(x_{mid})))$$
#
# and undo them from the last. The gradient $G$ arriving at $x_{out}$ reaches $x_{mid}$
# along two roads: straight through the "+" (the identity, so $G$ itself) and through
# dropout, the MLP and $\text{LN}_2$. Two roads into one variable: the gradients **add**,
# $\partial L/\partial x_{mid} = G + (\text{the MLP branch's gradient})$. The same
# happens again at $x$ with the attention branch. The cache is a `BlockCache` whose
# fields are the sub-layers' caches, in the forward's order: `ln1`, `attn`, `drop1`,
# `ln2`, `mlp`, `drop2`. The sub-backwards you may call:
#
# - `dropout_backward(d, cache.drop2)` returns the gradient of the dropout's input;
# - `mlp_backward(d, cache.mlp)` and `self_attention_backward(d, cache.attn)` return
#   `(dx, grads)`, with grads under local names ("c_fc.w", ...) that the block stores
#   as "mlp.c_fc.w", "attn.c_attn.w", ...;
# - `layernorm_backward(d, cache.ln2)` returns `(dx, dw, db)`, stored as "ln_2.w",
#   "ln_2.b".
#
# **Exercise 5.** Write `my_block_backward`. The check runs the block with dropout on
# (probability 0.1, fixed masks), so a forgotten dropout backward shows, and with
# random parameters, so that no zero bias or unit gain hides a mistake.

# %%
small = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.1,
                  dtype="float64")


def block_with_dropout(x, **p):
    """x: (B, T, C) -> (B, T, C), BlockCache; the same dropout masks on every call."""
    return block_forward(x, p, small.n_head, small.dropout, np.random.default_rng(5))


def my_block_backward(dout, cache):
    """dout: (B, T, C) = dL/dx_out, cache: BlockCache -> {"x": dL/dx, and one gradient
    per parameter: "ln_1.w", "ln_1.b", "attn.c_attn.w", ..., "mlp.c_proj.b"}."""
    grads = {}
    # BEGIN SOLUTION
    # x_out = x_mid + drop2(MLP(LN_2(x_mid)))
    dm = dropout_backward(dout, cache.drop2)
    dh, g = mlp_backward(dm, cache.mlp)
    grads.update({"mlp." + name: value for name, value in g.items()})
    dh, grads["ln_2.w"], grads["ln_2.b"] = layernorm_backward(dh, cache.ln2)
    dx_mid = dout + dh                             # residual 2: the two roads add
    # x_mid = x + drop1(Attn(LN_1(x)))
    da = dropout_backward(dx_mid, cache.drop1)
    dh, g = self_attention_backward(da, cache.attn)
    grads.update({"attn." + name: value for name, value in g.items()})
    dh, grads["ln_1.w"], grads["ln_1.b"] = layernorm_backward(dh, cache.ln1)
    dx = dx_mid + dh                               # residual 1
    # END SOLUTION
    return {"x": dx, **grads}

# %% tags=["check"]
ex_rng = np.random.default_rng(45)
inputs = {"x": ex_rng.standard_normal((2, 4, small.n_embd)),
          **{name: value + 0.2 * ex_rng.standard_normal(value.shape)     # off the init
             for name, value in subdict(GPT(small, seed=1).params, "h.0.").items()}}
assert check("block backward", block_with_dropout, my_block_backward, inputs)

# %% tags=["solution-only"]
out_ex, cache_ex = block_with_dropout(**inputs)
dout_ex = np.random.default_rng(8).standard_normal(out_ex.shape)
mine = my_block_backward(dout_ex, cache_ex)
dx_ex, theirs = block_backward(dout_ex, cache_ex)
assert np.allclose(mine.pop("x"), dx_ex)
assert mine.keys() == theirs.keys() and all(np.allclose(mine[k], theirs[k]) for k in mine)
print(f"my_block_backward == minigpt.block.block_backward ({len(theirs)} parameter gradients)")

# %% [markdown]
# `minigpt`'s own `block_backward` is the same composition (with a `tape` for the
# traces of section 6). Here it is on this notebook's wider block ($C = 32$, no
# dropout), with `gradcheck`'s full table: one line per tensor. It returns the
# gradient of its input and a dict of parameter gradients with the same names as the
# parameters, so a tiny wrapper lets `gradcheck` treat them all as inputs.

# %%
def block(x, **p):
    return block_forward(x, p, config.n_head)


def block_grads(dout, cache):
    dx, grads = block_backward(dout, cache)
    return {"x": dx, **grads}


report = gradcheck(block, block_grads, {"x": rng.standard_normal((2, 5, config.n_embd)),
                                        **block_params},
                   max_elements=20 if QUICK else None)
print(report)
assert report.ok

report.plot(title="One block: analytic vs numeric gradient, per tensor")
plt.show()

# %% [markdown]
# ## 2. The whole model, shape by shape
#
# A GPT maps token ids to a score for every possible next token at every position:
#
# $$x^{(0)} = W_{te}[\text{idx}] + PE \qquad x^{(l+1)} = \text{Block}_l(x^{(l)}) \qquad
#   \text{logits} = \text{LN}_f(x^{(L)})\,W_{te}^T$$
#
# The output head reuses the embedding table $W_{te}$ (*weight tying*): the same vector
# that represents a token at the input scores it at the output. Letters: $B$ batch,
# $T$ time, $C$ channels, $n_h$ heads of size $h_s = C/n_h$, $V$ vocabulary.
#
# Below we run a model step by step with `minigpt`'s functions, recording every shape,
# and check that the result equals `model.forward`, whose cache keeps what each layer
# computed under its name (`model.cache.attention(0)` is block 0's attention weights).

# %%
model = GPT(config, seed=0)
p = model.params
B, T = 2, 16
C, nh, V = config.n_embd, config.n_head, config.vocab_size
idx = rng.integers(0, V, (B, T))
targets = rng.integers(0, V, (B, T))
rows = []


def note(step, formula, array):
    rows.append((step, formula, array.shape))
    return array


tok = note("token embeddings", "W_te[idx]", embedding_forward(idx, p["wte"])[0])
pe = note("positional encoding", "PE[:T]", sinusoidal_table(T, C))
x = note("block 0 input", "tok + PE (broadcast over B)", tok + pe)
first = subdict(p, "h.0.")                                  # look inside block 0
h = note("&nbsp;&nbsp;LN₁(x)", "layer norm of each position",
         layernorm_forward(x, first["ln_1.w"], first["ln_1.b"])[0])
qkv = note("&nbsp;&nbsp;q, k, v side by side", "h W_attn + b_attn",
           linear_forward(h, first["attn.c_attn.w"], first["attn.c_attn.b"])[0])
q, k, v = (split_heads(t, nh) for t in np.split(qkv, 3, axis=-1))
note("&nbsp;&nbsp;q (and k, v) per head", "split_heads", q)
scores = note("&nbsp;&nbsp;scores, per head", "q kᵀ / √h_s",
              q @ k.swapaxes(-1, -2) / np.sqrt(C // nh))
attn = note("&nbsp;&nbsp;attention output", "Attn(LN₁(x))",
            self_attention_forward(h, subdict(first, "attn."), nh)[0])
x_mid = note("&nbsp;&nbsp;first residual", "x + Attn(LN₁(x))", x + attn)
h2 = layernorm_forward(x_mid, first["ln_2.w"], first["ln_2.b"])[0]
note("&nbsp;&nbsp;MLP hidden", "GELU(LN₂(x) W_fc + b_fc)",
     gelu_forward(linear_forward(h2, first["mlp.c_fc.w"], first["mlp.c_fc.b"])[0])[0])
mlp = note("&nbsp;&nbsp;MLP output", "MLP(LN₂(x))", mlp_forward(h2, subdict(first, "mlp."))[0])
assert np.allclose(x_mid + mlp, block_forward(x, first, nh)[0])   # the block's two lines
for l in range(config.n_layer):
    x = note(f"block {l} output", "x + Attn(...) + MLP(...)",
             block_forward(x, subdict(p, f"h.{l}."), nh)[0])
x = note("final layer norm", "LN_f(x)", layernorm_forward(x, p["ln_f.w"], p["ln_f.b"])[0])
logits = note("logits", "x W_teᵀ (tied head)", x @ p["wte"].T)
loss, _ = cross_entropy_forward(logits, targets)
note("loss", "mean −log p(target)", np.array(loss))

model_logits, model_loss = model.forward(idx, targets)
assert np.allclose(logits, model_logits, atol=1e-12) and np.isclose(loss, model_loss)
# the forward keeps what each layer computed, by name: block 0's attention weights are
# the softmax of our masked scores
scores[..., causal_mask(T, T)] = -np.inf
assert np.allclose(model.cache.attention(0), softmax_forward(scores)[0], atol=1e-12)
assert rows[-2][2] == (B, T, V) and rows[2][2] == (B, T, C)
display(Markdown(
    f"B = {B}, T = {T}, C = {C}, n_h = {nh}, h_s = {C // nh}, V = {V}\n\n"
    "| step | formula | shape |\n|---|---|---|\n"
    + "\n".join(f"| {s} | {f} | `{shape}` |" for s, f, shape in rows)))
print("the step-by-step run gives exactly model.forward's logits, loss and attention weights "
      "(model.cache.attention(0))")

# %% [markdown]
# Why this stacks well: at initialisation `minigpt` (like GPT-2) draws the two output
# projections of each block with a standard deviation scaled by $1/\sqrt{2L}$. Each
# block adds two terms to the residual stream, and shrinking them keeps the stream's
# size from growing with depth: every block starts as a small correction, close to the
# identity, and a deep stack starts close to a shallow one. We measure it in an 8-block
# model with learned positions, whose table starts as small as the token embeddings
# (std 0.02; the sinusoidal table, of size ~0.7, would hide the blocks' updates), once
# as initialised and once with the output projections at the unscaled std 0.02.

# %%
def residual_sizes(model):
    """rms of the residual stream before and after each block, and of each block's update."""
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)))
    x = embedding_forward(idx, model.params["wte"])[0] + model.params["wpe"][:T]
    stream, update = [rms(x)], []
    for l in range(model.config.n_layer):
        x_next, _ = block_forward(x, subdict(model.params, f"h.{l}."), nh)
        update.append(rms(x_next - x))
        stream.append(rms(x_next))
        x = x_next
    return np.array(stream), np.array(update)


deep_config = config.replace(n_layer=8, pos_encoding="learned")
scaled = GPT(deep_config, seed=0)
unscaled = GPT(deep_config, seed=0)
for name in unscaled.params:
    if name.endswith("c_proj.w"):
        unscaled.params[name] *= np.sqrt(2 * deep_config.n_layer)   # back to std 0.02
sizes = {"scaled by 1/√(2L)": residual_sizes(scaled), "unscaled": residual_sizes(unscaled)}
for label, (stream, update) in sizes.items():
    print(f"{label:>18}: stream", np.round(stream, 3), "\n" + " " * 20 + "update",
          np.round(update, 3))
stream, update = sizes["scaled by 1/√(2L)"]
assert update.max() < 0.2 * stream.min()        # every block is a small correction
assert stream.max() / stream.min() < 1.1        # the stream keeps its size
stream, update = sizes["unscaled"]
assert stream[-1] > 1.4 * stream[0]             # without the scale it grows with depth

fig, ax = plt.subplots(figsize=(7, 3.5))
for (label, (stream, update)), color in zip(sizes.items(), ("C0", "C1")):
    ax.plot(range(9), stream, "o-", color=color, label=f"stream x after block l, {label}")
    ax.plot(np.arange(1, 9), update, "s--", color=color, label=f"block l's update, {label}")
ax.set_xlabel("block l (0 = embeddings)")
ax.set_ylabel("root mean square")
ax.set_ylim(0, None)
ax.set_title("At initialisation: the scaled blocks leave the stream's size alone")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. How many parameters?
#
# Count them from the shapes. Per block: two layer norms ($2C$ each), the fused
# $q,k,v$ projection ($3C^2 + 3C$), the attention output ($C^2 + C$), and the MLP
# ($4C^2 + 4C$ and $4C^2 + C$):
#
# $$N = \underbrace{VC}_{W_{te}} + L\,(12C^2 + 13C) + \underbrace{2C}_{\text{LN}_f}
#   \quad \big(+\ \text{block\_size}\cdot C \text{ for learned positions}\big).$$
#
# The head adds nothing: it is $W_{te}$ again. The check compares the formula with
# `model.num_params()` on several shapes.

# %%
def count(cfg):
    V, C, L = cfg.vocab_size, cfg.n_embd, cfg.n_layer
    n = V * C + L * (12 * C * C + 13 * C) + 2 * C
    return n + (cfg.block_size * C if cfg.pos_encoding == "learned" else 0)


for cfg in [config, GPTConfig(), GPTConfig(vocab_size=1340, n_layer=6, n_embd=192, n_head=6),
            GPTConfig(pos_encoding="learned", n_layer=1)]:
    assert GPT(cfg).num_params() == count(cfg)
    assert sum(np.prod(s) for s in param_shapes(cfg).values()) == count(cfg)
print(f"the formula matches num_params(); this notebook's model has {model.num_params():,}")

cfg = GPTConfig(vocab_size=1340, block_size=128, n_layer=4, n_head=4, n_embd=128)
groups = {"embedding W_te": 0, "attention": 0, "MLP": 0, "layer norms": 0}
for name, shape in param_shapes(cfg).items():
    key = ("embedding W_te" if name == "wte" else "attention" if ".attn." in name
           else "MLP" if ".mlp." in name else "layer norms")
    groups[key] += int(np.prod(shape))
assert sum(groups.values()) == count(cfg)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].bar(list(groups), list(groups.values()))
for i, n in enumerate(groups.values()):
    axes[0].text(i, n, f"{n:,}", ha="center", va="bottom")
axes[0].set_ylabel("parameters")
axes[0].set_title(f"Where the {count(cfg):,} parameters sit (V={cfg.vocab_size}, C=128, L=4)")
widths = np.array([32, 64, 128, 256, 512, 768])
axes[1].loglog(widths, [count(cfg.replace(n_embd=int(c), n_head=4)) for c in widths], "o-",
               label="total N")
axes[1].loglog(widths, 4 * 12 * widths ** 2, "--", label="12 L C²")
axes[1].set_xticks(widths, [str(c) for c in widths])
axes[1].minorticks_off()
axes[1].set_xlabel("width C")
axes[1].set_ylabel("parameters")
axes[1].set_title("The blocks grow like C², the embedding like V·C")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# For a character-level chat model the vocabulary ($V \approx 1340$ characters, Chinese
# included) makes the embedding table a noticeable share of a small model: about a fifth
# of the chat model above, and nearly half of notebook 5's two-block, $C = 64$ model.
#
# ## 4. Two of the text's claims, measured
#
# **Every position in parallel.** One call to `model.forward` on a $(B, T)$ batch
# returns the next-token scores for all $T$ positions at once: six matrix products per
# layer (the $q, k, v$ projection, $QK^T$, the weighted sum of $V$, the output
# projection and the MLP's two), no loop over time. The causal mask is what makes this legitimate: position
# $t$'s scores are exactly those we would get by feeding the model only the first
# $t+1$ tokens. We check that equality, and time both ways.

# %%
T_long = 64 if not QUICK else 32
seq = rng.integers(0, V, (1, T_long))
start = time.perf_counter()
all_at_once, _ = model.forward(seq)                                # (1, T, V)
t_parallel = time.perf_counter() - start
start = time.perf_counter()
one_by_one = np.stack([model.forward(seq[:, : t + 1])[0][0, -1] for t in range(T_long)])
t_sequential = time.perf_counter() - start
assert np.allclose(all_at_once[0], one_by_one, atol=1e-12)
print(f"one forward over T = {T_long}: {1e3 * t_parallel:.1f} ms; "
      f"{T_long} forwards over prefixes: {1e3 * t_sequential:.1f} ms; identical scores")

fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(["T prefix forwards\n(one position each)", "one forward\n(all positions)"],
        [1e3 * t_sequential, 1e3 * t_parallel])
ax.set_xlabel("milliseconds (this machine, this run)")
ax.set_title(f"Same {T_long} predictions, computed in parallel or one by one")
plt.show()

# %% [markdown]
# **Long-distance dependencies.** How much can the prediction at the last position
# depend on the token $k$ places back? Look at the gradient of that prediction with
# respect to the input vector $x^{(0)}_{T-1-k}$. In a Transformer any position reaches
# any earlier one in a single attention step, so nothing in the architecture makes this
# gradient shrink with $k$. A recurrent network, $h_t = \tanh(Wh_{t-1} + Ux_t)$, must
# pass the signal through $k$ Jacobians $\text{diag}(1 - h_t^2)\,W$, and their product
# typically shrinks geometrically.
#
# We run the model forward with `minigpt`'s ops, put a random gradient on the last
# position's logits only, and run the ops' backwards in reverse to get
# $\partial L / \partial x^{(0)}$. The recurrent network is a toy written here only for
# contrast (random $W$ with spectral radius 0.9).

# %%
T_long = 64
seq = rng.integers(0, V, (1, T_long))
x0 = embedding_forward(seq, p["wte"])[0] + sinusoidal_table(T_long, C)   # (1, T, C)
x, caches = x0, []
for l in range(config.n_layer):
    x, c = block_forward(x, subdict(p, f"h.{l}."), nh)
    caches.append(c)
xf, c_lnf = layernorm_forward(x, p["ln_f.w"], p["ln_f.b"])
logits, c_head = linear_forward(xf, p["wte"].T)
assert np.allclose(logits, model.forward(seq)[0])


def input_gradient(position):
    """dL/dx0 (1, T, C) for a loss that reads only the logits at `position`."""
    dlogits = np.zeros_like(logits)
    dlogits[0, position] = np.random.default_rng(1).standard_normal(V)
    dx, _, _ = linear_backward(dlogits, c_head)
    dx, _, _ = layernorm_backward(dx, c_lnf)
    for l in reversed(range(config.n_layer)):
        dx, _ = block_backward(dx, caches[l])
    return dx


reach_gpt = np.linalg.norm(input_gradient(T_long - 1)[0], axis=-1)[::-1]   # by distance k
mid = 20
assert np.all(input_gradient(mid)[0, mid + 1:] == 0)    # nothing flows from the future

H = 32                                                   # the toy recurrent network
W = rng.standard_normal((H, H))
W *= 0.9 / np.abs(np.linalg.eigvals(W)).max()
U = rng.standard_normal((H, C)) / np.sqrt(C)
xs, h, hs = rng.standard_normal((T_long, C)), np.zeros(H), []
for t in range(T_long):
    h = np.tanh(W @ h + U @ xs[t])
    hs.append(h)
g, reach_rnn = rng.standard_normal(H), np.zeros(T_long)
for t in reversed(range(T_long)):                        # backprop through time
    g_pre = g * (1 - hs[t] ** 2)
    reach_rnn[t] = np.linalg.norm(U.T @ g_pre)
    g = W.T @ g_pre
reach_rnn = reach_rnn[::-1]

gpt_far = reach_gpt[1:] / reach_gpt[1]                   # distances 1 .. T-1, relative
rnn_far = reach_rnn[1:] / reach_rnn[1]
assert gpt_far.min() > 0.3                               # no decay with distance
assert rnn_far[-1] < 1e-6                                # geometric decay
print(f"gradient at distance {T_long - 1} relative to distance 1: GPT {gpt_far[-1]:.2f}, "
      f"recurrent toy {rnn_far[-1]:.1e}")

fig, ax = plt.subplots(figsize=(7.5, 4))
ks = np.arange(1, T_long)
ax.semilogy(ks, gpt_far, label="GPT (this model, at initialisation)")
ax.semilogy(ks, rnn_far, "--", label="toy recurrent network")
ax.set_xlabel("distance k between the predicting position and the input")
ax.set_ylabel(r"$|\partial L/\partial x_{T-1-k}|$, relative to k = 1")
ax.set_title("Attention reaches far back in one step; recurrence fades")
ax.legend()
plt.show()

# %% [markdown]
# Two honest caveats. At initialisation the weights to distant positions are small in
# absolute terms (attention is nearly uniform and the projections small); what the
# architecture guarantees is that distance itself costs nothing: training decides what
# to look at. And the parallelism is over positions *within* one forward pass; when a
# trained GPT writes text it still produces one token after another (notebook 6).
#
# ## 5. A gradient check of the whole model
#
# The final test of every hand-written backward together: `gradcheck_model` nudges each
# parameter of a tiny float64 GPT and compares the change of the loss with
# `model.backward()`. We turn on everything at once: dropout (with fixed masks), learned
# positions, two blocks, biases.

# %%
tiny = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8,
                     dropout=0.1, pos_encoding="learned", dtype="float64"), seed=3)
idx = rng.integers(0, 11, (2, 8))
targets = rng.integers(0, 11, (2, 8))
report = gradcheck_model(tiny, idx, targets, train=True, max_elements=10 if QUICK else None)
print(f"{sum(c.checked for c in report.checks):,} of {tiny.num_params():,} parameters perturbed")
print(report)
assert report.ok

report.plot(title="Whole GPT: every parameter's hand-derived gradient vs finite differences")
plt.show()

# %% [markdown]
# ## 6. Checking another implementation, tensor by tensor
#
# Sooner or later you will write a transformer somewhere else: in PyTorch, in C, on a
# GPU. The usual check compares the final loss, and a wrong loss says *that* something
# is wrong, not *where*. Worse, a bug can hide in the loss entirely. So minigpt offers
# a reference: every named tensor of one forward and backward of a small float64 model
# (`python -m minigpt reference --out ref.npz`, or `write_reference` below), and a
# comparer that walks the tensors in the order the data flows and names the first
# one that disagrees (`python -m minigpt compare ref.npz yours.npz`). Each tensor
# comes with its formula and its inputs, recorded while `GPT.forward` and
# `GPT.backward` run (the `tape` argument, `minigpt/tape.py`): the reference is the
# gradient-checked model itself, not a second copy of it.
#
# Here are the names of block 0's attention, as the manifest lists them:

# %%
import contextlib
import sys
import tempfile

from minigpt.reference import compare, load_reference, load_tensors, report, write_reference

work = tempfile.mkdtemp()
ref_path = os.path.join(work, "ref.npz")
write_reference(ref_path, GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2,
                                    n_embd=16, dtype="float64"), seed=0, batch=2)
ref_arrays, ref_meta = load_reference(ref_path)
print(f"{len(ref_meta['tensors'])} tensors: inputs, parameters (minigpt's and nanoGPT's "
      f"names), activations, gradients")
for e in ref_meta["tensors"]:
    if e["name"].startswith("h.0.attn.") and not e["name"].endswith((".w", ".b")):
        print(f"  {e['name']:<18} {str(tuple(e['shape'])):<14} {e['formula'][:62]}")

# %% [markdown]
# The other implementation is `examples/pytorch_trace.py`: a GPT written the way
# nanoGPT writes one, in PyTorch, that loads the reference's weights (under their
# nanoGPT names) and records its own tensors under the reference's names, with module
# hooks and a few `record()` calls. Its `--bug` option plants a classic mistake:
# attention scores divided by $d_k$ instead of $\sqrt{d_k}$. (Without PyTorch the
# cell below plants the same mistake in a copy of the reference instead, in block 0's
# scores only.)

# %%
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    import minigpt                 # examples/ sits beside the package (from any cwd)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(minigpt.__file__)),
                                    "examples"))
    import pytorch_trace
    with contextlib.chdir(work):                  # (so that it prints short file names)
        pytorch_trace.main(["ref.npz", "--out", "mine.npz"])
        pytorch_trace.main(["ref.npz", "--out", "bug.npz", "--bug"])
        theirs, theirs_bug = load_tensors("mine.npz"), load_tensors("bug.npz")
else:
    print("PyTorch is not installed (pip install torch==2.13.0 runs the real example); "
          "planting the mistake in a copy of the reference")
    theirs = dict(ref_arrays)
    theirs_bug = dict(ref_arrays)
    q, k = ref_arrays["h.0.attn.q"], ref_arrays["h.0.attn.k"]
    hs = q.shape[-1]
    scores = q @ k.swapaxes(-1, -2) / hs                       # the bug: d_k, not sqrt(d_k)
    theirs_bug["h.0.attn.scores"] = np.where(causal_mask(8, 8), -np.inf, scores)

print("the correct implementation:")
print(report(compare(ref_arrays, ref_meta, theirs), all_rows=False))
print()
print("the planted bug:")
result = compare(ref_arrays, ref_meta, theirs_bug)
print(report(result, all_rows=False))

# %% [markdown]
# The loss is the last forward tensor, and with the bug it differs from the reference's
# in the seventh digit only (a freshly initialised model's scores are tiny, so the
# scale barely matters yet): a check of the loss alone would have passed it. The walk
# through the tensors does not. Every tensor before the scores agrees, the scores are
# off by 65% of their size, and the comparer says that their inputs q and k agree, so
# the mistake is in the one line that turns q and k into scores. Everything
# downstream then differs because of it, which the picture shows: the error, tensor by
# tensor, in data-flow order.

# %%
rows = result["rows"]
errors = np.array([max(r[3], 1e-17) for r in rows])
first = next(i for i, r in enumerate(rows) if r[1] != "ok")
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.bar(range(len(rows)), errors, color=["tab:red" if r[1] != "ok" else "tab:green"
                                       for r in rows], width=1.0)
ax.set_yscale("log")
ax.axhline(1e-9, color="black", lw=0.8, ls="--")
ax.text(0, 2e-9, "tolerance (float64)", fontsize=8)
backward = next(i for i, r in enumerate(rows) if r[0].startswith("grad."))
ax.axvline(backward - 0.5, color="gray", lw=0.8)
ax.text(backward + 1, 1e-16, "backward ->", fontsize=8, color="gray")
ax.annotate(rows[first][0], (first, errors[first]), xytext=(first + 8, 3e-2),
            arrowprops=dict(arrowstyle="->"), fontsize=9)
ax.set_xlabel("tensors in data-flow order (forward, then backward)")
ax.set_ylabel("error / largest entry")
ax.set_title("Where the planted bug enters, and how far it spreads")
plt.show()

# %% [markdown]
# **Summary.** A GPT is embeddings plus positions, a stack of blocks (attention, then
# MLP, each behind a layer norm and around a residual), a final layer norm and a tied
# output head. Its size is $VC + L(12C^2 + 13C) + 2C$. It computes all positions in one
# pass, and any position reaches any earlier one in one attention step. Every gradient
# of it, written by hand, agrees with finite differences, and a trace of all of them is a
# reference that points any other implementation at its first wrong tensor. Next:
# notebook 5 trains it.

# %% [markdown]
# ## Questions to think about (思考题)
#
# Answer in words, or with a few lines of code in a new cell: every function you need
# has been used above.
#
# 1. **The first loss.** Before any training, `model.forward(idx, targets)` on random
#    tokens gives a loss close to $\log V$ ($\log 65 \approx 4.17$ for this notebook's
#    model). Why that number? What is it about the initial weights that makes it so,
#    and what would you expect if the token embeddings started with standard deviation
#    1 instead of 0.02?
# 2. **The $1/\sqrt{2L}$.** Section 2 scales the output projections of every block by
#    $1/\sqrt{2L}$ at initialisation. Where does the 2 come from, and why a square root
#    rather than $1/(2L)$? (Think of the residual stream as a sum of updates and ask how
#    the variance of a sum of independent terms grows.)
# 3. **Without the residual.** Suppose a block computed
#    $x \leftarrow \text{Attn}(\text{LN}_1(x))$ and then $x \leftarrow \text{MLP}(\text{LN}_2(x))$,
#    with no "$x + \dots$". Which line of your `my_block_backward` changes? Predict what
#    happens to $\partial L/\partial x^{(0)}$, the gradient that reaches the embeddings,
#    as the number of blocks grows, then measure it: chain `layernorm_forward`,
#    `self_attention_forward` and `mlp_forward` for each block, and their backwards in
#    reverse, as `input_gradient` does in section 4.
