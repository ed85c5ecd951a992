"""Analytic against numeric, element by element: PASS, FAIL or KINK, and the `InputCheck` that reports
them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import _Ctx
from .differences import _FD
from .results import FAIL, KINK, PASS, Element, InputCheck, NodeKink, Tolerance
from .targets import _Target

WORST = 5  # elements listed in full per check
KINK_JUMP = 1e-3  # one-sided differences further apart than this (relative) disagree


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
            out.append(NodeKink(s.name, s.op.name, at))
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
    if method == "elements":
        index = np.stack(np.unravel_index(idx, shape), axis=1).tolist() if shape else [[] for _ in idx]
    else:
        index = [[int(j)] for j in range(k)]

    def element(p: int) -> Element:
        t, j = divmod(int(p), k)
        kinks = _node_kinks(ctx, fd, j) if n.status[t, j] == KINK else ()
        return Element(tuple(index[j]), target.labels[t], float(n.ana[t, j]), float(n.num[t, j]),
                       float(n.abs_err[t, j]), float(n.rel[t, j]), str(n.status[t, j]), kinks)

    kink_positions = np.flatnonzero(n.status.ravel() == KINK)
    states = set(n.status.ravel().tolist())
    overall = FAIL if FAIL in states else KINK if KINK in states else PASS
    arrays = {"index": [i for _ in range(T) for i in index], "row": [lab for lab in target.labels for _ in range(k)],
              "analytic": n.ana.ravel(), "numeric": n.num.ravel(), "abs_err": n.abs_err.ravel(),
              "rel_err": n.rel.ravel(), "status": n.status.ravel().tolist()}
    return InputCheck(
        input=name, kind=ctx.graph.kind[name][:-1], target=target.node, target_kind=target.kind, method=method,
        shape=shape, size=int(np.size(x)), checked=k, max_abs_err=_max_err(n.abs_err),
        max_rel_err=_max_err(n.rel), status=overall,
        worst=element(order[0]) if order.size else None, worst_elements=[element(p) for p in order[:WORST]],
        kinks=[element(p) for p in kink_positions[:50]], arrays=arrays, notes=notes)
