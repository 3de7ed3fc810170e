"""CharTokenizer: round trips (Chinese and markers included), unknown characters,
and (de)serialisation that refuses corrupt descriptions."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigpt.tokenizer import BOT, END, SPECIAL_TOKENS, USER, CharTokenizer

TEXTS = ["Hello, world!\nHow are you?", "你好，最近如何?", "I'm fine. 谢谢"]


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_texts(TEXTS)


def test_vocab_is_specials_then_sorted_characters(tok):
    expected_chars = sorted(set("".join(TEXTS)))
    assert tok.itos[:3] == list(SPECIAL_TOKENS)
    assert tok.itos[3:] == expected_chars
    assert tok.vocab_size == 3 + len(expected_chars)


def test_vocab_does_not_depend_on_text_order():
    a = CharTokenizer.from_texts(TEXTS)
    b = CharTokenizer.from_texts(list(reversed(TEXTS)))
    assert a.itos == b.itos


def test_round_trip_with_chinese_and_markers(tok):
    text = f"{USER}你好{END}{BOT}Hello, world!{END}"
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert tok.decode(ids) == text
    assert tok.last_dropped == []


def test_each_marker_is_one_token(tok):
    ids = tok.encode(f"{USER}{BOT}{END}")
    assert ids.tolist() == [tok.user_id, tok.bot_id, tok.end_id]
    assert len({tok.user_id, tok.bot_id, tok.end_id}) == 3


def test_markers_in_texts_are_not_vocabulary_characters():
    t = CharTokenizer.from_texts([f"{USER}ab{END}"])
    assert t.itos[3:] == ["a", "b"]


def test_allow_special_false_encodes_markers_as_characters():
    t = CharTokenizer(sorted(set(END)))         # the characters < | e n d >
    ids = t.encode(END, allow_special=False)
    assert len(ids) == len(END)
    assert t.end_id not in ids.tolist()
    assert t.decode(ids) == END


@settings(deadline=None)
@given(st.lists(st.sampled_from(sorted(set("".join(TEXTS))) + list(SPECIAL_TOKENS)),
                max_size=40))
def test_round_trip_property(pieces):
    tok = CharTokenizer.from_texts(TEXTS)
    text = "".join(pieces)
    ids = tok.encode(text, unknown="error")
    assert tok.decode(ids) == text
    assert len(ids) == len(pieces)     # each piece, marker or character, is one id


def test_unknown_characters_dropped_and_reported(tok):
    ids = tok.encode("He😀llo 你é好😀")    # all but 😀 and é are in TEXTS
    assert tok.last_dropped == ["😀", "é", "😀"]
    assert tok.decode(ids) == "Hello 你好"
    note = tok.unknown_note()
    assert "\n" not in note and "3" in note and "'😀'" in note and "'é'" in note
    tok.encode("Hello")                    # the next call resets the report
    assert tok.last_dropped == [] and tok.unknown_note() == ""


def test_unknown_error_names_the_character(tok):
    with pytest.raises(ValueError, match="'é'"):
        tok.encode("Hé", unknown="error")
    with pytest.raises(ValueError, match="unknown"):
        tok.encode("hi", unknown="ignore")


def test_decode_rejects_out_of_range_ids(tok):
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, tok.vocab_size])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([-1])


def test_to_dict_from_dict_round_trip_through_json(tok):
    d = json.loads(json.dumps(tok.to_dict()))
    again = CharTokenizer.from_dict(d)
    assert again.itos == tok.itos
    text = f"{USER}你好 world{END}"
    assert np.array_equal(again.encode(text), tok.encode(text))


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: {**d, "chars": ["a", "a"]}, "repeated"),
    (lambda d: {**d, "chars": ["ab"]}, "one character"),
    (lambda d: {**d, "chars": [7]}, "one character"),
    (lambda d: {**d, "chars": "abc"}, "must be a list"),
    (lambda d: {**d, "special_tokens": ["<|a|>", "<|b|>", "<|c|>"]}, "special_tokens"),
    (lambda d: {**d, "type": "bpe"}, "type"),
    (lambda d: {k: v for k, v in d.items() if k != "chars"}, "keys"),
    (lambda d: {**d, "extra": 1}, "keys"),
    (lambda d: ["not", "a", "dict"], "dict"),
])
def test_from_dict_rejects_corrupt_descriptions(tok, corrupt, message):
    with pytest.raises(ValueError, match=message):
        CharTokenizer.from_dict(corrupt(tok.to_dict()))


def test_from_texts_refuses_a_bare_string():
    with pytest.raises(TypeError, match="list"):
        CharTokenizer.from_texts("hello")
