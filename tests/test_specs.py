"""Every spec in specs/ runs with exit 0 and its expectations hold; the lecture's headline numbers.

The first part sweeps specs/**/*.json: each one goes through the CLI in-process (exit 0), must carry
an `expect` block, and every expectation must hold through the Python API. The second part asserts
the lecture's numbers directly, with tolerances tighter than the slides' rounding, from formulas
written here (numpy, HIPS autograd), not from the specs' own `expect` blocks.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

import graphspec
from graphspec import expect
from graphspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS_DIR = ROOT / "specs"
SPECS = sorted(SPECS_DIR.rglob("*.json"))
LECTURE = SPECS_DIR / "lecture"


def _id(path: Path) -> str:
    return str(path.relative_to(SPECS_DIR))


def lecture(name: str):
    return graphspec.load(LECTURE / f"{name}.json")


# --- the sweep ------------------------------------------------------------------------------------

def test_the_specs_are_all_there():
    names = {_id(p) for p in SPECS}
    want = {"lecture/mul.json", "lecture/linear.json", "lecture/sgd_step1.json", "lecture/sgd_step2.json",
            "lecture/sgd_step3.json", "lecture/sgd_progress.json", "lecture/softmax.json", "lecture/hinge.json",
            "lecture/full_loss.json", "lecture/slope.json", "lecture/network.json", "mlp/mlp.json",
            "losses/mse.json", "losses/softmax_cross_entropy_labels.json",
            "losses/softmax_cross_entropy_targets.json", "losses/hinge.json", "losses/l2.json",
            "lecture/network_delta.json", "exercises/network_delta_submission.json", "mlp/mlp_dense.json", "rnn/rnn.json"}
    assert want <= names, sorted(want - names)


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_spec_runs_with_exit_0(path, capsys):
    assert main(["run", str(path)]) == 0, capsys.readouterr()
    assert "all expectations hold" in capsys.readouterr().out


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_spec_expectations_exist_and_hold(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc.get("$schema", "").endswith("graphspec.schema.json")
    assert (path.parent / doc["$schema"]).resolve() == ROOT / "graphspec.schema.json"
    assert doc.get("description"), "every spec says what it shows"
    graph = graphspec.load(path)
    ex = graph.spec.expect
    assert ex is not None and (ex.values or ex.grads), "every spec carries expectations"
    checks = expect.compare(graph.evaluate(check_finite="raise"), ex)
    assert len(checks) == len(ex.values) + len(ex.grads)
    bad = [f"{c.kind} {c.name}: expected {c.expected}, got {c.got}" for c in checks if not c.ok]
    assert not bad, bad


@pytest.mark.parametrize("path", [p for p in SPECS if "exercises" not in p.parts], ids=_id)
def test_spec_gradients_pass_the_gradient_check(path):
    """Strict: no spec sits on a kink (relu at 0, a hinge margin at 0), so every check is a plain pass."""
    from graphspec.checker import gradcheck

    report = gradcheck(graphspec.load(path), strict=True)
    assert report.status == "PASS" and report.ok, report.text()


def test_every_spec_validates(capsys):
    assert main(["validate", *map(str, SPECS)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", [p for p in SPECS if "train" in json.loads(p.read_text(encoding="utf-8"))], ids=_id)
def test_train_blocks_validate_and_their_data_exist(path):
    train = graphspec.load(path).spec.train
    assert train is not None and train.data
    if isinstance(train.data, dict):  # else generated: tests/test_train_results.py trains those
        for name, file in train.data.items():
            assert (path.parent / file).is_file(), f"{name}: {file}"


# --- the chain-rule slide: z = x * y, dL/dz = 5 ---------------------------------------------------

def test_mul_chain_rule():
    r = lecture("mul").evaluate()
    assert r.values["z"] == 6.0
    assert r.grads["x"] == 15.0 and r.grads["y"] == 10.0  # 5 * y, 5 * x


# --- the linear model and the lecture's training log --------------------------------------------

def test_linear_loss_1_gradient_minus_2():
    r = lecture("linear").evaluate()
    assert r.loss == 1.0
    assert r.grads["w"] == -2.0
    assert r.grads["y_hat"] == -2.0  # dloss/dy_hat = 2 (y_hat - y)


def _column(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1)


def test_the_training_log_replayed_through_graphspec():
    """grad: 1.0 2.0 -2.0 / grad: 2.0 4.0 -7.84 / grad: 3.0 6.0 -16.2288 / progress: 0 4.919240100095999,
    replayed with per-sample SGD (lr 0.01) on the data files of sgd_step1's train block."""
    graph = lecture("sgd_step1")
    train = graph.spec.train
    assert train.optimizer.sgd.lr == 0.01 and train.batch_size == 1 and train.shuffle is False
    xs, ys = (_column(LECTURE / train.data[k]) for k in ("x", "y"))
    assert xs.tolist() == [1.0, 2.0, 3.0] and ys.tolist() == [2.0, 4.0, 6.0]
    w, log, ws = 1.0, [], []
    for x, y in zip(xs, ys, strict=True):
        ws.append(w)
        graph.params["w"] = np.asarray(w)
        g = float(graph.grad({"x": [x], "y": [y]})["w"])
        log.append(f"grad: {x} {y} {round(g, 4)}")
        w = w - train.optimizer.sgd.lr * g
        graph.params["w"] = np.asarray(w)
        progress = float(graph.run({"x": [x], "y": [y]})["loss"])  # the loop's l = loss(x, y) after the update
    assert log == ["grad: 1.0 2.0 -2.0", "grad: 2.0 4.0 -7.84", "grad: 3.0 6.0 -16.2288"]
    assert w == pytest.approx(1.260688, abs=1e-12)
    assert progress == pytest.approx(4.919240100095999, rel=1e-12)
    # each step's spec sits at the w of that step, and the progress spec at the final w
    for name, want in zip(("sgd_step1", "sgd_step2", "sgd_step3", "sgd_progress"), [*ws, w], strict=True):
        assert float(lecture(name).params["w"]) == pytest.approx(want, abs=1e-12), name


@pytest.mark.parametrize("name,x,w,g", [("sgd_step1", 1.0, 1.0, -2.0), ("sgd_step2", 2.0, 1.02, -7.84),
                                        ("sgd_step3", 3.0, 1.0984, -16.2288), ("sgd_progress", 3.0, 1.260688, -13.307616)])
def test_each_logged_gradient_is_2x_xw_minus_y(name, x, w, g):
    assert 2 * x * (x * w - 2 * x) == pytest.approx(g, rel=1e-12)  # y = 2x in the lecture's data
    assert float(lecture(name).grad()["w"]) == pytest.approx(g, rel=1e-12)


# --- softmax: 0.13 / 0.87 / 0.00, loss 2.04 (natural log), the slide's 0.89 is log10 ----------------

def test_softmax_slide():
    r = lecture("softmax").evaluate()
    s = np.array([3.2, 5.1, -1.7])
    p = np.exp(s) / np.exp(s).sum()
    np.testing.assert_allclose(r.values["unnormalized"], np.exp(s), rtol=1e-14)
    assert np.round(r.values["unnormalized"], 1).tolist() == [24.5, 164.0, 0.2]  # the slide prints 0.18
    assert round(float(r.values["unnormalized"][2]), 2) == 0.18
    np.testing.assert_allclose(r.values["probs"], p, rtol=1e-14)
    assert np.round(r.values["probs"], 2).tolist() == [0.13, 0.87, 0.0]
    assert float(r.loss) == pytest.approx(-math.log(p[0]), rel=1e-14)
    assert round(float(r.loss), 2) == 2.04
    assert float(r.values["loss_by_formula"]) == pytest.approx(float(r.loss), rel=1e-14)  # -y . log(y_hat)
    # the slide's "-log(0.13) = 0.89" is the base-10 logarithm
    assert round(-math.log10(0.13), 2) == 0.89 and round(-math.log(0.13), 2) == 2.04
    assert float(r.values["loss_log10"]) == pytest.approx(-math.log10(p[0]), rel=1e-14)
    assert round(float(r.values["loss_log10"]), 2) == 0.89
    np.testing.assert_allclose(r.grads["scores"], p - [1, 0, 0], rtol=1e-12)


# --- the hinge table: 2.9, 0, 12.9 (the slide's 10.9 drops the margin) -------------------------------

def test_hinge_table():
    r = lecture("hinge").evaluate()
    np.testing.assert_allclose(r.values["losses"], [2.9, 0.0, 12.9], rtol=1e-14, atol=1e-14)
    assert float(r.values["data_loss"]) == pytest.approx(15.8 / 3, rel=1e-14)
    # 10.9 = 5.3 + 5.6 is what the slide wrote for the frog example: the same sum with margin 0
    assert float(r.values["losses_margin0"][2]) == pytest.approx(10.9, rel=1e-14)
    third = max(0, 2.2 - (-3.1) + 1) + max(0, 2.5 - (-3.1) + 1)
    assert third == pytest.approx(12.9) and third != pytest.approx(10.9)
    np.testing.assert_allclose(r.grads["scores"], np.array([[-1, 0, 1], [1, 0, 1], [0, 0, -2]]) / 3, rtol=1e-14)


# --- follow the slope --------------------------------------------------------------------------------

def test_follow_the_slope():
    assert float(lecture("slope").run()["dW_0"]) == pytest.approx(-2.5, rel=1e-9)


# --- the full loss -----------------------------------------------------------------------------------

def test_full_loss_is_data_loss_plus_lambda_R():
    g = lecture("full_loss")
    r = g.evaluate()
    W, b = g.params["W"], g.params["b"]
    X, y, lam = r.values["X"], r.values["labels"], float(r.values["lam"])

    def loss(W, b):
        s = anp.dot(W, X) + b
        return anp.mean(anp.log(anp.sum(anp.exp(s), axis=0)) - s[y, np.arange(3)]) + lam * anp.sum(W ** 2)

    assert float(r.loss) == pytest.approx(loss(W, b), rel=1e-13)
    assert float(r.loss) == pytest.approx(float(r.values["data_loss"]) + lam * float(np.sum(W ** 2)), rel=1e-14)
    np.testing.assert_allclose(r.grads["W"], grad(loss, 0)(W, b), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.grads["b"], grad(loss, 1)(W, b), rtol=1e-12, atol=1e-15)


# --- the 3-layer sigmoid network: the slides' delta formulas ----------------------------------------

def test_network_deltas_follow_the_slides():
    g = lecture("network")
    r = g.evaluate()
    v, d = r.values, r.grads
    W2, W3 = g.params["W2"], g.params["W3"]
    delta = float(v["y6"] - v["t"])  # the error signal: loss = 0.5 (y6 - t)^2
    f6 = float(v["y6"] * (1 - v["y6"]))
    f45 = v["y45"] * (1 - v["y45"])
    assert float(d["y6"]) == pytest.approx(delta, rel=1e-14)
    # delta4 = delta W46 f'6, delta5 = delta W56 f'6
    np.testing.assert_allclose(d["y45"], delta * W3 * f6, rtol=1e-13)
    # delta1 = delta4 W14 f'4 + delta5 W15 f'5 = delta f'6 (W14 W46 f'4 + W56 W15 f'5), and so on for 2, 3
    np.testing.assert_allclose(d["y123"], W2 @ (d["y45"] * f45), rtol=1e-13)
    assert float(d["y123"][0]) == pytest.approx(delta * f6 * (W2[0, 0] * W3[0] * f45[0] + W3[1] * W2[0, 1] * f45[1]),
                                                rel=1e-13)
    # the generalization slide: delta_j = sigma'(z_j) sum_i delta_i W_ij, the gradient at the weighted sum
    np.testing.assert_allclose(d["e123"], v["y123"] * (1 - v["y123"]) * d["y123"], rtol=1e-13)
    # weight updates: dloss/dw_mn = delta_n (at the weighted sum) * input m
    np.testing.assert_allclose(d["W1"], np.outer(v["x"], d["e123"]), rtol=1e-13)
    np.testing.assert_allclose(d["W2"], np.outer(v["y123"], d["e45"]), rtol=1e-13)
    np.testing.assert_allclose(d["W3"], v["y45"] * d["e6"], rtol=1e-13)


# --- the MLP -----------------------------------------------------------------------------------------

def test_mlp_loss_and_gradients_from_the_params_graphspec_drew():
    """Independent of how the init streams are drawn: recompute from graph.params with autograd."""
    g = graphspec.load(SPECS_DIR / "mlp" / "mlp.json")
    r = g.evaluate()
    X, y, lam = r.values["X"], r.values["y"], float(r.values["lam"])
    assert X.shape == (60, 2) and y.shape == (60,) and sorted(set(y.tolist())) == [0, 1, 2]
    names = ["W1", "b1", "W2", "b2"]
    P = [g.params[n] for n in names]
    assert P[0].shape == (2, 8) and P[2].shape == (8, 3)
    assert not P[1].any() and not P[3].any()  # zeros init
    assert np.all(np.abs(P[2]) <= math.sqrt(6 / 11))  # xavier uniform bound for 8 -> 3

    def loss(W1, b1, W2, b2):
        z = anp.dot(anp.maximum(anp.dot(X, W1) + b1, 0.0), W2) + b2
        m = anp.max(z, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(z - m), axis=1)) + m[:, 0]
        return anp.mean(lse - z[np.arange(len(y)), y]) + lam * (anp.sum(W1 ** 2) + anp.sum(W2 ** 2))

    assert float(r.loss) == pytest.approx(loss(*P), rel=1e-13)
    for i, n in enumerate(names):
        np.testing.assert_allclose(r.grads[n], grad(loss, i)(*P), rtol=1e-11, atol=1e-14, err_msg=n)


def test_mlp_data_is_what_the_script_writes(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_mlp_data.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("X.csv", "y.csv"):
        assert (tmp_path / name).read_bytes() == (SPECS_DIR / "mlp" / "data" / name).read_bytes(), name


# --- the train blocks, run ---------------------------------------------------------------------------

def test_training_sgd_step1_reproduces_the_lecture_log():
    from graphspec.train import train

    graph = lecture("sgd_step1")
    steps = []
    log = train(graph, on_step=steps.append, loss_after=True)
    assert [round(float(s.grads["w"]), 4) for s in steps] == [-2.0, -7.84, -16.2288]
    assert float(graph.params["w"]) == pytest.approx(1.260688, abs=1e-12)
    assert steps[-1].loss_after == pytest.approx(4.919240100095999, rel=1e-12)  # "progress: 0 4.919240100095999"
    assert len(log) == 1 and log[0].epoch == 0


def test_training_the_mlp_learns_the_blobs():
    from graphspec.train import train

    graph = graphspec.load(SPECS_DIR / "mlp" / "mlp.json")
    start = float(graph.evaluate().loss)
    log = train(graph)
    assert len(log) == graph.spec.train.epochs
    assert log[-1].accuracy == 1.0
    assert float(graph.evaluate().loss) < 0.1 < start


# --- graphspec bugs found while writing the specs (fixed) --------------------------------------------

def test_run_prints_the_description_verbatim(tmp_path, capsys):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"graphspec": "1", "description": "W1[m][n], x[/i]",
                                "inputs": {"x": {"value": 2.0}}, "nodes": {"z": {"op": "mul", "args": ["x", "x"]}}}))
    assert main(["run", str(spec)]) == 0
    assert "W1[m][n], x[/i]" in capsys.readouterr().out
