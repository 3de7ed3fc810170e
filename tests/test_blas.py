"""minigpt/blas.py: the BLAS thread limit generation holds around its loop."""
import pytest

from minigpt import blas


def test_one_blas_thread_nests_and_only_the_outermost_sets_blas(blas_threads,
                                                                blas_limit_calls):
    before, calls = blas_threads(), blas_limit_calls
    with blas.one_blas_thread():
        with blas.one_blas_thread():
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == [1] * len(before)          # the inner exit gave nothing back
        with pytest.raises(RuntimeError):
            with blas.one_blas_thread():
                raise RuntimeError("a failing step")
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before                         # the outermost exit did
    assert calls == [1]                                     # and only it talked to BLAS
    with blas.one_blas_thread():                            # the count went back to zero
        pass
    assert calls == [1, 1]
