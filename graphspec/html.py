"""HTML pages: `check SPEC -o report.html` and `explain SPEC -o explain.html`, and the check
report's notebook display (`Report._repr_html_`).

A page is one self-contained file (inline CSS, JS and SVG: nothing is fetched to view it): the
verdict, the per-input tables, blame and diagnosis, the picture (draw's DOT laid out by
Graphviz's dot) coloured by the check's result, and a step-through of the backward pass read
off explain's steps (`explain.Step`): next/previous and the arrow keys highlight one node at a
time with its upstream gradient, each arg's local gradient and their product, and where a value
fans out, the running sum. Printed, the step-through becomes every step in order. Built with
html.escape and f-strings: no template engine is needed for one page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UsageError
from .explain import SMALL

if TYPE_CHECKING:
    from .api import Graph
    from .checker import InputCheck, Report
    from .explain import Explanation

CHECK_GENERATOR = "graphspec check"  # the <meta name="generator">: files.py knows a page it wrote by it
EXPLAIN_GENERATOR = "graphspec explain"
DOT_SECONDS = 60  # Graphviz is given this long to lay a picture out; past it the page says so


# ---------------------------------------------------------------------------------------------
# the picture


def picture(ex: Explanation) -> tuple[str | None, str]:
    """The explained graph as inline SVG, or None and why there is none. The one place the page asks
    draw for its picture: draw's DOT of the evaluation the explanation steps through (its inputs, its
    folding; no chain collapsed, so that every step has its node to outline) laid out by Graphviz's
    ``dot -Tsvg``."""
    from .draw import dot_program, render, to_dot

    if dot_program() is None:
        return None, "no picture: Graphviz's dot is not installed (make system installs it)"
    try:
        dot = to_dot(ex.graph, values=True, unfold=ex.unfold, collapse=0, result=ex.result)
        svg = render(dot, "svg", timeout=DOT_SECONDS).decode("utf-8", errors="replace")
    except UsageError as e:
        return None, f"no picture: {e.message[:300]}"
    start = svg.find("<svg")
    return (svg[start:] if start >= 0 else None), ("" if start >= 0 else "no picture: Graphviz gave no SVG")


# ---------------------------------------------------------------------------------------------
# the step-through's data: explain's steps, their numbers written as the text explanation writes them


def _num(x: Any) -> str:
    from .explain import _v

    return "" if x is None else _v(x).strip("\n")


def _folding(ex: Explanation | None) -> Any:
    """A node's name as the page's picture shows it: a function's body node as its call, unless the
    explanation (and so the picture) unfolds them."""
    from .inline import call_of

    calls = ex.graph.program.calls if ex is not None and ex.graph is not None and not ex.unfold else {}
    return lambda name: call_of(name, calls) or name


def steps_data(ex: Explanation) -> dict[str, Any]:
    """What the page's script shows: each backward step with its numbers as strings."""
    forward = {f.name: f for f in ex.forward}
    steps = []
    for s in ex.steps:
        f = forward.get(s.node)
        terms = []
        for t in s.terms:
            eq = t.text.strip()
            terms.append({"arg": t.arg, "eq": eq, "upstream": _num(s.upstream), "local": _num(t.local),
                          "product": _num(t.product), "nth": t.nth, "before": _num(t.before), "total": _num(t.total),
                          "rule": t.rule or "", "shapes": t.shapes or "",
                          "fanout": (f"dL/d{t.arg} = {_num(t.before)} + {_num(t.product)} = {_num(t.total)}"
                                     if t.nth > 1 and np.size(t.total) <= SMALL else
                                     f"contribution {t.nth} to dL/d{t.arg}, now {_num(t.total)}" if t.nth > 1 else "")})
        steps.append({"node": s.node, "op": s.op, "args": list(s.args),
                      "expr": f"{s.node} = {s.op}({', '.join(s.args)})", "value": _num(f.value) if f else "",
                      "upstream": _num(s.upstream), "terms": terms,
                      "highlight": [s.node], "inputs": [t.arg for t in s.terms]})
    return {"loss": ex.loss, "seed": ex.seed, "steps": steps,
            "gradients": {n: _num(v) for n, v in ex.gradients.items()}, "paths": ex.paths}


def _json_script(cls: str, doc: Any) -> str:
    text = json.dumps(doc, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" class="{cls}">{text}</script>'


# ---------------------------------------------------------------------------------------------
# the check report's parts


def _cls(status: str) -> str:
    return f"st st-{escape(status)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _status(s: str) -> str:
    return f'<span class="{_cls(s)}">{escape(s)}</span>'


def _checks_table(rep: Report) -> str:
    from .render import fmt_err, fmt_num
    from .report import _grad_name, _where

    rows = []
    for c in rep.checks:
        w = c.worst
        rows.append([f"<code>{escape(_grad_name(c))}</code>" + ("" if c.target_kind == "loss" else f" ({escape(c.target_kind)})"),
                     escape(str(tuple(c.shape))), f"{c.checked}/{c.size}", fmt_err(c.max_abs_err), fmt_err(c.max_rel_err),
                     "-" if w is None else escape(_where(c, w)), "-" if w is None else fmt_num(w.analytic),
                     "-" if w is None else fmt_num(w.numeric), _status(c.status)])
    return _table(["gradient", "shape", "checked", "max abs err", "max rel err", "worst at", "analytic", "numeric", "status"],
                  rows, "checks")


def _elements_table(c: InputCheck) -> str:
    from .render import fmt_err, fmt_num
    from .report import _grad_name, _where

    rows = [[escape(_where(c, e)), fmt_num(e.analytic), fmt_num(e.numeric), fmt_err(e.abs_err), fmt_err(e.rel_err),
             _status(e.status)] for e in c.worst_elements]
    return (f"<h4>worst elements of <code>{escape(_grad_name(c))}</code></h4>"
            + _table(["element", "analytic", "numeric", "abs err", "rel err", "status"], rows, "elements"))


def report_body(rep: Report, verbose: bool = False) -> str:
    """The report's text parts as HTML: verdict, per-input tables, census and diagnosis, kinks, modes,
    Taylor, node checks, blame, notes (each part that the terminal report has)."""
    from .render import fmt_err, fmt_num
    from .report import (
        _blame_lines,
        _findings_lines,
        _kink_lines,
        _node_diagnosis_lines,
        _passing_census,
        _verdict_parts,
    )

    word, rest = _verdict_parts(rep)
    mode = "fast: random directional derivatives" if rep.mode == "fast" else "full: every element"
    t = rep.tolerance
    out = [f'<p class="verdict {_cls(rep.verdict)}"><b>{escape(word)}</b>: {escape(rest)}</p>',
           f'<p class="meta">{escape(mode)}; {escape(rep.dtype)} graph, finite differences in {escape(rep.fd_dtype)}; '
           f"eps {t.eps:g}, rtol {t.rtol:g}, atol {t.atol:g}</p>"]
    if rep.checks:
        out.append(_checks_table(rep))
    for c in rep.checks:
        if (verbose or c.status != "PASS") and c.worst_elements:
            out.append(_elements_table(c))
    findings = [line for c in rep.checks for line in _findings_lines(c, verbose)]
    census = _passing_census(rep, verbose) if rep.checks else ""
    if findings or census:
        out.append('<ul class="findings">' + "".join(
            f'<li class="{"diagnosis" if line.startswith("diagnosis") else "census"}">{escape(line)}</li>'
            for line in [*findings, *([census] if census else [])]) + "</ul>")
    kinks = _kink_lines(rep)
    if kinks:
        out.append('<ul class="kinks">' + "".join(f"<li>{escape(k)}</li>" for k in kinks) + "</ul>")
    if rep.modes:
        out.append("<h4>forward mode vs reverse mode</h4>" + _table(
            ["output", "⟨u, jvp(v)⟩", "⟨vjp(u), v⟩", "rel err", "status"],
            [[escape(m.target), fmt_num(m.jvp_side), fmt_num(m.vjp_side), fmt_err(m.rel_err), _status(m.status)]
             for m in rep.modes], "modes"))
    if rep.taylor:
        out.append("<h4>Taylor remainder test</h4>" + _table(
            ["along", "observed order", "status", "note"],
            [[escape(r.wrt), "-" if r.order is None else f"{r.order:.2f}", _status(r.status), escape(r.note)]
             for r in rep.taylor], "taylor"))
    bad = [n for n in rep.nodes if n.status != "PASS"]
    if bad:
        out.append("<h4>each node's own gradient, checked alone</h4>" + _table(
            ["node", "op", "arg", "mode", "analytic", "numeric", "rel err", "status"],
            [[f"<code>{escape(n.node)}</code>", escape(n.op), escape(n.arg_name), escape(n.mode), fmt_num(n.analytic),
              fmt_num(n.numeric), fmt_err(n.rel_err), _status(n.status)] for n in bad], "nodes"))
    elif rep.nodes:
        out.append(f"<p>each node's own VJP and JVP checked alone: all {len(rep.nodes)} pass</p>")
    blame = _blame_lines(rep)
    diag = _node_diagnosis_lines(rep)
    if blame or diag:
        out.append('<ul class="blame">' + "".join(f"<li>{escape(line)}</li>" for line in [*blame, *diag]) + "</ul>")
    notes = [f"note: {n}" for n in rep.notes] + [f"warning: {w}" for w in rep.warnings]
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(out)


def report_fragment(rep: Report) -> str:
    """The report for a notebook cell (`Report._repr_html_`): its own styles, no script."""
    from .report import _label

    return (f'<div class="graphspec-report"><style>{_FRAGMENT_CSS}</style>'
            f"<h3>gradient check: {escape(_label(rep))}</h3>{report_body(rep)}</div>")


# ---------------------------------------------------------------------------------------------
# pages


def _picture_block(ex: Explanation, status: dict[str, str] | None) -> str:
    if ex.graph is None:
        return ""
    svg, why = picture(ex)
    legend = ""
    if status:
        legend = ('<p class="legend">' + " ".join(
            f'<span class="swatch st-{s}"></span>{label}' for s, label in
            (("PASS", "checked, passes"), ("FAIL", "gradient fails"), ("KINK", "at a kink"), ("BLAMED", "blamed node")))
            + '<span class="swatch hl"></span>the current step<span class="swatch arg"></span>its args</p>')
    if svg is None:
        return f'<div class="picture-wrap"><p class="note">{escape(why)}</p></div>'
    fit = '<button type="button" class="fit" title="the whole picture in the width of the page, or at its size">fit</button>'
    return f'<div class="picture-wrap"><div class="picture">{svg}</div><div class="under">{fit}{legend}</div></div>'


def _stepper(ex: Explanation | None, status: dict[str, str] | None) -> str:
    if ex is None or not ex.steps:
        why = "no loss: there is no backward pass to step through" if ex is not None and ex.loss is None else \
            "no backward step to show"
        return f'<div class="stepper empty"><p class="note">{escape(why)}</p></div>'
    data = steps_data(ex)
    data["status"] = status or {}
    grads = ", ".join(f"dL/d{escape(n)} = {escape(v)}" for n, v in data["gradients"].items())
    return f"""<div class="stepper" tabindex="0">
<div class="controls"><button type="button" class="prev" title="previous step (←)">← previous</button>
<span class="counter" aria-live="polite"></span>
<button type="button" class="next" title="next step (→)">next →</button></div>
<div class="step" aria-live="polite"></div>
<details class="grads"><summary>the gradients</summary><code>{grads}</code></details>
{_json_script("steps", data)}
</div>"""


def _section(title: str, parts: Sequence[str], cls: str = "") -> str:
    return f'<section class="{cls}"><h2>{escape(title)}</h2>\n' + "\n".join(p for p in parts if p) + "\n</section>"


def _explain_parts(ex: Explanation, status: dict[str, str] | None) -> list[str]:
    lines = ex.lines[1:ex.lines.index("")] if "" in ex.lines else ex.lines[1:]
    forward = "\n".join(escape(line) for line in lines)
    picture_ = _picture_block(ex, status)
    steps = _stepper(ex, status)
    text = "\n".join(escape(line) for line in ex.lines)
    return [f'<div class="layout">{picture_}<div class="side"><h3>backward pass, step by step</h3>{steps}</div></div>',
            f"<details class=\"forward\"><summary>forward pass</summary><pre>{forward}</pre></details>",
            f'<details class="text"><summary>the whole explanation as text</summary><pre>{text}</pre></details>']


def page(title: str, sections: Sequence[str], generator: str) -> str:
    """One self-contained HTML document."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{generator}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style></head>
<body><header><h1>{escape(title)}</h1><p class="hint">Step through the backward pass with the buttons or the
← → keys; the current node is outlined in the picture.</p></header>
{"".join(sections)}
<script>{_JS}</script>
</body></html>
"""


def check_page(entries: Sequence[Any], graphs: Sequence[Graph | None], explanations: Sequence[Explanation | None]) -> str:
    """The check report of one or more specs as a page. ``entries``: a Report, or a failed entry
    with ``.spec`` and ``.error``, each with its graph and the explanation at the checked point."""
    from .report import _label

    sections = []
    for entry, graph, ex in zip(entries, graphs, explanations, strict=True):
        if not hasattr(entry, "checks"):  # a spec that could not be checked
            sections.append(_section(f"gradient check: {entry.spec}", [
                f'<p class="verdict {_cls("FAIL")}"><b>ERROR</b>: {escape(str(entry.error))}</p>'], "report error"))
            continue
        status = entry.node_states(_folding(ex))
        parts = [report_body(entry)]
        if graph is not None and ex is not None:
            parts += _explain_parts(ex, status)
        sections.append(_section(f"gradient check: {_label(entry)}", parts, "report"))
    ok = sum(getattr(e, "ok", False) for e in entries)
    title = "gradient check" + (f": {_label(entries[0])}" if len(entries) == 1 and hasattr(entries[0], "checks") else
                                f": {ok} of {len(entries)} specs pass" if len(entries) > 1 else "")
    return page(title, sections, CHECK_GENERATOR)


def explain_page(ex: Explanation) -> str:
    """The explanation as a page: the picture, the step-through, the forward pass and the text."""
    g = ex.graph
    name = (g.spec.name if g is not None else None) or (g.program.source if g is not None else None) or "graph"
    parts = []
    if g is not None and g.spec.description:
        parts.append(f'<p class="description">{escape(g.spec.description)}</p>')
    if ex.nonfinite:
        parts.append('<ul class="blame">' + "".join(f"<li>non-finite: {escape(f)}</li>" for f in ex.nonfinite) + "</ul>")
    parts += _explain_parts(ex, None)
    return page(f"explain: {name}", [_section(f"the chain rule, step by step: {name}", parts, "explain")],
                EXPLAIN_GENERATOR)


_FRAGMENT_CSS = """
.graphspec-report table{border-collapse:collapse;margin:.4em 0;font-size:90%}
.graphspec-report th,.graphspec-report td{border-bottom:1px solid #ddd;padding:.15em .6em;text-align:left}
.graphspec-report .st-PASS{color:#15803d;font-weight:bold}.graphspec-report .st-FAIL,.graphspec-report .st-EMPTY,
.graphspec-report .st-BLAMED{color:#b91c1c;font-weight:bold}
.graphspec-report .st-KINK,.graphspec-report .st-UNCLEAR{color:#a16207;font-weight:bold}
.graphspec-report .blame li{color:#b91c1c}
"""

_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--pass:#16a34a;--fail:#dc2626;--kink:#ca8a04;--hl:#f97316}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);
 margin:0 auto;padding:0 1.2em 2em;max-width:1500px}
h1{font-size:1.5em;margin:.6em 0 .1em}h2{font-size:1.25em;border-bottom:2px solid #e5e7eb;padding-bottom:.2em}
h3{font-size:1.05em;margin:.4em 0}h4{margin:.8em 0 .2em}
.hint,.meta,.note{color:var(--muted)}
code,pre,.eq{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
pre{white-space:pre-wrap;background:#f9fafb;border:1px solid #e5e7eb;padding:.5em;overflow:auto}
table{border-collapse:collapse;margin:.4em 0;font-size:.92em}
th,td{border-bottom:1px solid #e5e7eb;padding:.2em .7em;text-align:left;vertical-align:top}
th{background:#f3f4f6}
.st-PASS{color:var(--pass);font-weight:600}.st-FAIL,.st-EMPTY,.st-BLAMED{color:var(--fail);font-weight:600}
.st-KINK,.st-UNCLEAR{color:var(--kink);font-weight:600}
.verdict{font-size:1.1em;padding:.4em .7em;border-left:5px solid currentColor;background:#f9fafb}
.blame li{color:var(--fail)}.diagnosis{font-weight:600}
.layout{display:grid;grid-template-columns:minmax(0,3fr) minmax(22em,2fr);gap:1em;align-items:start}
@media (max-width:1000px){.layout{grid-template-columns:1fr}}
.picture{overflow:auto;max-height:75vh;border:1px solid #e5e7eb;background:#fff}
.picture svg{display:block}
.picture.fitted svg{width:100%;height:auto}
.under{display:flex;gap:1em;align-items:center}
.under button{font:inherit;font-size:.85em;padding:.15em .6em;cursor:pointer}
.legend{font-size:.85em;color:var(--muted)}
.swatch{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:-.1em;border:1px solid #999}
.swatch.st-PASS{background:#bbf7d0}.swatch.st-FAIL{background:#fecaca}.swatch.st-KINK{background:#fef08a}
.swatch.st-BLAMED{background:#fca5a5;border:2px solid var(--fail)}.swatch.hl{border:3px solid var(--hl)}
.swatch.arg{border:3px dashed #2563eb}
g.node.st-PASS polygon,g.node.st-PASS ellipse,g.node.st-PASS path{fill:#bbf7d0}
g.node.st-FAIL polygon,g.node.st-FAIL ellipse,g.node.st-FAIL path{fill:#fecaca}
g.node.st-KINK polygon,g.node.st-KINK ellipse,g.node.st-KINK path{fill:#fef08a}
g.node.st-BLAMED polygon,g.node.st-BLAMED ellipse,g.node.st-BLAMED path{fill:#fca5a5;stroke:var(--fail);stroke-width:3}
g.node.hl polygon,g.node.hl ellipse,g.node.hl path{stroke:var(--hl);stroke-width:4}
g.node.hl-arg polygon,g.node.hl-arg ellipse,g.node.hl-arg path{stroke:#2563eb;stroke-width:3;stroke-dasharray:5 3}
.side{position:sticky;top:.5em}
.stepper{border:1px solid #e5e7eb;padding:.6em;background:#fff}
.stepper:focus{outline:2px solid #93c5fd}
.controls{display:flex;gap:.6em;align-items:center}
.controls button{font:inherit;padding:.3em .9em;cursor:pointer;border:1px solid #9ca3af;border-radius:4px;background:#f9fafb}
.controls button:disabled{opacity:.4;cursor:default}
.counter{flex:1;text-align:center;color:var(--muted)}
.step .expr{font-size:1.05em}
.step dl{display:grid;grid-template-columns:auto 1fr;gap:.1em .8em;margin:.3em 0}
.step dt{color:var(--muted)}.step dd{margin:0;font-family:ui-monospace,monospace;white-space:pre;overflow-x:auto}
.term{border-top:1px dashed #e5e7eb;padding:.4em 0}
.term .eq{white-space:pre-wrap;overflow-x:auto;background:#fff7ed;padding:.2em .4em;display:block}
.fanout{color:#9a3412;font-weight:600}
.step .blamed{color:var(--fail);font-weight:600}
@media print{
 .controls,.hint,.step,.legend .hl,.legend .arg,.under button,details.forward{display:none}
 .layout{display:block}.side{position:static}
 .picture{max-height:none;overflow:visible;border:none}
 .picture svg{max-width:100%;height:auto}
 body{max-width:none;font-size:11pt}
 section{break-inside:auto}
}
"""

_JS = r"""
(function () {
  "use strict";
  var steppers = Array.prototype.slice.call(document.querySelectorAll(".stepper:not(.empty)"));
  var active = steppers[0] || null;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setup(box) {
    var data = JSON.parse(box.querySelector("script.steps").textContent);
    var section = box.closest("section");
    var svg = section ? section.querySelector(".picture svg") : null;
    var nodes = {};
    if (svg) {
      svg.querySelectorAll("g.node").forEach(function (g) {
        var t = g.querySelector("title");
        if (t) nodes[t.textContent] = g;
      });
    }
    Object.keys(data.status || {}).forEach(function (name) {
      if (nodes[name]) nodes[name].classList.add("st-" + data.status[name]);
    });
    var steps = data.steps, i = 0;
    var view = box.querySelector(".step"), counter = box.querySelector(".counter");
    var prev = box.querySelector(".prev"), next = box.querySelector(".next");
    function mark(names, cls) {
      names.forEach(function (n) { if (nodes[n]) nodes[n].classList.add(cls); });
    }
    function show(k) {
      i = Math.max(0, Math.min(steps.length - 1, k));
      var s = steps[i];
      Object.keys(nodes).forEach(function (n) { nodes[n].classList.remove("hl", "hl-arg"); });
      mark(s.highlight, "hl");
      mark(s.inputs, "hl-arg");
      if (nodes[s.node] && nodes[s.node].scrollIntoView) {
        nodes[s.node].scrollIntoView({block: "nearest", inline: "nearest"});
      }
      counter.textContent = "step " + (i + 1) + " of " + steps.length;
      prev.disabled = i === 0;
      next.disabled = i === steps.length - 1;
      view.textContent = "";
      view.setAttribute("data-node", s.node);
      view.appendChild(el("h3", "expr", s.expr));
      var dl = el("dl");
      if (s.value !== "") { dl.appendChild(el("dt", "", "value " + s.node)); dl.appendChild(el("dd", "value", s.value)); }
      dl.appendChild(el("dt", "", "upstream dL/d" + s.node));
      dl.appendChild(el("dd", "upstream", s.upstream));
      view.appendChild(dl);
      if ((data.status || {})[s.node] === "BLAMED") {
        view.appendChild(el("p", "blamed", "the check blames this node's VJP: the numbers below are what it " +
                                           "computes, not the true gradient"));
      }
      if (!s.terms.length) view.appendChild(el("p", "note", "no arg of this node gets a gradient"));
      s.terms.forEach(function (t) {
        var d = el("div", "term");
        d.setAttribute("data-arg", t.arg);
        d.appendChild(el("code", "eq", t.eq));
        var l = el("dl");
        l.appendChild(el("dt", "", "upstream")); l.appendChild(el("dd", "t-upstream", t.upstream));
        if (t.local !== "") {
          l.appendChild(el("dt", "", "local ∂" + s.node + "/∂" + t.arg)); l.appendChild(el("dd", "t-local", t.local));
        } else if (t.rule) {
          l.appendChild(el("dt", "", "rule")); l.appendChild(el("dd", "t-rule", t.rule + (t.shapes ? ",  " + t.shapes : "")));
        }
        l.appendChild(el("dt", "", "product")); l.appendChild(el("dd", "t-product", t.product));
        d.appendChild(l);
        if (t.fanout) d.appendChild(el("p", "fanout", "fan-out, paths add up: " + t.fanout));
        view.appendChild(d);
      });
    }
    prev.addEventListener("click", function () { active = box; show(i - 1); });
    next.addEventListener("click", function () { active = box; show(i + 1); });
    box.addEventListener("click", function () { active = box; });
    box.addEventListener("focus", function () { active = box; });
    box.show = show;
    box.current = function () { return i; };
    show(0);
  }
  steppers.forEach(setup);
  // printed, the whole explanation is open in place of the step-through (closed again after)
  var opened = [];
  window.addEventListener("beforeprint", function () {
    opened = Array.prototype.filter.call(document.querySelectorAll("details.text:not([open])"), function (d) {
      d.open = true;
      return true;
    });
  });
  window.addEventListener("afterprint", function () { opened.forEach(function (d) { d.open = false; }); });
  document.querySelectorAll(".picture-wrap button.fit").forEach(function (b) {
    b.addEventListener("click", function () {
      var p = b.closest(".picture-wrap").querySelector(".picture");
      var on = p.classList.toggle("fitted");
      b.textContent = on ? "actual size" : "fit";
    });
  });
  document.addEventListener("keydown", function (e) {
    if (!active || e.altKey || e.ctrlKey || e.metaKey) return;
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA") return;
    if (e.key === "ArrowRight") { active.show(active.current() + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { active.show(active.current() - 1); e.preventDefault(); }
  });
})();
"""
