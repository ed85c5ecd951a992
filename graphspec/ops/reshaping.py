"""Ops that move elements without changing them: reshape, concat, stack, expand_dims, squeeze,
slice and take (whose VJPs put the cotangent back where each element came from)."""

from __future__ import annotations

import math

import numpy as np

from . import batching
from .registry import Attr, Aval, RuleError, check_axis, defop, fmt_shape, result_dtype


def _reshape_back(g, ans, x, **_):
    """The VJP of every op that only rearranges x's elements in order (reshape, expand_dims, squeeze)."""
    return np.reshape(g, np.shape(x))


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


defop("reshape", lambda x, *, shape: np.reshape(x, shape), batch=batching.reshape, shape=_reshape_shape, args=("x",),
      vjp=(_reshape_back,),
      jvp=(lambda t, ans, x, *, shape: np.reshape(t, shape),),
      attrs={"shape": Attr("shape", None, doc="the new shape (required); one dim may be -1")},
      rules=("g reshaped to x's shape",),
      doc="numpy reshape; one dim may be -1",
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


def _placed_jvp(join):
    """The JVP of a join (concatenate, stack) for arg i: arg i's tangent where arg i sits in the
    output, zeros elsewhere."""
    def jvp_at(i: int):
        def jvp(t, ans, *xs, axis):
            return join([t if j == i else np.zeros_like(x, dtype=np.result_type(t)) for j, x in enumerate(xs)], axis=axis)
        return jvp
    return jvp_at


def _concat_samples():
    r = np.random.default_rng(6)
    n = r.normal
    return [([n(size=(2, 3)), n(size=(4, 3))], {}), ([n(size=(2, 3)), n(size=(2, 1)), n(size=(2, 2))], {"axis": -1}),
            ([n(size=(3,))], {})]


defop("concat", lambda *xs, axis: np.concatenate(xs, axis=axis), batch=batching.concat, shape=_concat_shape,
      vjp=_concat_vjp_at, jvp=_placed_jvp(np.concatenate), attrs={"axis": Attr("axis", 0, doc="the axis to join along")},
      doc="join any number of args along axis", samples=_concat_samples)


# --- stack, expand_dims, squeeze ---------------------------------------------------------------

def _new_axis(axis, nd: int, what: str) -> int:
    """A position for a new axis in a result of rank nd + 1 (negative counts from its end)."""
    if axis is None:
        raise RuleError(f"{what} needs attr 'axis'")
    return check_axis(axis, nd + 1)


def _stack_shape(avals: list[Aval], *, axis) -> Aval:
    dtype = result_dtype(*(a.dtype for a in avals))
    shapes = [a.shape for a in avals]
    if any(s is None for s in shapes):
        return Aval(None, dtype)
    first = shapes[0]
    for s in shapes[1:]:
        if len(s) != len(first) or any(a != b and isinstance(a, int) and isinstance(b, int)
                                        for a, b in zip(first, s, strict=True)):
            raise RuleError("stack needs args of one shape, got " + ", ".join(fmt_shape(t) for t in shapes))
    ax = _new_axis(axis, len(first), "stack")
    return Aval((*first[:ax], len(shapes), *first[ax:]), dtype)


def _stack_vjp_at(i: int):
    def vjp(g, ans, *xs, axis):
        return np.take(g, i, axis=axis % np.ndim(g))
    return vjp


def _stack_samples():
    r = np.random.default_rng(17)
    n = r.normal
    return [([n(size=(2, 3)), n(size=(2, 3))], {}), ([n(size=(2, 3)), n(size=(2, 3)), n(size=(2, 3))], {"axis": -1}),
            ([n(size=()), n(size=())], {}), ([n(size=(4,))], {"axis": 1})]


# dtype=: np.stack makes a JSON number a float64 array, which would promote a float32 arg
defop("stack", lambda *xs, axis: np.stack(xs, axis=axis, dtype=np.result_type(*xs)), shape=_stack_shape,
      vjp=_stack_vjp_at, jvp=_placed_jvp(np.stack),
      attrs={"axis": Attr("axis", 0, doc="the new axis, counted in the result")},
      doc="join any number of args of one shape along a new axis (axis counts in the result)",
      samples=_stack_samples)


def _expand_dims_shape(avals: list[Aval], *, axis) -> Aval:
    shape, dtype = avals[0]
    if shape is None:
        return Aval(None, dtype)
    ax = _new_axis(axis, len(shape), "expand_dims")
    return Aval((*shape[:ax], 1, *shape[ax:]), dtype)


defop("expand_dims", lambda x, *, axis: np.expand_dims(x, axis), shape=_expand_dims_shape, args=("x",), reads=(),
      vjp=(_reshape_back,),
      jvp=(lambda t, ans, x, *, axis: np.expand_dims(t, axis),),
      attrs={"axis": Attr("axis", None, doc="where the new axis goes, counted in the result (required)")},
      rules=("g with the axis dropped",),
      doc="insert an axis of size 1 at axis (counted in the result; required)",
      samples=lambda: [([np.random.default_rng(18).normal(size=(2, 3))], {"axis": a}) for a in (0, 1, -1)])


def _squeeze_shape(avals: list[Aval], *, axis) -> Aval:
    shape, dtype = avals[0]
    if shape is None:
        return Aval(None, dtype)
    nd = len(shape)
    if axis is None:
        if any(isinstance(d, str) for d in shape):
            return Aval(None, dtype)  # a symbolic dim may or may not be 1: known when it runs
        axes = {i for i, d in enumerate(shape) if d == 1}
    else:
        listed = [check_axis(a, nd) for a in ([axis] if isinstance(axis, int) else axis)]
        if len(set(listed)) != len(listed):
            raise RuleError(f"axis {list(axis)} names an axis twice")
        for a in listed:
            if shape[a] != 1:
                raise RuleError(f"squeeze: axis {a} of {fmt_shape(shape)} has size {shape[a]!r}, not 1")
        axes = set(listed)
    return Aval(tuple(d for i, d in enumerate(shape) if i not in axes), dtype)


def _squeeze(x, *, axis):
    out = np.squeeze(x, axis=tuple(axis) if isinstance(axis, list | tuple) else axis)
    return out.view() if out is x else out  # nothing to squeeze: numpy hands back x itself


defop("squeeze", _squeeze, shape=_squeeze_shape, args=("x",), reads=(),
      vjp=(_reshape_back,),
      jvp=(lambda t, ans, x, *, axis: _squeeze(t, axis=axis),),
      attrs={"axis": Attr("reduce_axis", None, doc="the axes of size 1 to drop; null: every one")},
      rules=("g reshaped to x's shape",),
      doc="drop axes of size 1: axis (an int or a list; an error if its size is not 1) or, by default, every one",
      samples=lambda: [([np.random.default_rng(19).normal(size=(2, 1, 3, 1))], {"axis": a}) for a in (None, 1, -1, [1, 3])])


# --- slice, take -------------------------------------------------------------------------------

def _slice_dim(d, s) -> int | str:
    """The length of one axis of size d sliced by (start, stop[, step]), Python's rules."""
    if isinstance(d, int):
        return len(range(*slice(*s).indices(d)))
    if tuple(s) in ((None, None), (None, None, None), (None, None, 1), (0, None), (0, None, None), (0, None, 1)):
        return d
    return f"{d}[{':'.join('' if a is None else str(a) for a in s)}]"  # symbolic: a size of its own


def _slice_shape(avals: list[Aval], *, slices) -> Aval:
    shape, dtype = avals[0]
    if slices is None:
        raise RuleError("slice needs attr 'slices' (one [start, stop] or [start, stop, step] per leading axis)")
    for i, s in enumerate(slices):
        if len(s) == 3 and s[2] == 0:
            raise RuleError(f"slices[{i}]: step must not be 0")
    if shape is None:
        return Aval(None, dtype)
    if len(slices) > len(shape):
        raise RuleError(f"{len(slices)} slices for the {len(shape)} axes of {fmt_shape(shape)}")
    return Aval(tuple(_slice_dim(d, s) for d, s in zip(shape, slices, strict=False)) + tuple(shape[len(slices):]), dtype)


def _index(slices) -> tuple[slice, ...]:
    return tuple(slice(*s) for s in slices)


def _slice_vjp(g, ans, x, *, slices):
    gx = np.zeros(np.shape(x), dtype=np.result_type(g))
    gx[_index(slices)] = g
    return gx


def _slice_samples():
    r = np.random.default_rng(20)
    x = r.normal(size=(4, 5, 3))
    return [([x], {"slices": [[1, 3]]}), ([x], {"slices": [[None, None], [-1, None, -2], [0, 2]]}),
            ([x], {"slices": [[None, None, 2], [1, -1]]}), ([r.normal(size=(6,))], {"slices": [[5, 0, -2]]})]


defop("slice", lambda x, *, slices: x[_index(slices)], shape=_slice_shape, args=("x",), reads=(),
      vjp=(_slice_vjp,), jvp=(lambda t, ans, x, *, slices: t[_index(slices)],),
      attrs={"slices": Attr("slices", None, doc="one [start, stop] or [start, stop, step] per leading axis (required)")},
      rules=("g placed in the slice, zeros elsewhere",),
      doc="x[start:stop:step, ...] as in Python: slices holds one [start, stop] or [start, stop, step] per "
          "leading axis (null for a default, negative counts from the end; later axes are taken whole); "
          "the gradient is g in the sliced places, 0 elsewhere",
      samples=_slice_samples)


def _take_shape(avals: list[Aval], *, axis) -> Aval:
    (xs, xdt), (ishape, idt) = avals
    if idt not in ("int64",):
        what = "a number in args" if idt == "weak" else idt
        raise RuleError(f"take: indices must be an int64 input or node, got {what}")
    if xs is None or ishape is None:
        return Aval(None, xdt)
    if len(xs) == 0:
        raise RuleError("take needs x of rank >= 1, got a scalar")
    ax = check_axis(axis, len(xs))
    return Aval((*xs[:ax], *ishape, *xs[ax + 1:]), xdt)


def _checked_indices(indices, n: int, axis: int):
    indices = np.asarray(indices)
    if indices.size and (indices.max() >= n or indices.min() < -n):
        bad = indices[(indices >= n) | (indices < -n)].flat[0]
        raise ValueError(f"index {bad} is out of range for axis {axis} of size {n} ({-n}..{n - 1})")
    return indices


def _take(x, indices, *, axis):
    ax = axis % np.ndim(x)
    return np.take(x, _checked_indices(indices, np.shape(x)[ax], axis), axis=ax)


def _take_vjp(g, ans, x, indices, *, axis):
    """The scatter-add of g into x's places: an index taken twice collects both cotangents."""
    gx = np.zeros(np.shape(x), dtype=np.result_type(g))
    np.add.at(gx, (slice(None),) * (axis % np.ndim(x)) + (np.asarray(indices),), g)  # the axes before it, whole
    return gx


def _take_samples():
    r = np.random.default_rng(21)
    table = r.normal(size=(5, 3))
    return [([table, np.array([0, 2, 2, 4, -1])], {}),  # an embedding lookup, an id twice
            ([r.normal(size=(2, 4, 3)), np.array([[3, 0], [1, 3]])], {"axis": 1}),
            ([r.normal(size=(4,)), np.array(2)], {}), ([table, np.array([1, 0])], {"axis": -1})]


defop("take", _take, shape=_take_shape, args=("x", "indices"), reads=("indices",),
      vjp=(_take_vjp, None),
      jvp=(lambda t, ans, x, indices, *, axis: np.take(t, indices, axis=axis), None),
      attrs={"axis": Attr("axis", 0, doc="the axis the indices pick along")},
      rules=("g added at the indices, zeros elsewhere", ""),
      doc="x's entries at int64 indices along axis (numpy's take; an embedding lookup for axis 0): the result's "
          "shape is x's with that axis replaced by the indices' shape; negative indices count from the end, "
          "others out of range are an error when it runs; the VJP scatter-adds g (repeated indices add up)",
      samples=_take_samples)
