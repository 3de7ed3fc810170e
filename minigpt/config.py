"""The two configs: GPTConfig, a model's shape, and TrainConfig, how to train it.

Dimension letters used everywhere in minigpt:
    B  batch size            T  time (sequence length, <= block_size)
    C  channels (n_embd)     V  vocabulary size
    nh number of heads       hs head size = C // nh
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .messages import shorten

POS_ENCODINGS = ("sinusoidal", "learned")
DTYPES = ("float32", "float64")


def strict_from_dict(cls, d: dict):
    """cls(**d) for a dataclass, but a key cls does not have is a ValueError naming it
    (a typo in a saved config or an override must not be silently ignored)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(known)}")
    return cls(**d)


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 65          # V: number of distinct tokens (characters here)
    block_size: int = 64          # longest context the model sees (max T)
    n_layer: int = 4              # number of transformer blocks
    n_head: int = 4               # nh: attention heads per block
    n_embd: int = 128             # C: width of the residual stream
    dropout: float = 0.0          # probability of zeroing an activation in training
    bias: bool = True             # biases in Linear and LayerNorm (GPT-2 has them)
    pos_encoding: str = "sinusoidal"  # "sinusoidal" (fixed table) or "learned" (wpe)
    dtype: str = "float32"        # "float32" to train fast, "float64" for gradient checks
    scale_embeddings: bool = False  # the paper's scale (Vaswani et al. 3.4): wte ~ N(0, 1/C)
                                    # and x = sqrt(C) wte[idx] + PE; False: GPT-2's std 0.02

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                f"each head gets n_embd // n_head channels")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be a float in [0, 1), got {self.dropout!r}")
        for name in ("bias", "scale_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GPTConfig.{name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"GPTConfig.pos_encoding must be one of {POS_ENCODINGS}, "
                             f"got {self.pos_encoding!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}: GPTConfig.dtype must be "
                             f"one of {DTYPES}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        """Build a config from a plain dict, refusing keys GPTConfig does not have."""
        return strict_from_dict(cls, d)

    def replace(self, **changes) -> "GPTConfig":
        """A copy with some fields changed (unknown keys are an error)."""
        return GPTConfig.from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the model's shape lives in GPTConfig)."""
    out_dir: str = "out/chat"     # where ckpt.npz and loss.png are written
    max_iters: int = 2000         # optimisation steps of the whole run
    batch_size: int = 32          # B: windows per step
    lr: float = 1e-3              # peak learning rate, reached at the end of warmup
    min_lr: float = 1e-4          # where the cosine decay ends (lr / 10)
    warmup_iters: int = 100       # steps of linear warmup from 0
    weight_decay: float = 0.1     # AdamW's decoupled decay, on matrices only
    beta1: float = 0.9            # AdamW's momentum
    beta2: float = 0.99           # AdamW's second-moment decay
    grad_clip: float = 1.0        # largest global gradient norm allowed
    eval_interval: int = 250      # steps between loss estimates and checkpoints
    eval_iters: int = 20          # batches per loss estimate (per split)
    eval_replies: int = 0         # validation openings replied to at the end; 0 = all
    eval_reply_tokens: int = 160  # longest reply those end-of-run evaluations generate
    seed: int = 1337              # parameter init, batches and dropout derive from it
    languages: str = "english,chinese"  # chatterbot-corpus languages, comma-separated
    val_fraction: float = 0.1     # share of conversations held out for validation
    conversation_start_fraction: float = 0.0  # share of training windows that begin where
                                              # a conversation begins (data.get_batch)
    label_smoothing: float = 0.0  # eps: train towards (1 - eps) one-hot + eps / V (ops/loss.py)

    def __post_init__(self):
        # The upper limits are far above any sensible run; they exist so that a
        # checkpoint someone hands you cannot ask for a day of evaluation or
        # gigabytes of batch (each still takes a minute or more at the limit).
        for name, (lowest, highest) in TRAIN_INT_LIMITS.items():
            _check_int(self, name, lowest, highest)
        for name in ("lr", "min_lr", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.lr and grad_clip must be > 0, got lr={self.lr}, "
                             f"grad_clip={self.grad_clip}")
        if self.min_lr > self.lr:
            raise ValueError(f"TrainConfig.min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if self.warmup_iters > self.max_iters:
            raise ValueError(f"TrainConfig.warmup_iters ({self.warmup_iters}) must not exceed "
                             f"max_iters ({self.max_iters})")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {value!r}")
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction < 1:
            raise ValueError(f"TrainConfig.val_fraction must be in (0, 1), got "
                             f"{self.val_fraction!r}")
        if isinstance(self.conversation_start_fraction, bool) \
                or not isinstance(self.conversation_start_fraction, (int, float)) \
                or not 0 <= self.conversation_start_fraction <= 1:
            raise ValueError(f"TrainConfig.conversation_start_fraction must be in [0, 1], got "
                             f"{self.conversation_start_fraction!r}")
        if isinstance(self.label_smoothing, bool) \
                or not isinstance(self.label_smoothing, (int, float)) \
                or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1), got "
                             f"{self.label_smoothing!r}")
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise ValueError(f"TrainConfig.out_dir must be a non-empty path, got {self.out_dir!r}")
        if not isinstance(self.languages, str) or not self.language_list():
            raise ValueError(f"TrainConfig.languages must name at least one language, "
                             f"got {self.languages!r}")

    def language_list(self) -> tuple:
        return tuple(s.strip() for s in self.languages.split(",") if s.strip())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build a config from a plain dict, refusing keys TrainConfig does not have."""
        return strict_from_dict(cls, d)


TRAIN_INT_LIMITS = {                 # field: (lowest, highest) allowed
    "max_iters": (1, 10**8),
    "batch_size": (1, 4096),
    "eval_interval": (1, 10**8),
    "eval_iters": (1, 1000),          # 1,000 batches already pin a loss to ~0.1%
    "warmup_iters": (0, 10**8),
    "eval_replies": (0, 10**6),
    "eval_reply_tokens": (1, 10_000),
    "seed": (0, 2**63 - 1),
}


def _check_int(cfg, name, lowest, highest):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise ValueError(f"TrainConfig.{name} must be an int from {lowest:,} to {highest:,}, "
                         f"got {shorten(repr(value))}")

