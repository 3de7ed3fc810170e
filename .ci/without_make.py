"""CI: the README's commands without make, in a fresh virtual environment.

What a student on Windows (PowerShell), macOS or Linux types when there is no make:
create a venv, install requirements.txt and minigpt with the venv's own python, train
the tiny preset, evaluate it, chat through a pipe, and run a few test files with
MINIGPT_QUICK=1 set in the environment. Written in Python, not shell, so that it
runs the same way on every system (the venv's python is Scripts\\python.exe on
Windows, bin/python elsewhere).

    python .ci/without_make.py
"""
import os
import subprocess
import sys
import tempfile
import time
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, **kwargs):
    print("$", " ".join(args), flush=True)
    start = time.time()
    subprocess.run(args, cwd=ROOT, check=True, **kwargs)
    print(f"  ({time.time() - start:.0f} s)", flush=True)


def main():
    with tempfile.TemporaryDirectory(prefix="minigpt-no-make-") as tmp:
        env_dir = os.path.join(tmp, "venv")
        print(f"$ python -m venv {env_dir}", flush=True)
        venv.create(env_dir, with_pip=True)
        python = os.path.join(env_dir, "Scripts" if os.name == "nt" else "bin",
                              "python.exe" if os.name == "nt" else "python")
        run(python, "-m", "pip", "install", "--quiet", "-r", "requirements.txt")
        run(python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ".")
        out = os.path.join(tmp, "tiny")
        run(python, "-m", "minigpt", "train", "--preset", "tiny", "--out-dir", out,
            "--no-progress")
        run(python, "-m", "minigpt", "eval", "--checkpoint", out, "--replies", "2")
        run(python, "-m", "minigpt", "chat", "--checkpoint", out, "--max-new-tokens", "8",
            input="Hello\n", text=True)
        quick = dict(os.environ, MINIGPT_QUICK="1")
        run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_docs.py",
            "tests/test_chat.py", "tests/test_packaging.py", env=quick)
    print("the commands without make work", flush=True)


if __name__ == "__main__":
    main()
