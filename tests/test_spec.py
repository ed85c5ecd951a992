"""spec.py: the pydantic models mirror FORMAT.md; JSON loading rejects duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphspec.errors import SpecError
from graphspec.spec import LossSeed, NormalInit, Spec, json_schema, load_spec, parse_json

ROOT = Path(__file__).resolve().parents[1]

FORMAT_EXAMPLE = {
    "graphspec": "1",
    "name": "mul",
    "description": "z = x * y, forward x=2, y=3; upstream gradient dL/dz = 5",
    "inputs": {"x": {"value": 2.0}, "y": {"value": 3.0}},
    "nodes": {"z": {"op": "mul", "args": ["x", "y"]}},
    "loss": {"node": "z", "seed": 5.0},
    "expect": {"values": {"z": 6.0}, "grads": {"x": 15.0, "y": 10.0}},
}


def test_format_example_validates():
    spec, _ = load_spec(FORMAT_EXAMPLE)
    assert spec.nodes["z"].op == "mul" and spec.nodes["z"].args == ["x", "y"]
    assert isinstance(spec.loss, LossSeed) and spec.loss.seed == 5.0
    assert spec.loss_node == "z"
    assert spec.expect is not None and spec.expect.rtol == 1e-6 and spec.expect.atol == 1e-9
    assert spec.seed == 0


def test_format_inputs_params_and_train_blocks_validate():
    doc = {
        "graphspec": "1",
        "inputs": {"X": {"shape": ["N", 2], "value": [[0, 0], [0, 1], [1, 0], [1, 1]]},
                   "y": {"shape": ["N"], "dtype": "int64", "value": [0, 1, 1, 0]},
                   "lam": {"value": 0.001, "grad": False}},
        "params": {"W1": {"shape": [2, 4], "init": {"normal": 0.5}}, "b1": {"shape": [4], "init": "zeros"},
                   "w": {"value": 1.0}},
        "nodes": {"a1": {"op": "matmul", "args": ["X", "W1"]}, "half": {"op": "mul", "args": ["a1", 0.5]}},
        "train": {"data": {"X": "data/xor.csv", "y": "data/xor_labels.csv"}, "optimizer": {"sgd": {"lr": 0.01}},
                  "epochs": 10, "batch_size": 1, "shuffle": False, "log_every": 1, "metrics": ["loss", "accuracy"]},
    }
    spec, _ = load_spec(doc)
    assert spec.inputs["X"].shape == ["N", 2]
    assert isinstance(spec.params["W1"].init, NormalInit)
    assert spec.params["b1"].init == "zeros"
    assert spec.nodes["half"].args == ["a1", 0.5]
    assert spec.train is not None and spec.train.optimizer.sgd.lr == 0.01  # type: ignore[union-attr]


def test_schema_key_is_accepted_and_ignored():
    spec, _ = load_spec({"$schema": "../graphspec.schema.json", **FORMAT_EXAMPLE})
    assert spec.schema_ == "../graphspec.schema.json"


def test_duplicate_keys_are_errors_with_their_place():
    with pytest.raises(SpecError, match=r"inputs\.x: duplicate key 'value'"):
        parse_json('{"inputs": {"x": {"value": 1, "value": 2}}}')


def test_json_syntax_error_names_line_and_column():
    with pytest.raises(SpecError, match=r"line 2 column 1: not valid JSON"):
        parse_json('{"a": 1,\n}')


@pytest.mark.parametrize("value", [[1, "a"], {"a": 1}, "x"])
def test_values_must_be_numbers(value):
    doc = {**FORMAT_EXAMPLE, "inputs": {"x": {"value": value}, "y": {"value": 3.0}}}
    with pytest.raises(SpecError, match=r"inputs\.x\.value"):
        load_spec(doc)


def test_shipped_schema_equals_generated():
    shipped = json.loads((ROOT / "graphspec.schema.json").read_text())
    assert shipped == json_schema(), "regenerate with: python -m graphspec schema > graphspec.schema.json"


def test_schema_lists_every_op_and_forbids_unknown_keys():
    from graphspec.ops import OPS

    schema = json_schema()
    assert schema["$defs"]["Node"]["properties"]["op"]["enum"] == sorted(OPS)
    assert schema["additionalProperties"] is False
    assert "nodes" in schema["required"] and "graphspec" in schema["required"]


def test_spec_models_are_frozen():
    spec, _ = load_spec(FORMAT_EXAMPLE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec, Spec)
