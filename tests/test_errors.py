"""Malformed specs: each gives exit 2 and one line naming the place, never a traceback."""

from __future__ import annotations

import json
import re

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
    # {"node": "h"} without a seed is the name alone, not a seed of shape [] the user never wrote
    "nonscalar_loss_no_seed": (spec(loss={"node": "h"}), "loss: loss 'h' has shape [3], not a scalar"),
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
    # the format's types are JSON's, strictly: a boolean is no number, "yes" no boolean
    "bool_value": (spec(inputs={"x": {"value": True}}), 'inputs.x.value: true is not a number (booleans are the values of a "dtype": "bool")'),
    "bool_in_value": (spec(inputs={"x": {"value": [1.0, False]}}), "inputs.x.value: false is not a number"),
    "bool_dim": (spec(inputs={"x": {"shape": [2.0, True]}}), "inputs.x.shape[1]: true is not an integer (a JSON boolean is not a number): a dim is a size"),
    "fractional_dim": (spec(inputs={"x": {"shape": [2.5]}}), "inputs.x.shape[0]: 2.5 is not an integer: a dim is a size (an integer >= 0) or a name"),
    "grad_yes": (spec(inputs={"x": {"value": 1.0, "grad": "yes"}}), 'inputs.x.grad: expected true or false, got "yes"'),
    "bool_seed": (spec(seed=True), "seed: true is not an integer (a JSON boolean is not a number)"),
    "bool_epochs": (spec(train={"optimizer": {"sgd": {"lr": 0.1}}, "epochs": True}), "train.epochs: true is not an integer"),
    "fractional_epochs": (spec(train={"optimizer": {"sgd": {"lr": 0.1}}, "epochs": 2.5}), "train.epochs: 2.5 is not an integer"),
    "bool_lr": (spec(train={"optimizer": {"sgd": {"lr": True}}}), "train.optimizer.sgd.lr: true is not a number"),
    "bool_rtol": (spec(expect={"rtol": True}), "expect.rtol: true is not a number"),
    "bool_loss_seed": (spec(loss={"node": "h", "seed": True}), "loss.seed: true is not a number"),
    "bool_int_attr": (spec(nodes={"s": {"op": "softmax", "args": ["x"], "attrs": {"axis": True}}}),
                      "nodes.s.attrs.axis: softmax attr 'axis' must be an integer axis: true is not an integer"),
    "bool_float_attr": (spec(nodes={"s": {"op": "leaky_relu", "args": ["x"], "attrs": {"alpha": False}}}),
                        "nodes.s.attrs.alpha: leaky_relu attr 'alpha' must be a number, got false"),
    "bool_init": (spec(params={"W": {"shape": [2], "init": True}}), "params.W.init: true is not a number"),
    "underflow_seed": ('{"graphspec": "1", "seed": 1e-400, "inputs": {"x": {"value": 1}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                       "seed: 1e-400 is not an integer (it is a number too small for float64, read as 0.0)"),
    "underflow_dim": ('{"graphspec": "1", "inputs": {"x": {"shape": [1e-400]}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                      "inputs.x.shape[0]: 1e-400 is not an integer"),
    "underflow_axis": ('{"graphspec": "1", "inputs": {"x": {"value": [1.0]}}, "nodes": {"h": {"op": "softmax", "args": ["x"], "attrs": {"axis": 1e-400}}}}',
                       "nodes.h.attrs.axis: softmax attr 'axis' must be an integer axis: 1e-400 is not an integer"),
    "underflow_int64_value": ('{"graphspec": "1", "inputs": {"x": {"value": [1, 1e-400], "dtype": "int64"}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                              "inputs.x.value: 1e-400 is not an integer"),
    "int64_seed": (spec(seed=2**63), "seed: 9223372036854775808 is out of range for an integer (int64: at most 2**63 - 1)"),
    "huge_dim": (spec(inputs={"x": {"shape": [10**30]}}), "inputs.x.shape[0]: 1000000000000000000000000000000 is out of range for an integer"),
    "long_int_value": ('{"graphspec": "1", "inputs": {"x": {"value": [1, 1' + "0" * 5000 + ']}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                       "inputs.x.value: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got an integer of 5,001 digits"),
    "long_int_seed": ('{"graphspec": "1", "seed": 1' + "0" * 5000 + ', "inputs": {"x": {"value": 1}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                      "seed: an integer of 5,001 digits is out of range for an integer (int64: at most 2**63 - 1)"),
    "long_int_epochs": ('{"graphspec": "1", "train": {"optimizer": {"sgd": {"lr": 0.1}}, "epochs": -1' + "0" * 5000 + '}, "inputs": {"x": {"value": 1}}, '
                        '"nodes": {"h": {"op": "relu", "args": ["x"]}}}', "train.epochs: an integer of 5,001 digits is out of range"),
    "long_int_dim": ('{"graphspec": "1", "inputs": {"x": {"shape": [1' + "0" * 5000 + ']}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                     "inputs.x.shape[0]: an integer of 5,001 digits is out of range"),
    "long_int_attr": ('{"graphspec": "1", "inputs": {"x": {"value": [1.0]}}, "nodes": {"h": {"op": "leaky_relu", "args": ["x"], "attrs": {"alpha": 1' + "0" * 5000 + "}}}}",
                      "nodes.h.attrs.alpha: leaky_relu attr 'alpha' must be a finite number, got an integer of 5,001 digits"),
    "long_int_arg": ('{"graphspec": "1", "inputs": {"x": {"value": 1.0}}, "nodes": {"h": {"op": "mul", "args": ["x", 1' + "0" * 5000 + "]}}}",
                     "nodes.h.args: args[1]: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got an integer of 5,001 digits"),
    "long_int_init": ('{"graphspec": "1", "params": {"W": {"shape": [2], "init": 1' + "0" * 5000 + '}}, "nodes": {"h": {"op": "relu", "args": ["W"]}}}',
                      "params.W.init: expected finite numbers"),
    "long_int_lr": ('{"graphspec": "1", "train": {"optimizer": {"sgd": {"lr": 1' + "0" * 5000 + '}}}, "inputs": {"x": {"value": 1}}, "nodes": {"h": {"op": "relu", "args": ["x"]}}}',
                    "train.optimizer.sgd.lr: expected finite numbers (JSON has no Infinity or NaN; beyond 1.8e308 a number overflows float64), got an integer of 5,001 digits"),
    "version_number": (spec(graphspec=1), 'graphspec: the format version is the string "1", not the number 1 (write "graphspec": "1")'),
    "empty_nodes": (spec(nodes={}), "nodes: nodes is empty: a spec needs at least one node"),
    "scalar_value_for_shape": (spec(inputs={"x": {"value": 2.0, "shape": [2, 2]}}),
                               "inputs.x: a scalar \"value\" does not broadcast to shape [2, 2]: give the whole array (only a param's \"init\" broadcasts)"),
    "scalar_param_value_for_shape": (spec(params={"W": {"value": 0.5, "shape": [3]}}),
                                     "params.W: a scalar \"value\" does not broadcast to shape [3]: give the whole array or, to fill it, \"init\""),
    "dim_not_a_name": (spec(inputs={"x": {"shape": ["1a"]}}), 'inputs.x.shape[0]: "1a" is not a valid name: a dim is a size (an integer >= 0) or a name like "N"'),
    "short_pair": (spec(train={"optimizer": {"adam": {"betas": [0.9]}}}), "train.optimizer.adam.betas: expected a list of 2 numbers, got [0.9]"),
    "init_of_two_kinds": (spec(params={"W": {"shape": [2], "init": {"normal": 0.5, "uniform": [0, 1]}}}), "params.W.init: unknown key"),
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
    path.write_text(spec(inputs={"x": {"value": [1.0, 2.0]}, "lam": {"value": 0.5}},
                         nodes={"r": {"op": "l2", "args": ["x"]}, "h": {"op": "mul", "args": ["lam", "r"]}},
                         loss={"node": "h"}))  # the object form without a seed: the same error, no seed named
    assert main(["run", str(path), "--input", "lam=[]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss: with these inputs, loss 'h' has shape [0], not a scalar" in err


# -- every independent error at once ------------------------------------------------------------

def run_lines(tmp_path, capsys, text, command="run"):
    path = tmp_path / "s.json"
    path.write_text(text)
    code = main([command, str(path)])
    err = capsys.readouterr().err
    prefix = f"error: {path}: "
    lines = err.strip().splitlines()
    assert all(x.startswith(prefix) for x in lines), err  # each error its own located line, no traceback
    return code, [x[len(prefix):] for x in lines]


def test_independent_errors_are_all_reported_each_in_its_place(tmp_path, capsys):
    """An unknown key in inputs, an unknown op, an unknown name, a bad attr, a shape error and a
    cycle needed six rounds ("(and 1 more place to fix)" said not where): one round now, in the
    file's order. Nodes reading a wrong one are not blamed again (d reads a, e reads y)."""
    text = json.dumps({
        "graphspec": "1",
        "inputs": {"x": {"value": [1.0, 2.0], "shpe": [2]}, "y": {"value": [1.0, 2.0, 3.0]}},
        "params": {"W": {"shape": [2, 2], "init": "xavier"}},
        "nodes": {"a": {"op": "matmull", "args": ["y", "W"]},
                  "b": {"op": "add", "args": ["y", "zz"]},
                  "c": {"op": "softmax", "args": ["y"], "attrs": {"axis": "last"}},
                  "d": {"op": "sum", "args": ["a"]},
                  "e": {"op": "add", "args": ["x", "y"]},
                  "m": {"op": "matmul", "args": ["W", "y"]},
                  "f": {"op": "relu", "args": ["f"]}},
        "loss": "d"})
    code, lines = run_lines(tmp_path, capsys, text)
    assert code == 2
    assert lines == ["inputs.x: unknown key 'shpe' (did you mean 'shape'?)",
                     "nodes.a.op: unknown op 'matmull' (did you mean 'matmul'?)",
                     "nodes.b.args[1]: unknown name 'zz'",
                     "nodes.c.attrs.axis: softmax attr 'axis' must be an integer axis, got \"last\"",
                     "nodes.m: matmul cannot multiply (2, 2) by (3,)",
                     "nodes.f: cycle: f -> f (a node cannot depend on itself)"]


def test_errors_past_the_cap_are_counted_in_one_line(tmp_path, capsys):
    from graphspec.errors import MAX_ERRORS

    nodes = {f"n{i}": {"op": "relu", "args": [f"q{i}"]} for i in range(MAX_ERRORS + 7)}
    code, lines = run_lines(tmp_path, capsys, spec(nodes=nodes))
    assert code == 2 and len(lines) == MAX_ERRORS + 1
    assert lines[:2] == ["nodes.n0.args[0]: unknown name 'q0'", "nodes.n1.args[0]: unknown name 'q1'"]
    assert lines[-1] == f"... and 7 more errors (only the first {MAX_ERRORS} are listed)"


def test_validation_errors_are_one_per_place(tmp_path, capsys):
    """pydantic reports every wrong place; a union's members (init, a dim, loss) speak once."""
    text = spec(inputs={"x": {"value": [1.0], "shape": [-1]}},
                params={"W": {"shape": [2], "init": "gaussian"}, "V": {"shape": [2], "init": "zeros", "grad": "no"}},
                loss=5, expect={"rtol": -1, "atol": "a"})
    code, lines = run_lines(tmp_path, capsys, text, "validate")
    assert code == 2
    assert lines == ["inputs.x.shape[0]: a dim is a size (an integer >= 0) or a name like \"N\", got -1",
                     "params.W.init: input should be 'zeros', 'ones', 'xavier' or 'he', got \"gaussian\"",
                     "params.V.grad: expected true or false, got \"no\"",
                     "loss: expected a node name or {\"node\": name, \"seed\": ...}, got 5",
                     "expect.rtol: input should be greater than or equal to 0, got -1",
                     "expect.atol: expected a number, got \"a\""]


def test_what_reads_a_wrong_declaration_is_not_blamed(tmp_path, capsys):
    """inputs.x fails validation: h (reads x) is not checked, k (independent) is."""
    text = spec(inputs={"x": {"value": [1.0], "grad": "yes"}, "y": {"value": [[1.0, 2.0]]}},
                nodes={"h": {"op": "relu", "args": ["x"]}, "k": {"op": "matmul", "args": ["y", "y"]},
                       "s": {"op": "sum", "args": ["h"]}}, loss="s", expect={"grads": {"x": [1.0]}})
    code, lines = run_lines(tmp_path, capsys, text)
    assert code == 2
    assert lines == ["inputs.x.grad: expected true or false, got \"yes\"", "nodes.k: matmul cannot multiply (1, 2) by (1, 2)"]


def test_a_wrong_loss_hides_no_other_error_and_invents_none(tmp_path, capsys):
    text = spec(loss={"node": "h", "seed": "a"}, nodes={"h": {"op": "relu", "args": ["xx"]}}, expect={"grads": {"x": 1.0}})
    code, lines = run_lines(tmp_path, capsys, text)
    assert code == 2  # no "expected gradients need a loss": the loss is there, only wrong
    assert lines == ["nodes.h.args[0]: unknown name 'xx' (did you mean 'x'?)",
                     "loss.seed: expected a number or a nested list of numbers, got \"a\""]


def test_values_leaves_and_expectations_report_every_error(tmp_path, capsys):
    text = spec(inputs={"x": {"value": [1.0, 2.0], "shape": [3]}, "y": {"value": [[1, 2], [3]]}, "z": {"value": [1.0, 2.0, 3.0]}},
                params={"W": {"shape": [2]}}, nodes={"h": {"op": "relu", "args": ["z"]}},
                loss={"node": "h", "seed": [1.0, 2.0]}, expect={"values": {"h": [1.0, 2.0]}, "grads": {"z": [1, 2, 3, 4]}})
    code, lines = run_lines(tmp_path, capsys, text)
    assert code == 2
    assert lines == ["inputs.x: shape [2] does not match the declared shape [3]",
                     "inputs.y.value: ragged nested list: every row must have the same length",
                     "params.W: a param needs a value, a file, or a shape with an init",
                     "loss.seed: seed of shape [2] does not match loss 'h' of shape [3]",
                     "expect.values.h: expected value of shape [2] for a value of shape [3]",
                     "expect.grads.z: expected value of shape [4] for a value of shape [3]"]


def test_the_api_error_carries_the_list(tmp_path):
    import graphspec

    with pytest.raises(graphspec.SpecError) as e:
        graphspec.load(json.loads(spec(nodes={"a": {"op": "relux", "args": ["x"]}, "b": {"op": "exp", "args": ["y"]}})))
    assert [(x.loc, x.message) for x in e.value.errors] == [("nodes.a.op", "unknown op 'relux'"), ("nodes.b.args[0]", "unknown name 'y'")]
    assert str(e.value).splitlines() == [x.line() for x in e.value.errors]
    assert isinstance(e.value, graphspec.errors.GraphError)  # both are: the group is too


def test_validate_json_lists_every_error(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(spec(nodes={"a": {"op": "relux", "args": ["x"]}, "b": {"op": "exp", "args": ["y"]}}))
    assert main(["validate", "--format", "json", str(path)]) == 2
    (row,) = json.loads(capsys.readouterr().out)
    assert [(r["source"], r["loc"], r["message"], r["hint"]) for r in row["error"]["errors"]] == [
        (str(path), "nodes.a.op", "unknown op 'relux'", "did you mean 'relu'?"), (str(path), "nodes.b.args[0]", "unknown name 'y'", None)]
    assert row["error"]["more_errors"] == 0 and row["message"].count("\n") == 1


def test_a_name_with_a_line_break_stays_on_one_line(tmp_path, capsys):
    code, lines = run_lines(tmp_path, capsys, spec(nodes={"a\nb": {"op": "relu", "args": ["x"]}}))
    assert code == 2 and lines == ["nodes.a\\nb: 'a\\nb' is not a valid name (letters, digits and _, not starting with a digit)"]


# -- strict types: what is accepted -------------------------------------------------------------

def test_integral_numbers_are_integers_as_in_json_schema(tmp_path, capsys):
    """JSON Schema 2020-12 counts 2.0 as an integer: so does graphspec (dims, seeds, epochs, attrs)."""
    import graphspec

    g = graphspec.load(json.loads(spec(seed=3.0, inputs={"x": {"shape": [2.0, 3], "value": [[1.0] * 3] * 2}},
                                       nodes={"s": {"op": "softmax", "args": ["x"], "attrs": {"axis": 0.0}},
                                              "r": {"op": "reshape", "args": ["s"], "attrs": {"shape": [3.0, -1.0]}}},
                                       train={"optimizer": {"sgd": {"lr": 1}}, "epochs": 2.0, "batch_size": 1e0})))
    assert g.spec.seed == 3 and type(g.spec.seed) is int
    assert g.spec.inputs["x"].shape == [2, 3] and all(type(d) is int for d in g.spec.inputs["x"].shape)
    assert g.attrs["s"]["axis"] == 0 and type(g.attrs["s"]["axis"]) is int and g.attrs["r"]["shape"] == (3, -1)
    assert g.spec.train.epochs == 2 and g.spec.train.batch_size == 1  # type: ignore[union-attr]
    assert g.run()["r"].shape == (3, 2)


def test_a_number_that_underflows_is_the_float_zero(tmp_path):
    import graphspec

    text = ('{"graphspec": "1", "inputs": {"x": {"value": [1e-400, 2.0]}}, '
            '"nodes": {"h": {"op": "leaky_relu", "args": ["x"], "attrs": {"alpha": 1e-400}}, "k": {"op": "mul", "args": ["h", 1e-400]}}}')
    path = tmp_path / "s.json"
    path.write_text(text)
    g = graphspec.load(path)
    assert g.attrs["h"]["alpha"] == 0.0 and g.defaults["x"].tolist() == [0.0, 2.0]
    assert g.run()["k"].tolist() == [0.0, 0.0]


def test_a_long_integer_in_input_is_one_line(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(spec(inputs={"x": {"shape": [2]}}))
    assert main(["run", str(path), "--input", "x=[1, 1" + "0" * 5000 + "]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: --input x: the value: an integer literal of more than 4300 digits" in err


BAD_VALUES = [None, True, False, "x", -1, 2.5, 1e308, [], {}, [True], [2.5], {"a": 1}, 10**30]
FIELDS = [("seed",), ("name",), ("inputs", "x", "shape"), ("inputs", "x", "shape", 0), ("inputs", "x", "dtype"),
          ("inputs", "x", "grad"), ("inputs", "x", "file"), ("params", "W", "init"), ("params", "W", "init", "normal"),
          ("params", "W", "init", "uniform"), ("nodes", "h", "op"), ("nodes", "h", "args"), ("nodes", "h", "args", 0),
          ("nodes", "h", "attrs"), ("nodes", "h"), ("outputs",), ("loss",), ("loss", "seed"), ("expect", "rtol"),
          ("expect", "values"), ("train", "epochs"), ("train", "batch_size"), ("train", "shuffle"),
          ("train", "optimizer"), ("train", "optimizer", "adam", "betas"), ("train", "optimizer", "sgd", "lr"),
          ("train", "metrics"), ("train", "data", "x")]


def test_no_message_speaks_pydantic_or_python(tmp_path):
    """pydantic's internal names (constrained-int, function-after, union tags, model classes)
    and Python's words (None, True, tuple, dictionary) never reach the user."""
    import graphspec

    leaks = re.compile(r"constrained-|function-|literal\[|NormalInit|UniformInit|LossSeed|Optimizer|"
                       r"\bNone\b|\bTrue\b|\bFalse\b|tuple|dictionary|Value error|after validation|instance of")
    base = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0], "shape": [2]}},
            "params": {"W": {"shape": [2], "init": {"normal": 0.5}}},
            "nodes": {"h": {"op": "relu", "args": ["x"]}, "s": {"op": "sum", "args": ["h"]}}, "loss": {"node": "s", "seed": 1.0},
            "expect": {"values": {"s": 3.0}}, "train": {"optimizer": {"sgd": {"lr": 0.1}}, "data": {"x": "x.csv"}}}
    seen = 0
    for f in FIELDS:
        for bad in BAD_VALUES:
            doc = json.loads(json.dumps(base))
            at = doc
            for k in f[:-1]:
                at = at.setdefault(k, {}) if isinstance(at, dict) else at[k]
            if f[:-1] == ("params", "W", "init") and f[-1] == "uniform":
                doc["params"]["W"]["init"] = {}
                at = doc["params"]["W"]["init"]
            if f[:-1] == ("train", "optimizer", "adam"):
                doc["train"]["optimizer"] = {"adam": {}}
                at = doc["train"]["optimizer"]["adam"]
            at[f[-1]] = bad
            try:
                graphspec.load(doc, base=tmp_path)
            except graphspec.SpecError as e:
                seen += 1
                for line in e.lines():
                    assert not leaks.search(line), (f, bad, line)
    assert seen > 300  # most of these are errors: the test looked at their messages
