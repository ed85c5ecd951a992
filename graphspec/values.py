"""Declarations -> arrays: `value`, `file` (.npy, .npz, .csv, .json) and params' `init`."""

from __future__ import annotations

import json
import math
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, SpecError
from .spec import InputDecl, NormalInit, ParamDecl, UniformInit

DTYPES = {"float64": np.float64, "float32": np.float32, "int64": np.int64, "bool": np.bool_}

# what numpy's readers raise on a file they cannot read: a .npz that is no zip file raises
# BadZipFile, a truncated .npy EOFError, neither of them an OSError or a ValueError
READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def as_array(value: Any, dtype: str, loc: str, error: type[SpecError] = SpecError) -> np.ndarray:
    """A nested list / number / array as an array of ``dtype``; ragged lists and lossy casts
    (0.5 as int64, 2 as bool) are errors, not silent conversions."""
    try:
        arr = np.asarray(value)
    except ValueError:
        depth, x = 0, value
        while isinstance(x, list) and x:
            depth, x = depth + 1, x[0]
        if depth > 64:  # numpy's limit, not a ragged list
            raise error(f"a list nested {depth} deep: arrays have at most 64 dims", loc=loc) from None
        raise error("ragged nested list: every row must have the same length", loc=loc) from None
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


def read_file(path: Path, key: str | None, loc: str) -> np.ndarray:
    """Read .npy, .npz (with key), .csv (an optional header row) or .json (a nested list)."""
    if not path.exists():
        raise SpecError(f"file not found: {path.name} (looked in {path.parent})", loc=loc)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if key is None:
                    if len(z.files) != 1:
                        raise SpecError(f"{path.name} holds {sorted(z.files)}: say which with \"key\"", loc=loc)
                    key = z.files[0]
                if key not in z.files:
                    raise SpecError(f"{path.name} has no array '{key}' (it holds {sorted(z.files)})", loc=loc)
                return z[key]
        if suffix == ".csv":
            return _read_csv(path)
        if suffix == ".json":
            return np.asarray(json.loads(path.read_text(encoding="utf-8")))
    except SpecError:
        raise
    except READ_ERRORS as e:
        raise SpecError(f"cannot read {path.name}: {e}", loc=loc) from None
    raise SpecError(f"unsupported file type '{suffix}' (use .npy, .npz, .csv or .json)", loc=loc)


def _read_csv(path: Path) -> np.ndarray:
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[0].split(",") if lines else []
    try:
        [float(c) for c in first]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    with warnings.catch_warnings():  # an empty file is zero rows, not a warning on stderr
        warnings.simplefilter("ignore", UserWarning)
        arr = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    return arr[:, 0] if arr.shape[1] == 1 else arr


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
    return as_array(value, decl.dtype, loc, error=InputError)
