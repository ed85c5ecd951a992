"""Central finite differences of the targets, f(x + d) and f(x - d) for many perturbations d in one
stacked pass, with the branch arrays that tell which perturbations crossed a kink."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ops.batching import Slices
from .context import MEMORY, _Ctx
from .stacking import _Batched
from .targets import _Target

BUDGET = MEMORY // 8  # the same, in float64 numbers


@dataclass
class _FD:
    plus: list[np.ndarray]  # per target (T, k): f(x + h d)
    minus: list[np.ndarray]
    flips: dict[int, np.ndarray]  # step index -> (k,) bool: branch differs between the + and - rows
    at: dict[int, np.ndarray]  # step index -> (k,) first flat element of the branch that differs
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)  # step index -> branch array shape


Delta = Callable[[int, int], Any]  # rows c0..c1 of a perturbation: a (k, n) block or (flat index, step)


class OneHot:
    """The one-hot perturbations h_i e_{idx_i} of one leaf: rows c0..c1 are (idx[c0:c1], h[c0:c1])."""

    def __init__(self, idx: np.ndarray, h: np.ndarray):
        self.idx, self.h = np.asarray(idx), np.asarray(h, dtype=np.float64)

    def __call__(self, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        return self.idx[c0:c1], self.h[c0:c1]


class Stacked:
    """A perturbation's rows given as the stacked leaf itself (x + d rows, then x - d rows)."""

    def __init__(self, value: np.ndarray):
        self.value = value


@dataclass
class _Chunk:
    """One chunk's differences: per target (T, kc) + and - values, and per kinked step its flips,
    their first element and the branch array's shape."""
    plus: list[np.ndarray]
    minus: list[np.ndarray]
    branches: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, ...]]]


def _chunk_fd(engine: _Batched, vals_f: list[Any], targets: list[_Target], steps: list[int],
              rows: dict[int, Any], kc: int, count: bool = True, sliced: bool = False) -> _Chunk:
    """f(x + d) and f(x - d) for ``kc`` perturbations ``rows[slot]`` (a dense (kc, n) block or (flat
    index, step) pairs) in one stacked pass. The arithmetic depends on these rows only: a worker that
    runs the same chunk gets the same bits (checker/workers.py)."""
    leaves = {slot: _stacked(vals_f[slot], d, sliced) for slot, d in rows.items()}
    vals, branches = engine.run(leaves, steps, 2 * kc, count)
    plus, minus = [], []
    for t in targets:
        out = vals.get(t.slot)
        f = t.values(out.dense() if isinstance(out, Slices) else out, 2 * kc)
        plus.append(f[:, :kc])
        minus.append(f[:, kc:])
    got = {}
    for i, br in branches.items():
        if isinstance(br, Slices):  # the slices alone can differ between the + and - rows
            cols = np.asarray(br.cols).reshape(2 * kc, -1)
            diff = cols[:kc] != cols[kc:]
            shape = np.shape(engine.vals[engine.plan.steps[i].out])  # a sliced branch is elementwise
            rest = (*shape[:br.axis], *shape[br.axis + 1:])
            local = diff.argmax(axis=1) if diff.shape[1] else np.zeros(kc, dtype=np.int64)
            if diff.shape[1]:
                pos = list(np.unravel_index(local, rest)) if rest else []
                pos.insert(br.axis, br.idx[:kc])
                first = np.ravel_multi_index(pos, shape)
            else:
                first = np.zeros(kc, dtype=np.int64)
            got[i] = (diff.any(axis=1), first, shape)
            continue
        shape = np.shape(br)[1:]
        br = np.asarray(br).reshape(2 * kc, -1)
        diff = br[:kc] != br[kc:]
        # a kinked node with no elements (maximum(x, [])) has no kink to point at
        got[i] = (diff.any(axis=1), diff.argmax(axis=1) if diff.shape[1] else np.zeros(kc, dtype=np.int64), shape)
    return _Chunk(plus, minus, got)


SLICE_MIN = 4096  # stacked numbers per dense row from which one-hot perturbations are stacked as slices


def _row_numbers(ctx: _Ctx, deltas: dict[int, Delta], steps: list[int], targets: list[_Target]) -> tuple[int, bool]:
    """(stacked numbers one perturbed row holds: the perturbed leaves and every value recomputed, and
    whether the stack is sliced). One-hot perturbations whose dense rows would hold SLICE_MIN numbers
    or more are stacked as `Slices`: a probe pass of one element counts what their rows hold (a slice,
    not the value, where the ops allow). Smaller ones stay dense: as cheap, and the same arithmetic
    as one perturbation per pass (a slice's matmul is a different BLAS call: its last bits differ)."""
    engine = ctx.engine
    dense = engine.row_cost(steps) + sum(ctx.vals_f[s].size for s in deltas)
    if engine.batch and dense >= SLICE_MIN and all(isinstance(d, OneHot) and len(d.idx) for d in deltas.values()):
        key = (tuple(sorted(deltas)), tuple(steps))
        if key not in ctx.row_numbers:
            one = {slot: d(0, 1) for slot, d in deltas.items()}
            _chunk_fd(engine, ctx.vals_f, targets, steps, one, 1, count=False, sliced=True)
            leaf = sum(int(np.size(ctx.vals_f[s])) // max(1, np.shape(ctx.vals_f[s])[-1] if np.ndim(ctx.vals_f[s]) else 1)
                       for s in deltas)
            ctx.row_numbers[key] = 1 + leaf + engine.held // 2
        return ctx.row_numbers[key], True
    return dense, False


def chunks(k: int, chunk: int) -> list[tuple[int, int]]:
    """The perturbations 0..k in chunks of ``chunk``: a function of k and the chunk size only."""
    return [(c0, min(k, c0 + chunk)) for c0 in range(0, k, chunk)]


def _fd(ctx: _Ctx, deltas: dict[int, Delta], k: int, targets: list[_Target]) -> _FD:
    """f(x + delta_i) and f(x - delta_i) for i < k; ``deltas[slot](c0, c1)`` gives rows c0..c1 of the
    (flat) perturbation of that leaf, so several leaves can move in one stacked pass. The perturbations
    go in chunks that fit ``ctx.memory`` bytes; one-hot ones go to ``ctx.pool`` when there is one."""
    engine = ctx.engine
    steps = engine.steps_for([t.slot for t in targets])
    row, sliced = _row_numbers(ctx, deltas, steps, targets)
    parts = chunks(k, max(1, ctx.memory // 8 // (2 * row)))
    plus = [np.empty((len(t.seeds), k)) for t in targets]
    minus = [np.empty((len(t.seeds), k)) for t in targets]
    flips: dict[int, np.ndarray] = {}
    at: dict[int, np.ndarray] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    pool = ctx.pool if ctx.pool is not None and len(parts) > 1 and all(
        isinstance(d, OneHot) for d in deltas.values()) else None
    if pool is not None:
        results = pool.run(deltas, parts, steps, sliced)
        engine.evaluations += 2 * k
    else:
        results = (_chunk_fd(engine, ctx.vals_f, targets, steps, {s: d(c0, c1) for s, d in deltas.items()}, c1 - c0,
                             sliced=sliced) for c0, c1 in parts)
    for (c0, c1), got in zip(parts, results, strict=True):
        for p, m, gp, gm in zip(plus, minus, got.plus, got.minus, strict=True):
            p[:, c0:c1], m[:, c0:c1] = gp, gm
        for i, (flip, first, shape) in got.branches.items():
            shapes[i] = shape
            flips.setdefault(i, np.zeros(k, dtype=bool))[c0:c1] = flip
            at.setdefault(i, np.zeros(k, dtype=np.int64))[c0:c1] = first
        if ctx.progress:
            ctx.progress(c1 - c0)
    return _FD(plus, minus, flips, at, shapes)


def _stacked(x: np.ndarray, d: np.ndarray | tuple[np.ndarray, np.ndarray] | Stacked, sliced: bool = False) -> Any:
    """x + d_i for each row i, then x - d_i: a dense (k, n) block, or (flat index, step) pairs for
    one-hot perturbations: with ``sliced``, a `Slices` stack of x's last-axis columns (each row
    changes one column), else one copy of x per row and a scatter, not a dense k x n block."""
    if isinstance(d, Stacked):
        return d.value
    if isinstance(d, tuple):
        idx, h = d
        k = len(idx)
        if sliced and x.ndim >= 1 and k and x.size:
            at = np.unravel_index(idx, x.shape)
            col = np.concatenate([at[-1], at[-1]])
            cols = np.moveaxis(np.take(x, col, axis=-1), -1, 0)  # (2k, *shape[:-1]), a copy
            flat = cols.reshape(2 * k, -1)
            inner = np.ravel_multi_index(at[:-1], x.shape[:-1]) if x.ndim > 1 else np.zeros(k, dtype=np.int64)
            rows = np.arange(k)
            flat[rows, inner] += h
            flat[rows + k, inner] -= h
            return Slices(x, x.ndim - 1, col, cols)
        out = np.repeat(x.reshape(1, -1), 2 * k, axis=0)
        rows = np.arange(k)
        out[rows, idx] += h
        out[rows + k, idx] -= h
        return out.reshape((2 * k, *x.shape))
    d = d.reshape((len(d), *x.shape))
    return np.concatenate([x + d, x - d])


def _one_hot(idx: np.ndarray, h: np.ndarray) -> Delta:
    return OneHot(idx, h)


def chunk_size(ctx: _Ctx, name: str, targets: list[_Target]) -> tuple[int, int]:
    """(stacked numbers per perturbed row, elements per pass) of one input's full check."""
    slot = ctx.plan.slot[name]
    if not ctx.x(name).size:
        return 1, 1
    steps = ctx.engine.steps_for([t.slot for t in targets])
    row, _ = _row_numbers(ctx, {slot: OneHot(np.zeros(1, dtype=np.int64), np.full(1, ctx.tol.eps))}, steps, targets)
    return row, max(1, ctx.memory // 8 // (2 * row))


def probe(ctx: _Ctx, name: str, targets: list[_Target]) -> tuple[float, float, int]:
    """(seconds per element, seconds per pass, elements per pass) of one input's full check, from two
    timed passes (one element, then a chunk's worth up to 64): the second minus the first is the
    per-element cost, the rest the per-pass cost. Not counted as evaluations."""
    import time

    x = ctx.x(name)
    steps = ctx.engine.steps_for([t.slot for t in targets])
    slot = ctx.plan.slot[name]
    _, chunk = chunk_size(ctx, name, targets)
    _, sliced = _row_numbers(ctx, {slot: OneHot(np.zeros(1, dtype=np.int64), np.full(1, ctx.tol.eps))}, steps, targets)
    m = max(1, min(int(x.size), chunk, 64))

    def timed(k: int) -> float:
        idx = np.arange(k)
        h = ctx.tol.eps * np.maximum(1.0, np.abs(x.ravel()[idx]))
        best = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            _chunk_fd(ctx.engine, ctx.vals_f, targets, steps, {slot: (idx, h)}, k, count=False, sliced=sliced)
            best = min(best, time.perf_counter() - t0)
        return best

    t1 = timed(1)
    tm = timed(m) if m > 1 else t1
    per = max((tm - t1) / (m - 1), 0.0) if m > 1 else t1
    per = max(per, tm / m / 4)  # timer noise must not make elements free
    return per, max(t1 - per, 0.0), chunk
