"""The spec format v1 as pydantic models (an exact mirror of the format; docs/format.md), and JSON loading.

`load_spec` turns a path or a dict into a validated `Spec` or raises a located `SpecError`:
bad JSON (line and column), duplicate keys (where), unknown keys (with a suggestion), bad
names, wrong types.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from .errors import SpecError, did_you_mean, format_loc

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Dim = Annotated[int, Field(ge=0)] | Name
DType = Literal["float64", "float32", "int64", "bool"]
Number = float | int


def _check_numeric(v: Any) -> Any:
    """Values are finite numbers, bools or (nested) lists of them; strings, objects, nulls inside
    a list, and inf or nan are not. (JSON has no Infinity or NaN, though Python's json reads
    those tokens, and reads 1e400 as inf: a spec is JSON, so they are errors, not silent infs.)
    A null on its own means "not given"."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif _not_finite(x):
            raise ValueError(_non_finite(x))
        elif not isinstance(x, int | float) and (x is not None or x is not v):
            raise ValueError(f"expected a number or a nested list of numbers, got {_show(x)}")
    return v


def _show(x: Any) -> str:
    """A value as the spec's JSON spells it (null, not None), cut short; repr for non-JSON objects."""
    try:
        return json.dumps(x)[:40]
    except (TypeError, ValueError):
        return f"{type(x).__name__} {x!r:.40}"


_NON_FINITE = "expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64)"


def _not_finite(x: Any) -> bool:
    """inf or nan, or an integer too big for any float (no dtype holds it)."""
    try:
        return isinstance(x, int | float) and not math.isfinite(x)
    except OverflowError:
        return True


def _non_finite(x: float | int) -> str:
    return f"{_NON_FINITE}, got " + (json.dumps(x) if isinstance(x, float) else f"an integer of {len(str(abs(x)))} digits")

# a number, a bool or a nested list of them; shapes and dtypes are checked when it becomes an array
Value = Annotated[Any, AfterValidator(_check_numeric)]


class _Strict(BaseModel):
    # inf and nan are not JSON numbers: Infinity, NaN and 1e400 (read as inf) are errors
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NormalInit(_Strict):
    normal: Annotated[float, Field(ge=0)]


class UniformInit(_Strict):
    uniform: tuple[float, float]


InitArray = Annotated[list[Any], AfterValidator(_check_numeric)]
Init = Literal["zeros", "ones", "xavier", "he"] | NormalInit | UniformInit | float | InitArray


class InputDecl(_Strict):
    shape: list[Dim] | None = None
    dtype: DType = "float64"
    value: Value = None
    file: str | None = None
    key: str | None = None
    grad: bool | None = None


class ParamDecl(InputDecl):
    init: Init | None = None

    @field_validator("init", mode="before")
    @classmethod
    def _init_numbers(cls, v: Any) -> Any:
        # before the union, whose members would each say why they do not fit, none of it to the point
        if isinstance(v, int | float | list):
            _check_numeric(v)
        bounds = v.get("uniform") if isinstance(v, dict) else None
        if isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds):
            low, high = _check_numeric(bounds)
            if not low <= high:
                raise ValueError(f"uniform [low, high] needs low <= high, got {_show(bounds)}")
            if not math.isfinite(high - low):
                raise ValueError(f"uniform range {_show(bounds)} is too wide: high - low overflows float64")
        return v


class Node(_Strict):
    op: str
    # factories, not `= []`: pydantic deep-copies a mutable default for every one of 100,000 nodes
    args: list[Name | float] = Field(default_factory=list)
    attrs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("args", mode="before")
    @classmethod
    def _names_or_numbers(cls, v: Any) -> Any:
        # before pydantic's union of a name and a float, which would call true a number and say
        # of an integer too big for a float only that it is not a string
        for i, a in enumerate(v if isinstance(v, list) else []):
            if isinstance(a, bool):
                raise ValueError(f"args[{i}] is {str(a).lower()}: an arg is a name or a number")
            if _not_finite(a):
                raise ValueError(f"args[{i}]: {_non_finite(a)}")
        return v


class LossSeed(_Strict):
    node: Name
    seed: Value = 1.0


class Expect(_Strict):
    values: dict[Name, Value] = {}
    grads: dict[Name, Value] = {}
    rtol: Annotated[float, Field(ge=0)] = 1e-6
    atol: Annotated[float, Field(ge=0)] = 1e-9


class Sgd(_Strict):
    lr: Annotated[float, Field(gt=0)]
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0


class Adam(_Strict):
    lr: Annotated[float, Field(gt=0)] = 1e-3
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    eps: Annotated[float, Field(gt=0)] = 1e-8


class SgdOptimizer(_Strict):
    sgd: Sgd


class AdamOptimizer(_Strict):
    adam: Adam


class _Optimizers(_Strict):  # only for "did you mean" on an unknown optimizer
    sgd: Sgd | None = None
    adam: Adam | None = None


class Train(_Strict):
    data: dict[Name, str] = {}
    optimizer: SgdOptimizer | AdamOptimizer
    epochs: Annotated[int, Field(ge=1)] = 1
    batch_size: Annotated[int, Field(ge=1)] | None = None
    shuffle: bool = False
    log_every: Annotated[int, Field(ge=1)] = 1
    metrics: list[Literal["loss", "accuracy"]] = ["loss"]


class Spec(_Strict):
    """A whole spec file, format version 1. Every key, op and default: docs/format.md in the graphspec repo."""

    schema_: str | None = Field(default=None, alias="$schema")
    graphspec: Literal["1"]
    name: str | None = None
    description: str | None = None
    seed: Annotated[int, Field(ge=0)] = 0  # numpy's generators take no negative seeds
    inputs: dict[Name, InputDecl] = {}
    params: dict[Name, ParamDecl] = {}
    nodes: dict[Name, Node]
    outputs: list[Name] | None = None
    loss: Name | LossSeed | None = None
    expect: Expect | None = None
    train: Train | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def loss_node(self) -> str | None:
        return self.loss if isinstance(self.loss, str) or self.loss is None else self.loss.node


# ---------------------------------------------------------------------------------------------
# JSON with duplicate keys as errors


class _DupKeys(dict):
    """A JSON object that had a key twice; remembers which, so the error can say where."""

    duplicate: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        d = _DupKeys(d)
        d.duplicate = dup
    return d


def _find_duplicate(doc: Any) -> tuple[str, str] | None:
    """Breadth-first search for the first object flagged by `_pairs`: (its path, the key)."""
    queue: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    for loc, x in queue:
        if isinstance(x, _DupKeys):
            return format_loc(loc), x.duplicate
        if isinstance(x, dict):
            queue.extend(((*loc, k), v) for k, v in x.items() if isinstance(v, dict | list))
        elif isinstance(x, list):
            queue.extend(((*loc, i), v) for i, v in enumerate(x) if isinstance(v, dict | list))
    return None


def parse_json(text: str, source: str | None = None) -> Any:
    """json.loads, with syntax errors and duplicate keys as located SpecErrors."""
    dups = False

    def hook(pairs):
        nonlocal dups
        d = _pairs(pairs)
        dups = dups or isinstance(d, _DupKeys)
        return d

    try:
        doc = json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as e:
        raise SpecError(f"not valid JSON: {e.msg}", loc=f"line {e.lineno} column {e.colno}", source=source) from None
    except RecursionError:  # Python's json recurses per level: [[[[...]]]] 100,000 deep
        raise SpecError("JSON nested too deeply to read (Python's json reads about 1,000 levels)", loc="(top level)",
                        source=source) from None
    if dups:
        loc, key = _find_duplicate(doc)  # type: ignore[misc]
        raise SpecError(f"duplicate key '{key}' (a JSON object may hold each key once)",
                        loc=loc or "(top level)", source=source)
    if "\\u" in text:  # only a \uD800-style escape makes a lone surrogate (cheap test first: specs are big)
        _check_surrogates(doc, source)
    return doc


def _check_surrogates(doc: Any, source: str | None) -> None:
    """A lone surrogate (\\ud800 without its pair) is no character: printing it raised
    UnicodeEncodeError wherever a name or a description was shown. Breadth-first, keys too."""
    def bad(x: Any) -> bool:
        try:
            x.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            return isinstance(x, str)
        return False

    def error(text: str, loc: tuple[Any, ...]) -> SpecError:
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return SpecError(f"'{shown}' holds a lone surrogate escape (\\uD800-\\uDFFF come in pairs)",
                         loc=format_loc(loc) or "(top level)", source=source)

    queue: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    for loc, x in queue:
        for k, v in x.items() if isinstance(x, dict) else enumerate(x):
            if bad(k):
                raise error(k, loc)
            if bad(v):
                raise error(v, (*loc, k))
            if isinstance(v, dict | list):
                queue.append(((*loc, k), v))


def read_spec_file(path: str | Path) -> Any:
    """A spec file's JSON: a regular file within the size limit, UTF-8 (a leading byte order
    mark dropped), see reading.py."""
    from .reading import Reader

    return parse_json(Reader(Path(path), source=str(path)).read_text(), source=str(path))


# ---------------------------------------------------------------------------------------------
# pydantic errors -> one located line


_KEYS: dict[str, type[BaseModel]] = {}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys are expected at ``loc`` (for 'did you mean' on unknown keys)."""
    if len(loc) == 0:
        return Spec
    head = loc[0]
    if head in ("inputs", "params") and len(loc) == 2:
        return InputDecl if head == "inputs" else ParamDecl
    if head == "nodes" and len(loc) == 2:
        return Node
    if head == "expect" and len(loc) == 1:
        return Expect
    if head == "train" and len(loc) == 1:
        return Train
    if loc == ("train", "optimizer"):
        return _Optimizers
    if head == "loss" and len(loc) <= 2:
        return LossSeed
    return None


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic puts union member tags into the location ('loss', 'LossSeed', 'seed')
    tags = {"LossSeed", "str", "float", "int", "list[any]", "NormalInit", "UniformInit", "SgdOptimizer", "AdamOptimizer"}
    prefixes = ("literal[", "constrained-str", "function-")
    return tuple(p for p in loc if not (isinstance(p, str) and (p in tags or p.startswith(prefixes))))


def _describe(err: dict[str, Any]) -> tuple[str, str, str | None]:
    loc = _clean_loc(tuple(err["loc"]))
    kind = err["type"]
    hint = None
    if kind == "extra_forbidden":
        key = loc[-1]
        model = _model_at(loc[:-1])
        if model is not None:
            fields = [f.alias or n for n, f in model.model_fields.items()]
            hint = did_you_mean(str(key), fields)
        return format_loc(loc[:-1]) or "(top level)", f"unknown key '{key}'", hint
    if kind == "missing":
        return format_loc(loc[:-1]) or "(top level)", f"missing required key '{loc[-1]}'", None
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    if kind == "string_pattern_mismatch":
        return format_loc(loc), f"'{err['input']}' is not a valid name (letters, digits and _, not starting with a digit)", None
    if loc == ("loss",):
        return "loss", f"expected a node name or {{\"node\": name, \"seed\": ...}}, got {json.dumps(err['input'])[:60]}", None
    if loc == ("graphspec",):
        return "graphspec", f"unsupported format version {err['input']!r}: this graphspec reads version \"1\"", None
    x = err.get("input")
    if kind in ("finite_number", "float_type") and _not_finite(x):
        return format_loc(loc), _non_finite(x), None  # inf, nan, or an integer too big for a float
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if "input" in err and kind not in ("value_error",):
        msg = f"{msg[0].lower()}{msg[1:]}, got {json.dumps(err['input'])[:60]}"
    return format_loc(loc), msg, None


def load_spec(source: str | Path | dict[str, Any], *, base: Path | None = None) -> tuple[Spec, Path]:
    """Parse and validate a spec. Returns the Spec and the folder its relative files live in."""
    if isinstance(source, dict):
        doc, where, base = source, None, base or Path.cwd()
    else:
        path = Path(source)
        doc, where, base = read_spec_file(path), str(path), base or path.resolve().parent
    if not isinstance(doc, dict):
        raise SpecError(f"a spec is a JSON object, got {type(doc).__name__}", source=where)
    if "graphspec" not in doc:
        raise SpecError("missing required key 'graphspec' (the format version, \"1\")", loc="(top level)", source=where)
    try:
        spec = Spec.model_validate(doc)
    except ValidationError as e:
        raise _first_error(e.errors(), where) from None
    return spec, base


def _first_error(errs: list[dict[str, Any]], where: str | None) -> SpecError:
    """One line for the first place that is wrong. A union reports one error per member; of
    those, the most specific (the deepest location, an unknown key first) speaks."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for err in errs:
        loc = _clean_loc(tuple(err["loc"]))
        groups.setdefault(loc[:3] if loc[:1] in (("nodes",), ("inputs",), ("params",)) else loc[:1], []).append(err)
    first = next(iter(groups.values()))
    # an unknown key is news only if no other member of the union knew that key
    known = {_clean_loc(tuple(x["loc"])) for x in first if x["type"] != "extra_forbidden"}
    # and a member that read a key the user wrote (and found its value wrong) beats one that
    # missed a key the user never meant to write
    def rank(x: dict[str, Any]) -> tuple[int, int]:
        loc = _clean_loc(tuple(x["loc"]))
        if x["type"] == "extra_forbidden":
            return len(loc), 2 if loc not in known else -1
        return len(loc), 0 if x["type"] == "missing" else 1

    best = max(first, key=rank)
    loc, msg, hint = _describe(best)
    if len(groups) > 1:
        msg += f" (and {len(groups) - 1} more place{'s' if len(groups) > 2 else ''} to fix)"
    return SpecError(msg, loc=loc, hint=hint, source=where)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format (from pydantic), with the op names listed for editors."""
    from .ops import OPS

    schema = Spec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "graphspec spec, format version 1"
    node = schema["$defs"]["Node"]["properties"]["op"]
    node["enum"] = sorted(OPS)
    node["description"] = "the op; see `python -m graphspec ops`"
    return schema
