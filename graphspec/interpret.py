"""The interpreter: a plan built once, then three short loops over it.

A plan is a flat list of steps over numbered slots (leaves first, then constants, then
nodes). `forward` fills the slots in topological order; `backward` walks the steps in
reverse, calling each op's per-argument VJPs and summing cotangents (micrograd's
`backward`, without recursion); `jvp` pushes tangents forward with the per-argument JVPs.
Nothing here recurses, so a 100,000-node chain runs like a 10-node one.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, partial
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from .errors import GraphspecError, InputError, NonFiniteError, OpError
from .ops import OPS, Aval, unbroadcast
from .spec import Node


def _bind(fn: Callable[..., Any] | None, attrs: dict[str, Any]) -> Callable[..., Any] | None:
    return partial(fn, **attrs) if fn is not None and attrs else fn


def _getter(args: tuple[int, ...]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """vals -> the args' values as a tuple; itemgetter is C, a list comprehension per step is not."""
    if len(args) == 1:
        (a,) = args
        return lambda vals: (vals[a],)
    return itemgetter(*args)


def _fit(g: Any, x: Any) -> Any:
    """A cotangent in its primal's shape and dtype: broadcasting summed back, and no promotion
    (a float32 graph keeps float32 cotangents even where an op's VJP promotes to float64)."""
    if g is None:  # np.asarray(None, float) would be a silent nan
        raise TypeError("the VJP returned None")
    shape = np.shape(x)
    g_shape = np.shape(g)
    if g_shape != shape:
        lead = len(g_shape) - len(shape)
        if lead < 0 or (g_shape[lead:] != shape
                        and any(d != 1 and d != gd for d, gd in zip(shape, g_shape[lead:], strict=True))):
            # not the arg's shape broadcast: garbage from the VJP, which unbroadcast could reshape silently
            raise ValueError(f"the VJP returned shape {list(g_shape)} for an arg of shape {list(shape)}")
        g = unbroadcast(g, shape)
    return np.asarray(g, dtype=np.result_type(x))


def _fit_tangent(t: Any, ans: Any) -> Any:
    """A tangent broadcast to its output's shape; a shape that does not broadcast is the JVP's error."""
    try:
        return np.broadcast_to(t, np.shape(ans))
    except ValueError:
        raise ValueError(f"the JVP returned shape {list(np.shape(t))} for a value of shape "
                         f"{list(np.shape(ans))}") from None


def _into(forward_out: Callable[..., Any], forward: Callable[..., Any], p: int) -> Callable[..., Any]:
    """A forward step that writes into its argument ``p``'s buffer when it owns one; it falls
    back to a fresh result when the run-time shapes broadcast past the buffer (numpy checks
    the shapes before it writes anything)."""
    def step(*args: Any) -> Any:
        buf = args[p]
        if type(buf) is np.ndarray and buf.base is None and buf.flags.writeable:
            try:
                return forward_out(buf, *args)
            except ValueError:
                pass
        return forward(*args)
    return step


def surely_finite(*values: Any) -> bool:
    """True when no value holds inf or nan (ints, bools and None always pass). One pass each and
    no temporary array: a sum of squares (a BLAS dot, the fastest reduction numpy has: 17 us for
    200,000 floats against 24-48 us for isfinite().all()) is finite when every term is, unless
    finite terms overflow (|x| > 1e19 in float32); so False means "maybe", and callers confirm
    with the exact `first_nonfinite`. Scalars need no numpy at all, and the arrays share one
    errstate (1 us each)."""
    flats = []
    for v in values:
        if v is None:
            continue
        if not isinstance(v, np.ndarray | np.generic):
            v = np.asarray(v)
        if v.dtype.kind != "f":
            continue
        if v.ndim == 0:
            if not math.isfinite(v):
                return False
        elif v.flags.c_contiguous:
            flats.append(v if v.ndim == 1 else v.reshape(-1))
        elif not np.isfinite(v).all():
            return False
    if not flats:
        return True
    with np.errstate(over="ignore"):  # an overflow here only means "maybe": no warning for the user
        return all(math.isfinite(np.dot(f, f)) for f in flats)


class Step(NamedTuple):  # a tuple: a 100,000-node plan builds 100,000 of them
    name: str
    op: str
    out: int
    args: tuple[int, ...]
    forward: Callable[..., Any]
    vjps: tuple[tuple[int, Callable[..., Any]], ...]  # (arg slot, vjp), args needing a gradient
    jvps: tuple[tuple[int, Callable[..., Any]], ...]  # (arg slot, jvp), differentiable args
    attrs: dict[str, Any]


class MemoryPlan(NamedTuple):
    fsteps: list[Any]  # the forward steps, some writing into a dead argument's buffer
    release: list[tuple[int, ...]]  # per backward step: the slots no later step reads
    release_first: tuple[int, ...]  # node slots the backward pass never reads


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building a plan allocates a few small objects per node and no cycles; the cyclic
    collector's passes over the growing heap would make a 100,000-node plan several times
    slower (2.5 s against 0.6 s), so it waits until the plan is built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Plan:
    """Slots and steps for one graph. Built once per graph; reused by every call."""

    def __init__(self, leaves: Sequence[str], nodes: dict[str, Node], order: Sequence[str],
                 attrs: dict[str, dict[str, Any]], wrt: Sequence[str], float_leaves: set[str],
                 avals: dict[str, Aval] | None = None, keep: Sequence[str] = ()):
        """``avals`` (static shapes and dtypes) let `forward(reuse=True)` write a result into a
        dead argument's buffer; ``keep`` names the values a caller reads after the passes
        (outputs, the loss), which are never overwritten or released."""
        with gc_paused():
            self._build(leaves, nodes, order, attrs, wrt, float_leaves)
        self._avals = avals
        self._wrt_slots = frozenset(self.slot[n] for n in wrt)
        # worked out on the first reusing call: validate, draw and evaluate never need it
        self._memory_args = (avals, {self.slot[n] for n in keep if n in self.slot})

    def _build(self, leaves: Sequence[str], nodes: dict[str, Node], order: Sequence[str],
               attrs: dict[str, dict[str, Any]], wrt: Sequence[str], float_leaves: set[str]) -> None:
        self.slot: dict[str, int] = {n: i for i, n in enumerate(leaves)}
        self.names: list[str] = list(leaves)
        self.n_leaves = len(leaves)
        consts: list[Any] = []
        for name in order:  # constants get slots of their own, filled once
            for a in nodes[name].args:
                if not isinstance(a, str):
                    self.names.append(repr(a))
                    consts.append(a)
        self.template: list[Any] = [None] * self.n_leaves + consts
        for name in order:
            self.slot[name] = len(self.names)
            self.names.append(name)
        self.template += [None] * len(order)

        # which slots carry a gradient: the wrt leaves and every node downstream of one
        # through a differentiable arg
        needs = [False] * len(self.names)
        for name in wrt:
            needs[self.slot[name]] = True
        differentiable = [False] * len(self.names)  # depends on any float leaf (for jvp)
        for name in float_leaves:
            differentiable[self.slot[name]] = True
        self.steps: list[Step] = []
        # the loops' own flat records: ops resolved, attrs bound, arg fetches prebuilt
        self._fsteps: list[tuple[Callable[..., Any], Callable[[list[Any]], tuple[Any, ...]], int]] = []
        self._bsteps: list[tuple[int, Callable[[list[Any]], tuple[Any, ...]], tuple[tuple[int, int, Any], ...]]] = []
        c = self.n_leaves
        for name in order:
            node = nodes[name]
            op = OPS[node.op]
            args = []
            for a in node.args:
                if isinstance(a, str):
                    args.append(self.slot[a])
                else:
                    args.append(c)
                    c += 1
            kw = attrs[name]
            vjps, jvps, bvjps = [], [], []  # bvjps: (arg position, arg slot, vjp) for `backward`
            for i, s in enumerate(args):
                vjp = op.vjp_for(i)
                if vjp is None:
                    continue
                if needs[s]:
                    vjp = _bind(vjp, kw)
                    vjps.append((s, vjp))
                    bvjps.append((i, s, vjp))
                if differentiable[s]:
                    jvps.append((s, _bind(op.jvp_for(i), kw)))
            out = self.slot[name]
            needs[out] = bool(vjps)
            differentiable[out] = bool(jvps)
            step = Step(name, node.op, out, tuple(args), _bind(op.forward, kw), tuple(vjps), tuple(jvps), kw)
            self.steps.append(step)
            get = _getter(step.args)
            self._fsteps.append((step.forward, get, out))
            if bvjps:
                self._bsteps.append((out, get, tuple(bvjps)))
        self._bsteps.reverse()
        self.first_node = len(self.names) - len(order)

    @cached_property
    def memory(self) -> MemoryPlan:
        """The buffer reuse and release schedule (built once, with the cyclic GC paused: 0.2 s
        for 100,000 nodes, 1.1 s with it running)."""
        with gc_paused():
            return self._plan_memory(*self._memory_args)

    def _plan_memory(self, avals: dict[str, Aval] | None, keep: set[int]) -> MemoryPlan:
        """Buffer reuse and early release, both from what each op's VJPs read (`Op.reads`).

        A step may write its result into an argument's buffer when that argument is a node
        value read by this step alone, of the result's static shape and dtype, and no VJP
        reads it (neither its producer's VJP as "ans" nor this step's VJP as an arg): an MLP's
        bias add and activation then write into the matmul's output, as PyTorch's fused
        addmm and in-place activations do. In the backward pass, a value is released after
        the last step that reads it (its shape included), and a node's cotangent after its
        own step, so peak memory falls as the pass goes."""
        steps, first, n = self.steps, self.first_node, len(self.names)  # steps[s - first] makes slot s
        uses = [0] * n
        for step in steps:
            for a in step.args:
                uses[a] += 1
        backward = [False] * n  # steps whose VJPs run
        for out, _, _ in self._bsteps:
            backward[out] = True
        reuse_fsteps = list(self._fsteps)
        for k, step in enumerate(steps if avals is not None else ()):
            op = OPS[step.op]
            if op.forward_out is None or avals.get(step.name) is None or avals[step.name].shape is None:
                continue
            for p, s in enumerate(step.args):
                if s < first or uses[s] != 1 or s in keep or avals.get(self.names[s]) != avals[step.name]:
                    continue
                if backward[s] and OPS[steps[s - first].op].reads_value("ans"):
                    continue
                if backward[step.out] and (p >= len(op.arg_names) or op.reads_value(op.arg_names[p])):
                    continue
                reuse_fsteps[k] = (_into(_bind(op.forward_out, step.attrs), step.forward, p), *self._fsteps[k][1:])
                break
        last = [-1] * n  # the last backward step that reads each slot
        for i, (out, _, _) in enumerate(self._bsteps):
            last[out] = i
            for s in steps[out - first].args:
                last[s] = i
        done: list[list[int]] = [[] for _ in self._bsteps]
        for s in range(first, n):
            if last[s] >= 0 and s not in keep:
                done[last[s]].append(s)
        return MemoryPlan(reuse_fsteps, [tuple(d) for d in done],
                          tuple(s for s in range(first, n) if last[s] < 0 and s not in keep))

    # -- forward -----------------------------------------------------------------------------

    def forward(self, leaf_values: Sequence[Any], reuse: bool = False) -> list[Any]:
        """Every slot's value. With ``reuse``, results go into dead buffers where the plan
        found them safe: only the kept values and what the VJPs read are then exact."""
        vals = self.template.copy()
        vals[: self.n_leaves] = leaf_values
        i = 0
        try:
            with np.errstate(all="ignore"):  # non-finite values are reported by node, below
                for i, (fwd, get, out) in enumerate(self.memory.fsteps if reuse else self._fsteps):  # noqa: B007
                    vals[out] = fwd(*get(vals))
        except Exception as e:  # one try around the loop: the failing step is steps[i]
            raise self._forward_error(vals, self.steps[i], e) from e
        return vals

    def _forward_error(self, vals: list[Any], step: Step, e: Exception) -> GraphspecError:
        """numpy's ValueError (a label out of range, shapes that do not broadcast at run time)
        is about the values given: an InputError at the node. Any other exception is a bug in
        the op, and so is an earlier op's result that is not an array (blamed on that op)."""
        garbage = self._garbage(vals, step.args)
        if garbage is not None:
            return garbage
        if isinstance(e, ValueError | MemoryError):
            return InputError(f"{step.op} failed: {e}", loc=f"nodes.{step.name}")
        return OpError(step.op, step.name, "forward", f"{type(e).__name__}: {e}")

    def _garbage(self, vals: Sequence[Any], slots: Sequence[int]) -> OpError | None:
        """An op whose forward returned something that is not an array, among the producers of
        ``slots`` (looked at on an error path only: an op reading it may fail, or pass it on)."""
        for s in slots:
            v = vals[s]
            if s >= self.first_node and not isinstance(v, np.ndarray | np.generic | float | int):
                bad = self.steps[s - self.first_node]
                return OpError(bad.op, bad.name, "forward", f"returned {type(v).__name__}, not an array")
        return None

    def _op_error(self, step: Step, phase: str, e: Exception, vals: Sequence[Any]) -> GraphspecError:
        """An exception from a VJP or a JVP: the forward pass ran, so the values fit; the op is at
        fault, or an op before it whose forward returned garbage that nothing read until now."""
        garbage = self._garbage(vals, (step.out, *step.args))
        if garbage is not None:
            return garbage
        if isinstance(e, MemoryError):
            return InputError(f"{step.op} ({phase}) ran out of memory: {e}", loc=f"nodes.{step.name}")
        return OpError(step.op, step.name, phase, f"{type(e).__name__}: {e}")

    # -- reverse mode ------------------------------------------------------------------------

    def backward(self, vals: list[Any], loss: str, seed: Any, release: bool = False,
                 all_nodes: bool = False) -> list[Any]:
        """Cotangents of every slot that needs one (None where the loss does not depend on it).
        By default only the wrt leaves and the nodes between them and the loss get one; with
        ``all_nodes``, every float node on the loss's path does too, even with no wrt leaf
        below it (`all_vjps`; evaluate and explain). With ``release``, node values and node
        cotangents are dropped once no later step needs them: only the leaves' cotangents,
        and the kept values, are left."""
        if release and all_nodes:
            raise ValueError("release drops the node cotangents that all_nodes asks for")
        ct: list[Any] = [None] * len(vals)
        ct[self.slot[loss]] = seed
        bsteps = self._bsteps_all if all_nodes else self._bsteps
        if release:
            released = self.memory.release
            for s in self.memory.release_first:
                vals[s] = None
        k = i = 0
        try:  # one try around the loop, none per step: the failing VJP is bsteps[k]'s arg i
            with np.errstate(all="ignore"):
                for k, (out, get, vjps) in enumerate(bsteps):
                    g = ct[out]
                    if g is not None:  # else the loss does not depend on this step
                        ans = vals[out]
                        argv = get(vals)
                        for i, s, vjp in vjps:
                            gi = vjp(g, ans, *argv)
                            x = argv[i]
                            try:  # the common case, checked without a call
                                fits = gi.shape == x.shape and gi.dtype == x.dtype
                            except AttributeError:
                                fits = False
                            if not fits:
                                gi = _fit(gi, x)
                            prev = ct[s]
                            ct[s] = gi if prev is None else prev + gi  # never in place: VJPs may alias g
                    if release:
                        ct[out] = None
                        for s in released[k]:
                            vals[s] = None
        except Exception as e:
            step = self.steps[bsteps[k][0] - self.first_node]
            raise self._op_error(step, f"VJP for '{self.names[step.args[i]]}'", e, vals) from e
        return ct

    @cached_property
    def all_vjps(self) -> list[tuple[tuple[int, int, Callable[..., Any]], ...]]:
        """Per step, (arg position, arg slot, vjp) of every arg that has a cotangent when all
        nodes' are wanted: the wrt leaves and every float node (a node made only of constants
        and leaves without grad too). Worked out on first use: value_and_grad never pays."""
        first, avals = self.first_node, self._avals
        rows = []
        with gc_paused():  # a few small objects per node, as the plan itself
            for step in self.steps:
                op = OPS[step.op]
                row = []
                for i, s in enumerate(step.args):
                    if s < first:
                        if s not in self._wrt_slots:  # constants, and leaves without a gradient
                            continue
                    elif avals is not None and avals[self.names[s]].dtype in ("int64", "bool"):
                        continue  # an integer node has no cotangent (a float or a "weak" one of constants has)
                    vjp = op.vjp_for(i)
                    if vjp is not None:
                        row.append((i, s, _bind(vjp, step.attrs)))
                rows.append(tuple(row))
        return rows

    @cached_property
    def _bsteps_all(self) -> list[tuple[int, Callable[[list[Any]], tuple[Any, ...]], tuple[tuple[int, int, Any], ...]]]:
        all_vjps = self.all_vjps
        with gc_paused():
            rows = [(step.out, f[1], vjps) for step, f, vjps in zip(self.steps, self._fsteps, all_vjps, strict=True)
                    if vjps]
        rows.reverse()
        return rows

    # -- forward mode ------------------------------------------------------------------------

    def jvp(self, vals: list[Any], tangents: dict[str, Any]) -> list[Any]:
        """Tangents of every slot given tangents of some leaves (None: zero)."""
        tan: list[Any] = [None] * len(vals)
        for name, t in tangents.items():
            tan[self.slot[name]] = t
        step, s = None, 0
        try:  # one try around the loop: the failing JVP is step's for arg slot s
            with np.errstate(all="ignore"):
                for step in self.steps:
                    total = None
                    argv = [vals[a] for a in step.args]
                    ans = vals[step.out]
                    for s, jvp in step.jvps:
                        t = tan[s]
                        if t is None:
                            continue
                        d = jvp(t, ans, *argv)
                        total = d if total is None else total + d
                    if total is not None:
                        if np.shape(total) != np.shape(ans):
                            total = _fit_tangent(total, ans)
                        tan[step.out] = total
        except Exception as e:
            assert step is not None
            raise self._op_error(step, f"JVP for '{self.names[s]}'", e, vals) from e
        return tan

    # -- non-finite values -------------------------------------------------------------------

    @staticmethod
    def _kinds(v: Any) -> str:
        v = np.asarray(v)
        return "/".join(k for k, test in (("inf", np.isinf), ("nan", np.isnan)) if test(v).any())

    @staticmethod
    def _finite(v: Any) -> bool:
        return v is None or not np.issubdtype(np.result_type(v), np.inexact) or bool(np.all(np.isfinite(v)))

    def first_nonfinite(self, vals: Sequence[Any]) -> Step | None:
        """The first step (in execution order) whose value holds inf or nan."""
        return next((step for step in self.steps if not self._finite(vals[step.out])), None)

    def nonfinite_error(self, vals: Sequence[Any], what: str = "value") -> NonFiniteError | None:
        """Where the first inf or nan of a forward pass came from: a leaf given that way (named
        as itself, not blamed on the node that reads it), else the first node that made one."""
        for i in range(self.n_leaves):
            if not self._finite(vals[i]):
                return NonFiniteError(f"non-finite {what} ({self._kinds(vals[i])}) given for this input or param",
                                      loc=self.names[i])
        step = self.first_nonfinite(vals)
        if step is None:
            return None
        return NonFiniteError(f"first non-finite {what} ({self._kinds(vals[step.out])}) produced by {step.op}",
                              loc=f"nodes.{step.name}")

    def gradient_nonfinite_error(self, vals: Sequence[Any], ct: Sequence[Any], loss: str,
                                 all_nodes: bool = False) -> NonFiniteError | None:
        """Where the first inf or nan of a reverse pass was born: the op whose VJP turned a finite
        cotangent into a non-finite one (say sqrt's slope at 0). Walks the steps in the backward
        pass's own order and recomputes each VJP: only on this error path, never per call.
        ``all_nodes`` as for `backward`, the pass that made ``ct``."""
        if not self._finite(ct[self.slot[loss]]):
            return NonFiniteError(f"the seed is not finite ({self._kinds(ct[self.slot[loss]])})", loc="loss.seed")
        rows = ([tuple((s, v) for _, s, v in r) for r in self.all_vjps] if all_nodes
                else [step.vjps for step in self.steps])
        with np.errstate(all="ignore"):
            for step, vjps in zip(reversed(self.steps), reversed(rows), strict=True):
                g = ct[step.out]
                if g is None or not vjps or not self._finite(g):
                    continue
                argv = [vals[a] for a in step.args]
                for s, vjp in vjps:
                    gi = vjp(g, vals[step.out], *argv)
                    if not self._finite(gi):
                        return NonFiniteError(f"first non-finite gradient ({self._kinds(gi)}) produced by the VJP of "
                                              f"{step.op} for '{self.names[s]}'", loc=f"nodes.{step.name}")
        return self.nonfinite_error(ct, "gradient")
