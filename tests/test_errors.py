"""Malformed specs: each gives exit 2 and one line naming the place, never a traceback."""

from __future__ import annotations

import json

import pytest

from graphspec.cli import main

BASE = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0, 3.0]}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}


def spec(**changes):
    doc = json.loads(json.dumps(BASE))
    doc.update(changes)
    return json.dumps(doc)


CASES = {
    "not_json": ('{"graphspec": "1", "nodes": {', "line 1 column 30: not valid JSON"),
    "not_object": ("[1, 2]", "a spec is a JSON object, got list"),
    "duplicate_key": ('{"graphspec": "1", "inputs": {"x": {"value": 1}}, "nodes": {"h": {"op": "relu", "args": ["x"], "op": "exp"}}}',
                      "nodes.h: duplicate key 'op'"),
    "duplicate_node": ('{"graphspec": "1", "inputs": {"x": {"value": 1}}, "nodes": {"h": {"op": "relu", "args": ["x"]}, '
                       '"h": {"op": "exp", "args": ["x"]}}}', "nodes: duplicate key 'h'"),
    "no_version": (json.dumps({"nodes": {}}), "missing required key 'graphspec'"),
    "bad_version": (spec(graphspec="2"), "graphspec: unsupported format version '2'"),
    "unknown_top_key": (spec(output=["h"]), "unknown key 'output' (did you mean 'outputs'?)"),
    "unknown_op": (spec(nodes={"h": {"op": "matmull", "args": ["x", "x"]}}),
                   "nodes.h.op: unknown op 'matmull' (did you mean 'matmul'?)"),
    "undefined_name": (spec(nodes={"h1": {"op": "relu", "args": ["x"]}, "h2": {"op": "add", "args": ["h1", "h3"]}}),
                       "nodes.h2.args[1]: unknown name 'h3' (did you mean 'h1'?)"),
    "cycle": (spec(nodes={"a": {"op": "relu", "args": ["b"]}, "b": {"op": "exp", "args": ["c"]},
                          "c": {"op": "neg", "args": ["a"]}}), "cycle: a -> c -> b -> a"),
    "self_cycle": (spec(nodes={"a": {"op": "add", "args": ["x", "a"]}}), "nodes.a: cycle: a -> a"),
    "name_clash": (spec(params={"x": {"value": 1.0}}), "params.x: name 'x' is declared in both inputs and params"),
    "arity": (spec(nodes={"h": {"op": "add", "args": ["x"]}}), "nodes.h.args: add takes 2 args (x, y), got 1"),
    "matmul_shapes": (spec(inputs={"a": {"value": [[1, 2, 3], [4, 5, 6]]}}, nodes={"m": {"op": "matmul", "args": ["a", "a"]}}),
                      "nodes.m: matmul cannot multiply (2, 3) by (2, 3)"),
    "broadcast": (spec(inputs={"a": {"value": [1, 2, 3]}, "b": {"value": [1, 2]}}, nodes={"m": {"op": "add", "args": ["a", "b"]}}),
                  "nodes.m: add: cannot broadcast (3,) with (2,)"),
    "unknown_attr": (spec(nodes={"s": {"op": "softmax", "args": ["x"], "attrs": {"axes": 0}}}),
                     "nodes.s.attrs.axes: unknown attr 'axes' (softmax takes 'axis') (did you mean 'axis'?)"),
    "attr_type": (spec(nodes={"s": {"op": "sum", "args": ["x"], "attrs": {"keepdims": "yes"}}}),
                  "nodes.s.attrs.keepdims: sum attr 'keepdims' must be true or false"),
    "axis_range": (spec(nodes={"s": {"op": "softmax", "args": ["x"], "attrs": {"axis": 3}}}),
                   "nodes.s: softmax: axis 3 is out of range for rank 1"),
    "attr_enum": (spec(inputs={"p": {"value": [1.0]}, "t": {"value": [2.0]}},
                       nodes={"l": {"op": "mse", "args": ["p", "t"], "attrs": {"reduction": "avg"}}}),
                  "nodes.l.attrs.reduction: 'avg' is not one of mean, sum, none"),
    "bad_dtype": (spec(inputs={"x": {"value": [1.0], "dtype": "float16"}}), "inputs.x.dtype: input should be 'float64'"),
    "value_wrong_shape": (spec(inputs={"x": {"shape": [2, 2], "value": [1.0, 2.0, 3.0]}}),
                          "inputs.x: shape [3] does not match the declared shape [2, 2]"),
    "ragged_value": (spec(inputs={"x": {"value": [[1.0, 2.0], [3.0]]}}), "inputs.x.value: ragged nested list"),
    "lossy_int": (spec(inputs={"x": {"value": [1.5, 2.0], "dtype": "int64"}}), "inputs.x.value: int64 values must be whole"),
    "missing_file": (spec(inputs={"x": {"file": "nope.csv"}}), "inputs.x.file: file not found: nope.csv"),
    "symbolic_dim_clash": (spec(inputs={"X": {"shape": ["N", 2], "value": [[1, 2], [3, 4]]},
                                        "y": {"shape": ["N"], "value": [1, 2, 3]}}, nodes={"h": {"op": "relu", "args": ["X"]}}),
                           "inputs.y: symbolic dim 'N' is 3 here but 2 in inputs.X"),
    "nonscalar_loss": (spec(loss="h"), "loss: loss 'h' has shape [3], not a scalar"),
    "seed_shape": (spec(loss={"node": "h", "seed": [1.0, 2.0]}), "loss.seed: seed of shape [2] does not match loss 'h' of shape [3]"),
    "unknown_loss": (spec(loss="hh"), "loss: unknown name 'hh' (did you mean 'h'?)"),
    "loss_is_input": (spec(loss="x"), "loss: the loss must be a node, 'x' is one of the inputs"),
    "bad_node_name": (spec(nodes={"2h": {"op": "relu", "args": ["x"]}}), "nodes.2h: '2h' is not a valid name"),
    "bad_arg_name": (spec(nodes={"h": {"op": "relu", "args": ["x.y"]}}), "nodes.h.args[0]: 'x.y' is not a valid name"),
    "missing_op": (spec(nodes={"h": {"args": ["x"]}}), "nodes.h: missing required key 'op'"),
    "unknown_node_key": (spec(nodes={"h": {"op": "relu", "args": ["x"], "attr": {}}}),
                         "nodes.h: unknown key 'attr' (did you mean 'attrs'?)"),
    "param_without_init": (spec(params={"W": {"shape": [2, 2]}}), "params.W: a param needs a value, a file, or a shape with an init"),
    "param_symbolic": (spec(params={"W": {"shape": ["N", 2], "init": "zeros"}}), "params.W.shape: params need fixed sizes"),
    "uniform_not_a_pair": (spec(params={"W": {"shape": [2], "init": {"uniform": "a"}}}), 'params.W.init.uniform: expected a list of 2 numbers, got "a"'),
    "bad_init": (spec(params={"W": {"shape": [2], "init": "gaussian"}}), "params.W.init: input should be 'zeros', 'ones'"),
    "labels_shape": (spec(inputs={"s": {"value": [[1.0, 2.0, 3.0]]}, "y": {"value": [0, 1], "dtype": "int64"}},
                          nodes={"l": {"op": "softmax_cross_entropy", "args": ["s", "y"]}}),
                     "nodes.l: softmax_cross_entropy: integer labels must have the logits' shape without the class axis (1,)"),
    "bool_labels": (spec(inputs={"s": {"value": [[1.0, 2.0]]}, "y": {"value": [True], "dtype": "bool"}},
                         nodes={"l": {"op": "hinge", "args": ["s", "y"]}}), "nodes.l: hinge: labels must be int64"),
    "expect_unknown": (spec(expect={"values": {"hh": 1.0}}), "expect.values.hh: unknown name 'hh'"),
    "expect_shape": (spec(expect={"values": {"h": [1.0, 2.0]}}), "expect.values.h: expected value of shape [2] for a value of shape [3]"),
    "expect_grad_of_int": (spec(inputs={"x": {"value": [1.0, 2.0]}, "k": {"value": [1, 2], "dtype": "int64"}},
                                nodes={"h": {"op": "mul", "args": ["x", "k"]}, "s": {"op": "sum", "args": ["h"]}}, loss="s",
                                expect={"grads": {"k": [1, 1]}}), "expect.grads.k: 'k' has no gradient (int64)"),
    "int_loss": (spec(inputs={"k": {"value": [1, 2], "dtype": "int64"}}, nodes={"s": {"op": "sum", "args": ["k"]}}, loss="s"),
                 "loss: the loss must be a float node, 's' is int64"),
    "unknown_output": (spec(outputs=["hx"]), "outputs[0]: unknown name 'hx'"),
    "reshape_size": (spec(nodes={"r": {"op": "reshape", "args": ["x"], "attrs": {"shape": [2, 2]}}}),
                     "nodes.r: reshape: cannot reshape (3,) (3 elements) into [2, 2]"),
    "unknown_optimizer": (spec(train={"optimizer": {"sgdd": {"lr": 0.1}}}), "train.optimizer: unknown key 'sgdd' (did you mean 'sgd'?)"),
    "value_not_number": (spec(inputs={"x": {"value": "1,2"}}), "inputs.x.value: expected a number or a nested list of numbers"),
    "bool_arg": (spec(nodes={"h": {"op": "mul", "args": ["x", True]}}), "nodes.h.args: args[1] is true: an arg is a name or a number"),
    "transpose_axes": (spec(nodes={"t": {"op": "transpose", "args": ["x"], "attrs": {"axes": [0, 1]}}}),
                       "nodes.t: transpose: axes [0, 1] is not a permutation of the 1 axes"),
    "concat_ranks": (spec(inputs={"x": {"value": [1.0]}, "a": {"value": [[1.0]]}}, nodes={"c": {"op": "concat", "args": ["x", "a"]}}),
                     "nodes.c: concat needs args of one rank, got (1,), (1, 1)"),
    "runtime_label_range": (spec(inputs={"s": {"value": [[1.0, 2.0]]}, "y": {"value": [2], "dtype": "int64"}},
                                 nodes={"l": {"op": "softmax_cross_entropy", "args": ["s", "y"]}}),
                            "nodes.l: softmax_cross_entropy failed: label 2 is out of range for 2 classes"),
    "infinity_value": ('{"graphspec": "1", "inputs": {"x": {"value": [1.0, Infinity]}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                       "inputs.x.value: expected finite numbers (JSON has no Infinity or NaN"),
    "overflowing_number": ('{"graphspec": "1", "inputs": {"x": {"value": 1e400}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                           "inputs.x.value: expected finite numbers"),
    "nan_arg": ('{"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"h": {"op": "mul", "args": ["x", NaN]}}}',
                "nodes.h.args: args[1]: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got NaN"),
    "huge_int_arg": ('{"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"h": {"op": "mul", "args": ["x", 1' + "0" * 400 + ']}}}',
                     "nodes.h.args: args[1]: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got an integer of 401 digits"),
    "infinite_init": (spec(params={"W": {"shape": [2], "init": float("inf")}}), "params.W.init: expected finite numbers"),
    "infinite_rtol": (spec(expect={"rtol": float("inf")}), "expect.rtol: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got Infinity"),
    "infinite_attr": ('{"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"h": {"op": "leaky_relu", "args": ["x"], "attrs": {"alpha": 1e999}}}}',
                      "nodes.h.attrs.alpha: leaky_relu attr 'alpha' must be a finite number, got inf"),
    "negative_seed": (spec(seed=-1, params={"W": {"shape": [2], "init": "he"}}), "seed: input should be greater than or equal to 0, got -1"),
    "uniform_reversed": (spec(params={"W": {"shape": [2], "init": {"uniform": [1.0, 0.0]}}}),
                         "params.W.init: uniform [low, high] needs low <= high, got [1.0, 0.0]"),
    "uniform_too_wide": (spec(params={"W": {"shape": [2], "init": {"uniform": [-1e308, 1e308]}}}),
                         "params.W.init: uniform range [-1e+308, 1e+308] is too wide"),
    "param_too_big": (spec(params={"W": {"shape": [10**6, 10**7], "init": "zeros"}}),
                      "params.W.shape: cannot make an array of shape [1000000, 10000000] (10,000,000,000,000 elements)"),
    "null_in_value": (spec(inputs={"x": {"value": [1.0, None]}}), "inputs.x.value: expected a number or a nested list of numbers, got null"),
    "huge_int_value": ('{"graphspec": "1", "inputs": {"x": {"value": [1, 1' + "0" * 400 + ']}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                       "inputs.x.value: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got an integer of 401 digits"),
    "int64_overflow": (spec(inputs={"x": {"value": [1e30], "dtype": "int64"}}), "inputs.x.value: int64 values must lie in [-2**63, 2**63)"),
    "float32_overflow": (spec(inputs={"x": {"value": [1e39], "dtype": "float32"}}), "inputs.x.value: values beyond ±3.4e38 overflow float32"),
    "expect_ragged": (spec(loss={"node": "h", "seed": [1.0, 1.0, 1.0]}, expect={"values": {"h": [[1.0], [2.0, 3.0]]}}),
                      "expect.values.h: ragged nested list"),
    "expect_grad_ragged": (spec(loss={"node": "h", "seed": [1.0, 1.0, 1.0]}, expect={"grads": {"x": [[1.0], [2.0, 3.0]]}}),
                           "expect.grads.x: ragged nested list"),
    "expect_object": (spec(expect={"values": {"h": {"a": 1}}}), 'expect.values.h: expected a number or a nested list of numbers, got {"a": 1}'),
    "expect_null": (spec(expect={"values": {"h": None}}), "expect.values.h: expected numbers, got null"),
    "deep_json": ('{"graphspec": "1", "nodes": {}, "inputs": {"x": {"value": ' + "[" * 100000 + "]" * 100000 + "}}}",
                  "(top level): JSON nested too deeply to read"),
    "too_many_dims": ('{"graphspec": "1", "nodes": {"h": {"op": "relu", "args": ["x"]}}, "inputs": {"x": {"value": ' + "[" * 900 + "1" + "]" * 900 + "}}}",
                      "inputs.x.value: a list nested 900 deep: arrays have at most 64 dims"),
    "constant_labels": (spec(inputs={"s": {"value": [1.0, 2.0, 0.5]}}, nodes={"l": {"op": "hinge", "args": ["s", 1]}}),
                        "nodes.l: hinge: labels must be an input or a node (int64 class indices or float targets), not a number in args"),
    "lone_surrogate": ('{"graphspec": "1", "name": "a\\ud800", "inputs": {"x": {"value": 1}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                       "name: 'a\\ud800' holds a lone surrogate escape"),  # printing the name raised UnicodeEncodeError
    "train_data_not_input": (spec(train={"data": {"W": "w.csv"}, "optimizer": {"sgd": {"lr": 0.1}}}),
                             "train.data.W: train data must feed an input"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_spec_exits_2_with_located_message(name, tmp_path, capsys):
    text, message = CASES[name]
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    code = main(["run", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert message in lines[0]


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


def test_validate_reports_every_bad_spec_and_exits_2(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(spec())
    bad = tmp_path / "bad.json"
    bad.write_text(spec(nodes={"h": {"op": "reluu", "args": ["x"]}}))
    assert main(["validate", str(good), str(bad)]) == 2
    out = capsys.readouterr()
    assert "ok: " in out.out and "unknown op 'reluu' (did you mean 'relu'?)" in out.err


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


def test_unknown_runtime_input_is_usage_error(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(spec())
    assert main(["run", str(path), "--input", "xx=[1,2,3]"]) == 2
    assert "unknown input 'xx' (did you mean 'x'?)" in capsys.readouterr().err


def test_runtime_input_of_wrong_shape(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(spec(inputs={"x": {"shape": [3]}}))
    assert main(["run", str(path), "--input", "x=[1,2]"]) == 2
    assert "x: shape [2] does not match the declared shape [3]" in capsys.readouterr().err


def test_missing_runtime_input(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(spec(inputs={"x": {"shape": [3]}}))
    assert main(["run", str(path)]) == 2
    assert "inputs.x: no value: give it at run time" in capsys.readouterr().err


def test_runtime_input_that_makes_the_loss_non_scalar(tmp_path, capsys):
    """A scalar loss fed a non-scalar input (lam=[] in lam * R) crashed in the backward pass's
    unbroadcast; the loss's shape is checked against its seed, a scalar one too."""
    path = tmp_path / "s.json"
    path.write_text(spec(inputs={"x": {"value": [1.0, 2.0]}, "lam": {"value": 0.5}},
                         nodes={"r": {"op": "l2", "args": ["x"]}, "h": {"op": "mul", "args": ["lam", "r"]}}, loss="h"))
    assert main(["run", str(path), "--input", "lam=[]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss: with these inputs, loss 'h' has shape [0], not a scalar" in err
