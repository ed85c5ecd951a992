"""graphspec.inputs from Python: NAME=VALUE texts and .npz params, as the CLI's --input and
--params read them, with the API's own errors."""

from __future__ import annotations

import numpy as np
import pytest

import graphspec
from graphspec.errors import InputError, SpecError, UsageError
from graphspec.inputs import input_files, load_params, parse_input, parse_inputs

SPEC = {"graphspec": "1", "inputs": {"x": {"shape": [2]}},
        "params": {"w": {"shape": [2], "init": "zeros"}, "n": {"value": 3, "dtype": "int64", "grad": False}},
        "nodes": {"h": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["h"]}}, "loss": "L"}


def test_json_values_and_every_file_form(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.5, 2.5]))
    np.savez(tmp_path / "two.npz", a=np.array([1.0]), b=np.array([[2, 3]]))
    (tmp_path / "x.csv").write_text("1.5\n2.5\n")
    (tmp_path / "x.json").write_text("[[1, 2], [3, 4]]")
    assert parse_input("x=2.5") == ("x", 2.5)
    assert parse_input("x=[[1, 2]]") == ("x", [[1, 2]])
    name, v = parse_input(f"x=@{tmp_path / 'x.npy'}")
    assert name == "x" and v.tolist() == [1.5, 2.5]
    assert parse_input(f"y=@{tmp_path / 'two.npz'}:b")[1].tolist() == [[2, 3]]
    assert parse_input(f"x=@{tmp_path / 'x.csv'}")[1].tolist() == [1.5, 2.5]
    assert np.asarray(parse_input(f"x=@{tmp_path / 'x.json'}")[1]).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(InputError, match=r"^input a: 'b=1' is neither JSON nor @file$"):
        parse_input("a=b=1")  # the first '=' splits: the name is 'a'


def test_parse_inputs_feed_run(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0]))
    g = graphspec.load(SPEC)
    g.params["w"] = np.array([3.0, 4.0])
    given = parse_inputs([f"x=@{tmp_path / 'x.npy'}"])
    assert float(g.run(given)["L"]) == 11.0
    assert parse_inputs(["x=1", "x=2"]) == {"x": 2}  # a later name wins, as a dict's


@pytest.mark.parametrize(("text", "message"), [
    ("x", r"^input 'x': expected NAME=VALUE or NAME=@file$"),
    ("=1", r"^input '=1': expected NAME=VALUE"),
    ("x=[1,", r"^input x: '\[1,' is neither JSON nor @file$"),
])
def test_bad_texts_are_input_errors_that_say_where(text, message):
    with pytest.raises(InputError, match=message):
        parse_input(text)


def test_a_file_that_is_not_there_is_a_spec_error_naming_the_input(tmp_path):
    """As a spec's own file is: SpecError (InputError is one too), exit 2 in the CLI."""
    with pytest.raises(SpecError, match=r"^input x: file not found: nowhere\.npy"):
        parse_input("x=@nowhere.npy")


def test_the_cli_spelling_of_errors(tmp_path):
    with pytest.raises(UsageError, match=r"^--input x: '\[1,' is neither JSON nor @file$"):
        parse_input("x=[1,", label="--input", error=UsageError)
    np.savez(tmp_path / "two.npz", a=np.array([1.0]))
    with pytest.raises(UsageError, match=r"an empty key after ':'"):
        parse_input(f"x=@{tmp_path / 'two.npz'}:", label="--input", error=UsageError)


def test_input_files_names_both_readings_of_a_key():
    assert input_files("x=[1, 2]") == []
    assert input_files("x=@a.npy") == ["a.npy"]
    assert input_files("x=@a.npz:k") == ["a.npz:k", "a.npz"]  # a file named 'a.npz:k' would be read first


def test_load_params_sets_the_named_params_and_keeps_the_rest(tmp_path):
    g = graphspec.load(SPEC)
    np.savez(tmp_path / "p.npz", w=np.array([1, 2]))  # integers in the file: the param's float64
    got = load_params(g, tmp_path / "p.npz")
    assert set(got) == {"w"} and g.params["w"].dtype == np.float64 and g.params["w"].tolist() == [1.0, 2.0]
    assert int(g.params["n"]) == 3  # not in the file: as it was
    assert float(g.run({"x": [1.0, 1.0]})["L"]) == 3.0


@pytest.mark.parametrize(("arrays", "message"), [
    ({"v": np.zeros(2)}, r"p\.npz: 'v' is not a param of this spec"),
    ({"ww": np.zeros(2)}, r"p\.npz: 'ww' is not a param of this spec \(did you mean 'w'\?\)"),
    ({"w": np.zeros(3)}, r"p\.npz: 'w' has shape \[3\], the spec declares \[2\]"),
    ({"w": np.zeros(2), "n": np.array(1.5)}, r"p\.npz: n: int64 values must be whole numbers"),
])
def test_load_params_that_do_not_fit_change_nothing(tmp_path, arrays, message):
    g = graphspec.load(SPEC)
    before = {k: v.copy() for k, v in g.params.items()}
    np.savez(tmp_path / "p.npz", **arrays)
    with pytest.raises(InputError, match=message):
        load_params(g, tmp_path / "p.npz")
    assert g.params.keys() == before.keys()
    for k, v in before.items():  # a bad file leaves every param as it was, even the ones that fit
        np.testing.assert_array_equal(g.params[k], v)


def test_load_params_of_a_missing_file_names_the_label(tmp_path):
    with pytest.raises(UsageError, match=r"^--params p: .*no such file"):
        load_params(graphspec.load(SPEC), tmp_path / "p", label="--params p", error=UsageError)
