"""Property-based suite: random valid specs over the whole op table against PyTorch and HIPS autograd.

Each example is a random spec from tests/graphgen.py (every op, every attr, broadcasting,
fan-out, JSON numbers in args, symbolic dims "N", the loss a random contraction of the
outputs) and is checked against two independent references, PyTorch (float64) and HIPS
autograd (tests/reference.py), on:
- the value of every node and the loss;
- the VJP: the gradient of the loss w.r.t. every differentiated leaf, and each node's own
  cotangent (`evaluate().grads`), from a zero "probe" added to each node's value in the
  reference (d loss / d probe_n = d loss / d node n, fan-out summed);
- the JVP: `graph.jvp` against torch.func.jvp and autograd's make_jvp, every node's tangent;
- the same in float32 (graphspec in float32 against the float64 reference at rtol 1e-4);
- run-time inputs of another size for "N" after a first call, and the first call again;
- `expect` through the CLI (`graphspec run`): the references' numbers hold, one number off fails.

Per-op knowledge (the torch and autograd references, domains, integer bounds, attr
strategies) is the op's row in tests/optable.py; the generator is tests/graphgen.py.

Tolerances: float64 at rtol 1e-10 against both references, with an atol of 1e-12 times the
largest magnitude in the compared array (and at least 1): graphspec, torch and autograd sum in
different orders (matmul's BLAS blocking, pairwise vs. sequential sums, logsumexp's shift), so
a result that cancels to near 0 keeps only the absolute accuracy of its largest terms. float32:
rtol 1e-4 against the float64 reference taken at the float32-rounded leaves, atol 1e-4 of the
largest magnitude (float32's 6e-8 rounding, compounded over a dozen nodes and amplified by
cancellation).

`make test` runs 300 derandomized examples (the same ones on every run); `make test-slow`
runs 5,000 more (marked slow). GRAPHSPEC_PROPERTY_EXAMPLES=N runs N random (not
derandomized) examples instead of the 300.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from autograd import make_jvp, make_vjp
from graphgen import random_spec, reference_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optable import full_attrs, row

import graphspec
from graphspec.cli import main
from graphspec.ops import OPS, batching

# --- the references ----------------------------------------------------------------------------

def _args(spec, name, env, const):
    return [env[a] if isinstance(a, str) else const(a) for a in spec.doc["nodes"][name]["args"]]


def torch_env(spec, leaves: dict[str, Any], probes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every node's value in torch from the leaf tensors; ``probes`` are added to node values."""
    env = dict(leaves)
    const = lambda c: torch.tensor(c, dtype=torch.float64)
    for n in spec.order:
        node = spec.doc["nodes"][n]
        out = row(node["op"]).torch(*_args(spec, n, env, const), **full_attrs(node["op"], node.get("attrs", {})))
        env[n] = out + probes[n] if probes is not None else out
    return env


autograd_env = reference_env


@dataclass
class Ref:
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]  # wrt leaves and every node (the probes' gradients)


def _leaf_values(spec, world: int, cast=None) -> dict[str, np.ndarray]:
    vals = {n: spec.worlds[world][n] for n in spec.leaves}
    if cast is not None:  # the float leaves as graphspec holds them in float32, then back to float64
        vals = {n: v.astype(cast).astype(np.float64) if v.dtype.kind == "f" else v for n, v in vals.items()}
    return vals


def torch_reference(spec, world: int = 0, cast=None) -> Ref:
    vals = _leaf_values(spec, world, cast)
    leaves = {n: torch.tensor(v, requires_grad=n in spec.wrt) for n, v in vals.items()}
    shapes = {n: spec.worlds[world][n].shape for n in spec.order}
    probes = {n: torch.zeros(shapes[n], dtype=torch.float64, requires_grad=True) for n in spec.order}
    env = torch_env(spec, leaves, probes)
    wanted = [leaves[n] for n in spec.wrt] + [probes[n] for n in spec.order]
    got = torch.autograd.grad(env[spec.loss], wanted, allow_unused=True)
    names = [*spec.wrt, *spec.order]
    grads = {n: np.zeros(np.shape(vals[n]) if n in vals else shapes[n]) if g is None else g.numpy()
             for n, g in zip(names, got, strict=True)}
    return Ref({n: env[n].detach().numpy() for n in spec.order}, grads)


def autograd_reference(spec, world: int = 0) -> Ref:
    vals = _leaf_values(spec, world)
    probes0 = tuple(np.zeros(spec.worlds[world][n].shape) for n in spec.order)

    def loss(xs):
        leaves, probes = xs
        env = autograd_env(spec, {**vals, **dict(zip(spec.wrt, leaves, strict=True))},
                           dict(zip(spec.order, probes, strict=True)))
        return env[spec.loss]

    back, _ = make_vjp(loss)((tuple(vals[n] for n in spec.wrt), probes0))
    g_leaves, g_probes = back(np.ones(()))
    env = autograd_env(spec, vals)
    return Ref({n: np.asarray(env[n]) for n in spec.order},
               {**dict(zip(spec.wrt, g_leaves, strict=True)), **dict(zip(spec.order, g_probes, strict=True))})


def torch_jvp(spec, tangents: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    vals = _leaf_values(spec, 0)
    const = {n: torch.tensor(v) for n, v in vals.items() if n not in spec.wrt}

    def f(*xs):
        env = torch_env(spec, {**const, **dict(zip(spec.wrt, xs, strict=True))})
        return tuple(env[n] for n in spec.order)

    primals = tuple(torch.tensor(vals[n]) for n in spec.wrt)
    dirs = tuple(torch.tensor(tangents.get(n, np.zeros(vals[n].shape))) for n in spec.wrt)
    _, touts = torch.func.jvp(f, primals, dirs)
    return {n: t.detach().numpy() for n, t in zip(spec.order, touts, strict=True)}


def autograd_jvp(spec, tangents: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import autograd.numpy as anp

    vals = _leaf_values(spec, 0)

    def f(xs):
        env = autograd_env(spec, {**vals, **dict(zip(spec.wrt, xs, strict=True))})
        return anp.concatenate([anp.ravel(env[n]) for n in spec.order])

    dirs = tuple(tangents.get(n, np.zeros(vals[n].shape)) for n in spec.wrt)
    _, flat = make_jvp(f)(tuple(vals[n] for n in spec.wrt))(dirs)
    out, i = {}, 0
    for n in spec.order:
        size = spec.worlds[0][n].size
        out[n] = np.reshape(flat[i:i + size], spec.worlds[0][n].shape)
        i += size
    return out


# --- comparing ---------------------------------------------------------------------------------

RTOL64, ATOL64 = 1e-10, 1e-12
RTOL32, ATOL32 = 1e-4, 1e-4


def close(ours, ref, what: str, rtol=RTOL64, atol=ATOL64) -> None:
    ours, ref = np.asarray(ours), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    if ours.dtype == np.float32:  # a float32 node in a float64 graph (one_hot's dtype attr), its cotangent too
        rtol, atol = max(rtol, RTOL32), max(atol, ATOL32)
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(ours.astype(np.float64), ref, rtol=rtol, atol=atol * scale, err_msg=what)


def compare(spec, result, ref: Ref, who: str, rtol=RTOL64, atol=ATOL64) -> None:
    for n in spec.order:
        close(result.values[n], ref.values[n], f"{who}: value of {n} ({spec.doc['nodes'][n]['op']})", rtol, atol)
    close(result.loss, ref.values[spec.loss], f"{who}: loss", rtol, atol)
    for n in spec.wrt:
        close(result.grads[n], ref.grads[n], f"{who}: gradient of leaf {n}", rtol, atol)
    for n in spec.order:
        if n in result.grads:  # that every node has one: test_every_node_on_the_loss_path_has_a_cotangent
            close(result.grads[n], ref.grads[n], f"{who}: cotangent of node {n} ({spec.doc['nodes'][n]['op']})",
                  rtol, atol)
    # the nodes whose subtree holds a differentiated leaf have their cotangent already
    missing = spec.nodes_with_wrt_leaf() - set(result.grads)
    assert not missing, f"{who}: no cotangent for nodes {sorted(missing)}"


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finite graph gives no non-finite warning
        return fn(*args, **kw)


def float32_doc(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    for kind in ("inputs", "params"):
        for decl in doc[kind].values():
            if "dtype" not in decl:
                decl["dtype"] = "float32"
    return doc


# --- the properties ----------------------------------------------------------------------------

def check_example(data, n_ops: int) -> None:
    spec, _ = random_spec(data, n_ops)
    graph = graphspec.load(spec.doc)
    result = quiet(graph.evaluate)
    t_ref = torch_reference(spec)
    a_ref = autograd_reference(spec)
    # a float32 node in a float64 graph (one_hot's dtype attr) computes what follows it in float32
    mixed = any(np.asarray(v).dtype == np.float32 for v in result.values.values())
    tol = (RTOL32, ATOL32) if mixed else (RTOL64, ATOL64)
    compare(spec, result, t_ref, "torch", *tol)
    compare(spec, result, a_ref, "autograd", *tol)
    assert set(graph.wrt) == set(spec.wrt)

    # value_and_grad (buffers reused, values released): evaluate's numbers, at the references'
    # tolerance, not to the bit: a result written into a reused buffer takes that buffer's memory
    # order (mul(abs(transpose(x)), w) in abs's F-ordered buffer; numpy's fresh result of an F-
    # and a C-ordered arg is C-ordered), so a later sum adds in another order (1 ulp; found by
    # the 5,000-example run)
    lean = graphspec.load({k: v for k, v in spec.doc.items() if k != "outputs"})
    loss, grads = quiet(lean.value_and_grad)
    close(loss, result.loss, "value_and_grad: loss", *tol)
    for n in spec.wrt:
        close(grads[n], result.grads[n], f"value_and_grad: gradient of {n}", *tol)

    # forward mode, tangents for some of the differentiated leaves
    if spec.wrt:
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        chosen = data.draw(st.lists(st.sampled_from(spec.wrt), min_size=1, unique=True))
        tangents = {n: rng.normal(size=spec.worlds[0][n].shape) for n in chosen}
        _, touts = quiet(graph.jvp, tangents)
        for who, ref in (("torch", torch_jvp(spec, tangents)), ("autograd", autograd_jvp(spec, tangents))):
            for n in spec.order:
                close(touts[n], ref[n], f"{who}: tangent of {n} ({spec.doc['nodes'][n]['op']})", *tol)

    # run-time inputs of another size (N = 3 after N = 2), then the first call's inputs again
    if spec.doc["inputs"]:
        later = quiet(graph.evaluate, spec.runtime_inputs(1))
        compare(spec, later, torch_reference(spec, world=1), "torch, run-time inputs", *tol)
        again = quiet(graph.evaluate)
        for n in spec.order:
            np.testing.assert_array_equal(again.values[n], result.values[n], err_msg=f"second call: value of {n}")

    # float32: graphspec in float32 against float64 references at the rounded leaves
    g32 = graphspec.load(float32_doc(spec.doc))
    with np.errstate(all="ignore"):
        r32 = g32.evaluate(check_finite="off")
    ref32 = torch_reference(spec, cast=np.float32)
    # a node of JSON numbers alone is float64 (a numpy float64 when it runs), and so is what it touches
    with_float = spec.nodes_with_float_leaf()
    float32 = with_float - spec.downstream(set(spec.order) - with_float)
    for n in spec.order:
        dtype = np.asarray(r32.values[n]).dtype
        node = spec.doc["nodes"][n]
        assert dtype.name == g32.avals[n].dtype, (
            f"float32: {n} = {node} is {dtype}, its aval says {g32.avals[n].dtype}; args: "
            + ", ".join(f"{g32.avals[a]}" if isinstance(a, str) else repr(a) for a in node["args"]))
        assert dtype == np.float32 or n not in float32, f"float32: {n} is {dtype}"
    for n in r32.grads:  # a leaf's gradient has its dtype; so has every cotangent in an all-float32 graph
        if n in spec.leaves or float32 == set(spec.order):
            assert np.asarray(r32.grads[n]).dtype == np.float32, f"float32: gradient of {n} is {r32.grads[n].dtype}"
    compare(spec, r32, ref32, "float32 vs torch float64", RTOL32, ATOL32)


_WIDE = int(os.environ.get("GRAPHSPEC_PROPERTY_EXAMPLES", "0"))
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
DEFAULT = settings(max_examples=_WIDE or 300, derandomize=not _WIDE, deadline=None, database=None,
                   suppress_health_check=_HEALTH)


@DEFAULT
@given(st.data(), st.integers(1, 8))
def test_random_specs_match_torch_and_autograd(data, n_ops):
    check_example(data, n_ops)


@pytest.mark.slow
@settings(max_examples=5000, derandomize=True, deadline=None, database=None, suppress_health_check=_HEALTH)
@given(st.data(), st.integers(1, 10))
def test_random_specs_match_torch_and_autograd_5000(data, n_ops):
    check_example(data, n_ops)


@settings(max_examples=60, derandomize=True, deadline=None, database=None, suppress_health_check=_HEALTH)
@given(st.data(), st.integers(1, 8))
def test_every_node_on_the_loss_path_has_a_cotangent(data, n_ops):
    """Every node here feeds the loss, so every node has d loss / d node, also those whose
    subtree holds no differentiated leaf (a node of constants or of grad: false inputs)."""
    spec, _ = random_spec(data, n_ops)
    result = quiet(graphspec.load(spec.doc).evaluate)
    ref = torch_reference(spec)
    missing = sorted(set(spec.order) - set(result.grads))
    assert not missing, f"no cotangent for nodes {missing}"
    for n in spec.order:
        close(result.grads[n], ref.grads[n], f"cotangent of node {n}")


def test_the_generator_reaches_every_op_and_every_attr(monkeypatch):
    # hypothesis also draws constants found in the source of every local module loaded so far: pinned to
    # none here, or a new module anywhere (or which tests ran first) changes what this derandomized run makes
    from hypothesis.internal.conjecture import providers
    if hasattr(providers, "_get_local_constants") and hasattr(providers, "CONSTANTS_CACHE"):
        monkeypatch.setattr(providers, "_get_local_constants", providers.Constants)
        monkeypatch.setattr(providers, "CONSTANTS_CACHE", type(providers.CONSTANTS_CACHE)(1024))
    seen: dict[str, set[str]] = {}
    symbolic, constants, fan_out, broadcasts, shapes_change = [0], [0], [0], [0], [0]

    @settings(max_examples=300, derandomize=True, deadline=None, database=None, suppress_health_check=_HEALTH)
    @given(st.data())
    def generate(data):
        spec, gen = random_spec(data, 8)
        for op, attrs in gen.ops_used.items():
            seen.setdefault(op, set()).update(attrs)
        symbolic[0] += bool(spec.symbolic)
        args = [a for node in spec.doc["nodes"].values() for a in node["args"]]
        constants[0] += any(not isinstance(a, str) for a in args)
        names = [a for a in args if isinstance(a, str)]
        fan_out[0] += len(names) > len(set(names))
        broadcasts[0] += any(len({spec.worlds[0][a].shape for a in node["args"] if isinstance(a, str)}) > 1
                             for node in spec.doc["nodes"].values() if OPS[node["op"]].batch is batching.elementwise)
        shapes_change[0] += any(spec.worlds[0][n].shape != spec.worlds[1][n].shape for n in spec.order)

    generate()
    assert sorted(set(OPS) - set(seen)) == [], "ops the generator never made"
    never = sorted(f"{op}.{a}" for op in OPS for a in OPS[op].attrs if a not in seen.get(op, ()))
    assert never == [], "attrs the generator never set"
    counts = {"symbolic dims": symbolic[0], "numbers in args": constants[0], "fan-out": fan_out[0],
              "broadcasting": broadcasts[0], "run-time shapes that differ": shapes_change[0]}
    assert min(counts.values()) >= 40, f"specs (of 300) with each feature: {counts}"


# --- expect through the CLI --------------------------------------------------------------------

def _run_cli(path: Path) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        return main(["run", str(path)])


@settings(max_examples=40, derandomize=True, deadline=None, database=None, suppress_health_check=_HEALTH)
@given(st.data(), st.integers(1, 6))
def test_expect_holds_through_the_cli_and_one_wrong_number_fails(data, n_ops):
    spec, _ = random_spec(data, n_ops)
    ref = torch_reference(spec)
    with_leaf = spec.nodes_with_wrt_leaf()
    expect = {"values": {n: ref.values[n].tolist() for n in spec.order},
              "grads": {n: ref.grads[n].tolist() for n in [*spec.wrt, *spec.order] if n in spec.wrt or n in with_leaf},
              "rtol": 1e-8, "atol": 1e-10}
    doc = {**spec.doc, "expect": expect}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(doc))
        assert _run_cli(path) == 0, "the references' values and gradients do not hold as expect"
        # one number off by more than the tolerance
        kind = data.draw(st.sampled_from([k for k in ("values", "grads") if expect[k]]))
        name = data.draw(st.sampled_from(sorted(expect[kind])))
        flat = np.array(expect[kind][name], dtype=np.float64)
        i = data.draw(st.integers(0, max(flat.size - 1, 0)))
        flat.reshape(-1)[i] += 1e-3 * max(1.0, abs(float(flat.reshape(-1)[i])))
        wrong = copy.deepcopy(doc)
        wrong["expect"][kind][name] = flat.tolist()
        path.write_text(json.dumps(wrong))
        assert _run_cli(path) == 1, f"expect.{kind}.{name}[{i}] off by 1e-3 still passes"
