"""train.py: the lecture's SGD log, and sgd/adam against PyTorch's optimizers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphspec
from graphspec.cli import main
from graphspec.train import train

LINEAR = {"graphspec": "1",
          "inputs": {"x": {"shape": ["N"], "value": [1.0, 2.0, 3.0], "grad": False},
                     "y": {"shape": ["N"], "value": [2.0, 4.0, 6.0], "grad": False}},
          "params": {"w": {"value": 1.0}},
          "nodes": {"y_hat": {"op": "mul", "args": ["x", "w"]}, "d": {"op": "sub", "args": ["y_hat", "y"]},
                    "sq": {"op": "square", "args": ["d"]}, "loss": {"op": "mean", "args": ["sq"]}},
          "loss": "loss", "train": {"optimizer": {"sgd": {"lr": 0.01}}, "epochs": 1, "batch_size": 1}}


def test_the_lectures_training_log(tmp_path, capsys):
    """grad: 1.0 2.0 -2.0 / grad: 2.0 4.0 -7.84 / grad: 3.0 6.0 -16.2288 / progress: 0 4.919240100095999"""
    path = tmp_path / "linear.json"
    path.write_text(json.dumps(LINEAR))
    assert main(["train", str(path), "--log-steps", "--format", "json", "-o", str(tmp_path / "w.npz")]) == 0
    doc = json.loads(capsys.readouterr().out)
    # the reference: the same loop written out by hand, w <- w - lr * 2x(xw - y)
    w, grads, after = 1.0, [], None
    for x, y in [(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]:
        g = 2 * x * (x * w - y)
        grads.append(g)
        w -= 0.01 * g
        after = (x * w - y) ** 2
    assert [s["grads"]["w"] for s in doc["steps"]] == pytest.approx(grads, rel=1e-15)
    assert grads == pytest.approx([-2.0, -7.84, -16.2288], rel=1e-12)
    assert doc["steps"][-1]["loss_after"] == pytest.approx(after, rel=1e-14)
    assert after == pytest.approx(4.919240100095999, rel=1e-14)
    assert doc["params"]["w"] == pytest.approx(1.260688, rel=1e-14)
    with np.load(tmp_path / "w.npz") as z:
        assert float(z["w"]) == pytest.approx(w, rel=1e-15)


def _mlp(optimizer):
    r = np.random.default_rng(0)
    return {"graphspec": "1", "seed": 3,
            "inputs": {"X": {"value": r.normal(size=(12, 4)).tolist()},
                       "y": {"value": r.integers(0, 3, 12).tolist(), "dtype": "int64"}},
            "params": {"W1": {"shape": [4, 8], "init": "xavier"}, "b1": {"shape": [8], "init": "zeros"},
                       "W2": {"shape": [8, 3], "init": "xavier"}},
            "nodes": {"a": {"op": "matmul", "args": ["X", "W1"]}, "z": {"op": "add", "args": ["a", "b1"]},
                      "h": {"op": "tanh", "args": ["z"]}, "s": {"op": "matmul", "args": ["h", "W2"]},
                      "loss": {"op": "softmax_cross_entropy", "args": ["s", "y"]}},
            "loss": "loss", "train": {"optimizer": optimizer, "epochs": 5, "batch_size": 4, "metrics": ["loss", "accuracy"]}}


@pytest.mark.parametrize("optimizer", [{"sgd": {"lr": 0.1, "momentum": 0.9}}, {"adam": {"lr": 0.01, "betas": [0.8, 0.99]}}])
def test_optimizers_match_torch(optimizer):
    import torch  # in the test extra: never skipped
    doc = _mlp(optimizer)
    g = graphspec.load(doc)
    init = {k: v.copy() for k, v in g.params.items()}
    log = train(g)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    opt = (torch.optim.SGD(tp.values(), lr=0.1, momentum=0.9) if "sgd" in optimizer
           else torch.optim.Adam(tp.values(), lr=0.01, betas=(0.8, 0.99), eps=1e-8))
    X = torch.tensor(doc["inputs"]["X"]["value"], dtype=torch.float64)
    y = torch.tensor(doc["inputs"]["y"]["value"])
    for _ in range(5):
        for start in range(0, 12, 4):
            opt.zero_grad()
            h = torch.tanh(X[start:start + 4] @ tp["W1"] + tp["b1"])
            torch.nn.functional.cross_entropy(h @ tp["W2"], y[start:start + 4]).backward()
            opt.step()
    for k in init:
        np.testing.assert_allclose(g.params[k], tp[k].detach().numpy(), rtol=1e-10, atol=1e-12)
    assert len(log) == 5 and log[0].accuracy is not None


def test_training_lowers_the_loss_and_shuffle_is_seeded():
    doc = _mlp({"sgd": {"lr": 0.5}})
    doc["train"].update(epochs=30, shuffle=True)
    a, b = graphspec.load(doc), graphspec.load(doc)
    log_a, log_b = train(a), train(b)
    assert log_a[-1].loss < 0.5 * log_a[0].loss
    assert [e.loss for e in log_a] == [e.loss for e in log_b]


def test_a_non_scalar_loss_is_not_trained(tmp_path, capsys):
    """A loss with a seed ("reduction": "none") has gradients but no number to log: training it
    raised a TypeError at float(loss); it is a located error, as PyTorch wants a scalar loss."""
    doc = json.loads(json.dumps(LINEAR))
    doc["nodes"]["loss"] = {"op": "abs", "args": ["sq"]}
    doc["loss"] = {"node": "loss", "seed": [1.0, 1.0, 1.0]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    assert main(["train", str(path), "-o", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss: training needs a scalar loss, 'loss' has shape [3]" in err


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_epochs_below_one_is_a_usage_error(tmp_path, capsys, epochs):
    """--epochs 0 trained the spec's own number of epochs (0 is falsy), -1 none at all."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps(LINEAR))
    assert main(["train", str(path), "--epochs", epochs, "-o", str(tmp_path / "p.npz")]) == 2
    assert capsys.readouterr().err == "error: --epochs must be at least 1\n"
    assert not (tmp_path / "p.npz").exists()


def test_training_data_with_no_rows(tmp_path, capsys):
    """x = [] and y = []: the whole-data batch had 0 rows and range(0, 0, 0) raised ValueError."""
    doc = json.loads(json.dumps(LINEAR))
    doc["inputs"]["x"]["value"] = doc["inputs"]["y"]["value"] = []
    del doc["train"]["batch_size"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    assert main(["train", str(path), "-o", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.data: no training data: x, y have 0 rows" in err


DIVERGES = {**LINEAR, "train": {"optimizer": {"sgd": {"lr": 100.0}}, "epochs": 200}}


def test_a_diverging_training_stops_at_the_first_nonfinite_loss(tmp_path, capsys):
    """lr 100 on the linear model: the loss overflows to inf at step 53. Training went on with
    nan params, saved them and exited 0; --format json then raised on the inf."""
    g = graphspec.load(DIVERGES)
    with pytest.raises(graphspec.NonFiniteError, match=r"training stopped at step 53 \(epoch 52\): first non-finite "
                                                       r"value \(inf\) produced by square") as e:
        train(g)
    assert e.value.loc == "nodes.sq"
    assert np.isfinite(g.params["w"])  # the last update before the inf
    path = tmp_path / "d.json"
    path.write_text(json.dumps(DIVERGES))
    for fmt in ("table", "json"):
        assert main(["train", str(path), "-o", str(tmp_path / "w.npz"), "--format", fmt]) == 1
        assert "training stopped at step 53" in capsys.readouterr().err
    assert not (tmp_path / "w.npz").exists()  # no nan params saved
    with pytest.warns(graphspec.NonFiniteWarning):  # the API can go on, as PyTorch would
        train(graphspec.load(DIVERGES), epochs=60, check_finite="warn")


def test_the_train_log_as_json_holds_a_nonfinite_loss_as_null():
    from graphspec.render import train_json
    from graphspec.train import EpochLog, StepLog

    g = graphspec.load(LINEAR)
    doc = train_json(g, [StepLog(0, 1, slice(0, 3), float("inf"), {"w": np.array(np.nan)}, float("nan"))],
                     [EpochLog(0, float("inf"))], "w.npz")
    assert json.loads(json.dumps(doc, allow_nan=False))["epochs"][0]["loss"] is None
    assert doc["steps"][0]["loss"] is None and doc["steps"][0]["loss_after"] is None
