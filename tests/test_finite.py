"""The interpreter's fast paths keep their promises: the one-reduction finiteness check, the
cotangent kept in its primal's dtype and shape, and the collector paused only while a plan builds."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest

import graphspec
from graphspec.finite import surely_finite
from graphspec.passes import fit as _fit


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_surely_finite_sees_every_nan_and_inf(dtype):
    for shape in [(), (7,), (3, 5)]:
        x = np.ones(shape, dtype=dtype)
        assert surely_finite(x)
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[(0,) * len(shape)] = bad
            assert not surely_finite(y)
            assert not surely_finite(np.broadcast_to(y, (2, *shape)))  # not contiguous: the exact path


def test_surely_finite_on_ints_bools_and_scalars():
    assert surely_finite(np.arange(5)) and surely_finite(np.array([True, False])) and surely_finite(3.0)
    assert not surely_finite(float("nan")) and not surely_finite(np.float32("inf"))


def test_finite_values_whose_squares_overflow_do_not_warn():
    # the fast check may doubt them (a sum of squares overflows); the exact scan then clears them
    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"shape": [4], "dtype": "float32"}},
                        "nodes": {"y": {"op": "mul", "args": ["x", 2.0]}, "L": {"op": "sum", "args": ["y"]}},
                        "loss": "L"})
    x = np.full(4, 1e20, dtype=np.float32)
    assert not surely_finite(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grads = g.value_and_grad({"x": x})
    assert np.isfinite(loss) and grads["x"].dtype == np.float32


def test_fit_sums_broadcasting_back_and_keeps_the_primal_dtype():
    x = np.zeros((1, 3), dtype=np.float32)
    g = _fit(np.ones((4, 3), dtype=np.float64), x)
    assert g.shape == (1, 3) and g.dtype == np.float32 and np.all(g == 4)


def test_plan_build_leaves_the_collector_as_it_found_it():
    spec = {"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"y": {"op": "exp", "args": ["x"]}}}
    assert gc.isenabled()
    graphspec.load(spec)
    assert gc.isenabled()
    gc.disable()
    try:
        graphspec.load(spec)
        assert not gc.isenabled()
    finally:
        gc.enable()
