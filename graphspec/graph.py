"""The spec as a networkx DiGraph: references, name clashes, cycles, a deterministic
topological order, and pruning to what the outputs and the loss need.

networkx is imported where it works (an order to find, a cycle to name, a pruning to do):
a spec written in order with default outputs, the common small case, starts without it,
which keeps `python -m graphspec run` quick (networkx's import is costly: docs/architecture.md, "Measured")."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ErrorList, GraphError, did_you_mean
from .ops import OPS
from .spec import Spec

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class Structure:
    order: list[str]  # the nodes to compute, topologically sorted
    outputs: list[str]
    loss: str | None
    names: dict[str, str]  # every name -> "inputs" | "params" | "nodes", in file order
    edges: list[tuple[str, str]]  # (arg, node)
    failed: frozenset[str] = frozenset()  # with errors: names found wrong, left out of the order

    def digraph(self) -> nx.DiGraph:
        """The graph as networkx sees it: an edge from each arg to the node that uses it."""
        return _digraph(self.names, self.edges)


def _digraph(names: dict[str, str], edges: list[tuple[str, str]]) -> nx.DiGraph:
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from(edges)
    return g


def train_name_problems(tr: Any, names: Mapping[str, str], spec: Spec) -> Iterator[tuple[str, str, Callable[[], str | None]]]:
    """(message, place, hint) for each name of a train block that is not what it must be: data and
    validation feed inputs, metrics are loss, accuracy or nodes. Load checks the spec's block; the
    trainer checks it again with the command line's overrides in."""
    fed = [(n, f"train.data.{n}") for n in tr.data] if isinstance(tr.data, dict) else \
        [(tr.data.x, "train.data.x"), (tr.data.y, "train.data.y")]
    fed += [(n, f"train.validation.{n}") for n in (tr.validation if isinstance(tr.validation, dict) else ())]
    for name, where in fed:
        if names.get(name) != "inputs":
            yield (f"train data must feed an input, '{name}' is not one", where,
                   lambda name=name: did_you_mean(name, spec.inputs))
    for i, name in enumerate(tr.metrics):
        if name not in ("loss", "accuracy") and names.get(name) != "nodes":
            yield (f"a metric is loss, accuracy or a node's name, '{name}' is none of them", f"train.metrics[{i}]",
                   lambda name=name: did_you_mean(name, ["loss", "accuracy", *spec.nodes]))


def build(spec: Spec, errors: ErrorList | None = None, broken: Mapping[str, str] | None = None) -> Structure:
    """The structure of ``spec``. Every independent error is found (unknown ops, arg counts,
    unknown names, clashes, a cycle): without ``errors`` they are raised together; with it they
    are added to it, and the structure of what is sound comes back, its `failed` nodes (those on
    a cycle too) left out of the order. ``broken`` names declarations that failed to validate
    (name -> section): known names, but what reads them is not checked."""
    errs = ErrorList() if errors is None else errors
    broken = broken or {}
    names: dict[str, str] = {}
    failed: set[str] = set(broken)  # names not to check further, nor what reads them
    for kind in ("inputs", "params", "nodes"):
        declared = getattr(spec, kind)
        for name in [*declared, *(n for n, k in broken.items() if k == kind)] if broken else declared:
            if name in names:
                errs.report(GraphError, f"name '{name}' is declared in both {names[name]} and {kind}", loc=f"{kind}.{name}",
                            hint="names are unique across inputs, params and nodes")
                failed.add(name)
            else:
                names[name] = kind

    edges = []
    if any(node.op not in OPS for node in spec.nodes.values()):
        from .userops import load_entry_points, unknown_op_hint

        load_entry_points()  # installed packages' ops: looked for only when an op is unknown
    for name, node in spec.nodes.items():
        op = OPS.get(node.op)
        if op is None:
            errs.report(GraphError, f"unknown op '{node.op}'", loc=f"nodes.{name}.op",
                        hint=lambda: unknown_op_hint(node.op))  # noqa: B023 - called at once
            failed.add(name)
        elif op.arity is not None and len(node.args) != op.arity:
            wanted = ", ".join(op.args)
            errs.report(GraphError, f"{node.op} takes {op.arity} arg{'s' if op.arity != 1 else ''} ({wanted}), "
                        f"got {len(node.args)}", loc=f"nodes.{name}.args")
            failed.add(name)
        elif op.arity is None and not node.args:
            errs.report(GraphError, f"{node.op} needs at least one arg", loc=f"nodes.{name}.args")
            failed.add(name)
        for i, arg in enumerate(node.args):
            if isinstance(arg, str):
                if arg not in names:
                    errs.report(GraphError, f"unknown name '{arg}'", loc=f"nodes.{name}.args[{i}]",
                                hint=lambda: did_you_mean(arg, [n for n in names if n != name]))  # noqa: B023
                    failed.add(name)
                else:
                    edges.append((arg, name))
    if failed:  # a node that clashes with a leaf is checked, never wired in
        edges = [(a, n) for a, n in edges if names[n] == "nodes"]

    def known(name: str, loc: str) -> bool:
        if name in names:
            return True
        errs.report(GraphError, f"unknown name '{name}'", loc=loc, hint=lambda: did_you_mean(name, names))
        return False

    loss = spec.loss_node
    if loss is not None:
        if not known(loss, "loss"):
            loss = None
        elif names[loss] != "nodes":
            errs.report(GraphError, f"the loss must be a node, '{loss}' is one of the {names[loss]}", loc="loss")
            loss = None
    if spec.outputs is not None:
        outputs = list(dict.fromkeys(n for i, n in enumerate(spec.outputs) if known(n, f"outputs[{i}]")))
    else:
        used = {arg for arg, _ in edges}
        outputs = [n for n in spec.nodes if n not in used and n not in failed]
    expected = []
    if spec.expect is not None:
        expected = [n for n in spec.expect.values if known(n, f"expect.values.{n}")]
        for name in spec.expect.grads:
            known(name, f"expect.grads.{name}")
    if spec.train is not None:
        for message, where, hint in train_name_problems(spec.train, names, spec):
            errs.report(GraphError, message, loc=where, hint=hint)

    g = None
    topo = _file_order_if_sorted(spec, names, broken)
    if topo is None:
        import networkx as nx

        g = _digraph(names, edges)
        position = {n: i for i, n in enumerate(names)}.__getitem__
        try:
            topo = list(nx.lexicographical_topological_sort(g, key=position))
        except nx.NetworkXUnfeasible:
            # every cycle is an error; the rest of the graph is ordered without them (what reads
            # a node on a cycle is left out when shapes are inferred, like what reads a failed node)
            on_cycles = set()
            for scc in sorted(nx.strongly_connected_components(g), key=lambda c: min(map(position, c))):
                first = min(scc, key=position)
                if len(scc) > 1 or g.has_edge(first, first):
                    on_cycles |= scc
                    if errs.skip():  # counted, not traced
                        continue
                    cycle = [u for u, _ in nx.find_cycle(g.subgraph(scc), first)]
                    errs.report(GraphError, "cycle: " + " -> ".join([*cycle, cycle[0]]), loc=f"nodes.{cycle[0]}",
                                hint="a node cannot depend on itself")
            failed |= on_cycles
            topo = list(nx.lexicographical_topological_sort(g.subgraph(set(g) - on_cycles), key=position))
    if errors is None:
        errs.raise_any()

    if spec.outputs is None:
        order = [n for n in topo if names[n] == "nodes"]  # every node feeds some sink: nothing to prune
    else:
        targets = set(outputs)
        if loss is not None:
            targets.add(loss)
        targets.update(n for n in expected if names[n] == "nodes")
        needed = _ancestors_and_self(g or _digraph(names, edges), targets)
        order = [n for n in topo if names[n] == "nodes" and n in needed]
    if failed:
        order = [n for n in order if n not in failed]
    return Structure(order=order, outputs=outputs, loss=loss, names=names, edges=edges, failed=frozenset(failed))


def _file_order_if_sorted(spec: Spec, names: dict[str, str], broken: Mapping[str, str]) -> list[str] | None:
    """The names in file order when that order is already topological, else None.

    Most specs are written in order; for them this O(n) pass gives exactly what
    `lexicographical_topological_sort` keyed by file position would, at a fraction of the
    cost on 100,000-node specs (the sort runs a heap over every node). Unknown names make no
    edge (they are errors of their own); declarations that failed to validate are leaves."""
    seen = set(spec.inputs) | set(spec.params) | set(broken)
    for name, node in spec.nodes.items():
        for a in node.args:
            if isinstance(a, str) and a not in seen and a in names:
                return None
        seen.add(name)
    return list(names)


def _ancestors_and_self(g: nx.DiGraph, targets: set[str]) -> set[str]:
    import networkx as nx

    sink = ("targets",)  # a temporary node no name can clash with (names are strings)
    g.add_node(sink)  # there even with no targets ("outputs": [] and no loss): nothing is needed then
    g.add_edges_from((t, sink) for t in targets)
    try:
        return nx.ancestors(g, sink)
    finally:
        g.remove_node(sink)
