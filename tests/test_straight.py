"""value_and_grad's straight-line code (graphspec/straight.py) against the loops it stands in for.

Same calls in the same order, so the same bits: every shipped spec and random graphs over the
whole op table (tests/graphgen.py), in both worlds of their symbolic dims, in float64 and
float32. Errors and non-finite values are the loops' own (the straight-line code hands them
over): the same messages at the same places, on every call, not only the first.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
from graphgen import random_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphspec
from graphspec import straight
from graphspec.api import NonFiniteWarning
from graphspec.errors import InputError, NonFiniteError, OpError

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.json") if "data" not in p.parts)


def load(spec):
    return graphspec.load(spec, base=ROOT / "specs") if isinstance(spec, dict) else graphspec.load(spec)


def loops(spec):
    """The graph with its straight-line code switched off: value_and_grad runs the loops."""
    graph = load(spec)
    graph.program.__dict__["straight"] = None  # the cached_property's slot, in this graph's own program
    return graph


def same(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    np.testing.assert_array_equal(a, b, err_msg=what)


def compare(spec, inputs=(), where=""):
    fast = load(spec)
    assert fast.program.straight is not None, "a small graph with a loss gets straight-line code"
    slow = loops(spec)
    for call in (inputs or [{}]):
        for _ in range(2):  # the first call and a later one: both straight-line
            loss, grads = fast.value_and_grad(call, check_finite="off")
            loss2, grads2 = slow.value_and_grad(call, check_finite="off")
            same(loss, loss2, f"{where} loss")
            assert grads.keys() == grads2.keys()
            for n in grads:
                same(grads[n], grads2[n], f"{where} gradient of {n}")
                assert grads[n].flags.writeable and grads[n].base is None, f"{n}: a fresh array the caller owns"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_shipped_spec_gives_the_loops_bits(path):
    program = graphspec.load(path).program
    if program.loss is None:  # nothing to differentiate: no straight-line code, and value_and_grad says why
        assert program.straight is None
        with pytest.raises(graphspec.SpecError, match="no loss"):
            graphspec.load(path).value_and_grad()
        return
    compare(path, where=path.name)


RANDOM = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@RANDOM
@given(st.data(), st.integers(1, 8), st.sampled_from(["float64", "float32"]))
def test_random_graphs_give_the_loops_bits(data, n_ops, dtype):
    spec, _ = random_spec(data, n_ops)
    doc = copy.deepcopy(spec.doc)
    doc["dtype"] = dtype
    doc.pop("outputs", None)  # no kept values: the most buffer reuse and release
    try:
        graphspec.load(doc)
    except graphspec.SpecError:
        return  # a float32 twin that does not fit (an integer-only op): float64 covers it
    worlds = [{}, spec.runtime_inputs(1)] if spec.symbolic else [{}]
    compare(doc, worlds, where=f"{dtype}")


NAN_SPEC = {"graphspec": "1", "inputs": {"x": {"value": [0.0, 1.0]}},
            "nodes": {"a": {"op": "log", "args": ["x"]}, "b": {"op": "mul", "args": ["a", 2.0]},
                      "c": {"op": "sum", "args": ["b"]}}, "loss": "c"}


def test_a_nonfinite_value_is_named_by_its_first_node_on_every_call():
    graph = graphspec.load(NAN_SPEC)
    for _ in range(3):
        with pytest.warns(NonFiniteWarning, match=r"nodes\.a\b.*log"):
            loss, _ = graph.value_and_grad()
        assert np.isneginf(loss)
        with pytest.raises(NonFiniteError) as e:
            graph.value_and_grad(check_finite="raise")
        assert e.value.loc == "nodes.a"


def test_check_finite_off_is_silent_and_numpy_warns_nothing():
    graph = graphspec.load(NAN_SPEC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's own RuntimeWarning (log of 0) included
        for _ in range(2):
            assert np.isneginf(graph.value_and_grad(check_finite="off")[0])


def test_a_nonfinite_gradient_is_named_by_the_vjp_that_made_it_on_every_call():
    graph = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": 2.0}},
                            "nodes": {"c": {"op": "sub", "args": ["x", "x"]}, "s": {"op": "sqrt", "args": ["c"]},
                                      "m": {"op": "mul", "args": ["s", 3.0]}}, "loss": "m"})
    for _ in range(2):
        with pytest.raises(NonFiniteError, match="sqrt") as e:
            graph.grad(check_finite="raise")
        assert e.value.loc == "nodes.s"


def test_an_input_error_at_run_time_is_located_at_its_node_on_every_call():
    spec = {"graphspec": "1", "inputs": {"s": {"shape": ["N", 3]}, "y": {"shape": ["N"], "dtype": "int64"}},
            "nodes": {"L": {"op": "softmax_cross_entropy", "args": ["s", "y"]}}, "loss": "L"}
    graph = graphspec.load(spec)
    good = {"s": np.zeros((2, 3)), "y": np.array([0, 2])}
    graph.value_and_grad(good)
    for _ in range(2):
        with pytest.raises(InputError) as e:
            graph.value_and_grad({"s": np.zeros((2, 3)), "y": np.array([0, 7])})
        assert e.value.loc == "nodes.L"
    same(graph.value_and_grad(good)[0], loops(spec).value_and_grad(good)[0], "after the errors")


def test_a_vjp_that_raises_is_blamed_on_its_op_on_every_call():
    def bad_vjp(g, ans, x):
        raise ZeroDivisionError("oops")

    op = graphspec.defop("straight_bad", lambda x: x * 2.0, vjp=(bad_vjp,), replace=True)
    try:
        graph = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": 1.5}},
                                "nodes": {"y": {"op": "straight_bad", "args": ["x"]}}, "loss": "y"})
        for _ in range(2):
            with pytest.raises(OpError, match=r"op 'straight_bad' at node 'y' \(VJP for 'x'\): ZeroDivisionError: oops"):
                graph.value_and_grad()
    finally:
        from graphspec.ops import OPS
        OPS.pop(op.name, None)


def test_graphs_past_the_limit_run_the_loops(monkeypatch):
    monkeypatch.setattr(straight, "MAX_STEPS", 2)
    graph = graphspec.load(NAN_SPEC | {"inputs": {"x": {"value": [0.5, 1.0]}}})
    assert graph.program.straight is None
    loss, grads = graph.value_and_grad()
    assert float(loss) == pytest.approx(2 * np.log(0.5)) and np.allclose(grads["x"], [4.0, 2.0])


def test_the_code_is_straight_line_and_drops_what_the_loops_drop():
    """One line per forward and one call per needed VJP, no loop; a value is dropped (set to
    None) after the last step that reads it, as `passes.backward` drops it."""
    graph = graphspec.load(ROOT / "specs" / "mlp" / "mlp.json")
    plan, source = graph.program.plan, graph.program.straight.source
    assert " for " not in source and " while " not in source
    assert sum(f" = f{k}(" in source for k in range(len(plan.steps))) == len(plan.steps)
    # a VJP call per needed arg, but none for a step the loss does not depend on (the accuracy node)
    assert 0 < source.count("    t = r") < sum(len(g) for _, g in plan.backward_steps)
    dropped = [s for r in plan.memory.release for s in r] + list(plan.memory.release_first)
    assert dropped and all(f"    v{s} = None" in source for s in dropped)
