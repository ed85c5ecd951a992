"""Whole graphs through `graphspec.load({...})`: the interpreter against HIPS autograd.

- random DAGs (hypothesis) of elementwise, matmul, reduction, softmax, shape and loss ops with
  broadcasting and constants: every node's value, every leaf's gradient, one node's own
  gradient, and forward-mode tangents, against autograd on the same function built from the
  independent references in tests/reference.py, at 1e-10;
- a 100,000-node chain, forward, backward and forward mode: no recursion anywhere;
- non-finite values named by their first node and its op (warning, or NonFiniteError);
- run-time inputs overriding the spec's values and shape-checked (symbolic dims);
- integer labels getting no gradient; float32 graphs staying float32.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import warnings

import autograd.numpy as anp
import numpy as np
import pytest
import reference
from autograd import make_jvp, make_vjp
from bench_models import mlp_nodes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optable import ROWS
from reference import RTOL

import graphspec
from graphspec import InputError, NonFiniteError, NonFiniteWarning

REF = {name: r.ref for name, r in ROWS.items()}


def assert_close(ours, ref, rtol=RTOL, what=""):
    # whole graphs sum more roundings than one op: a 10x wider atol at the result's zeros
    reference.assert_close(ours, ref, rtol=rtol, what=what, atol_scale=1e-2)


def load(**spec):
    return graphspec.load({"graphspec": "1", **spec})


# --- random graphs -----------------------------------------------------------------------------

SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1), (4, 2, 3)]
# every op of the table; its row's `gen` says which generic builder of RandomGraph makes it, and
# `safe` and `gen_attrs` what that builder feeds it ("": a builder of the op's own)
CHOICES = list(ROWS)
UNARY, BINARY, REDUCE = ({n for n, r in ROWS.items() if r.gen == kind} for kind in ("unary", "binary", "reduce"))


def _safe(op, i):
    """The generator's guard on arg ``i`` of ``op`` (any value when the row gives none)."""
    guards = ROWS[op].safe
    return guards[i] if i < len(guards) and guards[i] is not None else lambda v: True


def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


class RandomGraph:
    """Draws a random spec op by op, evaluating each node with the reference as it goes (so the
    draws can keep each op's args where its row's `safe` says, and pow's in its safe range)."""

    def __init__(self, data, seed):
        self.draw = data.draw
        self.rng = np.random.default_rng(seed)
        self.inputs, self.params, self.nodes = {}, {}, {}
        self.env: dict[str, np.ndarray] = {}  # reference values of leaves and nodes
        self.order: list[str] = []
        self.float_leaves: list[str] = []
        self.used: set[str] = set()

    # leaves
    def leaf(self, shape, *, param=None, value=None, dtype="float64"):
        name = f"v{len(self.env)}"
        if value is None:
            value = self.rng.uniform(-2, 2, size=shape)
        decl = {"value": np.asarray(value).tolist()}
        if dtype != "float64":
            decl["dtype"] = dtype
        param = self.draw(st.booleans()) if param is None else param
        (self.params if param and dtype == "float64" else self.inputs)[name] = decl
        self.env[name] = np.asarray(value, dtype=dtype)
        if dtype == "float64":
            self.float_leaves.append(name)
        return name

    def pick(self, ok=lambda v: True):
        names = [n for n in self.env if ok(self.env[n]) and np.issubdtype(self.env[n].dtype, np.floating)]
        return self.draw(st.sampled_from(names)) if names else None

    def node(self, op, args, attrs=None):
        name = f"v{len(self.env)}"
        spec = {"op": op, "args": list(args)}
        if attrs:
            spec["attrs"] = attrs
        with np.errstate(all="ignore"):
            value = np.asarray(REF[op](*[self.env[a] if isinstance(a, str) else a for a in args], **(attrs or {})))
        self.nodes[name] = spec
        self.env[name] = value
        self.order.append(name)
        self.used.update(a for a in args if isinstance(a, str))
        return name

    # one random op
    def step(self, op=None):
        """One node of ``op`` (drawn from every op when None), or of a fallback op when no value fits it."""
        d = self.draw
        op = d(st.sampled_from(CHOICES)) if op is None else op
        if op in UNARY:
            x = self.pick(_safe(op, 0))
            if x is None:
                return self.node("softplus", [self.pick()])
            attrs = {a: d(st.sampled_from(vs)) for a, vs in ROWS[op].gen_attrs.items() if d(st.booleans())}
            return self.node(op, [x], attrs or None)
        if op == "pow":
            x = self.pick(lambda v: np.min(v, initial=1) > 0.1 and np.max(v, initial=0) < 10)
            if x is None:
                return self.node("sigmoid", [self.pick()])
            y = self.pick(lambda v: np.max(np.abs(v), initial=0) < 2 and _broadcasts(v.shape, self.env[x].shape))
            return self.node(op, [x, y if y is not None and d(st.booleans()) else d(st.sampled_from([2.0, 0.5, -1.5]))])
        if op in BINARY:
            x = self.pick(_safe(op, 0))
            y = self.pick(lambda v: _safe(op, 1)(v) and _broadcasts(v.shape, self.env[x].shape))
            if y is None or d(st.integers(0, 4)) == 0:
                y = d(st.sampled_from([0.5, -1.5, 3.0]))
            return self.node(op, [y, x] if d(st.booleans()) else [x, y])
        if op in REDUCE:
            x = self.pick()
            nd = self.env[x].ndim
            attrs = {}
            if nd and d(st.booleans()):
                axes = d(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
                axes = [a - nd if d(st.booleans()) else a for a in axes]
                attrs["axis"] = axes[0] if len(axes) == 1 and d(st.booleans()) else axes
            if d(st.booleans()):
                attrs["keepdims"] = d(st.booleans())
            return self.node(op, [x], attrs)
        if op in ("softmax", "log_softmax"):
            x = self.pick(lambda v: v.ndim >= 1)
            if x is None:
                return self.node("exp", [self.pick(lambda v: np.max(v, initial=0) < 10) or self.leaf((2,))])
            nd = self.env[x].ndim
            return self.node(op, [x], {"axis": d(st.integers(-nd, nd - 1))} if d(st.booleans()) else None)
        if op == "matmul":
            x = self.pick(lambda v: v.ndim >= 1)
            if x is None:
                x = self.leaf((3,))
            shape = self.env[x].shape
            k = d(st.sampled_from([None, 1, 2]))
            if d(st.booleans()):  # x @ W
                w = self.leaf((shape[-1],) if k is None else (shape[-1], k))
                return self.node(op, [x, w])
            m = shape[-2] if len(shape) >= 2 else shape[0]  # W @ x
            w = self.leaf((m,) if k is None else (k, m))
            return self.node(op, [w, x])
        if op == "transpose":
            x = self.pick(lambda v: v.ndim >= 2) or self.pick()
            nd = self.env[x].ndim
            axes = d(st.permutations(range(nd))) if nd and d(st.booleans()) else None
            return self.node(op, [x], {"axes": [int(a) for a in axes]} if axes is not None else None)
        if op == "reshape":
            x = self.pick()
            shape = self.env[x].shape
            return self.node(op, [x], {"shape": d(st.sampled_from([[-1], list(reversed(shape)), [1, *shape]]))})
        if op == "concat":
            x = self.pick(lambda v: v.ndim >= 1) or self.leaf((3,))
            shape = self.env[x].shape
            axis = d(st.integers(-len(shape), len(shape) - 1))
            others = [self.pick(lambda v, s=shape: v.shape == s) for _ in range(d(st.integers(0, 2)))]
            other_shape = list(shape)
            other_shape[axis] = 2
            return self.node(op, [x, *others, self.leaf(tuple(other_shape))], {"axis": axis})
        if op == "mse":
            x = self.pick()
            y = self.pick(lambda v: _broadcasts(v.shape, self.env[x].shape))
            return self.node(op, [x, y], {"reduction": d(st.sampled_from(["mean", "sum", "none"]))})
        if op == "l2":
            return self.node(op, [self.pick()])
        if op not in ("softmax_cross_entropy", "hinge"):
            return self.cnn_lesson_op(op)
        # the classification losses: logits of rank 2, integer labels or float targets
        x = self.pick(lambda v: v.ndim == 2 and v.shape[1] > 1)
        if x is None:
            base = self.pick(lambda v: v.ndim == 2) or self.leaf((2, 3))
            x = self.node("matmul", [base, self.leaf((self.env[base].shape[1], 4))])
        n, c = self.env[x].shape
        if d(st.booleans()):
            y = self.leaf((n,), value=self.rng.integers(0, c, size=n), dtype="int64")
        else:
            p = self.rng.uniform(0.1, 1.0, size=(n, c))
            y = self.leaf((n, c), value=p / p.sum(-1, keepdims=True))
        attrs = {"reduction": d(st.sampled_from(["mean", "sum", "none"]))}
        if op == "hinge" and d(st.booleans()):
            attrs["margin"] = d(st.sampled_from([0.5, 2.0]))
        return self.node(op, [x, y], attrs)

    def cnn_lesson_op(self, op):
        """The ops a CNN lesson needs, and their neighbours."""
        d = self.draw
        if op == "clip":
            bounds = {"min": d(st.sampled_from([None, -1.0, 0.5])), "max": d(st.sampled_from([None, 1.5]))}
            return self.node(op, [self.pick()], {k: v for k, v in bounds.items() if v is not None})
        if op == "where":
            x = self.pick()
            shape = self.env[x].shape
            y = self.pick(lambda v: _broadcasts(v.shape, shape)) if d(st.booleans()) else d(st.sampled_from([0.0, 2.5]))
            cond = self.leaf(shape, value=self.rng.uniform(size=shape) > 0.5, dtype="bool")
            return self.node(op, [cond, x, y] if d(st.booleans()) else [cond, y, x])
        if op in ("var", "std"):  # distinct values: no zero spread, where std has no derivative
            x = self.pick(lambda v: v.size >= 2 and np.unique(v).size == v.size) or self.leaf((4,))
            shape = self.env[x].shape
            axes = [i for i, n in enumerate(shape) if n >= 2]
            attrs = {"ddof": d(st.sampled_from([0, 1])), "keepdims": d(st.booleans())}
            if d(st.booleans()):
                attrs["axis"] = d(st.sampled_from(axes))
            return self.node(op, [x], attrs)
        if op == "stack":
            x = self.pick()
            shape = self.env[x].shape
            others = [self.pick(lambda v, s=shape: v.shape == s) for _ in range(d(st.integers(0, 2)))]
            return self.node(op, [x, *others], {"axis": d(st.integers(-len(shape) - 1, len(shape)))})
        if op == "expand_dims":
            x = self.pick()
            nd = self.env[x].ndim
            return self.node(op, [x], {"axis": d(st.integers(-nd - 1, nd))})
        if op == "squeeze":
            x = self.pick(lambda v: 1 in v.shape) or self.node("expand_dims", [self.pick()], {"axis": 0})
            ones = [i for i, n in enumerate(self.env[x].shape) if n == 1]
            return self.node(op, [x], {"axis": d(st.sampled_from(ones))} if d(st.booleans()) else None)
        if op == "slice":
            x = self.pick(lambda v: v.ndim >= 1) or self.leaf((4,))
            shape = self.env[x].shape
            bound = st.one_of(st.none(), st.integers(-4, 4))
            slices = [[d(bound), d(bound), d(st.sampled_from([None, 1, 2, -1, -2]))]
                      for _ in range(d(st.integers(0, len(shape))))]
            if self.env[x][tuple(slice(*b) for b in slices)].size == 0:
                slices = slices[:0]  # no empty results: the float32 comparisons take maxima
            return self.node(op, [x], {"slices": slices})
        if op == "take":
            x = self.pick(lambda v: v.ndim >= 1) or self.leaf((4,))
            shape = self.env[x].shape
            axis = d(st.integers(-len(shape), len(shape) - 1))
            n = shape[axis]
            ishape = d(st.sampled_from([(), (3,), (2, 2)]))
            idx = self.leaf(ishape, value=self.rng.integers(-n, n, size=ishape), dtype="int64")
            return self.node(op, [x, idx], {"axis": axis})
        if op == "one_hot":
            c = d(st.integers(1, 4))
            labels = self.leaf((3,), value=self.rng.integers(0, c, size=3), dtype="int64")
            return self.node(op, [labels], {"num_classes": c})
        if op == "binary_cross_entropy":
            z = self.pick()
            shape = self.env[z].shape
            y = self.leaf(shape, value=self.rng.uniform(size=shape))
            return self.node(op, [z, y], {"reduction": d(st.sampled_from(["mean", "sum", "none"]))})
        if op not in ("conv2d", "max_pool2d"):
            raise AssertionError(f"RandomGraph cannot build op {op!r}: give its row in tests/optable.py gen='unary', "
                                 f"'binary' or 'reduce', or give the op a builder here")
        x = self.pick(lambda v: v.ndim == 4 and min(v.shape[2:]) >= 3) or self.leaf((2, 2, 5, 4))
        n, c, h, w = self.env[x].shape
        if op == "max_pool2d":
            k = d(st.sampled_from([1, 2, 3]))
            attrs = {"kernel": k, "stride": d(st.sampled_from([None, 1, 2])), "padding": d(st.integers(0, k // 2))}
            return self.node(op, [x], {a: v for a, v in attrs.items() if v is not None})
        groups = d(st.sampled_from([g for g in (1, 2) if c % g == 0]))
        k, dil, pad = d(st.sampled_from([1, 2, 3])), d(st.sampled_from([1, 2])), d(st.sampled_from([0, 1]))
        if dil * (k - 1) + 1 > min(h, w) + 2 * pad:
            dil = 1
        o = groups * d(st.integers(1, 2))
        args = [x, self.leaf((o, c // groups, k, k))] + ([self.leaf((o,))] if d(st.booleans()) else [])
        return self.node(op, args, {"stride": d(st.sampled_from([1, 2, [1, 2]])), "padding": pad, "dilation": dil,
                                    "groups": groups})

    def finish(self):
        """Every node no other node uses is summed into the scalar loss (so each one matters)."""
        ends = [n for n in self.order if n not in self.used]
        total = None
        for e in ends:
            s = self.node("sum", [e])
            total = s if total is None else self.node("add", [total, s])
        self.loss = self.node("mul", [total, self.draw(st.sampled_from([1.0, -0.5]))])
        return {"graphspec": "1", "inputs": self.inputs, "params": self.params, "nodes": self.nodes,
                "outputs": list(self.order), "loss": self.loss}

    def reference(self, leaves, override=None):
        """Every node, in autograd, from the float leaves (a tuple); ``override`` = (node, value)
        replaces one node's value (for d loss / d node)."""
        env = {n: v for n, v in self.env.items() if n not in self.order}
        env.update(zip(self.float_leaves, leaves, strict=True))
        for name in self.order:
            if override is not None and name == override[0]:
                env[name] = override[1]
                continue
            spec = self.nodes[name]
            env[name] = REF[spec["op"]](*[env[a] if isinstance(a, str) else a for a in spec["args"]],
                                        **spec.get("attrs", {}))
        return env


def random_graph(data, n_ops):
    g = RandomGraph(data, data.draw(st.integers(0, 2**32 - 1)))
    for shape in data.draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3)):
        g.leaf(shape)
    for _ in range(n_ops):
        g.step()
    return g, g.finish()


def _finite(g):
    return all(np.all(np.isfinite(v)) for v in g.env.values())


# derandomized: the same examples on every run, so the suite is never flaky for others; run with
# GRAPHSPEC_HYPOTHESIS_EXAMPLES=2000 (random) to search wider
_WIDE = int(os.environ.get("GRAPHSPEC_HYPOTHESIS_EXAMPLES", "0"))
RANDOM = settings(max_examples=_WIDE or 150, deadline=None, derandomize=not _WIDE, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@RANDOM
@given(st.data(), st.integers(1, 8))
def test_random_graphs_values_and_gradients_match_autograd(data, n_ops):
    g, spec = random_graph(data, n_ops)
    if not _finite(g):
        return  # a reference overflow (rare): nothing to compare
    graph = graphspec.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no non-finite warning on a finite graph
        result = graph.evaluate()
    for name in g.order:
        assert_close(result.values[name], g.env[name], what=f"value of {name} ({spec['nodes'][name]['op']})")

    leaves = tuple(g.env[n] for n in g.float_leaves)
    back, loss = make_vjp(lambda xs: g.reference(xs)[g.loss])(leaves)
    assert_close(result.loss, loss, what="loss")
    for name, ref in zip(g.float_leaves, back(np.ones(())), strict=True):
        assert_close(result.grads[name], ref, what=f"gradient of {name}")
    assert set(result.grads) >= set(g.float_leaves)
    assert not any(n in result.grads for n in g.inputs if g.env[n].dtype.kind == "i"), "an integer got a gradient"

    # value_and_grad and run write into dead buffers and release values as they go (Plan
    # reuse/release; every node is an output above, so nothing was reused there): the same
    # numbers to the last bit, and no leaf touched
    lean = graphspec.load({k: v for k, v in spec.items() if k != "outputs"})
    leaves_before = {n: np.copy(v) for n, v in lean.defaults.items() if v is not None}
    loss2, grads2 = lean.value_and_grad(check_finite="off")
    np.testing.assert_array_equal(loss2, result.loss)
    assert set(grads2) == set(lean.wrt)
    for name in grads2:
        np.testing.assert_array_equal(grads2[name], result.grads[name], err_msg=f"gradient of {name} with reuse")
    for name, v in lean.run(check_finite="off").items():
        np.testing.assert_array_equal(v, result.values[name], err_msg=f"output {name} with reuse")
    for name, v in leaves_before.items():
        np.testing.assert_array_equal(lean.defaults[name], v, err_msg=f"leaf {name} was written")

    # one node's own gradient: d loss / d node, with the node's value cut loose
    node = data.draw(st.sampled_from(g.order))
    back, _ = make_vjp(lambda v: g.reference(leaves, override=(node, v))[g.loss])(g.env[node])
    ref = back(np.ones(()))
    assert_close(np.broadcast_to(result.grads.get(node, 0.0), np.shape(ref)), ref, what=f"gradient of node {node}")


def _on_path(g, target):
    """The nodes the reference's ``target`` depends on, and itself."""
    seen, todo = set(), [target]
    while todo:
        n = todo.pop()
        if n in seen or n not in g.nodes:
            continue
        seen.add(n)
        todo += [a for a in g.nodes[n]["args"] if isinstance(a, str)]
    return seen


@RANDOM
@given(st.data(), st.integers(1, 8))
def test_random_graphs_every_node_on_the_loss_path_has_its_cotangent(data, n_ops):
    """evaluate().grads[n] is d loss / d n for every node on the loss's path, whichever leaves
    are differentiated (a node with no differentiated leaf below read 0), and nodes off the
    path have no entry. The reference: autograd's gradient with respect to a zero added to
    each node's value (one backward pass gives them all)."""
    g, spec = random_graph(data, n_ops)
    off = g.node("tanh", [g.pick()])  # two nodes the loss does not use
    g.node("mul", [off, 2.0])
    spec["outputs"] = list(g.order)
    if not _finite(g):
        return
    frozen = data.draw(st.lists(st.sampled_from(g.float_leaves), unique=True))
    for n in frozen:
        (spec["inputs"] if n in spec["inputs"] else spec["params"])[n]["grad"] = False
    graph = graphspec.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = graph.evaluate()

    def loss_with(eps):
        env = {n: v for n, v in g.env.items() if n not in g.order}
        for name, e in zip(g.order, eps, strict=True):
            node = g.nodes[name]
            env[name] = REF[node["op"]](*[env[a] if isinstance(a, str) else a for a in node["args"]],
                                        **node.get("attrs", {})) + e
        return env[g.loss]

    back, _ = make_vjp(loss_with)(tuple(np.zeros(np.shape(g.env[n])) for n in g.order))
    refs = back(np.ones(()))
    path = _on_path(g, g.loss)
    assert len(path) < len(g.order)  # the two off the path
    for name, ref in zip(g.order, refs, strict=True):
        if name in path:
            assert name in result.grads, f"node {name} on the loss's path has no cotangent"
            assert_close(result.grads[name], ref, what=f"d loss / d node {name} ({g.nodes[name]['op']})")
        else:
            assert name not in result.grads, f"node {name} is not on the loss's path"
    assert not any(n in result.grads for n in frozen)
    # the fast path never computes them: value_and_grad's leaf gradients are the same bits
    _, grads = graph.value_and_grad(check_finite="off")
    for n in graph.wrt:
        np.testing.assert_array_equal(grads[n], result.grads[n], err_msg=n)


def test_value_and_grad_never_builds_the_all_node_backward_pass():
    graph = load(**MLP)
    graph.value_and_grad()
    graph.grad()
    assert "backward_steps_all" not in vars(graph.plan)
    graph.evaluate()
    assert "backward_steps_all" in vars(graph.plan)


@RANDOM
@given(st.data(), st.integers(1, 8))
def test_random_graphs_forward_mode_matches_autograd(data, n_ops):
    g, spec = random_graph(data, n_ops)
    if not _finite(g):
        return
    graph = graphspec.load(spec)
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    chosen = data.draw(st.lists(st.sampled_from(g.float_leaves), min_size=1, unique=True))
    tangents = {n: rng.normal(size=g.env[n].shape) for n in chosen}
    outs, touts = graph.jvp(tangents)

    leaves = tuple(g.env[n] for n in g.float_leaves)
    dirs = tuple(tangents.get(n, np.zeros(g.env[n].shape)) for n in g.float_leaves)
    names = [*g.order]

    def flat(xs):
        env = g.reference(xs)
        return anp.concatenate([anp.ravel(env[n]) for n in names])

    _, ref = make_jvp(flat)(leaves)(dirs)
    offsets = np.cumsum([0] + [g.env[n].size for n in names])
    for i, n in enumerate(names):
        assert_close(outs[n], g.env[n], what=f"value of {n}")
        assert_close(np.reshape(touts[n], -1), ref[offsets[i]:offsets[i + 1]], what=f"tangent of {n}")


def test_forward_mode_is_the_transpose_of_reverse_mode():
    """<v, J u> from graph.jvp equals <J^T v, u> from graph.grad (a random-direction check)."""
    spec = {"graphspec": "1", "params": {"W": {"shape": [3, 4], "init": {"normal": 1.0}},
                                         "b": {"shape": [4], "init": {"normal": 1.0}}},
            "inputs": {"X": {"value": np.random.default_rng(0).normal(size=(5, 3)).tolist()},
                       "y": {"value": [0, 1, 3, 2, 1], "dtype": "int64"}},
            "nodes": {"z": {"op": "matmul", "args": ["X", "W"]}, "a": {"op": "add", "args": ["z", "b"]},
                      "h": {"op": "tanh", "args": ["a"]},
                      "l": {"op": "softmax_cross_entropy", "args": ["h", "y"]}},
            "loss": "l"}
    graph = graphspec.load(spec)
    rng = np.random.default_rng(1)
    u = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    _, tan = graph.jvp(u)
    grads = graph.grad()
    assert tan["l"] == pytest.approx(sum(np.sum(grads[k] * u[k]) for k in u), rel=1e-12)


# --- fan-out, seeds, constants -----------------------------------------------------------------

def test_fan_out_accumulates_and_seed_array_is_the_upstream_gradient():
    x = np.array([0.5, -1.0, 2.0])
    seed = np.array([1.0, -2.0, 0.5])
    graph = load(inputs={"x": {"value": x.tolist()}},
                 nodes={"a": {"op": "mul", "args": ["x", "x"]}, "b": {"op": "sin", "args": ["x"]},
                        "c": {"op": "add", "args": ["a", "b"]}, "d": {"op": "mul", "args": ["c", "x"]},
                        "e": {"op": "maximum", "args": ["d", 0.25]}},
                 loss={"node": "e", "seed": seed.tolist()})
    f = lambda x: anp.maximum((x * x + anp.sin(x)) * x, 0.25)
    back, _ = make_vjp(f)(x)
    assert_close(graph.grad()["x"], back(seed))


def test_constant_args_follow_numpy_broadcasting_and_get_no_gradient():
    graph = load(params={"w": {"value": [[1.0, 2.0, 3.0]]}},
                 nodes={"p": {"op": "pow", "args": [2.0, "w"]}, "q": {"op": "sub", "args": [10, "p"]},
                        "r": {"op": "sum", "args": ["q"]}}, loss="r")
    v, grads = graph.value_and_grad()
    assert v == pytest.approx(30 - 14)
    assert_close(grads["w"], -np.log(2) * 2.0 ** np.array([[1.0, 2.0, 3.0]]))
    assert list(grads) == ["w"]


# --- no recursion --------------------------------------------------------------------------------

def test_a_100000_node_chain_runs_forward_backward_and_forward_mode():
    n = 100_000
    nodes, prev = {}, "x"
    for i in range(n):  # alternating add 0.5 and mul by 0.9999
        nodes[f"n{i}"] = {"op": "add", "args": [prev, 0.5]} if i % 2 == 0 else {"op": "mul", "args": [prev, 0.9999]}
        prev = f"n{i}"
    nodes = dict(reversed(nodes.items()))  # listed last-first: the order comes from the graph, not the file
    graph = load(inputs={"x": {"value": 1.5}}, nodes=nodes, loss=prev)
    value, slope = 1.5, 1.0
    for i in range(n):
        value, slope = (value + 0.5, slope) if i % 2 == 0 else (value * 0.9999, slope * 0.9999)
    v, grads = graph.value_and_grad()
    assert v == pytest.approx(value, rel=1e-12)
    assert grads["x"] == pytest.approx(slope, rel=1e-12)
    _, tan = graph.jvp({"x": 1.0})
    assert tan[prev] == pytest.approx(slope, rel=1e-12)


# --- non-finite values ---------------------------------------------------------------------------

NAN_SPEC = {"inputs": {"x": {"value": [1.0, -1.0]}},
            # b listed first, but a (the log) runs first and is the node that produced the nan
            "nodes": {"b": {"op": "mul", "args": ["a", 2.0]}, "a": {"op": "log", "args": ["x"]},
                      "c": {"op": "sum", "args": ["b"]}},
            "loss": "c"}


def test_nonfinite_value_warns_naming_the_first_node_and_its_op():
    graph = load(**NAN_SPEC)
    with pytest.warns(NonFiniteWarning, match=r"nodes\.a\b.*log") as rec:
        out = graph.run()
    assert np.isnan(out["c"])
    assert "nodes.b" not in str(rec[0].message) and "nodes.c" not in str(rec[0].message)


def test_nonfinite_value_raises_with_check_finite_raise():
    graph = load(**NAN_SPEC)
    with pytest.raises(NonFiniteError, match="log") as e:
        graph.value_and_grad(check_finite="raise")
    assert e.value.loc == "nodes.a"


def test_nonfinite_overflow_names_exp():
    graph = load(inputs={"x": {"value": [1.0, 1000.0]}},
                 nodes={"e": {"op": "exp", "args": ["x"]}, "s": {"op": "sum", "args": ["e"]}})
    with pytest.raises(NonFiniteError, match=r"inf.*exp") as e:
        graph.run(check_finite="raise")
    assert e.value.loc == "nodes.e"


def test_check_finite_off_is_silent():
    graph = load(**NAN_SPEC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(graph.run(check_finite="off")["c"])


def test_nonfinite_gradient_at_a_leaf_is_reported():
    # sqrt(0) is 0, fine; its slope at 0 is inf, and that inf lands on the leaf x only
    graph = load(inputs={"x": {"value": [0.0, 1.0]}},
                 nodes={"s": {"op": "sqrt", "args": ["x"]}, "t": {"op": "sum", "args": ["s"]}}, loss="t")
    with pytest.raises(NonFiniteError, match="sqrt"):
        graph.grad(check_finite="raise")


def test_nonfinite_gradient_names_the_op_whose_vjp_produced_it():
    # every value is finite (sqrt(0) = 0), but sqrt's slope at 0 is inf: the inf is born in
    # sqrt's VJP and flows on to d, c and x
    graph = load(inputs={"x": {"value": 2.0}},
                 nodes={"c": {"op": "sub", "args": ["x", "x"]}, "d": {"op": "mul", "args": ["c", 3.0]},
                        "s": {"op": "sqrt", "args": ["d"]}, "m": {"op": "mul", "args": ["s", 3.0]}}, loss="m")
    with pytest.raises(NonFiniteError, match="sqrt") as e:
        graph.grad(check_finite="raise")
    assert e.value.loc == "nodes.s"


def test_nonfinite_input_is_named_as_the_input():
    graph = load(inputs={"x": {"shape": [2]}}, nodes={"a": {"op": "add", "args": ["x", 1.0]}})
    with pytest.raises(NonFiniteError) as e:
        graph.run({"x": [np.nan, 1.0]}, check_finite="raise")
    assert "add" not in str(e.value) and "x" in (e.value.loc or "")


def test_nonfinite_gradient_is_reported():
    graph = load(inputs={"x": {"value": 2.0}},
                 nodes={"c": {"op": "sub", "args": ["x", "x"]}, "d": {"op": "mul", "args": ["c", 3.0]},
                        "s": {"op": "sqrt", "args": ["d"]}, "m": {"op": "mul", "args": ["s", 3.0]}}, loss="m")
    assert graph.run()["m"] == 0.0
    with pytest.warns(NonFiniteWarning, match="gradient"):
        graph.grad()
    with pytest.raises(NonFiniteError, match="gradient"):
        graph.grad(check_finite="raise")


# --- run-time inputs -----------------------------------------------------------------------------

MLP = {"inputs": {"X": {"shape": ["N", 2], "value": [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]},
                  "y": {"shape": ["N"], "dtype": "int64", "value": [0, 1, 1, 0]}},
       "params": {"W": {"shape": [2, 3], "init": {"normal": 0.5}}, "b": {"shape": [3], "init": "zeros"},
                  "V": {"shape": [3, 2], "init": "xavier"}},
       "nodes": {"z": {"op": "matmul", "args": ["X", "W"]}, "a": {"op": "add", "args": ["z", "b"]},
                 "h": {"op": "sigmoid", "args": ["a"]}, "s": {"op": "matmul", "args": ["h", "V"]},
                 "l": {"op": "softmax_cross_entropy", "args": ["s", "y"]}},
       "loss": "l"}


def _mlp_reference(X, y, W, b, V):
    h = REF["sigmoid"](X @ W + b)
    return REF["softmax_cross_entropy"](REF["matmul"](h, V), y)


def test_runtime_inputs_override_the_spec_and_bind_symbolic_dims():
    graph = load(**MLP)
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(7, 2)), rng.integers(0, 2, size=7)
    params = {k: graph.params[k] for k in ("W", "b", "V")}
    v, grads = graph.value_and_grad({"X": X, "y": y})
    assert v == pytest.approx(_mlp_reference(X, y, **params), rel=1e-12)
    for i, k in enumerate(("W", "b", "V")):
        back, _ = make_vjp(lambda p, i=i: _mlp_reference(X, y, *[p if j == i else params[m] for j, m in
                                                               enumerate(("W", "b", "V"))]))(params[k])
        assert_close(grads[k], back(1.0))
    # the spec's own values are back when nothing is given, and a list works as well as an array
    assert graph.value_and_grad()[0] == pytest.approx(_mlp_reference(np.array(MLP["inputs"]["X"]["value"]),
                                                                     np.array([0, 1, 1, 0]), **params), rel=1e-12)
    assert graph.run({"X": X.tolist(), "y": y.tolist()})["l"] == pytest.approx(v, rel=1e-15)


def test_runtime_param_override():
    graph = load(**MLP)
    W = np.ones((2, 3))
    v = graph.run({"W": W})["l"]
    X, y = np.array(MLP["inputs"]["X"]["value"]), np.array([0, 1, 1, 0])
    assert v == pytest.approx(_mlp_reference(X, y, W, graph.params["b"], graph.params["V"]), rel=1e-12)


@pytest.mark.parametrize(("given", "match"), [
    ({"X": np.zeros((4, 3))}, r"X.*\[4, 3\].*\['N', 2\]"),  # a fixed dim
    ({"X": np.zeros((5, 2))}, r"'N'"),  # N = 5 here, but y (from the spec) has N = 4
    ({"X": np.zeros((3, 2)), "y": np.zeros(4, dtype=np.int64)}, r"'N'"),
    ({"X": np.zeros(2)}, r"X"),  # a rank
    ({"y": [0.5, 1, 1, 0]}, r"y.*whole"),  # int64 values must be whole numbers
    ({"W": np.zeros((3, 3))}, r"W"),
])
def test_runtime_inputs_are_shape_and_dtype_checked(given, match):
    graph = load(**MLP)
    with pytest.raises(InputError, match=match):
        graph.run(given)


def test_unknown_and_missing_runtime_inputs():
    graph = load(inputs={"x": {"shape": [2]}}, nodes={"s": {"op": "sum", "args": ["x"]}})
    with pytest.raises(InputError, match="no value"):
        graph.run()
    with pytest.raises(InputError, match="did you mean 'x'"):
        graph.run({"xx": [1.0, 2.0]})
    assert graph.run({"x": [1.0, 2.0]})["s"] == 3.0


def test_integer_labels_get_no_gradient():
    graph = load(**MLP)
    grads = graph.grad()
    assert set(grads) == {"W", "b", "V", "X"}
    result = graph.evaluate()
    assert "y" not in result.grads
    with pytest.raises(InputError):
        graph.jvp({"y": np.ones(4)})


def test_grad_false_input_gets_no_gradient():
    spec = {**MLP, "inputs": {**MLP["inputs"], "X": {**MLP["inputs"]["X"], "grad": False}}}
    assert set(load(**spec).grad()) == {"W", "b", "V"}


# --- float32 -------------------------------------------------------------------------------------

def test_float32_graph_stays_float32():
    f32 = {k: {**v, "dtype": "float32"} for k, v in MLP["params"].items()}
    spec = {**MLP, "params": f32, "inputs": {**MLP["inputs"], "X": {**MLP["inputs"]["X"], "dtype": "float32"}}}
    graph = load(**spec)
    result = graph.evaluate()
    for name in ("z", "a", "h", "s", "l"):
        assert result.values[name].dtype == np.float32, name
    for name, g in result.grads.items():
        assert np.asarray(g).dtype == np.float32, name
    params64 = {k: np.asarray(v, np.float64) for k, v in graph.params.items()}
    X, y = np.array(MLP["inputs"]["X"]["value"]), np.array([0, 1, 1, 0])
    assert float(result.loss) == pytest.approx(_mlp_reference(X, y, **params64), rel=1e-5)
    back, _ = make_vjp(lambda W: _mlp_reference(X, y, W, params64["b"], params64["V"]))(params64["W"])
    np.testing.assert_allclose(result.grads["W"], back(1.0), rtol=1e-4, atol=1e-6)
    _, tan = graph.jvp({"W": np.ones((2, 3), np.float32)})
    assert np.asarray(tan["l"]).dtype == np.float32


def test_float32_with_a_float64_leaf_promotes_like_numpy():
    graph = load(inputs={"a": {"value": [1.0, 2.0], "dtype": "float32"}, "b": {"value": [1.0, 2.0]},
                         "n": {"value": [1, 2], "dtype": "int64"}, "m": {"value": [True, False], "dtype": "bool"}},
                 nodes={"c": {"op": "mul", "args": ["a", "b"]}, "d": {"op": "mul", "args": ["a", 0.5]},
                        "e": {"op": "add", "args": ["c", "d"]}, "l": {"op": "sum", "args": ["e"]},
                        "an": {"op": "mul", "args": ["a", "n"]}, "am": {"op": "mul", "args": ["a", "m"]}}, loss="l")
    r = graph.evaluate()
    assert r.values["c"].dtype == np.float64 and r.values["d"].dtype == np.float32
    assert r.values["an"].dtype == np.float64 and r.values["am"].dtype == np.float32  # int64 promotes, bool does not
    assert r.grads["a"].dtype == np.float32 and r.grads["b"].dtype == np.float64
    for name, aval in graph.avals.items():
        assert np.asarray(r.values[name]).dtype.name == aval.dtype, name


# --- the shape checker agrees with what runs ----------------------------------------------------

@RANDOM
@given(st.data(), st.integers(1, 6))
def test_inferred_shapes_and_dtypes_match_the_run(data, n_ops):
    _, spec = random_graph(data, n_ops)
    graph = graphspec.load(spec)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = graph.evaluate(check_finite="off").values
    for name, aval in graph.avals.items():
        assert tuple(aval.shape) == np.shape(values[name]), name
        assert aval.dtype == np.asarray(values[name]).dtype.name, name


@settings(max_examples=5, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_every_op_appears_in_random_graphs(data):
    """The generator draws every registered op, and builds a node of it on values every builder's
    guards admit (so a new op is not silently untested here)."""
    from graphspec.ops import OPS
    assert sorted(CHOICES) == sorted(OPS)
    for op in CHOICES:
        g = RandomGraph(data, 0)
        g.leaf((2, 3), value=np.random.default_rng(1).uniform(0.5, 2.0, size=(2, 3)))
        made = g.step(op)
        assert g.nodes[made]["op"] == op, op


def test_bool_masks_multiply_and_count_but_do_not_compute():
    mask = {"value": [True, False, True], "dtype": "bool"}
    graph = load(inputs={"x": {"value": [1.0, 2.0, 3.0]}, "m": mask},
                 nodes={"xm": {"op": "mul", "args": ["x", "m"]}, "n": {"op": "sum", "args": ["m"]},
                        "l": {"op": "sum", "args": ["xm"]}}, loss="l")
    out = graph.run()
    assert out["n"] == 2 and np.asarray(out["n"]).dtype == np.int64 and graph.avals["n"].dtype == "int64"
    grads = graph.grad()
    assert list(grads) == ["x"]
    np.testing.assert_array_equal(grads["x"], [1.0, 0.0, 1.0])
    for op in ("exp", "neg", "sigmoid", "softmax", "l2"):
        with pytest.raises(graphspec.ShapeError, match=rf"{op}.*bool") as e:
            load(inputs={"m": mask}, nodes={"e": {"op": op, "args": ["m"]}})
        assert e.value.loc == "nodes.e"


@RANDOM
@given(st.data(), st.integers(1, 6))
def test_random_graphs_with_symbolic_input_shapes(data, n_ops):
    """The same random graphs with every float input declared by symbolic dims and no value,
    the values given at run time: the static check accepts them, and the run agrees."""
    g, spec = random_graph(data, n_ops)
    given, inputs = {}, {}
    for name, decl in spec["inputs"].items():
        v = g.env[name]
        if v.dtype.kind != "f":
            inputs[name] = decl
            continue
        inputs[name] = {"shape": [d if d == 1 else f"{name}_{i}" for i, d in enumerate(v.shape)]}
        given[name] = v
    graph = graphspec.load({**spec, "inputs": inputs})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = graph.evaluate(given, check_finite="off", with_grads=False).values
    for name in g.order:
        assert_close(values[name], g.env[name], what=f"value of {name}")


def test_runtime_shapes_are_rechecked_per_node():
    graph = load(inputs={"X": {"shape": ["N", "K"]}, "Y": {"shape": ["M"]}},
                 params={"W": {"shape": [3, 2], "init": "zeros"}},
                 nodes={"m": {"op": "matmul", "args": ["X", "W"]}, "s": {"op": "add", "args": ["Y", 1.0]},
                        "a": {"op": "add", "args": ["m", "s"]}})
    assert graph.avals["m"].shape == ("N", 2)
    assert graph.run({"X": np.ones((4, 3)), "Y": np.ones(2)})["a"].shape == (4, 2)
    with pytest.raises(graphspec.ShapeError, match=r"matmul cannot multiply \(4, 5\) by \(3, 2\)") as e:
        graph.run({"X": np.ones((4, 5)), "Y": np.ones(2)})
    assert e.value.loc == "nodes.m"
    with pytest.raises(graphspec.ShapeError, match=r"cannot broadcast \(4, 2\) with \(3,\)") as e:
        graph.run({"X": np.ones((4, 3)), "Y": np.ones(3)})
    assert e.value.loc == "nodes.a"


@RANDOM
@given(st.data(), st.integers(1, 6))
def test_random_graphs_in_float32_stay_float32(data, n_ops):
    """The random graphs with every float leaf declared float32: every float node, gradient and
    tangent is float32 (the static dtypes say so too), and the values are near the float64 ones."""
    g, spec = random_graph(data, n_ops)
    if not _finite(g):
        return
    for kind in ("inputs", "params"):
        for decl in spec[kind].values():
            if "dtype" not in decl:
                decl["dtype"] = "float32"
    for node in spec["nodes"].values():  # one_hot makes floats of its own: float32 ones too
        if node["op"] == "one_hot":
            node["attrs"]["dtype"] = "float32"
    graph = graphspec.load(spec)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = graph.evaluate(check_finite="off")
        _, tans = graph.jvp({n: np.ones(g.env[n].shape, np.float32) for n in g.float_leaves}, check_finite="off")
    for name in g.order:
        v = np.asarray(result.values[name])
        assert v.dtype.name == graph.avals[name].dtype, name
        if g.env[name].dtype.kind == "f":
            assert v.dtype == np.float32, f"{name} ({spec['nodes'][name]['op']}) is {v.dtype}"
            if np.all(np.isfinite(v)):
                np.testing.assert_allclose(v, g.env[name], rtol=1e-3, atol=1e-3 * max(1.0, np.max(np.abs(g.env[name]))))
    for name, grad in result.grads.items():
        assert np.asarray(grad).dtype == np.float32, f"gradient of {name} is {np.asarray(grad).dtype}"
    assert np.asarray(tans[g.loss]).dtype == np.float32
    # with buffers reused and values released (float32 results written into float32 buffers): the same bits
    lean = graphspec.load({k: v for k, v in spec.items() if k != "outputs"})
    with np.errstate(all="ignore"):
        loss, grads = lean.value_and_grad(check_finite="off")
    np.testing.assert_array_equal(loss, result.loss)
    for name, grad in grads.items():
        assert grad.dtype == result.grads[name].dtype
        np.testing.assert_array_equal(grad, result.grads[name], err_msg=f"gradient of {name} with reuse")


def test_a_label_out_of_range_is_an_input_error_at_its_node():
    graph = load(**MLP)
    with pytest.raises(InputError, match="label 2 is out of range for 2 classes") as e:
        graph.run({"y": [0, 1, 2, 0]})
    assert e.value.loc == "nodes.l"
    with pytest.raises(InputError, match="label -1 is out of range"):
        graph.grad({"y": [0, -1, 1, 0]})  # negative labels do not wrap around


# --- buffer reuse and early release (Plan.memory) ---------------------------------------------

def _reused(graph) -> list[str]:
    p = graph.plan
    return [p.names[s.out] for s, s0 in zip(p.memory.steps, p.steps, strict=True) if s.forward is not s0.forward]


def _same_as_evaluate(graph, **inputs):
    full = graph.evaluate(inputs, check_finite="off")
    loss, grads = graph.value_and_grad(inputs, check_finite="off")
    np.testing.assert_array_equal(loss, full.loss)
    for name, g in grads.items():
        np.testing.assert_array_equal(g, full.grads[name], err_msg=f"gradient of {name}")
    return loss, grads


def test_a_result_goes_into_a_dead_buffer_only_when_no_vjp_reads_it():
    x = np.array([0.5, -1.0, 2.0])
    spec = {"inputs": {"x": {"value": x.tolist()}, "y": {"value": [1.0, 2.0, 3.0]}},
            "nodes": {"e": {"op": "exp", "args": ["x"]},
                      "z": {"op": "add", "args": ["e", "y"]},  # exp's VJP reads e: z gets a buffer of its own
                      "t": {"op": "tanh", "args": ["z"]},  # tanh's VJP reads z: so does t
                      "r": {"op": "relu", "args": ["t"]},  # relu's reads r, tanh's not t: r goes into t
                      "m": {"op": "mul", "args": ["r", "r"]},  # r read twice (and by mul's VJP)
                      "s": {"op": "add", "args": ["m", "y"]},  # nothing reads m again: s goes into m
                      "l": {"op": "sum", "args": ["s"]}}, "loss": "l"}
    graph = load(**spec)
    assert _reused(graph) == ["r", "s"]
    _, grads = _same_as_evaluate(graph)
    y = np.array([1.0, 2.0, 3.0])
    back, _ = make_vjp(lambda v: anp.sum(anp.maximum(anp.tanh(anp.exp(v) + y), 0) ** 2 + y))(x)
    assert_close(grads["x"], back(np.ones(())))


def test_a_value_read_by_two_steps_is_not_written_over():
    spec = {"inputs": {"x": {"value": [0.5, -1.0, 2.0]}, "y": {"value": [1.0, 2.0, 3.0]}},
            "nodes": {"a": {"op": "tanh", "args": ["x"]}, "b": {"op": "add", "args": ["a", "y"]},
                      "c": {"op": "sub", "args": ["a", "b"]}, "l": {"op": "sum", "args": ["c"]}}, "loss": "l"}
    graph = load(**spec)
    assert "b" not in _reused(graph)
    loss, _ = _same_as_evaluate(graph)
    assert loss == -6.0  # sum(a - (a + y))


def test_reuse_falls_back_when_runtime_shapes_broadcast_past_the_buffer():
    """At load, X's value makes h (3, 3) like h + B; at run time X is (1, 3) and h + B is not."""
    spec = {"inputs": {"X": {"shape": ["N", 3], "value": np.ones((3, 3)).tolist()}},
            "params": {"B": {"value": np.arange(9.0).reshape(3, 3).tolist()}},
            "nodes": {"h": {"op": "tanh", "args": ["X"]}, "z": {"op": "add", "args": ["h", "B"]},
                      "l": {"op": "sum", "args": ["z"]}}, "loss": "l"}
    graph = load(**spec)
    assert _reused(graph) == ["z"]
    x1 = np.array([[0.1, 0.2, 0.3]])
    loss, grads = _same_as_evaluate(graph, X=x1)
    assert_close(loss, 3 * np.tanh(x1).sum() + 36.0)
    assert_close(grads["X"], 3 * (1 - np.tanh(x1) ** 2))
    _same_as_evaluate(graph)  # and the load-time shapes still reuse


def test_release_leaves_only_leaf_cotangents_and_kept_values():
    spec = {"inputs": {"x": {"value": [0.5, -1.0, 2.0]}},
            "nodes": {"a": {"op": "tanh", "args": ["x"]}, "b": {"op": "exp", "args": ["a"]},
                      "l": {"op": "sum", "args": ["b"]},
                      "u": {"op": "sin", "args": ["x"]}, "o": {"op": "exp", "args": ["u"]}},  # off the loss's path
            "outputs": ["a", "o"], "loss": "l"}
    graph = load(**spec)
    plan = graph.plan
    vals = plan.forward([np.array([0.5, -1.0, 2.0])], reuse=True)
    ct = plan.backward(vals, "l", graph.seed, release=True)
    assert [plan.names[i] for i, v in enumerate(ct) if v is not None] == ["x"]
    assert [plan.names[i] for i, v in enumerate(vals) if v is not None] == ["x", "a", "l", "o"]


def test_value_and_grad_holds_less_memory_than_keeping_every_value():
    """An MLP at batch 512: buffers reused and values released make the peak of value_and_grad
    well under that of evaluate, which keeps every value and every cotangent (numpy reports its
    allocations to tracemalloc)."""
    import tracemalloc

    sizes = (64, 256, 256, 10)
    rng = np.random.default_rng(0)
    params = {f"W{i}": {"value": (rng.normal(size=(a, b)) / np.sqrt(a)).tolist()}
              for i, (a, b) in enumerate(itertools.pairwise(sizes), 1)}
    params |= {f"b{i}": {"value": np.zeros(b).tolist()} for i, b in enumerate(sizes[1:], 1)}
    graph = load(inputs={"X": {"shape": ["N", 64], "grad": False}, "y": {"shape": ["N"], "dtype": "int64"}},
                 params=params, nodes=mlp_nodes(sizes, "relu"), loss="loss")
    X, y = rng.normal(size=(512, 64)), rng.integers(0, 10, 512)
    peaks = []
    for call in (graph.value_and_grad, graph.evaluate):
        call({"X": X, "y": y})  # shapes checked once, outside the measurement
        tracemalloc.start()
        try:
            out = call({"X": X, "y": y})
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        del out
    assert peaks[0] < 0.6 * peaks[1], peaks


def test_a_nonfinite_value_in_a_reused_buffer_is_blamed_on_the_step_that_made_it():
    """z = a + c overflows into a's buffer (reuse); the warning names z (add), not a (matmul),
    because the search for the first non-finite value reruns the pass keeping every value."""
    spec = {"inputs": {"x": {"value": [[1e308, 1.0]]}, "W": {"value": [[1.0], [0.0]]}, "c": {"value": [1e308]}},
            "nodes": {"a": {"op": "matmul", "args": ["x", "W"]}, "z": {"op": "add", "args": ["a", "c"]},
                      "l": {"op": "sum", "args": ["z"]}}, "loss": "l"}
    graph = load(**spec)
    assert "z" in _reused(graph)
    for call in (graph.run, graph.value_and_grad):
        with pytest.warns(NonFiniteWarning, match="nodes.z.*produced by add"):
            call()


# --- a bug in an op's own code ---------------------------------------------------------------------

@pytest.fixture
def buggy_op():
    """Registers a one-arg op whose forward, VJP or JVP is given (default: y = 2x, right), and
    removes it afterwards."""
    from graphspec.ops import OPS
    from graphspec.ops.registry import defop

    made = []

    def make(forward=lambda x: 2 * x, vjp=lambda g, ans, x: 2 * g, jvp=lambda t, ans, x: 2 * t):
        name = f"buggy{len(made)}"
        defop(name, forward, vjp=(vjp,), jvp=(jvp,), shape=lambda avals, **_: avals[0], args=("x",))
        made.append(name)
        return name

    yield make
    for name in made:
        OPS.pop(name)


def _raise(exc):
    def f(*args, **kwargs):
        raise exc
    return f


RAISE_LINE = _raise.__code__.co_firstlineno + 2


def _spec_with(op):
    return {"inputs": {"x": {"value": [1.0, 2.0]}}, "nodes": {"z": {"op": op, "args": ["x"]},
                                                            "L": {"op": "sum", "args": ["z"]}}, "loss": "L"}


def test_an_op_whose_forward_raises_is_an_op_error_not_bad_input(buggy_op):
    from graphspec.errors import OpError

    graph = load(**_spec_with(buggy_op(forward=_raise(TypeError("boom")))))
    for call in (graph.run, graph.grad, graph.evaluate):
        with pytest.raises(OpError) as e:
            call()
        # an op from outside graphspec is named with the line that raised and the line that defined it
        assert re.fullmatch(r"internal error in op 'buggy0' at node 'z' \(forward\): TypeError: boom "
                            rf"\(at {re.escape(__file__)}:{RAISE_LINE}; op 'buggy0' defined at {re.escape(__file__)}:\d+\) "
                            r"\(this is a bug in the op, not in your spec; --traceback shows where\)", str(e.value))
        assert not isinstance(e.value, InputError) and e.value.exit_code == 1
        assert isinstance(e.value.__cause__, TypeError)  # the op's own traceback, for --traceback
        assert (e.value.op, e.value.node, e.value.phase) == ("buggy0", "z", "forward")


def test_numpy_value_errors_in_a_forward_stay_bad_input(buggy_op):
    """A ValueError is numpy's word on the values given (shapes, a label out of range)."""
    graph = load(**_spec_with(buggy_op(forward=_raise(ValueError("operands could not be broadcast")))))
    with pytest.raises(InputError, match=r"nodes\.z: buggy0 failed: operands could not be broadcast"):
        graph.run()


def test_a_forward_returning_garbage_is_blamed_on_its_op_not_the_reader(buggy_op):
    from graphspec.errors import OpError

    graph = load(**_spec_with(buggy_op(forward=lambda x: None)))
    with pytest.raises(OpError, match=r"op 'buggy0' at node 'z' \(forward\): the forward returned NoneType, not an array"):
        graph.value_and_grad()


@pytest.mark.parametrize("vjp, detail", [
    (_raise(IndexError("index 5 is out of bounds")), "IndexError: index 5 is out of bounds"),
    (lambda g, ans, x: np.ones(3), r"ValueError: the VJP returned shape \[3\] for an arg of shape \[2\]"),
    (lambda g, ans, x: None, "TypeError: the VJP returned None"),
])
def test_an_op_whose_vjp_raises_or_returns_garbage_is_an_op_error(buggy_op, vjp, detail):
    from graphspec.errors import OpError

    graph = load(**_spec_with(buggy_op(vjp=vjp)))
    assert graph.run()["L"] == 6.0  # the forward is fine
    for call in (graph.grad, graph.evaluate):
        with pytest.raises(OpError, match=r"op 'buggy0' at node 'z' \(VJP for 'x'\): " + detail):
            call()


def test_a_vjp_of_a_shape_unbroadcast_could_reshape_is_still_garbage(buggy_op):
    """(3, 2) for an arg of (2, 3): same size, so a reshape would have taken it silently."""
    from graphspec.errors import OpError

    spec = _spec_with(buggy_op(vjp=lambda g, ans, x: np.ones((3, 2))))
    spec["inputs"]["x"]["value"] = np.ones((2, 3)).tolist()
    with pytest.raises(OpError, match=r"returned shape \[3, 2\] for an arg of shape \[2, 3\]"):
        load(**spec).grad()


def test_an_op_whose_jvp_raises_is_an_op_error(buggy_op):
    from graphspec.errors import OpError

    graph = load(**_spec_with(buggy_op(jvp=_raise(KeyError("axis")))))
    with pytest.raises(OpError, match=r"op 'buggy0' at node 'z' \(JVP for 'x'\): KeyError: 'axis'"):
        graph.jvp({"x": np.ones(2)})


def test_the_cli_says_an_op_bug_in_one_line_and_shows_the_traceback_on_request(buggy_op, tmp_path, capsys):
    from graphspec.cli import main

    path = tmp_path / "s.json"
    path.write_text(json.dumps({"graphspec": "1", **_spec_with(buggy_op(forward=_raise(TypeError("boom"))))}))
    assert main(["run", str(path)]) == 1  # not 2: the spec is fine
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: internal error in op 'buggy0' at node 'z' (forward): TypeError: boom (at ")
    assert err.endswith("(this is a bug in the op, not in your spec; --traceback shows where)\n") and err.count("\n") == 1
    for argv in (["--traceback", "run", str(path)], ["run", str(path), "--traceback"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "TypeError: boom" in err and "in f\n" in err
        assert err.splitlines()[-1].startswith(f"error: {path}: internal error in op 'buggy0'")


def test_traceback_flag_leaves_broken_pipes_quiet_and_shows_a_bug_in_graphspec(monkeypatch, capsys):
    from graphspec import cli

    monkeypatch.setattr(cli, "cmd_ops", _raise(BrokenPipeError()))
    assert cli.main(["ops", "--traceback"]) == 0  # `graphspec ops | head`: no error at all
    monkeypatch.setattr(cli, "cmd_ops", _raise(RuntimeError("a bug in graphspec")))
    with pytest.raises(RuntimeError):
        cli.main(["ops"])
    assert cli.main(["--traceback", "ops"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith("RuntimeError: a bug in graphspec\n")


def test_a_forward_of_the_wrong_shape_is_caught_by_evaluate(buggy_op):
    """Nothing downstream trips over it (sum takes any shape), so only evaluate's comparison
    with the shape rule finds it; the fast calls do not pay for that comparison."""
    from graphspec.errors import OpError

    graph = load(**_spec_with(buggy_op(forward=lambda x: np.ones(3))))
    assert graph.run()["L"] == 3.0  # not seen here
    with pytest.raises(OpError, match=r"at node 'z' \(forward\): returned shape \[3\], its shape rule says \[2\]"):
        graph.evaluate()
    # at other run-time shapes than the load-time ones, the static shapes are not the run's: no check
    graph = load(**_spec_with(buggy_op(forward=lambda x: 2 * x)))
    assert graph.evaluate({"x": [1.0, 2.0, 3.0]}).values["L"] == 12.0


def test_a_node_of_constants_alone_has_a_cotangent_and_passes_evaluate():
    """abs(-3.0) has the "weak" dtype of a JSON number in the shape rules, and is float64 when it
    runs: no false op error, and dL/dc exists."""
    graph = load(params={"a": {"value": 2.0, "dtype": "float32"}},
                 nodes={"c": {"op": "abs", "args": [-3.0]}, "L": {"op": "mul", "args": ["c", "a"]}}, loss="L")
    r = graph.evaluate()
    assert r.grads["c"] == 2.0 and r.grads["a"] == 3.0
