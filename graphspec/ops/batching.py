"""Batching rules: how an op's own forward runs once on a stack of perturbations.

The gradient checker pushes many perturbations of the leaves through a plan at once, each a
row of a new leading axis (checker/stacking.py). A rule, named by an op's ``batch=``, is
``rule(args, stacked, ndims, attrs, rows) -> (args, attrs, post)``: the args and attrs to call
the op's forward (and its kink) with, and ``post``, which turns that result into the stacked
result. ``stacked[i]`` says whether arg i carries the stacking axis; ``ndims[i]`` is its rank
without it. Like autodidax's ``vmap_rules``, these are the only code that knows which attrs
move with the stacking axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Rule = tuple[list[Any], dict[str, Any], Callable[[Any], Any]]


def _ident(y: Any) -> Any:
    return y


def _lift(a: np.ndarray, nd: int, rank: int) -> np.ndarray:
    """A stacked value (B, *s), given unit axes after B up to ``rank`` so that it broadcasts
    against the unstacked args exactly as the unstacked value did (numpy aligns from the right)."""
    return a.reshape((a.shape[0], *(1,) * (rank - nd), *a.shape[1:])) if rank > nd else a


def _lift_all(args: list[Any], stacked: list[bool], nds: list[int]) -> list[Any]:
    rank = max(nds)
    return [_lift(a, n, rank) if s else a for a, s, n in zip(args, stacked, nds, strict=True)]


def _stack_all(args: list[Any], stacked: list[bool], rows: int) -> list[Any]:
    """Every arg with the stacking axis, the unstacked ones broadcast along it: for ops whose args
    must have equal leading axes rather than broadcast."""
    return [a if s else np.broadcast_to(a, (rows, *np.shape(a))) for a, s in zip(args, stacked, strict=True)]


def _shift_axes(axis: Any, nd: int) -> Any:
    """An axis attr of the unstacked value, moved past the stacking axis (None: every old axis)."""
    if axis is None:
        return tuple(range(1, nd + 1))
    if isinstance(axis, int):
        return axis % nd + 1
    return tuple(a % nd + 1 for a in axis)


def _reduce_rows(reduction: str) -> Callable[[Any], Any]:
    """A loss's reduction, done per stacked row (the op itself is called with reduction='none')."""
    if reduction == "none":
        return _ident
    fn = {"mean": np.mean, "sum": np.sum}[reduction]  # a reduction of another name is a KeyError, not a sum
    return lambda y: fn(y, axis=tuple(range(1, np.ndim(y)))) if np.ndim(y) > 1 else y


def elementwise(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """Broadcasting ops: the stacked args lifted so that they broadcast as before."""
    return _lift_all(args, stacked, nds), attrs, _ident


def reduce(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """Reductions over ``axis`` (None: all): the axes move past the stacking axis."""
    return args, {**attrs, "axis": _shift_axes(attrs["axis"], nds[0])}, _ident


def class_axis(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """softmax and log_softmax: the class axis moves past the stacking axis."""
    return args, {**attrs, "axis": attrs["axis"] % nds[0] + 1}, _ident


def class_loss(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """Losses over class scores and labels: per-sample losses, reduced per row."""
    return (_stack_all(args, stacked, rows), {**attrs, "axis": attrs["axis"] % nds[0] + 1, "reduction": "none"},
            _reduce_rows(attrs["reduction"]))


def loss(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """Elementwise losses with a reduction: elementwise, reduced per row."""
    return _lift_all(args, stacked, nds), {**attrs, "reduction": "none"}, _reduce_rows(attrs["reduction"])


def matmul(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """numpy's matmul broadcasts leading axes: 1-D operands become matrices first, so the
    stacking axis is never read as a row axis."""
    x, y = args
    nx, ny = nds
    if nx == 1:
        x = x[..., None, :]
    if ny == 1:
        y = y[..., :, None]
    rank = max(nx, ny, 2)
    x = _lift(x, max(nx, 2), rank) if stacked[0] else x
    y = _lift(y, max(ny, 2), rank) if stacked[1] else y
    post = {(True, True): lambda r: r[..., 0, 0], (True, False): lambda r: r[..., 0, :],
            (False, True): lambda r: r[..., 0]}.get((nx == 1, ny == 1), _ident)
    return [x, y], attrs, post


def transpose(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    nd, axes = nds[0], attrs["axes"]
    perm = (0, *range(nd, 0, -1)) if axes is None else (0, *(a % nd + 1 for a in axes))
    return args, {**attrs, "axes": perm}, _ident


def reshape(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    return args, {**attrs, "shape": (rows, *attrs["shape"])}, _ident


def concat(args: list[Any], stacked: list[bool], nds: list[int], attrs: dict[str, Any], rows: int) -> Rule:
    """Every arg stacked (their leading axes must match), the join axis past the stacking axis."""
    return _stack_all(args, stacked, rows), {**attrs, "axis": attrs["axis"] % nds[0] + 1}, _ident


# -- sliced stacks: a perturbation that changes one slice ------------------------------------------

class Slices:
    """A stack of ``rows`` copies of ``base`` that differ from it in one slice along ``axis`` only:
    row r is ``base`` with its ``idx[r]``-th slice along ``axis`` replaced by ``cols[r]`` (shape: base's
    without that axis). A one-hot perturbation of W[i, j] is one column of W; through ``x @ W`` it is
    still one column of the product, so the stack carries (rows, M) numbers, not (rows, M, N)."""

    __slots__ = ("axis", "base", "cols", "idx")

    def __init__(self, base: np.ndarray, axis: int, idx: np.ndarray, cols: np.ndarray):
        self.base, self.axis, self.idx, self.cols = base, axis, idx, cols

    @property
    def rows(self) -> int:
        return len(self.idx)

    def dense(self) -> np.ndarray:
        out = np.repeat(np.asarray(self.base)[None], self.rows, axis=0)
        np.moveaxis(out, self.axis + 1, 1)[np.arange(self.rows), self.idx] = self.cols
        return out


def _gathered(v: Any, nd: int, ax: int, rank: int, idx: np.ndarray) -> Any:
    """An unstacked arg of an elementwise op, cut to the slice ``idx[r]`` of the output's axis ``ax``
    per row, shaped to broadcast against the sliced args' ``cols``; constant along ``ax``: as it is."""
    p = ax - (rank - nd)
    if p < 0:
        return v
    v = np.asarray(v)
    if v.shape[p] == 1:
        return np.squeeze(v, axis=p)
    return _lift(np.moveaxis(np.take(v, idx, axis=p), p, 0), nd - 1, rank - 1)


def sliced_elementwise(fn: Callable[..., Any], kink: Callable[..., Any] | None, args: list[Any], stacked: list[bool],
                       nds: list[int], attrs: dict[str, Any], out_base: Any) -> tuple[Slices, Any] | None:
    """An elementwise op on sliced args (all along the same output axis, the same slices): only the
    slices are computed, the rest is the base output. None: not this case (the caller densifies)."""
    rank = np.ndim(out_base)
    sl = [a for a, st in zip(args, stacked, strict=True) if st]
    if rank == 0 or not all(isinstance(a, Slices) for a in sl):
        return None
    first = sl[0]
    ax = first.axis + rank - np.ndim(first.base)
    for a in sl:
        if not (a.idx is first.idx or np.array_equal(a.idx, first.idx)) or a.axis + rank - np.ndim(a.base) != ax \
                or np.shape(a.base)[a.axis] != np.shape(out_base)[ax]:
            return None
    cargs = [_lift(a.cols, n - 1, rank - 1) if st else _gathered(a, n, ax, rank, first.idx)
             for a, st, n in zip(args, stacked, nds, strict=True)]
    y = fn(*cargs, **attrs)
    want = (first.rows, *np.shape(out_base)[:ax], *np.shape(out_base)[ax + 1:])
    y = np.broadcast_to(y, want) if np.shape(y) != want else y
    br = None
    if kink is not None:
        br = np.asarray(kink(y, *cargs, **attrs))
        br = Slices(None, ax, first.idx, np.broadcast_to(br, want) if br.shape != want else br)
    return Slices(out_base, ax, first.idx, y), br


def sliced_matmul(fn: Callable[..., Any], kink: Callable[..., Any] | None, args: list[Any], stacked: list[bool],
                  nds: list[int], attrs: dict[str, Any], out_base: Any) -> tuple[Any, Any] | None:
    """x @ W with one arg sliced (both at least 2-D, W exactly 2-D). A column of W: a column of the
    product, x @ column. A row of x (or a slice of its batch axes): that slice of the product. A slice
    along the contracted axis (a row of W, a column of x) changes every element of the product: the
    base product plus the outer product of the change, x[:, k] (W[k, :]' - W[k, :]), dense."""
    x, w = args
    nx, nw = nds
    if nx < 2 or nw != 2 or stacked[0] == stacked[1] or not isinstance(args[stacked.index(True)], Slices):
        return None
    if stacked[1]:
        s, idx = w, w.idx
        if s.axis == 1:  # a column of W: (..., M, K) @ (K, rows) -> (rows, ..., M)
            return Slices(out_base, nx - 1, idx, np.moveaxis(x @ s.cols.T, -1, 0)), None
        xk = np.moveaxis(np.take(x, idx, axis=-1), -1, 0)  # (rows, ..., M)
        d = s.cols - s.base[idx]  # (rows, N)
        return out_base + xk[..., None] * d.reshape(d.shape[0], *(1,) * (nx - 1), d.shape[1]), None
    s, idx = x, x.idx
    if s.axis < nx - 1:  # a row (or a batch slice) of x: that slice of the product
        return Slices(out_base, s.axis, idx, s.cols @ w), None
    d = s.cols - np.moveaxis(np.take(s.base, idx, axis=-1), -1, 0)  # (rows, ..., M)
    wk = w[idx]  # (rows, N)
    return out_base + d[..., None] * wk.reshape(wk.shape[0], *(1,) * (nx - 1), wk.shape[1]), None


SLICED: dict[Callable[..., Any], Callable[..., Any]] = {elementwise: sliced_elementwise, matmul: sliced_matmul}
"""The batching rules whose ops also run on sliced stacks, and how (checker/stacking.py)."""
