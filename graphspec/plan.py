"""The plan: a spec's nodes as a flat list of steps over numbered slots, built once per graph.

Slots hold the leaves first, then the constants of args, then the nodes in topological order.
A `Step` carries its op record, its bound attrs and everything the passes (passes.py) need, so
after planning nothing looks an op up by name.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import finite, passes
from .ops import OPS, Aval, Op
from .spec import Node

if TYPE_CHECKING:
    from .errors import NonFiniteError
    from .memory import MemoryPlan

Grads = tuple[tuple[int, int], ...]  # (arg position, arg slot) pairs


class Step(NamedTuple):  # a tuple: a 100,000-node plan builds 100,000 of them
    name: str
    op: Op
    attrs: dict[str, Any]
    out: int  # the result's slot
    args: tuple[int, ...]  # the args' slots
    grads: Grads  # the args that need a gradient
    tangents: Grads  # the args that may carry a tangent (they depend on a float leaf)
    forward: Callable[..., Any]  # op.forward with the attrs bound; so are vjp and jvp
    vjp: tuple[Callable[..., Any] | None, ...]  # one per arg position
    jvp: tuple[Callable[..., Any] | None, ...]
    get: Callable[[list[Any]], tuple[Any, ...]]  # slot values -> the args' values


def _bind(fn: Callable[..., Any] | None, attrs: dict[str, Any]) -> Callable[..., Any] | None:
    return partial(fn, **attrs) if fn is not None and attrs else fn


def _getter(args: tuple[int, ...]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """vals -> the args' values as a tuple; itemgetter is C, a list comprehension per step is not."""
    if len(args) == 1:
        (a,) = args
        return lambda vals: (vals[a],)
    return itemgetter(*args)


class ResultMismatch(TypeError):
    """A user op's forward returned something its shape rule did not promise."""


_KINDS = {"float32": "f", "float64": "f", "int64": "iu", "bool": "b"}


def _checked(forward: Callable[..., Any], aval: Aval | None) -> Callable[..., Any]:
    """A user op's forward whose result must be an array of the kind of numbers its shape rule
    said (float, int or bool): a wrong one is the op's error at its node, not a puzzle three nodes
    later. (Shapes and float widths are compared with the shape rule by `evaluate`: the checker
    runs a float32 plan in float64, and a call's shapes need not be the load-time ones.)"""
    want = _KINDS.get(aval.dtype) if aval is not None else None

    def run(*args: Any) -> Any:
        ans = forward(*args)
        kind = _KIND_OF.get(type(ans))
        if kind is None:
            if isinstance(ans, np.ndarray):
                kind = ans.dtype.kind
            elif isinstance(ans, np.generic):  # a numpy scalar type: its kind, remembered by type
                kind = _KIND_OF[type(ans)] = ans.dtype.kind
            else:
                raise ResultMismatch(f"the forward returned {type(ans).__name__}, not an array")
        if want is not None and kind not in want:
            raise ResultMismatch(f"the forward returned {np.result_type(ans).name} values; its shape rule said "
                                 f"{aval.dtype}")
        for a in args:
            if ans is a:  # its own arg handed back: a later step may write into that buffer
                return np.array(ans, copy=True)
        return ans
    return run


_KIND_OF: dict[type, str] = {float: "f", int: "i"}  # Python numbers and numpy scalar types; arrays say theirs


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building a plan allocates a few small objects per node and no cycles: the cyclic
    collector's passes over the growing heap would only slow it down (docs/architecture.md)."""
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
        self.avals = avals
        with gc_paused():
            self._build(leaves, nodes, order, attrs, wrt, float_leaves)
        self.keep = frozenset(self.slot[n] for n in keep if n in self.slot)
        self.wrt_slots = frozenset(self.slot[n] for n in wrt)

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
        self.first_node = len(self.names) - len(order)

        # a slot needs a gradient when it is a wrt leaf or a node downstream of one through a
        # differentiable arg; it may carry a tangent when it depends on a float leaf
        needs = [False] * len(self.names)
        for name in wrt:
            needs[self.slot[name]] = True
        carries = [False] * len(self.names)
        for name in float_leaves:
            carries[self.slot[name]] = True
        self.steps: list[Step] = []
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
            vjp = tuple(_bind(op.vjp_for(i), kw) for i in range(len(args)))
            jvp = tuple(_bind(op.jvp_for(i), kw) if vjp[i] is not None else None for i in range(len(args)))
            grads = tuple((i, s) for i, s in enumerate(args) if vjp[i] is not None and needs[s])
            tangents = tuple((i, s) for i, s in enumerate(args) if vjp[i] is not None and carries[s])
            out = self.slot[name]
            needs[out], carries[out] = bool(grads), bool(tangents)
            args_t = tuple(args)
            fwd = _bind(op.forward, kw)
            if not op.builtin:  # an op from outside graphspec: its results are checked against its shape rule
                fwd = _checked(fwd, self.avals.get(name) if self.avals else None)
            self.steps.append(Step(name, op, kw, out, args_t, grads, tangents, fwd, vjp, jvp, _getter(args_t)))
        self.backward_steps: list[tuple[Step, Grads]] = [(s, s.grads) for s in reversed(self.steps) if s.grads]

    @cached_property
    def backward_steps_all(self) -> list[tuple[Step, Grads]]:
        """`backward_steps` when every node's cotangent is wanted: every arg with a VJP that is a
        wrt leaf or a float node (a node made only of constants and leaves without grad too).
        Worked out on first use (evaluate, explain): value_and_grad never pays."""
        first, avals = self.first_node, self.avals
        rows = []
        with gc_paused():  # a few small objects per node, as the plan itself
            for step in reversed(self.steps):
                grads = tuple((i, s) for i, s in enumerate(step.args) if step.vjp[i] is not None and (
                    s in self.wrt_slots if s < first
                    # an integer node has no cotangent (a float one, or a "weak" one of constants, has)
                    else avals is None or avals[self.names[s]].dtype not in ("int64", "bool")))
                if grads:
                    rows.append((step, grads))
        return rows

    @cached_property
    def memory(self) -> MemoryPlan:
        """The buffer reuse and release schedule (memory.py), worked out on the first reusing
        call: validate, draw and evaluate never need it."""
        from .memory import schedule

        with gc_paused():
            return schedule(self)

    # the passes and the non-finite search, as methods for the callers' convenience

    def forward(self, leaf_values: Sequence[Any], reuse: bool = False) -> list[Any]:
        return passes.forward(self, leaf_values, reuse)

    def backward(self, vals: list[Any], loss: str, seed: Any, release: bool = False,
                 all_nodes: bool = False) -> list[Any]:
        return passes.backward(self, vals, loss, seed, release, all_nodes)

    def jvp(self, vals: list[Any], tangents: dict[str, Any]) -> list[Any]:
        return passes.jvp(self, vals, tangents)

    def first_nonfinite(self, vals: Sequence[Any]) -> Step | None:
        return finite.first_nonfinite(self, vals)

    def nonfinite_error(self, vals: Sequence[Any], what: str = "value") -> NonFiniteError | None:
        return finite.nonfinite_error(self, vals, what)

    def gradient_nonfinite_error(self, vals: Sequence[Any], ct: Sequence[Any], loss: str,
                                 all_nodes: bool = False) -> NonFiniteError | None:
        return finite.gradient_nonfinite_error(self, vals, ct, loss, all_nodes)
