"""What a failing gradient's numbers say about the bug: a census of the compared numbers and, where
the pattern is clear, its name.

Every rule is a pure function of the analytic and numeric numbers of one check (a (T, k) array:
T target rows, k elements or directions), the tolerance the check used (rtol, and atol per number)
and, where the rule needs them, the input's shape, the sizes that occur in the graph, or the numeric
contributions of each slice of a broadcast axis. A rule names a pattern only when it holds within
that tolerance at every failing number (and, for a constant factor over the whole check, at every
compared number): a correct gradient never FAILs, so it never gets a diagnosis, and an unclear one
gets none. KINK numbers are left out (their differences are not derivatives).

`node_diagnosis` makes the node-level numbers for blame: a node's VJP for one arg with a random
cotangent, against the central difference of every element of that arg through the node alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .results import FAIL, KINK, PASS, Census, Diagnosis

SMALL = (2,)  # factors tried before the graph's sizes: d(x^2)/dx's 2 is likelier than a mean over 2
LATE = (3, 4)  # small factors tried after the graph's sizes
SNAP = 1e-2  # a fitted factor this close (relative) to a simple one is tried as that one
NODE_MAX_ELEMENTS = 1024  # blame's per-element differences of one arg through its node alone
NODE_MAX_WORK = 5_000_000  # arg elements x output elements


def census(status: np.ndarray, unit: str = "elements") -> Census:
    """Within tolerance (PASS), over it (FAIL) and at a kink (KINK), of every compared number."""
    st = np.asarray(status, dtype=object).ravel()
    return Census(int(st.size), int(np.sum(st == PASS)), int(np.sum(st == FAIL)), int(np.sum(st == KINK)), unit)


def census_text(c: Census) -> str:
    """'22 of 24 elements (92%) over tolerance, 2 within'; a share is never rounded to 0% or 100%."""
    if c.compared == 0:
        return f"no {c.unit} compared"
    if c.over == 0:
        line = f"all {c.compared} {c.unit} within tolerance" if c.within == c.compared else \
            f"{c.within} of {c.compared} {c.unit} within tolerance"
    elif c.over == c.compared:
        line = f"all {c.compared} {c.unit} (100%) over tolerance" if c.compared > 1 else f"the one {c.unit[:-1]} over tolerance"
    else:
        pct = 100.0 * c.share_over
        shown = min(99, max(1, round(pct)))
        line = f"{c.over} of {c.compared} {c.unit} ({shown}%) over tolerance, {c.within} within"
    return line + (f", {c.kinks} at a kink" if c.kinks else "")


# ---------------------------------------------------------------------------------------------
# the rules


def _agree(a: np.ndarray, b: np.ndarray, rtol: float, atol: np.ndarray) -> np.ndarray:
    """The check's own pass line, |a - b| <= max(rtol max(|a|, |b|), atol), finite numbers only."""
    with np.errstate(all="ignore"):
        return np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= np.maximum(rtol * np.maximum(np.abs(a), np.abs(b)),
                                                                            atol))


class _Numbers:
    """One check's numbers as (T, k) float arrays, its failing and usable (not kinked) masks."""

    def __init__(self, analytic: Any, numeric: Any, rtol: float, atol: Any, status: Any) -> None:
        self.a = np.atleast_2d(np.asarray(analytic, dtype=np.float64))
        self.n = np.atleast_2d(np.asarray(numeric, dtype=np.float64)).reshape(self.a.shape)
        self.rtol = float(rtol)
        self.atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), self.a.shape)
        if status is None:
            self.fail = ~_agree(self.a, self.n, self.rtol, self.atol)
            self.usable = np.ones(self.a.shape, dtype=bool)
        else:
            st = np.asarray(status, dtype=object).reshape(self.a.shape)
            self.fail, self.usable = st == FAIL, st != KINK
        # a number that is not finite says nothing about a pattern: no diagnosis with one
        self.clear = bool(self.fail.any()) and bool(np.all(np.isfinite(self.a[self.usable]) &
                                                           np.isfinite(self.n[self.usable])))

    @property
    def total(self) -> int:
        return int(self.usable.sum())

    @property
    def failing(self) -> int:
        return int(self.fail.sum())


def _count(k: int, unit: str) -> str:
    return f"{k} {unit[:-1] if k == 1 and unit.endswith('s') else unit}"


def _where(x: _Numbers, whole: bool, unit: str) -> str:
    if whole:
        return f"all {_count(x.total, unit)}" if x.total > 1 else f"the one {unit[:-1]}"
    return f"the {_count(x.failing, 'failing ' + unit)} (the other {x.total - x.failing} agree)"


def zeros(analytic: Any, numeric: Any, *, rtol: float, atol: Any = 0.0, status: Any = None,
          unit: str = "elements") -> Diagnosis | None:
    """analytic = 0 at every failing number, where the numeric gradient is not: a forgotten term or path."""
    x = _Numbers(analytic, numeric, rtol, atol, status)
    if not x.clear:
        return None
    f = x.fail
    if not np.all(np.abs(x.a[f]) <= np.maximum(x.atol[f], x.rtol * np.abs(x.n[f]))):
        return None
    u = x.usable
    everywhere = bool(np.all(np.abs(x.a[u]) <= np.maximum(x.atol[u], x.rtol * np.abs(x.n[u]))))
    if everywhere and x.failing == x.total:
        where = f"all {_count(x.total, unit)}" if x.total > 1 else f"the one {unit[:-1]}"
        msg = f"analytic = 0 at {where}, where the numeric gradient is not"
    elif everywhere:
        msg = f"analytic = 0 at all {_count(x.total, unit)}, the numeric gradient is not at {x.failing} of them"
    else:
        msg = f"analytic = 0 at {_where(x, False, unit)}, where the numeric gradient is not"
    return Diagnosis("zeros", msg + ": a forgotten term or path?", 0.0, x.total)


def _short(v: float) -> str:
    k = round(1 / v) if v and abs(v) < 1 else 0
    text = f"{v:g}"
    return f"{'-' if v < 0 else ''}1/{abs(k)}" if k and len(text) > 6 else text


def _candidates(sizes: Mapping[int, str]) -> list[tuple[float, str, str]]:
    """(factor, pattern, what it suggests), most telling first."""
    out: list[tuple[float, str, str]] = [(-1.0, "sign", "a flipped sign?")]
    for k in SMALL:
        out += [(1 / k, "factor", f"a missing factor {k}?"), (float(k), "factor", f"a factor {k} too many?"),
                (-1 / k, "factor", f"a flipped sign and a missing factor {k}?"),
                (-float(k), "factor", f"a flipped sign and a factor {k} too many?")]
    for n, where in sizes.items():
        if n > 1 and n not in SMALL:
            out += [(float(n), "mean", f"a missing 1/{n} of a mean over {n} ({where})?"),
                    (1 / n, "sum", f"a missing sum over a broadcast axis of {n} ({where}), or a spurious 1/{n}?")]
    for k in LATE:
        if k not in sizes:
            out += [(1 / k, "factor", f"a missing factor {k}?"), (float(k), "factor", f"a factor {k} too many?")]
    return out


def constant_factor(analytic: Any, numeric: Any, *, rtol: float, atol: Any = 0.0, status: Any = None,
                    sizes: Mapping[int, str] | None = None, span: int | None = None,
                    unit: str = "elements") -> Diagnosis | None:
    """analytic = c x numeric: c = -1 a flipped sign; 2 or 1/2; N (a missing 1/N of a mean) or 1/N (a
    missing sum over an axis of N) for a size N of the graph; any other c only when it holds at every
    compared number and at least 3 of them are clearly nonzero (and independent: ``span``, the input's
    size when the numbers are K directions of it). A simple c may hold at the failing numbers alone (the
    others agree): a slip in one branch."""
    x = _Numbers(analytic, numeric, rtol, atol, status)
    if not x.clear:
        return None
    sig = x.fail & (np.abs(x.n) > x.atol)
    if not sig.any():
        return None
    c = float(np.sum(x.a[sig] * x.n[sig]) / np.sum(x.n[sig] ** 2))
    if not math.isfinite(c) or abs(c) <= 10 * x.rtol or abs(c - 1) <= 10 * x.rtol:
        return None

    def holds(v: float) -> tuple[bool, bool]:
        ok = _agree(x.a, v * x.n, x.rtol, x.atol)
        return bool(np.all(ok[x.fail])), bool(np.all(ok[x.usable]))

    for v, pattern, why in _candidates(sizes or {}):
        if abs(c - v) <= SNAP * abs(v):
            on_failing, whole = holds(v)
            if on_failing:
                lhs = "-numeric" if v == -1 else f"numeric / {round(1 / v)}" if pattern == "sum" else \
                    f"{_short(v)} x numeric"
                return Diagnosis(pattern, f"analytic = {lhs} at {_where(x, whole, unit)}: {why}", v, x.total)
    on_failing, whole = holds(c)
    if whole and min(int(sig.sum()), span or x.a.size) >= 3:
        return Diagnosis("factor", f"analytic = {c:.4g} x numeric at {_where(x, True, unit)}: a wrong constant "
                         "factor", c, x.total)
    return None


def transposed(analytic: Any, numeric: Any, shape: Sequence[int] | None, *, rtol: float, atol: Any = 0.0,
               status: Any = None, unit: str = "elements") -> Diagnosis | None:
    """analytic = numeric with its last two axes swapped (a square input), or the transpose's numbers read
    in the input's shape (a (p, q) input given the (q, p) transpose's data), at every element of each row.
    Needs every element of the input (not a sample) and no kink."""
    x = _Numbers(analytic, numeric, rtol, atol, status)
    if not x.clear or shape is None or len(shape) < 2 or x.a.shape[1] != math.prod(shape) or not x.usable.all():
        return None
    shape = tuple(shape)
    for t in range(x.a.shape[0]):
        swapped = np.swapaxes(x.n[t].reshape(shape), -1, -2).reshape(shape)  # the data of n^T, in the input's shape
        if not np.all(_agree(x.a[t].reshape(shape), swapped, x.rtol, x.atol[t].reshape(shape))):
            return None
    p, q = shape[-2:]
    what = "numeric transposed (its last two axes swapped)" if p == q else \
        f"numeric transposed ({q} x {p}) and read in the shape {shape}"
    return Diagnosis("transpose", f"analytic = {what} at all {_count(x.total, unit)}: a transposed gradient?",
                     None, x.total)


def one_row(analytic: Any, numeric: Any, parts: Sequence[tuple[str, np.ndarray]], *, rtol: float, atol: Any = 0.0,
            status: Any = None, unit: str = "elements") -> Diagnosis | None:
    """analytic = the numeric contribution of one slice of a broadcast axis alone (``parts``: (what the axis
    is, an (R, ...) array of each slice's contribution, which sum to ``numeric``)): a missing sum over it."""
    x = _Numbers(analytic, numeric, rtol, atol, status)
    if not x.clear:
        return None
    for label, arr in parts:
        arr = np.asarray(arr, dtype=np.float64)
        if arr.shape[0] < 2:
            continue
        for r in range(arr.shape[0]):
            if np.all(_agree(x.a, arr[r].reshape(x.a.shape), x.rtol, x.atol)[x.usable]):
                return Diagnosis("one_row", f"analytic = the contribution of index {r} of {label} alone (of "
                                 f"{arr.shape[0]}) at {_where(x, True, unit)}: a missing sum over the broadcast "
                                 "axis?", None, x.total)
    return None


def one_path(analytic: Any, numeric: Any, paths: Sequence[tuple[str, np.ndarray]], *, rtol: float, atol: Any = 0.0,
             status: Any = None, unit: str = "elements") -> Diagnosis | None:
    """analytic = the numeric gradient through one consumer of a value that feeds several (``paths``: (which
    consumer, and what the value also feeds; the numbers with the perturbation let through that consumer
    alone)): the other contributions were not added to it."""
    x = _Numbers(analytic, numeric, rtol, atol, status)
    if not x.clear:
        return None
    for label, arr in paths:
        arr = np.asarray(arr, dtype=np.float64).reshape(x.a.shape)
        if np.all(_agree(x.a, arr, x.rtol, x.atol)[x.usable]):
            return Diagnosis("fan_out", f"analytic = the numeric gradient through {label} at "
                             f"{_where(x, True, unit)}: a fan-out that kept one contribution instead of the sum?",
                             None, x.total)
    return None


def diagnose(analytic: Any, numeric: Any, *, rtol: float, atol: Any = 0.0, status: Any = None,
             shape: Sequence[int] | None = None, sizes: Mapping[int, str] | None = None,
             parts: Sequence[tuple[str, np.ndarray]] = (), span: int | None = None,
             unit: str = "elements") -> Diagnosis | None:
    """The first rule that holds (zeros, a constant factor, a transpose, one slice of a broadcast axis),
    or None: nothing fails, a number is not finite, or no pattern is clear."""
    kw = {"rtol": rtol, "atol": atol, "status": status, "unit": unit}
    return zeros(analytic, numeric, **kw) or constant_factor(analytic, numeric, sizes=sizes, span=span, **kw) or \
        transposed(analytic, numeric, shape, **kw) or (one_row(analytic, numeric, parts, **kw) if parts else None)


# ---------------------------------------------------------------------------------------------
# blame: a node's VJP for one arg, element by element


def node_diagnosis(step: Any, i: int, args: Sequence[Any], ans: Any, *, eps: float, rtol: float, atol: float,
                   labels: Sequence[str] = (), seed: int = 0) -> Diagnosis | None:
    """The pattern of a node's VJP for arg ``i`` (a random cotangent u) against the central differences
    of <u, node(args)> in every element of that arg, the node alone; the broadcast axes' slices give
    `one_row` its parts. ``labels``: how to name each arg in a message ("x (h1)"). None for an arg too big
    to difference element by element (`NODE_MAX_ELEMENTS`)."""
    from ..passes import pull

    x = np.asarray(args[i], dtype=np.float64)
    out_shape = np.shape(ans)
    if x.size == 0 or x.size > NODE_MAX_ELEMENTS or x.size * max(1, int(np.prod(out_shape))) > NODE_MAX_WORK:
        return None
    u = np.random.default_rng(seed).normal(size=out_shape)  # its own generator: blame's draws stay as they were
    try:
        with np.errstate(all="ignore"):
            ana = np.asarray(pull(step, u, ans, list(args), ((i, -1),))[0][1], dtype=np.float64).ravel()
            h = eps * np.maximum(1.0, np.abs(x.ravel()))
            d = np.empty((x.size, *out_shape))
            kinked = np.zeros(x.size, dtype=bool)
            for j in range(x.size):
                sides = []
                for sgn in (1.0, -1.0):
                    xj = x.copy()
                    xj.flat[j] += sgn * h[j]
                    aj = [*args[:i], xj, *args[i + 1:]]
                    sides.append((np.asarray(step.forward(*aj), dtype=np.float64), aj))
                (fp, ap), (fm, am) = sides
                d[j] = (fp - fm) / (2 * h[j])
                if step.op.kink is not None:
                    kinked[j] = bool(np.any(np.asarray(step.op.kink(fp, *ap, **step.attrs))
                                            != np.asarray(step.op.kink(fm, *am, **step.attrs))))
    except Exception:  # a forward that fails off the point: no diagnosis, blame's verdict stands
        return None
    if ana.size != x.size:
        return None
    du = d * u
    num = du.reshape(x.size, -1).sum(axis=1)
    tol = atol * max(1.0, float(np.sum(np.abs(u * np.asarray(ans, dtype=np.float64))))) / np.maximum(1.0, np.abs(
        x.ravel()))
    status = np.where(kinked, KINK, np.where(_agree(ana, num, rtol, tol), PASS, FAIL)).astype(object)
    lead = len(out_shape) - x.ndim
    parts, sizes = [], {}
    for ax, n in enumerate(out_shape):
        if n > 1 and (ax < lead or x.shape[ax - lead] == 1):  # an axis the arg is broadcast along
            slices = np.moveaxis(du, 1 + ax, 1).reshape(x.size, n, -1).sum(axis=2).T  # (n, x.size)
            parts.append((f"output axis {ax} of '{step.name}'", slices))
            sizes.setdefault(n, f"the broadcast axis {ax} of '{step.name}'")
    for k, v in enumerate(args):
        for ax, n in enumerate(np.shape(v)):
            sizes.setdefault(n, f"axis {ax} of {labels[k] if k < len(labels) else f'arg {k}'} of '{step.name}'")
    for ax, n in enumerate(out_shape):
        sizes.setdefault(n, f"axis {ax} of the output of '{step.name}'")
    return diagnose(ana, num, rtol=rtol, atol=tol, status=status, shape=x.shape, sizes=sizes, parts=parts)
