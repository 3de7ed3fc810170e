"""The dialogue corpus: loading the real chatterbot files, formatting, the split by
conversation, batches, and a training run's dataset (its training order shuffled)."""
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigpt.data import (CharDataset, build_dataset, format_conversation, load_conversations,
                          split_conversations)
from minigpt.presets import PRESETS
from minigpt.tokenizer import BOT, END, USER, CharTokenizer


@pytest.fixture(scope="module")
def english():
    return load_conversations(("english",))


@pytest.fixture(scope="module")
def chinese():
    return load_conversations(("chinese",))


@pytest.fixture(scope="module")
def dataset(english, chinese):
    return CharDataset.from_conversations(english + chinese, val_fraction=0.1, seed=0)


def has_cjk(text):
    return re.search(r"[\u4e00-\u9fff]", text) is not None


# ---- loading ---------------------------------------------------------------------------

def test_corpus_loads_english_and_chinese(english, chinese):
    for convs in (english, chinese):
        assert len(convs) > 100
        for turns in convs:
            assert len(turns) >= 2
            assert all(isinstance(t, str) and t and t == t.strip() for t in turns)
    assert sum(has_cjk(" ".join(c)) for c in chinese) > 0.9 * len(chinese)
    assert not any(has_cjk(" ".join(c)) for c in english)


def test_default_languages_are_english_then_chinese(english, chinese):
    assert load_conversations() == english + chinese


def test_dedupe_keeps_each_conversation_once(english):
    assert len({tuple(c) for c in english}) == len(english)
    with_repeats = load_conversations(("english",), dedupe=False)
    assert len(with_repeats) > len(english)
    assert {tuple(c) for c in with_repeats} == {tuple(c) for c in english}


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="klingon.*available"):
        load_conversations(("klingon",))


# ---- formatting --------------------------------------------------------------------------

def test_format_alternates_roles_and_ends_every_turn():
    turns = ["Hi", "你好!", "How are you?"]
    text = format_conversation(turns)
    assert text == f"{USER}Hi{END}{BOT}你好!{END}{USER}How are you?{END}"


def test_formatted_corpus_has_markers_in_order(english):
    for turns in english[:200]:
        text = format_conversation(turns)
        markers = re.findall(r"<\|(?:user|bot|end)\|>", text)
        roles = [USER if i % 2 == 0 else BOT for i in range(len(turns))]
        assert markers == [m for role in roles for m in (role, END)]
        # Stripping the markers gives back the turns themselves.
        assert re.split(r"<\|(?:user|bot|end)\|>", text)[1::2] == turns


def test_format_refuses_a_turn_containing_a_marker():
    with pytest.raises(ValueError, match="marker"):
        format_conversation(["hi", f"sneaky {END} turn"])


# ---- split -------------------------------------------------------------------------------

@settings(deadline=None)
@given(n=st.integers(2, 300), frac=st.floats(0.01, 0.99), seed=st.integers(0, 2**32 - 1))
def test_split_is_deterministic_disjoint_and_non_empty(n, frac, seed):
    convs = [[f"q{i}", f"a{i}"] for i in range(n)]
    train, val = split_conversations(convs, val_fraction=frac, seed=seed)
    assert (train, val) == split_conversations(convs, val_fraction=frac, seed=seed)
    assert train and val
    ids_train = {c[0] for c in train}
    ids_val = {c[0] for c in val}
    assert not ids_train & ids_val
    assert ids_train | ids_val == {c[0] for c in convs}
    assert len(val) == min(max(1, round(frac * n)), n - 1)


def test_split_depends_on_the_seed(english):
    _, val_a = split_conversations(english, seed=0)
    _, val_b = split_conversations(english, seed=1)
    assert val_a != val_b


def test_real_split_never_trains_on_a_validation_dialogue(dataset):
    train = {tuple(c) for c in dataset.conversations["train"]}
    val = {tuple(c) for c in dataset.conversations["val"]}
    assert train and val and not train & val


@pytest.mark.parametrize("n, frac", [(1, 0.1), (10, 0.0), (10, 1.0)])
def test_split_rejects_impossible_requests(n, frac):
    with pytest.raises(ValueError):
        split_conversations([["q", "a"]] * n, val_fraction=frac)


# ---- dataset and batches ---------------------------------------------------------------

def test_token_streams_decode_to_the_formatted_splits(dataset):
    for split in ("train", "val"):
        tokens = dataset.tokens[split]
        assert tokens.dtype == np.int64
        expected = "".join(format_conversation(c) for c in dataset.conversations[split])
        assert dataset.tokenizer.decode(tokens) == expected


@settings(deadline=None)
@given(split=st.sampled_from(["train", "val"]), B=st.integers(1, 8), T=st.integers(1, 64),
       seed=st.integers(0, 2**32 - 1))
def test_get_batch_shapes_shift_and_reproducibility(dataset, split, B, T, seed):
    x, y = dataset.get_batch(split, B, T, np.random.default_rng(seed))
    assert x.shape == y.shape == (B, T)
    assert x.dtype == y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])   # y is x shifted by one
    x2, y2 = dataset.get_batch(split, B, T, np.random.default_rng(seed))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # Every row is a real window of the split's token stream.
    data = dataset.tokens[split]
    for row_x, row_y in zip(x, y):
        start = _find(data, np.concatenate([row_x, row_y[-1:]]))
        assert start is not None


def _find(data, window):
    """Index where `window` occurs in `data` (None if nowhere)."""
    n = len(window)
    hits = np.flatnonzero(data[: len(data) - n + 1] == window[0])
    for i in hits:
        if np.array_equal(data[i:i + n], window):
            return i
    return None


def test_get_batch_covers_the_last_window():
    # Tiny split: exactly block_size + 1 tokens allows one window; every draw must be it.
    tok = CharTokenizer.from_texts(["ab"])
    ds = CharDataset([["a", "b"]], [["b", "a"]], tok)
    T = len(ds.tokens["val"]) - 1
    x, y = ds.get_batch("val", 5, T, np.random.default_rng(0))
    assert (x == ds.tokens["val"][:-1]).all() and (y == ds.tokens["val"][1:]).all()


def test_conversation_starts_are_where_each_conversation_begins(dataset):
    for split, convs in dataset.conversations.items():
        data, starts = dataset.tokens[split], dataset.conversation_starts[split]
        assert len(starts) == len(convs) and starts[0] == 0
        ends = np.append(starts[1:], len(data))
        for i in (0, 1, len(convs) // 2, len(convs) - 1):
            piece = dataset.tokenizer.decode(data[starts[i]:ends[i]])
            assert piece == format_conversation(convs[i])


def test_rows_at_conversation_starts_are_packed_conversations_in_the_share_asked(dataset):
    user = dataset.tokenizer.stoi[USER]
    data = dataset.tokens["train"]
    begins, lengths = dataset.conversation_starts["train"], dataset.conversation_lengths["train"]
    whole = {tuple(data[b:b + n]) for b, n in zip(begins, lengths)}
    x, y = dataset.get_batch("train", 12, 200, np.random.default_rng(0), 1.0)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    openings = {tuple(data[b:b + n]) for b in begins for n in range(1, 201)}

    def parses(row):
        """Whether row is whole conversations, then the opening of one (or nothing)."""
        if not len(row) or tuple(row) in openings:
            return True
        return any(tuple(row[:n]) in whole and parses(row[n:])
                   for n in set(lengths.tolist()) if n <= len(row))

    for row in np.concatenate([x, y[:, -1:]], axis=1):
        assert row[0] == user and parses(row)
    # the same generator, the same rows; and not the stream's own order, which would
    # put the same conversation after each opening every time
    x2, _ = dataset.get_batch("train", 12, 200, np.random.default_rng(0), 1.0)
    np.testing.assert_array_equal(x, x2)
    assert not all(_find(data, row) is not None for row in x)
    shares = {}
    for fraction in (0.0, 0.5):
        x, _ = dataset.get_batch("train", 4000, 16, np.random.default_rng(1), fraction)
        shares[fraction] = np.mean(x[:, 0] == user)
    # A random offset lands on a <|user|> marker (any turn) a few times in a hundred.
    assert shares[0.0] < 0.1 and 0.45 < shares[0.5] < 0.6, shares
    with pytest.raises(ValueError, match="conversation_start_fraction"):
        dataset.get_batch("train", 2, 8, np.random.default_rng(0), 1.5)


def test_a_packed_row_fills_even_from_a_split_shorter_than_the_row():
    tok = CharTokenizer.from_texts(["ab"])
    ds = CharDataset([["a", "b"]], [["b", "a"]], tok)
    one = ds.tokens["train"]                              # the only conversation
    row = ds.packed_row("train", 3 * len(one) + 2, np.random.default_rng(0))
    np.testing.assert_array_equal(row, np.concatenate([one] * 4)[:3 * len(one) + 2])


def test_block_size_longer_than_the_split_is_a_clear_error(dataset):
    n = len(dataset.tokens["val"])
    with pytest.raises(ValueError, match=f"block_size {n}.*'val'.*{n}"):
        dataset.get_batch("val", 2, n, np.random.default_rng(0))


def test_get_batch_wants_a_generator_and_a_known_split(dataset):
    with pytest.raises(TypeError, match="Generator"):
        dataset.get_batch("train", 2, 8, 0)
    with pytest.raises(ValueError, match="split"):
        dataset.get_batch("test", 2, 8, np.random.default_rng(0))


def test_given_tokenizer_is_used_and_must_cover_the_text():
    tok = CharTokenizer.from_texts(["hi there"])
    ds = CharDataset([["hi", "there"]], [["the", "hi"]], tok)
    assert ds.tokenizer is tok
    with pytest.raises(ValueError, match="'x'"):
        CharDataset([["hi", "x"]], [["hi", "the"]], tok)


def test_describe_reports_sizes(dataset):
    text = dataset.describe()
    n_train = len(dataset.conversations["train"])
    n_val = len(dataset.conversations["val"])
    numbers = {int(s.replace(",", "")) for s in re.findall(r"\d[\d,]*", text)}
    assert {n_train + n_val, n_train, n_val, dataset.tokenizer.vocab_size,
            len(dataset.tokens["train"]), len(dataset.tokens["val"]),
            dataset.n_chars} <= numbers
    assert len(text.splitlines()) <= 6


def test_cleaning_of_odd_yaml_entries(tmp_path):
    from minigpt.data import _conversations_in_file
    file = tmp_path / "odd.yml"
    file.write_text(
        "categories: [odd]\n"
        "conversations:\n"
        "- a stray string, not a conversation\n"
        "- - '  Hi  '\n"
        "  - \"Hello\\n  there \"\n"
        "- - Question?\n"
        "  - Answer.\n"
        "  - 42\n"             # not a string: the dialogue is cut here
        "  - Never reached.\n"
        "- - Only a user turn\n"
        "- - Who?\n"
        "  - '   '\n",         # empty after stripping: nothing left to learn from
        encoding="utf-8")
    assert _conversations_in_file(file) == [["Hi", "Hello\n  there"], ["Question?", "Answer."]]


def test_dataset_shuffles_training_conversations_only():
    cfg = PRESETS["tiny"].train
    data = build_dataset(cfg)
    train_convs, val_convs = split_conversations(load_conversations(cfg.language_list()),
                                                 cfg.val_fraction)
    assert data.conversations["val"] == val_convs                 # untouched
    shuffled = data.conversations["train"]
    assert shuffled != train_convs                                # a new order ...
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, train_convs))  # ... same set
    assert build_dataset(cfg).conversations["train"] == shuffled  # the same every time
