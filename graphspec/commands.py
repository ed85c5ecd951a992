"""What the commands share (`cli` and `checkcmd` both import it; it imports neither): SPEC
arguments as spec files, loading a spec with ``--input`` and ``--params``, the ``-o`` guard,
errors named by their spec and printed on stderr."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Graph

SNIFF_LIMIT = 64 * 2**20  # bytes of a .json under a folder read to tell whether it is a spec
_SPEC_KEY = re.compile(rb'"graphspec"\s*:')


def expand_specs(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """SPEC arguments as spec files: a folder stands for every *.json spec under it (recursively,
    hidden entries skipped, in sorted order; a spec named twice is checked once). A .json under a
    folder without a "graphspec" key is skipped (the second list says which and why); named on its
    own it is loaded, and its error reported."""
    from .errors import UsageError

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
            if _SPEC_KEY.search(text):
                specs.append(f)
            else:
                skipped.append((f, 'not a spec (no "graphspec" key)'))
        if len(specs) == n_specs:
            raise UsageError(f"{arg}: no spec under this folder (a *.json file with a \"graphspec\" key)")
    first: dict[str, str] = {}  # `check DIR DIR/a.json` checks a.json once, where it first comes
    for s in specs:
        first.setdefault(os.path.realpath(s), s)
    return list(first.values()), skipped


def load_with(path: str, inputs: Sequence[str] = (), params: str | None = None) -> tuple[Graph, dict[str, Any]]:
    """The spec at ``path`` with a ``--params`` file loaded into it, and the ``--input`` values
    (their errors are usage errors, named by the flag)."""
    from .api import load
    from .errors import UsageError
    from .inputs import load_params, parse_inputs

    graph = load(path)
    if params:
        load_params(graph, params, label=f"--params {params}", error=UsageError)
    return graph, parse_inputs(inputs, label="--input", error=UsageError)


def guard_output(out: str | Path, kind: Any, specs: Sequence[str], what: str, graphs: Sequence[Graph] = (), *,
                 inputs: Sequence[str] = (), params: str | None = None, force: bool = False, flag: str = "-o",
                 given: Sequence[tuple[str, str]] = ()) -> None:
    """Refuse an -o path that would replace the specs, a file they read (known once the
    ``graphs`` are loaded), an --input or --params file, another file the command line gave
    (``given``: path and what it is), or (without ``force``) a file of another kind. Called once per
    command, after loading and before the work starts."""
    from .files import check_output, spec_files
    from .inputs import input_files
    from .userops import imported_files

    protected: list[tuple[str | Path, str]] = [(s, what) for s in specs]
    for text in inputs:
        protected += [(f, f"the --input {text.partition('=')[0]} file") for f in input_files(text)]
    if params:
        protected.append((params, "the --params file"))
    protected += [f for g in graphs for f in spec_files(g, what)]
    protected += [(f, "Python code that --import ran") for f in imported_files()]
    protected += list(given)
    check_output(out, flag, kind, protected=protected, force=force)


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


def print_errors(e: Any) -> None:
    """A GraphspecError on stderr, one `error:` line per error it holds (a spec may have several)."""
    for line in e.lines():
        print(f"error: {line}", file=sys.stderr)
