"""Training: the loss falls, runs are reproducible bit for bit, N + N steps resumed
equal 2N straight, NaN stops without touching the last good checkpoint, Ctrl-C
saves, and the word-validity measure counts what it claims to count."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigpt.data_parallel
from minigpt.checkpoint import CheckpointError, CheckpointNotFoundError, load_checkpoint, \
    save_checkpoint
from minigpt.config import GPTConfig, TrainConfig
from minigpt.evaluate import corpus_words, greedy_replies, stream_loss, stream_windows, \
    word_validity, words
from minigpt.generate import generate
from minigpt.model import GPT
from minigpt.tokenizer import CharTokenizer
from minigpt.presets import PRESETS, split_overrides
from minigpt.run_state import load_model, load_state
from minigpt.train import TrainingDiverged, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = dict(progress=False, out=open(os.devnull, "w"))


def tiny(tmp_path, name, **kw):
    return train("tiny", out_dir=str(tmp_path / name), **QUIET, **kw)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One complete tiny run, shared by the tests that only read its results."""
    out = tmp_path_factory.mktemp("tiny")
    return train("tiny", out_dir=str(out), **QUIET), out


# ----------------------------------------------------------------------------- config
def test_presets_are_valid_configs():
    for preset in PRESETS.values():
        GPTConfig(vocab_size=100, **preset.model)
        assert isinstance(preset.train, TrainConfig)


@pytest.mark.parametrize("field, value", [
    ("max_iters", 0), ("max_iters", 2.5), ("batch_size", True), ("lr", -1.0),
    ("lr", float("nan")), ("beta2", 1.0), ("val_fraction", 0.0), ("languages", ""),
    ("conversation_start_fraction", 1.5), ("conversation_start_fraction", True),
    ("label_smoothing", 1.0), ("label_smoothing", -0.1), ("label_smoothing", True),
    ("warmup_iters", 10**6),
])
def test_bad_train_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_min_lr_above_lr_is_refused():
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)


def test_overrides_are_split_by_owner_and_unknown_names_refused():
    model, trn = split_overrides({"n_layer": 2, "max_iters": 5})
    assert model == {"n_layer": 2} and trn == {"max_iters": 5}
    with pytest.raises(ValueError, match="n_layers"):
        split_overrides({"n_layers": 2})
    with pytest.raises(ValueError, match="vocab_size"):
        split_overrides({"vocab_size": 2})
    with pytest.raises(ValueError, match="preset"):
        train("huge", **QUIET)


# ----------------------------------------------------------------------------- training
def test_loss_falls_and_outputs_are_written(tiny_run):
    result, out = tiny_run
    assert result.status == "done" and result.iters == PRESETS["tiny"].train.max_iters
    evals = result.history["evals"]
    assert evals[0]["iter"] == 0 and evals[-1]["iter"] == result.iters
    assert evals[0]["val"] > np.log(1000)            # starts near a uniform guess, ln V
    assert evals[-1]["train"] < evals[0]["train"] - 1.0
    assert evals[-1]["val"] < evals[0]["val"] - 1.0
    with open(out / "loss.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    model, tokenizer, meta = load_model(str(out))
    assert meta["iter"] == result.iters
    assert model.config.vocab_size == tokenizer.vocab_size


def test_the_loss_plot_leaves_pyplot_and_its_backend_alone(tmp_path, monkeypatch):
    """A notebook that calls train() must keep its inline plots: no backend switch,
    no figure left open in pyplot."""
    import matplotlib
    import matplotlib.pyplot as plt
    from minigpt.plots import save_loss_plot

    def refuse(*args, **kwargs):
        raise AssertionError("save_loss_plot switched matplotlib's backend")
    monkeypatch.setattr(matplotlib, "use", refuse)
    before = plt.get_fignums()
    history = {"loss": [3.0, 2.5, 2.0], "evals": [{"iter": 0, "train": 3.0, "val": 3.1}]}
    save_loss_plot(history, str(tmp_path / "loss.png"), "title")
    assert plt.get_fignums() == before
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_chinese_loss_plot_draws_its_labels_and_keeps_the_callers_fonts(tmp_path):
    """With MINIGPT_LANG=zh a training run's loss.png has Chinese labels; they must be
    drawn (not empty boxes) on a machine with no CJK font, in a fresh process that has
    never called use_cjk_font, and the caller's rcParams must be left as they were."""
    script = (
        "import warnings; warnings.simplefilter('error')\n"   # a missing glyph fails
        "import matplotlib; from matplotlib import rcParams\n"
        "from minigpt.plots import save_loss_plot\n"
        "before = list(rcParams['font.family'])\n"
        "history = {'loss': [3.0, 2.5], 'evals': [{'iter': 0, 'train': 3.0, 'val': 3.1}]}\n"
        f"save_loss_plot(history, {str(tmp_path / 'loss.png')!r}, '中文语料 · 你好')\n"
        "assert list(rcParams['font.family']) == before, rcParams['font.family']\n")
    env = dict(os.environ, MINIGPT_LANG="zh", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_batch_can_be_overfit():
    """The loop's pieces fit together: 100 steps on one batch drive its loss down."""
    from minigpt.optim import AdamW, clip_grad_norm
    cfg = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)
    model = GPT(cfg, seed=0)
    opt = AdamW(model.params, lr=1e-2, weight_decay=0.0)
    x = np.random.default_rng(0).integers(0, 20, (4, 8))
    y = np.roll(x, -1, axis=1)
    first = None
    for _ in range(100):
        _, loss = model.forward(x, y)
        first = first if first is not None else loss
        grads = model.backward()
        clip_grad_norm(grads, 1.0)
        opt.step(grads)
    assert first > 2.5 and loss < 0.1


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, tiny_run):
    result, out = tiny_run
    again = tiny(tmp_path, "again")
    assert again.history == result.history                       # bit for bit
    other = tiny(tmp_path, "other", seed=7)
    assert other.history["loss"] != result.history["loss"]


def test_resume_is_bit_exact(tmp_path):
    n = 13                                     # not a multiple of eval_interval (10)
    straight = tiny(tmp_path, "straight", max_iters=2 * n)
    paused = tiny(tmp_path, "split", max_iters=2 * n, stop_at=n)
    assert paused.status == "paused" and paused.iters == n
    resumed = train("tiny", out_dir=str(tmp_path / "split"), resume=True, **QUIET)
    assert resumed.iters == 2 * n
    assert resumed.history == straight.history
    a, _ = load_checkpoint(tmp_path / "straight" / "ckpt.npz")
    b, _ = load_checkpoint(tmp_path / "split" / "ckpt.npz")
    assert a.keys() == b.keys()
    for key in a:                              # params AND AdamW's m, v, step
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_at_an_eval_step_is_bit_exact(tmp_path):
    straight = tiny(tmp_path, "straight")
    tiny(tmp_path, "split", stop_at=10)        # 10 = eval_interval
    resumed = train("tiny", out_dir=str(tmp_path / "split"), resume=True, **QUIET)
    assert resumed.history == straight.history


def test_resume_refuses_a_new_shape_and_needs_a_checkpoint(tmp_path):
    tiny(tmp_path, "run", stop_at=3)
    with pytest.raises(ValueError, match="n_embd"):
        train("tiny", out_dir=str(tmp_path / "run"), resume=True, n_embd=32, **QUIET)
    with pytest.raises(CheckpointNotFoundError, match="without --resume"):
        train("tiny", out_dir=str(tmp_path / "none"), resume=True, **QUIET)


def test_tampered_training_state_is_refused(tmp_path):
    tiny(tmp_path, "run", stop_at=3)
    path = tmp_path / "run" / "ckpt.npz"
    arrays, meta = load_checkpoint(path)
    meta["iter"] = 2                           # disagrees with the optimizer and history
    save_checkpoint(path, arrays, meta)
    with pytest.raises(CheckpointError, match="iter|history"):
        load_state(str(path))
    meta["iter"] = 3
    meta["model_config"]["n_embd"] = 32        # params no longer fit the config
    save_checkpoint(path, arrays, meta)
    with pytest.raises(CheckpointError, match="shape"):
        load_model(str(path))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    tiny(tmp_path, "run", max_iters=40, stop_at=10)          # a good checkpoint at 10
    path = tmp_path / "run" / "ckpt.npz"
    good = path.read_bytes()
    real_forward = minigpt.data_parallel.DataParallel.forward    # one call per step
    calls = {"n": 0}

    def forward(self, idx, targets=None, **kw):
        logits, loss = real_forward(self, idx, targets, **kw)
        if kw.get("train"):
            calls["n"] += 1
            if calls["n"] == 15:                             # iteration 24 of the run
                loss = float("nan")
        return logits, loss

    monkeypatch.setattr(minigpt.data_parallel.DataParallel, "forward", forward)
    with pytest.raises(TrainingDiverged, match="iteration 24.*last good checkpoint"):
        train("tiny", out_dir=str(tmp_path / "run"), max_iters=40, resume=True, **QUIET)
    # an eval (and so a save) happened at 20, before the NaN: that file is the last
    # good one; nothing after the NaN was written
    _, meta = load_checkpoint(path)
    assert meta["iter"] == 20
    assert path.read_bytes() != good
    monkeypatch.undo()
    state = load_state(str(path))
    assert state[4] == 20


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "minigpt", "train", "--preset", "tiny", "--out-dir", str(out),
           "--max-iters", "100000", "--eval-interval", "100000", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for line in proc.stdout:                   # wait until the loop is running
        if line.startswith("iter     0"):
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted at iteration" in stdout and "--resume" in stdout
    model, opt_state = load_state(str(out / "ckpt.npz"))[0], load_state(str(out / "ckpt.npz"))
    assert opt_state[4] > 0                    # some steps were done and saved


# ----------------------------------------------------------------------------- evaluation
def test_words_and_word_validity():
    assert words("I'm fine, thanks! 你好 x2") == ["i'm", "fine", "thanks", "x"]
    known = corpus_words([["I am fine", "Good"], ["re"]])
    assert known == {"i", "am", "fine", "good", "re"}
    fraction, n, unknown = word_validity(["I am FINE", "instelay re"], known)
    assert (fraction, n) == (4 / 5, 5) and unknown == {"instelay": 1}
    fraction, n, _ = word_validity(["你好"], known)
    assert n == 0 and fraction != fraction    # nan: no English words to judge


def test_batched_greedy_replies_equal_one_at_a_time():
    tok = CharTokenizer.from_texts(["abc hello world"])
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2,
                          n_embd=8, dtype="float64"), seed=3)
    lines = ["abc", "hello", "cba", "world", "a"]          # two share a length
    batched = greedy_replies(model, tok, lines, max_new_tokens=12)
    for line, reply in zip(lines, batched):
        prompt = tok.encode(f"<|user|>{line}<|end|><|bot|>")
        ids = generate(model, prompt[None], 12, greedy=True, stop_token=tok.end_id)[0]
        ids = ids[len(prompt):]
        ids = ids[:np.argmax(ids == tok.end_id)] if (ids == tok.end_id).any() else ids
        assert reply == tok.decode(ids)


def test_word_validity_against_the_corpus_and_the_training_split(monkeypatch):
    """A word only the validation split has counts for the corpus, not for training."""
    import minigpt.evaluate as ev
    monkeypatch.setattr(ev, "greedy_replies", lambda model, tok, lines, n, with_finished:
                        (["zebra hello qux"] * len(lines), [True] * len(lines)))
    result = ev.evaluate_replies(None, None, [["hi", "hello world"]], [["zebra", "abc"]])
    assert result["replies"] == [("zebra", "zebra hello qux")]
    assert result["validity"] == 2 / 3 and result["validity_train"] == 1 / 3
    assert result["unknown"] == {"qux": 1} and result["n_finished"] == 1


# ----------------------------------------------------------------------------- the whole stream
@given(n=st.integers(1, 400), T=st.integers(1, 70))
def test_stream_windows_score_every_prediction_once_with_half_a_block_of_context(n, T):
    windows = stream_windows(n, T)
    width = min(T, n)
    scored = []
    for start, first in windows:
        assert 0 <= start and start + width <= n                # inside the stream
        scored += range(start + first, start + width)
        if start > 0:                                           # not the first window:
            assert first >= width - max(1, width // 2)          # >= half a block of context
    assert scored == list(range(n))                             # each once, in order


def test_stream_loss_is_the_mean_of_each_predictions_own_loss():
    """Against a brute force that scores each prediction alone, from its window."""
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8,
                       dtype="float64", pos_encoding="learned")
    model = GPT(config, seed=3)
    for p in model.params.values():
        p += 0.3 * np.random.default_rng(0).standard_normal(p.shape)
    tokens = np.random.default_rng(1).integers(0, 11, size=30)
    brute = []
    for start, first in stream_windows(len(tokens) - 1, 8):
        for t in range(first, 8):
            x = tokens[start:start + 8][None]
            logits, _ = model.forward(x)
            z = logits[0, t]
            brute.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[tokens[start + t + 1]])
    loss, n = stream_loss(model, tokens, batch_rows=2)
    assert n == 29 and len(brute) == 29
    np.testing.assert_allclose(loss, np.mean(brute), rtol=1e-12)
    short = tokens[:6]                                          # shorter than a block
    assert np.isclose(stream_loss(model, short)[0],
                      model.forward(short[None, :-1], short[None, 1:])[1], rtol=1e-12)
