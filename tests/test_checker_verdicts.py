"""The verdict of a gradient check is earned and stated the same way everywhere: every format (table,
markdown, JSON) gives the verdict the exit code gives, nothing to check is not a pass, reports over
several specs are labelled by path, and big inputs are sampled (and say so) with progress on a
terminal only."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec import report
from graphspec.checker import FAIL, KINK, PASS, gradcheck
from graphspec.checker import progress as progress_mod
from graphspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
KINKED = {"graphspec": "1", "name": "kinked", "params": {"w": {"value": [0.0, 2.0]}},
          "nodes": {"r": {"op": "abs", "args": ["w"]}, "L": {"op": "sum", "args": ["r"]}}, "loss": "L"}
EMPTY_SPEC = {"graphspec": "1", "name": "empty", "inputs": {"x": {"value": [1.0, 2.0], "grad": False}},
              "nodes": {"y": {"op": "sin", "args": ["x"]}, "L": {"op": "sum", "args": ["y"]}}, "loss": "L"}


def _write(folder: Path, name: str, doc: dict) -> Path:
    p = folder / name
    p.write_text(json.dumps(doc))
    return p


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    return code, capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# one verdict, every format


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_every_format_states_the_verdict_the_exit_code_gives(tmp_path: Path, capsys, fmt: str, strict: bool) -> None:
    path = _write(tmp_path, "kinked.json", KINKED)
    code, out = _check(capsys, str(path), "--format", fmt, *(["--strict"] if strict else []))
    assert code == (1 if strict else 0)
    word = "FAIL" if strict else "KINK"
    if fmt == "json":
        (r,) = json.loads(out)["reports"]
        assert r["verdict"] == word and r["ok"] is (not strict) and r["status"] == KINK
    elif fmt == "markdown":
        assert out.splitlines()[0].endswith(f"**{word}**")
        assert out.strip().splitlines()[-1].startswith(f"**{word}")  # a verdict line, as in the table
        assert ("--strict: kinks are failures" in out) is strict
    else:
        last = out.strip().splitlines()[-1]
        assert last.startswith(word) and ("--strict: kinks are failures" in last) is strict


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_nothing_to_check_exits_1_with_the_reason(tmp_path: Path, capsys, fmt: str) -> None:
    code, out = _check(capsys, str(_write(tmp_path, "e.json", EMPTY_SPEC)), "--format", fmt)
    assert code == 1
    assert "nothing to check: no param or float input with a gradient" in out
    assert "PASS" not in out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["ok"] is False and doc["reports"][0]["verdict"] == "EMPTY"


def test_the_verdict_line_never_contradicts_itself() -> None:
    """Node checks that fail while every gradient passes (the old "FAIL: 6 of 6 checks pass") are named
    in the verdict line."""
    rep = gradcheck(KINKED)
    bad = type(rep.nodes)([graphspec.checker.NodeCheck("r", "abs", 0, "x (w)", "vjp", 1.0, 2.0, 0.5, FAIL)])
    rep.nodes = bad
    line = report.verdict_line(rep)
    assert line.startswith("FAIL") and "1 node check(s) FAIL" in line
    assert rep.verdict == FAIL and not rep.ok


def test_slope_blame_verdict_is_a_pass() -> None:
    rep = gradcheck(ROOT / "specs/lecture/slope.json", blame=True)
    assert rep.verdict == PASS and report.verdict_line(rep).startswith("PASS: 6 of 6 checks pass"), rep.text()


def test_several_specs_are_labelled_by_path(tmp_path: Path, capsys) -> None:
    """lecture/hinge.json and losses/hinge.json are both named 'hinge': the sections are told apart by path."""
    a, b = tmp_path / "lecture", tmp_path / "losses"
    a.mkdir(), b.mkdir()
    pa = shutil.copy(ROOT / "specs/lecture/hinge.json", a / "hinge.json")
    pb = shutil.copy(ROOT / "specs/losses/hinge.json", b / "hinge.json")
    for fmt in ("markdown", "table"):
        code, out = _check(capsys, str(pa), str(pb), "--format", fmt)
        assert code == 0
        assert f"{pa} (" in out and f"{pb} (" in out
    code, out = _check(capsys, str(pa), str(pb), "--format", "markdown")
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert len(headings) == 2 and len(set(headings)) == 2
    reps = [gradcheck(pa), gradcheck(pb)]
    assert report.reports_markdown(reps).strip().endswith("**2 of 2 specs pass**")


# ---------------------------------------------------------------------------------------------
# size: sampling past a documented size, --all, progress on a terminal only


def _big(n: int) -> dict:
    return {"graphspec": "1", "name": "big", "params": {"x": {"value": np.linspace(0.1, 1.0, n).tolist()}},
            "nodes": {"q": {"op": "square", "args": ["x"]}, "L": {"op": "sum", "args": ["q"]}}, "loss": "L"}


def test_inputs_past_max_elements_are_sampled_and_the_report_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "MAX_ELEMENTS", 50)
    rep = gradcheck(_big(400), seed=3)
    (c,) = rep.checks
    assert (c.checked, c.size) == (50, 400) and rep.ok
    assert "sampled 50 of 400 elements at random" in " ".join(c.notes) and "sampled 50 of 400" in rep.text()
    assert c.arrays["index"] == sorted(c.arrays["index"]) and len({tuple(i) for i in c.arrays["index"]}) == 50
    assert gradcheck(_big(400), seed=3).checks[0].arrays["index"] == c.arrays["index"]  # seeded
    full = gradcheck(_big(400), all_elements=True)
    assert full.checks[0].checked == 400 and not any("sampled" in n for n in full.checks[0].notes)
    assert gradcheck(_big(400), max_elements=7).checks[0].checked == 7  # the user's number, whatever the default


def test_a_costly_input_is_sampled_down_to_what_max_work_pays_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "MAX_WORK", 2 * 20 * 1000)  # 20 elements of rows costing ~1000
    (c,) = gradcheck(_big(400)).checks
    assert progress_mod.MIN_SAMPLE <= c.checked < 400


def test_sample_sizes() -> None:
    assert progress_mod.sample_size(10 ** 7, 10 ** 6, None, False) == progress_mod.MAX_WORK // (2 * 10 ** 6)
    assert progress_mod.sample_size(10 ** 7, 10 ** 10, None, False) == progress_mod.MIN_SAMPLE
    assert progress_mod.sample_size(10 ** 7, 3 * 10 ** 7, None, True) == 10 ** 7
    assert progress_mod.sample_size(1000, 3000, None, False) == 1000


def test_all_on_the_command_line_checks_every_element(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "MAX_ELEMENTS", 50)
    path = _write(tmp_path, "big.json", _big(300))
    code, out = _check(capsys, str(path), "--format", "json")
    assert code == 0 and json.loads(out)["reports"][0]["checks"][0]["checked"] == 50
    code, out = _check(capsys, str(path), "--format", "json", "--all")
    assert code == 0 and json.loads(out)["reports"][0]["checks"][0]["checked"] == 300
    assert main(["check", str(path), "--all", "--max-elements", "3"]) == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("fast", [False, True])
def test_a_long_check_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    monkeypatch.setattr(progress_mod, "PROGRESS_SECONDS", 0.0)  # every check counts as long: no timing involved
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    assert gradcheck(_big(200), fast=fast).ok
    assert "gradient check: big" in tty.getvalue()


def test_no_progress_in_a_pipe_or_on_a_short_check(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    monkeypatch.setattr(progress_mod, "PROGRESS_SECONDS", 0.0)
    assert gradcheck(_big(200)).ok and pipe.getvalue() == ""  # a pipe: nothing, however long
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.setattr(progress_mod, "PROGRESS_SECONDS", 2.0)
    assert gradcheck(_big(200)).ok and tty.getvalue() == ""  # a terminal, but expected to be quick
    assert gradcheck(_big(200), progress=False).ok and tty.getvalue() == ""
