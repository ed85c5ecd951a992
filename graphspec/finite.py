"""Finiteness: a cheap test per call, and on a doubt the exact search for where the first inf
or nan came from (a leaf given that way, the first node that made one, or the first VJP that
turned a finite cotangent into a non-finite one)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import NonFiniteError
from .passes import pull

if TYPE_CHECKING:
    from .plan import Plan, Step


def surely_finite(*values: Any) -> bool:
    """True when no value holds inf or nan (ints, bools and None always pass). One pass each and
    no temporary array: a sum of squares (a BLAS dot, numpy's fastest reduction) is finite when
    every term is, unless finite terms overflow (|x| > 1e19 in float32); so False means "maybe",
    and callers confirm with the exact `nonfinite_error`. Scalars need no numpy at all."""
    flats = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, float):  # a Python float or a numpy float64 scalar (a subclass)
            if not math.isfinite(v):
                return False
            continue
        if not isinstance(v, np.ndarray | np.generic):
            v = np.asarray(v)
        if v.dtype.kind != "f":
            continue
        if v.ndim == 0:
            if not math.isfinite(v):
                return False
        elif v.flags.c_contiguous:
            flats.append(v if v.ndim == 1 else v.reshape(-1))
        elif not np.isfinite(v).all():
            return False
    if not flats:
        return True
    with np.errstate(over="ignore"):  # an overflow here only means "maybe": no warning for the user
        return all(math.isfinite(np.dot(f, f)) for f in flats)


def _kinds(v: Any) -> str:
    v = np.asarray(v)
    return "/".join(k for k, test in (("inf", np.isinf), ("nan", np.isnan)) if test(v).any())


def _finite(v: Any) -> bool:
    return v is None or not np.issubdtype(np.result_type(v), np.inexact) or bool(np.all(np.isfinite(v)))


def first_nonfinite(plan: Plan, vals: Sequence[Any]) -> Step | None:
    """The first step (in execution order) whose value holds inf or nan."""
    return next((step for step in plan.steps if not _finite(vals[step.out])), None)


def nonfinite_error(plan: Plan, vals: Sequence[Any], what: str = "value") -> NonFiniteError | None:
    """Where the first inf or nan of a pass came from: a leaf given that way (named as itself,
    not blamed on the node that reads it), else the first node that made one."""
    for i in range(plan.n_leaves):
        if not _finite(vals[i]):
            return NonFiniteError(f"non-finite {what} ({_kinds(vals[i])}) given for this input or param",
                                  loc=plan.names[i])
    step = first_nonfinite(plan, vals)
    if step is None:
        return None
    return NonFiniteError(f"first non-finite {what} ({_kinds(vals[step.out])}) produced by {step.op.name}",
                          loc=f"nodes.{step.name}")


def gradient_nonfinite_error(plan: Plan, vals: Sequence[Any], ct: Sequence[Any], loss: str,
                             all_nodes: bool = False) -> NonFiniteError | None:
    """Where the first inf or nan of a reverse pass was born: the op whose VJP turned a finite
    cotangent into a non-finite one (say sqrt's slope at 0). Walks the backward pass's own steps
    (``all_nodes`` as for the pass that made ``ct``) and recomputes each VJP: only on this error
    path, never per call."""
    seed = ct[plan.slot[loss]]
    if not _finite(seed):
        return NonFiniteError(f"the seed is not finite ({_kinds(seed)})", loc="loss.seed")
    with np.errstate(all="ignore"):
        for step, grads in plan.backward_steps_all if all_nodes else plan.backward_steps:
            g = ct[step.out]
            if g is None or not _finite(g):
                continue
            for s, gi in pull(step, g, vals[step.out], step.get(vals), grads):
                if not _finite(gi):
                    return NonFiniteError(f"first non-finite gradient ({_kinds(gi)}) produced by the VJP of "
                                          f"{step.op.name} for '{plan.names[s]}'", loc=f"nodes.{step.name}")
    # every VJP gave finite cotangents: the first slot (in backward order: nodes, then leaves) whose sum of
    # them is not finite overflowed there (no leaf was given inf, no op made it)
    for slot in [step.out for step in reversed(plan.steps)] + list(range(plan.n_leaves)):
        if not _finite(ct[slot]):
            name = plan.names[slot]
            return NonFiniteError(f"first non-finite gradient ({_kinds(ct[slot])}): the finite cotangents from the "
                                  "uses of this value overflowed when summed",
                                  loc=name if slot < plan.n_leaves else f"nodes.{name}")
    return None
