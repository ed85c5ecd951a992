"""The op record (graphspec/ops/registry.py): what `defop` accepts and refuses, and the promise
that every speed hint is safe to leave out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.checker import gradcheck
from graphspec.errors import OpError
from graphspec.ops import OPS, SYMMETRIC, defop

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.json") if "data" not in p.parts)


@pytest.fixture
def scratch_op():
    """defop into the table, which is put back as it was after the test: no op leaks out."""
    from graphspec.ops import registry

    saved = dict(OPS)
    yield registry
    OPS.clear()
    OPS.update(saved)


def _same(avals, **_):
    return avals[0]


def test_the_minimal_record_is_name_forward_and_one_vjp_per_arg(scratch_op):
    op = scratch_op.defop("twice", lambda x: 2 * x, vjp=(lambda g, ans, x: 2 * g,), shape=_same)
    assert op.arity == 1 and op.args == ("x",) and op.jvp is None and op.kink is None
    assert op.reads is None and op.into is False and op.batch is None  # no hint: the safe defaults
    two = scratch_op.defop("both", np.add, vjp=(lambda g, ans, x, y: g, lambda g, ans, x, y: g), shape=_same)
    assert two.arity == 2 and two.args == ("x", "y") and two.into  # a ufunc writes into out= by itself


def test_symmetric_jvp_is_the_vjp_rules_themselves(scratch_op):
    vjp = (lambda g, ans, x: g * 3,)
    op = scratch_op.defop("thrice", lambda x: 3 * x, vjp=vjp, jvp=SYMMETRIC, shape=_same)
    assert op.jvp == vjp and op.jvp_for(0) is vjp[0]
    # replacing the VJPs later (as a test injecting a bug does) leaves the JVPs as they were
    assert dataclasses.replace(op, vjp=(lambda g, ans, x: g,)).jvp_for(0) is vjp[0]


def test_a_variadic_op_gives_its_rules_as_functions_of_the_position(scratch_op):
    op = scratch_op.defop("cat", lambda *xs: np.concatenate(xs), vjp=lambda i: (lambda g, ans, *xs: g[:1]),
                          jvp=lambda i: (lambda t, ans, *xs: t), shape=_same)
    assert op.arity is None and op.vjp_for(5) is not None and op.jvp_for(2) is not None


@pytest.mark.parametrize(("kw", "message"), [
    ({"args": ("x", "y")}, "2 arg names for 1 VJP rules"),
    ({"jvp": (None, None)}, "2 JVP rules for 1 VJP rules"),
])
def test_defop_refuses_a_record_that_contradicts_itself(scratch_op, kw, message):
    with pytest.raises(ValueError, match=message):
        scratch_op.defop("bad", np.negative, vjp=(lambda g, ans, x: -g,), shape=_same, **kw)


def test_defop_refuses_a_second_op_of_one_name():
    with pytest.raises(ValueError, match="registered twice"):
        defop("mul", np.multiply, vjp=(None, None), shape=_same)


def test_forward_mode_through_an_op_without_jvp_names_the_op(scratch_op):
    scratch_op.defop("nojvp", np.negative, vjp=(lambda g, ans, x: -g,), shape=_same)
    spec = {"graphspec": "1", "inputs": {"x": {"shape": [2]}},
            "nodes": {"y": {"op": "nojvp", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}
    g = graphspec.load(spec)
    assert g.grad({"x": [1.0, 2.0]})["x"].tolist() == [-1.0, -1.0]  # reverse mode works
    with pytest.raises(OpError, match="no JVP") as e:
        g.jvp({"x": [1.0, 0.0]}, {"x": [1.0, 2.0]})
    assert (e.value.op, e.value.node) == ("nojvp", "y")


# -- speed hints are always safe to leave out -------------------------------------------------

def _hintless(monkeypatch) -> None:
    for name, op in OPS.items():
        monkeypatch.setitem(OPS, name, dataclasses.replace(op, reads=None, into=False, batch=None))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_spec_computes_the_same_without_speed_hints(path, monkeypatch):
    g = graphspec.load(path)
    outs = g.run()
    vg = g.value_and_grad() if g.loss is not None else None
    _hintless(monkeypatch)
    h = graphspec.load(path)
    assert not any(s.op.batch or s.op.into or s.op.reads is not None for s in h.plan.steps)
    for n, v in h.run().items():
        np.testing.assert_array_equal(v, outs[n], err_msg=n)
    if vg is not None:
        loss, grads = h.value_and_grad()
        np.testing.assert_array_equal(loss, vg[0])
        for n, v in grads.items():
            np.testing.assert_allclose(v, vg[1][n], rtol=1e-14, atol=0, err_msg=n)


@pytest.mark.parametrize("spec", ["mlp/mlp.json", "lecture/network.json", "losses/hinge.json"])
def test_gradient_check_verdicts_are_the_same_without_speed_hints(spec, monkeypatch):
    with_hints = gradcheck(graphspec.load(ROOT / "specs" / spec), seed=0)
    _hintless(monkeypatch)
    without = gradcheck(graphspec.load(ROOT / "specs" / spec), seed=0)
    assert with_hints.status == without.status == "PASS"
    assert [(c.input, c.status, c.checked) for c in with_hints.checks] == \
        [(c.input, c.status, c.checked) for c in without.checks]
