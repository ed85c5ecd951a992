"""Central finite differences of the targets, f(x + d) and f(x - d) for many perturbations d in one
stacked pass, with the branch arrays that tell which perturbations crossed a kink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .context import _Ctx
from .targets import _Target

BUDGET = 1 << 20  # float64 elements per stacked pass: ~8 MB per live array keeps passes in cache


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
    row = engine.row_cost(steps) + sum(ctx.vals_f[s].size for s in deltas)
    chunk = max(1, BUDGET // (2 * row))
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
            # a kinked node with no elements (maximum(x, [])) has no kink to point at
            at.setdefault(i, np.zeros(k, dtype=np.int64))[c0:c1] = diff.argmax(axis=1) if diff.shape[1] else 0
        if ctx.progress:
            ctx.progress(2 * kc * row)
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
