"""Random valid specs over the whole op table, driven by the table itself.

The one random-graph generator (tests/test_properties.py and tests/test_passes.py run on it).
It knows no op by name: an op's node is built from one of the op's own `samples()` (args of
shapes and dtypes the op takes), with each arg replaced by an earlier node or leaf, a JSON
number, or a fresh leaf (the sample's shape, or a shape derived from the first arg's), and
each attr drawn from the op's row in tests/optable.py (`Row.attrs`) or else from its attr
schema (`op.attrs`: kind, default, choices). The op's own shape rule says whether a draw is
valid, and the row's `domain` whether the values are in the op's domain and away from its
kinks; a draw that fails either is drawn again. Values are computed with the row's autograd
reference. So a new op is generated as soon as it is registered with samples and has its row.

Every spec lives in two worlds at once: world 0 is the spec's own values (the first call),
world 1 the run-time inputs of another size for the symbolic dim "N" (SIZES). Inputs may be
declared with "N" in their shape; every draw must hold in both worlds.

Choices are hypothesis draws (so failures shrink); array values come from a seeded numpy rng.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from optable import full_attrs, row

from graphspec.errors import SpecError
from graphspec.ops import OPS, Aval, RuleError

SIZES = (2, 3)  # the symbolic dim N in world 0 (the spec's values) and world 1 (run-time inputs)
CONSTANTS = (0.5, -1.5, 2.0, 3.0)  # numbers written into args
MAX_ABS = 1e4  # values beyond this are redrawn: they only measure float overflow, not the ops


@dataclass
class Spec:
    """A generated spec and what the tests need to check it."""

    doc: dict[str, Any]
    worlds: list[dict[str, np.ndarray]]  # per world: every leaf's and node's reference value
    leaves: list[str]  # every leaf, in declaration order
    wrt: list[str]  # the differentiated leaves (float params, float inputs without grad: false)
    order: list[str]  # the nodes, in order
    loss: str
    symbolic: list[str] = field(default_factory=list)  # inputs declared with "N"

    def is_float(self, name: str) -> bool:
        return self.worlds[0][name].dtype.kind == "f"

    def runtime_inputs(self, world: int) -> dict[str, np.ndarray]:
        return {n: self.worlds[world][n] for n in self.doc["inputs"]}

    def nodes_with_wrt_leaf(self) -> set[str]:
        """Nodes whose subtree holds a differentiated leaf."""
        return self.downstream(set(self.wrt))

    def nodes_with_float_leaf(self) -> set[str]:
        return self.downstream({n for n in self.leaves if self.is_float(n)})

    def downstream(self, wrt: set[str]) -> set[str]:
        out: set[str] = set()
        for n in self.order:
            if any(isinstance(a, str) and (a in wrt or a in out) for a in self.doc["nodes"][n]["args"]):
                out.add(n)
        return out


class Generator:
    def __init__(self, data, seed: int):
        self.draw = data.draw
        self.rng = np.random.default_rng(seed)
        self.inputs: dict[str, dict] = {}
        self.params: dict[str, dict] = {}
        self.nodes: dict[str, dict] = {}
        self.worlds: list[dict[str, np.ndarray]] = [{}, {}]
        self.order: list[str] = []
        self.leaves: list[str] = []
        self.wrt: list[str] = []
        self.symbolic: list[str] = []
        self.used: set[str] = set()
        self.ops_used: dict[str, set[str]] = {}  # op -> the attrs it was given explicitly

    # -- values --------------------------------------------------------------------------------

    def shape(self, name_or_const, w: int) -> tuple[int, ...]:
        return () if not isinstance(name_or_const, str) else self.worlds[w][name_or_const].shape

    def aval(self, arg, w: int) -> Aval:
        if not isinstance(arg, str):
            return Aval((), "weak")
        v = self.worlds[w][arg]
        return Aval(v.shape, v.dtype.name)

    def value(self, arg, w: int):
        return self.worlds[w][arg] if isinstance(arg, str) else arg

    def symbolic_shape(self, name) -> tuple:
        """A value's shape with "N" where it differs between the worlds (None there: it grows with N)."""
        a, b = self.shape(name, 0), self.shape(name, 1)
        return tuple(x if x == y else None for x, y in zip(a, b, strict=True))

    def resample(self, a: np.ndarray, shape: tuple[int, ...], high: int | None = None) -> np.ndarray:
        """Values like the sample ``a`` (its range, widened a little, keeping its sign), of ``shape``."""
        if a.dtype.kind in "iu":
            lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 1)
            if high is not None:
                lo, hi = 0, high - 1
            return self.rng.integers(lo, hi + 1, size=shape).astype(np.int64)
        if a.dtype.kind == "b":
            return self.rng.integers(0, 2, size=shape).astype(bool)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (-1.0, 1.0)
        lo, hi = lo - 0.2 * abs(lo), hi + 0.2 * abs(hi)
        if lo == hi:
            lo, hi = lo - 1.0, hi + 1.0
        return self.rng.uniform(lo, hi, size=shape)

    # -- leaves --------------------------------------------------------------------------------

    def leaf(self, values: list[np.ndarray], sym: tuple, kind: str | None = None, declare: bool = True) -> str:
        """A new leaf with one value per world; ``sym`` is its shape (None dims are "N", declared
        so); ``declare=False`` declares no shape at all (any shape at run time)."""
        name = f"v{len(self.worlds[0])}"
        v0 = values[0]
        if v0.dtype.kind != "f":
            kind = "int"
        elif None in sym or not declare:
            kind = kind if kind in ("input", "nograd") else self.draw(st.sampled_from(["input", "nograd"]))
        elif kind is None:
            kind = self.draw(st.sampled_from(["param", "input", "nograd"]))
        decl: dict[str, Any] = {"value": v0.tolist()}
        if None in sym and declare:
            decl["shape"] = ["N" if d is None else d for d in sym]
            self.symbolic.append(name)
        if kind == "int":
            decl["dtype"] = "int64" if v0.dtype.kind in "iu" else "bool"
        if kind == "nograd":
            decl["grad"] = False
        (self.params if kind == "param" else self.inputs)[name] = decl
        self.worlds[0][name] = v0
        # run-time inputs are fresh values (of the world's size); a param keeps its value
        self.worlds[1][name] = v0 if kind == "param" else values[1]
        self.leaves.append(name)
        if kind in ("param", "input"):
            self.wrt.append(name)
        return name

    def fresh(self, sample: np.ndarray, sym: tuple, high: int | None = None, kind: str | None = None) -> str:
        shapes = [tuple(SIZES[w] if d is None else d for d in sym) for w in range(2)]
        return self.leaf([self.resample(sample, s, high) for s in shapes], sym, kind)

    # -- one node ------------------------------------------------------------------------------

    def float_values(self) -> list[str]:
        return [n for n in self.worlds[0] if self.worlds[0][n].dtype.kind == "f"]

    def draw_attr(self, kind: str, attr, sample_value, x_sym: tuple | None):
        nd = len(x_sym) if x_sym is not None else 0
        d = self.draw
        if kind == "float":
            return d(st.sampled_from([0.01, 0.2, 0.5, 1.0, 2.0, -0.3]))
        if kind == "int":
            return d(st.integers(0, 3))
        if kind == "opt_float":  # a number or null (no bound)
            return d(st.sampled_from([None, -0.5, 0.5, 1.0]))
        if kind == "bool":
            return d(st.booleans())
        if kind == "enum":
            return d(st.sampled_from(attr.choices))
        if kind == "axis":
            return d(st.integers(-nd, nd - 1)) if nd else sample_value
        if kind == "reduce_axis":
            if not nd:
                return None
            axes = d(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
            axes = [a - nd if d(st.booleans()) else a for a in axes]
            return d(st.sampled_from([None, axes[0], axes]))
        if kind == "axes":
            if not nd or d(st.booleans()):
                return None
            return [int(a) - nd if d(st.booleans()) else int(a) for a in d(st.permutations(range(nd)))]
        if kind == "shape":
            return self.draw_reshape(x_sym) if x_sym is not None else sample_value
        return sample_value

    def draw_reshape(self, sym: tuple) -> list[int]:
        """A target shape valid at every N: the dims that grow with N go into one -1."""
        fixed = [dd for dd in sym if dd is not None]
        grows = len(fixed) < len(sym)
        parts: list[int] = []
        for dd in fixed:  # split some fixed dims into two factors
            f = next((k for k in (2, 3) if dd % k == 0 and dd > k), None)
            parts += [f, dd // f] if f and self.draw(st.booleans()) else [dd]
        parts = [parts[i] for i in self.draw(st.permutations(range(len(parts))))]
        if grows or (parts and self.draw(st.booleans())):
            if not grows:
                parts.pop(self.draw(st.integers(0, len(parts) - 1)))  # its size is what -1 stands for
            parts.insert(self.draw(st.integers(0, len(parts))), -1)
        for _ in range(self.draw(st.integers(0, 1))):
            parts.insert(self.draw(st.integers(0, len(parts))), 1)
        return parts

    def arg_shapes(self, sample: np.ndarray, first_sym: tuple | None, attrs: dict) -> list[tuple]:
        """Candidate (symbolic) shapes of a fresh leaf for a later arg: the sample's, and shapes
        derived from the first arg's (its own, a suffix, dims set to 1, the axis dropped or
        resized, a matrix to multiply it by)."""
        out = [tuple(sample.shape)]
        if first_sym is not None:
            s = first_sym
            out += [s, s[1:], tuple(1 if i == 0 else dd for i, dd in enumerate(s)), s[-1:]]
            if s:
                out += [(s[-1], 2), (2, s[-1]), (*s[:-1], 1), (*s[:-1], 2)]
            if len(s) >= 2:
                out += [(2, s[-2]), (*s[:-2], s[-1], s[-2])]
            ax = attrs.get("axis")
            if isinstance(ax, int) and s and -len(s) <= ax < len(s):
                a = ax % len(s)
                out += [s[:a] + s[a + 1:], (*s[:a], 2, *s[a + 1:])]
        # a fixed dim of the sample may be made symbolic
        if sample.ndim and self.draw(st.booleans()):
            i = self.draw(st.integers(0, sample.ndim - 1))
            out.append(tuple(None if j == i else dd for j, dd in enumerate(sample.shape)))
        return list(dict.fromkeys(out))

    def try_node(self, op: str) -> str | None:
        o = OPS[op]
        r = row(op)
        samples = o.samples()
        d = self.draw
        for attempt in range(6):
            s_args, s_attrs = samples[d(st.integers(0, len(samples) - 1))]
            s_args = [np.asarray(a) for a in s_args]
            plain = attempt >= 4  # the last tries: the sample's own shapes and attrs, fresh values
            args: list = []
            # the first arg: an earlier value that fits, a number, or a fresh leaf
            a0 = s_args[0]
            first_sym = None
            mode = "leaf" if plain else d(st.sampled_from(["node", "node", "leaf", "const"]))
            if mode == "node" and a0.dtype.kind == "f":
                fits = [n for n in self.float_values()
                        if self.valid_prefix(op, [n], s_args[1:], s_attrs)]
                if fits:
                    args.append(d(st.sampled_from(fits)))
            if not args and mode == "const" and a0.dtype.kind == "f":
                c = d(st.sampled_from(CONSTANTS))
                if self.valid_prefix(op, [c], s_args[1:], s_attrs):
                    args.append(c)
            if not args:
                sym = tuple(a0.shape)
                if a0.ndim and not plain and d(st.booleans()):
                    i = d(st.integers(0, a0.ndim - 1))
                    sym = tuple(None if j == i else dd for j, dd in enumerate(sym))
                args.append(("fresh", a0, sym))
            first_sym = self.symbolic_shape(args[0]) if isinstance(args[0], str) else \
                (args[0][2] if isinstance(args[0], tuple) else ())
            # attrs: each left out (the default), the sample's, or drawn from the schema
            attrs: dict[str, Any] = {}
            for key, spec in o.attrs.items():
                how = "sample" if plain else d(st.sampled_from(["default", "sample", "draw", "draw"]))
                if how == "sample" and key in s_attrs:
                    attrs[key] = _json(s_attrs[key])
                elif how == "draw" and key in r.attrs:
                    # the row's strategy; a value the sample's args do not take is the sample's instead
                    v = _json(d(r.attrs[key]))
                    if self.valid_prefix(op, args[:1], s_args[1:], {**_json(s_attrs), **attrs, key: v}):
                        attrs[key] = v
                    elif key in s_attrs:
                        attrs[key] = _json(s_attrs[key])
                elif how == "draw":
                    attrs[key] = _json(self.draw_attr(spec.kind, spec, s_attrs.get(key, spec.default), first_sym))
            # the other args (a variadic op may take one more or one fewer than its sample)
            rest = list(s_args[1:])
            if o.arity is None and not plain:
                k = d(st.integers(max(0, len(rest) - 1), len(rest) + 1))
                rest = (rest + [a0] * k)[:k] if k > len(rest) else rest[:k]
            for i, a in enumerate(rest):
                later = rest[i + 1:]
                mode = "leaf" if plain else d(st.sampled_from(["node", "node", "leaf", "const"]))
                chosen = None
                if mode == "node" and a.dtype.kind == "f":
                    fits = [n for n in self.float_values() if self.valid_prefix(op, [*args, n], later, attrs)]
                    if fits:
                        chosen = d(st.sampled_from(fits))
                if chosen is None and mode == "const" and a.dtype.kind == "f":
                    c = d(st.sampled_from(CONSTANTS))
                    if self.valid_prefix(op, [*args, c], later, attrs):
                        chosen = c
                if chosen is None:
                    cands = [tuple(a.shape)] if plain else self.arg_shapes(a, first_sym, attrs)
                    ok = [c for c in cands if self.valid_prefix(op, [*args, ("fresh", a, c)], later, attrs)]
                    if not ok:
                        break
                    chosen = ("fresh", a, d(st.sampled_from(ok)))
                args.append(chosen)
            else:
                if not self.valid_prefix(op, args, [], attrs):  # the drawn attrs with these args
                    continue
                name = self.commit(op, args, attrs)
                if name is not None:
                    return name
        return None

    def valid_prefix(self, op: str, chosen: list, later: list[np.ndarray], attrs: dict) -> bool:
        """The shape rule holds in both worlds with ``chosen`` args, then the sample's for the rest."""
        try:
            full = full_attrs(op, attrs)
        except SpecError:
            return False
        for w in range(2):
            avals = []
            for a in chosen:
                if isinstance(a, tuple):  # a fresh leaf not made yet
                    _, s, sym = a
                    avals.append(Aval(tuple(SIZES[w] if dd is None else dd for dd in sym), s.dtype.name))
                else:
                    avals.append(self.aval(a, w))
            avals += [Aval(tuple(s.shape), s.dtype.name) for s in later]
            try:
                OPS[op].shape(avals, **full)
            except (RuleError, ValueError, TypeError, IndexError):
                return False
        return True

    def commit(self, op: str, args: list, attrs: dict) -> str | None:
        """Make the fresh leaves, evaluate the node in both worlds and keep it if it is in the
        op's domain; else take the fresh leaves back and say None."""
        before = (dict(self.inputs), dict(self.params), [dict(w) for w in self.worlds], list(self.leaves),
                  list(self.wrt), list(self.symbolic))
        full = full_attrs(op, attrs)
        r = row(op)
        made = []
        for a in args:
            if isinstance(a, tuple):
                _, s, sym = a
                high = None
                if s.dtype.kind in "iu" and r.ints is not None:
                    high = r.ints([self.value(m, 0) for m in made], full)
                made.append(self.fresh(s, sym, high))
            else:
                made.append(a)
        ok = True
        outs = []
        for w in range(2):
            vals = [self.value(a, w) for a in made]
            if not r.domain(vals, full):
                ok = False
                break
            with np.errstate(all="ignore"):
                try:
                    out = np.asarray(r.ref(*vals, **full))
                except (ValueError, IndexError):
                    ok = False
                    break
            # empty results are left out: a JSON value [[], []] cannot say it was (2, 0, 3)
            if out.size == 0 or not np.all(np.isfinite(out)) or np.max(np.abs(out)) > MAX_ABS:
                ok = False
                break
            outs.append(out)
        if not ok:
            (self.inputs, self.params, self.worlds, self.leaves, self.wrt, self.symbolic) = before
            return None
        name = f"v{len(self.worlds[0])}"
        node: dict[str, Any] = {"op": op, "args": list(made)}
        if attrs:
            node["attrs"] = attrs
        self.nodes[name] = node
        for w in range(2):
            self.worlds[w][name] = outs[w]
        self.order.append(name)
        self.used.update(a for a in made if isinstance(a, str))
        self.ops_used.setdefault(op, set()).update(attrs)
        return name

    # -- the whole spec ------------------------------------------------------------------------

    def finish(self) -> Spec:
        """The loss: a random contraction sum_e <w_e, e> of every node no other node uses, with
        weights w_e inputs that get no gradient (they grow with N as e does)."""
        ends = [n for n in self.order if n not in self.used]
        total = None
        for e in ends:
            shapes = [self.worlds[w][e].shape for w in range(2)]
            # its shape follows e's: "N" when e grows with N as N does, else no declared shape
            sym = self.symbolic_shape(e)
            simple = all(s0 == SIZES[0] and s1 == SIZES[1]  # the dims that grow are N itself
                         for d, s0, s1 in zip(sym, shapes[0], shapes[1], strict=True) if d is None)
            w_e = self.leaf([self.rng.uniform(-1, 1, size=s) for s in shapes], sym, kind="nograd", declare=simple)
            prod = self.commit("mul", [e, w_e], {})
            s = self.commit("sum", [prod], {})
            total = s if total is None else self.commit("add", [total, s], {})
        doc = {"graphspec": "1", "inputs": self.inputs, "params": self.params, "nodes": self.nodes,
               "outputs": list(self.order), "loss": total}
        return Spec(doc, self.worlds, self.leaves, self.wrt, self.order, total, self.symbolic)


def random_spec(data, n_ops: int) -> tuple[Spec, Generator]:
    """A spec of ``n_ops`` random nodes (over every registered op) plus the loss's contraction."""
    g = Generator(data, data.draw(st.integers(0, 2**32 - 1)))
    ops = sorted(OPS)
    # rotated by the seed: hypothesis favours the first of a sampled_from, which would be one op
    k = int(g.rng.integers(len(ops)))
    ops = ops[k:] + ops[:k]
    made = 0
    for _ in range(3 * n_ops):
        if made == n_ops:
            break
        if g.try_node(data.draw(st.sampled_from(ops))) is not None:
            made += 1
    if not g.order:  # nothing fitted (rare): one node from the first op's own sample
        g.try_node("add")
    assert g.order, "no node could be made"
    return g.finish(), g


def _json(v):
    """An attr as JSON has it: tuples (in some samples) as lists."""
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    return [_json(x) for x in v] if isinstance(v, list | tuple) else v



def reference_env(spec: Spec, leaves: dict[str, Any], probes: dict[str, Any] | None = None,
                  override: tuple[str, Any] | None = None) -> dict[str, Any]:
    """Every node's value from the leaves, by the rows' autograd references; ``probes`` are added
    to node values (d loss / d probe_n is d loss / d node n), ``override`` = (node, value) replaces one."""
    env = dict(leaves)
    for n in spec.order:
        if override is not None and n == override[0]:
            env[n] = override[1]
            continue
        node = spec.doc["nodes"][n]
        args = [env[a] if isinstance(a, str) else float(a) for a in node["args"]]
        out = row(node["op"]).ref(*args, **full_attrs(node["op"], node.get("attrs", {})))
        env[n] = out + probes[n] if probes is not None else out
    return env
