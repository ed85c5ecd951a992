"""shapes.py: static shapes and dtypes, symbolic dims, attr schemas; checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import graphspec
from graphspec.errors import InputError, ShapeError
from graphspec.ops import OPS, Aval


def load(nodes, inputs=None, **extra):
    return graphspec.load({"graphspec": "1", "inputs": inputs or {}, "nodes": nodes, **extra})


@pytest.mark.parametrize(("a", "b"), [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                      ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_shape_rule_agrees_with_numpy(a, b):
    out = OPS["matmul"].shape([Aval(a, "float64"), Aval(b, "float64")])
    assert out.shape == np.matmul(np.ones(a), np.ones(b)).shape


@pytest.mark.parametrize("axis", [None, 0, 1, -1, [0, 2]])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "logsumexp"])
def test_reduction_shape_rules_agree_with_numpy(op, axis, keepdims):
    x = np.ones((2, 3, 4))
    ax = tuple(axis) if isinstance(axis, list) else axis
    want = np.sum(x, axis=ax, keepdims=keepdims).shape
    assert OPS[op].shape([Aval((2, 3, 4), "float64")], axis=axis, keepdims=keepdims).shape == want


def test_every_node_shape_matches_the_computed_value():
    g = load({"m": {"op": "matmul", "args": ["X", "W"]}, "s": {"op": "softmax", "args": ["m"]},
              "t": {"op": "transpose", "args": ["s"]}, "r": {"op": "reshape", "args": ["t"], "attrs": {"shape": [-1]}},
              "c": {"op": "concat", "args": ["r", "r"]}, "l": {"op": "sum", "args": ["c"]}},
             inputs={"X": {"value": np.ones((5, 3)).tolist()}, "W": {"value": np.ones((3, 2)).tolist()}})
    vals = g.evaluate().values
    for name in g.order:
        assert tuple(g.avals[name].shape) == np.shape(vals[name]), name


def test_dtypes_follow_numpy_promotion():
    g = load({"a": {"op": "mul", "args": ["f32", 0.5]}, "b": {"op": "add", "args": ["f32", "f64"]},
              "c": {"op": "add", "args": ["i", "i"]}, "d": {"op": "exp", "args": ["i"]}},
             inputs={"f32": {"value": [1.0], "dtype": "float32"}, "f64": {"value": [1.0]},
                     "i": {"value": [1], "dtype": "int64"}})
    vals = g.evaluate().values
    for name, want in {"a": "float32", "b": "float64", "c": "int64", "d": "float64"}.items():
        assert g.avals[name].dtype == want == str(np.asarray(vals[name]).dtype), name


def test_symbolic_dims_rebind_at_run_time_and_are_rechecked():
    g = load({"m": {"op": "matmul", "args": ["X", "W"]}, "l": {"op": "softmax_cross_entropy", "args": ["m", "y"]}},
             inputs={"X": {"shape": ["N", 2]}, "y": {"shape": ["N"], "dtype": "int64"}},
             params={"W": {"shape": [2, 3], "init": "xavier"}}, loss="l")
    for n in (1, 4, 7):
        grads = g.grad({"X": np.ones((n, 2)), "y": np.zeros(n, dtype=np.int64)})
        assert grads["W"].shape == (2, 3)
    with pytest.raises(InputError, match=r"symbolic dim 'N' is 3 here but 4"):
        g.grad({"X": np.ones((4, 2)), "y": np.zeros(3, dtype=np.int64)})


def test_a_run_time_shape_that_breaks_an_op_is_a_located_error():
    g = load({"m": {"op": "matmul", "args": ["X", "W"]}}, inputs={"X": {"value": [[1.0, 2.0]]}, "W": {"value": [[1.0], [2.0]]}})
    with pytest.raises(ShapeError, match=r"nodes\.m: matmul cannot multiply \(1, 3\) by \(2, 1\)"):
        g.run({"X": np.ones((1, 3))})


def test_attr_defaults_are_bound_and_lists_become_tuples():
    g = load({"s": {"op": "sum", "args": ["x"], "attrs": {"axis": [0, 1]}}, "t": {"op": "softmax", "args": ["x"]}},
             inputs={"x": {"value": np.ones((2, 3)).tolist()}})
    assert g.attrs["s"] == {"axis": (0, 1), "keepdims": False}
    assert g.attrs["t"] == {"axis": -1}


def test_repeated_reduction_axis_is_an_error():
    with pytest.raises(ShapeError, match="names an axis twice"):
        load({"s": {"op": "sum", "args": ["x"], "attrs": {"axis": [0, -2]}}}, inputs={"x": {"value": np.ones((2, 3)).tolist()}})


def test_shape_errors_skip_what_reads_a_failed_node_and_go_on():
    """m fails; t reads m and is not blamed again; k is independent and fails on its own."""
    from graphspec.shapes import infer
    from graphspec.spec import Node

    nodes = {"m": Node(op="matmul", args=["a", "b"]), "t": Node(op="add", args=["m", "c"]),
             "k": Node(op="add", args=["a", "c"]), "ok": Node(op="neg", args=["a"])}
    leaves = {"a": Aval((2, 3), "float64"), "b": Aval((2, 3), "float64"), "c": Aval((4,), "float64")}
    attrs = {n: {} for n in nodes}
    from graphspec.errors import ErrorList

    errors = ErrorList()
    avals = infer(nodes, list(nodes), leaves, attrs, errors)
    assert [(e.loc, e.message) for e in errors.found] == [("nodes.m", "matmul cannot multiply (2, 3) by (2, 3)"),
                                                        ("nodes.k", "add: cannot broadcast (2, 3) with (4,)")]
    assert "t" not in avals and avals["ok"].shape == (2, 3)
    with pytest.raises(ShapeError, match=r"nodes\.m: matmul"):  # without a list, the first error raises, as before
        infer(nodes, list(nodes), leaves, attrs)


def test_every_wrong_attr_of_a_node_is_reported():
    with pytest.raises(ShapeError) as e:
        load({"s": {"op": "sum", "args": ["x"], "attrs": {"axis": "a", "keepdims": 1, "foo": 2}}}, inputs={"x": {"value": [1.0]}})
    assert [x.loc for x in e.value.errors] == ["nodes.s.attrs.axis", "nodes.s.attrs.keepdims", "nodes.s.attrs.foo"]
    assert "keepdims' must be true or false, got 1" in str(e.value)  # JSON's spelling of the value, not Python's


@pytest.mark.parametrize(("attrs", "want"), [({"axis": 1.0}, 1), ({"axis": -1.0}, -1)])
def test_integral_attrs_are_integers(attrs, want):
    g = load({"s": {"op": "softmax", "args": ["x"], "attrs": attrs}}, inputs={"x": {"value": [[1.0, 2.0]]}})
    assert g.attrs["s"]["axis"] == want and type(g.attrs["s"]["axis"]) is int


@pytest.mark.parametrize("bad", [True, 1.5, [0, True], [0.5]])
def test_non_integer_attrs_are_errors(bad):
    with pytest.raises(ShapeError, match=r"nodes\.s\.attrs\.axis: sum attr 'axis' must be an integer axis"):
        load({"s": {"op": "sum", "args": ["x"], "attrs": {"axis": bad}}}, inputs={"x": {"value": [[1.0, 2.0]]}})


def test_a_node_of_json_numbers_alone_is_float64_next_to_float32():
    """abs(0.5) runs as a numpy float64, a strong type: mul with a float32 input is float64, and
    the static dtypes say so (they said weak, then float32). Found by tests/test_properties.py."""
    g = load({"a": {"op": "abs", "args": [0.5]}, "m": {"op": "mul", "args": ["a", "x"]}},
             {"x": {"value": [1.0, 2.0], "dtype": "float32"}}, outputs=["a", "m"])
    assert (g.avals["a"].dtype, g.avals["m"].dtype) == ("float64", "float64")
    out = g.run()
    assert (out["a"].dtype, out["m"].dtype) == (np.float64, np.float64)
