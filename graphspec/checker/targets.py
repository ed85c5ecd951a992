"""Targets: the scalar functions whose gradients are checked, the loss or rows of an output's Jacobian,
with their analytic gradients and base values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .context import _Ctx


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


def _make_targets(ctx: _Ctx, jacobian_max: int, projections: int) -> list[_Target]:
    g, slot = ctx.graph, ctx.plan.slot
    if g.loss is not None:
        seed = np.asarray(g.seed, dtype=np.float64)
        targets = [_Target(g.loss, slot[g.loss], "loss", seed.reshape(1, -1), [""])]
    else:
        targets = []
        for o in g.outputs:
            v = ctx.vals_f[slot[o]]
            shape, m = np.shape(v), int(np.size(v))
            if not np.issubdtype(np.asarray(v).dtype, np.floating) or m == 0:  # no Jacobian rows to check
                continue
            if m <= jacobian_max:
                targets.append(_Target(o, slot[o], "jacobian", np.eye(m), [_index_label(shape, j) for j in range(m)]))
            else:
                u = ctx.rng.normal(size=(projections, m))
                targets.append(_Target(o, slot[o], "projection", u, [f"u{k + 1}" for k in range(projections)]))
    for t in targets:
        shape = np.shape(ctx.vals_a[t.slot])
        dt = np.asarray(ctx.vals_a[t.slot]).dtype
        rows = [ctx.backward(t.node, np.asarray(s.reshape(shape), dtype=dt)) for s in t.seeds]
        t.grads = {n: np.stack([r[n].ravel() for r in rows]) if len(rows) > 1 else rows[0][n].reshape(1, -1)
                   for n in ctx.wrt}  # one row (a loss): its gradient as it came
        t.f0 = t.values(ctx.vals_f[t.slot], 1)[:, 0]
    return targets
