"""Gradient checking: compare a hand-written backward with finite differences.

The idea. For a forward f(x) -> out and a random upstream gradient g (same shape as
out), define the scalar L(x) = sum(f(x) * g). Its gradient dL/dx is exactly what a
backward pass returns when given dout = g. Each element of that gradient can also be
estimated without any calculus, by nudging one input element both ways:

    dL/dx_i  ~  (L(x + h e_i) - L(x - h e_i)) / (2h)          (centered difference)

The centered difference has error O(h^2) (a one-sided one has O(h)), so in float64
with h = 1e-6 a correct backward agrees to ~1e-9 or better. We report, per tensor,

    rel_error = max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|)

where the maxima in the denominator run over *every* tensor checked together: the
error is measured against the scale of the whole gradient. Why not each tensor's own
scale? A finite difference cannot resolve a gradient much smaller than
~1e-16 * |L| / h ~ 1e-10 (round-off of L itself), and a saturated softmax can make a
whole tensor's true gradient 1e-12: measured against itself that tensor would fail
however right its backward is. Measured against the whole gradient it passes, while a
wrong term anywhere still shows far above the default threshold of 1e-7. Each
tensor's line also prints its own scale, so a suspiciously tiny one stands out.
Use float64: float32 round-off alone is ~1e-7 relative.

Choosing the step h. The centered difference errs by round-off, ~1e-16 * |L| / h,
and by truncation, ~h^2 * (third derivative of L) / 6; the default h = 1e-6 keeps
both far below the threshold for most layers. Where the outputs are O(1) but the
whole gradient is tiny, as for a saturated softmax or sigmoid, round-off can reach
the threshold by itself: a check that fails by a little there (1e-7 to 1e-6) may
pass at h = 1e-4, where round-off is 100x smaller (tests/test_ops.py, test_softmax,
works through one such row). A wrong backward fails at every h.

Use it on your own layer:

    >>> import numpy as np
    >>> from minigpt.gradcheck import gradcheck
    >>> def square_forward(x):          # out = x^2, cache x
    ...     return x * x, x
    >>> def square_backward(dout, x):   # d(x^2)/dx = 2x
    ...     return {"x": 2 * x * dout}
    >>> x = np.random.default_rng(0).standard_normal((3, 4))
    >>> report = gradcheck(square_forward, square_backward, {"x": x})
    >>> report.ok
    True
    >>> print(report)                   # the error's digits are round-off: ... here
    gradcheck PASS: max rel error ... (threshold 1e-07)
      ok   x                        (3, 4)         rel error ...  scale 3.4e+00  worst [...]: analytic ... numeric ...
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field

import numpy as np

from .language import notebook_language, tr


ERROR_FLOOR = 1e-16        # where GradcheckReport.plot draws a rel_error of exactly 0


@dataclass
class TensorCheck:
    """The comparison for one input tensor."""
    name: str
    shape: tuple
    rel_error: float
    worst_index: tuple
    analytic: float        # analytic gradient at the worst element
    numeric: float         # numeric gradient at the worst element
    checked: int           # how many elements were perturbed
    scale: float           # max |gradient| of this tensor (analytic or numeric)

    def line(self, threshold):
        mark = "ok  " if self.rel_error <= threshold else "FAIL"
        head = f"  {mark} {self.name:<24} {str(self.shape):<14} "
        return head + tr(f"rel error {self.rel_error:.1e}  scale {self.scale:.1e}"
                         f"  worst {list(self.worst_index)}: analytic {self.analytic:+.10g}"
                         f" numeric {self.numeric:+.10g}",
                         f"相对误差 {self.rel_error:.1e}  量级 {self.scale:.1e}"
                         f"  最差处 {list(self.worst_index)}：解析 {self.analytic:+.10g}"
                         f" 数值 {self.numeric:+.10g}")


@dataclass
class GradcheckReport:
    """Per-tensor results: `ok` is the verdict, `str(report)` a readable table,
    `report["x"]` one tensor's TensorCheck, `report.plot()` a bar chart."""
    checks: list = field(default_factory=list)
    threshold: float = 1e-7

    @property
    def ok(self) -> bool:
        return all(c.rel_error <= self.threshold for c in self.checks)

    @property
    def max_rel_error(self) -> float:
        return max((c.rel_error for c in self.checks), default=0.0)

    def __getitem__(self, name) -> TensorCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no tensor {name!r} in this report; checked: "
                       f"{[c.name for c in self.checks]}")

    def plot(self, ax=None, title=None):
        """A bar per tensor: its rel_error on a log axis, the threshold as a dashed
        line, bars of failing tensors in red. Draws on ax (a new figure if None) and
        returns the matplotlib Axes.

        A rel_error of exactly 0 (every difference agrees to the last bit) has no
        place on a log axis; its bar is drawn at ERROR_FLOOR = 1e-16, about float64's
        relative round-off, below which no finite difference can see anyway.
        """
        import matplotlib.pyplot as plt      # here: `import minigpt` needs no matplotlib
        n = len(self.checks)
        if ax is None:
            _, ax = plt.subplots(figsize=(min(12.0, 3.0 + 0.3 * n), 3.8), layout="tight")
        errors = [max(c.rel_error, ERROR_FLOOR) for c in self.checks]
        colors = ["tab:blue" if c.rel_error <= self.threshold else "tab:red"
                  for c in self.checks]
        ax.bar(range(n), errors, color=colors)
        ax.axhline(self.threshold, color="red", ls="--",
                   label=tr(f"threshold {self.threshold:g}", f"阈值 {self.threshold:g}"))
        ax.set_xticks(range(n), [c.name for c in self.checks], rotation=60, ha="right",
                      fontsize=8 if n <= 20 else 7)
        ax.set_yscale("log")
        ax.set_ylabel(tr("relative error", "相对误差"))
        verdict = "PASS" if self.ok else "FAIL"
        ax.set_title(title or tr(f"gradcheck {verdict}: max rel error {self.max_rel_error:.1e}",
                                 f"gradcheck {verdict}：最大相对误差 {self.max_rel_error:.1e}"))
        legend = ax.legend()
        if notebook_language() == "zh":          # Chinese labels, on whoever's ax
            from .plots import cjk_fallback
            cjk_fallback(ax.title, ax.yaxis.label, *legend.get_texts())
        return ax

    def __str__(self):
        verdict = "PASS" if self.ok else "FAIL"
        head = tr(f"gradcheck {verdict}: max rel error {self.max_rel_error:.1e} "
                  f"(threshold {self.threshold:.0e})",
                  f"gradcheck {verdict}：最大相对误差 {self.max_rel_error:.1e}"
                  f"（阈值 {self.threshold:.0e}）")
        return "\n".join([head] + [c.line(self.threshold) for c in self.checks])


def gradient_scale(analytic, numeric):
    """max(max|a|, max|n|): the size of a gradient, against which errors are measured."""
    return float(max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0)))


def relative_error(analytic, numeric, scale=None):
    """max|a - n| / scale, scale defaulting to gradient_scale(a, n); 0 if both are 0."""
    scale = gradient_scale(analytic, numeric) if scale is None else scale
    diff = np.abs(analytic - numeric).max(initial=0.0)
    return 0.0 if scale == 0.0 else float(diff / scale)


def numerical_gradient(loss_fn, x, h=1e-6, indices=None):
    """Centered differences of the scalar loss_fn() w.r.t. the array x, perturbed in place.

    indices: the flat element indices to perturb (all of them if None); the others
    are left as NaN in the returned array.
    """
    grad = np.full(x.shape, np.nan)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)   # views: writes reach x and grad
    if not np.shares_memory(flat_x, x):   # a transposed x reshapes to a copy: nudges to it
        raise ValueError("numerical_gradient needs a C-contiguous x: nudging a copy "
                         "would leave the loss unchanged (pass np.ascontiguousarray(x))")
    for i in range(x.size) if indices is None else indices:
        old = flat_x[i]
        flat_x[i] = old + h
        plus = loss_fn()
        flat_x[i] = old - h
        minus = loss_fn()
        flat_x[i] = old                                 # restore exactly
        flat_g[i] = (plus - minus) / (2 * h)
    return grad


def _as_dict(grads, names):
    if isinstance(grads, dict):
        return grads
    if isinstance(grads, np.ndarray):
        grads = (grads,)
    return dict(zip(names, grads))


def _sample(rng, size, max_elements):
    """Which flat elements to perturb: all, or max_elements drawn at random."""
    if max_elements is None or size <= max_elements:
        return None
    return rng.choice(size, size=max_elements, replace=False)


def _report(pairs, threshold):
    """A GradcheckReport from {name: (analytic, numeric)}; numeric is NaN where unchecked."""
    seen = {name: ~np.isnan(n) for name, (a, n) in pairs.items()}
    whole = max((gradient_scale(a[seen[name]], n[seen[name]])
                 for name, (a, n) in pairs.items()), default=0.0)
    report = GradcheckReport(threshold=threshold)
    for name, (a, n) in pairs.items():
        a, ok = np.asarray(a, dtype=np.float64), seen[name]
        diffs = np.where(ok, np.abs(a - np.nan_to_num(n)), -1.0)
        worst = np.unravel_index(int(np.argmax(diffs)), a.shape)
        report.checks.append(TensorCheck(
            name=name, shape=a.shape, rel_error=relative_error(a[ok], n[ok], whole),
            worst_index=tuple(int(i) for i in worst), analytic=float(a[worst]),
            numeric=float(n[worst]), checked=int(ok.sum()),
            scale=gradient_scale(a[ok], n[ok])))
    return report


def gradcheck(forward, backward, inputs, *, wrt=None, h=1e-6, threshold=1e-7, seed=0,
              max_elements=None):
    """Check backward against centered finite differences of forward, in float64.

    forward(**inputs) -> out, or (out, cache) as minigpt's ops return.
    backward(dout, cache) -> dict {name: grad}, or a tuple/array in the order of `wrt`.
    inputs: {name: array}; floating arrays are copied to float64, anything else
        (token ids, ints, flags) is passed through unchanged and not checked.
    wrt: names to check (default: every floating-point input array).
    max_elements: perturb at most this many random elements per tensor (None: all).
    Returns a GradcheckReport; `report.ok` is the verdict, print it for the table.
    """
    rng = np.random.default_rng(seed)
    inputs = {k: np.array(v, dtype=np.float64)
              if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating) else v
              for k, v in inputs.items()}
    if wrt is None:
        wrt = [k for k, v in inputs.items()
               if isinstance(v, np.ndarray) and v.dtype == np.float64]

    def run():
        result = forward(**inputs)
        return result if isinstance(result, tuple) else (result, None)

    out, cache = run()
    dout = rng.standard_normal(np.shape(out))        # random upstream gradient
    analytic = _as_dict(backward(dout, cache), wrt)

    def loss():                                      # L = sum(f(x) * dout)
        return float(np.sum(run()[0] * dout))

    pairs = {}
    for name in wrt:
        x = inputs[name]
        if np.shape(analytic[name]) != x.shape:
            raise ValueError(f"backward returned a gradient of shape "
                             f"{np.shape(analytic[name])} for {name!r}, which has shape "
                             f"{x.shape}")
        numeric = numerical_gradient(loss, x, h, _sample(rng, x.size, max_elements))
        pairs[name] = (analytic[name], numeric)
    return _report(pairs, threshold)


def gradcheck_model(model, idx, targets, *, h=1e-6, threshold=1e-7, max_elements=None,
                    seed=0, train=False):
    """Check every parameter gradient of a GPT (built with dtype="float64") on one batch.

    With train=True and dropout > 0 the same dropout masks are used in every forward
    (a fresh generator seeded with `seed` each call), so the loss is a smooth
    function of the parameters and the check is exact.
    """
    if model.config.dtype != "float64":
        raise ValueError("gradcheck_model needs a float64 model: "
                         "GPT(config.replace(dtype='float64'))")
    rng = np.random.default_rng(seed)

    def loss():
        return model.forward(idx, targets, train=train, rng=np.random.default_rng(seed))[1]

    loss()
    analytic = model.backward()
    pairs = {}
    for name, p in model.params.items():       # perturbed in place, restored exactly
        numeric = numerical_gradient(loss, p, h, _sample(rng, p.size, max_elements))
        pairs[name] = (analytic[name], numeric)
    return _report(pairs, threshold)


def check(name, forward, backward, inputs, **kwargs):
    """Gradcheck a backward you wrote and print one line, PASS or FAIL; return the verdict.

    For exercises: a backward that still raises NotImplementedError is a FAIL that
    says so, and one that raises anything else (a shape that does not broadcast, a
    typo) is a FAIL that names the error and the line it came from, not a traceback
    that stops the notebook. kwargs go to gradcheck (wrt, threshold, ...).
    """
    ran, report = _run_yours(name, lambda: gradcheck(forward, backward, inputs, **kwargs))
    if not ran:
        return False
    worst = max(report.checks, key=lambda c: c.rel_error)
    verdict = "PASS" if report.ok else "FAIL"
    print(tr(f"{verdict} {name}: max rel error {worst.rel_error:.1e} "
             f"(in d{worst.name}; threshold {report.threshold:.0e})",
             f"{verdict} {name}：最大相对误差 {worst.rel_error:.1e}"
             f"（在 d{worst.name} 中；阈值 {report.threshold:.0e}）"))
    return report.ok


def check_close(name, mine, reference, *args, rtol=1e-7, atol=1e-12):
    """Check a function you wrote against the library's and print one line, PASS or
    FAIL; return the verdict. For exercises that are not gradients (a sampling rule,
    an optimiser step, a schedule).

    Both functions get their own deep copy of args (so one that updates an array in
    place cannot change what the other sees); their results (arrays, numbers, or
    tuples, lists and dicts of them) must agree to within atol + rtol * |reference|.
    A function that still raises NotImplementedError, or raises anything else, is a
    FAIL that says so, as in check().
    """
    import copy
    ran, got = _run_yours(name, lambda: mine(*copy.deepcopy(args)))
    if not ran:
        return False
    want = reference(*copy.deepcopy(args))
    problem = _difference(got, want, rtol, atol)
    if problem:
        print(tr(f"FAIL {name}: {problem}", f"FAIL {name}：{problem}"))
    else:
        print(tr(f"PASS {name}: matches minigpt's", f"PASS {name}：与 minigpt 的结果一致"))
    return problem is None


def _run_yours(name, run):
    """(True, run()), or (False, None) after printing the FAIL line for a function that
    is not written yet (NotImplementedError) or raises (a bug in the code under check)."""
    try:
        return True, run()
    except NotImplementedError:
        print(tr(f"FAIL {name}: not written yet (replace the NotImplementedError)",
                 f"FAIL {name}：还没有写（请替换掉 raise NotImplementedError 那一行）"))
    except Exception as error:
        print(tr(f"FAIL {name}: {type(error).__name__}: {error} ({_where(error)})",
                 f"FAIL {name}：{type(error).__name__}: {error}（{_where(error)}）"))
    return False, None


def _difference(got, want, rtol, atol, where=None):
    """None if got matches want, else a short description of the first difference."""
    where = tr("the result", "结果") if where is None else where
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return tr(f"{where} should be a dict with keys {sorted(want)}",
                      f"{where}应当是键为 {sorted(want)} 的 dict")
        pairs = [(got[k], want[k], f"{where}[{k!r}]") for k in want]
    elif isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return tr(f"{where} should be a sequence of {len(want)} items",
                      f"{where}应当是含 {len(want)} 项的序列")
        pairs = [(g, w, f"{where}[{i}]") for i, (g, w) in enumerate(zip(got, want))]
    else:
        pairs = None
    if pairs is not None:                # the first item that differs, if any
        for g, w, at in pairs:
            problem = _difference(g, w, rtol, atol, at)
            if problem:
                return problem
        return None
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return tr(f"{where} has shape {g.shape}, expected {w.shape}",
                  f"{where}的形状是 {g.shape}，应为 {w.shape}")
    if w.dtype.kind in "biu":
        bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
        return None if bad.size == 0 else tr(f"{where} differs at {bad.size} entries",
                                             f"{where}有 {bad.size} 个元素不同")
    gf, wf = g.astype(np.float64), w.astype(np.float64)
    if not np.all(np.isfinite(gf) == np.isfinite(wf)) or \
            not np.allclose(gf, wf, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.nanmax(np.abs(gf - wf)) if gf.size else 0.0
        return tr(f"{where} is off by up to {diff:.2e} (tolerance {atol:g} + {rtol:g} x |minigpt's|)",
                  f"{where}最多差 {diff:.2e}（容差 {atol:g} + {rtol:g} × |minigpt 的值|）")
    return None


def _where(error):
    """'in f, line n: <source>' for the last frame of error's traceback outside NumPy
    and minigpt, i.e. in the code under check (else the last frame of all)."""
    frames = traceback.extract_tb(error.__traceback__)
    library = (os.path.dirname(np.__file__), os.path.dirname(__file__))
    own = [f for f in frames if not f.filename.startswith(library)]
    if not own and frames and os.path.samefile(frames[-1].filename, __file__):
        return tr("found by gradcheck, in what your function returned",   # its shape/key checks
                  "由 gradcheck 在你的函数的返回值中发现")
    f = (own or frames[-1:])[-1]
    return tr(f"in {f.name}, line {f.lineno}", f"在 {f.name} 第 {f.lineno} 行") + (
        f": {f.line}" if f.line else "")
