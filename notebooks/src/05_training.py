# %% [markdown]
# # 5 · Training, in the text's seven steps
#
# Our text (§3.4, 训练过程) lists the training procedure as seven steps:
#
# 1. data preprocessing (数据预处理)
# 2. model initialisation (模型初始化)
# 3. forward pass (正向传播)
# 4. loss computation (损失计算)
# 5. backward pass (反向传播)
# 6. parameter update (参数更新)
# 7. iterate (迭代训练)
#
# Each step below is one section that calls `minigpt`, checks what it claims, and
# draws it. The data is the one the chat model of notebook 6 learns from: the English
# and Chinese dialogues of the chatterbot corpus, one character per token.
# %% [markdown] lang="zh"
# # 5 · 训练：教材的七个步骤
#
# 教材第 3.4 节“训练过程”把训练分成七步：
#
# 1. 数据预处理
# 2. 模型初始化
# 3. 正向传播
# 4. 损失计算
# 5. 反向传播
# 6. 参数更新
# 7. 迭代训练
#
# 下面每一步各占一节：调用 `minigpt` 完成这一步，检验它应有的性质，再把结果画出来。
# 所用的数据就是笔记本 6 中聊天模型学习的那一份：chatterbot 语料库（corpus）里的英文和中文对话，
# 每个字符是一个词元（token）。

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import time
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.config import GPTConfig
from minigpt.data import CharDataset, format_conversation, load_conversations
from minigpt.gradcheck import check, check_close
from minigpt.model import GPT
from minigpt.ops.loss import cross_entropy_backward, cross_entropy_forward
from minigpt.ops.softmax import softmax_forward
from minigpt.optim import AdamW, clip_grad_norm, lr_at
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)

# %% [markdown]
# ## Step 1 · Data preprocessing
#
# A model reads integers, so the text becomes integers. Each dialogue is written as one
# string with three marker tokens that say who speaks and where a turn ends,
#
# `<|user|>question<|end|><|bot|>answer<|end|>`,
#
# and every character (and each marker) gets an id, $0 \le \text{id} < V$. A training
# example is a window of $T + 1$ consecutive ids $d_0, \dots, d_T$: the inputs are the
# first $T$ and the targets the same ids shifted by one, because the model learns to
# predict the next character:
#
# $$x_t = d_t, \qquad y_t = d_{t+1}, \qquad t = 0, \dots, T-1.$$
#
# The dialogues are split 90/10 into training and validation *by conversation*, so no
# validation dialogue is ever trained on.
# %% [markdown] lang="zh"
# ## 第 1 步 · 数据预处理
#
# 教材说这一步要“将训练数据转换为模型可以理解的格式”。
# 模型读的是整数，所以文本要变成整数。
# 每段对话写成一个字符串，其中三个特殊标记（special tokens）表明谁在说话、每一轮发言在哪里结束：
#
# `<|user|>question<|end|><|bot|>answer<|end|>`，
#
# 每个字符（以及每个标记）都有一个编号（id），$0 \le \text{id} < V$，$V$ 是词表（vocabulary）的大小。
# 一个训练样本是 $T + 1$ 个连续的编号 $d_0, \dots, d_T$：前 $T$ 个是输入，
# 目标则是同一串编号向后错开一位，因为模型要学的是预测下一个字符：
#
# $$x_t = d_t, \qquad y_t = d_{t+1}, \qquad t = 0, \dots, T-1.$$
#
# 对话按 90/10 的比例分成训练集（training set）和验证集（validation set），
# 而且是*按对话*划分的，所以验证集里的任何一段对话都不会参与训练。

# %%
conversations = load_conversations(("english", "chinese"))
data = CharDataset.from_conversations(conversations)
tok = data.tokenizer
print(data.describe())                 # in the edition's language (minigpt.language)
print(tr(f"\none formatted dialogue: {format_conversation(conversations[0])}",
         f"\n格式化后的一段对话：{format_conversation(conversations[0])}"))

example = "你好，我是人类，请问你是谁？"               # the text's own example input
ids = tok.encode(example)
assert tok.decode(ids) == example and len(ids) == len(example)   # one id per character
one_dialogue = format_conversation(conversations[1])
assert tok.decode(tok.encode(one_dialogue)) == one_dialogue
assert tok.encode("<|user|>")[0] == tok.user_id                    # a marker is ONE id

B, T = 16, 64
x, y = data.get_batch("train", B, T, rng)
assert x.shape == y.shape == (B, T)
assert np.array_equal(y[:, :-1], x[:, 1:])                          # y is x shifted by one
print(f"\n{example} -> {ids}")
print(tr(f"a batch: x {x.shape}, y {y.shape}; first window decoded:\n{tok.decode(x[0])!r}",
         f"一个批次：x {x.shape}，y {y.shape}；第一个窗口解码后是：\n{tok.decode(x[0])!r}"))

# %%
counts = np.bincount(data.tokens["train"], minlength=tok.vocab_size)
freq = np.sort(counts[counts > 0])[::-1]
is_cjk = np.array([len(s) == 1 and "\u4e00" <= s <= "\u9fff" for s in tok.itos])
assert freq.sum() == len(data.tokens["train"])
print(tr(f"{(counts == 1).sum()} characters occur once in the training split; "
         f"{is_cjk.sum()} of the {tok.vocab_size} tokens are Chinese characters",
         f"训练集中有 {(counts == 1).sum()} 个字符只出现一次；"
         f"{tok.vocab_size} 个词元中有 {is_cjk.sum()} 个是汉字"))

fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(np.arange(1, len(freq) + 1), freq, ".")
ax.set_xlabel(tr("rank of the character (1 = most frequent)", "字符按出现次数的排名（1 = 最常见）"))
ax.set_ylabel(tr("occurrences in the training split", "在训练集中出现的次数"))
ax.set_title(tr(f"Character frequencies: a few common, a long tail (V = {tok.vocab_size})",
                f"字符频率：少数字符很常见，其余是一条长尾（V = {tok.vocab_size}）"))
plt.show()

# %% [markdown]
# The long tail matters: most Chinese characters appear a handful of times, so a small
# model will learn the English dialogues far better than the Chinese ones.
#
# ## Step 2 · Model initialisation
#
# `GPT(config, seed)` draws every parameter the GPT-2 way: weight matrices and
# embeddings from $\mathcal N(0, 0.02^2)$, the two projections that write into the
# residual stream from $\mathcal N\big(0, (0.02/\sqrt{2L})^2\big)$ (notebook 4 showed why),
# layer-norm gains $\gamma = 1$ and all biases $0$. Small random weights break the
# symmetry between units (with all-zero weights every unit would get the same gradient
# and stay identical) without saturating anything.
# %% [markdown] lang="zh"
# 这条长尾很重要：大多数汉字只出现寥寥几次，所以小模型学英文对话会比学中文对话好得多。
#
# ## 第 2 步 · 模型初始化
#
# 教材说这一步要“初始化模型参数，如权重和偏置”，通常称为参数初始化（parameter initialisation）。`GPT(config, seed)` 按 GPT-2 的做法随机抽取每个参数的初值：
# 权重矩阵和嵌入（embedding）取自 $\mathcal N(0, 0.02^2)$；
# 每个块中向残差流（residual stream）写入的两个投影取自 $\mathcal N\big(0, (0.02/\sqrt{2L})^2\big)$，
# 其中 $L$ 是层数（原因见笔记本 4）；
# 层归一化（layer normalisation）的增益 $\gamma = 1$，所有偏置为 $0$。
#
# 小的随机权重打破了各个单元之间的对称性（如果权重全为零，每个单元得到的梯度都一样，它们就会永远一模一样），
# 同时又不会让任何东西饱和（saturation）。

# %%
config = GPTConfig(vocab_size=tok.vocab_size, block_size=T, n_layer=2, n_head=4, n_embd=64)
model = GPT(config, seed=0)
params = model.params
print(tr(f"{model.num_params():,} parameters; config: {config}",
         f"共 {model.num_params():,} 个参数；配置：{config}"))

assert abs(params["wte"].std() / 0.02 - 1) < 0.05
resid_std = 0.02 / np.sqrt(2 * config.n_layer)
assert abs(params["h.0.attn.c_proj.w"].std() / resid_std - 1) < 0.1
assert np.all(params["h.0.ln_1.w"] == 1) and np.all(params["h.1.mlp.c_fc.b"] == 0)

fig, ax = plt.subplots(figsize=(7, 3.5))
for name in ("wte", "h.0.mlp.c_fc.w", "h.0.mlp.c_proj.w"):
    ax.hist(params[name].ravel(), bins=80, histtype="step", density=True,
            label=tr(f"{name}  (std {params[name].std():.4f})",
                     f"{name}（标准差 {params[name].std():.4f}）"))
ax.set_xlabel(tr("weight value", "权重值"))
ax.set_ylabel(tr("density", "概率密度"))
ax.set_title(tr("Initial weights: N(0, 0.02²), residual projections narrower",
                "初始权重：N(0, 0.02²)，残差投影的分布更窄"))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Step 3 · Forward pass
#
# `model.forward(x)` runs the whole network of notebook 4 and returns the logits: for
# every window and position, one score per vocabulary entry, shape $(B, T, V)$. A
# softmax turns scores into next-character probabilities. Freshly initialised, the
# model knows nothing, and its predictions should be close to uniform: every probability
# within a small factor of $1/V$, and a loss close to $\log V$.
# %% [markdown] lang="zh"
# ## 第 3 步 · 前向传播
#
# 教材称这一步为“正向传播”，即“将输入数据通过模型中的各个层次进行计算，得到预测结果”。
# 更常用的说法是前向传播（forward pass），下面都用这个说法。`model.forward(x)` 运行笔记本 4 搭好的整个网络，返回对数几率（logits）：
# 每个窗口的每个位置，对词表中的每一项给出一个分数，形状为 $(B, T, V)$。softmax 把这些分数变成下一个字符的概率。
#
# 刚初始化的模型什么也不知道，它的预测应当接近均匀分布：
# 每个概率与 $1/V$ 相差不过一个不大的倍数，损失接近 $\log V$。

# %%
logits, _ = model.forward(x)
probs, _ = softmax_forward(logits.astype(np.float64))
assert logits.shape == (B, T, config.vocab_size)
assert np.allclose(probs.sum(axis=-1), 1)
assert probs.max() < 3 / config.vocab_size                 # nothing stands out yet
print(tr(f"logits {logits.shape}; largest probability {probs.max():.2e} vs uniform "
         f"1/V = {1 / config.vocab_size:.2e}",
         f"对数几率 {logits.shape}；最大的概率是 {probs.max():.2e}，"
         f"均匀分布为 1/V = {1 / config.vocab_size:.2e}"))

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(np.sort(probs[0, 0])[::-1], label=tr("p(next char), sorted, one position",
                                             "p(下一个字符)，一个位置，从大到小排列"))
ax.axhline(1 / config.vocab_size, color="gray", ls="--", label=tr("uniform 1/V", "均匀分布 1/V"))
ax.set_xlabel(tr("vocabulary entries, sorted", "词表中的各项（按概率排列）"))
ax.set_ylabel(tr("probability", "概率"))
ax.set_ylim(0, 2.5 / config.vocab_size)
ax.set_title(tr("Before training, every next character is about equally likely",
                "训练之前，每个字符成为下一个字符的可能性都差不多"))
ax.legend()
plt.show()

# %% [markdown]
# ## Step 4 · Loss computation
#
# The loss is the cross-entropy: the average, over all $N = BT$ positions, of minus
# the log-probability the model gave to the character that really came next,
#
# $$L = -\frac{1}{N}\sum_{n=1}^{N} \log p_{n, y_n}, \qquad p_n = \text{softmax}(z_n).$$
#
# A model that guesses uniformly scores $\log V$: with $V \approx 1340$ that is about
# 7.2 nats. This number is the baseline every later loss is compared with.
# `model.forward(x, y)` returns it along with the logits.
# %% [markdown] lang="zh"
# ## 第 4 步 · 损失计算
#
# 教材说这一步要“计算模型预测结果与真实值之间的差异，得到损失值”。
# 这里的损失是交叉熵（cross-entropy）：
# 在每个位置上，取模型给“真正的下一个字符”的概率的负对数，再对全部 $N = BT$ 个位置求平均，
#
# $$L = -\frac{1}{N}\sum_{n=1}^{N} \log p_{n, y_n}, \qquad p_n = \text{softmax}(z_n).$$
#
# 均匀猜测的模型得到的损失是 $\log V$：$V \approx 1340$ 时约为 7.2 奈特（nat）。
# 后面的每个损失都以这个数为基准来比较。`model.forward(x, y)` 在返回对数几率的同时也返回这个损失。

# %%
_, loss = model.forward(x, y)
per_position = -np.log(np.take_along_axis(probs, y[..., None], axis=-1)[..., 0])   # (B, T)
assert np.isclose(loss, per_position.mean(), rtol=1e-5)
assert abs(loss - np.log(config.vocab_size)) < 0.05
print(tr(f"loss {loss:.4f}, log V = {np.log(config.vocab_size):.4f}",
         f"损失 {loss:.4f}，log V = {np.log(config.vocab_size):.4f}"))

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(per_position.ravel(), bins=40)
ax.axvline(np.log(config.vocab_size), color="red", ls="--", label="log V")
ax.set_xlabel(tr("−log p(true next character), per position", "每个位置的 −log p(真正的下一个字符)"))
ax.set_ylabel(tr("positions", "位置数"))
ax.set_title(tr(f"Initial loss {loss:.3f} ≈ log V: the uniform guess",
                f"初始损失 {loss:.3f} ≈ log V：相当于均匀猜测"))
ax.legend()
plt.show()

# %% [markdown]
# ## Step 5 · Backward pass
#
# `model.backward()` runs every op's hand-written backward in reverse order (notebooks
# 1–4 derived and checked them) and returns a dict of gradients with exactly the keys
# and shapes of `model.params`. It starts at the loss, where softmax and cross-entropy
# together have the simple gradient
#
# $$\frac{\partial L}{\partial z_{n,v}} = \frac{p_{n,v} - [v = y_n]}{N}:$$
#
# push up the true character, push down everything else in proportion to its
# probability. Each row of that gradient sums to zero.
# %% [markdown] lang="zh"
# ## 第 5 步 · 反向传播
#
# 教材说这一步要“根据损失值，反向传播计算每个参数的梯度”。`model.backward()` 按相反的顺序逐个运行每个运算手写的反向传播（backpropagation）函数，
# 这些函数都在笔记本 1–4 中推导并检验过；
# 它返回一个梯度（gradient）字典，键和形状与 `model.params` 完全相同。
# 它从损失出发；在这里，softmax 和交叉熵合在一起的梯度很简单
# （$[v = y_n]$ 在 $v = y_n$ 时为 1，否则为 0）：
#
# $$\frac{\partial L}{\partial z_{n,v}} = \frac{p_{n,v} - [v = y_n]}{N}:$$
#
# 把真正的那个字符的分数往上推，其余每个字符按各自的概率大小往下压。
# 这个梯度的每一行之和都为零。

# %%
grads = model.backward()
assert grads.keys() == params.keys()
assert all(grads[k].shape == params[k].shape for k in params)
assert all(np.all(np.isfinite(g)) for g in grads.values())

_, c_loss = cross_entropy_forward(logits.astype(np.float64), y)
dlogits = cross_entropy_backward(1.0, c_loss)                        # (B, T, V)
assert np.allclose(dlogits.sum(axis=-1), 0, atol=1e-12)
print(tr("one gradient per parameter, same shapes; every row of dL/dlogits sums to 0",
         "每个参数都有一个形状相同的梯度；dL/dlogits 的每一行之和为 0"))

norms = {k: float(np.linalg.norm(g)) for k, g in grads.items()}
fig, ax = plt.subplots(figsize=(10, 3.8))
ax.bar(range(len(norms)), list(norms.values()))
ax.set_xticks(range(len(norms)), list(norms), rotation=70, ha="right", fontsize=7)
ax.set_yscale("log")
ax.set_ylabel(tr("‖gradient‖", "‖梯度‖"))
ax.set_title(tr("Gradient size per parameter tensor, first batch",
                "第一个批次上每个参数张量的梯度大小"))
plt.tight_layout()
plt.show()

# %% [markdown]
# **Exercise 1.** Write the fused cross-entropy backward (交叉熵的反向传播). The forward
# below keeps what the backward needs: the probabilities `p`, shape $(B, T, V)$, and the
# target ids `y`, shape $(B, T)$. The upstream gradient `dloss` is a scalar: 1.0 when
# $L$ is the loss itself, anything else when the loss is one (weighted) term of a
# larger $L$ (the checker passes a random one). Return
#
# $$\frac{\partial L}{\partial z_{b,t,v}} = \text{dloss}\cdot\frac{p_{b,t,v} - [v = y_{b,t}]}{N}, \qquad N = BT,$$
#
# vectorised, without a Python loop. `np.eye(V)[y]` is one way to get the one-hot rows.
# %% [markdown] lang="zh"
# **练习 1**：写出交叉熵的反向传播（把 softmax 和交叉熵合在一起求导）。
# 下面的前向函数保存了反向传播需要的东西：
# 概率 `p`，形状为 $(B, T, V)$；目标编号 `y`，形状为 $(B, T)$。
# 上游梯度（upstream gradient）`dloss` 是一个标量：$L$ 就是这个损失本身时，它等于 1.0；
# 这个损失只是某个更大的 $L$ 中（可能带权重的）一项时，它可以是别的值（检验程序会传入一个随机值）。
# 要返回的是
#
# $$\frac{\partial L}{\partial z_{b,t,v}} = \text{dloss}\cdot\frac{p_{b,t,v} - [v = y_{b,t}]}{N}, \qquad N = BT,$$
#
# 要求向量化实现，不用 Python 循环。
# 得到独热（one-hot）行的一种办法是 `np.eye(V)[y]`。

# %%
def cross_entropy_with_cache(z, y):
    """z: (B, T, V) logits, y: (B, T) target ids -> loss (float), cache (p, y)."""
    loss, cache = cross_entropy_forward(z, y)
    return loss, (cache.probs.reshape(z.shape), y)        # p: (B, T, V)


def my_cross_entropy_backward(dloss, cache):
    """dloss: scalar dL/dloss, cache: (p, y) -> {"z": dL/dz, (B, T, V)}."""
    p, y = cache
    # BEGIN SOLUTION
    N = y.size                                            # B * T positions
    onehot = np.eye(p.shape[-1])[y]                       # (B, T, V): 1 at each target
    dz = dloss * (p - onehot) / N
    # END SOLUTION
    return {"z": dz}

# %% tags=["check"]
ex_rng = np.random.default_rng(5)
inputs = {"z": 2 * ex_rng.standard_normal((2, 3, 7)), "y": ex_rng.integers(0, 7, size=(2, 3))}
assert check(tr("cross-entropy backward", "交叉熵的反向传播"), cross_entropy_with_cache, my_cross_entropy_backward, inputs)

# %% tags=["solution-only"]
mine = my_cross_entropy_backward(1.0, (probs, y))["z"]     # the real batch, V = 1,340
assert np.allclose(mine, dlogits, rtol=1e-10, atol=1e-15)
print(tr("my_cross_entropy_backward == minigpt.ops.loss.cross_entropy_backward on the batch",
         "在这个批次上 my_cross_entropy_backward == minigpt.ops.loss.cross_entropy_backward"))

# %% [markdown]
# ## Step 6 · Parameter update
#
# Plain gradient descent, $\theta \leftarrow \theta - \eta\,g$, works but is slow: one
# learning rate $\eta$ must suit parameters whose gradients differ by orders of
# magnitude (see the plot above). AdamW (`minigpt.optim.AdamW`) keeps running averages
# of each parameter's gradient and squared gradient and scales each step by them:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \qquad
#   \hat m = \frac{m}{1-\beta_1^t} \quad \hat v = \frac{v}{1-\beta_2^t}$$
# $$\theta \leftarrow \theta - \eta\left(\frac{\hat m}{\sqrt{\hat v} + \epsilon} + \lambda\,\theta\right)$$
#
# The weight decay $\lambda\theta$ is added to the step, not to the gradient ("decoupled"),
# and only matrices and embeddings decay. The step number $t$ counts from 1; since $m$
# and $v$ start at zero, the bias corrections $1 - \beta^t$ undo their pull towards 0
# in the first steps.
#
# **Exercise 2.** Write one AdamW update (AdamW 更新) for one array: given the parameter
# `p`, its gradient `g`, its moments `m`, `v` and the step number `t`, return the new
# `(p, m, v)`. Decay only arrays with `p.ndim >= 2` (weight matrices and embeddings);
# biases and layer-norm gains and shifts are 1-D and do not decay. `my_adamw` below
# runs your update over every array of a dict for several steps; the check compares
# three steps with `minigpt.optim.AdamW.step` on copies of the same arrays.
# %% [markdown] lang="zh"
# ## 第 6 步 · 参数更新
#
# 教材说这一步要“根据梯度信息，更新模型参数”。
# 最朴素的梯度下降（gradient descent）$\theta \leftarrow \theta - \eta\,g$ 能用，但很慢：
# 各个参数的梯度大小相差几个数量级（见上图），一个学习率（learning rate）$\eta$ 很难同时适合所有参数。
# 优化器（optimiser）AdamW（`minigpt.optim.AdamW`）为每个参数记录梯度和梯度平方的滑动平均，
# 并用它们来调整每一步的大小：
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \qquad
#   \hat m = \frac{m}{1-\beta_1^t} \quad \hat v = \frac{v}{1-\beta_2^t}$$
# $$\theta \leftarrow \theta - \eta\left(\frac{\hat m}{\sqrt{\hat v} + \epsilon} + \lambda\,\theta\right)$$
#
# 权重衰减（weight decay）项 $\lambda\theta$ 直接加在这一步的更新量上，而不是加进梯度里，
# 这就是所谓“解耦”（decoupled）；而且只有矩阵和嵌入才做衰减。
# 步数 $t$ 从 1 开始计；$m$ 和 $v$ 都从零开始，
# 偏差修正（bias correction）$1 - \beta^t$ 在最初几步抵消了它们偏向 0 的倾向。
#
# **练习 2**：为一个数组写一次 AdamW 更新。
# 给定参数 `p`、它的梯度 `g`、它的一阶矩（first moment）`m` 和二阶矩（second moment）`v`，
# 以及步数 `t`，返回新的 `(p, m, v)`。
# 只对 `p.ndim >= 2` 的数组（权重矩阵和嵌入）做衰减；
# 偏置以及层归一化的增益和偏移都是一维的，不做衰减。
# 下面的 `my_adamw` 把你的更新作用到一个字典中的每个数组上，连续做若干步；
# 检验在同样数组的副本上各跑三步，把结果与 `minigpt.optim.AdamW.step` 的结果相比较。

# %%
def my_adamw_update(p, g, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    """One AdamW update of one array at step t = 1, 2, ...; p, g, m, v: same shape.
    -> the new (p, m, v)."""
    # BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * g                      # running mean of g
    v = beta2 * v + (1 - beta2) * g**2                   # running mean of g^2
    m_hat = m / (1 - beta1**t)                           # bias corrections
    v_hat = v / (1 - beta2**t)
    update = m_hat / (np.sqrt(v_hat) + eps)
    if p.ndim >= 2:                                      # decoupled, matrices only
        update = update + weight_decay * p
    p = p - lr * update
    # END SOLUTION
    return p, m, v


def my_adamw(params, grad_steps, hyper):
    """my_adamw_update on every array, once per grads dict in grad_steps -> params.
    hyper: lr, beta1, beta2, eps, weight_decay."""
    m = {name: np.zeros_like(p) for name, p in params.items()}
    v = {name: np.zeros_like(p) for name, p in params.items()}
    for t, grads in enumerate(grad_steps, start=1):
        for name in params:
            params[name], m[name], v[name] = my_adamw_update(
                params[name], grads[name], m[name], v[name], t, **hyper)
    return params

# %% tags=["check"]
def minigpt_adamw(params, grad_steps, hyper):
    """The same steps with minigpt.optim.AdamW (which updates params in place) -> params."""
    opt = AdamW(params, lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]),
                eps=hyper["eps"], weight_decay=hyper["weight_decay"])
    for grads in grad_steps:
        opt.step(grads)
    return params


ex_rng = np.random.default_rng(6)
ex_params = {"wte": ex_rng.standard_normal((5, 3)),                 # a matrix: decays
             "ln_f.w": 1 + 0.1 * ex_rng.standard_normal(3)}         # a gain: does not
ex_grads = [{name: ex_rng.standard_normal(p.shape) for name, p in ex_params.items()}
            for _ in range(3)]
hyper = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1)
assert check_close(tr("AdamW step", "AdamW 的一步更新"), my_adamw, minigpt_adamw, ex_params, ex_grads, hyper)

# %% tags=["solution-only"]
def real():
    """A float64 copy of the model's parameters (the model's own arrays stay as they are)."""
    return {name: p.astype(np.float64) for name, p in params.items()}


real_grads = [{name: g.astype(np.float64) for name, g in grads.items()}]
mine, theirs = my_adamw(real(), real_grads, hyper), minigpt_adamw(real(), real_grads, hyper)
assert all(np.allclose(mine[name], theirs[name], rtol=1e-12, atol=0) for name in params)
print(tr(f"my_adamw == minigpt.optim.AdamW on all {len(params)} arrays of the model of step 2",
         f"在第 2 步模型的全部 {len(params)} 个数组上 my_adamw == minigpt.optim.AdamW"))

# %% [markdown]
# Two more guards. The first, `clip_grad_norm`, treats all gradient arrays as one long
# vector: if its length, the global norm
#
# $$\lVert g\rVert = \sqrt{\textstyle\sum_{\text{arrays } a}\ \sum_i g_{a,i}^2},$$
#
# exceeds a limit $c$, every array is multiplied by the same factor $c/\lVert g\rVert$:
# $g \leftarrow g \cdot \min(1, c/\lVert g\rVert)$. One factor for all keeps the
# direction of the step and only shortens it, so one bad batch cannot throw the
# parameters far.
#
# **Exercise 3.** Write the clipping rule (梯度裁剪). Scale the arrays of `grads` *in
# place* (`g *= ...`: the optimiser reads the same arrays) and return the norm measured
# *before* clipping, the number worth logging. The check tries one set of gradients
# that needs clipping and one that does not.
# %% [markdown] lang="zh"
# 还有两道保险。第一道是梯度裁剪（gradient clipping）`clip_grad_norm`：
# 它把所有梯度数组看成一个长向量，如果这个向量的长度，也就是全局范数（global norm）
#
# $$\lVert g\rVert = \sqrt{\textstyle\sum_{\text{数组 } a}\ \sum_i g_{a,i}^2},$$
#
# 超过上限 $c$，就把每个数组都乘以同一个因子 $c/\lVert g\rVert$：$g \leftarrow g \cdot \min(1, c/\lVert g\rVert)$。
# 所有数组共用一个因子，更新的方向不变，只是步子变短，
# 这样一个糟糕的批次（batch）也不会把参数甩出很远。
#
# **练习 3**：写出梯度裁剪的规则。
# 要*原地*缩放 `grads` 中的数组（`g *= ...`：优化器读的正是这些数组），
# 并返回*裁剪之前*测得的范数：日志里值得记下的正是这个数。
# 检验用两组梯度：一组需要裁剪，一组不需要。

# %%
def my_clip_grad_norm(grads, max_norm):
    """grads: name -> array, scaled in place so their global norm is <= max_norm.
    -> the global norm before clipping (a float)."""
    # BEGIN SOLUTION
    norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    # END SOLUTION
    return norm

# %% tags=["check"]
def after_clipping(clip, cases):
    """clip(grads, max_norm) for each case -> [(the norm it returned, the grads after)]."""
    return [(clip(grads, max_norm), grads) for grads, max_norm in cases]


ex_rng = np.random.default_rng(7)
big = {"wte": 3 * ex_rng.standard_normal((5, 3)), "ln_f.w": ex_rng.standard_normal(3)}
small = {"wte": 0.01 * ex_rng.standard_normal((5, 3)), "ln_f.w": np.full(3, 0.02)}
cases = [(big, 1.0), (small, 1.0)]                   # norm ~12: clipped; ~0.05: not
assert check_close(tr("gradient clipping", "梯度裁剪"), partial(after_clipping, my_clip_grad_norm),
                   partial(after_clipping, clip_grad_norm), cases)

# %% tags=["solution-only"]
real_grads = {name: g.astype(np.float64) for name, g in grads.items()}
lib_grads = {name: g.copy() for name, g in real_grads.items()}
assert np.isclose(my_clip_grad_norm(real_grads, 0.5), clip_grad_norm(lib_grads, 0.5))
assert all(np.allclose(real_grads[k], lib_grads[k], rtol=1e-12, atol=0) for k in grads)
print(tr("my_clip_grad_norm == minigpt.optim.clip_grad_norm on the model's gradients",
         "在模型的梯度上 my_clip_grad_norm == minigpt.optim.clip_grad_norm"))

# %% [markdown]
# The second guard is the learning-rate schedule (学习率调度) `lr_at`, which sets $\eta$
# for each step $t$: a linear warm-up from 0 over the first $t_w$ steps, while Adam's
# $v$ is still a poor estimate of the gradients' size, then a cosine from the peak
# $\eta$ down to a floor $\eta_{\min}$ at $t_{\max}$, and the floor after that:
#
# $$\eta(t) = \begin{cases} \eta\, t / t_w & t < t_w \\
#   \eta_{\min} + \tfrac12\left(1 + \cos\dfrac{\pi(t - t_w)}{t_{\max} - t_w}\right)(\eta - \eta_{\min}) & t_w \le t < t_{\max} \\
#   \eta_{\min} & t \ge t_{\max} \end{cases}$$
#
# **Exercise 4.** Write it. The check compares your schedule with `lr_at` at every step
# from 0 to 119, for a warm-up of 10 steps and $t_{\max} = 100$.
# %% [markdown] lang="zh"
# 第二道保险是学习率调度（learning-rate schedule）`lr_at`，它为每一步 $t$ 设定 $\eta$。
# 前 $t_w$ 步里，Adam 的 $v$ 对梯度大小的估计还很差，学习率从 0 开始线性增加，
# 这叫学习率预热（learning-rate warmup）；
# 之后学习率按余弦曲线从峰值 $\eta$ 降到 $t_{\max}$ 时的下限 $\eta_{\min}$，这叫余弦退火（cosine decay）；
# 此后一直停在下限：
#
# $$\eta(t) = \begin{cases} \eta\, t / t_w & t < t_w \\
#   \eta_{\min} + \tfrac12\left(1 + \cos\dfrac{\pi(t - t_w)}{t_{\max} - t_w}\right)(\eta - \eta_{\min}) & t_w \le t < t_{\max} \\
#   \eta_{\min} & t \ge t_{\max} \end{cases}$$
#
# **练习 4**：把它写出来。
# 检验取预热 10 步、$t_{\max} = 100$，在 0 到 119 的每一步上把你的调度与 `lr_at` 逐一比较。

# %%
def my_lr_at(step, *, lr, min_lr, warmup_iters, max_iters):
    """The learning rate at `step` (0, 1, ...): warm-up, cosine decay, floor."""
    # BEGIN SOLUTION
    if step < warmup_iters:
        return lr * step / warmup_iters
    if step >= max_iters:
        return min_lr
    r = (step - warmup_iters) / (max_iters - warmup_iters)     # 0 -> 1 over the decay
    return min_lr + 0.5 * (1 + np.cos(np.pi * r)) * (lr - min_lr)
    # END SOLUTION

# %% tags=["check"]
def lr_curve(lr_fn, steps, schedule):
    """[lr_fn(step, **schedule) for each step]."""
    return [lr_fn(step, **schedule) for step in steps]


ex_schedule = dict(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)
assert check_close(tr("learning-rate schedule", "学习率调度"), partial(lr_curve, my_lr_at),
                   partial(lr_curve, lr_at), range(120), ex_schedule)

# %% tags=["solution-only"]
for edge in (dict(lr=1.0, min_lr=0.1, warmup_iters=0, max_iters=5),     # no warm-up
             dict(lr=1.0, min_lr=0.1, warmup_iters=5, max_iters=5)):    # no decay
    assert np.allclose(lr_curve(my_lr_at, range(8), edge), lr_curve(lr_at, range(8), edge))
print(tr("my_lr_at == minigpt.optim.lr_at, also without warm-up and without decay",
         "my_lr_at == minigpt.optim.lr_at，没有预热或没有衰减时也一致"))

# %% [markdown]
# Now the library's three on the model of step 5. Checks: at step 1, $\hat m = g$ and
# $\sqrt{\hat v} = |g|$, so every parameter that does not decay moves by
# $\eta\,|g|/(|g| + \epsilon)$, almost exactly $\eta$ whatever the size of its gradient;
# clipping leaves a norm of at most $c$ and keeps the direction; and one step lowers
# the loss on the batch it was computed from.
# %% [markdown] lang="zh"
# 现在把库里的这三样工具（`AdamW`、`clip_grad_norm` 和 `lr_at`）用到第 5 步的模型上。要检验的是：
# 第一次更新（$t = 1$）时 $\hat m = g$，$\sqrt{\hat v} = |g|$，所以每个不做衰减的参数都移动 $\eta\,|g|/(|g| + \epsilon)$，
# 无论梯度多大，几乎正好是 $\eta$；
# 裁剪之后范数不超过 $c$，方向不变；
# 更新一步之后，在计算这一步所用的那个批次上，损失会下降。

# %%
lr = 3e-3
before = {k: v.copy() for k, v in params.items()}
norm = clip_grad_norm(grads, max_norm=1.0)
clipped = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values()))
assert clipped <= 1.0 + 1e-5
opt = AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
opt.step(grads)
moved = np.abs(params["h.0.ln_1.b"] - before["h.0.ln_1.b"])       # 1-D: no decay
g_abs = np.abs(grads["h.0.ln_1.b"].astype(np.float64))
assert np.allclose(moved, lr * g_abs / (g_abs + opt.eps), rtol=1e-4)  # = lr, but for eps
assert np.all(moved[g_abs > 1e-6] > 0.99 * lr)
_, loss_after = model.forward(x, y)
assert loss_after < loss
print(tr(f"gradient norm {norm:.3f} -> clipped to {clipped:.3f}; each bias moved by ≈ lr = {lr}; "
         f"loss on the batch {loss:.4f} -> {loss_after:.4f}",
         f"梯度范数 {norm:.3f} -> 裁剪为 {clipped:.3f}；每个偏置都移动了 ≈ lr = {lr}；"
         f"这个批次上的损失 {loss:.4f} -> {loss_after:.4f}"))

max_iters = 40 if QUICK else 600
schedule = dict(lr=lr, min_lr=lr / 10, warmup_iters=max(1, max_iters // 20),
                max_iters=max_iters)
lrs = [lr_at(it, **schedule) for it in range(max_iters + 1)]
assert lrs[0] == 0 and np.isclose(max(lrs), lr) and np.isclose(lrs[-1], lr / 10)

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(lrs)
ax.set_xlabel(tr("iteration", "迭代步数"))
ax.set_ylabel(tr("learning rate η", "学习率 η"))
ax.set_title(tr(f"lr_at: {schedule['warmup_iters']} warm-up steps, then cosine decay to η/10",
                f"lr_at：先预热 {schedule['warmup_iters']} 步，再按余弦曲线降到 η/10"))
plt.show()

# %% [markdown]
# ## Step 7 · Iterate
#
# Repeat steps 3 to 6 on fresh random windows, thousands of times in a real run. Every
# so often we estimate the loss on the validation split (same fixed windows each time)
# to see whether the model learns things that carry over to dialogues it never saw.
# The whole loop is five lines of `minigpt` calls; `minigpt.train` (notebook 6) adds
# checkpoints, logging and resuming around the same five lines.
#
# We run it three times, alike in everything (seed, batches, schedule) but how the
# positions enter: the text's sinusoidal table with GPT-2's initialisation (the
# `config` of step 2), the same table the way the paper adds it (Vaswani et al. §3.4:
# token embeddings drawn with std $C^{-1/2}$ and multiplied by $\sqrt{C}$,
# `scale_embeddings=True`), and notebook 2's learned table.
#
# **Exercise 5.** First write the loop yourself (训练循环): for each batch `(x, y)`, the
# forward with the loss, the backward, clipping at `max_norm`, and an AdamW step at
# the learning rate `lr_at(it, **schedule)` of that step's index `it`. Name the loss
# `loss`; the line after your code collects it. The check runs three steps on a tiny
# float64 model, twice from the same start: once with your function, once with the
# library's pieces in the check cell (try before you read that one), and compares the
# losses and the final parameters.
# %% [markdown] lang="zh"
# ## 第 7 步 · 迭代训练
#
# 教材说这一步是“重复上述步骤”：
# 在每次新取的随机窗口上重复第 3 步到第 6 步，真正训练时要重复成千上万次。
# 每隔一段时间，我们在验证集上估计一次损失（每次都用同样几个固定的窗口），
# 看模型学到的东西能不能推广到它从没见过的对话上。
# 整个循环只是五行 `minigpt` 调用；笔记本 6 用的 `minigpt.train`
# 在这五行外面加上了检查点（checkpoint）、日志和断点续训。
#
# 我们把它跑三遍，种子、批次、学习率调度全都一样，只有位置信息的加入方式不同：
#
# - 教材的正弦位置编码（sinusoidal positional encoding）表，配 GPT-2 的初始化（就是第 2 步的 `config`）；
# - 同一张表，但按原始论文的方式加入（Vaswani 等人论文的第 3.4 节，不是教材的第 3.4 节）：
#   词元嵌入按标准差 $C^{-1/2}$ 抽取，再乘以 $\sqrt{C}$（$C$ 是模型维度），
#   即嵌入缩放（embedding scaling），`scale_embeddings=True`；
# - 笔记本 2 中的可学习位置编码（learned positional embedding）表。
#
# **练习 5**：先自己写出这个训练循环。
# 对每个批次 `(x, y)`：做带损失的前向传播，做反向传播，按 `max_norm` 裁剪，
# 再以这一步的序号 `it` 对应的学习率 `lr_at(it, **schedule)` 做一步 AdamW 更新。
# 把损失命名为 `loss`，你的代码后面那一行会把它收集起来。
# 检验在一个很小的 float64 模型上跑三步，从同一个起点跑两次：
# 一次用你的函数，一次用检验单元格里库的各个部件（先自己试，再去看那个单元格），
# 然后比较两次的损失和最终参数。

# %%
def my_train_steps(model, opt, batches, schedule, max_norm):
    """One training step per (x, y) in batches, step `it` at lr_at(it, **schedule).
    -> the losses, one per step, each computed before its update."""
    losses = []
    for it, (xb, yb) in enumerate(batches):
        # BEGIN SOLUTION
        _, loss = model.forward(xb, yb)                  # steps 3 and 4
        grads = model.backward()                         # step 5
        clip_grad_norm(grads, max_norm)                  # step 6: clip,
        opt.step(grads, lr=lr_at(it, **schedule))        #   then update
        # END SOLUTION
        losses.append(loss)
    return losses

# %% tags=["check"]
def losses_and_params(train_steps, model, opt, batches, schedule, max_norm):
    """Run train_steps -> (its losses, the model's parameters afterwards)."""
    return train_steps(model, opt, batches, schedule, max_norm), model.params


def minigpt_train_steps(model, opt, batches, schedule, max_norm):
    """The reference: the five lines with minigpt's pieces."""
    losses = []
    for it, (xb, yb) in enumerate(batches):
        losses.append(model.forward(xb, yb)[1])
        grads = model.backward()
        clip_grad_norm(grads, max_norm)
        opt.step(grads, lr=lr_at(it, **schedule))
    return losses


tiny = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16,
                     dtype="float64"), seed=0)
tiny_opt = AdamW(tiny.params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
ex_rng = np.random.default_rng(8)
tiny_batches = [(ex_rng.integers(0, 11, (2, 8)), ex_rng.integers(0, 11, (2, 8)))
                for _ in range(3)]
tiny_schedule = dict(lr=1e-2, min_lr=1e-3, warmup_iters=1, max_iters=3)
assert check_close(tr("five-line training loop", "五行的训练循环"), partial(losses_and_params, my_train_steps),
                   partial(losses_and_params, minigpt_train_steps),
                   tiny, tiny_opt, tiny_batches, tiny_schedule, 0.1)

# %% tags=["solution-only"]
fresh = GPT(config, seed=0)                        # overfit the batch of step 1
fresh_opt = AdamW(fresh.params, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
n = 5 if QUICK else 20
losses = my_train_steps(fresh, fresh_opt, [(x, y)] * n,
                        dict(lr=3e-3, min_lr=3e-4, warmup_iters=1, max_iters=n), 1.0)
assert losses[-1] < losses[0] - 0.5
print(tr(f"my_train_steps, {n} steps on one batch: loss {losses[0]:.3f} -> {losses[-1]:.3f}",
         f"my_train_steps 在同一个批次上训练 {n} 步：损失 {losses[0]:.3f} -> {losses[-1]:.3f}"))

# %%
val_batches = [data.get_batch("val", B, T, np.random.default_rng(100 + i)) for i in range(4)]
eval_every = 10 if QUICK else 50


def train_from_scratch(config):
    """Steps 2 to 7 from scratch: a fresh model, max_iters steps -> (model, history)."""
    model = GPT(config, seed=0)                                  # step 2
    opt = AdamW(model.params, lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(1)                               # the same batches each run
    history = {"it": [], "train": [], "val_it": [], "val": []}
    for it in range(max_iters + 1):
        if it % eval_every == 0:
            history["val_it"].append(it)
            history["val"].append(float(np.mean([model.forward(vx, vy)[1]
                                                  for vx, vy in val_batches])))
        if it == max_iters:
            break
        xb, yb = data.get_batch("train", B, T, rng)              # step 1: a batch
        _, loss = model.forward(xb, yb, train=True, rng=rng)     # steps 3 and 4
        grads = model.backward()                                 # step 5
        clip_grad_norm(grads, max_norm=1.0)                      # step 6
        opt.step(grads, lr=lr_at(it, **schedule))
        history["it"].append(it)
        history["train"].append(loss)
    return model, history


variants = {"sinusoidal": dict(pos_encoding="sinusoidal"),
            "sinusoidal, scaled": dict(pos_encoding="sinusoidal", scale_embeddings=True),
            "learned": dict(pos_encoding="learned")}
zh_name = {"sinusoidal": "正弦位置编码", "sinusoidal, scaled": "正弦位置编码（嵌入缩放）",
           "learned": "可学习位置编码"}   # the runs' names in the Chinese edition; the prints
                                             # pad them with U+3000, as wide as a Chinese character
runs = {}
for name, change in variants.items():
    start = time.time()
    runs[name] = train_from_scratch(config.replace(**change))
    val = runs[name][1]["val"]
    print(tr(f"{name:>18}: {max_iters} iterations in {time.time() - start:.0f} s; "
             f"val loss {val[0]:.3f} -> {val[-1]:.3f}",
             f"{zh_name[name]:　<12}：{max_iters} 步用时 {time.time() - start:.0f} 秒；"
             f"验证损失 {val[0]:.3f} -> {val[-1]:.3f}"))

# %% [markdown]
# The check: the loss fell well below the uniform guess $\log V$ on both splits, in
# every run. For a second reference line we compute what a model gets that knows only
# how often each character occurs, and nothing of context: the entropy of the
# training split's character frequencies $f_v$, $H = -\sum_v f_v \log f_v$.
# %% [markdown] lang="zh"
# 检验：每一次运行中，训练集和验证集上的损失都降到了远低于均匀猜测 $\log V$ 的水平。
# 我们再算第二条参考线：一个只知道每个字符的出现频率、对上下文一无所知的模型能达到的损失，
# 也就是训练集字符频率 $f_v$ 的熵（entropy）$H = -\sum_v f_v \log f_v$。

# %%
freq = np.bincount(data.tokens["train"], minlength=config.vocab_size) / len(data.tokens["train"])
unigram = float(-np.sum(freq[freq > 0] * np.log(freq[freq > 0])))
drop = 1.5 if QUICK else 3.0
for name, (model, history) in runs.items():
    first, last = np.mean(history["train"][:5]), np.mean(history["train"][-5:])
    assert last < first - drop, (name, first, last)
    assert history["val"][-1] < history["val"][0] - drop, name
    print(tr(f"{name:>18}: train loss {first:.2f} -> {last:.2f}; val loss "
             f"{history['val'][0]:.2f} -> {history['val'][-1]:.2f}",
             f"{zh_name[name]:　<12}：训练损失 {first:.2f} -> {last:.2f}；验证损失 "
             f"{history['val'][0]:.2f} -> {history['val'][-1]:.2f}"))
print(tr(f"log V = {np.log(config.vocab_size):.2f}; character frequencies alone: {unigram:.2f}",
         f"log V = {np.log(config.vocab_size):.2f}；只靠字符频率：{unigram:.2f}"))
final = {name: history["val"][-1] for name, (model, history) in runs.items()}
if not QUICK:                       # 40 quick steps are too few to tell them apart
    assert max(final["learned"], final["sinusoidal, scaled"]) < unigram - 0.5 \
        < final["sinusoidal"], final

fig, ax = plt.subplots(figsize=(8, 4))
for (name, (model, history)), color in zip(runs.items(), ("C1", "C2", "C0")):
    ax.plot(history["it"], history["train"], lw=0.8, alpha=0.4, color=color,
            label=tr(f"{name}: train (one batch)", f"{zh_name[name]}：训练（单个批次）"))
    ax.plot(history["val_it"], history["val"], "o-", ms=3, color=color,
            label=tr(f"{name}: validation (4 fixed batches)",
                     f"{zh_name[name]}：验证（4 个固定批次）"))
ax.axhline(np.log(config.vocab_size), color="gray", ls=":",
           label=tr("log V (uniform guess)", "log V（均匀猜测）"))
ax.axhline(unigram, color="gray", ls="--", label=tr("character frequencies alone", "只靠字符频率"))
ax.set_xlabel(tr("iteration", "迭代步数"))
ax.set_ylabel(tr("cross-entropy loss (nats per character)", "交叉熵损失（每个字符，单位：奈特）"))
ax.set_title(tr("Three small GPTs on the dialogues: how the positions enter",
                "在对话上训练的三个小 GPT：位置信息的三种加入方式"))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The sinusoidal run with GPT-2's initialisation parts from the others early: its loss
# stops near what character frequencies alone give. The formula is not at fault; the
# sizes are. GPT-2 draws token embeddings from $\mathcal N(0, 0.02^2)$, while the
# table's entries are sines and cosines of size ~0.7, so in
# $x_t = e(\text{token}_t) + PE(t)$ the position drowns the token, and the first layer
# norm passes on mostly position. Scale the tokens up to the table's size, as the
# paper does, and the same table trains as well as a learned one: the second run, here
# even a little better. (A learned table starts at the tokens' size and grows only as
# far as it helps, so it never has the problem.) The scaled run also starts *above*
# $\log V$: the tied head reads the token embeddings too, now drawn with std
# $C^{-1/2} = 0.125$ instead of 0.02, so the first logits are of size ~1 rather than
# ~0.2 and the first guesses are confidently wrong; a few dozen steps undo that. From
# here on `model` is the scaled sinusoidal run: the text's formula, the paper's scale,
# the recipe notebook 6's chat model uses.
#
# %% [markdown] lang="zh"
# 配 GPT-2 初始化的正弦编码那次运行很早就和另外两次分道扬镳：
# 它的损失停在只靠字符频率就能达到的水平附近。
# 问题不在公式，而在数值的大小。GPT-2 的词元嵌入取自 $\mathcal N(0, 0.02^2)$，而表中的元素是大小约 0.7 的正弦和余弦，
# 所以在 $x_t = e(\text{词元}_t) + PE(t)$ 中，位置淹没了词元，
# 第一个层归一化往下传的几乎只有位置信息。
# 像论文那样把词元嵌入放大到表的尺度，同一张表就和可学习的表训练得一样好：
# 这就是第二次运行，在这里甚至还略好一点。
# （可学习的表起初和词元嵌入一样小，只在有帮助的范围内才变大，所以从来不会有这个问题。）
#
# 缩放的那次运行一开始的损失还*高于* $\log V$：
# 输出头（output head）与词元嵌入权重共享（weight tying），它用的也是这些词元嵌入，
# 而它们现在按标准差 $C^{-1/2} = 0.125$ 而不是 0.02 抽取，
# 于是最初的对数几率大小约为 1 而不是约 0.2，最初的猜测错得很“自信”；
# 几十步之后这个问题就消失了。
#
# 从这里开始，`model` 指缩放的正弦编码那次运行：
# 教材的公式，论文的尺度，也就是笔记本 6 中聊天模型所用的配方。
# %%
model = runs["sinusoidal, scaled"][0]

# %% [markdown]
# What has it learned? Let it write, starting from a user marker, by sampling each next
# character from its predicted distribution (temperature 0.8, a fixed seed). After a
# few hundred steps of a small model, expect word-shaped pieces, a few real words and
# short turns closed by markers, rather than sentences: its validation loss is still
# falling. Notebook 6 trains a larger model for longer.
# %% [markdown] lang="zh"
# 它学到了什么？让它从用户标记 `<|user|>` 开始往下写：
# 每个字符都从它预测的分布中采样，温度（temperature）取 0.8，随机种子固定。
# 一个小模型只训练了几百步，可以预料它写出的是像单词的片段、几个真正的单词，
# 以及以标记收尾的简短轮次，而不是句子：它的验证损失还在下降。
# 笔记本 6 会把一个更大的模型训练更久。

# %%
prompt = tok.encode("<|user|>")
out = model.generate(prompt[None, :], 200, temperature=0.8, rng=0)
assert out.shape == (1, len(prompt) + 200)
print(tok.decode(out[0]))

# %% [markdown]
# **Summary.** The seven steps of the text, each one call: `CharDataset` and
# `get_batch` (1), `GPT(config, seed)` (2), `model.forward` (3, 4), `model.backward`
# (5), `clip_grad_norm` and `AdamW.step` at `lr_at(it)` (6), and a loop (7). The loss
# starts at $\log V$, the uniform guess, and falls from there; how far depends on more
# than the steps: the text's sinusoidal table trains as well as a learned one once the
# token embeddings are of its size, and stalls near the character frequencies when they
# are 35 times smaller.
# %% [markdown] lang="zh"
# **小结**：教材的七个步骤，每一步对应一个调用：
#
# - 第 1 步“数据预处理”：`CharDataset` 和 `get_batch`；
# - 第 2 步“模型初始化”：`GPT(config, seed)`；
# - 第 3、4 步“正向传播”和“损失计算”：`model.forward`；
# - 第 5 步“反向传播”：`model.backward`；
# - 第 6 步“参数更新”：`clip_grad_norm`，以及以 `lr_at(it)` 为学习率的 `AdamW.step`；
# - 第 7 步“迭代训练”：一个循环。
#
# 损失从均匀猜测的 $\log V$ 开始下降；能降多少，不只取决于这七个步骤：
# 词元嵌入的大小与正弦表相当时，教材的正弦表训练得和可学习的表一样好；
# 词元嵌入小 35 倍时，损失就停在只靠字符频率的水平附近。

# %% [markdown]
# ## Questions to think about (思考题)
#
# Answer in words, or with a small experiment in a new cell (a few lines each; the
# training runs of question 2 take about half a minute apiece).
#
# 1. Why does the loss of a freshly initialised model start so close to $\log V$, and
#    why does the scaled sinusoidal run start *above* it? What initial loss would you
#    expect if the vocabulary had only the 95 printable ASCII characters?
#    (Try: `GPT(config.replace(scale_embeddings=True), seed=0).forward(x, y)[1]`.)
# 2. Train the scaled sinusoidal model of step 7 twice more: once without warm-up,
#    once with a peak learning rate ten times larger. What happens to the loss in the
#    first steps, to the validation loss at the end, and to the gradient norm that
#    `clip_grad_norm` returns (`train_from_scratch` drops it: keep it in a list to
#    see it)? Why does warm-up matter most for Adam in particular?
#    (Try: `schedule = dict(schedule, warmup_iters=0)`, or
#    `dict(schedule, lr=3e-2, min_lr=3e-3)`, then
#    `train_from_scratch(config.replace(scale_embeddings=True))`.)
# 3. `AdamW` decays only arrays with `ndim >= 2`. What would weight decay do to a
#    layer-norm gain $\gamma$ if it were decayed too, and why is that not the
#    regularisation we want? How many of this model's parameters decay, and how many
#    do not? (Try: `sum(p.size for k, p in params.items() if opt.decays(k))`.)
# %% [markdown] lang="zh"
# ## 思考题
#
# 用文字回答，或者在新的单元格里做个小实验（每题几行代码；第 2 题的每次训练约需半分钟）。
#
# 1. 为什么刚初始化的模型，损失一开始就如此接近 $\log V$？为什么缩放的正弦编码那次运行一开始反而*高于*它？
#    如果词表只有 95 个可打印的 ASCII 字符，你预计初始损失是多少？
#    （试试：`GPT(config.replace(scale_embeddings=True), seed=0).forward(x, y)[1]`。）
# 2. 把第 7 步中缩放的正弦编码模型再训练两次：一次不做预热，一次把峰值学习率调大十倍。
#    最初几步的损失、最后的验证损失，以及 `clip_grad_norm` 返回的梯度范数（`train_from_scratch` 把它丢掉了，要看它就先把它存进一个列表）分别会怎样？
#    为什么预热对 Adam 尤其重要？
#    （试试：`schedule = dict(schedule, warmup_iters=0)`，或
#    `dict(schedule, lr=3e-2, min_lr=3e-3)`，然后运行
#    `train_from_scratch(config.replace(scale_embeddings=True))`。）
# 3. `AdamW` 只对 `ndim >= 2` 的数组做衰减。
#    如果层归一化的增益 $\gamma$ 也参与衰减，权重衰减会对它产生什么作用？
#    为什么那不是我们想要的正则化（regularisation）？
#    这个模型有多少个参数参与衰减，多少个不参与？
#    （试试：`sum(p.size for k, p in params.items() if opt.decays(k))`。）
