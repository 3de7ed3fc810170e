"""The command line and the chat loop, as a user meets them: a tiny model trained by
the CLI, then chat / sample / eval through subprocesses, and the REPL's rules
(one reply line per input line, empty lines skipped, EOF exits 0, Ctrl-C during a
reply returns to the prompt, notes for dropped or cropped input)."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from minigpt.chat import Chatbot, generate_response, run_chat
from minigpt.run_state import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, stdin="", cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "minigpt", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny"
    r = cli("train", "--preset", "tiny", "--out-dir", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return out, r


@pytest.fixture(scope="module")
def bot(run_dir):
    return Chatbot.load(str(run_dir[0]), max_new_tokens=12)


# ----------------------------------------------------------------------------- train CLI
def test_train_prints_sizes_losses_and_word_validity(run_dir):
    out, r = run_dir
    for expected in ("corpus:", "vocab:", "train:", "val:", "val loss", "word validity"):
        assert expected in r.stdout
    assert (out / "ckpt.npz").exists() and (out / "loss.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--max-iter", "5"], "--max-iter 5 (did you mean --max-iters?)"),
    (["--max-iters", "abc"], "argument --max-iters: expected an integer, got 'abc'"),
    (["--dropout", "lots"], "argument --dropout: expected a number"),
    (["--bias", "maybe"], "argument --bias: expected true or false"),
    (["--preset", "huge"], "argument --preset: invalid choice"),
])
def test_train_rejects_unknown_and_mistyped_options_by_name(args, message, tmp_path):
    r = cli("train", "--out-dir", str(tmp_path), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_train_rejects_bad_values_without_a_traceback(tmp_path):
    r = cli("train", "--preset", "tiny", "--out-dir", str(tmp_path), "--n-layer", "0")
    assert r.returncode == 1
    assert "n_layer" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- chat CLI
def test_piped_chat_answers_each_line_with_one_line(run_dir):
    out, _ = run_dir
    r = cli("chat", "--checkpoint", str(out), "--max-new-tokens", "30",
            stdin="Hello\n\nHow are you?\n你好\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 3             # the empty line is skipped
    assert "Traceback" not in r.stderr


def test_chat_exits_0_on_immediate_eof(run_dir):
    r = cli("chat", "--checkpoint", str(run_dir[0]), stdin="")
    assert r.returncode == 0 and r.stdout == ""


def test_missing_checkpoint_names_the_command_that_trains_one(tmp_path):
    r = cli("chat", "--checkpoint", str(tmp_path / "nothing"), stdin="Hello\n")
    assert r.returncode == 1
    assert "not found" in r.stderr and "make train" in r.stderr
    assert "python -m minigpt train" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, word", [
    (["--temperature", "0"], "temperature"),
    (["--temperature", "-1"], "temperature"),
    (["--top-k", "0"], "top_k"),
    (["--top-p", "1.5"], "top_p"),
    (["--top-p", "0"], "top_p"),
    (["--max-new-tokens", "0"], "max_new_tokens"),
    (["--slide", "0"], "slide"),
    (["--slide", "100000"], "slide"),          # more than block_size
])
def test_bad_decoding_settings_are_refused(run_dir, args, word):
    r = cli("chat", "--checkpoint", str(run_dir[0]), *args, stdin="Hello\n")
    assert r.returncode == 1
    assert word in r.stderr and "Traceback" not in r.stderr


def test_greedy_flag_allows_temperature_zero(run_dir):
    r = cli("chat", "--checkpoint", str(run_dir[0]), "--greedy", "--temperature", "0",
            "--max-new-tokens", "5", stdin="Hi\n")
    assert r.returncode == 0 and r.stdout.count("\n") == 1


def test_unknown_characters_are_dropped_with_a_note(run_dir):
    r = cli("chat", "--checkpoint", str(run_dir[0]), "--max-new-tokens", "5",
            stdin="Hello \U0001F600\n")
    assert r.returncode == 0
    assert "dropped 1 character" in r.stderr and r.stdout.count("\n") == 1


def test_sample_and_eval_commands(run_dir):
    out, _ = run_dir
    r = cli("sample", "--checkpoint", str(out), "--max-new-tokens", "20", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<|user|>")
    again = cli("sample", "--checkpoint", str(out), "--max-new-tokens", "20", "--seed", "1")
    assert again.stdout == r.stdout                       # seeded: reproducible
    r = cli("eval", "--checkpoint", str(out), "--replies", "3", "--show", "1")
    assert r.returncode == 0, r.stderr
    assert "val loss" in r.stdout and "word validity" in r.stdout
    assert "whole validation stream" in r.stdout


def test_sample_refuses_a_bad_slide_before_printing_anything(run_dir):
    r = cli("sample", "--checkpoint", str(run_dir[0]), "--slide", "0")
    assert r.returncode == 1 and r.stdout == ""
    assert "slide" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- the REPL
def test_run_chat_rules_in_process(bot):
    stdin = io.StringIO("Hello\n\n   \nHow are you?\n")
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_chat(bot, stdin, stdout, stderr, interactive=False) == 0
    assert stdout.getvalue().count("\n") == 2


class InterruptingBot:
    """Raises Ctrl-C in the middle of its first reply, then behaves."""
    notes = []

    def __init__(self):
        self.calls = 0

    def stream_reply(self, text):
        self.calls += 1
        first = self.calls == 1

        def pieces():
            yield "par"
            if first:
                raise KeyboardInterrupt
            yield "tial"
        return pieces()


def test_ctrl_c_during_a_reply_returns_to_the_prompt():
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_chat(InterruptingBot(), io.StringIO("one\ntwo\n"), stdout, stderr,
                      interactive=False)
    assert status == 0
    assert stdout.getvalue() == "par\npartial\n"
    assert "interrupted" in stderr.getvalue()


def test_conversation_is_kept_and_cropped_to_the_block(bot):
    bot = Chatbot(bot.model, bot.tokenizer, max_new_tokens=3)   # 8 + 3 + 1 <= block 16
    block = bot.model.config.block_size
    reply = bot.reply("Hello")
    first = bot.history.copy()
    assert bot.tokenizer.decode(first) == f"<|user|>Hello<|end|><|bot|>{reply}<|end|>"
    for _ in range(3):
        bot.reply("How are you?")
    assert len(bot.history) == block                      # cropped from the left
    bot.reset()
    assert len(bot.history) == 0


def test_an_interrupted_reply_leaves_the_conversation_as_it_was(bot):
    bot.reset()
    bot.reply("Hello")
    before = bot.history.copy()
    pieces = bot.stream_reply("How are you?")
    next(pieces)
    pieces.close()                                        # what Ctrl-C does
    np.testing.assert_array_equal(bot.history, before)


def test_overlong_line_is_cropped_with_a_note(bot):
    bot.reset()
    block = bot.model.config.block_size
    ids = bot.prompt("x" * (3 * block))
    assert len(ids) == block
    assert any("longer than the model's context" in n for n in bot.notes)
    assert ids[-1] == bot.tokenizer.bot_id and ids[-2] == bot.tokenizer.end_id


def test_typed_markers_are_text_not_markers(bot):
    bot.reset()
    ids = bot.prompt("<|end|>")
    assert (ids == bot.tokenizer.end_id).sum() == 1       # only the real end of the turn


def test_generate_response_loads_lazily_and_forgets(run_dir):
    path = str(run_dir[0])
    a = generate_response("Hello", checkpoint=path)
    b = generate_response("Hello", checkpoint=path)
    assert isinstance(a, str) and a == b                  # greedy, no memory between calls
    import minigpt
    assert minigpt.generate_response("Hello", checkpoint=path) == a


def test_chatbot_refuses_bad_settings(run_dir):
    model, tok, _ = load_model(str(run_dir[0]))
    with pytest.raises(ValueError, match="temperature"):
        Chatbot(model, tok, greedy=False, temperature=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        Chatbot(model, tok, max_new_tokens=0)
    with pytest.raises(ValueError, match="slide"):
        Chatbot(model, tok, slide=model.config.block_size + 1)


class RecordingBot:
    """Replies "ok" and remembers which lines reached the model."""
    notes = []

    def __init__(self):
        self.lines, self.resets = [], 0

    def stream_reply(self, text):
        self.lines.append(text)
        return iter(["ok"])

    def reset(self):
        self.resets += 1


def test_interactive_chat_understands_help_and_its_commands(monkeypatch):
    typed = iter(["/help", "/nope", "Hi", "/reset", "a/b", "/quit", "never read"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    bot, stdout = RecordingBot(), io.StringIO()
    assert run_chat(bot, io.StringIO(), stdout, io.StringIO(), interactive=True) == 0
    out = stdout.getvalue()
    assert "/help lists the commands" in out.splitlines()[0]           # the banner says so
    for command in ("/help", "/reset", "/quit"):
        assert f"  {command}" in out                                   # /help lists them all
    assert "unknown command /nope" in out
    assert bot.lines == ["Hi", "a/b"] and bot.resets == 1              # commands never reach it


def test_piped_chat_sends_every_line_to_the_model():
    bot, stdout = RecordingBot(), io.StringIO()
    assert run_chat(bot, io.StringIO("/help\nHi\n"), stdout, io.StringIO(),
                    interactive=False) == 0
    assert bot.lines == ["/help", "Hi"] and stdout.getvalue() == "ok\nok\n"


def test_chat_speaks_chinese_with_lang_zh_or_a_chinese_locale(monkeypatch, bot):
    from minigpt.chat import chat_language
    assert chat_language(environ={"LANG": "zh_CN.UTF-8"}) == "zh"
    assert chat_language(environ={"LANG": "zh_TW.UTF-8"}) == "zh"
    assert chat_language(environ={"LANG": "en_US.UTF-8"}) == "en"
    assert chat_language(environ={"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert chat_language("zh", environ={"LANG": "en_US.UTF-8"}) == "zh"
    # MINIGPT_LANG, minigpt's own setting, comes before the locale and after --lang
    assert chat_language(environ={"MINIGPT_LANG": "en", "LANG": "zh_CN.UTF-8"}) == "en"
    assert chat_language(environ={"MINIGPT_LANG": "zh_CN", "LANG": "en_US.UTF-8"}) == "zh"
    assert chat_language("en", environ={"MINIGPT_LANG": "zh"}) == "en"
    with pytest.raises(ValueError, match="--lang"):
        chat_language("fr")
    typed = iter(["/help", "/nope", "/reset", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    zh_bot, stdout = RecordingBot(), io.StringIO()
    zh_bot.lang = "zh"
    assert run_chat(zh_bot, io.StringIO(), stdout, io.StringIO(), interactive=True) == 0
    out = stdout.getvalue()
    assert out.startswith("minigpt 对话") and "命令：" in out and "没有 /nope 这个命令" in out
    assert "（已忘掉前面的对话）" in out and zh_bot.lines == []
    # the notes about a line, too
    chinese = Chatbot(bot.model, bot.tokenizer, max_new_tokens=2, lang="zh")
    chinese.prompt("\U0001F600" + "a" * 40)
    assert chinese.notes[0].startswith("提示：词表里没有的 1 个字符被略去了")
    assert chinese.notes[1].startswith("提示：这一行比模型的上下文长")
