"""spec.py: the pydantic models mirror FORMAT.md; JSON loading rejects duplicates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from graphspec.errors import SpecError
from graphspec.spec import NAME_PATTERN, LossSeed, NormalInit, Spec, json_schema, load_spec, parse_json

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
    assert shipped == json_schema(), "regenerate with: .venv/bin/python tools/gen_op_docs.py"


def test_schema_lists_every_op_and_forbids_unknown_keys():
    from graphspec.ops import OPS

    schema = json_schema()
    ops, function = schema["$defs"]["Node"]["properties"]["op"]["anyOf"]
    assert ops["enum"] == sorted(OPS) and function["pattern"] == NAME_PATTERN  # or a function's name
    assert schema["additionalProperties"] is False
    assert "nodes" in schema["required"] and "graphspec" in schema["required"]


def test_spec_models_are_frozen():
    spec, _ = load_spec(FORMAT_EXAMPLE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec, Spec)


# -- strict JSON types ---------------------------------------------------------------------------

def test_integers_are_json_schema_integers():
    """2.0 is an integer (JSON Schema 2020-12); true, 2.5, 1e-400 and what int64 cannot hold are not."""
    from graphspec.spec import json_integer

    assert json_integer(2) == 2 and json_integer(2.0) == 2 and type(json_integer(2.0)) is int
    assert json_integer(-(2**63)) == -(2**63) and json_integer(2**63 - 1) == 2**63 - 1
    tiny = parse_json('{"a": 1e-400}')["a"]
    huge = parse_json('{"a": -' + "9" * 4301 + "}")["a"]
    for bad, why in [(True, "true is not an integer"), (2.5, "2.5 is not an integer"), (tiny, "1e-400 is not an integer"),
                     (2**63, "9223372036854775808 is out of range"), (1e300, "1e+300 is out of range"),
                     (huge, "an integer of 4,301 digits is out of range"), ("2", 'expected an integer, got "2"'),
                     (float("nan"), "expected finite numbers")]:
        with pytest.raises(ValueError, match=re.escape(why)):
            json_integer(bad)


def test_json_numbers_remember_what_floats_forget():
    """1e-400 reads as 0.0 but is marked as no integer; an integer literal longer than Python reads
    (4300 digits: json.loads raised ValueError, a traceback) is a number too big for any dtype."""
    from graphspec.spec import HugeInt, Tiny

    doc = parse_json('{"a": 1e-400, "b": 0.0, "c": 0.000' + "0" * 400 + '1, "d": 1' + "0" * 5000 + ', "e": 7}')
    assert isinstance(doc["a"], Tiny) and doc["a"] == 0.0 and doc["a"].text == "1e-400"
    assert type(doc["b"]) is float and isinstance(doc["c"], Tiny)
    assert isinstance(doc["d"], HugeInt) and doc["d"].digits == 5001 and doc["d"] == float("inf")
    assert doc["e"] == 7 and type(doc["e"]) is int
    assert type(parse_json('{"a": 0.5, "b": 1e-5}')["b"]) is float  # a number that does not underflow is a plain float


@pytest.mark.parametrize(("where", "value"), [(("seed",), True), (("inputs", "x", "grad"), "yes"),
                                              (("inputs", "x", "value"), True), (("expect", "rtol"), True),
                                              (("expect", "grads", "x"), [True]), (("loss", "seed"), False), (("name",), 5),
                                              (("nodes", "z", "op"), 1)])
def test_no_python_coercion(where, value):
    """pydantic's lax mode read "yes" as true, true as 1 and 1.0: a spec is JSON, whose types are strict."""
    doc = json.loads(json.dumps(FORMAT_EXAMPLE))
    at = doc
    for k in where[:-1]:
        at = at[k]
    at[where[-1]] = value
    with pytest.raises(SpecError, match=re.escape(".".join(where))):
        load_spec(doc)


def test_booleans_are_values_of_bool_inputs():
    doc = {**FORMAT_EXAMPLE, "inputs": {"x": {"value": [True, False], "dtype": "bool"}, "y": {"value": 3.0}}}
    spec, _ = load_spec(doc)
    assert spec.inputs["x"].value == [True, False]


def test_empty_nodes_is_an_error_and_the_schema_says_so():
    with pytest.raises(SpecError, match="nodes: nodes is empty: a spec needs at least one node"):
        load_spec({**FORMAT_EXAMPLE, "nodes": {}})
    assert json_schema()["properties"]["nodes"]["minProperties"] == 1


def test_version_as_a_number_says_it_is_a_string():
    with pytest.raises(SpecError, match='graphspec: the format version is the string "1", not the number 1'):
        load_spec({**FORMAT_EXAMPLE, "graphspec": 1})


# -- every error, one per place -------------------------------------------------------------------

def test_load_spec_lists_every_wrong_place_in_file_order():
    doc = {"graphspec": "1", "inputs": {"x": {"value": 1.0, "shpe": [2]}, "y": {"shape": [2.5]}},
           "nodes": {"a": {"op": "relu"}, "b": {"op": "relu", "args": ["x"], "atrs": {}}, "2c": {"op": "relu", "args": ["x"]}},
           "loss": {"node": "a", "seed": "s"}, "train": {"optimizer": {"sgdd": {}}}}
    with pytest.raises(SpecError) as e:
        load_spec(doc)
    assert [(x.loc, x.message.split(" (")[0].split(":")[0]) for x in e.value.errors] == [
        ("inputs.x", "unknown key 'shpe'"), ("inputs.y.shape[0]", "2.5 is not an integer"),
        ("nodes.b", "unknown key 'atrs'"), ("nodes.2c", "'2c' is not a valid name"),
        ("loss.seed", "expected a number or a nested list of numbers, got \"s\""), ("train.optimizer", "unknown key 'sgdd'")]
    assert e.value.errors[0].hint == "did you mean 'shape'?"
    assert "(and " not in str(e.value)  # no more "(and 1 more place to fix)": every place is there


def test_a_node_named_like_a_union_tag_keeps_its_name():
    """pydantic's union tags ('str', 'float', 'int') were stripped from every location, so a
    node named 'float' lost its name in the message."""
    doc = {"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"float": {"args": ["x"]}, "str": {"op": 5}}}
    with pytest.raises(SpecError) as e:
        load_spec(doc)
    assert [x.loc for x in e.value.errors] == ["nodes.float", "nodes.str.op"]


def test_another_version_is_the_one_error_and_the_number_1_is_a_slip():
    with pytest.raises(SpecError) as e:
        load_spec({"graphspec": "2", "nodes": {}, "bogus": 1})
    assert [x.loc for x in e.value.errors] == ["graphspec"]  # another format's keys are not this one's errors
    with pytest.raises(SpecError) as e:
        load_spec({**FORMAT_EXAMPLE, "graphspec": 1, "bogus": 1})
    assert [x.loc for x in e.value.errors] == ["(top level)", "graphspec"]
