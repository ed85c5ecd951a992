"""The compiled program: a spec checked end to end and planned, immutable once loaded.

`compile_program` runs every load-time check (the structure, attrs, the declared leaf values,
symbolic dims, static shapes, the loss and its seed, the expectations), each error added to
one list and all raised together in the file's order, then builds the `Plan`. The leaf
values it reads (the defaults, the params' initial values) are handed back beside the
`Program`: they are the `Graph`'s, which may change them (training does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import graph as graph_mod
from . import shapes, values
from .errors import ErrorList, SpecError
from .ops import Aval
from .plan import Plan, gc_paused
from .spec import InputDecl, Loaded, Spec, place_order


@dataclass(frozen=True, eq=False)
class Program:
    """What a spec compiles to; nothing in it changes after `compile_program`."""

    spec: Spec
    base: Path  # relative files resolve against it
    source: str | None  # the spec's path, named in errors
    structure: graph_mod.Structure  # .digraph() gives the networkx graph
    order: list[str]  # the nodes to compute, topologically sorted
    outputs: list[str]
    loss: str | None
    decls: dict[str, InputDecl]  # every leaf's declaration: inputs, then params
    kind: dict[str, str]  # leaf -> "inputs" | "params"
    leaves: list[str]
    attrs: dict[str, dict[str, Any]]  # node -> its attrs, checked and defaulted
    leaf_avals: dict[str, Aval]  # the leaves' shapes and dtypes at load
    avals: dict[str, Aval]  # every leaf's and node's static shape and dtype
    wrt: list[str]  # the float leaves with a gradient
    seed: np.ndarray | None  # dL/dloss: ones, or the spec's loss.seed
    plan: Plan
    calls: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)  # a written-out call -> (function, args)

    @cached_property
    def unused_wrt(self) -> list[str]:
        """The params and float inputs with a gradient that the loss (without a loss: every output)
        does not depend on: their gradient is 0 whatever the values (a forgotten edge, a classic bug)."""
        args: dict[str, list[str]] = {}
        for a, n in self.structure.edges:
            args.setdefault(n, []).append(a)
        seen: set[str] = set()
        todo = [self.loss] if self.loss else list(self.outputs)
        while todo:  # a loop, not recursion: a 100,000-node chain must not overflow the stack
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(args.get(n, ()))
        return [n for n in self.wrt if n not in seen]

    @cached_property
    def finite_slots(self) -> tuple[list[int], list[int]]:
        """The slots a call checks for inf and nan: the float outputs and the loss (forward),
        the wrt leaves (backward). Static dtypes, so worked out once, not per call."""
        slot = self.plan.slot
        targets = dict.fromkeys([*self.outputs, *([self.loss] if self.loss else [])])
        return ([slot[t] for t in targets if t in slot and self.avals[t].dtype.startswith("float")],
                [slot[n] for n in self.wrt])

    @cached_property
    def straight(self) -> Callable[[list[Any]], tuple[Any, tuple[Any, ...], tuple[Any, ...]]] | None:
        """value_and_grad as straight-line code (straight.py), compiled on first use; None for a
        graph without a loss or past straight.MAX_STEPS steps (the loops serve those)."""
        from . import straight

        if self.loss is None or len(self.plan.steps) > straight.MAX_STEPS:
            return None
        slot = self.plan.slot
        return straight.value_and_grad(self.plan, slot[self.loss], self.seed, [slot[n] for n in self.wrt],
                                       self.finite_slots[0])

    @cached_property
    def result_shapes(self) -> list[tuple[int, str, tuple[int, ...]]]:
        """(slot, node, shape) of every node whose static shape is concrete: built once."""
        slot = self.plan.slot
        with gc_paused():  # the collector's passes over a big graph's heap dominate this loop
            return [(slot[n], n, tuple(a.shape)) for n in self.order
                    if (a := self.avals[n]).shape is not None and not any(isinstance(d, str) for d in a.shape)]


def compile_program(spec: Spec, base: Path, source: str | None, errors: ErrorList,
                    loaded: Loaded | None = None) -> tuple[Program, dict[str, np.ndarray | None]]:
    """The program of ``spec`` and its leaves' declared values (None: given at run time). Every
    check adds its errors to ``errors``, all raised at the end in the file's order: what depends
    on something wrong is not checked, what is independent of it is. With ``loaded``, ``spec``
    is what validated of it once its wrong places (its errors so far) were dropped."""
    broken = loaded.broken if loaded else None
    calls: dict[str, tuple[str, list[Any]]] = {}
    if spec.functions:  # written out before anything else reads the spec (inline.py)
        from .inline import Relocating, expand

        expanded = expand(spec, errors)
        spec, errors = expanded.spec, Relocating(errors, expanded.origins)
        broken = {**(broken or {}), **expanded.broken}
        calls = expanded.calls
    structure = graph_mod.build(spec, errors, broken)
    order = structure.order  # without the nodes found wrong, when there are errors
    failed = set(structure.failed)
    decls: dict[str, InputDecl] = {**spec.inputs, **spec.params}
    kind = {n: "inputs" for n in spec.inputs} | {n: "params" for n in spec.params}
    attrs = {name: shapes.bind_attrs(name, spec.nodes[name], errors) for name in order}
    if errors:  # a node whose attrs are wrong has None: it is not shape-checked
        attrs = {name: a for name, a in attrs.items() if a is not None}

    defaults: dict[str, np.ndarray | None] = {}
    for section in ("inputs", "params"):  # inputs' value/file, params' value/file/init (seeded)
        for name, decl in getattr(spec, section).items():
            try:
                defaults[name] = _declared(spec, base, name, decl, section)
            except SpecError as e:
                errors.add(e)
                failed.add(name)
                defaults[name] = None

    dims: dict[str, int] = {}
    where: dict[str, str] = {}
    for name, arr in defaults.items():
        if arr is not None:
            try:
                values.bind_shape(decls[name].shape, arr.shape, dims, where, f"{kind[name]}.{name}")
            except SpecError as e:
                errors.add(e)
                failed.add(name)
    leaves = list(decls)
    leaf_avals = {n: _aval(decls[n], defaults[n], dims) for n in leaves if n not in failed}
    avals = shapes.infer(spec.nodes, order, leaf_avals, attrs, errors)

    float_leaves = {n for n in leaves if decls[n].dtype.startswith("float")}
    wrt = [n for n in leaves if n in float_leaves and decls[n].grad is not False]
    seed = None
    if structure.loss in avals:
        try:
            seed = _check_loss(spec, structure.loss, avals)
        except SpecError as e:
            errors.add(e)
    _check_expect(spec, decls, wrt, avals, errors, loaded)
    errors.raise_any(key=place_order(loaded.doc if loaded else {k: getattr(spec, k) for k in type(spec).model_fields}))
    keep = [*structure.outputs, *([structure.loss] if structure.loss else [])]
    plan = Plan(leaves, spec.nodes, order, attrs, wrt, float_leaves, avals, keep)
    program = Program(spec=spec, base=base, source=source, structure=structure, order=order,
                      outputs=structure.outputs, loss=structure.loss, decls=decls, kind=kind, leaves=leaves,
                      attrs=attrs, leaf_avals=leaf_avals, avals=avals, wrt=wrt, seed=seed, plan=plan,
                      calls=calls)
    return program, defaults


def _declared(spec: Spec, base: Path, name: str, decl: InputDecl, kind: str) -> np.ndarray | None:
    loc = f"{kind}.{name}"
    if decl.shape and decl.value is not None and decl.file is None and not isinstance(decl.value, list):
        # a scalar where an array is declared: value is the array itself (init is what broadcasts)
        raise SpecError(f"a scalar \"value\" does not broadcast to shape {decl.shape}: give the whole array"
                        + (" or, to fill it, \"init\" (init broadcasts)" if kind == "params" else
                           " (only a param's \"init\" broadcasts)"), loc=loc)
    arr = values.declared_value(name, decl, kind, base, spec.seed)
    if arr is None and kind == "params":
        raise SpecError("a param needs a value, a file, or a shape with an init", loc=loc)
    return arr


def _aval(decl: InputDecl, arr: np.ndarray | None, dims: dict[str, int]) -> Aval:
    if arr is not None:
        return Aval(arr.shape, decl.dtype)
    if decl.shape is None:
        return Aval(None, decl.dtype)
    return Aval(tuple(dims.get(d, d) if isinstance(d, str) else d for d in decl.shape), decl.dtype)


def _check_loss(spec: Spec, loss: str | None, avals: dict[str, Aval]) -> np.ndarray | None:
    if loss is None:
        return None
    shape, dtype = avals[loss]
    if not dtype.startswith("float"):
        raise SpecError(f"the loss must be a float node, '{loss}' is {dtype}", loc="loss")
    seed = spec.loss.seed if not isinstance(spec.loss, str) and spec.loss.seed_given else None  # type: ignore[union-attr]
    if seed is None:
        if shape is not None and shape != ():
            raise SpecError(f"loss '{loss}' has shape {list(shape)}, not a scalar: "
                            "give {\"node\": ..., \"seed\": ...} with the upstream gradient", loc="loss")
        return np.ones((), dtype=dtype)
    arr = values.as_array(seed, dtype, "loss.seed")
    if shape is not None and all(isinstance(d, int) for d in shape) and arr.shape != tuple(shape):
        raise SpecError(f"seed of shape {list(arr.shape)} does not match loss '{loss}' of shape {list(shape)}",
                        loc="loss.seed")
    return arr


def _check_expect(spec: Spec, decls: dict[str, InputDecl], wrt: list[str], avals: dict[str, Aval],
                  errors: ErrorList, loaded: Loaded | None) -> None:
    """Each expectation's shape (and that a gradient can be expected); one error per entry.
    Names that are unknown or failed were reported already."""
    ex = spec.expect
    if ex is None:
        return
    for name, v in ex.values.items():
        loc = f"expect.values.{name}"
        try:
            got = values.as_array(v, "float64", loc).shape
            if name in avals:
                _check_expected_shape(got, avals[name].shape, loc)
        except SpecError as e:
            errors.add(e)
    for name, v in ex.grads.items():
        loc = f"expect.grads.{name}"
        try:
            got = values.as_array(v, "float64", loc).shape  # ragged lists and nulls are errors here, not when compared
            if spec.loss is None and not (loaded and "loss" in loaded.dropped):
                raise SpecError("expected gradients need a loss", loc=loc)
            if name in decls and name not in wrt:
                raise SpecError(f"'{name}' has no gradient ({decls[name].dtype}"
                                f"{', grad: false' if decls[name].grad is False else ''})", loc=loc)
            if name in avals:  # a node pruned away does not feed the loss: its gradient is 0
                _check_expected_shape(got, avals[name].shape, loc)
        except SpecError as e:
            errors.add(e)


def _check_expected_shape(got: tuple[int, ...], shape: Any, loc: str) -> None:
    if shape is None or any(isinstance(d, str) for d in shape) or got == ():
        return  # a scalar expectation broadcasts (every element equals it)
    if got != tuple(shape):
        raise SpecError(f"expected value of shape {list(got)} for a value of shape {list(shape)}", loc=loc)
