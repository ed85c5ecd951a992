"""Blame: every node's own VJP and JVP against finite differences of that node alone, so a failing
check names the op that is wrong."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..passes import RuleFailed, pull, push
from ..plan import Step
from .context import _Ctx
from .diagnose import node_diagnosis
from .input_checks import MAX_LEVELS
from .results import FAIL, KINK, PASS, TOLERANCES, UNCLEAR, NodeCheck

FD_TOL = TOLERANCES["float64"]  # node-local checks run in float64 whatever the graph's dtype
_TRIAL_RANK = {KINK: 0, UNCLEAR: 0, PASS: 1, FAIL: 2}


def _vjp_side(step: Step, i: int, u: np.ndarray, ans: Any, args: list[Any], v: np.ndarray) -> float:
    return float(np.sum(np.asarray(pull(step, u, ans, args, ((i, -1),))[0][1]) * v))


def _jvp_side(step: Step, i: int, u: np.ndarray, ans: Any, args: list[Any], v: np.ndarray) -> float:
    return float(np.sum(u * push(step, ((i, v),), ans, args)))


def _sides(step: Step, i: int, u: np.ndarray, ans: Any, args: list[Any], v: np.ndarray) -> dict[str, float | str]:
    """Each rule's <., .> pairing, or the message of the exception it raised (a crash is a failure)."""
    out: dict[str, float | str] = {}
    for mode, rule, side in (("vjp", step.vjp[i], _vjp_side), ("jvp", step.jvp[i], _jvp_side)):
        if rule is None:
            continue
        try:
            out[mode] = side(step, i, u, ans, args, v)
        except Exception as e:  # a rule that raises is the node to blame, not a crash of the checker
            out[mode] = str(e) if isinstance(e, RuleFailed) else f"{type(e).__name__}: {e}"
    return out


def _verdicts(ctx: _Ctx, step: Step, i: int, label: str, sides: dict[str, float | str], num: float, crossed: bool,
              atol: float) -> dict[str, NodeCheck]:
    out = {}
    for mode, a in sides.items():
        if isinstance(a, str):
            check = NodeCheck(step.name, step.op.name, i, label, mode, math.nan, num, math.inf, FAIL, a)
        elif not (math.isfinite(a) and math.isfinite(num)):  # a pole, or a stencil past the op's domain
            check = NodeCheck(step.name, step.op.name, i, label, mode, a, num, math.nan, UNCLEAR,
                              "not finite at this point: a pole, or the stencil leaves the op's domain")
        else:
            rel = abs(a - num) / max(abs(a), abs(num), atol / FD_TOL.rtol)
            status = PASS if rel <= FD_TOL.rtol else KINK if crossed else FAIL
            check = NodeCheck(step.name, step.op.name, i, label, mode, a, num, rel, status)
        out[mode] = check
    return out


def _local(ctx: _Ctx, step: Step, i: int, trials: int = 3) -> list[NodeCheck]:
    """The node's rules for arg ``i`` against the central difference of <u, node(args + h v)>, as the full
    check does it: a step scaled to max(1, |x|); a failing trial retaken with the step halved
    (Richardson); one whose differences do not settle, or are not finite, along v scaled to |x| itself
    where 0 < |x| < 1 (h = 1e-4 is not to be moved by 6% of itself)."""
    args = [ctx.vals_f[a] for a in step.args]
    ans = ctx.vals_f[step.out]
    x = np.asarray(args[i], dtype=np.float64)
    kink = step.op.kink
    label = f"{step.op.arg_name(i)} ({ctx.plan.names[step.args[i]]})"
    small = (np.abs(x) > 0) & (np.abs(x) < 1)
    best: dict[str, NodeCheck] = {}

    def diff(u: np.ndarray, v: np.ndarray, h: float) -> tuple[float, bool]:
        ap = [*args[:i], x + h * v, *args[i + 1:]]
        am = [*args[:i], x - h * v, *args[i + 1:]]
        fp, fm = step.forward(*ap), step.forward(*am)
        crossed = kink is not None and bool(np.any(np.asarray(kink(fp, *ap, **step.attrs))
                                                   != np.asarray(kink(fm, *am, **step.attrs))))
        return float(np.sum(u * fp) - np.sum(u * fm)) / (2 * h), crossed

    def failing(checks: dict[str, NodeCheck]) -> bool:
        # a rule that raised (a message) fails at every step: not retaken
        return any(c.status == UNCLEAR or (c.status == FAIL and not c.message) for c in checks.values())

    def adopt(checks: dict[str, NodeCheck], retaken: dict[str, NodeCheck]) -> dict[str, NodeCheck]:
        """Mode by mode (a wrong VJP must not keep a right JVP failing): a retaken check replaces a failing
        one when it passes, or when it is finite and the old one was not."""
        out = dict(checks)
        for mode, c in retaken.items():
            old = checks[mode]
            if failing({mode: old}) and (c.status == PASS or (old.status == UNCLEAR and c.status != UNCLEAR)):
                out[mode] = c
        return out

    for _ in range(trials):
        u = ctx.rng.normal(size=np.shape(ans))
        r = ctx.rng.normal(size=x.shape)
        h = ctx.tol.eps
        atol = ctx.tol.atol * max(1.0, float(np.sum(np.abs(u * ans))))
        with np.errstate(all="ignore"):
            v = r * np.maximum(1.0, np.abs(x))
            num, crossed = diff(u, v, h)
            sides = _sides(step, i, u, ans, args, v)
            checks = _verdicts(ctx, step, i, label, sides, num, crossed, atol)
            settled = False
            if failing(checks) and not crossed and math.isfinite(num):
                prev, rich_prev = num, None
                for k in range(1, MAX_LEVELS + 1):  # on while the extrapolations neither agree nor settle
                    cur, _ = diff(u, v, h / 2 ** k)
                    rich = (4 * cur - prev) / 3
                    settled = rich_prev is not None and abs(rich - rich_prev) <= FD_TOL.rtol * abs(rich)
                    for est in (rich, cur):
                        checks = adopt(checks, _verdicts(ctx, step, i, label, sides, est, crossed, atol))
                    if not failing(checks) or settled:
                        break
                    prev, rich_prev = cur, rich
            if failing(checks) and not settled and np.any(small):
                vr = r * np.where(small, np.abs(x), np.maximum(1.0, np.abs(x)))
                num_r, crossed_r = diff(u, vr, h)
                half, _ = diff(u, vr, h / 2)
                sides_r = _sides(step, i, u, ans, args, vr)
                for est in (num_r, (4 * half - num_r) / 3):
                    checks = adopt(checks, _verdicts(ctx, step, i, label, sides_r, est, crossed_r, atol))
        for mode, check in checks.items():
            prev_check = best.get(mode)
            # a trial that crossed a kink or met a non-finite number says nothing; a pass beats it, a
            # clean failure beats both
            if prev_check is None or _TRIAL_RANK[check.status] > _TRIAL_RANK[prev_check.status]:
                best[mode] = check
    return list(best.values())


def _no_vjp(g: Any, ans: Any, *args: Any) -> Any:
    return np.zeros(())  # stands for an op's missing VJP: it claims the arg does not matter


def _diagnosed(ctx: _Ctx, step: Step, i: int, check: NodeCheck) -> NodeCheck:
    """A wrong VJP (not one that raised) with the pattern of its full cotangent, where it is clear."""
    if check.status != FAIL or check.mode != "vjp" or check.message:
        return check
    args = [ctx.vals_f[a] for a in step.args]
    labels = [f"{step.op.arg_name(k)} ({ctx.plan.names[a]})" for k, a in enumerate(step.args)]
    return dataclasses.replace(check, diagnosis=node_diagnosis(step, i, args, ctx.vals_f[step.out], eps=ctx.tol.eps,
                                                               rtol=FD_TOL.rtol, atol=FD_TOL.atol, labels=labels))


def _blame(ctx: _Ctx) -> list[NodeCheck]:
    out = []
    steps = ctx.plan.steps
    # slots that carry a gradient: a float arg among them with no VJP silently gets zero
    needs = {ctx.plan.slot[n] for n in ctx.wrt} | {s.out for s in steps if s.grads}
    for step in steps:
        if ctx.progress:
            ctx.progress(1)
        for i, a in enumerate(step.args):
            if not np.issubdtype(np.asarray(ctx.vals_f[a]).dtype, np.floating):
                continue
            if any(i == j for j, _ in step.grads):
                out.extend(_diagnosed(ctx, step, i, c) for c in _local(ctx, step, i))
            elif step.vjp[i] is None and a in needs:
                stand_in = step._replace(vjp=tuple(_no_vjp if j == i else r for j, r in enumerate(step.vjp)),
                                         jvp=tuple(None if j == i else r for j, r in enumerate(step.jvp)))
                out.extend(dataclasses.replace(c, message="the op has no VJP for this arg, yet the arg changes "
                                               "its output") if c.status == FAIL else c
                           for c in _local(ctx, stand_in, i))
    return out
