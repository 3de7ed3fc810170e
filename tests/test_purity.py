"""The point of minigpt is that every gradient is ours: no autograd library (nor
scipy) may be imported anywhere inside the package. One exception: the nanoGPT
export writes a torch.save file, so minigpt/export.py imports torch, inside that
function only, when asked to write one (nothing else imports export.py)."""
import ast
import pathlib

import minigpt

FORBIDDEN = {"torch", "jax", "jaxlib", "autograd", "scipy", "tensorflow", "tinygrad"}
EXPORT_ONLY = {"export.py": {"torch"}}      # allowed there, inside a function


def imported_modules(path, top_level_only=False):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_no_autograd_library_inside_minigpt():
    package = pathlib.Path(minigpt.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) > 10                                    # the walk found the package
    offenders = {f"{f.relative_to(package)}: {m}" for f in files
                 for m in imported_modules(f)
                 if m in FORBIDDEN - EXPORT_ONLY.get(str(f.relative_to(package)), set())}
    assert not offenders, f"forbidden imports: {sorted(offenders)}"
    for name, allowed in EXPORT_ONLY.items():        # lazily: importing minigpt needs no torch
        assert not set(imported_modules(package / name, top_level_only=True)) & allowed
    users = {str(f.relative_to(package)) for f in files
             if "export" in set(imported_modules(f)) | {
                 n.module for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
                 if isinstance(n, ast.ImportFrom) and n.level and n.module}}
    assert users <= {"__main__.py"}, users           # only the command line reaches it
