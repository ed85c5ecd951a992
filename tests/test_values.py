"""values.py: value, file and init become arrays; lossy conversions are errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import graphspec
from graphspec.errors import SpecError


def test_files_of_every_kind_load_relative_to_the_spec(tmp_path):
    data = np.arange(6.0).reshape(3, 2)
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "a.npy", data)
    np.savez(tmp_path / "d" / "b.npz", first=data, second=data * 2)
    (tmp_path / "d" / "c.csv").write_text("u,v\n0,1\n2,3\n4,5\n")
    (tmp_path / "d" / "e.json").write_text(json.dumps(data.tolist()))
    spec = {"graphspec": "1",
            "inputs": {"a": {"file": "d/a.npy"}, "b": {"file": "d/b.npz", "key": "second"}, "c": {"file": "d/c.csv"},
                       "e": {"file": "d/e.json"}},
            "nodes": {"s": {"op": "concat", "args": ["a", "b", "c", "e"]}}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    g = graphspec.load(tmp_path / "s.json")
    out = g.run()["s"]
    np.testing.assert_array_equal(out, np.concatenate([data, data * 2, data, data]))


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    np.savez(tmp_path / "b.npz", first=np.ones(2), second=np.ones(2))
    spec = {"graphspec": "1", "inputs": {"b": {"file": "b.npz"}}, "nodes": {"s": {"op": "neg", "args": ["b"]}}}
    with pytest.raises(SpecError, match=r"inputs\.b\.file: b\.npz holds \['first', 'second'\]: say which"):
        graphspec.load(spec, base=tmp_path)


def test_inits_are_seeded_per_param_and_reproducible():
    def params(seed, extra=None):
        spec = {"graphspec": "1", "seed": seed, "inputs": {"x": {"value": [1.0, 1.0]}},
                "params": {"W": {"shape": [2, 3], "init": "he"}, **(extra or {})},
                "nodes": {"m": {"op": "matmul", "args": ["x", "W"]}}}
        return graphspec.load(spec).params

    a, b, c = params(0), params(0), params(1)
    np.testing.assert_array_equal(a["W"], b["W"])
    assert not np.array_equal(a["W"], c["W"])
    # adding another param does not change the numbers of this one
    np.testing.assert_array_equal(a["W"], params(0, {"V": {"shape": [4], "init": {"normal": 1.0}}})["W"])


@pytest.mark.parametrize(("init", "check"), [
    ("zeros", lambda w: np.all(w == 0)), ("ones", lambda w: np.all(w == 1)),
    ({"uniform": [2.0, 3.0]}, lambda w: np.all((w >= 2) & (w < 3))),
    ("xavier", lambda w: np.all(np.abs(w) <= np.sqrt(6 / (300 + 200)))),
    ("he", lambda w: abs(w.std() - np.sqrt(2 / 300)) < 0.1 * np.sqrt(2 / 300)),
    ({"normal": 0.5}, lambda w: abs(w.std() - 0.5) < 0.05),
    (0.25, lambda w: np.all(w == 0.25)),
])
def test_init_kinds(init, check):
    spec = {"graphspec": "1", "params": {"W": {"shape": [300, 200], "init": init}},
            "nodes": {"s": {"op": "sum", "args": ["W"]}}}
    w = graphspec.load(spec).params["W"]
    assert w.shape == (300, 200) and w.dtype == np.float64 and check(w)


def test_float32_param_stays_float32():
    spec = {"graphspec": "1", "params": {"W": {"shape": [3], "init": "he", "dtype": "float32"}},
            "nodes": {"s": {"op": "sum", "args": ["W"]}}, "loss": "s"}
    g = graphspec.load(spec)
    assert g.params["W"].dtype == np.float32 and g.grad()["W"].dtype == np.float32


def test_big_integers_are_numbers_where_they_fit():
    """numpy keeps an integer beyond 64 bits as a Python object: as a float64 value it is a number
    (1e30 written out), as int64 a located error, never an object array or a wrapped-around int."""
    from graphspec.errors import InputError
    from graphspec.values import as_array

    np.testing.assert_array_equal(as_array([1, 10**30], "float64", "x"), [1.0, 1e30])
    assert as_array(2**63 - 1, "int64", "x") == 2**63 - 1
    for bad, dtype in ((10**30, "int64"), (2**63, "int64"), (float(2**63), "int64"), (-1e30, "int64"), (10**400, "float64")):
        with pytest.raises(InputError, match=r"out of range|must lie in"):
            as_array(bad, dtype, "x", error=InputError)
    with pytest.raises(SpecError, match="x: expected numbers, got null"):
        as_array([1.0, None], "float64", "x")


# -- files: CSV header rule, BOM, JSON data, .npz keys ----------------------------------------------


def _csv_input(tmp_path, text: str | bytes, name="d.csv"):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    spec = {"graphspec": "1", "inputs": {"x": {"file": name}}, "nodes": {"s": {"op": "neg", "args": ["x"]}}}
    return graphspec.load(spec, base=tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("1,2\n3,4\n", [[1, 2], [3, 4]]),  # no header: the first row is numbers
    ("x1,x2\n1,2\n3,4\n", [[1, 2], [3, 4]]),
    (' "x 1" , y.2-b,_z\n1,2,3\n', [[1, 2, 3]]),  # names in quotes, with spaces, dots and dashes
    ("nan,inf\n1,-2.5e3\n", [[np.nan, np.inf], [1, -2500]]),  # nan and inf are numbers, not names
    ("# a comment\n\nx\n1\n\n2\r\n", [1, 2]),  # comments, blank lines and CRLF skipped; one column is 1-D
    ("\ufeffx,y\n1,2\n", [[1, 2]]),  # a byte order mark (a Windows editor's) is dropped
])
def test_csv_rows_and_the_header_rule(tmp_path, text, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nan and inf are legal data, announced by a NonFiniteWarning
        out = _csv_input(tmp_path, text).run()["s"]
    np.testing.assert_array_equal(out, -np.array(expected, dtype=float))


@pytest.mark.parametrize("text, message", [
    ("1;2\n3;4\n", r"d\.csv line 1: '1;2' is neither a row of numbers nor a header of names \(cells are separated "
                   r"by ','; a header's names start with a letter or _\)"),
    ("x,2\n1,2\n", r"d\.csv line 1: 'x,2' is neither"),  # a name and a number: neither
    ("1a,b\n1,2\n", r"d\.csv line 1: '1a,b' is neither"),
    ("a,b,c\n1,2,3\n4,5\n", r"d\.csv line 3: 2 values, line 2 had 3"),
    ("a,b\n1,2,3\n", r"d\.csv line 2: 3 values, the header \(line 1\) has 2 names"),
    ("1,2\n3,abc\n", r"d\.csv line 2, column 2: 'abc' is not a number"),
    ("1,2\n3,\n", r"d\.csv line 2, column 2: an empty cell"),
    ("1,2\n3;4,5\n", r"d\.csv line 2, column 1: '3;4' is not a number \(cells are separated by ','\)"),
    ("", r"d\.csv: no rows of numbers \(the file is empty\)"),
    ("x,y\n\n", r"d\.csv: no rows of numbers \(only a header, line 1\)"),
])
def test_csv_errors_are_graphspec_own_located_lines(tmp_path, text, message):
    """numpy said "use `usecols`" of a ragged row, took `1;2` for a header silently, and warned
    of an empty file; each is one line that names the file, the line and the delimiter."""
    with pytest.raises(SpecError, match=message) as e:
        _csv_input(tmp_path, text)
    assert str(e.value).startswith("inputs.x.file: d.csv")
    assert "usecols" not in str(e.value) and "numpy" not in str(e.value)


def test_a_bom_is_accepted_in_a_spec_and_in_json_data(tmp_path):
    (tmp_path / "d.json").write_bytes(b"\xef\xbb\xbf[1.5, 2.5]")
    spec = {"graphspec": "1", "inputs": {"x": {"file": "d.json"}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}
    (tmp_path / "s.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(spec).encode())
    assert graphspec.load(tmp_path / "s.json").run()["s"] == 4.0


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, r"d\.json: JSON nested too deeply to read"),
    ("[" * 70 + "1" + "]" * 70, r"a list nested 70 deep: arrays have at most 64 dims"),
    ("[[1, 2], [3]]", r"ragged nested list"),
    ("[1, 2", r"d\.json line 1 column 6: not valid JSON"),
    ("[" + "1" * 5000 + "]", r"d\.json: an integer literal of more than 4300 digits"),
    ('[1, {"a": 2}]', r"expected numbers, got dict"),
])
def test_json_data_files_that_cannot_be_arrays_are_located_errors(tmp_path, text, message):
    """A RecursionError traceback before (Python's json recurses per level), and numpy's
    "inhomogeneous shape" text for a ragged list."""
    (tmp_path / "d.json").write_text(text)
    spec = {"graphspec": "1", "inputs": {"x": {"file": "d.json"}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}
    with pytest.raises(SpecError, match=message) as e:
        graphspec.load(spec, base=tmp_path)
    assert str(e.value).startswith("inputs.x.file: ")


def test_a_key_goes_with_an_npz_only(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(2))
    spec = {"graphspec": "1", "inputs": {"a": {"file": "a.npy", "key": "k"}}, "nodes": {"s": {"op": "neg", "args": ["a"]}}}
    with pytest.raises(SpecError, match=r"inputs\.a\.file: a key \('k'\) names an array in an \.npz file; a\.npy is no \.npz"):
        graphspec.load(spec, base=tmp_path)
    np.savez(tmp_path / "b.npz", first=np.ones(2))
    spec["inputs"]["a"] = {"file": "b.npz", "key": "second"}
    with pytest.raises(SpecError, match=r"inputs\.a\.file: b\.npz has no array 'second' \(it holds \['first'\]\)"):
        graphspec.load(spec, base=tmp_path)


def test_input_at_npz_colon_key_names_the_array(tmp_path, capsys):
    """--input X=@two.npz could not name the key: now @two.npz:KEY, and the error for a
    multi-array .npz without one says which keys there are, in the syntax to write."""
    from graphspec.cli import main

    np.savez(tmp_path / "two.npz", a=np.array([1.0, 2.0]), b=np.array([10.0, 20.0, 30.0]))
    np.save(tmp_path / "one.npy", np.ones(2))
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"graphspec": "1", "inputs": {"x": {}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}))
    npz = tmp_path / "two.npz"
    assert main(["run", str(spec), "--input", f"x=@{npz}:b", "--format", "json", "--no-grad"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["s"]["value"] == 60.0
    for arg, message in ((f"x=@{npz}", f"error: --input x: two.npz holds ['a', 'b']: say which with @{npz}:a"),
                         (f"x=@{npz}:c", "error: --input x: two.npz has no array 'c' (it holds ['a', 'b'])"),
                         (f"x=@{npz}:", f"error: --input x: @{npz}: an empty key after ':' (say @{npz}:KEY)"),
                         (f"x=@{tmp_path / 'one.npy'}:a",
                          "error: --input x: a key ('a') names an array in an .npz file; one.npy is no .npz")):
        assert main(["run", str(spec), "--input", arg]) == 2, arg
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.endswith(message.removeprefix("error: ") + "\n") and err.count("\n") == 1, err


@pytest.mark.parametrize("value, message", [
    ("[" * 100_000, "error: --input x: the value: JSON nested too deeply to read"),
    ("1" * 5000, "error: --input x: the value: an integer literal of more than 4300 digits"),
    ("[" * 70 + "1" + "]" * 70, "x: a list nested 70 deep: arrays have at most 64 dims"),
])
def test_hostile_input_values_are_located_errors(tmp_path, capsys, value, message):
    """A RecursionError, or Python's ValueError for an integer of 5000 digits, escaped main."""
    from graphspec.cli import main

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"graphspec": "1", "inputs": {"x": {}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}))
    assert main(["run", str(spec), "--input", f"x={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
