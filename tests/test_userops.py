"""Loading ops written in Python (graphspec/userops.py): only when asked, located when it fails,
checked like built-ins once loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.cli import main
from graphspec.errors import GraphError, UsageError
from graphspec.ops import OPS
from graphspec.testing import assert_gradients

SWISH = '''\
import numpy as np
import graphspec


def swish(x):
    return x / (1 + np.exp(-x))


def swish_vjp(g, ans, x):
    s = 1 / (1 + np.exp(-x))
    return g * (s + x * s * (1 - s)){slip}


graphspec.defop("{name}", swish, vjp=(swish_vjp,), jvp=graphspec.SYMMETRIC, doc="x * sigmoid(x)")
'''
SPEC = {"graphspec": "1", "inputs": {"x": {"value": [0.5, -1.0, 2.0]}},
        "nodes": {"h": {"op": "NAME", "args": ["x"]}, "L": {"op": "sum", "args": ["h"]}}, "loss": "L"}


@pytest.fixture
def table():
    """The op table and the import cache put back as they were: no test's ops leak out."""
    from graphspec import userops

    saved, imported = dict(OPS), dict(userops._imported)
    yield
    OPS.clear()
    OPS.update(saved)
    userops._imported.clear()
    userops._imported.update(imported)


def _files(tmp_path: Path, name: str, slip: str = "") -> tuple[Path, Path]:
    ops = tmp_path / f"{name}_ops.py"
    ops.write_text(SWISH.format(name=name, slip=slip))
    spec = tmp_path / f"{name}.json"
    spec.write_text(json.dumps({**SPEC, "nodes": {**SPEC["nodes"], "h": {"op": name, "args": ["x"]}}}))
    return ops, spec


def test_a_spec_never_imports_code_and_the_error_says_how_to(tmp_path, table, capsys):
    _, spec = _files(tmp_path, "swish_a")
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "unknown op 'swish_a'" in err and "--import FILE.py" in err
    assert "swish_a" not in OPS  # nothing ran


@pytest.mark.parametrize("where", ["before", "after"])
def test_import_flag_loads_the_ops_on_every_command(tmp_path, table, capsys, where):
    ops, spec = _files(tmp_path, f"swish_{where}")
    for command in (["run", str(spec)], ["check", str(spec)], ["explain", str(spec)], ["validate", str(spec)],
                    ["draw", str(spec)], ["check", "--ops", "--op", f"swish_{where}"]):
        argv = ["--import", str(ops), *command] if where == "before" else [*command, f"--import={ops}"]
        assert main(argv) == 0, (command, capsys.readouterr())
        capsys.readouterr()


def test_abbreviated_global_flags_before_the_command_are_not_ignored(tmp_path, table, capsys):
    """argparse takes `--imp` and `--trace` for --import and --traceback before the command; their
    values were then dropped: the ops not imported (an unknown op), no traceback shown."""
    ops, spec = _files(tmp_path, "swish_abbr")
    assert main(["--imp", str(ops), "run", str(spec)]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert main(["--trace", "run", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith("missing.json: no such file\n")


def test_a_wrong_user_vjp_fails_the_check_and_is_blamed(tmp_path, table, capsys):
    ops, spec = _files(tmp_path, "swish_bad", slip=" * 0.5")
    assert main(["check", str(spec), "--blame", "--import", str(ops), "--format", "json"]) == 1
    (doc,) = json.loads(capsys.readouterr().out)["reports"]
    # jvp=SYMMETRIC: the slip is in both rules, and both are blamed
    assert doc["status"] == "FAIL" and sorted((b["node"], b["mode"]) for b in doc["blamed"]) == [("h", "jvp"), ("h", "vjp")]
    assert {b["op"] for b in doc["blamed"]} == {"swish_bad"}


def test_import_of_a_module_by_name(tmp_path, table, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ops.py").write_text(SWISH.format(name="swish_mod", slip=""))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = {**SPEC, "nodes": {**SPEC["nodes"], "h": {"op": "swish_mod", "args": ["x"]}}}
    g = graphspec.load(spec, ops=["mypkg.ops"])
    x = np.array([0.5, -1.0, 2.0])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(g.grad()["x"], s + x * s * (1 - s), rtol=1e-15)


@pytest.mark.parametrize(("target", "message"), [
    ("no_such_file.py", "--import no_such_file.py: no such file"),
    ("no_such_module_xyz", "--import no_such_module_xyz: no module named 'no_such_module_xyz'"),
])
def test_import_errors_name_the_target(table, target, message, capsys):
    assert main(["--import", target, "ops"]) == 2
    assert message in capsys.readouterr().err


def test_user_code_that_raises_on_import_is_named_with_its_file_and_line(tmp_path, table, capsys):
    bad = tmp_path / "bad_ops.py"
    bad.write_text("import numpy\n\nraise RuntimeError('half-written')\n")
    assert main(["--import", str(bad), "ops"]) == 2
    err = capsys.readouterr().err
    assert f"--import {bad}: its code raised RuntimeError: half-written (at {bad}:3)" in err
    with pytest.raises(SystemExit) as e:  # a flag without its value is a usage error, as argparse says them
        main(["--import"])
    assert e.value.code == 2


def test_importing_twice_runs_the_file_once(tmp_path, table):
    ops, _ = _files(tmp_path, "swish_twice")
    from graphspec.userops import import_ops

    first = import_ops(str(ops))
    assert [op.name for op in first] == ["swish_twice"] and import_ops(str(ops)) == first


def test_load_and_assert_gradients_take_ops(tmp_path, table):
    ops, spec = _files(tmp_path, "swish_api")
    rep = assert_gradients(str(spec), ops=[str(ops)])
    assert rep.ok and rep.status == "PASS"
    op = OPS["swish_api"]
    assert graphspec.load(spec, ops=[op]).plan.steps[0].op is op  # a record already registered
    other = graphspec.Op(**{**op.__dict__, "forward": np.negative})
    with pytest.raises(UsageError, match="already registered"):
        graphspec.load(spec, ops=[other])
    bad_ops, bad_spec = _files(tmp_path, "swish_wrong", slip=" * 2")
    with pytest.raises(AssertionError, match="node 'h' \\(swish_wrong\\) has a wrong VJP"):
        assert_gradients(str(bad_spec), ops=[str(bad_ops)], blame=True)


def test_a_sweep_of_a_user_op_without_samples_makes_them_from_its_shape_rule(tmp_path, table):
    from graphspec.checker import check_ops

    ops, _ = _files(tmp_path, "swish_sweep")
    graphspec.load(SPEC | {"nodes": {"h": {"op": "sum", "args": ["x"]}}, "loss": "h"}, ops=[str(ops)])
    rows = check_ops(["swish_sweep"], dtypes=("float64", "float32"))
    assert len(rows) == 8 and all(r.status == "PASS" for r in rows)  # 4 stand-in shapes x 2 dtypes
    assert sorted({tuple(r.shapes[0]) for r in rows}) == [(), (2, 3, 2), (3, 4), (5,)]


def test_installed_packages_register_through_the_entry_point_group(tmp_path):
    """A dist-info on sys.path with an entry point in graphspec.ops: its ops load when a spec
    names one graphspec does not know, in a fresh process (the lookup runs once)."""
    (tmp_path / "swish_ep_ops.py").write_text(SWISH.format(name="swish_ep", slip=""))
    dist = tmp_path / "swish_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: swish-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[graphspec.ops]\nswish = swish_ep_ops\n")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({**SPEC, "nodes": {**SPEC["nodes"], "h": {"op": "swish_ep", "args": ["x"]}}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    p = subprocess.run([sys.executable, "-m", "graphspec", "check", str(spec)], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "PASS" in p.stdout, p.stderr
    p = subprocess.run([sys.executable, "-m", "graphspec", "ops", "swish_ep"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "x * sigmoid(x)" in p.stdout, p.stderr


def test_an_unknown_op_stays_an_error_after_the_entry_point_lookup(table):
    with pytest.raises(GraphError, match="unknown op 'nosuchop_at_all'"):
        graphspec.load({**SPEC, "nodes": {**SPEC["nodes"], "h": {"op": "nosuchop_at_all", "args": ["x"]}}})


def test_docs_ops_md_worked_example_is_what_graphspec_does(tmp_path, table, capsys):
    """docs/ops.md's op and spec, run as the page says: its PASS line and, with its slip, its blame lines."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "ops.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    spec = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    (tmp_path / "my_ops.py").write_text(code.replace('"swish"', '"swish_doc"'))
    (tmp_path / "swish.json").write_text(spec.replace('"swish"', '"swish_doc"'))
    assert main(["check", str(tmp_path / "swish.json"), "--import", str(tmp_path / "my_ops.py")]) == 0
    out = capsys.readouterr().out
    shown = re.search(r"^ dL/dx .*PASS$", text, re.M).group(0)
    row = next(line for line in out.splitlines() if "dL/dx" in line).split()
    # the errors vary in their last digits from run to run; the values and the verdict do not
    assert row[:4] == shown.split()[:4] and row[-3:] == shown.split()[-3:] and row[-1] == "PASS"
    slipped = code.replace('"swish"', '"swish_slip"').replace("(1 - s))\n", "(1 - s)) * 0.5\n")
    assert slipped != code.replace('"swish"', '"swish_slip"')
    (tmp_path / "slip_ops.py").write_text(slipped)
    (tmp_path / "slip.json").write_text(spec.replace('"swish"', '"swish_slip"'))
    assert main(["check", str(tmp_path / "slip.json"), "--import", str(tmp_path / "slip_ops.py"), "--blame"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    for line in re.findall(r"^blame: .*$", text, re.M):
        assert line.replace("(swish)", "(swish_slip)") in out
