"""`train` on the command line: every key overridable, feedback while it runs (progress bar,
lines, --quiet, CSV, curves), the final metrics as JSON; `explain --params`."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re

import numpy as np
import pytest

import graphspec
from graphspec import cli, curves
from graphspec.cli import main
from graphspec.train import train


def _spec(**train_keys):
    tr = {"data": {"generate": "spiral", "points": 20, "classes": 3, "seed": 2},
          "optimizer": {"sgd": {"lr": 0.1}}, "epochs": 4, "batch_size": 10, "metrics": ["loss", "accuracy"], **train_keys}
    return {"graphspec": "1", "seed": 1,
            "inputs": {"X": {"shape": ["N", 2]}, "y": {"shape": ["N"], "dtype": "int64"}},
            "params": {"W1": {"shape": [2, 8], "init": "he"}, "b1": {"shape": [8], "init": 0.01},
                       "W2": {"shape": [8, 3], "init": "xavier"}},
            "nodes": {"a": {"op": "matmul", "args": ["X", "W1"]}, "z": {"op": "add", "args": ["a", "b1"]},
                      "h": {"op": "relu", "args": ["z"]}, "s": {"op": "matmul", "args": ["h", "W2"]},
                      "ce": {"op": "softmax_cross_entropy", "args": ["s", "y"]},
                      "R": {"op": "l2", "args": ["W1"]},
                      "loss": {"op": "add", "args": ["ce", "R"]}},
            "loss": "loss", "train": tr}


def _write(tmp_path, doc, name="s.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def _params(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_every_key_is_overridable_on_the_command_line(tmp_path):
    """The flags train as the spec with those keys written in would."""
    path = _write(tmp_path, _spec())
    flags = ["--epochs", "3", "--lr", "0.05", "--batch-size", "7", "--optimizer", "sgd", "--momentum", "0.8",
             "--nesterov", "--weight-decay", "0.01", "--shuffle", "--log-every", "2", "--validation", "0.25",
             "--schedule", '{"step": {"step_size": 2}}', "--metrics", "loss,accuracy,ce", "--quiet"]
    assert main(["train", path, "-o", str(tmp_path / "a.npz"), *flags]) == 0
    written = _spec(epochs=3, optimizer={"sgd": {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}},
                    batch_size=7, shuffle=True, log_every=2, validation=0.25, schedule={"step": {"step_size": 2}},
                    metrics=["loss", "accuracy", "ce"])
    assert main(["train", _write(tmp_path, written, "w.json"), "-o", str(tmp_path / "b.npz"), "--quiet"]) == 0
    a, b = _params(tmp_path / "a.npz"), _params(tmp_path / "b.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W1"], _params_of_default(tmp_path)["W1"])


def _params_of_default(tmp_path):
    main(["train", _write(tmp_path, _spec(), "d.json"), "-o", str(tmp_path / "d.npz"), "--quiet"])
    return _params(tmp_path / "d.npz")


def test_adam_adamw_and_the_seed_from_the_command_line(tmp_path):
    path = _write(tmp_path, _spec())
    for opt, rule in (("adam", {"adam": {"lr": 0.01, "betas": [0.8, 0.9], "eps": 1e-7}}),
                      ("adamw", {"adamw": {"lr": 0.01, "betas": [0.8, 0.9], "eps": 1e-7}})):
        assert main(["train", path, "-o", str(tmp_path / f"{opt}.npz"), "--optimizer", opt, "--lr", "0.01",
                     "--betas", "0.8", "0.9", "--eps", "1e-7", "--quiet"]) == 0
        g = graphspec.load(_spec(optimizer=rule))
        train(g)
        assert all(np.array_equal(_params(tmp_path / f"{opt}.npz")[k], g.params[k]) for k in g.params)
    # --seed is the spec's seed: the init, the shuffle and the split all drawn from it
    assert main(["train", path, "-o", str(tmp_path / "s.npz"), "--seed", "9", "--shuffle", "--quiet"]) == 0
    doc = _spec(shuffle=True)
    doc["seed"] = 9
    g = graphspec.load(doc)
    train(g)
    assert all(np.array_equal(_params(tmp_path / "s.npz")[k], g.params[k]) for k in g.params)


@pytest.mark.parametrize(("flags", "message"), [
    (["--lr", "0"], "--lr must be greater than 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--momentum", "1.5"], "train.optimizer.sgd.momentum: Input should be less than 1 (with the overrides given)"),
    (["--validation", "0.2", "--validation", "X=a.csv"], "--validation is one share (0.2) or NAME=FILE"),
    (["--schedule", "{bad"], "--schedule: not JSON"),
    (["--plot", "c.pdf"], "--plot c.pdf: a plot is written as .svg or .png"),
    (["--optimizer", "adam", "--nesterov"], "nesterov is an option of sgd, and the optimizer is adam"),
    (["--eps", "1e-3"], "eps is an option of adam and adamw, and the optimizer is sgd"),
    (["--optimizer", "adam", "--betas", "0.9", "1.2"], "train.optimizer.adam.betas.1: Input should be less than 1"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),  # was numpy's ValueError, a traceback
])
def test_bad_overrides_are_usage_errors_before_any_work(tmp_path, capsys, flags, message):
    path = _write(tmp_path, _spec())
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "p.npz").exists()


def test_json_gives_the_final_metrics(tmp_path, capsys):
    path = _write(tmp_path, _spec(validation=0.2))
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    last = doc["epochs"][-1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert isinstance(doc[key], float) and doc[key] == last[key]
    assert 0 <= doc["val_accuracy"] <= 1 and doc["val_loss"] > 0
    # without validation and accuracy they are null, never missing
    assert main(["train", _write(tmp_path, _spec(metrics=["loss"]), "n.json"), "-o", str(tmp_path / "q.npz"),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["accuracy"] is None and doc["val_loss"] is None and doc["val_accuracy"] is None
    assert isinstance(doc["loss"], float)


def test_lines_per_log_every_when_not_a_terminal_and_quiet(tmp_path, capsys):
    path = _write(tmp_path, _spec(epochs=7, log_every=3, metrics=["loss", "accuracy", "ce"], validation=0.2))
    assert main(["train", path, "-o", str(tmp_path / "p.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == ["epoch 0", "epoch 3", "epoch 6"]
    assert all(k in lines[0] for k in ("mean loss", "accuracy", "val loss", "val accuracy", " ce ", "val_ce"))
    assert lines[-1].startswith("saved 3 params to")
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_a_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    from rich.console import Console

    from graphspec import render

    screen = io.StringIO()
    real = render.TrainProgress
    monkeypatch.setattr(cli, "_is_terminal", lambda: True)
    monkeypatch.setattr(render, "TrainProgress",
                        lambda: real(Console(file=screen, force_terminal=True, width=140, color_system=None)))
    path = _write(tmp_path, _spec(epochs=40))
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--log-every", "10"]) == 0
    shown = screen.getvalue()
    assert "epoch 0: mean loss" in shown and "epoch 30: mean loss" in shown  # the logged epochs above the bar
    assert "step" in shown and "/240" in shown and "loss " in shown and "epoch 40/40" in shown
    assert re.search(r"/240 loss \S+  acc 0\.\d{3}", shown)  # the last epoch's metrics on the bar
    assert capsys.readouterr().out.startswith("saved")  # the bar, not the lines, on the terminal


def test_csv_log_and_svg_curves(tmp_path):
    path = _write(tmp_path, _spec(epochs=5, validation=0.2))
    log_csv, plot = tmp_path / "log.csv", tmp_path / "curve.svg"
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--log-csv", str(log_csv), "--plot", str(plot),
                 "--quiet", "--log-every", "2"]) == 0
    rows = list(csv.DictReader(log_csv.open()))
    g = graphspec.load(_spec(epochs=5, validation=0.2))
    log = train(g)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]  # every epoch, not only the logged ones
    assert [float(r["loss"]) for r in rows] == [e.loss for e in log]
    assert [float(r["val_accuracy"]) for r in rows] == [e.val_accuracy for e in log]
    assert [float(r["lr"]) for r in rows] == [0.1] * 5
    svg = curves.svg(log)
    assert svg.count("<polyline") == 4 and "validation" in svg and "training" in svg  # loss and accuracy, both sets
    assert "<svg" in plot.read_text()


def test_hand_written_svg_without_matplotlib(tmp_path, monkeypatch):
    import xml.etree.ElementTree as ET

    monkeypatch.setattr(curves, "has_matplotlib", lambda: False)
    g = graphspec.load(_spec(epochs=6, validation=0.2))
    log = train(g)
    out = tmp_path / "c.svg"
    curves.write_plot(out, log)
    root = ET.fromstring(out.read_text())
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 4
    pts = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    assert len(pts) == 6 and pts[0][0] < pts[-1][0]  # one point per epoch, left to right
    ys = [y for _, y in pts]
    loss = [e.loss for e in log]  # SVG y grows downward: the highest loss is the smallest y
    assert int(np.argmin(ys)) == int(np.argmax(loss))
    with pytest.raises(graphspec.GraphspecError, match="a PNG needs matplotlib"):
        curves.write_plot(tmp_path / "c.png", log)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="the `plot` extra (matplotlib)")
def test_png_curves_through_matplotlib(tmp_path):
    path = _write(tmp_path, _spec(epochs=3, validation=0.2))
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--plot", str(tmp_path / "c.png"), "--quiet"]) == 0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_outputs_are_guarded(tmp_path, capsys):
    path = _write(tmp_path, _spec())
    (tmp_path / "notes.csv").write_text("my,notes\n")
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--log-csv", str(tmp_path / "notes.csv")]) == 2
    assert "notes.csv: that file holds data (.csv) and is not a training log" in capsys.readouterr().err
    assert (tmp_path / "notes.csv").read_text() == "my,notes\n"
    assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--plot", path]) == 2
    assert not (tmp_path / "p.npz").exists()


def test_a_metric_names_a_node(tmp_path):
    with pytest.raises(graphspec.SpecError, match=r"train.metrics\[1\]: a metric is loss, accuracy or a node's name, "
                                                  r"'cee' is none of them \(did you mean 'ce'\?\)"):
        graphspec.load(_spec(metrics=["loss", "cee"]))
    g = graphspec.load(_spec(metrics=["loss", "R"]))
    log = train(g)
    assert log[-1].metrics["R"] == pytest.approx(float(np.sum(g.params["W1"] ** 2)))


def test_accuracy_for_any_class_loss_from_the_op_record():
    """Accuracy comes from the op's `classes` (hinge scores classes too), not a list of op names."""
    doc = _spec()
    doc["nodes"]["ce"] = {"op": "hinge", "args": ["s", "y"]}
    log = train(graphspec.load(doc))
    assert log[-1].accuracy is not None
    doc["nodes"]["ce"] = {"op": "sum", "args": ["s"]}
    with pytest.raises(graphspec.SpecError, match="the accuracy metric needs a class loss node"):
        train(graphspec.load(doc))


def test_validation_files(tmp_path):
    rng = np.random.default_rng(0)
    Xv, yv = rng.normal(size=(9, 2)), rng.integers(0, 3, 9)
    np.savetxt(tmp_path / "Xv.csv", Xv, delimiter=",", fmt="%.17g")
    np.savetxt(tmp_path / "yv.csv", yv, fmt="%d")
    doc = _spec(validation={"X": "Xv.csv", "y": "yv.csv"})
    g = graphspec.load(doc, base=tmp_path)
    log = train(g)
    p = g.params
    s = np.maximum(Xv @ p["W1"] + p["b1"], 0) @ p["W2"]
    assert log[-1].val_accuracy == pytest.approx(np.mean(np.argmax(s, axis=1) == yv))


def test_explain_takes_params(tmp_path, capsys):
    doc = {"graphspec": "1", "inputs": {"x": {"value": 2.0}}, "params": {"w": {"value": 1.0}},
           "nodes": {"y": {"op": "mul", "args": ["x", "w"]}}, "loss": "y"}
    path = _write(tmp_path, doc)
    np.savez(tmp_path / "w.npz", w=np.array(5.0))
    assert main(["explain", path, "--params", str(tmp_path / "w.npz")]) == 0
    assert "10" in capsys.readouterr().out  # y = x * w = 2 * 5
    assert main(["run", path, "--params", str(tmp_path / "w.npz"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["y"]["value"] == 10.0


def test_data_and_validation_files_from_the_command_line(tmp_path, monkeypatch):
    """--data and --validation name files from the working directory, and train as the spec
    with those files in its block would."""
    from graphspec.train import spiral

    X, y = spiral(15, 3, 0.2, 4)
    work = tmp_path / "work"
    work.mkdir()
    for stem, (a, b) in (("t", (X[:36], y[:36])), ("v", (X[36:], y[36:]))):
        np.savetxt(work / f"{stem}X.csv", a, delimiter=",", fmt="%.17g")
        np.savetxt(work / f"{stem}y.csv", b, fmt="%d")
    path = _write(tmp_path, _spec())
    monkeypatch.chdir(work)
    assert main(["train", path, "-o", "a.npz", "--data", "X=tX.csv", "--data", "y=ty.csv", "--validation", "X=vX.csv",
                 "--validation", "y=vy.csv", "--quiet"]) == 0
    doc = _spec(data={"X": "work/tX.csv", "y": "work/ty.csv"}, validation={"X": "work/vX.csv", "y": "work/vy.csv"})
    g = graphspec.load(doc, base=tmp_path)
    log = train(g)
    assert log[-1].val_loss is not None
    assert all(np.array_equal(_params(work / "a.npz")[k], g.params[k]) for k in g.params)


def test_files_given_on_the_command_line_are_never_written_over(tmp_path, capsys, monkeypatch):
    """A --data or --validation file is input: no output (-o, --log-csv, --plot) replaces it."""
    from graphspec.train import spiral

    X, y = spiral(15, 3, 0.2, 4)
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", fmt="%.17g")
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    before = (tmp_path / "X.csv").read_bytes()
    path = _write(tmp_path, _spec())
    monkeypatch.chdir(tmp_path)
    data = ["--data", "X=X.csv", "--data", "y=y.csv", "--quiet"]
    assert main(["train", path, "-o", "p.npz", "--log-csv", "X.csv", *data]) == 2
    assert "the --data X file" in capsys.readouterr().err
    assert main(["train", path, "-o", "p.npz", "--validation", "y=y.csv", "--validation", "X=X.csv", "--log-csv", "X.csv",
                 *data[:2], "--data", "y=y.csv"]) == 2
    assert "the --data X file" in capsys.readouterr().err
    assert main(["train", path, "-o", "p.npz", "--validation", "y=y.csv", "--validation", "X=X.csv", "--log-csv", "y.csv",
                 "--data", "X=X.csv", "--data", "y=y.csv"]) == 2
    assert "y.csv" in capsys.readouterr().err
    assert (tmp_path / "X.csv").read_bytes() == before and not (tmp_path / "p.npz").exists()


def test_overridden_names_are_checked_as_the_spec_s_are(tmp_path, capsys):
    """--metrics, --data and --validation name nodes and inputs: a wrong one is a located usage error
    (exit 2) before any work, as it is in the spec's own block, not a KeyError after an epoch."""
    path = _write(tmp_path, _spec())
    (tmp_path / "x.csv").write_text("1,2\n")
    cee = "'cee' is none of them (with the overrides given) (did you mean 'ce'?)"
    for flags, where, message in ((["--metrics", "loss,cee"], "train.metrics[1]", cee),
                                  (["--metrics", "acuracy"], "train.metrics[0]", "(did you mean 'accuracy'?)"),
                                  (["--data", "XX=x.csv", "--data", "y=x.csv"], "train.data.XX", "'XX' is not one"),
                                  (["--validation", "X=x.csv", "--validation", "yy=x.csv"], "train.validation.yy",
                                   "'yy' is not one")):
        assert main(["train", path, "-o", str(tmp_path / "p.npz"), "--quiet", *flags]) == 2
        err = capsys.readouterr().err
        assert f"{where}: " in err and message in err and "Traceback" not in err
        assert not (tmp_path / "p.npz").exists()
    with pytest.raises(graphspec.GraphspecError, match=r"train.metrics\[0\]"):
        train(graphspec.load(_spec()), metrics=["nosuch"])
