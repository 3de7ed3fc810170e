"""Measuring a chat model: its loss on held-out text, and whether its replies are words.

Two numbers, for two different questions:

1. Loss (cross-entropy in nats per character) on the validation conversations:
   how well the model predicts text it never trained on. Lower is better; ln(V) is
   a uniform guess. It is an average over every character, so a model can score
   well while still gluing plausible letters into made-up words.

2. Word validity: ask the model, greedily, to reply to the opening line of each
   validation conversation, and count how many of the English words in its replies
   are words that occur in the corpus:
       validity = (# reply words found in the corpus) / (# reply words)
   A word is a run of ASCII letters, apostrophes inside allowed ("I'm"), compared
   in lower case. Chinese replies contain no such words and do not count. This is
   the question a user asks first ("does it answer in real words?"). We also give
   the stricter figure against the training conversations alone, where copying a
   word seen only in a validation prompt does not count as knowing it.
   Neither figure says a reply makes sense ("the the the" scores 100%), so we
   also count the replies that end with the end-of-turn marker, and print some.

3. Greetings: the opening lines of the corpus's greetings files (English and
   Chinese: "Hello", "How are you doing?", "你好", ...). A reply counts when it is,
   word for word, one of the answers the corpus gives to that line anywhere.
   This is the check a new user does first, made into a number.

evaluate_chat measures 2 and 3 and prints them: at the end of every training run,
and in `python -m minigpt eval`, which prints 1 first, twice: estimate_loss, the mean
over random windows that training prints, and stream_loss, every position of the
validation stream scored once with at least half a block of context (the figure to
compare models by).
"""
from __future__ import annotations

import importlib.resources
import re
from collections import Counter

import numpy as np
import yaml

from .data import CORPUS_PACKAGE, format_conversation
from .generate import generate
from .language import tr
from .ops.loss import cross_entropy_forward
from .tokenizer import BOT

WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def estimate_loss(model, data, batch_size, block_size, eval_iters, seed):
    """Mean loss over eval_iters batches of each split -> {"train": float, "val": float}.

    The batches come from a generator seeded by (seed, split) alone, so every call
    sees the SAME batches: successive estimates differ only because the model did.
    Dropout is off (train=False), as at inference time. model: a GPT, or the
    DataParallel engine training runs it in (the same numbers training printed).
    """
    losses = {}
    for i, split in enumerate(("train", "val")):
        rng = np.random.default_rng([seed, 1, i])
        total = 0.0
        for _ in range(eval_iters):
            x, y = data.get_batch(split, batch_size, block_size, rng)
            _, loss = model.forward(x, y)
            total += loss
        losses[split] = total / eval_iters
    return losses


def stream_windows(n, block_size):
    """How stream_loss covers a stream of n predictions with windows of block_size:
    a list of (start, first), the window holding predictions start .. start + T - 1
    and scoring those from start + first on. Every prediction is scored exactly once;
    the first window scores all of its own, every later one slides by half a block
    (H = T // 2) and scores its last H, so each of those sees at least T - H earlier
    tokens; the last window ends where the stream ends and scores what is left."""
    T = min(block_size, n)
    H = max(1, T // 2)
    windows, scored = [(0, 0)], T            # (start, first scored offset), done so far
    while scored < n:
        start = min(scored + H - T, n - T)   # its last H end at scored + H, or at n
        windows.append((start, scored - start))
        scored = start + T
    return windows


def stream_loss(model, tokens, batch_rows=32):
    """The loss over a whole token stream, every next-token prediction scored once
    -> (mean loss in nats, number of predictions). tokens: 1-D ids, at least 2.

    The sampled estimate (estimate_loss) averages random windows, in which the first
    positions see almost no context; here the windows are those of stream_windows,
    so each prediction past the first block has at least half a block of context.
    """
    T = model.config.block_size
    x_all, y_all = tokens[:-1], tokens[1:]                      # n predictions
    n = len(y_all)
    windows = stream_windows(n, T)
    width = min(T, n)
    total = 0.0
    groups = {}                                                  # first -> starts
    for start, first in windows:
        groups.setdefault(first, []).append(start)
    for first, starts in groups.items():                         # same scored span: a batch
        for i in range(0, len(starts), batch_rows):
            rows = np.array(starts[i:i + batch_rows])[:, None] + np.arange(width)  # (B, T)
            logits, _ = model.forward(x_all[rows])                              # (B, T, V)
            loss, _ = cross_entropy_forward(logits[:, first:], y_all[rows][:, first:])
            total += loss * rows.shape[0] * (width - first)      # mean -> sum
    return total / n, n


def reply_prompt(tokenizer, text):
    """The ids that ask for a reply to one user line: <|user|>text<|end|><|bot|>."""
    return tokenizer.encode(format_conversation([text]) + BOT)


def greedy_replies(model, tokenizer, lines, max_new_tokens=160, batch_rows=64,
                   with_finished=False):
    """Greedy reply to each user line (no earlier context) -> list of str.

    Prompts of the same length are generated together as one batch (the model has
    no padding mask, so only equal lengths can share a batch); a reply ends at the
    end-of-turn marker or after max_new_tokens tokens. with_finished=True also
    returns, per reply, whether it ended with the marker (a reply that never ends
    is a symptom of a model that has not learned the turn structure).
    """
    prompts = [reply_prompt(tokenizer, line) for line in lines]
    by_length = {}
    for i, ids in enumerate(prompts):
        by_length.setdefault(len(ids), []).append(i)
    replies, finished = [""] * len(lines), [False] * len(lines)
    end = tokenizer.end_id
    for length, rows in sorted(by_length.items()):
        for start in range(0, len(rows), batch_rows):
            chunk = rows[start:start + batch_rows]
            idx = np.stack([prompts[i] for i in chunk])                  # (b, length)
            out = generate(model, idx, max_new_tokens, greedy=True, stop_token=end)
            for i, ids in zip(chunk, out[:, length:]):
                stop = np.flatnonzero(ids == end)
                finished[i] = bool(stop.size)
                ids = ids[:stop[0]] if stop.size else ids
                replies[i] = tokenizer.decode(ids)
    return (replies, finished) if with_finished else replies


def words(text):
    """The English words of text, lower-cased: "I'm fine, thanks" -> ["i'm", "fine", "thanks"]."""
    return [w.lower() for w in WORD_RE.findall(text)]


def corpus_words(conversations):
    """The set of words occurring in any turn of the conversations."""
    return {w for turns in conversations for turn in turns for w in words(turn)}


def word_validity(replies, known_words):
    """-> (fraction of reply words in known_words, number of reply words, Counter of unknowns).

    The fraction is nan when the replies hold no English words at all.
    """
    all_words = [w for reply in replies for w in words(reply)]
    unknown = Counter(w for w in all_words if w not in known_words)
    n = len(all_words)
    fraction = (n - sum(unknown.values())) / n if n else float("nan")
    return fraction, n, unknown


def evaluate_replies(model, tokenizer, train_conversations, val_conversations, n=None,
                     max_new_tokens=160):
    """Greedy replies to the first n validation openings, and their word validity.

    Two references for "a real word": the whole corpus (the issue's definition:
    every conversation, training and validation), and, stricter, the training
    conversations alone (the only words the model has seen).
    -> dict with "validity" (whole corpus), "validity_train", "n_words", "n_replies",
    "n_finished" (replies that ended with the end-of-turn marker), "unknown" (Counter
    of words found nowhere in the corpus), "replies" (list of (prompt, reply)).
    """
    openings = [turns[0] for turns in val_conversations[:n]]
    replies, finished = greedy_replies(model, tokenizer, openings, max_new_tokens,
                                       with_finished=True)
    train_words = corpus_words(train_conversations)
    all_words = train_words | corpus_words(val_conversations)
    fraction, n_words, unknown = word_validity(replies, all_words)
    fraction_train, _, _ = word_validity(replies, train_words)
    return {"validity": fraction, "validity_train": fraction_train, "n_words": n_words,
            "n_replies": len(replies), "n_finished": sum(finished), "unknown": unknown,
            "replies": list(zip(openings, replies))}


def describe_validity(result):
    """A few lines for humans, e.g.
        word validity: 96.1% of 812 English words in 136 greedy replies to validation
        openings occur in the corpus (95.0% in the training conversations alone)
          unknown words: 'bett' x2, 'nof'
          replies that ended with the end-of-turn marker: 131 of 136
    """
    def percent(v):
        return "n/a" if v != v else f"{100 * v:.1f}%"
    lines = [tr(f"word validity: {percent(result['validity'])} of {result['n_words']:,} English "
                f"words in {result['n_replies']:,} greedy replies to validation openings occur "
                f"in the corpus ({percent(result['validity_train'])} in the training "
                f"conversations alone)",
                f"单词有效率：对验证集开头句的 {result['n_replies']:,} 条贪心解码回复中，"
                f"{result['n_words']:,} 个英文单词有 {percent(result['validity'])} 在语料库中出现过"
                f"（只算训练集对话则是 {percent(result['validity_train'])}）")]
    if result["unknown"]:
        lines.append(tr("  unknown words: ", "  不认识的词：") + ", ".join(
            f"{w!r} x{c}" if c > 1 else repr(w) for w, c in result["unknown"].most_common(8)))
    lines.append(tr(f"  replies that ended with the end-of-turn marker: {result['n_finished']} "
                    f"of {result['n_replies']}",
                    f"  以轮次结束标记收尾的回复：{result['n_replies']} 条中有 "
                    f"{result['n_finished']} 条"))
    return "\n".join(lines)


GREETING_FILES = ("english/greetings.yml", "chinese/greetings.yml")


def greeting_openings():
    """The distinct opening lines of the corpus's greetings files, in file order."""
    openings = []
    for name in GREETING_FILES:
        path = importlib.resources.files(CORPUS_PACKAGE) / "data" / name
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for turns in doc.get("conversations", []):
            if isinstance(turns, list) and turns and isinstance(turns[0], str):
                line = turns[0].strip()
                if line and line not in openings:
                    openings.append(line)
    return openings


def corpus_answers(conversations):
    """user line -> the set of bot turns that follow it anywhere in the conversations."""
    answers = {}
    for turns in conversations:
        for i in range(0, len(turns) - 1, 2):
            answers.setdefault(turns[i], set()).add(turns[i + 1])
    return answers


def evaluate_greetings(model, tokenizer, conversations, max_new_tokens=160):
    """Greedy replies to the greeting openings, and how many are the corpus's own answers.

    -> dict with "fraction", "n", "replies" (list of (line, reply, is_a_corpus_answer)).
    """
    lines = greeting_openings()
    answers = corpus_answers(conversations)
    replies = greedy_replies(model, tokenizer, lines, max_new_tokens)
    rows = [(line, reply, reply in answers.get(line, ())) for line, reply in zip(lines, replies)]
    return {"fraction": sum(ok for _, _, ok in rows) / len(rows), "n": len(rows),
            "replies": rows}


def describe_greetings(result, show=6):
    n_ok = sum(ok for _, _, ok in result['replies'])
    lines = [tr(f"greetings: {n_ok} of {result['n']} greedy "
                f"replies to the corpus's greeting lines are one of the corpus's own answers",
                f"问候语：对语料库中问候语的 {result['n']} 条贪心解码回复中，有 {n_ok} 条"
                f"是语料库自己的答案之一")]
    for line, reply, ok in result["replies"][:show]:
        lines.append(f"  {'ok ' if ok else '   '} {line!r} -> {reply[:60]!r}")
    return "\n".join(lines)


def evaluate_chat(model, tokenizer, conversations, *, n=None, max_new_tokens=160,
                  show_replies=0, show_greetings=6, say=print):
    """Both chat checks of a model, each reported with say() as soon as it is measured:
    the word validity of its replies to the first n validation openings (None: all),
    then the greetings.

    conversations: {"train": [...], "val": [...]}, as in CharDataset.conversations.
    show_replies: print that many (opening, reply) pairs before the validity figures.
    -> (evaluate_replies' dict, evaluate_greetings' dict).
    """
    train_convs, val_convs = conversations["train"], conversations["val"]
    result = evaluate_replies(model, tokenizer, train_convs, val_convs, n=n,
                              max_new_tokens=max_new_tokens)
    for prompt, reply in result["replies"][:show_replies]:
        say(f"  {prompt[:40]!r:>44} -> {reply[:60]!r}")
    say(describe_validity(result))
    greetings = evaluate_greetings(model, tokenizer, train_convs + val_convs,
                                   max_new_tokens=max_new_tokens)
    say(describe_greetings(greetings, show=show_greetings))
    return result, greetings
