"""The reference trace and the comparer (minigpt.reference; python -m minigpt
reference / compare).

A trace must be the model's own pass: its logits, loss and parameter gradients are
model.forward's and model.backward()'s, bit for bit, and every intermediate's
gradient passes float64 centred differences (each intermediate nudged through the
tape). compare must find what is wrong: a reference against itself agrees, a copy
with any one tensor changed names exactly that tensor first, and files it cannot
use give exit status 2 and one line, never a traceback.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minigpt.__main__ import main
from minigpt.checkpoint import _write_npz
from minigpt.config import GPTConfig
from minigpt.gradcheck import gradient_scale, numerical_gradient, relative_error
from minigpt.model import GPT, param_shapes
from minigpt.reference import (compare, load_reference, manifest, trace, write_reference)
from minigpt.tape import Tape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = [
    dict(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8),
    dict(vocab_size=7, block_size=5, n_layer=1, n_head=1, n_embd=6, bias=False,
         pos_encoding="learned"),
    dict(vocab_size=13, block_size=4, n_layer=2, n_head=2, n_embd=4, scale_embeddings=True),
]


def batch(cfg, B, T, seed=0):
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, (B, T + 1))
    return tokens[:, :-1], tokens[:, 1:]


def intermediates(tr, model):
    """The names of the traced activations that have a gradient (not parameters)."""
    return [n for n in tr if "grad." + n in tr and n not in model.params
            and not n.startswith(("transformer.", "lm_head."))]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """A reference file (the command's default small model), its arrays and manifest."""
    path = tmp_path_factory.mktemp("ref") / "ref.npz"
    assert main(["reference", "--out", str(path)]) == 0
    arrays, meta = load_reference(path)
    return path, arrays, meta


# ----------------------------------------------------------------------------- the trace
@pytest.mark.parametrize("kw", CONFIGS)
def test_trace_is_the_models_own_forward_and_backward(kw):
    cfg = GPTConfig(dtype="float64", **kw)
    model = GPT(cfg, seed=3)
    idx, targets = batch(cfg, 2, cfg.block_size)
    tr = trace(model, idx, targets)
    logits, loss = model.forward(idx, targets)
    grads = model.backward()
    assert np.array_equal(tr["logits"], logits) and tr["loss"] == loss
    for name, g in grads.items():
        assert np.array_equal(tr["grad." + name], g), name
    for name, p in model.params.items():
        assert np.array_equal(tr[name], p), name
    # the manifest lists exactly the traced tensors, in the same order, with their shapes
    entries = manifest(cfg, *idx.shape)
    assert [e["name"] for e in entries] == list(tr)
    for e in entries:
        assert tuple(e["shape"]) == tr[e["name"]].shape, e["name"]


@pytest.mark.parametrize("kw", CONFIGS)
def test_every_intermediate_gradient_passes_finite_differences(kw):
    cfg = GPTConfig(dtype="float64", **kw)
    model = GPT(cfg, seed=1)
    idx, targets = batch(cfg, 2, cfg.block_size - 1, seed=2)
    tr = trace(model, idx, targets)
    names = intermediates(tr, model)
    assert {"tok_emb", "h.0.attn.q", "h.0.attn.scores", "h.0.mlp.gelu", "ln_f"} <= set(names)
    rng = np.random.default_rng(0)
    pairs = {}
    for name in names:
        nudge = np.zeros(tr[name].shape)
        finite = np.flatnonzero(np.isfinite(tr[name]))     # not the masked scores (-inf)
        which = rng.choice(finite, size=min(12, finite.size), replace=False)
        loss = lambda: model.forward(idx, targets, tape=Tape(nudge={name: nudge}))[1]
        numeric = numerical_gradient(loss, nudge, indices=which)
        pairs[name] = (tr["grad." + name].reshape(-1)[which], numeric.reshape(-1)[which])
    whole = max(gradient_scale(a, n) for a, n in pairs.values())
    errors = {name: relative_error(a, n, whole) for name, (a, n) in pairs.items()}
    assert max(errors.values()) < 1e-7, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_the_finite_difference_check_catches_a_wrong_intermediate_gradient():
    cfg = GPTConfig(dtype="float64", **CONFIGS[0])
    model = GPT(cfg, seed=1)
    idx, targets = batch(cfg, 2, 5)
    tr = trace(model, idx, targets)
    nudge = np.zeros(tr["h.1.attn.v"].shape)
    loss = lambda: model.forward(idx, targets, tape=Tape(nudge={"h.1.attn.v": nudge}))[1]
    numeric = numerical_gradient(loss, nudge)
    right = tr["grad.h.1.attn.v"]
    whole = max(np.abs(tr[n]).max() for n in tr if n.startswith("grad."))   # as above
    assert relative_error(right, numeric, whole) < 1e-7
    assert relative_error(right * 1.01, numeric, whole) > 1e-6    # 1% off is seen


@given(B=st.integers(1, 3), T=st.integers(1, 6), layers=st.integers(1, 2),
       learned=st.booleans(), bias=st.booleans(), scale=st.booleans())
def test_trace_names_follow_the_manifest_for_any_shape(B, T, layers, learned, bias, scale):
    cfg = GPTConfig(vocab_size=9, block_size=6, n_layer=layers, n_head=2, n_embd=4,
                    bias=bias, pos_encoding="learned" if learned else "sinusoidal",
                    scale_embeddings=scale, dtype="float64")
    idx, targets = batch(cfg, B, T)
    tr = trace(GPT(cfg), idx, targets)                   # (trace itself checks the names)
    entries = manifest(cfg, B, T)
    seen = set()
    for e in entries:                  # data-flow order: every input comes before its use
        assert set(e["inputs"]) <= seen, (e["name"], set(e["inputs"]) - seen)
        seen.add(e["name"])
        assert tuple(e["shape"]) == tr[e["name"]].shape
    assert {"grad." + n for n in param_shapes(cfg)} <= seen


def test_the_nanogpt_names_hold_the_exported_weights_and_gradients():
    from minigpt.interop import to_nanogpt
    cfg = GPTConfig(dtype="float64", **CONFIGS[2])          # with the folded scale
    model = GPT(cfg, seed=4)
    idx, targets = batch(cfg, 2, 4)
    tr = trace(model, idx, targets)
    model.forward(idx, targets)
    grads = model.backward()
    for key, value in to_nanogpt(model.params, cfg).items():
        assert np.array_equal(tr[key], value), key
    for key, value in to_nanogpt(grads, cfg, gradients=True).items():
        assert np.array_equal(tr["grad." + key], value), key


def test_trace_is_float64_by_default_and_leaves_the_model_alone():
    cfg = GPTConfig(**CONFIGS[0])                               # a float32 model
    model = GPT(cfg, seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    tr = trace(model, *batch(cfg, 1, 4))
    assert tr["logits"].dtype == np.float64 and tr["grad.wte"].dtype == np.float64
    assert all(np.array_equal(before[k], v) and v.dtype == np.float32
               for k, v in model.params.items())


def test_trace_refuses_bad_ids():
    cfg = GPTConfig(dtype="float64", **CONFIGS[0])
    with pytest.raises(ValueError, match="outside"):
        trace(GPT(cfg), np.array([[1, 99]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="does not match"):
        trace(GPT(cfg), np.array([[1, 2]]), np.array([[1, 2, 3]]))


# ----------------------------------------------------------------------------- the file
def test_reference_file_is_plain_npz_with_a_manifest(ref):
    path, arrays, meta = ref
    with np.load(path, allow_pickle=False) as f:          # what C, Rust or JAX readers see
        names = set(f.files)
        text = f["meta.json"].tobytes().decode("utf-8")
    assert json.loads(text) == meta
    twin = json.loads(open(os.path.splitext(path)[0] + ".json", encoding="utf-8").read())
    assert twin == meta
    listed = [e["name"] for e in meta["tensors"]]
    assert set(listed) | {"meta.json"} == names
    for e in meta["tensors"]:
        assert list(arrays[e["name"]].shape) == e["shape"] and e["formula"]
        assert e["dtype"] == str(arrays[e["name"]].dtype)
    assert arrays["logits"].dtype == np.float64
    assert meta["config"]["dtype"] == "float64"
    assert np.isneginf(arrays["h.0.attn.scores"]).any()     # the causal mask, as written


def test_reference_options_set_the_model(tmp_path):
    out = tmp_path / "r.npz"
    assert main(["reference", "--out", str(out), "--n-layer", "1", "--pos-encoding", "learned",
                 "--batch", "3", "--time", "5", "--seed", "7", "--vocab-size", "20"]) == 0
    arrays, meta = load_reference(out)
    assert meta["config"]["n_layer"] == 1 and meta["seed"] == 7
    assert arrays["idx"].shape == (3, 5) and arrays["wte"].shape[0] == 20
    assert "wpe" in arrays and "h.1.ln_1" not in arrays
    # the same command gives the same file contents
    again = tmp_path / "again.npz"
    main(["reference", "--out", str(again), "--n-layer", "1", "--pos-encoding", "learned",
          "--batch", "3", "--time", "5", "--seed", "7", "--vocab-size", "20"])
    other, _ = load_reference(again)
    assert all(np.array_equal(arrays[k], other[k]) for k in arrays)


def test_reference_bad_options_are_one_clear_line(tmp_path, capsys):
    assert main(["reference", "--out", str(tmp_path / "r.npz"), "--time", "99"]) == 1
    assert main(["reference", "--out", str(tmp_path / "r.npz"), "--n-head", "3"]) == 1
    file = tmp_path / "file"
    file.write_text("x")
    assert main(["reference", "--out", str(file / "r.npz")]) == 1   # a file as a folder
    err = capsys.readouterr().err
    assert "block_size" in err and "divisible" in err and "cannot write" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r.npz").exists()


# ----------------------------------------------------------------------------- compare
def test_compare_of_a_reference_with_itself_exits_0(ref, capsys):
    path = str(ref[0])
    assert main(["compare", path, path]) == 0
    out = capsys.readouterr().out
    assert "first divergence" not in out and "agree, 0 do not" in out


def test_every_tensor_changed_alone_is_the_first_divergence(ref):
    _, arrays, meta = ref
    rng = np.random.default_rng(0)
    for e in meta["tensors"]:
        name = e["name"]
        theirs = dict(arrays)
        bad = np.array(arrays[name], copy=True)
        flat = bad.reshape(-1)
        if bad.dtype.kind in "iu":
            flat[0] = (flat[0] + 1) % meta["config"]["vocab_size"]
        else:
            finite = np.flatnonzero(np.isfinite(flat))
            i = rng.choice(finite)
            flat[i] += 1e-6 * max(1.0, np.abs(flat[finite]).max())   # past rtol 1e-9
        theirs[name] = bad
        result = compare(arrays, meta, theirs)
        assert result["first"] is not None and result["first"][0] == name, name
        assert [r[0] for r in result["rows"] if r[1] != "ok"] == [name]


def test_first_divergence_names_its_inputs_and_what_it_reaches(ref, tmp_path, capsys):
    path, arrays, meta = ref
    theirs = dict(arrays)
    theirs["h.0.attn.scores"] = arrays["h.0.attn.scores"] * 2.0    # -inf stays -inf
    for e in meta["tensors"]:                                    # everything after it too
        if e["name"] in ("h.1.ln_1", "logits", "grad.h.0.attn.q"):
            theirs[e["name"]] = arrays[e["name"]] + 1.0
    bad = tmp_path / "bad.npz"
    np.savez(bad, **theirs)
    assert main(["compare", str(path), str(bad), "--brief"]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("first divergence"))
    assert line.startswith("first divergence: h.0.attn.scores (")
    assert "h.0.attn.q (agrees), h.0.attn.k (agrees)" in out
    assert "of the" in out and "3 diverge too" in out


def test_compare_tolerances_follow_the_dtype(ref):
    _, arrays, meta = ref
    as32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
    assert compare(arrays, meta, as32)["first"] is None        # float32 rounding agrees
    as32["h.1.mlp.gelu"] = as32["h.1.mlp.gelu"] * np.float32(1.001)
    assert compare(arrays, meta, as32)["first"][0] == "h.1.mlp.gelu"
    assert compare(arrays, meta, as32, rtol=1e-2)["first"] is None
    # float64 rounding noise agrees; float32 rounding does not, in float64's tolerance
    noisy = {k: (v * (1 + 1e-13) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
    assert compare(arrays, meta, noisy)["first"] is None
    assert compare(arrays, meta, as32, rtol=1e-9, atol=1e-12)["first"] is not None


def test_compare_masked_scores_nan_and_shapes(ref):
    _, arrays, meta = ref
    theirs = dict(arrays)
    s = arrays["h.0.attn.scores"].copy()
    theirs["h.0.attn.scores"] = np.where(np.isneginf(s), -1e10, s)   # a common stand-in
    assert compare(arrays, meta, theirs)["first"] is None
    theirs["h.0.attn.scores"] = np.where(np.isneginf(s), 0.0, s)     # not masked at all
    assert compare(arrays, meta, theirs)["first"][0] == "h.0.attn.scores"
    theirs = dict(arrays)
    theirs["ln_f"] = arrays["ln_f"].copy()
    theirs["ln_f"][0, 0, 0] = np.nan
    assert compare(arrays, meta, theirs)["first"][0] == "ln_f"
    theirs = dict(arrays)
    theirs["h.0.attn.q"] = arrays["h.0.attn.q"].transpose(0, 2, 1, 3)   # (B, T, nh, hs)
    result = compare(arrays, meta, theirs)
    assert result["first"][0] == "h.0.attn.q" and result["first"][1] == "shape"
    assert "h.0.attn.q" in result["shapes"]


def test_compare_lists_missing_and_extra_tensors(ref, tmp_path, capsys):
    path, arrays, meta = ref
    few = {k: arrays[k] for k in ("idx", "emb", "h.0.ln_1")}
    few["my.own.thing"] = np.zeros(3)
    f = tmp_path / "few.npz"
    np.savez(f, **few)
    assert main(["compare", str(path), str(f)]) == 0
    out = capsys.readouterr().out
    assert "compared 3 tensors" in out and "only in theirs, not compared (1): my.own.thing" in out
    assert "not in theirs" in out and "targets" in out


def test_compare_reads_safetensors(ref, tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    path, arrays, _ = ref
    f = tmp_path / "theirs.safetensors"
    safetensors.save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()
                           if k != "loss"}, str(f))
    assert main(["compare", str(path), str(f), "--brief"]) == 0


def test_unusable_input_is_exit_2_and_one_line(ref, tmp_path):
    path = str(ref[0])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(open(path, "rb").read()[:5000])
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    objects = tmp_path / "objects.npz"
    np.savez(objects, emb=np.array([{"a": 1}], dtype=object))
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\xff" * 20)
    no_manifest = tmp_path / "nomanifest.npz"
    with open(no_manifest, "wb") as f:
        _write_npz(f, {"meta.json": np.frombuffer(b'{"x": 1}', dtype=np.uint8)})
    cases = [
        ([str(tmp_path / "nope.npz"), path], "not found"),
        ([path, str(tmp_path / "nope.npz")], "not found"),
        ([str(junk), path], "not an .npz"),
        ([path, str(junk)], "not an .npz"),
        ([str(truncated), path], "unreadable"),
        ([str(plain), path], "not a minigpt reference"),
        ([str(no_manifest), path], "not a minigpt reference"),
        ([path, str(plain)], "no tensor under the reference's names"),
        ([path, str(objects)], "pickled"),
        ([path, str(bad_st)], "safetensors"),
    ]
    for args, words in cases:
        r = subprocess.run([sys.executable, "-m", "minigpt", "compare", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], \
            (args, r.stderr)
    r = subprocess.run([sys.executable, "-m", "minigpt", "compare", path], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr      # a bad command line


# ----------------------------------------------------------------------------- the example
def test_pytorch_example_agrees_and_its_planted_bug_is_found(ref, tmp_path, capsys):
    pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import pytorch_trace
    finally:
        sys.path.pop(0)
    path = str(ref[0])
    mine, bug = str(tmp_path / "mine.npz"), str(tmp_path / "bug.npz")
    assert pytorch_trace.main([path, "--out", mine]) == 0
    assert pytorch_trace.main([path, "--out", bug, "--bug"]) == 0
    capsys.readouterr()
    assert main(["compare", path, mine, "--brief"]) == 0
    out = capsys.readouterr().out
    assert "do not" in out and ", 0 do not" in out
    n_compared = int(out.split("compared ")[1].split()[0])
    assert n_compared > 100                     # activations and gradients, not a handful
    assert main(["compare", path, bug, "--brief"]) == 1
    out = capsys.readouterr().out
    assert "first divergence: h.0.attn.scores (" in out
    assert "h.0.attn.q (agrees), h.0.attn.k (agrees)" in out
    # the README shows this very output (the reference it makes is the default one)
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert "```\n" + out.strip() + "\n```" in readme, out
