"""GPTConfig: the one dataclass that describes a model's shape.

Dimension letters used everywhere in minigpt:
    B  batch size            T  time (sequence length, <= block_size)
    C  channels (n_embd)     V  vocabulary size
    nh number of heads       hs head size = C // nh
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

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
        if not isinstance(self.bias, bool):
            raise ValueError(f"GPTConfig.bias must be True or False, got {self.bias!r}")
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
