"""The ops a CNN lesson needs (and their neighbours) next to PyTorch, and the CNN spec.

- every op added with them (log1p ... max_pool2d) against its torch equivalent in float64: the
  value, every float arg's VJP for a random cotangent (torch.autograd.grad), every float arg's
  JVP for a random tangent (torch.func.jvp), at rtol 1e-10; with the documented conventions
  written out where torch's are the same (clip's gradient 1 on its bounds, std's 0 at std == 0,
  min's ties split) and where they differ (max_pool2d's ties: split here, one winner in torch);
- specs/cnn/cnn.json: its expect numbers (written by tools/cnn_expect.py with torch) against torch
  run again here on the params graphspec drew, graphspec's own value and gradients against the
  same, and the gradient check in every mode through the CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # in the test extra: never skipped
from reference import assert_close

import graphspec
from graphspec.cli import main
from graphspec.ops import OPS, unbroadcast
from graphspec.shapes import bind_attrs
from graphspec.spec import Node

F = torch.nn.functional
from torch.func import jvp as torch_jvp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "specs" / "cnn" / "cnn.json"


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _n(*shape, seed=0, scale=1.0):
    return rng(seed).normal(size=shape) * scale


def _distinct(*shape, seed=0):
    """Values with no ties (a permutation of a spread grid, plus a little noise): no max has two winners."""
    n = int(np.prod(shape))
    return (rng(seed).permutation(n).reshape(shape) / n * 4 - 2) + rng(seed + 1).uniform(0, 1e-3, size=shape)


# name -> cases of (args, attrs, the same function in torch of the args as tensors)
TORCH = {
    "log1p": [([rng(1).uniform(-0.9, 3, size=(3, 4))], {}, lambda x: torch.log1p(x)),
              ([np.array([-1e-10, 1e-300, 1e-8, 5.0])], {}, lambda x: torch.log1p(x))],
    "clip": [([np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 1.5])], {"min": -0.5, "max": 1.0}, lambda x: x.clamp(-0.5, 1.0)),
             ([_n(3, 4, seed=2)], {"min": 0.0}, lambda x: x.clamp(min=0.0)),
             ([_n(3, 4, seed=3)], {"max": 0.25}, lambda x: x.clamp(max=0.25))],
    "where": [([_n(3, 4, seed=4) > 0, _n(3, 4, seed=5), _n(3, 4, seed=6)], {}, torch.where),
              ([rng(7).integers(0, 3, size=(2, 1, 4)), _n(3, 1, seed=8), _n(4, seed=9)], {},
               lambda c, a, b: torch.where(c != 0, a, b))],
    "min": [([_n(3, 4, seed=10)], {"axis": 1}, lambda x: x.amin(1)),
            ([np.array([[1.0, 0.0, 0.0], [2.0, 2.0, 2.0]])], {"axis": 1, "keepdims": True}, lambda x: x.amin(1, keepdim=True)),
            ([np.array([1.0, 0.0, 0.0])], {}, lambda x: x.min())],  # ties split, in torch too
    "var": [([_n(3, 4, seed=11)], {}, lambda x: x.var(correction=0)),
            ([_n(3, 4, seed=12)], {"axis": 1, "ddof": 1}, lambda x: x.var(1, correction=1)),
            ([_n(2, 3, 4, seed=13) * 3 + 100], {"axis": [0, 2], "keepdims": True}, lambda x: x.var((0, 2), keepdim=True,
                                                                                                   correction=0))],
    "std": [([_n(3, 4, seed=14)], {"axis": 0, "ddof": 1}, lambda x: x.std(0, correction=1)),
            ([np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])], {"axis": 1}, lambda x: x.std(1, correction=0))],  # std 0: grad 0
    "stack": [([_n(2, 3, seed=16), _n(2, 3, seed=17), _n(2, 3, seed=18)], {"axis": -1},
               lambda *xs: torch.stack(xs, dim=-1)),
              ([_n(4, seed=19), _n(4, seed=20)], {}, lambda *xs: torch.stack(xs))],
    "expand_dims": [([_n(2, 3, seed=21)], {"axis": a}, lambda x, a=a: x.unsqueeze(a)) for a in (0, 2, -1, -3)],
    "squeeze": [([_n(1, 3, 1, 2, seed=22)], {"axis": [0, 2]}, lambda x: x.squeeze((0, 2))),
                ([_n(1, 3, 1, 2, seed=23)], {}, lambda x: x.squeeze())],
    "slice": [([_n(5, 4, 3, seed=24)], {"slices": [[1, -1], [None, None, 2], [-2, None]]}, lambda x: x[1:-1, ::2, -2:]),
              ([_n(6, 4, seed=25)], {"slices": [[None, None, -1], [3, 0, -2]]},  # torch has no negative steps: flips
               lambda x: torch.flip(x, (0,))[:, 1::2].flip(1))],
    "take": [([_n(5, 3, seed=26), np.array([0, 4, 4, 1])], {}, lambda x, i: torch.index_select(x, 0, i)),
             ([_n(2, 5, seed=27), np.array([3, 3, 0])], {"axis": 1}, lambda x, i: torch.index_select(x, 1, i)),
             ([_n(6, 4, seed=28), np.array([[1, 5], [5, 5]])], {}, lambda w, i: F.embedding(i, w))],  # an embedding lookup
    "one_hot": [([np.array([[0, 3], [2, 2]])], {"num_classes": 4}, None)],
    "binary_cross_entropy": [
        ([_n(4, 3, seed=29, scale=3), rng(30).uniform(size=(4, 3))], {"reduction": r},
         lambda z, y, r=r: F.binary_cross_entropy_with_logits(z, y, reduction=r)) for r in ("mean", "sum", "none")]
    + [([np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), np.array([1.0, 0.0, 0.5, 1.0, 0.0])], {},
        lambda z, y: F.binary_cross_entropy_with_logits(z, y))],
    "conv2d": [
        ([_n(2, 1, 8, 8, seed=31), _n(3, 1, 3, 3, seed=32), _n(3, seed=33)], {}, lambda x, w, b: F.conv2d(x, w, b)),
        ([_n(2, 4, 9, 7, seed=34), _n(6, 2, 3, 2, seed=35)],
         {"stride": [2, 1], "padding": [1, 2], "dilation": [1, 2], "groups": 2},
         lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
        ([_n(1, 3, 6, 6, seed=36), _n(3, 1, 3, 3, seed=37), _n(3, seed=38)], {"groups": 3, "padding": 1, "stride": 2},
         lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3))],
    "max_pool2d": [
        ([_distinct(2, 3, 6, 6, seed=39)], {"kernel": 2}, lambda x: F.max_pool2d(x, 2)),
        ([_distinct(1, 2, 7, 5, seed=40)], {"kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]},
         lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 0))),
        ([_distinct(1, 1, 5, 5, seed=41)], {"kernel": 3, "stride": 1, "padding": 1}, lambda x: F.max_pool2d(x, 3, 1, 1))],
}
CASES = [pytest.param(name, *case, id=f"{name}-{i}") for name, cases in TORCH.items() for i, case in enumerate(cases)]


def test_every_new_op_has_a_torch_case():
    new = {"log1p", "clip", "where", "min", "var", "std", "stack", "expand_dims", "squeeze", "slice", "take", "one_hot",
           "binary_cross_entropy", "conv2d", "max_pool2d"}
    assert new <= set(OPS) and set(TORCH) == new


def _bind(name, args, attrs):
    return bind_attrs("n", Node(op=name, args=[f"a{i}" for i in range(len(args))], attrs=attrs))


def _floats(args):
    return [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]


@pytest.mark.parametrize(("name", "args", "attrs", "tfn"), CASES)
def test_value_vjp_and_jvp_against_torch(name, args, attrs, tfn):
    op, kw = OPS[name], _bind(name, args, attrs)
    ans = op.forward(*args, **kw)
    if tfn is None:  # one_hot: a value, no gradient
        np.testing.assert_array_equal(ans, F.one_hot(torch.tensor(args[0]), kw["num_classes"]).double().numpy())
        return
    ts = [torch.tensor(a, requires_grad=np.asarray(a).dtype.kind == "f") for a in args]
    out = tfn(*ts)
    assert_close(ans, out.detach().numpy(), what=f"{name} value")
    floats = _floats(args)
    u = rng(50).normal(size=np.shape(ans))
    grads = torch.autograd.grad(out, [ts[i] for i in floats], torch.tensor(u))
    for i, ref in zip(floats, grads, strict=True):
        ours = unbroadcast(op.vjp_for(i)(u, ans, *args, **kw), np.shape(args[i]))
        assert_close(ours, ref.numpy(), what=f"{name} vjp of arg {i}")
    for i in floats:
        t = rng(60 + i).normal(size=np.shape(args[i]))

        def along(a, i=i):
            return tfn(*[a if j == i else x.detach() for j, x in enumerate(ts)])

        _, ref = torch_jvp(along, (ts[i].detach(),), (torch.tensor(t),))
        ours = np.broadcast_to(op.jvp_for(i)(t, ans, *args, **kw), np.shape(ans))
        assert_close(ours, ref.numpy(), what=f"{name} jvp of arg {i}")


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


@pytest.mark.parametrize("mode", [[], ["--fast"], ["--blame"], ["--taylor"], ["--strict"]])
def test_cnn_passes_the_gradient_check_in_every_mode(mode, capsys):
    assert main(["check", str(CNN), *mode]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 checks pass" in out
    if mode != ["--blame"]:
        assert "PASS: 4 of 4 checks pass" in out
    else:  # max_pool2d's own check, at the ties among relu's zeros (a true kink of max, stable in the net)
        assert "KINK (not a failure without --strict): 4 of 4 checks pass" in out


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
