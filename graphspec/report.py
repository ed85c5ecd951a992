"""Rendering of gradient-check reports: rich tables for people, JSON with stable keys for machines,
markdown for READMEs and pull requests (``-o`` files are written by `graphspec.files.write_atomic`).

JSON keys (format "graphspec-gradcheck", version 1; documented in docs/gradcheck.md): keys are only
ever added, never renamed or given a new meaning within a version.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .render import console, fmt_err, fmt_num
from .render import dumps as dumps  # report.dumps is render's JSON writer, as callers of this module know it

if TYPE_CHECKING:
    from rich.console import Console

    from .checker import Element, InputCheck, OpRow, Report
    from .checker.results import Census, Diagnosis, NodeCheck

JSON_FORMAT = "graphspec-gradcheck"
JSON_VERSION = 1
STYLE = {"PASS": "green", "FAIL": "bold red", "KINK": "yellow", "UNCLEAR": "yellow", "EMPTY": "bold red"}


# ---------------------------------------------------------------------------------------------
# numbers


def _f(x: Any) -> float | None:
    """A JSON-safe float: nan and inf become null."""
    x = float(x)
    return x if math.isfinite(x) else None


def _index(index: Sequence[int]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def _where(c: InputCheck, e: Element) -> str:
    """d target / d input[index], e.g. 'W1[2, 3]' or 'direction 2'; Jacobian rows name the output element."""
    if c.method == "directions":
        at = f"direction {e.index[0]}"
    else:
        at = f"{c.input}{_index(e.index)}" if e.index else c.input  # a scalar is 'w', not 'w[]'
    if not e.row:
        return at
    return f"{c.target}{'' if e.row == '[]' else e.row} wrt {at}"


def _status(s: str) -> str:
    return f"[{STYLE.get(s, 'white')}]{s}[/]"


# ---------------------------------------------------------------------------------------------
# JSON


def _element_json(e: Element) -> dict[str, Any]:
    return {"index": list(e.index), "row": e.row, "analytic": _f(e.analytic), "numeric": _f(e.numeric),
            "abs_err": _f(e.abs_err), "rel_err": _f(e.rel_err), "status": e.status,
            "kinks": [{"node": k.node, "op": k.op, "at": list(k.at)} for k in e.kinks]}


def _check_json(c: InputCheck) -> dict[str, Any]:
    a = c.arrays
    return {
        "input": c.input, "kind": c.kind, "target": c.target, "target_kind": c.target_kind, "method": c.method,
        "shape": list(c.shape), "size": c.size, "checked": c.checked, "status": c.status,
        "max_abs_err": _f(c.max_abs_err), "max_rel_err": _f(c.max_rel_err),
        "worst": _element_json(c.worst) if c.worst else None,
        "worst_elements": [_element_json(e) for e in c.worst_elements],
        "kinks": [_element_json(e) for e in c.kinks], "notes": list(c.notes), **_findings_json(c),
        "elements": {"index": [list(map(int, i)) for i in a["index"]], "row": list(a["row"]),
                     "analytic": [_f(v) for v in a["analytic"]], "numeric": [_f(v) for v in a["numeric"]],
                     "abs_err": [_f(v) for v in a["abs_err"]], "rel_err": [_f(v) for v in a["rel_err"]],
                     "status": list(a["status"])},
    }


def _census_json(c: Census | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"compared": c.compared, "within": c.within, "over": c.over, "kinks": c.kinks, "unit": c.unit,
            "share_over": c.share_over}


def _diagnosis_json(d: Diagnosis | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"pattern": d.pattern, "factor": None if d.factor is None else _f(d.factor), "message": d.message,
            "holds_at": d.holds_at}


def _findings_json(c: InputCheck) -> dict[str, Any]:
    """A check's census and diagnosis (docs/gradcheck.md, "Census and diagnosis")."""
    return {"census": _census_json(c.census), "diagnosis": _diagnosis_json(c.diagnosis)}


def report_json(rep: Report) -> dict[str, Any]:
    """One report as a JSON-ready dict (the stable keys of docs/gradcheck.md)."""
    t = rep.tolerance
    return {
        "spec": rep.spec, "name": rep.name, "status": rep.status, "verdict": rep.verdict, "ok": rep.ok,
        "strict": rep.strict,
        "mode": rep.mode, "dtype": rep.dtype, "fd_dtype": rep.fd_dtype,
        "tolerance": {"eps": t.eps, "rtol": t.rtol, "atol": t.atol},
        "checks": [_check_json(c) for c in rep.checks],
        "modes": [{"target": m.target, "jvp_side": _f(m.jvp_side), "vjp_side": _f(m.vjp_side),
                   "rel_err": _f(m.rel_err), "status": m.status} for m in rep.modes],
        "nodes": [{"node": n.node, "op": n.op, "arg": n.arg, "arg_name": n.arg_name, "mode": n.mode,
                   "analytic": _f(n.analytic), "numeric": _f(n.numeric), "rel_err": _f(n.rel_err),
                   "status": n.status, "message": n.message, "diagnosis": _diagnosis_json(n.diagnosis)}
                  for n in rep.nodes],
        "blamed": [{"node": n.node, "op": n.op, "arg": n.arg, "arg_name": n.arg_name, "mode": n.mode}
                   for n in rep.blamed],
        "taylor": [{"wrt": r.wrt, "h": r.h, "remainder": r.remainder, "used": r.used,
                    "order": _f(r.order) if r.order is not None else None, "status": r.status, "note": r.note}
                   for r in rep.taylor],
        "notes": list(rep.notes), "warnings": list(rep.warnings), "seconds": rep.seconds,
        "evaluations": rep.evaluations, "error": rep.error or None, "empty": rep.empty or None,
        "sample": dict(rep.sample) if rep.sample else None,
    }


def reports_json(reports: Sequence[Report]) -> dict[str, Any]:
    return {"format": JSON_FORMAT, "version": JSON_VERSION, "ok": all(r.ok for r in reports),
            "reports": [report_json(r) for r in reports]}


def ops_ok(rows: Sequence[OpRow]) -> bool:
    """The sweep's verdict, which the exit code and the JSON's "ok" follow: no sample fails, and one was checked
    (a sweep of only ops without a float arg, like one_hot, has earned no pass)."""
    return all(r.status != "FAIL" for r in rows) and any(r.status != "EMPTY" for r in rows)


def ops_json(rows: Sequence[OpRow]) -> dict[str, Any]:
    return {"format": JSON_FORMAT, "version": JSON_VERSION, "ok": ops_ok(rows),
            "ops": [{"op": r.op, "dtype": r.dtype, "sample": r.sample, "shapes": r.shapes, "attrs": r.attrs, "status": r.status,
                     "max_rel_err": _f(r.max_rel_err), "vjp_rel_err": _f(r.vjp_rel_err),
                     "jvp_rel_err": _f(r.jvp_rel_err), "modes_rel_err": _f(r.modes_rel_err), "message": r.message}
                    for r in rows]}


# ---------------------------------------------------------------------------------------------
# the terminal (rich)


def _label(rep: Report) -> str:
    """What a report is about: the spec's path (two specs named hinge in two folders stay apart), with its
    name when it has one; the name alone for a spec given as a dict."""
    if rep.spec:
        return f"{rep.spec} ({rep.name})" if rep.name else rep.spec
    return rep.name or "graph"


def _title(rep: Report) -> str:
    from rich.markup import escape

    what = escape(_label(rep))  # the user's text: "[/]" in a name is no closing tag
    mode = "fast: random directional derivatives" if rep.mode == "fast" else "full: every element"
    return f"[bold]gradient check: {what}[/bold] ({mode}; {rep.dtype} graph, finite differences in {rep.fd_dtype})"


def _table(title: str, cols: Sequence[str]) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in cols:
        t.add_column(col)
    return t


def _grad_name(c: InputCheck) -> str:
    return f"d{c.target}/d{c.input}"


def _summary_table(rep: Report) -> Any:
    t = _table("gradients", ("gradient", "shape", "checked", "max abs err", "max rel err", "worst at", "analytic",
                             "numeric", "status"))
    for c in rep.checks:
        w = c.worst
        t.add_row(_grad_name(c) + ("" if c.target_kind == "loss" else f" ({c.target_kind})"), str(c.shape),
                  f"{c.checked}/{c.size}", fmt_err(c.max_abs_err), fmt_err(c.max_rel_err),
                  "-" if w is None else _where(c, w), "-" if w is None else fmt_num(w.analytic),
                  "-" if w is None else fmt_num(w.numeric), _status(c.status))
    return t


def _elements_table(c: InputCheck) -> Any:
    t = _table(f"{_grad_name(c)}: worst elements", ("element", "analytic", "numeric", "abs err", "rel err", "status"))
    for e in c.worst_elements:
        t.add_row(_where(c, e), fmt_num(e.analytic), fmt_num(e.numeric), fmt_err(e.abs_err), fmt_err(e.rel_err),
                  _status(e.status))
    return t


def _kink_lines(rep: Report) -> list[str]:
    lines = []
    for c in rep.checks:
        for e in c.kinks[:10]:
            at = "; ".join(f"node '{k.node}' ({k.op}) element {_index(k.at)} switches branch" for k in e.kinks)
            lines.append(f"KINK at {_where(c, e)}: {at or 'a branch switches'} "
                         f"(analytic {fmt_num(e.analytic)}, central difference {fmt_num(e.numeric)})")
        if len(c.kinks) > 10:
            lines.append(f"... and {len(c.kinks) - 10} more kinked elements of {c.input} (all in the JSON report)")
    return lines


def _modes_table(rep: Report) -> Any:
    t = _table("forward mode vs reverse mode, random u and v", ("output", "<u, jvp(v)>", "<vjp(u), v>", "rel err",
                                                                 "status"))
    for m in rep.modes:
        t.add_row(m.target, fmt_num(m.jvp_side), fmt_num(m.vjp_side), fmt_err(m.rel_err), _status(m.status))
    return t


def _taylor_table(rep: Report) -> Any:
    t = _table("Taylor remainder |f(x+hv) - f(x) - h<g,v>| as h halves: order ~2 right, ~1 wrong",
               ("along", "h", "remainders", "order", "status", "note"))
    for r in rep.taylor:
        rems = [x for x, u in zip(r.remainder, r.used, strict=True) if u and x is not None]
        shown = ", ".join(f"{x:.1e}" for x in rems[:3]) + (" ..." if len(rems) > 3 else "") if rems else "-"
        order = "-" if r.order is None else f"{r.order:.2f}"
        t.add_row(r.wrt, f"{r.h[0]:.3g} .. {r.h[-1]:.1e}", shown, order, _status(r.status), r.note)
    return t


def _nodes_table(rep: Report) -> Any:
    t = _table("each node's own gradient, checked alone (random cotangent, random direction)",
               ("node", "op", "arg", "mode", "analytic", "numeric", "rel err", "status"))
    shown = [n for n in rep.nodes if n.status != "PASS"] or rep.nodes[:0]
    for n in shown:
        t.add_row(n.node, n.op, n.arg_name, n.mode, fmt_num(n.analytic), fmt_num(n.numeric), fmt_err(n.rel_err),
                  _status(n.status))
    return t


_WORDS = {"PASS": "PASS", "KINK": "KINK (not a failure without --strict)", "EMPTY": "EMPTY"}


def verdict_line(rep: Report) -> str:
    """The verdict in plain text, the same in every format and the one the exit code follows: its first
    word is `Report.verdict`; what follows says why, and never contradicts it."""
    return ": ".join(_verdict_parts(rep))


def _verdict_parts(rep: Report) -> tuple[str, str]:
    if rep.empty and not rep.error:
        return "EMPTY", rep.empty
    n_fail = sum(c.status == "FAIL" for c in rep.checks)
    n_kink = sum(c.status == "KINK" for c in rep.checks)
    parts = [f"{len(rep.checks) - n_fail - n_kink} of {len(rep.checks)} checks pass"] if rep.checks or not rep.error else []
    if n_fail:
        parts.append(f"{n_fail} FAIL")
    if n_kink:
        parts.append(f"{n_kink} at a kink" + (" (--strict: failures)" if rep.strict else ""))
    if any(m.status == "FAIL" for m in rep.modes):
        parts.append("JVP and VJP disagree")
    if any(r.status == "FAIL" for r in rep.taylor):
        parts.append("Taylor order ~1")
    if rep.blamed:
        parts.append(f"{len(rep.blamed)} node check(s) FAIL")
    if rep.error:
        parts.append(rep.error)
    word = _WORDS.get(rep.verdict, rep.verdict) if rep.ok else \
        "FAIL (--strict: kinks are failures)" if rep.status == "KINK" else "FAIL"
    return word, ", ".join(parts) + f" ({rep.evaluations} perturbed evaluations, {rep.seconds * 1e3:.1f} ms)"


def _verdict(rep: Report) -> str:
    from rich.markup import escape

    word, rest = _verdict_parts(rep)
    return f"[{STYLE[rep.verdict]}]{escape(word)}[/]: {escape(rest)}"


def _blame_lines(rep: Report) -> list[str]:
    """One plain line per blamed node ("blame: node ..."): the terminal colours the word, the user's
    text (an op's message) stays text."""
    return [f"blame: node '{n.node}' ({n.op}): its {n.mode.upper()} for arg {n.arg} {n.arg_name} "
            + (f"fails: {n.message}" if n.message else
               f"is wrong (analytic {fmt_num(n.analytic)}, finite differences {fmt_num(n.numeric)})")
            for n in rep.blamed]


def _findings_lines(c: InputCheck, verbose: bool = False) -> list[str]:
    """The census of a check that does not pass (of every check with ``verbose``) and its diagnosis."""
    from .checker.diagnose import census_text

    lines = [f"census ({_grad_name(c)}): {census_text(c.census)}"] if c.census and (verbose or c.status != "PASS") else []
    if c.diagnosis:
        lines.append(f"diagnosis ({_grad_name(c)}): {c.diagnosis.message}")
    return lines


def _passing_census(rep: Report, verbose: bool = False) -> str:
    """One line for the checks that pass, each number within tolerance: 'census: every compared number
    within tolerance: dloss/db1 (8 elements), ...'."""
    shown = [c for c in rep.checks if c.census and c.status == "PASS" and not verbose]
    if not shown:
        return ""
    return "census: every compared number within tolerance: " + ", ".join(
        f"{_grad_name(c)} ({c.census.compared} {c.census.unit[:-1] if c.census.compared == 1 else c.census.unit})"
        for c in shown if c.census)


def _node_diagnosis_line(n: NodeCheck) -> str:
    return (f"diagnosis of node '{n.node}' ({n.op}), its VJP for arg {n.arg} {n.arg_name} with a random cotangent: "
            f"{n.diagnosis.message if n.diagnosis else ''}")


def _node_diagnosis_lines(rep: Report) -> list[str]:
    return [_node_diagnosis_line(n) for n in rep.blamed if n.diagnosis]


def print_report(rep: Report, console: Console, verbose: bool = False) -> None:
    """The report for a terminal: one row per input, the worst elements of each input that does not
    pass (of every input with ``verbose``), kinks, modes, Taylor, node checks, blame, a verdict."""
    console.print(_title(rep))
    if rep.checks:
        console.print(_summary_table(rep))
    for c in rep.checks:
        if verbose or c.status != "PASS":
            console.print(_elements_table(c))
        for note in c.notes:
            console.print(f"note ({c.input}): {note}", markup=False)
        for line in _findings_lines(c, verbose):
            console.print(line, markup=False)
    if rep.checks and _passing_census(rep, verbose):
        console.print(_passing_census(rep, verbose), markup=False)
    for line in _kink_lines(rep):
        console.print(f"[yellow]{line}[/]")
    if rep.modes:
        console.print(_modes_table(rep))
    if rep.taylor:
        console.print(_taylor_table(rep))
    if rep.nodes and any(n.status != "PASS" for n in rep.nodes):
        console.print(_nodes_table(rep))
    elif rep.nodes:
        console.print(f"each node's own VJP and JVP checked alone: all {len(rep.nodes)} pass")
    from rich.markup import escape

    for line in _blame_lines(rep):
        console.print(f"[bold red]blame:[/] {escape(line.removeprefix('blame: '))}")
    for line in _node_diagnosis_lines(rep):
        console.print(line, markup=False)
    for note in rep.notes:  # notes quote numpy's messages and the user's names: no markup in them
        console.print(f"note: {note}", markup=False)
    for warning in rep.warnings:
        console.print(f"warning: {warning}", markup=False, style="yellow")
    console.print(_verdict(rep))


def report_text(rep: Report, width: int = 120, verbose: bool = False) -> str:
    """The terminal report as plain text (for AssertionError messages and logs)."""
    buf = io.StringIO()
    print_report(rep, console(buf, width), verbose)
    return buf.getvalue()


def print_ops(rows: Sequence[OpRow], console: Console) -> None:
    t = _table(f"op sweep: {len(rows)} samples of {len({r.op for r in rows})} ops",
               ("op", "dtype", "#", "arg shapes", "attrs", "grad rel err", "own vjp", "own jvp", "jvp vs vjp", "status"))
    for r in rows:
        t.add_row(r.op, r.dtype, str(r.sample), " ".join(str(tuple(s)) for s in r.shapes), json.dumps(r.attrs) if r.attrs else "",
                  fmt_err(r.max_rel_err), fmt_err(r.vjp_rel_err), fmt_err(r.jvp_rel_err), fmt_err(r.modes_rel_err),
                  _status(r.status) + (f" {r.message}" if r.message else ""))
    console.print(t)
    bad = [r for r in rows if r.status == "FAIL"]
    empty = sorted({r.op for r in rows if r.status == "EMPTY"})  # no float arg: nothing checked, so no pass
    if bad:
        console.print(f"[bold red]{len(bad)} sample(s) fail:[/] " + ", ".join(sorted({r.op for r in bad})))
    elif ops_ok(rows):
        console.print("[green]every sample with something to check passes[/]")
    else:
        console.print("[bold red]EMPTY: no sample had anything to check[/]")
    if empty:
        console.print(f"nothing to check (no float arg with a gradient): {', '.join(empty)}")


# ---------------------------------------------------------------------------------------------
# markdown


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report_markdown(rep: Report, verbose: bool = False) -> str:
    out = [f"## Gradient check: {_label(rep)}: **{rep.verdict}**", "",
           f"Mode {rep.mode}; {rep.dtype} graph, finite differences in {rep.fd_dtype}; "
           f"eps {rep.tolerance.eps:g}, rtol {rep.tolerance.rtol:g}, atol {rep.tolerance.atol:g}.", ""]
    out.append(_md_table(["input", "target", "shape", "checked", "max abs err", "max rel err", "worst element", "status"],
                         [[c.input, f"{c.target} ({c.target_kind})", str(c.shape), f"{c.checked}/{c.size}",
                           fmt_err(c.max_abs_err), fmt_err(c.max_rel_err),
                           "-" if c.worst is None else
                           f"{_where(c, c.worst)}: {fmt_num(c.worst.analytic)} vs {fmt_num(c.worst.numeric)}",
                           f"**{c.status}**"] for c in rep.checks]))
    for c in rep.checks:
        if verbose or c.status != "PASS":
            out += ["", f"Worst elements of `{c.input}`:", "",
                    _md_table(["element", "analytic", "numeric", "abs err", "rel err", "status"],
                              [[_where(c, e), fmt_num(e.analytic), fmt_num(e.numeric), fmt_err(e.abs_err), fmt_err(e.rel_err),
                                e.status] for e in c.worst_elements])]
    out += _md_findings(rep)
    kinks = _kink_lines(rep)
    if kinks:
        out += [""] + [f"- {k}" for k in kinks]
    if rep.modes:
        out += ["", "Forward mode vs reverse mode:", "",
                _md_table(["output", "<u, jvp(v)>", "<vjp(u), v>", "rel err", "status"],
                          [[m.target, fmt_num(m.jvp_side), fmt_num(m.vjp_side), fmt_err(m.rel_err), m.status]
                           for m in rep.modes])]
    if rep.taylor:
        out += ["", "Taylor remainder test:", "",
                _md_table(["along", "observed order", "status", "note"],
                          [[r.wrt, "-" if r.order is None else f"{r.order:.2f}", r.status, r.note] for r in rep.taylor])]
    bad_nodes = [n for n in rep.nodes if n.status != "PASS"]
    if bad_nodes:
        out += ["", "Nodes checked alone:", "",
                _md_table(["node", "op", "arg", "mode", "analytic", "numeric", "rel err", "status"],
                          [[n.node, n.op, n.arg_name, n.mode, fmt_num(n.analytic), fmt_num(n.numeric), fmt_err(n.rel_err),
                            n.status] for n in bad_nodes])]
    for n in rep.blamed:
        what = f"fails: `{n.message}`" if n.message else "is wrong"
        out += ["", f"**Blame:** node `{n.node}` ({n.op}): its {n.mode.upper()} for arg {n.arg} {n.arg_name} {what}."]
        if n.diagnosis:
            out += ["", f"**Diagnosis:** its VJP for arg {n.arg} {n.arg_name} with a random cotangent: {n.diagnosis.message}"]
    out += [""] + [f"> note: {n}" for n in rep.notes] + [f"> warning: {w}" for w in rep.warnings]
    word, rest = _verdict_parts(rep)
    out += ["", f"**{word}**: {rest}"]
    return "\n".join(out).rstrip() + "\n"


def _md_findings(rep: Report) -> list[str]:
    """The census of every check and the diagnosis of each failing one, as a markdown table."""
    from .checker.diagnose import census_text

    rows = [[_grad_name(c), census_text(c.census), c.diagnosis.message if c.diagnosis else "-"]
            for c in rep.checks if c.census]
    return ["", "Census and diagnosis:", "", _md_table(["gradient", "census", "diagnosis"], rows)] if rows else []


def reports_markdown(reports: Sequence[Report], verbose: bool = False) -> str:
    text = "\n".join(report_markdown(r, verbose) for r in reports)
    if len(reports) > 1:
        text += f"\n**{sum(r.ok for r in reports)} of {len(reports)} specs pass**\n"
    return text


def ops_markdown(rows: Sequence[OpRow]) -> str:
    return "## Op sweep\n\n" + _md_table(
        ["op", "dtype", "#", "arg shapes", "attrs", "grad rel err", "own vjp", "own jvp", "jvp vs vjp", "status"],
        [[r.op, r.dtype, str(r.sample), " ".join(str(tuple(s)) for s in r.shapes), json.dumps(r.attrs) if r.attrs else "",
          fmt_err(r.max_rel_err), fmt_err(r.vjp_rel_err), fmt_err(r.jvp_rel_err), fmt_err(r.modes_rel_err),
          r.status + (f" {r.message}" if r.message else "")] for r in rows]) + "\n"
