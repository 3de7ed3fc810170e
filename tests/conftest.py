"""Shared test settings.

Hypothesis: no deadline (a 2-core CI machine is slow and noisy), and in CI
(CI=true) derandomised, so a red build is reproducible from its log.
HYPOTHESIS_PROFILE=thorough runs 500 examples per property, for a deeper search.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True,
                          print_blob=True)
settings.register_profile("thorough", parent=settings.get_profile("dev"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
