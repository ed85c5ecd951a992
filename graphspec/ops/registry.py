"""The op record and the one table every op is registered in.

An op is data (JAX autodidax's primitives): its forward on numpy arrays, one VJP and one
JVP per argument (HIPS autograd's `defvjp`), its shape rule and its attr schema, side by
side in one `defop(...)` call. The interpreter, the shape checker, the gradient checker and
`graphspec ops` all read this table; adding an op touches one place.

Conventions (all functions take attrs as keyword arguments):
- ``forward(*args, **attrs) -> ans``
- ``vjp[i](g, ans, *args, **attrs)``: the cotangent of arg i given the output cotangent ``g``.
  It may have the broadcast (output) shape: the interpreter sums it back to the arg's shape.
  ``None`` marks an arg that never gets a gradient (integer labels).
- ``jvp[i](t, ans, *args, **attrs)``: the output tangent contributed by tangent ``t`` of arg i.
  For ops whose Jacobian is symmetric in the elementwise sense (``elementwise=True``), the
  JVP is the VJP and is not written twice.
- ``shape(avals, **attrs) -> Aval``: static shape and dtype, raising `RuleError`.
- ``branch(ans, *args, **attrs)``: for ops with kinks, an array saying which side of each
  kink the point is on; the gradient checker compares it between perturbed evaluations.
- ``samples()``: sample (args, attrs) for the op sweep, like PyTorch's OpInfo.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

Dim = int | str  # a str dim is symbolic ("N")


class Aval(NamedTuple):
    """Abstract value: shape (None when unknown until run time) and dtype name."""

    shape: tuple[Dim, ...] | None
    dtype: str


class RuleError(Exception):
    """Raised by shape rules and attr checks; the caller adds the node's place."""


@dataclass(frozen=True)
class Attr:
    """One attr of an op: its kind (for checking), its default, and a short doc."""

    kind: str  # float | int | bool | axis | axes | reduce_axis | shape | enum
    default: Any = None
    choices: tuple[str, ...] = ()
    doc: str = ""  # what it means, for docs/format.md's op reference (tools/gen_op_docs.py)


@dataclass(frozen=True)
class Op:
    name: str
    forward: Callable[..., Any]
    vjp: tuple[Callable[..., Any] | None, ...]
    jvp: tuple[Callable[..., Any] | None, ...]
    shape: Callable[..., Aval]
    nargs: int | None  # None: any number >= 1 (concat)
    attrs: dict[str, Attr] = field(default_factory=dict)
    doc: str = ""
    arg_names: tuple[str, ...] = ()
    branch: Callable[..., Any] | None = None
    samples: Callable[[], list[tuple[list[Any], dict[str, Any]]]] | None = None
    vjp_at: Callable[[int], Callable[..., Any]] | None = None  # variadic ops
    jvp_at: Callable[[int], Callable[..., Any]] | None = None
    reads: frozenset[str] | None = None  # the values the VJPs read (arg names, "ans"); None: all
    forward_out: Callable[..., Any] | None = None  # forward(out, *args): the result written into out
    batch: str | None = None  # how checker/stacking.py runs it on stacked perturbations (None: row by row)

    def reads_value(self, name: str) -> bool:
        """Whether a VJP reads this arg's (or "ans") values, not just its shape and dtype."""
        return self.reads is None or name in self.reads

    def vjp_for(self, i: int) -> Callable[..., Any] | None:
        return self.vjp_at(i) if self.vjp_at else self.vjp[i]

    def jvp_for(self, i: int) -> Callable[..., Any] | None:
        return self.jvp_at(i) if self.jvp_at else self.jvp[i]

    def differentiable(self, i: int) -> bool:
        return self.vjp_for(i) is not None


OPS: dict[str, Op] = {}


def defop(name: str, forward: Callable[..., Any], *, vjp: Sequence[Callable[..., Any] | None] = (),
          jvp: Sequence[Callable[..., Any] | None] | None = None, elementwise: bool = False,
          shape: Callable[..., Aval], nargs: int | None = None, attrs: dict[str, Attr] | None = None,
          doc: str = "", arg_names: Sequence[str] = (), branch: Callable[..., Any] | None = None,
          samples: Callable[[], list[tuple[list[Any], dict[str, Any]]]] | None = None,
          vjp_at: Callable[[int], Callable[..., Any]] | None = None,
          jvp_at: Callable[[int], Callable[..., Any]] | None = None,
          reads: Sequence[str] | None = None, forward_out: Callable[..., Any] | None = None,
          batch: str | None = None) -> Op:
    """Register one op. ``elementwise=True`` reuses the VJPs as JVPs (diagonal Jacobians).

    ``reads`` names the values the VJPs read (arg names and "ans"; shapes and dtypes are always
    there): the interpreter may overwrite the others once the forward pass is past them.
    ``forward_out(out, *args)`` writes the result into a buffer of the result's shape and
    dtype; a numpy ufunc forward gets one without asking. ``batch`` names the gradient checker's
    stacking rule for the op (checker/stacking.py: elementwise, reduce, class_axis, class_loss,
    loss, matmul, transpose, reshape, concat); without one it runs once per perturbation."""
    if name in OPS:
        raise ValueError(f"op {name!r} registered twice")
    vjp = tuple(vjp)
    if jvp is None:
        if not elementwise and not vjp_at:
            raise ValueError(f"op {name!r} needs a jvp (or elementwise=True)")
        jvp = vjp
    n = len(vjp) if nargs is None and not vjp_at else nargs
    if forward_out is None and isinstance(forward, np.ufunc) and forward.signature is None:  # not matmul
        forward_out = functools.partial(_ufunc_out, forward)
    op = Op(name=name, forward=forward, vjp=vjp, jvp=tuple(jvp), shape=shape, nargs=n,
            attrs=dict(attrs or {}), doc=doc, arg_names=tuple(arg_names), branch=branch,
            samples=samples, vjp_at=vjp_at, jvp_at=jvp_at,
            reads=None if reads is None else frozenset(reads), forward_out=forward_out, batch=batch)
    OPS[name] = op
    return op


def _ufunc_out(ufunc: np.ufunc, out: Any, *args: Any) -> Any:
    return ufunc(*args, out=out)


# ---------------------------------------------------------------------------------------------
# helpers shared by the op families


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a cotangent of the broadcast shape back to an argument's ``shape``."""
    g_shape = np.shape(g)
    if g_shape == shape:
        return g
    if (len(g_shape) == 2 and g_shape[1:] == shape and type(g) is np.ndarray and g.dtype.kind == "f"
            and g.size and (g.flags.c_contiguous or g.flags.f_contiguous)):
        # a bias of a (batch, features) product: ones @ g is a BLAS gemv, 2-3x faster than
        # numpy's sum over the leading axis (128 x 256: 2.8 us against 6.2 us)
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
