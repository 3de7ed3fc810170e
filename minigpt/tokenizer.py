"""CharTokenizer: text <-> integer ids, one id per Unicode character.

A character-level tokenizer is the simplest one that works for any language: "h",
"é" and "你" are each one token. The vocabulary is every character seen in the
training texts, sorted by code point so the same texts always give the same ids.

Three special tokens format a dialogue so the model can learn who speaks and where
a reply stops:

    <|user|>Hi there<|end|><|bot|>Hello!<|end|>

Each marker is ONE token id (ids 0, 1, 2, before every character), so the model
sees "<|end|>" as a single symbol, not as seven characters. `encode` recognises
the marker strings inside text.

Unknown characters (not in the vocabulary, e.g. an emoji the corpus never used)
are DROPPED by default: the model has no embedding row for them, so there is
nothing else sensible to feed it. They are not dropped silently: `encode` stores
them in `tokenizer.last_dropped`, and `tokenizer.unknown_note()` turns that into a
one-line note for the user, e.g.

    note: dropped 1 character not in the vocabulary: '😀'

Pass `unknown="error"` to get a ValueError naming the character instead.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

USER = "<|user|>"   # starts a user turn
BOT = "<|bot|>"     # starts a bot turn
END = "<|end|>"     # ends a turn: generation stops when the bot emits it
SPECIAL_TOKENS = (USER, BOT, END)   # ids 0, 1, 2 in every vocabulary

# One regex that cuts text into pieces, keeping the markers as pieces of their own:
# "a<|end|>b" -> ["a", "<|end|>", "b"]. The capture group is what keeps them.
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")

_UNKNOWN_POLICIES = ("drop", "error")


class CharTokenizer:
    """Maps text to int64 ids and back: special tokens first, then characters.

    Vocabulary layout (V = vocab_size):
        ids 0 .. 2       USER, BOT, END
        ids 3 .. V-1     the characters, in the order given (sorted by from_texts)
    """

    def __init__(self, chars: Sequence[str]):
        """chars: the vocabulary's characters in id order (each a 1-character str)."""
        chars = list(chars)
        _check_chars(chars)
        self.itos = list(SPECIAL_TOKENS) + chars            # id -> string
        self.stoi = {s: i for i, s in enumerate(self.itos)}  # string -> id
        self.last_dropped: list[str] = []  # characters the last encode() dropped

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "CharTokenizer":
        """Build the vocabulary from every character in `texts` (a list of str).

        Marker strings inside the texts count as special tokens, not as characters,
        so formatted dialogues can be passed directly.
        """
        if isinstance(texts, str):
            # Iterating a str would silently treat each character as a "text";
            # that hides marker strings, so ask for a list instead.
            raise TypeError("from_texts expects a list of strings, got one str; "
                            "wrap it in a list: from_texts([text])")
        chars = set()
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"from_texts expects strings, got {type(text).__name__}")
            for piece in _SPECIAL_SPLIT.split(text):
                if piece not in SPECIAL_TOKENS:
                    chars.update(piece)
        return cls(sorted(chars))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def user_id(self) -> int:
        return self.stoi[USER]

    @property
    def bot_id(self) -> int:
        return self.stoi[BOT]

    @property
    def end_id(self) -> int:
        return self.stoi[END]

    def encode(self, text: str, unknown: str = "drop", allow_special: bool = True) -> np.ndarray:
        """Text -> ids, shape (n,), int64.

        unknown: "drop" skips characters not in the vocabulary and records them in
            self.last_dropped (see unknown_note); "error" raises a ValueError.
        allow_special: if False, marker strings in `text` are NOT turned into special
            tokens but encoded character by character. Use this for text typed by a
            user, so typing "<|end|>" cannot end a turn.
        """
        if unknown not in _UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {_UNKNOWN_POLICIES}, got {unknown!r}")
        pieces = _SPECIAL_SPLIT.split(text) if allow_special else [text]
        ids, dropped = [], []
        for piece in pieces:
            if allow_special and piece in SPECIAL_TOKENS:
                ids.append(self.stoi[piece])
                continue
            for ch in piece:
                i = self.stoi.get(ch)
                if i is not None:
                    ids.append(i)
                elif unknown == "error":
                    raise ValueError(f"character {ch!r} (U+{ord(ch):04X}) is not in the "
                                     f"vocabulary")
                else:
                    dropped.append(ch)
        self.last_dropped = dropped
        return np.array(ids, dtype=np.int64)

    def decode(self, ids) -> str:
        """ids (any int sequence or array, shape (n,)) -> text; markers come back as strings."""
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size == 0:
            return ""
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"decode expects integer ids, got dtype {ids.dtype}")
        bad = ids[(ids < 0) | (ids >= self.vocab_size)]
        if bad.size:
            raise ValueError(f"id {int(bad[0])} is out of range for vocab_size {self.vocab_size}")
        return "".join(self.itos[i] for i in ids.tolist())

    def unknown_note(self) -> str:
        """A one-line note about the characters the last encode() dropped ('' if none)."""
        if not self.last_dropped:
            return ""
        n, shown = self.dropped_summary()
        return f"note: dropped {n} character{'s' if n != 1 else ''} not in the vocabulary: {shown}"

    def dropped_summary(self) -> tuple[int, str]:
        """(how many characters the last encode() dropped, the first ten distinct ones
        as "'a', 'b', ..."), for a note in any language."""
        unique = list(dict.fromkeys(self.last_dropped))  # first-seen order, no repeats
        shown = ", ".join(repr(c) for c in unique[:10]) + (", ..." if len(unique) > 10 else "")
        return len(self.last_dropped), shown

    def to_dict(self) -> dict:
        """A JSON-able description that from_dict turns back into the same tokenizer."""
        return {"type": "char", "special_tokens": list(SPECIAL_TOKENS),
                "chars": self.itos[len(SPECIAL_TOKENS):]}

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        """Rebuild a tokenizer from to_dict()'s output; a corrupt dict raises ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"tokenizer description must be a dict, got {type(d).__name__}")
        expected = {"type", "special_tokens", "chars"}
        if set(d) != expected:
            raise ValueError(f"tokenizer dict has keys {sorted(d)}, expected {sorted(expected)}")
        if d["type"] != "char":
            raise ValueError(f"tokenizer type {d['type']!r} is not 'char'")
        if list(d["special_tokens"]) != list(SPECIAL_TOKENS):
            # The model's embedding rows 0..2 were trained for these exact markers.
            raise ValueError(f"tokenizer special_tokens {d['special_tokens']!r} differ from "
                             f"this version's {list(SPECIAL_TOKENS)!r}")
        if not isinstance(d["chars"], list):
            raise ValueError(f"tokenizer 'chars' must be a list, got {type(d['chars']).__name__}")
        return cls(d["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def _check_chars(chars: list) -> None:
    """Each entry must be a single character, with no repeats (else ids would clash)."""
    for i, ch in enumerate(chars):
        if not isinstance(ch, str) or len(ch) != 1:
            raise ValueError(f"vocabulary entry {i} is {ch!r}: every entry must be exactly "
                             f"one character")
    if len(set(chars)) != len(chars):
        seen, dupes = set(), []
        for ch in chars:
            if ch in seen:
                dupes.append(ch)
            seen.add(ch)
        raise ValueError(f"vocabulary has repeated characters: {dupes[:10]!r}")
