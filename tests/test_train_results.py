"""Real results: the CS231n spiral case study (2-layer ReLU network vs linear softmax) and
scikit-learn's digits on a held-out split; the built-in data sets themselves."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.cli import main
from graphspec.train import spiral, training_data, xor
from graphspec.values import read_file

MLP = Path(__file__).resolve().parent.parent / "specs" / "mlp"
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


def test_spiral_net_reaches_97_percent_and_the_linear_softmax_about_half(tmp_path, capsys):
    for name in ("spiral", "spiral_linear"):
        assert main(["train", str(MLP / f"{name}.json"), "-o", str(tmp_path / f"{name}.npz"), "--format", "json"]) == 0
    net, linear = (json.loads(x) for x in capsys.readouterr().out.replace("}\n{", "}\n\x00{").split("\x00"))
    assert net["accuracy"] >= 0.97, net["accuracy"]
    assert 0.40 <= linear["accuracy"] <= 0.60, linear["accuracy"]  # CS231n: 49%; a line cannot follow the arms
    # the accuracy reported is the trained params' own, recomputed here by hand from the saved file
    g = graphspec.load(MLP / "spiral.json")
    X, y = spiral(100, 3, 0.2, 0)
    with np.load(tmp_path / "spiral.npz") as p:
        scores = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    assert np.mean(np.argmax(scores, axis=1) == y) == pytest.approx(net["accuracy"])
    assert g.spec.train.metrics == ["loss", "accuracy"]


@pytest.mark.skipif(not HAS_SKLEARN, reason="the digits need scikit-learn (the `data` extra)")
def test_digits_reach_95_percent_on_the_held_out_quarter(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["train", str(MLP / "digits.json"), "-o", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["val_accuracy"] >= 0.95, doc["val_accuracy"]
    assert graphspec.load(MLP / "digits.json").spec.train.validation == 0.25  # the split the spec names
    # recomputed by hand on the held-out rows, drawn as docs/format.md says: default_rng([seed, 1])
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = d.data / 16.0, d.target
    held = np.sort(np.random.default_rng([0, 1]).permutation(len(y))[:round(len(y) * 0.25)])
    with np.load(out) as p:
        scores = np.maximum(X[held] @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    assert np.mean(np.argmax(scores, axis=1) == y[held]) == pytest.approx(doc["val_accuracy"])


def test_the_spiral_is_cs231ns():
    """Per class j: r = linspace(0, 1, N), t = linspace(4j, 4(j+1), N) + 0.2 randn (seeded)."""
    X, y = spiral(50, 4, 0.2, 7)
    assert X.shape == (200, 2) and np.array_equal(y, np.repeat(np.arange(4), 50))
    noise = np.random.default_rng(7)
    for j in range(4):
        t = np.linspace(j * 4, (j + 1) * 4, 50) + noise.standard_normal(50) * 0.2
        r = np.linspace(0, 1, 50)
        np.testing.assert_allclose(X[y == j], np.c_[r * np.sin(t), r * np.cos(t)], rtol=0, atol=1e-15)
    assert not np.array_equal(spiral(50, 4, 0.2, 8)[0], X)
    # the file the spec's inputs read is what train.data generates
    assert np.array_equal(read_file(MLP / "data" / "spiral_X.csv", None, "X"), spiral(100, 3, 0.2, 0)[0])


def test_xor_labels_are_the_sign_disagreement():
    X, y = xor(40, 0.1, 3)
    assert X.shape == (80, 2) and np.bincount(y).tolist() == [40, 40]
    assert np.array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(int))
    assert np.all(np.abs(X) >= 0.1) and np.all(np.abs(X) <= 1)


def test_a_generated_data_set_feeds_the_named_inputs():
    doc = json.loads((MLP / "spiral.json").read_text())
    doc["inputs"] = {"P": {"shape": ["N", 2], "grad": False}, "c": {"shape": ["N"], "dtype": "int64"},
                     "half_lam": {"value": 0.0005, "grad": False}}
    for node in doc["nodes"].values():
        node["args"] = [{"X": "P", "y": "c"}.get(a, a) for a in node["args"]]
    del doc["expect"]
    doc["train"]["data"] = {"generate": "xor", "points": 30, "x": "P", "y": "c"}
    doc["train"]["epochs"] = 2
    g = graphspec.load(doc, base=MLP)
    data = training_data(g)
    assert data["P"].shape == (60, 2) and data["c"].dtype == np.int64
    assert graphspec.train(g)[-1].accuracy is not None
    doc["train"]["data"]["x"] = "Q"
    with pytest.raises(graphspec.SpecError, match=r"train.data.x: train data must feed an input, 'Q' is not one"):
        graphspec.load(doc, base=MLP)
