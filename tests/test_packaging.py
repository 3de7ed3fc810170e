"""pip install . gets the same runtime packages as requirements.txt (which make uses)."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def runtime_requirements():
    """Package names in requirements.txt before its "# tests" section."""
    names = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip().lower().startswith("# tests"):
            break
        line = line.split("#")[0].strip()
        if line:
            names.append(re.split(r"[=<>~!\[ ]", line)[0].lower())
    return names


def pyproject_dependencies():
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r"^dependencies\s*=\s*(\[.*?\])", text, re.M | re.S)
    assert match, "pyproject.toml has no dependencies list"
    return [re.split(r"[=<>~!\[ ]", d)[0].lower() for d in ast.literal_eval(match.group(1))]


def test_pyproject_installs_the_runtime_requirements():
    assert runtime_requirements(), "found no runtime requirements"
    assert sorted(pyproject_dependencies()) == sorted(runtime_requirements())
