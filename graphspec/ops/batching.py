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
