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


@pytest.mark.parametrize("leaf", [True, False])
def test_a_gradient_that_overflows_in_a_sum_of_cotangents_is_named_as_that(leaf):
    """Two uses each send back a finite 1e308: their sum is inf. No VJP made it and no one gave it; the
    finding used to say the leaf's gradient was "given for this input or param"."""
    nodes = {"a": {"op": "mul", "args": ["h", 1e308]}, "b": {"op": "mul", "args": ["h", 1e308]},
             "e": {"op": "add", "args": ["a", "b"]}, "L": {"op": "sum", "args": ["e"]}}
    if not leaf:  # the sum at a node: x -> h = 2 x, then both uses
        nodes["h"] = {"op": "mul", "args": ["x", 2.0]}
    else:
        nodes = {k: {**v, "args": ["x" if a == "h" else a for a in v["args"]]} for k, v in nodes.items()}
    g = graphspec.load({"graphspec": "1", "params": {"x": {"value": [1e-10, 2e-10]}}, "nodes": nodes, "loss": "L"})
    (f,) = g.evaluate(check_finite="record").findings
    assert (f.kind, f.loc) == ("gradient", "x" if leaf else "nodes.h"), f
    assert "overflowed when summed" in f.message and "given" not in f.message, f
    with pytest.raises(graphspec.NonFiniteError, match="overflowed when summed"):
        g.value_and_grad(check_finite="raise")
