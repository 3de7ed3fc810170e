"""Shared test settings.

Hypothesis: no deadline (a 2-core CI machine is slow and noisy), and in CI
(CI=true) derandomised, so a red build is reproducible from its log.
HYPOTHESIS_PROFILE=thorough runs 500 examples per property, for a deeper search.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import minigpt.blas as blas

settings.register_profile("dev", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True,
                          print_blob=True)
settings.register_profile("thorough", parent=settings.get_profile("dev"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


# The suite's checks of printed text are English: a Chinese shell (LANG=zh_CN.UTF-8,
# which the chat follows, or MINIGPT_LANG=zh, which README.zh-CN.md suggests for the
# notebooks) must not turn them red, in this process or in the CLIs and kernels it
# starts. MINIGPT_LANG comes before the locale everywhere in minigpt; set here, at
# import, before any fixture (module-scoped ones included) runs. Tests of the Chinese
# edition set the variable themselves.
os.environ["MINIGPT_LANG"] = "en"


@pytest.fixture
def blas_threads():
    """A function: the thread count of every BLAS library loaded (skips without threadpoolctl)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info()
                    if i["user_api"] == "blas"]


@pytest.fixture
def blas_limit_calls(monkeypatch):
    """The list of thread counts blas.blas_limit is asked for (it still sets them)."""
    calls = []
    real = blas.blas_limit
    monkeypatch.setattr(blas, "blas_limit", lambda n: (calls.append(n), real(n))[1])
    return calls
