# %% [markdown]
# # 1 · Attention
#
# Our text puts one formula at the heart of the Transformer, the *attention mechanism*
# (Attention Mechanism, §3.2):
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V$$
#
# Every position asks a question (its **query** $q$, the text's 查询向量), every position
# offers a label (its **key** $k$, 关键字向量) and a content (its **value** $v$, 值向量).
# A query compares itself with every key; the softmax turns those scores into weights
# that add up to one; the output is the weighted average of the values.
#
# In this notebook we
# 1. compute the formula by hand on three tokens, then with `minigpt`;
# 2. see why the scores are divided by $\sqrt{d_k}$;
# 3. add the causal mask a GPT needs, and write the whole masked forward yourself;
# 4. derive the backward pass through the softmax, step by step;
# 5. derive the backward pass through the whole formula, and check it numerically.
#
# Each section goes: prose → formula → a `minigpt` call → a check that *asserts* →
# a plot. Sections 3, 4 and 5 each hold an exercise in the student edition
# (`notebooks/exercises/`). The backward passes use the two tools of notebook 0: the
# convention `op_forward(...) -> (out, cache)`, `op_backward(dout, cache) -> grads`
# (`dout` $= \partial L/\partial\,\text{out}$), and `minigpt.gradcheck`, which tests a
# backward against centred finite differences.
# %% [markdown] lang="zh"
# # 1 · 注意力
#
# 在教材里，Transformer 的核心是一个公式，即第 3.2 节讲的注意力机制（attention mechanism，
# 教材写作 Attention Mechanism）。教材说，它“可以通过计算每个位置与其他位置之间的关注度来实现”，
# 公式如下：
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V$$
#
# 其中 $Q$、$K$、$V$“分别表示查询向量、关键字向量和值向量”，$d_k$ 表示“关键字向量的维度”。
# “关键字向量”通常称为键向量，本笔记本都用这个说法。
#
# 可以这样理解：每个位置都提出一个问题，即它的**查询向量**（query）$q$；每个位置也都亮出一个标签，
# 即它的**键向量**（key）$k$，并带着一份内容，即它的**值向量**（value）$v$。
# 一个查询向量与所有的键向量逐一比较，得到一组分数；softmax 把这些分数变成和为 1 的权重；
# 输出就是用这些权重对各个值向量求的加权平均。教材说 softmax 函数“用于计算关注度分布”，
# 这里的“关注度”通常称为注意力权重（attention weights），下文都用这个说法。
#
# 本笔记本分五步：
# 1. 先在三个词元（token）上手算这个公式，再用 `minigpt` 算一遍；
# 2. 看看分数为什么要除以 $\sqrt{d_k}$；
# 3. 加上 GPT 必需的因果掩码（causal mask），并亲手写出带掩码的完整前向传播（forward pass）；
# 4. 一步一步推导 softmax 的反向传播（backpropagation）；
# 5. 推导整个公式的反向传播，并用数值方法检验。
#
# 每一节都按同样的顺序展开：文字说明 → 公式 → 调用 `minigpt` → 用 `assert` 断言的检查 → 画图。
# 在学生版（`notebooks/zh/exercises/`）中，第 3、4、5 节各有一道练习。反向传播要用到笔记本 0 的两样工具：
# 一是约定 `op_forward(...) -> (out, cache)`、`op_backward(dout, cache) -> grads`（`dout`
# $= \partial L/\partial\,\text{out}$）；二是 `minigpt.gradcheck`，它用中心差分（centred
# difference）来检验反向传播。

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.gradcheck import check, check_close, gradcheck   # check*: one-line PASS/FAIL
from minigpt.ops.attention import attention_backward, attention_forward, causal_mask
from minigpt.ops.softmax import SoftmaxCache, softmax_backward, softmax_forward
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)


# %% [markdown]
# ## 1. The formula by hand, on three tokens
#
# Take $T = 3$ tokens with $d_k = 2$ numbers each. Written out one step per line:
#
# $$S = \frac{QK^T}{\sqrt{d_k}} \qquad A_{ij} = \frac{e^{S_{ij}}}{\sum_{j'} e^{S_{ij'}}}
# \qquad Y = AV$$
#
# $S_{ij}$ says how well query $i$ matches key $j$; row $i$ of $A$ is how query $i$
# spreads its attention over the keys; row $i$ of $Y$ is the blend of values it gets.
# %% [markdown] lang="zh"
# ## 1. 在三个词元上手算公式
#
# 取 $T = 3$ 个词元，每个词元有 $d_k = 2$ 个数。把公式拆开，每行写一步：
#
# $$S = \frac{QK^T}{\sqrt{d_k}} \qquad A_{ij} = \frac{e^{S_{ij}}}{\sum_{j'} e^{S_{ij'}}}
# \qquad Y = AV$$
#
# $S_{ij}$ 表示查询 $i$ 与键 $j$ 有多匹配；$A$ 的第 $i$ 行表示查询 $i$ 怎样把注意力分配给各个键；$Y$ 的第
# $i$ 行就是查询 $i$ 按这些权重混合各个值所得的结果。

# %%
Q = np.array([[1.0, 0.0],     # token 0 looks for "feature 0"
              [0.0, 1.0],     # token 1 looks for "feature 1"
              [1.0, 1.0]])    # token 2 looks for both
K = np.array([[2.0, 0.0],     # token 0 strongly has feature 0
              [0.0, 2.0],     # token 1 strongly has feature 1
              [0.5, 0.5]])    # token 2 a little of both
V = np.array([[1.0, 0.0],
              [0.0, 1.0],
              [0.5, 0.5]])
d_k = Q.shape[1]

S = Q @ K.T / np.sqrt(d_k)                        # (3, 3) scores
E = np.exp(S - S.max(axis=1, keepdims=True))      # subtracting the row max changes nothing
A = E / E.sum(axis=1, keepdims=True)              # (3, 3) weights, rows sum to 1
Y = A @ V                                         # (3, 2) outputs
print(tr("scores S =\n", "分数 S =\n"), S, tr("\nweights A =\n", "\n权重 A =\n"), A,
      tr("\noutput Y =\n", "\n输出 Y =\n"), Y)

# %% [markdown]
# Now the library's softmax on the same scores. It must agree with our hand computation,
# every row of weights must sum to one, and every output row, being an average of the
# value rows, must lie between their smallest and largest entries.
# %% [markdown] lang="zh"
# 现在用库里的 softmax 处理同样的分数。它的结果必须与我们手算的一致；每一行权重之和必须为 1；
# 每一行输出都是 $V$ 各行的加权平均，所以它的每个分量都必须落在 $V$ 这一列的最小值和最大值之间。

# %%
A_lib, _ = softmax_forward(S)
assert np.allclose(A_lib, A, atol=1e-15, rtol=0)
assert np.allclose(A.sum(axis=1), 1.0)
assert np.all(Y >= V.min(axis=0) - 1e-12) and np.all(Y <= V.max(axis=0) + 1e-12)
print(tr("hand computation == minigpt's softmax; rows sum to 1; outputs are averages of values",
         "手算结果 == minigpt 的 softmax；每行之和为 1；每个输出都是值的平均"))

# %%
def show_weights(ax, weights, labels, title):
    """Heatmap of an attention matrix: row = query, column = key."""
    im = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel(tr("key position j (attended to)", "键的位置 j（被关注的一方）"))
    ax.set_ylabel(tr("query position i (attending)", "查询的位置 i（发出关注的一方）"))
    ax.set_title(title)
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            ax.text(j, i, f"{weights[i, j]:.2f}", ha="center", va="center",
                    color="white" if weights[i, j] < 0.6 else "black", fontsize=9)
    return im


fig, ax = plt.subplots(figsize=(4.5, 4))
fig.colorbar(show_weights(ax, A, [tr(f"tok {i}", f"词元 {i}") for i in range(3)],
                          tr("Attention weights A = softmax(QKᵀ/√d_k)",
                             "注意力权重 A = softmax(QKᵀ/√d_k)")), ax=ax)
plt.show()

# %% [markdown]
# Token 0 looks mostly at token 0 (the key that has "feature 0"), token 1 at token 1,
# and token 2, which wants both, splits its attention between them.
#
# ## 2. Why divide by $\sqrt{d_k}$?
#
# Suppose the entries of $q$ and $k$ are independent, with mean 0 and variance 1. Then
#
# $$q \cdot k = \sum_{i=1}^{d_k} q_i k_i, \qquad
# \operatorname{Var}(q\cdot k) = \sum_{i=1}^{d_k} \operatorname{Var}(q_i k_i) = d_k .$$
#
# The scores grow like $\sqrt{d_k}$. Fed to a softmax, large scores make it
# *saturate*: almost all the weight lands on one key, and the softmax's gradient
# $p_j(\delta_{ij} - p_i)$ goes to zero, so learning stalls. Dividing by $\sqrt{d_k}$
# brings the variance back to 1 whatever the head size.
# %% [markdown] lang="zh"
# 词元 0 主要关注词元 0（具有“特征 0”的那个键），词元 1 主要关注词元 1；词元 2 两种特征都要，
# 于是把注意力分给了这两个词元。
#
# ## 2. 为什么要除以 $\sqrt{d_k}$？
#
# 假设 $q$ 和 $k$ 的各个分量相互独立，均值为 0，方差为 1。那么
#
# $$q \cdot k = \sum_{i=1}^{d_k} q_i k_i, \qquad
# \operatorname{Var}(q\cdot k) = \sum_{i=1}^{d_k} \operatorname{Var}(q_i k_i) = d_k .$$
#
# 分数的大小随 $\sqrt{d_k}$ 增长。把很大的分数送进 softmax，它就会*饱和*（saturate）：
# 几乎全部权重都落在一个键上，softmax 的梯度（gradient）$p_j(\delta_{ij} - p_i)$ 趋于零，学习也就停滞了。
# 除以 $\sqrt{d_k}$ 之后，无论每个头的维度（head size）多大，方差都回到 1。

# %%
T = 16                                    # keys per query
n_trials = 500 if QUICK else 4000
dims = [1, 4, 16, 64, 256, 1024]
stats = {"max weight": {True: [], False: []}, "grad size": {True: [], False: []}}
for d in dims:
    q = rng.standard_normal((n_trials, 1, d))
    k = rng.standard_normal((n_trials, T, d))
    s = (q @ k.swapaxes(-1, -2))[:, 0]            # (n_trials, T) raw scores q.k
    if d >= 16:
        assert abs(s.var() / d - 1) < 0.15, "Var(q.k) should be close to d_k"
        assert abs((s / np.sqrt(d)).var() - 1) < 0.15, "scaled scores should have variance ~1"
    for scaled in (True, False):
        p, _ = softmax_forward(s / np.sqrt(d) if scaled else s)
        dz = softmax_backward(rng.standard_normal(p.shape), SoftmaxCache(p))  # random upstream grad
        stats["max weight"][scaled].append(p.max(axis=1).mean())
        stats["grad size"][scaled].append(np.abs(dz).mean())
shown = {"max weight": "最大权重", "grad size": "梯度大小"}     # the keys, as the zh edition prints them
for key, by in stats.items():
    print(tr(f"{key:>10}  scaled:  ", f"{shown[key]}  有缩放："), np.round(by[True], 3),
          tr("\n            unscaled:", "\n          无缩放："), np.round(by[False], 3))

# %% [markdown]
# The check: without the scale the softmax becomes nearly one-hot at large $d_k$ and its
# gradient collapses; with the scale the largest weight stays near 0.25 (0.21 at
# $d_k = 1$) and the gradient's size does not move.
# %% [markdown] lang="zh"
# 检查结果：不缩放时，$d_k$ 一大，softmax 就几乎变成独热（one-hot）分布，梯度也随之小得几乎为零；
# 缩放之后，最大的权重始终在 0.25 左右（$d_k = 1$ 时为 0.21），梯度的大小也基本不变。

# %%
assert stats["max weight"][False][-1] > 0.9           # saturated: one key takes > 90%
assert max(stats["max weight"][True]) < 0.3           # scaled: spread over many keys
assert stats["grad size"][False][-1] < 0.2 * stats["grad size"][True][-1]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].axhline(1 / T, color="gray", lw=0.8, ls=":",
                label=tr("uniform weights, 1/T", "均匀分布的权重 1/T"))
for ax, key, label in [(axes[0], "max weight", tr("mean of the largest weight", "最大权重的平均值")),
                       (axes[1], "grad size", tr("mean |∂L/∂score|", "|∂L/∂分数| 的平均值"))]:
    ax.semilogx(dims, stats[key][True], "o-", label="softmax(q·k / √d_k)")
    ax.semilogx(dims, stats[key][False], "s--", label=tr("softmax(q·k), no scale",
                                                          "softmax(q·k)，不缩放"))
    ax.set_xlabel(tr("head size d_k", "每个头的维度 d_k"))
    ax.set_ylabel(label)
    ax.legend()
axes[0].set_title(tr(f"The softmax saturates without the scale (T = {T} keys)",
                     f"不缩放时 softmax 饱和（T = {T} 个键）"))
axes[1].set_title(tr("…and its gradient vanishes", "……它的梯度也随之消失"))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The causal mask
#
# A GPT writes text left to right, and it is trained to predict token $i+1$ from tokens
# $0..i$. If position $i$ could attend to later positions it would simply read the
# answer. So the scores of "future" keys are set to $-\infty$ before the softmax, which
# gives them weight exactly $e^{-\infty} = 0$:
#
# $$\tilde S_{ij} = \begin{cases} S_{ij} & j \le i \\ -\infty & j > i \end{cases}
# \qquad A = \text{softmax}(\tilde S).$$
#
# `minigpt.ops.attention.attention_forward(q, k, v)` applies this mask itself; its
# arrays have shape `(B, nh, T, hs)`: batch, heads, time, head size. It returns the
# output and a cache (notebook 0's convention); the cache keeps the weights it computed,
# `cache.att` of shape `(B, nh, T, T)`, so we can test and plot the very numbers the
# forward used.
# %% [markdown] lang="zh"
# ## 3. 因果掩码
#
# GPT 从左到右生成文本，训练时要根据词元 $0..i$ 预测词元 $i+1$。如果位置 $i$ 能关注后面的位置，
# 它直接把答案读出来就行了。所以在 softmax 之前，要把“未来”那些键的分数设为 $-\infty$，它们的权重就恰好是
# $e^{-\infty} = 0$：
#
# $$\tilde S_{ij} = \begin{cases} S_{ij} & j \le i \\ -\infty & j > i \end{cases}
# \qquad A = \text{softmax}(\tilde S).$$
#
# `minigpt.ops.attention.attention_forward(q, k, v)` 会自己加上这个掩码。它的数组形状是 `(B, nh, T, hs)`，
# 四个轴依次是批次（batch）、注意力头、时间（即位置）和每个头的维度。按照笔记本 0 的约定，它返回输出和一个
# 缓存（cache）；缓存里保存着它算出的权重 `cache.att`，形状为 `(B, nh, T, T)`。这样，
# 我们检查和画出的正是前向传播实际用到的那些数。

# %%
words = tr("the cat sat on the mat .", "猫 坐 在 垫 子 上 。").split()   # 7 tokens either way
T, hs = len(words), 8
q, k, v = (rng.standard_normal((1, 1, T, hs)) for _ in range(3))   # (B, nh, T, hs)

print(causal_mask(T, T).astype(int))        # 1 = hidden from the query on that row

y, cache = attention_forward(q, k, v)
weights = cache.att                                       # (1, 1, T, T)
assert np.allclose(y, weights @ v)                        # the output is A V
assert np.allclose(weights.sum(axis=-1), 1.0)             # every row is a distribution
assert np.all(np.triu(weights[0, 0], k=1) == 0)           # exactly zero above the diagonal
assert np.allclose(weights[0, 0, 0], np.eye(T)[0])        # token 0 can only see itself

# causality: changing what comes after position i does not change output i
i = 3
k2, v2 = k.copy(), v.copy()
k2[..., i + 1:, :] += 10 * rng.standard_normal(k2[..., i + 1:, :].shape)
v2[..., i + 1:, :] += 10 * rng.standard_normal(v2[..., i + 1:, :].shape)
y2, _ = attention_forward(q, k2, v2)
assert np.array_equal(y2[..., : i + 1, :], y[..., : i + 1, :])
assert not np.allclose(y2[..., i + 1:, :], y[..., i + 1:, :])
print(tr(f"outputs 0..{i} are unchanged when keys and values after position {i} change",
         f"位置 {i} 之后的键和值改变时，输出 0..{i} 保持不变"))

# %%
fig, ax = plt.subplots(figsize=(6, 5))
fig.colorbar(show_weights(ax, weights[0, 0], words,
                          tr("Causal attention weights (random q, k)",
                             "因果注意力权重（随机的 q、k）")), ax=ax)
plt.show()

# %% [markdown]
# Row $i$ spreads its weight over positions $0..i$ only; the upper triangle is exactly 0.
# (The queries and keys are random here; notebook 6 shows the weights of a trained model.)
#
# **Exercise 1: the attention forward by hand.** Write
# $\text{softmax}\left(QK^T/\sqrt{d_k}\right)V$ with the causal mask, for `q`, `k`,
# `v` of shape `(B, nh, T, hs)`, using NumPy only (no `minigpt` functions). One step per
# line, as in section 1:
#
# 1. the scores $S = QK^T/\sqrt{d_k}$, shape `(B, nh, T, T)`, with $d_k$ = `hs`.
#    `k.swapaxes(-1, -2)` transposes the last two axes of every matrix in the batch
#    (`k.T` would reverse *all four* axes);
# 2. the mask: `np.triu(np.ones((T, T), dtype=bool), k=1)` is `True` strictly above
#    the diagonal, where key $j > i$; put $-\infty$ there (`np.where` broadcasts a
#    `(T, T)` mask over `(B, nh, T, T)`);
# 3. the softmax over the **last** axis (the keys), subtracting each row's maximum
#    before `np.exp` as in section 1;
# 4. the weighted sum of the values.
#
# The check compares your output with `attention_forward(q, k, v)[0]`.
# %% [markdown] lang="zh"
# 第 $i$ 行的权重只分布在位置 $0..i$ 上；上三角恰好为 0。（这里的查询和键都是随机的；笔记本 6
# 会展示训练好的模型的注意力权重。）
#
# **练习 1：亲手写出注意力的前向传播。** 只用 NumPy（不调用 `minigpt` 的函数），对形状为 `(B, nh, T, hs)`
# 的 `q`、`k`、`v`，写出带因果掩码的 $\text{softmax}\left(QK^T/\sqrt{d_k}\right)V$。像第 1 节那样，
# 每行写一步：
#
# 1. 分数 $S = QK^T/\sqrt{d_k}$，形状为 `(B, nh, T, T)`，其中 $d_k$ = `hs`。`k.swapaxes(-1, -2)`
#    交换最后两个轴，也就是把这一批中的每个矩阵各自转置（`k.T` 则会把**全部四个**轴的顺序倒过来）；
# 2. 掩码：`np.triu(np.ones((T, T), dtype=bool), k=1)` 在对角线严格上方为 `True`，即键 $j > i$ 的地方；
#    在这些位置填上 $-\infty$（`np.where` 会把 `(T, T)` 的掩码广播（broadcast）到 `(B, nh, T, T)` 上）；
# 3. 在**最后一个**轴（键所在的轴）上做 softmax，与第 1 节一样，先减去每行的最大值，再做 `np.exp`；
# 4. 用权重对值做加权求和。
#
# 检查时会把你的输出与 `attention_forward(q, k, v)[0]` 相比较。

# %%
def my_attention_forward(q, k, v):
    """q, k, v: (B, nh, T, hs) -> y (B, nh, T, hs) = softmax(mask(q k^T / sqrt(hs))) v."""
    T, hs = q.shape[-2:]
    # BEGIN SOLUTION
    s = q @ k.swapaxes(-1, -2) / np.sqrt(hs)                  # (B, nh, T, T) scores
    future = np.triu(np.ones((T, T), dtype=bool), k=1)        # (T, T) True where j > i
    s = np.where(future, -np.inf, s)                          # hide the future
    e = np.exp(s - s.max(axis=-1, keepdims=True))             # exp(-inf) = 0
    att = e / e.sum(axis=-1, keepdims=True)                   # (B, nh, T, T), rows sum to 1
    y = att @ v                                               # (B, nh, T, hs)
    # END SOLUTION
    return y

# %% tags=["check"]
q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))   # B=2, nh=3, T=6, hs=4
assert check_close(tr("attention forward", "注意力的前向传播"), my_attention_forward,
                   lambda q, k, v: attention_forward(q, k, v)[0], q, k, v)

# %% tags=["solution-only"]
q, k, v = (rng.standard_normal((1, 2, 9, 16)) for _ in range(3))
y, cache = attention_forward(q, k, v)
assert np.allclose(my_attention_forward(q, k, v), y)
print(tr("my_attention_forward == minigpt.ops.attention.attention_forward (another shape)",
         "my_attention_forward == minigpt.ops.attention.attention_forward（换一种形状）"))

# %% [markdown]
# ## 4. The backward pass through the softmax
#
# In notebook 0's convention, the softmax's backward is handed `dout` $= \partial L/\partial p$,
# the gradient of the loss with respect to the softmax output, and must return
# $\partial L/\partial z$. Start from
# $p_j = e^{z_j} / \sum_k e^{z_k}$ and differentiate with the quotient rule:
#
# $$\frac{\partial p_j}{\partial z_i} = \frac{\delta_{ij} e^{z_j}}{\sum_k e^{z_k}}
#   - \frac{e^{z_j} e^{z_i}}{(\sum_k e^{z_k})^2} = p_j(\delta_{ij} - p_i).$$
#
# This Jacobian $J = \operatorname{diag}(p) - pp^T$ is symmetric. The chain rule sums
# over every output that $z_i$ touches:
#
# $$\frac{\partial L}{\partial z_i} = \sum_j \frac{\partial L}{\partial p_j} p_j(\delta_{ij} - p_i)
#   = p_i\left(\frac{\partial L}{\partial p_i} - \sum_j \frac{\partial L}{\partial p_j}p_j\right).$$
#
# The last form needs no $T \times T$ matrix per row: one product, one sum, one
# subtraction. First the long way, with the explicit Jacobian, for one row of six scores:
# %% [markdown] lang="zh"
# ## 4. softmax 的反向传播
#
# 按照笔记本 0 的约定，softmax 的反向传播函数拿到的是 `dout` $= \partial L/\partial p$，即损失（loss）对
# softmax 输出的梯度，它要返回 $\partial L/\partial z$。从 $p_j = e^{z_j} / \sum_k e^{z_k}$ 出发，
# 用商的求导法则（quotient rule）求导：
#
# $$\frac{\partial p_j}{\partial z_i} = \frac{\delta_{ij} e^{z_j}}{\sum_k e^{z_k}}
#   - \frac{e^{z_j} e^{z_i}}{(\sum_k e^{z_k})^2} = p_j(\delta_{ij} - p_i).$$
#
# 这个雅可比矩阵（Jacobian）$J = \operatorname{diag}(p) - pp^T$ 是对称的。按照链式法则（chain rule），要对
# $z_i$ 影响到的每一个输出求和：
#
# $$\frac{\partial L}{\partial z_i} = \sum_j \frac{\partial L}{\partial p_j} p_j(\delta_{ij} - p_i)
#   = p_i\left(\frac{\partial L}{\partial p_i} - \sum_j \frac{\partial L}{\partial p_j}p_j\right).$$
#
# 最后这个形式不必为每一行构造一个 $T \times T$ 矩阵：一次乘法、一次求和、一次减法就够了。下面先按部就班地算一遍：
# 取一行 6 个分数，显式地写出雅可比矩阵。

# %%
z = rng.standard_normal(6)
p, _ = softmax_forward(z)
J = np.diag(p) - np.outer(p, p)              # J[i, j] = dp_j / dz_i
dp = rng.standard_normal(6)                   # some upstream gradient dL/dp
dz_long = J @ dp                              # the chain rule, term by term
dz_short = p * (dp - np.sum(dp * p))          # the simplified formula
assert np.allclose(dz_long, dz_short)
assert np.allclose(J.sum(axis=1), 0)          # whatever z_i does, the p_j still sum to 1
print(tr("explicit Jacobian == simplified formula; each row of J sums to 0",
         "显式雅可比矩阵 == 化简后的公式；J 的每一行之和为 0"))

fig, ax = plt.subplots(figsize=(4.8, 4))
lim = np.abs(J).max()
im = ax.imshow(J, cmap="RdBu_r", vmin=-lim, vmax=lim)
ax.set_xlabel(tr("output p_j", "输出 p_j"))
ax.set_ylabel(tr("input z_i", "输入 z_i"))
ax.set_title(tr("Softmax Jacobian ∂p_j/∂z_i = p_j(δ_ij − p_i)",
                "softmax 的雅可比矩阵 ∂p_j/∂z_i = p_j(δ_ij − p_i)"))
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# The diagonal is positive (raising $z_i$ raises $p_i$), everything else negative (it
# takes probability from the others), and each row sums to zero.
#
# **Exercise 2.** Write the softmax backward for a whole batch of rows: `p` and `dp`
# have shape `(..., N)` and the softmax ran over the last axis. Use the simplified
# formula, vectorised (no Python loop). The forward caches its output `p`. Mind the
# shapes: each row's sum must broadcast back over that row.
# %% [markdown] lang="zh"
# 对角线上的元素为正（增大 $z_i$ 会增大 $p_i$），其余元素都为负（增大 $z_i$ 会从其他输出那里夺走概率），
# 并且每一行之和为零。
#
# **练习 2**：写出 softmax 的反向传播，一次处理一整批行：`p` 和 `dp` 的形状为 `(..., N)`，softmax
# 是沿最后一个轴做的。用化简后的公式，并写成向量化的形式（不用 Python 循环）。前向传播把输出 `p` 存进了缓存。
# 注意形状：每一行算出的和必须能沿这一行广播回去。

# %%
def softmax_with_cache(z):
    """z: (..., N) -> p (..., N), cache = p (the output is all the backward needs)."""
    p, _ = softmax_forward(z)
    return p, p


def my_softmax_backward(dp, p):
    """dp: (..., N) = dL/dp, p: (..., N) the cached output -> {"z": dL/dz (..., N)}."""
    # BEGIN SOLUTION
    dz = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    # END SOLUTION
    return {"z": dz}

# %% tags=["check"]
inputs = {"z": rng.standard_normal((4, 7))}
assert check(tr("softmax backward", "softmax 的反向传播"), softmax_with_cache, my_softmax_backward, inputs)

# %% tags=["solution-only"]
z = rng.standard_normal((3, 5, 7))
p, cache = softmax_forward(z)
dp = rng.standard_normal(p.shape)
assert np.allclose(my_softmax_backward(dp, p)["z"], softmax_backward(dp, cache))
print("my_softmax_backward == minigpt.ops.softmax.softmax_backward")

# %% [markdown]
# ## 5. The backward pass through attention
#
# Read the forward from the bottom up and undo one line at a time. With
# $s = 1/\sqrt{d_k}$ and $G = \partial L / \partial Y$ (our `dy`):
#
# | forward | backward |
# |---|---|
# | $Y = AV$ | $\partial L/\partial A = G V^T, \quad \partial L/\partial V = A^T G$ |
# | $A = \text{softmax}(\tilde S)$ | $\partial L/\partial \tilde S = A \odot \left(\partial L/\partial A - \text{rowsum}(A \odot \partial L/\partial A)\right)$ |
# | $\tilde S = $ mask$(S)$ | masked entries have $A = 0$, so their gradient is already 0 |
# | $S = s\,QK^T$ | $\partial L/\partial Q = s\,(\partial L/\partial S) K, \quad \partial L/\partial K = s\,(\partial L/\partial S)^T Q$ |
#
# The product rule for $Y = AV$: $Y_{id} = \sum_j A_{ij}V_{jd}$, so $V_{jd}$ receives
# $\sum_i A_{ij} G_{id}$, which is $(A^TG)_{jd}$; $A_{ij}$ receives $\sum_d G_{id}V_{jd}$,
# which is $(GV^T)_{ij}$. The same argument, twice, gives the last row.
#
# Below, `attention_by_parts` is the forward written out with `minigpt`'s mask and
# softmax; it caches what the backward needs (`q, k, v` and the weights `att`).
#
# **Exercise 3.** Write `my_attention_backward`. Shapes are `(B, nh, T, hs)` for
# q, k, v, y and `(B, nh, T, T)` for att. You may call
# `softmax_backward(datt, SoftmaxCache(att))` from `minigpt` (its cache names the one
# thing it keeps, `p`), or your own `my_softmax_backward(datt, att)["z"]`. Remember
# `.swapaxes(-1, -2)` transposes the last two axes of a batch of matrices.
# %% [markdown] lang="zh"
# ## 5. 注意力的反向传播
#
# 把前向传播从下往上读，一行一行地倒回去。记 $s = 1/\sqrt{d_k}$，$G = \partial L / \partial Y$（即代码中的
# `dy`）：
#
# | 前向传播 | 反向传播 |
# |---|---|
# | $Y = AV$ | $\partial L/\partial A = G V^T, \quad \partial L/\partial V = A^T G$ |
# | $A = \text{softmax}(\tilde S)$ | $\partial L/\partial \tilde S = A \odot \left(\partial L/\partial A - \text{行和}(A \odot \partial L/\partial A)\right)$ |
# | $\tilde S = \text{掩码}(S)$ | 被遮住的元素处 $A = 0$，所以那里的梯度本来就是 0 |
# | $S = s\,QK^T$ | $\partial L/\partial Q = s\,(\partial L/\partial S) K, \quad \partial L/\partial K = s\,(\partial L/\partial S)^T Q$ |
#
# 对 $Y = AV$ 用乘积法则（product rule）：$Y_{id} = \sum_j A_{ij}V_{jd}$，所以 $V_{jd}$ 得到的梯度是
# $\sum_i A_{ij} G_{id}$，也就是 $(A^TG)_{jd}$；$A_{ij}$ 得到的是 $\sum_d G_{id}V_{jd}$，也就是
# $(GV^T)_{ij}$。同样的推理再用两次，就得到表格的最后一行。
#
# 下面的 `attention_by_parts` 用 `minigpt` 的掩码和 softmax 把前向传播一步一步写出来；
# 它把反向传播需要的东西（`q, k, v` 和权重 `att`）存进缓存。
#
# **练习 3**：写出 `my_attention_backward`。q、k、v、y 的形状为 `(B, nh, T, hs)`，att 的形状为
# `(B, nh, T, T)`。你可以调用 `minigpt` 的
# `softmax_backward(datt, SoftmaxCache(att))`（它的缓存只保存一样东西，名字就叫 `p`），也可以用你自己写的
# `my_softmax_backward(datt, att)["z"]`。提示：`.swapaxes(-1, -2)` 交换最后两个轴，也就是把一批矩阵各自转置。

# %%
def attention_by_parts(q, k, v):
    """q, k, v: (B, nh, T, hs) -> y (B, nh, T, hs), cache (q, k, v, att)."""
    T, hs = q.shape[-2:]
    s = q @ k.swapaxes(-1, -2) / np.sqrt(hs)          # (B, nh, T, T)
    s[..., causal_mask(T, T)] = -np.inf
    att, _ = softmax_forward(s)                        # (B, nh, T, T)
    return att @ v, (q, k, v, att)


def my_attention_backward(dy, cache):
    """dy: (B, nh, T, hs) -> {"q": dq, "k": dk, "v": dv}, each (B, nh, T, hs)."""
    q, k, v, att = cache
    scale = 1.0 / np.sqrt(q.shape[-1])
    # BEGIN SOLUTION
    dv = att.swapaxes(-1, -2) @ dy                     # Y = A V  ->  dV = A^T G
    datt = dy @ v.swapaxes(-1, -2)                     #          ->  dA = G V^T
    ds = softmax_backward(datt, SoftmaxCache(att))     # through the softmax
    dq = ds @ k * scale                                # S = s Q K^T
    dk = ds.swapaxes(-1, -2) @ q * scale
    # END SOLUTION
    return {"q": dq, "k": dk, "v": dv}


q, k, v = (rng.standard_normal((2, 2, 5, 4)) for _ in range(3))   # B=2, nh=2, T=5, hs=4
assert np.allclose(attention_by_parts(q, k, v)[0], attention_forward(q, k, v)[0])
print(tr("attention_by_parts == minigpt's attention_forward",
         "attention_by_parts == minigpt 的 attention_forward"))

# %% tags=["check"]
inputs = {"q": q, "k": k, "v": v}
assert check(tr("attention backward", "注意力的反向传播"), attention_by_parts, my_attention_backward, inputs)

# %% tags=["solution-only"]
dy = rng.standard_normal(q.shape)
_, cache = attention_forward(q, k, v)
lib = attention_backward(dy, cache)
mine = my_attention_backward(dy, attention_by_parts(q, k, v)[1])
for name, g in zip("qkv", lib):
    assert np.allclose(mine[name], g)
print("my_attention_backward == minigpt.ops.attention.attention_backward")

# %% [markdown]
# The library's own pair passes the same numerical test. As in notebook 0, `gradcheck`
# nudges every input number by $\pm h$, measures the change of $\sum_i y_i g_i$ for a random $g$, and
# compares with the backward's answer:
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}.$$
# %% [markdown] lang="zh"
# 库里自带的这一对函数也通过了同样的数值检验。与笔记本 0 一样，`gradcheck` 把输入中的每个数分别加上和减去 $h$，
# 对一个随机的 $g$ 测量 $\sum_i y_i g_i$ 的变化，再与反向传播给出的结果相比较：
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}.$$

# %%
report = gradcheck(attention_forward, attention_backward, {"q": q, "k": k, "v": v})
print(report)
assert report.ok

# %% [markdown]
# Finally, the mask seen from the backward side: give an upstream gradient to the
# output of ONE query position $i$ and see which keys receive gradient. Only keys
# $j \le i$ do; no gradient flows to the future, exactly as no information flowed from it.
# %% [markdown] lang="zh"
# 最后，从反向传播这一侧看掩码：只给某一个查询位置 $i$ 的输出一个上游梯度（upstream gradient），
# 看看哪些键得到了梯度。只有 $j \le i$ 的键有梯度：梯度不会流向未来，正如信息不会从未来流过来。

# %%
T = 8
q, k, v = (rng.standard_normal((1, 1, T, 4)) for _ in range(3))
_, cache = attention_forward(q, k, v)
reach = np.zeros((T, T))
for i in range(T):
    dy = np.zeros_like(q)
    dy[..., i, :] = rng.standard_normal(4)              # only output i matters
    dq, dk, dv = attention_backward(dy, cache)
    reach[i] = np.linalg.norm(dk[0, 0], axis=-1) + np.linalg.norm(dv[0, 0], axis=-1)
assert np.all(np.triu(reach, k=1) == 0)                 # exactly zero for j > i
assert np.all(reach[np.tril_indices(T)] > 0)              # and nonzero for j <= i

fig, ax = plt.subplots(figsize=(5, 4.2))
im = ax.imshow(reach, cmap="magma")
ax.set_xlabel(tr("key/value position j", "键和值的位置 j"))
ax.set_ylabel(tr("query position i that has a gradient", "输出带梯度的查询位置 i"))
ax.set_title(tr("|∂L/∂k_j| + |∂L/∂v_j|: no gradient to the future",
                "|∂L/∂k_j| + |∂L/∂v_j|：梯度不流向未来"))
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# **Summary.** $\text{softmax}(QK^T/\sqrt{d_k})V$ is two matrix products, a scale and
# a softmax. The $\sqrt{d_k}$ keeps the softmax out of saturation; the causal mask makes a
# position blind to its future; the backward is the same four lines read in reverse, and
# `minigpt.gradcheck` confirms them to a relative error of a few 1e-10, measured against
# the largest gradient entry. Next: notebook 2, where the positions come from.
#
# ## Questions to think about (思考题)
#
# 1. Remove the causal mask (call your `my_attention_forward` without it, or set
#    `future` to all `False`) and rerun the causality test of section 3. What changes?
#    A GPT trained without the mask reaches a very low training loss quickly; why is
#    it then useless for generating text?
# 2. Why divide by $\sqrt{d_k}$ and not by $d_k$? Rerun the experiment of section 2
#    with `s / d` in place of `s / np.sqrt(d)`: what do the weights look like at
#    $d_k = 1024$, and what does the model lose?
# 3. Adding the same number to every score of a row does not change the softmax. What
#    does that imply for each row of $\partial L/\partial S$? Check it on
#    `softmax_backward(dp, SoftmaxCache(p))` for a random `dp`, and say why
#    subtracting the row maximum before `np.exp` changes the weights not at all.
# %% [markdown] lang="zh"
# **小结**：$\text{softmax}(QK^T/\sqrt{d_k})V$ 不过是两次矩阵乘法、一次缩放和一次 softmax。除以 $\sqrt{d_k}$ 让
# softmax 不至于饱和；因果掩码让每个位置看不见自己的未来；
# 反向传播就是把同样的四行倒过来读，`minigpt.gradcheck` 验证了它们，相对误差只在 $10^{-10}$
# 量级（以梯度中绝对值最大的分量为基准）。下一步是笔记本 2：位置信息从哪里来。
#
# ## 思考题
#
# 1. 去掉因果掩码（调用你的 `my_attention_forward` 时不加掩码，或者把 `future` 设成全 `False`），再运行第 3
#    节的因果性检验。结果有什么变化？不加掩码训练的 GPT 很快就能把训练损失降得很低，
#    为什么它却无法用来生成文本？
# 2. 为什么除以 $\sqrt{d_k}$，而不是除以 $d_k$？把第 2 节实验中的 `s / np.sqrt(d)` 换成 `s / d`，
#    再运行一次：$d_k = 1024$ 时权重是什么样子？模型又会失去什么？
# 3. 给一行中的每个分数都加上同一个数，softmax 的结果不变。这对 $\partial L/\partial S$ 的每一行意味着什么？
#    对一个随机的 `dp` 用 `softmax_backward(dp, SoftmaxCache(p))` 验证一下，并说明为什么在 `np.exp`
#    之前减去每行的最大值完全不会改变权重。
