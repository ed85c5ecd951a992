"""Declarations -> arrays: `value`, `file` (.npy, .npz, .csv, .json) and params' `init`."""

from __future__ import annotations

import array
import itertools
import json
import math
import os
import re
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GraphspecError, InputError, SpecError
from .spec import InputDecl, NormalInit, ParamDecl, UniformInit

DTYPES = {"float64": np.float64, "float32": np.float32, "int64": np.int64, "bool": np.bool_}

def _asarray(value: Any, loc: str, error: type[SpecError]) -> np.ndarray:
    """np.asarray, a ragged or too deep list as a located error."""
    try:
        return np.asarray(value)
    except ValueError:
        depth, x = 0, value
        while isinstance(x, list) and x:
            depth, x = depth + 1, x[0]
        if depth > 64:  # numpy's limit, not a ragged list
            raise error(f"a list nested {depth} deep: arrays have at most 64 dims", loc=loc) from None
        raise error("ragged nested list: every row must have the same length", loc=loc) from None


def as_array(value: Any, dtype: str, loc: str, error: type[SpecError] = SpecError) -> np.ndarray:
    """A nested list / number / array as an array of ``dtype``; ragged lists and lossy casts
    (0.5 as int64, 2 as bool) are errors, not silent conversions."""
    arr = _asarray(value, loc, error)
    if arr.dtype == object:  # numpy keeps Python objects for a null, or an integer too big for 64 bits
        arr = _from_objects(arr, dtype, loc, error)
    if arr.dtype.kind not in "biuf":
        raise error(f"expected numbers, got {arr.dtype} data", loc=loc)
    want = DTYPES[dtype]
    if arr.dtype == want:
        return arr
    if dtype == "int64" and arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise error("int64 values must be whole numbers", loc=loc)
    if dtype == "int64" and arr.dtype.kind in "fu" and arr.size and (arr.max() >= 2**63 or arr.min() < -(2**63)):
        raise error("int64 values must lie in [-2**63, 2**63)", loc=loc)  # astype would wrap them around
    if dtype == "bool" and arr.dtype.kind != "b" and np.any((arr != 0) & (arr != 1)):
        raise error("bool values must be true/false (or 0/1)", loc=loc)
    with np.errstate(over="ignore"):
        out = arr.astype(want)
    if dtype == "float32" and arr.dtype.kind == "f" and np.any(np.isinf(out) & np.isfinite(arr)):
        raise error("values beyond ±3.4e38 overflow float32", loc=loc)
    return out


def _from_objects(arr: np.ndarray, dtype: str, loc: str, error: type[SpecError]) -> np.ndarray:
    """An object array of Python numbers as numbers (1e30 written as an integer is a float64
    value), or a located error for what is not a number or does not fit."""
    for x in arr.flat:
        if isinstance(x, bool) or not isinstance(x, int | float | np.number):
            raise error(f"expected numbers, got {'null' if x is None else type(x).__name__}", loc=loc)
    try:
        return arr.astype(np.float64 if dtype.startswith("float") else np.int64)
    except OverflowError:
        big = max((abs(x) for x in arr.flat if isinstance(x, int)), default=0)
        raise error(f"an integer of {len(str(big))} digits is out of range for {dtype}", loc=loc) from None


def read_file(path: Path, key: str | None, loc: str, key_syntax: Callable[[str], str] | None = None) -> np.ndarray:
    """Read .npy, .npz (with key), .csv (an optional header row) or .json (a nested list),
    a regular file within the size limit (see reading.py); ``key_syntax`` spells how the user
    names an .npz key in an error (the spec's "key" by default)."""
    from .reading import Reader, shown_name

    reader = Reader(path, name=path.name, loc=loc)
    suffix = path.suffix.lower()
    if key is not None and suffix != ".npz":
        raise SpecError(f"a key ('{shown_name(key)}') names an array in an .npz file; {shown_name(path.name)} is no .npz",
                        loc=loc)
    if suffix == ".npy":
        return reader.read_npy()
    if suffix == ".npz":
        return reader.read_npz(key, key_syntax or (lambda k: '"key"'))
    if suffix == ".csv":
        return read_csv(reader)
    if suffix == ".json":
        return _asarray(json_value(reader.read_text(), path.name, loc), loc, SpecError)
    if not os.path.exists(path):
        raise reader.missing()
    raise SpecError(f"unsupported file type '{shown_name(suffix)}' (use .npy, .npz, .csv or .json)", loc=loc)


def read_named_arrays(path: Path, loc: str, error: type[GraphspecError] = SpecError) -> dict[str, np.ndarray]:
    """Every array of an .npz file by name (as `train` saves params), read within the limits."""
    from .reading import Reader

    return Reader(path, name=None, loc=loc, error=error).read_npz_all()


def json_value(text: str, name: str, loc: str | None, error: type[GraphspecError] = SpecError) -> Any:
    """json.loads, its failures as one located line: bad syntax, nesting deeper than Python's
    json recurses, an integer literal longer than Python converts (4300 digits)."""
    from .spec import _may_underflow, _tiny

    try:  # 1e-400 read as spec files read it: 0.0 as a float, never the integer 0
        return json.loads(text, parse_float=_tiny) if _may_underflow(text) else json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{name} line {e.lineno} column {e.colno}: not valid JSON: {e.msg}", loc=loc) from None
    except RecursionError:  # Python's json recurses per level: [[[[...]]]] 100,000 deep
        raise error(f"{name}: JSON nested too deeply to read (Python's json reads about 1,000 levels; "
                    "arrays have at most 64 dims)", loc=loc) from None
    except ValueError as e:  # int('1' * 5000) is refused since Python 3.11
        if "digits" not in str(e):
            raise
        raise error(f"{name}: an integer literal of more than {sys.get_int_max_str_digits()} digits "
                    "(no dtype holds it)", loc=loc) from None


# A header cell: a name (a letter or _ first; letters, digits, _ . - and spaces), maybe in quotes.
HEADER_CELL = re.compile(r"[^\W\d](?:[\w.\- ]*[\w.\-])?")


def _is_name(cell: str) -> bool:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1].strip()
    return HEADER_CELL.fullmatch(cell) is not None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_csv(reader: Any) -> np.ndarray:
    """Comma-separated numbers, one row per line; blank lines and lines starting with # are
    skipped. The first row is a header when every cell is a name, data when every cell is a
    number, and an error otherwise (`1;2` is neither: the delimiter is ','). Every row has as
    many cells as the first. One column reads as a 1-D array."""
    name = reader.name
    lines = reader.read_text().split("\n")

    def error(lineno: int | str, problem: str) -> GraphspecError:
        return reader.error(f"{name} line {lineno}: {problem}", loc=reader.loc, source=reader.source)

    rows = ((i, line.strip()) for i, line in enumerate(lines, 1))
    rows = ((i, line) for i, line in rows if line and not line.startswith("#"))
    first = next(rows, None)
    if first is None:
        raise reader.fail("no rows of numbers (the file is empty)")
    i0, line0 = first
    cells0 = line0.split(",")
    header = None
    if not all(_is_number(c) for c in cells0):
        if not all(_is_name(c) for c in cells0):
            shown = line0 if len(line0) <= 40 else line0[:40] + "..."
            raise error(i0, f"{shown!r} is neither a row of numbers nor a header of names (cells are separated "
                        "by ','; a header's names start with a letter or _)")
        header, first = (i0, len(cells0)), next(rows, None)
        if first is None:
            raise reader.fail(f"no rows of numbers (only a header, line {i0})")
    width_at, width = first[0], len(first[1].split(","))
    if header is not None and header[1] != width:
        raise error(width_at, f"{width} value{'s' * (width != 1)}, the header (line {header[0]}) has "
                    f"{header[1]} name{'s' * (header[1] != 1)}")
    flat = array.array("d")
    for i, line in itertools.chain([first], rows):
        cells = line.split(",")
        if len(cells) != width:
            raise error(i, f"{len(cells)} value{'s' * (len(cells) != 1)}, line {width_at} had {width}")
        try:
            flat.extend(map(float, cells))
        except ValueError:
            j, cell = next((j, c) for j, c in enumerate(cells, 1) if not _is_number(c))
            what = "an empty cell" if not cell.strip() else f"{cell.strip()[:40]!r} is not a number"
            if any(sep in cell.strip() for sep in ";\t "):
                what += " (cells are separated by ',')"
            raise error(f"{i}, column {j}", what) from None
    arr = np.frombuffer(flat, dtype=np.float64).reshape(-1, width)
    return arr[:, 0] if width == 1 else arr


def declared_value(name: str, decl: InputDecl, kind: str, base: Path, seed: int = 0) -> np.ndarray | None:
    """The array a declaration gives (value, file, or init for params), or None."""
    loc = f"{kind}.{name}"
    if decl.value is not None and decl.file is not None:
        raise SpecError("give either \"value\" or \"file\", not both", loc=loc)
    if decl.value is not None:
        arr = as_array(decl.value, decl.dtype, f"{loc}.value")
    elif decl.file is not None:
        arr = as_array(read_file(base / decl.file, decl.key, f"{loc}.file"), decl.dtype, f"{loc}.file")
    elif isinstance(decl, ParamDecl) and decl.init is not None:
        arr = init_param(name, decl, seed)
    else:
        return None
    return arr


def init_param(name: str, decl: ParamDecl, seed: int) -> np.ndarray:
    """Draw a param from its init. Each param has its own stream, seeded by (seed, name), so
    adding a param never changes the numbers of the others."""
    loc = f"params.{name}"
    init = decl.init
    if decl.shape is None:
        if isinstance(init, list | float | int) and not isinstance(init, bool):
            return as_array(init, decl.dtype, f"{loc}.init")
        raise SpecError("an init like this one needs a \"shape\"", loc=loc)
    if any(isinstance(d, str) for d in decl.shape):
        raise SpecError(f"params need fixed sizes; shape {decl.shape} has a symbolic dim", loc=f"{loc}.shape")
    shape = tuple(decl.shape)
    dtype = DTYPES[decl.dtype]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    fan_in = math.prod(shape[:-1]) if len(shape) > 1 else (shape[0] if shape else 1)
    fan_out = shape[-1] if shape else 1
    given = None
    if not isinstance(init, str | NormalInit | UniformInit):
        given = as_array(init, decl.dtype, f"{loc}.init")
        try:
            np.broadcast_shapes(given.shape, shape)
        except ValueError:
            raise SpecError(f"init of shape {given.shape} does not fit shape {list(shape)}", loc=f"{loc}.init") from None
    try:
        if init == "zeros":
            arr = np.zeros(shape)
        elif init == "ones":
            arr = np.ones(shape)
        elif init == "xavier":
            limit = math.sqrt(6.0 / max(fan_in + fan_out, 1))
            arr = rng.uniform(-limit, limit, size=shape)
        elif init == "he":
            arr = rng.normal(0.0, math.sqrt(2.0 / max(fan_in, 1)), size=shape)
        elif isinstance(init, NormalInit):
            arr = rng.normal(0.0, init.normal, size=shape)
        elif isinstance(init, UniformInit):
            arr = rng.uniform(init.uniform[0], init.uniform[1], size=shape)
        else:
            arr = np.broadcast_to(given, shape).copy()
        return arr.astype(dtype)
    except (MemoryError, ValueError, OverflowError) as e:  # sizes are unbounded in the format: numpy says how big is too big
        raise SpecError(f"cannot make an array of shape {list(shape)} ({math.prod(shape):,} elements): {e}",
                        loc=f"{loc}.shape") from None


def bind_shape(declared: list[int | str] | None, actual: tuple[int, ...], dims: dict[str, int],
               where: dict[str, str], loc: str, error: type[SpecError] = SpecError) -> None:
    """Check ``actual`` against a declared shape, binding symbolic dims in ``dims`` (and
    remembering in ``where`` who bound each, for the error message)."""
    if declared is None:
        return
    if len(declared) != len(actual) or any(isinstance(d, int) and d != a for d, a in zip(declared, actual, strict=False)):
        raise error(f"shape {list(actual)} does not match the declared shape {declared}", loc=loc)
    for d, a in zip(declared, actual, strict=True):
        if isinstance(d, str):
            if d in dims and dims[d] != a:
                raise error(f"symbolic dim '{d}' is {a} here but {dims[d]} in {where[d]}", loc=loc)
            dims.setdefault(d, a)
            where.setdefault(d, loc)


def check_value(value: Any, decl: InputDecl, loc: str) -> np.ndarray:
    """A run-time value as an array of the declared dtype (InputError when it cannot be)."""
    if isinstance(value, np.ndarray) and value.dtype == DTYPES[decl.dtype]:
        return value
    arr = as_array(value, decl.dtype, loc, error=InputError)
    if decl.dtype == "int64" and isinstance(value, float | list) and not arr.all():
        from .spec import _check_numeric

        try:  # a JSON 1e-400 (--input) reads as 0.0, never the integer 0; only a 0 can be one, so others skip the walk
            _check_numeric(value, dtype="int64")
        except ValueError as e:
            raise InputError(str(e), loc=loc) from None
    return arr
