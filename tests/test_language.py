"""minigpt.language: which edition a notebook is, and what tr() and the checkers say in it."""
import numpy as np
import pytest

from minigpt import language
from minigpt.gradcheck import check, check_close
from minigpt.language import notebook_language, tr


@pytest.mark.parametrize("folder,expected", [
    ("notebooks", "en"), ("notebooks/exercises", "en"), ("notebooks/zh", "zh"),
    ("notebooks/zh/exercises", "zh"), ("somewhere/else", "en"), ("zh/exercises", "zh"),
])
def test_the_edition_follows_the_notebook_folder(tmp_path, folder, expected):
    """In a notebook's kernel, by its folder; anywhere else (the CLI), English."""
    assert notebook_language(environ={}, cwd=tmp_path / folder, in_kernel=True) == expected
    assert notebook_language(environ={}, cwd=tmp_path / folder, in_kernel=False) == "en"


def test_the_environment_variable_overrides_the_folder(tmp_path):
    zh = tmp_path / "zh"
    assert notebook_language(environ={"MINIGPT_LANG": "en"}, cwd=zh, in_kernel=True) == "en"
    assert notebook_language(environ={"MINIGPT_LANG": "ZH "}, cwd=tmp_path) == "zh"
    assert notebook_language(environ={"MINIGPT_LANG": ""}, cwd=zh, in_kernel=True) == "zh"
    for locale_name, expected in [("zh_CN.UTF-8", "zh"), ("zh-Hans", "zh"), ("en_US", "en"),
                                  ("ZH_tw", "zh")]:
        assert notebook_language(environ={"MINIGPT_LANG": locale_name}) == expected


def test_an_unknown_language_is_named_and_english_is_spoken(monkeypatch):
    """A typo in MINIGPT_LANG must not stop a run at its first printed line."""
    with pytest.warns(UserWarning, match="MINIGPT_LANG must be one of en, zh .*got 'fr'"):
        assert notebook_language(environ={"MINIGPT_LANG": "fr"}) == "en"
    monkeypatch.setenv(language.ENV, "zh:CN")
    with pytest.warns(UserWarning, match="got 'zh:CN'"):
        assert tr("loss", "损失") == "loss"


def test_tr_picks_the_edition(monkeypatch):
    monkeypatch.setenv(language.ENV, "zh")
    assert tr("loss", "损失") == "损失"
    monkeypatch.setenv(language.ENV, "en")
    assert tr("loss", "损失") == "loss"


def square(x):
    return x ** 2, x


def square_backward(dout, x):
    return 2 * x * dout


def not_written(dout, x):
    raise NotImplementedError


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_checkers_speak_the_edition(monkeypatch, capsys, lang):
    monkeypatch.setenv(language.ENV, lang)
    x = np.random.default_rng(0).standard_normal(5)
    assert check("square", square, square_backward, {"x": x})
    assert not check("square", square, not_written, {"x": x})
    assert check_close("double", lambda v: 2 * v, lambda v: v + v, x)
    assert not check_close("double", lambda v: 2 * v, lambda v: 3 * v, x)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["PASS", "FAIL", "PASS", "FAIL"]
    chinese = [any("\u4e00" <= c <= "\u9fff" for c in line) for line in lines]
    assert chinese == [lang == "zh"] * 4, lines
    if lang == "zh":
        assert lines[1] == "FAIL square：还没有写（请替换掉 raise NotImplementedError 那一行）"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_what_training_prints_speaks_the_edition(monkeypatch, lang):
    """Notebook 6 trains in its first cell: the run's summary lines follow the edition."""
    from minigpt.data import CharDataset
    from minigpt.evaluate import describe_greetings, describe_validity
    monkeypatch.setenv(language.ENV, lang)
    data = CharDataset([["Hi", "Hello"], ["你好", "欢迎"]], [["Bye", "See you"]])
    validity = {"validity": 0.5, "validity_train": 0.25, "n_words": 4, "n_replies": 2,
                "n_finished": 1, "unknown": {}}
    lines = "\n".join([data.describe(), describe_validity(validity),
                       describe_greetings({"n": 1, "replies": [("Hi", "Hello", True)]})])
    words = ["corpus:", "word validity:", "greetings:"]
    chinese = ["语料库：", "单词有效率：", "问候语："]
    assert all(w in lines for w in (chinese if lang == "zh" else words)), lines
    assert not any(w in lines for w in (words if lang == "zh" else chinese)), lines
