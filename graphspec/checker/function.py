"""Plain functions checked like ops: ``gradcheck(f, args, grad=...)``, a torch callable, a jax.custom_vjp.

The function becomes one op for the length of the check (its forward ``f``, its VJP rules made
from the gradient you give), the op one node of a one-node spec applying it to the args, and the
graph goes through the same `gradcheck` as any spec: the same tables, Taylor test, fast mode,
blame and notes. The op is registered under a name no op has and removed afterwards, whatever
happens; a built-in is never replaced.

The conventions (numpy's scipy.optimize.check_grad, JAX's and PyTorch's):

- ``grad(*args)``: for a scalar ``f``, one gradient per arg, in order (a bare array for one arg);
- ``vjp(g, *args)``: for any ``f``, the cotangent of every arg given the output cotangent ``g``
  (the shape of f's output), as a tuple: what jax.vjp's pullback and torch's backward return;
- ``jvp(tangents, *args)``: the output tangent given one tangent per arg (optional: without it
  forward mode is not checked, and a note says so);
- ``kink(*args)``: an array saying which side of each kink the point is on (``x > 0`` for relu);
- ``vectorized=True``: ``f`` also takes every arg with one leading axis of points and returns one
  result per point; then the finite differences call it once per input, not once per perturbation
  (the stacked evaluations of graphspec's own ops). Checked on two rows of every call.
  ``vectorized=None`` (the default, numpy functions): found out by one probe, ``f`` on the point
  stacked twice, slightly moved in the second row, against ``f`` on each row alone; used when they
  agree, and still checked on two rows of every call, falling back to one call per point where
  a call disagrees. ``vectorized=False``: always one call per point.

``args`` is a tuple of args, each a numpy array, a list or a number (anything but a tuple is
the one arg), checked in float64; integer and bool args get no gradient (return None for them).
A torch callable (``MyFunction.apply``, a module, any function of tensors) or a
``jax.custom_vjp`` function needs no gradient: its forward, VJP (its backward) and JVP (forward-mode AD where it works) come from
the framework, in float64. torch and jax are imported only when given one of their objects.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import GraphspecError, InputError, OpError
from .results import Report

Fn = Callable[..., Any]


class _Rule:
    """One rule of the temporary op, calling the user's code. ``__code__`` is the user's function's, so
    the core locates an error in the user's file and line (passes.code_site), not in this module."""

    def __init__(self, call: Fn, user: Any, phase: str = "") -> None:
        self.call, self.phase = call, phase
        code = getattr(_plain(user), "__code__", None) if user is not None else None
        if code is not None:
            self.__code__ = code

    def __call__(self, *args: Any) -> Any:
        try:
            return self.call(*args)
        except Exception as e:
            if self.phase:  # which rule raised, for an error that reaches check_function
                e._graphspec_phase = self.phase  # type: ignore[attr-defined]
            raise


class _EveryArg:
    """A user's grad or vjp, or a framework's backward, gives every arg's cotangent in one call, but the
    op asks for them one arg at a time, with the same objects: the last call's result serves the other
    args of the same pull. An arg asked for twice, or other objects, is a new pull (a buffer reused
    with new numbers is never read stale), so the user's function runs once per pull, not once per arg."""

    def __init__(self, fn: Fn) -> None:
        self.fn, self.key, self.value, self.taken = fn, (), None, set()

    def __call__(self, i: int, *key: Any) -> Any:
        if i in self.taken or len(key) != len(self.key) or any(a is not b for a, b in zip(key, self.key, strict=True)):
            self.value, self.key, self.taken = self.fn(*key), key, set()
        self.taken.add(i)
        return self.value


@dataclass
class _Record:
    """A function of numpy arrays with its rules, before it is an op."""

    name: str  # the node's name: the function's
    forward: Fn
    arg_names: list[str]
    args: list[np.ndarray]
    vjp: list[Fn | None]  # vjp[i](g, ans, *args), the op record's convention
    jvp: list[Fn | None] | None
    kink: Fn | None
    origin: str  # file:line where the function is defined
    notes: list[str]
    scalar_only: bool = False  # given grad=: the function must return a scalar
    restore: Fn | None = None  # undoes a setting made for the check (jax's float64)
    vectorized: bool | None = False  # the forward takes every arg with a leading axis of perturbations
    fallback: bool = False  # found out by the probe: a call that disagrees falls back to row by row


def check_function(fn: Fn, args: Any, *, grad: Fn | None = None, vjp: Fn | None = None, jvp: Fn | None = None,
                   kink: Fn | None = None, vectorized: bool | None = None, **options: Any) -> Report:
    """`gradcheck` of a Python function (the module docstring says which conventions); ``options``
    are gradcheck's (``fast``, ``taylor``, ``wrt`` by arg name, ...)."""
    from . import gradcheck

    if options.get("inputs") is not None:
        raise InputError("a function's args are given as gradcheck(f, args, ...), not inputs=", loc="inputs")
    options.pop("inputs", None)
    kind = _framework(fn, args)
    if kind != "numpy" and (grad is not None or vjp is not None):
        raise InputError(f"the gradient of a {kind} callable comes from {kind}'s autodiff (its backward): "
                         "drop grad= and vjp=", loc="grad" if grad is not None else "vjp")
    if vectorized and kind != "numpy":
        raise InputError(f"vectorized=True is for numpy functions, not a {kind} callable", loc="vectorized")
    record = _torch(fn, args) if kind == "torch" else _jax(fn, args) if kind == "jax" else \
        _numpy(fn, args, grad, vjp, jvp, kink)
    if vectorized is None:
        vectorized = kind == "numpy" and _takes_stacked_points(record)
        record.fallback = vectorized
    record.vectorized = vectorized
    try:
        with _temporary_op(record) as (graph, inputs):
            report = gradcheck(graph, inputs=inputs, **options)
    except GraphspecError:
        raise
    except Exception as e:  # the function raised at a perturbed point: the op's error, located
        phase = getattr(e, "_graphspec_phase", "forward")
        rule = record.forward if phase == "forward" else record.kink
        raise OpError(record.name, record.name, phase, f"{type(e).__name__}: {e} (at a point near the args; "
                      + _at(rule, e, record.origin)[2:]) from e
    finally:
        if record.restore is not None:
            record.restore()
    report.notes[:0] = record.notes
    return report


# ---------------------------------------------------------------------------------------------
# the one-node graph


@contextmanager
def _temporary_op(rec: _Record) -> Iterator[tuple[Any, dict[str, np.ndarray]]]:
    """The record as an op in the table, and the graph applying it to the args; the op is removed
    on the way out, even on an error."""
    from ..api import load
    from ..ops import OPS, Aval, defop

    ans = _run(rec, rec.forward, *rec.args)
    out = np.asarray(ans)
    if out.dtype.kind not in "f" or out.size == 0:
        raise OpError(rec.name, rec.name, "forward", f"returned {out.dtype} values of shape {list(out.shape)}: "
                      "a function to check returns floats" + _at(rec.forward, None, rec.origin))
    scalar = out.shape == ()
    if not scalar and rec.scalar_only:
        raise InputError(f"grad= is for a scalar function; '{rec.name}' returns shape {list(out.shape)}: give vjp= "
                         "instead (vjp(g, *args) -> one cotangent per arg)", loc="grad")
    aval = Aval(out.shape, "float32" if out.dtype == np.float32 else "float64")
    op_name = rec.name if rec.name not in OPS else next(f"{rec.name}_{k}" for k in range(2, 10**6)
                                                        if f"{rec.name}_{k}" not in OPS)
    op = defop(op_name, rec.forward, vjp=tuple(rec.vjp), jvp=None if rec.jvp is None else tuple(rec.jvp),
               shape=lambda avals, **_: aval, args=rec.arg_names, kink=rec.kink, doc=f"the function {rec.name}",
               batch=_stacking_rule(rec, out) if rec.vectorized else None)
    mine = OPS[op_name] = replace(op, origin=rec.origin)  # errors name the user's function, not this module
    try:
        inputs = {n: {"shape": list(a.shape), "dtype": _dtype(a)} for n, a in zip(rec.arg_names, rec.args, strict=True)}
        spec: dict[str, Any] = {"graphspec": "1", "name": rec.name, "inputs": inputs,
                                "nodes": {rec.name: {"op": op_name, "args": rec.arg_names}}}
        if scalar:
            spec["loss"] = rec.name
        yield load(spec), dict(zip(rec.arg_names, rec.args, strict=True))
    finally:
        if OPS.get(op_name) is mine:
            del OPS[op_name]


def _takes_stacked_points(rec: _Record) -> bool:
    """The probe of ``vectorized=None``: ``f`` on the float args stacked twice (the second row moved by
    a relative 1e-3, so that a function that ignores the leading axis is seen), against each row
    alone. Any exception, warning-free or not, means no."""
    floats = [np.asarray(a).dtype.kind == "f" for a in rec.args]
    if not any(floats):
        return False
    rows = [[np.asarray(a, dtype=np.float64) if f else a for a, f in zip(rec.args, floats, strict=True)]]
    rows.append([a * (1 + 1e-3) + 1e-3 if f else a for a, f in zip(rows[0], floats, strict=True)])
    try:
        with np.errstate(all="ignore"):
            one = [np.asarray(rec.forward(*r)) for r in rows]
            both = np.asarray(rec.forward(*[np.stack([r0, r1]) if f else np.broadcast_to(r0, (2, *np.shape(r0)))
                                            for r0, r1, f in zip(rows[0], rows[1], floats, strict=True)]))
    except Exception:
        return False
    return both.shape == (2, *one[0].shape) and all(
        np.allclose(both[k], one[k], rtol=1e-12, atol=0, equal_nan=True) for k in range(2)) and \
        not np.array_equal(one[0], one[1])


def _stacking_rule(rec: _Record, out: np.ndarray) -> Fn:
    """The op's batching rule for a vectorized function: one call on every perturbation, each arg with
    the leading axis (the unperturbed ones broadcast). Its result is held to the function called row
    by row, at the first and the last row of every call: a function that is not vectorized after all
    is an error, never a wrong derivative."""
    def rule(args: list[Any], stacked: list[bool], ndims: list[int], attrs: dict[str, Any], rows: int) -> Any:
        full = [a if st else np.broadcast_to(a, (rows, *np.shape(a))) for a, st in zip(args, stacked, strict=True)]

        def post(y: Any) -> Any:
            y = np.asarray(y)
            bad = "" if y.shape == (rows, *out.shape) else f"shape {list(y.shape)}, not {[rows, *out.shape]}"
            for r in (0, rows - 1):
                if not bad:
                    one = np.asarray(rec.forward(*[a[r] for a in full]))
                    scale = max(1.0, float(np.max(np.abs(one), initial=0.0, where=np.isfinite(one))))
                    if not np.allclose(y[r], one, rtol=1e-9, atol=1e-12 * scale, equal_nan=True):
                        bad = f"row {r} differs from the function called on row {r} alone"
            if bad and rec.fallback:  # the probe said yes, this call says no: one call per point, as without it
                return np.stack([np.asarray(rec.forward(*[a[r] for a in full])) for r in range(rows)])
            if bad:
                raise OpError(rec.name, rec.name, "forward", f"vectorized=True, but called on {rows} stacked points the "
                              f"function returned {bad}: it is not vectorized (leave vectorized out to call it once "
                              "per point)" + _at(rec.forward, None, rec.origin))
            return y
        return full, attrs, post
    return rule


def _dtype(a: np.ndarray) -> str:
    return "bool" if a.dtype.kind == "b" else "int64" if a.dtype.kind in "iu" else "float64"


def _run(rec: _Record, forward: Fn, *args: Any) -> Any:
    """The forward once at the point: its error is the op's, located in the user's code."""
    try:
        with np.errstate(all="ignore"):
            return forward(*args)
    except Exception as e:
        raise OpError(rec.name, rec.name, "forward", f"{type(e).__name__}: {e}" + _at(forward, e, rec.origin)) from e


def _at(fn: Any, error: BaseException | None, origin: str) -> str:
    from ..passes import code_site

    site = code_site(fn, error)
    return f" (at {site or origin})"


def _plain(fn: Any) -> Any:
    """The function behind decorators and functools.partial."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.unwrap(fn)


def _origin(fn: Any) -> str:
    code = getattr(_plain(fn), "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else repr(fn)


def _name(fn: Any) -> str:
    owner = getattr(fn, "__self__", None)  # MyFunction.apply: MyFunction
    name = owner.__name__ if isinstance(owner, type) else getattr(_plain(fn), "__name__", None) or type(fn).__name__
    return name if name.isidentifier() and name != "<lambda>" else "f"


def _arg_names(fn: Any, n: int, node: str, skip: int = 0) -> list[str]:
    """The function's own parameter names where they are plain ones (x, W1), else x, y, z / x0, x1, ..."""
    try:
        params = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
    if len(names) == n and len(set(names)) == n and node not in names:
        return names
    base = ["x", "y", "z"][:n] if n <= 3 else [f"x{i}" for i in range(n)]
    return [b if b != node else f"{b}_" for b in base]


def _arrays(args: Any, convert: Fn = np.asarray) -> list[np.ndarray]:
    """The args as arrays, floats in float64: a tuple is the args, anything else (an array, a list, a
    number) the one arg."""
    if not isinstance(args, tuple):
        args = (args,)
    out = []
    for i, a in enumerate(args):
        try:
            arr = np.asarray(convert(a))
        except Exception as e:
            raise InputError(f"not an array: {type(a).__name__} ({e})", loc=f"args[{i}]",
                             hint="several args go in a tuple; bind other arguments with functools.partial") from e
        if arr.dtype.kind not in "fiub":
            raise InputError(f"not an array of numbers: {type(a).__name__} of dtype {arr.dtype}", loc=f"args[{i}]",
                             hint="bind other arguments with functools.partial or a lambda")
        out.append(arr.astype(np.float64) if arr.dtype.kind == "f" else arr.astype(np.int64) if arr.dtype.kind in "iu"
                   else arr)
    if not out:
        raise InputError("no args: gradcheck(f, args) needs the point to check at", loc="args")
    return out


def _differentiable(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def _pick(results: Any, i: int, n: int, what: str) -> Any:
    """Arg i's entry of what the user's grad or vjp returned (one per arg; a bare array for one arg)."""
    if n == 1 and not isinstance(results, tuple | list):
        return results
    if not isinstance(results, tuple | list) or len(results) != n:
        got = f"{len(results)} values" if isinstance(results, tuple | list) else type(results).__name__
        raise TypeError(f"{what} returned {got} for {n} args: one per arg, in order, as a tuple")
    return results[i]


# ---------------------------------------------------------------------------------------------
# numpy functions


def _numpy(fn: Fn, args: Any, grad: Fn | None, vjp: Fn | None, jvp: Fn | None, kink: Fn | None) -> _Record:
    if (grad is None) == (vjp is None):
        raise InputError("give the gradient: grad=grad_f (grad_f(*args) -> one gradient per arg) for a scalar "
                         "function, or vjp=vjp_f (vjp_f(g, *args) -> one cotangent per arg)" if grad is None else
                         "give grad= or vjp=, not both", loc="grad",
                         hint="a torch or jax function takes its gradient from its framework: give its args as "
                              "tensors or jax arrays" if grad is None else None)
    for what, rule in (("grad", grad), ("vjp", vjp), ("jvp", jvp), ("kink", kink)):
        if rule is not None and not callable(rule):
            raise InputError(f"{what} must be a function, got {type(rule).__name__}", loc=what)
    xs = _arrays(args)
    n, name = len(xs), _name(fn)

    every = _EveryArg(grad if grad is not None else vjp)

    def vjp_rule(i: int) -> Fn | None:
        if not _differentiable(xs[i]):
            return None
        if grad is not None:
            def rule(g: Any, ans: Any, *a: Any) -> Any:
                gi = _pick(every(i, *a), i, n, "grad")
                return None if gi is None else g * np.asarray(gi)
            return _Rule(rule, grad)
        return _Rule(lambda g, ans, *a: _pick(every(i, g, *a), i, n, "vjp"), vjp)

    def jvp_rule(i: int) -> Fn | None:
        if jvp is None or not _differentiable(xs[i]):
            return None
        def rule(t: Any, ans: Any, *a: Any) -> Any:
            return jvp(tuple(t if j == i else np.zeros(np.shape(a[j])) for j in range(n)), *a)
        return _Rule(rule, jvp)

    rec = _Record(name=name, forward=fn, arg_names=_arg_names(fn, n, name), args=xs,
                  vjp=[vjp_rule(i) for i in range(n)], jvp=None if jvp is None else [jvp_rule(i) for i in range(n)],
                  kink=None if kink is None else _Rule(lambda ans, *a: kink(*a), kink, "kink"), origin=_origin(fn), notes=[],
                  scalar_only=grad is not None)
    return rec


# ---------------------------------------------------------------------------------------------
# torch and jax: the framework's own forward, backward and forward-mode AD


def _framework(fn: Any, args: Any) -> str:
    """numpy, torch or jax: torch and jax objects can exist only where they were imported already."""
    items = args if isinstance(args, tuple) else (args,)
    torch = sys.modules.get("torch")
    if torch is not None:
        owner = getattr(fn, "__self__", None)
        if (isinstance(owner, type) and issubclass(owner, torch.autograd.Function)) or \
                isinstance(fn, torch.nn.Module) or any(isinstance(a, torch.Tensor) for a in items):
            return "torch"
    jax = sys.modules.get("jax")
    if jax is not None:
        custom = (jax.custom_vjp, jax.custom_jvp)
        if isinstance(fn, custom) or isinstance(inspect.unwrap(fn), custom) or \
                any(isinstance(a, jax.Array) for a in items):
            return "jax"
    return "numpy"


def _torch_code(fn: Any, method: str) -> Any:
    """The user's code behind a torch callable, for locating errors: MyFunction.forward or .backward,
    a module's forward, or the function itself."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and hasattr(owner, method):
        return getattr(owner, method)
    if method == "forward" and hasattr(fn, "forward"):
        return fn.forward
    return fn


def _torch(fn: Fn, args: Any) -> _Record:
    import torch

    def numpy_of(a: Any) -> Any:
        return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a

    xs = _arrays(args, numpy_of)
    n, name = len(xs), _name(fn)
    owner = getattr(fn, "__self__", None)
    function = isinstance(owner, type) and issubclass(owner, torch.autograd.Function)
    # forward(ctx, *args) unless the user's class (not torch's own bases) defines setup_context
    old_style = function and not any("setup_context" in vars(c) for c in owner.__mro__
                                     if not c.__module__.startswith("torch"))
    if isinstance(fn, torch.nn.Module):  # a float64 copy: the user's module is left as it is
        import copy

        fn = copy.deepcopy(fn).to(torch.float64)
    names_of = owner.forward if function else fn.forward if isinstance(fn, torch.nn.Module) else fn
    wants = [_differentiable(x) for x in xs]

    def tensors(a: Sequence[Any], grad: bool = False) -> list[Any]:
        return [torch.from_numpy(np.array(x)).requires_grad_(grad and w) for x, w in zip(a, wants, strict=True)]

    def forward(*a: Any) -> Any:
        with torch.no_grad():
            return _out(fn(*tensors(a)))

    def _out(out: Any) -> Any:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the forward returned {type(out).__name__}, not a tensor")
        return out.detach().numpy()

    def vjp_all(g: Any, *a: Any) -> list[Any]:
        with torch.enable_grad():
            ts = tensors(a, grad=True)
            out = fn(*ts)
            wrt = [t for t, w in zip(ts, wants, strict=True) if w]
            gs = torch.autograd.grad(out, wrt, grad_outputs=torch.broadcast_to(torch.as_tensor(np.asarray(
                g, np.float64)), out.shape), allow_unused=True)
        got = iter(gs)
        return [None if not w else np.zeros(np.shape(x)) if (t := next(got)) is None else t.numpy()
                for x, w in zip(a, wants, strict=True)]

    def jvp_all(tangents: Sequence[Any], *a: Any) -> Any:
        import torch.autograd.forward_ad as fw

        with fw.dual_level(), torch.no_grad():
            ins = [fw.make_dual(t, torch.from_numpy(np.asarray(d, np.float64))) if w else t
                   for t, d, w in zip(tensors(a), tangents, wants, strict=True)]
            out = fw.unpack_dual(fn(*ins))
        return np.zeros(np.shape(out.primal)) if out.tangent is None else out.tangent.numpy()

    notes = []
    jvp_ok = True
    try:
        with np.errstate(all="ignore"):
            jvp_all([np.zeros(np.shape(x)) for x in xs], *xs)
    except Exception as e:  # a Function without a jvp staticmethod: no forward mode, said so
        jvp_ok = False
        notes.append(f"{name}: no JVP (torch's forward-mode AD raised {type(e).__name__}; a "
                     "torch.autograd.Function needs a jvp staticmethod for it)")
    backward, every = _torch_code(fn, "backward"), _EveryArg(vjp_all)
    jvp_code = _torch_code(fn, "jvp")
    rec = _Record(
        name=name, forward=_Rule(forward, _torch_code(fn, "forward")),
        arg_names=_arg_names(names_of, n, name, skip=1 if old_style else 0), args=xs,
        vjp=[_Rule(lambda g, ans, *a, i=i: every(i, g, *a)[i], backward) if wants[i] else None for i in range(n)],
        jvp=[_Rule(lambda t, ans, *a, i=i: jvp_all([t if j == i else np.zeros(np.shape(a[j])) for j in range(n)], *a),
                   jvp_code) if wants[i] else None for i in range(n)] if jvp_ok else None,
        kink=None, origin=_origin(_torch_code(fn, "forward")), notes=notes)
    return rec


def _jax(fn: Fn, args: Any) -> _Record:
    import jax

    xs = _arrays(args, np.asarray)
    x64 = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)  # float64, as everything checked here; restored afterwards
    import jax.numpy as jnp

    n, name = len(xs), _name(fn)
    wants = [_differentiable(x) for x in xs]

    def forward(*a: Any) -> Any:
        return np.asarray(fn(*[jnp.asarray(x) for x in a]))

    def vjp_all(g: Any, *a: Any) -> list[Any]:
        out, pullback = jax.vjp(fn, *[jnp.asarray(x) for x in a])
        cts = pullback(jnp.broadcast_to(jnp.asarray(g, out.dtype), out.shape))
        return [np.asarray(c) if w else None for c, w in zip(cts, wants, strict=True)]

    def jvp_all(tangents: Sequence[Any], *a: Any) -> Any:
        _, t = jax.jvp(fn, tuple(jnp.asarray(x) for x in a), tuple(jnp.asarray(d, jnp.float64) for d in tangents))
        return np.asarray(t)

    notes = []
    jvp_ok = True
    try:
        jvp_all([np.zeros(np.shape(x)) for x in xs], *xs)
    except Exception as e:  # a custom_vjp function has no forward mode
        jvp_ok = False
        notes.append(f"{name}: no JVP (jax.jvp raised {type(e).__name__}; a custom_vjp function has none)")
    user, every = _plain(getattr(fn, "fun", fn)), _EveryArg(vjp_all)
    return _Record(
        name=name, forward=_Rule(forward, user), arg_names=_arg_names(user, n, name), args=xs,
        vjp=[_Rule(lambda g, ans, *a, i=i: every(i, g, *a)[i], getattr(fn, "bwd", user)) if wants[i] else None
             for i in range(n)],
        jvp=[_Rule(lambda t, ans, *a, i=i: jvp_all([t if j == i else np.zeros(np.shape(a[j])) for j in range(n)], *a),
                   user) if wants[i] else None for i in range(n)] if jvp_ok else None,
        kink=None, origin=_origin(user), notes=notes, restore=lambda: jax.config.update("jax_enable_x64", x64))
