"""Rendering of `run` results and the op table: rich tables for people, JSON for machines.

The one number formatter (`fmt_num`; `fmt_value` for arrays, `fmt_err` for errors), the one JSON writer
(`dumps`, `write_json`) and the one rich console (`console`) of every command live here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console

SMALL = 24  # arrays up to this many elements are shown whole


def fmt_num(x: Any, digits: int = 6) -> str:
    """One number as every output writes it: six significant digits (a picture's labels: four);
    integers and booleans exactly; None (no number) as '-'."""
    if x is None:
        return "-"
    if isinstance(x, bool | np.bool_):
        return str(bool(x)).lower()
    if isinstance(x, int | np.integer):
        return str(x)
    return f"{float(x):.{digits}g}"


def fmt_err(x: Any) -> str:
    """An error's size (abs or rel), where its magnitude is what matters: 1.2e-07; None as '-'."""
    return "-" if x is None else f"{float(x):.1e}"


def fmt_value(v: Any) -> str:
    """An array up to `SMALL` elements whole, a bigger one by its min, mean, max and norm."""
    a = np.asarray(v)
    if a.ndim == 0:
        return fmt_num(a.item())
    if a.size <= SMALL:
        return np.array2string(a, precision=6, separator=", ", floatmode="maxprec",
                               formatter={"float_kind": fmt_num}, max_line_width=100)
    if a.dtype.kind in "iub":
        return f"min {a.min()}  max {a.max()}"
    return (f"min {fmt_num(a.min())}  mean {fmt_num(a.mean())}  max {fmt_num(a.max())}  "
            f"norm {fmt_num(np.linalg.norm(a.ravel()))}")


def to_json(v: Any) -> Any:
    a = np.asarray(v)
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        return np.where(np.isfinite(a), a, None).tolist() if a.ndim else None
    return a.tolist()


def dumps(doc: Any) -> str:
    """JSON as every command writes it: indented, a newline at the end, and no NaN or Infinity
    (not JSON: `to_json` makes them null first)."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def write_json(stream: IO[str], doc: Any) -> None:
    stream.write(dumps(doc))


def console(file: IO[str] | None = None, width: int | None = None, *, stderr: bool = False) -> Console:
    """The rich console of every command and progress bar; user text is never highlighted. Into
    ``file``: plain text, ``width`` columns (120). On stdout: the terminal's width, or 160 columns
    when piped (logs and CI read it, not an 80-column terminal). ``stderr``: the progress bars'."""
    from rich.console import Console

    if file is not None:
        return Console(file=file, width=width or 120, no_color=True, highlight=False, force_terminal=False)
    if stderr:
        return Console(file=sys.stderr, highlight=False)
    return Console(highlight=False, width=width or (None if sys.stdout.isatty() else 160))


def run_json(graph: Any, result: Any, checks: list[Any], notes: list[str], grads: bool = True) -> dict[str, Any]:
    """A non-finite finding of ``result`` (each naming the first node that produced an inf or
    nan) makes the run fail, as a failed expectation does. Expectations not checked do not."""
    from .expect import unchecked_summary

    p = graph.program
    out: dict[str, Any] = {
        "spec": p.source, "name": p.spec.name,
        "outputs": {n: {"shape": list(np.shape(result.values[n])), "value": to_json(result.values[n])}
                    for n in p.outputs},
    }
    if p.loss is not None:
        out["loss"] = {"node": p.loss, "value": to_json(result.loss)}
        if grads:
            out["grads"] = {n: {"shape": list(np.shape(g)), "value": to_json(g)} for n, g in result.grads.items()
                            if n in p.wrt}
            out["node_grads"] = {n: to_json(g) for n, g in result.grads.items() if n not in p.wrt}
    out["expect"] = [{"kind": c.kind, "name": c.name, "ok": c.ok if c.checked else None, "status": c.status,
                      **({"note": c.note} if c.note else {}), "expected": to_json(c.expected),
                      "got": None if c.got is None else to_json(c.got), "max_abs_err": c.max_abs_err
                      if np.isfinite(c.max_abs_err) else None} for c in checks]
    out["not_checked"] = unchecked_summary(checks)
    out["nonfinite"] = [str(f) for f in result.findings]
    out["findings"] = [{"kind": f.kind, "loc": f.loc, "message": f.message} for f in result.findings]
    out["warnings"] = notes
    out["ok"] = not result.findings and not any(c.failed for c in checks)
    return out


def run_table(graph: Any, result: Any, checks: list[Any], notes: list[str], grads: bool = True) -> None:
    from rich.table import Table

    from .expect import unchecked_summary

    p = graph.program
    con = console()  # user text goes through esc(): a description may hold "[/i]"
    title = p.spec.name or p.source or "spec"
    con.print(f"[bold]{esc(title)}[/bold]" + (f": {esc(p.spec.description)}" if p.spec.description else ""),
              soft_wrap=True)  # the terminal wraps it; no newlines inserted into the user's text

    con.print("[bold]outputs[/bold]")
    t = Table()
    for col in ("name", "op", "shape", "value"):
        t.add_column(col)
    # a call's function by its name: a written-out call's output reads its body's last op, and a call with a
    # hand-written vjp is an op keyed f/<hash> in the table
    ops = {s.name: s.op.name for s in graph.plan.steps}
    for n in p.outputs:
        v = result.values[n]
        op = p.calls[n][0] if n in p.calls else ops.get(n) or p.kind.get(n, "")
        t.add_row(n, op, str(tuple(np.shape(v))), esc(fmt_value(v)))
    con.print(t)

    if p.loss is not None and grads:
        seed = p.seed
        how = "" if seed is None or (seed.shape == () and seed == 1) else f", seed {fmt_value(seed)}"
        con.print(f"[bold]gradients[/bold] of loss '{p.loss}' = {esc(fmt_value(result.loss))}{esc(how)}")
        t = Table()
        for col in ("name", "kind", "shape", "dL/d·"):
            t.add_column(col)
        for n in p.wrt:
            g = result.grads[n]
            t.add_row(n, p.kind[n][:-1], str(tuple(np.shape(g))), esc(fmt_value(g)))
        con.print(t)

    for note in notes:
        con.print(f"[yellow]warning:[/yellow] {esc(note)}")
    for finding in result.findings:
        con.print(f"[red]non-finite:[/red] {esc(str(finding))}")
    if checks:
        held = sum(c.ok for c in checks)
        checked = sum(c.checked for c in checks)
        unchecked = unchecked_summary(checks)
        parts = [f"{held} of {checked} hold"] if checked else []
        if checked < len(checks):
            parts.append(f"{len(checks) - checked} not checked")
        con.print(f"[bold]expectations[/bold]: {', '.join(parts)}")
        t = Table()
        for col in ("", "what", "expected", "got", "max abs err"):
            t.add_column(col)
        for c in checks:
            mark = "[green]✓[/green]" if c.ok else "[red]✗[/red]" if c.checked else "[dim]–[/dim]"
            got = f"not checked ({c.note})" if not c.checked else "missing" if c.got is None else fmt_value(c.got)
            t.add_row(mark, f"{c.kind} {c.name}", esc(fmt_value(c.expected)), esc(got),
                      fmt_err(c.max_abs_err) if c.checked else "")
        con.print(t)
        failed = sum(c.failed for c in checks)
        if failed:
            con.print(f"[red]{failed} expectation(s) failed[/red]")
        elif checked:
            con.print("[green]all checked expectations hold[/green]" if unchecked else "[green]all expectations hold[/green]")
        for line in unchecked:
            con.print(f"[yellow]{esc(line)}[/yellow]")
    if result.findings:
        con.print(f"[red]failed: {'a non-finite value' if len(result.findings) == 1 else 'non-finite values'} "
                  "(see above)[/red]")


def _batch_text(feed: dict[str, Any]) -> str:
    rows = {k: np.asarray(v) for k, v in feed.items() if np.ndim(v)}
    if all(r.size <= 4 for r in rows.values()):
        return " ".join(f"{k}={fmt_value(r)}" for k, r in rows.items())
    return f"{len(next(iter(rows.values())))} rows" if rows else ""


def train_step(graph: Any, s: Any) -> None:
    p = graph.program
    grads = "  ".join(f"d{p.loss}/d{n} = {fmt_value(g)}" for n, g in s.grads.items())
    after = f"  loss after {fmt_num(s.loss_after)}" if s.loss_after is not None else ""
    print(f"step {s.step} (epoch {s.epoch}) {_batch_text(s.feed or {})}: loss {fmt_num(s.loss)}  {grads}{after}")


def epoch_line(e: Any) -> str:
    """One epoch of the training log, as the log and the progress bar print it."""
    return f"epoch {e.epoch}: mean loss {fmt_num(e.loss)}{_metrics_text(e)}"


def _metrics_text(e: Any) -> str:
    parts = []
    for k in ("accuracy", "val_loss", "val_accuracy"):
        v = getattr(e, k)
        if v is not None:
            parts.append(f"{k.replace('_', ' ')} {v:.4f}" if "accuracy" in k else f"{k.replace('_', ' ')} {fmt_num(v)}")
    parts += [f"{k} {fmt_num(v)}" for k, v in e.metrics.items()]
    return "".join(f"  {p}" for p in parts)


def train_epoch(e: Any) -> None:
    print(epoch_line(e), flush=True)


class TrainProgress:
    """A rich progress bar on a terminal: epoch, step, the last loss, the metrics and the ETA;
    each logged epoch is printed above it as a line."""

    def __init__(self, con: Console | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(bar_width=12),
                                 TextColumn("step"), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                                 TimeRemainingColumn(), console=con or console(), transient=True)
        self.task: Any = None
        self.epochs = 0
        self.last = ""

    def start(self, cfg: Any) -> None:
        self.epochs = cfg.epochs
        self.progress.start()
        self.task = self.progress.add_task("train", total=None, epoch=1, epochs=cfg.epochs, status="")

    def step(self, s: Any) -> None:
        self.progress.update(self.task, completed=s.step, total=s.steps, epoch=s.epoch + 1,
                             status=f"loss {s.loss:.4g}{self.last}")

    def epoch(self, e: Any) -> None:
        # the last logged epoch's metrics stay on the bar, short: it has to fit 80 columns
        self.last = "".join(f"  {label} {v:.3f}" for label, v in (("acc", e.accuracy),
                                                                    ("val acc", e.val_accuracy)) if v is not None)
        self.progress.console.print(epoch_line(e), markup=False,
                                    highlight=False)

    def stop(self) -> None:
        self.progress.stop()


def train_json(graph: Any, steps: list[Any], epochs: list[Any], saved: str, log: list[Any] | None = None) -> dict[str, Any]:
    from .train import final_metrics

    p = graph.program
    return {
        "spec": p.source, "saved": saved,
        # the last epoch's metrics (null where not measured)
        **{k: to_json(v) if v is not None else None for k, v in final_metrics(log if log is not None else epochs).items()},
        # to_json: a diverged loss is null, not an inf that json.dump refuses
        "epochs": [{k: (to_json(v) if isinstance(v, float) else v) for k, v in e.row().items()} for e in epochs],
        "steps": [{"step": s.step, "epoch": s.epoch, "loss": to_json(s.loss),
                   "loss_after": None if s.loss_after is None else to_json(s.loss_after),
                   "grads": {n: to_json(g) for n, g in s.grads.items()}} for s in steps],
        "params": {n: to_json(v) for n, v in graph.params.items()},
    }


def esc(text: str) -> str:
    """User text (descriptions, values, messages) printed literally, not read as rich markup."""
    from rich.markup import escape

    return escape(text)


def _op_row(op: Any) -> dict[str, Any]:
    if op.arity is not None:
        args = ", ".join(op.args)
    else:  # a variable count: named positions (conv2d's optional bias) or any number (concat)
        args = f"{', '.join(op.args)} (variable count)" if op.args else "x, ..."
    return {"op": op.name, "args": args, "attrs": ", ".join(f"{k}={json.dumps(a.default)}" for k, a in op.attrs.items()),
            "doc": op.doc, "kink": op.kink is not None, "jvp": op.jvp is not None,
            "rules": {op.arg_name(i): r for i, r in enumerate(op.rules) if r},
            "attr_docs": [{"attr": k, "kind": a.kind, "default": a.default, **({"choices": list(a.choices)} if a.choices else {}),
                           "doc": a.doc} for k, a in op.attrs.items()]}


def _function_row(name: str, fn: Any) -> dict[str, Any]:
    """A spec's function as a row of the op table (it is used as an op)."""
    rules = [r for r in ("vjp", "jvp") if getattr(fn, r) is not None]
    doc = f"function of the spec{' with a hand-written ' + ' and '.join(rules) if rules else ''}" + \
        (f": {fn.doc}" if fn.doc else "")
    return {"op": name, "args": ", ".join(fn.args), "attrs": ", ".join(f"{k}={json.dumps(v)}" for k, v in fn.attrs.items()),
            "doc": doc, "kink": False, "jvp": True, "function": True,
            "attr_docs": [{"attr": k, "kind": "number or array", "default": v, "doc": "a constant the body reads"}
                          for k, v in fn.attrs.items()]}


def ops_table(fmt: str = "table", names: Sequence[str] = (), functions: dict[str, Any] | None = None) -> None:
    """Every op as a table, or the named ones in full (each attr with its kind, default and doc);
    ``functions``: a spec's functions, listed after the ops (a call uses them as ops)."""
    from .errors import UsageError, did_you_mean
    from .ops import OPS
    from .userops import load_entry_points

    load_entry_points()  # the table lists installed packages' ops too
    functions = functions or {}
    for name in names:
        if name not in OPS and name not in functions:
            hint = did_you_mean(name, [*OPS, *functions])
            raise UsageError(f"no op named {name!r}" + (f" ({hint})" if hint else "; see `python -m graphspec ops`"))
    everything = {**{n: _op_row(op) for n, op in OPS.items()}, **{n: _function_row(n, f) for n, f in functions.items()}}
    rows = [everything[n] for n in names] if names else list(everything.values())
    if fmt == "json":
        import sys

        write_json(sys.stdout, rows)
        return
    from rich.table import Table

    con = console()
    if not names:
        t = Table(title=f"{len(rows)} ops")
        for col in ("op", "args", "attrs (defaults)", "does"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["op"], r["args"], esc(r["attrs"]), esc(r["doc"]))
        con.print(t)
        return
    for r in rows:
        con.print(f"[bold]{r['op']}[/]({esc(r['args'])}): {esc(r['doc'])}")
        con.print(f"  kink: {'yes' if r['kink'] else 'no'}; forward mode (JVP): {'yes' if r['jvp'] else 'no'}")
        if r.get("rules"):  # g is the output's cotangent dL/d(ans)
            con.print("  backward: " + "; ".join(f"dL/d{a} = {esc(rule)}" for a, rule in r["rules"].items()), highlight=False)
        if r["attr_docs"]:
            t = Table(show_header=True, box=None, padding=(0, 2))
            for col in ("attr", "kind", "default", "meaning"):
                t.add_column(col)
            for a in r["attr_docs"]:
                kind = a["kind"] + (f" ({', '.join(a['choices'])})" if "choices" in a else "")
                t.add_row(a["attr"], kind, json.dumps(a["default"]), esc(a["doc"]))
            con.print(t)
