"""Batched forwards: many perturbations of the leaves pushed through the plan in one pass.

Every perturbation is a row of a new leading axis. An op whose record names a stacking rule
(`defop(..., batch=...)`, applied by `_rule_for`) runs once on the whole stack through its own
forward; any other op runs once per row, and the rest of the pass stays stacked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np

from ..interpret import Plan, Step
from ..ops import OPS

Rule = tuple[list[Any], dict[str, Any], Callable[[Any], Any]]
BATCH_RULES = ("elementwise", "reduce", "class_axis", "class_loss", "loss", "matmul", "transpose", "reshape", "concat")


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


def _lift_all(args: list[Any], stacked: list[bool], nds: list[int]) -> list[Any]:
    """The stacked args lifted to the rank of the widest arg (`_lift`); the others as they are."""
    rank = max(nds)
    return [_lift(a, n, rank) if s else a for a, s, n in zip(args, stacked, nds, strict=True)]


def _stack_all(args: list[Any], stacked: list[bool], rows: int) -> list[Any]:
    """Every arg with the stacking axis, the unstacked ones broadcast along it: for ops whose args
    must have equal leading axes rather than broadcast."""
    return [a if s else np.broadcast_to(a, (rows, *np.shape(a))) for a, s in zip(args, stacked, strict=True)]


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
    """How to call an op's own forward on stacked args (by its record's ``batch`` rule), or None
    (then it runs once per row)."""
    kind = OPS[op].batch if op in OPS else None
    if kind == "elementwise":
        return _lift_all(args, stacked, nds), attrs, _ident
    if kind == "reduce":
        return args, {**attrs, "axis": _shift_axes(attrs["axis"], nds[0])}, _ident
    if kind == "class_axis":
        return args, {**attrs, "axis": attrs["axis"] % nds[0] + 1}, _ident
    if kind == "class_loss":
        return _stack_all(args, stacked, rows), {**attrs, "axis": attrs["axis"] % nds[0] + 1, "reduction": "none"}, \
            _reduce_rows(attrs["reduction"])
    if kind == "loss":
        return _lift_all(args, stacked, nds), {**attrs, "reduction": "none"}, _reduce_rows(attrs["reduction"])
    if kind == "matmul":
        return _matmul_rule(args, stacked, nds)
    if kind == "transpose":
        nd, axes = nds[0], attrs["axes"]
        perm = (0, *range(nd, 0, -1)) if axes is None else (0, *(a % nd + 1 for a in axes))
        return args, {**attrs, "axes": perm}, _ident
    if kind == "reshape":
        return args, {**attrs, "shape": (rows, *attrs["shape"])}, _ident
    if kind == "concat":
        return _stack_all(args, stacked, rows), {**attrs, "axis": attrs["axis"] % nds[0] + 1}, _ident
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
