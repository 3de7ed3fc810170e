"""A reference to check another implementation against: named traces and a comparer.

    trace(model, idx, targets)       every tensor of one forward and backward, by name
    manifest(config, B, T)           each name's shape, formula and inputs, in data-flow order
    write_reference(path, ...)       the trace as a plain .npz (+ the manifest as JSON)
    compare(reference, theirs)       which tensors agree, and the first one that does not

The names (one scheme; nanoGPT's parameter names are there too). Shapes use B, T, C,
nh, hs = C / nh, V as in minigpt.config; l is a block's index.

    idx, targets                     (B, T) int64   the inputs
    wte, wpe, h.l.ln_1.w, ...        parameters, minigpt's names (model.params), Linear
                                     weights (in, out)
    transformer.wte.weight, ...      the same parameters under nanoGPT's names and in
                                     PyTorch's layout (minigpt.interop.to_nanogpt)
    tok_emb                (B, T, C) s * wte[idx]         (s = sqrt(C) with scale_embeddings)
    pos_emb                (T, C)    the positions' rows: the sinusoidal table, or wpe
    emb                    (B, T, C) tok_emb + pos_emb, the input of block 0
    h.l.ln_1               (B, T, C) layer norm of the block's input
    h.l.attn.c_attn        (B, T, 3C) ln_1 @ c_attn.w + c_attn.b, the fused q, k, v
    h.l.attn.q / .k / .v   (B, nh, T, hs) its three thirds, split into heads
    h.l.attn.scores        (B, nh, T, T) q @ k^T / sqrt(hs), -inf where j > i
    h.l.attn.att           (B, nh, T, T) softmax(scores), the attention weights
    h.l.attn.y             (B, T, C) att @ v, heads side by side again
    h.l.attn.c_proj        (B, T, C) y @ c_proj.w + c_proj.b, the attention's output
    h.l.resid_attn         (B, T, C) block input + attention output
    h.l.ln_2               (B, T, C) layer norm of resid_attn
    h.l.mlp.c_fc           (B, T, 4C) the MLP's hidden layer
    h.l.mlp.gelu           (B, T, 4C) GELU of it (tanh form)
    h.l.mlp.c_proj         (B, T, C) the MLP's output
    h.l.resid_mlp          (B, T, C) resid_attn + MLP output: the block's output
    ln_f                   (B, T, C) the final layer norm
    logits                 (B, T, V) ln_f @ wte^T
    loss                   ()        mean cross-entropy of the targets
    grad.NAME              dloss/dNAME, NAME's shape, for every name above from
                           tok_emb on except loss, and for every parameter (both names)

A trace runs with dropout off (a reference must be deterministic) and without
label smoothing. Its data-flow order is the forward's, then the backward's (the
gradients in the order backpropagation produces them, a parameter's gradient
beside the gradient it comes from), so the first tensor of that order that
disagrees is where a bug enters: everything after it may be wrong only because it
depends on it.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from .checkpoint import META_KEY, _meta_to_bytes, _write_npz, read_npz, write_atomically
from .config import GPTConfig
from .interop import _is_linear, _torch_name, to_nanogpt
from .language import tr
from .model import GPT, check_ids, param_shapes
from .tape import Tape

TOLERANCES = {"float32": (1e-4, 1e-6), "float64": (1e-9, 1e-12)}   # (rtol, atol)
MASKED = -1e9                  # a masked score may be -inf, or any stand-in at or below this


# ----------------------------------------------------------------------------- the manifest
def _forward_entries(config: GPTConfig, B, T):
    """(name, shape, formula, inputs) of every forward tensor, in data-flow order."""
    C, nh, V, L = config.n_embd, config.n_head, config.vocab_size, config.n_layer
    hs = C // nh
    b = config.bias

    def ln(name, x, p):
        inputs = [x, p + ".w"] + ([p + ".b"] if b else [])
        formula = f"(x - mean(x)) / sqrt(var(x) + 1e-5) * {p}.w" + (f" + {p}.b" if b else "") \
            + f", over the last axis, x = {x}"
        return (name, (B, T, C), formula, inputs)

    def linear(name, x, p, shape):
        inputs = [x, p + ".w"] + ([p + ".b"] if b else [])
        return (name, shape, f"{x} @ {p}.w" + (f" + {p}.b" if b else ""), inputs)

    s = "sqrt(C) * " if config.scale_embeddings else ""
    if config.pos_encoding == "learned":
        pos = ("pos_emb", (T, C), "wpe[:T]", ["wpe"])
    else:
        pos = ("pos_emb", (T, C), "PE[:T]: PE[t, 2i] = sin(t / 10000^(2i/C)), "
               "PE[t, 2i+1] = cos(t / 10000^(2i/C)), fixed", [])
    out = [("tok_emb", (B, T, C), f"{s}wte[idx]", ["wte", "idx"]), pos,
           ("emb", (B, T, C), "tok_emb + pos_emb (pos_emb broadcast over b)",
            ["tok_emb", "pos_emb"])]
    x = "emb"
    for l in range(L):
        h = f"h.{l}."
        out += [
            ln(h + "ln_1", x, h + "ln_1"),
            linear(h + "attn.c_attn", h + "ln_1", h + "attn.c_attn", (B, T, 3 * C)),
            (h + "attn.q", (B, nh, T, hs), f"{h}attn.c_attn[..., 0:C] as (B, T, nh, hs), "
             "transposed to (B, nh, T, hs)", [h + "attn.c_attn"]),
            (h + "attn.k", (B, nh, T, hs), f"{h}attn.c_attn[..., C:2C], split into heads "
             "as q", [h + "attn.c_attn"]),
            (h + "attn.v", (B, nh, T, hs), f"{h}attn.c_attn[..., 2C:3C], split into heads "
             "as q", [h + "attn.c_attn"]),
            (h + "attn.scores", (B, nh, T, T), f"{h}attn.q @ {h}attn.k^T / sqrt(hs), "
             "-inf where key j > query i (the causal mask)", [h + "attn.q", h + "attn.k"]),
            (h + "attn.att", (B, nh, T, T), f"softmax({h}attn.scores) over the last axis",
             [h + "attn.scores"]),
            (h + "attn.y", (B, T, C), f"{h}attn.att @ {h}attn.v, (B, nh, T, hs) transposed "
             "to (B, T, nh, hs) and reshaped to (B, T, C)", [h + "attn.att", h + "attn.v"]),
            linear(h + "attn.c_proj", h + "attn.y", h + "attn.c_proj", (B, T, C)),
            (h + "resid_attn", (B, T, C), f"{x} + {h}attn.c_proj", [x, h + "attn.c_proj"]),
            ln(h + "ln_2", h + "resid_attn", h + "ln_2"),
            linear(h + "mlp.c_fc", h + "ln_2", h + "mlp.c_fc", (B, T, 4 * C)),
            (h + "mlp.gelu", (B, T, 4 * C), "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), "
             f"x = {h}mlp.c_fc", [h + "mlp.c_fc"]),
            linear(h + "mlp.c_proj", h + "mlp.gelu", h + "mlp.c_proj", (B, T, C)),
            (h + "resid_mlp", (B, T, C), f"{h}resid_attn + {h}mlp.c_proj (the block's output)",
             [h + "resid_attn", h + "mlp.c_proj"]),
        ]
        x = h + "resid_mlp"
    out += [ln("ln_f", x, "ln_f"),
            ("logits", (B, T, V), "ln_f @ wte^T (the head is tied to wte)", ["ln_f", "wte"]),
            ("loss", (), "mean over (b, t) of logsumexp(logits[b, t]) - "
             "logits[b, t, targets[b, t]]", ["logits", "targets"])]
    return out


def _nanogpt_aliases(config: GPTConfig):
    """minigpt parameter name -> [(nanoGPT name, transposed?, how the parameter is made
    from ours, how its gradient is made from ours)] (minigpt.interop.to_nanogpt)."""
    folded = " (the embedding scale folded in, minigpt.interop)"
    aliases = {}
    for name in param_shapes(config):
        transposed = _is_linear(name)
        how = f"{name}, nanoGPT's name" + (", transposed to PyTorch's (out, in)"
                                            if transposed else "")
        how_grad = "grad." + how
        if config.scale_embeddings and name == "wte":
            how, how_grad = "sqrt(C) * wte" + folded, "grad.wte / sqrt(C)" + folded
        if config.scale_embeddings and name.startswith("ln_f."):
            how, how_grad = f"{name} / sqrt(C)" + folded, f"grad.{name} * sqrt(C)" + folded
        aliases[name] = [(_torch_name(name), transposed, how, how_grad)]
    aliases["wte"].append(("lm_head.weight", False, "transformer.wte.weight (tied)",
                           "grad.transformer.wte.weight (tied: one parameter, both uses)"))
    return aliases


def _entry(name, shape, formula, inputs, twin=None):
    """One manifest entry. twin: for a parameter (or gradient) under nanoGPT's name,
    the same tensor's minigpt name: a file holding either one is not missing it."""
    e = dict(name=name, shape=list(shape), formula=formula, inputs=list(inputs))
    if twin:
        e["twin"] = twin
    return e


def manifest(config: GPTConfig, B: int, T: int) -> list:
    """Every tensor of a trace, in data-flow order: a list of dicts with "name",
    "shape", "formula" and "inputs" (the names it is computed from)."""
    shapes = param_shapes(config)
    aliases = _nanogpt_aliases(config)
    entries = [_entry("idx", (B, T), "input token ids", []),
               _entry("targets", (B, T), "the token after each position of idx (the labels)",
                      [])]
    for name, shape in shapes.items():
        entries.append(_entry(name, shape, "parameter", []))
        for key, transposed, how, _ in aliases[name]:
            entries.append(_entry(key, shape[::-1] if transposed else shape, how, [name],
                                  twin=name))
    if config.pos_encoding == "sinusoidal":
        entries.append(_entry("transformer.wpe.weight", (config.block_size, config.n_embd),
                              "the fixed sinusoidal table PE[:block_size], as nanoGPT's wpe "
                              "(minigpt has no such parameter)", []))
    forward = _forward_entries(config, B, T)
    entries += [_entry(*e) for e in forward]

    # The backward. dloss/dX is computed from the gradient of every Y that X feeds
    # and from Y's inputs (a local backward rule reads dY and what the forward cached).
    inputs_of = {name: inputs for name, _, _, inputs in forward}
    consumers = {}
    for name, _, _, inputs in forward:
        for x in inputs:
            consumers.setdefault(x, []).append(name)

    def grad_entry(x, shape):
        needs = []
        for y in consumers[x]:
            for n in ([] if y == "loss" else ["grad." + y]) + inputs_of[y]:
                if n not in needs:
                    needs.append(n)
        return _entry("grad." + x, shape, f"dloss/d{x}", needs)

    for name, shape, _, inputs in reversed(forward):
        if name != "loss":
            entries.append(grad_entry(name, shape))
        for x in inputs:        # a parameter's gradient is complete at its first use
            if x in shapes and consumers[x][0] == name:
                entries.append(grad_entry(x, shapes[x]))
                for key, transposed, _, how_grad in aliases[x]:
                    shape_x = shapes[x][::-1] if transposed else shapes[x]
                    entries.append(_entry("grad." + key, shape_x, how_grad, ["grad." + x],
                                          twin="grad." + x))
    return entries


# ----------------------------------------------------------------------------- the trace
def trace(model: GPT, idx, targets, dtype="float64") -> dict:
    """Every tensor of one forward and backward of `model` on (idx, targets), by name,
    in data-flow order (the order of manifest()): the inputs, the parameters under
    both names, every intermediate, the loss, and the gradient of the loss with
    respect to every intermediate and every parameter.

    The pass runs on a copy of the model in `dtype` (float64 by default: a
    reference should carry more digits than what it checks), with dropout off.
    The gradients it records are those model.backward() returns.
    """
    config = dataclasses.replace(model.config, dtype=dtype)
    copy = GPT(config)
    copy.params = {k: np.asarray(v, dtype=dtype) for k, v in model.params.items()}
    idx = check_ids(idx, config.vocab_size, "idx", config.block_size).astype(np.int64)
    targets = check_ids(targets, config.vocab_size, "targets").astype(np.int64)
    if targets.shape != idx.shape:
        raise ValueError(f"targets shape {targets.shape} does not match idx shape {idx.shape}")
    tape = Tape()
    copy.forward(idx, targets, tape=tape)
    grads = copy.backward(tape=tape)
    arrays = {"idx": idx, "targets": targets, **copy.params, **tape.arrays}
    arrays.update(to_nanogpt(copy.params, config))
    arrays.update({"grad." + k: v for k, v in grads.items()})
    arrays.update({"grad." + k: v for k, v in
                   to_nanogpt(grads, config, gradients=True).items()})
    B, T = idx.shape
    order = [e["name"] for e in manifest(config, B, T)]
    missing = [n for n in order if n not in arrays]
    extra = [n for n in arrays if n not in order]
    if missing or extra:        # the manifest and the code must name the same tensors
        raise AssertionError(f"trace and manifest disagree: missing {missing}, extra {extra}")
    return {name: np.asarray(arrays[name]) for name in order}


def write_reference(path, config: GPTConfig, *, seed=0, batch=2, time=None):
    """A model of `config` initialised with `seed`, a random batch (batch, time) drawn
    with the same seed, and its trace written to `path` (.npz, the manifest inside as
    meta.json) and to path's .json twin (the manifest alone). Both atomically.
    Returns the manifest dict."""
    time = config.block_size if time is None else time
    if not 1 <= time <= config.block_size:
        raise ValueError(f"--time must be in 1 .. block_size ({config.block_size}), got {time}")
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    model = GPT(config, seed=seed)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, config.vocab_size, size=(batch, time + 1))
    arrays = trace(model, tokens[:, :-1], tokens[:, 1:], dtype=config.dtype)
    entries = manifest(config, batch, time)
    for e in entries:
        e["dtype"] = str(arrays[e["name"]].dtype)
    meta = {"format": "minigpt reference trace, version 1", "config": dataclasses.asdict(config),
            "seed": seed, "batch": batch, "time": time, "tensors": entries}
    blob = _meta_to_bytes(meta, path)            # the manifest, as checkpoints keep meta.json
    write_atomically(path, lambda f: _write_npz(f, {**arrays, META_KEY: blob}))
    write_atomically(os.path.splitext(os.fspath(path))[0] + ".json",
                     lambda f: f.write(blob.tobytes() + b"\n"))
    return meta


# ----------------------------------------------------------------------------- reading
class UnusableInput(ValueError):
    """A file compare cannot use: unreadable, not a reference, or nothing in common."""


def load_reference(path):
    """A reference written by write_reference -> (arrays, meta)."""
    try:
        arrays, meta = read_npz(path, what="reference")
    except ValueError as e:
        raise UnusableInput(str(e)) from None
    if meta is None or not str(meta.get("format", "")).startswith("minigpt reference trace") \
            or not isinstance(meta.get("tensors"), list):
        raise UnusableInput(f"{path} is not a minigpt reference (it has no manifest): make "
                            f"one with python -m minigpt reference --out FILE.npz")
    names = [e.get("name") for e in meta["tensors"] if isinstance(e, dict)]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise UnusableInput(f"reference {path} lists tensors it does not hold: "
                            f"{', '.join(map(str, missing[:5]))}")
    return arrays, meta


def load_tensors(path):
    """name -> array from an .npz (any, read without pickles) or a .safetensors file."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        if not os.path.isfile(path):
            raise UnusableInput(f"file not found: {path}")
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise UnusableInput("reading .safetensors needs the safetensors package "
                                "(pip install safetensors), or save your tensors as .npz")
        try:
            return dict(load_file(path))
        except Exception as e:    # the package raises its own kinds for a damaged file
            raise UnusableInput(f"{path} is not a readable .safetensors file: "
                                f"{type(e).__name__}: {e}") from None
    try:
        arrays, _ = read_npz(path, what="file")
    except ValueError as e:
        raise UnusableInput(f"{e} (compare reads .npz and .safetensors files)") from None
    return arrays


# ----------------------------------------------------------------------------- comparing
def tolerance(ref, theirs, rtol=None, atol=None):
    """(rtol, atol) for one pair: the float32 defaults if either side is in float32 or
    narrower, else float64's; rtol / atol given override."""
    narrow = min(np.dtype(a.dtype).itemsize if a.dtype.kind == "f" else 8 for a in (ref, theirs))
    d_rtol, d_atol = TOLERANCES["float32" if narrow < 8 else "float64"]
    return (d_rtol if rtol is None else rtol), (d_atol if atol is None else atol)


def difference(ref, theirs):
    """(max absolute error, largest |entry| of ref) over the entries of two same-shaped
    arrays. Where ref is -inf (a masked score), theirs agrees if it is -inf or at most
    MASKED (-1e9, a common stand-in); any other mismatch of inf or NaN is an infinite
    error."""
    a = np.asarray(ref, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    masked = np.isneginf(a)
    with np.errstate(invalid="ignore"):
        if np.any(masked & ~(b <= MASKED)):
            return np.inf, 0.0
        a, b = a[~masked], b[~masked]
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return (0.0 if np.array_equal(a, b) else np.inf), 0.0
    if a.size == 0:
        return 0.0, 0.0
    return float(np.max(np.abs(a - b))), float(np.max(np.abs(a)))


def compare(ref_arrays, ref_meta, theirs, rtol=None, atol=None) -> dict:
    """Compare `theirs` (name -> array) with a reference, tensor by tensor.

    A tensor agrees when max|theirs - ref| <= atol + rtol * max|ref| (errors measured
    against the tensor's largest entry, so a gradient of size 1e-6 is held to the same
    relative standard as one of size 1; integer tensors must be equal). Returns a dict:
      rows         [(name, status, max_abs, rel, (rtol, atol))] in data-flow order, for
                   every tensor in both; status "ok", "diverges" or "shape"
      first        the first row that is not "ok", or None
      missing      reference names not in theirs;  extra: their names not in the reference
      shapes       name -> (reference shape, their shape) for the mismatches
      downstream   names that depend on the first divergence (the manifest's inputs)
    """
    entries = {e["name"]: e for e in ref_meta["tensors"]}
    order = [e["name"] for e in ref_meta["tensors"]]
    rows, shapes = [], {}
    for name in order:
        if name not in theirs:
            continue
        ref, their = np.asarray(ref_arrays[name]), np.asarray(theirs[name])
        tol = tolerance(ref, their, rtol, atol)
        if ref.shape != their.shape:
            shapes[name] = (ref.shape, their.shape)
            rows.append((name, "shape", np.inf, np.inf, tol))
            continue
        if their.dtype.kind not in "biuf":
            rows.append((name, "diverges", np.inf, np.inf, tol))
            continue
        if ref.dtype.kind in "biu":
            same = np.array_equal(ref, their)
            rows.append((name, "ok" if same else "diverges", 0.0 if same else np.inf,
                         0.0 if same else np.inf, (0.0, 0.0)))
            continue
        err, scale = difference(ref, their)
        rel = err / scale if scale > 0 else (0.0 if err == 0 else np.inf)
        ok = err <= tol[1] + tol[0] * scale
        rows.append((name, "ok" if ok else "diverges", err, rel, tol))
    first = next((r for r in rows if r[1] != "ok"), None)
    downstream = []
    if first is not None:
        reach = {first[0]}
        for name in order[order.index(first[0]) + 1:]:     # data-flow order is topological
            if any(i in reach for i in entries[name]["inputs"]):
                reach.add(name)
                downstream.append(name)
    twins = {}
    for e in ref_meta["tensors"]:
        if e.get("twin"):
            twins.setdefault(e["name"], set()).add(e["twin"])
            twins.setdefault(e["twin"], set()).add(e["name"])
    missing = [n for n in order if n not in theirs and not twins.get(n, set()) & set(theirs)]
    return dict(rows=rows, first=first, shapes=shapes, downstream=downstream, missing=missing,
                extra=[n for n in theirs if n not in entries], entries=entries)


def _fmt(x):
    return "inf" if x == np.inf else ("0" if x == 0 else f"{x:.2e}")


def report(result, *, all_rows=True) -> str:
    """compare()'s result as the text python -m minigpt compare prints (in Chinese in
    the notebooks' Chinese edition: minigpt.language)."""
    rows, first, entries = result["rows"], result["first"], result["entries"]
    status = {r[0]: r[1] for r in rows}
    lines = []
    if all_rows:
        width = max(len(r[0]) for r in rows)
        lines.append(tr(f"{'tensor':<{width}}  {'max abs err':>11}  {'rel err':>9}  ",
                        # a Chinese character takes two columns: 张量 fills `width`,
                        # 最大绝对误差 (12 columns) ends where the 11-wide column does
                        f"{'张量':<{width - 2}} {'最大绝对误差'}  {'相对误差':>5}  "))
        for name, st, err, rel, _ in rows:
            mark = {"ok": "ok", "diverges": tr("DIVERGES", "不一致"), "shape": tr("SHAPE", "形状不同")}[st]
            lines.append(f"{name:<{width}}  {_fmt(err):>11}  {_fmt(rel):>9}  {mark}")
        lines.append("")
    n_bad = sum(r[1] != "ok" for r in rows)
    lines.append(tr(f"compared {len(rows)} tensors: {len(rows) - n_bad} agree, {n_bad} do not",
                    f"比较了 {len(rows)} 个张量：{len(rows) - n_bad} 个一致，{n_bad} 个不一致"))
    if first is not None:
        name, st, err, rel, (rtol, atol) = first
        e = entries[name]
        if st == "shape":
            ref_shape, their_shape = result["shapes"][name]
            what = tr(f"shape {their_shape}, the reference's is {ref_shape}",
                      f"形状是 {their_shape}，参考轨迹中是 {ref_shape}")
        else:
            what = tr(f"max abs error {_fmt(err)}, {_fmt(rel)} of its largest entry; "
                      f"tolerance rtol {rtol:g}, atol {atol:g}",
                      f"最大绝对误差 {_fmt(err)}，是其最大元素的 {_fmt(rel)}；"
                      f"容差 rtol {rtol:g}，atol {atol:g}")
        lines.append(tr(f"first divergence: {name} ({what})", f"第一个不一致的张量：{name}（{what}）"))
        lines.append(tr(f"  it is: {e['formula']}", f"  它是：{e['formula']}"))
        if e["inputs"]:
            agrees, unknown = tr("agrees", "一致"), tr("not compared", "未比较")
            parts = [f"{i} ({agrees if status.get(i) == 'ok' else unknown})" for i in e["inputs"]]
            lines.append(tr("  computed from: ", "  由这些张量算出：") + ", ".join(parts))
            if all(status.get(i) == "ok" for i in e["inputs"]):
                lines.append(tr("  its inputs agree, so the step that computes it is where "
                                "the two implementations part",
                                "  它的输入都一致，所以两个实现正是在计算它的这一步分道扬镳"))
        compared = [n for n in result["downstream"] if n in status]
        wrong = [n for n in compared if status[n] != "ok"]
        lines.append(tr(f"  downstream: {len(result['downstream'])} tensors depend on it; of "
                        f"the {len(compared)} compared, {len(wrong)} diverge too"
                        + (f" (the last: {wrong[-1]})" if wrong else ""),
                        f"  下游：有 {len(result['downstream'])} 个张量依赖它；比较了其中 "
                        f"{len(compared)} 个，{len(wrong)} 个也不一致"
                        + (f"（最后一个：{wrong[-1]}）" if wrong else "")))
        others = [r[0] for r in rows if r[1] != "ok" and r[0] != name
                  and r[0] not in result["downstream"]]
        if others:
            lines.append(tr("  also diverging, not downstream of it: ", "  不在它下游、但也不一致的：")
                         + ", ".join(others[:8]) + (" ..." if len(others) > 8 else ""))
    for name, (a, b) in result["shapes"].items():
        lines.append(tr(f"shape mismatch: {name}: reference {a}, theirs {b}",
                        f"形状不同：{name}：参考轨迹 {a}，你的 {b}"))
    if result["missing"]:
        lines.append(tr(f"not in theirs ({len(result['missing'])}): ",
                        f"你的文件里没有的（{len(result['missing'])} 个）：")
                     + ", ".join(result["missing"][:12])
                     + (" ..." if len(result["missing"]) > 12 else ""))
    if result["extra"]:
        lines.append(tr(f"only in theirs, not compared ({len(result['extra'])}): ",
                        f"只在你的文件里、未比较的（{len(result['extra'])} 个）：")
                     + ", ".join(map(str, result["extra"][:12]))
                     + (" ..." if len(result["extra"]) > 12 else ""))
    return "\n".join(lines)
