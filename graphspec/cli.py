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

    tr = sub.add_parser("train", help="train the params with the spec's train block (or the documented defaults), "
                        "save them")
    tr.add_argument("spec")
    tr.add_argument("-o", "--output", metavar="FILE.npz", help="where to save the params (default: SPEC_STEM.params.npz); "
                    "checkpoints go beside it, as STEM.ckpt.npz")
    o = tr.add_argument_group("overrides of the train block (docs/format.md, Train)")
    o.add_argument("--epochs", type=int, help="train.epochs")
    o.add_argument("--lr", type=float, help="the optimizer's lr")
    o.add_argument("--batch-size", type=int, help="train.batch_size")
    o.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "adamw"),
                   help="the update rule (momentum: sgd with momentum 0.9 unless --momentum)")
    o.add_argument("--momentum", type=float, help="sgd's momentum")
    o.add_argument("--dampening", type=float, help="sgd's dampening")
    o.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None, help="sgd's Nesterov momentum")
    o.add_argument("--weight-decay", type=float, help="the optimizer's weight_decay")
    o.add_argument("--betas", type=float, nargs=2, metavar=("B1", "B2"), help="adam's and adamw's betas")
    o.add_argument("--eps", type=float, help="adam's and adamw's eps")
    o.add_argument("--seed", type=int, help="the spec's seed: redraws the params' init, the shuffle and the split")
    o.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None, help="train.shuffle")
    o.add_argument("--log-every", type=int, help="train.log_every")
    o.add_argument("--metrics", metavar="M,M", help="train.metrics, comma-separated: loss, accuracy, node names")
    o.add_argument("--validation", action="append", metavar="SHARE|NAME=FILE",
                   help="train.validation: a share of the rows (0.2) or a file per input (repeat)")
    o.add_argument("--data", action="append", metavar="NAME=FILE", help="train.data: a file per input (repeat)")
    o.add_argument("--schedule", metavar="JSON", help='train.schedule, e.g. \'{"cosine": {"t_max": 50}}\'')
    tr.add_argument("--log-steps", action="store_true", help="log every step: the batch, its loss, the gradients, "
                    "and the batch's loss after the update")
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no epoch lines")
    tr.add_argument("--log-csv", metavar="FILE.csv", help="write the epochs' metrics here (rewritten every epoch)")
    tr.add_argument("--plot", metavar="FILE.svg|.png", help="the training and validation curves (.png needs matplotlib)")
    tr.add_argument("--checkpoint-every", type=int, metavar="N", help="save a checkpoint every N steps (STEM.ckpt.npz)")
    tr.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint of this spec")
    tr.add_argument("--format", choices=("table", "json"), default="table")
    tr.add_argument("--force", action="store_true", help="write -o over an existing file of another kind "
                    "(never over the spec or a file it reads)")

    ex = sub.add_parser("explain", help="the forward and backward pass step by step: the chain rule with numbers")
    ex.add_argument("spec")
    ex.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE")
    ex.add_argument("--params", metavar="FILE.npz", help="param values to use (e.g. trained ones)")
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
    # what is left for the main parser before the command are abbreviations (--imp, --trace): taken too
    show_traceback = show_traceback or args.traceback
    args.imports = imports = imports + args.imports
    from .commands import print_errors
    from .errors import GraphspecError, UsageError

    real_stdout = sys.stdout
    sys.stdout = _Stdout(real_stdout)  # type: ignore[assignment]
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
    finally:
        sys.stdout = real_stdout


class _Stdout:
    """sys.stdout while a command runs. Once its reader has gone (`graphspec check ... | head`), the
    rest is dropped and the command ends with its own exit code: a broken pipe is no verdict (rich
    would exit 1, a failed check; a BrokenPipeError out of the command, 0 for a failed one)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        import os

        self.gone = True
        try:  # Python's own flush at exit would fail again: stdout goes to /dev/null (Python's docs, SIGPIPE)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no file descriptor (a test's capture): nothing to flush at exit
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self._stream, name)


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

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    import json

    from .errors import UsageError

    for flag, v in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--log-every", args.log_every),
                    ("--checkpoint-every", args.checkpoint_every)):
        if v is not None and v < 1:
            raise UsageError(f"{flag} must be at least 1")
    if args.lr is not None and not args.lr > 0:
        raise UsageError("--lr must be greater than 0")
    if args.seed is not None and args.seed < 0:  # as the spec's seed, and check's --seed
        raise UsageError("--seed must be a non-negative integer (numpy's generators take no negative seeds)")
    validation: Any = None
    if args.validation:
        files = [v for v in args.validation if "=" in v]
        if (files and len(files) < len(args.validation)) or (not files and len(args.validation) > 1):
            raise UsageError("--validation is one share (0.2) or NAME=FILE for each input, not both")
        if files:  # the command line's paths are the working directory's, not the spec's
            validation = {k: str(Path(f).resolve()) for k, f in (v.split("=", 1) for v in files)}
        else:
            try:
                validation = float(args.validation[0])
            except ValueError:
                raise UsageError(f"--validation {args.validation[0]}: expected a share like 0.2 or NAME=FILE") from None
    data = None
    if args.data:
        bad = [d for d in args.data if "=" not in d]
        if bad:
            raise UsageError(f"--data {bad[0]}: expected NAME=FILE")
        data = {k: str(Path(f).resolve()) for k, f in (d.split("=", 1) for d in args.data)}
    schedule = None
    if args.schedule:
        try:
            schedule = json.loads(args.schedule)
        except ValueError as e:
            raise UsageError(f"--schedule: not JSON ({e})") from None
    return {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "momentum": args.momentum, "dampening": args.dampening, "nesterov": args.nesterov,
            "weight_decay": args.weight_decay, "betas": args.betas, "eps": args.eps, "shuffle": args.shuffle,
            "log_every": args.log_every, "metrics": args.metrics.split(",") if args.metrics else None,
            "validation": validation, "schedule": schedule, "data": data}


def cmd_train(args: argparse.Namespace) -> int:
    import signal

    from . import curves, render, train
    from .api import load
    from .commands import guard_output, located
    from .errors import UsageError
    from .files import DRAWING, PARAMS, TRAIN_LOG, train_files

    overrides = _overrides(args)
    out = Path(args.output) if args.output else Path(Path(args.spec).stem + ".params.npz")
    if out.suffix != ".npz":
        raise UsageError(f"-o {out}: params are saved as .npz")
    if args.plot:
        curves.check_plot_path(args.plot)
    if args.log_csv and Path(args.log_csv).suffix.lower() != ".csv":
        raise UsageError(f"--log-csv {args.log_csv}: the log is written as .csv")
    graph = load(args.spec)
    source = graph.program.source
    ckpt = train.checkpoint_path(out)
    given = [(f, f"the {flag} {name} file") for flag, files in (("--data", overrides["data"]),
                                                                ("--validation", overrides["validation"]))
             if isinstance(files, dict) for name, f in files.items()]
    meta: dict[str, Any] = {}
    if args.resume is not None:  # read before any work: the resumed run's data files are protected too
        with located(source):
            meta = train.read_checkpoint(args.resume, graph)[0]
        given += train_files(graph.program.base, meta["config"].get("data"), meta["config"].get("validation"),
                             reader="the resumed run")
    resumed = [(args.resume, "the --resume file")] if args.resume is not None else []
    guard_output(out, PARAMS, [args.spec], "the spec being trained", [graph], force=args.force,
                 flag="-o" if args.output else "output", given=given + resumed)
    guard_output(ckpt, PARAMS, [args.spec], "the spec being trained", [graph], force=args.force, flag="checkpoint",
                 given=given)  # the checkpoint beside -o may be the --resume file: resuming replaces it
    for flag, path, kind in (("--log-csv", args.log_csv, TRAIN_LOG), ("--plot", args.plot, DRAWING)):
        if path:
            guard_output(path, kind, [args.spec], "the spec being trained", [graph], force=args.force, flag=flag,
                         given=given + resumed)
    with located(source):
        if args.resume is None:
            cfg = train.config(graph, overrides)  # a bad override: exit 2 before any work
        if args.seed is not None and args.resume is None:
            train.reseed(graph, args.seed)
    steps: list[Any] = []
    epochs: list[Any] = []
    log: list[Any] = []
    written: list[int] = []  # the CSV's lengths as on_log wrote it
    live = args.format == "table" and not args.quiet  # JSON gathers the log and prints it once, at the end
    bar = None
    if live and not args.log_steps and _is_terminal():
        bar = render.TrainProgress()

    def on_step(step: Any) -> None:
        if args.log_steps:
            steps.append(step)
            if live:
                render.train_step(graph, step)
        if bar is not None:
            bar.step(step)

    def on_epoch(epoch: Any) -> None:
        epochs.append(epoch)
        if bar is not None:
            bar.epoch(epoch)
        elif live:
            render.train_epoch(epoch)

    def on_log(entries: list[Any]) -> None:  # every epoch reaches the CSV, shown or not
        log[:] = entries
        if args.log_csv:
            curves.write_csv(args.log_csv, log)
            written.append(len(log))

    interrupted: list[int] = []
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:  # finish the step, then save: a second Ctrl-C stops at once
        interrupted.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        with located(source):
            if args.resume is not None:
                cfg = train.config(graph, overrides, base=meta["config"])
            if bar is not None:
                bar.start(cfg)
            try:
                result = train.train(graph, **overrides, seed=args.seed,
                                     loss_after=args.log_steps, on_step=on_step if args.log_steps or bar else None,
                                     on_epoch=on_epoch, on_log=on_log,
                                     checkpoint=ckpt, checkpoint_every=args.checkpoint_every, resume=args.resume,
                                     stop=lambda: bool(interrupted))
            finally:
                if bar is not None:
                    bar.stop()
    except train.TrainingInterrupted as e:
        _write_curves(args, e.log)
        print(f"interrupted at step {e.step} (epoch {e.epoch}): checkpoint saved to {e.checkpoint}; continue with "
              f"--resume {e.checkpoint}", file=sys.stderr)
        if args.format == "json":
            render.write_json(sys.stdout, {"ok": False, "interrupted": {"step": e.step, "epoch": e.epoch,
                                                                        "checkpoint": str(e.checkpoint)}})
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C, before the step in progress ended: nothing more is written
        print("interrupted again: stopped at once; the last checkpoint (if any) is as it was", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    train.save_npz(out, graph.params)
    _write_curves(args, log, csv=not written or written[-1] != len(log))  # the CSV is current unless no epoch ran
    if graph.program.spec.train is None and args.resume is None and not args.quiet:  # after the work: an error is alone
        print("note: the spec has no train block: trained with the defaults (sgd, lr 0.01, 1 epoch, the whole "
              "data set per step; docs/format.md, Train)", file=sys.stderr)
    if args.format == "json":
        render.write_json(sys.stdout, render.train_json(graph, steps, epochs, str(out), result))
    elif not args.quiet:
        print(f"saved {len(graph.params)} params to {out}")
    return EXIT_OK


def _write_curves(args: argparse.Namespace, log: list[Any], csv: bool = True) -> None:
    from . import curves

    if args.log_csv and csv:
        curves.write_csv(args.log_csv, log)
    if args.plot and log:
        curves.write_plot(args.plot, log)


# -- explain, draw -------------------------------------------------------------------------------

def cmd_explain(args: argparse.Namespace) -> int:
    from .commands import load_with, located
    from .explain import explanation

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower() if args.output else ""
        fmt = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}.get(suffix, "text")
    graph, inputs = load_with(args.spec, args.input, args.params)
    if args.output:
        from .commands import guard_output
        from .files import EXPLANATION

        guard_output(args.output, EXPLANATION, [args.spec], "the spec being explained", [graph], inputs=args.input,
                     params=args.params, force=args.force)
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
