"""graphspec.testing.assert_gradients: silent on right gradients, an AssertionError with the report on wrong ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphspec
from graphspec.ops import OPS
from graphspec.testing import assert_gradients

SPEC = {"graphspec": "1", "name": "tiny", "params": {"w": {"value": [[0.3, -0.2], [0.1, 0.4]]}, "b": {"value": [0.1, 0.2]}},
        "inputs": {"x": {"value": [1.0, -2.0]}},
        "nodes": {"a": {"op": "matmul", "args": ["w", "x"]}, "z": {"op": "add", "args": ["a", "b"]},
                  "s": {"op": "sigmoid", "args": ["z"]}, "L": {"op": "sum", "args": ["s"]}}, "loss": "L"}


def test_right_gradients_return_the_report() -> None:
    rep = assert_gradients(SPEC, taylor=True)
    assert rep.ok and sorted(c.input for c in rep.checks) == ["b", "w", "x"]
    assert assert_gradients(graphspec.load(SPEC), fast=True, wrt=["w"]).mode == "fast"


def test_wrong_gradient_raises_with_the_report_and_the_node() -> None:
    orig = OPS["sigmoid"]
    OPS["sigmoid"] = dataclasses.replace(orig, vjp=(lambda g, ans, x: g * ans,), jvp=orig.jvp)
    try:
        g = graphspec.load(SPEC)
    finally:
        OPS["sigmoid"] = orig
    with pytest.raises(AssertionError) as err:
        assert_gradients(g)
    msg = str(err.value)
    assert "node 's' (sigmoid) has a wrong VJP" in msg and "dL/dw" in msg and "FAIL" in msg


def test_kinks_raise_only_when_strict() -> None:
    spec = {"graphspec": "1", "params": {"w": {"value": [0.0, 2.0]}},
            "nodes": {"r": {"op": "abs", "args": ["w"]}, "L": {"op": "sum", "args": ["r"]}}, "loss": "L"}
    assert assert_gradients(spec).status == "KINK"
    with pytest.raises(AssertionError, match="KINK"):
        assert_gradients(spec, strict=True)


def test_inputs_are_passed_through() -> None:
    rep = assert_gradients(SPEC, inputs={"x": np.array([0.5, 0.5])})
    (cx,) = [c for c in rep.checks if c.input == "x"]
    np.testing.assert_allclose(cx.arrays["analytic"], graphspec.load(SPEC).grad({"x": np.array([0.5, 0.5])})["x"])


def test_nothing_to_check_raises() -> None:
    """A self-grading exercise must not pass empty: no gradient to check is an AssertionError."""
    spec = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0], "grad": False}},
            "nodes": {"y": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}
    with pytest.raises(AssertionError, match=r"checked nothing \(nothing to check: no param or float input"):
        assert_gradients(spec)
    with pytest.raises(AssertionError, match="checked nothing"):
        assert_gradients(SPEC, wrt=[])


def test_a_warning_does_not_fail_but_is_returned() -> None:
    spec = {**SPEC, "params": {**SPEC["params"], "unused": {"value": 1.0}}}
    rep = assert_gradients(spec)
    assert rep.warnings == ["param 'unused' has grad but the loss does not depend on it"]
