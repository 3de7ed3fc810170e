"""Build minigpt's notebooks from plain-Python sources, run them, and derive the exercises.

The sources are `notebooks/src/NN_name.py`, in the "percent" format most editors
understand (VS Code, PyCharm, Spyder, jupytext):

    # %% [markdown]
    # ## A heading
    # Prose, and formulas in LaTeX: $\\mathrm{softmax}(z)_i = e^{z_i} / \\sum_j e^{z_j}$
    # %%
    x = np.arange(3)            # a code cell
    # %% tags=["check"]
    assert check("my backward", ...)

Every prose cell is written in both languages, English first and its Chinese twin
straight after it; the Chinese edition (notebooks/zh/) takes the twins, the English
one (notebooks/) the originals, and both share every code cell unchanged:

    # %% [markdown]
    # ## 2. The table
    # %% [markdown] lang="zh"
    # ## 2. 位置编码表

What a code cell prints or draws follows the edition through minigpt.language.tr:
`ax.set_title(tr("Attention weights", "注意力权重"))`.

A cell marker may carry tags. Two of them matter to the exercises:
    check          a verdict cell: it checks code the reader wrote (minigpt.gradcheck's
                   check for a gradient, check_close against the library's own function
                   otherwise) and prints ONE line starting with PASS or FAIL. In the
                   solution notebook it is asserted; in the exercise edition the leading
                   `assert ` is dropped, so an unfinished exercise prints FAIL and the
                   notebook runs on.
    solution-only  kept in the solution notebook, left out of the exercise edition
                   (e.g. comparing the reader's function with the library's).
And one to the editions: `timing` marks a cell that prints what the clock measured,
the one place where the two editions' numbers may differ (tests/test_notebooks.py).
Inside code, the lines between `# BEGIN SOLUTION` and `# END SOLUTION` are the part a
student writes; the exercise edition replaces them with a `raise NotImplementedError`.

Commands (the Makefile calls them):
    python notebooks/build.py notebooks [NAME ...]  write notebooks/NN_name.ipynb and
                                 notebooks/zh/NN_name.ipynb and execute them in full
                                 mode, storing every output
    python notebooks/build.py exercises [NAME ...]  write notebooks/exercises/*.ipynb and
                                 notebooks/zh/exercises/*.ipynb (student editions of
                                 every notebook, without outputs)
    --lang en|zh|all             only one edition (default: all)
    --quick                      execute with MINIGPT_QUICK=1 (what the tests do)
    --no-execute                 write the notebooks without running them

The quick/full switch is ONE environment variable, MINIGPT_QUICK, read by the first
code cell of every notebook: "1" shrinks the slow cells (training, whole-model checks).
An executed notebook records in its metadata ("minigpt") the mode it ran in and the
commit of minigpt/ it ran against. Edit the sources, never the .ipynb files: the tests
check that each .ipynb is exactly what its source builds.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from minigpt.checkpoint import write_atomically

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
EXERCISES = HERE / "exercises"
QUICK_ENV = "MINIGPT_QUICK"
LANG_ENV = "MINIGPT_LANG"
EXERCISE_SOURCES = tuple(sorted(p.stem for p in SRC.glob("[0-9][0-9]_*.py")))  # all of them
KERNEL = "python3"

_MARKER = re.compile(r'^# %%(?P<md> \[markdown\])?(?:\s+lang="(?P<lang>\w+)")?'
                     r"(?:\s+tags=(?P<tags>\[.*\]))?\s*$")
LANGUAGES = ("en", "zh")        # the editions: notebooks/ and notebooks/zh/
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


# ----------------------------------------------------------------------------- sources
def names() -> list[str]:
    """Every notebook source, in reading order: ['01_attention', ...]."""
    return sorted(p.stem for p in SRC.glob("[0-9][0-9]_*.py"))


def parse(text: str, lang: str = "en") -> list:
    """Percent-format text -> the `lang` edition's list of nbformat cells (tags in
    cell.metadata.tags).

    Every prose cell is written twice: `# %% [markdown]` in English, then straight
    after it `# %% [markdown] lang="zh"` in Chinese. The English edition keeps the
    first, the Chinese edition the second, in the first one's place (with its tags);
    code cells are shared. A Chinese cell that follows no English prose cell, or (for
    the Chinese edition) an English prose cell without its Chinese twin, is an error
    naming the line, so the two editions cannot drift apart."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    cells, kind, tags, lines, start = [], None, [], [], 0
    cell_lang, previous = None, None      # previous: the English prose cell awaiting its twin

    def flush():
        nonlocal previous
        if kind is None:
            return
        while lines and not lines[-1].strip():
            lines.pop()
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in lines)
            cell = new_markdown_cell(body)
        else:
            cell = new_code_cell("\n".join(lines))
        if tags:
            cell.metadata["tags"] = list(tags)
        if cell_lang == "zh":
            cell.source = join_chinese_lines(cell.source)
            if previous is None:
                raise ValueError(f"line {start}: a lang=\"zh\" cell must follow the "
                                 "English prose cell it translates")
            if lang == "zh":
                cell.metadata = previous[0].metadata
                cells[cells.index(previous[0])] = cell
            previous = None
            return
        if previous is not None and lang == "zh":
            raise ValueError(f"line {previous[1]}: this prose cell has no Chinese twin "
                             "(a '# %% [markdown] lang=\"zh\"' cell right after it)")
        previous = (cell, start) if kind == "markdown" else None
        cells.append(cell)

    for number, line in enumerate(text.splitlines(), 1):
        m = _MARKER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            cell_lang = m.group("lang") or "en"
            if cell_lang not in ("en", "zh") or (cell_lang == "zh" and kind != "markdown"):
                raise ValueError(f"line {number}: only prose cells carry lang=\"zh\"")
            tags = ast.literal_eval(m.group("tags")) if m.group("tags") else []
            lines, start = [], number
        elif kind is not None:
            lines.append(line)
    flush()
    if previous is not None and lang == "zh":
        raise ValueError(f"line {previous[1]}: this prose cell has no Chinese twin "
                         "(a '# %% [markdown] lang=\"zh\"' cell right after it)")
    return cells


_WIDE = r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef\u201c\u201d\u2018\u2019\u2014\u2026]"
_CHINESE_BREAK = re.compile(rf"(?<={_WIDE})\n(?=[ \t]*{_WIDE})")


def join_chinese_lines(text: str) -> str:
    """Drop the line breaks that fall between two Chinese characters (or full-width
    punctuation marks) inside a paragraph.

    Markdown turns a line break inside a paragraph into a space, which English needs
    and Chinese does not: browsers show it as a gap in the middle of a sentence. The
    sources keep their short lines (easy to edit and to diff); the notebook gets
    whole lines. A break before a heading, list item, table row or formula is kept,
    since those lines do not start with a Chinese character, and so is one after a
    heading."""
    lines = text.split("\n")
    out = [lines[0]] if lines else []
    for line in lines[1:]:
        joined = out[-1] + "\n" + line
        if not out[-1].lstrip().startswith(("#", "|")) and _CHINESE_BREAK.search(joined):
            out[-1] = out[-1] + line.lstrip()
        else:
            out.append(line)
    return "\n".join(out)


def numbered(cells: list) -> list:
    """Give the cells stable ids (cell-000, cell-001, ...) instead of nbformat's random
    ones, so rebuilding a notebook changes its file only where its content changed."""
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:03d}"
    return cells


def build(name: str, lang: str = "en") -> nbformat.NotebookNode:
    """The `lang` edition of solution notebook `name` (e.g. '01_attention'), not executed."""
    text = (SRC / f"{name}.py").read_text(encoding="utf-8")
    nb = new_notebook(cells=numbered(parse(text, lang)))
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# ----------------------------------------------------------------------------- exercises
def has_tag(cell, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def blank_solutions(source: str) -> str:
    """Replace each BEGIN/END SOLUTION region by a NotImplementedError at its indent."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError("nested '# BEGIN SOLUTION'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f'{indent}raise NotImplementedError("fill in this function")')
        elif stripped.startswith(END):
            if not inside:
                raise ValueError("'# END SOLUTION' without a BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("'# BEGIN SOLUTION' without an END")
    return "\n".join(out)


def unassert(source: str) -> str:
    """`assert check(...)` -> `check(...)`: a FAIL must print, not stop the notebook.
    The call's continuation lines move left with it, so they stay aligned."""
    out, depth = [], 0
    for line in source.splitlines():
        if depth > 0:                                  # inside the call
            if line.startswith(" " * len("assert ")):
                line = line[len("assert "):]
        elif re.match(r"assert check\w*\(", line):
            line = line[len("assert "):]
        else:
            out.append(line)
            continue
        depth += line.count("(") - line.count(")")
        out.append(line)
    return "\n".join(out)


EXERCISE_INTRO = {"en": """\
# Student edition: {title}

This is the exercise version of `notebooks/{name}.ipynb`. Every cell that says
`# YOUR CODE HERE` is a function for you to write (most are backward passes); the
cell after it checks your function and prints **PASS** or **FAIL** in one line
(a gradient against finite differences with `minigpt.gradcheck`, anything else
against minigpt's own function).
Run the cells from the top. The prose and formulas above each exercise are all you
need; the solution notebook has the answers (look only after you tried!).

Generated by `make exercises` from the solution notebook: do not edit this file.""",
                  "zh": """\
# 学生版：{title}

这是 `notebooks/zh/{name}.ipynb` 的练习版。凡是写着 `# YOUR CODE HERE` 的单元格，
都是留给你写的函数（大多是反向传播）；紧接着的那个单元格会检查你的函数，并用一行
输出 **PASS**（通过）或 **FAIL**（未通过）：梯度用 `minigpt.gradcheck` 与有限差分比较，
其他结果与 minigpt 自己的函数比较。
请从头依次运行各单元格。每道练习上方的文字和公式就是你需要的全部提示；
答案在解答版笔记本里（先自己试过再看！）。

本文件由 `make exercises` 从解答版笔记本生成，请不要直接修改。"""}


def make_exercise(nb: nbformat.NotebookNode, name: str, lang: str = "en") -> nbformat.NotebookNode:
    """The student edition of a solution notebook (of edition lang): blanks, no
    solution-only cells, no outputs, and an intro cell saying what to do."""
    title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    cells = [new_markdown_cell(EXERCISE_INTRO[lang].format(title=title, name=name))]
    for cell in nb.cells:
        if has_tag(cell, "solution-only"):
            continue
        if cell.cell_type == "code":
            source = blank_solutions(cell.source)
            if has_tag(cell, "check"):
                source = unassert(source)
            new = new_code_cell(source)
        else:
            new = new_markdown_cell(cell.source)
        if cell.get("metadata", {}).get("tags"):
            new.metadata["tags"] = list(cell.metadata.tags)
        cells.append(new)
    ex = new_notebook(cells=numbered(cells), metadata=dict(nb.metadata))
    return ex


def edition_dir(lang: str = "en") -> Path:
    """Where an edition's solution notebooks live: notebooks/ or notebooks/zh/."""
    return HERE if lang == "en" else HERE / lang


def notebook_path(name: str, lang: str = "en") -> Path:
    return edition_dir(lang) / f"{name}.ipynb"


def exercise_path(name: str, lang: str = "en") -> Path:
    return edition_dir(lang) / "exercises" / f"{name}_exercises.ipynb"


# ----------------------------------------------------------------------------- running
def ensure_kernel() -> None:
    """Make sure a 'python3' kernel spec exists; install this interpreter's if not.

    Run from the venv, 'python3' is the venv's Python in two ways: pip puts ipykernel's
    spec in <venv>/share/jupyter/kernels/python3 (argv[0] "python", which
    jupyter_client replaces by sys.executable), and without that file jupyter_client
    still offers the running interpreter's ipykernel as 'python3' (we checked both).
    The install below, into sys.prefix (the venv, never ~/.local), is a last resort.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install
        install(prefix=sys.prefix)


# One BLAS thread per kernel unless the caller chose otherwise: the notebooks' matrices
# are small, and on a shared 2-core machine a multi-threaded BLAS mostly waits for cores
# (we measured a training step 5x slower with the default thread count under load).
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def kernel_env(quick: bool, lang: str = "en"):
    """Set MINIGPT_QUICK, MINIGPT_LANG (the edition, which minigpt.language.tr follows)
    and the BLAS threads for kernels started inside; they inherit os.environ.
    Everything is restored afterwards."""
    changes = {QUICK_ENV: "1" if quick else "0", LANG_ENV: lang}
    changes.update({var: "1" for var in THREAD_VARS if var not in os.environ})
    old = {var: os.environ.get(var) for var in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for var, value in old.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def execute(nb: nbformat.NotebookNode, *, quick: bool, cwd: Path | None = None,
            timeout: int | None = None, lang: str = "en") -> nbformat.NotebookNode:
    """Run every cell of nb in a fresh kernel (in place), as edition lang, in cwd (by
    default the edition's folder); a failing cell raises nbclient's CellExecutionError
    naming the cell and the traceback.

    timeout: seconds per cell; by default 3 minutes in quick mode and an hour in full
    mode, where notebook 6 trains the chat model in one cell (about 10 minutes on two
    idle cores, longer on a busy machine)."""
    if timeout is None:
        timeout = 180 if quick else 3600
    from nbclient import NotebookClient
    ensure_kernel()
    cwd = edition_dir(lang) if cwd is None else cwd
    Path(cwd).mkdir(parents=True, exist_ok=True)     # notebooks/zh/ before its first build
    with kernel_env(quick, lang):
        NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, record_timing=False,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    nb.metadata["minigpt"] = {"executed_in": "quick" if quick else "full",
                              "library": library_version()}
    return nb


def library_version() -> str:
    """The commit of minigpt/ the notebooks ran against ("+dirty" if it had local edits)."""
    import subprocess
    root = HERE.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "minigpt"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty.strip() else "")


# ----------------------------------------------------------------------------- commands
def write(nb, path: Path) -> None:
    """nb as path, atomically (minigpt.checkpoint.write_atomically): a Ctrl-C or a full
    disk mid-write leaves the committed notebook as it was, never half a file. The bytes
    are nbformat.write's (UTF-8, one final newline), with LF line ends on every system."""
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    text += "" if text.endswith("\n") else "\n"
    write_atomically(path, lambda f: f.write(text.encode("utf-8")), suffix=".tmp.ipynb")


def cmd_notebooks(selected, quick: bool, run: bool, langs=LANGUAGES) -> None:
    for name in selected or names():
        for lang in langs:
            nb = build(name, lang)
            path = notebook_path(name, lang)
            shown = path.relative_to(HERE.parent).as_posix()
            if run:
                start = time.time()
                print(f"executing {shown} ({'quick' if quick else 'full'}) ...", flush=True)
                execute(nb, quick=quick, lang=lang)
                print(f"  done in {time.time() - start:.0f} s", flush=True)
            write(nb, path)
            print(f"wrote {shown}")


def cmd_exercises(selected=(), langs=LANGUAGES) -> None:
    for name in selected or EXERCISE_SOURCES:
        for lang in langs:
            path = exercise_path(name, lang)
            write(make_exercise(build(name, lang), name, lang), path)
            print(f"wrote {path.relative_to(HERE.parent).as_posix()}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("notebooks", "exercises"))
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"run with {QUICK_ENV}=1")
    parser.add_argument("--no-execute", action="store_true", help="write without running")
    parser.add_argument("--lang", choices=LANGUAGES + ("all",), default="all",
                        help="which edition: en (notebooks/), zh (notebooks/zh/) or all (default)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names()))
    if unknown:
        parser.error(f"no source for {unknown}; known: {names()}")
    langs = LANGUAGES if args.lang == "all" else (args.lang,)
    if args.what == "notebooks":
        cmd_notebooks(args.names, args.quick, not args.no_execute, langs)
    else:
        cmd_exercises(args.names, langs)


if __name__ == "__main__":
    main()
