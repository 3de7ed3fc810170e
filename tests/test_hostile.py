"""Careless and hostile input: every case gets one clear line, the exit status the
help promises, bounded time and memory, and loses nothing that was saved.

The checkpoints here are crafted by the tests themselves from one small saved run:
a meta entry that asks for 10**8 layers, a 10**9 block, nested JSON, a small file
declaring a huge deflated entry, and so on. Each is refused, by the library and by
every command that reads checkpoints (chat, sample, eval, train --resume). The
subprocess timeouts are hang guards, generous for a slow machine, not speed tests.
"""
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from minigpt.checkpoint import META_KEY, CheckpointError, _write_npz, load_checkpoint, \
    save_checkpoint
from minigpt.run_dir import LOCK_NAME, OutDirError, RunLock, RunLockedError, check_out_dir
from minigpt.run_state import load_model, load_state
from minigpt.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = dict(progress=False, out=open(os.devnull, "w"))
READERS = ("chat", "sample", "eval", "resume")


def cli(*args, stdin="", timeout=120):
    return subprocess.run([sys.executable, "-m", "minigpt", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def read_with(command, path, timeout=60):
    """Run a checkpoint-reading command on path (a run folder for resume)."""
    if command == "resume":
        return cli("train", "--preset", "tiny", "--resume", "--out-dir", str(path),
                   "--no-progress", timeout=timeout)
    target = ["--checkpoint", str(path)]
    if command == "eval":
        return cli("eval", *target, "--replies", "1", timeout=timeout)
    if command == "sample":
        return cli("sample", *target, "--max-new-tokens", "5", timeout=timeout)
    return cli("chat", *target, "--max-new-tokens", "5", stdin="Hi\n", timeout=timeout)


def assert_one_clear_line(r, status, *words):
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real training checkpoint (3 steps of the tiny preset): (arrays, meta)."""
    out = tmp_path_factory.mktemp("saved")
    train("tiny", out_dir=str(out), stop_at=3, **QUIET)
    return load_checkpoint(out / "ckpt.npz")


def craft(tmp_path, saved, change=None, arrays=None, name="bad"):
    """A run folder holding saved's checkpoint with meta changed by change(meta)."""
    base_arrays, meta = saved
    meta = json.loads(json.dumps(meta))
    if change:
        change(meta)
    folder = tmp_path / name
    save_checkpoint(folder / "ckpt.npz", arrays if arrays is not None else base_arrays, meta)
    return folder


def unchanged(folder):
    """A function that says whether the folder's files are as they are now."""
    before = {p: (folder / p).read_bytes() for p in os.listdir(folder)}
    return lambda: {p: (folder / p).read_bytes() for p in os.listdir(folder)} == before


# ----------------------------------------------------------------------------- output folder
@pytest.mark.parametrize("case", ["file", "ckpt_is_folder", "plot_is_folder", "under_a_file"])
def test_a_bad_out_dir_is_refused_before_the_first_step(tmp_path, case):
    (tmp_path / "a_file").write_text("keep me")
    out = {"file": tmp_path / "a_file", "under_a_file": tmp_path / "a_file" / "sub",
           "ckpt_is_folder": tmp_path / "run", "plot_is_folder": tmp_path / "run"}[case]
    if case == "ckpt_is_folder":
        (tmp_path / "run" / "ckpt.npz").mkdir(parents=True)
    if case == "plot_is_folder":
        (tmp_path / "run" / "loss.png").mkdir(parents=True)
    listing = sorted(str(p) for p in tmp_path.rglob("*"))
    t0 = time.monotonic()
    r = cli("train", "--preset", "tiny", "--out-dir", str(out), "--no-progress")
    assert_one_clear_line(r, 2, str(tmp_path))
    assert "iter" not in r.stdout                              # no step was run
    assert sorted(str(p) for p in tmp_path.rglob("*")) == listing   # nothing written
    assert (tmp_path / "a_file").read_text() == "keep me"
    assert time.monotonic() - t0 < 60                          # before the corpus, even


def test_an_unwritable_out_dir_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    if os.name == "posix" and os.geteuid() != 0:              # a real read-only folder
        out.chmod(0o500)
        try:
            with pytest.raises(OutDirError, match="not writable"):
                check_out_dir(out)
        finally:
            out.chmod(0o700)
    # as root (CI containers) permissions do not bind, so make the write itself fail
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutDirError, match=f"{out}.*not writable: Permission denied"):
        check_out_dir(out)
    with pytest.raises(OutDirError):
        train("tiny", out_dir=str(out), **QUIET)
    assert os.listdir(out) == []


# ----------------------------------------------------------------------------- one run per folder
def test_a_second_run_into_the_same_folder_is_refused_at_once(tmp_path, saved):
    folder = craft(tmp_path, saved, name="busy")
    same = unchanged(folder)
    with RunLock(folder):
        with pytest.raises(RunLockedError, match=f"process {os.getpid()}"):
            train("tiny", out_dir=str(folder), **QUIET)
        r = cli("train", "--preset", "tiny", "--out-dir", str(folder), "--no-progress")
        assert_one_clear_line(r, 1, str(folder), f"process {os.getpid()}")
        r = read_with("resume", folder)
        assert_one_clear_line(r, 1, "in use")
    assert not (folder / LOCK_NAME).exists()                    # released on exit
    assert same()                                               # nothing of it was touched


def test_a_killed_runs_lock_and_temp_files_are_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "elsewhere",
                                             "started": "yesterday"}))
    (out / ".ckpt.npz.abc123.tmp").write_bytes(b"half a checkpoint")
    (out / ".loss.png.xyz789.tmp.png").write_bytes(b"half a plot")
    (out / ".my-notes.tmp").write_text("the user's own")             # not ours: kept
    lines = []
    train("tiny", out_dir=str(out), stop_at=2, progress=False,
          out=type("W", (), {"write": lambda self, s: lines.append(s), "flush": lambda s: 0})())
    assert any("process 999999" in line and "taking it over" in line for line in lines)
    assert sorted(os.listdir(out)) == [".my-notes.tmp", "ckpt.npz", "loss.png"]  # no lock,
    # no temp file of ours


def test_sigterm_stops_a_run_like_ctrl_c_and_leaves_no_temp_files(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "minigpt", "train", "--preset", "tiny",
                             "--max-iters", "100000", "--eval-interval", "5", "--out-dir",
                             str(out), "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "ckpt.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.2)                              # until it has saved once
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "terminated" in stdout + stderr and "saved" in stdout
    assert sorted(os.listdir(out)) == ["ckpt.npz", "loss.png"]
    load_state(str(out / "ckpt.npz"))                # and it is a good checkpoint


def test_an_interrupted_plot_save_leaves_no_temp_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from minigpt.plots import save_loss_plot
    history = {"loss": [3.0, 2.5], "evals": [{"iter": 0, "train": 3.0, "val": 3.1}]}
    save_loss_plot(history, str(tmp_path / "loss.png"))
    before = (tmp_path / "loss.png").read_bytes()

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_loss_plot(history, str(tmp_path / "loss.png"))
    assert os.listdir(tmp_path) == ["loss.png"]
    assert (tmp_path / "loss.png").read_bytes() == before


# ----------------------------------------------------------------------------- hostile checkpoints
HOSTILE_META = {
    "a huge n_layer": (lambda m: m["model_config"].update(n_layer=10**8), "n_layer"),
    "a huge n_embd": (lambda m: m["model_config"].update(n_embd=2**40, n_head=1), "n_embd"),
    "a huge vocabulary": (lambda m: m["model_config"].update(vocab_size=10**12), "vocab"),
    "a huge sinusoidal block": (lambda m: m["model_config"].update(
        block_size=10**9, pos_encoding="sinusoidal"), "block_size"),
    "a huge eval_iters": (lambda m: m["train_config"].update(eval_iters=10**9), "eval_iters"),
    "a huge batch": (lambda m: m["train_config"].update(batch_size=10**9), "batch_size"),
    "a huge reply length": (lambda m: m["train_config"].update(eval_reply_tokens=10**9),
                            "eval_reply_tokens"),
    "a negative iter": (lambda m: m.update(iter=-5), "iter"),
    "no train_config": (lambda m: m.pop("train_config"), "train_config"),
    "no iter": (lambda m: m.pop("iter"), "iter"),
    "a string for an eval": (lambda m: m["history"]["evals"].append("x"), "evals"),
    "a wrong format": (lambda m: m.update(format="x" * 10**6), "format"),
}
# which commands must refuse each: chat and sample need only the model and tokenizer
TRAINING_ONLY = {"a huge eval_iters", "a huge batch", "a huge reply length", "a negative iter",
                 "no train_config", "no iter", "a string for an eval"}


@pytest.mark.parametrize("case", sorted(HOSTILE_META))
def test_a_hostile_meta_is_refused_quickly_by_the_library(tmp_path, saved, case):
    change, word = HOSTILE_META[case]
    folder = craft(tmp_path, saved, change)
    t0 = time.monotonic()
    with pytest.raises(CheckpointError, match=word):
        if case in TRAINING_ONLY:
            load_state(str(folder / "ckpt.npz"))
        else:
            load_model(str(folder))
    assert time.monotonic() - t0 < 10            # refused by arithmetic, not by trying


@pytest.mark.parametrize("case", ["a huge n_layer", "a huge sinusoidal block",
                                  "a huge eval_iters", "no train_config", "a negative iter"])
@pytest.mark.parametrize("command", READERS)
def test_a_hostile_meta_gets_one_line_from_every_reader(tmp_path, saved, case, command):
    change, word = HOSTILE_META[case]
    if case in TRAINING_ONLY and command in ("chat", "sample"):
        pytest.skip("chat and sample read no training state")   # (they work: see below)
    folder = craft(tmp_path, saved, change)
    same = unchanged(folder)
    r = read_with(command, folder)
    assert_one_clear_line(r, 1, word)
    assert same()                                 # the file is left as it was


def test_chat_works_on_a_checkpoint_without_training_state(tmp_path, saved):
    folder = craft(tmp_path, saved, lambda m: (m.pop("train_config"), m.pop("iter")))
    r = read_with("chat", folder)
    assert r.returncode == 0 and r.stdout.count("\n") == 1, r.stderr


def test_deeply_nested_json_is_refused(tmp_path, saved):
    arrays, meta = saved
    text = '{"deep": ' + "[" * 200_000 + "]" * 200_000 + "}"
    path = tmp_path / "nested" / "ckpt.npz"
    path.parent.mkdir()
    with open(path, "wb") as f:
        _write_npz(f, {**arrays, META_KEY: np.frombuffer(text.encode(), np.uint8)})
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(path)
    for command in READERS:
        assert_one_clear_line(read_with(command, path.parent), 1, "nested too deeply")


def write_zip(path, entries):
    """entries: name -> bytes or an iterator of byte chunks (streamed, deflated)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            with zf.open(name, "w", force_zip64=True) as f:
                for chunk in ([data] if isinstance(data, bytes) else data):
                    f.write(chunk)


def npy_bytes(arr):
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.skipif(os.name != "posix", reason="peak memory is read with resource, POSIX-only")
def test_a_small_file_declaring_a_huge_entry_is_refused_unread(tmp_path, saved):
    """A 256 MiB deflated entry in a file of a few hundred KB: refused from the zip
    directory, in a child process whose peak memory stays near its baseline."""
    arrays, meta = saved
    path = tmp_path / "bomb.npz"
    zeros = (b"\0" * 2**20 for _ in range(256))
    write_zip(path, {**{f"{k}.npy": npy_bytes(v) for k, v in arrays.items()},
                     META_KEY + ".npy": npy_bytes(np.frombuffer(json.dumps(meta).encode(),
                                                                np.uint8)),
                     "extra.npy": zeros})
    assert path.stat().st_size < 2**21
    code = ("import resource, sys; from minigpt.run_state import load_model\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    load_model(sys.argv[1])\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    message, grown_mb = r.stdout.strip().splitlines()
    assert message.startswith("CheckpointError") and "refused unread" in message, message
    assert int(grown_mb) < 64, grown_mb          # MB above the interpreter's own baseline


@pytest.mark.parametrize("case", ["duplicate", "not npy", "stored", "too big for its shape",
                                  "a header claiming a huge array", "an object array"])
def test_odd_archive_entries_are_refused(tmp_path, saved, case):
    arrays, meta = saved
    entries = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    entries[META_KEY + ".npy"] = npy_bytes(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    path = tmp_path / "odd.npz"
    if case == "not npy":
        entries["notes.txt"] = b"hello"
    if case == "too big for its shape":             # a wte padded with 1 MB of extra data
        entries["param.wte.npy"] = npy_bytes(np.zeros(arrays["param.wte"].size + 2**18,
                                                      np.float32))
    if case == "a header claiming a huge array":    # 8 TB claimed, a few bytes held
        import io
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                                   "shape": (10**12,)})
        entries["extra.npy"] = buf.getvalue() + b"\0" * 64
    if case == "an object array":
        entries["extra.npy"] = npy_bytes(np.zeros(3)).replace(b"'<f8'", b"'|O' ")
    write_zip(path, entries)
    if case == "duplicate":
        with zipfile.ZipFile(path, "a") as zf, pytest.warns(UserWarning):
            zf.writestr("param.wte.npy", entries["param.wte.npy"])
    word = {"duplicate": "twice", "not npy": "unexpected entry", "stored": None,
            "too big for its shape": "declares", "a header claiming a huge array": "claims",
            "an object array": "Python objects"}[case]
    if word is None:                                 # a plain deflated .npz is fine
        load_model(str(path))
        return
    generic = case in ("a header claiming a huge array", "an object array")
    with pytest.raises(CheckpointError, match=None if generic else word):
        load_model(str(path))                        # (refuses the unknown entry by name)
    if generic:
        with pytest.raises(CheckpointError, match=word):
            load_checkpoint(path)                    # the reader of any .npz checks it too


# ----------------------------------------------------------------------------- stdout and options
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    train("tiny", out_dir=str(out), **QUIET)
    return out


@pytest.mark.parametrize("command", ["sample", "chat"])
def test_closing_stdout_early_exits_quietly(run_folder, command):
    args = [sys.executable, "-m", "minigpt", command, "--checkpoint", str(run_folder),
            "--max-new-tokens", "400"]
    proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if command == "chat":
        proc.stdin.write(b"Hello\n" * 2000)
    proc.stdin.close()
    proc.stdout.read(10)
    proc.stdout.close()                              # the reader goes away, like head -c 10
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
    assert proc.returncode == (141 if os.name == "posix" else 1)


@pytest.mark.parametrize("args", [["--block-size", "100000"], ["--n-embd", "65536", "--n-head", "1"],
                                  ["--batch-size", "4096", "--block-size", "2048"]])
def test_a_run_too_big_for_a_laptop_is_refused_with_its_size(tmp_path, args):
    r = cli("train", "--preset", "tiny", *args, "--out-dir", str(tmp_path / "x"))
    assert_one_clear_line(r, 1, "GiB", "limit")
    assert not (tmp_path / "x").exists()


def test_eval_and_resume_refuse_a_checkpoint_whose_batch_would_not_fit(tmp_path, saved):
    """A valid checkpoint (learned positions, so its 2,048-position table is stored)
    whose training batch of 4,096 windows would need hundreds of GiB per step."""
    from minigpt.config import GPTConfig, TrainConfig
    from minigpt.model import GPT
    from minigpt.optim import adamw_from_config
    from minigpt.run_state import save_state
    from minigpt.tokenizer import CharTokenizer
    _, meta = saved
    tokenizer = CharTokenizer.from_dict(meta["tokenizer"])
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=2048, n_layer=1,
                          n_head=2, n_embd=16, pos_encoding="learned"))
    cfg = TrainConfig(out_dir=str(tmp_path / "wide"), batch_size=4096, max_iters=10,
                      warmup_iters=0)
    save_state(tmp_path / "wide" / "ckpt.npz", model, tokenizer,
               adamw_from_config(model.params, cfg), cfg, 0, {"loss": [], "evals": []})
    load_state(str(tmp_path / "wide" / "ckpt.npz"))        # a valid state ...
    for command in ("eval", "resume"):
        assert_one_clear_line(read_with(command, tmp_path / "wide"), 1, "GiB")  # ... too big


@pytest.mark.parametrize("value", ["0", "-3"])
def test_stop_at_below_one_is_refused_by_name(tmp_path, value):
    r = cli("train", "--preset", "tiny", "--stop-at", value, "--out-dir", str(tmp_path / "x"))
    assert r.returncode == 2 and "--stop-at" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="stop_at"):
        train("tiny", out_dir=str(tmp_path / "y"), stop_at=0, **QUIET)
    assert not (tmp_path / "y").exists()


@pytest.mark.parametrize("command", ["sample", "chat"])
def test_a_negative_seed_is_refused_by_name(run_folder, command):
    r = cli(command, "--checkpoint", str(run_folder), "--seed", "-1", stdin="Hi\n")
    assert r.returncode == 2 and "--seed" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("option", ["--replies", "--show"])
def test_eval_counts_below_zero_are_refused_by_name(run_folder, option):
    r = cli("eval", "--checkpoint", str(run_folder), option, "-1")
    assert r.returncode == 2 and option in r.stderr and "Traceback" not in r.stderr


def test_the_help_states_the_exit_statuses():
    r = cli("--help")
    assert r.returncode == 0
    for status in ("0", "1", "2", "130", "141"):
        assert f"\n  {status} " in r.stdout
