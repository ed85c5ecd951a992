"""The census and the diagnosis of a failing gradient (graphspec/checker/diagnose.py): each pattern
injected into an op's VJP is named through `gradcheck`, in the text and in the JSON; right gradients
(every shipped spec) never get a diagnosis; the rules hold at every failing number or name nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec import report
from graphspec.checker import FAIL, KINK, PASS, gradcheck
from graphspec.checker.diagnose import (
    census,
    census_text,
    constant_factor,
    diagnose,
    one_path,
    one_row,
    transposed,
    zeros,
)
from graphspec.checker.results import Census
from graphspec.ops import OPS, Aval, defop

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.json") if "data" not in p.parts and "exercises" not in p.parts)
RTOL = 1e-5


@contextlib.contextmanager
def broken(op: str, vjp: tuple) -> Iterator[None]:
    """A copy of an op with a wrong VJP (the JVP kept right); graphs loaded inside the block use it."""
    orig = OPS[op]
    OPS[op] = dataclasses.replace(orig, vjp=vjp, jvp=orig.jvp)
    try:
        yield
    finally:
        OPS[op] = orig


def spec(nodes: dict, loss: str | None = None, inputs: dict | None = None, **params: np.ndarray) -> dict:
    out: dict = {"graphspec": "1", "params": {k: {"value": np.asarray(v).tolist()} for k, v in params.items()},
                 "nodes": nodes}
    if inputs:
        out["inputs"] = {k: {"value": np.asarray(v).tolist(), "grad": False} for k, v in inputs.items()}
    if loss:
        out["loss"] = loss
    return out


def check_of(rep: graphspec.Report, name: str):
    (c,) = [c for c in rep.checks if c.input == name]
    return c


def json_check(rep: graphspec.Report, name: str) -> dict:
    doc = json.loads(report.dumps(report.reports_json([rep])))  # through the real serialiser (no nan)
    (c,) = [c for c in doc["reports"][0]["checks"] if c["input"] == name]
    return c


def node_of(rep: graphspec.Report, node: str):
    (n,) = [n for n in rep.blamed if n.node == node]
    return n


R = np.random.default_rng(5)
X53 = R.normal(size=(5, 3))
W33 = R.normal(size=(3, 3))


# ---------------------------------------------------------------------------------------------
# each pattern, injected, through gradcheck


def test_missing_factor_two_is_named_with_its_factor_in_text_and_json() -> None:
    with broken("square", (lambda g, ans, x: g * x,)):  # d(x^2)/dx without its 2
        g = graphspec.load(spec({"q": {"op": "square", "args": ["x"]}, "L": {"op": "sum", "args": ["q"]}}, "L",
                                x=R.normal(size=(4, 6))))
    rep = gradcheck(g)
    c = check_of(rep, "x")
    assert c.status == FAIL and c.census == Census(24, 0, 24, 0, "elements")
    assert c.diagnosis is not None and c.diagnosis.pattern == "factor" and c.diagnosis.factor == 0.5
    assert c.diagnosis.message == "analytic = 0.5 x numeric at all 24 elements: a missing factor 2?"
    text = rep.text(width=1000)
    assert "census (dL/dx): all 24 elements (100%) over tolerance" in text
    assert "diagnosis (dL/dx): analytic = 0.5 x numeric at all 24 elements: a missing factor 2?" in text
    j = json_check(rep, "x")
    assert j["census"] == {"compared": 24, "within": 0, "over": 24, "kinks": 0, "unit": "elements", "share_over": 1.0}
    assert j["diagnosis"]["pattern"] == "factor" and j["diagnosis"]["factor"] == 0.5
    assert j["diagnosis"]["holds_at"] == 24
    # the node is blamed, and its own VJP (random cotangent, every element) shows the same factor
    n = node_of(rep, "q")
    assert n.diagnosis is not None and n.diagnosis.pattern == "factor" and n.diagnosis.factor == 0.5
    assert "diagnosis of node 'q' (square), its VJP for arg 0 x (x)" in text
    (jn,) = [m for m in json.loads(report.dumps(rep.to_json()))["nodes"] if m["status"] == FAIL]
    assert jn["diagnosis"]["pattern"] == "factor"
    md = report.report_markdown(rep)
    assert "| dL/dx | all 24 elements (100%) over tolerance | analytic = 0.5 x numeric" in md


def test_flipped_sign() -> None:
    with broken("sub", (lambda g, ans, x, y: g, lambda g, ans, x, y: g)):
        g = graphspec.load(spec({"d": {"op": "sub", "args": ["x", "y"]}, "e": {"op": "exp", "args": ["d"]},
                                 "L": {"op": "sum", "args": ["e"]}}, "L", x=R.normal(size=4), y=R.normal(size=4)))
    for fast in (False, True):
        rep = gradcheck(g, fast=fast)
        assert check_of(rep, "x").diagnosis is None and check_of(rep, "x").status == PASS
        d = check_of(rep, "y").diagnosis
        assert d is not None and d.pattern == "sign" and d.factor == -1.0, rep.text()
        unit = "directions" if fast else "elements"
        assert d.message == f"analytic = -numeric at all 4 {unit}: a flipped sign?"
        assert node_of(rep, "d").diagnosis.pattern == "sign"
        assert json_check(rep, "y")["diagnosis"]["factor"] == -1.0
        assert json_check(rep, "x")["diagnosis"] is None


def test_a_float32_graph_is_diagnosed_with_float32_tolerances() -> None:
    s = spec({"q": {"op": "square", "args": ["x"]}, "L": {"op": "sum", "args": ["q"]}}, "L", x=R.normal(size=(3, 2)))
    s["params"]["x"]["dtype"] = "float32"
    with broken("square", (lambda g, ans, x: g * x,)):
        g = graphspec.load(s)
    rep = gradcheck(g)
    assert rep.dtype == "float32"
    d = check_of(rep, "x").diagnosis
    assert d is not None and (d.pattern, d.factor) == ("factor", 0.5)


def test_transposed_gradient() -> None:
    def dy(g, ans, x, y):
        return (np.swapaxes(x, -1, -2) @ g).T  # (x^T g)^T
    with broken("matmul", (OPS["matmul"].vjp[0], dy)):
        g = graphspec.load(spec({"z": {"op": "matmul", "args": ["X", "W"]}, "t": {"op": "tanh", "args": ["z"]},
                                 "L": {"op": "sum", "args": ["t"]}}, "L", inputs={"X": X53}, W=W33))
    rep = gradcheck(g)
    d = check_of(rep, "W").diagnosis
    assert d is not None and d.pattern == "transpose", rep.text()
    assert d.message == ("analytic = numeric transposed (its last two axes swapped) at all 9 elements: "
                         "a transposed gradient?")
    assert node_of(rep, "z").diagnosis.pattern == "transpose"
    assert "a transposed gradient?" in rep.text(width=1000)
    assert json_check(rep, "W")["diagnosis"]["pattern"] == "transpose"
    # a sample of the elements cannot show a transpose: nothing is claimed
    sampled = gradcheck(g, max_elements=5)
    assert check_of(sampled, "W").status == FAIL and check_of(sampled, "W").diagnosis is None


def test_zeros_where_the_numeric_gradient_is_not() -> None:
    with broken("sin", (lambda g, ans, x: 0 * g,)):
        g = graphspec.load(spec({"s": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["s"]}}, "L",
                                x=np.array([0.3, -1.2, 2.0])))
    rep = gradcheck(g)
    d = check_of(rep, "x").diagnosis
    assert d is not None and d.pattern == "zeros" and d.factor == 0.0
    assert d.message == "analytic = 0 at all 3 elements, where the numeric gradient is not: a forgotten term or path?"
    assert node_of(rep, "s").diagnosis.pattern == "zeros"
    assert "a forgotten term or path?" in rep.text(width=1000)


def test_bias_not_summed_over_the_batch_one_row() -> None:
    """add's VJP for the bias returns the first row of the cotangent: the input check cannot tell one row
    from the sum (no pattern is claimed), the node's own check names the broadcast axis."""
    with broken("add", (lambda g, ans, x, y: g, lambda g, ans, x, y: g[0] if np.ndim(g) > np.ndim(y) else g)):
        g = graphspec.load(spec({"z": {"op": "matmul", "args": ["X", "W"]}, "a": {"op": "add", "args": ["z", "b"]},
                                 "t": {"op": "tanh", "args": ["a"]}, "L": {"op": "sum", "args": ["t"]}}, "L",
                                inputs={"X": X53}, W=W33, b=np.array([0.1, -0.2, 0.3])))
    rep = gradcheck(g)
    assert check_of(rep, "b").status == FAIL and check_of(rep, "b").diagnosis is None
    d = node_of(rep, "a").diagnosis
    assert d is not None and d.pattern == "one_row"
    assert d.message == ("analytic = the contribution of index 0 of output axis 0 of 'a' alone (of 5) at all 3 "
                         "elements: a missing sum over the broadcast axis?")
    assert "a missing sum over the broadcast axis?" in rep.text(width=1000)


def test_bias_averaged_instead_of_summed_is_one_over_the_batch() -> None:
    with broken("add", (lambda g, ans, x, y: g, lambda g, ans, x, y: g.mean(0) if np.ndim(g) > np.ndim(y) else g)):
        g = graphspec.load(spec({"z": {"op": "matmul", "args": ["X", "W"]}, "a": {"op": "add", "args": ["z", "b"]},
                                 "t": {"op": "tanh", "args": ["a"]}, "L": {"op": "sum", "args": ["t"]}}, "L",
                                inputs={"X": X53}, W=W33, b=np.array([0.1, -0.2, 0.3])))
    rep = gradcheck(g)
    d = check_of(rep, "b").diagnosis
    assert d is not None and d.pattern == "sum" and d.factor == pytest.approx(0.2), rep.text()
    assert d.message == ("analytic = numeric / 5 at all 3 elements: a missing sum over a broadcast axis of 5 "
                         "(axis 0 of 'X'), or a spurious 1/5?")
    nd = node_of(rep, "a").diagnosis
    assert nd.pattern == "sum" and "the broadcast axis 0 of 'a'" in nd.message
    assert json_check(rep, "b")["diagnosis"]["factor"] == pytest.approx(0.2)


def test_missing_one_over_n_of_a_mean() -> None:
    with broken("mean", (lambda g, ans, x, *, axis, keepdims: np.broadcast_to(
            np.expand_dims(g, axis) if (axis is not None and not keepdims) else g, np.shape(x)),)):
        g = graphspec.load(spec({"t": {"op": "tanh", "args": ["x"]}, "m": {"op": "mean", "args": ["t"],
                                                                       "attrs": {"axis": 0}},
                                 "L": {"op": "sum", "args": ["m"]}}, "L", x=R.normal(size=(6, 2))))
    rep = gradcheck(g)
    d = check_of(rep, "x").diagnosis
    assert d is not None and d.pattern == "mean" and d.factor == 6.0, rep.text()
    assert d.message == "analytic = 6 x numeric at all 12 elements: a missing 1/6 of a mean over 6 (axis 0 of 'x')?"
    assert node_of(rep, "m").diagnosis.pattern == "mean"


def test_fan_out_that_kept_one_contribution() -> None:
    """x feeds sin and exp; sin's VJP drops its contribution: the input's analytic gradient is the
    numeric gradient through exp alone."""
    with broken("sin", (lambda g, ans, x: 0 * g,)):
        g = graphspec.load(spec({"a": {"op": "sin", "args": ["x"]}, "b": {"op": "exp", "args": ["x"]},
                                 "c": {"op": "add", "args": ["a", "b"]}, "L": {"op": "sum", "args": ["c"]}}, "L",
                                x=np.array([0.3, -0.2, 1.1, 0.7])))
    rep = gradcheck(g)
    d = check_of(rep, "x").diagnosis
    assert d is not None and d.pattern == "fan_out", rep.text()
    assert d.message == ("analytic = the numeric gradient through node 'b' (exp) alone ('x' also feeds 'a') at all 4 "
                         "elements: a fan-out that kept one contribution instead of the sum?")
    assert node_of(rep, "a").diagnosis.pattern == "zeros"  # the node that lost it
    assert json_check(rep, "x")["diagnosis"]["pattern"] == "fan_out"


def test_fan_out_of_an_intermediate_value() -> None:
    """h = tanh(X W) feeds sin and exp; sin's VJP drops its contribution: W's gradient is the numeric one
    through exp alone; X is no param, so nothing else fails."""
    with broken("sin", (lambda g, ans, x: 0 * g,)):
        g = graphspec.load(spec({"z": {"op": "matmul", "args": ["X", "W"]}, "h": {"op": "tanh", "args": ["z"]},
                                 "a": {"op": "sin", "args": ["h"]}, "b": {"op": "exp", "args": ["h"]},
                                 "c": {"op": "add", "args": ["a", "b"]}, "L": {"op": "sum", "args": ["c"]}}, "L",
                                inputs={"X": X53}, W=W33))
    rep = gradcheck(g)
    d = check_of(rep, "W").diagnosis
    assert d is not None and d.pattern == "fan_out", rep.text()
    assert "through node 'b' (exp) alone ('h' also feeds 'a') at all 9 elements" in d.message
    # without the bug nothing fails and nothing is diagnosed
    ok = gradcheck(spec({"z": {"op": "matmul", "args": ["X", "W"]}, "h": {"op": "tanh", "args": ["z"]},
                         "a": {"op": "sin", "args": ["h"]}, "b": {"op": "exp", "args": ["h"]},
                         "c": {"op": "add", "args": ["a", "b"]}, "L": {"op": "sum", "args": ["c"]}}, "L",
                        inputs={"X": X53}, W=W33))
    assert ok.ok and all(c.diagnosis is None for c in ok.checks)


def test_a_user_op_defined_with_defop() -> None:
    """A test-only op (swish) whose VJP forgets the product rule's second term: no constant pattern, no
    diagnosis (a slip in the formula is no pattern); the same op with its VJP halved is a factor 2."""
    def fwd(x):
        return x / (1 + np.exp(-x))

    def sig(x):
        return 1 / (1 + np.exp(-x))
    assert "t_swish" not in OPS
    try:
        defop("t_swish", fwd, vjp=(lambda g, ans, x: g * sig(x),), shape=lambda avals: Aval(avals[0].shape, "float64"))
        s = spec({"s": {"op": "t_swish", "args": ["x"]}, "L": {"op": "sum", "args": ["s"]}}, "L", x=R.normal(size=5))
        rep = gradcheck(s)
        assert rep.status == FAIL and check_of(rep, "x").census.over == 5
        assert check_of(rep, "x").diagnosis is None
        OPS["t_swish"] = dataclasses.replace(OPS["t_swish"], vjp=(
            lambda g, ans, x: 0.5 * g * (sig(x) + x * sig(x) * (1 - sig(x))),))
        rep = gradcheck(s)
        d = check_of(rep, "x").diagnosis
        assert d.pattern == "factor" and d.factor == 0.5 and node_of(rep, "s").diagnosis.factor == 0.5
    finally:
        OPS.pop("t_swish", None)


def test_a_slip_at_one_element_is_a_partial_factor() -> None:
    with broken("mul", (lambda g, ans, x, y: g * y * np.where(np.abs(x) < 1e-3, 2.0, 1.0), lambda g, ans, x, y: g * x)):
        g = graphspec.load(spec({"a": {"op": "mul", "args": ["x", "c"]}, "L": {"op": "sum", "args": ["a"]}}, "L",
                                x=np.array([1e-6, 0.5, 2.0]), c=np.array([3.0, 1.0, 0.5])))
    rep = gradcheck(g)
    c = check_of(rep, "x")
    assert c.census == Census(3, 2, 1, 0, "elements")
    assert c.diagnosis.message == "analytic = 2 x numeric at the 1 failing element (the other 2 agree): a factor 2 too many?"
    assert "census (dL/dx): 1 of 3 elements (33%) over tolerance, 2 within" in rep.text(width=1000)


def test_jacobian_entries_are_counted_and_diagnosed() -> None:
    with broken("square", (lambda g, ans, x: g * x,)):
        g = graphspec.load({"graphspec": "1", "params": {"x": {"value": [0.5, -1.0, 2.0]}},
                            "nodes": {"q": {"op": "square", "args": ["x"]}}, "outputs": ["q"]})
    rep = gradcheck(g)
    c = check_of(rep, "x")
    assert c.target_kind == "jacobian" and c.census.unit == "entries" and c.census.compared == 9
    assert c.census.over == 3 and c.census.within == 6  # the off-diagonal zeros agree
    assert c.diagnosis.pattern == "factor" and c.diagnosis.factor == 0.5
    assert c.diagnosis.message == "analytic = 0.5 x numeric at all 9 entries: a missing factor 2?"


# ---------------------------------------------------------------------------------------------
# right gradients never get a diagnosis


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_no_shipped_spec_gets_a_diagnosis(path: Path) -> None:
    for kw in ({}, {"fast": True}):
        rep = gradcheck(path, blame=True, **kw)
        assert rep.ok, rep.text()
        for c in rep.checks:
            assert c.diagnosis is None, (kw, c.input, c.diagnosis)
            assert c.census is not None and c.census.over == 0
            assert c.census.within + c.census.kinks == c.census.compared == len(c.arrays["status"])
        assert all(n.diagnosis is None for n in rep.nodes)
        doc = rep.to_json()
        assert all(c["diagnosis"] is None and c["census"]["over"] == 0 for c in doc["checks"])
        assert "diagnosis" not in rep.text(width=1000)


def test_a_passing_report_has_one_census_line() -> None:
    rep = gradcheck(ROOT / "specs" / "mlp" / "mlp.json")
    lines = [ln for ln in rep.text(width=300).splitlines() if ln.startswith("census")]
    assert lines == ["census: every compared number within tolerance: dloss/dW1 (16 elements), dloss/db1 (8 elements), "
                     "dloss/dW2 (24 elements), dloss/db2 (3 elements)"]


# ---------------------------------------------------------------------------------------------
# the rules, unit by unit, with the near-misses they must not name


def test_census_and_its_text() -> None:
    st = np.array([[FAIL] * 22 + [PASS] * 2], dtype=object)
    c = census(st)
    assert c == Census(24, 2, 22, 0, "elements") and c.share_over == pytest.approx(22 / 24)
    assert census_text(c) == "22 of 24 elements (92%) over tolerance, 2 within"
    assert census_text(census(np.array([FAIL] + [PASS] * 999, dtype=object))) == \
        "1 of 1000 elements (1%) over tolerance, 999 within"  # never rounded to 0%
    assert census_text(census(np.array([FAIL] * 999 + [PASS], dtype=object))).startswith("999 of 1000 elements (99%)")
    assert census_text(census(np.array([PASS, KINK], dtype=object), "directions")) == \
        "1 of 2 directions within tolerance, 1 at a kink"
    assert census_text(census(np.array([FAIL], dtype=object))) == "the one element over tolerance"


N = R.normal(size=(1, 24))


def test_factor_rules() -> None:
    assert constant_factor(0.5 * N, N, rtol=RTOL).message == "analytic = 0.5 x numeric at all 24 elements: a missing factor 2?"
    assert constant_factor(2 * N, N, rtol=RTOL).message.endswith("a factor 2 too many?")
    assert constant_factor(-0.5 * N, N, rtol=RTOL).message.endswith("a flipped sign and a missing factor 2?")
    assert constant_factor(-N, N, rtol=RTOL).pattern == "sign"
    assert constant_factor(N / 3, N, rtol=RTOL).message.startswith("analytic = 1/3 x numeric")
    d = constant_factor(8 * N, N, rtol=RTOL, sizes={8: "axis 0 of 'X'"})
    assert (d.pattern, d.factor) == ("mean", 8.0) and "a missing 1/8 of a mean over 8 (axis 0 of 'X')?" in d.message
    d = constant_factor(N / 8, N, rtol=RTOL, sizes={8: "axis 0 of 'X'"})
    assert (d.pattern, d.message) == ("sum", "analytic = numeric / 8 at all 24 elements: a missing sum over a broadcast "
                                             "axis of 8 (axis 0 of 'X'), or a spurious 1/8?")
    assert constant_factor(8 * N, N, rtol=RTOL) .pattern == "factor"  # no size 8 in the graph: a plain factor
    d = constant_factor(0.731 * N, N, rtol=RTOL)
    assert d.pattern == "factor" and d.factor == pytest.approx(0.731) and "a wrong constant factor" in d.message


def test_factor_near_misses_are_not_named() -> None:
    a = 0.5 * N.copy()
    a[0, 3] *= 1.01  # one element 1% off the factor
    assert constant_factor(a, N, rtol=RTOL) is None
    assert diagnose(N * R.uniform(0.2, 0.8, size=N.shape), N, rtol=RTOL) is None  # a different factor per element
    assert diagnose(N, N, rtol=RTOL) is None  # right: nothing fails, nothing to diagnose
    assert diagnose(N * (1 + 1e-7), N, rtol=RTOL) is None
    # an odd factor at two elements is no pattern (a simple one would be)
    two = np.array([[1.0, -2.0]])
    assert constant_factor(0.731 * two, two, rtol=RTOL) is None
    assert constant_factor(0.5 * two, two, rtol=RTOL).factor == 0.5
    # along K directions of a 2-element input, four ratios are only two independent numbers
    four = np.array([[1.0, -2.0, 0.5, 3.0]])
    assert constant_factor(0.731 * four, four, rtol=RTOL, span=2) is None
    assert constant_factor(0.731 * four, four, rtol=RTOL, span=8) is not None


def test_zeros_rules() -> None:
    a = np.zeros_like(N)
    assert zeros(a, N, rtol=RTOL).message.startswith("analytic = 0 at all 24 elements, where the numeric gradient is not")
    b = N.copy()
    b[0, :4] = 0  # four forgotten terms, the rest right
    assert zeros(b, N, rtol=RTOL).message.startswith("analytic = 0 at the 4 failing elements (the other 20 agree)")
    b[0, 1] = 1e-3 * N[0, 1]  # one failing element is small, not zero
    assert zeros(b, N, rtol=RTOL) is None and diagnose(b, N, rtol=RTOL) is None


def test_transpose_rules() -> None:
    n = R.normal(size=(4, 4))
    assert transposed(n.T.ravel(), n.ravel(), (4, 4), rtol=RTOL).pattern == "transpose"
    m = R.normal(size=(2, 3))
    d = transposed(m.T.reshape(2, 3).ravel(), m.ravel(), (2, 3), rtol=RTOL)
    assert d is not None and "read in the shape (2, 3)" in d.message
    near = n.T.copy()
    near[1, 2] += 0.1
    assert transposed(near.ravel(), n.ravel(), (4, 4), rtol=RTOL) is None
    assert transposed(n.T.ravel(), n.ravel(), None, rtol=RTOL) is None  # a sample: no shape
    assert transposed(n.T.ravel(), n.ravel(), (16,), rtol=RTOL) is None
    sym = n + n.T
    assert transposed(sym.ravel(), sym.ravel(), (4, 4), rtol=RTOL) is None  # right, nothing fails


def test_one_row_and_one_path_rules() -> None:
    rows = R.normal(size=(5, 3))
    num = rows.sum(axis=0)
    d = one_row(rows[2], num, [("output axis 0 of 'a'", rows)], rtol=RTOL)
    assert d.pattern == "one_row" and "index 2 of output axis 0 of 'a' alone (of 5)" in d.message
    assert one_row(rows[2] * 1.01, num, [("axis", rows)], rtol=RTOL) is None
    assert one_row(rows[:2].sum(0), num, [("axis", rows)], rtol=RTOL) is None  # two rows: not one
    p1, p2 = R.normal(size=(1, 6)), R.normal(size=(1, 6))
    d = one_path(p2, p1 + p2, [("node 'a' alone", p1), ("node 'b' alone", p2)], rtol=RTOL)
    assert d.pattern == "fan_out" and "through node 'b' alone" in d.message
    assert one_path(p2 + 0.1 * p1, p1 + p2, [("a", p1), ("b", p2)], rtol=RTOL) is None


def test_kinks_and_non_finite_numbers() -> None:
    n = np.array([[1.0, 2.0, -3.0, 4.0]])
    st = np.array([[FAIL, FAIL, FAIL, KINK]], dtype=object)
    a = 0.5 * n
    a[0, 3] = 7.0  # the kinked element says nothing: left out
    assert constant_factor(a, n, rtol=RTOL, status=st).message == \
        "analytic = 0.5 x numeric at all 3 elements: a missing factor 2?"
    a[0, 1] = np.nan
    assert diagnose(a, n, rtol=RTOL, status=st) is None
