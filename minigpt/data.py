"""The dialogue corpus: chatterbot-corpus YAML -> conversations -> token batches.

The chatterbot-corpus package ships small YAML files per language and topic, e.g.

    conversations:
    - - What is AI?                 # a conversation: a list of turns,
      - Artificial Intelligence is  # user first, then bot, alternating
        the branch of engineering...

Pipeline (the order of the functions below):

    load_conversations()   -> [["What is AI?", "Artificial ..."], ...]
    split_conversations()  -> train conversations, val conversations (never trained on)
    format_conversation()  -> "<|user|>What is AI?<|end|><|bot|>Artificial ...<|end|>"
    CharDataset            -> one int64 array per split; get_batch() cuts (B, T) windows
    build_dataset(cfg)     -> a training run's CharDataset, from its TrainConfig
"""
from __future__ import annotations

import functools
import importlib.resources

import numpy as np
import yaml

from minigpt.config import TrainConfig
from minigpt.language import tr
from minigpt.tokenizer import BOT, END, SPECIAL_TOKENS, USER, CharTokenizer

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # never yaml.Loader: no objects

CORPUS_PACKAGE = "chatterbot_corpus"
SPLITS = ("train", "val")


def available_languages() -> list[str]:
    """Languages the installed chatterbot-corpus has a folder for, sorted."""
    root = importlib.resources.files(CORPUS_PACKAGE) / "data"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def load_conversations(languages=("english", "chinese"), *, dedupe: bool = True) -> list[list[str]]:
    """Read every .yml file of each language: a list of conversations (lists of str turns).

    Cleaning, driven by what the real files contain:
      - entries of `conversations:` that are not lists are skipped (english/trivia.yml
        has one stray string);
      - turns are stripped of surrounding whitespace (inner newlines are kept: some
        bot answers are code blocks);
      - a conversation is cut at its first turn that is not a non-empty string, so the
        user/bot alternation of the remaining turns stays correct;
      - conversations with fewer than 2 turns are skipped (no bot reply to learn);
      - with dedupe=True, repeated identical conversations are kept once (the
        English tech_support and coding files repeat many). Without this the same
        dialogue could land in both train and val.
    Files are read in sorted order, so the result is deterministic.
    """
    if isinstance(languages, str):
        languages = (languages,)
    known = available_languages()
    conversations, seen = [], set()
    for language in languages:
        if language not in known:
            raise ValueError(f"chatterbot-corpus has no language {language!r}; "
                             f"available: {', '.join(known)}")
        folder = importlib.resources.files(CORPUS_PACKAGE) / "data" / language
        for file in sorted(folder.iterdir(), key=lambda p: p.name):
            if not file.name.endswith((".yml", ".yaml")):
                continue
            for turns in _conversations_in_file(file):
                key = tuple(turns)
                if dedupe and key in seen:
                    continue
                seen.add(key)
                conversations.append(turns)
    return conversations


def _conversations_in_file(file) -> list[list[str]]:
    """The cleaned conversations of one YAML file (see load_conversations)."""
    # the C-accelerated safe loader when PyYAML was built with libyaml (same result)
    doc = yaml.load(file.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    entries = doc.get("conversations") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return []
    cleaned = []
    for entry in entries:
        if not isinstance(entry, list):
            continue
        turns = []
        for turn in entry:
            if not isinstance(turn, str) or not turn.strip():
                break
            turns.append(turn.strip())
        if len(turns) >= 2:
            cleaned.append(turns)
    return cleaned


def format_conversation(turns: list[str]) -> str:
    """Turns -> one training string; user and bot alternate, user first:

        <|user|>turn 0<|end|><|bot|>turn 1<|end|><|user|>turn 2<|end|>...

    The end marker after every turn is what teaches the model where a reply stops.
    A turn that itself contains a marker string is refused: it would be read back
    as a real marker and scramble the roles.
    """
    parts = []
    for i, text in enumerate(turns):
        for marker in SPECIAL_TOKENS:
            if marker in text:
                raise ValueError(f"turn {i} contains the marker {marker!r}: {text[:60]!r}")
        role = USER if i % 2 == 0 else BOT
        parts.append(role + text + END)
    return "".join(parts)


def split_conversations(conversations: list, val_fraction: float = 0.1,
                        seed: int = 1337) -> tuple[list, list]:
    """Split BY CONVERSATION into (train, val): no validation dialogue is trained on.

    A seeded shuffle picks round(val_fraction * n) conversations for val (at least 1,
    and at least 1 is left for train). Both lists keep the corpus order. The same
    conversations and seed always give the same split.
    """
    n = len(conversations)
    if n < 2:
        raise ValueError(f"need at least 2 conversations to split, got {n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = min(max(1, round(val_fraction * n)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    is_val = np.zeros(n, dtype=bool)
    is_val[order[:n_val]] = True
    train = [c for c, v in zip(conversations, is_val) if not v]
    val = [c for c, v in zip(conversations, is_val) if v]
    return train, val


class CharDataset:
    """Token streams for the train and val splits, and random (B, T) batches from them.

    Each split is its formatted conversations concatenated and encoded into one int64
    array; a batch is B windows of T+1 consecutive tokens at random offsets. Windows
    may cross from one conversation into the next; the markers show the boundary.
    """

    def __init__(self, train_conversations: list, val_conversations: list,
                 tokenizer: CharTokenizer | None = None):
        """tokenizer: None builds one from BOTH splits (so every val character has an
        id; knowing a character exists is not training on the dialogue). Pass the
        checkpoint's tokenizer when resuming; a character it lacks is then an error.
        """
        if not train_conversations or not val_conversations:
            raise ValueError("both splits need at least one conversation")
        self.conversations = {"train": train_conversations, "val": val_conversations}
        texts = {s: [format_conversation(c) for c in convs]
                 for s, convs in self.conversations.items()}
        if tokenizer is None:
            tokenizer = CharTokenizer.from_texts(["".join(t) for t in texts.values()])
        self.tokenizer = tokenizer
        self.tokens, self.conversation_starts, self.conversation_lengths = {}, {}, {}
        for split, split_texts in texts.items():
            pieces = [tokenizer.encode(t, unknown="error") for t in split_texts]
            lengths = np.array([len(piece) for piece in pieces])
            self.tokens[split] = np.concatenate(pieces)                     # one stream
            self.conversation_starts[split] = np.cumsum(lengths) - lengths  # where each begins
            self.conversation_lengths[split] = lengths                      # in tokens
        # Characters of dialogue text, markers not counted.
        self.n_chars = sum(len(turn) for convs in self.conversations.values()
                           for c in convs for turn in c)

    @classmethod
    def from_conversations(cls, conversations: list, *, val_fraction: float = 0.1,
                           seed: int = 1337, tokenizer: CharTokenizer | None = None):
        """Split (see split_conversations) and encode in one call."""
        train, val = split_conversations(conversations, val_fraction, seed)
        return cls(train, val, tokenizer)

    def get_batch(self, split: str, batch_size: int, block_size: int,
                  rng: np.random.Generator, conversation_start_fraction: float = 0.0,
                  ) -> tuple[np.ndarray, np.ndarray]:
        """B random windows from `split`: x (B, T) inputs, y (B, T) targets, int64.

        y is x shifted left by one token: y[b, t] = x[b, t+1] is what the model must
        predict after reading x[b, :t+1]. rng is the caller's, so the caller decides
        what is reproducible.

        conversation_start_fraction: the share of rows (each drawn with this
        probability) that begin where a conversation begins, instead of at a random
        offset. A chat always starts at position 0 with <|user|>; a window at a random
        offset starts there only about once in 80 (the average conversation length),
        so without help the model rarely practises the opening it will be asked.
        Such a row is packed (packed_row): a conversation drawn at random, then more
        drawn at random after it until the row is full. Taking the stream's next
        conversations instead would show the model the same 64 tokens after each
        opening every time it is drawn, and it learns those by heart: measured, packing
        gave lower loss and more greetings (README, "Train and chat").
        0.0 (the default) draws exactly the windows it always did.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a np.random.Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"batch_size and block_size must be >= 1, got {batch_size}, "
                             f"{block_size}")
        data = self.tokens[split]
        if len(data) < block_size + 1:
            # A window needs T inputs plus one more token for the last target.
            raise ValueError(f"block_size {block_size} is too long for the {split!r} split: "
                             f"a window needs block_size + 1 = {block_size + 1} tokens and the "
                             f"split has {len(data)}; use a smaller block_size or more data")
        if not 0.0 <= conversation_start_fraction <= 1.0:
            raise ValueError(f"conversation_start_fraction must be in [0, 1], got "
                             f"{conversation_start_fraction!r}")
        starts = rng.integers(0, len(data) - block_size, size=batch_size)   # (B,)
        offsets = starts[:, None] + np.arange(block_size)[None, :]           # (B, T)
        x = data[offsets]        # (B, T)
        y = data[offsets + 1]    # (B, T): the next token at every position
        if conversation_start_fraction > 0.0:
            packed = rng.random(batch_size) < conversation_start_fraction    # (B,) bool
            for b in np.flatnonzero(packed):
                row = self.packed_row(split, block_size + 1, rng)            # (T + 1,)
                x[b], y[b] = row[:-1], row[1:]
        return x, y

    def packed_row(self, split: str, length: int, rng: np.random.Generator) -> np.ndarray:
        """`length` tokens of whole conversations of `split`, each drawn at random (with
        replacement) and laid end to end, the last one cut where the row ends."""
        data = self.tokens[split]
        begins, lengths = self.conversation_starts[split], self.conversation_lengths[split]
        pieces, n = [], 0
        while n < length:
            i = rng.integers(len(begins))
            pieces.append(data[begins[i]:begins[i] + lengths[i]])
            n += lengths[i]
        return np.concatenate(pieces)[:length]

    def describe(self) -> str:
        """A short printable summary: corpus size, vocabulary, split sizes."""
        n_conv = {s: len(c) for s, c in self.conversations.items()}
        n_tok = {s: len(t) for s, t in self.tokens.items()}
        v = self.tokenizer.vocab_size
        return tr(f"corpus: {n_conv['train'] + n_conv['val']:,} conversations, "
                  f"{self.n_chars:,} characters\n"
                  f"vocab:  {v:,} tokens ({v - len(SPECIAL_TOKENS):,} characters + "
                  f"{len(SPECIAL_TOKENS)} markers)\n"
                  f"train:  {n_conv['train']:,} conversations, {n_tok['train']:,} tokens\n"
                  f"val:    {n_conv['val']:,} conversations, {n_tok['val']:,} tokens",
                  f"语料库：{n_conv['train'] + n_conv['val']:,} 段对话，{self.n_chars:,} 个字符\n"
                  f"词表：  {v:,} 个词元（{v - len(SPECIAL_TOKENS):,} 个字符 + "
                  f"{len(SPECIAL_TOKENS)} 个标记）\n"
                  f"训练集：{n_conv['train']:,} 段对话，{n_tok['train']:,} 个词元\n"
                  f"验证集：{n_conv['val']:,} 段对话，{n_tok['val']:,} 个词元")


@functools.lru_cache(maxsize=4)
def _conversations(languages: tuple) -> list:
    """The corpus, parsed once per process (YAML parsing takes about a second)."""
    return load_conversations(languages)


def build_dataset(cfg: TrainConfig, tokenizer=None) -> CharDataset:
    """The corpus split by conversation, the TRAINING conversations in a seeded random order.

    The corpus lists its conversations file by file (all of English greetings, ...,
    then all of Chinese), so in corpus order a conversation is almost always preceded
    by one on the same topic in the same language. In a chat the earlier turns can be
    anything, so we shuffle: the model learns to answer the newest user line whatever
    came before it. The validation conversations keep their order (their loss does
    not depend on it), and the split itself is data.split_conversations'.
    """
    train, val = split_conversations(_conversations(cfg.language_list()), cfg.val_fraction)
    order = np.random.default_rng([cfg.seed, 2]).permutation(len(train))
    return CharDataset([train[i] for i in order], val, tokenizer)
