"""values.py: value, file and init become arrays; lossy conversions are errors."""

from __future__ import annotations

import json

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
