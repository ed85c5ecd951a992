"""Analytic against numeric, element by element: PASS, FAIL or KINK, and the `InputCheck` that reports
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .context import _Ctx
from .diagnose import diagnose, one_path
from .differences import _FD
from .results import FAIL, KINK, PASS, Census, Diagnosis, Element, InputCheck, NodeKink, Tolerance
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


def _input_check(ctx: _Ctx, name: str, target: _Target, method: str, idx: np.ndarray, n: _Numbers, fd: _FD,
                 notes: list[str]) -> InputCheck:
    return _input_checks(ctx, [name], target, method, idx, n, fd, [notes])[0]


def _input_checks(ctx: _Ctx, names: list[str], target: _Target, method: str, idx: np.ndarray, n: _Numbers, fd: _FD,
                  notes: list[list[str]]) -> list[InputCheck]:
    """The `InputCheck` of each input of ``names`` against one target, from numbers whose k columns per
    input lie side by side ((T, len(names) * k): input i's are columns i*k..(i+1)*k, as are ``fd``'s).
    Every count, maximum and ordering is taken for all the inputs at once: --fast checks many small
    inputs, and numpy's cost per call, not per number, decided its time."""
    T, width = n.ana.shape
    m = len(names)
    k = width // m

    def per(a: np.ndarray) -> np.ndarray:  # (T, m k) -> (m, T k): each input's numbers, target rows first
        return a.reshape(T, m, k).transpose(1, 0, 2).reshape(m, T * k)

    ana, num, abs_err, rel, status = per(n.ana), per(n.num), per(n.abs_err), per(n.rel), per(n.status)
    fail, kink = status == FAIL, status == KINK
    over, kinks, within = fail.sum(axis=1).tolist(), kink.sum(axis=1).tolist(), (status == PASS).sum(axis=1).tolist()
    order = np.argsort(-np.where(np.isfinite(rel), rel, np.inf), axis=1, kind="stable")[:, :WORST]
    at_worst = (np.arange(m)[:, None], order)
    picked = [a[at_worst].tolist() for a in (ana, num, abs_err, rel)]  # Python floats
    order = order.tolist()
    if T * k:  # the largest error, nan counted as infinite (a nan element is the worst, not ignored)
        max_abs = np.max(np.where(np.isnan(abs_err), np.inf, abs_err), axis=1).tolist()
        max_rel = np.max(np.where(np.isnan(rel), np.inf, rel), axis=1).tolist()
    else:
        max_abs = max_rel = [0.0] * m
    unit = _unit(method, target)
    if method == "elements":
        shape0 = tuple(np.shape(ctx.x(names[0])))
        index = np.stack(np.unravel_index(idx, shape0), axis=1).tolist() if shape0 else [[] for _ in idx]
    else:
        index = [[j] for j in range(k)]
    rows = [i for _ in range(T) for i in index]
    labels = [lab for lab in target.labels for _ in range(k)]
    out = []
    for i, name in enumerate(names):
        x = ctx.x(name)
        states = status[i].tolist()

        def element(p: int, values: tuple[float, float, float, float], i: int = i, states: list[str] = states) -> Element:
            t, j = divmod(int(p), k)
            at = _node_kinks(ctx, fd, i * k + j) if states[p] == KINK else ()
            return Element(tuple(index[j]), target.labels[t], *values, str(states[p]), at)

        overall = FAIL if over[i] else KINK if kinks[i] else PASS
        worst = [element(p, (a, b, c, d)) for p, a, b, c, d in zip(order[i], *(v[i] for v in picked), strict=True)]
        arrays = {"index": rows if m == 1 else list(rows), "row": labels if m == 1 else list(labels), "analytic": ana[i],
                  "numeric": num[i], "abs_err": abs_err[i], "rel_err": rel[i], "status": states}
        mine = n if m == 1 else _Numbers(*(a[:, i * k:(i + 1) * k] for a in (n.ana, n.num, n.abs_err, n.rel, n.status)))
        out.append(InputCheck(
            input=name, kind=ctx.graph.kind[name][:-1], target=target.node, target_kind=target.kind, method=method,
            shape=tuple(np.shape(x)), size=int(np.size(x)), checked=k, max_abs_err=max_abs[i], max_rel_err=max_rel[i],
            status=overall, worst=worst[0] if worst else None, worst_elements=worst,
            kinks=[element(p, (float(ana[i, p]), float(num[i, p]), float(abs_err[i, p]), float(rel[i, p])))
                   for p in np.flatnonzero(kink[i])[:50]] if kinks[i] else [], arrays=arrays,
            notes=notes[i], census=Census(T * k, within[i], over[i], kinks[i], unit),
            diagnosis=_diagnosis(ctx, name, target, method, idx, mine) if overall == FAIL else None))
    return out


def _unit(method: str, target: _Target) -> str:
    return "directions" if method == "directions" else "elements" if target.kind == "loss" else "entries"


def _graph_sizes(ctx: _Ctx) -> dict[int, str]:
    """Each size the graph's values have (a dim, or a whole value's element count), and where it first
    occurs: the N a missing 1/N of a mean or a missing sum over N is told by. Leaves first."""
    plan = ctx.plan
    sizes: dict[int, str] = {}
    for slot in [*range(plan.n_leaves), *range(plan.first_node, len(plan.names))]:
        shape = np.shape(ctx.vals_f[slot])
        for ax, d in enumerate(shape):
            sizes.setdefault(int(d), f"axis {ax} of '{plan.names[slot]}'")
        if len(shape) > 1:
            sizes.setdefault(int(np.prod(shape)), f"the {int(np.prod(shape))} elements of '{plan.names[slot]}'")
    return sizes


def _diagnosis(ctx: _Ctx, name: str, target: _Target, method: str, idx: np.ndarray, n: _Numbers) -> Diagnosis | None:
    """The pattern of a failing check, with the check's own tolerance (diagnose.py): a transpose only
    when every element was differenced."""
    x = ctx.x(name)
    scale = np.maximum(1.0, np.abs(x.ravel()[idx])) if method == "elements" else np.ones(n.ana.shape[1])
    atol = ctx.tol.atol * np.maximum(1.0, np.abs(target.f0))[:, None] / scale
    whole = method == "elements" and n.ana.shape[1] == x.size
    found = diagnose(n.ana, n.num, rtol=ctx.tol.rtol, atol=atol, status=n.status,
                     shape=np.shape(x) if whole else None, sizes=_graph_sizes(ctx), span=int(x.size),
                     unit=_unit(method, target))
    if found is None and method == "elements":
        try:
            paths = _paths(ctx, name, target, idx)
        except Exception:  # an op that fails off the point: no fan-out rule, the check's verdict stands
            paths = []
        if paths:
            found = one_path(n.ana, n.num, paths, rtol=ctx.tol.rtol, atol=atol, status=n.status,
                             unit=_unit(method, target))
    return found


PATH_WORK = 200_000  # most op calls (evaluations x steps downstream of the input) the fan-out rule may spend


def _paths(ctx: _Ctx, name: str, target: _Target, idx: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """For each value downstream of input ``name`` that feeds several consumers (the input itself too),
    and each consumer: the central differences of the target with the perturbation let through that
    consumer alone (the others read the unperturbed value). Empty when there is no fan-out or it would
    cost more than `PATH_WORK` op calls."""
    steps, x_slot = ctx.plan.steps, ctx.plan.slot[name]
    down, below = {x_slot}, []
    for k, s in enumerate(steps):
        if any(a in down for a in s.args):
            down.add(s.out)
            below.append(k)
    readers: dict[int, list[tuple[int, int]]] = {}
    for k in below:
        for p, a in enumerate(steps[k].args):
            if a in down:
                readers.setdefault(a, []).append((k, p))
    fans = [(v, rs) for v, rs in readers.items() if len(rs) > 1]
    if not fans or 2 * len(idx) * sum(len(rs) for _, rs in fans) * len(below) > PATH_WORK:
        return []
    x = ctx.x(name)
    h = ctx.tol.eps * np.maximum(1.0, np.abs(x.ravel()[idx]))

    def value(xj: np.ndarray, fan: int, via: tuple[int, int]) -> np.ndarray:
        changed: dict[int, Any] = {x_slot: xj}
        for k in below:
            s = steps[k]
            args = [changed[a] if a in changed and (a != fan or (k, p) == via) else ctx.vals_f[a]
                    for p, a in enumerate(s.args)]
            if any(a in changed and (a != fan or (k, p) == via) for p, a in enumerate(s.args)):
                changed[s.out] = s.forward(*args)
        out = changed.get(target.slot, ctx.vals_f[target.slot])
        return target.seeds @ np.asarray(out, dtype=np.float64).ravel()

    out = []
    for v, rs in fans:
        for via in rs:
            cols = []
            for j, e in enumerate(idx):
                xp, xm = x.copy(), x.copy()
                xp.flat[e] += h[j]
                xm.flat[e] -= h[j]
                cols.append((value(xp, v, via) - value(xm, v, via)) / (2 * h[j]))
            s = steps[via[0]]
            others = ", ".join(f"'{steps[k].name}'" for k, _ in rs if k != via[0]) or f"'{s.name}' again"
            out.append((f"node '{s.name}' ({s.op.name}) alone ('{ctx.plan.names[v]}' also feeds {others})",
                        np.stack(cols, axis=1)))
    return out
