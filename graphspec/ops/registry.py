"""The op record and the one table every op is registered in.

An op is data (JAX autodidax's primitives): what a calculus sheet says about it, in one
`defop(...)` call. The interpreter, the shape checker, the gradient checker and `graphspec ops`
all read this table; adding an op is its `defop`, its row in tests/optable.py and its docs.

The record, one word per idea (every function takes the op's attrs as keyword arguments):
- ``forward(*args, **attrs) -> ans``.
- ``vjp``: one rule per arg, ``vjp[i](g, ans, *args, **attrs)`` -> the cotangent of arg i from
  the output cotangent ``g`` (it may have the broadcast shape: it is summed back to the arg's).
  ``None`` for an arg that gets no gradient (integer labels). Ops taking any number of args
  (concat) give a function of the position instead: ``vjp(i) -> rule``.
- ``jvp``: likewise, ``jvp[i](t, ans, *args, **attrs)`` -> the output tangent from tangent ``t``
  of arg i; `SYMMETRIC` where the Jacobian is symmetric (elementwise ops, softmax), so the VJP's
  formula is the JVP's; ``None``: no forward mode through this op.
- ``shape(avals, **attrs) -> Aval``: static shape and dtype, raising `RuleError`. Left out,
  the shape is learnt by running the forward once on stand-in arrays of the args' shapes
  (`shape_by_running`); where a dim is symbolic, it is known at run time only.
- ``args``: the args' names (default x, y, ...); ``attrs``: name -> `Attr`; ``doc``: one line.
- ``rules``: one formula per arg for its cotangent, as a calculus sheet writes it, in the args'
  names, ``g`` (the output cotangent) and ``ans``: "g ⊙ y", "xᵀ · g" (``·`` a matrix product,
  ``⊙`` elementwise, ``ᵀ`` a transpose); `graphspec explain` writes it with the graph's names
  and, for a matrix product, the shapes. Optional ("" for an arg without one).
- ``kink(ans, *args, **attrs)``: for ops with kinks, an array saying which side of each kink
  the point is on; the gradient checker compares it between perturbed evaluations.
- ``samples()``: sample (args, attrs) for the op sweep, like PyTorch's OpInfo.
- ``classes(**attrs) -> axis``: for a loss over class scores (arg 0) and labels (arg 1), the
  class axis; training's accuracy reads it.
- ``replace``: True to replace an op of the same name (a built-in, say); without it a second
  op of one name is an error. The record keeps ``origin`` (file:line of its `defop`) and
  whether it ``replaced`` another, for errors and reports.
Speed hints, each optional and safe to leave out:
- ``reads``: the values the VJPs read (arg names and "ans"; shapes and dtypes always stay):
  the interpreter may overwrite the others once the forward pass is past them.
- ``into``: the forward takes ``out=`` and writes its result there (numpy ufuncs do).
- ``batch(args, stacked, ndims, attrs, rows) -> (args, attrs, post)``: how to run the forward
  once on a stack of perturbations (ops/batching.py); without one it runs once per row.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

Dim = int | str  # a str dim is symbolic ("N")
Rule = Callable[..., Any]
Rules = tuple[Rule | None, ...] | Callable[[int], Rule | None]
SYMMETRIC = "symmetric"  # jvp=SYMMETRIC: the VJP rules serve as the JVP rules


class Aval(NamedTuple):
    """Abstract value: shape (None when unknown until run time) and dtype name."""

    shape: tuple[Dim, ...] | None
    dtype: str


class RuleError(Exception):
    """Raised by shape rules and attr checks; the caller adds the node's place."""


@dataclass(frozen=True)
class Attr:
    """One attr of an op: its kind (for checking), its default, and a short doc."""

    kind: str  # float | int | bool | axis | axes | reduce_axis | shape | enum | opt_float | pair | ...
    default: Any = None
    choices: tuple[str, ...] = ()
    doc: str = ""  # what it means, for docs/format.md's op reference (tools/gen_op_docs.py)


@dataclass(frozen=True)
class Op:
    """One op (see the module docstring for each field)."""

    name: str
    forward: Rule
    vjp: Rules
    jvp: Rules | None
    shape: Callable[..., Aval]
    args: tuple[str, ...] = ()
    attrs: dict[str, Attr] = field(default_factory=dict)
    doc: str = ""
    rules: tuple[str, ...] = ()  # one formula per arg: "xᵀ · g"
    kink: Rule | None = None
    samples: Callable[[], list[tuple[list[Any], dict[str, Any]]]] | None = None
    classes: Callable[..., int] | None = None
    reads: frozenset[str] | None = None  # None: the VJPs may read everything
    into: bool = False
    batch: Callable[..., tuple[list[Any], dict[str, Any], Callable[[Any], Any]]] | None = None
    origin: str = ""  # file:line of the defop call
    replaced: bool = False  # it replaced an op of its name (a built-in, say)

    @property
    def builtin(self) -> bool:
        """Defined in graphspec's own op families (an op from elsewhere is named with its origin in errors)."""
        return self.origin.startswith(_OPS_DIR)

    @property
    def arity(self) -> int | None:
        """The number of args, or None for an op taking any number (its shape rule checks them)."""
        return None if callable(self.vjp) else len(self.vjp)

    def vjp_for(self, i: int) -> Rule | None:
        return self.vjp(i) if callable(self.vjp) else self.vjp[i]

    def jvp_for(self, i: int) -> Rule | None:
        if self.jvp is None:
            return None
        return self.jvp(i) if callable(self.jvp) else self.jvp[i]

    def differentiable(self, i: int) -> bool:
        return self.vjp_for(i) is not None

    def reads_value(self, name: str) -> bool:
        """Whether a VJP reads this arg's (or "ans") values, not just its shape and dtype."""
        return self.reads is None or name in self.reads

    def arg_name(self, i: int) -> str:
        return self.args[i] if i < len(self.args) else f"arg{i}"


class OpTable(dict):
    """The op table. It also finds the ops a spec's functions with a hand-written backward become
    (inline.py: keys ``name/hash``, which no spec name can spell), without listing them among the
    ops: `graphspec ops`, the sweep and the docs iterate over the ops proper."""

    def __init__(self) -> None:
        super().__init__()
        self.functions: dict[str, Op] = {}

    def __missing__(self, key: str) -> Op:
        return self.functions[key]

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.functions

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, key, self.functions.get(key, default))


OPS: OpTable = OpTable()
_OPS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def defop(name: str, forward: Rule, vjp: Rules, *, jvp: Rules | None = None, shape: Callable[..., Aval] | None = None,
          args: Sequence[str] = (), attrs: dict[str, Attr] | None = None, doc: str = "", rules: Sequence[str] = (),
          kink: Rule | None = None,
          samples: Callable[[], list[tuple[list[Any], dict[str, Any]]]] | None = None,
          classes: Callable[..., int] | None = None, reads: Sequence[str] | None = None, into: bool = False,
          batch: Callable[..., Any] | None = None, replace: bool = False) -> Op:
    """Register one op (the fields are the module docstring's) and return its record."""
    caller = sys._getframe(1)
    origin = f"{os.path.abspath(caller.f_code.co_filename)}:{caller.f_lineno}"
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an op's name is an identifier, got {name!r}")
    if not callable(forward):
        raise TypeError(f"op {name!r}: forward must be a function, got {type(forward).__name__}")
    if name in OPS and not replace:
        raise ValueError(f"op {name!r} is already registered (at {OPS[name].origin}): pass replace=True to replace it")
    if not callable(vjp):
        vjp = tuple(vjp)
        if args and len(args) != len(vjp):
            raise ValueError(f"op {name!r}: {len(args)} arg names for {len(vjp)} VJP rules (one per arg)")
        args = tuple(args) or (("x", "y", "z")[:len(vjp)] if len(vjp) <= 3 else tuple(f"x{i}" for i in range(len(vjp))))
    if jvp == SYMMETRIC:  # the record holds the VJP rules themselves: replacing the VJPs later leaves the JVPs
        jvp = vjp
    elif jvp is not None and not callable(jvp):
        jvp = tuple(jvp)
        if not callable(vjp) and len(jvp) != len(vjp):
            raise ValueError(f"op {name!r}: {len(jvp)} JVP rules for {len(vjp)} VJP rules (one per arg)")
    if not callable(vjp) and not all(r is None or callable(r) for r in vjp):
        raise TypeError(f"op {name!r}: vjp must hold one function (or None) per arg")
    into = into or (isinstance(forward, np.ufunc) and forward.signature is None)  # not matmul
    op = Op(name=name, forward=forward, vjp=vjp, jvp=jvp, shape=shape or _stand_in_rule(forward), args=tuple(args),
            attrs=dict(attrs or {}), doc=doc, rules=tuple(rules), kink=kink, samples=samples, classes=classes,
            reads=None if reads is None else frozenset(reads), into=into, batch=batch, origin=origin,
            replaced=name in OPS)
    OPS[name] = op
    return op


def shape_by_running(forward: Rule, avals: Sequence[Aval], attrs: dict[str, Any]) -> Aval:
    """The shape rule of an op without one: its forward, run once on stand-in arrays (ones, or
    zeros for ints and bools) of the args' shapes and dtypes. A symbolic or unknown dim makes
    the shape unknown until run time, where the interpreter checks it."""
    dtypes = [a.dtype for a in avals]
    if any(a.shape is None or any(not isinstance(d, int) for d in a.shape) for a in avals):
        return Aval(None, result_dtype(*dtypes))
    stand_ins = [1.0 if a.dtype == WEAK else np.zeros(a.shape, a.dtype) if a.dtype in ("int64", "bool")
                 else np.ones(a.shape, a.dtype) for a in avals]
    try:
        with np.errstate(all="ignore"):
            ans = np.asarray(forward(*stand_ins, **attrs))
    except Exception as e:
        shapes = ", ".join(fmt_shape(a.shape) for a in avals)
        raise RuleError(f"the op has no shape rule, and its forward failed on stand-in arrays of shapes {shapes}: "
                        f"{type(e).__name__}: {e}") from e
    if ans.dtype.kind not in "fiub":
        raise RuleError(f"the op has no shape rule, and its forward returned {ans.dtype} values, not numbers")
    return Aval(ans.shape, "bool" if ans.dtype.kind == "b" else "int64" if ans.dtype.kind in "iu" else
                "float32" if ans.dtype == np.float32 else "float64")


def _stand_in_rule(forward: Rule) -> Callable[..., Aval]:
    def shape(avals: list[Aval], **attrs: Any) -> Aval:
        return shape_by_running(forward, avals, attrs)
    shape.stand_in = True  # type: ignore[attr-defined]  # the sweep makes samples from it
    return shape


# ---------------------------------------------------------------------------------------------
# helpers shared by the op families


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a cotangent of the broadcast shape back to an argument's ``shape``."""
    g_shape = np.shape(g)
    if g_shape == shape:
        return g
    if (len(g_shape) == 2 and g_shape[1:] == shape and type(g) is np.ndarray and g.dtype.kind == "f"
            and g.size and (g.flags.c_contiguous or g.flags.f_contiguous)):
        # a bias of a (batch, features) product: ones @ g is a BLAS gemv, faster than numpy's
        # sum over the leading axis (docs/architecture.md, "Measured")
        return np.ones(g_shape[0], g.dtype) @ g
    lead = len(g_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and g_shape[i + lead] != 1)
    return np.reshape(np.sum(g, axis=axes, keepdims=False) if axes else g, shape)


def norm_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Non-negative, sorted axes of a reduction; None means every axis."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


def expand_reduced(g: Any, x_ndim: int, axis: int | Sequence[int] | None, keepdims: bool) -> Any:
    """Re-insert the reduced axes into a reduction's cotangent so it broadcasts against x."""
    if keepdims or x_ndim == 0:
        return g
    return np.expand_dims(g, norm_axes(axis, x_ndim))


def is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def no_bool(*avals: Aval) -> None:
    """Shape-rule check for ops that compute with numbers: numpy fails on bool arrays there
    (neg, sub) or answers in a type of its own (float16 for exp, int8 for square)."""
    if any(a.dtype == "bool" for a in avals):
        raise RuleError("bool arrays are masks here: declare the input int64 or float64 to compute with it")


WEAK = "weak"  # the dtype of a JSON number in args: it takes the other args' type (NEP 50)


@functools.cache
def float_dtype(*dtypes: str) -> str:
    """Result dtype of a floating op, numpy's promotion: float32 only if every float arg is
    float32 and no arg is int64 (float32 with int64 is float64; bools and weak constants take
    the float's type)."""
    floats = [d for d in dtypes if is_float(d)]
    if floats and all(d == "float32" for d in floats) and "int64" not in dtypes:
        return "float32"
    return "float64"


@functools.cache
def result_dtype(*dtypes: str) -> str:
    """numpy promotion among the arg dtypes. Weak constants are Python floats (JSON numbers in
    args are read as floats): they take a float arg's type, and make ints and bools float64."""
    if any(is_float(d) for d in dtypes):
        return float_dtype(*dtypes)
    if WEAK in dtypes:
        return "float64"
    if any(d == "int64" for d in dtypes):
        return "int64"
    return dtypes[0] if dtypes else "float64"


def broadcast_shapes(*shapes: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
    """numpy broadcasting over possibly symbolic dims; RuleError when the shapes clash."""
    if None in shapes:
        return None
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(ndim):
        dim: Dim = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == dim or d == 1:
                continue
            if dim == 1:
                dim = d
            elif isinstance(d, str) or isinstance(dim, str):
                dim = dim if isinstance(dim, int) else d  # resolved at run time
            else:
                raise RuleError(
                    "cannot broadcast " + " with ".join(fmt_shape(t) for t in shapes if t is not None))
        out.append(dim)
    return tuple(out)


def fmt_shape(shape: tuple[Dim, ...] | None) -> str:
    if shape is None:
        return "(?)"
    inner = ", ".join(str(d) if isinstance(d, int) else repr(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -ndim <= axis < ndim:
        raise RuleError(f"{what} {axis} is out of range for rank {ndim}")
    return axis % ndim
