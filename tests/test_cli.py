"""cli.py: the commands, their output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from graphspec.cli import main
from graphspec.spec import json_schema

ROOT = Path(__file__).resolve().parents[1]
MUL = str(ROOT / "specs" / "lecture" / "mul.json")


def write(tmp_path, doc, name="s.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_run_table_shows_values_gradients_and_expectations(capsys):
    assert main(["run", MUL]) == 0
    out = capsys.readouterr().out
    assert "│ z " in out and "│ 6 " in out
    assert "│ 15 " in out and "│ 10 " in out
    assert "expectations: 4 of 4 hold" in out


def test_run_json_carries_full_precision(capsys):
    assert main(["run", MUL, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["outputs"]["z"] == {"shape": [], "value": 6.0}
    assert doc["grads"]["x"]["value"] == 15.0 and doc["grads"]["y"]["value"] == 10.0
    assert doc["ok"] is True and all(e["ok"] for e in doc["expect"])


def test_failed_expectation_exits_1(tmp_path, capsys):
    doc = json.loads(Path(MUL).read_text())
    doc.pop("$schema")
    doc["expect"]["grads"]["x"] = 14.0
    assert main(["run", write(tmp_path, doc), "--format", "json"]) == 1
    rows = {e["name"]: e for e in json.loads(capsys.readouterr().out)["expect"] if e["kind"] == "grad"}
    assert rows["x"]["ok"] is False and rows["x"]["got"] == 15.0 and rows["y"]["ok"] is True


@pytest.mark.parametrize("form", ["json", "npy", "csv", "jsonfile"])
def test_input_values_from_the_command_line(tmp_path, capsys, form):
    doc = {"graphspec": "1", "inputs": {"x": {"shape": ["N"]}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}
    x = np.array([1.5, 2.5, 3.0])
    if form == "json":
        arg = "x=[1.5, 2.5, 3.0]"
    elif form == "npy":
        np.save(tmp_path / "x.npy", x)
        arg = f"x=@{tmp_path / 'x.npy'}"
    elif form == "csv":
        (tmp_path / "x.csv").write_text("1.5\n2.5\n3.0\n")
        arg = f"x=@{tmp_path / 'x.csv'}"
    else:
        (tmp_path / "x.json").write_text("[1.5, 2.5, 3.0]")
        arg = f"x=@{tmp_path / 'x.json'}"
    assert main(["run", write(tmp_path, doc), "--input", arg, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["s"]["value"] == 7.0


def test_params_file_replaces_initial_params(tmp_path, capsys):
    doc = {"graphspec": "1", "params": {"w": {"shape": [2], "init": "zeros"}}, "nodes": {"s": {"op": "sum", "args": ["w"]}}}
    np.savez(tmp_path / "p.npz", w=np.array([2.0, 3.0]))
    assert main(["run", write(tmp_path, doc), "--params", str(tmp_path / "p.npz"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["s"]["value"] == 5.0
    np.savez(tmp_path / "bad.npz", v=np.array([2.0, 3.0]))
    assert main(["run", write(tmp_path, doc), "--params", str(tmp_path / "bad.npz")]) == 2
    assert "'v' is not a param of this spec" in capsys.readouterr().err


def _npy(arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("make, message", [
    (lambda p: np.savez(p, w=np.array(["a", "b"])), "p.npz: w: expected numbers, got <U1 data"),
    (lambda p: np.savez(p, w=np.array([0.5, 1.0])), "p.npz: w: int64 values must be whole numbers"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "p.npz: cannot read: File is not a zip file"),
    (lambda p: p.write_bytes(_npy(np.array([1, 2]))), "p.npz: expected an .npz of named arrays (as train saves), got one array"),
])
def test_params_files_that_do_not_fit_are_usage_errors(tmp_path, capsys, make, message):
    """Strings (astype's ValueError), a file that is no zip (BadZipFile) or an .npy (no context
    manager): tracebacks before, one line now; values go through the same checks as any value."""
    doc = {"graphspec": "1", "params": {"w": {"shape": [2], "dtype": "int64", "init": "zeros"}},
           "nodes": {"s": {"op": "sum", "args": ["w"]}}}
    make(tmp_path / "p.npz")
    assert main(["run", write(tmp_path, doc), "--params", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize("argv", [["check", MUL], ["train", str(ROOT / "specs" / "lecture" / "sgd_step1.json")],
                                  ["draw", MUL]])
def test_output_to_a_missing_folder_is_a_usage_error(tmp_path, capsys, argv):
    """write_atomic's temp file in a folder that does not exist raised FileNotFoundError."""
    out = tmp_path / "nope" / ("r.json" if argv[0] == "check" else "p.npz" if argv[0] == "train" else "g.dot")
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: -o {out}: cannot write there: no folder {out.parent}\n"


def test_an_empty_csv_is_a_located_error_without_a_warning(tmp_path, capsys):
    """An empty data file is a mistake (a file saved before its data), said in one line, not
    numpy's "input contained no data" warning nor zero rows."""
    (tmp_path / "x.csv").write_text("")
    doc = {"graphspec": "1", "inputs": {"x": {"shape": ["N"]}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["run", write(tmp_path, doc), "--input", f"x=@{tmp_path / 'x.csv'}", "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith("--input x: x.csv: no rows of numbers (the file is empty)\n"), err


def test_nonfinite_values_are_reported_with_the_first_node(tmp_path, capsys):
    doc = {"graphspec": "1", "inputs": {"x": {"value": [-1.0, 1.0]}},
           "nodes": {"a": {"op": "log", "args": ["x"]}, "b": {"op": "exp", "args": ["a"]}, "s": {"op": "sum", "args": ["b"]}},
           "loss": "s"}
    assert main(["run", write(tmp_path, doc)]) == 1  # a non-finite output fails the run (issue 8)
    assert "nodes.a: first non-finite value (nan) produced by log" in capsys.readouterr().out


def test_schema_command_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()


def test_ops_command_lists_every_op_with_attrs(capsys):
    from graphspec.ops import OPS

    assert main(["ops", "--format", "json"]) == 0
    rows = {r["op"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(OPS)
    assert rows["leaky_relu"]["attrs"] == "alpha=0.01"
    assert rows["sum"]["attrs"] == "axis=null, keepdims=false"
    assert rows["conv2d"]["args"] == "x, w, b (variable count)" and rows["concat"]["args"] == "x, ..."
    # each attr's kind, default and doc, as the op record has them
    for name, op in OPS.items():
        assert [(a["attr"], a["kind"], a["default"], a["doc"]) for a in rows[name]["attr_docs"]] == \
            [(k, a.kind, json.loads(json.dumps(a.default)), a.doc) for k, a in op.attrs.items()]
        assert rows[name]["kink"] == (op.kink is not None) and rows[name]["jvp"] == (op.jvp is not None)


def test_ops_command_describes_the_named_ops_in_full(capsys):
    assert main(["ops", "clip", "mse"]) == 0
    out = capsys.readouterr().out
    assert "clip(x)" in out and "the lower bound; null: none" in out and "mse(pred, target)" in out
    assert "mean, sum, none" in out and "kink: yes" in out
    assert main(["ops", "clip", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["op"] == "clip" and [a["attr"] for a in row["attr_docs"]] == ["min", "max"]


def test_ops_command_names_an_unknown_op_with_a_hint(capsys):
    assert main(["ops", "relux"]) == 2
    assert "no op named 'relux' (did you mean 'relu'?)" in capsys.readouterr().err


def test_python_dash_m_entry_point_and_exit_code():
    p = subprocess.run([sys.executable, "-m", "graphspec", "run", MUL, "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["ok"] is True


def test_help_does_not_import_heavy_modules():
    code = "import sys; from graphspec.cli import _parser; _parser(); print(sorted(m for m in ('numpy', 'pydantic', " \
           "'networkx', 'rich') if m in sys.modules))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"


def test_expected_gradient_of_a_node_the_loss_does_not_use_is_not_checked(tmp_path, capsys):
    """Nodes off the loss's path have no cotangent: no invented 0 passes or fails (issue 8)."""
    doc = {"graphspec": "1", "inputs": {"x": {"value": 2.0}},
           "nodes": {"z": {"op": "mul", "args": ["x", "x"]}, "u": {"op": "exp", "args": ["x"]},
                     "v": {"op": "neg", "args": ["x"]}},
           "outputs": ["z", "v"], "loss": "z", "expect": {"grads": {"u": 0.0, "v": 1.0, "x": 4.0}}}
    assert main(["run", write(tmp_path, doc), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {e["name"]: e for e in out["expect"]}
    for name in ("u", "v"):  # u is pruned away; v is computed, but the loss does not use it
        assert rows[name]["status"] == "not checked" and rows[name]["ok"] is None and rows[name]["got"] is None
        assert rows[name]["note"] == "not on the loss's path"
    assert rows["x"]["ok"] and rows["x"]["status"] == "pass"
    assert out["not_checked"] == ["2 expectations not checked (not on the loss's path: u, v)"]


def test_warnings_are_one_line_each(tmp_path, capsys):
    """explain (and train) warn through Python's warnings: they printed graphspec's file, line
    and source line too; check let numpy warn about the inf it perturbed."""
    doc = {"graphspec": "1", "inputs": {"x": {"shape": [2]}}, "params": {"w": {"value": [1.0, 2.0]}},
           "nodes": {"h": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["h"]}}, "loss": "L"}
    path = write(tmp_path, doc)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["explain", path, "--input", "x=[NaN, Infinity]"]) == 1  # non-finite fails (issue 8)
        out, err = capsys.readouterr()
        assert err == ""  # said once, in the explanation
        assert out.splitlines()[-2:] == ["non-finite: x: non-finite value (inf/nan) given for this input or param",
                                         "non-finite: nodes.h: first non-finite gradient (inf/nan) produced by the VJP "
                                         "of mul for 'w'"]
        main(["check", path, "--input", "x=[NaN, Infinity]"])
        assert capsys.readouterr().err == ""


# -- JSON error records, train without a train block, --params that is no .npz -----------------------

RECORD_KEYS = {"message", "source", "loc", "hint", "text", "exit_code", "errors", "more_errors"}


@pytest.mark.parametrize("cmd", ["run", "validate", "train", "check"])
def test_a_bad_spec_with_format_json_prints_a_json_error_record(tmp_path, capsys, cmd):
    """`--format json` on a bad spec printed no JSON (issue 8): the same record in every command."""
    bad = write(tmp_path, {"graphspec": "1", "nodes": {"z": {"op": "mull", "args": []}}}, "bad.json")
    assert main([cmd, bad, "--format", "json", *(["-o", str(tmp_path / "p.npz")] if cmd == "train" else [])]) == 2
    out, err = capsys.readouterr()
    assert err == f"error: {bad}: nodes.z.op: unknown op 'mull' (did you mean 'mul'?)\n"
    doc = json.loads(out)
    record = {"run": lambda d: d, "train": lambda d: d, "validate": lambda d: d[0], "check": lambda d: d["reports"][0]}[cmd](doc)
    assert record["ok"] is False and set(record["error"]) == RECORD_KEYS
    one = {"message": "unknown op 'mull'", "source": bad, "loc": "nodes.z.op", "hint": "did you mean 'mul'?"}
    assert record["error"] == {**one, "exit_code": 2, "text": err[len("error: "):-1], "errors": [one], "more_errors": 0}
    if cmd in ("run", "train"):
        assert doc == {"ok": False, "error": record["error"]}


def test_json_error_record_in_a_fresh_process(tmp_path):
    bad = write(tmp_path, {"graphspec": 1}, "bad.json")
    p = subprocess.run([sys.executable, "-m", "graphspec", "run", bad, "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 2  # the version is a string; nodes is missing
    doc = json.loads(p.stdout)
    assert doc["ok"] is False and doc["error"]["source"] == bad and doc["error"]["exit_code"] == 2
    assert [e["loc"] for e in doc["error"]["errors"]] == ["(top level)", "graphspec"]


def test_a_table_run_prints_no_json_on_error(tmp_path, capsys):
    bad = write(tmp_path, {"graphspec": "1", "nodes": {"z": {"op": "mull", "args": []}}}, "bad.json")
    assert main(["run", bad]) == 2
    assert capsys.readouterr().out == ""


def test_validate_a_folder(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    good = write(tmp_path / "sub", json.loads(Path(MUL).read_text()), "mul.json")
    bad = write(tmp_path, {"graphspec": "1", "nodes": {"z": {"op": "mull", "args": []}}}, "bad.json")
    (tmp_path / "notes.json").write_text('{"todo": 1}')
    assert main(["validate", str(tmp_path), "--format", "json"]) == 2
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert [r["spec"] for r in rows] == [bad, good] and [r["ok"] for r in rows] == [False, True]
    assert rows[0]["error"]["loc"] == "nodes.z.op"
    assert f"note: {tmp_path / 'notes.json'}: skipped" in err


def test_train_without_a_train_block_uses_the_documented_defaults(tmp_path, capsys):
    """It trained with undocumented defaults, then refused to train at all: now it trains with
    the defaults docs/format.md gives (sgd, lr 0.01, one full-batch epoch) and says so."""
    doc = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0]}}, "params": {"w": {"value": 1.0}},
           "nodes": {"h": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["h"]}}, "loss": "L"}
    path = write(tmp_path, doc)
    assert main(["train", path, "-o", str(tmp_path / "p.npz")]) == 0
    assert "note: the spec has no train block: trained with the defaults (sgd, lr 0.01, 1 epoch" in capsys.readouterr().err
    with np.load(tmp_path / "p.npz") as z:
        assert float(z["w"]) == 1.0 - 0.01 * 3.0  # dL/dw = sum(x) = 3, one step
    explicit = write(tmp_path, {**doc, "train": {"optimizer": {"sgd": {"lr": 0.01}}}}, "explicit.json")
    assert main(["train", explicit, "-o", str(tmp_path / "q.npz")]) == 0
    with np.load(tmp_path / "p.npz") as a, np.load(tmp_path / "q.npz") as b:
        assert a["w"] == b["w"]
    fmt = (Path(__file__).parent.parent / "docs" / "format.md").read_text(encoding="utf-8")
    assert "Without a `train` block, `train` uses the defaults" in fmt


@pytest.mark.parametrize("content", [b"w\n1.0\n", b"\x00\x01garbage", b""])
def test_params_that_is_no_npz_says_so(tmp_path, capsys, content):
    """A CSV or garbage as --params gave numpy's text about allow_pickle."""
    doc = {"graphspec": "1", "params": {"w": {"value": 1.0}}, "nodes": {"s": {"op": "sum", "args": ["w"]}}}
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    for cmd in ("run", "check"):
        assert main([cmd, write(tmp_path, doc), "--params", str(p)]) == 2
        err = capsys.readouterr().err
        assert err.endswith(f"--params {p}: not an .npz file (train saves params as .npz)\n"), err
        assert "pickle" not in err
    assert main(["run", write(tmp_path, doc), "--params", str(tmp_path / "missing.npz")]) == 2
    assert capsys.readouterr().err == f"error: --params {tmp_path / 'missing.npz'}: no such file\n"


def test_run_warns_of_a_param_with_grad_that_the_loss_does_not_depend_on(tmp_path, capsys):
    spec = {"graphspec": "1", "inputs": {"x": {"value": 2.0}}, "params": {"w": {"value": 1.0}, "unused": {"value": 3.0}},
            "nodes": {"z": {"op": "mul", "args": ["x", "w"]}, "other": {"op": "mul", "args": ["unused", "x"]}},
            "outputs": ["z", "other"], "loss": "z"}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec))
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().out
    assert "param 'unused' has grad but the loss does not depend on it" in err
    assert "'w' has grad" not in err and "'x' has grad" not in err
    assert main(["run", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == ["param 'unused' has grad but the loss does not depend on it"]


def test_an_int64_input_given_1e_400_on_the_command_line_is_not_the_integer_0(capsys):
    spec = str(Path(__file__).parent.parent / "specs" / "losses" / "softmax_cross_entropy_labels.json")
    assert main(["run", spec, "--input", "labels=[1e-400, 1, 2, 0, 1]"]) == 2
    assert "labels: 1e-400 is not an integer" in capsys.readouterr().err
    assert main(["run", spec, "--input", "labels=[0, 1, 2, 0, 1]"]) == 0


@pytest.mark.parametrize("name", ["self", "check_finite", "with_grads", "tangents", "inputs", "graph"])
@pytest.mark.parametrize("command", [["run"], ["run", "--no-grad"], ["explain"], ["check"], ["check", "--fast"], ["draw"]])
def test_every_command_takes_inputs_with_any_name(tmp_path, capsys, name, command):
    """Inputs are keys of a mapping all the way down: names of the API's own parameters work."""
    spec = {"graphspec": "1", "inputs": {name: {"shape": [2]}, "w": {"value": [0.5, -1.0]}},
            "nodes": {"p": {"op": "mul", "args": [name, "w"]}, "s": {"op": "sum", "args": ["p"]}}, "loss": "s"}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec))
    rc = main([*command, str(path), "--input", f"{name}=[1.0, 2.0]"]) if command[0] != "draw" else \
        main(["draw", str(path), "--no-values"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err
    assert name in out if command != ["run", "--no-grad"] else "-1.5" in out  # 1 * 0.5 + 2 * -1
