"""explain.py and draw.py: the chain rule with numbers, and the DOT picture."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import graphspec
from graphspec.cli import main
from graphspec.draw import to_dot
from graphspec.explain import explain, explanation

LECTURE = Path(__file__).resolve().parents[1] / "specs" / "lecture"


def test_explain_writes_the_chain_rule_slide():
    lines = explain(graphspec.load(LECTURE / "mul.json"))
    assert "  z = mul(x, y) = mul(2, 3) = 6" in lines
    assert "    dL/dx = dL/dz · ∂z/∂x = 5 × 3 = 15" in lines
    assert "    dL/dy = dL/dz · ∂z/∂y = 5 × 2 = 10" in lines


def test_explain_sums_the_paths_of_a_value_used_twice():
    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": 3.0}},
                        "nodes": {"a": {"op": "mul", "args": ["x", "x"]}, "b": {"op": "add", "args": ["a", "x"]}}, "loss": "b"})
    lines = explain(g)
    # d/dx (x*x + x) = 2x + 1 = 7, from three contributions: 3 + 3 (through a) and 1 (direct)
    assert any(re.fullmatch(r"  dL/dx = 7 \(the sum of 3 paths\)", line) for line in lines), lines
    assert lines[-1] == "gradients: dL/dx = 7"


def test_explain_gradients_line_matches_the_reverse_pass(capsys):
    assert main(["explain", str(LECTURE / "network.json")]) == 0
    out = capsys.readouterr().out
    g = graphspec.load(LECTURE / "network.json")
    grads = g.grad()
    last = out.strip().splitlines()[-1]
    for name, value in grads.items():
        if value.size == 1:
            assert f"dL/d{name} = {float(value):.6g}" in last


def test_explain_gives_the_cotangent_of_a_node_with_no_differentiated_leaf_below():
    """s = sum(x) with x grad: false, L = s + a: dL/ds = 1 is a step of the chain rule too."""
    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0], "grad": False}},
                        "params": {"a": {"value": 0.5}},
                        "nodes": {"s": {"op": "sum", "args": ["x"]}, "L": {"op": "add", "args": ["s", "a"]}}, "loss": "L"})
    lines = explain(g)
    assert "    dL/ds = dL/dL · ∂L/∂s = 1 × 1 = 1" in lines
    assert "    dL/da = dL/dL · ∂L/∂a = 1 × 1 = 1" in lines
    assert not any(line.startswith("    dL/dx") for line in lines)  # x is not differentiated
    assert lines[-1] == "gradients: dL/da = 1"


def test_explain_names_the_first_nonfinite_node_and_fails(tmp_path, capsys):
    path = tmp_path / "log.json"
    path.write_text('{"graphspec": "1", "inputs": {"x": {"value": [-1.0, 2.0]}}, '
                    '"nodes": {"a": {"op": "log", "args": ["x"]}, "s": {"op": "sum", "args": ["a"]}}, "loss": "s"}')
    assert main(["explain", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "non-finite: nodes.a: first non-finite value (nan) produced by log"
    assert err == ""
    ex = explanation(graphspec.load(path))  # the API: the same line, and the finding apart
    assert ex.nonfinite == ["nodes.a: first non-finite value (nan) produced by log"]
    assert ex.findings == (graphspec.Finding("value", "nodes.a", "first non-finite value (nan) produced by log"),)
    assert main(["explain", str(LECTURE / "mul.json")]) == 0


def test_draw_has_every_value_and_edge():
    g = graphspec.load(LECTURE / "linear.json")
    dot = to_dot(g)
    for name in ["x", "y", "w", "y_hat", "diff", "loss"]:
        assert f'\n  "{name}" [shape=' in dot
    # every edge of the spec is one wire: into its label node, and out of it into the node
    src = {w: a for a, w in re.findall(r'^  "([^"]+)" -> (w\d+):', dot, re.M)}
    dst = {w: n for w, n in re.findall(r'^  (w\d+):w:e -> "([^"]+)";', dot, re.M)}
    edges = {(a, n) for n, node in g.spec.nodes.items() for a in node.args if isinstance(a, str)}
    assert {(src[w], dst[w]) for w in src if not dst[w].endswith("__end")} == edges
    w = next(w for w in src if (src[w], dst[w]) == ("w", "y_hat"))
    assert re.search(rf'^  {w} \[.*>-2</FONT>', dot, re.M)  # dloss/dw below w's wire


def test_draw_writes_dot_atomically(tmp_path):
    out = tmp_path / "g.dot"
    assert main(["draw", str(LECTURE / "mul.json"), "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph graphspec {")
    assert [p.name for p in tmp_path.iterdir()] == ["g.dot"]  # no temp file left behind


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_dot_output_is_valid_graphviz():
    dot = to_dot(graphspec.load(LECTURE / "network.json"))
    subprocess.run(["dot", "-Tsvg"], input=dot.encode(), check=True, capture_output=True)


def test_draw_image_without_graphviz_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert main(["draw", str(LECTURE / "mul.json"), "-o", str(tmp_path / "g.svg")]) == 2
    assert "need Graphviz" in capsys.readouterr().err
