"""The loss curve of a training run, drawn to a PNG (train() writes loss.png), and
the font that lets any plot show Chinese.

history is what a run records (and its checkpoint keeps):
    {"loss": [loss of step 0, step 1, ...],
     "evals": [{"iter": it, "train": estimate, "val": estimate}, ...]}
"""
from __future__ import annotations

import functools
import os

from .checkpoint import write_atomically
from .language import tr

CJK_FONT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fonts", "minigpt-cjk.otf")


def use_cjk_font():
    """Let matplotlib draw Chinese characters, on any machine: register the font minigpt
    ships (minigpt/fonts/: the corpus's and the notebooks' characters from Noto Sans
    CJK SC, under the SIL Open Font License) and make it the fallback of the default
    family: matplotlib then draws each character with the first font of
    rcParams["font.family"] that has it (Latin with the default, Chinese with ours).
    Returns its family name. Calling it again costs nothing: the font is registered once.
    """
    from matplotlib import rcParams
    name = _register_cjk_font()
    families = [f for f in rcParams["font.family"] if f != name]
    rcParams["font.family"] = families + [name]
    return name


def cjk_fallback(*texts):
    """use_cjk_font, and give these matplotlib Texts its fallback too: a Text keeps the
    fonts of the moment it was made (an Axes' title and labels: when the Axes was), so
    Chinese set on an Axes made before use_cjk_font would otherwise be empty boxes."""
    use_cjk_font()
    from matplotlib import rcParams
    for text in texts:
        text.set_fontfamily(rcParams["font.family"])


@functools.cache
def _register_cjk_font():
    """Add minigpt's CJK font to matplotlib's font list (once per process: addfont
    appends on every call) and return its family name."""
    from matplotlib import font_manager
    font_manager.fontManager.addfont(CJK_FONT)
    return font_manager.FontProperties(fname=CJK_FONT).get_name()


def draw_losses(ax, history, label_smoothing=0.0):
    """Per-step training loss (thin) and the periodic train/val estimates, on a
    matplotlib Axes (save_loss_plot's figure, or a notebook's); its labels follow
    minigpt.language (Chinese in the notebooks' Chinese edition).

    With label smoothing the per-step loss is the smoothed one the run descends
    (ops/loss.py), so it lies above the estimates, which are plain cross-entropy.
    """
    loss = history["loss"]
    step_label = (tr("train (step, smoothed)", "训练（每步，平滑后）") if label_smoothing
                  else tr("train (step)", "训练（每步）"))
    ax.plot(range(len(loss)), loss, lw=0.5, alpha=0.4, color="tab:blue", label=step_label)
    evals = history["evals"]
    if evals:
        its = [e["iter"] for e in evals]
        ax.plot(its, [e["train"] for e in evals], "o-", color="tab:blue", label=tr("train (estimate)", "训练（估计）"))
        ax.plot(its, [e["val"] for e in evals], "o-", color="tab:orange", label=tr("validation", "验证"))
    ax.set_xlabel(tr("iteration", "迭代步数"))
    ax.set_ylabel(tr("cross-entropy (nats / character)", "交叉熵（奈特 / 字符）"))
    ax.grid(alpha=0.3)


def save_loss_plot(history, path, title="", label_smoothing=0.0):
    """draw_losses as a PNG at path, written atomically.

    The figure is a bare matplotlib Figure, not one made by pyplot: it draws itself
    to the file and leaves pyplot alone, so a notebook calling train() keeps its
    inline plots and no window opens.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    # The labels may be Chinese (MINIGPT_LANG=zh), and so may a title: draw with
    # minigpt's CJK font as the fallback, inside rc_context so that the caller's
    # matplotlib settings are as they were afterwards.
    with rc_context():
        use_cjk_font()
        fig = Figure(figsize=(7, 4), dpi=100)
        ax = fig.subplots()
        draw_losses(ax, history, label_smoothing)
        ax.set_title(title, fontsize=9)
        ax.legend()
        fig.tight_layout()
        # A temp file of this process's own, renamed over the old plot when complete:
        # never a half-written PNG, and two processes never write the same temp file.
        write_atomically(path, lambda f: fig.savefig(f, format="png"), suffix=".tmp.png")
