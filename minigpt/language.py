"""Which language a notebook speaks, so one code cell serves both editions.

The notebooks come in two editions built from one source (notebooks/build.py): the
English one in notebooks/ and the Chinese one in notebooks/zh/. Their prose cells
differ; their code cells are the same, character for character. What a code cell
prints or draws (a title, an axis label, a legend, a line of output) follows the
edition through tr():

    ax.set_title(tr("Attention weights", "注意力权重"))

The edition is, in this order:
    1. the environment variable MINIGPT_LANG ("en" or "zh"; a locale name such as
       zh_CN.UTF-8 or en-US counts as its language), if set (notebooks/build.py sets it
       when it runs an edition; set it yourself to override); any other value is named
       in a warning and English is spoken;
    2. in a Jupyter kernel, "zh" when the working directory is a Chinese edition's
       folder (notebooks/zh/ or notebooks/zh/exercises/): Jupyter, JupyterLab and VS
       Code start a notebook's kernel in the notebook's own folder;
    3. "en" otherwise (so the command-line tools speak English wherever they run).
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

LANGUAGES = ("en", "zh")
ENV = "MINIGPT_LANG"


def chosen_language(environ=None):
    """"en" or "zh" if MINIGPT_LANG is set (see the module doc), else None: the one
    reading of the variable, for the notebooks' edition and for the chat alike."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(ENV, "").strip()
    if not chosen:
        return None
    # "zh", "ZH", "zh_CN.UTF-8", "zh-Hans": the part before the first _ - . or @
    code = re.split(r"[_\-.@]", chosen, maxsplit=1)[0].lower()
    if code in LANGUAGES:
        return code
    # a warning, not an error: every tr() asks, and a typo must not stop a
    # training run or a notebook at its first printed line
    warnings.warn(f"{ENV} must be one of {', '.join(LANGUAGES)} (or a locale name "
                  f"such as zh_CN.UTF-8), got {chosen!r}; speaking English", stacklevel=3)
    return "en"


def notebook_language(environ=None, cwd=None, in_kernel=None) -> str:
    """"en" or "zh": the edition the running notebook belongs to (see the module doc).
    in_kernel: whether this is a Jupyter kernel (default: whether ipykernel is loaded)."""
    chosen = chosen_language(environ)
    if chosen:
        return chosen
    if not ("ipykernel" in sys.modules if in_kernel is None else in_kernel):
        return "en"
    here = Path.cwd() if cwd is None else Path(cwd)
    folders = [here.name, here.parent.name if here.name == "exercises" else ""]
    return "zh" if "zh" in folders else "en"


def tr(en: str, zh: str) -> str:
    """en in the English edition, zh in the Chinese one."""
    return zh if notebook_language() == "zh" else en
