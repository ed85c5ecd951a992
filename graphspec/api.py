"""The Python API: `load` a spec into a `Graph`, then `run`, `grad`, `value_and_grad`, `jvp`.

All the pydantic and networkx work happens in `load`; a call does only array work: bind the
inputs, (re)check shapes when the input shapes change, and run the plan.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import graph as graph_mod
from . import shapes, values
from .errors import ErrorList, GraphspecError, InputError, NonFiniteError, OpError, SpecError, did_you_mean
from .finite import surely_finite
from .ops import Aval
from .plan import Plan, gc_paused
from .spec import InputDecl, Loaded, Spec, place_order, read_spec

_CHECK_FINITE = ("warn", "raise", "off")


class NonFiniteWarning(RuntimeWarning):
    """A node produced inf or nan; the message names the first one (``error``: the
    `NonFiniteError` that ``check_finite="raise"`` would have raised)."""

    def __init__(self, message: str, error: NonFiniteError | None = None):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Result:
    """Everything one evaluation computed."""

    values: dict[str, np.ndarray]  # every leaf and every computed node
    # d loss / d name: every wrt leaf (zeros when the loss does not use it, as jax.grad gives) and
    # every float node on the loss's path; a node the loss does not depend on has no entry
    grads: dict[str, np.ndarray]
    loss: np.ndarray | None


class Graph:
    """A loaded, validated, shape-checked spec, ready to run."""

    def __init__(self, spec: Spec, base: Path, source: str | None = None):
        self._set_up(spec, base, source, ErrorList())

    def _set_up(self, spec: Spec, base: Path, source: str | None, errors: ErrorList, loaded: Loaded | None = None) -> None:
        """Every check of the spec, each error added to ``errors``, all raised at the end in the
        file's order: what depends on something wrong is not checked, what is independent of it
        is. With ``loaded``, ``spec`` is what validated of it once its wrong places (its errors
        so far) were dropped."""
        broken = loaded.broken if loaded else None
        if spec.functions:  # written out before anything else reads the spec (inline.py)
            from .inline import Relocating, expand

            expanded = expand(spec, errors)
            spec, errors = expanded.spec, Relocating(errors, expanded.origins)
            broken = {**(broken or {}), **expanded.broken}
        self.spec = spec
        self.base = base
        self.source = source
        structure = graph_mod.build(spec, errors, broken)
        self.order = structure.order  # without the nodes found wrong, when there are errors
        self.outputs = structure.outputs
        self.loss = structure.loss
        self.structure = structure  # .digraph() gives the networkx graph
        failed = set(structure.failed)
        self.decls: dict[str, InputDecl] = {**spec.inputs, **spec.params}
        bind, nodes = shapes.bind_attrs, spec.nodes
        self.attrs = {name: bind(name, nodes[name], errors) for name in self.order}
        if errors:  # a node whose attrs are wrong has None: it is not shape-checked
            self.attrs = {name: a for name, a in self.attrs.items() if a is not None}

        # leaf values: inputs' value/file, params' value/file/init (seeded)
        self.defaults: dict[str, np.ndarray | None] = {}
        for kind in ("inputs", "params"):
            for name, decl in getattr(spec, kind).items():
                try:
                    self.defaults[name] = self._declared(name, decl, kind)
                except SpecError as e:
                    errors.add(e)
                    failed.add(name)
                    self.defaults[name] = None
        self.kind = {n: "inputs" for n in spec.inputs} | {n: "params" for n in spec.params}
        self.params: dict[str, np.ndarray] = {n: self.defaults[n] for n in spec.params}  # type: ignore[misc]

        dims: dict[str, int] = {}
        where: dict[str, str] = {}
        for name, arr in self.defaults.items():
            if arr is not None:
                try:
                    values.bind_shape(self.decls[name].shape, arr.shape, dims, where, f"{self.kind[name]}.{name}")
                except SpecError as e:
                    errors.add(e)
                    failed.add(name)
        self.leaves = list(self.decls)
        self.leaf_avals = {n: self._aval(n, self.defaults[n], dims) for n in self.leaves if n not in failed}
        self.avals = shapes.infer(spec.nodes, self.order, self.leaf_avals, self.attrs, errors)
        self._checked_shapes: set[tuple[Any, ...]] = set()

        float_leaves = {n for n in self.leaves if self.decls[n].dtype.startswith("float")}
        self.wrt = [n for n in self.leaves if n in float_leaves and self.decls[n].grad is not False]
        self.seed = None
        if self.loss in self.avals:
            try:
                self.seed = self._check_loss()
            except SpecError as e:
                errors.add(e)
        self._check_expect(errors, loaded)
        errors.raise_any(key=place_order(loaded.doc if loaded else {k: getattr(spec, k) for k in type(spec).model_fields}))
        keep = [*self.outputs, *([self.loss] if self.loss else [])]
        self.plan = Plan(self.leaves, spec.nodes, self.order, self.attrs, self.wrt, float_leaves, self.avals, keep)

    # -- set-up checks -----------------------------------------------------------------------

    def _declared(self, name: str, decl: InputDecl, kind: str) -> np.ndarray | None:
        loc = f"{kind}.{name}"
        if decl.shape and decl.value is not None and decl.file is None and not isinstance(decl.value, list):
            # a scalar where an array is declared: value is the array itself (init is what broadcasts)
            raise SpecError(f"a scalar \"value\" does not broadcast to shape {decl.shape}: give the whole array"
                            + (" or, to fill it, \"init\" (init broadcasts)" if kind == "params" else
                               " (only a param's \"init\" broadcasts)"), loc=loc)
        arr = values.declared_value(name, decl, kind, self.base, self.spec.seed)
        if arr is None and kind == "params":
            raise SpecError("a param needs a value, a file, or a shape with an init", loc=loc)
        return arr

    def _aval(self, name: str, arr: np.ndarray | None, dims: dict[str, int]) -> Aval:
        decl = self.decls[name]
        if arr is not None:
            return Aval(arr.shape, decl.dtype)
        if decl.shape is None:
            return Aval(None, decl.dtype)
        return Aval(tuple(dims.get(d, d) if isinstance(d, str) else d for d in decl.shape), decl.dtype)

    def _check_loss(self) -> np.ndarray | None:
        if self.loss is None:
            return None
        shape, dtype = self.avals[self.loss]
        if not dtype.startswith("float"):
            raise SpecError(f"the loss must be a float node, '{self.loss}' is {dtype}", loc="loss")
        seed = self.spec.loss.seed if not isinstance(self.spec.loss, str) else None  # type: ignore[union-attr]
        if seed is None:
            if shape is not None and shape != ():
                raise SpecError(f"loss '{self.loss}' has shape {list(shape)}, not a scalar: "
                                "give {\"node\": ..., \"seed\": ...} with the upstream gradient", loc="loss")
            return np.ones((), dtype=dtype)
        arr = values.as_array(seed, dtype, "loss.seed")
        if shape is not None and all(isinstance(d, int) for d in shape) and arr.shape != tuple(shape):
            raise SpecError(f"seed of shape {list(arr.shape)} does not match loss '{self.loss}' of shape {list(shape)}",
                            loc="loss.seed")
        return arr

    def _check_expect(self, errors: ErrorList, loaded: Loaded | None) -> None:
        """Each expectation's shape (and that a gradient can be expected); one error per entry.
        Names that are unknown or failed were reported already."""
        ex = self.spec.expect
        if ex is None:
            return
        for name, v in ex.values.items():
            loc = f"expect.values.{name}"
            try:
                got = values.as_array(v, "float64", loc).shape
                if name in self.avals:
                    self._check_expected_shape(got, self.avals[name].shape, loc)
            except SpecError as e:
                errors.add(e)
        for name, v in ex.grads.items():
            loc = f"expect.grads.{name}"
            try:
                got = values.as_array(v, "float64", loc).shape  # ragged lists and nulls are errors here, not when compared
                if self.spec.loss is None and not (loaded and "loss" in loaded.dropped):
                    raise SpecError("expected gradients need a loss", loc=loc)
                if name in self.decls and name not in self.wrt:
                    raise SpecError(f"'{name}' has no gradient ({self.decls[name].dtype}"
                                    f"{', grad: false' if self.decls[name].grad is False else ''})", loc=loc)
                if name in self.avals:  # a node pruned away does not feed the loss: its gradient is 0
                    self._check_expected_shape(got, self.avals[name].shape, loc)
            except SpecError as e:
                errors.add(e)

    @staticmethod
    def _check_expected_shape(got: tuple[int, ...], shape: Any, loc: str) -> None:
        if shape is None or any(isinstance(d, str) for d in shape) or got == ():
            return  # a scalar expectation broadcasts (every element equals it)
        if got != tuple(shape):
            raise SpecError(f"expected value of shape {list(got)} for a value of shape {list(shape)}", loc=loc)

    # -- binding inputs ----------------------------------------------------------------------

    def _leaf_values(self, given: Mapping[str, Any]) -> list[Any]:
        """The leaf slots: defaults (or current params) overridden by ``given``; shapes
        re-checked when the given shapes are new."""
        out = []
        fresh = False
        for name in given:
            if name not in self.decls:
                raise InputError(f"unknown input '{name}'", loc=name,
                                 hint=did_you_mean(name, self.decls) or f"inputs are {', '.join(self.decls) or 'none'}")
        for name in self.leaves:
            if name in given:
                arr = values.check_value(given[name], self.decls[name], name)
                fresh = True
            else:
                arr = self.params[name] if name in self.params else self.defaults[name]
                if arr is None:
                    raise InputError("no value: give it at run time (API keyword or CLI --input)", loc=f"inputs.{name}",
                                     source=self.source)  # the checker calls this directly: name the spec here
            out.append(arr)
        if fresh:
            self._check_shapes(out)
        return out

    def _check_shapes(self, leaf_values: list[Any]) -> None:
        key = tuple([np.shape(v) for v in leaf_values])
        if key in self._checked_shapes:
            return
        dims: dict[str, int] = {}
        where: dict[str, str] = {}
        avals = {}
        for name, v in zip(self.leaves, leaf_values, strict=True):
            values.bind_shape(self.decls[name].shape, np.shape(v), dims, where, name, error=InputError)
            avals[name] = Aval(np.shape(v), self.decls[name].dtype)
        inferred = shapes.infer(self.spec.nodes, self.order, avals, self.attrs)  # once: it walks every node
        if self.seed is not None and self.seed.shape != inferred[self.loss].shape:
            # a scalar seed too: the backward pass would broadcast it over a loss that is no longer a scalar
            shape = list(inferred[self.loss].shape)
            if isinstance(self.spec.loss, str) or self.spec.loss.seed is None:  # type: ignore[union-attr]
                raise InputError(f"with these inputs, loss '{self.loss}' has shape {shape}, not a scalar", loc="loss")
            raise InputError(f"with these inputs, loss '{self.loss}' has shape {shape}; its seed of shape "
                             f"{list(self.seed.shape)} no longer fits", loc="loss.seed")
        self._checked_shapes.add(key)

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

    # -- the calls ---------------------------------------------------------------------------

    @cached_property
    def _finite_slots(self) -> tuple[list[int], list[int]]:
        """The slots a call checks for inf and nan: the float outputs and the loss (forward),
        the wrt leaves (backward). Static dtypes, so worked out once, not per call."""
        slot = self.plan.slot
        targets = dict.fromkeys([*self.outputs, *([self.loss] if self.loss else [])])
        return ([slot[t] for t in targets if t in slot and self.avals[t].dtype.startswith("float")],
                [slot[n] for n in self.wrt])

    def _forward(self, given: Mapping[str, Any], check_finite: str, reuse: bool = False) -> list[Any]:
        """The forward pass; with ``reuse`` (callers that read only the outputs, the loss and
        the gradients), dead buffers are written over (`Plan.forward`)."""
        if check_finite not in _CHECK_FINITE:  # a typo must not silently mean "warn"
            raise ValueError(f"check_finite must be one of {', '.join(_CHECK_FINITE)}, got {check_finite!r}")
        try:  # no cost unless something raises: then the error names the spec's file
            leaf_values = self._leaf_values(given)
            vals = self.plan.forward(leaf_values, reuse)
            # surely_finite is one cheap reduction per target; the exact scan runs only on a doubt,
            # on a pass that keeps every value
            if check_finite != "off" and not surely_finite(*[vals[s] for s in self._finite_slots[0]]):
                self._nonfinite(self.plan.nonfinite_error(self.plan.forward(leaf_values) if reuse else vals),
                                check_finite)
        except GraphspecError as e:
            self._located(e)
            raise
        return vals

    def _located(self, e: GraphspecError) -> None:
        if e.source is None:
            e.source = self.source

    @staticmethod
    def _nonfinite(err: NonFiniteError | None, check_finite: str) -> None:
        if err is None:
            return
        if check_finite == "raise":
            raise err
        warnings.warn(NonFiniteWarning(str(err), err), stacklevel=4)

    def run(self, inputs: Mapping[str, Any] | None = None, /, *, check_finite: str = "warn") -> dict[str, np.ndarray]:
        """Forward pass: the outputs' values. ``inputs`` maps leaf names to values (any name, even
        ``self`` or ``check_finite``: they are keys, not keywords)."""
        vals = self._forward(inputs or {}, check_finite, reuse=True)
        slot = self.plan.slot
        return {n: vals[slot[n]] for n in self.outputs}

    def _leaf_grads(self, vals: list[Any], ct: list[Any]) -> dict[str, np.ndarray]:
        """Each gradient a fresh writable array the caller owns. A VJP may hand back its input
        (add passes g through, so x and y of add(x, y) share one array, which may be the seed)
        or a read-only broadcast view (sum): those are copied; a matmul's result is not."""
        slot = self.plan.slot
        grads = {}
        seen: set[int] = set()
        for n in self.wrt:
            g, v = ct[slot[n]], vals[slot[n]]
            if g is None:
                grads[n] = np.zeros(np.shape(v), dtype=v.dtype)
                continue
            a = np.asarray(g, dtype=v.dtype)
            if a is self.seed or id(a) in seen or not (a.flags.owndata and a.flags.writeable):
                a = a.copy()
            seen.add(id(a))
            grads[n] = a
        return grads

    def _backward(self, vals: list[Any], check_finite: str, release: bool = False, all_nodes: bool = False) -> list[Any]:
        """The reverse pass; with ``release`` (after a reusing forward pass), values and node
        cotangents are dropped as it goes, so only the leaves' cotangents are left; with
        ``all_nodes``, every node on the loss's path gets its cotangent, and all are checked."""
        try:  # both callers have made sure there is a loss
            ct = self.plan.backward(vals, self.loss, self.seed, release, all_nodes)
            if check_finite != "off" and not surely_finite(*[ct[s] for s in self._finite_slots[1]],
                                                            *(ct[self.plan.first_node:] if all_nodes else ())):
                if release:  # locating the first inf needs every value and cotangent: a full pass (leaves are never released)
                    vals = self.plan.forward(vals[: self.plan.n_leaves])
                    ct = self.plan.backward(vals, self.loss, self.seed)
                self._nonfinite(self.plan.gradient_nonfinite_error(vals, ct, self.loss, all_nodes), check_finite)
        except GraphspecError as e:
            self._located(e)
            raise
        return ct

    def value_and_grad(self, inputs: Mapping[str, Any] | None = None, /, *,
                       check_finite: str = "warn") -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The loss and its gradient with respect to every param and float input with grad."""
        if self.loss is None:
            raise SpecError("this spec has no loss to differentiate", loc="loss", source=self.source)
        vals = self._forward(inputs or {}, check_finite, reuse=True)
        ct = self._backward(vals, check_finite, release=True)
        return vals[self.plan.slot[self.loss]], self._leaf_grads(vals, ct)

    def grad(self, inputs: Mapping[str, Any] | None = None, /, *, check_finite: str = "warn") -> dict[str, np.ndarray]:
        """d loss / d leaf for every param and float input with grad."""
        return self.value_and_grad(inputs, check_finite=check_finite)[1]

    def evaluate(self, inputs: Mapping[str, Any] | None = None, /, *, check_finite: str = "warn",
                 with_grads: bool = True) -> Result:
        """Every value, and (with a loss) every gradient: each wrt leaf's, and each float node's on
        the loss's path (even with no wrt leaf below it: dL/ds of s = sum(x) with x grad: false).
        A node the loss does not depend on has no entry: it has no cotangent to give."""
        vals = self._forward(inputs or {}, check_finite)
        self._check_results(vals)
        slot = self.plan.slot
        values_ = {n: vals[slot[n]] for n in [*self.leaves, *self.order]}
        if self.loss is None or not with_grads:
            return Result(values_, {}, None if self.loss is None else vals[slot[self.loss]])
        ct = self._backward(vals, check_finite, all_nodes=True)  # reads every node's cotangent
        node_grads = {n: np.asarray(ct[slot[n]]) for n in self.order if ct[slot[n]] is not None}
        return Result(values_, {**self._leaf_grads(vals, ct), **node_grads}, vals[slot[self.loss]])

    @cached_property
    def _result_shapes(self) -> list[tuple[int, str, tuple[int, ...]]]:
        """(slot, node, shape) of every node whose static shape is concrete: built once."""
        slot = self.plan.slot
        with gc_paused():  # the cyclic collector's passes over a 100,000-node graph's heap made this 10x slower
            return [(slot[n], n, tuple(a.shape)) for n in self.order
                    if (a := self.avals[n]).shape is not None and not any(isinstance(d, str) for d in a.shape)]

    def _check_results(self, vals: list[Any]) -> None:
        """Each node's value is an array of the shape its op's shape rule gave at load, when the
        leaves have their load-time shapes (the static shapes are exact then): a forward that
        returns garbage nothing downstream trips over is an OpError too. evaluate's only (it
        reads every value anyway); the fast calls skip it. Dtypes are not compared: a node of
        constants alone is a float64 at run time where the rule promotes it as a JSON number."""
        slot = self.plan.slot
        if any(np.shape(vals[slot[n]]) != self.leaf_avals[n].shape for n in self.leaves):
            return
        for s, name, shape in self._result_shapes:
            v = vals[s]
            try:  # an attribute read and a tuple comparison: no numpy call per node
                if v.shape == shape:
                    continue
            except AttributeError:
                if isinstance(v, float | int) and shape == ():
                    continue
            if not isinstance(v, np.ndarray | np.generic | float | int):
                got = f"returned {type(v).__name__}, not an array"
            else:
                got = f"returned shape {list(np.shape(v))}, its shape rule says {list(shape)}"
            raise OpError(self.spec.nodes[name].op, name, "forward", got, source=self.source)

    def jvp(self, tangents: Mapping[str, Any], inputs: Mapping[str, Any] | None = None, /, *,
            check_finite: str = "warn") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Forward mode: (outputs, their tangents) for tangents of some float leaves (as
        jax.jvp returns primals and tangents). The loss is included when there is one."""
        for name in tangents:
            if name not in self.decls or not self.decls[name].dtype.startswith("float"):
                raise InputError(f"no float input or param '{name}' to take a tangent of", loc=f"tangents.{name}",
                                 hint=did_you_mean(name, self.decls), source=self.source)
        vals = self._forward(inputs or {}, check_finite)
        slot = self.plan.slot
        tans = {}
        for n, t in tangents.items():
            v = vals[slot[n]]
            t = np.asarray(t, dtype=v.dtype)
            if t.shape != np.shape(v):
                raise InputError(f"tangent of shape {list(t.shape)} for a value of shape {list(np.shape(v))}",
                                 loc=f"tangents.{n}", source=self.source)
            tans[n] = t
        try:
            tan = self.plan.jvp(vals, tans)
        except GraphspecError as e:
            self._located(e)
            raise
        names = list(dict.fromkeys([*self.outputs, *([self.loss] if self.loss else [])]))
        outs = {n: vals[slot[n]] for n in names}
        touts = {n: (np.zeros_like(vals[slot[n]], dtype=np.result_type(vals[slot[n]], np.float32))
                     if tan[slot[n]] is None else np.asarray(tan[slot[n]]))
                 for n in names}
        return outs, touts


def load(source: str | Path | Mapping[str, Any], *, base: str | Path | None = None, ops: Iterable[Any] = ()) -> Graph:
    """Load a spec from a path or a dict (relative files resolve against ``base``, default the
    spec's folder or the working directory). Raises a located `SpecError` on a bad spec, which
    lists every independent error (`.errors`; `str()` gives one line each). ``ops``: the ops
    written in Python that the spec uses: files or module names to import (as `--import`),
    modules, or `defop` records."""
    if ops:
        from .userops import use

        use(ops)
    where = None if isinstance(source, Mapping) else str(source)
    # parsing, validating and planning make a few acyclic objects per node: the cyclic
    # collector's passes over them were half the load time of a 100,000-node spec
    with gc_paused():
        loaded = read_spec(dict(source) if isinstance(source, Mapping) else source, base=Path(base) if base else None)
        if loaded.spec is None:
            loaded.raise_errors()
        graph = Graph.__new__(Graph)
        try:
            graph._set_up(loaded.spec, loaded.base, where, loaded.errors, loaded)
        except SpecError as e:
            if e.source is None:
                e.source = where
            raise
        return graph
