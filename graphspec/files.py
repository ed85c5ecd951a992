"""Writing files the user asked for, without losing any file the user wrote.

`check_output` runs before a command does any work: the folder must exist and be writable, the
path must not be the spec, a file the spec reads or an input file (compared as resolved paths and
inodes, so `./`, symlinks and hard links do not fool it), and a file of another kind than the
command writes (a spec, data) is replaced only with `--force`. `write_atomic` then writes through
a temp file and a rename, with the mode `open()` would give.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

SNIFF_BYTES = 65536  # how much of an existing file is read to tell what it is
_SPEC_KEY = re.compile(rb'"graphspec"\s*:')
DATA_SUFFIXES = (".csv", ".npy", ".npz")


@dataclass(frozen=True)
class Kind:
    """What a command writes: a name for messages and a test of an existing file's first bytes."""

    name: str
    matches: Callable[[bytes, str], bool]  # (head of the file, lower-case suffix) -> is it this kind


def _is_page(head: bytes, generator: str) -> bool:
    """An HTML page graphspec wrote (graphspec/html.py names itself in a <meta name="generator">)."""
    return f'<meta name="generator" content="{generator}">'.encode() in head


def _is_report(head: bytes, suffix: str) -> bool:
    text = head.lstrip()
    return _is_page(head, "graphspec check") or (re.match(rb'\{\s*"format"\s*:\s*"graphspec-gradcheck"', text) is not None
            or text.startswith((b"## Gradient check", b"## Op sweep", b"gradient check:", b"op sweep:")))


def _is_drawing(head: bytes, suffix: str) -> bool:
    return {".dot": head.lstrip().startswith(b"digraph"), ".gv": head.lstrip().startswith(b"digraph"),
            ".svg": b"<svg" in head, ".png": head.startswith(b"\x89PNG"), ".pdf": head.startswith(b"%PDF")}.get(suffix, False)


def _is_explanation(head: bytes, suffix: str) -> bool:
    return _is_page(head, "graphspec explain") or head.lstrip().startswith(
        (b"forward, in topological order:", b"## The chain rule, step by step"))


REPORT = Kind("a gradcheck report", _is_report)
EXPLANATION = Kind("an explanation (graphspec explain)", _is_explanation)
PARAMS = Kind("a params file (.npz)", lambda head, suffix: head.startswith(b"PK"))  # an .npz is a zip archive
DRAWING = Kind("a drawing", _is_drawing)
TRAIN_LOG = Kind("a training log (.csv)", lambda head, suffix: head.startswith(b"epoch,"))


def _same_file(a: str, b: str) -> bool:
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:  # hard links: two names, one inode
        return os.path.samefile(a, b)
    except OSError:
        return False


def _what_is_there(head: bytes, suffix: str) -> str:
    if _SPEC_KEY.search(head):
        return 'looks like a spec (it has a "graphspec" key)'
    if suffix in DATA_SUFFIXES:
        return f"holds data ({suffix})"
    return "exists"


def check_output(path: str | Path, flag: str, kind: Kind, *, protected: Iterable[tuple[str | Path, str]] = (),
                 force: bool = False) -> None:
    """Refuse, before any work, an output path that cannot be written or would lose a user's file.

    ``protected`` pairs a path with what it is ("the spec being checked"); no flag lets a command
    write over one. An existing file that is not ``kind`` (a spec, a data file) needs ``force``.
    """
    shown = f"{flag} {path}"
    p = os.fspath(path)
    for other, what in protected:
        if _same_file(p, os.fspath(other)):
            raise UsageError(f"{shown}: that is {what}; refusing to write over it")
    target = os.path.realpath(p)  # write_atomic writes through a symlink, as open() would
    if os.path.isdir(target):
        raise UsageError(f"{shown}: is a folder; give a file name")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"{shown}: cannot write there: no folder {os.path.dirname(p) or '.'}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{shown}: cannot write there: no permission to write in {os.path.dirname(p) or '.'}")
    try:
        st = os.stat(target)
    except OSError:
        return  # a new file
    if not stat.S_ISREG(st.st_mode):
        return  # /dev/null, a FIFO: written in place
    if not os.access(target, os.W_OK):  # a rename would replace it all the same: read-only is the user's word
        raise UsageError(f"{shown}: the file is read-only; refusing to write over it")
    if st.st_size == 0:
        return  # nothing to lose
    try:
        with open(target, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise UsageError(f"{shown}: cannot read the file that is there: {e.strerror or e}") from None
    suffix = Path(target).suffix.lower()
    if not force and not kind.matches(head, suffix):
        raise UsageError(f"{shown}: that file {_what_is_there(head, suffix)} and is not {kind.name}; "
                         f"pass --force to write over it")


def spec_files(graph: Any, what: str) -> list[tuple[Path, str]]:
    """The spec of a loaded graph (``what`` it is to the command) and every file it reads."""
    p = graph.program
    out = [(Path(p.source), what)] if p.source else []
    for kind in ("inputs", "params"):
        for name, decl in getattr(p.spec, kind).items():
            if decl.file is not None:
                out.append((p.base / decl.file, f"a file the spec reads ({kind}.{name}.file)"))
    if p.spec.train is not None:
        out += train_files(p.base, p.spec.train.data, p.spec.train.validation)
    return out


def train_files(base: Path, data: Any, validation: Any, reader: str = "the spec") -> list[tuple[Path, str]]:
    """The files a train block reads, relative to the spec: a file per input of ``data`` and of
    ``validation`` (a generated set, as a model or as its JSON dict, and a share of rows read none)."""
    return [(base / file, f"a file {reader} reads (train.{key}.{name})")
            for key, files in (("data", data), ("validation", validation))
            if isinstance(files, dict) and "generate" not in files for name, file in files.items()]


def umask() -> int:
    """The process's umask: from /proc where it is shown (no race), else set and restore it
    (racy across threads, harmless in a CLI)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write through a temp file in the same folder and os.replace: readers see the old file or
    the new one, never half of one, and a crash leaves no partial file behind. The file gets the
    mode open() would give: an existing file's own, else 0o666 less the umask (mkstemp's is 0600).
    A symlink is written through; a device or FIFO (/dev/null, /dev/stdout) is written in place."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        try:  # renaming over /dev/null would replace the device node itself
            with open(target, "wb") as f:
                f.write(raw)
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:  # no such folder, no permission: the user's path, said in one line
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:  # a folder where the file should go, a full disk
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
