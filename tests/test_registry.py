"""The op record (graphspec/ops/registry.py): what `defop` accepts and refuses, and the promise
that every speed hint is safe to leave out."""

from __future__ import annotations

import dataclasses
import re
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
    with pytest.raises(ValueError, match="already registered"):
        defop("mul", np.multiply, vjp=(None, None), shape=_same)


def test_forward_mode_through_an_op_without_jvp_names_the_op(scratch_op):
    scratch_op.defop("nojvp", np.negative, vjp=(lambda g, ans, x: -g,), shape=_same)
    spec = {"graphspec": "1", "inputs": {"x": {"shape": [2]}},
            "nodes": {"y": {"op": "nojvp", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}
    g = graphspec.load(spec)
    assert g.grad({"x": [1.0, 2.0]})["x"].tolist() == [-1.0, -1.0]  # reverse mode works
    with pytest.raises(graphspec.GraphspecError, match=r"nodes\.y: forward mode cannot pass through op 'nojvp': "
                                                       r"it has no JVP rule \(give its defop jvp=") as e:
        g.jvp({"x": [1.0, 0.0]}, {"x": [1.0, 2.0]})
    assert e.value.exit_code == 2
    # the check compares forward and reverse mode only where forward mode exists, and says so
    rep = gradcheck(g, inputs={"x": [1.0, 2.0]})
    assert rep.status == "PASS" and rep.modes == [] and \
        "forward mode vs reverse mode not compared: op 'nojvp' has no JVP rule" in rep.notes


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


# -- ops from outside graphspec: located errors, no shape rule, explicit replacement ----------

USER_OPS = '''\
import numpy as np
from graphspec.ops import defop

def fwd_raises(x):
    return x[100, 100]

def vjp_raises(g, ans, x):
    raise ArithmeticError("slip")

def vjp_shape(g, ans, x):
    return np.ones(7)

def vjp_none(g, ans, x):
    return None

def fwd_list(x):
    return [1.0, 2.0]

def fwd_int(x):
    return np.ones(np.shape(x), dtype=np.int64)

def good_vjp(g, ans, x):
    return 2 * g

defop("u_fwd", fwd_raises, vjp=(good_vjp,), shape=lambda avals: avals[0])
defop("u_vjp", lambda x: 2 * x, vjp=(vjp_raises,), shape=lambda avals: avals[0])
defop("u_shape", lambda x: 2 * x, vjp=(vjp_shape,), shape=lambda avals: avals[0])
defop("u_none", lambda x: 2 * x, vjp=(vjp_none,), shape=lambda avals: avals[0])
defop("u_list", fwd_list, vjp=(good_vjp,), shape=lambda avals: avals[0])
defop("u_int", fwd_int, vjp=(good_vjp,), shape=lambda avals: avals[0])
'''


@pytest.fixture
def user_ops(tmp_path, scratch_op):
    path = tmp_path / "my_ops.py"
    path.write_text(USER_OPS)
    import runpy

    runpy.run_path(str(path))
    return path, USER_OPS.splitlines()


def _line(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _one(op: str) -> dict:
    return {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0]}},
            "nodes": {"h": {"op": op, "args": ["x"]}, "L": {"op": "sum", "args": ["h"]}}, "loss": "L"}


@pytest.mark.parametrize(("op", "phase", "what", "raised_at"), [
    ("u_fwd", "forward", "IndexError: too many indices", "return x[100, 100]"),
    ("u_vjp", "VJP for 'x'", "ArithmeticError: slip", 'raise ArithmeticError("slip")'),
    ("u_shape", "VJP for 'x'", r"ValueError: the VJP returned shape \[7\] for an arg of shape \[2\]", "def vjp_shape"),
    ("u_none", "VJP for 'x'", "TypeError: the VJP returned None", "def vjp_none"),
    ("u_list", "forward", "the forward returned list, not an array", "def fwd_list"),
    ("u_int", "forward", "the forward returned int64 values; its shape rule said float64", "def fwd_int"),
])
def test_an_error_in_a_user_op_names_the_op_the_node_and_the_user_s_file_and_line(user_ops, op, phase, what,
                                                                                    raised_at):
    path, lines = user_ops
    g = graphspec.load(_one(op))
    with pytest.raises(OpError) as e:
        g.value_and_grad()
    assert (e.value.op, e.value.node, e.value.phase) == (op, "h", phase)
    defined = _line(lines, f'defop("{op}"')
    assert re.search(rf"{what}.*\(at {re.escape(str(path))}:{_line(lines, raised_at)}; "
                     rf"op '{op}' defined at {re.escape(str(path))}:{defined}\)", str(e.value)), str(e.value)


def test_an_op_without_a_shape_rule_learns_its_shape_from_stand_ins(scratch_op):
    op = scratch_op.defop("outer_self", lambda x: np.multiply.outer(x, x), vjp=(lambda g, ans, x: g @ x + x @ g,))
    spec = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0, 3.0]}},
            "nodes": {"h": {"op": "outer_self", "args": ["x"]}, "L": {"op": "sum", "args": ["h"]}}, "loss": "L"}
    g = graphspec.load(spec)
    assert g.avals["h"] == op.shape([g.avals["x"]]) and g.avals["h"].shape == (3, 3)
    np.testing.assert_allclose(g.grad()["x"], 2 * np.sum([1.0, 2.0, 3.0]) * np.ones(3))  # d sum(x x^T)/dx = 2 sum(x)
    assert gradcheck(g).status == "PASS"
    # a symbolic dim: the shape is known when the graph runs
    sym = {**spec, "inputs": {"x": {"shape": ["N"]}}}
    g = graphspec.load(sym)
    assert g.avals["h"].shape is None
    assert g.run({"x": [1.0, 2.0]})["L"] == 9.0


def test_an_op_without_a_shape_rule_whose_forward_fails_on_stand_ins_is_a_located_spec_error(scratch_op):
    scratch_op.defop("needs_matrix", lambda x: x[:, 0], vjp=(lambda g, ans, x: g,))
    with pytest.raises(graphspec.SpecError, match=r"nodes\.h: .*no shape rule, and its forward failed on stand-in "
                                                  r"arrays of shapes \(2,\): IndexError"):
        graphspec.load(_one("needs_matrix"))


def test_replacing_a_built_in_is_explicit_and_every_check_names_it(scratch_op):
    l2 = OPS["l2"]
    with pytest.raises(ValueError, match=r"op 'l2' is already registered \(at .*nn\.py:\d+\): pass replace=True"):
        scratch_op.defop("l2", l2.forward, vjp=l2.vjp, shape=l2.shape)
    mine = scratch_op.defop("l2", l2.forward, vjp=l2.vjp, jvp=l2.jvp, shape=l2.shape, attrs=l2.attrs, replace=True)
    assert mine.replaced and not mine.builtin and OPS["l2"] is mine
    rep = gradcheck(graphspec.load(ROOT / "specs" / "losses" / "l2.json"))
    assert rep.status == "PASS" and f"op 'l2' replaced by {mine.origin}" in rep.notes
    assert f"op 'l2' replaced by {mine.origin}" in rep.text()


def _scale_in_place(x):
    x *= 2
    return x


def _vjp_in_place(g, ans, x):
    ans *= 0
    return 2 * g


@pytest.mark.parametrize(("forward", "vjp", "phase", "what"), [
    (_scale_in_place, lambda g, ans, x: 2 * g, "forward", "it wrote into its argument 'x'"),
    (lambda x: 2 * x, _vjp_in_place, "VJP", "a VJP wrote into the result 'ans'"),
])
def test_a_user_op_that_writes_into_its_arguments_is_named_by_the_check(scratch_op, forward, vjp, phase, what):
    scratch_op.defop("mutates", forward, vjp=(vjp,), shape=_same)
    x = np.array([1.0, 2.0])
    with pytest.raises(OpError, match=what) as e:
        gradcheck(graphspec.load(_one("mutates")), inputs={"x": x})
    assert (e.value.op, e.value.node, e.value.phase) == ("mutates", "h", phase)
    assert x.tolist() == [1.0, 2.0]  # the user's array is never the one written into


def test_a_user_op_handing_back_its_argument_never_lets_a_later_step_write_into_the_user_s_array(scratch_op):
    scratch_op.defop("ident", lambda x: x, vjp=(lambda g, ans, x: g,), shape=_same)
    spec = {"graphspec": "1", "inputs": {"x": {"shape": [2]}},
            "nodes": {"h": {"op": "ident", "args": ["x"]}, "r": {"op": "relu", "args": ["h"]},
                      "L": {"op": "sum", "args": ["r"]}}, "loss": "L"}
    x = np.array([-1.0, 2.0])
    g = graphspec.load(spec)
    for _ in range(2):
        assert g.value_and_grad({"x": x})[0] == 2.0 and g.run({"x": x})["L"] == 2.0
    assert x.tolist() == [-1.0, 2.0]


def test_a_user_op_that_fails_at_a_perturbed_point_of_a_check_is_a_located_op_error(scratch_op):
    def picky(x):
        if np.any(x != np.round(x, 3)):  # fine at the point itself, not a hair away from it
            raise FloatingPointError("no perturbations, please")
        return 2 * x

    scratch_op.defop("picky", picky, vjp=(lambda g, ans, x: 2 * g,), shape=_same)
    with pytest.raises(OpError, match=r"op 'picky' at node 'h' \(forward\): at a perturbed point: FloatingPointError: "
                                      r"no perturbations, please \(at .*test_registry\.py:\d+; op 'picky' defined at"):
        gradcheck(graphspec.load(_one("picky")))


def test_a_user_forward_of_another_shape_than_its_rule_is_named_by_the_check(scratch_op):
    scratch_op.defop("grows", lambda x: np.concatenate([x, x]), vjp=(lambda g, ans, x: g[:2] + g[2:],), shape=_same)
    with pytest.raises(OpError, match=r"op 'grows' at node 'h' \(forward\): the forward returned shape \[4\]; its shape "
                                      r"rule said \[2\]"):
        gradcheck(graphspec.load(_one("grows")))


def test_a_user_op_whose_kink_rule_raises_is_an_op_error_of_its_kink(scratch_op):
    def kink(ans, x):
        raise LookupError("no branches here")

    scratch_op.defop("badkink", lambda x: 2 * x, vjp=(lambda g, ans, x: 2 * g,), shape=_same, kink=kink)
    with pytest.raises(OpError, match=r"op 'badkink' at node 'h' \(kink\): at a perturbed point: LookupError: no branches "
                                      r"here \(at .*test_registry\.py:\d+; op 'badkink' defined at") as e:
        gradcheck(graphspec.load(_one("badkink")))
    assert e.value.phase == "kink"
