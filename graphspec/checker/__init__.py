"""The gradient checker: analytic gradients against finite differences, and the blame on a node.

How it works (docs/gradcheck.md has the whole story and the numbers):

- Central differences with a step scaled to each element, ``h = eps * max(1, |x|)``, always evaluated
  in float64 (a float32 graph's leaves are cast; the analytic side stays float32).
- Every perturbation of one leaf is stacked on a leading axis and pushed through the plan in one pass
  (`_Batched`): ops with a batching rule run once on the stack, the others once per row.
- Kinks are found exactly: for ops with a ``branch`` the branch arrays of the +h and -h evaluations are
  compared. An element whose stencil crosses a kink and whose numbers disagree is a KINK, not a FAIL.
- When anything fails, every node's own VJP and JVP is checked against finite differences of that node
  alone (random cotangent, random direction), so the report names the op that is wrong.
- Forward mode and reverse mode must agree: <u, J v> by JVP equals <J^T u, v> by VJP.
- ``taylor=True``: |f(x + h v) - f(x) - h <g, v>| shrinks like h^2 with a right gradient, like h with a
  wrong one, whatever eps; the observed orders are reported.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..interpret import Plan, Step
from ..ops import OPS, unbroadcast

PASS, FAIL, KINK, UNCLEAR = "PASS", "FAIL", "KINK", "UNCLEAR"
FD_DTYPE = "float64"
WORST = 5  # elements listed in full per check
BUDGET = 1 << 20  # float64 elements per stacked pass: ~8 MB per live array keeps passes in cache
KINK_JUMP = 1e-3  # one-sided differences further apart than this (relative) disagree
MODES_RTOL = 1e-8  # JVP vs VJP: both exact in float64, only rounding separates them


@dataclass(frozen=True)
class Tolerance:
    """Step and tolerances for one analytic dtype (finite differences are always float64).

    h_j = eps * max(1, |x_j|); element j passes when |a - n| <= max(rtol * max(|a|, |n|), atol_j), with
    atol_j = atol * max(1, |f(x)|) / max(1, |x_j|), the size of the finite-difference rounding error."""

    eps: float
    rtol: float
    atol: float


# eps = cbrt(float64 machine eps) balances truncation (h^2) and rounding (eps_mach / h) error.
TOLERANCES = {"float64": Tolerance(eps=6e-6, rtol=1e-5, atol=1e-8),
              "float32": Tolerance(eps=6e-6, rtol=1e-4, atol=1e-5)}


# ---------------------------------------------------------------------------------------------
# report data


@dataclass(frozen=True)
class NodeKink:
    node: str
    op: str
    at: tuple[int, ...]  # the element of the node's branch array that switched


@dataclass(frozen=True)
class Element:
    index: tuple[int, ...]  # element of the input (or the direction number in fast mode)
    row: str  # which output element or projection ("" for the loss)
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    status: str
    kinks: tuple[NodeKink, ...] = ()


@dataclass
class InputCheck:
    """One input (param or float input) against one target (the loss, or one output)."""

    input: str
    kind: str  # param | input
    target: str  # the loss node or the output node
    target_kind: str  # loss | jacobian | projection
    method: str  # elements | directions
    shape: tuple[int, ...]
    size: int
    checked: int
    max_abs_err: float
    max_rel_err: float
    status: str
    worst: Element | None
    worst_elements: list[Element]
    kinks: list[Element]
    arrays: dict[str, Any]  # every checked element: index, row, analytic, numeric, abs_err, rel_err, status
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NodeCheck:
    """A node's own VJP or JVP for one arg against finite differences of the node alone."""

    node: str
    op: str
    arg: int
    arg_name: str
    mode: str  # vjp | jvp
    analytic: float
    numeric: float
    rel_err: float
    status: str
    message: str = ""  # what the rule raised, when it raised


@dataclass(frozen=True)
class ModeCheck:
    """<u, jvp(v)> against <vjp(u), v> for one output."""

    target: str
    jvp_side: float
    vjp_side: float
    rel_err: float
    status: str


@dataclass(frozen=True)
class TaylorRow:
    wrt: str  # "all" or an input's name
    h: list[float]
    remainder: list[float | None]
    used: list[bool]  # steps that crossed no kink and stayed above rounding noise
    order: float | None
    status: str
    note: str = ""


@dataclass
class Report:
    spec: str | None
    name: str | None
    dtype: str
    fd_dtype: str
    mode: str  # full | fast
    strict: bool
    tolerance: Tolerance
    checks: list[InputCheck]
    modes: list[ModeCheck]
    nodes: list[NodeCheck]
    taylor: list[TaylorRow]
    notes: list[str]
    seconds: float = 0.0
    evaluations: int = 0  # perturbed forward rows evaluated
    error: str = ""  # the analytic side could not be computed (a VJP or JVP raised)

    @property
    def status(self) -> str:
        states = [c.status for c in self.checks] + [m.status for m in self.modes] + \
            [n.status for n in self.nodes] + [t.status for t in self.taylor]
        if FAIL in states or self.error:
            return FAIL
        return KINK if KINK in states else PASS

    @property
    def ok(self) -> bool:
        return self.status == PASS or (self.status == KINK and not self.strict)

    @property
    def blamed(self) -> list[NodeCheck]:
        return [n for n in self.nodes if n.status == FAIL]

    def to_json(self) -> dict[str, Any]:
        from .. import report

        return report.report_json(self)

    def text(self, width: int = 120, verbose: bool = False) -> str:
        from .. import report

        return report.report_text(self, width=width, verbose=verbose)

    def __str__(self) -> str:
        return self.text()


# ---------------------------------------------------------------------------------------------
# batched forwards: many perturbations of the leaves in one pass over the plan

_ELEMENTWISE = frozenset({"add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp", "log", "sqrt",
                          "square", "abs", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "leaky_relu"})
_REDUCTIONS = frozenset({"sum", "mean", "max", "logsumexp"})
_CLASS_LOSSES = frozenset({"softmax_cross_entropy", "hinge"})
Rule = tuple[list[Any], dict[str, Any], Callable[[Any], Any]]


def _ident(y: Any) -> Any:
    return y


def _lift(a: np.ndarray, nd: int, rank: int) -> np.ndarray:
    """A stacked value (B, *s), given unit axes after B up to ``rank`` so that it broadcasts
    against the unstacked args exactly as the unstacked value did (numpy aligns from the right)."""
    return a.reshape((a.shape[0], *(1,) * (rank - nd), *a.shape[1:])) if rank > nd else a


def _shift_axes(axis: Any, nd: int) -> Any:
    """An axis attr of the unstacked value, moved past the stacking axis (None: every old axis)."""
    if axis is None:
        return tuple(range(1, nd + 1))
    if isinstance(axis, int):
        return axis % nd + 1
    return tuple(a % nd + 1 for a in axis)


def _reduce_rows(reduction: str) -> Callable[[Any], Any]:
    """The loss reduction, done per stacked row (the op itself is called with reduction='none')."""
    if reduction == "none":
        return _ident
    fn = np.mean if reduction == "mean" else np.sum
    return lambda y: fn(y, axis=tuple(range(1, np.ndim(y)))) if np.ndim(y) > 1 else y


def _stack(a: Any, stacked: bool, rows: int) -> Any:
    return a if stacked else np.broadcast_to(a, (rows, *np.shape(a)))


def _matmul_rule(args: list[Any], stacked: list[bool], nds: list[int]) -> Rule:
    x, y = args
    nx, ny = nds
    # promote 1-D operands to matrices first, so the stacking axis is never read as a row axis
    if nx == 1:
        x = x[..., None, :]
    if ny == 1:
        y = y[..., :, None]
    rank = max(nx, ny, 2)
    x = _lift(x, max(nx, 2), rank) if stacked[0] else x
    y = _lift(y, max(ny, 2), rank) if stacked[1] else y
    if nx == 1 and ny == 1:
        post = lambda r: r[..., 0, 0]
    elif nx == 1:
        post = lambda r: r[..., 0, :]
    elif ny == 1:
        post = lambda r: r[..., 0]
    else:
        post = _ident
    return [x, y], {}, post


def _rule_for(op: str, args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any],
              rows: int) -> Rule | None:
    """How to call an op's own forward on stacked args, or None (then it runs once per row)."""
    if op in _ELEMENTWISE:
        rank = max(nds)
        return [_lift(a, n, rank) if s else a for a, s, n in zip(args, stacked, nds, strict=True)], attrs, _ident
    if op in _REDUCTIONS:
        return args, {**attrs, "axis": _shift_axes(attrs["axis"], nds[0])}, _ident
    if op in ("softmax", "log_softmax"):
        return args, {**attrs, "axis": attrs["axis"] % nds[0] + 1}, _ident
    if op in _CLASS_LOSSES:
        both = [_stack(a, s, rows) for a, s in zip(args, stacked, strict=True)]
        return both, {**attrs, "axis": attrs["axis"] % nds[0] + 1, "reduction": "none"}, \
            _reduce_rows(attrs["reduction"])
    if op == "mse":
        rank = max(nds)
        lifted = [_lift(a, n, rank) if s else a for a, s, n in zip(args, stacked, nds, strict=True)]
        return lifted, {**attrs, "reduction": "none"}, _reduce_rows(attrs["reduction"])
    if op == "matmul":
        return _matmul_rule(args, stacked, nds)
    if op == "transpose":
        nd, axes = nds[0], attrs["axes"]
        perm = (0, *range(nd, 0, -1)) if axes is None else (0, *(a % nd + 1 for a in axes))
        return args, {**attrs, "axes": perm}, _ident
    if op == "reshape":
        return args, {**attrs, "shape": (rows, *attrs["shape"])}, _ident
    if op == "concat":
        return [_stack(a, s, rows) for a, s in zip(args, stacked, strict=True)], \
            {**attrs, "axis": attrs["axis"] % nds[0] + 1}, _ident
    return None


def _unbound(step: Step) -> Callable[..., Any]:
    """A plan step's forward without its bound attrs (the batching rule passes changed ones): the
    plan's own function when it is a partial (so a plan built with a patched op stays patched), else
    the op table's."""
    fn, attrs = step.forward, step.attrs
    if not attrs:
        return fn
    if isinstance(fn, partial) and set(attrs) <= set(fn.keywords):
        rest = {k: v for k, v in fn.keywords.items() if k not in attrs}
        return partial(fn.func, *fn.args, **rest) if rest or fn.args else fn.func
    return OPS[step.op].forward


class _Batched:
    """Run a plan's forward with some leaves stacked along a new leading axis of ``rows``.

    Only the steps downstream of a stacked leaf are recomputed; the others keep their base value.
    ``batch=False`` runs the whole plan once per row instead (the reference the tests compare with)."""

    def __init__(self, plan: Plan, vals: list[Any], batch: bool = True):
        self.plan, self.vals, self.batch = plan, vals, batch
        self.nd = [np.ndim(v) for v in vals]
        self.branch = {i: OPS[s.op].branch for i, s in enumerate(plan.steps) if s.op in OPS and OPS[s.op].branch}
        self.evaluations = 0

    def steps_for(self, slots: Iterable[int]) -> list[int]:
        """Indices of the steps the given slots depend on, in order."""
        need, out = set(slots), []
        for i in range(len(self.plan.steps) - 1, -1, -1):
            s = self.plan.steps[i]
            if s.out in need:
                out.append(i)
                need.update(s.args)
        return out[::-1]

    def row_cost(self, steps: list[int]) -> int:
        return 1 + sum(int(np.size(self.vals[self.plan.steps[i].out])) for i in steps)

    def run(self, leaves: dict[int, np.ndarray], steps: list[int], rows: int) -> tuple[dict[int, Any], dict[int, Any]]:
        """(stacked values by slot, stacked branch arrays by step index) of the steps that depend on a
        stacked leaf; a slot missing from the first dict kept its base value."""
        self.evaluations += rows
        if not self.batch:
            return self._run_rows(leaves, steps, rows)
        vals: dict[int, Any] = dict(leaves)
        branches: dict[int, Any] = {}
        with np.errstate(all="ignore"):
            for i in steps:
                s = self.plan.steps[i]
                stacked = [a in vals for a in s.args]
                if any(stacked):
                    args = [vals[a] if st else self.vals[a] for a, st in zip(s.args, stacked, strict=True)]
                    vals[s.out], br = self._step(i, s, args, stacked, rows)
                    if br is not None:
                        branches[i] = br
        return vals, branches

    def _step(self, i: int, s: Step, args: list[Any], stacked: list[bool], rows: int) -> tuple[Any, Any]:
        nds = [self.nd[a] for a in s.args]
        rule = _rule_for(s.op, args, stacked, nds, s.attrs, rows)
        branch = self.branch.get(i)
        if rule is None:
            return self._step_rows(s, args, stacked, rows, branch)
        args2, attrs2, post = rule
        y = _unbound(s)(*args2, **attrs2)
        br = None
        if branch is not None:
            br = np.asarray(branch(y, *args2, **attrs2))
            if br.ndim == 0 or br.shape[0] != rows:
                br = np.broadcast_to(br, (rows, *br.shape))
        return post(y), br

    @staticmethod
    def _step_rows(s: Step, args: list[Any], stacked: list[bool], rows: int, branch: Any) -> tuple[Any, Any]:
        outs, brs = [], []
        for r in range(rows):
            a = [x[r] if st else x for x, st in zip(args, stacked, strict=True)]
            y = s.forward(*a)
            outs.append(y)
            if branch is not None:
                brs.append(branch(y, *a, **s.attrs))
        return np.stack(outs), (np.stack(brs) if branch is not None else None)

    def _run_rows(self, leaves: dict[int, np.ndarray], steps: list[int], rows: int) -> tuple[dict[int, Any], dict[int, Any]]:
        per = []
        for r in range(rows):
            lv = list(self.vals[: self.plan.n_leaves])
            for slot, arr in leaves.items():
                lv[slot] = arr[r]
            per.append(self.plan.forward(lv))
        vals = {self.plan.steps[i].out: np.stack([v[self.plan.steps[i].out] for v in per]) for i in steps}
        branches = {}
        with np.errstate(all="ignore"):
            for i in steps:
                if i in self.branch:
                    s = self.plan.steps[i]
                    branches[i] = np.stack([self.branch[i](v[s.out], *[v[a] for a in s.args], **s.attrs) for v in per])
        return vals, branches


# ---------------------------------------------------------------------------------------------
# targets: the scalar functions whose gradients are checked


@dataclass
class _Target:
    """Rows of scalar functions <seed_t, node>: the loss (one row), or one output's Jacobian rows
    (one-hot seeds) or random projections."""

    node: str
    slot: int
    kind: str  # loss | jacobian | projection
    seeds: np.ndarray  # (T, m) float64
    labels: list[str]
    grads: dict[str, np.ndarray] = field(default_factory=dict)  # leaf -> (T, n) analytic
    f0: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) float64 at the base point

    def values(self, out: Any, rows: int) -> np.ndarray:
        """(T, rows): the target rows at each stacked evaluation (constant if out did not change)."""
        if out is None:
            return np.repeat(self.f0[:, None], rows, axis=1)
        return self.seeds @ np.asarray(out, dtype=np.float64).reshape(rows, -1).T


def _index_label(shape: tuple[int, ...], flat: int) -> str:
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]" if shape else "[]"


@dataclass
class _Ctx:
    graph: Any
    plan: Plan
    wrt: list[str]
    vals_a: list[Any]  # the graph's own dtype (analytic side)
    vals_f: list[Any]  # float64 (finite differences)
    dtype: str
    tol: Tolerance
    rng: np.random.Generator
    engine: _Batched
    max_elements: int | None
    refine: bool
    notes: list[str] = field(default_factory=list)

    def x(self, name: str) -> np.ndarray:
        return self.vals_f[self.plan.slot[name]]

    def backward(self, node: str, seed: np.ndarray, vals: list[Any] | None = None) -> dict[str, np.ndarray]:
        vals = self.vals_a if vals is None else vals
        ct = self.plan.backward(vals, node, seed)
        out = {}
        for n in self.wrt:
            g = ct[self.plan.slot[n]]
            out[n] = np.zeros(np.shape(vals[self.plan.slot[n]])) if g is None else np.asarray(g, dtype=np.float64)
        return out


def _make_targets(ctx: _Ctx, jacobian_max: int, projections: int) -> list[_Target]:
    g, slot = ctx.graph, ctx.plan.slot
    if g.loss is not None:
        seed = np.asarray(g.seed, dtype=np.float64)
        targets = [_Target(g.loss, slot[g.loss], "loss", seed.reshape(1, -1), [""])]
    else:
        targets = []
        for o in g.outputs:
            v = ctx.vals_f[slot[o]]
            if not np.issubdtype(np.asarray(v).dtype, np.floating):
                continue
            shape, m = np.shape(v), int(np.size(v))
            if m <= jacobian_max:
                targets.append(_Target(o, slot[o], "jacobian", np.eye(m), [_index_label(shape, j) for j in range(m)]))
            else:
                u = ctx.rng.normal(size=(projections, m))
                targets.append(_Target(o, slot[o], "projection", u, [f"u{k + 1}" for k in range(projections)]))
    for t in targets:
        shape = np.shape(ctx.vals_a[t.slot])
        dt = np.asarray(ctx.vals_a[t.slot]).dtype
        rows = [ctx.backward(t.node, np.asarray(s.reshape(shape), dtype=dt)) for s in t.seeds]
        t.grads = {n: np.stack([r[n].ravel() for r in rows]) for n in ctx.wrt}
        t.f0 = t.values(ctx.vals_f[t.slot], 1)[:, 0]
    return targets


# ---------------------------------------------------------------------------------------------
# finite differences of the targets, stacked


@dataclass
class _FD:
    plus: list[np.ndarray]  # per target (T, k): f(x + h d)
    minus: list[np.ndarray]
    flips: dict[int, np.ndarray]  # step index -> (k,) bool: branch differs between the + and - rows
    at: dict[int, np.ndarray]  # step index -> (k,) first flat element of the branch that differs
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)  # step index -> branch array shape


Delta = Callable[[int, int], Any]  # rows c0..c1 of a perturbation: a (k, n) block or (flat index, step)


def _fd(ctx: _Ctx, deltas: dict[int, Delta], k: int, targets: list[_Target]) -> _FD:
    """f(x + delta_i) and f(x - delta_i) for i < k; ``deltas[slot](c0, c1)`` gives rows c0..c1 of the
    (flat) perturbation of that leaf, so several leaves can move in one stacked pass."""
    engine = ctx.engine
    steps = engine.steps_for([t.slot for t in targets])
    chunk = max(1, BUDGET // (2 * (engine.row_cost(steps) + sum(ctx.vals_f[s].size for s in deltas))))
    plus = [np.empty((len(t.seeds), k)) for t in targets]
    minus = [np.empty((len(t.seeds), k)) for t in targets]
    flips: dict[int, np.ndarray] = {}
    at: dict[int, np.ndarray] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    for c0 in range(0, k, chunk):
        c1 = min(k, c0 + chunk)
        kc = c1 - c0
        leaves = {slot: _stacked(ctx.vals_f[slot], delta(c0, c1)) for slot, delta in deltas.items()}
        vals, branches = engine.run(leaves, steps, 2 * kc)
        for t, p, m in zip(targets, plus, minus, strict=True):
            f = t.values(vals.get(t.slot), 2 * kc)
            p[:, c0:c1], m[:, c0:c1] = f[:, :kc], f[:, kc:]
        for i, br in branches.items():
            shapes[i] = np.shape(br)[1:]
            br = np.asarray(br).reshape(2 * kc, -1)
            diff = br[:kc] != br[kc:]
            flips.setdefault(i, np.zeros(k, dtype=bool))[c0:c1] = diff.any(axis=1)
            at.setdefault(i, np.zeros(k, dtype=np.int64))[c0:c1] = diff.argmax(axis=1)
    return _FD(plus, minus, flips, at, shapes)


def _stacked(x: np.ndarray, d: np.ndarray | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """x + d_i for each row i, then x - d_i: a dense (k, n) block, or (flat index, step) pairs for
    one-hot perturbations (one copy of x per row and a scatter, not a dense k x n block)."""
    if isinstance(d, tuple):
        idx, h = d
        k = len(idx)
        out = np.repeat(x.reshape(1, -1), 2 * k, axis=0)
        rows = np.arange(k)
        out[rows, idx] += h
        out[rows + k, idx] -= h
        return out.reshape((2 * k, *x.shape))
    d = d.reshape((len(d), *x.shape))
    return np.concatenate([x + d, x - d])


def _columns(fd: _FD, cols: slice) -> _FD:
    """The differences of some perturbations only (one input's share of a joint pass)."""
    return _FD([p[:, cols] for p in fd.plus], [m[:, cols] for m in fd.minus],
               {i: f[cols] for i, f in fd.flips.items()}, {i: a[cols] for i, a in fd.at.items()}, fd.shapes)


def _one_hot(idx: np.ndarray, h: np.ndarray) -> Delta:
    return lambda c0, c1: (idx[c0:c1], h[c0:c1])


def _elements(ctx: _Ctx, n: int) -> np.ndarray:
    if ctx.max_elements is None or n <= ctx.max_elements:
        return np.arange(n)
    return np.sort(ctx.rng.choice(n, size=ctx.max_elements, replace=False))


def _compare(tol: Tolerance, a: np.ndarray, num: np.ndarray, atol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """abs error, rel error (denominator max(|a|, |n|, atol/rtol): the pass line is rel <= rtol) and
    failure mask (non-finite numbers fail)."""
    with np.errstate(all="ignore"):
        abs_err = np.abs(a - num)
        rel = abs_err / np.maximum(np.maximum(np.abs(a), np.abs(num)), atol / tol.rtol)
    return abs_err, rel, ~(rel <= tol.rtol)


def _kink_mask(fd: _FD, k: int) -> np.ndarray:
    mask = np.zeros(k, dtype=bool)
    for f in fd.flips.values():
        mask |= f
    return mask


def _node_kinks(ctx: _Ctx, fd: _FD, j: int) -> tuple[NodeKink, ...]:
    out = []
    for i, f in fd.flips.items():
        if f[j]:
            s = ctx.plan.steps[i]
            shape = fd.shapes.get(i, np.shape(ctx.vals_f[s.out]))  # the branch array's, e.g. a hinge's margins
            at = tuple(int(v) for v in np.unravel_index(int(fd.at[i][j]), shape)) if shape else ()
            out.append(NodeKink(s.name, s.op, at))
    return tuple(out)


@dataclass
class _Numbers:
    """One target's comparison for one input: (T, k) arrays."""

    ana: np.ndarray
    num: np.ndarray
    abs_err: np.ndarray
    rel: np.ndarray
    status: np.ndarray


def _classify(tol: Tolerance, f0: np.ndarray, plus: np.ndarray, minus: np.ndarray, h: np.ndarray, scale: np.ndarray,
              ana: np.ndarray, crossed: np.ndarray) -> _Numbers:
    """PASS / FAIL / KINK per element: a failure, or one-sided differences that disagree, at an element
    whose stencil crosses a kink is a KINK; elsewhere a failure is a FAIL."""
    f0 = f0[:, None]
    num = (plus - minus) / (2 * h)
    atol = tol.atol * np.maximum(1.0, np.abs(f0)) / scale
    abs_err, rel, fail = _compare(tol, ana, num, atol)
    with np.errstate(all="ignore"):
        jump = np.abs((plus - f0) / h - (f0 - minus) / h)
        jumped = ~(jump <= KINK_JUMP * np.maximum(np.maximum(np.abs(num), np.abs(ana)), atol / tol.rtol))
    status = np.where(crossed[None, :] & (fail | jumped), KINK, np.where(fail, FAIL, PASS)).astype(object)
    return _Numbers(ana, num, abs_err, rel, status)


def _max_err(err: np.ndarray) -> float:
    """The largest error, nan counted as infinite (a nan element is the worst, not ignored)."""
    return float(np.max(np.where(np.isnan(err), np.inf, err))) if err.size else 0.0


def _input_check(ctx: _Ctx, name: str, target: _Target, method: str, idx: np.ndarray, n: _Numbers, fd: _FD,
                 notes: list[str]) -> InputCheck:
    x = ctx.x(name)
    shape = tuple(np.shape(x))
    T, k = n.ana.shape
    flat_rel = np.where(np.isfinite(n.rel), n.rel, np.inf).ravel()
    order = np.argsort(-flat_rel, kind="stable")

    def element(p: int) -> Element:
        t, j = divmod(int(p), k)
        index = tuple(int(v) for v in np.unravel_index(int(idx[j]), shape)) if method == "elements" else (int(j),)
        kinks = _node_kinks(ctx, fd, j) if n.status[t, j] == KINK else ()
        return Element(index, target.labels[t], float(n.ana[t, j]), float(n.num[t, j]), float(n.abs_err[t, j]),
                       float(n.rel[t, j]), str(n.status[t, j]), kinks)

    kink_positions = np.flatnonzero(n.status.ravel() == KINK)
    states = set(n.status.ravel().tolist())
    overall = FAIL if FAIL in states else KINK if KINK in states else PASS
    if method == "elements":
        index = np.stack(np.unravel_index(idx, shape), axis=1).tolist() if shape else [[] for _ in idx]
    else:
        index = [[int(j)] for j in range(k)]
    arrays = {"index": [i for _ in range(T) for i in index], "row": [lab for lab in target.labels for _ in range(k)],
              "analytic": n.ana.ravel(), "numeric": n.num.ravel(), "abs_err": n.abs_err.ravel(),
              "rel_err": n.rel.ravel(), "status": n.status.ravel().tolist()}
    return InputCheck(
        input=name, kind=ctx.graph.kind[name][:-1], target=target.node, target_kind=target.kind, method=method,
        shape=shape, size=int(np.size(x)), checked=k, max_abs_err=_max_err(n.abs_err),
        max_rel_err=float(flat_rel.max()) if flat_rel.size else 0.0, status=overall,
        worst=element(order[0]) if order.size else None, worst_elements=[element(p) for p in order[:WORST]],
        kinks=[element(p) for p in kink_positions[:50]], arrays=arrays, notes=notes)


def _richardson(ctx: _Ctx, name: str, targets: list[_Target], numbers: list[_Numbers], fd: _FD, idx: np.ndarray,
                h: np.ndarray, scale: np.ndarray) -> list[int]:
    """Re-take the elements that failed with h/2 and extrapolate, (4 D(h/2) - D(h)) / 3, error O(h^4): a
    truncation error (a steep function, a big step) goes away, a wrong gradient does not. Updates
    ``numbers`` in place; returns how many elements each target got back."""
    cols = np.flatnonzero(np.any(np.stack([n.status == FAIL for n in numbers]), axis=(0, 1)))
    if not cols.size or cols.size > 2000:
        return [0] * len(targets)
    half = _fd(ctx, {ctx.plan.slot[name]: _one_hot(idx[cols], h[cols] / 2)}, cols.size, targets)
    fixed = []
    for ti, (t, n) in enumerate(zip(targets, numbers, strict=True)):
        d1 = n.num[:, cols]
        d2 = (half.plus[ti] - half.minus[ti]) / h[cols]
        rich = (4 * d2 - d1) / 3
        atol = ctx.tol.atol * np.maximum(1.0, np.abs(t.f0[:, None])) / scale[cols]
        abs_err, rel, fail = _compare(ctx.tol, n.ana[:, cols], rich, atol)
        back = (n.status[:, cols] == FAIL) & ~fail
        for arr, new in ((n.num, rich), (n.abs_err, abs_err), (n.rel, rel)):
            arr[:, cols] = np.where(back, new, arr[:, cols])
        n.status[:, cols] = np.where(back, PASS, n.status[:, cols])
        fixed.append(int(back.sum()))
    return fixed


def _full(ctx: _Ctx, name: str, targets: list[_Target]) -> list[InputCheck]:
    x = ctx.x(name)
    idx = _elements(ctx, x.size)
    scale = np.maximum(1.0, np.abs(x.ravel()[idx]))
    h = ctx.tol.eps * scale
    fd = _fd(ctx, {ctx.plan.slot[name]: _one_hot(idx, h)}, len(idx), targets)
    crossed = _kink_mask(fd, len(idx))
    numbers = [_classify(ctx.tol, t.f0, fd.plus[ti], fd.minus[ti], h, scale, t.grads[name][:, idx], crossed)
               for ti, t in enumerate(targets)]
    fixed = _richardson(ctx, name, targets, numbers, fd, idx, h, scale) if ctx.refine else [0] * len(targets)
    notes = [[f"{f} element(s) passed only after Richardson extrapolation (h and h/2): the function is steep "
              "there, the gradient is right"] if f else [] for f in fixed]
    return [_input_check(ctx, name, t, "elements", idx, n, fd, note)
            for t, n, note in zip(targets, numbers, notes, strict=True)]


def _fast(ctx: _Ctx, targets: list[_Target], directions: int) -> list[InputCheck]:
    """``directions`` random directional derivatives per input, every input's in one stacked pass
    (input i moves in rows i*K..(i+1)*K only): one pass over the plan whatever the number of inputs."""
    K, h = directions, ctx.tol.eps
    dirs = {n: ctx.rng.normal(size=(K, ctx.x(n).size)) * np.maximum(1.0, np.abs(ctx.x(n).ravel())) for n in ctx.wrt}

    def block(i: int, d: np.ndarray) -> Delta:
        def delta(c0: int, c1: int) -> np.ndarray:
            out = np.zeros((c1 - c0, d.shape[1]))
            lo, hi = max(c0, i * K), min(c1, (i + 1) * K)
            if lo < hi:
                out[lo - c0:hi - c0] = h * d[lo - i * K:hi - i * K]
            return out
        return delta

    fd = _fd(ctx, {ctx.plan.slot[n]: block(i, dirs[n]) for i, n in enumerate(ctx.wrt)}, K * len(ctx.wrt), targets)
    hs, ones, rows = np.full(K, h), np.ones(K), np.arange(K)
    out = []
    for i, n in enumerate(ctx.wrt):
        mine = _columns(fd, slice(i * K, (i + 1) * K))
        for ti, t in enumerate(targets):
            nums = _classify(ctx.tol, t.f0, mine.plus[ti], mine.minus[ti], hs, ones, t.grads[n] @ dirs[n].T,
                             _kink_mask(mine, K))
            out.append(_input_check(ctx, n, t, "directions", rows, nums, mine, []))
    return out


# ---------------------------------------------------------------------------------------------
# forward mode against reverse mode


def _modes(ctx: _Ctx, targets: list[_Target]) -> list[ModeCheck]:
    """<u, J v> by one JVP against <J^T u, v> by one VJP, random u and v, in float64."""
    v = {n: ctx.rng.normal(size=np.shape(ctx.x(n))) for n in ctx.wrt}
    tan = ctx.plan.jvp(ctx.vals_f, v)
    out = []
    for t in targets:
        shape = np.shape(ctx.vals_f[t.slot])
        u = t.seeds[0].reshape(shape) if t.kind == "loss" else ctx.rng.normal(size=shape)
        jv = tan[t.slot]
        jv = np.zeros(shape) if jv is None else np.broadcast_to(jv, shape)
        # the loss's gradient at its own seed was computed for the targets (float64 graphs)
        reuse = t.kind == "loss" and ctx.vals_f is ctx.vals_a
        g = {n: t.grads[n][0].reshape(np.shape(ctx.x(n))) for n in ctx.wrt} if reuse else ctx.backward(t.node, u, ctx.vals_f)
        lhs = float(np.sum(u * jv))
        rhs = float(sum(np.sum(g[n] * v[n]) for n in ctx.wrt))
        scale = float(np.sum(np.abs(u * jv)) + sum(np.sum(np.abs(g[n] * v[n])) for n in ctx.wrt))
        err = abs(lhs - rhs)
        rel = err / max(abs(lhs), abs(rhs), scale * 1e-3, 1e-300)
        ok = err <= MODES_RTOL * scale or err == 0
        out.append(ModeCheck(t.node, lhs, rhs, rel, PASS if ok else FAIL))
    return out


def _safe_modes(ctx: _Ctx, targets: list[_Target]) -> list[ModeCheck]:
    try:
        return _modes(ctx, targets)
    except Exception as e:  # a JVP that raises fails the comparison; the blame pass names it
        return [ModeCheck(f"(forward mode raised {type(e).__name__}: {e})", math.nan, math.nan, math.inf, FAIL)]


# ---------------------------------------------------------------------------------------------
# blame: every node's own VJP and JVP against finite differences of that node alone


def _arg_positions(step: Step, entries: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The arg position of each (slot, fn) entry of a step (entries come in position order)."""
    out, i = [], 0
    for s, fn in entries:
        while step.args[i] != s:
            i += 1
        out.append((i, fn))
        i += 1
    return out


def _vjp_side(vjp: Any, u: np.ndarray, ans: Any, args: list[Any], x: np.ndarray, v: np.ndarray) -> float:
    gi = vjp(u, ans, *args)
    gi = unbroadcast(gi, x.shape) if np.shape(gi) != x.shape else gi
    if np.shape(gi) != x.shape:
        raise ValueError(f"returned shape {list(np.shape(gi))} for an arg of shape {list(x.shape)}")
    return float(np.sum(np.asarray(gi) * v))


def _jvp_side(jvp: Any, u: np.ndarray, ans: Any, args: list[Any], v: np.ndarray) -> float:
    return float(np.sum(u * np.broadcast_to(jvp(v, ans, *args), np.shape(ans))))


def _sides(vjp: Any, jvp: Any, u: np.ndarray, ans: Any, args: list[Any], x: np.ndarray,
           v: np.ndarray) -> dict[str, float | str]:
    """Each rule's <., .> pairing, or the message of the exception it raised (a crash is a failure)."""
    out: dict[str, float | str] = {}
    for mode, call in (("vjp", lambda: _vjp_side(vjp, u, ans, args, x, v) if vjp else None),
                       ("jvp", lambda: _jvp_side(jvp, u, ans, args, v) if jvp else None)):
        try:
            value = call()
        except Exception as e:  # a rule that raises is the node to blame, not a crash of the checker
            value = f"{type(e).__name__}: {e}"
        if value is not None:
            out[mode] = value
    return out


def _local(ctx: _Ctx, step: Step, i: int, vjp: Any, jvp: Any, trials: int = 3) -> list[NodeCheck]:
    args = [ctx.vals_f[a] for a in step.args]
    ans = ctx.vals_f[step.out]
    x = np.asarray(args[i], dtype=np.float64)
    op = OPS.get(step.op)
    branch = op.branch if op else None
    names = op.arg_names if op and op.arg_names else ()
    label = f"{names[i] if i < len(names) else f'arg{i}'} ({ctx.plan.names[step.args[i]]})"
    best: dict[str, NodeCheck] = {}
    for _ in range(trials):
        u = ctx.rng.normal(size=np.shape(ans))
        v = ctx.rng.normal(size=x.shape) * np.maximum(1.0, np.abs(x))
        h = ctx.tol.eps
        with np.errstate(all="ignore"):
            ap = [*args[:i], x + h * v, *args[i + 1:]]
            am = [*args[:i], x - h * v, *args[i + 1:]]
            fp, fm = step.forward(*ap), step.forward(*am)
            num = float(np.sum(u * fp) - np.sum(u * fm)) / (2 * h)
            crossed = branch is not None and np.any(np.asarray(branch(fp, *ap, **step.attrs))
                                                    != np.asarray(branch(fm, *am, **step.attrs)))
            atol = ctx.tol.atol * max(1.0, float(np.sum(np.abs(u * ans))))
            sides = _sides(vjp, jvp, u, ans, args, x, v)
        for mode, a in sides.items():
            if isinstance(a, str):
                check = NodeCheck(step.name, step.op, i, label, mode, math.nan, num, math.inf, FAIL, a)
            else:
                rel = abs(a - num) / max(abs(a), abs(num), atol / FD_TOL.rtol)
                status = PASS if rel <= FD_TOL.rtol else KINK if crossed else FAIL
                check = NodeCheck(step.name, step.op, i, label, mode, a, num, rel, status)
            prev = best.get(mode)
            # a trial that crossed a kink says nothing; a pass beats it, a clean failure beats both
            if prev is None or _TRIAL_RANK[check.status] > _TRIAL_RANK[prev.status]:
                best[mode] = check
    return list(best.values())


_TRIAL_RANK = {KINK: 0, PASS: 1, FAIL: 2}
FD_TOL = TOLERANCES["float64"]  # node-local checks run in float64 whatever the graph's dtype


def _no_vjp(g: Any, ans: Any, *args: Any) -> Any:
    return np.zeros(())  # stands for an op's missing VJP: it claims the arg does not matter


def _blame(ctx: _Ctx) -> list[NodeCheck]:
    out = []
    steps = ctx.plan.steps
    # slots that carry a gradient: a float arg among them with no VJP silently gets zero
    needs = {ctx.plan.slot[n] for n in ctx.wrt} | {s.out for s in steps if s.vjps}
    for step in steps:
        jvps = dict(_arg_positions(step, step.jvps))
        vjps = dict(_arg_positions(step, step.vjps))
        for i, a in enumerate(step.args):
            if not np.issubdtype(np.asarray(ctx.vals_f[a]).dtype, np.floating):
                continue
            if i in vjps:
                out.extend(_local(ctx, step, i, vjps[i], jvps.get(i)))
            elif a in needs:
                out.extend(dataclasses.replace(c, message="the op has no VJP for this arg, yet the arg changes "
                                               "its output") if c.status == FAIL else c
                           for c in _local(ctx, step, i, _no_vjp, None))
    return out


# ---------------------------------------------------------------------------------------------
# the Taylor remainder test


def _taylor_row(ctx: _Ctx, names: list[str], label: str, targets: list[_Target], u: list[np.ndarray],
                steps_count: int = 14, h0: float = 0.1) -> TaylorRow:
    """|f(x + h v) - f(x) - h <g, v>| for h = h0, h0/2, ...; f = sum of the targets' rows weighted by u."""
    slot = ctx.plan.slot
    v = {}
    for n in names:
        x = ctx.x(n)
        scale = np.maximum(1.0, np.abs(x))
        r = ctx.rng.normal(size=x.shape)
        v[n] = r / max(float(np.max(np.abs(r), initial=0.0)), 1e-300) * scale
    hs = h0 * 0.5 ** np.arange(steps_count)
    hh = np.concatenate([[0.0], hs])
    leaves = {slot[n]: ctx.x(n) + hh.reshape((-1,) + (1,) * ctx.x(n).ndim) * v[n] for n in names}
    steps = ctx.engine.steps_for([t.slot for t in targets])
    vals, branches = ctx.engine.run(leaves, steps, len(hh))
    f = sum(w @ t.values(vals.get(t.slot), len(hh)) for t, w in zip(targets, u, strict=True))
    gv = sum(float(w @ t.grads[n] @ v[n].ravel()) for t, w in zip(targets, u, strict=True) for n in names)
    with np.errstate(all="ignore"):
        rem = np.abs(f[1:] - f[0] - hs * gv)
    crossed = np.zeros(steps_count, dtype=bool)
    for br in branches.values():
        br = np.asarray(br).reshape(len(hh), -1)
        crossed |= (br[1:] != br[:1]).any(axis=1)
    noise = 1e4 * np.finfo(np.float64).eps * (np.abs(f[0]) + np.abs(f[1:]))
    used = ~crossed & np.isfinite(rem) & (rem > noise)
    slopes = [math.log2(rem[k] / rem[k + 1]) for k in range(steps_count - 1) if used[k] and used[k + 1]]
    order = float(np.median(slopes[-4:])) if slopes else None
    status, note = _taylor_verdict(order, rem, crossed, noise)
    return TaylorRow(label, hs.tolist(), [float(r) if np.isfinite(r) else None for r in rem], used.tolist(),
                     order, status, note)


def _taylor_verdict(order: float | None, rem: np.ndarray, crossed: np.ndarray, noise: np.ndarray) -> tuple[str, str]:
    if order is None:
        if np.all(crossed):
            return UNCLEAR, "every step crosses a kink"
        if np.all(rem[~crossed] <= noise[~crossed]):
            return PASS, "remainder at rounding level: f is linear along v and the gradient is exact"
        return UNCLEAR, "too few usable steps"
    if order >= 1.75:
        return PASS, ""
    if order <= 1.25:
        return FAIL, "order 1: the gradient is wrong along v"
    return UNCLEAR, ""


def _taylor(ctx: _Ctx, targets: list[_Target]) -> list[TaylorRow]:
    u = [np.ones(1) if t.kind == "loss" else ctx.rng.normal(size=len(t.seeds)) for t in targets]
    rows = [_taylor_row(ctx, list(ctx.wrt), "all", targets, u)]
    if len(ctx.wrt) > 1:
        rows += [_taylor_row(ctx, [n], n, targets, u) for n in ctx.wrt]
    return rows


# ---------------------------------------------------------------------------------------------
# the public function


def _as_graph(graph: Any) -> Any:
    from ..api import Graph, load

    return graph if isinstance(graph, Graph) else load(graph)


def _leaf_values(graph: Any, inputs: Mapping[str, Any] | None) -> tuple[list[Any], list[Any], str]:
    leaves = graph._leaf_values(dict(inputs or {}))
    float32 = any(np.asarray(v).dtype == np.float32 for v in leaves)
    cast = [np.asarray(v, dtype=np.float64) if np.issubdtype(np.asarray(v).dtype, np.floating) else v for v in leaves]
    return leaves, cast, "float32" if float32 else "float64"


def gradcheck(graph: Any, *, inputs: Mapping[str, Any] | None = None, wrt: Sequence[str] | None = None,
              fast: bool = False, directions: int = 4, taylor: bool = False, strict: bool = False,
              max_elements: int | None = None, blame: bool | None = None, modes: bool = True,
              batch: bool = True, refine: bool = True, tolerance: Tolerance | None = None,
              jacobian_max: int = 64, projections: int = 3, seed: int = 0) -> Report:
    """Check every gradient of a graph (a `Graph`, a spec path or a spec dict) against finite
    differences and return a `Report`.

    With a loss: d loss / d x for every param and float input with a gradient (``wrt`` to choose).
    Without: the Jacobian of each float output, in full when it has at most ``jacobian_max`` elements,
    else along ``projections`` random cotangents. ``fast``: ``directions`` random directional
    derivatives per input instead of every element. ``max_elements``: check a random sample of the
    elements of bigger inputs. ``blame``: check every node's own VJP and JVP (default: when something
    fails). ``taylor``: the Taylor remainder test. ``strict``: kinks count as failures. ``tolerance``:
    a `Tolerance` instead of the dtype's default (`TOLERANCES`). ``refine=False``: no Richardson retry of
    failing elements. ``seed``: the random directions, cotangents and samples. ``batch=False`` evaluates
    one perturbation per forward pass (slow; the reference for the batched path)."""
    start = time.perf_counter()
    g = _as_graph(graph)
    leaves_a, leaves_f, dtype = _leaf_values(g, inputs)
    names = list(g.wrt if wrt is None else wrt)
    for n in names:
        if n not in g.wrt:
            from ..errors import InputError

            raise InputError(f"'{n}' is not a param or float input with a gradient", loc=f"wrt.{n}")
    plan: Plan = g.plan
    vals_a = plan.forward(leaves_a)
    vals_f = vals_a if dtype == "float64" else plan.forward(leaves_f)
    tol = tolerance or TOLERANCES[dtype]
    ctx = _Ctx(g, plan, names, vals_a, vals_f, dtype, tol, np.random.default_rng(seed),
               _Batched(plan, vals_f, batch), max_elements, refine)
    if dtype == "float32":
        ctx.notes.append("float32 graph: analytic gradients in float32, finite differences evaluated in float64 "
                         f"(the leaves cast to float64); tolerances rtol={tol.rtol:g}, atol={tol.atol:g}")
    if not names:
        ctx.notes.append("nothing to check: no param or float input with a gradient")
    if g.loss is None:
        ctx.notes.append("no loss: each output's Jacobian is checked (in full up to "
                         f"{jacobian_max} elements, else along {projections} random cotangents)")
    try:
        targets = _make_targets(ctx, jacobian_max, projections)
    except Exception as e:  # a VJP that raises: find it node by node instead of crashing
        error = f"the backward pass raised {type(e).__name__}: {e}"
        return Report(spec=g.source, name=g.spec.name, dtype=dtype, fd_dtype=FD_DTYPE, mode="fast" if fast else "full",
                      strict=strict, tolerance=tol, checks=[], modes=[], nodes=_blame(ctx), taylor=[],
                      notes=[*ctx.notes, error], seconds=time.perf_counter() - start, error=error)
    if not all(np.all(np.isfinite(t.f0)) for t in targets):
        step = plan.first_nonfinite(vals_f)
        where = f" (first produced by node '{step.name}' ({step.op}))" if step else ""
        ctx.notes.append(f"a checked value is not finite at this point{where}: its gradients cannot be checked here")
    checks: list[InputCheck] = []
    if fast:
        checks = _fast(ctx, targets, directions) if names else []
    else:
        for n in names:
            checks += _full(ctx, n, targets)
    if max_elements is not None and any(c.checked < c.size for c in checks):
        ctx.notes.append(f"--max-elements {max_elements}: inputs with more elements were sampled at random")
    mode_rows = _safe_modes(ctx, targets) if modes and names else []
    taylor_rows = _taylor(ctx, targets) if taylor and names and targets else []
    failing = any(r.status == FAIL for r in [*checks, *mode_rows, *taylor_rows])
    nodes = _blame(ctx) if (blame or (blame is None and failing)) else []
    if failing and nodes and not any(n.status == FAIL for n in nodes):
        ctx.notes.append("no node's own VJP or JVP is wrong locally: the failure may come from a kink, "
                         "a step size or a non-finite value (try --taylor)")
    return Report(spec=g.source, name=g.spec.name, dtype=dtype, fd_dtype=FD_DTYPE, mode="fast" if fast else "full",
                  strict=strict, tolerance=tol, checks=checks, modes=mode_rows, nodes=nodes, taylor=taylor_rows,
                  notes=ctx.notes, seconds=time.perf_counter() - start, evaluations=ctx.engine.evaluations)


# ---------------------------------------------------------------------------------------------
# the op sweep


@dataclass(frozen=True)
class OpRow:
    op: str
    dtype: str
    sample: int
    shapes: list[list[int]]
    attrs: dict[str, Any]
    status: str
    max_rel_err: float
    vjp_rel_err: float  # worst node-local VJP check
    jvp_rel_err: float  # worst node-local JVP check
    modes_rel_err: float
    message: str = ""


def sample_spec(op: str, args: Sequence[Any], attrs: Mapping[str, Any], dtype: str = "float64") -> dict[str, Any]:
    """A one-node spec applying ``op`` to sample args (float args become ``dtype`` inputs with gradients)."""
    inputs = {}
    for i, a in enumerate(args):
        arr = np.asarray(a)
        kind = dtype if arr.dtype.kind == "f" else "bool" if arr.dtype.kind == "b" else "int64"
        inputs[f"a{i}"] = {"value": arr.tolist(), "dtype": kind, "shape": list(arr.shape)}
    return {"graphspec": "1", "name": f"{op} sample", "inputs": inputs,
            "nodes": {"out": {"op": op, "args": list(inputs), "attrs": dict(attrs)}}}


def _worst(rep: Report, mode: str) -> float:
    return max((n.rel_err for n in rep.nodes if n.mode == mode), default=0.0)


def _sample_row(name: str, k: int, args: Sequence[Any], attrs: Mapping[str, Any], dtype: str, batch: bool) -> OpRow:
    from ..api import load

    shapes = [list(np.shape(a)) for a in args]
    try:
        rep = gradcheck(load(sample_spec(name, args, attrs, dtype)), blame=True, batch=batch)
    except Exception as e:  # a sample the op cannot even run is a failed row, not a crash
        return OpRow(name, dtype, k, shapes, dict(attrs), FAIL, math.inf, math.inf, math.inf, math.inf,
                     f"{type(e).__name__}: {e}")
    msg = "; ".join(f"{n.mode} of arg {n.arg_name} is wrong" for n in rep.blamed)
    return OpRow(name, dtype, k, shapes, dict(attrs), rep.status, max((c.max_rel_err for c in rep.checks), default=0.0),
                 _worst(rep, "vjp"), _worst(rep, "jvp"), max((m.rel_err for m in rep.modes), default=0.0), msg)


def check_ops(ops: Iterable[str] | None = None, *, dtypes: Sequence[str] = ("float64",), batch: bool = True) -> list[OpRow]:
    """Every sample of every op, in each of ``dtypes``: its Jacobian against finite differences (float64
    differences whatever the dtype), its own VJP and JVP alone, and forward mode against reverse mode."""
    rows = []
    for name in (sorted(OPS) if ops is None else ops):
        op = OPS[name]
        if not op.samples:
            rows.append(OpRow(name, "", -1, [], {}, FAIL, math.inf, math.inf, math.inf, math.inf,
                              "the op has no samples()"))
            continue
        samples = op.samples()
        rows += [_sample_row(name, k, args, attrs, dtype, batch) for dtype in dtypes
                 for k, (args, attrs) in enumerate(samples)]
    return rows
