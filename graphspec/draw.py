"""`python -m graphspec draw`: the graph as Graphviz DOT, micrograd's `draw_dot` style: one
record per value `{ name | value | grad }`, ops as small ovals, left to right, coloured by
role (inputs, params, outputs). DOT is text and needs no Graphviz; .svg/.png need `dot`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from .api import Graph
from .errors import UsageError
from .files import write_atomic
from .render import fmt_value

COLOURS = {"inputs": "#dbeafe", "params": "#fde68a", "nodes": "#ffffff", "outputs": "#bbf7d0"}


def _esc(text: str) -> str:
    return "".join("\\" + c if c in '{}|<>"\\' else c for c in text).replace("\n", " ")


def _short(v: object) -> str:
    a = np.asarray(v)
    return fmt_value(a) if a.size <= 4 else f"shape {tuple(a.shape)}"


def _inside(name: str, calls: dict[str, Any]) -> bool:
    """A node or leaf written out inside a function call (``h1/z``, ``h1/inner/m``)."""
    return "/" in name and name.split("/", 1)[0] in calls


def to_dot(graph: Graph, values: bool = True, unfold: bool = False) -> str:
    """The graph as DOT. A function's call is one box (its op the function) unless ``unfold``: then
    the body's nodes are drawn too, named by path (``h1/z``)."""
    result = graph.evaluate() if values else None
    p = graph.program
    folded = {} if unfold else p.calls
    op_name = {s.name: s.op.name for s in p.plan.steps}  # a function's name, not its table key
    lines = ["digraph graphspec {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    shown = [n for n in [*p.leaves, *p.order] if not _inside(n, folded)]
    for name in shown:
        kind = p.kind.get(name, "nodes")
        role = "outputs" if name in p.outputs or name == p.loss else kind
        shape = p.avals[name].shape if name in p.avals else None
        fields = [f"{name} {tuple(shape) if shape is not None else ''}"]
        if result is not None:
            fields.append(f"value {_short(result.values[name])}")
            if name in result.grads:
                fields.append(f"grad {_short(result.grads[name])}")
        label = " | ".join(_esc(f) for f in fields)
        lines.append(f'  "{name}" [shape=record, style=filled, fillcolor="{COLOURS[role]}", label="{{ {label} }}"];')
    for name in p.order:
        if _inside(name, folded):
            continue
        node = p.spec.nodes[name]
        op, args = folded.get(name, (op_name.get(name, node.op), node.args))
        op_id = f"{name}__op"
        box = ", style=rounded, shape=box" if name in folded else ", shape=ellipse"  # a call: one box
        lines.append(f'  "{op_id}" [label="{_esc(op)}"{box}, fontsize=9, height=0.3];')
        for i, a in enumerate(args):
            if isinstance(a, str):
                port = f' [label="{i}", fontsize=8]' if len(args) > 1 else ""  # arg order matters for sub, div
                lines.append(f'  "{a}" -> "{op_id}"{port};')
            else:
                const = f"{name}__c{i}"
                lines.append(f'  "{const}" [label="{_esc(fmt_value(a))}", shape=plaintext];')
                lines.append(f'  "{const}" -> "{op_id}";')
        lines.append(f'  "{op_id}" -> "{name}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def check_drawing_path(path: Path) -> str:
    """The format of an -o path (its suffix), checked before any work: known, and Graphviz there for images."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("dot", "gv", "svg", "png", "pdf"):
        raise UsageError(f"-o {path}: write .dot, .svg, .png or .pdf")
    if fmt not in ("dot", "gv") and shutil.which("dot") is None:
        raise UsageError(f"-o {path}: images need Graphviz's `dot` program; write .dot instead")
    return fmt


def write_drawing(dot: str, path: Path) -> None:
    """DOT as text, or an image through Graphviz; written atomically (temp file + rename)."""
    fmt = check_drawing_path(path)
    if fmt in ("dot", "gv"):
        data = dot.encode()
    else:
        exe = shutil.which("dot")
        if exe is None:
            raise UsageError(f"-o {path}: images need Graphviz's `dot` program; write .dot instead")
        data = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=True).stdout
    write_atomic(path, data)
