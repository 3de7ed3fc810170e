"""Measuring a chat model: its loss on held-out text, and whether its replies are words.

Two numbers, for two different questions:

1. Loss (cross-entropy in nats per character) on the validation conversations:
   how well the model predicts text it never trained on. Lower is better; ln(V) is
   a uniform guess. It is an average over every character, so a model can score
   well while still gluing plausible letters into made-up words.

2. Word validity: ask the model, greedily, to reply to the opening line of each
   validation conversation, and count how many of the English words in its replies
   are words that occur in the TRAINING conversations:
       validity = (# reply words found in the training text) / (# reply words)
   A word is a run of ASCII letters, apostrophes inside allowed ("I'm"), compared
   in lower case. Chinese replies contain no such words and do not count. This is
   the question a user asks first ("does it answer in real words?"); the
   training split is the reference, so copying a word seen only in a validation
   prompt does not count as knowing it.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from .data import format_conversation
from .generate import generate
from .tokenizer import BOT

WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def estimate_loss(model, data, batch_size, block_size, eval_iters, seed):
    """Mean loss over eval_iters batches of each split -> {"train": float, "val": float}.

    The batches come from a generator seeded by (seed, split) alone, so every call
    sees the SAME batches: successive estimates differ only because the model did.
    Dropout is off (train=False), as at inference time.
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

    -> dict with "validity", "n_words", "n_replies", "n_finished" (replies that ended
    with the end-of-turn marker), "unknown" (Counter), "replies" (list of (prompt, reply)).
    """
    openings = [turns[0] for turns in val_conversations[:n]]
    replies, finished = greedy_replies(model, tokenizer, openings, max_new_tokens,
                                       with_finished=True)
    fraction, n_words, unknown = word_validity(replies, corpus_words(train_conversations))
    return {"validity": fraction, "n_words": n_words, "n_replies": len(replies),
            "n_finished": sum(finished), "unknown": unknown,
            "replies": list(zip(openings, replies))}


def describe_validity(result):
    """A few lines for humans, e.g.
        word validity: 96.1% of 812 English words in 136 greedy replies to validation
        openings occur in the training conversations
          unknown words: 'bett' x2, 'nof'
          replies that ended with the end-of-turn marker: 131 of 136
    """
    v = result["validity"]
    figure = "n/a" if v != v else f"{100 * v:.1f}%"
    lines = [f"word validity: {figure} of {result['n_words']:,} English words in "
             f"{result['n_replies']:,} greedy replies to validation openings occur in "
             f"the training conversations"]
    if result["unknown"]:
        lines.append("  unknown words: " + ", ".join(
            f"{w!r} x{c}" if c > 1 else repr(w) for w, c in result["unknown"].most_common(8)))
    lines.append(f"  replies that ended with the end-of-turn marker: {result['n_finished']} "
                 f"of {result['n_replies']}")
    return "\n".join(lines)
