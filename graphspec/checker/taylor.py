"""The Taylor remainder test: |f(x + h v) - f(x) - h <g, v>| shrinks like h^2 with a right gradient and
like h with a wrong one, whatever the step; the observed order is the verdict."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .context import _Ctx
from .results import FAIL, PASS, UNCLEAR, TaylorRow
from .targets import _Target

STEPS, H0 = 14, 0.1  # h = 0.1, 0.05, ... down to 1.2e-5
NEAR = 100  # elements smaller than NEAR times the smallest step are not in the asymptotic regime of any step
MORE = 30  # at most this many more halvings for them


def _taylor_row(ctx: _Ctx, names: list[str], label: str, targets: list[_Target], u: list[np.ndarray],
                steps_count: int = STEPS, h0: float = H0) -> TaylorRow:
    """|f(x + h v) - f(x) - h <g, v>| for h = h0, h0/2, ...; f = sum of the targets' rows weighted by u."""
    slot = ctx.plan.slot
    v = {}
    for n in names:
        x = ctx.x(n)
        scale = np.maximum(1.0, np.abs(x))
        r = ctx.rng.normal(size=x.shape)
        v[n] = r / max(float(np.max(np.abs(r), initial=0.0)), 1e-300) * scale
    hs = h0 * 0.5 ** np.arange(steps_count)
    hh = np.concatenate([[0.0], hs])
    leaves = {slot[n]: ctx.x(n) + hh.reshape((-1,) + (1,) * ctx.x(n).ndim) * v[n] for n in names}
    steps = ctx.engine.steps_for([t.slot for t in targets])
    vals, branches = ctx.engine.run(leaves, steps, len(hh))
    f = sum(w @ t.values(vals.get(t.slot), len(hh)) for t, w in zip(targets, u, strict=True))
    gv = sum(float(w @ t.grads[n] @ v[n].ravel()) for t, w in zip(targets, u, strict=True) for n in names)
    with np.errstate(all="ignore"):
        rem = np.abs(f[1:] - f[0] - hs * gv)
    crossed = np.zeros(steps_count, dtype=bool)
    for br in branches.values():
        br = np.asarray(br).reshape(len(hh), -1)
        crossed |= (br[1:] != br[:1]).any(axis=1)
    noise = 1e4 * np.finfo(np.float64).eps * (np.abs(f[0]) + np.abs(f[1:]))
    if ctx.vals_a is not ctx.vals_f:
        # a float32 gradient is itself rounded (to within rtol, as the element checks accept it): a remainder
        # of h * rtol * |<g, v>| is that rounding (order 1 on a piecewise-linear loss), not a wrong gradient
        noise = noise + hs * ctx.tol.rtol * abs(gv)
    used = ~crossed & np.isfinite(rem) & (rem > noise)
    slopes = [math.log2(rem[k] / rem[k + 1]) for k in range(steps_count - 1) if used[k] and used[k + 1]]
    order = float(np.median(slopes[-4:])) if slopes else None
    status, note = _taylor_verdict(order, rem, crossed, noise)
    return TaylorRow(label, hs.tolist(), [float(r) if np.isfinite(r) else None for r in rem], used.tolist(),
                     order, status, note)


def _taylor_verdict(order: float | None, rem: np.ndarray, crossed: np.ndarray, noise: np.ndarray) -> tuple[str, str]:
    if order is None:
        if np.all(crossed):
            return UNCLEAR, "every step crosses a kink"
        if np.all(rem[~crossed] <= noise[~crossed]):
            return PASS, "remainder at rounding level: f is linear along v and the gradient is exact"
        return UNCLEAR, "too few usable steps"
    if order >= 1.75:
        return PASS, ""
    if order <= 1.25:
        return FAIL, "order 1: the gradient is wrong along v"
    return UNCLEAR, ""


def _taylor(ctx: _Ctx, targets: list[_Target]) -> list[TaylorRow]:
    u = [np.ones(1) if t.kind == "loss" else ctx.rng.normal(size=len(t.seeds)) for t in targets]
    groups = [("all", list(ctx.wrt))] + ([(n, [n]) for n in ctx.wrt] if len(ctx.wrt) > 1 else [])
    rows = []
    for label, names in groups:
        row = _taylor_row(ctx, names, label, targets, u)
        extra = _more_steps(ctx, names, H0 * 0.5 ** (STEPS - 1)) if row.status == FAIL else 0
        if extra:
            # every step is large against some small element (1/x at x = 1e-6: h <g, v> is then far bigger
            # than what f does over the step, which reads as order 1): the steps go on halving, along the
            # same kind of direction, until they are small against it too; a wrong gradient is order 1 there
            again = _taylor_row(ctx, names, label, targets, u, steps_count=STEPS + extra)
            row = dataclasses.replace(again, note=(again.note + "; " if again.note else "") +
                                      f"steps down to {again.h[-1]:.1e}: the first ones were large against small elements")
        rows.append(row)
    return rows


def _more_steps(ctx: _Ctx, names: list[str], h_min: float) -> int:
    """Halvings past h_min needed for the smallest step to move every element 0 < |x_j| < 1 by at most
    1/NEAR of itself (0: none needed); at most MORE."""
    small = [np.abs(ctx.x(n))[(np.abs(ctx.x(n)) > 0) & (np.abs(ctx.x(n)) < 1)] for n in names]
    least = min((float(np.min(a)) for a in small if a.size), default=1.0)
    return min(MORE, max(0, math.ceil(math.log2(NEAR * h_min / least)))) if least < NEAR * h_min else 0
