"""Ops that move elements without changing them: reshape and concat."""

from __future__ import annotations

import math

import numpy as np

from .registry import Attr, Aval, RuleError, check_axis, defop, fmt_shape, result_dtype


def _reshape_shape(avals: list[Aval], *, shape) -> Aval:
    src, dtype = avals[0]
    if shape is None:
        raise RuleError("reshape needs attr 'shape'")
    if sum(1 for d in shape if d == -1) > 1 or any(d < -1 for d in shape):
        raise RuleError(f"shape {list(shape)} may hold one -1 and otherwise sizes >= 0")
    if src is None or any(isinstance(d, str) for d in src):
        return Aval(tuple(shape) if -1 not in shape else None, dtype)
    size = math.prod(src)
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise RuleError(f"cannot reshape {fmt_shape(src)} into {list(shape)}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise RuleError(f"cannot reshape {fmt_shape(src)} ({size} elements) into {list(shape)}")
    return Aval(tuple(shape), dtype)


def _reshape_samples():
    r = np.random.default_rng(5)
    return [([r.normal(size=(3, 4))], {"shape": [2, 6]}), ([r.normal(size=(2, 3, 4))], {"shape": [-1, 4]}),
            ([r.normal(size=(6,))], {"shape": [1, 6, 1]})]


defop("reshape", lambda x, *, shape: np.reshape(x, shape), batch="reshape", shape=_reshape_shape, arg_names=("x",),
      vjp=(lambda g, ans, x, *, shape: np.reshape(g, np.shape(x)),),
      jvp=(lambda t, ans, x, *, shape: np.reshape(t, shape),),
      attrs={"shape": Attr("shape", None)}, doc="numpy reshape; one dim may be -1",
      samples=_reshape_samples)


def _concat_shape(avals: list[Aval], *, axis) -> Aval:
    dtype = result_dtype(*(a.dtype for a in avals))
    shapes = [a.shape for a in avals]
    if any(s is None for s in shapes):
        return Aval(None, dtype)
    nd = len(shapes[0])
    if nd == 0:
        raise RuleError("concat cannot join scalars (rank 0)")
    if any(len(s) != nd for s in shapes):
        raise RuleError("concat needs args of one rank, got " + ", ".join(fmt_shape(s) for s in shapes))
    ax = check_axis(axis, nd)
    out = list(shapes[0])
    for s in shapes[1:]:
        for i, (a, b) in enumerate(zip(out, s, strict=True)):
            if i == ax:
                out[i] = a + b if isinstance(a, int) and isinstance(b, int) else f"{a}+{b}"
            elif a != b and isinstance(a, int) and isinstance(b, int):
                raise RuleError(f"concat along axis {axis} needs the other dims equal, got "
                                + ", ".join(fmt_shape(t) for t in shapes))
    return Aval(tuple(out), dtype)


def _concat_vjp_at(i: int):
    def vjp(g, ans, *xs, axis):
        ax = axis % np.ndim(g)
        start = sum(np.shape(x)[ax] for x in xs[:i])
        index = [slice(None)] * np.ndim(g)
        index[ax] = slice(start, start + np.shape(xs[i])[ax])
        return g[tuple(index)]
    return vjp


def _concat_jvp_at(i: int):
    def jvp(t, ans, *xs, axis):
        # the tangent of arg i, placed where arg i sits in the output; zeros elsewhere
        parts = [t if j == i else np.zeros_like(x, dtype=np.result_type(t)) for j, x in enumerate(xs)]
        return np.concatenate(parts, axis=axis)
    return jvp


def _concat_samples():
    r = np.random.default_rng(6)
    n = r.normal
    return [([n(size=(2, 3)), n(size=(4, 3))], {}), ([n(size=(2, 3)), n(size=(2, 1)), n(size=(2, 2))], {"axis": -1}),
            ([n(size=(3,))], {})]


defop("concat", lambda *xs, axis: np.concatenate(xs, axis=axis), batch="concat", shape=_concat_shape, nargs=None,
      vjp_at=_concat_vjp_at, jvp_at=_concat_jvp_at, attrs={"axis": Attr("axis", 0)},
      doc="join any number of args along axis", samples=_concat_samples)
