"""`python -m graphspec`: a thin layer over the Python API.

Parses arguments, calls the API, renders, and maps errors to exit codes: 0 ok, 1 a check or
an expectation failed, 2 a bad spec or bad usage. Heavy modules are imported inside the
commands so that `--help` is instant. An error is one line on stderr and, when the command's
stdout is JSON, also a record there: {"ok": false, "error": error_record(e)}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
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

    dr = sub.add_parser("draw", help="the graph as Graphviz DOT, with values and gradients")
    dr.add_argument("spec")
    dr.add_argument("-o", "--output", metavar="FILE.dot|.svg|.png", help="write here (default: DOT on stdout); "
                    ".svg and .png need Graphviz's dot")
    dr.add_argument("--no-values", action="store_true", help="structure only: do not run the graph")
    dr.add_argument("--force", action="store_true", help="write -o over an existing file of another kind "
                    "(never over the spec or a file it reads)")

    ops = sub.add_parser("ops", help="the op table: every op, or the named ones with each attr's doc")
    ops.add_argument("names", nargs="*", metavar="OP", help="ops to describe in full (default: a table of every op)")
    ops.add_argument("--format", choices=("table", "json"), default="table")

    from . import checkcmd

    checkcmd.configure(sub.add_parser("check", help="gradient-check report: every gradient against finite "
                                      "differences"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --traceback is global, before or after the command: taken out before the subcommand parses
    end = argv.index("--") if "--" in argv else len(argv)
    show_traceback = "--traceback" in argv[:end]
    argv = [a for a in argv[:end] if a != "--traceback"] + argv[end:]
    imports, argv = _take_imports(argv)
    parser = _parser()
    parser.add_argument("--traceback", action="store_true", help="on an error, print Python's traceback too "
                        "(for a bug in an op or in graphspec); may also follow the command")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="FILE.py|MODULE",
                        help="run this Python code first, for the ops it defines (repeatable; may also follow "
                        "the command); a spec never imports code by itself")
    if imports is None:
        parser.error("--import needs a FILE.py or a MODULE")
    args = parser.parse_args(argv)
    args.imports = imports
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

            write_json(sys.stdout, {"ok": False, "error": error_record(e)})
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


def _take_imports(argv: list[str]) -> tuple[list[str] | None, list[str]]:
    """--import X / --import=X, before or after the command (as --traceback), taken out of argv
    before the subcommand parses; None when one has no value."""
    end = argv.index("--") if "--" in argv else len(argv)
    imports, rest, i = [], [], 0
    while i < end:
        a = argv[i]
        if a == "--import":
            if i + 1 >= end:
                return None, argv
            imports.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--import="):
            imports.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return imports, rest + argv[end:]


def error_record(e: Any) -> dict[str, Any]:
    """A GraphspecError as JSON, the same in every command (README, "Errors as JSON"): its parts, the
    line printed on stderr, and the exit code."""
    return {"message": e.message, "source": e.source, "loc": e.loc, "hint": e.hint, "text": str(e),
            "exit_code": e.exit_code, "errors": e.records(), "more_errors": e.more}  # a spec's every error


def _stdout_is_json(args: argparse.Namespace) -> bool:
    """check -o sends its report to the file: stdout stays empty there."""
    return getattr(args, "format", None) == "json" and not (args.command == "check" and args.output)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """A warning (say NonFiniteWarning from explain or train) as one line, as errors are: not
    Python's two, with graphspec's file, line number and source line."""
    print(f"warning: {message}", file=sys.stderr)


def print_errors(e: Any) -> None:
    """A GraphspecError on stderr, one `error:` line per error it holds (a spec may have several)."""
    for line in e.lines():
        print(f"error: {line}", file=sys.stderr)


def _check(args: argparse.Namespace) -> int:
    from . import checkcmd

    return checkcmd.run(args)


# -- run ----------------------------------------------------------------------------------------

def parse_input(text: str) -> tuple[str, Any]:
    """NAME=VALUE with VALUE JSON, @file, or @file.npz:key (one array of an .npz)."""
    import os

    from .errors import UsageError
    from .values import json_value, read_file

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--input {text!r}: expected NAME=VALUE or NAME=@file")
    where = f"--input {name}"
    if value.startswith("@"):
        path, key = value[1:], None
        head, colon, tail = path.rpartition(":")
        if colon and Path(head).suffix.lower() in (".npz", ".npy", ".csv", ".json") and not os.path.exists(path):
            path, key = head, tail  # @two.npz:key (read_file says that a key goes with an .npz only)
            if not key:
                raise UsageError(f"{where}: @{path}: an empty key after ':' (say @{path}:KEY)")
        return name, read_file(Path(path), key, where, key_syntax=lambda k: f"@{path}:{k}")
    try:
        return name, json_value(value, "the value", where, error=UsageError)
    except UsageError as e:
        if "not valid JSON" not in e.message:
            raise
        raise UsageError(f"{where}: {value[:60]!r} is neither JSON nor @file") from None


def _input_files(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The files of --input NAME=@file and --params: outputs must not replace them."""
    out = []
    for text in getattr(args, "input", None) or []:
        name, _, value = text.partition("=")
        if value.startswith("@"):
            out.append((value[1:], f"the --input {name} file"))
            if ":" in value:  # @file.npz:key names an array of file.npz
                out.append((value[1:].rpartition(":")[0], f"the --input {name} file"))
    if getattr(args, "params", None):
        out.append((args.params, "the --params file"))
    return out


def guard_output(args: argparse.Namespace, out: str | Path, kind: Any, specs: Sequence[str], what: str,
                 graphs: Sequence[Any] = (), flag: str = "-o") -> None:
    """Refuse an -o path that would replace the specs, a file they read (known once the
    ``graphs`` are loaded), an --input or --params file, or (without --force) a file of another
    kind. Called once per command, after loading and before the work starts."""
    from .files import check_output, spec_files

    protected: list[tuple[str | Path, str]] = [(s, what) for s in specs]
    protected += _input_files(args)
    protected += [f for g in graphs for f in spec_files(g, what)]
    check_output(out, flag, kind, protected=protected, force=args.force)


SNIFF_LIMIT = 64 * 2**20  # bytes of a .json under a folder read to tell whether it is a spec


def expand_specs(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """SPEC arguments as spec files: a folder stands for every *.json spec under it (recursively,
    hidden entries skipped, in sorted order; a spec named twice is checked once). A .json under a
    folder without a "graphspec" key is skipped (the second list says which and why); named on its
    own it is loaded, and its error reported."""
    import os
    import re
    import stat

    from .errors import UsageError

    key = re.compile(rb'"graphspec"\s*:')
    specs: list[str] = []
    skipped: list[tuple[str, str]] = []
    for arg in paths:
        if not os.path.isdir(arg):
            specs.append(arg)
            continue
        found = []
        for folder, dirs, names in os.walk(arg):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(folder, n) for n in names if n.lower().endswith(".json") and not n.startswith(".")]
        found.sort(key=lambda f: Path(f).parts)
        n_specs = len(specs)
        for f in found:
            try:
                st = os.stat(f)
                if not stat.S_ISREG(st.st_mode):  # a FIFO or a link to /dev/zero would never end
                    skipped.append((f, "not a regular file"))
                    continue
                if st.st_size > SNIFF_LIMIT:
                    specs.append(f)  # too big to look into: loading it says what it is
                    continue
                with open(f, "rb") as fh:
                    text = fh.read(SNIFF_LIMIT)
            except OSError:
                specs.append(f)  # unreadable: loading it says why
                continue
            # broken JSON is kept when it has the key: a spec with a typo is still a spec to report
            if key.search(text):
                specs.append(f)
            else:
                skipped.append((f, 'not a spec (no "graphspec" key)'))
        if len(specs) == n_specs:
            raise UsageError(f"{arg}: no spec under this folder (a *.json file with a \"graphspec\" key)")
    first: dict[str, str] = {}  # `check DIR DIR/a.json` checks a.json once, where it first comes
    for s in specs:
        first.setdefault(os.path.realpath(s), s)
    return list(first.values()), skipped


def load_params(graph: Any, path: str) -> None:
    from .errors import InputError, UsageError
    from .values import as_array, read_named_arrays

    arrays = read_named_arrays(Path(path), f"--params {path}", error=UsageError)  # bounded: see reading.py
    for name, arr in arrays.items():
        if name not in graph.params:
            raise UsageError(f"--params {path}: '{name}' is not a param of this spec")
        if arr.shape != graph.params[name].shape:
            raise UsageError(f"--params {path}: '{name}' has shape {list(arr.shape)}, "
                             f"the spec declares {list(graph.params[name].shape)}")
        # strings, or values the param's dtype cannot hold (1.5 for an int64 param), as for any value
        graph.params[name] = as_array(arr, graph.decls[name].dtype, f"--params {path}: {name}", error=InputError)


@contextlib.contextmanager
def located(source: str | None) -> Iterator[None]:
    """Errors raised while running a loaded spec name its file, as load errors do."""
    from .errors import GraphspecError

    try:
        yield
    except GraphspecError as e:
        if e.source is None:
            e.source = source
        raise


def cmd_run(args: argparse.Namespace) -> int:
    import warnings

    from . import expect, render
    from .api import NonFiniteWarning, load

    graph = load(args.spec)
    if args.params:
        load_params(graph, args.params)
    inputs = dict(parse_input(t) for t in args.input)
    with warnings.catch_warnings(record=True) as caught, located(graph.source):
        warnings.simplefilter("always", NonFiniteWarning)
        result = graph.evaluate(inputs, with_grads=not args.no_grad)
    # a non-finite output or gradient fails the run (the API only warns): named by its first node
    nonfinite = [str(w.message) for w in caught if issubclass(w.category, NonFiniteWarning)]
    notes = [str(w.message) for w in caught if not issubclass(w.category, NonFiniteWarning)]
    if not args.no_grad and graph.loss is not None:  # a forgotten edge: the gradient is 0 whatever the values
        notes += [f"{graph.kind[n][:-1]} '{n}' has grad but the loss does not depend on it" for n in graph.unused_wrt]
    checks = expect.compare(result, graph.spec.expect, grads=not args.no_grad)
    if args.format == "json":
        render.write_json(sys.stdout, render.run_json(graph, result, checks, notes, grads=not args.no_grad,
                                                      nonfinite=nonfinite))
    else:
        render.run_table(graph, result, checks, notes, grads=not args.no_grad, nonfinite=nonfinite)
    # expectations not checked (--no-grad, a node off the loss's path) neither pass nor fail
    return EXIT_FAILED if nonfinite or any(c.failed for c in checks) else EXIT_OK


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
    from .errors import SpecError, UsageError
    from .files import PARAMS

    if args.epochs is not None and args.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    out = Path(args.output) if args.output else Path(Path(args.spec).stem + ".params.npz")
    if out.suffix != ".npz":
        raise UsageError(f"-o {out}: params are saved as .npz")
    graph = load(args.spec)
    if graph.spec.train is None:  # train.train's fallback optimizer is for the API, not an undocumented CLI default
        raise SpecError("spec has no train block: add one with an optimizer, see docs/format.md", source=graph.source,
                        hint='e.g. "train": {"optimizer": {"sgd": {"lr": 0.1}}, "epochs": 10}')
    guard_output(args, out, PARAMS, [args.spec], "the spec being trained", [graph], flag="-o" if args.output else "output")
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

    with located(graph.source):
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
    from .api import load
    from .explain import explanation

    graph = load(args.spec)
    with located(graph.source):
        ex = explanation(graph, dict(parse_input(t) for t in args.input))
    print("\n".join(ex.lines))
    return EXIT_FAILED if ex.nonfinite else EXIT_OK  # the lines name the node


def cmd_draw(args: argparse.Namespace) -> int:
    from .api import load
    from .draw import check_drawing_path, to_dot, write_drawing
    from .files import DRAWING

    if args.output:
        check_drawing_path(Path(args.output))
    graph = load(args.spec)
    if args.output:
        guard_output(args, args.output, DRAWING, [args.spec], "the spec being drawn", [graph])
    with located(graph.source):
        dot = to_dot(graph, values=not args.no_values)
    if args.output:
        write_drawing(dot, Path(args.output))
    else:
        sys.stdout.write(dot)
    return EXIT_OK


# -- validate, schema, ops ----------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from . import render
    from .api import load
    from .errors import GraphspecError

    specs, skipped = expand_specs(args.specs)
    for path, why in skipped:
        print(f"note: {path}: skipped, {why}", file=sys.stderr)
    rows = []
    for path in specs:
        try:
            g = load(path)
            rows.append({"spec": path, "ok": True, "nodes": len(g.order), "message": "ok"})
        except GraphspecError as e:
            rows.append({"spec": path, "ok": False, "message": str(e), "error": error_record(e), "exc": e})
    for r in rows:  # errors on stderr in every format, as every command gives them
        if not r["ok"]:
            print_errors(r.pop("exc"))
        elif args.format != "json":
            print(f"ok: {r['spec']} ({r['nodes']} nodes)")
    if args.format == "json":
        render.write_json(sys.stdout, rows)
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_BAD


def cmd_schema(args: argparse.Namespace) -> int:
    from .spec import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_ops(args: argparse.Namespace) -> int:
    from . import render

    render.ops_table(args.format, args.names)
    return EXIT_OK
