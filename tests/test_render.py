"""render's shared pieces: the one number formatter, the one JSON writer, the one console."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from graphspec import report
from graphspec.render import console, dumps, fmt_err, fmt_num, fmt_value, to_json, write_json


@pytest.mark.parametrize(("x", "text"), [
    (None, "-"), (True, "true"), (np.bool_(False), "false"), (7, "7"), (np.int64(-12345678), "-12345678"),
    (1 / 3, "0.333333"), (np.float32(2.5), "2.5"), (1e-300, "1e-300"), (123456789.0, "1.23457e+08"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"),
])
def test_fmt_num(x, text):
    assert fmt_num(x) == text


def test_fmt_err_gives_the_magnitude():
    assert [fmt_err(x) for x in (None, 0.0, 1.234e-7, np.float32(0.5), math.inf)] == ["-", "0.0e+00", "1.2e-07", "5.0e-01", "inf"]


def test_fmt_value_writes_small_arrays_whole_and_big_ones_by_summary():
    assert fmt_value(np.array([1 / 3, 2.0])) == "[0.333333, 2]"
    assert fmt_value(np.array([[1, 2], [3, 4]])) == "[[1, 2],\n [3, 4]]"
    assert fmt_value(np.arange(30)) == "min 0  max 29"
    assert fmt_value(np.ones(30)) == f"min 1  mean 1  max 1  norm {fmt_num(math.sqrt(30))}"
    assert fmt_value(np.arange(30.0)).startswith("min 0  mean 14.5  max 29  norm ")


def test_one_json_writer_refuses_nan_that_to_json_has_made_null():
    doc = {"a": to_json(np.array([1.0, np.nan, np.inf])), "b": 2}
    assert dumps(doc) == json.dumps(doc, indent=2) + "\n" and json.loads(dumps(doc))["a"] == [1.0, None, None]
    buf = io.StringIO()
    write_json(buf, doc)
    assert buf.getvalue() == dumps(doc) and report.dumps is dumps
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})


def test_the_console_writes_plain_text_into_a_file_and_keeps_wide_tables_piped(capsys):
    buf = io.StringIO()
    con = console(buf)
    con.print("[bold]x[/bold] 1.5")
    assert buf.getvalue() == "x 1.5\n" and con.width == 120 and not con.is_terminal
    assert console(io.StringIO(), 60).width == 60
    assert console().width == 160  # stdout is a pipe under pytest: logs and CI read it


def _ops_column(out: str) -> dict[str, str]:
    """name -> op of run's outputs table (its rows start with a vertical bar)."""
    return {cells[1].strip(): cells[2].strip() for cells in (line.split("│") for line in out.splitlines())
            if len(cells) > 2 and cells[0] == ""}


def test_run_table_names_a_function_call_by_its_function(tmp_path, capsys):
    """An output that is a call reads the function's name in the op column: a written-out call read its
    body's last op (mul), a call with a hand-written vjp the table's internal key (sigmoid_layer/<hash>)."""
    from pathlib import Path

    from graphspec.cli import main

    lecture = Path(__file__).resolve().parents[1] / "specs" / "lecture"
    assert main(["run", str(lecture / "network_delta.json"), "--no-grad"]) == 0
    rows = _ops_column(capsys.readouterr().out)
    assert rows["y123"] == rows["y45"] == "sigmoid_layer" and rows["y6"] == "sigmoid_unit" and rows["loss"] == "mul"
    spec = {"graphspec": "1", "inputs": {"X": {"value": [1.0, 2.0]}},
            "functions": {"f": {"args": ["x"], "nodes": {"a": {"op": "add", "args": ["x", 1.0]},
                                                         "b": {"op": "mul", "args": ["a", 3.0]}}, "output": "b"}},
            "nodes": {"h": {"op": "f", "args": ["X"]}}, "outputs": ["h", "X"]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec))
    assert main(["run", str(path)]) == 0
    rows = _ops_column(capsys.readouterr().out)
    assert rows["h"] == "f" and rows["X"] == "inputs"
