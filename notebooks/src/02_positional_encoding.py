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
# %% [markdown] lang="zh"
# # 2 · 位置编码
#
# 教材第 3.1 节说，Transformer 架构由“Attention Mechanism和Positional Encoding等两个关键组件构成”。第 3.3 节讲的就是其中第二个组件——位置编码（positional encoding）：它“用于捕捉序列中的位置信息，使模型能够理解序列中的顺序关系”，也就是告诉模型每个词元（token）*在什么位置*。
#
# 教材给出两个公式，一个用于 $d_{model}$ 维向量的偶数通道（channel），一个用于奇数通道：
#
# $$PE(pos, 2i) = \sin\left(\frac{pos}{10000^{2i/d_{model}}}\right) \qquad
#   PE(pos, 2i+1) = \cos\left(\frac{pos}{10000^{2i/d_{model}}}\right)$$
#
# 教材接着解释：“其中，$pos$表示位置，$d_{model}$表示模型的输入维度。”这个“模型的输入维度”就是通常所说的模型维度（model dimension），即每个位置上向量的长度，在 `minigpt` 中是 `n_embd`，记作 $C$。
#
# 本笔记本分以下几步：
# 1. 看看注意力（attention）为什么需要位置信息；
# 2. 用 `minigpt` 构造位置编码表，并与公式逐项核对；
# 3. 观察它的频率；
# 4. 证明两个位置编码的点积（dot product）只取决于两个位置之间的距离；
# 5. 证明平移 $k$ 个位置是一个固定的线性映射，也就是一个旋转；
# 6. 与*可学习*的位置编码比较，并写出输入层的反向传播（backpropagation），学生版中这部分是练习。

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
# %% [markdown] lang="zh"
# ## 1. 单层注意力分辨不出顺序
#
# 注意力在最后一个位置的输出是 $y_T = \sum_j A_{Tj} v_j$，即对位置 $T$ 及其之前所有词元的加权和，其中 $A_{Tj}$ 是注意力权重（attention weights，教材第 3.2 节称之为“关注度”）。求和与各项的先后次序无关：把最后一个词元之前的词元任意打乱，$y_T$ 都不变，至多相差一点舍入误差（round-off error）。于是“狗咬人。”和“人咬狗。”在最后那个“。”处会得到完全相同的输出。
#
# 顺便一提：有了因果掩码（causal mask），第二层其实已经能看出一些顺序，因为每个位置的第一层输出取决于它前面有哪些词元；但 GPT 并不依赖这一点，而是把每个位置都明明白白地告诉模型。
#
# 解决办法是给每个词元的嵌入向量 $e$（即词元嵌入，token embedding）加上一个取决于位置的向量：
#
# $$x_t = e(\text{词元}_t) + PE(t).$$
#
# 下面的实验用随机生成的词元嵌入和一个随机的注意力层，层中的 $q, k, v$ 都是 $x$ 的线性映射（用 `minigpt` 的 `linear_forward` 和 `attention_forward` 计算）。我们把前 $T-1$ 个词元打乱几次，分别看不加位置和加上位置时输出有没有变化。

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
shown_as = {"without positions": tr("without positions", "不加位置"),
            "with positions": tr("with positions", "加上位置")}
print({shown_as[key]: np.round(value, 4) for key, value in changes.items()})

fig, ax = plt.subplots(figsize=(6.5, 3.2))
xs = np.arange(5)
ax.bar(xs - 0.2, changes["without positions"], width=0.4,
       label=tr("x = e (no positions)", "x = e（不加位置）"))
ax.bar(xs + 0.2, changes["with positions"], width=0.4, label="x = e + PE")
for xi, change in zip(xs, changes["without positions"]):
    ax.text(xi - 0.2, 0.002, f"{change:.0f}", ha="center", va="bottom")
ax.set_xlabel(tr("random shuffle of the first T−1 tokens", "前 T−1 个词元的随机打乱（第几次）"))
ax.set_ylabel(tr("max |change of y_T|", "max |y_T 的变化|"))
ax.set_title(tr("Shuffling the context changes the output only with positions",
                "只有加上位置，打乱上下文才会改变输出"))
ax.legend()
plt.show()

# %% [markdown]
# ## 2. The table
#
# `sinusoidal_table(T, d_model)` returns the $(T, d_{model})$ table of the two formulas.
# We recompute a few entries straight from the formulas with Python's `math`, check the
# first row ($\sin 0 = 0$, $\cos 0 = 1$), and look at the whole table.
# %% [markdown] lang="zh"
# ## 2. 位置编码表
#
# `sinusoidal_table(T, d_model)` 按上面的两个公式返回一张 $(T, d_{model})$ 的表：第 $pos$ 行是位置 $pos$ 的编码。教材说位置编码“使用正弦函数或余弦函数来表示位置信息”，这张表两者都用：偶数列是正弦，奇数列是余弦。这种位置编码称为正弦位置编码（sinusoidal positional encoding）。
#
# 下面先用 Python 的 `math` 直接按公式重算其中几个元素，再检查第一行（$\sin 0 = 0$，$\cos 0 = 1$），最后画出整张表。

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
print(tr("table shape", "表的形状"), table.shape,
      tr("matches the formulas; row 0 =", "与公式一致；第 0 行 ="), table[0, :6], "...")

fig, ax = plt.subplots(figsize=(9, 4))
im = ax.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xlabel(tr("channel (even = sin, odd = cos)", "通道（偶数 = sin，奇数 = cos）"))
ax.set_ylabel(tr("position pos", "位置 pos"))
ax.set_title(tr(f"Sinusoidal positional encoding, d_model = {d_model}",
                f"正弦位置编码，d_model = {d_model}"))
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
# %% [markdown] lang="zh"
# ## 3. 每对通道一个频率
#
# 通道 $2i$ 和 $2i+1$ 共用同一个角频率（angular frequency）$\omega_i = 10000^{-2i/d_{model}}$：数对 $(\sin \omega_i pos, \cos \omega_i pos)$ 是一个沿单位圆转圈的点。频率按等比数列递减：$i = 0$ 时每前进一个位置转 1 弧度（波长为 $2\pi \approx 6.3$ 个位置），最后几对通道的波长则长达几万个位置（$2i$ 趋近 $d_{model}$ 时，波长趋近 $10000 \cdot 2\pi$）。快的通道用来区分相邻的位置，慢的通道用来区分一段文本的开头和结尾。
#
# 下面的检验只用表的第 1 行就求出了每个 $\omega_i$：它就是点 $(\cos\omega_i, \sin\omega_i)$ 的辐角。再把它与公式给出的值比较。

# %%
omega = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)       # (d_model/2,)
omega_from_table = np.arctan2(table[1, 0::2], table[1, 1::2])
assert np.allclose(omega_from_table, omega, rtol=1e-12)
assert np.allclose(table[:, 0::2] ** 2 + table[:, 1::2] ** 2, 1.0)   # on the unit circle
assert np.allclose(omega[1:] / omega[:-1], 10000 ** (-2 / d_model))  # geometric
shortest, longest = 2 * np.pi / omega[0], 2 * np.pi / omega[-1]      # wavelengths 2π/ω
print(tr(f"wavelengths 2π/ω from {shortest:.1f} to {longest:.0f} positions",
         f"波长 2π/ω 从 {shortest:.1f} 个位置到 {longest:.0f} 个位置"))

fig, ax = plt.subplots(figsize=(9, 3.5))
for ch in (0, 1, 6, 14, 30):
    fn = "sin" if ch % 2 == 0 else "cos"
    ax.plot(table[:, ch], label=tr(f"channel {ch} ({fn}, i = {ch // 2})",
                                   f"通道 {ch}（{fn}，i = {ch // 2}）"))
ax.set_xlabel(tr("position pos", "位置 pos"))
ax.set_ylabel(tr("PE(pos, channel)", "PE(pos, 通道)"))
ax.set_title(tr("Low channels oscillate fast, high channels slowly",
                "编号小的通道振荡得快，编号大的通道振荡得慢"))
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
# %% [markdown] lang="zh"
# ## 4. 点积只取决于距离
#
# 把两个位置编码按通道逐对相乘，再利用 $\sin a \sin b + \cos a \cos b = \cos(a - b)$：
#
# $$PE(p) \cdot PE(p+k) = \sum_i \left[\sin(\omega_i p)\sin(\omega_i (p+k)) +
#   \cos(\omega_i p)\cos(\omega_i(p+k))\right] = \sum_i \cos(\omega_i k).$$
#
# 位置 $p$ 消掉了。无论注意力头（attention head）比较的是哪两个位置，它们编码的相似度都只是两者相距多远的函数。

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
print(tr("PE(p)·PE(p+k) is the same for p = 40, 80, 150 and equals sum_i cos(ω_i k)",
         "p = 40、80、150 时 PE(p)·PE(p+k) 都相同，且等于 sum_i cos(ω_i k)"))

fig, ax = plt.subplots(figsize=(8, 3.5))
for p, style in zip(curves, ("-", "--", ":")):
    ax.plot(ks, curves[p], style, lw=2, label=f"PE({p}) · PE({p}+k)")
ax.set_xlabel(tr("distance k", "距离 k"))
ax.set_ylabel(tr("dot product", "点积"))
ax.set_title(tr("Similarity of encodings falls with distance (with ripples), wherever you start",
                "无论从哪个位置出发，编码的相似度都随距离减小（带有波纹）"))
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
# %% [markdown] lang="zh"
# ## 5. 平移就是旋转
#
# 由三角函数的和角公式，对每一对通道都有
#
# $$\begin{pmatrix}\sin\omega_i(p+k)\\ \cos\omega_i(p+k)\end{pmatrix} =
# \begin{pmatrix}\cos\omega_i k & \sin\omega_i k\\ -\sin\omega_i k & \cos\omega_i k\end{pmatrix}
# \begin{pmatrix}\sin\omega_i p\\ \cos\omega_i p\end{pmatrix}.$$
#
# 所以 $PE(p+k) = M_k\, PE(p)$，其中 $M_k$ 是分块对角（block-diagonal）矩阵，每一块是一个 $2\times 2$ 的旋转矩阵，而且 $M_k$ **不**依赖于 $p$。因此，一个层只要学会一个矩阵，就能在任何位置上做到“关注往前数第 $k$ 个词元”：这正是当初提出这组公式的动机。
#
# 下面构造 $M_k$，在每个位置上验证它，检查它确实是旋转（$M_k M_k^T = I$，$\det M_k = 1$），最后不用公式、只凭这张表，用最小二乘法（least squares）把它求出来。

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
print(tr(f"PE(p+{k}) = M_{k} PE(p) for every p; M_{k} is a rotation; "
         "least squares finds the same M",
         f"对每个 p 都有 PE(p+{k}) = M_{k} PE(p)；M_{k} 是旋转；最小二乘求出的也是这个 M"))

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
im = axes[0].imshow(shift_matrix(k, 16), cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].set_title(tr(f"M_{k} (d_model = 16): 2×2 rotations",
                     f"M_{k}（d_model = 16）：由 2×2 旋转组成"))
axes[0].set_xlabel(tr("input channel", "输入通道"))
axes[0].set_ylabel(tr("output channel", "输出通道"))
fig.colorbar(im, ax=axes[0])
pts = sinusoidal_table(30, 16)[:, 2:4]                          # pair i = 1: (sin, cos)
sc = axes[1].scatter(pts[:, 1], pts[:, 0], c=np.arange(30), cmap="viridis")
for p in range(0, 27, 3):
    axes[1].annotate("", xy=pts[p + 3, ::-1], xytext=pts[p, ::-1],
                     arrowprops=dict(arrowstyle="->", color="gray"))
axes[1].set_aspect("equal")
axes[1].set_xlabel(tr("cos(ω₁ pos)  (channel 3)", "cos(ω₁ pos)（通道 3）"))
axes[1].set_ylabel(tr("sin(ω₁ pos)  (channel 2)", "sin(ω₁ pos)（通道 2）"))
axes[1].set_title(tr(f"Pair i = 1: shift by {k} = the same turn",
                     f"第 i = 1 对通道：平移 {k} = 转过同一个角度"))
fig.colorbar(sc, ax=axes[1], label=tr("position", "位置"))
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
# %% [markdown] lang="zh"
# ## 6. 正弦位置编码还是可学习位置编码？
#
# GPT-2 没有用教材的公式：它的位置编码是*学出来的*，即一张形状为 `(block_size, C)` 的参数表 `wpe`，像其他权重一样训练。这叫可学习位置编码（learned positional embedding）。`minigpt` 两种都提供：`GPTConfig(pos_encoding="sinusoidal")`（默认）或 `"learned"`。对一个批次（batch）中形状为 $(B, T, C)$ 的词元向量 `tok`，第一个 Transformer 块（block）的输入是
#
# $$x_{b,t} = tok_{b,t} + wpe_t, \qquad\text{所以}\qquad
# \frac{\partial L}{\partial tok_{b,t}} = \frac{\partial L}{\partial x_{b,t}}, \qquad
# \frac{\partial L}{\partial wpe_t} = \sum_b \frac{\partial L}{\partial x_{b,t}}$$
#
# 第 $t$ 行被加到了批次中的每一条序列上，所以它要收集所有这些序列的梯度（gradient）；$t \ge T$ 的那些行没有用到，梯度为零。
#
# **练习 1**：写出 `add_positions` 的反向传播。缓存（cache）中存的是 `T` 和 `wpe` 的形状。

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
assert check(tr("add_positions backward", "add_positions 的反向传播"),
             add_positions, my_add_positions_backward, inputs)

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
# %% [markdown] lang="zh"
# 词元向量本身来自形状为 $(V, C)$ 的嵌入表 `wte`，通过查表得到：$tok_{b,t} = wte_{idx_{b,t}}$。它的反向传播把每个位置的梯度送回该位置读取的那一行；一个词元出现几次，它那一行就要收集*所有*这几次的梯度：
#
# $$\frac{\partial L}{\partial wte_v} = \sum_{(b,t):\ idx_{b,t} = v}
#   \frac{\partial L}{\partial tok_{b,t}}.$$
#
# **练习 2**：写出嵌入层的反向传播。注意：下面的编号（id）有重复。（提示：查一查 `np.add.at`，并想一想：`idx` 中同一个编号出现两次时，`dwte[idx] += dtok` 会做什么？）

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
assert check(tr("embedding backward", "嵌入层的反向传播"), lookup, my_embedding_backward,
             inputs)

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
# %% [markdown] lang="zh"
# 一行搞定的写法 `dwte[idx] += dtok` 很诱人，却是一个经典错误：NumPy 的花式索引（fancy indexing）是带缓冲的，对重复的行只写一次，以最后一次写入为准，其余几次出现的梯度都丢掉了。用 `gradcheck` 做梯度检验（gradient check）能发现这个错误，但前提是有编号重复，所以测试一定要用含重复编号的输入。

# %%
def buggy_embedding_backward(dtok, cache):
    idx, V = cache
    dwte = np.zeros((V, dtok.shape[-1]))
    dwte[idx] += dtok                              # loses repeated ids
    return {"wte": dwte}


distinct = np.array([[0, 1, 2], [3, 4, 5]])
assert gradcheck(lookup, buggy_embedding_backward, {"wte": wte, "idx": distinct}).ok
assert not gradcheck(lookup, buggy_embedding_backward, {"wte": wte, "idx": idx}).ok
print(tr("buggy version: passes with distinct ids, FAILS with repeated ids",
         "有错的版本：编号各不相同时通过，编号有重复时失败"))

counts = np.bincount(idx.ravel(), minlength=6)
dwte = embedding_backward(np.ones((2, 4, 3)), embedding_forward(idx, wte)[1])
assert np.allclose(dwte[:, 0], counts)         # with dtok = 1, row v collects count(v)
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(np.arange(6) - 0.2, counts, width=0.4,
       label=tr("occurrences of the id in idx", "编号 v 在 idx 中出现的次数"))
ax.bar(np.arange(6) + 0.2, dwte[:, 0], width=0.4,
       label=tr("dwte[v, 0] when dtok = 1", "dtok = 1 时的 dwte[v, 0]"))
ax.set_xlabel(tr("token id v", "词元编号 v"))
ax.set_ylabel(tr("count / gradient", "次数 / 梯度"))
ax.set_title(tr("Each embedding row collects one gradient per occurrence",
                "嵌入表的每一行：词元每出现一次，就收集一份梯度"))
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
# %% [markdown] lang="zh"
# 现在把两种位置编码放进 `minigpt` 的 GPT 里并排比较。可学习的表要多出 `block_size × C` 个参数，而且只覆盖前 `block_size` 个位置；正弦表不占参数，对任何位置都有定义（至于在短文本上训练的模型能不能*用好*远处的位置，那是另一回事）。
#
# 在参数初始化（parameter initialisation，教材第 3.4 节第 2 步称之为“模型初始化”）时，可学习的表只是噪声 $\mathcal{N}(0, 0.02^2)$，它的全部结构都要靠训练得来；而正弦表从一开始就具备距离结构。

# %%
config = GPTConfig(vocab_size=50, block_size=64, n_layer=1, n_head=2, n_embd=32)
sin_model = GPT(config)
learned_model = GPT(config.replace(pos_encoding="learned"))
extra = learned_model.num_params() - sin_model.num_params()
assert extra == config.block_size * config.n_embd
print(tr(f"sinusoidal: {sin_model.num_params():,} parameters, "
         f"learned: {learned_model.num_params():,} (+{extra:,} = block_size × C)",
         f"正弦位置编码：{sin_model.num_params():,} 个参数；"
         f"可学习位置编码：{learned_model.num_params():,} 个（多出 {extra:,} = block_size × C）"))

assert sinusoidal_table(1000, 32).shape == (1000, 32)        # any length
try:
    learned_positional_forward(65, learned_model.params["wpe"])
    raise AssertionError("a learned table should refuse positions past block_size")
except ValueError as err:
    print(tr(f"learned: {err}", f"可学习位置编码报错：{err}"))

wpe = learned_model.params["wpe"].astype(np.float64)
sin_t = sinusoidal_table(64, 32)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for ax, tab, title in [(axes[0], sin_t, tr("sinusoidal table", "正弦位置编码表")),
                       (axes[1], wpe, tr("learned table wpe at initialisation",
                                         "初始化时的可学习位置表 wpe"))]:
    lim = np.abs(tab).max()
    im = ax.imshow(tab, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xlabel(tr("channel", "通道"))
    ax.set_ylabel(tr("position", "位置"))
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
for tab, label in [(sin_t, tr("sinusoidal", "正弦位置编码")),
                   (wpe, tr("learned, at init", "可学习位置编码（初始化时）"))]:
    dots = np.array([tab[20] @ tab[20 + kk] for kk in range(-20, 41)])
    axes[2].plot(range(-20, 41), dots / dots[20], label=label)
axes[2].set_xlabel(tr("distance k", "距离 k"))
axes[2].set_ylabel("PE(20)·PE(20+k) / |PE(20)|²")
axes[2].set_title(tr("Distance structure: built in vs not yet learned",
                     "距离结构：生来就有 vs 尚未学到"))
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
# %% [markdown] lang="zh"
# 当位置表被*加*到词元嵌入上时，还有一个区别很要紧：它的大小。表中的元素是正弦和余弦，其均方根（root mean square，RMS）为 $1/\sqrt 2 \approx 0.71$；而 GPT-2 抽取词元嵌入时用的标准差是 0.02。于是在 $x_t = e(\text{词元}_t) + PE(t)$ 中，位置项的大小是词元项的 35 倍。
#
# 提出这张表的论文（Vaswani 等人，第 3.4 节）把嵌入乘以 $\sqrt{C}$，嵌入本身则按标准差 $C^{-1/2}$ 随机抽取，这样两项的大小都在 1 左右。这就是嵌入缩放（embedding scaling）：`GPTConfig(scale_embeddings=True)`。笔记本 5 把三种做法（GPT-2 初始化下的正弦表、按论文缩放的正弦表、可学习的表）都训练一遍，看看这个差距要付出什么代价。

# %%
rms = lambda a: float(np.sqrt(np.mean(np.square(a))))
C = config.n_embd
gpt2_tokens = sin_model.params["wte"]
paper_model = GPT(config.replace(scale_embeddings=True))
paper_tokens = paper_model.embed_scale * paper_model.params["wte"]     # sqrt(C) * wte
sizes = {"sinusoidal table PE": rms(sin_t), "tokens, GPT-2 init (std 0.02)": rms(gpt2_tokens),
         "tokens, the paper's way (sqrt(C) x std C^-1/2)": rms(paper_tokens)}
zh_names = {"sinusoidal table PE": "正弦位置编码表 PE",
            "tokens, GPT-2 init (std 0.02)": "词元嵌入，GPT-2 的初始化（标准差 0.02）",
            "tokens, the paper's way (sqrt(C) x std C^-1/2)":
                "词元嵌入，论文的做法（sqrt(C) × 标准差 C^-1/2）"}
for what, size in sizes.items():
    print(tr(f"RMS of {what:<48} {size:.3f}", f"RMS {size:.3f}  {zh_names[what]}"))
assert 0.6 < sizes["sinusoidal table PE"] < 0.8
assert rms(sin_t) / rms(gpt2_tokens) > 25                # the position drowns the token
assert 0.8 < rms(paper_tokens) < 1.2                     # scaled: the same size as PE

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
lim = np.abs(sin_t).max()
for ax, tab, title in [(axes[0], gpt2_tokens[:20], tr("token embeddings, GPT-2 init",
                                                        "词元嵌入（GPT-2 的初始化）")),
                       (axes[1], sin_t[:20], tr("sinusoidal table, positions 0-19",
                                                "正弦位置编码表，位置 0-19"))]:
    im = ax.imshow(tab, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xlabel(tr("channel", "通道"))
    ax.set_title(title)
axes[0].set_ylabel(tr("row", "行"))
fig.colorbar(im, ax=axes,
             label=tr("value (one colour scale for both)", "数值（两幅图共用一个色标）"))
plt.show()

# %% [markdown]
# **Summary.** One attention layer sees its context as a set; adding $PE(t)$ makes it a
# sequence. The text's sinusoids give every pair of channels its own clock, so the
# similarity of two positions depends only on their distance and a shift is a rotation.
# Learned positions trade those guarantees for flexibility. Added to GPT-2-sized token
# embeddings, the table is 35 times louder than the tokens; the paper's scale evens
# them out. Their backward, and the embedding's, is a sum over every use of a row.
# Next: notebook 3, layer normalisation and backpropagation.
# %% [markdown] lang="zh"
# **小结**：单层注意力把上下文看作一个集合；加上 $PE(t)$ 之后，它才成为一个序列。教材的正弦函数给每一对通道配了一只自己的时钟，于是两个位置的相似度只取决于它们的距离，而平移就是旋转。可学习的位置编码放弃了这些保证，换来了灵活性。把位置表加到按 GPT-2 方式初始化的词元嵌入上，位置项的大小是词元项的 35 倍；按论文的方式缩放，两者就不相上下了。可学习位置表的反向传播和嵌入层的一样，都是把某一行每次被用到时的梯度加起来。
#
# 下一步：笔记本 3，层归一化（layer normalisation）与反向传播。

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
# %% [markdown] lang="zh"
# ## 思考题
#
# 先用文字回答；题目中要求动手的，再在新单元格里写几行代码来验证。这些题目都不会自动检查。
#
# 1. **只交换两个词元，不加位置。** 第 1 节打乱的是最后一个词元*之前*的所有词元，而且只看了 $y_T$。现在只交换 8 个位置中位置 2 和位置 5 上的词元（位置从 0 开始编号），并且不加位置编码（$x = e$）。对每个位置 $t = 0, \dots, 7$，预测它的输出 $y_t$ 会不会变，并说明理由。然后验证你的预测：把 `last_output` 复制成一个返回全部八个输出的函数（用 `y[0, 0]` 代替 `y[0, 0, -1]`），比较 `emb` 和 `emb[[0, 1, 5, 3, 4, 2, 6, 7]]` 的结果。加上 `pe` 之后又会怎样？如果没有因果掩码，每个词元都能关注所有其他词元，那么把八个词元全部重新排列，输出会怎样？
# 2. **位置强，词元弱。** 本笔记本最后一部分测得位置表的 RMS 为 0.71，而 GPT-2 的词元嵌入只有 0.02。估计一下 $|x_t|^2 = |e + PE(t)|^2$ 中有多大比例来自词元。每个块对 $x_t$ 做的第一件事是层归一化（笔记本 3）：取*同一*位置上两个*不同*的词元，把两个和都送进 `layernorm_forward`（从 `minigpt.ops.layernorm` 导入），计算两个结果的余弦相似度（cosine similarity）。第一个注意力层还能靠什么来区分这两个词元？词元的信息是没有了，还是只是变弱了？再用 `paper_model` 缩放后的词元嵌入做一遍。
# 3. **超出 `block_size`。** 一个模型用 `block_size = 64` 训练。两种位置编码中，哪一种能为位置 100 给出向量？对能给出的那一种，你认为训练好的模型能好好利用它吗？为什么？（想一想它的权重在训练中见过什么。）对 65 个词元编号调用 `sin_model.forward`，看看 `minigpt` 怎么处理；再解释为什么生成时仍然能写出超过 64 个字符的文本。
