"""`python -m graphspec explain`: the forward and the backward pass step by step, the chain
rule with numbers, as a lecture writes it: dL/dx = dL/dz · ∂z/∂x = 5 × 3 = 15.

The steps are built once as data (`ForwardStep`, `Step`, `Term`: each node's upstream gradient,
each arg's local gradient, rule, shapes and contribution, and the running sum where a value fans
out); the text, the markdown and the HTML step-through (graphspec/html.py) are read off them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _callable
from .api import Finding, Graph, Result
from .inline import call_of
from .passes import pull
from .render import fmt_num, fmt_value

_callable(__name__)  # graphspec.explain(...) is this module's explain(), imported or not

SMALL = 6  # arrays up to this many elements are written out on the line
FULL = 64  # matrices (rank <= 2) up to this many elements are written out in full below the line


def _v(x: Any) -> str:
    """A value inside a line of the explanation: written out when small, a matrix in full on the
    lines below (a "\\n" in the text), else its shape and norm."""
    a = np.asarray(x)
    if a.size <= SMALL:
        return " ".join(fmt_value(a).split())  # one line, whatever the rank
    if a.size <= FULL and a.ndim <= 2 and a.dtype.kind in "fiub":
        return "\n" + _matrix(a)
    return f"<{'×'.join(map(str, a.shape))} array, norm {fmt_num(np.linalg.norm(a.ravel()))}>"


def _matrix(a: np.ndarray) -> str:
    """A vector or matrix in full, columns aligned."""
    rows = np.atleast_2d(a)
    cells = [[fmt_num(v) for v in row] for row in rows.tolist()]
    width = max(len(c) for row in cells for c in row)
    text = ["[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells]
    if a.ndim == 1:
        return text[0]
    return "\n".join(("[" if i == 0 else " ") + t + ("]" if i == len(text) - 1 else "") for i, t in enumerate(text))


def _shape(a: Any) -> str:
    s = tuple(np.shape(a))
    return f"({s[0]},)" if len(s) == 1 else "(" + ", ".join(map(str, s)) + ")"


@dataclass(frozen=True)
class ForwardStep:
    """One node's forward line: ``name = op(args) = op(values) = value``."""

    name: str
    op: str
    args: list[str]  # names, or constants written out
    arg_values: list[Any]
    value: Any
    call: bool = False  # a folded function call


@dataclass(frozen=True)
class Term:
    """One contribution of a backward step to an arg's gradient."""

    arg: str
    position: int  # the arg's position in the node's args
    local: Any | None  # ∂node/∂arg when the node and the arg are scalars, else None
    product: Any  # the contribution: upstream · local (the VJP's output, in the arg's shape)
    nth: int  # 1 for the arg's first contribution, 2... where a value fans out (a `+=`)
    before: Any | None  # the arg's gradient summed so far (None for the first contribution)
    total: Any  # the running sum after this contribution
    rule: str | None = None  # the op's rule with names: "xᵀ · dL/dxW1"
    shapes: str | None = None  # the rule's shapes: "(2, 3) = (2,)ᵀ · (3,)"
    text: str = ""  # the line of the explanation


@dataclass(frozen=True)
class Step:
    """One node of the backward pass: its upstream gradient dL/dnode and what it gives each arg."""

    node: str
    op: str
    args: list[str]
    upstream: Any
    terms: list[Term]
    text: str = ""  # its line
    lines: list[str] = field(default_factory=list)  # its line, the terms' lines and any hand-written ones
    call: bool = False


@dataclass(frozen=True)
class Explanation:
    lines: list[str]
    nonfinite: list[str]  # each inf/nan found, naming the first node that produced it (also in lines)
    findings: tuple[Finding, ...] = ()  # the same as records (kind, loc, message)
    forward: list[ForwardStep] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # the backward pass, in its order
    gradients: dict[str, Any] = field(default_factory=dict)  # dL/d each wrt leaf
    paths: dict[str, int] = field(default_factory=dict)  # name -> contributions summed into its gradient
    loss: str | None = None
    seed: str | None = None  # how dL/dloss is said: "1 (the loss itself)" or the seed
    graph: Graph | None = field(default=None, compare=False, repr=False)
    result: Result | None = field(default=None, compare=False, repr=False)  # the evaluation explained
    unfold: bool = field(default=False, compare=False, repr=False)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def __str__(self) -> str:
        return self.text

    def markdown(self) -> str:
        return markdown(self)

    def html(self) -> str:
        """The explanation as one self-contained HTML page with the step-through (graphspec/html.py)."""
        from .html import explain_page

        return explain_page(self)

    def _repr_markdown_(self) -> str:  # Jupyter
        return self.markdown()

    def to_json(self) -> dict[str, Any]:
        """The steps as JSON-ready data (the HTML step-through reads this)."""
        from .render import to_json

        def term(t: Term) -> dict[str, Any]:
            return {"arg": t.arg, "position": t.position, "local": None if t.local is None else to_json(t.local),
                    "product": to_json(t.product), "nth": t.nth, "before": None if t.before is None else to_json(t.before),
                    "total": to_json(t.total), "rule": t.rule, "shapes": t.shapes, "text": t.text}

        return {"loss": self.loss, "seed": self.seed,
                "forward": [{"name": f.name, "op": f.op, "args": f.args, "arg_values": [to_json(v) for v in f.arg_values],
                             "value": to_json(f.value), "call": f.call} for f in self.forward],
                "steps": [{"node": s.node, "op": s.op, "args": s.args, "upstream": to_json(s.upstream),
                           "terms": [term(t) for t in s.terms], "text": s.text, "lines": s.lines, "call": s.call}
                          for s in self.steps],
                "gradients": {n: to_json(v) for n, v in self.gradients.items()}, "paths": self.paths,
                "nonfinite": self.nonfinite}


def explain(graph: Graph | str | Path, inputs: Mapping[str, Any] | None = None, *, unfold: bool = False) -> Explanation:
    """The forward and backward pass of a graph (or a spec's path) step by step, with numbers:
    ``.lines`` / ``.text`` as `graphspec explain` prints them, ``.markdown()`` for course notes,
    ``.html()`` the page with the step-through, ``.steps`` the backward pass as data."""
    if not isinstance(graph, Graph):
        from .api import load

        graph = load(graph)
    return explanation(graph, inputs, unfold=unfold)


def explanation(graph: Graph, inputs: Mapping[str, Any] | None = None, *, unfold: bool = False) -> Explanation:
    """The lines, the steps as data, and the non-finite findings apart: the CLI fails on them (exit 1)."""
    result = graph.evaluate(inputs, check_finite="record")  # said in the lines, not warned
    said = [str(f) for f in result.findings]
    forward = _forward(graph, result, unfold)
    lines = ["forward, in topological order:", *(_forward_line(f) for f in forward)]
    steps: list[Step] = []
    paths: dict[str, int] = {}
    seed = None
    if graph.loss is not None:
        s = graph.seed
        seed = "1 (the loss itself)" if s is not None and s.shape == () and s == 1 else f"{_v(s)} (the seed)"
        steps, paths = _backward(graph, result, unfold)
        lines += ["", f"backward, in reverse order; L = {graph.loss}, dL/d{graph.loss} = {seed}:"]
        for step in steps:
            lines += step.lines
        for name in graph.wrt:
            if paths.get(name, 0) > 1:
                lines.append(f"  dL/d{name} = {_v(result.grads[name])} (the sum of {paths[name]} paths)")
        lines += ["", "gradients: " + ", ".join(f"dL/d{n} = {_v(result.grads[n])}" for n in graph.wrt)]
    if said:
        lines += ["", *(f"non-finite: {f}" for f in said)]
    lines = [part for line in lines for part in _indent_blocks(line)]
    gradients = {n: result.grads[n] for n in graph.wrt} if graph.loss is not None else {}
    return Explanation(lines, said, result.findings, forward, steps, gradients, paths, graph.loss, seed, graph, result,
                       unfold)


def _indent_blocks(line: str) -> list[str]:
    """A line with a matrix in it: the matrix's rows on their own lines, under the line's indent + 4."""
    if "\n" not in line:
        return [line]
    head, *rows = line.split("\n")
    pad = " " * (len(head) - len(head.lstrip()) + 4)
    return [head.rstrip(), *(pad + r for r in rows)]


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


def _arg_text(a: Any) -> str:
    return a if isinstance(a, str) else fmt_value(a)


def _forward(graph: Graph, result: Result, unfold: bool) -> list[ForwardStep]:
    nodes = graph.spec.nodes
    calls = {} if unfold else graph.program.calls  # folded: a call is one line, its body inside it
    op_name = {s.name: s.op.name for s in graph.plan.steps}  # a function's name, not its table key
    out = []
    for name in graph.order:
        if call_of(name, calls) is not None and name not in calls:
            continue
        op, node_args = calls.get(name, (op_name.get(name, nodes[name].op), nodes[name].args))
        vals = [result.values[a] if isinstance(a, str) else a for a in node_args]
        out.append(ForwardStep(name, op, [_arg_text(a) for a in node_args], vals, result.values[name], name in calls))
    return out


def _forward_line(f: ForwardStep) -> str:
    args, vals = ", ".join(f.args), ", ".join(_v(v) for v in f.arg_values)
    if "\n" in vals:  # a matrix among the args: the values are on the lines of the args' own nodes
        return f"  {f.name} = {f.op}({args}) = {_v(f.value)}"
    return f"  {f.name} = {f.op}({args}) = {f.op}({vals}) = {_v(f.value)}"


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*ᵀ?")


def _rule(op: Any, i: int, node: str, args: list[Any], argv: list[Any], g: Any, ans: Any) -> tuple[str | None, str | None]:
    """The op's rule for arg i with the graph's names (``xᵀ · dL/dxW1``), and, for a matrix
    product, its shapes with the actual sizes (``(2, 3) = (2,)ᵀ · (3,)``)."""
    rules = getattr(op, "rules", ())
    if i >= len(rules) or not rules[i]:
        return None, None
    rule = rules[i]
    names = {n: (args[k], argv[k]) for k, n in enumerate(op.args) if k < len(args)}
    names["g"] = (f"dL/d{node}", g)
    names["ans"] = (node, ans)

    def named(m: re.Match[str]) -> str:
        word, t = (m.group()[:-1], "ᵀ") if m.group().endswith("ᵀ") else (m.group(), "")
        return _arg_text(names[word][0]) + t if word in names else m.group()

    def shaped(m: re.Match[str]) -> str:
        word, t = (m.group()[:-1], True) if m.group().endswith("ᵀ") else (m.group(), False)
        if word not in names:
            return m.group()
        s = tuple(np.shape(names[word][1]))
        if t and len(s) >= 2:
            return _shape(np.empty((*s[:-2], s[-1], s[-2]), dtype=bool))
        return _shape(names[word][1]) + ("ᵀ" if t else "")

    text = _TOKEN.sub(named, rule)
    if "·" not in rule:  # elementwise rules keep their shapes: the line says the values
        return text, None
    return text, f"{_shape(argv[i])} = {_TOKEN.sub(shaped, rule)}"


def _broadcast(step: Any, i: int, g: Any, ans: Any, argv: list[Any]) -> bool:
    """Whether the op's rule gives more elements than arg i has: the arg was broadcast and its
    cotangent summed back to its shape."""
    try:
        return bool(np.size(step.vjp[i](g, ans, *argv)) > np.size(argv[i]))
    except Exception:  # the rule already ran in `pull`; a failure here is not the explanation's to report
        return False


def slot_value(graph: Graph, result: Result, slot: int) -> Any:
    """A slot's value in an evaluation: a constant of args, or what evaluate computed."""
    plan = graph.plan
    return plan.template[slot] if plan.template[slot] is not None else result.values[plan.names[slot]]


def wire_gradients(graph: Graph, result: Result, calls: Mapping[str, Any],
                   calls_only: bool = False) -> dict[tuple[str, str], Any]:
    """(gate, arg) -> the gradient flowing back along that wire: the gate's contribution to dL/darg. A
    folded call (in ``calls``) is one gate: its body's VJPs summed per outside arg. ``calls_only``:
    the calls' wires alone."""
    plan = graph.plan
    out: dict[tuple[str, str], Any] = {}
    for step, grads in plan.backward_steps_all:
        g = result.grads.get(step.name)
        if g is None:
            continue
        call = call_of(step.name, calls)
        if calls_only and call is None:
            continue
        argv = [slot_value(graph, result, a) for a in step.args]
        for s, gi in pull(step, g, result.values[step.name], argv, grads):
            arg = plan.names[s]
            if call is not None and call_of(arg, calls) == call:
                continue  # inside the call: no wire of the folded picture
            key = (call or step.name, arg)
            out[key] = gi if key not in out else out[key] + gi
    return out


def _backward(graph: Graph, result: Result, unfold: bool) -> tuple[list[Step], dict[str, int]]:
    nodes = graph.spec.nodes
    calls = {} if unfold else graph.program.calls
    plan = graph.plan
    contributions: dict[str, int] = {}
    running: dict[str, Any] = {}

    def value(slot: int) -> Any:
        return slot_value(graph, result, slot)

    def add(arg: str, contribution: Any) -> tuple[int, Any, Any, str]:
        contributions[arg] = contributions.get(arg, 0) + 1
        before = running.get(arg)
        running[arg] = contribution if before is None else before + contribution
        return contributions[arg], before, running[arg], "+=" if contributions[arg] > 1 else "="

    folded: dict[str, dict[str, Any]] = {}  # call -> its external args' summed contributions
    if calls:
        for (gate, arg), gi in wire_gradients(graph, result, calls, calls_only=True).items():
            if gate in calls:
                folded.setdefault(gate, {})[arg] = gi

    steps: list[Step] = []
    # every node on the loss's path, as evaluate computed them (not only those above a wrt leaf)
    for step, grads in plan.backward_steps_all:
        g = result.grads.get(step.name)
        if g is None:
            continue
        call = call_of(step.name, calls)
        if call is not None:  # a folded call: said once, at its own node
            if step.name == call:
                fn, call_args = calls[call]
                head = f"  {call} = {fn}({', '.join(_arg_text(a) for a in call_args)}), dL/d{call} = {_v(g)}"
                terms, lines = [], [head]
                for arg, contribution in folded.get(call, {}).items():
                    nth, before, total, op = add(arg, contribution)
                    text = f"    dL/d{arg} {op} {fn} VJP of dL/d{call} = {_v(contribution)}"
                    pos = next((k for k, a in enumerate(call_args) if a == arg), -1)
                    terms.append(Term(arg, pos, None, contribution, nth, before, total, f"{fn} VJP of dL/d{call}", None, text))
                    lines.append(text)
                steps.append(Step(call, fn, [_arg_text(a) for a in call_args], g, terms, head, lines, call=True))
            continue
        argv = [value(a) for a in step.args]
        ans = result.values[step.name]
        node = nodes[step.name]
        head = f"  {step.name} = {step.op.name}({', '.join(_arg_text(a) for a in node.args)}), dL/d{step.name} = {_v(g)}"
        lines = [head, *_hand_written(step, g, argv)]
        scalar = np.size(g) == 1 and np.size(ans) == 1
        ones = [gi for _, gi in pull(step, np.ones_like(np.asarray(g)), ans, argv, grads)] if scalar else None
        terms = []
        for k, ((i, _), (_, contribution)) in enumerate(zip(grads, pull(step, g, ans, argv, grads), strict=True)):
            local = ones[k] if ones else None
            arg = node.args[i]
            nth, before, total, op = add(arg, contribution)
            rule, shapes = _rule(step.op, i, step.name, list(node.args), argv, g, ans)
            if rule is not None and shapes is None and np.size(argv[i]) > 1 and _broadcast(step, i, g, ans, argv):
                rule += f", summed to {_shape(argv[i])}"  # the arg was broadcast: its cotangent is summed back
            if local is not None and np.size(argv[i]) == 1:
                text = (f"    dL/d{arg} {op} dL/d{step.name} · ∂{step.name}/∂{arg} = {_v(g)} × {_v(local)}"
                        f" = {_v(contribution)}")
            elif rule is not None and shapes is not None:
                text = f"    dL/d{arg} {op} {rule}, {shapes}: {_v(contribution)}"
            elif rule is not None:
                text = f"    dL/d{arg} {op} {rule} = {_v(contribution)}"
            else:
                rule = f"{step.op.name} VJP of dL/d{step.name}"
                text = f"    dL/d{arg} {op} {rule} = {_v(contribution)}"
            terms.append(Term(arg, i, local if np.size(argv[i]) == 1 else None, contribution, nth, before, total,
                              rule, shapes, text))
            lines.append(text)
        steps.append(Step(step.name, step.op.name, [_arg_text(a) for a in node.args], g, terms, head, lines))
    return steps, contributions


# ---------------------------------------------------------------------------------------------
# markdown, for course notes


def _md_value(x: Any, indent: int = 0) -> str:
    """A value in a list item: inline code, or a matrix (more than one row) in full as a code block
    indented into the item."""
    a = np.asarray(x)
    text = _v(a)
    if a.ndim == 2 and a.shape[0] > 1 and a.size <= FULL and a.dtype.kind in "fiub":
        text = "\n" + _matrix(a)
    if "\n" not in text:
        return f"`{text}`"
    pad = " " * indent
    return "\n\n" + "\n".join(pad + line for line in ["```", *text.strip().split("\n"), "```"]) + "\n"


def markdown(ex: Explanation) -> str:
    """The explanation as markdown: the forward pass, then each backward step with its rule, shapes
    and numbers, matrices in full as code blocks."""
    g = ex.graph
    title = (g.spec.name if g is not None and g.spec.name else None) or (g.program.source if g is not None else None)
    out = [f"## The chain rule, step by step{': ' + title if title else ''}", ""]
    if g is not None and g.spec.description:
        out += [g.spec.description, ""]
    out += ["### Forward pass", ""]
    for f in ex.forward:
        out.append(f"- `{f.name} = {f.op}({', '.join(f.args)})` = {_md_value(f.value, 2)}")
    if ex.loss is not None:
        out += ["", f"### Backward pass (L = `{ex.loss}`, dL/d{ex.loss} = {ex.seed})", ""]
        for s in ex.steps:
            out.append(f"- **`{s.node}`** = `{s.op}({', '.join(s.args)})`, dL/d{s.node} = {_md_value(s.upstream, 2)}")
            for t in s.terms:
                eq = "+=" if t.nth > 1 else "="
                if t.local is not None and np.size(t.product) == 1:
                    out.append(f"  - `dL/d{t.arg} {eq} dL/d{s.node} · ∂{s.node}/∂{t.arg} = {_v(s.upstream)} × {_v(t.local)}"
                               f" = {_v(t.product)}`")
                else:
                    shapes = f", `{t.shapes}`" if t.shapes else ""
                    out.append(f"  - `dL/d{t.arg} {eq} {t.rule}`{shapes} = {_md_value(t.product, 4)}".rstrip())
                if t.nth > 1:
                    out.append(f"    (a fan-out: dL/d{t.arg} so far {_md_value(t.before, 4)}, now {_md_value(t.total, 4)})")
        out += ["", "### Gradients", ""]
        for n, v in ex.gradients.items():
            paths = f" (the sum of {ex.paths[n]} paths)" if ex.paths.get(n, 0) > 1 else ""
            out.append(f"- dL/d{n} = {_md_value(v, 2)}{paths}")
    if ex.nonfinite:
        out += ["", *(f"> non-finite: {f}" for f in ex.nonfinite)]
    return "\n".join(line.rstrip() for line in "\n".join(out).split("\n")).rstrip() + "\n"
