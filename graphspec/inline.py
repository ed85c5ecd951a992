"""Functions: subgraphs written once in a spec's ``functions`` and used as a node's op.

A spec with functions becomes, before anything else looks at it, the same spec written out: each
call's body nodes are copied in under the call's path (``h1/z``), the function's output node
taking the call's own name (``h1``). So the plan, the passes and the checker see plain nodes, and a
spec written with functions runs exactly as fast as the same spec written out. What is wrong
inside a function is said once, at the function (``functions.dense.nodes.z.args[1]``); what is
wrong with one call's shapes is said at the function and the call (``..., called from nodes.h1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ErrorList, GraphError, SpecError, did_you_mean
from .ops import OPS
from .spec import Function, InputDecl, Node, Spec


@dataclass
class Expanded:
    """A spec written out, and where each copied node came from."""

    spec: Spec
    # expanded node or leaf name -> (function, local name, call sites innermost first: "nodes.h1", ...)
    origins: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # calls not expanded: name -> "nodes"
    calls: dict[str, tuple[str, list[str | float]]] = field(default_factory=dict)  # written-out call -> (fn, args)


def call_of(name: str, calls: Mapping[str, Any]) -> str | None:
    """The function call a node or leaf was written out for (``h1`` of ``h1/z``, and of ``h1``), or None."""
    head = name.split("/", 1)[0]
    return head if head in calls else None

def _check_function(name: str, fn: Function, functions: Mapping[str, Function], errors: ErrorList) -> bool:
    """Every error of one function's body, at its own place (once, not per call). True when sound."""
    ok = True
    here = f"functions.{name}"
    if name in OPS:
        errors.report(GraphError, f"function '{name}' has the name of an op", loc=here,
                      hint="functions and ops share one namespace: rename the function")
        ok = False
    known = {*fn.args, *fn.attrs}
    for a in fn.args:
        if a in fn.attrs:
            errors.report(GraphError, f"'{a}' is both an arg and an attr", loc=f"{here}.attrs.{a}")
            ok = False
    ok = _check_rule_nodes(here, "body", fn.nodes, known, functions, errors, calls=True) and ok
    if fn.output not in fn.nodes:
        errors.report(GraphError, f"output '{fn.output}' is not a node of the function", loc=f"{here}.output",
                      hint=lambda: did_you_mean(fn.output, fn.nodes))
        ok = False
    if ok:
        import networkx as nx

        g = nx.DiGraph((a, local) for local, node in fn.nodes.items() for a in node.args if a in fn.nodes)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " -> ".join([*(u for u, _ in cycle), cycle[0][0]])
            errors.report(GraphError, f"cycle in the function's nodes: {path}", loc=f"{here}.nodes.{cycle[0][0]}")
            ok = False
    if fn.vjp is not None:
        ok = _check_vjp(name, fn, functions, errors) and ok
    if fn.jvp is not None:
        ok = _check_rule_nodes(f"{here}.jvp", "jvp", fn.jvp.nodes, {*(f"t_{a}" for a in fn.args), *fn.args, *fn.attrs,
                                                                     *fn.nodes}, functions, errors) and ok
        if fn.jvp.tangent not in {*fn.jvp.nodes, *fn.nodes, *(f"t_{a}" for a in fn.args)}:
            errors.report(GraphError, f"tangent '{fn.jvp.tangent}' is not a node of the jvp", loc=f"{here}.jvp.tangent",
                          hint=lambda: did_you_mean(fn.jvp.tangent, fn.jvp.nodes))  # type: ignore[union-attr]
            ok = False
    return ok


def _check_rule_nodes(here: str, what: str, nodes: Mapping[str, Node], known: set[str],
                      functions: Mapping[str, Function], errors: ErrorList, calls: bool = False) -> bool:
    """The nodes of a function's body (which may call functions: ``calls``) or of a hand-written rule
    (ops only): the names they may read (``known``, and each other), ops, arg counts."""
    ok = True
    for local, node in nodes.items():
        if local in known:
            errors.report(GraphError, f"{what} node '{local}' has the name of "
                          + ("an arg or attr" if calls else "an arg, an attr or a body node"), loc=f"{here}.nodes.{local}")
            ok = False
        if calls and node.op in functions:
            want = len(functions[node.op].args)
        elif node.op in OPS:
            want = OPS[node.op].arity
        else:
            choices = [*OPS, *functions] if calls else OPS
            errors.report(GraphError, f"unknown op '{node.op}'" + (f" (a {what}'s nodes use ops, not functions)"
                          if node.op in functions else ""), loc=f"{here}.nodes.{local}.op",
                          hint=lambda: did_you_mean(node.op, choices))  # noqa: B023 - called at once
            ok = False
            want = None
        if want is not None and len(node.args) != want:
            errors.report(GraphError, f"{node.op} takes {want} arg{'s' if want != 1 else ''}, got {len(node.args)}",
                          loc=f"{here}.nodes.{local}.args")
            ok = False
        for i, a in enumerate(node.args):
            if isinstance(a, str) and a not in known and a not in nodes:
                errors.report(GraphError, f"unknown name '{a}'", loc=f"{here}.nodes.{local}.args[{i}]",
                              hint=lambda: did_you_mean(a, [n for n in (*known, *nodes) if n != local]))  # noqa: B023
                ok = False
    return ok


def _check_vjp(name: str, fn: Function, functions: Mapping[str, Function], errors: ErrorList) -> bool:
    """A hand-written backward reads g, the args, the attrs, the body's nodes and its own nodes; its
    grads name one node (or null) for every arg."""
    assert fn.vjp is not None
    here = f"functions.{name}.vjp"
    known = {"g", *fn.args, *fn.attrs, *fn.nodes}
    ok = _check_rule_nodes(here, "vjp", fn.vjp.nodes, known, functions, errors)
    for a in fn.args:
        if a not in fn.vjp.grads:
            errors.report(GraphError, f"grads has no entry for arg '{a}' (a node name, or null: no gradient)",
                          loc=f"{here}.grads")
            ok = False
    for a, target in fn.vjp.grads.items():
        if a not in fn.args:
            errors.report(GraphError, f"'{a}' is not an arg of the function", loc=f"{here}.grads.{a}",
                          hint=lambda: did_you_mean(a, fn.args))  # noqa: B023
            ok = False
        elif target is not None and target not in known and target not in fn.vjp.nodes:
            errors.report(GraphError, f"unknown name '{target}'", loc=f"{here}.grads.{a}",
                          hint=lambda: did_you_mean(target, [*fn.vjp.nodes, *known]))  # noqa: B023
            ok = False
    return ok


def _call_cycles(functions: Mapping[str, Function], errors: ErrorList) -> set[str]:
    """Functions on a call cycle (each cycle said once, at its first function)."""
    import networkx as nx

    calls = nx.DiGraph()
    calls.add_nodes_from(functions)
    calls.add_edges_from((name, node.op) for name, fn in functions.items() for node in fn.nodes.values()
                         if node.op in functions)
    on_cycle: set[str] = set()
    for cycle in sorted(nx.simple_cycles(calls), key=lambda c: min(c)):
        start = cycle.index(min(cycle))
        cycle = cycle[start:] + cycle[:start]
        errors.report(GraphError, "functions call each other in a cycle: " + " -> ".join([*cycle, cycle[0]]),
                      loc=f"functions.{cycle[0]}")
        on_cycle.update(cycle)
    return on_cycle


def _numeric(v: Any) -> bool:
    try:
        arr = np.asarray(v)
    except ValueError:  # ragged lists
        return False
    return arr.dtype.kind in "fi" and bool(np.all(np.isfinite(arr)))


def expand(spec: Spec, errors: ErrorList) -> Expanded:
    """``spec`` with every function call written out (errors added to ``errors``)."""
    functions = spec.functions
    bad = _call_cycles(functions, errors)
    callers: dict[str, list[str]] = {}  # function -> the places that call it
    for name, node in spec.nodes.items():
        if node.op in functions:
            callers.setdefault(node.op, []).append(f"nodes.{name}")
    for name, fn in functions.items():
        for local, node in fn.nodes.items():
            if node.op in functions:
                callers.setdefault(node.op, []).append(f"functions.{name}.nodes.{local}")
    for name, fn in functions.items():
        found = ErrorList()
        if not _check_function(name, fn, functions, found):
            bad.add(name)
        sites = callers.get(name, [])
        for e in found.found:  # said once, at the function, with every call that meets it
            if sites:
                e.message += f", called from {', '.join(sites)}"
            errors.add(e)
    out = Expanded(spec)
    # a function that calls a broken one cannot be expanded either
    changed = True
    while changed:
        changed = False
        for name, fn in functions.items():
            if name not in bad and any(node.op in bad for node in fn.nodes.values()):
                bad.add(name)
                changed = True
    inputs = dict(spec.inputs)
    nodes: dict[str, Node] = {}
    for name, node in spec.nodes.items():
        fn = functions.get(node.op)
        if fn is None:
            nodes[name] = node
            continue
        if node.op in bad:
            out.broken[name] = "nodes"
            continue
        if len(node.args) != len(fn.args):
            errors.report(GraphError, f"{node.op} takes {len(fn.args)} arg{'s' if len(fn.args) != 1 else ''} "
                          f"({', '.join(fn.args)}), got {len(node.args)}", loc=f"nodes.{name}.args")
            out.broken[name] = "nodes"
            continue
        unknown = [k for k in node.attrs if k not in fn.attrs]
        for k, v in node.attrs.items():
            if k in fn.attrs and not _numeric(v):
                errors.report(SpecError, f"attr '{k}' of a function is a number or an array of numbers, got {v!r}",
                              loc=f"nodes.{name}.attrs.{k}")
                unknown.append(k)
        if unknown:
            names = list(fn.attrs)
            for k in unknown:
                if k in fn.attrs:
                    continue  # a bad value, said above
                errors.report(GraphError, f"{node.op} has no attr '{k}'", loc=f"nodes.{name}.attrs.{k}",
                              hint=did_you_mean(k, names) or (f"its attrs: {', '.join(names)}" if names else "it has no attrs"))
            out.broken[name] = "nodes"
            continue
        if fn.vjp is not None or fn.jvp is not None:
            nodes[name] = Node.model_construct(op=composite(node.op, fn, functions, node.attrs), args=list(node.args),
                                               attrs={})
            continue
        _inline(name, name, node, fn, functions, (f"nodes.{name}",), nodes, inputs, out.origins)
        out.calls[name] = (node.op, list(node.args))
    out.spec = spec.model_copy(update={"nodes": nodes, "inputs": inputs, "functions": {}})
    return out


def _inline(call: str, result: str, node: Node, fn: Function, functions: Mapping[str, Function],
            sites: tuple[str, ...], nodes: dict[str, Node], inputs: dict[str, InputDecl], origins: dict[str, Any]) -> None:
    """Copy ``fn``'s body in for the call ``node`` at path ``call``: names mapped to the caller's,
    nodes named ``call/local``, the output named ``result`` (the call's own name, which for a call
    that is itself a function's output is its caller's)."""
    fn_name = node.op
    names: dict[str, str | float] = dict(zip(fn.args, node.args, strict=True))
    for attr, default in fn.attrs.items():
        value = node.attrs.get(attr, default)
        arr = np.asarray(value)
        if arr.ndim == 0 and arr.dtype.kind in "fi":
            names[attr] = float(value)
        else:  # an array constant: a leaf of its own, without a gradient
            leaf = f"{call}/{attr}"
            inputs[leaf] = InputDecl.model_construct(shape=list(arr.shape), dtype="float64", value=arr.tolist(),
                                                     file=None, key=None, grad=False)
            origins[leaf] = (fn_name, attr, sites)
            names[attr] = leaf
    for local in fn.nodes:
        names[local] = result if local == fn.output else f"{call}/{local}"
    for local, body in fn.nodes.items():
        args = [names[a] if isinstance(a, str) else a for a in body.args]
        target = names[local]
        assert isinstance(target, str)
        inner = functions.get(body.op)
        if inner is not None and (inner.vjp is not None or inner.jvp is not None):
            nodes[target] = Node.model_construct(op=composite(body.op, inner, functions, body.attrs), args=args, attrs={})
            origins[target] = (fn_name, local, sites)
            continue
        if inner is not None:
            _inline(f"{call}/{local}", target, Node.model_construct(op=body.op, args=args, attrs=body.attrs), inner,
                    functions, (f"functions.{fn_name}.nodes.{local}", *sites), nodes, inputs, origins)
            continue
        nodes[target] = Node.model_construct(op=body.op, args=args, attrs=body.attrs)
        origins[target] = (fn_name, local, sites)


def relocate(err: SpecError, origins: Mapping[str, tuple[str, str, tuple[str, ...]]]) -> None:
    """An error at a copied node or leaf (``nodes.h1/z.args[1]``) said at the function's own place,
    with the call sites (``functions.dense.nodes.z.args[1]: ..., called from nodes.h1``)."""
    loc = err.loc or ""
    for section in ("nodes", "inputs"):
        if not loc.startswith(section + "."):
            continue
        rest = loc[len(section) + 1:]
        name, tail = rest, ""
        for i, c in enumerate(rest):
            if c in ".[":
                name, tail = rest[:i], rest[i:]
                break
        origin = origins.get(name)
        if origin is None:
            return
        fn, local, sites = origin
        part = "nodes" if section == "nodes" else "attrs"
        err.loc = f"functions.{fn}.{part}.{local}{tail}"
        err.message += ", called from " + ", called from ".join(sites)
        return


class Relocating(ErrorList):
    """The caller's error list, with every error added at a copied node said at its function."""

    def __init__(self, inner: ErrorList, origins: Mapping[str, tuple[str, str, tuple[str, ...]]]):
        self.inner, self.origins = inner, origins
        self.found, self.cap = inner.found, inner.cap

    @property  # type: ignore[override]
    def more(self) -> int:
        return self.inner.more

    @more.setter
    def more(self, value: int) -> None:
        self.inner.more = value

    def add(self, err: SpecError) -> None:
        for e in err.errors:
            relocate(e, self.origins)  # type: ignore[arg-type]
        super().add(err)

    def report(self, cls: type[SpecError], message: str, loc: str, hint: Any = None) -> None:
        before = len(self.found)
        super().report(cls, message, loc, hint)
        for e in self.found[before:]:
            relocate(e, self.origins)


# -- a function with a hand-written backward: one op whose VJPs are the user's nodes -----------

def _sub_plan(nodes: dict[str, Node], leaves: list[str], wrt: list[str]) -> Any:
    import networkx as nx

    from .plan import Plan
    from .shapes import bind_attrs

    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((a, n) for n, node in nodes.items() for a in node.args if isinstance(a, str) and a in nodes)
    order = list(nx.lexicographical_topological_sort(g))
    attrs = {n: bind_attrs(n, nodes[n]) for n in order}
    return Plan(leaves, nodes, order, attrs, wrt, set(leaves))


def composite(fn_name: str, fn: Function, functions: Mapping[str, Function], call_attrs: Mapping[str, Any]) -> str:
    """Register (once per function and attrs) the op a call of ``fn`` becomes when ``fn`` has a
    hand-written vjp, and return its table key: its forward runs the body, its VJP for each arg
    the user's vjp nodes, its JVP the body's own forward mode, so `check` compares the hand-written
    backward with finite differences (blame) and with the body's derivative (forward vs reverse)."""
    import hashlib
    import json

    from .ops import Op

    key = f"{fn_name}/" + hashlib.sha1(json.dumps([fn.model_dump(), dict(call_attrs)], sort_keys=True,
                                                  default=str).encode()).hexdigest()[:12]
    if key in OPS:
        return key
    consts: dict[str, Any] = {}
    body: dict[str, Node] = {}
    scratch: dict[str, InputDecl] = {}
    names: dict[str, str | float] = {a: a for a in fn.args}
    for attr, default in fn.attrs.items():
        value = np.asarray(call_attrs.get(attr, default), dtype=np.float64)
        if value.ndim == 0:
            names[attr] = float(value)
        else:
            consts[attr] = value
            names[attr] = attr
    for local, node in fn.nodes.items():
        args = [names.get(a, a) if isinstance(a, str) else a for a in node.args]
        inner = functions.get(node.op)
        if inner is not None and inner.vjp is None and inner.jvp is None:
            _inline(local, local, Node.model_construct(op=node.op, args=args, attrs=node.attrs), inner, functions,
                    (), body, scratch, {})
        elif inner is not None:
            body[local] = Node.model_construct(op=composite(node.op, inner, functions, node.attrs), args=args, attrs={})
        else:
            body[local] = Node.model_construct(op=node.op, args=args, attrs=node.attrs)
    for leaf, decl in scratch.items():  # array attrs of functions the body calls
        consts[leaf] = np.asarray(decl.value, dtype=np.float64)
    leaves = [*fn.args, *consts]
    fwd_plan = _sub_plan(body, leaves, list(fn.args))
    out_slot = fwd_plan.slot[fn.output]
    n = len(fn.args)
    const_values = list(consts.values())

    def mapped(nodes: Mapping[str, Node]) -> dict[str, Node]:
        return {local: Node.model_construct(op=node.op, args=[names.get(a, a) if isinstance(a, str) else a
                                                              for a in node.args], attrs=node.attrs)
                for local, node in nodes.items()}

    vjp_nodes = mapped(fn.vjp.nodes) if fn.vjp else {}
    body_names = [b for b in body if b in _read_by(fn.vjp.nodes, fn.vjp.grads)] if fn.vjp else []
    vjp_leaves = ["g", *fn.args, *consts, *body_names]

    def forward(*xs: Any) -> Any:
        return fwd_plan.forward([*xs, *const_values])[out_slot]

    def body_rule(i: int) -> Any:  # no vjp block: the body's own reverse mode
        def vjp(g: Any, ans: Any, *xs: Any) -> Any:
            vals = fwd_plan.forward([*xs, *const_values])
            ct = fwd_plan.backward(vals, fn.output, g)[fwd_plan.slot[fn.args[i]]]
            return np.zeros(np.shape(xs[i])) if ct is None else ct
        return vjp

    def rule(i: int) -> Any:
        if fn.vjp is None:
            return body_rule(i)
        target = fn.vjp.grads[fn.args[i]]
        if target is None:
            return None
        # only the vjp nodes this arg's cotangent depends on: a slip in another arg's rule stays there
        needed = _ancestors(vjp_nodes, target)
        plan = _sub_plan({n: vjp_nodes[n] for n in needed}, vjp_leaves, []) if needed else None

        def vjp(g: Any, ans: Any, *xs: Any) -> Any:
            vals = fwd_plan.forward([*xs, *const_values])
            leaf_values = [g, *xs, *const_values, *(vals[fwd_plan.slot[b]] for b in body_names)]
            if plan is not None:
                return plan.forward(leaf_values)[plan.slot[target]]
            return leaf_values[vjp_leaves.index(target)]
        return vjp

    def body_tangent(i: int) -> Any:  # no jvp block: the body's own forward mode
        def jvp(t: Any, ans: Any, *xs: Any) -> Any:
            vals = fwd_plan.forward([*xs, *const_values])
            tan = fwd_plan.jvp(vals, {fn.args[i]: t})[out_slot]
            return np.zeros(np.shape(ans)) if tan is None else tan
        return jvp

    jvp_nodes = mapped(fn.jvp.nodes) if fn.jvp else {}
    jvp_body = [b for b in body if fn.jvp and b in _read_by(fn.jvp.nodes, {"": fn.jvp.tangent})]
    jvp_leaves = [*(f"t_{a}" for a in fn.args), *fn.args, *consts, *jvp_body]
    jvp_plan = _sub_plan(jvp_nodes, jvp_leaves, []) if jvp_nodes else None

    def tangent(i: int) -> Any:
        if fn.jvp is None:
            return body_tangent(i)
        target = fn.jvp.tangent

        def jvp(t: Any, ans: Any, *xs: Any) -> Any:
            vals = fwd_plan.forward([*xs, *const_values])
            ts = [t if j == i else np.zeros(np.shape(x)) for j, x in enumerate(xs)]
            leaf_values = [*ts, *xs, *const_values, *(vals[fwd_plan.slot[b]] for b in jvp_body)]
            if jvp_plan is not None and target in jvp_plan.slot:
                return jvp_plan.forward(leaf_values)[jvp_plan.slot[target]]
            if target in jvp_leaves:
                return leaf_values[jvp_leaves.index(target)]
            return vals[fwd_plan.slot[target]]
        return jvp

    whole = _sub_plan(vjp_nodes, vjp_leaves, []) if vjp_nodes else None

    def walk(g: Any, xs: list[Any]) -> list[tuple[str, Node, Any]]:
        """Every vjp node with its value at this call (explain shows the backward written by hand)."""
        if whole is None:
            return []
        vals = fwd_plan.forward([*xs, *const_values])
        out = whole.forward([g, *xs, *const_values, *(vals[fwd_plan.slot[b]] for b in body_names)])
        return [(s.name, vjp_nodes[s.name], out[s.out]) for s in whole.steps]

    op = Op(name=fn_name, forward=forward, vjp=tuple(rule(i) for i in range(n)), jvp=tuple(tangent(i) for i in range(n)),
            shape=_body_shape(fwd_plan, body, leaves, fn.output, consts), args=tuple(fn.args),
            doc=fn.doc or f"function '{fn_name}' with hand-written rules", origin=f"functions.{fn_name}")
    OPS.functions[key] = op
    if fn.vjp is not None:
        WALKS[id(op)] = (walk, dict(fn.vjp.grads))
    return key


# a hand-written backward's own steps, for explain: id(op) -> (walk(g, args), grads)
WALKS: dict[int, tuple[Any, dict[str, str | None]]] = {}


def _ancestors(nodes: Mapping[str, Node], target: str) -> set[str]:
    """The nodes ``target`` is computed from, itself included (an arg or body node: none)."""
    out, todo = set(), [target]
    while todo:
        n = todo.pop()
        if n in nodes and n not in out:
            out.add(n)
            todo.extend(a for a in nodes[n].args if isinstance(a, str))
    return out


def _read_by(nodes: Mapping[str, Node], grads: Mapping[str, str | None]) -> set[str]:
    return {a for node in nodes.values() for a in node.args if isinstance(a, str)} | {t for t in grads.values() if t}


def _body_shape(plan: Any, body: dict[str, Node], leaves: list[str], output: str, consts: dict[str, Any]) -> Any:
    """The shape rule of a composite: the body's own shape inference at the call's avals."""
    from .ops import Aval, RuleError
    from .shapes import infer

    order = [s.name for s in plan.steps]
    attrs = {s.name: s.attrs for s in plan.steps}

    def shape(avals: list[Any], **_: Any) -> Any:
        given = dict(zip(leaves, [*avals, *(Aval(np.shape(v), "float64") for v in consts.values())], strict=True))
        try:
            out = infer(body, order, given, attrs)
        except SpecError as e:
            raise RuleError(f"in the function's body: {e.errors[0].loc}: {e.errors[0].message}") from e
        return out[output]
    return shape
