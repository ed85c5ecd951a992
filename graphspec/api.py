"""The Python API: `load` a spec into a `Graph`, then `run`, `grad`, `value_and_grad`, `evaluate`, `jvp`.

All the pydantic and networkx work happens in `load`, which compiles the spec into a frozen
`Program` (program.py); a call does only array work: bind the inputs, (re)check shapes when
the input shapes change, run the plan, and look for inf and nan where it returns.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from . import shapes, values
from .errors import ErrorList, GraphspecError, InputError, NonFiniteError, OpError, SpecError, did_you_mean, one_line
from .finite import surely_finite
from .ops import Aval
from .plan import gc_paused
from .program import Program, compile_program
from .spec import Spec, read_spec

_CHECK_FINITE = ("warn", "raise", "off")  # and evaluate's "record"


class NonFiniteWarning(RuntimeWarning):
    """A node produced inf or nan; the message names the first one (``error``: the
    `NonFiniteError` that ``check_finite="raise"`` would have raised)."""

    def __init__(self, message: str, error: NonFiniteError | None = None):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Finding:
    """An inf or nan that a call found, named by the first place that produced it."""

    kind: str  # "value" (the forward pass) or "gradient" (the backward pass)
    loc: str | None  # "nodes.h", a leaf's name, or "loss.seed"
    message: str  # "first non-finite value (nan) produced by log"

    def __str__(self) -> str:
        return one_line(self.message, self.loc)  # "nodes.h: first non-finite ...", as the error says it


@dataclass(frozen=True)
class Result:
    """Everything one evaluation computed."""

    values: dict[str, np.ndarray]  # every leaf and every computed node
    # d loss / d name: every wrt leaf (zeros when the loss does not use it, as jax.grad gives) and
    # every float node on the loss's path; a node the loss does not depend on has no entry
    grads: dict[str, np.ndarray]
    loss: np.ndarray | None
    findings: tuple[Finding, ...] = ()  # the non-finite values and gradients found (none with check_finite="off")


class Graph:
    """A loaded spec, ready to run: its compiled `program` (immutable), its leaves' declared
    values (`defaults`), the current `params` (training updates them), and the calls. Some of
    the program's parts also read through, read-only: ``graph.order`` is ``graph.program.order``."""

    def __init__(self, spec: Spec, base: Path, source: str | None = None):
        """A validated spec model, compiled here (`load` reads, validates and compiles a file or dict)."""
        self._start(*compile_program(spec, base, source, ErrorList()))

    @classmethod
    def _of(cls, program: Program, defaults: dict[str, np.ndarray | None]) -> Graph:
        graph = cls.__new__(cls)
        graph._start(program, defaults)
        return graph

    def _start(self, program: Program, defaults: dict[str, np.ndarray | None]) -> None:
        self.program = program
        self.defaults = defaults  # None: given at run time
        self.params: dict[str, np.ndarray] = {n: defaults[n] for n in program.spec.params}  # type: ignore[misc]
        self._checked_shapes: set[tuple[Any, ...]] = set()

    # -- what it is: repr, and a notebook's display --------------------------------------------

    def __repr__(self) -> str:
        p = self.program

        def names(kind: str) -> str:
            ns = [n for n in p.leaves if p.kind.get(n) == kind and "/" not in n]
            shown = [f"{n} {tuple(p.avals[n].shape)}" if n in p.avals else n for n in ns[:6]]
            return ", ".join(shown) + (f", ... ({len(ns)} in all)" if len(ns) > 6 else "") if ns else "none"

        end = f"loss {p.loss}" if p.loss else f"outputs {', '.join(p.outputs) or 'none'}"
        calls = f" ({len(p.calls)} function calls)" if p.calls else ""
        return (f"<graphspec.Graph {p.spec.name or p.source or '(unnamed)'}: inputs {names('inputs')}; "
                f"params {names('params')}; {len(p.order)} node{'s' if len(p.order) != 1 else ''}{calls}; {end}>")

    def _repr_svg_(self) -> str | None:
        """The picture (`graphspec.draw`) for Jupyter; None, so the notebook shows the next format, when
        Graphviz's dot is not installed or the graph cannot be run with its declared values."""
        from . import draw

        if draw.dot_program() is None:
            return None
        for numbers in (True, False):  # inputs given only at run time: the structure without numbers
            try:
                return draw.render(draw.to_dot(self, values=numbers), "svg").decode()
            except GraphspecError:
                continue
            except Exception:  # an op's own bug: a notebook's display must not raise (run says what failed)
                return None
        return None

    def _repr_html_(self) -> str:
        """The picture inline when Graphviz is there, else what the graph is, as text: never raises."""
        import html

        svg = self._repr_svg_()
        text = f"<pre>{html.escape(repr(self))}</pre>"
        if svg is None:
            note = "" if _has_dot() else "<p><small>Install Graphviz's dot to see the graph drawn.</small></p>"
            return text + note
        return text + svg[svg.find("<svg"):]

    # -- binding inputs ----------------------------------------------------------------------

    def _leaf_values(self, given: Mapping[str, Any]) -> list[Any]:
        """The leaf slots: defaults (or current params) overridden by ``given``; shapes
        re-checked when the given shapes are new."""
        decls = self.program.decls
        out = []
        fresh = False
        for name in given:
            if name not in decls:
                raise InputError(f"unknown input '{name}'", loc=name,
                                 hint=did_you_mean(name, decls) or f"inputs are {', '.join(decls) or 'none'}")
        params, defaults = self.params, self.defaults
        for name in self.program.leaves:
            if name in given:
                arr = values.check_value(given[name], decls[name], name)
                fresh = True
            else:
                arr = params[name] if name in params else defaults[name]
                if arr is None:
                    raise InputError("no value: give it at run time (API keyword or CLI --input)", loc=f"inputs.{name}",
                                     source=self.program.source)  # the checker calls this directly: name the spec here
            out.append(arr)
        if fresh:
            self._check_shapes(out)
        return out

    def _check_shapes(self, leaf_values: list[Any]) -> None:
        key = tuple([np.shape(v) for v in leaf_values])
        if key in self._checked_shapes:
            return
        p = self.program
        dims: dict[str, int] = {}
        where: dict[str, str] = {}
        avals = {}
        for name, v in zip(p.leaves, leaf_values, strict=True):
            values.bind_shape(p.decls[name].shape, np.shape(v), dims, where, name, error=InputError)
            avals[name] = Aval(np.shape(v), p.decls[name].dtype)
        inferred = shapes.infer(p.spec.nodes, p.order, avals, p.attrs)  # once: it walks every node
        if p.seed is not None and p.seed.shape != inferred[p.loss].shape:
            # a scalar seed too: the backward pass would broadcast it over a loss that is no longer a scalar
            shape = list(inferred[p.loss].shape)
            if isinstance(p.spec.loss, str) or not p.spec.loss.seed_given:  # type: ignore[union-attr]
                raise InputError(f"with these inputs, loss '{p.loss}' has shape {shape}, not a scalar", loc="loss")
            raise InputError(f"with these inputs, loss '{p.loss}' has shape {shape}; its seed of shape "
                             f"{list(p.seed.shape)} no longer fits", loc="loss.seed")
        self._checked_shapes.add(key)

    # -- the calls ---------------------------------------------------------------------------

    def _forward(self, given: Mapping[str, Any], check_finite: str, reuse: bool = False,
                 findings: list[Finding] | None = None) -> list[Any]:
        """The forward pass; with ``reuse`` (callers that read only the outputs, the loss and
        the gradients), dead buffers are written over (`Plan.forward`). ``findings`` (evaluate's)
        collects what is non-finite."""
        if check_finite not in _CHECK_FINITE and not (check_finite == "record" and findings is not None):
            # a typo must not silently mean "warn"; "record" needs a Result to record into
            raise ValueError("check_finite must be one of warn, raise, off (and, for evaluate, record), "
                             f"got {check_finite!r}")
        plan = self.program.plan
        try:  # no cost unless something raises: then the error names the spec's file
            leaf_values = self._leaf_values(given)
            vals = plan.forward(leaf_values, reuse)
            # surely_finite is one cheap reduction per target; the exact scan runs only on a doubt,
            # on a pass that keeps every value
            if check_finite != "off" and not surely_finite(*[vals[s] for s in self.program.finite_slots[0]]):
                self._nonfinite(plan.nonfinite_error(plan.forward(leaf_values) if reuse else vals),
                                "value", check_finite, findings)
        except GraphspecError as e:
            self._located(e)
            raise
        return vals

    def _located(self, e: GraphspecError) -> None:
        if e.source is None:
            e.source = self.program.source

    @staticmethod
    def _nonfinite(err: NonFiniteError | None, kind: str, check_finite: str, findings: list[Finding] | None) -> None:
        """What a call does with an inf or nan it found: raise it, or record it and (by default) warn."""
        if err is None:
            return
        if check_finite == "raise":
            raise err
        finding = Finding(kind, err.loc, err.message)
        if findings is not None:
            findings.append(finding)
        if check_finite == "warn":
            warnings.warn(NonFiniteWarning(str(finding), err), stacklevel=4)

    def run(self, inputs: Mapping[str, Any] | None = None, /, *, check_finite: str = "warn") -> dict[str, np.ndarray]:
        """Forward pass: the outputs' values. ``inputs`` maps leaf names to values (any name, even
        ``self`` or ``check_finite``: they are keys, not keywords)."""
        vals = self._forward(inputs or {}, check_finite, reuse=True)
        p = self.program
        slot = p.plan.slot
        return {n: vals[slot[n]] for n in p.outputs}

    def _fresh_grads(self, leaves: list[Any], cts: list[Any] | tuple[Any, ...]) -> dict[str, np.ndarray]:
        """The wrt leaves' gradients from their values and cotangents, each a fresh writable array the
        caller owns. A VJP may hand back its input (add passes g through, so x and y of add(x, y)
        share one array, which may be the seed) or a read-only broadcast view (sum): those are
        copied; a matmul's result is not."""
        seed = self.program.seed
        grads = {}
        seen: set[int] = set()
        for n, v, g in zip(self.program.wrt, leaves, cts, strict=True):
            if g is None:
                grads[n] = np.zeros(np.shape(v), dtype=v.dtype)
                continue
            if type(g) is not np.ndarray:  # a numpy scalar or a Python number: a new 0-d array is fresh
                grads[n] = np.array(g, dtype=v.dtype)
                continue
            a = g if g.dtype == v.dtype else g.astype(v.dtype)
            if a is seed or id(a) in seen or a.base is not None or not a.flags.writeable:
                a = a.copy()
            seen.add(id(a))
            grads[n] = a
        return grads

    def _backward(self, vals: list[Any], check_finite: str, release: bool = False, all_nodes: bool = False,
                  findings: list[Finding] | None = None) -> list[Any]:
        """The reverse pass; with ``release`` (after a reusing forward pass), values and node
        cotangents are dropped as it goes, so only the leaves' cotangents are left; with
        ``all_nodes``, every node on the loss's path gets its cotangent, and all are checked."""
        p = self.program
        plan, loss, seed = p.plan, p.loss, p.seed
        try:  # both callers have made sure there is a loss
            ct = plan.backward(vals, loss, seed, release, all_nodes)
            if check_finite != "off" and not surely_finite(*[ct[s] for s in p.finite_slots[1]],
                                                            *(ct[plan.first_node:] if all_nodes else ())):
                if release:  # locating the first inf needs every value and cotangent: a full pass (leaves are never released)
                    vals = plan.forward(vals[: plan.n_leaves])
                    ct = plan.backward(vals, loss, seed)
                self._nonfinite(plan.gradient_nonfinite_error(vals, ct, loss, all_nodes), "gradient", check_finite,
                                findings)
        except GraphspecError as e:
            self._located(e)
            raise
        return ct

    def value_and_grad(self, inputs: Mapping[str, Any] | None = None, /, *,
                       check_finite: str = "warn") -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The loss and its gradient with respect to every param and float input with grad."""
        p = self.program
        if p.loss is None:
            raise SpecError("this spec has no loss to differentiate", loc="loss", source=p.source)
        fast = p.straight
        if fast is not None and check_finite in _CHECK_FINITE:
            try:  # the straight-line code has no error handling of its own: the loops below locate any error
                leaves = self._leaf_values(inputs or {})
                loss, cts, checked = fast(leaves)
                if check_finite == "off" or surely_finite(*checked, *cts):
                    return loss, self._fresh_grads([leaves[s] for s in p.finite_slots[1]], cts)
            except Exception:
                pass
        vals = self._forward(inputs or {}, check_finite, reuse=True)
        ct = self._backward(vals, check_finite, release=True)
        slots = p.finite_slots[1]
        return vals[p.plan.slot[p.loss]], self._fresh_grads([vals[s] for s in slots], [ct[s] for s in slots])

    def grad(self, inputs: Mapping[str, Any] | None = None, /, *, check_finite: str = "warn") -> dict[str, np.ndarray]:
        """d loss / d leaf for every param and float input with grad."""
        return self.value_and_grad(inputs, check_finite=check_finite)[1]

    def evaluate(self, inputs: Mapping[str, Any] | None = None, /, *, check_finite: str = "warn",
                 with_grads: bool = True) -> Result:
        """Every value, and (with a loss) every gradient: each wrt leaf's, and each float node's on
        the loss's path (even with no wrt leaf below it: dL/ds of s = sum(x) with x grad: false).
        A node the loss does not depend on has no entry: it has no cotangent to give.

        Non-finite values and gradients are in ``Result.findings``, each named by the first node
        that produced it; ``check_finite="warn"`` also warns of each (`NonFiniteWarning`),
        ``"record"`` only records them, ``"raise"`` raises the first, ``"off"`` does not look."""
        findings: list[Finding] = []
        vals = self._forward(inputs or {}, check_finite, findings=findings)
        self._check_results(vals)
        p = self.program
        slot = p.plan.slot
        values_ = {n: vals[slot[n]] for n in [*p.leaves, *p.order]}
        if p.loss is None or not with_grads:
            return Result(values_, {}, None if p.loss is None else vals[slot[p.loss]], tuple(findings))
        ct = self._backward(vals, check_finite, all_nodes=True, findings=findings)  # reads every node's cotangent
        node_grads = {n: np.asarray(ct[slot[n]]) for n in p.order if ct[slot[n]] is not None}
        wrt = p.finite_slots[1]
        leaf_grads = self._fresh_grads([vals[s] for s in wrt], [ct[s] for s in wrt])
        return Result(values_, {**leaf_grads, **node_grads}, vals[slot[p.loss]], tuple(findings))

    def _check_results(self, vals: list[Any]) -> None:
        """Each node's value is an array of the shape its op's shape rule gave at load, when the
        leaves have their load-time shapes (the static shapes are exact then): a forward that
        returns garbage nothing downstream trips over is an OpError too. evaluate's only (it
        reads every value anyway); the fast calls skip it. Dtypes are not compared: a node of
        constants alone is a float64 at run time where the rule promotes it as a JSON number."""
        p = self.program
        slot = p.plan.slot
        if any(np.shape(vals[slot[n]]) != p.leaf_avals[n].shape for n in p.leaves):
            return
        for s, name, shape in p.result_shapes:
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
            raise OpError(p.spec.nodes[name].op, name, "forward", got, source=p.source)

    def jvp(self, tangents: Mapping[str, Any], inputs: Mapping[str, Any] | None = None, /, *,
            check_finite: str = "warn") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Forward mode: (outputs, their tangents) for tangents of some float leaves (as
        jax.jvp returns primals and tangents). The loss is included when there is one."""
        p = self.program
        for name in tangents:
            if name not in p.decls or not p.decls[name].dtype.startswith("float"):
                raise InputError(f"no float input or param '{name}' to take a tangent of", loc=f"tangents.{name}",
                                 hint=did_you_mean(name, p.decls), source=p.source)
        vals = self._forward(inputs or {}, check_finite)
        slot = p.plan.slot
        tans = {}
        for n, t in tangents.items():
            v = vals[slot[n]]
            t = np.asarray(t, dtype=v.dtype)
            if t.shape != np.shape(v):
                raise InputError(f"tangent of shape {list(t.shape)} for a value of shape {list(np.shape(v))}",
                                 loc=f"tangents.{n}", source=p.source)
            tans[n] = t
        try:
            tan = p.plan.jvp(vals, tans)
        except GraphspecError as e:
            self._located(e)
            raise
        names = list(dict.fromkeys([*p.outputs, *([p.loss] if p.loss else [])]))
        outs = {n: vals[slot[n]] for n in names}
        touts = {n: (np.zeros_like(vals[slot[n]], dtype=np.result_type(vals[slot[n]], np.float32))
                     if tan[slot[n]] is None else np.asarray(tan[slot[n]]))
                 for n in names}
        return outs, touts


def _has_dot() -> bool:
    import shutil

    return shutil.which("dot") is not None


def _program_part(name: str) -> property:
    return property(attrgetter(f"program.{name}"), doc=f"``graph.program.{name}``, read-only")


# the parts of the program that readers holding a Graph (the checker, train, tests) read through
# it, read-only; new code reads graph.program
for _name in ("spec", "base", "source", "order", "outputs", "loss", "decls", "kind", "attrs", "avals", "wrt", "seed",
              "plan", "unused_wrt"):
    setattr(Graph, _name, _program_part(_name))


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
    # collector's passes over them only cost time
    with gc_paused():
        loaded = read_spec(dict(source) if isinstance(source, Mapping) else source, base=Path(base) if base else None)
        if loaded.spec is None:
            loaded.raise_errors()
        try:
            return Graph._of(*compile_program(loaded.spec, loaded.base, where, loaded.errors, loaded))
        except SpecError as e:
            if e.source is None:
                e.source = where
            raise
