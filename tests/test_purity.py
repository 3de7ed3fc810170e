"""The point of minigpt is that every gradient is ours: no autograd library (nor
scipy) may be imported anywhere inside the package."""
import ast
import pathlib

import minigpt

FORBIDDEN = {"torch", "jax", "jaxlib", "autograd", "scipy", "tensorflow", "tinygrad"}


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_no_autograd_library_inside_minigpt():
    package = pathlib.Path(minigpt.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) > 10                                    # the walk found the package
    offenders = {f"{f.relative_to(package)}: {m}" for f in files
                 for m in imported_modules(f) if m in FORBIDDEN}
    assert not offenders, f"forbidden imports: {sorted(offenders)}"
