"""The per-op test table, in the manner of PyTorch's OpInfo: one `Row` per registered op.

Every per-op test reads it (tests/test_ops.py, the sweep tests/test_ops_sweep.py, the
random-graph generator tests/graphgen.py and the suites on it, tests/test_properties.py and
tests/test_passes.py); no other test module keeps a table of ops. tests/test_ops.py fails
when a registered op has no row here, or a row names an op that is not registered.

    "name": Row(ref=..., torch=..., defaults={...}, extra=[...], domain=..., ...)

- ``ref(*args, **attrs)``: the op in HIPS autograd's numpy (the building blocks are in
  tests/reference.py), written from docs/format.md, not from graphspec's code: autograd
  differentiates it for the VJP and JVP references;
- ``torch(*args, **attrs)``: the op in PyTorch on float64 tensors (integer args as int64
  tensors, JSON numbers in args as 0-d float64 tensors);
  both take every attr (the defaults filled in, lists as tuples), as the interpreter passes them;
- ``defaults``: what docs/format.md says each attr defaults to (`Attr.default` must agree);
- ``extra``: (args, attrs) cases beyond the op's own `samples()`: broadcasting, every attr
  combination, ties, kinks, extreme values, integer and float labels;
- ``torch_cases``: (args, attrs, fn) cases against a torch function written for the case
  (value, every float arg's VJP and JVP);
- ``domain(args, attrs) -> bool``: the args are in the op's domain and away from its kinks
  (relu at 0, ties in max, a hinge at its margin), so both references are differentiable
  there; the random-graph generator redraws until it holds;
- ``ints(args_before, attrs) -> int``: the exclusive upper bound of an integer arg (class labels);
- ``attrs``: name -> a hypothesis strategy for the generator (attrs not named here are drawn
  from their `Attr.kind`);
- ``targets``: arg positions of float class targets: the dtype-cast tests leave them float.
- ``gen``: how the random-graph generator of tests/test_passes.py builds the op: "unary" (one
  float arg), "binary" (two broadcasting float args, either one may be a constant) or "reduce"
  (axis and keepdims drawn); "" for the ops it has a builder of their own for;
- ``safe``: per arg position, a test of a value the generator of tests/test_passes.py may feed
  there (None: any): looser than ``domain``, it keeps whole graphs finite (exp, log, a divisor),
  kinks allowed (autograd takes the same branch as the op);
- ``gen_attrs``: attr -> the values that generator draws (each attr left out half the time);
- ``no_batch``: why the op has no batching rule (``defop(batch=None)``): the checker then runs it
  once per perturbation; tests/test_gradcheck.py holds every op to a rule or a reason.
New ops also need `samples()` in their `defop`: the generator builds nodes from them.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import autograd.numpy as anp
import numpy as np
from hypothesis import strategies as st
from reference import (
    _axis,
    _reduce,
    one_hot,
    ref_bce,
    ref_clip,
    ref_concat,
    ref_conv2d,
    ref_expand_dims,
    ref_hinge,
    ref_log_softmax,
    ref_logsumexp,
    ref_matmul,
    ref_max_pool2d,
    ref_one_hot,
    ref_sigmoid,
    ref_softmax,
    ref_softplus,
    ref_squeeze,
    ref_stack,
    ref_take,
    ref_transpose,
    ref_var,
    ref_where,
    ref_xent,
)

from graphspec.ops import OPS
from graphspec.shapes import bind_attrs
from graphspec.spec import Node

Case = tuple[list[Any], dict[str, Any]]


class _Lazy:
    """torch, imported on first use: a second of import time the tests that need no torch skip."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


torch = _Lazy("torch")
F = _Lazy("torch.nn.functional")


# --- drawing values ------------------------------------------------------------------------------

def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _n(*shape, seed=0, scale=1.0):
    return rng(seed).normal(size=shape) * scale


def _pos(*shape, seed=0):
    return np.abs(_n(*shape, seed=seed)) + 0.5


def _nonzero(*shape, seed=0):
    x = _n(*shape, seed=seed)
    return np.where(x >= 0, x + 0.5, x - 0.5)


def probs(*shape, axis=-1, seed=0):
    p = np.exp(_n(*shape, seed=seed))
    return p / p.sum(axis=axis, keepdims=True)


def labels(shape, n, seed=0):
    return rng(seed).integers(0, n, size=shape)


def _distinct(*shape, seed=0):
    """Values with no ties (a permutation of a spread grid, plus a little noise): no max has two winners."""
    n = int(np.prod(shape))
    return (rng(seed).permutation(n).reshape(shape) / n * 4 - 2) + rng(seed + 1).uniform(0, 1e-3, size=shape)


# --- extra cases ---------------------------------------------------------------------------------

BCAST = [((2, 1, 3), (4, 1)), ((), (3,)), ((1,), (2, 3)), ((), ()), ((3, 1), (3, 4)), ((5,), (1, 5))]
EXTREMES = np.array([-1000.0, -40.0, -20.0, -1.0, 0.0, 0.5, 20.0, 40.0, 1000.0])
LOGITS_EXTREME = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, 999.0],
                           [0.0, 0.0, 0.0]])
REDUCE_SHAPES = [(), (4,), (2, 3), (2, 3, 4)]
# extreme logits next to ordinary ones, for the torch cases of the class-axis and squashing ops
_TAILS = np.concatenate([_n(3, 4, seed=75, scale=3), [[1000.0, -1000.0, 30.0, -30.0]]])


def _binary(make_y=_n, make_x=_n, consts=(1.5, -0.5)) -> list[Case]:
    """Broadcasting both ways, and Python-float constants on either side (a JSON number in args)."""
    return [([make_x(*a, seed=1), make_y(*b, seed=2)], {}) for a, b in BCAST] + \
        [([make_x(*b, seed=3), make_y(*a, seed=4)], {}) for a, b in BCAST] + \
        [([make_x(2, 3, seed=5), consts[0]], {}), ([consts[1], make_y(3, seed=6)], {})]


def _ties() -> list[Case]:
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    y = np.array([[1.0, 0.0, 3.0], [0.5, 2.0, 4.0]])
    return [([x, y], {}), ([x, np.array(1.0)], {}), ([np.array(3.0), x], {}), ([x, x.copy()], {})]


def _unary(make=_n, extra=()) -> list[Case]:
    return [([make(seed=5)], {}), ([make(7, seed=6)], {}), ([make(2, 3, 4, seed=7)], {}), *[([x], {}) for x in extra]]


def _reduce_combos(make=_n) -> list[Case]:
    out = []
    for shape in REDUCE_SHAPES:
        nd = len(shape)
        axes = [None] if nd == 0 else [None, [], 0, -1, *([[0, -1], [-2]] if nd > 1 else []), *([[0, 1, 2]] if nd > 2 else [])]
        for axis, keepdims in itertools.product(axes, [False, True]):
            attrs = {"keepdims": keepdims} | ({} if axis is None else {"axis": axis})
            out.append(([make(*shape, seed=nd)], attrs))
    return out


def _max_ties() -> list[Case]:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    y = np.array([[[1.0, 5.0], [5.0, 0.0]], [[5.0, 5.0], [-1.0, 2.0]]])
    return [([x], {"axis": a, "keepdims": k}) for a in (None, 0, 1) for k in (False, True)] + \
        [([y], {"axis": a}) for a in (None, 0, [1, 2], [0, 2])]


def _axis_cases(make=_n) -> list[Case]:
    return [([make(2, 3, 4, seed=8)], {"axis": a}) for a in (0, 1, 2, -1, -2, -3)] + \
        [([make(5, seed=9)], {}), ([make(5, seed=9)], {"axis": 0}),
         ([LOGITS_EXTREME], {}), ([LOGITS_EXTREME], {"axis": 0})]


def _class_cases(hinge: bool) -> list[Case]:
    out = []
    margins = [{"margin": 1.0}, {"margin": 0.25}] if hinge else [{}]
    for reduction, extra in itertools.product(["mean", "sum", "none"], margins):
        r = {"reduction": reduction, **extra}
        out += [([_n(5, 4, seed=10, scale=2), labels((5,), 4, seed=11)], r),
                ([_n(4, 5, seed=12, scale=2), labels((5,), 4, seed=13)], {"axis": 0, **r}),
                ([_n(2, 3, 4, seed=14, scale=2), labels((2, 4), 3, seed=15)], {"axis": 1, **r}),
                ([_n(2, 3, 4, seed=14, scale=2), labels((2, 4), 3, seed=15)], {"axis": -2, **r}),
                ([_n(3, seed=16), np.array(2)], r),
                ([_n(5, 4, seed=17, scale=2), one_hot(labels((5,), 4, seed=18), 4, -1)], r),
                ([_n(2, 3, 4, seed=19, scale=2), probs(2, 3, 4, axis=1, seed=20)], {"axis": 1, **r})]
        if not hinge:
            out += [([_n(5, 4, seed=21, scale=2), probs(5, 4, seed=22)], r),
                    ([_n(5, 4, seed=24, scale=2), 3 * probs(5, 4, seed=25)], r),  # targets summing to 3
                    ([LOGITS_EXTREME, np.array([1, 0, 2, 1])], r),
                    ([LOGITS_EXTREME, probs(4, 3, seed=23)], r)]
    return out


def _var_cases(least=1) -> list[Case]:
    """The reduction combos with ddof 0 and 1, where n - ddof > 0 (var is inf or nan otherwise) and
    n >= ``least`` (std's gradient at one element, std = 0, is a convention: tested on its own)."""
    out = []
    for (x,), attrs in _reduce_combos():
        axis = attrs.get("axis")
        axes = range(x.ndim) if axis is None else [axis] if isinstance(axis, int) else axis
        n = int(np.prod([x.shape[a] for a in axes]))
        out += [([x], {**attrs, "ddof": d}) for d in (0, 1) if n - d > 0 and n >= least]
    # a spread of 1e-7 next to 3 and one of 1 next to 1e4: the mean's own rounding must not show
    return [*out, ([np.array([3.0, 3.0, 3.0 + 1e-7])], {"ddof": 1}), ([np.array([1e4, 1e4 + 1, 1e4 + 2])], {})]


# --- domains -------------------------------------------------------------------------------------

def _always(args, attrs) -> bool:
    return True


def _far(v, delta=1e-2) -> bool:
    """|v| is at least delta of its own scale everywhere: no kink or tie within rounding reach."""
    v = np.asarray(v, dtype=np.float64)
    return v.size == 0 or bool(np.min(np.abs(v)) > delta * max(1.0, float(np.max(np.abs(v)))))


def _at_least(lo, i=0):
    return lambda args, attrs: bool(np.min(args[i]) > lo)


def _max_no_ties(args, attrs) -> bool:
    """The top two along the reduced axes are apart (a tie is a kink of max)."""
    x = np.asarray(args[0], dtype=np.float64)
    axis = attrs["axis"]
    axes = tuple(range(x.ndim)) if axis is None else tuple(a % x.ndim for a in np.atleast_1d(axis))
    if not x.ndim or np.prod([x.shape[a] for a in axes]) < 2:
        return True
    moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0))).reshape(*[x.shape[i] for i in range(x.ndim) if i not in axes], -1)
    top = np.sort(moved, axis=-1)[..., -2:]
    return bool(np.min(top[..., 1] - top[..., 0]) > 1e-2 * max(1.0, float(np.max(np.abs(x)))))


def _min_no_ties(args, attrs) -> bool:
    return _max_no_ties([-np.asarray(args[0], dtype=np.float64)], attrs)


def _targets(lab, n, axis):
    lab = np.asarray(lab)
    return one_hot(lab, n, axis) if lab.dtype.kind in "iu" else lab


def _hinge_away(args, attrs) -> bool:
    """No margin s_j - s_y + margin that counts (weight 1 - t_j not 0) sits at 0."""
    s, lab = np.asarray(args[0], dtype=np.float64), args[1]
    axis = attrs["axis"]
    t = _targets(lab, s.shape[axis], axis)
    m = s - np.sum(t * s, axis=axis, keepdims=True) + attrs["margin"]
    counted = np.broadcast_to((1 - t) != 0, m.shape)
    return _far(m[counted])


def _classes(args, attrs) -> int:
    return int(np.shape(args[0])[attrs["axis"]])


def _no_window_ties(args, attrs) -> bool:
    """No two entries within 1e-6 of the scale: no tie in any pooling window."""
    v = np.sort(np.ravel(np.asarray(args[0], dtype=np.float64)))
    return v.size < 2 or bool(np.min(np.diff(v)) > 1e-6 * max(1.0, float(np.max(np.abs(v)))))


def _clip_away(args, attrs) -> bool:
    x = np.asarray(args[0], dtype=np.float64)
    return all(_far(x - b) for b in (attrs["min"], attrs["max"]) if b is not None)


def _std_domain(args, attrs) -> bool:
    x = np.asarray(args[0], dtype=np.float64)
    axis = attrs["axis"]
    ax = None if axis is None else tuple(np.atleast_1d(axis))
    return bool(np.min(np.std(x, axis=ax)) > 1e-3) if x.size else True


# the guards of the test_passes generator (``safe``): on a value, not on the args and attrs

def _above(lo):
    return lambda v: bool(np.size(v) == 0 or np.min(v) > lo)


def _below(hi):
    return lambda v: bool(np.size(v) == 0 or np.max(v) < hi)


def _nonzero_guard(v) -> bool:
    return bool(np.size(v) == 0 or np.min(np.abs(v)) > 0.2)


# --- torch -----------------------------------------------------------------------------------------

def _dim(axis):
    """torch's dim for a reduction: None (every axis) stays None, lists become tuples."""
    return tuple(axis) if isinstance(axis, list | tuple) else axis


def _t_reduce(fn, x, axis, keepdims):
    if axis is None:
        out = fn(x, tuple(range(x.dim()))) if x.dim() else x
        return out.reshape([1] * x.dim()) if keepdims else out
    return fn(x, _dim(axis), keepdims)


def _t_reduction(name: str):
    return lambda x, *, axis, keepdims: _t_reduce(getattr(torch, name), x, axis, keepdims)


def _loss_reduce(per, reduction):
    return {"mean": torch.mean, "sum": torch.sum}[reduction](per) if reduction != "none" else per


def _t_xent(logits, lab, *, axis, reduction):
    # torch wants the class axis at dim 1 (at 0 for a single example)
    x = logits.movedim(axis, 1 if logits.dim() > 1 else 0)
    if lab.dtype.is_floating_point:
        lab = lab.movedim(axis, 1 if lab.dim() > 1 else 0)
    return F.cross_entropy(x, lab, reduction=reduction)


def _t_hinge(scores, lab, *, axis, margin, reduction):
    # FORMAT.md's sum over j != y of max(0, s_j - s_y + margin); float targets t weigh it as
    # sum_j (1 - t_j) max(0, s_j - sum_k t_k s_k + margin). (torch's multi_margin_loss divides by
    # the classes and takes integer labels along dim 1 only: a torch case below.)
    if lab.dtype.is_floating_point:
        t = lab
    else:
        t = F.one_hot(lab, scores.shape[axis]).to(scores.dtype).movedim(-1, axis)
    m = scores - (t * scores).sum(axis, keepdim=True) + margin
    return _loss_reduce(((1 - t) * torch.relu(m)).sum(axis), reduction)


def _t_mse(pred, target, *, reduction):
    p, t = torch.broadcast_tensors(pred, target)
    return F.mse_loss(p, t, reduction=reduction)


def _t_slice(x, *, slices):
    # index arrays, as numpy counts them: torch's own slicing takes no negative step
    for ax, sl in enumerate(slices):
        idx = np.arange(x.shape[ax])[slice(*sl)].tolist()
        x = x.index_select(ax, torch.tensor(idx, dtype=torch.long))
    return x


def _t_take(x, idx, *, axis):
    ax = axis % x.dim()
    n = x.shape[ax]
    flat = torch.remainder(idx.reshape(-1), n)
    out = x.index_select(ax, flat)
    return out.reshape((*x.shape[:ax], *idx.shape, *x.shape[ax + 1:]))


def _t_moments(name: str):
    def row(x, *, axis, keepdims, ddof):
        dim = tuple(range(x.dim())) if axis is None else _dim(axis)
        return getattr(torch, name)(x, dim=dim, correction=ddof, keepdim=keepdims)
    return row


def _t(name: str):
    """torch.<name>, looked up when called."""
    return lambda *xs: getattr(torch, name)(*xs)


# --- the row ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    ref: Callable[..., Any]
    torch: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    extra: list[Case] = field(default_factory=list)
    torch_cases: list[tuple[list[Any], dict[str, Any], Callable[..., Any]]] = field(default_factory=list)
    domain: Callable[[list, dict], bool] = _always
    ints: Callable[[list, dict], int] | None = None
    attrs: dict[str, st.SearchStrategy] = field(default_factory=dict)
    targets: tuple[int, ...] = ()
    gen: str = ""
    safe: tuple[Callable[[np.ndarray], bool] | None, ...] = ()
    gen_attrs: dict[str, list[Any]] = field(default_factory=dict)
    no_batch: str = ""


REDUCE = {"axis": None, "keepdims": False}
REDUCTION = {"reduction": "mean"}

ROWS: dict[str, Row] = {
    # binary, broadcasting
    "add": Row(lambda x, y: x + y, lambda x, y: x + y, gen="binary", extra=_binary()),
    "sub": Row(lambda x, y: x - y, lambda x, y: x - y, gen="binary", extra=_binary()),
    "mul": Row(lambda x, y: x * y, lambda x, y: x * y, gen="binary", extra=_binary()),
    "div": Row(lambda x, y: x / y, lambda x, y: x / y, gen="binary", safe=(None, _nonzero_guard), extra=_binary(make_y=_nonzero),
               domain=lambda a, _: _far(a[1], 0) and bool(np.min(np.abs(a[1])) > 0.2)),
    "pow": Row(lambda x, y: x ** y, _t("pow"),
               extra=[*_binary(make_y=_n, make_x=_pos, consts=(2.0, 1.5)),
                      ([np.array([0.0, 0.0, 2.0, 0.0]), np.array([2.0, 0.0, 3.0, 1.0])], {}),  # x = 0: d/dy taken as 0
                      ([np.array([-2.0, -1.5, 3.0]), np.array([2.0, 3.0, -1.0])], {}),  # x < 0, whole y: d/dy nan in both
                      ([_pos(3, 4, seed=24), np.array(2.0)], {})],
               domain=lambda a, _: bool(0.1 < np.min(a[0]) and np.max(a[0]) < 10 and np.max(np.abs(a[1])) < 3)),
    "maximum": Row(lambda x, y: anp.maximum(x, y), _t("maximum"), gen="binary", extra=_binary() + _ties(),
                   domain=lambda a, _: _far(np.subtract(a[0], a[1]))),
    "minimum": Row(lambda x, y: anp.minimum(x, y), _t("minimum"), gen="binary", extra=_binary() + _ties(),
                   domain=lambda a, _: _far(np.subtract(a[0], a[1]))),
    # unary
    "neg": Row(lambda x: -x, _t("neg"), gen="unary", extra=_unary()),
    "exp": Row(lambda x: anp.exp(x), _t("exp"), gen="unary", safe=(_below(10),),
               extra=_unary(extra=[np.array([-700.0, -30.0, 30.0, 700.0])]),
               domain=lambda a, _: bool(np.max(a[0]) < 5)),
    "log": Row(lambda x: anp.log(x), _t("log"), gen="unary", safe=(_above(0.05),),
               extra=_unary(_pos, extra=[np.array([1e-300, 1e-8, 1e8, 1e300])]),
               domain=_at_least(0.05)),
    "sqrt": Row(lambda x: anp.sqrt(x), _t("sqrt"), gen="unary", safe=(_above(0.05),),
                extra=_unary(_pos, extra=[np.array([1e-300, 1e-8, 1e8, 1e300])]),
                domain=_at_least(0.05)),
    "square": Row(lambda x: x * x, _t("square"), gen="unary", extra=_unary()),
    "abs": Row(lambda x: anp.abs(x), _t("abs"), gen="unary", extra=_unary(extra=[np.array([-2.0, 0.0, 3.0])]),
               domain=lambda a, _: _far(a[0])),
    "sin": Row(lambda x: anp.sin(x), _t("sin"), gen="unary", extra=_unary(extra=[np.array([0.0, np.pi / 2, 100.0])])),
    "cos": Row(lambda x: anp.cos(x), _t("cos"), gen="unary", extra=_unary(extra=[np.array([0.0, np.pi / 2, 100.0])])),
    "tanh": Row(lambda x: anp.tanh(x), _t("tanh"), gen="unary", extra=_unary(extra=[EXTREMES]),
                torch_cases=[([_TAILS], {}, lambda t: t.tanh())]),
    "sigmoid": Row(ref_sigmoid, _t("sigmoid"), gen="unary", extra=_unary(extra=[EXTREMES]),
                   torch_cases=[([_TAILS], {}, lambda t: t.sigmoid())]),
    "relu": Row(lambda x: anp.where(x > 0, x, 0.0), _t("relu"), gen="unary",
                extra=_unary(extra=[np.array([-2.0, 0.0, 3.0, 0.0])]),
                domain=lambda a, _: _far(a[0])),
    # torch's default threshold 20 returns x itself past 20
    "softplus": Row(ref_softplus, lambda x: F.softplus(x, threshold=50.0), gen="unary", extra=_unary(extra=[EXTREMES]),
                    torch_cases=[([_TAILS], {}, lambda t: F.softplus(t))]),
    "leaky_relu": Row(lambda x, alpha=0.01: anp.where(x > 0, x, alpha * x), lambda x, *, alpha: F.leaky_relu(x, alpha),
                      defaults={"alpha": 0.01},
                      gen="unary", gen_attrs={"alpha": [0.01, 0.2]}, extra=_unary(extra=[np.array([-2.0, 0.0, 3.0])])
                      + [([np.array([-2.0, 0.0, 3.0])], {"alpha": a}) for a in (0.0, 0.2, 1.0, 3)]
                      + [([_n(2, 3, seed=25)], {"alpha": 0.5})],
                      torch_cases=[([_TAILS], {"alpha": 0.2}, lambda t: F.leaky_relu(t, 0.2))],
                      domain=lambda a, _: _far(a[0])),
    # linear algebra
    "matmul": Row(ref_matmul, _t("matmul"), extra=[([_n(*a, seed=26), _n(*b, seed=27)], {}) for a, b in [
        ((5,), (2, 5, 3)), ((2, 3, 4), (4,)), ((1, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 5, 4, 2)),
        ((4, 1), (1, 4)), ((1,), (1,)), ((3, 4), (2, 1, 4, 2)), ((6,), (6, 1))]]),
    "transpose": Row(ref_transpose, lambda x, *, axes: x.permute(tuple(reversed(range(x.dim()))) if axes is None else axes),
                     defaults={"axes": None},
                     extra=[([_n(5, seed=28)], {}), ([_n(seed=28)], {}), ([_n(2, 3, 4, seed=29)], {}),
                            ([_n(2, 3, 4, seed=29)], {"axes": [2, 0, 1]}), ([_n(2, 3, 4, seed=29)], {"axes": [-1, -3, -2]}),
                            ([_n(2, 3, seed=30)], {"axes": [0, 1]}), ([_n(1, 2, 1, 3, seed=31)], {"axes": [3, 1, 0, 2]}),
                            *[([_n(2, 3, 4, seed=32)], {"axes": [a - 3 * neg for a in p]})
                              for p in itertools.permutations(range(3)) for neg in (0, 1)]]),
    # reductions
    "sum": Row(lambda x, axis=None, keepdims=False: anp.sum(x, axis=_axis(axis, x), keepdims=keepdims),
               _t_reduction("sum"), defaults=REDUCE, gen="reduce", extra=_reduce_combos()),
    "mean": Row(lambda x, axis=None, keepdims=False: anp.mean(x, axis=_axis(axis, x), keepdims=keepdims),
                _t_reduction("mean"), defaults=REDUCE, gen="reduce", extra=_reduce_combos()),
    "max": Row(lambda x, axis=None, keepdims=False: anp.max(x, axis=_axis(axis, x), keepdims=keepdims),
               _t_reduction("amax"), defaults=REDUCE, gen="reduce", extra=_reduce_combos() + _max_ties(), domain=_max_no_ties),
    "logsumexp": Row(ref_logsumexp, _t_reduction("logsumexp"), defaults=REDUCE, gen="reduce",
                     extra=_reduce_combos() + [([LOGITS_EXTREME], {"axis": a, "keepdims": k})
                                               for a in (None, 0, -1) for k in (False, True)],
                     torch_cases=[([_TAILS], {"axis": 1}, lambda t: t.logsumexp(1))]),
    # shape
    "reshape": Row(lambda x, shape: anp.reshape(x, shape), lambda x, *, shape: x.reshape(shape), defaults={"shape": None},
                   extra=[([_n(2, 3, 4, seed=32)], {"shape": [-1]}), ([_n(2, 3, 4, seed=32)], {"shape": [4, -1, 2]}),
                          ([_n(seed=33)], {"shape": [1, 1]}), ([_n(1, seed=33)], {"shape": []}),
                          ([_n(6, seed=34)], {"shape": [3, 2]}), ([_n(2, 3, seed=35)], {"shape": [3, 2]})]),
    "concat": Row(ref_concat, lambda *xs, axis: torch.cat(xs, dim=axis), defaults={"axis": 0},
                  extra=[([_n(2, 3, 4, seed=36), _n(2, 1, 4, seed=37), _n(2, 2, 4, seed=38)], {"axis": 1}),
                         ([_n(2, 3, seed=39), _n(2, 3, seed=40)], {"axis": -2}),
                         ([_n(2, 3, seed=41), _n(2, 5, seed=42)], {"axis": -1}),
                         ([_n(4, seed=43), _n(1, seed=44), _n(2, seed=45), _n(3, seed=46)], {}),
                         ([_n(2, 2, seed=47)], {"axis": 1}),
                         *[([_n(2, 3, 4, seed=48), _n(2, 3, 4, seed=49)], {"axis": a}) for a in (0, 1, 2, -1, -2, -3)]]),
    # softmax
    "softmax": Row(ref_softmax, lambda x, *, axis: torch.softmax(x, axis), defaults={"axis": -1}, extra=_axis_cases(),
                   torch_cases=[([_TAILS], {}, lambda t: t.softmax(-1))]),
    "log_softmax": Row(ref_log_softmax, lambda x, *, axis: torch.log_softmax(x, axis), defaults={"axis": -1},
                       extra=_axis_cases(), torch_cases=[([_TAILS], {"axis": 0}, lambda t: t.log_softmax(0))]),
    # losses
    "mse": Row(lambda pred, target, reduction="mean": _reduce((pred - target) ** 2, reduction), _t_mse, defaults=REDUCTION,
               extra=[([_n(*a, seed=48), _n(*b, seed=49)], {"reduction": r})
                      for (a, b), r in itertools.product([((4, 3), (4, 3)), ((2, 3), (3,)), ((3,), (2, 1)), ((), (4,)),
                                                          ((), ())], ["mean", "sum", "none"])]),
    "softmax_cross_entropy": Row(
        ref_xent, _t_xent, defaults={"axis": -1, "reduction": "mean"}, extra=_class_cases(hinge=False),
        torch_cases=[([_n(8, 5, seed=70, scale=3), y], {}, lambda x, y: F.cross_entropy(x, y))
                     for y in (labels((8,), 5, seed=71), probs(8, 5, seed=72))]
        # confident, well-classified examples: a loss of e^-20 next to logits of 1e4 keeps its digits
        + [([np.array([[1e4, 1e4 - 20.0, 0.0], [30.0, 0.0, -5.0], [1e6 - 15.0, 1e6, 3.0]]), np.array([0, 0, 1])],
            {"reduction": "none"}, lambda x, y: F.cross_entropy(x, y, reduction="none"))],
        ints=_classes, targets=(1,)),
    "hinge": Row(
        ref_hinge, _t_hinge, defaults={"axis": -1, "reduction": "mean", "margin": 1.0}, extra=_class_cases(hinge=True),
        # torch divides each example's sum by the number of classes
        torch_cases=[([_n(8, 5, seed=73, scale=2), labels((8,), 5, seed=74)], {"margin": 0.7},
                      lambda x, y: 5 * F.multi_margin_loss(x, y, margin=0.7))],
        ints=_classes, domain=_hinge_away, targets=(1,)),
    "l2": Row(lambda w: anp.sum(w * w), lambda w: (w * w).sum(),
              no_batch="a scalar of its whole input: no rule of ops/batching.py fits it yet",
              extra=[([_n(seed=50)], {}), ([_n(5, seed=51)], {}), ([_n(2, 3, 4, seed=52)], {})]),
    # the ops a CNN lesson needs, and their neighbours (defaults beyond FORMAT.md: numpy's or
    # PyTorch's, as each op's doc says)
    "log1p": Row(lambda x: anp.log1p(x), _t("log1p"),
                 gen="unary", safe=(_above(-0.95),),
                 extra=_unary(_pos, extra=[np.array([-0.999, -0.5, -1e-10, 0.0, 1e-300, 1e-8, 1e8, 1e300])]),
                 torch_cases=[([rng(1).uniform(-0.9, 3, size=(3, 4))], {}, lambda x: torch.log1p(x)),
                              ([np.array([-1e-10, 1e-300, 1e-8, 5.0])], {}, lambda x: torch.log1p(x))],
                 domain=_at_least(-0.95)),
    "expm1": Row(lambda x: anp.expm1(x), _t("expm1"), gen="unary", safe=(_below(10),),
                 extra=_unary(extra=[np.array([-700.0, -30.0, -1e-10, 0.0, 1e-300, 1e-8, 30.0, 700.0])]),
                 torch_cases=[([np.array([-20.0, -1e-10, 1e-300, 1e-8, 5.0])], {}, lambda x: torch.expm1(x))],
                 domain=lambda a, _: bool(np.max(a[0]) < 5)),
    # torch.clamp wants a bound; FORMAT: null is no bound
    "clip": Row(ref_clip, lambda x, *, min, max: x if min is None and max is None else torch.clamp(x, min, max),
                defaults={"min": None, "max": None},
                extra=[([_n(3, 4, seed=80, scale=2)], b) for b in ({"min": -1.0, "max": 1.0}, {"min": 0.0}, {"max": -0.5},
                                                                    {}, {"min": 1, "max": 1})]
                + [([np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0])], {"min": -0.5, "max": 1.0})],  # on the bounds: gradient 1
                torch_cases=[([np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 1.5])], {"min": -0.5, "max": 1.0},
                              lambda x: x.clamp(-0.5, 1.0)),
                             ([_n(3, 4, seed=2)], {"min": 0.0}, lambda x: x.clamp(min=0.0)),
                             ([_n(3, 4, seed=3)], {"max": 0.25}, lambda x: x.clamp(max=0.25))],
                domain=_clip_away, attrs={"min": st.sampled_from([None, -1.0, -0.5, 0.5]),
                                          "max": st.sampled_from([None, 0.5, 1.0, 1.5])}),
    "where": Row(ref_where, lambda c, a, b: torch.where(c != 0, a, b),
                 extra=[([_n(*c, seed=81) > 0, _n(*a, seed=82), _n(*b, seed=83)], {}) for c, a, b in [
                     ((3, 4), (3, 4), (3, 4)), ((4,), (3, 4), ()), ((2, 1, 4), (3, 1), (1, 4)), ((), (2, 3), (2, 3))]]
                 + [([labels((2, 3), 3, seed=84), _n(2, 3, seed=85), 0.0], {}),
                    ([np.array([1, 0, 2]), -1.5, _n(3, seed=86)], {})],
                 torch_cases=[([_n(3, 4, seed=4) > 0, _n(3, 4, seed=5), _n(3, 4, seed=6)], {},
                               lambda c, a, b: torch.where(c, a, b)),
                              ([rng(7).integers(0, 3, size=(2, 1, 4)), _n(3, 1, seed=8), _n(4, seed=9)], {},
                               lambda c, a, b: torch.where(c != 0, a, b))]),
    "min": Row(lambda x, axis=None, keepdims=False: anp.min(x, axis=_axis(axis, x), keepdims=keepdims),
               _t_reduction("amin"), defaults=REDUCE, gen="reduce",
               extra=_reduce_combos() + [([-x], attrs) for (x,), attrs in _max_ties()],
               torch_cases=[([_n(3, 4, seed=10)], {"axis": 1}, lambda x: x.amin(1)),
                            ([np.array([[1.0, 0.0, 0.0], [2.0, 2.0, 2.0]])], {"axis": 1, "keepdims": True},
                             lambda x: x.amin(1, keepdim=True)),
                            ([np.array([1.0, 0.0, 0.0])], {}, lambda x: x.min())],  # ties split, in torch too
               domain=_min_no_ties),
    "var": Row(ref_var, _t_moments("var"), defaults={**REDUCE, "ddof": 0}, extra=_var_cases(),
               torch_cases=[([_n(3, 4, seed=11)], {}, lambda x: x.var(correction=0)),
                            ([_n(3, 4, seed=12)], {"axis": 1, "ddof": 1}, lambda x: x.var(1, correction=1)),
                            ([_n(2, 3, 4, seed=13) * 3 + 100], {"axis": [0, 2], "keepdims": True},
                             lambda x: x.var((0, 2), keepdim=True, correction=0)),
                            # an empty reduction is nan whatever ddof (it raised in the VJP, and was -0 for ddof 1)
                            ([np.zeros((0, 3))], {"axis": 0}, lambda x: x.var(0, correction=0)),
                            ([np.zeros((0, 3))], {"axis": 0, "ddof": 1}, lambda x: x.var(0, correction=1))],
               attrs={"ddof": st.sampled_from([0, 1])}),
    "std": Row(lambda x, axis=None, keepdims=False, ddof=0: anp.sqrt(ref_var(x, axis, keepdims, ddof)), _t_moments("std"),
               defaults={**REDUCE, "ddof": 0}, extra=_var_cases(least=2),
               torch_cases=[([_n(3, 4, seed=14)], {"axis": 0, "ddof": 1}, lambda x: x.std(0, correction=1)),
                            ([np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])], {"axis": 1},
                             lambda x: x.std(1, correction=0))],  # std 0: gradient 0
               domain=_std_domain, attrs={"ddof": st.sampled_from([0, 1])}),
    "stack": Row(ref_stack, lambda *xs, axis: torch.stack(xs, dim=axis), defaults={"axis": 0},
                 no_batch="no rule of ops/batching.py fits its axis yet",
                 extra=[([_n(2, 3, seed=87), _n(2, 3, seed=88), _n(2, 3, seed=89)], {"axis": a})
                        for a in (0, 1, 2, -1, -2, -3)]
                 + [([_n(seed=90), _n(seed=91)], {"axis": -1}), ([_n(2, 1, 3, seed=92)], {"axis": 3})],
                 torch_cases=[([_n(2, 3, seed=16), _n(2, 3, seed=17), _n(2, 3, seed=18)], {"axis": -1},
                               lambda *xs: torch.stack(xs, dim=-1)),
                              ([_n(4, seed=19), _n(4, seed=20)], {}, lambda *xs: torch.stack(xs))]),
    "expand_dims": Row(ref_expand_dims, lambda x, *, axis: x.unsqueeze(axis), defaults={"axis": None},
                       no_batch="no rule of ops/batching.py fits its axis yet",
                       extra=[([_n(*s, seed=93)], {"axis": a}) for s in [(), (3,), (2, 3, 4)]
                              for a in range(-len(s) - 1, len(s) + 1)],
                       torch_cases=[([_n(2, 3, seed=21)], {"axis": a}, lambda x, a=a: x.unsqueeze(a)) for a in (0, 2, -1, -3)]),
    "squeeze": Row(ref_squeeze, lambda x, *, axis: x.squeeze() if axis is None else x.squeeze(_dim(axis)),
                   defaults={"axis": None},
                   no_batch="no rule of ops/batching.py fits its axes yet",
                   extra=[([_n(1, 3, 1, 2, seed=94)], {"axis": a}) for a in (None, 0, 2, -2, [0, 2], [-4, -2])]
                   + [([_n(1, seed=95)], {}), ([_n(1, 1, seed=95)], {"axis": -1}), ([_n(3, seed=96)], {})],
                   torch_cases=[([_n(1, 3, 1, 2, seed=22)], {"axis": [0, 2]}, lambda x: x.squeeze((0, 2))),
                                ([_n(1, 3, 1, 2, seed=23)], {}, lambda x: x.squeeze())]),
    "slice": Row(lambda x, slices: x[tuple(slice(*s) for s in slices)], _t_slice, defaults={"slices": None},
                 no_batch="no rule of ops/batching.py fits its per-axis slices yet",
                 extra=[([_n(5, 4, 3, seed=97)], {"slices": sl}) for sl in [
                     [[None, None]], [[1, None]], [[-2, None]], [[None, -1], [1, 3]], [[None, None, -1]],
                     [[4, 0, -2], [None, None, 3]], [[-100, 100]], [[3, 1]], [[None, None], [None, None], [-1, None]],
                     [[0, 5, 2], [-1, -5, -1], [1, 2]], []]]
                 + [([_n(6, seed=98)], {"slices": [[1, 5, 2]]}), ([_n(seed=99)], {"slices": []})],
                 torch_cases=[([_n(5, 4, 3, seed=24)], {"slices": [[1, -1], [None, None, 2], [-2, None]]},
                               lambda x: x[1:-1, ::2, -2:]),
                              ([_n(6, 4, seed=25)], {"slices": [[None, None, -1], [3, 0, -2]]},  # torch: no negative steps
                               lambda x: torch.flip(x, (0,))[:, 1::2].flip(1))]),
    "take": Row(ref_take, _t_take, defaults={"axis": 0},
                no_batch="no rule of ops/batching.py fits its axis yet",
                extra=[([_n(5, 3, seed=100), np.array(i, dtype=np.int64)], {"axis": a}) for i, a in [
                    ([0, 4, 4, 1, 0], 0), ([[1, 1], [2, 0]], 0), (2, 0), ([-1, -3], 0), ([2, 0, 2], 1), ([[0, -1]], -1),
                    ([], 0)]]
                + [([_n(2, 3, 4, seed=101), np.array([[3, 0, 3], [1, 1, 2]])], {"axis": 2}),
                   ([_n(6, seed=102), np.array([[5, 0], [5, 5]])], {})],
                torch_cases=[([_n(5, 3, seed=26), np.array([0, 4, 4, 1])], {}, lambda x, i: torch.index_select(x, 0, i)),
                             ([_n(2, 5, seed=27), np.array([3, 3, 0])], {"axis": 1}, lambda x, i: torch.index_select(x, 1, i)),
                             ([_n(6, 4, seed=28), np.array([[1, 5], [5, 5]])], {},
                              lambda w, i: F.embedding(i, w))],  # an embedding lookup
                ints=lambda a, attrs: int(np.shape(a[0])[attrs["axis"]])),
    "one_hot": Row(ref_one_hot, lambda y, *, num_classes, dtype: F.one_hot(y.long(), num_classes).to(torch.float64),
                   defaults={"num_classes": None, "dtype": "float64"},
                   no_batch="its integer labels are never perturbed, so never stacked",
                   extra=[([np.array(lab, dtype=np.int64)], {"num_classes": n, **kw}) for lab, n, kw in [
                       ([0, 1, 2], 3, {}), ([[1, 0], [0, 0]], 2, {}), ([], 4, {}), (0, 1, {}),
                       ([3, 3], 5, {"dtype": "float32"})]],
                   torch_cases=[([np.array([[0, 3], [2, 2]])], {"num_classes": 4}, lambda y: F.one_hot(y, 4).double())],
                   ints=lambda a, attrs: max(1, attrs["num_classes"] or 1)),
    "binary_cross_entropy": Row(
        ref_bce, lambda z, y, *, reduction: F.binary_cross_entropy_with_logits(*torch.broadcast_tensors(z, y),
                                                                               reduction=reduction),
        defaults=REDUCTION,
        extra=[([_n(*a, seed=103, scale=3), y(b)], {"reduction": r}) for (a, b), r, y in itertools.product(
            [((4, 3), (4, 3)), ((2, 3), (3,)), ((3,), (2, 1)), ((), (4,)), ((), ())], ["mean", "sum", "none"],
            [lambda b: rng(104).uniform(size=b), lambda b: (rng(105).uniform(size=b) > 0.5) * 1.0])]
        + [([EXTREMES, (rng(106).uniform(size=EXTREMES.shape) > 0.5) * 1.0], {"reduction": r}) for r in ("mean", "none")],
        torch_cases=[([_n(4, 3, seed=29, scale=3), rng(30).uniform(size=(4, 3))], {"reduction": r},
                      lambda z, y, r=r: F.binary_cross_entropy_with_logits(z, y, reduction=r)) for r in ("mean", "sum", "none")]
        + [([np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), np.array([1.0, 0.0, 0.5, 1.0, 0.0])], {},
            lambda z, y: F.binary_cross_entropy_with_logits(z, y))],
        domain=lambda a, _: bool(np.min(a[1]) >= 0 and np.max(a[1]) <= 1)),
    "conv2d": Row(
        ref_conv2d, lambda x, w, b=None, *, stride, padding, dilation, groups: F.conv2d(x, w, b, stride, padding, dilation,
                                                                                     groups),
        defaults={"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1},
        no_batch="no rule of ops/batching.py fits its windows yet",
        extra=[([_n(*xs, seed=107), _n(*ws, seed=108), *([_n(ws[0], seed=109)] if bias else [])], attrs)
               for xs, ws, bias, attrs in [
                   ((2, 1, 5, 5), (2, 1, 3, 3), True, {}),
                   ((1, 2, 6, 7), (3, 2, 2, 3), False, {"stride": [2, 3]}),
                   ((2, 3, 5, 4), (2, 3, 3, 3), True, {"padding": 2}),
                   ((1, 2, 9, 8), (2, 2, 3, 2), False, {"dilation": [3, 2], "padding": [0, 1], "stride": 2}),
                   ((2, 4, 5, 5), (6, 2, 3, 3), True, {"groups": 2, "padding": 1}),
                   ((1, 4, 4, 4), (4, 1, 2, 2), False, {"groups": 4}),
                   ((1, 1, 3, 3), (1, 1, 3, 3), True, {}),  # one output pixel
                   ((3, 2, 1, 1), (5, 2, 1, 1), True, {}),  # a 1x1 conv: a dense layer per pixel
                   ((1, 1, 4, 4), (1, 1, 1, 1), False, {"stride": 3, "padding": [1, 0]})]],
        torch_cases=[
            ([_n(2, 1, 8, 8, seed=31), _n(3, 1, 3, 3, seed=32), _n(3, seed=33)], {}, lambda x, w, b: F.conv2d(x, w, b)),
            ([_n(2, 4, 9, 7, seed=34), _n(6, 2, 3, 2, seed=35)],
             {"stride": [2, 1], "padding": [1, 2], "dilation": [1, 2], "groups": 2},
             lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
            ([_n(1, 3, 6, 6, seed=36), _n(3, 1, 3, 3, seed=37), _n(3, seed=38)], {"groups": 3, "padding": 1, "stride": 2},
             lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3))],
        attrs={"stride": st.sampled_from([1, 2, [1, 2]]), "padding": st.sampled_from([0, 1, [1, 0]]),
               "dilation": st.sampled_from([1, 2]), "groups": st.sampled_from([1, 2])}),
    "max_pool2d": Row(
        ref_max_pool2d, lambda x, *, kernel, stride, padding: F.max_pool2d(x, kernel, kernel if stride is None else stride,
                                                                          padding),
        defaults={"kernel": None, "stride": None, "padding": (0, 0)},
        no_batch="no rule of ops/batching.py fits its windows yet",
        extra=[([_n(*xs, seed=110)], attrs) for xs, attrs in [
            ((1, 2, 4, 4), {"kernel": 2}), ((2, 1, 5, 5), {"kernel": 2}), ((1, 1, 5, 6), {"kernel": [2, 3], "stride": 1}),
            ((1, 2, 6, 6), {"kernel": 3, "stride": 2, "padding": 1}), ((1, 1, 5, 5), {"kernel": [3, 1], "padding": [1, 0]}),
            ((2, 2, 3, 3), {"kernel": 3}), ((1, 1, 4, 4), {"kernel": 1, "stride": 2})]]
        + [([np.array([[[[1.0, 1.0, 0.0], [1.0, 0.5, 2.0], [2.0, 2.0, 2.0]]]])], {"kernel": 2, "stride": 1})],  # ties
        torch_cases=[
            ([_distinct(2, 3, 6, 6, seed=39)], {"kernel": 2}, lambda x: F.max_pool2d(x, 2)),
            ([_distinct(1, 2, 7, 5, seed=40)], {"kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]},
             lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 0))),
            ([_distinct(1, 1, 5, 5, seed=41)], {"kernel": 3, "stride": 1, "padding": 1}, lambda x: F.max_pool2d(x, 3, 1, 1))],
        domain=_no_window_ties,
        attrs={"kernel": st.sampled_from([1, 2, 3, [2, 1]]), "stride": st.sampled_from([None, 1, 2]),
               "padding": st.sampled_from([0, 1])}),
}


def row(name: str) -> Row:
    """The op's row; a registered op without one fails with what to add."""
    if name not in ROWS:
        raise AssertionError(f"op {name!r} has no row in tests/optable.py: add ROWS[{name!r}] = Row(ref=..., torch=..., "
                             f"defaults=..., extra=[...], domain=...) (see that module's docstring)")
    return ROWS[name]


def problems() -> list[str]:
    """What the table lacks for the registered ops, one line each (empty when it is complete)."""
    out = [f"op {n!r} has no row in tests/optable.py: add ROWS[{n!r}] = Row(ref=..., torch=..., defaults=..., "
           f"extra=[...], domain=...) (see that module's docstring)" for n in sorted(set(OPS) - set(ROWS))]
    out += [f"tests/optable.py has a row for {n!r}, which is not a registered op: remove it or register the op"
            for n in sorted(set(ROWS) - set(OPS))]
    out += [f"op {n!r} has no samples() in its defop: the sweep and the random-graph generator build from them"
            for n in sorted(OPS) if not (OPS[n].samples and OPS[n].samples())]
    for n in sorted(set(ROWS) & set(OPS)):
        unknown = sorted(set(ROWS[n].attrs) - set(OPS[n].attrs))
        if unknown:
            out.append(f"tests/optable.py ROWS[{n!r}].attrs names attrs {n} does not have: {unknown}")
    return out


def full_attrs(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Attrs checked, with the schema's defaults filled in, lists as tuples and pairs as pairs:
    exactly as the interpreter passes them (`bind_attrs`; a SpecError for a bad attr)."""
    return bind_attrs("n", Node(op=op, args=[], attrs=attrs))
