"""explain.py and draw.py: the chain rule with numbers, and the DOT picture."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.cli import main
from graphspec.draw import to_dot
from graphspec.explain import explain, explanation

LECTURE = Path(__file__).resolve().parents[1] / "specs" / "lecture"


def test_explain_writes_the_chain_rule_slide():
    lines = explain(graphspec.load(LECTURE / "mul.json")).lines
    assert "  z = mul(x, y) = mul(2, 3) = 6" in lines
    assert "    dL/dx = dL/dz · ∂z/∂x = 5 × 3 = 15" in lines
    assert "    dL/dy = dL/dz · ∂z/∂y = 5 × 2 = 10" in lines


def test_explain_sums_the_paths_of_a_value_used_twice():
    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": 3.0}},
                        "nodes": {"a": {"op": "mul", "args": ["x", "x"]}, "b": {"op": "add", "args": ["a", "x"]}}, "loss": "b"})
    lines = explain(g).lines
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
    lines = explain(g).lines
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


# --- tensors, markdown, the steps as data, the Python API ----------------------------------------

def _mlp_spec(n: int = 8) -> dict:
    r = np.random.default_rng(4)
    return {"graphspec": "1", "name": "mlp", "inputs": {"X": {"value": r.normal(size=(n, 2)).round(3).tolist(), "grad": False}},
            "params": {"W1": {"value": r.normal(size=(2, 4)).round(3).tolist()}, "b1": {"value": [0.1, -0.2, 0.3, 0.0]},
                       "W2": {"value": r.normal(size=(4, 1)).round(3).tolist()}},
            "nodes": {"z1": {"op": "matmul", "args": ["X", "W1"]}, "a1": {"op": "add", "args": ["z1", "b1"]},
                      "h1": {"op": "tanh", "args": ["a1"]}, "z2": {"op": "matmul", "args": ["h1", "W2"]},
                      "loss": {"op": "mean", "args": ["z2"]}},
            "loss": "loss"}


def _autograd_grads(spec: dict) -> dict:
    import autograd.numpy as anp
    from autograd import grad

    X, b1 = np.array(spec["inputs"]["X"]["value"]), np.array(spec["params"]["b1"]["value"])
    W1, W2 = np.array(spec["params"]["W1"]["value"]), np.array(spec["params"]["W2"]["value"])

    def f(W1, W2):
        return anp.mean(anp.dot(anp.tanh(anp.dot(X, W1) + b1), W2))

    return {"W1": grad(f, 0)(W1, W2), "W2": grad(f, 1)(W1, W2)}


def _numbers(text: str) -> np.ndarray:
    return np.array([float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)])


def _matrix_after(lines: list[str], head: str, rows: int) -> np.ndarray:
    i = next(k for k, line in enumerate(lines) if line.startswith(head))
    return _numbers(" ".join(lines[i + 1:i + 1 + rows])).reshape(rows, -1)


def test_explain_on_tensors_writes_each_rule_with_its_shapes_and_small_matrices_in_full():
    spec = _mlp_spec()
    lines = explain(graphspec.load(spec)).lines
    head = "    dL/dW1 = Xᵀ · dL/dz1, (2, 4) = (2, 8) · (8, 4):"
    assert head in lines, "\n".join(lines)
    assert "    dL/dh1 = dL/dz2 · W2ᵀ, (8, 4) = (8, 1) · (1, 4):" in lines
    assert "    dL/da1 = dL/dh1 ⊙ (1 - h1²) =" in lines  # an elementwise rule in the graph's names, the matrix below
    assert any(line.startswith("    dL/db1 = dL/da1, summed to (4,) = [") for line in lines)  # b1 was broadcast
    ref = _autograd_grads(spec)
    # the 2 x 4 gradient written out in full under its line, equal to HIPS autograd's to 6 digits
    np.testing.assert_allclose(_matrix_after(lines, head, 2), ref["W1"], rtol=1e-5, atol=1e-12)
    w2 = next(line for line in lines if line.startswith("    dL/dW2 = h1ᵀ · dL/dz2, (4, 1) = (4, 8) · (8, 1): [["))
    np.testing.assert_allclose(_numbers(w2.partition(": ")[2]).reshape(4, 1), ref["W2"], rtol=1e-5, atol=1e-12)


def test_the_steps_as_data_agree_with_autograd_and_sum_the_fan_out():
    spec = _mlp_spec()
    ex = graphspec.explain(graphspec.load(spec))
    assert [s.node for s in ex.steps] == list(reversed(spec["nodes"]))
    ref = _autograd_grads(spec)
    w1 = next(t for s in ex.steps for t in s.terms if t.arg == "W1")
    assert w1.rule == "Xᵀ · dL/dz1" and w1.shapes == "(2, 4) = (2, 8) · (8, 4)" and w1.nth == 1
    np.testing.assert_allclose(w1.product, ref["W1"], rtol=1e-10)
    # x used three times: the running sums of the data end at the gradient
    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": 3.0}},
                        "nodes": {"a": {"op": "mul", "args": ["x", "x"]}, "b": {"op": "add", "args": ["a", "x"]}}, "loss": "b"})
    ex = graphspec.explain(g)
    terms = [t for s in ex.steps for t in s.terms if t.arg == "x"]
    assert [t.nth for t in terms] == [1, 2, 3] and [float(t.product) for t in terms] == [1, 3, 3]
    assert [None if t.before is None else float(t.before) for t in terms] == [None, 1, 4]
    assert float(terms[-1].total) == 7 == 2 * 3 + 1 and ex.paths["x"] == 3
    assert json.loads(json.dumps(ex.to_json()))["steps"][1]["terms"][1]["total"] == 7


def test_explain_markdown_for_course_notes(tmp_path, capsys):
    spec = tmp_path / "mlp.json"
    spec.write_text(json.dumps(_mlp_spec()))
    assert main(["explain", str(spec), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("## The chain rule, step by step: mlp\n")
    assert "### Forward pass" in md and "### Backward pass" in md and "### Gradients" in md
    assert "  - `dL/dW1 = Xᵀ · dL/dz1`, `(2, 4) = (2, 8) · (8, 4)` =\n\n    ```\n    [[" in md  # a matrix in the item
    assert md.count("```") % 2 == 0
    out = tmp_path / "notes.md"
    assert main(["explain", str(LECTURE / "mul.json"), "-o", str(out)]) == 0  # the suffix chooses markdown
    assert "  - `dL/dx = dL/dz · ∂z/∂x = 5 × 3 = 15`" in out.read_text()
    assert main(["explain", str(LECTURE / "mul.json"), "-o", str(out)]) == 0  # over its own kind
    txt = tmp_path / "notes.txt"
    assert main(["explain", str(LECTURE / "mul.json"), "-o", str(txt)]) == 0
    assert txt.read_text() == graphspec.explain(LECTURE / "mul.json").text


def test_graphspec_explain_is_the_public_api_and_import_stays_lazy():
    done = subprocess.run([sys.executable, "-c", "import sys, graphspec; "
                           "print(sorted(m for m in sys.modules if m.startswith('graphspec')))"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['graphspec']"
    ex = graphspec.explain(str(LECTURE / "mul.json"))  # a path, or a Graph
    assert isinstance(ex, graphspec.Explanation) and "gradients: dL/dx = 15, dL/dy = 10" in ex.lines
    import graphspec.explain as module  # importing the module keeps graphspec.explain(...) a call

    assert graphspec.explain(LECTURE / "mul.json").lines == ex.lines and module.explain is not None
    assert ex._repr_markdown_() == ex.markdown() and str(ex) == ex.text


def test_explain_writes_clips_rule_with_its_bounds_included():
    """clip's gradient is 1 on its bounds (torch.clamp's); the rule explain and docs/format.md print said
    `lo < x < hi`, beside values of 1 at x == min and x == max."""
    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": [0.0, 0.5, 1.0, 2.0]}},
                        "nodes": {"c": {"op": "clip", "args": ["x"], "attrs": {"min": 0.0, "max": 1.0}},
                                  "L": {"op": "sum", "args": ["c"]}}, "loss": "L"})
    np.testing.assert_array_equal(g.grad()["x"], [1, 1, 1, 0])
    assert "    dL/dx = dL/dc where min <= x <= max = [1, 1, 1, 0]" in explain(g).lines
