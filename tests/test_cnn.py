"""The ops a CNN lesson needs (and their neighbours) next to PyTorch, and the CNN spec.

- their torch cases (value, VJP and JVP against torch) are rows of tests/optable.py, run by
  tests/test_ops.py; here the documented conventions, written out where torch's are the same
  (clip's gradient 1 on its bounds, std's 0 at std == 0, min's ties split) and where they differ
  (max_pool2d's ties: split here, one winner in torch);
- specs/cnn/cnn.json: its expect numbers (written by tools/cnn_expect.py with torch) against torch
  run again here on the params graphspec drew, graphspec's own value and gradients against the
  same, and the gradient check in every mode through the CLI.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # in the test extra: never skipped
from reference import assert_close

import graphspec
from graphspec.cli import main
from graphspec.ops import OPS
from graphspec.shapes import bind_attrs
from graphspec.spec import Node

F = torch.nn.functional

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "specs" / "cnn" / "cnn.json"


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _n(*shape, seed=0, scale=1.0):
    return rng(seed).normal(size=shape) * scale


def _bind(name, args, attrs):
    return bind_attrs("n", Node(op=name, args=[f"a{i}" for i in range(len(args))], attrs=attrs))


def test_documented_conventions_with_the_numbers_written_out():
    """clip: gradient 1 on the bounds (torch.clamp's); std: 0 where std == 0 (torch's); min: ties split."""
    def vjp(name, x, **attrs):
        kw = _bind(name, [x], attrs)
        ans = OPS[name].forward(x, **kw)
        return OPS[name].vjp[0](np.ones(np.shape(ans)), ans, x, **kw)

    np.testing.assert_array_equal(vjp("clip", np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), min=0.0, max=1.0), [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(vjp("std", np.array([[3.0, 3.0], [1.0, 3.0]]), axis=1), [[0, 0], [-0.5, 0.5]])
    np.testing.assert_array_equal(vjp("min", np.array([[1.0, 0.0, 0.0], [2.0, 2.0, 2.0]]), axis=1),
                                  [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_std_vjp_is_exact_where_the_spread_is_tiny_next_to_the_mean():
    """A spread of 1e-3 around 1e3: the mean's own rounding, taken back out (`_centred`), leaves
    the VJP exact to the last digit (mpmath at 50 digits); torch's is off by ~1e-9 here."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    x = _n(5, seed=15) * 1e-3 + 1e3
    u = rng(50).normal(size=())
    xs = [mp.mpf(float(v)) for v in x]
    m = sum(xs) / 5
    s = mp.sqrt(sum((v - m) ** 2 for v in xs) / 5)
    exact = np.array([float(u * (v - m) / (5 * s)) for v in xs])
    kw = _bind("std", [x], {})
    ans = OPS["std"].forward(x, **kw)
    assert float(ans) == float(s)
    np.testing.assert_allclose(OPS["std"].vjp[0](u, ans, x, **kw), exact, rtol=1e-14)
    t = torch.tensor(x, requires_grad=True)
    t.std(correction=0).backward(torch.tensor(u))
    np.testing.assert_allclose(t.grad.numpy(), exact, rtol=1e-8)


def test_max_pool2d_ties_split_where_torch_picks_one():
    x = np.array([[[[1.0, 1.0], [0.0, 1.0]]]])
    kw = _bind("max_pool2d", [x], {"kernel": 2})
    ans = OPS["max_pool2d"].forward(x, **kw)
    np.testing.assert_array_equal(OPS["max_pool2d"].vjp[0](np.ones((1, 1, 1, 1)), ans, x, **kw),
                                  [[[[1 / 3, 1 / 3], [0, 1 / 3]]]])
    t = torch.tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).sum().backward()
    assert t.grad.sum() == 1 and (t.grad == 1).sum() == 1  # one winner takes it all


# --- the CNN spec --------------------------------------------------------------------------------

sys.path.insert(0, str(ROOT / "tools"))
import cnn_expect  # noqa: E402  (tools/cnn_expect.py: the torch model that wrote the expect block)


@pytest.fixture(scope="module")
def cnn():
    return graphspec.load(CNN)


def test_cnn_params_are_drawn_as_documented(cnn):
    spec = json.loads(CNN.read_text())
    for name, decl in spec["params"].items():
        np.testing.assert_array_equal(cnn.params[name], cnn_expect.documented_init(name, decl, spec["seed"]))


def test_cnn_expectations_are_torch_s_numbers(cnn):
    """torch again, on the data and params graphspec loaded: the spec's expect numbers, and graphspec's own."""
    X, y = cnn.defaults["X"], cnn.defaults["y"]
    loss, logits, grads = cnn_expect.torch_cnn(X, y, dict(cnn.params))
    ex = cnn.spec.expect
    assert_close(np.asarray(ex.values["loss"]), loss, rtol=1e-12)
    assert_close(np.asarray(ex.values["logits"]), logits, rtol=1e-12)
    for k in ("Wc", "bc", "b"):
        assert_close(np.asarray(ex.grads[k]), grads[k], rtol=1e-12, what=k)
    ours, our_grads = cnn.value_and_grad()
    assert_close(ours, loss, what="loss")
    assert set(our_grads) == set(grads)
    for k, g in grads.items():
        assert_close(our_grads[k], g, what=f"gradient of {k}")


def test_cnn_in_float32_is_torch_s_float32_model():
    spec = json.loads(CNN.read_text())
    for decl in [*spec["inputs"].values(), *spec["params"].values()]:
        decl.setdefault("dtype", "float32")
    g = graphspec.load(spec, base=CNN.parent)
    loss, grads = g.value_and_grad()
    assert np.asarray(loss).dtype == np.float32 and all(v.dtype == np.float32 for v in grads.values())
    p = {k: torch.tensor(v, requires_grad=True) for k, v in g.params.items()}
    tl = F.cross_entropy(F.max_pool2d(F.relu(F.conv2d(torch.tensor(g.defaults["X"]), p["Wc"], p["bc"])), 2).flatten(1)
                         @ p["W"] + p["b"], torch.tensor(g.defaults["y"]))
    tg = torch.autograd.grad(tl, list(p.values()))
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-5)
    for k, t in zip(p, tg, strict=True):
        np.testing.assert_allclose(grads[k], t.numpy(), rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("mode", [[], ["--blame"], ["--taylor"], ["--strict"]])
def test_cnn_passes_the_gradient_check_in_every_mode(mode, capsys):
    assert main(["check", str(CNN), *mode]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 checks pass" in out
    if mode != ["--blame"]:
        assert "PASS: 4 of 4 checks pass" in out
    else:  # max_pool2d's own check, at the ties among relu's zeros (a true kink of max, stable in the net)
        assert "KINK (not a failure without --strict): 4 of 4 checks pass" in out


def test_cnn_fast_check_never_fails_and_its_kinks_are_relu_or_max_pool_crossings(capsys):
    """--fast moves every element of an input at once along a random direction: on a relu net some of the
    directions cross a kink (at about half the seeds, 4 directions per input). Those are KINK, said where,
    never FAIL; every other direction passes. The command exits 0 with either verdict."""
    from graphspec.checker import FAIL, KINK, PASS

    g = graphspec.load(CNN)
    verdicts = set()
    for seed in range(12):
        rep = graphspec.gradcheck(g, fast=True, seed=seed)
        assert rep.ok and not any(c.status == FAIL for c in rep.checks), rep.text()
        assert [c.checked for c in rep.checks] == [4, 4, 4, 4]
        for c in rep.checks:
            statuses = set(c.arrays["status"])
            assert statuses <= {PASS, KINK} and (KINK in statuses) == (c.status == KINK)
            assert all(e.kinks and {k.op for k in e.kinks} <= {"relu", "max_pool2d"} for e in c.kinks)
            verdicts.add(c.status)
    assert verdicts == {PASS, KINK}  # both occur over the seeds: the test sees each
    assert main(["check", str(CNN), "--fast"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^(PASS: 4 of 4 checks pass|KINK \(not a failure without --strict\): [0-3] of 4 checks pass, "
                     r"[1-4] at a kink) ", out, re.M), out


def test_stacked_finite_differences_of_the_new_ops_equal_one_at_a_time():
    """The new ops that name a stacking rule (clip, where, log1p: elementwise; min, var, std: reduce;
    binary_cross_entropy: loss) give the gradient checker the same differences stacked as row by row."""
    from graphspec.checker import PASS, gradcheck

    r = rng(70)
    nodes = {"c": {"op": "clip", "args": ["x"], "attrs": {"min": -1.0, "max": 1.0}},
             "w": {"op": "where", "args": ["m", "c", "x"]}, "l": {"op": "log1p", "args": ["w2"]},
             "w2": {"op": "mul", "args": ["w", "w"]},
             "mn": {"op": "min", "args": ["l"], "attrs": {"axis": 1}},
             "v": {"op": "var", "args": ["l"], "attrs": {"axis": 0, "ddof": 1, "keepdims": True}},
             "s": {"op": "std", "args": ["x"], "attrs": {"axis": -1}},
             "b": {"op": "binary_cross_entropy", "args": ["x", "t"], "attrs": {"reduction": "mean"}},
             "t1": {"op": "sum", "args": ["mn"]}, "t2": {"op": "sum", "args": ["v"]}, "t3": {"op": "sum", "args": ["s"]},
             "a": {"op": "add", "args": ["t1", "t2"]}, "a2": {"op": "add", "args": ["a", "t3"]},
             "L": {"op": "add", "args": ["a2", "b"]}}
    x = r.normal(size=(3, 4)) * 1.5
    x = np.where(np.abs(np.abs(x) - 1) < 0.05, x * 1.2, x)  # off clip's kinks
    spec = {"graphspec": "1", "params": {"x": {"value": x.tolist()}},
            "inputs": {"m": {"value": (r.uniform(size=(3, 4)) > 0.5).tolist(), "dtype": "bool"},
                       "t": {"value": r.uniform(size=(3, 4)).tolist(), "grad": False}},
            "nodes": nodes, "loss": "L"}
    fast, slow = gradcheck(spec, batch=True, modes=False), gradcheck(spec, batch=False, modes=False)
    for a, b in zip(fast.checks, slow.checks, strict=True):
        np.testing.assert_allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-9, atol=1e-12)
    assert fast.status == PASS, fast.text()
