"""graph.py: references, clashes, cycles, deterministic order, pruning."""

from __future__ import annotations

import pytest

from graphspec.errors import GraphError
from graphspec.graph import build
from graphspec.spec import load_spec


def structure(nodes, **extra):
    spec, _ = load_spec({"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": nodes, **extra})
    return build(spec)


def test_order_is_topological_whatever_the_file_order():
    s = structure({"c": {"op": "add", "args": ["b", "a"]}, "b": {"op": "exp", "args": ["a"]},
                   "a": {"op": "neg", "args": ["x"]}})
    assert s.order == ["a", "b", "c"]


def test_order_is_deterministic_and_keeps_file_order_among_independent_nodes():
    nodes = {"z": {"op": "add", "args": ["q", "p"]}, "q": {"op": "exp", "args": ["x"]}, "p": {"op": "neg", "args": ["x"]}}
    orders = {tuple(structure(nodes).order) for _ in range(5)}
    assert orders == {("q", "p", "z")}


def test_file_order_fast_path_agrees_with_networkx():
    import networkx as nx

    nodes = {f"n{i}": {"op": "add", "args": ["x" if i == 0 else f"n{i - 1}", "x"]} for i in range(50)}
    s = structure(nodes)
    names = ["x", *nodes]
    ref = [n for n in nx.lexicographical_topological_sort(s.digraph(), key=names.index) if n != "x"]
    assert s.order == ref


def test_default_outputs_are_the_sinks():
    s = structure({"a": {"op": "neg", "args": ["x"]}, "b": {"op": "exp", "args": ["a"]}, "c": {"op": "sin", "args": ["a"]}})
    assert s.outputs == ["b", "c"]


def test_pruning_keeps_only_what_outputs_and_loss_need():
    s = structure({"a": {"op": "neg", "args": ["x"]}, "unused": {"op": "exp", "args": ["x"]},
                   "l": {"op": "square", "args": ["a"]}}, outputs=["a"], loss="l")
    assert s.order == ["a", "l"]


def test_empty_outputs_and_no_loss_compute_nothing():
    """"outputs": [] with no loss and no expected values: nothing is needed (pruning raised
    networkx's error for a sink with no edges)."""
    s = structure({"a": {"op": "neg", "args": ["x"]}}, outputs=[])
    assert s.order == [] and s.outputs == []


def test_cycle_names_every_node_on_it():
    with pytest.raises(GraphError) as e:
        structure({"a": {"op": "add", "args": ["x", "c"]}, "b": {"op": "exp", "args": ["a"]},
                   "c": {"op": "neg", "args": ["b"]}, "d": {"op": "neg", "args": ["x"]}})
    path = str(e.value).split("cycle: ")[1].split(" (")[0].split(" -> ")
    assert set(path) == {"a", "b", "c"} and path[0] == path[-1]


def test_name_clash_between_params_and_nodes():
    with pytest.raises(GraphError, match=r"nodes\.w: name 'w' is declared in both params and nodes"):
        load_and_build({"params": {"w": {"value": 1.0}}, "nodes": {"w": {"op": "neg", "args": ["x"]}}})


def load_and_build(extra):
    spec, _ = load_spec({"graphspec": "1", "inputs": {"x": {"value": 1.0}}, **extra})
    return build(spec)


def test_hundred_thousand_node_chain_orders_without_recursion():
    n = 100_000
    nodes = {f"n{i}": {"op": "neg", "args": ["x" if i == 0 else f"n{i - 1}"]} for i in range(n)}
    # written backwards, so the networkx sort (not the file-order fast path) must do the work
    s = structure(dict(reversed(list(nodes.items()))))
    assert len(s.order) == n and s.order[0] == "n0" and s.order[-1] == f"n{n - 1}"


def test_networkx_is_imported_only_when_there_is_graph_work():
    import subprocess
    import sys

    code = ("import sys, graphspec; g = graphspec.load({'graphspec': '1', 'inputs': {'x': {'value': 1.0}}, "
            "'nodes': {'a': {'op': 'neg', 'args': ['x']}}}); g.run(); print('networkx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_build_reports_every_error_together():
    """Unknown ops, arg counts, unknown names and clashes of every node, in one GraphError."""
    spec, _ = load_spec({"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "params": {"x": {"value": 2.0}},
                         "nodes": {"a": {"op": "matmull", "args": ["x", "x"]}, "b": {"op": "add", "args": ["x"]},
                                   "c": {"op": "neg", "args": ["nope"]}, "d": {"op": "concat", "args": []},
                                   "e": {"op": "neg", "args": ["x"]}},
                         "outputs": ["e", "zz"], "loss": "x"})
    with pytest.raises(GraphError) as e:
        build(spec)
    assert [x.loc for x in e.value.errors] == ["params.x", "nodes.a.op", "nodes.b.args", "nodes.c.args[0]", "nodes.d.args",
                                               "loss", "outputs[1]"]
    assert all(isinstance(x, GraphError) for x in e.value.errors)


def test_every_cycle_is_reported_with_the_other_errors_and_the_rest_is_ordered():
    from graphspec.errors import ErrorList

    spec, _ = load_spec({"graphspec": "1", "inputs": {"x": {"value": 1.0}},
                         "nodes": {"a": {"op": "neg", "args": ["b"]}, "b": {"op": "neg", "args": ["a"]},
                                   "c": {"op": "neg", "args": ["c"]}, "d": {"op": "neg", "args": ["a"]},
                                   "e": {"op": "exp", "args": ["y"]}, "f": {"op": "neg", "args": ["x"]}}})
    errors = ErrorList()
    s = build(spec, errors)
    assert [(x.loc, x.message) for x in errors.found] == [("nodes.e.args[0]", "unknown name 'y'"),
                                                         ("nodes.a", "cycle: a -> b -> a"), ("nodes.c", "cycle: c -> c")]
    assert s.failed == {"a", "b", "c", "e"} and s.order == ["d", "f"]  # d reads a: left to shape inference to skip


def test_a_reference_to_a_declaration_that_failed_validation_is_no_unknown_name():
    from graphspec.errors import ErrorList

    spec, _ = load_spec({"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"h": {"op": "neg", "args": ["W"]}}})
    errors = ErrorList()
    s = build(spec, errors, broken={"W": "params"})
    assert not errors and s.names["W"] == "params" and s.order == ["h"]
