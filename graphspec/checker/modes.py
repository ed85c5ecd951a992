"""Forward mode against reverse mode: <u, J v> by one JVP must equal <J^T u, v> by one VJP."""

from __future__ import annotations

import math

import numpy as np

from .context import _Ctx
from .results import FAIL, PASS, ModeCheck
from .targets import _Target

MODES_RTOL = 1e-8  # JVP vs VJP: both exact in float64, only rounding separates them
MODES_FLOOR = 1024 * np.finfo(np.float64).eps  # rounding of sums of terms as large as the biggest tangent


def _modes(ctx: _Ctx, targets: list[_Target]) -> list[ModeCheck]:
    """<u, J v> by one JVP against <J^T u, v> by one VJP, random u and v, in float64 (v: --fast's first
    direction of each input, when there are directions). Both sides agree to
    rounding of the sums that made them: MODES_RTOL of the sum of the absolute terms of the two inner
    products, or, when those are themselves rounding noise (a true value of 0 reached by cancellation:
    logsumexp(x) - log(sum(exp(x)))), MODES_FLOOR * |u|_1 * the largest tangent the forward pass summed."""
    no_jvp = sorted({s.op.name for s in ctx.plan.steps if s.tangents and any(s.jvp[i] is None for i, _ in s.tangents)})
    if no_jvp:  # forward mode cannot pass: nothing to compare, which is said, not failed
        ctx.notes.append("forward mode vs reverse mode not compared: " + ", ".join(f"op '{n}'" for n in no_jvp)
                         + " has no JVP rule")
        return []
    # --fast's first random direction of each input serves as v: as random, and not drawn twice
    v = {n: ctx.directions[n][0].reshape(np.shape(ctx.x(n))) if ctx.directions and len(ctx.directions[n]) else
         ctx.rng.standard_normal(size=np.shape(ctx.x(n))) for n in ctx.wrt}
    tan = ctx.plan.jvp(ctx.vals_f, v)
    vs = np.concatenate([np.ravel(v[n]) for n in ctx.wrt])
    out = []
    for t in targets:
        shape = np.shape(ctx.vals_f[t.slot])
        u = t.seeds[0].reshape(shape) if t.kind == "loss" else ctx.rng.normal(size=shape)
        jv = tan[t.slot]
        jv = np.zeros(shape) if jv is None else np.broadcast_to(jv, shape)
        # the loss's gradient at its own seed was computed for the targets (float64 graphs)
        reuse = t.kind == "loss" and ctx.vals_f is ctx.vals_a
        g = {n: t.grads[n][0].reshape(np.shape(ctx.x(n))) for n in ctx.wrt} if reuse else ctx.backward(t.node, u, ctx.vals_f)
        uj = (u * jv).ravel()
        gs = np.concatenate([np.ravel(g[n]) for n in ctx.wrt])  # every input's terms in one sum
        lhs = float(np.sum(uj))
        rhs = float(gs @ vs)
        scale = float(np.sum(np.abs(uj)) + np.abs(gs) @ np.abs(vs))
        err = abs(lhs - rhs)
        floor = 0.0
        if err > MODES_RTOL * scale:  # only then: the floor reads every tangent
            biggest = max((float(np.max(np.abs(t), initial=0.0)) for t in tan if t is not None), default=0.0)
            floor = MODES_FLOOR * float(np.sum(np.abs(u))) * biggest
        rel = err / max(abs(lhs), abs(rhs), scale * 1e-3, floor / MODES_RTOL, 1e-300)
        ok = err <= max(MODES_RTOL * scale, floor)
        out.append(ModeCheck(t.node, lhs, rhs, rel, PASS if ok else FAIL))
    return out


def _safe_modes(ctx: _Ctx, targets: list[_Target]) -> list[ModeCheck]:
    try:
        return _modes(ctx, targets)
    except Exception as e:  # a JVP that raises fails the comparison; the blame pass names it
        return [ModeCheck(f"(forward mode raised {type(e).__name__}: {e})", math.nan, math.nan, math.inf, FAIL)]
