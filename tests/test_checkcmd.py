"""`python -m graphspec check`: exit codes, formats, -o files, --ops, and the options reaching the checker."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphspec.cli import main
from graphspec.ops import OPS

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, doc: dict) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def good(tmp_path: Path) -> str:
    return write(tmp_path, "good.json", {
        "graphspec": "1", "name": "good", "params": {"w": {"value": [0.5, -1.5, 2.0]}},
        "nodes": {"t": {"op": "tanh", "args": ["w"]}, "L": {"op": "sum", "args": ["t"]}}, "loss": "L"})


def kinked(tmp_path: Path) -> str:
    return write(tmp_path, "kink.json", {
        "graphspec": "1", "name": "kink", "params": {"w": {"value": [0.0, 1.0]}},
        "nodes": {"r": {"op": "relu", "args": ["w"]}, "L": {"op": "sum", "args": ["r"]}}, "loss": "L"})


def sub_spec(tmp_path: Path) -> str:
    return write(tmp_path, "sub.json", {
        "graphspec": "1", "name": "sub", "params": {"x": {"value": [1.0, 2.0]}, "y": {"value": [0.5, 0.25]}},
        "nodes": {"d": {"op": "sub", "args": ["x", "y"]}, "q": {"op": "square", "args": ["d"]},
                  "L": {"op": "sum", "args": ["q"]}}, "loss": "L"})


@pytest.fixture
def broken_sub():
    orig = OPS["sub"]
    OPS["sub"] = dataclasses.replace(orig, vjp=(lambda g, ans, x, y: g, lambda g, ans, x, y: g))
    yield
    OPS["sub"] = orig


def test_passing_spec_exits_0_and_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", good(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dL/dw" in out and "PASS" in out and "forward mode vs reverse mode" in out


def test_wrong_gradient_exits_1_and_blames(tmp_path: Path, capsys: pytest.CaptureFixture[str], broken_sub: None) -> None:
    assert main(["check", sub_spec(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "blame: node 'd' (sub)" in out


def test_bad_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.json", {"graphspec": "1", "nodes": {"z": {"op": "mull", "args": []}}})
    assert main(["check", bad]) == 2
    assert "unknown op 'mull'" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.json")]) == 2


@pytest.mark.parametrize("argv", [["check"], ["check", "--ops", "x.json"], ["check", "x.json", "--max-elements", "0"],
                                  ["check", "--ops", "--op", "nope"], ["check", "x.json", "--op", "relu"],
                                  ["check", "x.json", "--dtype", "float32"],
                                  ["check", "x.json", "--seed", "-1"]])  # numpy's default_rng raised on -1
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert main(argv) == 2


def test_kinks_pass_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = kinked(tmp_path)
    assert main(["check", path]) == 0
    out = capsys.readouterr().out
    assert "KINK at w[0]: node 'r' (relu) element [0] switches branch" in out
    assert main(["check", path, "--strict"]) == 1


def test_json_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", good(tmp_path), kinked(tmp_path), "--format", "json", "--taylor"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "graphspec-gradcheck" and doc["ok"] is True
    assert [r["status"] for r in doc["reports"]] == ["PASS", "KINK"]
    assert doc["reports"][0]["taylor"][0]["order"] == pytest.approx(2, abs=0.2)
    assert doc["reports"][0]["checks"][0]["elements"]["numeric"][1] == pytest.approx(1 - np.tanh(-1.5) ** 2, rel=1e-8)


def test_output_file_by_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str], broken_sub: None) -> None:
    spec = sub_spec(tmp_path)
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["check", spec, "-o", str(out_json)]) == 1
    assert main(["check", spec, "-o", str(out_md)]) == 1
    assert json.loads(out_json.read_text())["reports"][0]["blamed"][0]["node"] == "d"
    assert "**Blame:** node `d` (sub)" in out_md.read_text()
    assert capsys.readouterr().out == ""  # the report went to the files only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md", "sub.json"]  # no temp files left


def test_fast_and_max_elements_reach_the_checker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = good(tmp_path)
    assert main(["check", path, "--fast", "--directions", "2", "--format", "json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)["reports"]
    assert r["mode"] == "fast" and r["checks"][0]["checked"] == 2
    assert main(["check", path, "--max-elements", "2", "--format", "json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)["reports"]
    assert r["checks"][0]["checked"] == 2 and r["checks"][0]["size"] == 3


def test_inputs_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "in.json", {"graphspec": "1", "inputs": {"x": {"shape": [2]}},
                                       "nodes": {"s": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["s"]}},
                                       "loss": "L"})
    assert main(["check", path]) == 2  # x has no value
    assert f"error: {path}: inputs.x: no value" in capsys.readouterr().err  # the spec's name is kept
    assert main(["check", path, "--input", "x=[0.1, 0.2]", "--format", "json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)["reports"]
    assert r["checks"][0]["elements"]["analytic"] == pytest.approx(np.cos([0.1, 0.2]).tolist())


def test_ops_sweep_one_op(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--ops", "--op", "softmax", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["ops"]
    assert {r["op"] for r in rows} == {"softmax"} and len(rows) == 2 * len(OPS["softmax"].samples())
    assert {r["dtype"] for r in rows} == {"float64", "float32"}
    assert all(r["status"] == "PASS" for r in rows)


def test_ops_sweep_fails_a_broken_op(capsys: pytest.CaptureFixture[str]) -> None:
    orig = OPS["cos"]
    OPS["cos"] = dataclasses.replace(orig, vjp=(lambda g, ans, x: g * np.sin(x),), jvp=orig.jvp)
    try:
        assert main(["check", "--ops", "--op", "cos", "--op", "sin"]) == 1
    finally:
        OPS["cos"] = orig
    out = capsys.readouterr().out
    assert "1 sample(s) fail" not in out and "fail: cos" in out


def test_module_entry_point(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "graphspec", "check", good(tmp_path), "--format", "markdown"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and f"## Gradient check: {good(tmp_path)} (good): **PASS**" in r.stdout


def test_verbose_lists_the_worst_elements_of_passing_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = good(tmp_path)
    assert main(["check", path]) == 0
    assert "worst elements" not in capsys.readouterr().out
    assert main(["check", path, "-v"]) == 0
    out = capsys.readouterr().out
    assert "dL/dw: worst elements" in out and "w[0]" in out and "w[2]" in out


@pytest.mark.parametrize("flags", [[], ["--fast"], ["--taylor"]])
@pytest.mark.parametrize("extra", [{"outputs": []}, {"inputs": {"x": {"value": []}}, "outputs": ["e"]}])
def test_nothing_to_differentiate_is_a_note_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         extra: dict, flags: list[str]) -> None:
    """No loss and no float output with elements ("outputs": [], or a zero-size output): the
    checker stacked zero Jacobian rows and raised numpy's ValueError. Nothing checked is no pass: exit 1."""
    doc = {"graphspec": "1", "inputs": {"x": {"value": [1.0]}}, "nodes": {"e": {"op": "exp", "args": ["x"]}}, **extra}
    assert main(["check", write(tmp_path, "s.json", doc), *flags]) == 1
    assert "nothing to check: no loss and no float output with elements" in capsys.readouterr().out


def test_an_unknown_wrt_suggests_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", good(tmp_path), "--wrt", "ww"]) == 2
    assert capsys.readouterr().err == (f"error: {good(tmp_path)}: wrt.ww: 'ww' is not a param or float input with a "
                                       "gradient (did you mean 'w'?)\n")


def test_wrt_named_twice_is_checked_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--wrt w --wrt w moved w twice in the JVP-vs-VJP check: "JVP and VJP disagree", a false FAIL."""
    assert main(["check", good(tmp_path), "--wrt", "w", "--wrt", "w", "--format", "json"]) == 0
    (rep,) = json.loads(capsys.readouterr().out)["reports"]
    assert len(rep["checks"]) == 1


def test_a_name_that_looks_like_markup_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rich read "[/] [bold" in a spec's name as markup and raised MarkupError in the title."""
    doc = json.loads(Path(good(tmp_path)).read_text())
    doc["name"] = "[/] [bold"
    assert main(["check", write(tmp_path, "m.json", doc)]) == 0
    assert "m.json ([/] [bold) (full" in capsys.readouterr().out


# -- several specs: a bad one does not stop the others ----------------------------------------------


def _class_folder(tmp_path: Path) -> Path:
    """A teacher's folder: two students, one spec each plus a broken one, a data file and a report."""
    root = tmp_path / "class"
    (root / "ann").mkdir(parents=True)
    (root / "bob" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    good_doc = json.loads(Path(good(tmp_path)).read_text())
    (root / "ann" / "good.json").write_text(json.dumps(good_doc))
    (root / "bob" / "deep" / "kink.json").write_text(Path(kinked(tmp_path)).read_text())
    (root / "bob" / "typo.json").write_text('{"graphspec": "1", "nodes": {"z": {"op": "mull", "args": []}}}')
    (root / "bob" / "broken.json").write_text('{"graphspec": "1", "nodes": {')  # not even JSON: still a spec
    (root / "ann" / "data.json").write_text("[1, 2, 3]")  # no "graphspec" key: skipped
    (root / ".hidden" / "x.json").write_text(json.dumps(good_doc))  # hidden folders are not walked
    return root


def test_a_bad_spec_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check A.json B.json` stopped at the first bad spec (issue 8)."""
    bad = write(tmp_path, "bad.json", {"graphspec": "1", "nodes": {"z": {"op": "mull", "args": []}}})
    specs = [good(tmp_path), bad, kinked(tmp_path)]
    assert main(["check", *specs]) == 2
    out, err = capsys.readouterr()
    assert out.count("gradient check:") == 3 and "KINK at w[0]" in out
    assert f"ERROR: {bad}: nodes.z.op: unknown op 'mull'" in out
    assert "2 of 3 specs pass, 1 could not be checked" in out
    assert err == f"error: {bad}: nodes.z.op: unknown op 'mull' (did you mean 'mul'?)\n"

    assert main(["check", *specs, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and [r["status"] for r in doc["reports"]] == ["PASS", "ERROR", "KINK"]
    entry = doc["reports"][1]
    assert entry["spec"] == bad and entry["ok"] is False
    one = {"message": "unknown op 'mull'", "source": bad, "loc": "nodes.z.op", "hint": "did you mean 'mul'?"}
    assert entry["error"] == {**one, "exit_code": 2, "text": f"{bad}: nodes.z.op: unknown op 'mull' (did you mean 'mul'?)",
                              "errors": [one], "more_errors": 0}

    assert main(["check", *specs, "--format", "markdown"]) == 2
    md = capsys.readouterr().out
    assert md.count("## Gradient check: ") == 3 and f"## Gradient check: {bad}: **ERROR**" in md
    assert "unknown op 'mull'" in md


def test_the_worst_exit_code_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str], broken_sub: None) -> None:
    bad = write(tmp_path, "bad.json", {"graphspec": "1"})
    assert main(["check", good(tmp_path), sub_spec(tmp_path)]) == 1
    assert main(["check", sub_spec(tmp_path), good(tmp_path), bad]) == 2
    assert main(["check", bad, sub_spec(tmp_path)]) == 2
    assert main(["check", good(tmp_path), kinked(tmp_path)]) == 0


def test_an_error_while_checking_is_an_entry_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An input without a value is found by the checker, not by load: the same ERROR entry, named by its spec."""
    path = write(tmp_path, "novalue.json", {"graphspec": "1", "inputs": {"x": {"shape": [2]}},
                                            "nodes": {"s": {"op": "sum", "args": ["x"]}}, "loss": "s"})
    assert main(["check", path, good(tmp_path), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in doc["reports"]] == ["ERROR", "PASS"]
    assert doc["reports"][0]["error"]["source"] == path and doc["reports"][0]["error"]["loc"] == "inputs.x"


def test_check_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _class_folder(tmp_path)
    assert main(["check", str(root), "--format", "json"]) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    rel = [str(Path(r["spec"]).relative_to(root)) for r in doc["reports"]]
    assert rel == ["ann/good.json", "bob/broken.json", "bob/deep/kink.json", "bob/typo.json"]  # sorted by path parts
    assert [r["status"] for r in doc["reports"]] == ["PASS", "ERROR", "KINK", "ERROR"]
    assert doc["skipped"] == [{"spec": str(root / "ann" / "data.json"), "reason": 'not a spec (no "graphspec" key)'}]
    assert f"note: {root / 'ann' / 'data.json'}: skipped, not a spec" in err
    assert err.count("error: ") == 2
    out_file = tmp_path / "report.md"
    assert main(["check", str(root), "-o", str(out_file)]) == 2
    assert out_file.read_text().count("## Gradient check: ") == 4
    assert "wrote" in capsys.readouterr().err and not any(p.name.startswith(".") for p in tmp_path.iterdir()
                                                           if p.name != ".hidden")
    # a refused -o is the only line: the bad specs found while loading are not reported before it
    assert main(["check", str(root), "-o", str(tmp_path / "missing" / "r.md")]) == 2
    assert capsys.readouterr() == ("", f"error: -o {tmp_path / 'missing' / 'r.md'}: cannot write there: "
                                       f"no folder {tmp_path / 'missing'}\n")


def test_a_folder_with_only_good_specs_passes_and_an_explicit_non_spec_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ok"
    root.mkdir()
    write(root, "a.json", json.loads(Path(good(tmp_path)).read_text()))
    write(root, "b.json", json.loads(Path(kinked(tmp_path)).read_text()))
    assert main(["check", str(root)]) == 0
    assert "2 of 2 specs pass" in capsys.readouterr().out
    assert main(["check", str(root / "b.json"), str(root), f"{root}/./a.json"]) == 0  # each spec once, first place kept
    assert capsys.readouterr().out.count("gradient check: ") == 2
    data = root / "data.json"
    data.write_text("[1, 2]")
    assert main(["check", str(data)]) == 2  # named on its own, a file that is no spec is an error
    assert "a spec is a JSON object, got list" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 2
    assert capsys.readouterr().err == f'error: {empty}: no spec under this folder (a *.json file with a "graphspec" key)\n'


def test_check_a_folder_in_a_fresh_process(tmp_path: Path) -> None:
    root = _class_folder(tmp_path)
    r = subprocess.run([sys.executable, "-m", "graphspec", "check", str(root)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "2 of 4 specs pass, 2 could not be checked" in r.stdout
    assert "Traceback" not in r.stderr and r.stderr.count("error: ") == 2


def test_input_and_params_with_a_folder_of_several_specs_is_a_usage_error(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = _class_folder(tmp_path)
    assert main(["check", str(root), "--input", "w=[1, 2, 3]"]) == 2
    assert capsys.readouterr().err == "error: --input and --params apply to one spec; give one SPEC (these are 4)\n"


# -- JSON errors ----------------------------------------------------------------------------------------


def test_usage_errors_are_json_records_with_format_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", good(tmp_path), "--max-elements", "0", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    one = {"message": "--max-elements must be at least 1", "source": None, "loc": None, "hint": None}
    assert json.loads(out) == {"ok": False, "error": {**one, "exit_code": 2, "text": "--max-elements must be at least 1",
                                                      "errors": [one], "more_errors": 0}}
    assert err == "error: --max-elements must be at least 1\n"
    # with -o the report goes to the file: stdout stays empty
    assert main(["check", good(tmp_path), "--max-elements", "0", "-o", str(tmp_path / "r.json")]) == 2
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("flags, said", [(["--strict"], "--strict goes"), (["--fast", "--wrt", "x"], "--fast, --wrt go"),
                                         (["--input", "x=1"], "--input goes"), (["-v"], "--verbose goes")])
def test_spec_options_with_ops_are_refused_not_ignored(capsys: pytest.CaptureFixture[str], flags: list[str],
                                                       said: str) -> None:
    """`check --ops --strict` swept with kinks passing, `--fast` swept in full: silently."""
    assert main(["check", "--ops", "--op", "relu", *flags]) == 2
    assert capsys.readouterr() == ("", f"error: {said} with SPEC files, not --ops (the sweep checks every sample "
                                       "of each op in full)\n")


def test_ops_sweep_output_is_guarded_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Path(good(tmp_path))
    before = target.read_text()
    assert main(["check", "--ops", "--op", "relu", "-o", str(target)]) == 2
    assert "looks like a spec" in capsys.readouterr().err and target.read_text() == before
    assert main(["check", "--ops", "--op", "relu", "-o", str(target), "--force"]) == 0
    assert json.loads(target.read_text())["ops"][0]["op"] == "relu"


def test_a_markdown_report_of_several_specs_ends_with_how_many_pass(capsys):
    from graphspec.cli import main

    lecture = Path(__file__).parent.parent / "specs" / "lecture"
    assert main(["check", str(lecture / "mul.json"), str(lecture / "linear.json"), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("**2 of 2 specs pass**")


def test_an_op_sweep_that_checked_nothing_is_not_a_pass(capsys):
    """one_hot has no float arg: its samples are EMPTY, and a sweep of it alone exits 1; next to
    an op that was checked, the sweep passes and names what had nothing to check."""
    from graphspec.cli import main

    assert main(["check", "--ops", "--op", "one_hot"]) == 1
    out = capsys.readouterr().out
    assert "nothing to check (no float arg with a gradient): one_hot" in out
    assert "every sample with something to check passes" not in out and "no sample had anything to check" in out
    assert main(["check", "--ops", "--op", "one_hot", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False  # the JSON's ok is the exit code's verdict
    assert main(["check", "--ops", "--op", "one_hot", "--op", "mul"]) == 0
    out = capsys.readouterr().out
    assert "every sample with something to check passes" in out and "EMPTY" in out
    assert main(["check", "--ops", "--op", "one_hot", "--op", "mul", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_check_shares_the_commands_module_and_imports_nothing_from_cli():
    """cli and checkcmd imported each other; what they share is in commands, which imports neither."""
    import ast

    import graphspec.checkcmd
    import graphspec.commands

    def imported(module):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        found = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):
                found |= {n.module} if n.module else {a.name for a in n.names}
            elif isinstance(n, ast.Import):
                found |= {a.name for a in n.names}
        return {m.removeprefix("graphspec.") for m in found}

    assert "commands" in imported(graphspec.checkcmd) and "cli" not in imported(graphspec.checkcmd)
    assert not imported(graphspec.commands) & {"cli", "checkcmd"}


def test_blame_prints_the_op_s_message_as_text_not_markup(tmp_path, capsys):
    """An op's error text with brackets ("[w]", "[/]") is printed as it is, not read as rich markup."""
    import graphspec

    def bad(g, ans, x):
        raise KeyError("[w] not found list[int] [/]")

    graphspec.defop("markup_bad_checkcmd", lambda x: x * 2.0, vjp=(bad,), jvp=(lambda t, ans, x: 2 * t,))
    try:
        spec = tmp_path / "m.json"
        spec.write_text(json.dumps({"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0]}},
                                    "nodes": {"y": {"op": "markup_bad_checkcmd", "args": ["x"]},
                                              "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}))
        assert main(["check", str(spec), "--blame"]) == 1
        out = capsys.readouterr().out
        assert "blame: node 'y' (markup_bad_checkcmd)" in out and "[w] not found list[int] [/]" in out
    finally:
        dict.pop(OPS, "markup_bad_checkcmd", None)


class _ReaderGone:
    """stdout once its reader has gone (`graphspec check ... | head`): every write is a broken pipe."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation("fileno")


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_a_reader_that_stops_early_does_not_change_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch, broken_sub: None,
                                                               fmt: str) -> None:
    """`check | head` exited 0 on a failed check (json, markdown: the BrokenPipeError was taken for
    success) and 1 on a passing one (table: rich exits 1 on a broken pipe)."""
    monkeypatch.setattr(sys, "stdout", _ReaderGone())
    assert main(["check", good(tmp_path), "--format", fmt]) == 0
    assert main(["check", sub_spec(tmp_path), "--format", fmt]) == 1
    assert main(["check", good(tmp_path), str(tmp_path / "missing.json"), "--format", fmt]) == 2
    assert isinstance(sys.stdout, _ReaderGone)  # put back after each command


def test_a_closed_pipe_keeps_the_exit_code_and_says_nothing(tmp_path: Path) -> None:
    """A real pipe closed after one byte: the check's own exit code, nothing on stderr (rich's own
    exit 1, or Python's `Exception ignored ... BrokenPipeError` at exit). The table of 120 params
    with -v and the json of 4,000 elements are far more than a pipe holds."""
    n = 120
    nodes = {"s1": {"op": "mul", "args": ["p0", "p1"]}}
    nodes.update({f"s{i}": {"op": "add", "args": [f"s{i - 1}", f"p{i}"]} for i in range(2, n)})
    many = write(tmp_path, "many.json", {
        "graphspec": "1", "params": {f"p{i}": {"value": [0.1 * i + 0.01 * k for k in range(6)]} for i in range(n)},
        "nodes": {**nodes, "L": {"op": "sum", "args": [f"s{n - 1}"]}}, "loss": "L"})
    big = write(tmp_path, "big.json", {
        "graphspec": "1", "params": {"w": {"value": [0.25 + k / 4000 for k in range(4000)]}},
        "nodes": {"r": {"op": "l2", "args": ["w"]}}, "loss": "r"})
    slip = ["--import", str(ROOT / "examples" / "ops" / "l2_slip.py")]
    for argv, code in ((["check", many, "-v"], 0), (["check", big, "--format", "json"], 0),
                       (["check", big, "--format", "json", *slip], 1)):
        p = subprocess.Popen([sys.executable, "-m", "graphspec", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=ROOT)
        assert p.stdout is not None and p.stderr is not None
        p.stdout.read(1)
        p.stdout.close()  # the reader goes: the rest of the report meets a broken pipe
        err = p.stderr.read().decode()
        assert p.wait(timeout=120) == code, (argv, err)
        assert "Traceback" not in err and "Exception ignored" not in err, err
