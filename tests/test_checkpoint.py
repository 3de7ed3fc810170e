"""Checkpoints: bit-exact round trips, atomic saves, and refusal of every kind of
bad file (missing, truncated, random, pickled, NaN, wrong shapes) with a clear error."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from minigpt.checkpoint import (META_KEY, CheckpointError, CheckpointNotFoundError,
                                load_checkpoint, save_checkpoint, validate_arrays)


def sample_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "wte": rng.standard_normal((7, 4)).astype(np.float32),
        "h.0.ln_1.b": np.array([0.0, -0.0, 5e-324, 1e308]),   # signed zero, subnormal, huge
        "step": np.array(42, dtype=np.int64),                  # a 0-d array
        "empty": np.zeros((0, 3), dtype=np.float32),
        "mask": np.array([True, False]),
    }


META = {"config": {"n_layer": 2, "dtype": "float32"}, "note": "你好 <|end|>", "step": 42}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k   # bit-exact, -0.0 included


def test_round_trip_is_bit_exact(tmp_path):
    path = tmp_path / "nested" / "dir" / "ckpt.npz"   # parents are created
    arrays = sample_arrays()
    save_checkpoint(path, arrays, META)
    loaded, meta = load_checkpoint(path)
    assert_same(loaded, arrays)
    assert meta == META
    assert os.listdir(path.parent) == ["ckpt.npz"]     # no temp file left behind


def test_file_is_a_plain_npz_with_meta_json(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, sample_arrays(), META)
    with np.load(path, allow_pickle=False) as f:
        assert META_KEY in f.files and f[META_KEY].dtype == np.uint8


def test_names_that_clash_with_np_savez_arguments_are_fine(tmp_path):
    arrays = {"file": np.ones(2), "allow_pickle": np.zeros(3)}
    save_checkpoint(tmp_path / "c.npz", arrays, {})
    assert_same(load_checkpoint(tmp_path / "c.npz")[0], arrays)


@settings(deadline=None)
@given(arr=hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
                      shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                      elements={"allow_nan": False, "allow_infinity": False}))
def test_round_trip_property(tmp_path_factory, arr):
    path = tmp_path_factory.mktemp("rt") / "c.npz"
    save_checkpoint(path, {"x": arr}, {"shape": list(arr.shape)})
    loaded, meta = load_checkpoint(path)
    assert_same(loaded, {"x": arr})
    assert meta == {"shape": list(arr.shape)}


def test_overwrite_replaces_the_previous_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, sample_arrays(0), {"v": 1})
    save_checkpoint(path, sample_arrays(1), {"v": 2})
    loaded, meta = load_checkpoint(path)
    assert meta == {"v": 2}
    assert_same(loaded, sample_arrays(1))


# ---- crashes while saving leave the previous checkpoint intact -------------------------

def _fail(*args, **kwargs):
    raise OSError("simulated crash")


@pytest.mark.parametrize("target", ["os.replace", "write_array"])
def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch, target):
    path = tmp_path / "c.npz"
    save_checkpoint(path, sample_arrays(0), {"v": 1})
    before = path.read_bytes()
    if target == "os.replace":
        monkeypatch.setattr(os, "replace", _fail)
    else:
        # Fail midway: the first array is written, the second one crashes.
        real = np.lib.format.write_array
        calls = []

        def write_then_crash(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise OSError("simulated crash")
            return real(*args, **kwargs)
        monkeypatch.setattr(np.lib.format, "write_array", write_then_crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, sample_arrays(1), {"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]          # the temp file was removed
    assert load_checkpoint(path)[1] == {"v": 1}


def test_crash_on_first_save_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", _fail)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "c.npz", sample_arrays(), {})
    assert os.listdir(tmp_path) == []


# ---- bad files are refused with a message naming the file and the problem ------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(CheckpointNotFoundError, match="not found") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, ValueError)


class _WritesMarker:
    """Unpickling this object calls _touch(path): a stand-in for malicious code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_touch, (self.path,))


def _touch(path):
    with open(path, "w") as f:
        f.write("pwned")


def test_pickled_object_array_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.npz"
    evil = np.array([_WritesMarker(str(marker))], dtype=object)
    np.savez(path, w=evil, **{META_KEY: np.frombuffer(b"{}", dtype=np.uint8)},
             allow_pickle=True)
    assert not marker.exists()

    with pytest.raises(CheckpointError, match="evil.npz") as info:
        load_checkpoint(path)
    assert "pickle" in str(info.value).lower()
    assert not marker.exists(), "loading a checkpoint must never unpickle"

    # The trap is real: numpy with allow_pickle=True does run the code.
    with np.load(path, allow_pickle=True) as f:
        f["w"]
    assert marker.exists()


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, sample_arrays(), META)
    data = path.read_bytes()
    for keep in (len(data) // 3, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:keep])
        with pytest.raises(CheckpointError, match="c.npz"):
            load_checkpoint(path)


def test_corrupted_byte_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.arange(64, dtype=np.float64)}, {})
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF                 # inside w's data: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="c.npz"):
        load_checkpoint(path)


@pytest.mark.parametrize("prefix", [b"", b"PK\x03\x04"])
def test_random_bytes_are_refused(tmp_path, prefix):
    path = tmp_path / "junk.npz"
    path.write_bytes(prefix + np.random.default_rng(0).bytes(2000))
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_checkpoint(path)


def test_plain_npy_is_refused(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.ones(3))
    with pytest.raises(CheckpointError, match="not an .npz"):
        load_checkpoint(path)


def _raw_npz(path, **arrays):
    """Write an .npz with numpy directly, bypassing save_checkpoint's own checks."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _meta(text: bytes):
    return {META_KEY: np.frombuffer(text, dtype=np.uint8)}


@pytest.mark.parametrize("arrays, message", [
    ({"w": np.ones(3)}, "no meta.json"),
    ({"w": np.ones(3), **_meta(b"{not json")}, "not valid JSON"),
    ({"w": np.ones(3), **_meta(b"[1, 2]")}, "JSON object"),
    ({"w": np.ones(3), **_meta(b'{"x": NaN}')}, "not valid JSON"),
    ({"w": np.ones(3), META_KEY: np.array([1.0, 2.0])}, "uint8"),
    ({"w": np.array([1.0, np.nan]), **_meta(b"{}")}, "'w'.*NaN"),
    ({"w": np.array([np.inf]), **_meta(b"{}")}, "'w'.*NaN/inf"),
    ({"w": np.array(["a", "b"]), **_meta(b"{}")}, "'w'.*non-numeric"),
    ({"w": np.array([1 + 2j]), **_meta(b"{}")}, "'w'.*non-numeric"),
])
def test_bad_contents_are_refused(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    _raw_npz(path, **arrays)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "bad.npz" in str(info.value)


@pytest.mark.parametrize("arrays, meta, message", [
    ({"w": np.array([np.nan])}, {}, "NaN"),
    ({"w": np.array(["x"])}, {}, "non-numeric"),
    ({"w": [1.0, 2.0]}, {}, "np.ndarray"),
    ({META_KEY: np.ones(1)}, {}, "reserved"),
    ({"w": np.ones(1)}, {"x": float("nan")}, "JSON"),
    ({"w": np.ones(1)}, {"x": object()}, "JSON"),
])
def test_save_refuses_what_load_would_refuse(tmp_path, arrays, meta, message):
    path = tmp_path / "c.npz"
    with pytest.raises(CheckpointError, match=message):
        save_checkpoint(path, arrays, meta)
    assert not path.exists()


# ---- validate_arrays ---------------------------------------------------------------------

def test_validate_arrays_accepts_a_match():
    arrays = {"wte": np.zeros((5, 4), np.float32), "ln_f.b": np.zeros(4, np.float32)}
    validate_arrays(arrays, {"wte": ((5, 4), "float32"), "ln_f.b": ((4,), np.float32)})
    validate_arrays(arrays, {"wte": ((5, 4), None), "ln_f.b": ((4,), None)})


def test_validate_arrays_names_every_problem():
    arrays = {"h.0.attn.c_attn.w": np.zeros((64, 192), np.float32),
              "ln_f.w": np.zeros(64, np.float64),
              "extra": np.zeros(1)}
    expected = {"h.0.attn.c_attn.w": ((128, 384), "float32"),
                "ln_f.w": ((64,), "float32"),
                "wpe": ((16, 64), "float32")}
    with pytest.raises(CheckpointError) as info:
        validate_arrays(arrays, expected, what="parameters", path="runs/x.npz")
    msg = str(info.value)
    assert "runs/x.npz" in msg and "parameters" in msg
    assert "'h.0.attn.c_attn.w' has shape (64, 192), expected (128, 384)" in msg
    assert "'ln_f.w' has dtype float64, expected float32" in msg
    assert "missing 'wpe'" in msg and "unexpected 'extra'" in msg


def test_validate_arrays_keeps_long_reports_short():
    expected = {f"p{i}": ((1,), None) for i in range(100)}
    with pytest.raises(CheckpointError) as info:
        validate_arrays({}, expected)
    assert "and 92 more" in str(info.value) and len(str(info.value)) < 300


def test_saved_file_gets_the_usual_permissions(tmp_path):
    """The temp file is private while written; the published checkpoint is not."""
    mask = os.umask(0o022)
    try:
        path = tmp_path / "ckpt.npz"
        save_checkpoint(path, {"w": np.ones(3)}, {"step": 1})
        assert os.stat(path).st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)
