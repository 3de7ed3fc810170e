"""The benchmark scripts run and print what they promise (optional: they need torch)."""
import os
import subprocess
import sys

import pytest

from minigpt.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_nanogpt_compare_prints_the_table(tmp_path):
    pytest.importorskip("torch")
    train("tiny", out_dir=str(tmp_path), progress=False, out=open(os.devnull, "w"))
    r = subprocess.run([sys.executable, "benchmarks/nanogpt_compare.py", "--minigpt",
                        str(tmp_path), "--steps", "3"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for row in ("loss over the whole validation stream", "word validity", "greetings",
                "replies that end their turn", "nanoGPT, same settings"):
        assert row in r.stdout, row


def test_nanogpt_compare_explains_a_missing_torch(tmp_path):
    """Run with torch hidden (a stub that fails to import): one line, exit 1."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "torch.py").write_text("raise ImportError('no torch here')\n")
    env = {**os.environ, "PYTHONPATH": f"{stub}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "benchmarks/nanogpt_compare.py"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "pip install torch==2.13.0" in r.stderr
    assert "Traceback" not in r.stderr
