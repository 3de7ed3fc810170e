"""Presets: named starting points for a run, each value with the reason it was chosen.

A preset is a model shape (GPTConfig's fields but vocab_size, which the tokenizer
decides) and a TrainConfig. Any field of either can be overridden by name:

    >>> split_overrides({"n_layer": 2, "max_iters": 200})
    ({'n_layer': 2}, {'max_iters': 200})

"chat" is what `make train` runs; "tiny" trains in seconds, for tests and demos.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import GPTConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named starting point: the model's shape (vocab_size comes from the data) and
    how to train it."""
    model: dict
    train: TrainConfig


PRESETS = {
    # The default: what `make train` runs. Chosen by measuring word validity and
    # greetings (README, "Train and chat") among runs that fit 10 minutes on 2 cores.
    "chat": Preset(
        model=dict(
            n_layer=4,            # 6 layers, or n_embd 160, cost 30-50% more per step
            n_head=4,             # head size 32
            n_embd=128,           # C: enough to memorise the corpus' words in the time
            block_size=64,        # a greeting and its reply fit in 64 characters
            dropout=0.05,         # 0.02 invented more words; 0.1 answered fewer greetings
            bias=True,            # GPT-2's choice
            pos_encoding="sinusoidal",  # the text's table (PE, formula 2)...
            scale_embeddings=True,      # ...with the paper's scale, so it does not drown
                                        # the tokens; learned positions measured level
                                        # in the search (README, round 3: 2.22 vs 2.22
                                        # stream loss, 93.8% vs 93.2% valid words, 17 vs
                                        # 21 greetings; seeds move these by several)
            dtype="float32",      # half the memory traffic of float64
        ),
        train=TrainConfig(
            out_dir="out/chat",   # gitignored
            max_iters=3600,       # 57 ms a step on the faster 2-core machine (3.4 min),
                                  # ~2x that on the slower; 4,400 steps did no better
            batch_size=16,        # 1,024 characters a step, the corpus is ~99k; at the
                                  # same compute, 3,600 x 16 memorised more than 1,900 x 32
            lr=4e-3,              # small models tolerate a high peak rate; 2e-3 memorised
                                  # less in the time (5 vs 10 of 22 greetings)
            min_lr=4e-4,          # lr / 10
            warmup_iters=200,     # the first ~5% of the run
            eval_interval=600,    # 7 points on the loss curve
            eval_iters=20,        # 20 x 16 x 64 = 20k characters per estimate
            conversation_start_fraction=0.5,  # half the rows open a conversation, as
                                  # every chat does (packed with whole conversations
                                  # after it): greetings 5 -> 21 of 22 (round 3)
            label_smoothing=0.1,  # the characters never seen in training cost ~17 nats
                                  # each unsmoothed; with learned positions, stream loss
                                  # 2.46 -> 2.22 (README, round 3)
        )),
    # For tests and quick demos: seconds, not minutes. Learns little.
    "tiny": Preset(
        model=dict(n_layer=1,     # one block exercises every op
                   n_head=2,      # >1 so the head split is exercised
                   n_embd=16,     # tiny, but divisible by n_head
                   block_size=16,  # short windows: fast steps
                   dropout=0.1,   # on, so its masks are part of what resume restores
                   bias=True, pos_encoding="sinusoidal", dtype="float32"),
        train=TrainConfig(out_dir="out/tiny",
                          max_iters=20,        # a few seconds
                          batch_size=4,        # small batches: fast steps
                          lr=1e-2, min_lr=1e-3,
                          warmup_iters=4,      # warmup and cosine both happen
                          eval_interval=10, eval_iters=2,
                          eval_replies=4,      # a token word-validity check
                          eval_reply_tokens=8)),  # ... with short replies
}


MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(GPTConfig) if f.name != "vocab_size")
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def split_overrides(overrides: dict) -> tuple[dict, dict]:
    """{field: value} -> (GPTConfig fields, TrainConfig fields); unknown names are an error."""
    unknown = sorted(set(overrides) - set(MODEL_FIELDS) - set(TRAIN_FIELDS))
    if "vocab_size" in unknown:
        raise ValueError("vocab_size cannot be set: it is the tokenizer's vocabulary size")
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(MODEL_FIELDS + TRAIN_FIELDS)}")
    model = {k: v for k, v in overrides.items() if k in MODEL_FIELDS}
    train = {k: v for k, v in overrides.items() if k in TRAIN_FIELDS}
    return model, train
