"""The memory schedule: a transformation of the plan's step list, from what each op's VJPs read
(`Op.reads`) and whether its forward can write into a buffer (`Op.into`).

A step may write its result into an argument's buffer when that argument is a node value read
by this step alone, of the result's static shape and dtype, and no VJP reads it (neither its
producer's VJP as "ans" nor this step's VJP as an arg): an MLP's bias add and activation then
write into the matmul's output, as PyTorch's fused addmm and in-place activations do. In the
backward pass, a value is released after the last step that reads it (its shape included), and
a node's cotangent after its own step, so peak memory falls as the pass goes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from .plan import Plan, Step


class MemoryPlan(NamedTuple):
    steps: list[Step]  # the plan's steps, some writing into a dead argument's buffer
    release: list[tuple[int, ...]]  # per backward step: the slots no later step reads
    release_first: tuple[int, ...]  # node slots the backward pass never reads


def _into(forward: Callable[..., Any], p: int) -> Callable[..., Any]:
    """A forward that writes into its argument ``p``'s buffer when it owns one; it falls back to a
    fresh result when the run-time shapes broadcast past the buffer (numpy checks the shapes
    before it writes anything)."""
    def step(*args: Any) -> Any:
        buf = args[p]
        if type(buf) is np.ndarray and buf.base is None and buf.flags.writeable:
            try:
                return forward(*args, out=buf)
            except ValueError:
                pass
        return forward(*args)
    return step


def _writes_into(plan: Plan, step: Step, uses: list[int], backward: list[bool]) -> int | None:
    """The position of the arg whose buffer ``step`` may write its result into, if any."""
    avals, first, op = plan.avals, plan.first_node, step.op
    if avals is None or not op.into or avals.get(step.name) is None or avals[step.name].shape is None:
        return None
    for p, s in enumerate(step.args):
        if s < first or uses[s] != 1 or s in plan.keep or avals.get(plan.names[s]) != avals[step.name]:
            continue
        if backward[s] and plan.steps[s - first].op.reads_value("ans"):
            continue
        if backward[step.out] and (p >= len(op.args) or op.reads_value(op.args[p])):
            continue
        return p
    return None


def schedule(plan: Plan) -> MemoryPlan:
    first, n = plan.first_node, len(plan.names)  # plan.steps[s - first] makes slot s
    uses = [0] * n
    for step in plan.steps:
        for a in step.args:
            uses[a] += 1
    backward = [False] * n  # the steps whose VJPs run
    for step, _ in plan.backward_steps:
        backward[step.out] = True
    steps = list(plan.steps)
    for k, step in enumerate(plan.steps):
        p = _writes_into(plan, step, uses, backward)
        if p is not None:
            steps[k] = step._replace(forward=_into(step.forward, p))
    last = [-1] * n  # the last backward step that reads each slot
    for i, (step, _) in enumerate(plan.backward_steps):
        last[step.out] = i
        for s in step.args:
            last[s] = i
    done: list[list[int]] = [[] for _ in plan.backward_steps]
    for s in range(first, n):
        if last[s] >= 0 and s not in plan.keep:
            done[last[s]].append(s)
    return MemoryPlan(steps, [tuple(d) for d in done],
                      tuple(s for s in range(first, n) if last[s] < 0 and s not in plan.keep))
