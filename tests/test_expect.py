"""expect.py and run's verdict (render.py, cli.cmd_run): what `run` says about values and
gradients is true. A non-finite output or gradient fails the run naming its first node;
gradient expectations under --no-grad, or of a node off the loss's path, are not checked
(neither pass nor fail); every node on the loss's path has its cotangent."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphspec
from graphspec import expect
from graphspec.cli import main


def write(tmp_path, doc, name="s.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def run_json(capsys, path, *flags):
    code = main(["run", path, "--format", "json", *flags])
    return code, json.loads(capsys.readouterr().out)


# --- non-finite results --------------------------------------------------------------------------

LOG = {"graphspec": "1", "inputs": {"x": {"value": [-1.0, 2.0]}},
       "nodes": {"a": {"op": "log", "args": ["x"]}, "s": {"op": "sum", "args": ["a"]}}, "loss": "s"}


def test_a_nonfinite_output_fails_run_naming_the_first_node(tmp_path, capsys):
    """log([-1, 2]): run exited 0 with "ok": true and "value": null."""
    code, doc = run_json(capsys, write(tmp_path, LOG))
    assert code == 1 and doc["ok"] is False
    assert doc["outputs"]["s"]["value"] is None
    assert doc["nonfinite"] == ["nodes.a: first non-finite value (nan) produced by log"]
    assert doc["findings"] == [{"kind": "value", "loc": "nodes.a", "message": "first non-finite value (nan) produced by log"}]


def test_a_nonfinite_output_fails_the_table_too(tmp_path, capsys):
    assert main(["run", write(tmp_path, LOG)]) == 1
    out = capsys.readouterr().out
    assert "non-finite: nodes.a: first non-finite value (nan) produced by log" in out
    assert "failed: a non-finite value" in out


def test_a_nonfinite_gradient_of_a_finite_value_fails_run(tmp_path, capsys):
    """sqrt at 0: the value is 0, the slope is inf; the VJP that made it is named."""
    doc = {"graphspec": "1", "inputs": {"x": {"value": [0.0, 4.0]}},
           "nodes": {"r": {"op": "sqrt", "args": ["x"]}, "s": {"op": "sum", "args": ["r"]}}, "loss": "s"}
    code, out = run_json(capsys, write(tmp_path, doc))
    assert code == 1 and out["ok"] is False
    assert out["loss"]["value"] == 2.0
    assert out["nonfinite"] == ["nodes.r: first non-finite gradient (inf) produced by the VJP of sqrt for 'x'"]
    assert [(f["kind"], f["loc"]) for f in out["findings"]] == [("gradient", "nodes.r")]
    # --no-grad runs no backward pass: nothing non-finite is computed, the run is fine
    code, out = run_json(capsys, write(tmp_path, doc), "--no-grad")
    assert code == 0 and out["ok"] is True and out["nonfinite"] == []


def test_a_nonfinite_node_cotangent_with_no_wrt_leaf_below_fails_run(tmp_path, capsys):
    """x has grad: false, so only evaluate's all-node pass computes dL/dx0 = inf."""
    doc = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 4.0], "grad": False}},
           "params": {"a": {"value": 1.0}},
           "nodes": {"x0": {"op": "mul", "args": ["x", 0.0]}, "r": {"op": "sqrt", "args": ["x0"]},
                     "s": {"op": "sum", "args": ["r"]}, "L": {"op": "add", "args": ["s", "a"]}}, "loss": "L"}
    code, out = run_json(capsys, write(tmp_path, doc))
    assert code == 1
    assert out["nonfinite"] == ["nodes.r: first non-finite gradient (inf) produced by the VJP of sqrt for 'x0'"]


def test_the_api_still_only_warns(tmp_path):
    g = graphspec.load(LOG)
    with pytest.warns(graphspec.NonFiniteWarning, match=r"nodes\.a.*log") as rec:
        r = g.evaluate()
    assert np.isnan(r.loss)
    assert rec[0].message.error.loc == "nodes.a"  # the error check_finite="raise" would raise


# --- --no-grad: gradient expectations are not checked --------------------------------------------

MUL = {"graphspec": "1", "inputs": {"x": {"value": 2.0}, "y": {"value": 3.0}},
       "nodes": {"z": {"op": "mul", "args": ["x", "y"]}}, "loss": {"node": "z", "seed": 5.0},
       "expect": {"values": {"z": 6.0}, "grads": {"x": 15.0, "y": 10.0, "z": 5.0}}}


def test_no_grad_does_not_fail_gradient_expectations_against_invented_zeros(tmp_path, capsys):
    code, doc = run_json(capsys, write(tmp_path, MUL), "--no-grad")
    assert code == 0 and doc["ok"] is True
    rows = {(e["kind"], e["name"]): e for e in doc["expect"]}
    assert rows["value", "z"]["status"] == "pass" and rows["value", "z"]["ok"] is True  # z's value: checked
    for name in ("x", "y", "z"):
        row = rows["grad", name]
        assert row["status"] == "not checked" and row["ok"] is None
        assert row["got"] is None and row["note"] == "--no-grad"
    assert [e["status"] for e in doc["expect"] if e["kind"] == "grad"] == ["not checked"] * 3
    assert doc["not_checked"] == ["3 expectations not checked (--no-grad)"]


def test_no_grad_table_says_not_checked(tmp_path, capsys):
    assert main(["run", write(tmp_path, MUL), "--no-grad"]) == 0
    out = capsys.readouterr().out
    assert "expectations: 1 of 1 hold, 3 not checked" in out
    assert "not checked (--no-grad)" in out and "3 expectations not checked (--no-grad)" in out
    assert "✗" not in out


def test_only_unchecked_expectations_say_so_and_still_exit_0(tmp_path, capsys):
    doc = {**MUL, "expect": {"grads": {"x": 15.0, "y": 999.0}}}  # y's is wrong, but not checked
    assert main(["run", write(tmp_path, doc), "--no-grad"]) == 0
    out = capsys.readouterr().out
    assert "expectations: 2 not checked" in out and "2 expectations not checked (--no-grad)" in out
    assert "all expectations hold" not in out and "all checked expectations hold" not in out
    # and with the gradients, the wrong one fails
    assert main(["run", write(tmp_path, doc)]) == 1


def test_no_grad_still_fails_a_wrong_value(tmp_path, capsys):
    doc = {**MUL, "expect": {"values": {"z": 7.0}, "grads": {"x": 15.0}}}
    code, out = run_json(capsys, write(tmp_path, doc), "--no-grad")
    assert code == 1 and out["ok"] is False
    assert [e["status"] for e in out["expect"]] == ["fail", "not checked"]


# --- every node on the loss's path has its cotangent ---------------------------------------------

SUM_PLUS = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0, 3.0], "grad": False}},
            "params": {"a": {"value": 0.5}},
            "nodes": {"s": {"op": "sum", "args": ["x"]}, "t": {"op": "mul", "args": ["s", 3.0]},
                      "L": {"op": "add", "args": ["t", "a"]}},
            "loss": "L", "expect": {"grads": {"s": 3.0, "t": 1.0, "a": 1.0}}}


def test_a_node_with_no_differentiated_leaf_below_has_its_cotangent(tmp_path, capsys):
    """s = sum(x), x grad: false, L = 3 s + a: dL/ds is 3 (it read 0), dL/dt is 1."""
    r = graphspec.load(SUM_PLUS).evaluate()
    assert r.grads["s"] == 3.0 and r.grads["t"] == 1.0 and r.grads["L"] == 1.0 and r.grads["a"] == 1.0
    assert "x" not in r.grads  # not differentiated: no gradient (as before)
    code, doc = run_json(capsys, write(tmp_path, SUM_PLUS))
    assert code == 0 and [e["status"] for e in doc["expect"]] == ["pass"] * 3
    assert doc["node_grads"]["s"] == 3.0


def test_a_wrong_expectation_of_such_a_node_fails(tmp_path, capsys):
    doc = {**SUM_PLUS, "expect": {"grads": {"s": 0.0}}}  # the invented 0 used to pass
    code, out = run_json(capsys, write(tmp_path, doc))
    assert code == 1 and out["expect"][0]["status"] == "fail" and out["expect"][0]["got"] == 3.0


def test_an_int_node_on_the_path_has_no_gradient():
    doc = {"graphspec": "1", "inputs": {"n": {"value": [1, 2], "dtype": "int64"}, "x": {"value": [1.0, 1.0]}},
           "nodes": {"m": {"op": "add", "args": ["n", "n"]}, "p": {"op": "mul", "args": ["x", "m"]},
                     "L": {"op": "sum", "args": ["p"]}},
           "loss": "L", "expect": {"grads": {"m": 0.0, "p": 1.0}}}
    g = graphspec.load(doc)
    r = g.evaluate()
    assert "m" not in r.grads and np.array_equal(r.grads["x"], [2.0, 4.0])
    checks = {c.name: c for c in expect.compare(r, g.spec.expect)}
    assert not checks["m"].checked and checks["m"].note == "no gradient: an int64 value"
    assert checks["p"].ok
