"""Functions (graphspec/inline.py): a spec written with functions is the same spec written out,
node for node, and every error inside a function is said at the function and its calls."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.checker import gradcheck
from graphspec.errors import SpecError

DENSE = {"args": ["x", "W", "b"], "nodes": {
    "a": {"op": "matmul", "args": ["x", "W"]},
    "z": {"op": "add", "args": ["a", "b"]},
    "h": {"op": "sigmoid", "args": ["z"]}}, "output": "h"}
LEAVES = {"inputs": {"X": {"value": [[1.0, 2.0], [3.0, -1.0]]}},
          "params": {"W1": {"value": [[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]]}, "b1": {"value": [0.0, 0.1, -0.1]},
                     "W2": {"value": [[0.2], [0.1], [-0.3]]}, "b2": {"value": [0.05]}}}
MLP = {"graphspec": "1", **LEAVES, "functions": {"dense": DENSE},
       "nodes": {"h1": {"op": "dense", "args": ["X", "W1", "b1"]}, "h2": {"op": "dense", "args": ["h1", "W2", "b2"]},
                 "L": {"op": "sum", "args": ["h2"]}}, "loss": "L"}
WRITTEN_OUT = {"graphspec": "1", **LEAVES, "nodes": {
    "h1/a": {"op": "matmul", "args": ["X", "W1"]}, "h1/z": {"op": "add", "args": ["h1/a", "b1"]},
    "h1": {"op": "sigmoid", "args": ["h1/z"]},
    "h2/a": {"op": "matmul", "args": ["h1", "W2"]}, "h2/z": {"op": "add", "args": ["h2/a", "b2"]},
    "h2": {"op": "sigmoid", "args": ["h2/z"]}, "L": {"op": "sum", "args": ["h2"]}}, "loss": "L"}


def _errors(doc) -> list[str]:
    with pytest.raises(SpecError) as e:
        graphspec.load(doc)
    return [x.line() for x in e.value.errors]


def test_a_spec_with_functions_is_the_spec_written_out():
    g = graphspec.load(MLP)
    assert [(s.name, s.op.name) for s in g.plan.steps] == [
        ("h1/a", "matmul"), ("h1/z", "add"), ("h1", "sigmoid"), ("h2/a", "matmul"), ("h2/z", "add"), ("h2", "sigmoid"),
        ("L", "sum")]  # no per-call step: a call costs what its body costs
    # the written-out twin, built by hand (names with "/" are the expansion's own, so the twin is
    # made from the spec model, not from JSON, where "/" is not allowed in a name)
    from graphspec.spec import Node, Spec

    base = Spec.model_validate({**{k: v for k, v in WRITTEN_OUT.items() if k != "nodes"},
                                "nodes": {"L": {"op": "sum", "args": ["X"]}}})
    twin = Spec.model_copy(base, update={"nodes": {n: Node.model_construct(op=d["op"], args=d["args"], attrs={})
                                                   for n, d in WRITTEN_OUT["nodes"].items()}})
    h = graphspec.Graph(twin, g.base)
    r, t = g.evaluate(), h.evaluate()
    for n in t.values:
        np.testing.assert_array_equal(r.values[n], t.values[n], err_msg=n)
    for n in t.grads:
        np.testing.assert_array_equal(r.grads[n], t.grads[n], err_msg=n)
    assert "h1/z" in r.grads and "h2/a" in r.values  # every value and cotangent keeps its path


def test_a_function_is_shape_polymorphic_and_checks_like_any_nodes():
    g = graphspec.load(MLP)
    assert g.avals["h1"].shape == (2, 3) and g.avals["h2"].shape == (2, 1)
    rep = gradcheck(g, blame=True)
    assert rep.status == "PASS" and {n.node for n in rep.nodes} >= {"h1/a", "h2/z"}


def test_an_rnn_written_with_one_cell_function():
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b), three steps: 3 calls instead of 18 hand-copied nodes."""
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(1, 2)) for _ in range(3)]
    Wx, Wh, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3,))
    cell = {"args": ["x", "h", "Wx", "Wh", "b"], "nodes": {
        "p": {"op": "matmul", "args": ["x", "Wx"]}, "q": {"op": "matmul", "args": ["h", "Wh"]},
        "s": {"op": "add", "args": ["p", "q"]}, "t": {"op": "add", "args": ["s", "b"]},
        "out": {"op": "tanh", "args": ["t"]}}, "output": "out"}
    doc = {"graphspec": "1",
           "inputs": {**{f"x{i}": {"value": x.tolist()} for i, x in enumerate(xs)}, "h0": {"value": [[0.0] * 3]}},
           "params": {"Wx": {"value": Wx.tolist()}, "Wh": {"value": Wh.tolist()}, "b": {"value": b.tolist()}},
           "functions": {"cell": cell},
           "nodes": {"h1": {"op": "cell", "args": ["x0", "h0", "Wx", "Wh", "b"]},
                     "h2": {"op": "cell", "args": ["x1", "h1", "Wx", "Wh", "b"]},
                     "h3": {"op": "cell", "args": ["x2", "h2", "Wx", "Wh", "b"]},
                     "L": {"op": "sum", "args": ["h3"]}}, "loss": "L"}
    g = graphspec.load(doc)
    h = np.zeros((1, 3))
    for x in xs:
        h = np.tanh(x @ Wx + h @ Wh + b)
    np.testing.assert_allclose(g.run()["L"], h.sum(), rtol=1e-15)
    # an independent reference for the gradient: PyTorch
    import torch

    tW = [torch.tensor(a, requires_grad=True) for a in (Wx, Wh, b)]
    th = torch.zeros((1, 3), dtype=torch.float64)
    for x in xs:
        th = torch.tanh(torch.tensor(x) @ tW[0] + th @ tW[1] + tW[2])
    th.sum().backward()
    grads = g.grad()
    for name, t in zip(("Wx", "Wh", "b"), tW, strict=True):
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-12, err_msg=name)
    assert gradcheck(g).status == "PASS"


def test_functions_call_functions_with_attrs_that_calls_may_override():
    doc = {"graphspec": "1", "inputs": {"x": {"value": [1.0, -2.0]}},
           "functions": {
               "scale": {"args": ["v"], "attrs": {"k": 2.0, "shift": [1.0, 10.0]},
                         "nodes": {"m": {"op": "mul", "args": ["v", "k"]}, "o": {"op": "add", "args": ["m", "shift"]}},
                         "output": "o"},
               "twice": {"args": ["v"], "nodes": {"a": {"op": "scale", "args": ["v"]},
                                                  "b": {"op": "scale", "args": ["a"], "attrs": {"k": -1.0}}},
                         "output": "b"}},
           "nodes": {"y": {"op": "twice", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}
    g = graphspec.load(doc)
    x = np.array([1.0, -2.0])
    want = -(2 * x + [1.0, 10.0]) + [1.0, 10.0]
    r = g.evaluate()
    np.testing.assert_array_equal(r.values["y"], want)
    assert "y/a/m" in r.values and "y/a" in r.values and "y/b/m" in r.values  # paths through nested calls
    np.testing.assert_array_equal(r.grads["x"], [-2.0, -2.0])


def test_an_error_in_a_function_is_said_once_at_the_function_with_its_calls():
    doc = copy.deepcopy(MLP)
    doc["functions"]["dense"]["nodes"]["z"]["args"] = ["a", "bb"]
    assert _errors(doc) == ["functions.dense.nodes.z.args[1]: unknown name 'bb', called from nodes.h1, nodes.h2 "
                            "(did you mean 'b'?)"]


def test_a_shape_error_is_said_at_the_function_and_the_one_call_it_meets():
    doc = copy.deepcopy(MLP)
    doc["params"]["W2"] = {"value": [[0.2], [0.1]]}  # (2, 1): h1 is (2, 3)
    (line,) = _errors(doc)
    assert line.startswith("functions.dense.nodes.a: ") and line.endswith(", called from nodes.h2") and "matmul" in line


@pytest.mark.parametrize(("change", "wanted"), [
    (lambda d: d["nodes"]["h1"].update(args=["X", "W1"]), ["nodes.h1.args: dense takes 3 args (x, W, b), got 2"]),
    (lambda d: d["nodes"]["h1"].update(attrs={"k": 1.0}), ["nodes.h1.attrs.k: dense has no attr 'k' (it has no attrs)"]),
    (lambda d: d["functions"].update(relu=DENSE), ["functions.relu: function 'relu' has the name of an op (functions and "
                                                   "ops share one namespace: rename the function)"]),
    (lambda d: d["functions"]["dense"].update(output="hh"),
     ["functions.dense.output: output 'hh' is not a node of the function, called from nodes.h1, nodes.h2 "
      "(did you mean 'h'?)"]),
    (lambda d: d["functions"]["dense"]["nodes"].update(a={"op": "matmull", "args": ["x", "W"]}),
     ["functions.dense.nodes.a.op: unknown op 'matmull', called from nodes.h1, nodes.h2 (did you mean 'matmul'?)"]),
    (lambda d: d["functions"].update(f={"args": ["x"], "nodes": {"y": {"op": "g", "args": ["x"]}}, "output": "y"},
                                     g={"args": ["x"], "nodes": {"y": {"op": "f", "args": ["x"]}}, "output": "y"}),
     ["functions.f: functions call each other in a cycle: f -> g -> f"]),
    (lambda d: d["functions"]["dense"].update(jvp={"nodes": {"dz": {"op": "mul", "args": ["t_xx", "h"]}}, "tangent": "dzz"}),
     ["functions.dense.jvp.nodes.dz.args[0]: unknown name 't_xx', called from nodes.h1, nodes.h2 (did you mean 't_x'?)",
      "functions.dense.jvp.tangent: tangent 'dzz' is not a node of the jvp, called from nodes.h1, nodes.h2 "
      "(did you mean 'dz'?)"]),
])
def test_function_errors_are_located(change, wanted):
    doc = copy.deepcopy(MLP)
    change(doc)
    assert _errors(doc) == wanted


def test_a_cycle_inside_a_function_body_is_named():
    doc = copy.deepcopy(MLP)
    doc["functions"]["dense"]["nodes"]["a"]["args"] = ["x", "h"]
    (line,) = _errors(doc)
    assert line.startswith("functions.dense.nodes.") and "cycle in the function's nodes" in line


# -- a hand-written backward ----------------------------------------------------------------

DENSE_VJP = {**DENSE, "vjp": {"nodes": {
    "dz": {"op": "mul", "args": ["g", "dh_dz"]},
    "dh_dz": {"op": "mul", "args": ["h", "one_minus_h"]},
    "one_minus_h": {"op": "sub", "args": [1.0, "h"]},
    "xT": {"op": "transpose", "args": ["x"]},
    "WT": {"op": "transpose", "args": ["W"]},
    "dW": {"op": "matmul", "args": ["xT", "dz"]},
    "dx": {"op": "matmul", "args": ["dz", "WT"]},
    "db": {"op": "sum", "args": ["dz"], "attrs": {"axis": 0}}},
    "grads": {"x": "dx", "W": "dW", "b": "db"}}}


def _with_vjp(**changes) -> dict:
    doc = copy.deepcopy(MLP)
    doc["functions"]["dense"] = copy.deepcopy(DENSE_VJP)
    for key, value in changes.items():
        doc["functions"]["dense"]["vjp"]["nodes"][key] = value
    return doc


def test_a_hand_written_vjp_gives_the_spec_s_gradients_and_passes_when_right():
    ours, body = graphspec.load(_with_vjp()), graphspec.load(MLP)
    assert [s.op.name for s in ours.plan.steps] == ["dense", "dense", "sum"]  # one step per call
    loss, grads = ours.value_and_grad()
    want_loss, want = body.value_and_grad()
    assert loss == want_loss
    for n in want:  # h (1 - h) against the stable sigmoid slope: equal to rounding
        np.testing.assert_allclose(grads[n], want[n], rtol=1e-12, atol=1e-17, err_msg=n)
    rep = gradcheck(ours, blame=True, taylor=True)
    assert rep.status == "PASS" and rep.modes and all(m.status == "PASS" for m in rep.modes)


def test_a_wrong_hand_written_vjp_is_used_failed_and_blamed_at_its_call():
    doc = _with_vjp(dh_dz={"op": "mul", "args": ["h", 1.0]})  # forgot the (1 - h) of sigmoid's slope
    g = graphspec.load(doc)
    right = graphspec.load(MLP).grad()
    assert not np.allclose(g.grad()["W1"], right["W1"])  # the spec's gradients are the user's
    rep = gradcheck(g, blame=True)
    assert rep.status == "FAIL"
    assert {(n.node, n.op, n.mode) for n in rep.blamed} >= {("h1", "dense", "vjp"), ("h2", "dense", "vjp")}
    assert all(n.mode == "vjp" for n in rep.blamed)  # the JVP comes from the body: right
    assert any(m.status == "FAIL" for m in rep.modes)  # the body's forward mode disagrees with the written backward


def test_a_null_grad_means_no_gradient_for_that_arg():
    doc = _with_vjp()
    doc["functions"]["dense"]["vjp"]["grads"]["x"] = None
    g = graphspec.load(doc)
    grads = g.grad()
    np.testing.assert_array_equal(grads["X"], np.zeros((2, 2)))  # nothing flows to X, nor to h1's own
    np.testing.assert_array_equal(grads["W1"], np.zeros((2, 3)))  # params: h2's x is h1, whose cotangent is cut
    assert np.any(grads["W2"] != 0)


@pytest.mark.parametrize(("change", "wanted"), [
    (lambda v: v["nodes"].update(dz={"op": "mul", "args": ["gg", "dh_dz"]}),
     "functions.dense.vjp.nodes.dz.args[0]: unknown name 'gg', called from nodes.h1, nodes.h2 (did you mean 'g'?)"),
    (lambda v: v["grads"].pop("b"), "functions.dense.vjp.grads: grads has no entry for arg 'b' (a node name, or null: "
                                    "no gradient), called from nodes.h1, nodes.h2"),
    (lambda v: v["grads"].update(bb="db"), "functions.dense.vjp.grads.bb: 'bb' is not an arg of the function, called "
                                           "from nodes.h1, nodes.h2 (did you mean 'b'?)"),
    (lambda v: v["nodes"].update(a={"op": "neg", "args": ["g"]}),
     "functions.dense.vjp.nodes.a: vjp node 'a' has the name of an arg, an attr or a body node, called from nodes.h1, "
     "nodes.h2"),
])
def test_errors_in_a_hand_written_vjp_are_located(change, wanted):
    doc = _with_vjp()
    change(doc["functions"]["dense"]["vjp"])
    assert wanted in _errors(doc)


def test_the_lecture_s_delta_rules_written_by_hand_hold_and_a_slip_is_blamed_at_its_call():
    """specs/lecture/network_delta.json (docs/lecture.md): its expectations (network.json's numbers,
    from autograd) hold through the hand-written backward; without (1 - y) in f' it is blamed."""
    import json
    from pathlib import Path

    from graphspec import expect

    path = Path(__file__).resolve().parent.parent / "specs" / "lecture" / "network_delta.json"
    g = graphspec.load(path)
    checks = expect.compare(g.evaluate(), g.spec.expect)
    assert len(checks) >= 14 and all(c.ok for c in checks)
    doc = json.loads(path.read_text())
    doc["functions"]["sigmoid_unit"]["vjp"]["nodes"]["f_prime"] = {"op": "mul", "args": ["y", 1.0]}
    rep = gradcheck(graphspec.load(doc, base=path.parent), blame=True)
    assert rep.status == "FAIL"
    assert {(n.node, n.op, n.arg_name) for n in rep.blamed} == {
        ("y6", "sigmoid_unit", "y_in (y45)"), ("y6", "sigmoid_unit", "w (W3)"), ("y6", "sigmoid_unit", "b (b3)")}
    assert "node 'y6' (sigmoid_unit): its VJP for arg 1 w (W3) is wrong" in " ".join(rep.text().split())


def test_the_exercise_submission_fails_and_is_blamed_at_the_slipped_rule(capsys):
    """specs/exercises/network_delta_submission.json: the hidden layers' rule has f' = y; its
    forward is right (run passes), check fails, and blame names sigmoid_layer's VJP only."""
    from pathlib import Path

    from graphspec.cli import main

    path = Path(__file__).resolve().parent.parent / "specs" / "exercises" / "network_delta_submission.json"
    assert main(["run", str(path)]) == 0 and "all expectations hold" in capsys.readouterr().out
    rep = gradcheck(graphspec.load(path), blame=True)
    assert rep.status == "FAIL"
    assert {(n.node, n.op, n.mode) for n in rep.blamed} == {("y123", "sigmoid_layer", "vjp"), ("y45", "sigmoid_layer", "vjp")}
    assert main(["check", str(path)]) == 1


def test_the_mlp_written_with_a_dense_function_is_mlp_json_bit_for_bit():
    from pathlib import Path

    specs = Path(__file__).resolve().parent.parent / "specs" / "mlp"
    a, b = graphspec.load(specs / "mlp.json"), graphspec.load(specs / "mlp_dense.json")
    assert len(a.plan.steps) == len(b.plan.steps)
    (la, ga), (lb, gb) = a.value_and_grad(), b.value_and_grad()
    assert la == lb and all(np.array_equal(ga[k], gb[k]) for k in ga)


# each kind of slip in a hand-written backward: caught and blamed at the function, the arg and the call
SLIPS = {
    "factor": ({"db": {"op": "mul", "args": ["db_sum", 2.0]}, "db_sum": {"op": "sum", "args": ["dz"], "attrs": {"axis": 0}}},
               {"b"}),
    "sign": ({"dx": {"op": "neg", "args": ["dx_right"]}, "dx_right": {"op": "matmul", "args": ["dz", "WT"]}}, {"x"}),
    "transpose": ({"dW": {"op": "transpose", "args": ["dW_right"]}, "dW_right": {"op": "matmul", "args": ["xT", "dz"]}},
                  {"W"}),
    "missing term": ({"dh_dz": {"op": "mul", "args": ["h", 1.0]}}, {"x", "W", "b"}),
    # the first example's row alone, not the sum over the batch
    "missing sum over the batch": ({"db": {"op": "slice", "args": ["dz"], "attrs": {"slices": [[0, 1]]}}}, {"b"}),
}


def _square_mlp() -> dict:
    """Square layers (2x2 weights), so that a transposed dW has the right shape and only its numbers are wrong."""
    doc = copy.deepcopy(MLP)
    doc["params"] = {"W1": {"value": [[0.1, 0.2], [0.4, -0.5]]}, "b1": {"value": [0.0, 0.1]},
                     "W2": {"value": [[0.2, -0.7], [0.1, 0.3]]}, "b2": {"value": [0.05, -0.2]}}
    return doc


@pytest.mark.parametrize("slip", SLIPS)
def test_each_kind_of_slip_in_a_hand_written_vjp_is_blamed_at_function_arg_and_call(slip):
    nodes, wrong_args = SLIPS[slip]
    doc = _square_mlp()
    doc["functions"]["dense"] = copy.deepcopy(DENSE_VJP)
    doc["functions"]["dense"]["vjp"]["nodes"].update(copy.deepcopy(nodes))
    right = _square_mlp()
    right["functions"]["dense"] = copy.deepcopy(DENSE_VJP)
    assert gradcheck(graphspec.load(right), blame=True).status == "PASS"
    rep = gradcheck(graphspec.load(doc), blame=True)
    assert rep.status == "FAIL", slip
    blamed = {(n.node, n.op, n.arg_name.split()[0]) for n in rep.blamed if n.mode == "vjp"}
    want = {(call, "dense", a) for call in ("h1", "h2") for a in wrong_args}  # at both calls
    assert blamed == want, (slip, blamed)


def test_explain_walks_a_hand_written_backward_with_its_numbers():
    """The slides' delta = g f'(e6) and (delta4, delta5) = delta (W46, W56), as explain shows them at y6,
    against numbers worked out here from the forward values."""
    from pathlib import Path

    from graphspec.explain import explain

    g = graphspec.load(Path(__file__).resolve().parent.parent / "specs" / "lecture" / "network_delta.json")
    lines = explain(g).lines
    v = g.evaluate().values
    y6, y45 = float(v["y6"]), v["y45"]
    delta = (y6 - 0.5) * y6 * (1 - y6)
    at = lines.index(next(line for line in lines if line.startswith("  y6 = sigmoid_unit(y45, W3, b3), dL/dy6 = ")))
    assert lines[at + 1] == "    the backward written by hand in function 'sigmoid_unit', with g = dL/dy6:"
    shown = {line.split(" = ")[0].strip(): line.split(" = ")[-1] for line in lines[at + 2:at + 7]}
    assert float(shown["delta"]) == pytest.approx(delta, rel=1e-5)
    d45 = [float(t) for t in shown["dy_in"].strip("[]").split(",")]
    np.testing.assert_allclose(d45, delta * np.array([0.9, -0.5]), rtol=1e-5)
    np.testing.assert_allclose([float(t) for t in shown["dw"].strip("[]").split(",")], delta * y45, rtol=1e-5)
    assert lines[at + 7] == "      grads: y_in <- dy_in, w <- dw, b <- delta"


# -- a hand-written forward-mode rule ------------------------------------------------------------

DENSE_JVP = {"nodes": {  # t_h = h (1 - h) (t_x W + x t_W + t_b)
    "txW": {"op": "matmul", "args": ["t_x", "W"]}, "xtW": {"op": "matmul", "args": ["x", "t_W"]},
    "s": {"op": "add", "args": ["txW", "xtW"]}, "tz": {"op": "add", "args": ["s", "t_b"]},
    "one_minus_h": {"op": "sub", "args": [1.0, "h"]}, "slope": {"op": "mul", "args": ["h", "one_minus_h"]},
    "th": {"op": "mul", "args": ["slope", "tz"]}}, "tangent": "th"}


@pytest.mark.parametrize("with_vjp", [False, True])
def test_a_hand_written_jvp_is_forward_mode_and_checked(with_vjp):
    doc = copy.deepcopy(MLP)
    doc["functions"]["dense"] = {**copy.deepcopy(DENSE_VJP if with_vjp else DENSE), "jvp": copy.deepcopy(DENSE_JVP)}
    g, body = graphspec.load(doc), graphspec.load(MLP)
    t = {"W1": np.ones((2, 3)), "b2": np.array([0.5])}
    (outs, tans), (outs0, tans0) = g.jvp(t), body.jvp(t)
    assert outs["L"] == outs0["L"]
    np.testing.assert_allclose(tans["L"], tans0["L"], rtol=1e-12)
    np.testing.assert_allclose(g.grad()["W1"], body.grad()["W1"], rtol=1e-12)  # the body's reverse mode, or the vjp
    rep = gradcheck(g, blame=True)
    assert rep.status == "PASS" and rep.modes and all(m.status == "PASS" for m in rep.modes)
    # a slip in the jvp (the slope forgotten): forward mode disagrees, and the JVP is blamed at the calls
    doc["functions"]["dense"]["jvp"]["nodes"]["th"] = {"op": "mul", "args": ["tz", 1.0]}
    rep = gradcheck(graphspec.load(doc), blame=True)
    assert any(m.status == "FAIL" for m in rep.modes)
    assert {(n.node, n.op, n.mode) for n in rep.blamed} >= {("h1", "dense", "jvp"), ("h2", "dense", "jvp")}
    assert all(n.mode == "jvp" for n in rep.blamed)


def test_draw_folds_each_call_into_one_box_and_unfolds_on_request(capsys):
    from graphspec.draw import to_dot

    g = graphspec.load(MLP)
    folded, unfolded = to_dot(g, values=False), to_dot(g, values=False, unfold=True)
    assert '"h1" [shape=box, style="rounded,filled"' in folded and "<B>dense</B>" in folded and "h1/z" not in folded
    assert ['"X" -> "h1" [label="arg 0", fontsize=8];', '"W1" -> "h1" [label="arg 1", fontsize=8];',
            '"b1" -> "h1" [label="arg 2", fontsize=8];'] == [line.strip() for line in folded.splitlines()
                                                              if line.strip().endswith(("fontsize=8];",))][:3]
    assert '"h1/z"' in unfolded and '"h1/a" -> "h1/z"' in unfolded and "dense" not in unfolded
    # a call of a function with a hand-written backward is one node anyway, named by its function
    doc = copy.deepcopy(MLP)
    doc["functions"]["dense"] = copy.deepcopy(DENSE_VJP)
    hand = to_dot(graphspec.load(doc), values=False)
    assert '"h1" [shape=ellipse' in hand and "<B>dense</B>" in hand
    from graphspec.cli import main

    assert main(["draw", "--unfold", "--no-values", str(Path(__file__).resolve().parent.parent / "specs" / "mlp" /
                                                         "mlp_dense.json")]) == 0
    assert '"z1/xW"' in capsys.readouterr().out


def test_the_op_listing_knows_a_spec_s_functions(capsys):
    import json

    from graphspec.cli import main
    from graphspec.ops import OPS

    spec = str(Path(__file__).resolve().parent.parent / "specs" / "lecture" / "network_delta.json")
    assert main(["ops", "--spec", spec, "--format", "json"]) == 0
    rows = {r["op"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(OPS) | {"sigmoid_layer", "sigmoid_unit"}
    unit = rows["sigmoid_unit"]
    assert unit["function"] and unit["args"] == "y_in, w, b" and "hand-written vjp" in unit["doc"]
    assert main(["ops", "sigmoid_layer", "--spec", spec]) == 0
    assert "sigmoid_layer(y_in, W, b): function of the spec with a hand-written vjp" in capsys.readouterr().out
    assert main(["ops", "sigmoid_layr", "--spec", spec]) == 2
    assert "did you mean 'sigmoid_layer'?" in capsys.readouterr().err


def test_explain_folds_each_call_into_one_step_whose_contributions_are_the_gradients(capsys):
    """Folded (the default), a call is one forward line and one backward step, its outside args'
    contributions summed over the body's VJPs; they add up to the gradients. --unfold walks the body."""
    from graphspec.cli import main
    from graphspec.explain import explain

    g = graphspec.load(MLP)
    lines = explain(g).lines
    assert not any("h1/" in line for line in lines)
    assert any(line.startswith("  h1 = dense(X, W1, b1) = dense(") for line in lines)
    grads = g.evaluate().grads
    for arg in ("W1", "b1", "X"):  # each is read by h1's body alone: the one contribution is the gradient
        (line,) = [x for x in lines if x.startswith(f"    dL/d{arg} = dense VJP of dL/dh1 = ")]
        shown = np.array(json.loads(line.split(" = ")[-1].replace(" ", ",").replace(",,", ",")))
        np.testing.assert_allclose(shown, grads[arg], rtol=1e-5)
    unfolded = explain(g, unfold=True).lines
    assert any(line.startswith("  h1/z = add(h1/a, b1)") for line in unfolded)
    spec = str(Path(__file__).resolve().parent.parent / "specs" / "mlp" / "mlp_dense.json")
    assert main(["explain", spec, "--unfold"]) == 0 and "z1/xW = matmul(X, W1)" in capsys.readouterr().out
