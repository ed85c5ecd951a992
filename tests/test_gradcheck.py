"""The gradient checker: passes right gradients, fails wrong ones and names the node, reports kinks,
agrees with independent references, and its batched finite differences equal the one-at-a-time ones."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from bench_models import mlp_nodes

import graphspec
from graphspec.checker import FAIL, KINK, PASS, UNCLEAR, Tolerance, gradcheck
from graphspec.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.json") if "data" not in p.parts and "exercises" not in p.parts)


def _val(a: np.ndarray) -> dict:
    return {"value": np.asarray(a).tolist()}


def mlp_spec(dtype: str = "float64", batch: int = 8, sizes: tuple[int, ...] = (4, 16, 16, 3), act: str = "tanh",
             seed: int = 0) -> dict:
    """An MLP with softmax cross-entropy: X -> (matmul, add bias, act) ... -> logits."""
    r = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes), start=1):
        params[f"W{i}"] = {**_val(r.normal(size=(a, b)) / np.sqrt(a)), "dtype": dtype}
        params[f"b{i}"] = {**_val(r.normal(size=(b,)) * 0.1), "dtype": dtype}
    inputs = {"X": {**_val(r.normal(size=(batch, sizes[0]))), "dtype": dtype, "grad": False},
              "y": {"value": r.integers(0, sizes[-1], size=batch).tolist(), "dtype": "int64"}}
    return {"graphspec": "1", "name": "mlp", "inputs": inputs, "params": params, "nodes": mlp_nodes(sizes, act),
            "loss": "loss"}


def spec(nodes: dict, loss: str | None = None, **leaves: np.ndarray) -> dict:
    """A spec with the given float leaves as params (gradients checked) and the given nodes."""
    out: dict = {"graphspec": "1", "params": {k: _val(v) for k, v in leaves.items()}, "nodes": nodes}
    if loss:
        out["loss"] = loss
    return out


@contextlib.contextmanager
def broken(op: str, vjp: tuple | None = None, jvp: tuple | None = None) -> Iterator[None]:
    """Swap in a copy of an op with a wrong VJP (or JVP); graphs loaded inside the block use it."""
    orig = OPS[op]
    changes = {k: v for k, v in (("vjp", vjp), ("jvp", jvp)) if v is not None}
    if vjp is not None and jvp is None:
        changes["jvp"] = orig.jvp  # elementwise ops share the function: keep the JVP right
    OPS[op] = dataclasses.replace(orig, **changes)
    try:
        yield
    finally:
        OPS[op] = orig


def blamed(rep: graphspec.Report) -> set[str]:
    return {n.node for n in rep.blamed}


# ---------------------------------------------------------------------------------------------
# right gradients pass


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_spec_passes_with_taylor_order_two(path: Path) -> None:
    rep = gradcheck(path, taylor=True)
    assert rep.ok, rep.text()
    assert all(m.status == PASS for m in rep.modes)
    for row in rep.taylor:
        assert row.status != FAIL, rep.text()
        if row.order is not None:
            assert 1.7 < row.order < 2.6, (row.wrt, row.order)


def test_mlp_passes_and_report_has_every_element() -> None:
    rep = gradcheck(mlp_spec())
    assert rep.status == PASS and rep.ok
    assert [c.input for c in rep.checks] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    w1 = rep.checks[0]
    assert w1.shape == (4, 16) and w1.size == w1.checked == 64
    assert len(w1.arrays["analytic"]) == 64 and len(w1.worst_elements) == 5
    assert w1.max_rel_err < 1e-6 and w1.worst is not None and w1.worst.rel_err == w1.max_rel_err
    assert not rep.nodes  # nothing failed, so no node was blamed (and none was checked)


def test_numeric_column_matches_a_naive_loop_over_graph_run() -> None:
    """The batched central differences against the plain API, one element at a time."""
    s = mlp_spec(sizes=(3, 5, 2), batch=4)
    g = graphspec.load(s)
    rep = gradcheck(g)
    for c in rep.checks:
        x = g.params[c.input]
        naive = []
        for j in range(x.size):
            h = 6e-6 * max(1.0, abs(x.flat[j]))
            xp, xm = x.copy(), x.copy()
            xp.flat[j] += h
            xm.flat[j] -= h
            naive.append((float(g.run({c.input: xp}, check_finite="off")["loss"])
                          - float(g.run({c.input: xm}, check_finite="off")["loss"])) / (2 * h))
        np.testing.assert_allclose(c.arrays["numeric"], naive, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(c.arrays["analytic"], g.grad()[c.input].ravel(), rtol=0, atol=0)


BATCH_CASES = {
    "mlp_relu": mlp_spec(act="relu", sizes=(3, 4, 2), batch=3),
    "broadcast_binary": spec({"a": {"op": "mul", "args": ["x", "y"]}, "b": {"op": "div", "args": ["a", "z"]},
                              "c": {"op": "maximum", "args": ["b", "y"]}, "s": {"op": "sum", "args": ["c"]}}, "s",
                             x=np.linspace(-1, 1, 12).reshape(3, 4), y=np.array([0.5, -0.2, 0.3, 0.9]),
                             z=np.array([[1.5], [2.0], [2.5]])),
    "matmul_1d": spec({"a": {"op": "matmul", "args": ["v", "M"]}, "b": {"op": "matmul", "args": ["M", "w"]},
                       "c": {"op": "matmul", "args": ["v", "w"]}, "d": {"op": "matmul", "args": ["T", "M"]},
                       "s1": {"op": "sum", "args": ["a"]}, "s2": {"op": "sum", "args": ["b"]},
                       "s3": {"op": "sum", "args": ["d"], "attrs": {"axis": [0, 2]}},
                       "t": {"op": "add", "args": ["s1", "s2"]}, "t2": {"op": "add", "args": ["t", "c"]},
                       "t3": {"op": "sum", "args": ["s3"]}, "L": {"op": "add", "args": ["t2", "t3"]}}, "L",
                      v=np.array([0.1, -0.4, 0.7]), M=np.arange(9.0).reshape(3, 3) / 10, w=np.array([1.0, 2.0, -1.0]),
                      T=np.arange(18.0).reshape(2, 3, 3) / 20),
    "reductions_softmax": spec({"m": {"op": "max", "args": ["x"], "attrs": {"axis": 0, "keepdims": True}},
                                "l": {"op": "logsumexp", "args": ["x"], "attrs": {"axis": -1}},
                                "sm": {"op": "softmax", "args": ["x"], "attrs": {"axis": 0}},
                                "ls": {"op": "log_softmax", "args": ["x"]},
                                "p": {"op": "mul", "args": ["sm", "ls"]}, "q": {"op": "mean", "args": ["p"]},
                                "r": {"op": "sub", "args": ["x", "m"]}, "rs": {"op": "sum", "args": ["r"],
                                                                                "attrs": {"axis": [0, 1]}},
                                "ll": {"op": "sum", "args": ["l"]}, "a": {"op": "add", "args": ["q", "rs"]},
                                "L": {"op": "add", "args": ["a", "ll"]}}, "L",
                               x=np.array([[0.3, -1.2, 2.0, 0.1], [1.1, 0.4, -0.5, 0.9], [0.0, 0.7, 0.2, -2.0]])),
    "shapes": spec({"t": {"op": "transpose", "args": ["x"], "attrs": {"axes": [1, 0, 2]}},
                    "r": {"op": "reshape", "args": ["t"], "attrs": {"shape": [3, -1]}},
                    "c": {"op": "concat", "args": ["r", "y"], "attrs": {"axis": -1}},
                    "t2": {"op": "transpose", "args": ["c"]}, "e": {"op": "exp", "args": ["t2"]},
                    "L": {"op": "l2", "args": ["e"]}}, "L",
                   x=np.linspace(-0.5, 0.5, 12).reshape(2, 3, 2), y=np.array([[0.1], [0.2], [0.3]])),
    "losses": spec({"xe": {"op": "softmax_cross_entropy", "args": ["s", "p"], "attrs": {"axis": 0, "reduction": "sum"}},
                    "hn": {"op": "hinge", "args": ["s", "s2"], "attrs": {"reduction": "none", "margin": 0.5}},
                    "hs": {"op": "sum", "args": ["hn"]},
                    "ms": {"op": "mse", "args": ["v", "s"], "attrs": {"reduction": "mean"}},
                    "a": {"op": "add", "args": ["xe", "hs"]}, "L": {"op": "add", "args": ["a", "ms"]}}, "L",
                   s=np.array([[1.0, -0.3, 0.4], [0.2, 0.9, -1.1]]), p=np.array([[0.2, 0.5, 0.3], [0.8, 0.5, 0.7]]),
                   s2=np.array([[0.1, 0.35, 0.2], [0.6, -0.2, 0.05]]), v=np.array([0.3, -0.7, 0.1])),
}
BATCH_CASES["losses"]["inputs"] = {}


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
def test_batched_differences_equal_one_at_a_time(name: str) -> None:
    s = BATCH_CASES[name]
    if name == "losses":  # hinge labels must be integer class indices
        s = json.loads(json.dumps(s))
        s["nodes"]["hn"]["args"] = ["s", "lab"]
        s["inputs"]["lab"] = {"value": [2, 0], "dtype": "int64"}
        del s["params"]["s2"]
    fast, slow = gradcheck(s, batch=True, taylor=True), gradcheck(s, batch=False, taylor=True)
    assert fast.status == slow.status == PASS, fast.text()
    for a, b in zip(fast.checks, slow.checks, strict=True):
        np.testing.assert_allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-9, atol=1e-12)
    for a, b in zip(fast.taylor, slow.taylor, strict=True):
        assert a.used == b.used
        np.testing.assert_allclose(np.array(a.remainder, dtype=float), np.array(b.remainder, dtype=float),
                                   rtol=1e-6, atol=1e-15)
    assert fast.evaluations == slow.evaluations


def test_jacobian_of_an_output_without_loss_matches_autograd() -> None:
    agnp = pytest.importorskip("autograd.numpy")
    from autograd import jacobian

    W, x = np.array([[0.5, -1.0, 0.3], [0.2, 0.8, -0.6]]), np.array([0.4, -0.2, 0.9])
    s = spec({"a": {"op": "matmul", "args": ["W", "x"]}, "y": {"op": "tanh", "args": ["a"]}}, W=W, x=x)
    rep = gradcheck(s)
    assert rep.status == PASS and {c.target_kind for c in rep.checks} == {"jacobian"}
    jw = jacobian(lambda w: agnp.tanh(w @ x))(W)  # (2, 2, 3): output, then W's element
    cw = next(c for c in rep.checks if c.input == "W")
    assert cw.checked == 6 and len(cw.arrays["numeric"]) == 2 * 6
    np.testing.assert_allclose(np.reshape(cw.arrays["numeric"], (2, 2, 3)), jw, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.reshape(cw.arrays["analytic"], (2, 2, 3)), jw, rtol=1e-12, atol=1e-14)


def test_big_outputs_are_checked_along_random_projections() -> None:
    x = np.linspace(-1, 1, 200).reshape(10, 20)
    rep = gradcheck(spec({"y": {"op": "sin", "args": ["x"]}}, x=x), jacobian_max=64, projections=3)
    (c,) = rep.checks
    assert c.target_kind == "projection" and c.status == PASS
    assert sorted(set(c.arrays["row"])) == ["u1", "u2", "u3"] and len(c.arrays["numeric"]) == 600


def test_float32_graph_is_differenced_in_float64_and_says_so() -> None:
    rep = gradcheck(mlp_spec(dtype="float32"))
    assert rep.dtype == "float32" and rep.fd_dtype == "float64" and rep.status == PASS, rep.text()
    assert any("float64" in n for n in rep.notes) and rep.tolerance.rtol > 1e-5
    # the finite differences were not taken in float32: they agree with float64 ones of the same point
    rep64 = gradcheck(mlp_spec(dtype="float32"), tolerance=Tolerance(6e-6, 1e-4, 1e-5))
    np.testing.assert_allclose(rep.checks[0].arrays["numeric"], rep64.checks[0].arrays["numeric"], rtol=1e-12)


def test_float32_graph_with_a_broken_op_fails() -> None:
    with broken("tanh", vjp=(lambda g, ans, x: g * (1 - ans),)):
        rep = gradcheck(mlp_spec(dtype="float32"))
    assert rep.status == FAIL and blamed(rep) == {"h1", "h2"}


def test_max_elements_samples() -> None:
    rep = gradcheck(mlp_spec(), max_elements=10)
    sizes = {c.input: (c.checked, c.size) for c in rep.checks}
    assert sizes["W2"] == (10, 256) and sizes["b3"] == (3, 3)
    assert rep.status == PASS
    w2 = next(c for c in rep.checks if c.input == "W2")
    assert "sampled 10 of 256 elements at random" in " ".join(w2.notes) and "sampled 10" in rep.text()
    assert not any("sampled" in n for c in rep.checks if c.input == "b3" for n in c.notes)


def test_fast_mode_passes_and_uses_few_evaluations() -> None:
    full, fast = gradcheck(mlp_spec()), gradcheck(mlp_spec(), fast=True, directions=3)
    assert fast.status == PASS and fast.mode == "fast"
    assert all(c.checked == 3 and c.method == "directions" for c in fast.checks)
    assert fast.evaluations == 6 * 2 * 3 < full.evaluations


@pytest.mark.parametrize("sizes", [(4, 16, 16, 3), (100, 200, 10)])
def test_fast_mode_compares_every_input_side_by_side_as_each_alone(sizes: tuple[int, ...]) -> None:
    """The inputs' directions are classified and reported together (and, on the big MLP, come from
    passes of their own, joined): the first input's numbers are those of a check of that input alone
    (the same seed draws it the same directions)."""
    g = graphspec.load(mlp_spec(batch=32, sizes=sizes))
    every, alone = gradcheck(g, fast=True, modes=False), gradcheck(g, fast=True, modes=False, wrt=["W1"])
    a, b = every.checks[0], alone.checks[0]
    assert a.input == b.input == "W1" and a.status == b.status == PASS and a.checked == b.checked == 4
    np.testing.assert_array_equal(a.arrays["analytic"], b.arrays["analytic"])
    np.testing.assert_allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-9)
    assert a.arrays["status"] == b.arrays["status"] and a.census == b.census
    assert [c.input for c in every.checks] == list(g.wrt) and all(c.checked == 4 for c in every.checks)
    for c in every.checks:  # each check's own numbers, not a neighbour's
        assert c.max_rel_err == max(c.arrays["rel_err"]) and c.worst.rel_err == c.max_rel_err


def test_fast_directions_are_uniform_with_unit_variance_and_big_ones_share_a_vector() -> None:
    from graphspec.checker.input_checks import SIGNED, WIDTH, _directions

    x = np.linspace(-3, 3, 40_000)
    scale = np.maximum(1.0, np.abs(x))
    d = _directions(np.random.default_rng(3), 4, x)  # 4 n >= SIGNED: one vector times random signs
    assert 4 * x.size >= SIGNED and d.shape == (4, x.size)
    assert np.all(np.abs(d) == np.abs(d[0])) and 0.4 < np.mean(np.sign(d[0]) == np.sign(d[1])) < 0.6
    r = np.random.default_rng(3)
    z = (r.random(size=x.size) - 0.5) * (WIDTH * scale)  # the same draws: the same vector
    np.testing.assert_array_equal(np.abs(d[0]), np.abs(z))
    bits = np.unpackbits(np.frombuffer(r.bytes((4 * x.size + 7) // 8), dtype=np.uint8), count=4 * x.size)
    np.testing.assert_array_equal(d, np.where(bits.reshape(4, -1).astype(bool), z, -z))  # signs as np.where's
    for u in (d / scale, _directions(np.random.default_rng(4), 4, np.ones(5000))):  # big, and small (independent)
        assert np.all(np.abs(u) <= 3 ** 0.5) and abs(np.mean(u)) < 0.03 and abs(np.var(u) - 1) < 0.03
        quartiles = np.quantile(np.abs(u), [0.25, 0.5, 0.75]) / 3 ** 0.5  # |u| uniform on [0, sqrt 3): 1/4, 1/2, 3/4
        np.testing.assert_allclose(quartiles, [0.25, 0.5, 0.75], atol=0.02)
    small = _directions(np.random.default_rng(4), 4, np.ones(100))
    assert len({tuple(np.abs(row)) for row in small}) == 4  # independent rows below SIGNED


def test_fast_mode_still_catches_a_wrong_jvp_with_the_directions_as_v() -> None:
    with broken("exp", jvp=(lambda t, ans, x: 2 * t * ans,)):
        g = graphspec.load(spec({"e": {"op": "exp", "args": ["x"]}, "L": {"op": "sum", "args": ["e"]}}, "L",
                                x=np.array([0.1, -0.3])))
    rep = gradcheck(g, fast=True)
    assert [c.status for c in rep.checks] == [PASS] and [m.status for m in rep.modes] == [FAIL]
    assert blamed(rep) == {"e"}


def test_fast_mode_fails_a_wrong_gradient() -> None:
    with broken("mul", vjp=(lambda g, ans, x, y: 2 * g * y, lambda g, ans, x, y: g * x)):
        g = graphspec.load(spec({"a": {"op": "mul", "args": ["x", "y"]}, "L": {"op": "sum", "args": ["a"]}}, "L",
                                x=np.array([1.0, 2.0, 3.0]), y=np.array([0.5, -1.0, 2.0])))
    rep = gradcheck(g, fast=True)
    assert rep.status == FAIL and [c.status for c in rep.checks] == [FAIL, PASS] and blamed(rep) == {"a"}


# ---------------------------------------------------------------------------------------------
# wrong gradients fail, and the report names the node


def _transposed_matmul_dy(g, ans, x, y):
    return np.swapaxes(np.swapaxes(x, -1, -2) @ g, -1, -2)  # (x^T g)^T: right shape only when square


def _square_mlp() -> dict:
    return mlp_spec(sizes=(4, 4, 4), batch=5)


BUGS: dict[str, tuple[str, dict, Callable[[], dict], set[str]]] = {
    "scaled_vjp": ("mul", {"vjp": (lambda g, ans, x, y: 1.5 * g * y, lambda g, ans, x, y: g * x)},
                   lambda: spec({"p": {"op": "mul", "args": ["x", "w"]}, "e": {"op": "exp", "args": ["p"]},
                                 "L": {"op": "sum", "args": ["e"]}}, "L",
                                x=np.array([0.2, -0.4, 0.6]), w=np.array([1.0, 0.5, -0.3])), {"p"}),
    "wrong_sign": ("sub", {"vjp": (lambda g, ans, x, y: g, lambda g, ans, x, y: g)},
                   lambda: spec({"d": {"op": "sub", "args": ["x", "y"]}, "q": {"op": "square", "args": ["d"]},
                                 "L": {"op": "sum", "args": ["q"]}}, "L",
                                x=np.array([1.0, 2.0]), y=np.array([0.3, -0.5])), {"d"}),
    "missing_broadcast_reduction": (
        "add", {"vjp": (lambda g, ans, x, y: g, lambda g, ans, x, y: g[0] if np.ndim(g) > np.ndim(y) else g)},
        lambda: mlp_spec(sizes=(3, 4, 2), batch=5), {"z1", "z2"}),
    "transposed_matmul_vjp": ("matmul", {"vjp": (OPS["matmul"].vjp[0], _transposed_matmul_dy)}, _square_mlp,
                              {"a1", "a2"}),
    "wrong_softmax_jacobian": (
        "softmax", {"vjp": (lambda g, ans, x, *, axis: ans * g,)},
        lambda: spec({"s": {"op": "softmax", "args": ["x"]}, "l": {"op": "log", "args": ["s"]},
                      "m": {"op": "mul", "args": ["l", "t"]}, "L": {"op": "sum", "args": ["m"]}}, "L",
                     x=np.array([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]]), t=np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])),
        {"s"}),
    "wrong_tanh_derivative": ("tanh", {"vjp": (lambda g, ans, x: g * (1 - ans),)}, lambda: mlp_spec(sizes=(3, 4, 2)),
                              {"h1"}),
    "xent_missing_mean": ("softmax_cross_entropy",
                          {"vjp": (lambda g, ans, logits, labels, *, axis, reduction:
                                   g * (np.exp(logits) / np.exp(logits).sum(axis, keepdims=True)
                                        - np.eye(logits.shape[axis])[labels]), None)},
                          lambda: mlp_spec(sizes=(3, 4, 2), batch=4), {"loss"}),
    # the retries with smaller and relative steps must not pass these: a steep function (1/x at small x)
    # with a wrong VJP, and a VJP wrong only at a tiny element of a linear function (its differences
    # are exact at every step, so the relative-direction retry of --fast is never taken)
    "wrong_div_at_small_x": ("div", {"vjp": (OPS["div"].vjp[0], lambda g, ans, x, y: -1.5 * g * x / y ** 2)},
                             lambda: spec({"r": {"op": "div", "args": ["c", "x"]}, "L": {"op": "sum", "args": ["r"]}},
                                          "L", x=np.array([0.001, 0.002, 0.5]), c=np.ones(3)), {"r"}),
    "wrong_only_at_a_tiny_element": (
        "mul", {"vjp": (lambda g, ans, x, y: g * y * np.where(np.abs(x) < 1e-3, 2.0, 1.0), lambda g, ans, x, y: g * x)},
        lambda: spec({"a": {"op": "mul", "args": ["x", "c"]}, "L": {"op": "sum", "args": ["a"]}}, "L",
                     x=np.array([1e-6, 0.5, 2.0]), c=np.array([3.0, 1.0, 0.5])), {"a"}),
}
FAST_SEEDS = range(4)


@pytest.mark.parametrize("mode", ["full", "fast", "blame", "float32"])
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_injected_bug_fails_and_is_blamed_in_every_mode(bug: str, mode: str) -> None:
    """A wrong gradient FAILs and its node is blamed in full, --fast (several seeds), --blame and on a
    float32 copy: the retries that keep right gradients from failing never pass a wrong one."""
    op, change, make, nodes = BUGS[bug]
    s = make()
    if mode == "float32":
        for decl in [*s.get("params", {}).values(), *s.get("inputs", {}).values()]:
            if decl.get("dtype", "float64") == "float64":
                decl["dtype"] = "float32"
    with broken(op, **change):
        g = graphspec.load(s)
    runs = [{"fast": True, "seed": k} for k in FAST_SEEDS] if mode == "fast" else \
        [{"blame": True}] if mode == "blame" else [{"taylor": True}]
    for kw in runs:
        rep = gradcheck(g, **kw)
        assert rep.status == FAIL and not rep.ok, (kw, rep.text())
        if kw.get("taylor"):  # float32's rounding floor in the Taylor test does not hide a wrong gradient
            assert rep.taylor[0].status == FAIL, rep.text()
        assert any(c.status == FAIL for c in rep.checks), (kw, rep.text())
        assert blamed(rep) == nodes, (kw, rep.text())
        assert "FAIL" in report_verdict(rep)


def report_verdict(rep: graphspec.Report) -> str:
    return rep.text(width=1000).strip().splitlines()[-1]


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_injected_bug_fails_and_names_the_node(bug: str) -> None:
    op, change, make, nodes = BUGS[bug]
    with broken(op, **change):
        g = graphspec.load(make())
    rep = gradcheck(g, taylor=True)
    assert rep.status == FAIL and not rep.ok
    assert blamed(rep) == nodes, rep.text()
    assert {n.op for n in rep.blamed} == {op}
    assert all(n.mode == "vjp" for n in rep.blamed)  # the JVPs were left right
    assert any(m.status == FAIL for m in rep.modes)
    (all_row, *_) = rep.taylor
    assert all_row.status == FAIL and all_row.order is not None and 0.7 < all_row.order < 1.3, rep.text()
    text = rep.text()
    assert "blame" in text and all(f"'{n}'" in text for n in nodes)


def test_the_same_graph_passes_without_the_bug() -> None:
    for op, _, make, _ in BUGS.values():
        assert gradcheck(make()).status == PASS, op


def test_a_wrong_jvp_alone_is_caught_by_the_mode_check_and_blamed() -> None:
    with broken("sin", jvp=(lambda t, ans, x: t * np.sin(x),)):
        g = graphspec.load(spec({"s": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["s"]}}, "L",
                                x=np.array([0.3, 1.2, -0.7])))
    rep = gradcheck(g)
    assert [c.status for c in rep.checks] == [PASS]  # reverse mode is right
    assert [m.status for m in rep.modes] == [FAIL]
    assert [(n.node, n.mode) for n in rep.blamed] == [("s", "jvp")]


def test_blame_everything_on_request_and_all_pass() -> None:
    rep = gradcheck(mlp_spec(), blame=True)
    assert rep.nodes and all(n.status == PASS for n in rep.nodes) and rep.status == PASS
    assert {n.node for n in rep.nodes} >= {"a1", "z1", "h1", "loss"}


# ---------------------------------------------------------------------------------------------
# kinks


def _kinked(node: dict, **leaves: np.ndarray) -> graphspec.Report:
    return gradcheck(spec({"k": node, "L": {"op": "sum", "args": ["k"]}}, "L", **leaves))


@pytest.mark.parametrize("op", ["relu", "abs", "leaky_relu"])
def test_unary_kink_at_zero_is_kink_not_fail_nor_silent_pass(op: str) -> None:
    rep = _kinked({"op": op, "args": ["x"]}, x=np.array([-1.0, 0.0, 2.0]))
    (c,) = rep.checks
    assert c.status == KINK and rep.status == KINK and rep.ok
    assert c.arrays["status"] == [PASS, KINK, PASS]
    (e,) = c.kinks
    assert e.index == (1,) and [(k.node, k.op, k.at) for k in e.kinks] == [("k", op, (1,))]


def test_strict_turns_kinks_into_failures() -> None:
    rep = gradcheck(spec({"k": {"op": "relu", "args": ["x"]}, "L": {"op": "sum", "args": ["k"]}}, "L",
                         x=np.array([0.0, 1.0])), strict=True)
    assert rep.status == KINK and not rep.ok


def test_max_with_ties_is_a_kink() -> None:
    rep = _kinked({"op": "max", "args": ["x"], "attrs": {"axis": -1}}, x=np.array([[1.0, 3.0, 3.0], [0.5, 0.2, 0.1]]))
    (c,) = rep.checks
    assert c.status == KINK
    assert sorted(e.index for e in c.kinks) == [(0, 1), (0, 2)]
    assert c.arrays["status"][3:] == [PASS] * 3


def test_maximum_tie_is_a_kink() -> None:
    rep = _kinked({"op": "maximum", "args": ["x", "y"]}, x=np.array([1.0, 2.0]), y=np.array([1.0, 0.0]))
    assert [c.arrays["status"] for c in rep.checks] == [[KINK, PASS], [KINK, PASS]]


def test_hinge_at_the_margin_is_a_kink() -> None:
    s = spec({"L": {"op": "hinge", "args": ["s", "y"]}}, "L", s=np.array([[2.0, 1.0, 0.0], [0.3, 0.1, 2.0]]))
    s["inputs"] = {"y": {"value": [0, 2], "dtype": "int64"}}  # row 0: s_1 - s_0 + 1 = 0, exactly at the margin
    rep = gradcheck(s)
    (c,) = rep.checks
    assert c.status == KINK and rep.ok
    assert {e.index for e in c.kinks} == {(0, 0), (0, 1)}
    assert all([(k.node, k.at) for k in e.kinks] == [("L", (0, 1))] for e in c.kinks)  # margin of class 1, row 0


def test_relu_network_away_from_kinks_has_no_false_kinks() -> None:
    rep = gradcheck(mlp_spec(act="relu"))
    assert rep.status == PASS, rep.text()


def test_taylor_steps_that_cross_a_kink_are_not_used() -> None:
    # relu(x) with x = 0.01: steps of 0.1 cross the kink, steps below 0.01 do not
    rep = gradcheck(spec({"k": {"op": "relu", "args": ["x"]}, "q": {"op": "square", "args": ["k"]},
                          "L": {"op": "sum", "args": ["q"]}}, "L", x=np.array([0.01])), taylor=True)
    (row,) = rep.taylor
    assert row.used[-1] and not all(row.used) and row.status == PASS and abs(row.order - 2) < 0.1


# ---------------------------------------------------------------------------------------------
# step sizes, tolerances, reports


def test_steep_function_passes_after_richardson_and_says_so() -> None:
    s = spec({"s": {"op": "mul", "args": ["x", 3000.0]}, "y": {"op": "sin", "args": ["s"]},
              "L": {"op": "sum", "args": ["y"]}}, "L", x=np.array([0.1234, 0.4321]))
    assert gradcheck(s, refine=False).status == FAIL  # plain central differences are off by ~(3000 h)^2 / 6
    rep = gradcheck(s)
    assert rep.status == PASS and len(rep.checks[0].notes) == 1 and "Richardson" in rep.checks[0].notes[0]


def test_step_scales_with_magnitude() -> None:
    # x = 1e6: a fixed step of 1e-6 (torch's eps) would lose 10 of float64's 16 digits to rounding
    x = np.array([1.0e6, -2.5e6])
    rep = gradcheck(spec({"q": {"op": "square", "args": ["x"]}, "L": {"op": "sum", "args": ["q"]}}, "L", x=x))
    assert rep.status == PASS and rep.checks[0].max_rel_err < 1e-8


def test_tiny_gradients_are_not_passed_by_an_absolute_floor() -> None:
    # gradients of size 1e-7 scaled by 2: torch's atol 1e-5 would pass them; ours must not
    with broken("mul", vjp=(lambda g, ans, x, y: 2 * g * y, lambda g, ans, x, y: g * x)):
        g = graphspec.load(spec({"a": {"op": "mul", "args": ["x", "c"]}, "L": {"op": "sum", "args": ["a"]}}, "L",
                                x=np.array([1.0, 2.0]), c=np.array([1e-7, 3e-7])))
    rep = gradcheck(g, wrt=["x"])
    assert rep.checks[0].status == FAIL


def test_json_report_keys_and_values() -> None:
    from graphspec import report

    with broken("sub", vjp=(lambda g, ans, x, y: g, lambda g, ans, x, y: g)):
        g = graphspec.load(BUGS["wrong_sign"][2]())
    doc = json.loads(report.dumps(report.reports_json([gradcheck(g, taylor=True)])))
    assert doc["format"] == "graphspec-gradcheck" and doc["version"] == 1 and doc["ok"] is False
    (r,) = doc["reports"]
    assert set(r) >= {"spec", "name", "status", "ok", "strict", "mode", "dtype", "fd_dtype", "tolerance", "checks",
                      "modes", "nodes", "blamed", "taylor", "notes", "seconds", "evaluations"}
    c = r["checks"][1]
    assert c["input"] == "y" and c["status"] == "FAIL" and c["shape"] == [2]
    assert set(c["elements"]) == {"index", "row", "analytic", "numeric", "abs_err", "rel_err", "status"}
    assert c["elements"]["index"] == [[0], [1]]
    assert r["blamed"] == [{"node": "d", "op": "sub", "arg": 1, "arg_name": "y (y)", "mode": "vjp"}]
    assert c["worst"]["analytic"] == pytest.approx(-c["worst"]["numeric"], rel=1e-6)


def test_markdown_report_names_the_blamed_node() -> None:
    from graphspec import report

    with broken("sub", vjp=(lambda g, ans, x, y: g, lambda g, ans, x, y: g)):
        g = graphspec.load(BUGS["wrong_sign"][2]())
    md = report.report_markdown(gradcheck(g))
    assert "**FAIL**" in md and "**Blame:** node `d` (sub)" in md and "| element |" in md


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    from graphspec.files import write_atomic

    out = tmp_path / "r.json"
    out.write_text("old")
    write_atomic(out, "new")
    assert out.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_wrt_rejects_unknown_names() -> None:
    with pytest.raises(graphspec.InputError):
        gradcheck(mlp_spec(), wrt=["nope"])


def test_loss_with_an_array_seed_checks_the_seeded_sum() -> None:
    x = np.array([[0.1, 0.2], [0.3, -0.4]])
    seed = np.array([[1.0, 2.0], [3.0, -1.0]])
    s = spec({"y": {"op": "tanh", "args": ["x"]}}, x=x)
    s["loss"] = {"node": "y", "seed": seed.tolist()}
    rep = gradcheck(s)
    assert rep.status == PASS
    np.testing.assert_allclose(rep.checks[0].arrays["numeric"], (seed * (1 - np.tanh(x) ** 2)).ravel(), rtol=1e-8)


def test_non_finite_loss_fails_and_names_the_node() -> None:
    """A nan loss has no gradients to check: the report says so and names the node, and neither
    lists nan differences element by element nor blames log's sound VJP."""
    s = spec({"y": {"op": "log", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "L", x=np.array([-1.0, 2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and numpy says nothing of its own
        rep = gradcheck(s)
    assert rep.status == FAIL and not rep.ok
    assert "node 'y' (log)" in rep.error and "cannot be checked" in rep.error
    assert rep.checks == [] and rep.blamed == []


@pytest.mark.parametrize("op", ["log", "sqrt"])
def test_points_near_a_domain_edge_are_differenced_with_a_relative_step(op: str) -> None:
    """x = 1e-9: x - eps is past the edge of log's and sqrt's domain (a nan difference); the
    checker retakes the element with h = eps |x| and says so."""
    s = spec({"y": {"op": op, "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "L", x=np.array([1e-9, 2.0]))
    rep = gradcheck(s)
    assert rep.ok, rep.text()
    assert any("edge of an op's domain" in n for n in rep.checks[0].notes)


def test_a_wrong_gradient_near_a_domain_edge_still_fails() -> None:
    with broken("log", vjp=(lambda g, ans, x: g / (2 * x),)):
        g = graphspec.load(spec({"y": {"op": "log", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "L",
                                x=np.array([1e-9, 2.0])))
    rep = gradcheck(g)
    assert rep.status == FAIL and blamed(rep) == {"y"}


def test_a_pole_inside_the_graph_is_unclear_not_blamed() -> None:
    """sqrt at 0 has an infinite slope: its node check can only be UNCLEAR, never a claim that sqrt's VJP is wrong."""
    s = spec({"r": {"op": "sqrt", "args": ["x"]}, "L": {"op": "sum", "args": ["r"]}}, "L", x=np.array([0.0, 4.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = gradcheck(s, blame=True)
    sqrt_rows = [n for n in rep.nodes if n.node == "r"]
    assert sqrt_rows and all(n.status == UNCLEAR for n in sqrt_rows)
    assert not any(n.node == "r" for n in rep.blamed)


def test_a_vjp_that_raises_is_blamed_not_a_crash() -> None:
    def bad(g, ans, x, y):
        return np.swapaxes(x, -1, -2) @ np.swapaxes(g, -1, -2)  # fails for 1-D operands

    with broken("matmul", vjp=(OPS["matmul"].vjp[0], bad)):
        g = graphspec.load(spec({"a": {"op": "matmul", "args": ["M", "v"]}, "L": {"op": "sum", "args": ["a"]}}, "L",
                                M=np.ones((2, 3)), v=np.array([1.0, 2.0, 3.0])))
    rep = gradcheck(g)
    assert rep.status == FAIL and rep.error.startswith("the backward pass raised")
    (n,) = rep.blamed
    assert (n.node, n.mode, n.arg) == ("a", "vjp", 1) and n.message
    assert "fails: " in rep.text() and n.message in rep.text().replace("\n", " ")


def test_a_vjp_with_the_wrong_shape_is_blamed() -> None:
    with broken("sum", vjp=(lambda g, ans, x, *, axis, keepdims: np.ones(np.shape(x)[:-1]) * g,)):
        g = graphspec.load(spec({"s": {"op": "sum", "args": ["x"]}}, x=np.ones((2, 3))))
    rep = gradcheck(g)
    assert rep.status == FAIL and blamed(rep) == {"s"}


def test_an_op_without_a_vjp_for_a_float_arg_is_blamed() -> None:
    with broken("mul", vjp=(lambda g, ans, x, y: g * y, None)):
        g = graphspec.load(spec({"a": {"op": "mul", "args": ["x", "y"]}, "L": {"op": "sum", "args": ["a"]}}, "L",
                                x=np.array([1.0, 2.0]), y=np.array([0.5, -1.0])))
    rep = gradcheck(g, modes=False)
    assert [c.status for c in rep.checks] == [PASS, FAIL]  # d/dy comes out as zero
    (n,) = rep.blamed
    assert (n.node, n.arg, n.mode) == ("a", 1, "vjp") and "no VJP" in n.message


VACUOUS = {
    "no_grad": ({"inputs": {"x": {"value": [1.0, 2.0], "grad": False}},
                 "nodes": {"y": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"},
                "no param or float input with a gradient"),
    "int_inputs_only": ({"inputs": {"k": {"value": [1, 2], "dtype": "int64"}},
                         "nodes": {"y": {"op": "sum", "args": ["k"]}}}, "no param or float input with a gradient"),
    "no_output": ({"params": {"w": {"value": [1.0]}}, "nodes": {"y": {"op": "sin", "args": ["w"]}}, "outputs": []},
                  "no loss and no float output with elements"),
    "no_output_uses_the_param": ({"params": {"w": {"value": [1.0]}}, "inputs": {"x": {"value": 2.0, "grad": False}},
                                  "nodes": {"y": {"op": "sin", "args": ["w"]}, "z": {"op": "cos", "args": ["x"]}},
                                  "outputs": ["z"]}, "no output depends on any param or input with a gradient (w)"),
    "empty_output": ({"params": {"w": {"value": [1.0]}}, "inputs": {"e": {"value": []}},
                      "nodes": {"y": {"op": "mul", "args": ["w", "e"]}}},
                     "no loss and no float output with elements"),
    "empty_params": ({"params": {"w": {"value": []}}, "nodes": {"y": {"op": "sin", "args": ["w"]}, "L": {
        "op": "sum", "args": ["y"]}}, "loss": "L"}, "every param and input with a gradient is empty (w: shape [0])"),
    "loss_ignores_every_param": ({"params": {"w": {"value": [1.0, 2.0]}}, "inputs": {"x": {"value": 3.0, "grad": False}},
                                  "nodes": {"s": {"op": "sin", "args": ["w"]}, "L": {"op": "square", "args": ["x"]}},
                                  "loss": "L"}, "the loss depends on no param or input with a gradient (w)"),
}


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("case", sorted(VACUOUS))
def test_nothing_to_check_is_not_a_pass(case: str, fast: bool) -> None:
    body, reason = VACUOUS[case]
    rep = gradcheck({"graphspec": "1", **body}, fast=fast, taylor=True)
    assert rep.status == "EMPTY" and rep.verdict == "EMPTY" and not rep.ok, rep.text()
    assert rep.empty.startswith("nothing to check: ") and reason in rep.empty
    assert report_verdict(rep).startswith("EMPTY: nothing to check") and "PASS" not in rep.text()
    assert rep.to_json()["status"] == "EMPTY" and rep.to_json()["ok"] is False and reason in rep.to_json()["empty"]


def test_a_param_the_loss_ignores_is_named_in_a_warning() -> None:
    s = mlp_spec(sizes=(3, 4, 2), batch=3)
    s["params"]["W9"] = {"value": [[0.5, 0.1]]}  # declared, with grad, never used: a forgotten edge
    s["nodes"]["dead"] = {"op": "sin", "args": ["W9"]}  # used by a node the loss does not read
    g = graphspec.load(s)
    assert g.unused_wrt == ["W9"]
    rep = gradcheck(g)
    assert rep.ok and rep.status == PASS
    assert rep.warnings == ["param 'W9' has grad but the loss does not depend on it"]
    assert "warning: param 'W9' has grad but the loss does not depend on it" in rep.text()
    assert rep.to_json()["warnings"] == rep.warnings
    assert gradcheck(mlp_spec(sizes=(3, 4, 2))).warnings == [] and graphspec.load(mlp_spec()).unused_wrt == []


def test_unused_wrt_without_a_loss_reads_the_outputs() -> None:
    s = spec({"y": {"op": "sin", "args": ["a"]}, "z": {"op": "cos", "args": ["b"]}}, a=np.ones(2), b=np.ones(2))
    s["outputs"] = ["y"]
    g = graphspec.load(s)
    assert g.unused_wrt == ["b"]
    assert gradcheck(g).warnings == ["param 'b' has grad but no output depends on it"]


@pytest.mark.parametrize("fast", [False, True])
def test_a_kinked_node_with_no_elements(fast: bool) -> None:
    """maximum(x, []) is empty: perturbing x flips no kink, and finding where it flips took the
    argmax of an empty row (numpy's ValueError)."""
    s = {"graphspec": "1", "params": {"x": {"value": 1.5}}, "inputs": {"e": {"value": []}},
         "nodes": {"y": {"op": "maximum", "args": ["x", "e"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}
    rep = gradcheck(s, fast=fast, taylor=True)
    assert rep.status == PASS and not rep.error


# ---------------------------------------------------------------------------------------------
def test_every_op_s_stacking_rule_is_one_the_checker_has() -> None:
    """defop(batch=...) is a rule of ops/batching.py (the stacked pass calls it, knowing no attr), or the
    op's row in tests/optable.py says why it has none; a row giving a reason has no rule."""
    from optable import row

    from graphspec.ops import batching

    assert all(getattr(batching, op.batch.__name__) is op.batch for op in OPS.values() if op.batch is not None)
    # an op without a rule runs row by row: its row in tests/optable.py says why (no_batch=...)
    assert [n for n, op in OPS.items() if op.batch is None and not row(n).no_batch] == []
    assert [n for n, op in OPS.items() if op.batch is not None and row(n).no_batch] == []


# the stacking rules, on random shapes: stacked differences equal one-at-a-time ones

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

dims = st.integers(1, 3)


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = tuple(draw(st.lists(dims, min_size=0, max_size=3)))
    other = [1 if draw(st.booleans()) else d for d in shape]
    other = other[draw(st.integers(0, len(other))):]  # drop leading axes: numpy aligns from the right
    return (shape, tuple(other)) if draw(st.booleans()) else (tuple(other), shape)


@st.composite
def reduce_attrs(draw: st.DrawFn, ndim: int) -> dict:
    if ndim == 0 or draw(st.booleans()):
        return {"keepdims": draw(st.booleans())}
    axes = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda a: a % ndim))
    return {"axis": axes[0] if len(axes) == 1 else axes, "keepdims": draw(st.booleans())}


def _assert_stacked_equals_rows(s: dict) -> None:
    fast, slow = gradcheck(s, batch=True, modes=False), gradcheck(s, batch=False, modes=False)
    for a, b in zip(fast.checks, slow.checks, strict=True):
        np.testing.assert_allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-9, atol=1e-12)
        assert a.arrays["status"] == b.arrays["status"]
    assert fast.status == PASS, fast.text()


@settings(max_examples=40, deadline=None)
@given(pair=broadcast_pair(), op=st.sampled_from(["add", "mul", "sub", "maximum", "div"]),
       red=st.sampled_from(["sum", "mean", "max", "logsumexp"]), data=st.data())
def test_stacking_rules_on_random_broadcasts_and_reductions(pair, op, red, data) -> None:
    (sx, sy) = pair
    r = np.random.default_rng(len(sx) * 7 + len(sy))
    x, y = r.normal(size=sx), r.uniform(0.5, 1.5, size=sy)
    out_ndim = max(len(sx), len(sy))
    nodes = {"b": {"op": op, "args": ["x", "y"]}, "t": {"op": "tanh", "args": ["b"]},
             "r": {"op": red, "args": ["t"], "attrs": data.draw(reduce_attrs(out_ndim))},
             "L": {"op": "sum", "args": ["r"]}}
    _assert_stacked_equals_rows(spec(nodes, "L", x=x, y=y))


@settings(max_examples=30, deadline=None)
@given(ra=st.integers(1, 4), rb=st.integers(1, 4), data=st.data())
def test_stacking_rules_on_random_matmuls(ra: int, rb: int, data: st.DataObject) -> None:
    k = 3
    nb = max(ra, rb, 2) - 2
    # each batch dim is 2 in one operand and 2 or 1 (broadcast) in the other
    batch = [(2, data.draw(st.sampled_from([1, 2])))[:: data.draw(st.sampled_from([1, -1]))] for _ in range(nb)]
    a_batch = [d[0] for d in batch][nb - max(ra - 2, 0):]
    b_batch = [d[1] for d in batch][nb - max(rb - 2, 0):]
    sa = (*a_batch, 2, k) if ra >= 2 else (k,)
    sb = (*b_batch, k, 2) if rb >= 2 else (k,)
    r = np.random.default_rng(ra * 5 + rb)
    nodes = {"m": {"op": "matmul", "args": ["a", "b"]}, "s": {"op": "sin", "args": ["m"]},
             "L": {"op": "sum", "args": ["s"]}}
    _assert_stacked_equals_rows(spec(nodes, "L", a=r.normal(size=sa), b=r.normal(size=sb)))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(dims, min_size=1, max_size=3), data=st.data())
def test_stacking_rules_on_random_softmax_losses_and_shapes(shape: list[int], data: st.DataObject) -> None:
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1))
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    perm = [p - nd if data.draw(st.booleans()) else p for p in data.draw(st.permutations(range(nd)))]  # some negative
    r = np.random.default_rng(nd)
    x = r.normal(size=shape)
    labels = r.integers(0, shape[axis], size=tuple(d for i, d in enumerate(shape) if i != axis % nd))
    nodes = {"sm": {"op": data.draw(st.sampled_from(["softmax", "log_softmax"])), "args": ["x"], "attrs": {"axis": axis}},
             "tr": {"op": "transpose", "args": ["sm"], "attrs": {"axes": perm}},
             "rs": {"op": "reshape", "args": ["tr"], "attrs": {"shape": [-1]}},
             "cc": {"op": "concat", "args": ["rs", "rs"]}, "s1": {"op": "sum", "args": ["cc"]},
             "xe": {"op": "softmax_cross_entropy", "args": ["x", "lab"], "attrs": {"axis": axis, "reduction": reduction}},
             "s2": {"op": "sum", "args": ["xe"]}, "L": {"op": "add", "args": ["s1", "s2"]}}
    s = spec(nodes, "L", x=x)
    s["inputs"] = {"lab": {"value": labels.tolist(), "dtype": "int64"}}
    _assert_stacked_equals_rows(s)


def test_a_vjp_wrong_only_sometimes_is_blamed() -> None:
    """A clean failure in any random trial outweighs passes in the others (a state-dependent bug)."""
    calls = []

    def flaky(g, ans, x):
        calls.append(1)
        return g * np.cos(x) * (1.0 if len(calls) % 2 else 3.0)  # right on odd calls only

    with broken("sin", vjp=(flaky,)):
        g = graphspec.load(spec({"s": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["s"]}}, "L",
                                x=np.array([0.3, 1.2])))
    rep = gradcheck(g, blame=True, modes=False)
    assert rep.checks[0].status == PASS  # the backward pass made the first, right, call
    assert [(n.node, n.mode) for n in rep.blamed] == [("s", "vjp")]


# ---------------------------------------------------------------------------------------------
# no false FAIL, no false blame: the retries of the full check hold in --fast, in blame and in JVP vs VJP


def _reciprocal_sum(x: list[float]) -> dict:
    return spec({"r": {"op": "div", "args": [1.0, "x"]}, "L": {"op": "sum", "args": ["r"]}}, "L", x=np.array(x))


@pytest.mark.parametrize("x", [[0.001, 0.002, 0.5], [1e-6, 0.5, 3.0], [1e-4], [-2e-5, 0.3]])
def test_steep_at_small_x_passes_in_every_mode(x: list[float]) -> None:
    """sum(1/x) at small x: a step of 6e-6 is 0.6% of x = 0.001 and crosses the pole at x = 1e-6. The full
    check, --fast (every seed), and blame's node checks retake with smaller and relative steps and pass;
    the Taylor test, whose steps (down to 1.2e-5) all cross the pole at 1e-6, retakes along v scaled to |x|."""
    s = _reciprocal_sum(x)
    for kw in [{}, {"blame": True}, *({"fast": True, "seed": k} for k in range(8)),
               *({"taylor": True, "seed": k} for k in range(5))]:
        rep = gradcheck(s, **kw)
        assert rep.status == PASS and not rep.blamed, (kw, rep.text())
        assert "FAIL" not in rep.text(), kw


def _log_one_minus(p: list[float]) -> dict:
    """sum(log(1 - p)): the second term of a binary cross-entropy written out, a pole at p = 1."""
    return spec({"q": {"op": "sub", "args": [1.0, "p"]}, "l": {"op": "log", "args": ["q"]},
                 "L": {"op": "sum", "args": ["l"]}}, "L", p=np.array(p))


@pytest.mark.parametrize("p", [[0.99999, 0.3], [0.999999, 0.3], [1 - 1e-7, -0.5]])
def test_steep_near_a_pole_away_from_zero_passes_in_every_mode(p: list[float]) -> None:
    """log(1 - p) at a confident p = 0.999999: the pole is 1e-6 away, the step 6e-6, and |p| is not small, so
    no relative step helps; three halvings (h/8) still gave a truncation error of 1e-2 (a FAIL, and log blamed
    in --fast). The halving goes on while the extrapolations keep changing."""
    s = _log_one_minus(p)
    for kw in [{}, {"blame": True}, *({"fast": True, "seed": k} for k in range(8))]:
        rep = gradcheck(s, **kw)
        assert rep.status == PASS and not rep.blamed, (kw, rep.text())


def test_a_wrong_gradient_near_a_pole_away_from_zero_still_fails() -> None:
    """0.1% off: the extrapolations settle on the true slope, so the longer halving gives nothing back."""
    with broken("log", vjp=(lambda g, ans, x: g / x * 1.001,)):
        g = graphspec.load(_log_one_minus([0.999999, 0.3]))
    for kw in [{}, *({"fast": True, "seed": k} for k in range(4))]:
        rep = gradcheck(g, **kw)
        assert rep.status == FAIL and blamed(rep) == {"l"}, (kw, rep.text())


def test_the_fast_mode_retry_says_so() -> None:
    rep = gradcheck(_reciprocal_sum([0.001, 0.002, 0.5]), fast=True, refine=False)
    assert rep.status == FAIL  # plain central differences along random directions are off by ~(h/x)^2
    rep = gradcheck(_reciprocal_sum([0.001, 0.002, 0.5]), fast=True)
    assert rep.status == PASS and any("halved" in n for c in rep.checks for n in c.notes), rep.text()


def test_jvp_and_vjp_agree_on_a_true_zero_reached_by_cancellation() -> None:
    """logsumexp(x) - log(sum(exp(x))) is 0 for every x: both sides are rounding noise (-1.85e-17 against
    0 gave 'rel err 1.0'); the comparison's floor scales with the tangents the passes summed."""
    nodes = {"a": {"op": "logsumexp", "args": ["x"]}, "e": {"op": "exp", "args": ["x"]},
             "s": {"op": "sum", "args": ["e"]}, "l": {"op": "log", "args": ["s"]}, "L": {"op": "sub", "args": ["a", "l"]}}
    for seed in range(10):
        rep = gradcheck(spec(nodes, "L", x=np.random.default_rng(seed).normal(size=5)), seed=seed)
        assert [m.status for m in rep.modes] == [PASS] and rep.ok, rep.text()


def test_a_wrong_jvp_of_a_zero_is_still_caught() -> None:
    """The floor is rounding-sized: a JVP that is wrong by a factor still fails JVP vs VJP."""
    with broken("exp", jvp=(lambda t, ans, x: 2 * t * ans,)):
        g = graphspec.load(spec({"e": {"op": "exp", "args": ["x"]}, "L": {"op": "sum", "args": ["e"]}}, "L",
                                x=np.array([0.1, -0.3])))
    rep = gradcheck(g)
    assert [m.status for m in rep.modes] == [FAIL] and blamed(rep) == {"e"}


def test_a_float32_overflow_is_the_finding_not_a_table_of_infs() -> None:
    """exp(100) is finite in float64 (where the differences are taken) but inf in the graph's float32:
    the analytic side is inf, so the point is reported, and no sound VJP is blamed."""
    s = spec({"e": {"op": "exp", "args": ["x"]}, "L": {"op": "sum", "args": ["e"]}}, "L", x=np.array([1.0, 100.0]))
    s["params"]["x"]["dtype"] = "float32"
    rep = gradcheck(s)
    assert rep.status == FAIL and rep.checks == [] and not rep.blamed
    assert "overflows float32" in rep.error and "node 'e' (exp)" in rep.error
    assert report_verdict(rep).startswith("FAIL: a checked value overflows float32")


def test_more_failing_elements_than_the_retry_cap_are_all_retried() -> None:
    """3000 elements of 1/x at x ~ 1e-3 all fail plain differences: more than RETRY_MAX (2000), which
    used to leave them failing. A random RETRY_MAX are retried first; as retries help, the rest are too.
    With a wrong gradient the probe gets nothing back and the rest are left failing."""
    from graphspec.checker.input_checks import RETRY_MAX

    n = RETRY_MAX + 1000
    s = spec({"r": {"op": "div", "args": ["c", "x"]}, "L": {"op": "sum", "args": ["r"]}}, "L",
             x=np.linspace(1e-3, 2e-3, n), c=np.ones(n))
    rep = gradcheck(s, wrt=["x"])
    assert rep.status == PASS and any("halved" in note for note in rep.checks[0].notes), rep.text()
    op, change, _, _ = BUGS["wrong_div_at_small_x"]
    with broken(op, **change):
        g = graphspec.load(s)
    rep = gradcheck(g, wrt=["x"])
    assert rep.status == FAIL and rep.checks[0].arrays["status"].count(FAIL) == n and blamed(rep) == {"r"}
