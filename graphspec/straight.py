"""value_and_grad as straight-line code: a speed trick beside the passes, not in them.

The plan's steps (memory-scheduled), written out once as one Python function: every value and
cotangent a local variable, every op's forward and VJP called directly, the cotangents summed in
the order `passes.backward` sums them, values and cotangents dropped where it drops them. Same
calls, same order: the same bits as the loops (tests/test_straight.py holds them to it). What the
loops know at run time (which cotangents exist, which args need one) is known here at plan time.

It has no error handling of its own: on any exception, or a doubt about finiteness, the caller
runs the loops, which locate the error. Graphs past `MAX_STEPS` stay with the loops: compiling a
function that long costs more than it saves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .passes import fit

if TYPE_CHECKING:
    from .plan import Plan

MAX_STEPS = 5000  # steps past this: the loops (docs/architecture.md has the compile times)
INTO_ELEMENTS = 1 << 14  # results this big are written into dead buffers; smaller ones allocated afresh

try:  # np.errstate(all="ignore") without building its state on each call: numpy 2's context variable
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE = _make_extobj(all="ignore")

    def _ignore() -> Any:
        return _extobj_contextvar.set(_IGNORE)

    _reset = _extobj_contextvar.reset
except (ImportError, TypeError):  # another numpy: the public context manager
    def _ignore() -> Any:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def _reset(state: Any) -> None:
        state.__exit__(None, None, None)

Straight = Callable[[list[Any]], tuple[Any, tuple[Any, ...], tuple[Any, ...]]]


def _said(text: str) -> str:
    """Text for a comment in the code: one line, whatever a user op's name holds."""
    return "".join(c if c.isprintable() else "?" for c in text)


def value_and_grad(plan: Plan, loss: int, seed: Any, wrt: list[int], checked: list[int]) -> Straight:
    """A function of the leaf values -> (the loss value, the wrt leaves' cotangents (None where
    the loss does not depend on one), the values of ``checked`` slots (for the finiteness test))."""
    memory = plan.memory
    env: dict[str, Any] = {"_fit": fit, "_seed": seed, "_ignore": _ignore, "_reset": _reset}
    lines = ["def value_and_grad(leaves):",
             "  _token = _ignore()",  # np.errstate(all="ignore"), as the loops run
             "  try:",
             f"    {''.join(f'v{s}, ' for s in range(plan.n_leaves))}= leaves"]
    body = lines.append
    for s in range(plan.n_leaves, plan.first_node):  # the constants of args
        env[f"k{s}"] = plan.template[s]
        body(f"    v{s} = k{s}")
    for k, (step, scheduled) in enumerate(zip(plan.steps, memory.steps, strict=True)):
        # writing into a dead buffer pays for its wrapper only where allocating would cost more
        # (a symbolic dim may be big at run time)
        aval = plan.avals.get(step.name) if plan.avals else None
        shape = aval.shape if aval is not None else None
        big = shape is None or not all(isinstance(d, int) for d in shape) or math.prod(shape) >= INTO_ELEMENTS
        env[f"f{k}"] = scheduled.forward if big else step.forward
        said = _said(f"{step.name} = {step.op.name}({', '.join(plan.names[a] for a in step.args)})")
        body(f"    v{step.out} = f{k}({', '.join(f'v{a}' for a in step.args)})  # {said}")
    kept = [*checked, loss]
    body(f"    _kept = ({''.join(f'v{s}, ' for s in kept)})")

    has = {loss}  # the slots holding a cotangent so far, as `passes.backward` finds them at run time
    body(f"    g{loss} = _seed")
    for s in memory.release_first:
        body(f"    v{s} = None")
    for k, (step, grads) in enumerate(plan.backward_steps):
        if step.out in has:
            body(f"    # back through {_said(step.name)}")
            argv = ", ".join(f"v{a}" for a in step.args)
            pulled = []
            for i, s in grads:
                env[f"r{k}_{i}"] = step.vjp[i]
                body(f"    t = r{k}_{i}(g{step.out}, v{step.out}, {argv})")
                # the cotangent in its arg's shape and dtype, as `passes.pull` does it
                body("    try:")  # free in 3.11 unless it raises: a VJP that returns a Python float
                body(f"      ok = t.shape == v{s}.shape and t.dtype == v{s}.dtype")
                body("    except AttributeError:")
                body("      ok = False")
                body(f"    p{i} = t if ok else _fit(t, v{s})")
                pulled.append((i, s))
            for i, s in pulled:
                body(f"    g{s} = g{s} + p{i}" if s in has else f"    g{s} = p{i}")
                has.add(s)
        body(f"    g{step.out} = None")
        for s in memory.release[k]:
            body(f"    v{s} = None")
    grads = "".join((f"g{s}, " if s in has else "None, ") for s in wrt)
    body(f"    return _kept[-1], ({grads}), _kept[:-1]")
    body("  finally:")
    body("    _reset(_token)")
    source = "\n".join(lines)
    exec(compile(source, f"<graphspec straight-line {plan.names[loss]}>", "exec"), env)
    fn = env["value_and_grad"]
    fn.source = source  # for a person reading what runs
    return fn
