"""The notebooks: they run, they match their sources, and the exercises work.

Every notebook is rebuilt from notebooks/src/ and executed in a fresh Jupyter kernel
in quick mode (MINIGPT_QUICK=1, the notebooks' one switch), so a failed assertion in
any cell fails the test with the cell's traceback. The committed .ipynb files must be
exactly what `make notebooks` makes from the sources, executed in full mode; and the
student editions exactly what `make exercises` makes. In the exercises, each blank
must make its check cell print FAIL, and in the solution notebooks the same check
cells print PASS.

Both editions are tested alike: the English one (notebooks/) and the Chinese one
(notebooks/zh/), built from the same sources; their code cells must be identical and
their prose must be in their own language.
"""
import ast
import importlib.util
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMEOUT = 180          # seconds per cell; quick mode needs far less

_spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "notebooks" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NAMES = build.names()
LANGS = build.LANGUAGES
EDITIONS = [(name, lang) for lang in LANGS for name in NAMES]
EXERCISE_EDITIONS = [(name, lang) for lang in LANGS for name in build.EXERCISE_SOURCES]
CJK = re.compile(r"[\u4e00-\u9fff]")


def cells_key(nb):
    """What a notebook says, independent of outputs: type, source and tags per cell."""
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", [])))
            for c in nb.cells]


def stdout_of(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stdout")


def check_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and build.has_tag(c, "check")]


def test_there_are_seven_notebooks_in_reading_order():
    assert [n[:2] for n in NAMES] == ["00", "01", "02", "03", "04", "05", "06"], NAMES


@pytest.mark.parametrize("name,lang", EDITIONS)
def test_committed_notebook_is_built_from_its_source_and_executed_in_full(name, lang):
    path = build.notebook_path(name, lang)
    assert path.exists(), f"{path} is missing: run `make notebooks`"
    committed = nbformat.read(path, as_version=4)
    assert cells_key(committed) == cells_key(build.build(name, lang)), (
        f"{path} differs from notebooks/src/{name}.py: run `make notebooks`")
    assert committed.metadata.get("minigpt", {}).get("executed_in") == "full"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell was never run"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        "cells were not run once, top to bottom")
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)


@pytest.mark.parametrize("name", NAMES)
def test_both_editions_share_every_code_cell(name):
    """Only prose differs: same cells in the same order, same code, same tags."""
    en, zh = build.build(name, "en"), build.build(name, "zh")
    assert [c.cell_type for c in en.cells] == [c.cell_type for c in zh.cells]
    for a, b in zip(en.cells, zh.cells):
        assert a.get("metadata") == b.get("metadata")
        if a.cell_type == "code":
            assert a.source == b.source
    committed = [nbformat.read(build.notebook_path(name, lang), as_version=4) for lang in LANGS]
    assert [c.source for c in committed[0].cells if c.cell_type == "code"] == \
        [c.source for c in committed[1].cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", NAMES)
def test_chinese_prose_is_chinese_and_english_prose_is_english(name):
    en, zh = build.build(name, "en"), build.build(name, "zh")
    for a, b in zip(en.cells, zh.cells):
        if a.cell_type != "markdown":
            continue
        words = re.sub(r"\$[^$]*\$|`[^`]*`", "", a.source)       # prose outside math and code
        if re.search(r"[A-Za-z]{3,} [A-Za-z]{3,}", words):
            assert CJK.search(b.source) and b.source != a.source, (
                f"{name}: no Chinese twin for: {a.source[:80]!r}")


SAYS = {"set_title", "set_xlabel", "set_ylabel", "suptitle", "set_text", "text", "print",
        "annotate", "Markdown"}


def _strings_outside_tr(node):
    """The string constants in an expression, except those inside a tr(...) call."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "tr":
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return [s for child in ast.iter_child_nodes(node) for s in _strings_outside_tr(child)]


def _english_literals(code):
    """Strings a plot or a print shows that hold English words outside tr()."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        shown = list(node.args) if called in SAYS else []
        shown += [k.value for k in node.keywords if k.arg in ("label", "title")]
        for arg in shown:
            for text in _strings_outside_tr(arg):
                if re.search(r"[A-Za-z]{3,}[ ,;:]+[A-Za-z]{3,}", re.sub(r"\$[^$]*\$", "", text)):
                    found.append(text)
    return found


@pytest.mark.parametrize("name", NAMES)
def test_what_plots_and_prints_say_follows_the_edition(name):
    """English words a code cell draws or prints must go through tr(en, zh), so the
    Chinese edition shows them in Chinese."""
    nb = build.build(name, "en")
    untranslated = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = "\n".join(l for l in cell.source.splitlines()
                             if not l.lstrip().startswith(("%", "!")))
            untranslated += _english_literals(code)
    assert not untranslated, f"{name}: wrap these in tr(en, zh): {untranslated[:5]}"


NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?")


def numbers_shown(cell):
    """The measured numbers a code cell's outputs show (printed text, Markdown, reprs:
    those with a decimal point, an exponent or a thousands comma, or five digits or
    more), sorted: the editions word their lines differently, even in another order."""
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "")
                   + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))
    numbers = [n.lstrip("+") for n in NUMBER.findall(text)]     # "+2,048" is "多出 2,048"
    return sorted(n for n in numbers                     # measured values, not "第 3 步"
                  if any(c in n for c in ".,e") or len(n.lstrip("-")) >= 5)


@pytest.mark.parametrize("name", NAMES)
def test_both_editions_show_the_same_numbers(name):
    """Same seeds, same code: every number the Chinese edition prints is one the English
    edition printed (cells tagged "timing" measure the clock and are left out)."""
    en, zh = (nbformat.read(build.notebook_path(name, lang), as_version=4) for lang in LANGS)
    for i, (a, b) in enumerate(zip(en.cells, zh.cells)):
        if a.cell_type == "code" and not build.has_tag(a, "timing"):
            assert numbers_shown(a) == numbers_shown(b), f"{name}, cell {i}: {a.source[:60]!r}"


@pytest.mark.parametrize("name,lang", EDITIONS)
def test_notebook_runs_in_quick_mode(name, lang, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))     # the kernel's temp files (06's model)
    nb = build.execute(build.build(name, lang), quick=True, timeout=CELL_TIMEOUT, lang=lang)
    for cell in check_cells(nb):       # solution notebooks: every exercise check passes
        lines = stdout_of(cell).splitlines()
        assert len(lines) == 1 and lines[0].startswith("PASS "), lines
    stderr = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.get("name") == "stderr")
    for warning in ("missing from font",       # every character a plot draws ...
                    "does not have a glyph"):  # ... also inside $math$, which has no fallback
        assert warning not in stderr, stderr


@pytest.mark.parametrize("name,lang", EXERCISE_EDITIONS)
def test_committed_exercises_are_generated_from_the_solutions(name, lang):
    path = build.exercise_path(name, lang)
    assert path.exists(), f"{path} is missing: run `make exercises`"
    committed = nbformat.read(path, as_version=4)
    expected = build.make_exercise(build.build(name, lang), name, lang)
    assert cells_key(committed) == cells_key(expected), (
        f"{path.name} differs from its solution notebook: run `make exercises`")
    assert not any(c.get("outputs") for c in committed.cells if c.cell_type == "code")


@pytest.mark.parametrize("name,lang", EXERCISE_EDITIONS)
def test_blank_exercises_fail_their_checks(name, lang):
    solution = build.build(name, lang)
    exercise = nbformat.read(build.exercise_path(name, lang), as_version=4)
    blanks = [c for c in exercise.cells if 'raise NotImplementedError("fill in' in c.source]
    regions = sum(c.source.count(build.BEGIN) for c in solution.cells)
    assert len(blanks) == regions == len(check_cells(exercise)) >= 1   # every notebook
    assert not any(build.BEGIN in c.source or build.has_tag(c, "solution-only")
                   for c in exercise.cells)
    build.execute(exercise, quick=True, cwd=build.exercise_path(name, lang).parent,
                  timeout=CELL_TIMEOUT, lang=lang)
    for cell in check_cells(exercise):   # runs to the end; every check says FAIL
        lines = stdout_of(cell).splitlines()
        assert len(lines) == 1 and lines[0].startswith("FAIL "), lines


def test_blanking_keeps_indentation_and_refuses_broken_markers():
    source = "def f(x):\n    y = 1\n    # BEGIN SOLUTION\n    y = 2 * x\n    # END SOLUTION\n    return y"
    assert build.blank_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("fill in this function")\n    return y')
    for broken in ("# BEGIN SOLUTION\nx", "x\n# END SOLUTION",
                   "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"):
        with pytest.raises(ValueError):
            build.blank_solutions(broken)
    assert build.unassert('x = 1\nassert check("a", f, g, inputs)') == 'x = 1\ncheck("a", f, g, inputs)'
    assert build.unassert('assert check("a", f,\n             g)\nassert ok') == (
        'check("a", f,\n      g)\nassert ok')                # continuation lines stay aligned


def test_percent_format_parser():
    cells = build.parse('# %% [markdown]\n# # Title\n# text\n\n# %% tags=["check"]\nx = 1\n\n')
    assert [(c.cell_type, c.source) for c in cells] == [("markdown", "# Title\ntext"),
                                                        ("code", "x = 1")]
    assert cells[1].metadata.tags == ["check"]


def test_chinese_lines_are_joined_inside_a_paragraph_only():
    text = "第一行，\n第二行。\nEnglish `x`\n中文\n\n## 标题\n正文\n1. 列表\n2. 第二项\n| 表 |\n| 格 |"
    assert build.join_chinese_lines(text) == (
        "第一行，第二行。\nEnglish `x`\n中文\n\n## 标题\n正文\n1. 列表\n2. 第二项\n| 表 |\n| 格 |")


def test_kernel_is_this_interpreter():
    """The notebooks must run in the venv that has minigpt, not some other Python."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, minigpt\nprint(sys.executable)")])
    build.execute(nb, quick=True, timeout=60)
    assert stdout_of(nb.cells[0]).strip() == sys.executable


@pytest.mark.parametrize("folder,expected", [("zh/exercises", "zh"), ("exercises", "en")])
def test_a_notebook_opened_in_the_chinese_folder_speaks_chinese(tmp_path, monkeypatch,
                                                                folder, expected):
    """What a student gets: Jupyter starts the kernel in the notebook's folder, with no
    MINIGPT_LANG set, and tr() follows the folder."""
    from nbclient import NotebookClient
    monkeypatch.delenv("MINIGPT_LANG", raising=False)
    (tmp_path / folder).mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from minigpt.language import tr\nprint(tr('en', 'zh'))")])
    build.ensure_kernel()
    NotebookClient(nb, kernel_name=build.KERNEL, timeout=60,
                   resources={"metadata": {"path": str(tmp_path / folder)}}).execute()
    assert stdout_of(nb.cells[0]).strip() == expected


def test_notebook_06_uses_a_shared_checkpoint_instead_of_training(tmp_path, monkeypatch):
    """A class shares one trained model: MINIGPT_CHECKPOINT makes notebook 6 load it."""
    from minigpt.train import train
    run = tmp_path / "shared"
    train("tiny", out_dir=str(run), progress=False, out=open(os.devnull, "w"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("MINIGPT_CHECKPOINT", str(run / "ckpt.npz"))
    nb = build.execute(build.build("06_chat"), quick=True, timeout=CELL_TIMEOUT)
    out = "\n".join(stdout_of(c) for c in nb.cells if c.cell_type == "code")
    assert f"loaded {run / 'ckpt.npz'} (20 steps) instead of training" in out
    assert "iter " not in out                    # no training log: nothing was trained
