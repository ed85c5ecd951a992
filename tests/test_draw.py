"""`draw` as a person sees it: the numbers on the right wires (in DOT, and in the SVG that Graphviz
lays out), local gradients, check colours, collapsed chains, the options' errors, the notebook
display, the Python API, and the README's pictures being current."""

from __future__ import annotations

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.cli import main
from graphspec.draw import to_dot

ROOT = Path(__file__).resolve().parent.parent
MUL = str(ROOT / "specs" / "lecture" / "mul.json")
DEEP = str(ROOT / "specs" / "mlp" / "deep.json")
SUBMISSION = str(ROOT / "specs" / "exercises" / "network_delta_submission.json")
HAS_DOT = shutil.which("dot") is not None
# CI installs Graphviz (make test -> make system): there a missing dot is a failure, not a skip
needs_dot = pytest.mark.skipif(not HAS_DOT and not os.environ.get("CI"), reason="Graphviz's dot is not installed")
FAN_OUT = {"graphspec": "1", "inputs": {"x": {"value": 2.0}, "y": {"value": 3.0}},
           "nodes": {"u": {"op": "mul", "args": ["x", "y"]}, "v": {"op": "add", "args": ["u", "x"]}}, "loss": "v"}


def wires(dot: str) -> dict[tuple[str, str], list[str]]:
    """(from, to) -> the texts on that wire's label node, top to bottom, from the DOT."""
    labels: dict[str, list[str]] = {}
    for line in dot.splitlines():
        m = re.match(r"^  (w\d+) \[shape=plaintext, margin=0, label=(.*)\];$", line)
        if m:
            label = m[2].replace("<BR/>", "</FONT><FONT>")  # each line of a cell apart
            labels[m[1]] = re.findall(r">([^<>]+)</TD>|<FONT[^>]*>([^<>]+)</FONT>", label)
            labels[m[1]] = [a or b for a, b in labels[m[1]] if (a or b).strip()]
    src = {w: s for s, w in re.findall(r'^  "([^"]+)" -> (w\d+):', dot, re.M)}
    dst = {w: d for w, d in re.findall(r'^  (w\d+):w:[a-z] -> "([^"]+)";', dot, re.M)}
    return {(src[w], dst[w]): texts for w, texts in labels.items()}


def test_the_lecture_circuit_carries_each_value_and_gradient_on_its_wire():
    w = wires(to_dot(graphspec.load(MUL)))
    assert w[("x", "z")][:2] == ["2", "15"]  # x's value, then dL/dx = dL/dz * y
    assert w[("y", "z")][:2] == ["3", "10"]
    assert w[("z", "z__end")] == ["6", "5"]  # z's value, and the seed dL/dz


def test_a_fan_out_s_branches_carry_their_parts_of_the_gradient():
    g = graphspec.load(FAN_OUT)
    w = wires(to_dot(g))
    # v = x*y + x: the branch into u carries y * dL/du = 3, the one into v carries 1; they sum to dL/dx
    parts = float(w[("x", "u")][1]), float(w[("x", "v")][1])
    assert parts == (3.0, 1.0)
    h = 1e-6
    numeric = (g.run({"x": 2.0 + h})["v"] - g.run({"x": 2.0 - h})["v"]) / (2 * h)
    assert sum(parts) == pytest.approx(float(numeric), rel=1e-6)
    assert 'label=<<B>x</B><BR/><FONT POINT-SIZE="8" COLOR="#b91c1c">dL/dx = 4</FONT>>' in to_dot(g)  # the sum, at x


def test_local_shows_each_gate_s_local_gradient():
    w = wires(to_dot(graphspec.load(MUL), local=True))
    assert "∂z/∂x = 3" in w[("x", "z")] and "∂z/∂y = 2" in w[("y", "z")]  # z = x*y: ∂z/∂x = y
    dot = to_dot(graphspec.load(DEEP), local=True, collapse=0)
    assert "∂h1/∂W1: a (4×3)×(3×3) Jacobian" in dot  # a tensor's: what the Jacobian is
    assert "local gradient at the gate" in dot


def test_small_tensors_are_matrices_and_big_ones_a_shape_and_summary():
    g = graphspec.load(DEEP)
    w = wires(to_dot(g, collapse=0))
    W1 = g.params["W1"]
    texts = w[("W1", "h1")]
    assert [float(t) for t in texts[:9]] == pytest.approx(W1.ravel(), rel=1e-3)  # 3x3, row by row, 4 digits
    big = {"graphspec": "1", "inputs": {"a": {"value": np.arange(30.0).reshape(5, 6).tolist()}},
           "nodes": {"s": {"op": "sum", "args": ["a"]}}, "loss": "s"}
    w = wires(to_dot(graphspec.load(big)))
    assert w[("a", "s")][0] == "5×6" and w[("a", "s")][1] == "min 0 mean 14.5 max 29"
    assert w[("a", "s")][2].startswith("5×6") and "‖g‖ 5.477" in w[("a", "s")][3]  # sqrt(30) ones


def test_check_colours_the_blamed_nodes_and_says_so_in_the_legend(tmp_path, capsys):
    report = graphspec.gradcheck(SUBMISSION, blame=True)
    blamed = {n.node for n in report.blamed}
    assert blamed  # the submission's slip
    dot = to_dot(graphspec.load(SUBMISSION), check=True)
    for name in blamed:
        assert re.search(rf'^  "{re.escape(name)}" \[[^\n]*fillcolor="#ef4444", color="#b91c1c", penwidth=3', dot, re.M)
    passing = {c.input for c in report.checks if c.status == "PASS"}
    for name in passing:
        assert re.search(rf'^  "{re.escape(name)}" \[[^\n]*fillcolor="#86efac"', dot, re.M)
    assert "blamed (own VJP wrong)" in dot and "gradient fails" in dot
    out = tmp_path / "checked.dot"
    assert main(["draw", SUBMISSION, "--check", "-o", str(out)]) == 1  # the check failed: drawn, and said
    assert out.read_text() == dot and "check: FAIL, blamed: " in capsys.readouterr().err
    assert main(["draw", MUL, "--check"]) == 0


def test_check_colours_a_kink_where_the_checker_found_it(capsys):
    spec = {"graphspec": "1", "inputs": {"x": {"value": [0.0, 1.0]}},
            "nodes": {"r": {"op": "relu", "args": ["x"]}, "s": {"op": "sum", "args": ["r"]}}, "loss": "s"}
    report = graphspec.gradcheck(spec, blame=True)
    kinked = {k.node for c in report.checks for e in c.kinks for k in e.kinks}
    assert kinked == {"r"}  # relu at 0
    dot = to_dot(graphspec.load(spec), check=report)  # a Report given is used as it is
    fills = dict(re.findall(r'^  "(\w+)" \[[^\n]*fillcolor="(#\w+)"', dot, re.M))
    assert fills == {"x": "#fdba74", "r": "#fdba74", "s": "#86efac"}  # the leaf's check and the gate: kink


def test_draw_takes_inputs_as_run_does(capsys):
    assert main(["draw", MUL, "--input", "x=4"]) == 0
    w = wires(capsys.readouterr().out)
    assert w[("x", "z")][:2] == ["4", "15"] and w[("z", "z__end")] == ["12", "5"]
    assert main(["draw", MUL, "--input", "q=1"]) == 2
    assert "q" in capsys.readouterr().err


def test_rankdir_and_its_automatic_choice():
    g = graphspec.load(MUL)
    assert "rankdir=LR;" in to_dot(g) and "rankdir=TB;" in to_dot(g, rankdir="TB")
    assert "rankdir=TB;" in to_dot(graphspec.load(ROOT / "specs" / "lecture" / "network.json"))  # 11 gates deep
    assert "left of the wire" in to_dot(g, rankdir="TB")


def test_long_chains_collapse_into_one_box():
    g = graphspec.load(DEEP)
    folded = to_dot(g)
    assert "62 nodes collapsed" in folded and "h2 … h63: layer ×62" in folded and "124 leaves inside" in folded
    assert '"W30"' not in folded and '"h1"' in folded and '"h64"' in folded
    w = wires(folded)
    r = g.evaluate()
    into = [k for k in w if k[1] == "h2__chain"]
    out = [k for k in w if k[0] == "h2__chain"]
    assert into == [("h1", "h2__chain")] and out == [("h2__chain", "h64")]
    assert float(w[out[0]][0]) == pytest.approx(r.values["h63"][0, 0], rel=1e-3)  # the last member's value
    every = to_dot(g, collapse=0)
    assert "collapsed" not in every and all(f'"h{i}" [' in every for i in range(1, 65))
    assert "collapsed" not in to_dot(g, collapse=62) and "collapsed" in to_dot(g, collapse=61)
    assert "collapsed" in to_dot(g, unfold=True)  # matmul, add, tanh: one chain through the bodies


def test_the_layout_options_on_the_command_line(capsys):
    assert main(["draw", DEEP, "--collapse", "0", "--rankdir", "TB"]) == 0
    out = capsys.readouterr().out
    assert "rankdir=TB;" in out and "collapsed" not in out and '"W30" [' in out
    assert main(["draw", DEEP, "--collapse", "70", "--unfold"]) == 0  # 190 > 70: the bodies' chain collapses
    out = capsys.readouterr().out
    assert "190 nodes collapsed" in out and "rankdir=LR;" in out
    assert main(["draw", MUL, "--local", "--rankdir", "LR"]) == 0
    assert "∂z/∂x = 3" in capsys.readouterr().out


def test_bad_options_are_usage_errors(capsys, tmp_path):
    for argv, message in [(["--rankdir", "BT"], "invalid choice"), (["--collapse", "-1"], "is not a count"),
                          (["--collapse", "x"], "is not a count"), (["--no-values", "--local"], "--no-values with --local"),
                          (["--no-values", "--check"], "--no-values with --check"),
                          (["-o", str(tmp_path / "g.jpg")], "write .dot, .svg, .png or .pdf")]:
        with pytest.raises(SystemExit) if message in ("invalid choice", "is not a count") else _noop():
            assert main(["draw", MUL, *argv]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(graphspec.GraphspecError, match="rankdir 'up'"):
        to_dot(graphspec.load(MUL), rankdir="up")
    with pytest.raises(graphspec.GraphspecError, match="collapse"):
        to_dot(graphspec.load(MUL), collapse=-2)


class _noop:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_images_without_graphviz_say_how_to_get_it(capsys, monkeypatch, tmp_path):
    import graphspec.draw

    monkeypatch.setattr(graphspec.draw, "dot_program", lambda: None)
    assert main(["draw", MUL, "-o", str(tmp_path / "g.svg")]) == 2
    assert "make system" in capsys.readouterr().err and not (tmp_path / "g.svg").exists()
    assert main(["draw", MUL, "-o", str(tmp_path / "g.dot")]) == 0  # .dot needs nothing
    g = graphspec.load(MUL)
    assert g._repr_svg_() is None and "graphspec.Graph mul" in g._repr_html_()


def test_repr_says_what_the_graph_is():
    assert repr(graphspec.load(MUL)) == "<graphspec.Graph mul: inputs x (), y (); params none; 1 node; loss z>"
    deep = repr(graphspec.load(DEEP))
    assert "params W1 (3, 3), b1 (3,)" in deep and "(128 in all)" in deep and "193 nodes (64 function calls)" in deep


def test_the_python_api_draws_text_and_files(tmp_path):
    dot = graphspec.draw(MUL)
    assert dot.startswith("digraph") and dot == to_dot(graphspec.load(MUL))
    assert graphspec.draw(graphspec.load(MUL), tmp_path / "g.dot", local=True) == (tmp_path / "g.dot").read_text()
    with pytest.raises(graphspec.GraphspecError, match="format 'png'"):
        graphspec.draw(MUL, format="png")
    notes = tmp_path / "notes.dot"
    notes.write_text("my notes\n")
    with pytest.raises(graphspec.GraphspecError, match="pass --force"):  # the -o guard, as the CLI's
        graphspec.draw(MUL, notes)
    assert notes.read_text() == "my notes\n"
    assert graphspec.draw(MUL, notes, force=True).startswith("digraph")
    spec = tmp_path / "mul.dot"  # a spec, whatever its name: never drawn over, even with force
    spec.write_text(Path(MUL).read_text())
    with pytest.raises(graphspec.GraphspecError, match="the spec being drawn"):
        graphspec.draw(spec, spec, force=True)
    assert spec.read_text() == Path(MUL).read_text()
    assert "graphspec.draw" not in sys.modules or callable(sys.modules["graphspec.draw"])


@needs_dot
def test_images_and_the_notebook_display_with_graphviz(tmp_path):
    assert graphspec.draw(MUL, format="svg").lstrip().startswith("<?xml")
    for fmt, head in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        assert main(["draw", MUL, "-o", str(tmp_path / f"g.{fmt}")]) == 0
        assert (tmp_path / f"g.{fmt}").read_bytes().startswith(head)
    g = graphspec.load(MUL)
    assert "<svg" in g._repr_svg_() and "<svg" in g._repr_html_()
    unbound = graphspec.load({"graphspec": "1", "inputs": {"x": {"shape": [2]}},
                              "nodes": {"s": {"op": "sum", "args": ["x"]}}, "loss": "s"})
    assert "<svg" in unbound._repr_svg_()  # no value to run with: the structure alone


def _texts_and_paths(svg: str) -> tuple[dict[str, list[tuple[str, float, float]]], dict[str, list[tuple[float, float]]]]:
    """Each node's texts (text, x, y) and each edge's path points, by their Graphviz titles."""
    ns = {"s": "http://www.w3.org/2000/svg"}
    root = ET.fromstring(svg)
    texts: dict[str, list[tuple[str, float, float]]] = {}
    paths: dict[str, list[tuple[float, float]]] = {}
    for g in root.iterfind(".//s:g", ns):
        title = g.find("s:title", ns)
        if title is None:
            continue
        if g.get("class") == "node":
            texts[title.text] = [(t.text, float(t.get("x")), float(t.get("y"))) for t in g.iterfind(".//s:text", ns)]
        elif g.get("class") == "edge":
            d = g.find("s:path", ns).get("d")
            nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
            paths[title.text] = list(zip(nums[::2], nums[1::2], strict=True))
    return texts, paths


@needs_dot
def test_the_lecture_s_numbers_sit_on_the_right_edges_of_the_svg():
    """Laid out by the real dot: 15 below x's wire, 10 below y's, 6 above z's and 5 below it."""
    texts, paths = _texts_and_paths(graphspec.draw(MUL, format="svg"))
    wire_of: dict[tuple[str, str], str] = {}
    for title in paths:
        m = re.match(r"(.+)->(w\d+):", title)
        if m:
            out = next(t for t in paths if t.startswith(f"{m[2]}:"))
            wire_of[(m[1], out.split("->")[1])] = m[2]
    assert set(wire_of) == {("x", "z"), ("y", "z"), ("z", "z__end")}
    for (src, dst), value, grad in ((("x", "z"), "2", "15"), (("y", "z"), "3", "10"), (("z", "z__end"), "6", "5")):
        w = wire_of[(src, dst)]
        into = paths[next(t for t in paths if t.startswith(f"{src}->{w}:"))]
        out = paths[next(t for t in paths if t.startswith(f"{w}:"))]
        (x0, y0), (x1, y1) = into[-1], out[0]  # where the wire's two halves meet its label node
        assert x0 < x1 and y0 == pytest.approx(y1, abs=1.5)  # one straight wire through the label
        found = {t: (x, y) for t, x, y in texts[w]}
        vx, vy = found[value]
        gx, gy = found[grad]
        assert x0 - 1 <= vx <= x1 + 1 and x0 - 1 <= gx <= x1 + 1  # along the wire, not beside another
        assert vy < y0 < gy  # SVG's y grows downwards: the value above the wire, the gradient below
        assert y0 - vy < 25 and gy - y0 < 25  # and close to it


@needs_dot
def test_the_readme_pictures_are_what_make_pictures_draws_now(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import pictures
    finally:
        sys.path.pop(0)
    readme = (ROOT / "README.md").read_text()
    for name, spec, options in pictures.PICTURES:
        committed = (ROOT / "docs" / "img" / name).read_text()
        now = graphspec.draw(ROOT / spec, format="svg", **options)
        # the words and numbers and the graph's parts; coordinates may differ between Graphviz versions
        said = [{node: [t for t, _, _ in ts] for node, ts in _texts_and_paths(svg)[0].items()} for svg in (committed, now)]
        edges = [set(_texts_and_paths(svg)[1]) for svg in (committed, now)]
        assert said[0] == said[1] and edges[0] == edges[1], f"docs/img/{name} is out of date: run `make pictures`"
        assert f"docs/img/{name}" in readme
