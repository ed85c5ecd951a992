"""`python -m graphspec explain`: the forward and the backward pass step by step, the chain
rule with numbers, as a lecture writes it: dL/dx = dL/dz · ∂z/∂x = 5 × 3 = 15."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .api import Finding, Graph, Result
from .passes import pull
from .render import fmt_num, fmt_value

SMALL = 6  # arrays up to this many elements are written out


def _v(x: Any) -> str:
    """A value inside a line of the explanation: written out when small, else its shape and norm."""
    a = np.asarray(x)
    if a.size <= SMALL:
        return " ".join(fmt_value(a).split())  # one line, whatever the rank
    return f"<{'×'.join(map(str, a.shape))} array, norm {fmt_num(np.linalg.norm(a.ravel()))}>"


def _args(graph: Graph, name: str, result: Result) -> list[Any]:
    return [result.values[a] if isinstance(a, str) else a for a in graph.spec.nodes[name].args]


@dataclass(frozen=True)
class Explanation:
    lines: list[str]
    nonfinite: list[str]  # each inf/nan found, naming the first node that produced it (also in lines)
    findings: tuple[Finding, ...] = ()  # the same as records (kind, loc, message)


def explain(graph: Graph, inputs: Mapping[str, Any] | None = None, *, unfold: bool = False) -> list[str]:
    """The lines of the explanation (a non-finite value or gradient is said in them)."""
    return explanation(graph, inputs, unfold=unfold).lines


def explanation(graph: Graph, inputs: Mapping[str, Any] | None = None, *, unfold: bool = False) -> Explanation:
    """The lines, and the non-finite findings apart: the CLI fails on them (exit 1)."""
    result = graph.evaluate(inputs, check_finite="record")  # said in the lines, not warned
    said = [str(f) for f in result.findings]
    lines = _lines(graph, result, unfold)
    if said:
        lines += ["", *(f"non-finite: {f}" for f in said)]
    return Explanation(lines, said, result.findings)


def _hand_written(step: Any, g: Any, argv: list[Any]) -> list[str]:
    """A function's backward written by hand, node by node with its numbers (g: the call's cotangent)."""
    from .inline import WALKS

    found = WALKS.get(id(step.op))
    if found is None:
        return []
    walk, grads = found
    lines = [f"    the backward written by hand in function '{step.op.name}', with g = dL/d{step.name}:"]
    for name, node, value in walk(g, argv):
        args = ", ".join(a if isinstance(a, str) else fmt_value(a) for a in node.args)
        lines.append(f"      {name} = {node.op}({args}) = {_v(value)}")
    given = [f"{a} <- {t}" for a, t in grads.items() if t is not None]
    if given:
        lines.append("      grads: " + ", ".join(given))
    return lines


def _call_of(name: str, calls: Mapping[str, Any]) -> str | None:
    """The function call a written-out node belongs to (``h1`` for ``h1/z`` and for ``h1``), if any."""
    head = name.split("/", 1)[0]
    return head if head in calls else None


def _lines(graph: Graph, result: Result, unfold: bool = False) -> list[str]:
    nodes = graph.spec.nodes
    calls = {} if unfold else graph.program.calls  # folded: a call is one line, its body inside it
    op_name = {s.name: s.op.name for s in graph.plan.steps}  # a function's name, not its table key
    lines = ["forward, in topological order:"]
    for name in graph.order:
        if _call_of(name, calls) is not None and name not in calls:
            continue
        op, node_args = calls.get(name, (op_name.get(name, nodes[name].op), nodes[name].args))
        args = ", ".join(a if isinstance(a, str) else fmt_value(a) for a in node_args)
        vals = ", ".join(_v(result.values[a] if isinstance(a, str) else a) for a in node_args)
        lines.append(f"  {name} = {op}({args}) = {op}({vals}) = {_v(result.values[name])}")
    if graph.loss is None:
        return lines
    seed = graph.seed
    given = "1 (the loss itself)" if seed is not None and seed.shape == () and seed == 1 else f"{_v(seed)} (the seed)"
    lines += ["", f"backward, in reverse order; L = {graph.loss}, dL/d{graph.loss} = {given}:"]
    plan = graph.plan
    contributions: dict[str, int] = {}

    def value(slot: int) -> Any:  # a constant of args, or a value evaluate computed
        return plan.template[slot] if plan.template[slot] is not None else result.values[plan.names[slot]]

    folded: dict[str, dict[str, Any]] = {}  # call -> its external args' summed contributions
    for step, grads in plan.backward_steps_all:  # a folded call's steps: their VJPs summed per outside arg
        call = _call_of(step.name, calls)
        g = result.grads.get(step.name)
        if call is None or g is None:
            continue
        argv = [value(a) for a in step.args]
        for s, gi in pull(step, g, result.values[step.name], argv, grads):
            arg = plan.names[s]
            if _call_of(arg, calls) != call:
                sums = folded.setdefault(call, {})
                sums[arg] = gi if arg not in sums else sums[arg] + gi

    # every node on the loss's path, as evaluate computed them (not only those above a wrt leaf)
    for step, grads in plan.backward_steps_all:
        g = result.grads.get(step.name)
        if g is None:
            continue
        call = _call_of(step.name, calls)
        if call is not None:  # a folded call: said once, at its own node
            if step.name == call:
                fn, call_args = calls[call]
                lines.append(f"  {call} = {fn}({', '.join(a if isinstance(a, str) else fmt_value(a) for a in call_args)}),"
                             f" dL/d{call} = {_v(g)}")
                for arg, contribution in folded.get(call, {}).items():
                    contributions[arg] = contributions.get(arg, 0) + 1
                    op = "+=" if contributions[arg] > 1 else "="
                    lines.append(f"    dL/d{arg} {op} {fn} VJP of dL/d{call} = {_v(contribution)}")
            continue
        argv = [value(a) for a in step.args]
        ans = result.values[step.name]
        node = nodes[step.name]
        lines.append(f"  {step.name} = {step.op.name}({', '.join(a if isinstance(a, str) else fmt_value(a) for a in node.args)}),"
                     f" dL/d{step.name} = {_v(g)}")
        lines += _hand_written(step, g, argv)
        scalar = np.size(g) == 1 and np.size(ans) == 1
        ones = [gi for _, gi in pull(step, np.ones_like(np.asarray(g)), ans, argv, grads)] if scalar else None
        for k, ((i, _), (_, contribution)) in enumerate(zip(grads, pull(step, g, ans, argv, grads), strict=True)):
            local = ones[k] if ones else None
            arg = node.args[i]
            contributions[arg] = contributions.get(arg, 0) + 1
            op = "+=" if contributions[arg] > 1 else "="
            if local is not None and np.size(argv[i]) == 1:
                lines.append(f"    dL/d{arg} {op} dL/d{step.name} · ∂{step.name}/∂{arg} = {_v(g)} × {_v(local)}"
                             f" = {_v(contribution)}")
            else:
                lines.append(f"    dL/d{arg} {op} {step.op.name} VJP of dL/d{step.name} = {_v(contribution)}")
    for name in graph.wrt:
        if contributions.get(name, 0) > 1:
            lines.append(f"  dL/d{name} = {_v(result.grads[name])} (the sum of {contributions[name]} paths)")
    lines += ["", "gradients: " + ", ".join(f"dL/d{n} = {_v(result.grads[n])}" for n in graph.wrt)]
    return lines
