"""matmul (numpy semantics: 1-D operands, batching by broadcasting) and transpose."""

from __future__ import annotations

import numpy as np

from . import batching
from .registry import Attr, Aval, RuleError, broadcast_shapes, defop, fmt_shape, result_dtype


def _matmul_shape(avals: list[Aval]) -> Aval:
    (a, b) = (avals[0].shape, avals[1].shape)
    dtype = result_dtype(avals[0].dtype, avals[1].dtype)
    if a is None or b is None:
        return Aval(None, dtype)
    if len(a) == 0 or len(b) == 0:
        raise RuleError(f"matmul needs arrays of rank >= 1, got {fmt_shape(a)} and {fmt_shape(b)}")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    k1, k2 = a2[-1], b2[-2]
    if k1 != k2 and isinstance(k1, int) and isinstance(k2, int):
        raise RuleError(f"matmul cannot multiply {fmt_shape(a)} by {fmt_shape(b)}")
    try:
        batch = broadcast_shapes(a2[:-2], b2[:-2])
    except RuleError:
        raise RuleError(f"matmul cannot broadcast the batch dims of {fmt_shape(a)} and {fmt_shape(b)}") from None
    out = (*batch, *([a2[-2]] if len(a) > 1 else []), *([b2[-1]] if len(b) > 1 else []))
    return Aval(out, dtype)


def _as_matrices(g, x, y):
    """Promote 1-D operands (and the cotangent) the way numpy's matmul does."""
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 1:
        y, g = y[:, None], np.expand_dims(g, -1)
    if x.ndim == 1:
        x, g = x[None, :], np.expand_dims(g, -2)
    return g, x, y


def _matmul_dx(g, ans, x, y):
    x_ndim = np.ndim(x)
    g, x, y = _as_matrices(g, x, y)
    dx = g @ np.swapaxes(y, -1, -2)
    return dx[..., 0, :] if x_ndim == 1 else dx


def _matmul_dy(g, ans, x, y):
    y_ndim = np.ndim(y)
    g, x, y = _as_matrices(g, x, y)
    dy = np.swapaxes(x, -1, -2) @ g
    return dy[..., 0] if y_ndim == 1 else dy


def _matmul_samples():
    r = np.random.default_rng(2)
    n = r.normal
    return [([n(size=(3, 4)), n(size=(4, 5))], {}), ([n(size=(4,)), n(size=(4, 2))], {}),
            ([n(size=(3, 4)), n(size=(4,))], {}), ([n(size=(4,)), n(size=(4,))], {}),
            ([n(size=(2, 3, 4)), n(size=(4, 5))], {}), ([n(size=(2, 1, 3, 4)), n(size=(3, 4, 2))], {})]


defop("matmul", np.matmul, batch=batching.matmul, shape=_matmul_shape, args=("x", "y"), reads=("x", "y"),
      vjp=(_matmul_dx, _matmul_dy),
      jvp=(lambda t, ans, x, y: np.matmul(t, y),
           lambda t, ans, x, y: np.matmul(x, t)),
      rules=("g · yᵀ", "xᵀ · g"),
      doc="x @ y with numpy semantics (1-D operands, batched)", samples=_matmul_samples)


def _transpose_shape(avals: list[Aval], *, axes) -> Aval:
    shape = avals[0].shape
    if shape is None:
        return avals[0]
    if axes is None:
        return Aval(tuple(reversed(shape)), avals[0].dtype)
    if sorted(a % len(shape) if -len(shape) <= a < len(shape) else a for a in axes) != list(range(len(shape))):
        raise RuleError(f"axes {list(axes)} is not a permutation of the {len(shape)} axes of {fmt_shape(shape)}")
    return Aval(tuple(shape[a] for a in axes), avals[0].dtype)


def _transpose_vjp(g, ans, x, *, axes):
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort([a % np.ndim(x) for a in axes]))


def _transpose_samples():
    r = np.random.default_rng(3)
    return [([r.normal(size=(3, 4))], {}), ([r.normal(size=(2, 3, 4))], {"axes": [1, 2, 0]}),
            ([r.normal(size=(2, 3, 4))], {"axes": [0, -1, 1]})]


defop("transpose", lambda x, *, axes: np.transpose(x, axes), batch=batching.transpose, shape=_transpose_shape, args=("x",),
      vjp=(_transpose_vjp,), jvp=(lambda t, ans, x, *, axes: np.transpose(t, axes),),
      attrs={"axes": Attr("axes", None, doc="the permutation of the axes; null: reversed")},
      rules=("gᵀ",),
      doc="permute axes (default: reverse them)",
      samples=_transpose_samples)
