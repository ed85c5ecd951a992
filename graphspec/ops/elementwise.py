"""Elementwise ops: binary (broadcasting), unary, and where(cond, a, b). Each reads like a line of calculus.

Elementwise Jacobians are diagonal, so each VJP doubles as the JVP (``jvp=SYMMETRIC``):
``g * dans/dx`` with ``g`` the output cotangent or the arg's tangent.
"""

from __future__ import annotations

import numpy as np

from . import batching
from .registry import SYMMETRIC, WEAK, Attr, Aval, RuleError, broadcast_shapes, defop, float_dtype, no_bool, result_dtype


def _binary_shape(avals: list[Aval]) -> Aval:
    return Aval(broadcast_shapes(*(a.shape for a in avals)), result_dtype(*(a.dtype for a in avals)))


def _float_shape(avals: list[Aval], **_attrs) -> Aval:
    return Aval(broadcast_shapes(*(a.shape for a in avals)), float_dtype(*(a.dtype for a in avals)))


def _unary_shape(avals: list[Aval]) -> Aval:
    no_bool(*avals)
    return avals[0]


def _float_unary_shape(avals: list[Aval], **_attrs) -> Aval:
    no_bool(*avals)
    return _float_shape(avals)


def _sub_shape(avals: list[Aval]) -> Aval:
    no_bool(*avals)
    return _binary_shape(avals)


def _sample_binary():
    r = np.random.default_rng(0)
    return [([r.normal(size=(3, 4)), r.normal(size=(3, 4))], {}),
            ([r.normal(size=(2, 3, 4)), r.normal(size=(4,))], {}),
            ([r.normal(size=(3, 1)), r.normal(size=(1, 4))], {}),
            ([r.normal(size=()), r.normal(size=(2, 3))], {})]


def _positive(samples):
    def make():
        return [([np.abs(a) + 0.5 for a in args], attrs) for args, attrs in samples()]
    return make


def _sample_unary(lo: float | None = None):
    def make():
        r = np.random.default_rng(1)
        xs = [r.normal(size=(3, 4)), r.normal(size=()), r.normal(size=(2, 3, 2)) * 3]
        if lo is not None:
            xs = [np.abs(x) + lo for x in xs]
        return [([x], {}) for x in xs]
    return make


def _away_from_zero(samples):
    """Keep sample points off the kink at 0 (minitorch's relu(x + 5.5) trick)."""
    def make():
        return [([np.where(np.abs(a) < 0.1, a + 0.3, a) for a in args], attrs)
                for args, attrs in samples()]
    return make


# --- binary ------------------------------------------------------------------------------------

defop("add", np.add, jvp=SYMMETRIC, batch=batching.elementwise, shape=_binary_shape, args=("x", "y"), reads=(),
      vjp=(lambda g, ans, x, y: g,
           lambda g, ans, x, y: g),
      rules=("g", "g"),
      doc="x + y", samples=_sample_binary)

defop("sub", np.subtract, jvp=SYMMETRIC, batch=batching.elementwise, shape=_sub_shape, args=("x", "y"), reads=(),
      vjp=(lambda g, ans, x, y: g,
           lambda g, ans, x, y: -g),
      rules=("g", "-g"),
      doc="x - y", samples=_sample_binary)

defop("mul", np.multiply, jvp=SYMMETRIC, batch=batching.elementwise, shape=_binary_shape, args=("x", "y"), reads=("x", "y"),
      vjp=(lambda g, ans, x, y: g * y,
           lambda g, ans, x, y: g * x),
      rules=("g ⊙ y", "g ⊙ x"),
      doc="x * y", samples=_sample_binary)

defop("div", np.true_divide, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_shape, args=("x", "y"),
      vjp=(lambda g, ans, x, y: g / y,
           lambda g, ans, x, y: -g * ans / y),
      rules=("g / y", "-g ⊙ ans / y"),
      doc="x / y", samples=_positive(_sample_binary))


def _pow_dy(g, ans, x, y):
    # d(x**y)/dy = x**y log x; taken as 0 where x == 0 (autograd's and PyTorch's convention).
    # x in the result's dtype, as the forward used it: np.where would make a constant float64
    x = np.asarray(x, dtype=np.result_type(ans))
    with np.errstate(divide="ignore", invalid="ignore"):
        return g * ans * np.log(np.where(x == 0, 1, x))


def _pow_dx(g, ans, x, y):
    # y * x**(y-1), with the exponent kept at 1 where y == 0 so that 0 * 0**-1 is not nan
    y = np.asarray(y, dtype=np.result_type(ans))
    return g * y * np.power(x, np.where(y == 0, 1, y - 1))


def _pow(x, y):
    # the shape rule says float: integer args are promoted first (numpy refuses int ** -int)
    if not np.issubdtype(np.result_type(x, y), np.inexact):
        x = np.asarray(x, dtype=np.float64)
    return np.power(x, y)


defop("pow", _pow, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_shape, args=("x", "y"),
      vjp=(_pow_dx, _pow_dy),
      rules=("g ⊙ y ⊙ x^(y-1)", "g ⊙ ans ⊙ log(x)"),
      doc="x ** y (d/dy uses log x: x > 0)", samples=_positive(_sample_binary))


def _tie_split(g, x, y):
    """g where x wins, 0 where y wins, g/2 on a tie: ties split the gradient evenly. (Masks
    multiply g, so its dtype is kept: a float32 gradient stays float32.)"""
    return g * (x > y) + (0.5 * g) * (x == y)


defop("maximum", np.maximum, jvp=SYMMETRIC, batch=batching.elementwise, shape=_binary_shape, args=("x", "y"),
      vjp=(lambda g, ans, x, y: _tie_split(g, x, y),
           lambda g, ans, x, y: _tie_split(g, y, x)),
      kink=lambda ans, x, y: np.sign(np.subtract(x, y)),
      rules=("g where x > y (half on a tie)", "g where y > x (half on a tie)"),
      doc="elementwise max; ties split the gradient evenly", samples=_sample_binary)

defop("minimum", np.minimum, jvp=SYMMETRIC, batch=batching.elementwise, shape=_binary_shape, args=("x", "y"),
      vjp=(lambda g, ans, x, y: _tie_split(g, y, x),
           lambda g, ans, x, y: _tie_split(g, x, y)),
      kink=lambda ans, x, y: np.sign(np.subtract(x, y)),
      rules=("g where x < y (half on a tie)", "g where y < x (half on a tie)"),
      doc="elementwise min; ties split the gradient evenly", samples=_sample_binary)


# --- unary -------------------------------------------------------------------------------------

def _sigmoid(x):
    # both branches of 1/(1+e^-x) evaluated where they cannot overflow
    e = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _dsigmoid(x):
    # s(x) s(-x) = e / (1 + e)**2 with e = e^-|x|: no 1 - s(x) cancellation, so the slope
    # keeps its relative accuracy far into the tails (ans * (1 - ans) is 0 from x = 37 on)
    e = np.exp(-np.abs(x))
    return e / np.square(1 + e)


_COSH_MAX = {np.dtype(np.float32): 88.0, np.dtype(np.float16): 11.0}  # cosh overflows past these (float64: 710)


def _tanh_vjp(g, ans, x):
    # 1 - tanh(x)**2 as g / cosh(x)**2, accurate in the tails where 1 - tanh**2 cancels to 0; |x| capped
    # where cosh would overflow, past which the true slope underflows to 0 anyway (as 1/c/c does)
    c = np.cosh(np.minimum(np.abs(x), _COSH_MAX.get(getattr(x, "dtype", None), 710.0)))
    return g / c / c


def _softplus(x):
    return np.logaddexp(0.0, x)


def _leaky_relu(x, *, alpha):
    return np.where(x > 0, x, x * alpha)


def _relu(x, out=None):
    return np.maximum(x, 0, out=out)


defop("neg", np.negative, jvp=SYMMETRIC, batch=batching.elementwise, shape=_unary_shape, args=("x",), reads=(),
      vjp=(lambda g, ans, x: -g,), rules=("-g",),
      doc="-x", samples=_sample_unary())

defop("exp", np.exp, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("ans",),
      vjp=(lambda g, ans, x: g * ans,), rules=("g ⊙ ans",),
      doc="e ** x", samples=_sample_unary())

defop("log", np.log, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("x",),
      vjp=(lambda g, ans, x: g / x,), rules=("g / x",),
      doc="natural log", samples=_sample_unary(0.2))

defop("sqrt", np.sqrt, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("ans",),
      vjp=(lambda g, ans, x: g * 0.5 / ans,), rules=("g / (2 ans)",),
      doc="square root", samples=_sample_unary(0.2))

defop("square", np.square, jvp=SYMMETRIC, batch=batching.elementwise, shape=_unary_shape, args=("x",), reads=("x",),
      vjp=(lambda g, ans, x: g * 2 * x,), rules=("g ⊙ 2 x",),
      doc="x ** 2", samples=_sample_unary())

defop("abs", np.abs, jvp=SYMMETRIC, batch=batching.elementwise, shape=_unary_shape, args=("x",),
      vjp=(lambda g, ans, x: g * np.sign(x),), kink=lambda ans, x: np.sign(x),
      rules=("g ⊙ sign(x)",),
      doc="|x|; gradient 0 at 0 (a kink)", samples=_away_from_zero(_sample_unary()))

defop("sin", np.sin, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",),
      vjp=(lambda g, ans, x: g * np.cos(x),), rules=("g ⊙ cos(x)",),
      doc="sine", samples=_sample_unary())

defop("cos", np.cos, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",),
      vjp=(lambda g, ans, x: -g * np.sin(x),), rules=("-g ⊙ sin(x)",),
      doc="cosine", samples=_sample_unary())

defop("tanh", np.tanh, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("x",),
      vjp=(_tanh_vjp,), rules=("g ⊙ (1 - ans²)",),
      doc="hyperbolic tangent",
      samples=_sample_unary())

defop("sigmoid", _sigmoid, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("x",),
      vjp=(lambda g, ans, x: g * _dsigmoid(x),), rules=("g ⊙ ans ⊙ (1 - ans)",),
      doc="1 / (1 + e ** -x), stable for any x",
      samples=_sample_unary())

defop("relu", _relu, jvp=SYMMETRIC, batch=batching.elementwise, shape=_unary_shape, args=("x",), reads=("ans",), into=True,
      vjp=(lambda g, ans, x: g * (ans > 0),),  # ans > 0 where x > 0: x may be overwritten
      kink=lambda ans, x: np.asarray(x) > 0,
      rules=("g where x > 0",),
      doc="max(x, 0); gradient 0 at 0 (a kink)", samples=_away_from_zero(_sample_unary()))

defop("softplus", _softplus, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",),
      vjp=(lambda g, ans, x: g * _sigmoid(x),), rules=("g ⊙ sigmoid(x)",),
      doc="log(1 + e ** x), stable for any x",
      samples=_sample_unary())

defop("leaky_relu", _leaky_relu, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",),
      vjp=(lambda g, ans, x, *, alpha: np.where(x > 0, g, g * alpha),),
      attrs={"alpha": Attr("float", 0.01, doc="the slope for x <= 0")}, kink=lambda ans, x, *, alpha: np.asarray(x) > 0,
      rules=("g where x > 0, else alpha g",),
      doc="x if x > 0 else alpha * x", samples=_away_from_zero(_sample_unary()))


# --- log1p, clip, where ------------------------------------------------------------------------

def _sample_log1p():
    r = np.random.default_rng(12)
    return [([r.uniform(-0.9, 3.0, size=(3, 4))], {}), ([np.array(0.25)], {}),
            ([r.uniform(-0.5, 0.5, size=(2, 3, 2)) * 1e-3], {})]


defop("log1p", np.log1p, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("x",),
      vjp=(lambda g, ans, x: g / (1 + x),), rules=("g / (1 + x)",),
      doc="log(1 + x), accurate for tiny x (x > -1)", samples=_sample_log1p)

# the slope from x, not as ans + 1: that cancels for x << 0 (30% off at x = -37, 0 from x = -38 on)
defop("expm1", np.expm1, jvp=SYMMETRIC, batch=batching.elementwise, shape=_float_unary_shape, args=("x",), reads=("x",),
      vjp=(lambda g, ans, x: g * np.exp(x),), rules=("g ⊙ e^x",),
      doc="e ** x - 1, accurate for tiny x", samples=_sample_unary())


def _clip_shape(avals: list[Aval], *, min, max) -> Aval:
    no_bool(*avals)
    if min is not None and max is not None and min > max:
        raise RuleError(f"clip: min {min:g} is greater than max {max:g}")
    shape, dtype = avals[0]
    # a bound is a Python float: it makes ints float64 and keeps a float's type (NEP 50)
    return Aval(shape, dtype if min is None and max is None else result_dtype(dtype, WEAK))


def _clip(x, *, min, max):
    if min is None and max is None:
        return np.array(x, copy=True)  # never the argument's own buffer
    return np.clip(x, min, max)


def _inside(x, lo, hi):
    """1 where lo <= x <= hi (the bounds included, as torch.clamp's gradient), else 0."""
    if lo is None:
        return x <= hi if hi is not None else np.ones(np.shape(x), bool)
    return (x >= lo) & (x <= hi) if hi is not None else x >= lo


def _clip_branch(ans, x, *, min, max):
    """-1 below min, 0 inside, 1 above max: a kink at each bound."""
    x = np.asarray(x)
    below = x < min if min is not None else np.zeros(x.shape, bool)
    above = x > max if max is not None else np.zeros(x.shape, bool)
    return above.astype(np.int8) - below


def _sample_clip():
    r = np.random.default_rng(13)
    x = r.normal(size=(3, 4)) * 2
    x = np.where(np.abs(np.abs(x) - 1) < 0.1, x * 1.3, x)  # off the kinks at +-1 and 0.5
    return [([x], {"min": -1.0, "max": 1.0}), ([x], {"min": None, "max": 1.0}), ([x], {"min": -1.0}),
            ([r.normal(size=(2, 3))], {}), ([x], {"min": 0.5, "max": 0.5})]


defop("clip", _clip, jvp=SYMMETRIC, batch=batching.elementwise, shape=_clip_shape, args=("x",), reads=("x",),
      vjp=(lambda g, ans, x, *, min, max: g * _inside(x, min, max),),
      attrs={"min": Attr("opt_float", None, doc="the lower bound; null: none"),
             "max": Attr("opt_float", None, doc="the upper bound; null: none")}, kink=_clip_branch,
      rules=("g where min <= x <= max",),  # the bounds included, as _inside
      doc="min(max(x, min), max); attrs min, max (a number or null: no bound). Gradient 1 where "
          "min <= x <= max, bounds included (torch.clamp's convention), 0 outside: kinks at the bounds",
      samples=_sample_clip)


def _where_shape(avals: list[Aval]) -> Aval:
    cond, a, b = avals
    if cond.dtype not in ("bool", "int64"):
        what = "a number in args" if cond.dtype == WEAK else cond.dtype
        raise RuleError(f"where: cond must be a bool or int64 input or node (nonzero: take a), got {what}")
    shape = broadcast_shapes(cond.shape, a.shape, b.shape)
    return Aval(shape, result_dtype(a.dtype, b.dtype))


def _sample_where():
    r = np.random.default_rng(14)
    return [([r.normal(size=(3, 4)) > 0, r.normal(size=(3, 4)), r.normal(size=(3, 4))], {}),
            ([r.integers(0, 2, size=(2, 1, 4)), r.normal(size=(3, 4)), r.normal(size=(4,))], {}),
            ([np.array([True, False, True]), r.normal(size=(2, 3)), r.normal(size=())], {})]


defop("where", np.where, jvp=SYMMETRIC, batch=batching.elementwise, shape=_where_shape, args=("cond", "a", "b"),
      reads=("cond",),
      vjp=(None,
           lambda g, ans, cond, a, b: np.where(cond, g, 0),
           lambda g, ans, cond, a, b: np.where(cond, 0, g)),
      rules=("", "g where cond", "g where not cond"),
      doc="a where cond (bool, or int64 nonzero) else b, broadcasting all three; cond gets no gradient",
      samples=_sample_where)
