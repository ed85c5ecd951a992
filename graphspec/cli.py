"""`python -m graphspec`: a thin layer over the Python API.

Parses arguments, calls the API, renders, and maps errors to exit codes: 0 ok, 1 a check or
an expectation failed, 2 a bad spec or bad usage. Heavy modules are imported inside the
commands so that `--help` is instant. An error is one line on stderr and, when the command's
stdout is JSON, also a record there: {"ok": false, "error": e.to_json()}. What `check` shares
with the other commands is in `commands`, which imports neither `cli` nor `checkcmd`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphspec", description="Computational graphs as JSON: run them, "
                                "differentiate them, and check their gradients.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="forward values, gradients, and the spec's expectations")
    run.add_argument("spec")
    run.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                     help="an input value: JSON (2.0, [[1,2]]) or @file.npy|.npz|.csv|.json")
    run.add_argument("--params", metavar="FILE.npz", help="param values to use (e.g. trained ones)")
    run.add_argument("--format", choices=("table", "json"), default="table")
    run.add_argument("--no-grad", action="store_true", help="forward pass only")

    val = sub.add_parser("validate", help="validate specs without running them")
    val.add_argument("specs", nargs="+", metavar="SPEC", help="spec files, or folders: every spec under them")
    val.add_argument("--format", choices=("table", "json"), default="table")

    sub.add_parser("schema", help="print the JSON Schema of the spec format")

    tr = sub.add_parser("train", help="train the params with the spec's train block, save them")
    tr.add_argument("spec")
    tr.add_argument("-o", "--output", metavar="FILE.npz", help="where to save the params (default: SPEC_STEM.params.npz)")
    tr.add_argument("--epochs", type=int, help="override train.epochs")
    tr.add_argument("--log-steps", action="store_true", help="log every step: the batch, its loss, the gradients, "
                    "and the batch's loss after the update")
    tr.add_argument("--format", choices=("table", "json"), default="table")
    tr.add_argument("--force", action="store_true", help="write -o over an existing file of another kind "
                    "(never over the spec or a file it reads)")

    ex = sub.add_parser("explain", help="the forward and backward pass step by step: the chain rule with numbers")
    ex.add_argument("spec")
    ex.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE")
    ex.add_argument("--unfold", action="store_true", help="walk each function call's body (h1/z, ...), not one "
                    "line per call")
    ex.add_argument("--format", choices=("text", "markdown", "html"), help="text (default), markdown for course "
                    "notes, or html: one page with the picture and a step-through; with -o, the file's suffix "
                    "decides when this is not given (.md, .html)")
    ex.add_argument("-o", "--output", metavar="FILE", help="write the explanation to FILE (atomically)")
    ex.add_argument("--force", action="store_true", help="write -o over an existing file of another kind "
                    "(never over the spec or a file it reads)")

    dr = sub.add_parser("draw", help="the graph as a circuit: values above the wires, gradients below (Graphviz "
                        "DOT, or an image)")
    dr.add_argument("spec")
    dr.add_argument("-o", "--output", metavar="FILE.dot|.svg|.png|.pdf", help="write here (default: DOT on "
                    "stdout); .svg, .png and .pdf need Graphviz's dot (`make system` installs it)")
    dr.add_argument("--no-values", action="store_true", help="structure only: do not run the graph")
    dr.add_argument("--unfold", action="store_true", help="draw each function call's body (h1/z, ...), "
                    "not one box per call")
    dr.add_argument("--force", action="store_true", help="write -o over an existing file of another kind "
                    "(never over the spec or a file it reads)")
    dr.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE")
    dr.add_argument("--local", action="store_true", help="also each gate's local gradient d(gate)/d(arg) on its "
                    "wires (numbers for scalars)")
    dr.add_argument("--check", action="store_true", help="colour the nodes by a gradient check with blame: pass, "
                    "fail, kink, blamed (exit 1 when the check fails, the picture drawn)")
    dr.add_argument("--rankdir", choices=("auto", "LR", "TB"), default="auto", help="left to right, top to bottom, "
                    "or auto: LR up to 6 gates deep, else TB (default)")
    dr.add_argument("--collapse", type=_count, default=8, metavar="N", help="draw each run of more than N "
                    "single-in single-out nodes as one box (default 8; 0: never)")

    ops = sub.add_parser("ops", help="the op table: every op, or the named ones with each attr's doc")
    ops.add_argument("names", nargs="*", metavar="OP", help="ops to describe in full (default: a table of every op)")
    ops.add_argument("--spec", metavar="SPEC", help="also list the functions SPEC defines (they are used as ops)")
    ops.add_argument("--format", choices=("table", "json"), default="table")

    from . import checkcmd

    checkcmd.configure(sub.add_parser("check", help="gradient-check report: every gradient against finite "
                                      "differences"))
    return p


def _count(text: str) -> int:
    """A count of 0 or more, as argparse's type: a bad one is argparse's usage error (exit 2)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0, 1, 2, ...)")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --traceback and --import are global, before or after the command: taken out before the
    # subcommand parses (argparse's own parse_known_args, which also says a missing value)
    end = argv.index("--") if "--" in argv else len(argv)
    pre = argparse.ArgumentParser(prog="graphspec", add_help=False, allow_abbrev=False)
    pre.add_argument("--traceback", action="store_true")
    pre.add_argument("--import", dest="imports", action="append", default=[], metavar="FILE.py|MODULE")
    early, rest = pre.parse_known_args(argv[:end])
    show_traceback, imports, argv = early.traceback, early.imports, rest + argv[end:]
    parser = _parser()
    parser.add_argument("--traceback", action="store_true", help="on an error, print Python's traceback too "
                        "(for a bug in an op or in graphspec); may also follow the command")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="FILE.py|MODULE",
                        help="run this Python code first, for the ops it defines (repeatable; may also follow "
                        "the command); a spec never imports code by itself")
    args = parser.parse_args(argv)
    args.imports = imports
    from .commands import print_errors
    from .errors import GraphspecError, UsageError

    try:
        with warnings.catch_warnings():  # restores showwarning afterwards (main also runs in tests, in process)
            warnings.showwarning = _one_line_warning
            if imports:
                from .userops import import_ops

                for target in imports:
                    import_ops(target)
            return {"run": cmd_run, "validate": cmd_validate, "schema": cmd_schema, "ops": cmd_ops,
                    "train": cmd_train, "explain": cmd_explain, "draw": cmd_draw, "check": _check}[args.command](args)
    except GraphspecError as e:
        specs = [args.spec] if getattr(args, "spec", None) else getattr(args, "specs", None) or []
        if e.source is None and len(specs) == 1 and not isinstance(e, UsageError):
            e.source = specs[0]  # raised while running the one spec (say by the checker): name it
        if show_traceback:
            import traceback

            traceback.print_exception(e, file=sys.stderr)
        print_errors(e)
        if _stdout_is_json(args):
            from .render import write_json

            write_json(sys.stdout, {"ok": False, "error": e.to_json()})
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:
        if show_traceback:  # a bug in graphspec itself: the traceback is what there is to show
            import traceback

            traceback.print_exc(file=sys.stderr)
            return EXIT_FAILED
        raise


def _stdout_is_json(args: argparse.Namespace) -> bool:
    """check -o sends its report to the file: stdout stays empty there."""
    return getattr(args, "format", None) == "json" and not (args.command == "check" and args.output)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """A warning (say NonFiniteWarning from train) as one line, as errors are: not
    Python's two, with graphspec's file, line number and source line."""
    print(f"warning: {message}", file=sys.stderr)


def _check(args: argparse.Namespace) -> int:
    from . import checkcmd

    return checkcmd.run(args)


# -- run ----------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from . import expect, render
    from .commands import load_with, located

    graph, inputs = load_with(args.spec, args.input, args.params)
    p = graph.program
    with located(p.source):
        result = graph.evaluate(inputs, with_grads=not args.no_grad, check_finite="record")
    notes = []
    if not args.no_grad and p.loss is not None:  # a forgotten edge: the gradient is 0 whatever the values
        notes = [f"{p.kind[n][:-1]} '{n}' has grad but the loss does not depend on it" for n in p.unused_wrt]
    checks = expect.compare(result, p.spec.expect, grads=not args.no_grad)
    if args.format == "json":
        render.write_json(sys.stdout, render.run_json(graph, result, checks, notes, grads=not args.no_grad))
    else:
        render.run_table(graph, result, checks, notes, grads=not args.no_grad)
    # a non-finite output or gradient fails the run (the API only warns), as a failed expectation
    # does; expectations not checked (--no-grad, a node off the loss's path) neither pass nor fail
    return EXIT_FAILED if result.findings or any(c.failed for c in checks) else EXIT_OK


# -- train --------------------------------------------------------------------------------------

def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    import io

    import numpy as np

    from .files import write_atomic

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def cmd_train(args: argparse.Namespace) -> int:
    from . import render, train
    from .api import load
    from .commands import guard_output, located
    from .errors import SpecError, UsageError
    from .files import PARAMS

    if args.epochs is not None and args.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    out = Path(args.output) if args.output else Path(Path(args.spec).stem + ".params.npz")
    if out.suffix != ".npz":
        raise UsageError(f"-o {out}: params are saved as .npz")
    graph = load(args.spec)
    source = graph.program.source
    if graph.program.spec.train is None:  # train.train's fallback optimizer is for the API, not an undocumented CLI default
        raise SpecError("spec has no train block: add one with an optimizer, see docs/format.md", source=source,
                        hint='e.g. "train": {"optimizer": {"sgd": {"lr": 0.1}}, "epochs": 10}')
    guard_output(out, PARAMS, [args.spec], "the spec being trained", [graph], force=args.force,
                 flag="-o" if args.output else "output")
    steps: list[Any] = []
    epochs: list[Any] = []
    live = args.format == "table"  # JSON gathers the log and prints it once, at the end

    def on_step(step: Any) -> None:
        steps.append(step)
        if live:
            render.train_step(graph, step, data)

    def on_epoch(epoch: Any) -> None:
        epochs.append(epoch)
        if live:
            render.train_epoch(epoch)

    with located(source):
        data = train.training_data(graph)
        train.train(graph, epochs=args.epochs, loss_after=args.log_steps,
                    on_step=on_step if args.log_steps else None, on_epoch=on_epoch)
    save_npz(out, graph.params)
    if args.format == "json":
        render.write_json(sys.stdout, render.train_json(graph, steps, epochs, str(out)))
    else:
        print(f"saved {len(graph.params)} params to {out}")
    return EXIT_OK


# -- explain, draw -------------------------------------------------------------------------------

def cmd_explain(args: argparse.Namespace) -> int:
    from .commands import load_with, located
    from .explain import explanation

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower() if args.output else ""
        fmt = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}.get(suffix, "text")
    graph, inputs = load_with(args.spec, args.input)
    if args.output:
        from .commands import guard_output
        from .files import EXPLANATION

        guard_output(args.output, EXPLANATION, [args.spec], "the spec being explained", [graph], inputs=args.input,
                     force=args.force)
    with located(graph.program.source):
        ex = explanation(graph, inputs, unfold=args.unfold)
        text = {"text": lambda: ex.text, "markdown": ex.markdown, "html": ex.html}[fmt]()
    if args.output:
        from .files import write_atomic

        write_atomic(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_FAILED if ex.nonfinite else EXIT_OK  # the lines name the node


def cmd_draw(args: argparse.Namespace) -> int:
    from .commands import guard_output, load_with, located
    from .draw import check_drawing_path, to_dot, write_drawing
    from .errors import UsageError
    from .files import DRAWING

    if args.output:
        check_drawing_path(Path(args.output))
    if args.no_values and (args.local or args.check):
        raise UsageError(f"--no-values with {'--local' if args.local else '--check'}: those need the graph run")
    graph, inputs = load_with(args.spec, args.input)
    if args.output:
        guard_output(args.output, DRAWING, [args.spec], "the spec being drawn", [graph], inputs=args.input,
                     force=args.force)
    report = None
    with located(graph.program.source):
        if args.check:
            from .checker import gradcheck

            report = gradcheck(graph, inputs=inputs, blame=True)
        dot = to_dot(graph, values=not args.no_values, unfold=args.unfold, local=args.local,
                     check=report if report is not None else False, rankdir=args.rankdir, collapse=args.collapse,
                     inputs=inputs)
    if args.output:
        write_drawing(dot, Path(args.output))
    else:
        sys.stdout.write(dot)
    if report is not None and not report.ok:  # the picture is drawn; the verdict is the check's, as `check`
        blamed = sorted({n.node for n in report.blamed})
        print(f"check: {report.verdict}" + (f", blamed: {', '.join(blamed)}" if blamed else ""), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# -- validate, schema, ops ----------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from . import render
    from .api import load
    from .commands import expand_specs, print_errors
    from .errors import GraphspecError

    specs, skipped = expand_specs(args.specs)
    for path, why in skipped:
        print(f"note: {path}: skipped, {why}", file=sys.stderr)
    rows = []
    for path in specs:
        try:
            g = load(path)
            rows.append({"spec": path, "ok": True, "nodes": len(g.program.order), "message": "ok"})
        except GraphspecError as e:
            rows.append({"spec": path, "ok": False, "message": str(e), "error": e.to_json(), "exc": e})
    for r in rows:  # errors on stderr in every format, as every command gives them
        if not r["ok"]:
            print_errors(r.pop("exc"))
        elif args.format != "json":
            print(f"ok: {r['spec']} ({r['nodes']} nodes)")
    if args.format == "json":
        render.write_json(sys.stdout, rows)
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_BAD


def cmd_schema(args: argparse.Namespace) -> int:
    from .render import write_json
    from .spec import json_schema

    write_json(sys.stdout, json_schema())
    return EXIT_OK


def cmd_ops(args: argparse.Namespace) -> int:
    from . import render

    functions = {}
    if args.spec:
        from .spec import load_spec

        functions = load_spec(args.spec)[0].functions  # a bad spec is its errors, exit 2
    render.ops_table(args.format, args.names, functions)
    return EXIT_OK
