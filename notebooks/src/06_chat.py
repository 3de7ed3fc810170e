# %% [markdown]
# # 6 · A character-level chat model
#
# Our text ends its practical part (§4.2) with a function `generate_response(input_text)`
# built on a downloaded, pretrained GPT-2, called with the line
# `你好，我是人类，请问你是谁？` ("Hello, I am a human; may I ask who you are?"). Here we
# build the same function from nothing: the model of notebooks 1–5 (with the text's
# sinusoidal table, its token embeddings scaled the paper's way as in notebook 5, step 7),
# trained in NumPy on the chatterbot dialogues (English and Chinese, about 100,000
# characters), then asked the same question.
#
# Set your expectations: this is a model of under a million parameters trained for
# minutes on one small corpus. It learns the shape of a dialogue, many greetings
# and answers by heart, and little else. What it shows well is *how* a chat model
# works: one character at a time, each chosen from a probability distribution we can
# inspect.
#
# 1. train it (the `chat` preset; the tiny `tiny` preset in quick mode);
# 2. talk to it with `generate_response`, in English and with the text's example;
# 3. temperature, top-k and top-p, side by side, and two exercises on them;
# 4. the model's uncertainty, character by character;
# 5. where it looks: an attention map over a reply;
# 6. the text's own §4 code, with Hugging Face Transformers, on this model.

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import tempfile

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
%matplotlib inline

import minigpt
from minigpt.chat import Chatbot
from minigpt.data import load_conversations
from minigpt.generate import sample_next, stream
from minigpt.gradcheck import check_close
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.ops.attention import causal_mask
from minigpt.ops.softmax import softmax_forward
from minigpt.plots import draw_losses, use_cjk_font
from minigpt.presets import PRESETS
from minigpt.train import saved_run, train

np.set_printoptions(precision=4, suppress=True)

# Plots label characters, Chinese ones too. minigpt ships a font with every character
# of the corpus (minigpt/fonts/, from Noto Sans CJK SC), which matplotlib uses wherever
# the default font has no glyph; a character neither has is labelled by its code point.
use_cjk_font()
LABEL_FONTS = [FT2Font(font_manager.findfont(font_manager.FontProperties(family=[family])))
               for family in plt.rcParams["font.family"]]


def char_label(token):
    """A tick label for one token: markers shortened, space and newline made visible."""
    short = {"<|user|>": "‹user›", "<|bot|>": "‹bot›", "<|end|>": "‹end›", " ": "␣", "\n": "⏎"}
    if token in short:
        return short[token]
    drawable = any(font.get_char_index(ord(token)) for font in LABEL_FONTS)
    return token if drawable else f"U+{ord(token):04X}"

# %% [markdown]
# ## 1. Train
#
# `minigpt.train.train(preset)` runs the loop of notebook 5 with everything around it:
# fixed seeds, periodic loss estimates on both splits, an atomic checkpoint, and at the
# end a *word validity* score (the share of English words in its replies to unseen
# questions that are real words of the corpus). The `chat` preset (its settings are
# printed below, each explained in `minigpt/presets.py`) was chosen by the project's
# measurements to train in under ten minutes on two CPU cores. Quick mode uses the
# `tiny` preset instead (seconds, and it learns almost nothing). `train` also saves
# the loss plot as `loss.png` next to the checkpoint; we draw it here too, with the
# same function (`minigpt.plots.draw_losses`) and the line $\log V$ added.
#
# Two settings of the preset are about the data rather than the model. Half of each
# batch's rows begin at a conversation's first character, as every chat does, followed
# by whole conversations until the row is full (`conversation_start_fraction`); the
# other half are windows at random offsets. And the loss is trained with *label
# smoothing* (`label_smoothing=0.1`): the target is not the one-hot row of the next
# character but $q = (1-\varepsilon)\,e_y + \varepsilon/V$, so the model is never pushed
# to give a character probability zero. That matters here because about one
# validation character in a hundred never occurs in the training conversations (rare
# Chinese characters); unsmoothed, each of them costs ~17 nats. The per-step training
# loss plotted below is the smoothed one; the estimates on both splits are the plain
# cross-entropy.

#
# In a class, one trained model is enough for everyone: the teacher runs this notebook
# (or `python -m minigpt train`) once and shares the checkpoint file; each student
# sets `MINIGPT_CHECKPOINT` to that file before starting Jupyter, and this cell loads
# it instead of training (`minigpt.train.saved_run`).

# %%
PRESET = "tiny" if QUICK else "chat"
OUT_DIR = (tempfile.mkdtemp(prefix="minigpt-notebook06-") if QUICK
           else os.path.join("..", "out", "notebook06"))
SHARED = os.environ.get("MINIGPT_CHECKPOINT")       # a checkpoint the teacher shared
print(f"preset {PRESET!r}\nmodel: {PRESETS[PRESET].model}\ntraining: {PRESETS[PRESET].train}")
if SHARED:
    result = saved_run(SHARED)
    print(f"loaded {result.checkpoint} ({result.iters} steps) instead of training")
else:
    result = train(PRESET, out_dir=OUT_DIR, progress=False)
CKPT = result.checkpoint

# %% [markdown]
# The check: the run finished, and the validation loss (on dialogues never trained on)
# is well below $\log V$, the loss of a uniform guess.

# %%
bot = Chatbot.load(CKPT)                  # greedy decoding, as generate_response uses
model, tok = bot.model, bot.tokenizer
log_v = np.log(tok.vocab_size)
assert result.status == "done"
assert result.val_loss < log_v - (0.5 if QUICK else 4.0), (result.val_loss, log_v)
validity = "n/a" if np.isnan(result.validity) else f"{result.validity:.0%}"
print(f"{model.num_params():,} parameters; val loss {result.val_loss:.3f} nats/char "
      f"(log V = {log_v:.2f}); word validity {validity}")

fig, ax = plt.subplots(figsize=(8, 4))
draw_losses(ax, result.history, PRESETS[PRESET].train.label_smoothing)   # as loss.png
ax.axhline(log_v, color="gray", ls=":", label="log V")
ax.set_title(f"Training the chat model (preset {PRESET!r})")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Talk to it
#
# `minigpt.generate_response(text)` is the text's function, with our model behind it.
# It writes the line as a user turn, `<|user|>text<|end|><|bot|>`, and lets the model
# continue one character at a time, each time taking the most likely character
# (greedy decoding), until the model itself writes `<|end|>`:
#
# $$c_{t+1} = \arg\max_c\; p(c \mid \text{prompt}, c_1, \dots, c_t).$$
#
# Some of these lines open a dialogue of the corpus, others do not (the table says
# which), among them the text's example. Expect replies that begin the way the corpus's
# answers begin. Most end with `<|end|>`, but greedy decoding can also fall into a loop
# of frequent words: for a small model the likeliest continuation of "the " can be
# "the " again, and greedy decoding has no way out. So a reply also stops at 256
# characters if the model never writes `<|end|>`.

# %%
lines = ["Hello", "How are you?", "What is AI?", "Who are you?", "What is your name?",
         "你好", "你好，我是人类，请问你是谁？"]
names = {line: repr(line) for line in lines[:5]}
names.update({"你好": "Chinese 'hello'", "你好，我是人类，请问你是谁？": "the text's example"})
openings = {conv[0] for conv in load_conversations(("english", "chinese"))}
replies = {line: minigpt.generate_response(line, checkpoint=CKPT) for line in lines}
for line, reply in replies.items():
    assert isinstance(reply, str) and "<|" not in reply
    assert minigpt.generate_response(line, checkpoint=CKPT) == reply     # greedy: repeatable
display(Markdown("| you | opens a corpus dialogue? | minigpt |\n|---|---|---|\n" + "\n".join(
    f"| {line} | {'yes' if line in openings else 'no'} | "
    f"{reply.replace('|', '/').replace(chr(10), ' ') or '*(empty reply)*'} |"
    for line, reply in replies.items())))

# %% [markdown]
# How does the model decide a reply is over? Below we replay the same greedy replies
# step by step with `minigpt.generate.stream`, which also hands out the scores the
# model computed at each step, and plot the probability it gave to `<|end|>`. The
# replay must produce exactly the replies above, and each reply either ended at a step
# where `<|end|>` was the likeliest token or ran into the length limit.

# %%
def reply_steps(text):
    """The greedy reply to `text` step by step -> (characters, probabilities (n, V)).

    Row i of the probabilities is the distribution character i was chosen from; the
    last row is the one that chose the end marker (if the reply ended)."""
    ids = bot.prompt(text)                                 # <|user|>text<|end|><|bot|>
    chars, probs = [], []
    for next_ids, logits in stream(model, ids[None, :], bot.max_new_tokens, greedy=True,
                                   with_logits=True):
        p, _ = softmax_forward(logits[0].astype(np.float64))
        probs.append(p)
        token = tok.itos[int(next_ids[0])]
        if token.startswith("<|"):
            break
        chars.append(token)
    return chars, np.array(probs)


steps = {line: reply_steps(line) for line in lines}
for line, (chars, probs) in steps.items():
    assert "".join(chars) == replies[line]
    assert np.array_equal(probs.argmax(axis=1)[: len(chars)],
                          [tok.stoi[c] for c in chars])      # greedy = the argmax
    ended = len(probs) > len(chars)
    assert (probs[-1].argmax() == tok.end_id) if ended else len(chars) == bot.max_new_tokens
    print(f"{names[line]:>20}: {len(chars):3d} characters, "
          f"{'ended by <|end|>' if ended else 'cut at the length limit'}")

fig, ax = plt.subplots(figsize=(10, 4))
for line in lines:
    chars, probs = steps[line]
    ax.plot(np.arange(1, len(probs) + 1), probs[:, tok.end_id], ".-", ms=3, lw=0.8,
            label=f"reply to {names[line]}")
ax.axhline(0.5, color="gray", ls=":", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("step of the reply (1 = choosing the first character)")
ax.set_ylabel("p(<|end|>)")
ax.set_title("Probability of ending the reply, step by step (greedy decoding)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. Temperature, top-k and top-p
#
# Greedy decoding always gives the same reply. To vary it we *sample* the next
# character instead, from a reshaped distribution. Temperature $\tau$ divides the
# scores before the softmax, and top-$k$ keeps only the $k$ most likely characters:
#
# $$p_\tau(c) = \frac{e^{z_c/\tau}}{\sum_{c'} e^{z_{c'}/\tau}} \qquad
#   p_{\tau,k}(c) \propto p_\tau(c)\,[\,c \text{ among the } k \text{ highest scores}\,].$$
#
# $\tau < 1$ sharpens (towards greedy), $\tau > 1$ flattens (towards noise), and top-$k$
# cuts the long tail of unlikely characters that make sampled text derail. We take the
# model's scores for the first character of its reply to "Hello" and draw 4000 samples
# with `minigpt.generate.sample_next` under each setting.

# %%
logits = model.forward(bot.prompt("Hello")[None, :])[0][0, -1].astype(np.float64)   # (V,)
settings = [dict(temperature=0.5), dict(temperature=1.0), dict(temperature=2.0),
            dict(temperature=1.0, top_k=5)]
n_draws = 4000
rng = np.random.default_rng(0)
top = np.argsort(logits)[::-1][:12]                  # the 12 likeliest characters
freqs = []
for s in settings:
    draws = sample_next(np.tile(logits, (n_draws, 1)), rng=rng, **s)
    freq = np.bincount(draws, minlength=tok.vocab_size) / n_draws
    expected, _ = softmax_forward(logits / s["temperature"])
    if "top_k" in s:
        assert len(np.unique(draws)) <= s["top_k"]
        keep = np.argsort(logits)[::-1][: s["top_k"]]
        expected = np.zeros_like(expected)
        expected[keep] = softmax_forward(logits[keep] / s["temperature"])[0]
    assert np.abs(freq - expected).max() < 0.04      # sampling follows the formula
    freqs.append(freq)
assert freqs[0][top[0]] > freqs[1][top[0]] > freqs[2][top[0]]   # cooler = more peaked
print("sampled frequencies match p_τ (and p_τ,k); a lower τ concentrates on the top choice")

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), sharey=True)
for ax, s, freq in zip(axes, settings, freqs):
    ax.bar(range(len(top)), freq[top])
    ax.set_xticks(range(len(top)), [char_label(tok.itos[i]) for i in top], fontsize=9)
    ax.set_title(", ".join(f"{k} = {v}" for k, v in s.items()))
    ax.set_xlabel("next character (12 likeliest)")
axes[0].set_ylabel(f"share of {n_draws} samples")
fig.suptitle("First character of the reply to 'Hello' under four sampling settings")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Exercises: the distribution behind `sample_next`
#
# `sample_next` returns the token it drew, not the distribution it drew it from. In the
# two exercises you write that distribution, and the check compares it with the library
# by sampling from both with the same seed. `sample_next(np.log(p))` draws from your
# `p` (the softmax of $\log p$ is $p$ again, and $\log 0 = -\infty$ is never drawn);
# with the same seed it uses the same uniform number per row as
# `sample_next(logits, **setting)`, so the two pick the same token in every one of 2,000
# rows when the distributions agree, and in many rows not when they differ. The check
# also compares your rows' sums with 1, which sampling alone cannot see
# (`sample_next` scales its uniform number by the row's total).

# %%
def drawn_from(probs_fn, settings):
    """A function (logits (B, V), seed) -> [(ids (B,), row sums (B,)) per setting]:
    the tokens sample_next draws from probs_fn(logits, **setting), and that
    distribution's row sums."""
    def draw(logits, seed):
        out = []
        for setting in settings:
            p = probs_fn(logits, **setting)
            with np.errstate(divide="ignore", invalid="ignore"):    # log 0 = -inf
                out.append((sample_next(np.log(p), rng=seed), p.sum(axis=-1)))
        return out
    return draw


def drawn_by_minigpt(settings):
    """The same, for sample_next(logits, **setting) itself (its rows sum to 1)."""
    def draw(logits, seed):
        return [(sample_next(logits, rng=seed, **setting), np.ones(len(logits)))
                for setting in settings]
    return draw


check_rng = np.random.default_rng(6)
tied_logits = check_rng.integers(-4, 5, size=(2000, 12)).astype(np.float64)  # many ties
smooth_logits = 2.0 * check_rng.standard_normal((2000, 12))                  # no ties
print("rows with a tie at the 3rd highest score:",
      int((np.sort(tied_logits, axis=-1)[:, -3] == np.sort(tied_logits, axis=-1)[:, -4]).sum()),
      "of", len(tied_logits))

# %% [markdown]
# **Exercise 1.** Write `my_sampling_probs(logits, temperature, top_k)`: for scores
# `logits` of shape `(B, V)`, the distribution $p_{\tau,k}$ that `sample_next` samples
# from. Divide by the temperature. If `top_k` is an int (and less than $V$), find each
# row's $k$-th highest score and give every score *below* it the value $-\infty$, so
# that its probability becomes 0; scores *equal* to the $k$-th are kept, as the library
# keeps them (a row with ties keeps more than $k$ tokens; the check's scores are
# integers, full of ties). `top_k=None` keeps every token. Then the softmax of each row
# (`softmax_forward(z)` returns `(p, cache)`). Return `p`, `(B, V)`.

# %%
def my_sampling_probs(logits, temperature=1.0, top_k=None):
    """logits: (B, V) -> p (B, V): softmax(logits / temperature) over each row's
    top_k highest scores (ties at the k-th kept), 0 elsewhere; rows sum to 1."""
    # BEGIN SOLUTION
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.sort(z, axis=-1)[:, [-top_k]]               # (B, 1) the k-th highest
        z = np.where(z < kth, -np.inf, z)                    # below it: never drawn
    p, _ = softmax_forward(z)
    # END SOLUTION
    return p

# %% tags=["check"]
k_settings = [dict(temperature=1.0, top_k=None), dict(temperature=0.5, top_k=3),
              dict(temperature=2.0, top_k=1)]                # result[i]: setting i
assert check_close("temperature + top-k", drawn_from(my_sampling_probs, k_settings),
                   drawn_by_minigpt(k_settings), tied_logits, 0)

# %% tags=["solution-only"]
for s, freq in zip(settings, freqs):         # the 4000 draws per setting of the plot above
    assert np.abs(freq - my_sampling_probs(logits[None], **s)[0]).max() < 0.04
print("my_sampling_probs gives the distributions the draws for the plot above followed")

# %% [markdown]
# ### Top-p (nucleus) sampling
#
# Top-$k$ keeps the same number of characters whether the model is sure or not. *Nucleus
# sampling* (top-p, Holtzman et al. 2019) keeps instead the smallest set of the most
# likely characters whose probabilities add up to at least $p$: one character when the
# model is sure, dozens when it is not. Sort one row's probabilities in decreasing
# order, $p_{(1)} \ge p_{(2)} \ge \dots \ge p_{(V)}$; the $i$-th is kept when the mass
# ranked above it is still short of $p$,
#
# $$\text{keep } (i) \iff \sum_{j<i} p_{(j)} < p,$$
#
# so the most likely character is always kept, and the last one kept is the one whose
# probability carries the sum to $p$ or past it. The kept probabilities are then divided
# by their sum. `sample_next` applies top-p after temperature and top-$k$, to their
# $p_{\tau,k}$.
#
# **Exercise 2.** Write `my_top_p(p, top_p)`: `p` is `(B, V)`, each row a distribution;
# return the nucleus of each row, renormalised, `(B, V)`, in the original order of the
# tokens. `np.argsort(-p, axis=-1)` gives each row's order, most likely first;
# `np.take_along_axis` reads a row in that order and `np.put_along_axis` writes back to
# where the tokens were; `np.cumsum(..., axis=-1)` adds up along a row. (The check's
# scores have no ties, so the order among equal probabilities does not matter here;
# the library puts the lower token id first.)

# %%
def my_top_p(p, top_p):
    """p: (B, V) rows summing to 1 -> (B, V): each row's nucleus (the smallest set of
    most likely tokens with mass >= top_p), renormalised; 0 elsewhere."""
    # BEGIN SOLUTION
    order = np.argsort(-p, axis=-1, kind="stable")           # (B, V) most likely first
    p_sorted = np.take_along_axis(p, order, axis=-1)
    before = np.cumsum(p_sorted, axis=-1) - p_sorted         # mass ranked above each
    keep = np.zeros(p.shape, dtype=bool)
    np.put_along_axis(keep, order, before < top_p, axis=-1)  # back to token order
    p = np.where(keep, p, 0.0)
    p = p / p.sum(axis=-1, keepdims=True)
    # END SOLUTION
    return p

# %% tags=["check"]
p_settings = [dict(top_p=0.5), dict(top_p=0.9), dict(top_p=0.999)]   # result[i]: setting i
def my_nucleus(logits, top_p):
    """The nucleus of softmax(logits) by my_top_p: top-p at temperature 1, no top-k."""
    return my_top_p(softmax_forward(logits)[0], top_p)


assert check_close("top-p", drawn_from(my_nucleus, p_settings), drawn_by_minigpt(p_settings),
                   smooth_logits, 0)

# %% tags=["solution-only"]
p_hello, _ = softmax_forward(logits)                           # the reply to 'Hello', step 1
for top_p in (0.5, 0.9, 0.99):
    nucleus = my_top_p(p_hello[None], top_p)[0]
    draws = sample_next(np.tile(logits, (n_draws, 1)), top_p=top_p, rng=1)
    assert set(np.unique(draws)) <= set(np.flatnonzero(nucleus))   # drawn only from it
    print(f"top_p = {top_p}: the nucleus of the first character of the reply to 'Hello' "
          f"holds {np.count_nonzero(nucleus)} of {tok.vocab_size} characters")

# %% [markdown]
# The same settings on whole replies (each with its own fixed seed, so this cell prints
# the same replies every time it runs):

# %%
rows = []
for s in [dict(greedy=True), dict(greedy=False, temperature=0.5),
          dict(greedy=False, temperature=1.0), dict(greedy=False, temperature=2.0),
          dict(greedy=False, temperature=1.0, top_k=5),
          dict(greedy=False, temperature=1.0, top_p=0.9)]:
    sampler = Chatbot(model, tok, seed=0, **s)
    cells = []
    for line in ("Hello", "What is AI?"):
        sampler.reset()                          # each line opens its own conversation
        cells.append(sampler.reply(line).replace("|", "/").replace("\n", " "))
    rows.append((", ".join(f"{k}={v}" for k, v in s.items()), *cells))
assert rows[0][1:] == (replies["Hello"], replies["What is AI?"])   # greedy = generate_response
display(Markdown("| decoding | reply to 'Hello' | reply to 'What is AI?' |\n|---|---|---|\n"
                 + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)))

# %% [markdown]
# ## 4. How sure is it? Entropy, character by character
#
# The text lists handling uncertainty (不确定性的处理), avoiding wrong or inaccurate
# output, among the open challenges of chat models. A model like ours at least *knows*
# how sure it is at every step: the entropy of the distribution it picked each
# character from,
#
# $$H_t = -\sum_c p_t(c)\,\log_2 p_t(c) \quad\text{bits},$$
#
# is 0 when one character is certain and $\log_2 V$ when every character is equally
# likely. Below, the reply to a greeting the corpus contains and to the text's own
# example, which it does not contain.

# %%
fig, axes = plt.subplots(2, 1, figsize=(13, 6.5))
show = 48                                   # at most this many characters per plot
for ax, line in zip(axes, ["Hello", "你好，我是人类，请问你是谁？"]):
    chars, probs = steps[line]
    entropy = -(probs * np.log2(np.clip(probs, 1e-300, None))).sum(axis=1)   # (n,)
    assert np.all(entropy >= -1e-9) and np.all(entropy <= np.log2(tok.vocab_size) + 1e-9)
    labels = [char_label(c) for c in chars] + (["‹end›"] if len(probs) > len(chars) else [])
    ax.bar(range(min(show, len(entropy))), entropy[:show])
    ax.set_xticks(range(min(show, len(entropy))), labels[:show], fontsize=7, rotation=90)
    ax.set_ylabel("entropy (bits)")
    shown = f"first {show} of " if len(entropy) > show else ""
    ax.set_title(f"Reply to {names[line]} ({shown}{len(entropy)} steps): "
                 f"mean {entropy.mean():.2f} bits per character")
    print(f"{line!r} -> {''.join(chars)!r}: mean entropy {entropy.mean():.2f} bits, "
          f"max {entropy.max():.2f} (log2 V = {np.log2(tok.vocab_size):.1f})")
axes[-1].set_xlabel("characters of the reply, in order")
plt.tight_layout()
plt.show()

# %% [markdown]
# Where the bars are high the model was guessing; a system built on it could refuse, or
# warn, when they are. Compare the two replies' peaks as well as their means: a line
# the model has not seen need not make it less sure on average, but it shows in the
# few places where it was close to guessing. (Low entropy is not the same as correct: a model can be
# confidently wrong, which is part of why the text calls this an open problem.)
#
# ## 5. Where it looks: attention over a reply
#
# Finally, the formula of notebook 1 inside the trained model. One `model.forward`
# over a question and its greedy reply keeps, in `model.cache`, what every layer
# computed, by name: `model.cache.attention(l)` is block $l$'s attention weights
# $A = \text{softmax}(QK^T/\sqrt{d_k})$, and `model.cache.blocks[l].attn.heads` holds
# the $q$ and $k$ they came from, so we check the last block's weights against the
# formula. We want the question and the whole reply inside the model's window of
# `block_size` characters, so the map shows both: we take the first of a few English
# lines whose greedy reply fits, and if none does (greedy replies that loop never end),
# a reply sampled at temperature 0.5 with a fixed seed.

# %%
def attention_maps(model, ids):
    """Attention weights of every block: list of (nh, T, T) arrays, for ids (T,).

    One forward pass of the model; its cache names what each layer computed, so the
    weights are read, not recomputed. For the last block we check them against the
    formula, softmax(q k^T / sqrt(d_k)) with the causal mask, on the q and k it cached.
    """
    model.forward(ids[None, :])                                 # keeps model.cache
    maps = [model.cache.attention(l)[0] for l in range(model.config.n_layer)]
    heads = model.cache.blocks[-1].attn.heads                   # the last block's attention
    T, hs = len(ids), model.config.head_size
    scores = heads.q.astype(np.float64) @ heads.k.swapaxes(-1, -2) / np.sqrt(hs)  # (1, nh, T, T)
    scores[..., causal_mask(T, T)] = -np.inf
    assert np.allclose(softmax_forward(scores)[0][0], maps[-1], atol=1e-5)
    return maps


def dialogue_ids(sampler, line):
    """<|user|>line<|end|><|bot|>reply<|end|> as ids, the reply written by `sampler`."""
    sampler.reset()
    prompt = sampler.prompt(line)
    reply = sampler.reply(line)
    sampler.reset()
    return np.concatenate([prompt, tok.encode(reply, allow_special=False), [tok.end_id]])


candidates = ["Hi", "Hello", "Tell me a joke", "What is your name?", "How are you?",
              "What is AI?"]
samplers = {"greedy": Chatbot(model, tok),
            "sampled, temperature 0.5": Chatbot(model, tok, greedy=False, temperature=0.5,
                                                seed=0)}
block = model.config.block_size
line, how, ids = next(
    ((line, how, ids) for how, sampler in samplers.items() for line in candidates
     for ids in [dialogue_ids(sampler, line)] if len(ids) <= block),
    ("What is AI?", "greedy, last window", dialogue_ids(samplers["greedy"], "What is AI?")))
ids = ids[-block:]
maps = attention_maps(model, ids)
assert all(np.allclose(m.sum(axis=-1), 1, atol=1e-5) for m in maps)
assert all(np.all(np.triu(m, k=1) == 0) for m in maps)                 # causal
labels = [char_label(tok.itos[i]) for i in ids]
print(f"{line!r}, reply {how}; {len(ids)} tokens: {tok.decode(ids)!r}")

last = maps[-1]
nh = last.shape[0]
cols = min(nh, 2)
rows_ = -(-nh // cols)
fig, axes = plt.subplots(rows_, cols, figsize=(6.5 * cols, 6.5 * rows_), squeeze=False)
for head, ax in enumerate(axes.ravel()):
    if head >= nh:
        ax.axis("off")
        continue
    ax.imshow(last[head], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(ids)), labels, fontsize=6, rotation=90)
    ax.set_yticks(range(len(ids)), labels, fontsize=6)
    ax.set_title(f"block {len(maps) - 1}, head {head}")
    ax.set_xlabel("key: the character attended to")
    ax.set_ylabel("query: the character being processed")
fig.suptitle(f"Attention weights of the last block over {line!r} and its reply ({how})")
plt.tight_layout()
plt.show()

# %% [markdown]
# Each row is one position deciding what to read from the positions before it (the
# upper triangle is empty: the causal mask). Look for heads that attend to the
# previous character or two, heads that look back to a marker (where a turn began),
# and whether any head reaches back into the question while the answer is being
# written.
#
# ## 6. The text's own code on this model
#
# The text's §4 loads GPT-2 with Hugging Face Transformers and generates with
# `model.generate`. Our model has GPT-2's architecture (pre-LN blocks, tanh GELU, a head
# tied to the token embeddings), so its weights move across exactly: `minigpt.export`
# writes a directory that `GPT2LMHeadModel.from_pretrained` reads (on the command line,
# `python -m minigpt export out/chat --to hf out/chat-hf`). Two things are not GPT-2's
# and are folded into the weights: the fixed sinusoidal table becomes GPT-2's learned
# position table `wpe` (the same numbers, now trainable), and the embedding scale
# $\sqrt{C}$ goes into `wte` and the final layer norm.
#
# The text loads GPT-2's tokenizer class, `GPT2Tokenizer`, which splits text into
# GPT-2's 50,257 byte-pair pieces. Ours is a different vocabulary, one token per
# character (Chinese included) plus the three markers, so the export writes its own
# tokenizer file and `AutoTokenizer` reads it; that is the only other change to the
# text's lines. The tokenizer also writes each line as a user turn,
# `<|user|>text<|end|><|bot|>`, so `tokenizer.encode(input_text)` gives exactly the
# prompt that `minigpt.generate_response` builds, and the exported generation settings
# stop a reply at `<|end|>` and decode greedily, as ours does.
#
# Two details of the text's code are not what its words suggest: `max_length=50`
# counts the prompt's tokens too, so the reply gets 50 minus the prompt's length; and
# `tokenizer.decode(output[0])` decodes the whole sequence, so `generate_response`
# returns the question followed by the reply, not the reply alone.

# %%
try:
    import torch
    import transformers
    transformers.utils.logging.disable_progress_bar()    # (its weight-loading bar)
except ImportError:
    transformers = None
from minigpt.export import export_hf

HF_DIR = os.path.join(tempfile.mkdtemp(prefix="minigpt-notebook06-hf-"), "chat-hf")
export_hf(model, tok, HF_DIR)
print("exported:", ", ".join(sorted(os.listdir(HF_DIR))))
RUN_TEXT_CODE = transformers is not None and not QUICK
if transformers is None:
    print("transformers is not installed (pip install transformers torch==2.13.0 to run "
          "the text's code below; it is skipped)")
elif QUICK:
    print("quick mode: the tiny model's context (16 characters) is shorter than the text's "
          "max_length=50, so the text's code below is skipped")

# %% [markdown]
# The text's §4.2 code, line for line, with `"gpt2"` replaced by the exported directory
# and `GPT2Tokenizer` by `AutoTokenizer` (indented under an `if`, so that the notebook
# also runs where Transformers is not installed):

# %%
if RUN_TEXT_CODE:
    from transformers import GPT2LMHeadModel, AutoTokenizer

    # 加载预训练模型和标记器
    model_hf = GPT2LMHeadModel.from_pretrained(HF_DIR)
    tokenizer = AutoTokenizer.from_pretrained(HF_DIR)

    # 定义对话函数
    def generate_response(input_text):
        input_ids = tokenizer.encode(input_text, return_tensors="pt")
        output = model_hf.generate(input_ids, max_length=50, num_return_sequences=1)
        output_text = tokenizer.decode(output[0], skip_special_tokens=True)
        return output_text

    # 进行对话
    user_input = "你好，我是人类，请问你是谁？"
    response = generate_response(user_input)
    print(response)

# %% [markdown]
# The check: for every line of section 2, the text's function returns the line
# followed by exactly the reply `minigpt.generate_response` gave (as much of it as
# fits in `max_length=50`).

# %%
if RUN_TEXT_CODE:
    rows = []
    for line in lines:
        n_prompt = len(tokenizer.encode(line))               # <|user|> line <|end|><|bot|>
        expected = line + replies[line][: 50 - n_prompt]
        got = generate_response(line)
        assert got == expected, (line, got, expected)
        rows.append(f"| {line} | {got.replace('|', '/')} |")
    display(Markdown("| input_text | the text's `generate_response` (Transformers) |\n"
                     "|---|---|\n" + "\n".join(rows)))

# %% [markdown]
# **Summary.** With the text's attention formula, its sinusoidal positions, a loop of the
# seven training steps and a few minutes of CPU time, the notebook produced a working,
# if small-minded, chat model: `minigpt.generate_response` answers most of the
# greetings it has seen with the corpus's own answers, answers some other lines, seen
# or not (the text's example among them), with a corpus line that does not fit, and
# invents words when it has none by heart; every one of its decisions (which
# character, when to stop, how sure, where it looked) is an array we can inspect. And
# it is GPT-2 in all but size: exported, it runs in Hugging Face Transformers under the
# text's own §4 code and gives the same replies.

# %% [markdown]
# ## Questions to think about (思考题)
#
# Answer in words, or with a few lines of code in a new cell (the functions of this
# notebook are enough: `bot.reply`, `reply_steps`, `Chatbot(model, tok, greedy=False,
# ...)`, `my_sampling_probs`).
#
# 1. **Why can greedy decoding loop forever?** Greedy decoding (贪心解码) picks the
#    next character as a fixed function of the last `block_size` characters. What
#    happens once the window holds the same characters as it did some steps earlier?
#    Try `bot.reset(); bot.reply("You are not immortal")`, then look at the
#    probabilities `reply_steps` returns for the repeated part: how sure is the model
#    of each character it repeats? Why does sampling, even at $\tau = 0.5$, usually get
#    out?
# 2. **What do $\tau \to 0$ and $\tau \to \infty$ do?** Say what $p_\tau$ becomes at each
#    end, and which decoding each one turns into; then check with
#    `my_sampling_probs(logits[None], τ)` at $\tau = 0.01$ and $\tau = 100$ (its largest
#    probability, its entropy beside $\log_2 V$). What does top-$k$ change at
#    $\tau \to \infty$? Which end does the $\tau = 2$ row of the replies table look like?
# 3. **Why does a reply stop, and who decides?** Nothing in `generate` knows what an
#    answer is. What in the training data taught the model to write `<|end|>`, and what
#    stops a reply that never writes it? Can top-$k$ or top-$p$ make a reply *less*
#    likely to end? (Think of a step where `<|end|>` is the fourth most likely
#    character, with 5% of the probability.)
