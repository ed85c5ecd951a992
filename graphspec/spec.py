"""The spec format v1 as pydantic models (an exact mirror of the format; docs/format.md), and JSON loading.

`load_spec` turns a path or a dict into a validated `Spec` or raises a located `SpecError`
that lists every independent error: bad JSON (line and column), duplicate keys (where),
unknown keys (with a suggestion), bad names, wrong types. The types are JSON's, strictly: a
boolean is not a number, an integer is a number without a fractional part (2.0 is 2, as in
JSON Schema; 2.5 and 1e-400, which underflows to 0.0, are not), integers fit int64.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ErrorList, SpecError, did_you_mean, format_loc

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
DType = Literal["float64", "float32", "int64", "bool"]
Number = float | int

MAX_INT_DIGITS = 4300  # Python's own limit for reading an integer (sys.get_int_max_str_digits)
INT64 = (-(2**63), 2**63)


# ---------------------------------------------------------------------------------------------
# JSON numbers, strictly


class Tiny(float):
    """A number literal that is not zero but underflows float64 to 0.0 (1e-400): as a float it
    is 0.0, but it is never the integer 0. Remembers how it was written."""

    text: str


class HugeInt(float):
    """An integer literal too long to read (more than MAX_INT_DIGITS digits): inf for what
    reads it as a number, so it is refused as any number beyond float64 is; remembers its
    length for the message."""

    digits: int

    def __repr__(self) -> str:
        return f"an integer of {self.digits:,} digits"


def _tiny(text: str) -> float:
    x = float(text)
    if x == 0.0 and any(c in "123456789" for c in re.split("[eE]", text)[0]):
        t = Tiny(0.0)
        t.text = text
        return t
    return x


def _huge(text: str) -> int | float:
    if len(text.lstrip("-")) <= MAX_INT_DIGITS:
        return int(text)
    h = HugeInt("-inf" if text.startswith("-") else "inf")
    h.digits = len(text.lstrip("-"))
    return h


def _may_underflow(text: str) -> bool:
    """Whether ``text`` may hold a number that underflows to 0.0: only a negative exponent, or
    224 zeros or more in a row, makes one (below 5e-324). Three substring scans in C cost less
    than a Python call per number of a 100,000-node spec (a regex scan cost 20 times more)."""
    return "e-" in text or "E-" in text or "0" * 200 in text


def shown(x: Any) -> str:
    """A value as the spec's JSON spells it (null, not None), cut short; repr for non-JSON objects."""
    if isinstance(x, Tiny):
        return x.text[:40]
    if isinstance(x, HugeInt):
        return repr(x)
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
    if isinstance(x, HugeInt):
        return f"{_NON_FINITE}, got {x!r}"
    return f"{_NON_FINITE}, got " + (json.dumps(x) if isinstance(x, float) else f"an integer of {len(str(abs(x)))} digits")


def json_integer(v: Any) -> int:
    """``v`` as an integer as JSON Schema counts one: an integer, or a number without a
    fractional part (2.0 is 2); not a boolean, not 1e-400 (a float that underflowed to 0.0),
    and within int64. A ValueError says why not."""
    if type(v) is int:
        n = v
    elif isinstance(v, bool):
        raise ValueError(f"{shown(v)} is not an integer (a JSON boolean is not a number)")
    elif isinstance(v, Tiny):
        raise ValueError(f"{v.text} is not an integer (it is a number too small for float64, read as 0.0)")
    elif isinstance(v, HugeInt):
        raise ValueError(f"{v!r} is out of range for an integer (int64: at most 2**63 - 1)")
    elif isinstance(v, float) and not math.isfinite(v):
        raise ValueError(_non_finite(v))
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    elif isinstance(v, float):
        raise ValueError(f"{shown(v)} is not an integer")
    elif isinstance(v, int):  # a subclass
        n = int(v)
    else:
        raise ValueError(f"expected an integer, got {shown(v)}")
    if not INT64[0] <= n < INT64[1]:
        text = shown(v) if isinstance(v, float) or len(str(n)) <= 40 else f"an integer of {len(str(abs(n)))} digits"
        raise ValueError(f"{text} is out of range for an integer (int64: at most 2**63 - 1)")
    return n


def _integer(**limits: Any) -> Any:
    # the limits sit on the int, inside the before-validator, so that the JSON Schema shows them
    return Annotated[int, Field(**limits), BeforeValidator(json_integer)]


Count = _integer(ge=0)
Positive = _integer(ge=1)
Dim = Count | Name
# floats, bools and strings need no validator of their own: pydantic's strict mode refuses true
# as a number, "yes" as a boolean, 5 as a string, and `_describe` words it as JSON does


def _check_numeric(v: Any, bools: bool = True, dtype: str | None = None) -> Any:
    """Values are finite numbers, bools (where ``bools``) or (nested) lists of them; strings,
    objects, nulls inside a list, and inf or nan are not. (JSON has no Infinity or NaN, though
    Python's json reads those tokens, and reads 1e400 as inf: a spec is JSON, so they are
    errors, not silent infs.) A null on its own means "not given". With a ``dtype``, the
    booleans are refused unless it is bool, and 1e-400 (0.0 as a float) where it is int64."""
    stack = [v]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is float:
            if not math.isfinite(x):
                raise ValueError(_non_finite(x))
        elif t is list:
            stack.extend(x)
        elif t is bool:
            if not bools:
                why = "booleans are the values of a \"dtype\": \"bool\"" if dtype else "a JSON boolean is not a number"
                raise ValueError(f"{shown(x)} is not a number ({why})")
        elif _not_finite(x):
            raise ValueError(_non_finite(x))
        elif isinstance(x, Tiny) and dtype == "int64":
            json_integer(x)  # raises, saying why
        elif not isinstance(x, int | float) and (x is not None or x is not v):
            raise ValueError(f"expected a number or a nested list of numbers, got {shown(x)}")
    return v


def _numbers(v: Any) -> Any:
    return _check_numeric(v, bools=False)


def _declared_numbers(v: Any, info: ValidationInfo) -> Any:
    # booleans are values of a bool input only (dtype comes first in the model, so it is known here)
    dtype = info.data.get("dtype", "float64")
    return _check_numeric(v, bools=dtype == "bool", dtype=dtype)


# a number, a bool or a nested list of them; shapes and dtypes are checked when it becomes an array
Value = Annotated[Any, AfterValidator(_check_numeric)]
Numbers = Annotated[Any, AfterValidator(_numbers)]  # the same, without booleans


class _Strict(BaseModel):
    # inf and nan are not JSON numbers: Infinity, NaN and 1e400 (read as inf) are errors; strict:
    # no Python coercion ("yes" is no boolean, true no number)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class NormalInit(_Strict):
    normal: Annotated[float, Field(ge=0)]


class UniformInit(_Strict):
    uniform: Annotated[tuple[float, float], Strict(False)]  # a JSON list; pydantic's strict tuple wants a tuple


InitArray = Annotated[list[Any], AfterValidator(_numbers)]
Init = Literal["zeros", "ones", "xavier", "he"] | NormalInit | UniformInit | float | InitArray


class InputDecl(_Strict):
    shape: list[Dim] | None = None
    dtype: DType = "float64"
    value: Any = None
    file: str | None = None
    key: str | None = None
    grad: bool | None = None

    @field_validator("value")
    @classmethod
    def _value_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        return _declared_numbers(v, info)


class ParamDecl(InputDecl):
    init: Init | None = None

    @field_validator("init", mode="before")
    @classmethod
    def _init_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        # before the union, whose members would each say why they do not fit, none of it to the point
        if isinstance(v, int | float | list):
            _declared_numbers(v, info)
        bounds = v.get("uniform") if isinstance(v, dict) else None
        if isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds):
            low, high = _numbers(bounds)
            if not low <= high:
                raise ValueError(f"uniform [low, high] needs low <= high, got {shown(bounds)}")
            if not math.isfinite(high - low):
                raise ValueError(f"uniform range {shown(bounds)} is too wide: high - low overflows float64")
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
    seed: Numbers = 1.0

    @property
    def seed_given(self) -> bool:
        """Whether the spec wrote a seed: {"node": "h"} has the default 1.0, which only a scalar loss takes."""
        return "seed" in self.model_fields_set


class Expect(_Strict):
    values: dict[Name, Value] = {}  # a bool node's expected value is bool
    grads: dict[Name, Numbers] = {}
    rtol: Annotated[float, Field(ge=0)] = 1e-6
    atol: Annotated[float, Field(ge=0)] = 1e-9


Fraction = Annotated[float, Field(ge=0, lt=1)]


NonNegative = Annotated[float, Field(ge=0)]
Betas = Annotated[tuple[Fraction, Fraction], Strict(False)]


class Sgd(_Strict):
    lr: Annotated[float, Field(gt=0)]
    momentum: Fraction = 0.0
    dampening: Fraction = 0.0
    nesterov: bool = False
    weight_decay: NonNegative = 0.0

    @model_validator(mode="after")
    def _nesterov(self) -> Sgd:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):  # as torch.optim.SGD requires
            raise ValueError("nesterov needs a momentum > 0 and a dampening of 0")
        return self


class Adam(_Strict):
    lr: Annotated[float, Field(gt=0)] = 1e-3
    betas: Betas = (0.9, 0.999)
    eps: Annotated[float, Field(gt=0)] = 1e-8
    weight_decay: NonNegative = 0.0


class AdamW(Adam):
    weight_decay: NonNegative = 1e-2  # torch.optim.AdamW's default


class SgdOptimizer(_Strict):
    sgd: Sgd


class AdamOptimizer(_Strict):
    adam: Adam


class AdamWOptimizer(_Strict):
    adamw: AdamW


class _Optimizers(_Strict):  # only for "did you mean" on an unknown optimizer
    sgd: Sgd | None = None
    adam: Adam | None = None
    adamw: AdamW | None = None


class StepSchedule(_Strict):
    step_size: Positive
    gamma: Annotated[float, Field(gt=0)] = 0.1


class CosineSchedule(_Strict):
    t_max: Positive
    eta_min: NonNegative = 0.0


class LinearSchedule(_Strict):
    start_factor: Annotated[float, Field(gt=0, le=1)] = 1.0 / 3
    end_factor: Annotated[float, Field(ge=0, le=1)] = 1.0
    total_iters: Positive = 5


class Schedule(_Strict):
    """The learning rate per epoch: one of torch.optim.lr_scheduler's StepLR, CosineAnnealingLR, LinearLR."""

    step: StepSchedule | None = None
    cosine: CosineSchedule | None = None
    linear: LinearSchedule | None = None

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        given = [k for k in ("step", "cosine", "linear") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a schedule is one of step, cosine, linear" + (f", not {' and '.join(given)}" if given else ""))
        return self


class DataSource(_Strict):
    """Built-in teaching data: generated (spiral, xor) or bundled (scikit-learn's 8x8 digits)."""

    generate: Literal["spiral", "xor", "digits"]
    points: Positive = 100  # per class (spiral, xor)
    classes: Annotated[int, Field(ge=2, le=10), Strict()] = 3  # spiral's arms
    noise: NonNegative = 0.2
    seed: Count = 0
    x: Name = "X"  # the inputs that receive the features and the labels
    y: Name = "y"


def _data_kind(v: Any) -> str:
    return "generated" if isinstance(v, dict) and "generate" in v else "files"


class Train(_Strict):
    data: Annotated[Annotated[DataSource, Tag("generated")] | Annotated[dict[Name, str], Tag("files")],
                    Discriminator(_data_kind)] = {}
    validation: Annotated[Annotated[float, Field(gt=0, lt=1), Tag("fraction")] | Annotated[dict[Name, str], Tag("files")],
                          Discriminator(lambda v: "files" if isinstance(v, dict) else "fraction")] | None = None
    optimizer: SgdOptimizer | AdamOptimizer | AdamWOptimizer
    schedule: Schedule | None = None
    epochs: Positive = 1
    batch_size: Positive | None = None
    shuffle: bool = False
    log_every: Positive = 1
    metrics: list[Name] = ["loss"]  # "loss", "accuracy", or a node's name


class FunctionVjp(_Strict):
    nodes: dict[Name, Node] = {}
    grads: dict[Name, Name | None]


class FunctionJvp(_Strict):
    nodes: dict[Name, Node] = {}
    tangent: Name


class Function(_Strict):
    """A named subgraph used as a node's op (docs/format.md, "Functions")."""

    args: list[Name]
    attrs: dict[Name, Numbers] = {}
    nodes: Annotated[dict[Name, Node], Field(min_length=1)]
    output: Name
    vjp: FunctionVjp | None = None
    jvp: FunctionJvp | None = None
    doc: str | None = None


class Spec(_Strict):
    """A whole spec file, format version 1. Every key, op and default: docs/format.md in the graphspec repo."""

    schema_: str | None = Field(default=None, alias="$schema")
    graphspec: Literal["1"]
    name: str | None = None
    description: str | None = None
    seed: Count = 0  # numpy's generators take no negative seeds
    inputs: dict[Name, InputDecl] = {}
    params: dict[Name, ParamDecl] = {}
    functions: dict[Name, Function] = {}
    nodes: Annotated[dict[Name, Node], Field(min_length=1)]
    outputs: list[Name] | None = None
    loss: Name | LossSeed | None = None
    expect: Expect | None = None
    train: Train | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

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

    numbers: dict[str, Any] = {"parse_float": _tiny} if _may_underflow(text) else {}
    try:
        try:
            doc = json.loads(text, object_pairs_hook=hook, **numbers)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer literal longer than Python reads (4300 digits): read it as a HugeInt
            dups = False
            doc = json.loads(text, object_pairs_hook=hook, parse_int=_huge, **numbers)
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
# pydantic errors -> one located line per place


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
    if loc == ("train", "schedule"):
        return Schedule
    if loc == ("train", "data") :
        return DataSource
    if head == "loss" and len(loc) <= 2:
        return LossSeed
    return None


def _union_at(loc: tuple[Any, ...]) -> bool:
    """Whether the format has a union at ``loc`` (a location without tags): pydantic then puts
    each member's tag next in the location ('loss', 'LossSeed', 'seed')."""
    n = len(loc)
    if n == 1:
        return loc[0] == "loss"
    if n == 2:
        return loc in (("train", "optimizer"), ("train", "data"), ("train", "validation"))
    if n == 3:
        return loc[0] == "params" and loc[2] == "init"
    return n == 4 and isinstance(loc[3], int) and ((loc[0] in ("inputs", "params") and loc[2] == "shape")
                                                   or (loc[0] == "nodes" and loc[2] == "args"))


def _split(raw: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(the location without union tags, the place: the location up to its first union). The
    errors of one place are the union's members failing on one value: one of them speaks."""
    clean: list[Any] = []
    place = None
    parts = iter(raw)
    for part in parts:
        clean.append(part)
        if _union_at(tuple(clean)):
            place = place or tuple(clean)
            next(parts, None)  # the member's tag (a tag, never a key: the position says so)
    loc = tuple(clean)
    return loc, place or loc


def _got(x: Any) -> str:
    return f", got {shown(x)}"


# pydantic's words for a wrong type, in the format's (JSON's) words
_EXPECTED = {"string_type": "expected a string", "bool_type": "expected true or false", "int_type": "expected an integer",
             "float_type": "expected a number", "list_type": "expected a list", "tuple_type": "expected a list of 2 numbers",
             "dict_type": "expected an object", "model_type": "expected an object",
             "model_attributes_type": "expected an object", "is_instance_of": "expected an object"}


def _describe(err: dict[str, Any], loc: tuple[Any, ...], place: tuple[Any, ...]) -> tuple[str, str, str | None]:
    kind = err["type"]
    x = err.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        model = _model_at(loc[:-1])
        hint = None
        if model is not None:
            fields = [f.alias or n for n, f in model.model_fields.items()]
            hint = did_you_mean(str(key), fields)
        return format_loc(loc[:-1]) or "(top level)", f"unknown key '{key}'", hint
    if kind == "missing" and isinstance(loc[-1], int):  # a pair (uniform, betas) given one number
        return format_loc(loc[:-1]), f"expected a list of 2 numbers{_got(x) if isinstance(x, list) else ''}", None
    if kind == "missing":
        return format_loc(loc[:-1]) or "(top level)", f"missing required key '{loc[-1]}'", None
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    if kind == "string_pattern_mismatch" and not (len(place) == 4 and place[2] == "shape"):
        return format_loc(loc), f"'{x}' is not a valid name (letters, digits and _, not starting with a digit)", None
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if len(place) == 4 and place[2] == "shape":
        dim = "a dim is a size (an integer >= 0) or a name like \"N\""
        if isinstance(x, str):
            return format_loc(place), f"{shown(x)} is not a valid name: {dim}", None
        number = kind == "value_error" and isinstance(x, int | float)  # true, 2.5, 1e-400, too big: say why
        return format_loc(place), f"{msg}: {dim}" if number else f"{dim}{_got(x)}", None
    if loc == ("loss",):
        return "loss", f"expected a node name or {{\"node\": name, \"seed\": ...}}{_got(x)}", None
    if loc == ("graphspec",):
        if isinstance(x, str):
            return "graphspec", f"unsupported format version {x!r}: this graphspec reads version \"1\"", None
        if isinstance(x, int | float) and not isinstance(x, bool):
            return "graphspec", f"the format version is the string \"1\", not the number {shown(x)}", 'write "graphspec": "1"'
        return "graphspec", f"the format version is the string \"1\"{_got(x)}", None
    if loc == ("nodes",) and kind == "too_short":
        return "nodes", "nodes is empty: a spec needs at least one node", None
    if kind in ("too_short", "too_long") and isinstance(x, list | tuple):
        return format_loc(loc), f"expected a list of 2 numbers{_got(x)}", None
    if kind in ("finite_number", "float_type") and _not_finite(x):
        return format_loc(loc), _non_finite(x), None  # inf, nan, or an integer too big for a float
    if kind in ("float_type", "int_type") and isinstance(x, bool):
        return format_loc(loc), f"{shown(x)} is not a number (a JSON boolean is not a number)", None
    if kind in _EXPECTED:
        return format_loc(loc), _EXPECTED[kind] + _got(x), None
    if "input" in err and kind != "value_error":
        msg = f"{msg[0].lower()}{msg[1:]}{_got(x)}"
    return format_loc(loc), msg, None


def _located(errs: list[dict[str, Any]], where: str | None, found: ErrorList) -> list[tuple[Any, ...]]:
    """One error for each place that is wrong, added to ``found`` (past its cap, counted: no
    hint is worked out for them), and the places. A union reports one error per member; of
    those, the most specific (the deepest location, an unknown key first) speaks."""
    groups: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], dict[str, Any]]]] = {}
    for err in errs:
        loc, place = _split(tuple(err["loc"]))
        groups.setdefault(place, []).append((loc, err))
    for place, group in groups.items():
        if found.skip():
            continue
        # an unknown key is news only if no other member of the union knew that key
        known = {loc for loc, x in group if x["type"] != "extra_forbidden"}

        # and a member that read a key the user wrote (and found its value wrong) beats one that
        # missed a key the user never meant to write
        def rank(item: tuple[tuple[Any, ...], dict[str, Any]], known: set[tuple[Any, ...]] = known) -> tuple[int, int]:
            loc, x = item
            if x["type"] == "extra_forbidden":
                return len(loc), 2 if loc not in known else -1
            return len(loc), 0 if x["type"] == "missing" else 1

        loc, best = max(group, key=rank)
        at, msg, hint = _describe(best, loc, place)
        found.add(SpecError(msg, loc=at, hint=hint, source=where))
    return list(groups)


def _salvage(doc: dict[str, Any], places: list[tuple[Any, ...]]) -> tuple[dict[str, Any], dict[str, str], set[str]] | None:
    """The spec without the places that failed, to look for the errors the rest holds; the
    names dropped (name -> section; what reads them is not checked); the top-level keys
    dropped. None when nothing sound is left: no nodes, or a section of names that is no object."""
    out = {**doc, "graphspec": "1"}  # "graphspec": 1 is reported, and the rest checked as version 1
    broken: dict[str, str] = {}
    dropped: set[str] = set()
    for place in places:
        head = place[0] if place else None
        if head == "graphspec":
            continue
        if head in ("inputs", "params", "nodes"):
            section = doc.get(head)
            if len(place) < 2 or not isinstance(section, dict):
                return None
            if out[head] is section:
                out[head] = dict(section)
            out[head].pop(place[1], None)
            broken[str(place[1])] = head
        elif isinstance(head, str):
            out.pop(head, None)
            dropped.add(head)
        else:
            return None
    return out, broken, dropped


@dataclass
class Loaded:
    """A spec as far as it could be read. With ``errors``, ``spec`` is what validated once the
    wrong places were dropped (None when nothing sound was left), so that the errors of the
    rest can be found too; ``broken`` names the declarations dropped."""

    spec: Spec | None
    base: Path
    source: str | None
    doc: dict[str, Any]
    errors: ErrorList = field(default_factory=ErrorList)
    broken: dict[str, str] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)  # top-level keys found wrong (loss, outputs, ...)

    def raise_errors(self) -> None:
        """Raise every error found, in the order of the places in the file."""
        try:
            self.errors.raise_any(key=place_order(self.doc))
        except SpecError as e:
            if e.source is None:
                e.source = self.source
            raise


def place_order(doc: Mapping[str, Any]) -> Callable[[SpecError], tuple[int, int]]:
    """A sort key for errors: where each one's place is in ``doc`` (the top-level key's index,
    then the entry's: nodes.h before nodes.k when h comes first), so they read as the file does."""
    indices: dict[str | None, dict[str, int]] = {}

    def index(section: str | None) -> dict[str, int]:
        if section not in indices:
            keys = doc if section is None else doc.get(section)
            indices[section] = {k: i for i, k in enumerate(keys)} if isinstance(keys, Mapping) else {}
        return indices[section]

    def key(err: SpecError) -> tuple[int, int]:
        m = re.match(r"([^.\[]+)(?:\.([^.\[]+)|\[(\d+)\])?", err.loc or "")
        if m is None or err.loc == "(top level)" or (err.loc or "").startswith("line "):
            return -1, 0
        head, name, at = m.groups()
        top = index(None)
        return top.get(head, len(top)), int(at) if at else index(head).get(name, -1) if name else -1

    return key


def read_spec(source: str | Path | dict[str, Any], *, base: Path | None = None) -> Loaded:
    """Parse and validate a spec, collecting its errors rather than raising the first. Raises
    only when nothing can be read (bad JSON, not an object, no version)."""
    if isinstance(source, dict):
        doc, where, base = source, None, base or Path.cwd()
    else:
        path = Path(source)
        doc, where, base = read_spec_file(path), str(path), base or path.resolve().parent
    if not isinstance(doc, dict):
        raise SpecError(f"a spec is a JSON object, got {type(doc).__name__}", source=where)
    if "graphspec" not in doc:
        raise SpecError("missing required key 'graphspec' (the format version, \"1\")", loc="(top level)", source=where)
    version = doc["graphspec"]
    if version != "1" and not (type(version) in (int, float) and version == 1):
        # another format (or none): what else is "wrong" in it would be noise; "graphspec": 1 is a slip, checked on
        _, msg, hint = _describe({"type": "literal_error", "input": version, "msg": ""}, ("graphspec",), ("graphspec",))
        raise SpecError(msg, loc="graphspec", hint=hint, source=where)
    try:
        return Loaded(Spec.model_validate(doc), base, where, doc)
    except ValidationError as e:
        loaded = Loaded(None, base, where, doc)
        places = _located(e.errors(), where, loaded.errors)
    salvaged = _salvage(doc, places)
    if salvaged is not None:
        try:
            loaded.spec = Spec.model_validate(salvaged[0])
            loaded.broken, loaded.dropped = salvaged[1], salvaged[2]
        except ValidationError:
            pass  # what the first errors hide; they come first
    return loaded


def load_spec(source: str | Path | dict[str, Any], *, base: Path | None = None) -> tuple[Spec, Path]:
    """Parse and validate a spec. Returns the Spec and the folder its relative files live in;
    raises a `SpecError` that lists every place that is wrong."""
    loaded = read_spec(source, base=base)
    loaded.raise_errors()
    assert loaded.spec is not None
    return loaded.spec, loaded.base


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format (from pydantic), with the op names listed for editors."""
    from .ops import OPS

    schema = Spec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "graphspec spec, format version 1"
    # an op of the table, or a function of the spec's own `functions` (any name, for a schema)
    schema["$defs"]["Node"]["properties"]["op"] = {
        "title": "Op", "description": "the op (see `python -m graphspec ops`), or a function of this spec's functions",
        "anyOf": [{"enum": sorted(OPS)}, {"type": "string", "pattern": NAME_PATTERN}]}
    return schema
