"""`python -m graphspec check`: the gradient-check report of specs, or `--ops` for the op table.

Exit codes: 0 every check passes (kinks allowed unless --strict), 1 a check fails, 2 a bad spec or
bad usage (raised as SpecError / UsageError; cli.main prints them and maps them to 2). What it shares
with the other commands comes from `commands`; nothing here imports `cli`. With several
specs a bad one does not stop the others: it is an ERROR entry of the report, and the exit code is
the worst of all (2 over 1 over 0).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("table", "json", "markdown", "html")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="*", metavar="SPEC", help="spec files to check, or folders: every spec under them")
    p.add_argument("--ops", action="store_true", help="sweep every op of the op table over its sample inputs")
    p.add_argument("--op", action="append", default=[], metavar="NAME", help="with --ops: only this op (repeatable)")
    p.add_argument("--dtype", action="append", choices=("float64", "float32"), metavar="DTYPE",
                   help="with --ops: sample dtypes, float64 and/or float32 (default: both)")
    p.add_argument("--fast", action="store_true",
                   help="random directional derivatives instead of every element (plus JVP vs VJP)")
    p.add_argument("--directions", type=int, default=4, metavar="K", help="directions per input with --fast (4)")
    p.add_argument("--taylor", action="store_true", help="Taylor remainder test: observed orders (~2 right, ~1 wrong)")
    p.add_argument("--strict", action="store_true", help="kinks count as failures")
    p.add_argument("--max-elements", type=int, metavar="N", help="check a random sample of N elements of bigger inputs")
    p.add_argument("--all", action="store_true", help="every element of every input, however big "
                   "(by default inputs past 100,000 elements, or too costly to difference, are sampled)")
    p.add_argument("--budget", metavar="TIME", help="check a random sample of elements (seeded by --seed) that fits "
                   "this time, e.g. 30s or 2m; the report gives its size and coverage")
    p.add_argument("--workers", type=int, metavar="N", help="spread the full check's differences over N processes "
                   "(the result is the same as in one)")
    p.add_argument("--memory", metavar="BYTES", help="stacked perturbations held per pass, e.g. 512MB or 1GiB (default 8MiB)")
    p.add_argument("--blame", action="store_true", help="check every node's own VJP and JVP even when all pass")
    p.add_argument("--wrt", action="append", metavar="NAME", help="check only these inputs (repeatable)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                   help="an input value: JSON or @file.npy|.npz|.csv|.json")
    p.add_argument("--params", metavar="FILE.npz", help="param values to check at (e.g. trained ones)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions and cotangents (0)")
    p.add_argument("--verbose", "-v", action="store_true", help="the worst elements of every input, not only failing ones")
    p.add_argument("--format", choices=FORMATS, help="table (the default, piped too), json, markdown or html "
                   "(a page with the picture and a step-through of the backward pass); "
                   "with -o, the file's suffix decides when this is not given")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE (atomically)")
    p.add_argument("--force", action="store_true", help="write -o over an existing file of another kind "
                   "(never over a spec or a file it reads)")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower() if args.output else ""
    return {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}.get(suffix, "table")


def _check_args(args: argparse.Namespace) -> None:
    from .errors import UsageError

    if not args.specs and not args.ops:
        raise UsageError("check needs SPEC files, or --ops to sweep the op table")
    if args.ops and args.specs:
        raise UsageError("give SPEC files or --ops, not both")
    if args.max_elements is not None and args.max_elements < 1:
        raise UsageError("--max-elements must be at least 1")
    if args.all and args.max_elements is not None:
        raise UsageError("give --all or --max-elements, not both")
    from .checker.progress import parse_bytes, parse_seconds

    for value, parse in ((args.budget, parse_seconds), (args.memory, parse_bytes)):
        if value is not None:
            try:
                parse(value)
            except ValueError as e:
                raise UsageError(f"--{'budget' if parse is parse_seconds else 'memory'}: {e}") from None
    if args.budget is not None and (args.all or args.max_elements is not None or args.fast):
        raise UsageError("--budget picks the sample itself: not with --all, --max-elements or --fast")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.directions < 1:
        raise UsageError("--directions must be at least 1")
    if args.seed < 0:
        raise UsageError("--seed must be a non-negative integer (numpy's generators take no negative seeds)")
    if (args.op or args.dtype) and not args.ops:
        raise UsageError("--op and --dtype go with --ops")
    if args.ops:  # the sweep checks each sample in full, its own way: these would be silently ignored
        spec_only = [flag for flag, given in (
            ("--fast", args.fast), ("--taylor", args.taylor), ("--strict", args.strict),
            ("--max-elements", args.max_elements is not None), ("--all", args.all), ("--budget", args.budget),
            ("--workers", args.workers is not None), ("--memory", args.memory), ("--blame", args.blame),
            ("--wrt", args.wrt), ("--input", args.input), ("--params", args.params), ("--verbose", args.verbose)) if given]
        if spec_only:
            raise UsageError(f"{', '.join(spec_only)} {'goes' if len(spec_only) == 1 else 'go'} with SPEC files, "
                             "not --ops (the sweep checks every sample of each op in full)")
    if (args.input or args.params) and len(args.specs) > 1:
        raise UsageError("--input and --params apply to one spec; give one SPEC")
    if args.ops and _format(args) == "html":
        raise UsageError("--ops writes a table, json or markdown, not html")


def _emit(args: argparse.Namespace, fmt: str, render_table: Any, text: str | None) -> None:
    """Print to the terminal, or write -o atomically (a table written to a file is plain text)."""
    from .files import write_atomic
    from .render import console

    if args.output:
        if text is None:
            import io

            buf = io.StringIO()
            render_table(console(buf))
            text = buf.getvalue()
        write_atomic(args.output, text)
        return
    if text is None:
        render_table(console())
    else:
        sys.stdout.write(text)


def _run_ops(args: argparse.Namespace, fmt: str) -> int:
    from . import report
    from .checker import check_ops
    from .errors import UsageError
    from .ops import OPS
    from .render import dumps
    from .userops import load_entry_points

    load_entry_points()  # the sweep covers installed packages' ops too

    for name in args.op:
        if name not in OPS:
            from .errors import did_you_mean

            raise UsageError(f"--op {name}: no such op" + (f" ({did_you_mean(name, OPS)})" if did_you_mean(name, OPS) else ""))
    rows = check_ops(args.op or None, dtypes=tuple(dict.fromkeys(args.dtype or ("float64", "float32"))))
    text = {"json": lambda: dumps(report.ops_json(rows)), "markdown": lambda: report.ops_markdown(rows),
            "table": lambda: None}[fmt]()
    _emit(args, fmt, lambda con: report.print_ops(rows, con), text)
    return 0 if report.ops_ok(rows) else 1


@dataclass
class Failed:
    """A spec that could not be checked (a bad spec, bad --input): an ERROR entry of the report."""

    spec: str
    error: Any  # the GraphspecError

    ok = False

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "name": None, "status": "ERROR", "ok": False, "error": self.error.to_json()}

    def markdown(self) -> str:
        return f"## Gradient check: {self.spec}: **ERROR**\n\n`{self.error}`\n"

    def print(self, con: Any) -> None:
        from rich.markup import escape

        con.print(f"[bold]gradient check: {escape(self.spec)}[/bold]")
        con.print(f"[bold red]ERROR[/]: {escape(str(self.error))}")


def _summary(entries: list[Any]) -> str:
    bad = sum(isinstance(e, Failed) for e in entries)
    ok = sum(e.ok for e in entries)
    return f"{ok} of {len(entries)} specs pass" + (f", {bad} could not be checked" if bad else "")


def _explained(entries: list[Any], loaded: list[Any]) -> tuple[list[Any], list[Any]]:
    """Each checked spec's graph and its explanation at the checked point (None where it failed)."""
    import numpy as np

    from .errors import GraphspecError
    from .explain import explanation

    graphs, explanations = [], []
    for entry, pair in zip(entries, loaded, strict=True):
        if isinstance(entry, Failed) or pair is None:
            graphs.append(None)
            explanations.append(None)
            continue
        graph, inputs = pair
        try:
            with np.errstate(all="ignore"):
                ex = explanation(graph, inputs)
        except GraphspecError as e:  # a VJP that raises: the report says it; the page has no step-through
            print(f"note: {graph.program.source}: no step-through in the page: {e}", file=sys.stderr)
            ex = None
        graphs.append(graph)
        explanations.append(ex)
    return graphs, explanations


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from . import report
    from .checker import gradcheck
    from .commands import expand_specs, guard_output, load_with, located, print_errors
    from .errors import GraphspecError, UsageError
    from .files import REPORT
    from .render import dumps

    _check_args(args)
    fmt = _format(args)
    specs, skipped = expand_specs(args.specs)
    if (args.input or args.params) and len(specs) > 1:
        raise UsageError(f"--input and --params apply to one spec; give one SPEC (these are {len(specs)})")
    if args.ops:
        if args.output:
            guard_output(args.output, REPORT, [], "", inputs=args.input, params=args.params, force=args.force)
        return _run_ops(args, fmt)
    entries: list[Any] = []  # Report or Failed, in the order of the specs
    loaded: list[Any] = []  # (graph, inputs) or None: the html page draws and explains each
    for path in specs:
        try:
            entries.append(load_with(path, args.input, args.params))
        except GraphspecError as e:
            entries.append(Failed(path, e))
        loaded.append(None if isinstance(entries[-1], Failed) else entries[-1])
    if args.output:  # before any work, now that the files the specs read are known
        what = "the spec being checked" if len(specs) == 1 else "a spec being checked"
        guard_output(args.output, REPORT, specs, what, [e[0] for e in entries if not isinstance(e, Failed)],
                     inputs=args.input, params=args.params, force=args.force)
    for path, why in skipped:
        print(f"note: {path}: skipped, {why}", file=sys.stderr)
    for e in entries:
        if isinstance(e, Failed):
            print_errors(e.error)
    for i, entry in enumerate(entries):
        if isinstance(entry, Failed):
            continue
        graph, inputs = entry
        try:
            # perturbing a non-finite input makes more of them: the report says so, numpy need not warn on stderr
            with np.errstate(all="ignore"), located(graph.program.source):
                entries[i] = gradcheck(graph, inputs=inputs, wrt=args.wrt, fast=args.fast, directions=args.directions,
                                       taylor=args.taylor, strict=args.strict, max_elements=args.max_elements,
                                       blame=True if args.blame else None, seed=args.seed, all_elements=args.all,
                                       budget=args.budget, workers=args.workers, memory=args.memory)
        except GraphspecError as e:
            print_errors(e)
            entries[i] = Failed(graph.program.source or specs[i], e)

    def as_json() -> str:
        doc = report.reports_json([e for e in entries if not isinstance(e, Failed)])
        doc["ok"] = all(e.ok for e in entries)
        doc["reports"] = [e.to_json() if isinstance(e, Failed) else report.report_json(e) for e in entries]
        doc["skipped"] = [{"spec": f, "reason": why} for f, why in skipped]
        return dumps(doc)

    def as_markdown() -> str:
        parts = [e.markdown() if isinstance(e, Failed) else report.report_markdown(e, args.verbose) for e in entries]
        notes = "".join(f"> note: {f}: skipped, {why}\n" for f, why in skipped)
        summary = f"\n**{_summary(entries)}**\n" if len(entries) > 1 else ""  # the table's closing line too
        return "\n".join(parts) + ("\n" + notes if notes else "") + summary

    def as_html() -> str:
        from .html import check_page

        return check_page(entries, *_explained(entries, loaded))

    text = {"json": as_json, "markdown": as_markdown, "html": as_html, "table": lambda: None}[fmt]()

    def table(con: Any) -> None:
        for e in entries:
            if isinstance(e, Failed):
                e.print(con)
            else:
                report.print_report(e, con, args.verbose)
        if len(entries) > 1:
            con.print(_summary(entries), markup=False)

    _emit(args, fmt, table, text)
    if args.output:
        print(f"wrote {args.output}: {_summary(entries)}", file=sys.stderr)
    # the worst code wins: a bad spec (2, or an error's own code) over a failed check (1) over a pass
    return max(e.error.exit_code if isinstance(e, Failed) else 0 if e.ok else 1 for e in entries)
