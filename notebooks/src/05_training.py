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

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import time

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.config import GPTConfig
from minigpt.data import CharDataset, format_conversation, load_conversations
from minigpt.model import GPT
from minigpt.ops.loss import cross_entropy_backward, cross_entropy_forward
from minigpt.ops.softmax import softmax_forward
from minigpt.optim import AdamW, clip_grad_norm, lr_at

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)

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

# %%
conversations = load_conversations(("english", "chinese"))
data = CharDataset.from_conversations(conversations)
tok = data.tokenizer
print(data.describe())
print("\none formatted dialogue:", format_conversation(conversations[0]))

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
print(f"a batch: x {x.shape}, y {y.shape}; first window decoded:\n{tok.decode(x[0])!r}")

# %%
counts = np.bincount(data.tokens["train"], minlength=tok.vocab_size)
freq = np.sort(counts[counts > 0])[::-1]
is_cjk = np.array([len(s) == 1 and "\u4e00" <= s <= "\u9fff" for s in tok.itos])
assert freq.sum() == len(data.tokens["train"])
print(f"{(counts == 1).sum()} characters occur once in the training split; "
      f"{is_cjk.sum()} of the {tok.vocab_size} tokens are Chinese characters")

fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(np.arange(1, len(freq) + 1), freq, ".")
ax.set_xlabel("rank of the character (1 = most frequent)")
ax.set_ylabel("occurrences in the training split")
ax.set_title(f"Character frequencies: a few common, a long tail (V = {tok.vocab_size})")
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

# %%
config = GPTConfig(vocab_size=tok.vocab_size, block_size=T, n_layer=2, n_head=4, n_embd=64)
model = GPT(config, seed=0)
params = model.params
print(f"{model.num_params():,} parameters; config: {config}")

assert abs(params["wte"].std() / 0.02 - 1) < 0.05
resid_std = 0.02 / np.sqrt(2 * config.n_layer)
assert abs(params["h.0.attn.c_proj.w"].std() / resid_std - 1) < 0.1
assert np.all(params["h.0.ln_1.w"] == 1) and np.all(params["h.1.mlp.c_fc.b"] == 0)

fig, ax = plt.subplots(figsize=(7, 3.5))
for name in ("wte", "h.0.mlp.c_fc.w", "h.0.mlp.c_proj.w"):
    ax.hist(params[name].ravel(), bins=80, histtype="step", density=True,
            label=f"{name}  (std {params[name].std():.4f})")
ax.set_xlabel("weight value")
ax.set_ylabel("density")
ax.set_title("Initial weights: N(0, 0.02²), residual projections narrower")
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

# %%
logits, _ = model.forward(x)
probs, _ = softmax_forward(logits.astype(np.float64))
assert logits.shape == (B, T, config.vocab_size)
assert np.allclose(probs.sum(axis=-1), 1)
assert probs.max() < 3 / config.vocab_size                 # nothing stands out yet
print(f"logits {logits.shape}; largest probability {probs.max():.2e} vs uniform "
      f"1/V = {1 / config.vocab_size:.2e}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(np.sort(probs[0, 0])[::-1], label="p(next char), sorted, one position")
ax.axhline(1 / config.vocab_size, color="gray", ls="--", label="uniform 1/V")
ax.set_xlabel("vocabulary entries, sorted")
ax.set_ylabel("probability")
ax.set_ylim(0, 2.5 / config.vocab_size)
ax.set_title("Before training, every next character is about equally likely")
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

# %%
_, loss = model.forward(x, y)
per_position = -np.log(np.take_along_axis(probs, y[..., None], axis=-1)[..., 0])   # (B, T)
assert np.isclose(loss, per_position.mean(), rtol=1e-5)
assert abs(loss - np.log(config.vocab_size)) < 0.05
print(f"loss {loss:.4f}, log V = {np.log(config.vocab_size):.4f}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(per_position.ravel(), bins=40)
ax.axvline(np.log(config.vocab_size), color="red", ls="--", label="log V")
ax.set_xlabel("−log p(true next character), per position")
ax.set_ylabel("positions")
ax.set_title(f"Initial loss {loss:.3f} ≈ log V: the uniform guess")
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

# %%
grads = model.backward()
assert grads.keys() == params.keys()
assert all(grads[k].shape == params[k].shape for k in params)
assert all(np.all(np.isfinite(g)) for g in grads.values())

_, c_loss = cross_entropy_forward(logits.astype(np.float64), y)
dlogits = cross_entropy_backward(1.0, c_loss)                        # (B, T, V)
assert np.allclose(dlogits.sum(axis=-1), 0, atol=1e-12)
onehot = np.eye(config.vocab_size)[y]
assert np.allclose(dlogits, (probs - onehot) / (B * T))
print("one gradient per parameter, same shapes; dL/dlogits = (p - onehot) / N")

norms = {k: float(np.linalg.norm(g)) for k, g in grads.items()}
fig, ax = plt.subplots(figsize=(10, 3.8))
ax.bar(range(len(norms)), list(norms.values()))
ax.set_xticks(range(len(norms)), list(norms), rotation=70, ha="right", fontsize=7)
ax.set_yscale("log")
ax.set_ylabel("‖gradient‖")
ax.set_title("Gradient size per parameter tensor, first batch")
plt.tight_layout()
plt.show()

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
# and only matrices and embeddings decay. Two more guards: `clip_grad_norm` rescales all
# gradients together when their global norm exceeds a limit,
# $g \leftarrow g \cdot \min(1, c/\lVert g\rVert)$; and `lr_at` sets $\eta$ per step,
# rising linearly during a warm-up, then following a cosine down to a floor:
#
# $$\eta(t) = \eta_{\min} + \tfrac12\left(1 + \cos\frac{\pi(t - t_w)}{t_{\max} - t_w}\right)(\eta - \eta_{\min}).$$
#
# Checks: at step 1, $\hat m = g$ and $\sqrt{\hat v} = |g|$, so every parameter that does
# not decay moves by $\eta\,|g|/(|g| + \epsilon)$, almost exactly $\eta$ whatever the size of
# its gradient; clipping leaves a norm of at most $c$ and keeps the
# direction; and one step lowers the loss on the batch it was computed from.

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
print(f"gradient norm {norm:.3f} -> clipped to {clipped:.3f}; each bias moved by ≈ lr = {lr}; "
      f"loss on the batch {loss:.4f} -> {loss_after:.4f}")

max_iters = 40 if QUICK else 600
schedule = dict(lr=lr, min_lr=lr / 10, warmup_iters=max(1, max_iters // 20),
                max_iters=max_iters)
lrs = [lr_at(it, **schedule) for it in range(max_iters + 1)]
assert lrs[0] == 0 and np.isclose(max(lrs), lr) and np.isclose(lrs[-1], lr / 10)

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(lrs)
ax.set_xlabel("iteration")
ax.set_ylabel("learning rate η")
ax.set_title(f"lr_at: {schedule['warmup_iters']} warm-up steps, then cosine decay to η/10")
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
runs = {}
for name, change in variants.items():
    start = time.time()
    runs[name] = train_from_scratch(config.replace(**change))
    val = runs[name][1]["val"]
    print(f"{name:>18}: {max_iters} iterations in {time.time() - start:.0f} s; "
          f"val loss {val[0]:.3f} -> {val[-1]:.3f}")

# %% [markdown]
# The check: the loss fell well below the uniform guess $\log V$ on both splits, in
# every run. For a second reference line we compute what a model gets that knows only
# how often each character occurs, and nothing of context: the entropy of the
# training split's character frequencies $f_v$, $H = -\sum_v f_v \log f_v$.

# %%
freq = np.bincount(data.tokens["train"], minlength=config.vocab_size) / len(data.tokens["train"])
unigram = float(-np.sum(freq[freq > 0] * np.log(freq[freq > 0])))
drop = 1.5 if QUICK else 3.0
for name, (model, history) in runs.items():
    first, last = np.mean(history["train"][:5]), np.mean(history["train"][-5:])
    assert last < first - drop, (name, first, last)
    assert history["val"][-1] < history["val"][0] - drop, name
    print(f"{name:>18}: train loss {first:.2f} -> {last:.2f}; val loss "
          f"{history['val'][0]:.2f} -> {history['val'][-1]:.2f}")
print(f"log V = {np.log(config.vocab_size):.2f}; character frequencies alone: {unigram:.2f}")
final = {name: history["val"][-1] for name, (model, history) in runs.items()}
if not QUICK:                       # 40 quick steps are too few to tell them apart
    assert max(final["learned"], final["sinusoidal, scaled"]) < unigram - 0.5 \
        < final["sinusoidal"], final

fig, ax = plt.subplots(figsize=(8, 4))
for (name, (model, history)), color in zip(runs.items(), ("C1", "C2", "C0")):
    ax.plot(history["it"], history["train"], lw=0.8, alpha=0.4, color=color,
            label=f"{name}: train (one batch)")
    ax.plot(history["val_it"], history["val"], "o-", ms=3, color=color,
            label=f"{name}: validation (4 fixed batches)")
ax.axhline(np.log(config.vocab_size), color="gray", ls=":", label="log V (uniform guess)")
ax.axhline(unigram, color="gray", ls="--", label="character frequencies alone")
ax.set_xlabel("iteration")
ax.set_ylabel("cross-entropy loss (nats per character)")
ax.set_title("Three small GPTs on the dialogues: how the positions enter")
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
# %%
model = runs["sinusoidal, scaled"][0]

# %% [markdown]
# What has it learned? Let it write, starting from a user marker, by sampling each next
# character from its predicted distribution (temperature 0.8, a fixed seed). After a
# few hundred steps of a small model, expect word-shaped pieces, a few real words and
# short turns closed by markers, rather than sentences: its validation loss is still
# falling. Notebook 6 trains a larger model for longer.

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
