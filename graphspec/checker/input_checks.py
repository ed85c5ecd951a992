"""Each input against finite differences: every element (full mode, failures retried with Richardson
extrapolation) or a few random directions (fast mode)."""

from __future__ import annotations

import numpy as np

from .classify import _classify, _compare, _input_check, _kink_mask, _Numbers
from .context import _Ctx
from .differences import Delta, _columns, _fd, _one_hot
from .results import FAIL, PASS, InputCheck
from .targets import _Target


def _elements(ctx: _Ctx, n: int) -> np.ndarray:
    if ctx.max_elements is None or n <= ctx.max_elements:
        return np.arange(n)
    return np.sort(ctx.rng.choice(n, size=ctx.max_elements, replace=False))


def _take_back(ctx: _Ctx, targets: list[_Target], numbers: list[_Numbers], cols: np.ndarray, scale: np.ndarray,
               retaken: list[np.ndarray]) -> list[int]:
    """Failing elements in ``cols`` whose retaken difference (one (T, len(cols)) array per target)
    agrees with the analytic gradient become PASS, with the new numbers. Returns how many per target."""
    fixed = []
    for t, n, num in zip(targets, numbers, retaken, strict=True):
        atol = ctx.tol.atol * np.maximum(1.0, np.abs(t.f0[:, None])) / scale[cols]
        abs_err, rel, fail = _compare(ctx.tol, n.ana[:, cols], num, atol)
        back = (n.status[:, cols] == FAIL) & ~fail
        for arr, new in ((n.num, num), (n.abs_err, abs_err), (n.rel, rel)):
            arr[:, cols] = np.where(back, new, arr[:, cols])
        n.status[:, cols] = np.where(back, PASS, n.status[:, cols])
        fixed.append(int(back.sum()))
    return fixed


def _richardson(ctx: _Ctx, name: str, targets: list[_Target], numbers: list[_Numbers], idx: np.ndarray,
                h: np.ndarray, scale: np.ndarray) -> list[int]:
    """Re-take the elements that failed with h/2 and extrapolate, (4 D(h/2) - D(h)) / 3, error O(h^4): a
    truncation error (a steep function, a big step) goes away, a wrong gradient does not. Updates
    ``numbers`` in place; returns how many elements each target got back."""
    cols = np.flatnonzero(np.any(np.stack([n.status == FAIL for n in numbers]), axis=(0, 1)))
    if not cols.size or cols.size > 2000:
        return [0] * len(targets)
    half = _fd(ctx, {ctx.plan.slot[name]: _one_hot(idx[cols], h[cols] / 2)}, cols.size, targets)
    rich = [(4 * (half.plus[ti] - half.minus[ti]) / h[cols] - n.num[:, cols]) / 3 for ti, n in enumerate(numbers)]
    return _take_back(ctx, targets, numbers, cols, scale, rich)


def _near_edge(ctx: _Ctx, name: str, targets: list[_Target], numbers: list[_Numbers], idx: np.ndarray,
               scale: np.ndarray) -> list[int]:
    """Re-take with a step relative to |x_j| (h = eps |x_j|) the failing elements whose difference is
    not finite at a point where |x_j| < 1: log or sqrt at x = 1e-9 is finite, but x - eps is past the
    edge of its domain. A wrong gradient still fails; a pole (x_j = 0) is left as it is. Updates
    ``numbers`` in place; returns how many elements each target got back."""
    x = np.abs(ctx.x(name).ravel()[idx])
    bad = np.any(np.stack([(n.status == FAIL) & ~np.isfinite(n.num) for n in numbers]), axis=(0, 1))
    cols = np.flatnonzero(bad & (x > 0) & (x < 1))
    if not cols.size or cols.size > 2000:
        return [0] * len(targets)
    h = ctx.tol.eps * x[cols]
    near = _fd(ctx, {ctx.plan.slot[name]: _one_hot(idx[cols], h)}, cols.size, targets)
    return _take_back(ctx, targets, numbers, cols, scale,
                      [(near.plus[ti] - near.minus[ti]) / (2 * h) for ti in range(len(targets))])


def _full(ctx: _Ctx, name: str, targets: list[_Target]) -> list[InputCheck]:
    x = ctx.x(name)
    idx = _elements(ctx, x.size)
    scale = np.maximum(1.0, np.abs(x.ravel()[idx]))
    h = ctx.tol.eps * scale
    fd = _fd(ctx, {ctx.plan.slot[name]: _one_hot(idx, h)}, len(idx), targets)
    crossed = _kink_mask(fd, len(idx))
    numbers = [_classify(ctx.tol, t.f0, fd.plus[ti], fd.minus[ti], h, scale, t.grads[name][:, idx], crossed)
               for ti, t in enumerate(targets)]
    edge = _near_edge(ctx, name, targets, numbers, idx, scale)
    fixed = _richardson(ctx, name, targets, numbers, idx, h, scale) if ctx.refine else [0] * len(targets)
    notes = [[f"{f} element(s) passed only after Richardson extrapolation (h and h/2): the function is steep "
              "there, the gradient is right"] * bool(f)
             + [f"{e} element(s) near the edge of an op's domain (x - h past it) were differenced with h = eps |x|"]
             * bool(e) for f, e in zip(fixed, edge, strict=True)]
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
