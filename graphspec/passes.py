"""The passes over a plan: forward, reverse mode (backward) and forward mode (jvp).

`pull` applies a step's VJPs and `push` its JVPs; everything that differentiates one step
(the backward pass, the non-finite search, explain, blame) calls them. The loops are
micrograd's `backward` without recursion, so a 100,000-node chain runs like a 10-node one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GraphspecError, InputError, OpError, UsageError
from .ops import unbroadcast

if TYPE_CHECKING:
    from .plan import Grads, Plan, Step


class RuleFailed(Exception):
    """A VJP or JVP raised, or returned something that does not fit: which step, which arg."""

    def __init__(self, step: Step, position: int, phase: str, error: Exception):
        super().__init__(f"{type(error).__name__}: {error}")
        self.step, self.position, self.phase, self.error = step, position, phase, error


class NoJvp(Exception):
    """Forward mode met an op without JVP rules: not a bug in it, a limit of what it offers."""

    def __init__(self, step: Step):
        super().__init__(step.op.name)
        self.step = step


def fit(g: Any, x: Any) -> Any:
    """A cotangent in its primal's shape and dtype: broadcasting summed back, and no promotion
    (a float32 graph keeps float32 cotangents even where an op's VJP promotes to float64)."""
    if g is None:  # np.asarray(None, float) would be a silent nan
        raise TypeError("the VJP returned None")
    shape = np.shape(x)
    g_shape = np.shape(g)
    if g_shape != shape:
        lead = len(g_shape) - len(shape)
        if lead < 0 or (g_shape[lead:] != shape
                        and any(d != 1 and d != gd for d, gd in zip(shape, g_shape[lead:], strict=True))):
            # not the arg's shape broadcast: garbage from the VJP, which unbroadcast could reshape silently
            raise ValueError(f"the VJP returned shape {list(g_shape)} for an arg of shape {list(shape)}")
        g = unbroadcast(g, shape)
    return np.asarray(g, dtype=np.result_type(x))


def fit_tangent(t: Any, ans: Any) -> Any:
    """A tangent broadcast to its output's shape; a shape that does not broadcast is the JVP's error."""
    try:
        return np.broadcast_to(t, np.shape(ans))
    except ValueError:
        raise ValueError(f"the JVP returned shape {list(np.shape(t))} for a value of shape "
                         f"{list(np.shape(ans))}") from None


def pull(step: Step, g: Any, ans: Any, argv: Sequence[Any], grads: Grads) -> list[tuple[int, Any]]:
    """(slot, cotangent) for each (position, slot) of ``grads``, from the output cotangent ``g``;
    each cotangent in its arg's shape and dtype (`fit`). Raises `RuleFailed` naming the arg
    whose VJP failed."""
    out = []
    rules = step.vjp
    i = -1
    try:
        for i, s in grads:
            x = argv[i]
            gi = rules[i](g, ans, *argv)
            try:  # the common case, checked without a call
                fits = gi.shape == x.shape and gi.dtype == x.dtype
            except AttributeError:
                fits = False
            out.append((s, gi if fits else fit(gi, x)))
    except Exception as e:
        raise RuleFailed(step, i, "VJP", e) from e
    return out


def push(step: Step, tangents: Sequence[tuple[int, Any]], ans: Any, argv: Sequence[Any]) -> Any:
    """The output tangent from (arg position, tangent) pairs (None when there are none), in the
    output's shape. Raises `RuleFailed` naming the arg whose JVP failed."""
    total = None
    i = -1
    try:
        for i, t in tangents:
            rule = step.jvp[i]
            if rule is None:
                raise NoJvp(step)
            d = rule(t, ans, *argv)
            total = d if total is None else total + d
        if total is not None and np.shape(total) != np.shape(ans):
            total = fit_tangent(total, ans)
    except NoJvp:
        raise
    except Exception as e:
        raise RuleFailed(step, i, "JVP", e) from e
    return total


def forward(plan: Plan, leaf_values: Sequence[Any], reuse: bool = False) -> list[Any]:
    """Every slot's value. With ``reuse``, results go into dead buffers where the memory
    schedule found them safe: only the kept values and what the VJPs read are then exact."""
    vals = plan.template.copy()
    vals[: plan.n_leaves] = leaf_values
    step = None
    try:
        with np.errstate(all="ignore"):  # non-finite values are reported by node (finite.py)
            for step in plan.memory.steps if reuse else plan.steps:
                vals[step.out] = step.forward(*step.get(vals))
    except Exception as e:  # one try around the loop: the failing step is the last one
        raise _forward_error(plan, vals, step, e) from e
    return vals


def backward(plan: Plan, vals: list[Any], loss: str, seed: Any, release: bool = False,
             all_nodes: bool = False) -> list[Any]:
    """Cotangents of every slot that needs one (None where the loss does not depend on it): the
    wrt leaves and the nodes between them and the loss, or with ``all_nodes`` every float node
    on the loss's path. With ``release``, node values and cotangents are dropped once no later
    step reads them: only the leaves' cotangents and the kept values are left."""
    if release and all_nodes:
        raise ValueError("release drops the node cotangents that all_nodes asks for")
    ct: list[Any] = [None] * len(vals)
    ct[plan.slot[loss]] = seed
    memory = plan.memory if release else None
    released = memory.release if memory else None
    for s in memory.release_first if memory else ():
        vals[s] = None
    try:
        with np.errstate(all="ignore"):
            for k, (step, grads) in enumerate(plan.backward_steps_all if all_nodes else plan.backward_steps):
                g = ct[step.out]
                if g is not None:  # else the loss does not depend on this step
                    for s, gi in pull(step, g, vals[step.out], step.get(vals), grads):
                        prev = ct[s]
                        ct[s] = gi if prev is None else prev + gi  # never in place: VJPs may alias g
                if released:
                    ct[step.out] = None
                    for s in released[k]:
                        vals[s] = None
    except RuleFailed as e:
        raise rule_error(plan, e, vals) from e.error
    return ct


def jvp(plan: Plan, vals: list[Any], tangents: dict[str, Any]) -> list[Any]:
    """Tangents of every slot given tangents of some leaves (None: zero)."""
    tan: list[Any] = [None] * len(vals)
    for name, t in tangents.items():
        tan[plan.slot[name]] = t
    try:
        with np.errstate(all="ignore"):
            for step in plan.steps:
                ts = [(i, tan[s]) for i, s in step.tangents if tan[s] is not None]
                if ts:
                    tan[step.out] = push(step, ts, vals[step.out], step.get(vals))
    except RuleFailed as e:
        raise rule_error(plan, e, vals) from e.error
    except NoJvp as e:
        raise UsageError(f"forward mode cannot pass through op '{e.step.op.name}': it has no JVP rule",
                         loc=f"nodes.{e.step.name}", hint="give its defop jvp=... (or use reverse mode)") from None
    return tan


# -- errors: located at the step, and blamed on the op when the op is at fault -----------------

def _forward_error(plan: Plan, vals: list[Any], step: Step | None, e: Exception) -> GraphspecError:
    """numpy's ValueError (a label out of range, shapes that do not broadcast at run time)
    is about the values given: an InputError at the node. Any other exception is a bug in
    the op, and so is an earlier op's result that is not an array (blamed on that op)."""
    assert step is not None
    garbage = _garbage(plan, vals, step.args)
    if garbage is not None:
        return garbage
    from .plan import ResultMismatch

    if isinstance(e, ValueError | MemoryError) and not isinstance(e, ResultMismatch):
        return InputError(f"{step.op.name} failed: {e}", loc=f"nodes.{step.name}")
    return OpError(step.op.name, step.name, "forward", _detail(step.op, step.op.forward, e))


def _garbage(plan: Plan, vals: Sequence[Any], slots: Sequence[int]) -> OpError | None:
    """An op whose forward returned something that is not an array, among the producers of
    ``slots`` (looked at on an error path only: an op reading it may fail, or pass it on)."""
    for s in slots:
        v = vals[s]
        if s >= plan.first_node and not isinstance(v, np.ndarray | np.generic | float | int):
            bad = plan.steps[s - plan.first_node]
            return OpError(bad.op.name, bad.name, "forward", f"returned {type(v).__name__}, not an array")
    return None


def rule_error(plan: Plan, failed: RuleFailed, vals: Sequence[Any]) -> GraphspecError:
    """A VJP or JVP that failed: the forward pass ran, so the values fit; the op is at fault,
    or an op before it whose forward returned garbage that nothing read until now."""
    step = failed.step
    phase = f"{failed.phase} for '{plan.names[step.args[failed.position]]}'"
    garbage = _garbage(plan, vals, (step.out, *step.args))
    if garbage is not None:
        return garbage
    if isinstance(failed.error, MemoryError):
        return InputError(f"{step.op.name} ({phase}) ran out of memory: {failed.error}", loc=f"nodes.{step.name}")
    rule = (step.vjp if failed.phase == "VJP" else step.jvp)[failed.position]
    return OpError(step.op.name, step.name, phase, _detail(step.op, rule, failed.error))


def raised_at(error: BaseException, filename: str | None = None) -> str | None:
    """file:line of the innermost frame of ``error``'s traceback in ``filename`` (the same file by
    its real path), or in any file without one."""
    where, real = None, os.path.realpath(filename) if filename else None
    tb = error.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if real is None or os.path.realpath(name) == real:
            where = f"{name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def code_site(fn: Any, error: BaseException | None = None) -> str | None:
    """file:line in ``fn``'s own source where ``error`` was raised (its innermost frame there), else
    where ``fn`` is defined; None for code without a Python source (a numpy ufunc)."""
    while isinstance(fn, partial):
        fn = fn.func
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    return (raised_at(error, code.co_filename) if error is not None else None) or \
        f"{code.co_filename}:{code.co_firstlineno}"


def _detail(op: Any, rule: Any, error: BaseException) -> str:
    """What went wrong in an op's code; for an op from outside graphspec, where (the user's file
    and line) and where the op was defined."""
    from .plan import ResultMismatch

    text = str(error) if isinstance(error, ResultMismatch) else f"{type(error).__name__}: {error}"
    if op.builtin:
        return text
    site = code_site(rule, error)
    return f"{text} ({f'at {site}; ' if site else ''}op '{op.name}' defined at {op.origin})"
