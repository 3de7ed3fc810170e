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

A cell marker may carry tags. Two of them matter to the exercises:
    check          a verdict cell: it checks code the reader wrote (minigpt.gradcheck's
                   check for a gradient, check_close against the library's own function
                   otherwise) and prints ONE line starting with PASS or FAIL. In the
                   solution notebook it is asserted; in the exercise edition the leading
                   `assert ` is dropped, so an unfinished exercise prints FAIL and the
                   notebook runs on.
    solution-only  kept in the solution notebook, left out of the exercise edition
                   (e.g. comparing the reader's function with the library's).
Inside code, the lines between `# BEGIN SOLUTION` and `# END SOLUTION` are the part a
student writes; the exercise edition replaces them with a `raise NotImplementedError`.

Commands (the Makefile calls them):
    python notebooks/build.py notebooks [NAME ...]  write notebooks/NN_name.ipynb and
                                 execute them in full mode, storing every output
    python notebooks/build.py exercises [NAME ...]  write notebooks/exercises/*.ipynb
                                 (student editions of every notebook, without outputs)
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

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
EXERCISES = HERE / "exercises"
QUICK_ENV = "MINIGPT_QUICK"
EXERCISE_SOURCES = tuple(sorted(p.stem for p in SRC.glob("[0-9][0-9]_*.py")))  # all of them
KERNEL = "python3"

_MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


# ----------------------------------------------------------------------------- sources
def names() -> list[str]:
    """Every notebook source, in reading order: ['01_attention', ...]."""
    return sorted(p.stem for p in SRC.glob("[0-9][0-9]_*.py"))


def parse(text: str) -> list:
    """Percent-format text -> a list of nbformat cells (tags in cell.metadata.tags)."""
    cells, kind, tags, lines = [], None, [], []

    def flush():
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
        cells.append(cell)

    for line in text.splitlines():
        m = _MARKER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = ast.literal_eval(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def numbered(cells: list) -> list:
    """Give the cells stable ids (cell-000, cell-001, ...) instead of nbformat's random
    ones, so rebuilding a notebook changes its file only where its content changed."""
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:03d}"
    return cells


def build(name: str) -> nbformat.NotebookNode:
    """The solution notebook `name` (e.g. '01_attention'), not executed."""
    nb = new_notebook(cells=numbered(parse((SRC / f"{name}.py").read_text(encoding="utf-8"))))
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
    """`assert check(...)` -> `check(...)`: a FAIL must print, not stop the notebook."""
    return re.sub(r"^assert (check\w*\()", r"\1", source, flags=re.MULTILINE)


EXERCISE_INTRO = """\
# Student edition: {title}

This is the exercise version of `notebooks/{name}.ipynb`. Every cell that says
`# YOUR CODE HERE` is a function for you to write (most are backward passes); the
cell after it checks your function and prints **PASS** or **FAIL** in one line
(a gradient against finite differences with `minigpt.gradcheck`, anything else
against minigpt's own function).
Run the cells from the top. The prose and formulas above each exercise are all you
need; the solution notebook has the answers (look only after you tried!).

Generated by `make exercises` from the solution notebook: do not edit this file."""


def make_exercise(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student edition of a solution notebook: blanks, no solution-only cells,
    no outputs, and an intro cell saying what to do."""
    title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    cells = [new_markdown_cell(EXERCISE_INTRO.format(title=title, name=name))]
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


def exercise_path(name: str) -> Path:
    return EXERCISES / f"{name}_exercises.ipynb"


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
def kernel_env(quick: bool):
    """Set MINIGPT_QUICK (and the BLAS threads) for kernels started inside; they
    inherit os.environ. Everything is restored afterwards."""
    changes = {QUICK_ENV: "1" if quick else "0"}
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


def execute(nb: nbformat.NotebookNode, *, quick: bool, cwd: Path = HERE,
            timeout: int | None = None) -> nbformat.NotebookNode:
    """Run every cell of nb in a fresh kernel (in place); a failing cell raises
    nbclient's CellExecutionError naming the cell and the traceback.

    timeout: seconds per cell; by default 3 minutes in quick mode and an hour in full
    mode, where notebook 6 trains the chat model in one cell (about 10 minutes on two
    idle cores, longer on a busy machine)."""
    if timeout is None:
        timeout = 180 if quick else 3600
    from nbclient import NotebookClient
    ensure_kernel()
    with kernel_env(quick):
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
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


def cmd_notebooks(selected, quick: bool, run: bool) -> None:
    for name in selected or names():
        nb = build(name)
        if run:
            start = time.time()
            print(f"executing {name} ({'quick' if quick else 'full'}) ...", flush=True)
            execute(nb, quick=quick)
            print(f"  done in {time.time() - start:.0f} s", flush=True)
        write(nb, HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")


def cmd_exercises(selected=()) -> None:
    for name in selected or EXERCISE_SOURCES:
        write(make_exercise(build(name), name), exercise_path(name))
        print(f"wrote {exercise_path(name).relative_to(HERE.parent)}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("notebooks", "exercises"))
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"run with {QUICK_ENV}=1")
    parser.add_argument("--no-execute", action="store_true", help="write without running")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names()))
    if unknown:
        parser.error(f"no source for {unknown}; known: {names()}")
    if args.what == "notebooks":
        cmd_notebooks(args.names, args.quick, not args.no_execute)
    else:
        cmd_exercises(args.names)


if __name__ == "__main__":
    main()
