"""Reductions over `axis` (an int, a list, or null for all) with numpy's `keepdims` (default
false, as in numpy; ONNX defaults it to 1)."""

from __future__ import annotations

import functools
import math

import numpy as np

from . import batching
from .registry import Attr, Aval, RuleError, check_axis, defop, expand_reduced, float_dtype, no_bool, norm_axes

REDUCE_ATTRS = {"axis": Attr("reduce_axis", None, doc="the axes to reduce; null: every axis"),
                "keepdims": Attr("bool", False, doc="keep each reduced axis with size 1")}


def _reduce_shape(avals: list[Aval], *, axis, keepdims, floating: bool = False) -> Aval:
    shape, dtype = avals[0]
    dtype = float_dtype(dtype) if floating else dtype
    if shape is None:
        return Aval(None, dtype)
    axes = [axis] if isinstance(axis, int) else axis
    if axes is not None:
        axes = [check_axis(a, len(shape)) for a in axes]
        if len(set(axes)) != len(axes):
            raise RuleError(f"axis {axis} names an axis twice")
    reduced = set(range(len(shape)) if axes is None else axes)
    if keepdims:
        return Aval(tuple(1 if i in reduced else d for i, d in enumerate(shape)), dtype)
    return Aval(tuple(d for i, d in enumerate(shape) if i not in reduced), dtype)


def _sum_shape(avals, **attrs):
    # numpy's sum of a bool mask counts it: int64
    shape, dtype = _reduce_shape(avals, **attrs)
    return Aval(shape, "int64" if dtype == "bool" else dtype)


def _float_reduce_shape(avals, **attrs):
    return _reduce_shape(avals, floating=True, **attrs)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _count(x, axis) -> int:
    shape = np.shape(x)
    return int(np.prod([shape[a] for a in norm_axes(axis, len(shape))], dtype=np.int64))


def _sum(x, *, axis, keepdims):
    return np.sum(x, axis=_axis(axis), keepdims=keepdims)


def _mean(x, *, axis, keepdims):
    return np.mean(x, axis=_axis(axis), keepdims=keepdims)


def _sum_vjp(g, ans, x, *, axis, keepdims):
    return np.broadcast_to(expand_reduced(g, np.ndim(x), axis, keepdims), np.shape(x))


def _mean_vjp(g, ans, x, *, axis, keepdims):
    return _sum_vjp(g, ans, x, axis=axis, keepdims=keepdims) / _count(x, axis)


def _max(x, *, axis, keepdims):
    return np.max(x, axis=_axis(axis), keepdims=keepdims)


def _winners(ans, x, axis, keepdims):
    """Where x attains its max, each winner weighted 1/(number of ties): ties split evenly."""
    hit = x == expand_reduced(ans, np.ndim(x), axis, keepdims)
    count = np.sum(hit, axis=_axis(axis), keepdims=True, dtype=np.result_type(x, np.float32))  # float32 stays
    return hit / count


def _max_vjp(g, ans, x, *, axis, keepdims):
    return expand_reduced(g, np.ndim(x), axis, keepdims) * _winners(ans, x, axis, keepdims)


def _max_jvp(t, ans, x, *, axis, keepdims):
    return np.sum(t * _winners(ans, x, axis, keepdims), axis=_axis(axis), keepdims=keepdims)


def _max_branch(ans, x, *, axis, keepdims):
    return x == expand_reduced(ans, np.ndim(x), axis, keepdims)


def class_first(x, axis: int):
    """(``x`` with ``axis`` moved to the front as a fresh C-contiguous float array, the axes
    that move it back). numpy reduces over a short last axis one row at a time but over the
    leading axis of a contiguous array with SIMD across rows (docs/architecture.md, "Measured");
    the softmax family and the class losses work in the copy in place."""
    x = np.asarray(x)
    perm, back = _front_perms(x.ndim, axis % x.ndim)
    return x.transpose(perm).astype(np.result_type(x, np.float32), order="C"), back


@functools.cache
def _front_perms(ndim: int, ax: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return (ax, *range(ax), *range(ax + 1, ndim)), (*range(1, ax + 1), 0, *range(ax + 1, ndim))


def shifted(xt):
    """In place: ``xt`` (class axis first) minus its max over that axis; and the max, kept
    finite (0) for all -inf or +inf rows so that they give -inf or inf, not nan."""
    m = xt.max(axis=0)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0)
    np.subtract(xt, m, out=xt)
    return xt, m


def exp_shifted(xt):
    """`shifted`, exponentiated in place."""
    xt, m = shifted(xt)
    np.exp(xt, out=xt)
    return xt, m


def _one_axis(x, axis):
    """The single axis of a reduction over exactly one axis of an array of rank >= 1, else None."""
    if isinstance(axis, list | tuple):
        axis = axis[0] if len(axis) == 1 else None
    return axis if axis is not None and np.ndim(x) >= 1 else None


def logsumexp(x, *, axis=None, keepdims=False):
    """log(sum(exp(x))) without overflow: shift by the max (kept finite for all -inf rows)."""
    ax = _one_axis(x, axis)
    if ax is not None:  # the common case (a class axis): reduced over the leading axis of a copy
        e, m = exp_shifted(class_first(x, ax)[0])
        out = np.log(e.sum(axis=0)) + m
        return np.expand_dims(out, ax) if keepdims else out
    axis = _axis(axis)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _lse_vjp(g, ans, x, *, axis, keepdims):
    nd = np.ndim(x)
    return expand_reduced(g, nd, axis, keepdims) * np.exp(x - expand_reduced(ans, nd, axis, keepdims))


def _lse_jvp(t, ans, x, *, axis, keepdims):
    p = np.exp(x - expand_reduced(ans, np.ndim(x), axis, keepdims))
    return np.sum(t * p, axis=_axis(axis), keepdims=keepdims)


def _samples(ties: bool = False):
    def make():
        r = np.random.default_rng(4)
        x = r.normal(size=(3, 4))
        y = r.normal(size=(2, 3, 4))
        out = [([x], {}), ([x], {"axis": 0}), ([x], {"axis": -1, "keepdims": True}),
               ([y], {"axis": [0, 2]}), ([y], {"axis": 1, "keepdims": True}), ([r.normal(size=())], {})]
        return out
    return make


def _lse_shape(avals, **attrs):
    no_bool(*avals)
    return _float_reduce_shape(avals, **attrs)


defop("sum", _sum, batch=batching.reduce, shape=_sum_shape, args=("x",), attrs=REDUCE_ATTRS,
      vjp=(_sum_vjp,), jvp=(lambda t, ans, x, **kw: _sum(t, **kw),),
      rules=("g broadcast to x's shape",),
      doc="sum over axis (all by default)", samples=_samples())

defop("mean", _mean, batch=batching.reduce, shape=_float_reduce_shape, args=("x",), attrs=REDUCE_ATTRS,
      vjp=(_mean_vjp,), jvp=(lambda t, ans, x, **kw: _mean(t, **kw),),
      rules=("g / n broadcast to x's shape",),
      doc="mean over axis (all by default)", samples=_samples())

defop("max", _max, batch=batching.reduce, shape=_reduce_shape, args=("x",), attrs=REDUCE_ATTRS,
      vjp=(_max_vjp,), jvp=(_max_jvp,), kink=_max_branch,
      rules=("g at the max (split on a tie)",),
      doc="max over axis; ties split the gradient evenly (a kink)", samples=_samples())

defop("logsumexp", logsumexp, batch=batching.reduce, shape=_lse_shape, args=("x",), attrs=REDUCE_ATTRS,
      vjp=(_lse_vjp,), jvp=(_lse_jvp,),
      rules=("g ⊙ softmax(x)",),
      doc="log(sum(exp(x))) over axis, stable (max-shifted)", samples=_samples())


# --- min, var, std -----------------------------------------------------------------------------

def _min(x, *, axis, keepdims):
    return np.min(x, axis=_axis(axis), keepdims=keepdims)


def _min_samples():
    r = np.random.default_rng(15)
    x = r.normal(size=(3, 4))
    return [([x], {}), ([x], {"axis": 1}), ([r.normal(size=(2, 3, 4))], {"axis": [0, -1], "keepdims": True})]


# the winners' rule of max serves min unchanged (ans is the min): ties split evenly
defop("min", _min, batch=batching.reduce, shape=_reduce_shape, args=("x",), attrs=REDUCE_ATTRS,
      vjp=(_max_vjp,), jvp=(_max_jvp,), kink=_max_branch,
      rules=("g at the min (split on a tie)",),
      doc="min over axis; ties split the gradient evenly (a kink)", samples=_min_samples)

VAR_ATTRS = {**REDUCE_ATTRS, "ddof": Attr("int", 0, doc="delta degrees of freedom: divide by n - ddof")}


def _var_shape(avals, *, ddof, **attrs):
    no_bool(*avals)
    if ddof < 0:
        raise RuleError(f"ddof must be >= 0, got {ddof}")
    shape = avals[0].shape
    if shape is not None and all(isinstance(d, int) for d in shape):
        axes = attrs["axis"]
        out = _float_reduce_shape(avals, **attrs)  # checks the axes first
        n = math.prod(shape[a] for a in norm_axes(axes, len(shape)))
        if n - ddof <= 0 and n > 0:
            raise RuleError(f"ddof {ddof} leaves no degrees of freedom: {n} element(s) per reduction")
        return out
    return _float_reduce_shape(avals, **attrs)


def _centred(x, axis):
    """x - mean(x) over axis, in x's float type: no E[x^2] - E[x]^2 cancellation, and the rounding
    of the mean itself taken back out (the corrected two-pass algorithm: the mean of d, ~eps |x|,
    matters where the spread is tiny next to |x|)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    d = x - np.mean(x, axis=_axis(axis), keepdims=True)
    d -= np.mean(d, axis=_axis(axis), keepdims=True)
    return d


def _var(x, *, axis, keepdims, ddof):
    d = _centred(x, axis)
    # an empty reduction (n = 0) is nan, as numpy's and torch's, whatever ddof: not 0 / -ddof = -0
    return np.sum(d * d, axis=_axis(axis), keepdims=keepdims) / max(_count(x, axis) - ddof, 0)


def _std(x, *, axis, keepdims, ddof):
    return np.sqrt(_var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def _var_slope(x, axis, ddof):
    """d var / dx = 2 (x - mean) / (n - ddof) (the mean's own dependence on x sums to zero)."""
    # n = 0 only when x is empty: any factor gives its empty slope (2 / 0 would raise)
    return _centred(x, axis) * (2 / max(_count(x, axis) - ddof, 1))


def _var_vjp(g, ans, x, *, axis, keepdims, ddof):
    return expand_reduced(g, np.ndim(x), axis, keepdims) * _var_slope(x, axis, ddof)


def _var_jvp(t, ans, x, *, axis, keepdims, ddof):
    return np.sum(t * _var_slope(x, axis, ddof), axis=_axis(axis), keepdims=keepdims)


def _std_slope(ans, x, axis, keepdims, ddof):
    """d std / dx = (x - mean) / ((n - ddof) std), from x - mean itself (not var's slope over 2 std,
    which would square the spread first); 0 where std == 0, where there is no derivative (|x| has a
    kink there), as torch.std's gradient is."""
    s = expand_reduced(ans, np.ndim(x), axis, keepdims)
    d = _centred(x, axis)
    denom = np.broadcast_to((_count(x, axis) - ddof) * s, d.shape)
    return np.divide(d, denom, out=np.zeros_like(d), where=denom != 0)


def _std_vjp(g, ans, x, *, axis, keepdims, ddof):
    return expand_reduced(g, np.ndim(x), axis, keepdims) * _std_slope(ans, x, axis, keepdims, ddof)


def _std_jvp(t, ans, x, *, axis, keepdims, ddof):
    return np.sum(t * _std_slope(ans, x, axis, keepdims, ddof), axis=_axis(axis), keepdims=keepdims)


def _var_samples():
    r = np.random.default_rng(16)
    x = r.normal(size=(3, 4))
    return [([x], {}), ([x], {"axis": 0, "ddof": 1}), ([x], {"axis": -1, "keepdims": True}),
            ([r.normal(size=(2, 3, 4)) * 3 + 5], {"axis": [0, 2], "ddof": 1})]


defop("var", _var, batch=batching.reduce, shape=_var_shape, args=("x",), attrs=VAR_ATTRS,
      vjp=(_var_vjp,), jvp=(_var_jvp,), reads=("x",),
      rules=("g ⊙ 2 (x - mean(x)) / (n - ddof)",),
      doc="variance over axis: sum((x - mean)**2) / (n - ddof); ddof 0 by default (numpy's; "
          "torch.var's default is 1)", samples=_var_samples)

defop("std", _std, batch=batching.reduce, shape=_var_shape, args=("x",), attrs=VAR_ATTRS,
      vjp=(_std_vjp,), jvp=(_std_jvp,),
      rules=("g ⊙ (x - mean(x)) / ((n - ddof) ans)",),
      doc="standard deviation over axis: sqrt(var); ddof 0 by default (numpy's; torch.std's is 1); "
          "the gradient is 0 where std == 0 (a kink: no derivative there), as torch's", samples=_var_samples)
