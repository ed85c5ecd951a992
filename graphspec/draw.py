"""`python -m graphspec draw`: the graph as Graphviz DOT, drawn as the lecture draws a circuit.

Gates are the nodes (an op, or one box per function call); the inputs and params are where the
wires start. Each wire carries its value above it (green) and, below it, the gradient that flows
back along it (red: that consumer's contribution to dL/dvalue, so a fan-out's branches show the
parts that add up). A wire is a small label node whose middle row is the wire itself, so the
numbers sit exactly above and below it whatever Graphviz does with edge labels. DOT is text and
needs nothing; .svg/.png/.pdf go through Graphviz's `dot` (docs/drawing.md says why that engine).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _callable
from .api import Graph
from .errors import UsageError
from .explain import slot_value, wire_gradients
from .files import write_atomic
from .inline import call_of
from .passes import pull
from .render import fmt_num, fmt_value

_callable(__name__)  # graphspec.draw(...) is this module's draw(), imported or not

FORMATS = ("dot", "gv", "svg", "png", "pdf")
RANKDIRS = ("auto", "LR", "TB")
COLLAPSE = 8  # a run of more than this many single-in single-out nodes is drawn as one box
SMALL = 4  # tensors up to SMALL x SMALL are drawn as matrices
AUTO_LR_DEPTH = 6  # rankdir auto: left to right up to this many gates deep (the lecture's circuits), else top to bottom

FILL = {"inputs": "#dbeafe", "params": "#fde68a", "nodes": "#f3f4f6", "loss": "#fecaca", "outputs": "#bbf7d0"}
ROLE_NAMES = {"inputs": "input", "params": "param", "nodes": "op", "loss": "loss", "outputs": "output"}
CHECK_FILL = {"PASS": "#86efac", "FAIL": "#fca5a5", "KINK": "#fdba74", "BLAMED": "#ef4444", "unchecked": "#e5e7eb"}
CHECK_NAMES = {"PASS": "pass", "FAIL": "gradient fails", "KINK": "kink", "BLAMED": "blamed (own VJP wrong)",
               "unchecked": "not checked"}
VALUE, GRAD, LOCAL = "#15803d", "#b91c1c", "#1d4ed8"


@dataclass
class _Wire:
    """One wire into a gate (or out of the loss or an output): where from, where to, its numbers."""

    src: str
    dst: str
    value: Any = None
    grad: Any = None
    local: str = ""
    position: str = ""  # the arg position(s), for a gate with more than one arg


@dataclass
class _Picture:
    gates: list[str] = field(default_factory=list)
    args: dict[str, list[tuple[str, list[int]]]] = field(default_factory=dict)  # gate -> (arg, positions)
    consts: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # gate -> constant args


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _inside(name: str, calls: Mapping[str, Any]) -> bool:
    """A node or leaf written out inside a function call (``h1/z``, ``h1/inner/m``), not the call itself."""
    return call_of(name, calls) not in (None, name)


def _matrix(a: np.ndarray, colour: str) -> str:
    rows = a.reshape(1, -1) if a.ndim == 1 else a
    cells = "".join("<TR>" + "".join(f'<TD ALIGN="RIGHT">{_e(fmt_num(x.item(), 4))}</TD>' for x in row) + "</TR>"
                    for row in rows)
    return (f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="1" COLOR="{colour}">{cells}</TABLE>')


def _numbers(v: Any, colour: str, grad: bool = False) -> str:
    """A value or a gradient as a label cell's content: a number, a small matrix, or a shape and summary."""
    a = np.asarray(v)
    font = f'<FONT COLOR="{colour}" POINT-SIZE="10">'
    if a.ndim == 0:
        return f"{font}{_e(fmt_num(a.item(), 4))}</FONT>"
    if a.ndim <= 2 and all(d <= SMALL for d in a.shape) and a.size:
        return f'<FONT COLOR="{colour}" POINT-SIZE="9">{_matrix(a, colour)}</FONT>'
    shape = "×".join(map(str, a.shape))
    if a.size == 0:
        return f"{font}{shape} (empty)</FONT>"
    if a.dtype.kind in "iub":
        summary = f"min {a.min()} max {a.max()}"
    elif grad:
        summary = f"‖g‖ {fmt_num(np.linalg.norm(a.ravel()), 4)}, max|g| {fmt_num(np.abs(a).max(), 4)}"
    else:
        summary = f"min {fmt_num(a.min(), 4)} mean {fmt_num(a.mean(), 4)} max {fmt_num(a.max(), 4)}"
    return f"{font}{shape}<BR/>{_e(summary)}</FONT>"


def _one_line(name: str, v: Any, grad: bool) -> str:
    """A value or gradient inside a node's label, on one line: the number, or a summary."""
    a = np.asarray(v)
    what = f"dL/d{name}" if grad else name
    if a.ndim == 0:
        return f"{what} = {fmt_num(a.item(), 4)}"
    if grad and a.size and a.dtype.kind == "f":
        return f"{what}: ‖g‖ {fmt_num(np.linalg.norm(a.ravel()), 4)}"
    return f"{what}: {'×'.join(map(str, a.shape))}"


def _wire_label(w: _Wire, lr: bool) -> str:
    """The wire's label node: value, the wire itself (port w), gradient and local gradient, so that the
    numbers are above and below the wire (left to right) or left and right of it (top to bottom)."""
    above = _numbers(w.value, VALUE) if w.value is not None else ""
    below = [_numbers(w.grad, GRAD, grad=True)] if w.grad is not None else []
    if w.local:
        below.append(f'<FONT COLOR="{LOCAL}" POINT-SIZE="9">{_e(w.local)}</FONT>')
    if w.position:
        below.append(f'<FONT COLOR="#6b7280" POINT-SIZE="8">{_e(w.position)}</FONT>')
    if lr:
        if above and not below:
            below = [" "]  # an empty row, so the wire stays between its value and nothing
        rows = [f"<TR><TD>{above}</TD></TR>" if above else "",
                '<TR><TD PORT="w" HEIGHT="1" CELLPADDING="0" BGCOLOR="black"></TD></TR>',
                *(f"<TR><TD>{b}</TD></TR>" for b in below)]
        body = "".join(rows)
    else:
        left = f"<TD>{above}</TD>" if above else ""
        rows = "".join(f'<TR><TD ALIGN="LEFT">{b}</TD></TR>' for b in below)
        right = f'<TD><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{rows}</TABLE></TD>' if below else ""
        body = f'<TR>{left}<TD PORT="w" WIDTH="1" CELLPADDING="0" BGCOLOR="black"></TD>{right}</TR>'
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{body}</TABLE>>'


def _local_text(node: str, arg: str, local: Any, out_shape: Any, arg_shape: Any) -> str:
    """∂out/∂arg at this gate: the number for scalars, else what the Jacobian is."""
    if local is not None:
        return f"∂{node}/∂{arg} = {fmt_num(np.asarray(local).item(), 4)}"
    o = "×".join(map(str, out_shape)) or "scalar"
    a = "×".join(map(str, arg_shape)) or "scalar"
    return f"∂{node}/∂{arg}: a ({o})×({a}) Jacobian"


def _local_gradients(graph: Graph, result: Any, calls: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """(gate, arg) -> the local gradient ∂gate/∂arg where both are scalars (a VJP of 1); a folded
    call's, its body's VJPs of 1 summed per outside arg."""
    plan = graph.plan
    values = result.values
    local: dict[tuple[str, str], Any] = {}
    inner_ct: dict[str, dict[str, Any]] = {c: {} for c in calls}  # call -> body cotangents seeded with 1
    for step, grads in plan.backward_steps_all:
        call = call_of(step.name, calls)
        argv = [slot_value(graph, result, a) for a in step.args]
        ans = values[step.name]
        if call is None:
            if np.size(ans) == 1:
                for (i, s), (_, li) in zip(grads, pull(step, np.ones_like(np.asarray(ans, float)), ans, argv, grads),
                                           strict=True):
                    if np.size(argv[i]) == 1:
                        key = (step.name, plan.names[s])
                        local[key] = li if key not in local else local[key] + li
            continue
        cts = inner_ct[call]
        if step.name == call:
            if np.size(ans) != 1:
                continue
            cts[call] = np.ones_like(np.asarray(ans, float))
        u = cts.get(step.name)
        if u is None:
            continue
        for s, li in pull(step, u, ans, argv, grads):
            arg = plan.names[s]
            if call_of(arg, calls) == call:
                cts[arg] = li if arg not in cts else cts[arg] + li
            elif np.size(li) == 1:
                key = (call, arg)
                local[key] = li if key not in local else local[key] + li
    return local

def _structure(graph: Graph, calls: Mapping[str, Any]) -> _Picture:
    p = graph.program
    pic = _Picture()
    for name in p.order:
        if _inside(name, calls):
            continue
        node = p.spec.nodes[name]
        args = calls[name][1] if name in calls else node.args
        pic.gates.append(name)
        named: dict[str, list[int]] = {}
        for i, a in enumerate(args):
            if isinstance(a, str):
                named.setdefault(a, []).append(i)
            else:
                pic.consts.setdefault(name, []).append((i, a))
        pic.args[name] = list(named.items())
    return pic


def _chains(pic: _Picture, graph: Graph, keep: set[str], threshold: int) -> dict[str, str]:
    """gate -> the box it is collapsed into: each run of more than ``threshold`` gates, each with one
    gate among its args (its other args leaves only it reads, or constants) and one consumer, drawn
    as one box between the run's first and last gate."""
    if threshold <= 0:
        return {}
    gates = set(pic.gates)
    users: dict[str, list[str]] = {}
    for g in pic.gates:
        for a, _ in pic.args[g]:
            users.setdefault(a, []).append(g)
    leaves = set(graph.program.leaves)

    def prev(g: str) -> str | None:  # the one gate feeding g, when g is a link of a chain
        feeds = [a for a, pos in pic.args[g] if a in gates]
        if len(feeds) != 1 or len(dict(pic.args[g])[feeds[0]]) != 1:
            return None
        if any(a not in gates and (a not in leaves or len(users.get(a, [])) != 1) for a, _ in pic.args[g]):
            return None
        f = feeds[0]
        return f if users.get(f) == [g] and f not in keep else None

    nxt: dict[str, str] = {}
    for g in pic.gates:
        f = prev(g)
        if f is not None and g not in keep:
            nxt[f] = g
    heads = [g for g in nxt if g not in set(nxt.values())]
    boxes: dict[str, str] = {}
    for h in heads:
        run = [h]
        while run[-1] in nxt:
            run.append(nxt[run[-1]])
        inner = run[1:-1]  # the first and last gates stay drawn: the wires in and out keep their names
        if len(inner) > threshold:
            box = f"{inner[0]}__chain"
            boxes.update((g, box) for g in inner)
    return boxes


def _rankdir(pic: _Picture, hidden: set[str]) -> str:
    depth: dict[str, int] = {}
    for g in pic.gates:
        if g not in hidden:
            depth[g] = 1 + max((depth.get(a, 0) for a, _ in pic.args[g]), default=0)
    return "LR" if max(depth.values(), default=0) <= AUTO_LR_DEPTH else "TB"


def _legend(roles: set[str], check: bool, values: bool, local: bool, lr: bool) -> str:
    def swatch(colour: str, text: str, bold: bool = False) -> str:
        border = ' COLOR="#b91c1c"' if bold else ""
        return (f'<TD BGCOLOR="{colour}" WIDTH="14" HEIGHT="10" BORDER="1"{border}> </TD>'
                f'<TD ALIGN="LEFT"><FONT POINT-SIZE="9">{_e(text)}</FONT></TD>')

    cells = []
    if check:
        cells += [swatch(CHECK_FILL[k], CHECK_NAMES[k], k == "BLAMED") for k in CHECK_FILL]
    else:
        cells += [swatch(FILL[r], ROLE_NAMES[r]) for r in FILL if r in roles]
    if values:
        above, below = ("above", "below") if lr else ("left of", "right of")
        cells.append(f'<TD COLSPAN="2"><FONT POINT-SIZE="9" COLOR="{VALUE}">value {above} the wire</FONT></TD>')
        cells.append(f'<TD COLSPAN="2"><FONT POINT-SIZE="9" COLOR="{GRAD}">dL/d(value) {below} it</FONT></TD>')
    if local:
        cells.append(f'<TD COLSPAN="2"><FONT POINT-SIZE="9" COLOR="{LOCAL}">local gradient at the gate</FONT></TD>')
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1"><TR>' + "".join(cells)
            + "</TR></TABLE>>")


def to_dot(graph: Graph, values: bool = True, unfold: bool = False, *, local: bool = False,
           check: bool | Any = False, rankdir: str = "auto", collapse: int = COLLAPSE,
           inputs: Mapping[str, Any] | None = None, result: Any = None) -> str:
    """The graph as DOT, drawn as a circuit. A function's call is one box unless ``unfold`` (then the
    body's nodes are drawn, named by path, ``h1/z``). ``values``: run the graph and write each wire's
    value and gradient; ``local``: also each gate's local gradient ∂gate/∂arg; ``check``: colour the
    nodes by a gradient check (True runs `gradcheck` with blame on; a `Report` is used as it is);
    ``rankdir``: LR, TB or auto (LR up to `AUTO_LR_DEPTH` gates deep); ``collapse``: runs of more than
    this many single-in single-out gates are drawn as one box (0: never); ``result``: an evaluation
    already made (`Graph.evaluate`), drawn instead of evaluating at ``inputs``."""
    if rankdir not in RANKDIRS:
        raise UsageError(f"rankdir {rankdir!r}: use LR, TB or auto")
    if isinstance(collapse, bool) or not isinstance(collapse, int) or collapse < 0:
        raise UsageError(f"collapse {collapse!r}: a count of nodes, 0 or more (0: never collapse)")
    if local and not values:
        raise UsageError("local gradients need values: drop --no-values")
    p = graph.program
    calls = {} if unfold else p.calls
    op_name = {s.name: s.op.name for s in p.plan.steps}  # a function's name, not its table key
    if result is None and values:
        result = graph.evaluate(inputs, check_finite="record")
    elif not values:
        result = None
    contrib: dict[tuple[str, str], Any] = {}
    locals_: dict[tuple[str, str], Any] = {}
    if result is not None and result.grads:
        contrib = wire_gradients(graph, result, calls)
        locals_ = _local_gradients(graph, result, calls) if local else {}
    status: dict[str, str] | None = None
    if check is not False and check is not None:
        report = check
        if check is True:
            from .checker import gradcheck

            report = gradcheck(graph, inputs=inputs, blame=True, progress=False)
        status = report.node_states(lambda n: call_of(n, calls) or n)

    pic = _structure(graph, calls)
    ends = [n for n in pic.gates if n == p.loss or n in p.outputs]
    boxes = _chains(pic, graph, set(ends), collapse)
    hidden_leaves = {a for g in boxes for a, _ in pic.args[g] if a not in set(pic.gates)}
    direction = _rankdir(pic, set(boxes)) if rankdir == "auto" else rankdir
    lr = direction == "LR"

    lines = ["digraph graphspec {", f"  rankdir={direction}; nodesep=0.15; ranksep=0.25;",
             '  graph [fontname="Helvetica"]; node [fontname="Helvetica", fontsize=10]; edge [arrowsize=0.6];']
    roles: set[str] = set()

    def fill(name: str, role: str) -> str:
        if status is None:
            return FILL[role]
        return CHECK_FILL[status.get(name, "unchecked")]

    def border(name: str) -> str:
        return ', color="#b91c1c", penwidth=3' if status is not None and status.get(name) == "BLAMED" else ""

    used = {a for g in pic.gates for a, _ in pic.args[g]}
    fan: dict[str, int] = {}  # wires out of each drawn node: where a fan-out adds its branches up
    for g in pic.gates:
        for a, _ in pic.args[g]:
            fan[a] = fan.get(a, 0) + 1
    if p.loss in ends:  # its last wire carries the seed; an output's carries no gradient
        fan[p.loss] = fan.get(p.loss, 0) + 1

    def total(name: str) -> str:
        """A fan-out's summed gradient, in its node: dL/dx = 4 (the branches' parts, added)."""
        if result is None or fan.get(name, 0) < 2 or name not in result.grads:
            return ""
        return f'<BR/><FONT POINT-SIZE="8" COLOR="{GRAD}">{_e(_one_line(name, result.grads[name], True))}</FONT>'
    for name in p.leaves:
        if _inside(name, calls) or name in hidden_leaves:
            continue
        role = p.kind.get(name, "inputs")
        roles.add(role)
        shape = p.avals[name].shape if name in p.avals else ()
        sub = f'<BR/><FONT POINT-SIZE="8">{_e(tuple(shape))}</FONT>' if shape else ""
        if name not in used and result is not None:
            sub += f'<BR/><FONT POINT-SIZE="8" COLOR="{VALUE}">{_e(_one_line(name, result.values[name], False))}</FONT>'
        sub += total(name)
        lines.append(f'  "{name}" [shape=box, style="rounded,filled", fillcolor="{fill(name, role)}"{border(name)}, '
                     f"label=<<B>{_e(name)}</B>{sub}>];")

    drawn_boxes: dict[str, list[str]] = {}
    for g in pic.gates:
        if g in boxes:
            drawn_boxes.setdefault(boxes[g], []).append(g)
            continue
        role = "loss" if g == p.loss else "outputs" if g in p.outputs else "nodes"
        roles.add(role)
        op = calls[g][0] if g in calls else op_name.get(g, p.spec.nodes[g].op)
        shape = "box, style=\"rounded,filled\"" if g in calls else "ellipse, style=filled"
        lines.append(f'  "{g}" [shape={shape}, fillcolor="{fill(g, role)}"{border(g)}, margin="0.05,0.02", '
                     f'label=<<B>{_e(op)}</B><BR/><FONT POINT-SIZE="8">{_e(g)}</FONT>{total(g)}>];')
    for box, members in drawn_boxes.items():
        ops: dict[str, int] = {}
        for g in members:
            o = calls[g][0] if g in calls else op_name.get(g, p.spec.nodes[g].op)
            ops[o] = ops.get(o, 0) + 1
        worst = None
        if status is not None:
            states = [status.get(g, "unchecked") for g in members]
            worst = next((s for s in ("BLAMED", "FAIL", "KINK", "PASS") if s in states), "unchecked")
        colour = CHECK_FILL[worst] if worst else FILL["nodes"]
        what = ", ".join(f"{o} ×{k}" for o, k in ops.items())
        hid = sum(1 for g in members for a, _ in pic.args[g] if a in hidden_leaves)
        extra = f"<BR/>{hid} leaves inside" if hid else ""
        lines.append(f'  "{box}" [shape=box, style="dashed,filled", fillcolor="{colour}", '
                     f'label=<<B>⋯ {len(members)} nodes collapsed</B><BR/><FONT POINT-SIZE="8">{_e(members[0])} … '
                     f'{_e(members[-1])}: {_e(what)}{extra}</FONT>>];')

    def shown(n: str) -> str:
        return boxes.get(n, n)

    wires: list[_Wire] = []
    for g in pic.gates:
        multi = len(pic.args[g]) + len(pic.consts.get(g, [])) > 1
        for a, positions in pic.args[g]:
            if a in hidden_leaves or (g in boxes and boxes.get(a) == boxes[g]):
                continue  # inside a collapsed run
            w = _Wire(shown(a), shown(g))
            if result is not None and g not in boxes:
                w.value = result.values[a]
                w.grad = contrib.get((g, a))
                if local and (g, a) in contrib:  # where a gradient flows back
                    arg_shape = p.avals[a].shape if a in p.avals else np.shape(result.values[a])
                    out_shape = p.avals[g].shape if g in p.avals else np.shape(result.values[g])
                    w.local = _local_text(g, a, locals_.get((g, a)), out_shape, arg_shape)
            elif result is not None and a not in boxes:  # the wire into a collapsed run
                w.value = result.values[a]
                w.grad = contrib.get((g, a))
            if multi:
                w.position = "arg " + ", ".join(map(str, positions))
            wires.append(w)
        for i, c in pic.consts.get(g, []):
            if g in boxes:
                continue
            lines.append(f'  "{g}__c{i}" [shape=plaintext, fontsize=9, label="{_e(fmt_value(c))}"];')
            lines.append(f'  "{g}__c{i}" -> "{shown(g)}" [color="#9ca3af"];')
    # the wire out of a collapsed run carries its last member's value
    for w in wires:
        if w.src in drawn_boxes and result is not None:
            last = drawn_boxes[w.src][-1]
            w.value = result.values[last]
            dst = w.dst
            w.grad = contrib.get((dst, last))
    for g in ends:
        end = f"{g}__end"
        word = "loss" if g == p.loss else "output"
        lines.append(f'  "{end}" [shape=plaintext, fontsize=9, label="{word}"];')
        w = _Wire(g, end)
        if result is not None:
            w.value = result.values[g]
            w.grad = result.grads.get(g) if g == p.loss else None
        wires.append(w)

    for k, w in enumerate(wires):
        if result is None:
            extra = f' [label="{_e(w.position)}", fontsize=8]' if w.position else ""
            lines.append(f'  "{w.src}" -> "{w.dst}"{extra};')
            continue
        wid = f"w{k}"
        a, b = ("w:w", "w:e") if lr else ("w:n", "w:s")
        lines.append(f"  {wid} [shape=plaintext, margin=0, label={_wire_label(w, lr)}];")
        lines.append(f'  "{w.src}" -> {wid}:{a} [arrowhead=none];')
        lines.append(f'  {wid}:{b} -> "{w.dst}";')
    lines.append(f"  labelloc=b; labeljust=l; label={_legend(roles, status is not None, result is not None, local, lr)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def check_drawing_path(path: Path) -> str:
    """The format of an -o path (its suffix), checked before any work: known, and Graphviz there for images."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UsageError(f"-o {path}: write .dot, .svg, .png or .pdf")
    if fmt not in ("dot", "gv") and dot_program() is None:
        raise UsageError(f"-o {path}: images need Graphviz's `dot` program ({INSTALL_HINT}); write .dot instead")
    return fmt


INSTALL_HINT = "`make system` installs it on Debian/Ubuntu; else your system's graphviz package"


def dot_program() -> str | None:
    return shutil.which("dot")


def render(dot: str, fmt: str, timeout: float | None = None) -> bytes:
    """DOT laid out by Graphviz into svg, png or pdf bytes; a Graphviz failure (or one that takes
    longer than ``timeout`` seconds) is a UsageError with its message."""
    exe = dot_program()
    if exe is None:
        raise UsageError(f"images need Graphviz's `dot` program ({INSTALL_HINT}); write .dot instead")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Graphviz took more than {timeout} s to lay the graph out") from None
    if done.returncode != 0:
        raise UsageError(f"Graphviz's dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _encode(dot: str, fmt: str) -> bytes:
    """A drawing's bytes: DOT as it is, or laid out by Graphviz."""
    return dot.encode() if fmt in ("dot", "gv") else render(dot, fmt)


def write_drawing(dot: str, path: Path) -> None:
    """DOT as text, or an image through Graphviz; written atomically (temp file + rename)."""
    fmt = check_drawing_path(path)
    write_atomic(path, _encode(dot, fmt))


def draw(graph: Graph | str | Path | Mapping[str, Any], output: str | Path | None = None, *,
         format: str = "dot", force: bool = False, **options: Any) -> str:
    """Draw a graph (a `Graph`, a spec path or a spec dict): the DOT text, or with ``format="svg"`` the
    SVG text; with ``output`` the drawing is written there (its suffix gives the format, as
    ``draw -o``, and the same guard: never over the spec or a file it reads, nor without ``force``
    over a file that is not a drawing) and the text of a .dot or .svg is returned too ("" for .png
    and .pdf). ``options`` are `to_dot`'s: values, unfold, local, check, rankdir, collapse, inputs."""
    from .api import load
    from .commands import guard_output
    from .files import DRAWING

    g = graph if isinstance(graph, Graph) else load(graph)
    if output is not None:
        fmt = check_drawing_path(Path(output))
        spec = [str(graph)] if isinstance(graph, str | Path) else [g.program.source] if g.program.source else []
        guard_output(output, DRAWING, spec, "the spec being drawn", [g], force=force)
    elif format not in ("dot", "svg"):
        raise UsageError(f"format {format!r}: dot or svg (write .png or .pdf with output=)")
    else:
        fmt = format
    dot = to_dot(g, **options)
    data = _encode(dot, fmt)
    if output is not None:
        write_atomic(Path(output), data)
    return data.decode() if fmt in ("dot", "gv", "svg") else ""
