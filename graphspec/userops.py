"""Loading ops written in Python, always explicitly: a spec never makes code run by itself.

Three roads, each the user's own act: `--import FILE.py|package.module` on the command line,
`graphspec.load(spec, ops=[...])` in Python, and installed packages that declare an entry point
in the group ``graphspec.ops`` (pytest's plugin mechanism): those are looked at only when a spec
names an op graphspec does not know, so graphs of built-ins never pay for the lookup.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import UsageError, did_you_mean
from .ops import OPS, Op
from .passes import raised_at

ENTRY_POINT_GROUP = "graphspec.ops"
_imported: dict[str, list[Op]] = {}  # resolved file or module name -> the ops it registered
_entry_points_loaded = False


def import_ops(target: str) -> list[Op]:
    """Run a Python file (a path ending in .py) or import a module (a dotted name), once, and
    return the ops it registered. Errors are `UsageError`s naming the target (exit 2)."""
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    key = str(Path(target).resolve()) if is_file else target
    if key in _imported:
        return _imported[key]
    before = dict(OPS)
    try:
        if is_file:
            path = Path(target)
            if not path.is_file():
                raise UsageError(f"--import {target}: no such file")
            name = f"graphspec_user_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise UsageError(f"--import {target}: not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # so that the ops' functions can be pickled and found again
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            importlib.import_module(target)
    except UsageError:
        raise
    except ModuleNotFoundError as e:
        if is_file or e.name not in (target, target.split(".")[0]):
            raise _failed(target, e, key if is_file else None) from e
        raise UsageError(f"--import {target}: no module named {target!r}",
                         hint="give a file (my_ops.py) or an importable module (my_package.ops)") from e
    except Exception as e:  # the user's code raised: where, in their file
        raise _failed(target, e, key if is_file else None) from e
    made = [op for name, op in OPS.items() if before.get(name) is not op]
    _imported[key] = made
    return made


def imported_files() -> list[str]:
    """The files of Python code that import_ops ran (a file, or an imported module's): a command's
    -o never writes over one, as over any file the command line reads."""
    out = []
    for key in _imported:  # a resolved path for a file, the dotted name for a module
        path = key if os.path.isabs(key) else getattr(sys.modules.get(key), "__file__", None)
        if path:
            out.append(path)
    return out


def _failed(target: str, e: BaseException, path: str | None) -> UsageError:
    site = raised_at(e, path) or raised_at(e)
    return UsageError(f"--import {target}: its code raised {type(e).__name__}: {e}" + (f" (at {site})" if site else ""))


def use(ops: Iterable[Any]) -> None:
    """What `graphspec.load(..., ops=[...])` takes: files or module names to import (as `--import`),
    modules already imported, or op records (`defop`'s results)."""
    for item in ops:
        if isinstance(item, str | Path):
            import_ops(str(item))
        elif isinstance(item, types.ModuleType):
            continue  # importing it ran its defop calls
        elif isinstance(item, Op):
            known = OPS.get(item.name)
            if known is None:
                OPS[item.name] = item
            elif known is not item:
                raise UsageError(f"ops: op {item.name!r} is already registered (at {known.origin}), and this record "
                                 "is another one", hint="defop(..., replace=True) replaces an op explicitly")
        else:
            raise UsageError(f"ops: expected a file, a module name, a module or an op record, got {type(item).__name__}")


def load_entry_points() -> bool:
    """Import the ops that installed packages declare (entry point group ``graphspec.ops``), once.
    True when this call loaded any."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return False
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    before = len(OPS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()  # importing its module runs its defop calls
            if callable(obj) and not isinstance(obj, type | Op):
                obj()  # or a function that registers them
        except Exception as e:
            site = raised_at(e)
            raise UsageError(f"the installed ops '{ep.name}' ({ep.value}, entry point group {ENTRY_POINT_GROUP}) "
                             f"failed to load: {type(e).__name__}: {e}" + (f" (at {site})" if site else "")) from e
    return len(OPS) > before


def unknown_op_hint(name: str) -> str:
    """The hint for an op name that is not in the table: a close built-in, else how ops load."""
    typo = did_you_mean(name, OPS, cutoff=0.75)  # 'mull' for 'mul': surely a slip, said alone
    if typo:
        return typo
    close = did_you_mean(name, OPS)
    how = "an op written in Python loads with --import FILE.py (in Python: graphspec.load(spec, ops=['FILE.py']))"
    return (f"{close} " if close else "see `python -m graphspec ops`; ") + how
