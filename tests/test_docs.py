"""The examples in the docs still do what the docs say they do.

- Every `>>>` example in minigpt's docstrings runs (doctest), except those marked
  `# doctest: +SKIP` because they need a trained model.
- Every ```python block of the README that is a script, not a `>>>` session, runs
  and prints the output block that follows it. The digits that are round-off (a
  gradient check's error figures and its worst element) are compared as shapes,
  not digits, since they may differ on another CPU; everything else must match.
- The README's "Forget the (1 - s)" output is what that mistake really prints.
"""
import contextlib
import doctest
import importlib
import io
import pkgutil
import re
from pathlib import Path

import pytest

import minigpt

README = Path(__file__).resolve().parent.parent / "README.md"
MODULES = sorted(m.name for m in pkgutil.walk_packages(minigpt.__path__, "minigpt.")
                 if m.name != "minigpt.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def fenced_blocks(text):
    """[(language, code)] of every ``` block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


def readme_scripts():
    """[(code, expected output)]: each runnable python block and the plain block after it."""
    blocks = fenced_blocks(README.read_text(encoding="utf-8"))
    pairs = []
    for i, (lang, code) in enumerate(blocks):
        if lang == "python" and not code.lstrip().startswith(">>>"):
            assert i + 1 < len(blocks) and blocks[i + 1][0] == "", (
                f"README python block {code[:40]!r} has no output block after it")
            pairs.append((code, blocks[i + 1][1]))
    return pairs


def run_printing(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    return out.getvalue()


def roundoff_free(text):
    """The text with a gradient check's round-off digits replaced by placeholders."""
    text = re.sub(r"rel error \d\.\de[-+]\d\d", "rel error <e>", text)
    return re.sub(r"worst \[[\d, ]*\]: analytic \S+ numeric \S+", "worst <where>", text)


def test_the_readme_has_scripts_to_check():
    assert len(readme_scripts()) >= 2


@pytest.mark.parametrize("code, expected", readme_scripts(),
                         ids=lambda v: v.strip().splitlines()[0][:30] if "\n" in v else v)
def test_readme_script_prints_what_the_readme_shows(code, expected):
    assert roundoff_free(run_printing(code)) == roundoff_free(expected)


def test_readme_shows_what_the_swish_mistake_prints():
    """The block after "Forget the `(1 - s)`": the swish script with that factor removed."""
    text = README.read_text(encoding="utf-8")
    swish = next(code for code, _ in readme_scripts() if "swish" in code)
    wrong = swish.replace(" * (1 - s)", "")
    assert wrong != swish
    shown = re.search(r"Forget the `\(1 - s\)`.*?^```\n(.*?)^```", text, flags=re.M | re.S)
    assert shown, "the README no longer shows the (1 - s) mistake"
    printed = run_printing(wrong)
    assert printed.startswith("gradcheck FAIL")
    assert printed.splitlines()[0] == shown.group(1).splitlines()[0]   # a real error: digits
    assert roundoff_free(printed) == roundoff_free(shown.group(1))
