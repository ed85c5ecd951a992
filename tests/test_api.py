"""The public Python API: `graphspec.load` -> `Graph` with `run`, `grad`, `value_and_grad`,
`evaluate`, `jvp`, and the exported names and error types."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec import GraphspecError, InputError, NonFiniteError, NonFiniteWarning, ShapeError, SpecError

ROOT = Path(__file__).resolve().parents[1]
MUL = ROOT / "specs" / "lecture" / "mul.json"


def spec(**kw):
    return {"graphspec": "1", **kw}


LINEAR = spec(inputs={"x": {"value": 1.0}, "y": {"value": 2.0}}, params={"w": {"value": 1.0}},
              nodes={"p": {"op": "mul", "args": ["x", "w"]}, "d": {"op": "sub", "args": ["p", "y"]},
                     "l": {"op": "square", "args": ["d"]}},
              loss="l")


# --- the package surface -------------------------------------------------------------------------

@pytest.mark.parametrize("name", graphspec.__all__)
def test_every_exported_name_resolves(name):
    module = graphspec._EXPORTS[name]
    if importlib.util.find_spec(f"graphspec.{module}") is None:
        pytest.skip(f"graphspec.{module} is not written yet")
    assert getattr(graphspec, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        graphspec.no_such_thing  # noqa: B018
    assert isinstance(graphspec.__version__, str)


def test_error_hierarchy_and_exit_codes():
    assert issubclass(ShapeError, SpecError) and issubclass(InputError, SpecError)
    assert issubclass(SpecError, GraphspecError) and issubclass(NonFiniteError, GraphspecError)
    assert SpecError.exit_code == 2 and NonFiniteError.exit_code == 1
    assert issubclass(NonFiniteWarning, RuntimeWarning)
    # a bug in an op is no bad spec (2): something failed that the user did not write (1)
    assert issubclass(graphspec.OpError, GraphspecError) and not issubclass(graphspec.OpError, SpecError)
    assert graphspec.OpError.exit_code == 1


# --- load ----------------------------------------------------------------------------------------

def test_the_docstring_example():
    """graphspec/__init__.py: load the lecture's z = x * y slide, dL/dz = 5."""
    g = graphspec.load(MUL)
    assert g.run() == {"z": 6.0}
    assert g.grad() == {"x": 15.0, "y": 10.0}


@pytest.mark.parametrize("kind", ["str", "path", "dict"])
def test_load_from_a_path_or_a_dict(kind):
    source = {"str": str(MUL), "path": MUL, "dict": json.loads(MUL.read_text())}[kind]
    g = graphspec.load(source)
    assert isinstance(g, graphspec.Graph)
    assert g.value_and_grad() == (6.0, {"x": 15.0, "y": 10.0})


def test_load_does_not_modify_the_dict():
    d = copy.deepcopy(LINEAR)
    graphspec.load(d)
    assert d == LINEAR


def test_relative_files_resolve_against_the_spec_folder_or_base(tmp_path):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.array([1.0, 2.0, 3.0]))
    d = spec(inputs={"x": {"file": "data/x.npy"}}, nodes={"s": {"op": "sum", "args": ["x"]}})
    (tmp_path / "s.json").write_text(json.dumps(d))
    assert graphspec.load(tmp_path / "s.json").run() == {"s": 6.0}
    assert graphspec.load(d, base=tmp_path).run() == {"s": 6.0}
    with pytest.raises(SpecError, match="file not found"):
        graphspec.load(d, base=tmp_path / "data")


def test_explicit_base_wins_for_a_path_too(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "elsewhere" / "x.npy", np.array([1.0, 2.0]))
    (tmp_path / "s.json").write_text(json.dumps(spec(inputs={"x": {"file": "x.npy"}},
                                                     nodes={"s": {"op": "sum", "args": ["x"]}})))
    assert graphspec.load(tmp_path / "s.json", base=tmp_path / "elsewhere").run() == {"s": 3.0}


def test_bad_specs_raise_located_spec_errors(tmp_path):
    with pytest.raises(ShapeError) as e:
        graphspec.load(spec(inputs={"a": {"value": [[1.0, 2.0, 3.0]]}, "b": {"value": [[1.0, 2.0, 3.0]]}},
                            nodes={"m": {"op": "matmul", "args": ["a", "b"]}}))
    assert e.value.loc == "nodes.m" and "matmul" in str(e.value) and "(1, 3)" in str(e.value)
    with pytest.raises(SpecError, match="did you mean 'matmul'"):
        graphspec.load(spec(inputs={"a": {"value": 1.0}}, nodes={"m": {"op": "matmull", "args": ["a", "a"]}}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"graphspec": "1", "nodes": {}, "nodes": {}}')
    with pytest.raises(SpecError) as e:
        graphspec.load(bad)
    assert str(bad) in str(e.value)  # errors from a file name the file
    assert "\n" not in str(e.value)


# --- the Graph's attributes ----------------------------------------------------------------------

def test_outputs_default_to_the_nodes_nobody_uses_and_keep_the_given_order():
    g = graphspec.load(LINEAR)
    assert g.outputs == ["l"] and g.loss == "l"
    g = graphspec.load({**LINEAR, "outputs": ["l", "p", "l"]})
    assert g.outputs == ["l", "p"]
    assert list(g.run()) == ["l", "p"]


def test_params_are_drawn_from_the_seed_reproducibly():
    d = spec(params={"W": {"shape": [3, 4], "init": {"normal": 1.0}}, "V": {"shape": [2], "init": "he"}},
             nodes={"s": {"op": "l2", "args": ["W"]}, "t": {"op": "l2", "args": ["V"]}})
    a, b = graphspec.load(d), graphspec.load(d)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    c = graphspec.load({**d, "seed": 1})
    assert not np.array_equal(a.params["W"], c.params["W"])
    # each param has its own stream: adding one does not change the others
    e = graphspec.load({**d, "params": {"A": {"shape": [5], "init": "xavier"}, **d["params"]}})
    np.testing.assert_array_equal(a.params["W"], e.params["W"])
    assert a.params["W"].shape == (3, 4) and a.params["W"].dtype == np.float64


# --- the calls -----------------------------------------------------------------------------------

def test_linear_model_from_the_lecture():
    """loss = (x*w - y)^2 at x=1, y=2, w=1: loss 1, dL/dw = -2."""
    g = graphspec.load(LINEAR)
    loss, grads = g.value_and_grad()
    assert loss == 1.0
    assert grads == {"x": -2.0, "y": 2.0, "w": -2.0}
    assert g.grad() == grads
    assert g.run() == {"l": 1.0}


def test_grads_have_the_leaf_shapes_and_dtypes():
    d = spec(inputs={"x": {"value": [[1.0, 2.0, 3.0]], "dtype": "float32"}},
             params={"b": {"value": [0.5, 0.5, 0.5]}, "c": {"value": 2.0}},
             nodes={"s": {"op": "add", "args": ["x", "b"]}, "t": {"op": "mul", "args": ["s", "c"]},
                    "l": {"op": "sum", "args": ["t"]}}, loss="l")
    grads = graphspec.load(d).grad()
    assert grads["x"].shape == (1, 3) and grads["x"].dtype == np.float32
    assert grads["b"].shape == (3,) and grads["b"].dtype == np.float64
    np.testing.assert_array_equal(grads["b"], [2.0, 2.0, 2.0])
    assert grads["c"].shape == () and grads["c"] == 7.5


def test_a_leaf_the_loss_does_not_use_gets_a_zero_gradient():
    d = spec(params={"w": {"value": [1.0, 2.0]}, "unused": {"value": [[1.0], [2.0]]}},
             nodes={"l": {"op": "l2", "args": ["w"]}, "other": {"op": "l2", "args": ["unused"]}}, loss="l")
    grads = graphspec.load(d).grad()
    np.testing.assert_array_equal(grads["unused"], np.zeros((2, 1)))
    np.testing.assert_array_equal(grads["w"], [2.0, 4.0])


def test_evaluate_gives_every_value_and_every_gradient():
    g = graphspec.load(LINEAR)
    r = g.evaluate()
    assert isinstance(r, graphspec.Result)
    assert {k: float(v) for k, v in r.values.items()} == {"x": 1.0, "y": 2.0, "w": 1.0, "p": 1.0, "d": -1.0, "l": 1.0}
    assert {k: float(v) for k, v in r.grads.items()} == {"x": -2.0, "y": 2.0, "w": -2.0, "p": -2.0, "d": -2.0, "l": 1.0}
    assert r.loss == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.loss = 2.0  # type: ignore[misc]
    r = g.evaluate(with_grads=False)
    assert r.grads == {} and r.loss == 1.0


def test_evaluate_returns_nonfinite_findings_as_data_and_warns_by_default():
    g = graphspec.load(spec(inputs={"x": {"value": [-1.0, 0.0]}},
                            nodes={"a": {"op": "log", "args": ["x"]}, "s": {"op": "sum", "args": ["a"]}}, loss="s"))
    with pytest.warns(NonFiniteWarning) as rec:
        r = g.evaluate()
    value = graphspec.Finding("value", "nodes.a", "first non-finite value (inf/nan) produced by log")
    assert r.findings[0] == value
    assert [str(w.message) for w in rec] == [str(f) for f in r.findings]  # the warnings say what the data holds
    assert str(value) == "nodes.a: first non-finite value (inf/nan) produced by log"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "record": the same findings, and no warning at all
        assert g.evaluate(check_finite="record").findings == r.findings
        assert g.evaluate(check_finite="off").findings == ()
        assert g.evaluate({"x": [1.0, 2.0]}).findings == ()  # finite: nothing found
    with pytest.raises(NonFiniteError, match="log"):
        g.evaluate(check_finite="raise")


def test_a_nonfinite_gradient_is_a_finding_of_its_own_kind():
    """sqrt(0) is finite, its slope is not: the forward pass finds nothing, the backward pass does."""
    g = graphspec.load(spec(params={"w": {"value": [0.0, 4.0]}},
                            nodes={"r": {"op": "sqrt", "args": ["w"]}, "s": {"op": "sum", "args": ["r"]}}, loss="s"))
    r = g.evaluate(check_finite="record")
    assert [(f.kind, f.loc) for f in r.findings] == [("gradient", "nodes.r")]
    assert "VJP of sqrt for 'w'" in r.findings[0].message
    assert np.isinf(r.grads["w"][0]) and r.grads["w"][1] == 0.25  # the data is there too
    assert g.evaluate(check_finite="record", with_grads=False).findings == ()  # no backward pass, nothing found


def test_record_is_for_evaluate_alone():
    """run and the gradient calls return no Result to record into: "record" there would lose a finding."""
    g = graphspec.load(LINEAR)
    for call in (g.run, g.grad, g.value_and_grad, lambda **k: g.jvp({"w": 1.0}, **k)):
        with pytest.raises(ValueError, match="for evaluate, record"):
            call(check_finite="record")


def test_the_program_is_frozen_and_apart_from_the_params():
    g = graphspec.load(LINEAR)
    p = g.program
    assert g.order is p.order == ["p", "d", "l"] and g.plan is p.plan and g.loss == p.loss == "l"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.order = []  # type: ignore[misc]
    with pytest.raises(AttributeError):
        g.order = []  # type: ignore[misc]  # read through, not a second copy to drift apart
    g.params["w"] = np.asarray(3.0)  # training updates the params: the program and the defaults stay
    assert float(g.run()["l"]) == 1.0 and float(g.defaults["w"]) == 1.0
    assert float(graphspec.load(LINEAR).run()["l"]) == 1.0 and g.program is p


def test_no_loss_means_no_gradient_but_run_works():
    g = graphspec.load(spec(inputs={"x": {"value": 3.0}}, nodes={"s": {"op": "square", "args": ["x"]}}))
    assert g.run() == {"s": 9.0}
    assert g.evaluate().grads == {} and g.evaluate().loss is None
    with pytest.raises(SpecError, match="no loss"):
        g.grad()
    with pytest.raises(SpecError, match="no loss"):
        g.value_and_grad()


def test_seed_scales_the_gradient():
    g = graphspec.load(spec(inputs={"x": {"value": [1.0, 2.0]}}, nodes={"s": {"op": "square", "args": ["x"]}},
                            loss={"node": "s", "seed": [1.0, -3.0]}))
    np.testing.assert_array_equal(g.grad()["x"], [2.0, -12.0])


def test_runtime_values_do_not_stick_and_are_not_modified():
    g = graphspec.load(LINEAR)
    x = np.array(3.0)
    assert g.run({"x": x}) == {"l": 1.0 * (3.0 - 2.0) ** 2}
    assert x == 3.0
    assert g.run() == {"l": 1.0}
    assert g.grad({"w": 2.0})["w"] == 2 * (2.0 - 2.0) * 1.0
    assert g.grad()["w"] == -2.0


def test_repeated_calls_give_identical_results():
    g = graphspec.load(MUL)
    first = g.evaluate()
    for _ in range(3):
        again = g.evaluate()
        assert {k: float(v) for k, v in again.grads.items()} == {k: float(v) for k, v in first.grads.items()}


def test_jvp_returns_outputs_and_their_tangents():
    g = graphspec.load(LINEAR)
    outs, tans = g.jvp({"w": 1.0})
    assert outs == {"l": 1.0} and tans == {"l": -2.0}
    outs, tans = g.jvp({"w": 1.0, "x": 0.5}, {"x": 2.0})  # at x = 2: l = (2w - 2)^2, dl = 2(2w-2)(x dw + w dx)
    assert outs == {"l": 0.0} and tans == {"l": 0.0}
    outs, tans = g.jvp({"y": 1.0}, {"x": 3.0})
    assert tans == {"l": -2.0 * (3.0 - 2.0)}
    _, tans = g.jvp({})
    assert tans == {"l": 0.0}


def test_jvp_includes_the_loss_next_to_the_outputs():
    g = graphspec.load({**LINEAR, "outputs": ["p"]})
    outs, tans = g.jvp({"x": 1.0})
    assert set(outs) == set(tans) == {"p", "l"}
    assert tans["p"] == 1.0 and tans["l"] == 2 * (1.0 - 2.0) * 1.0


def test_returned_gradients_are_fresh_writable_arrays():
    g = graphspec.load(spec(params={"x": {"value": [[1.0, 2.0]]}, "y": {"value": [[3.0, 4.0]]}},
                            nodes={"s": {"op": "add", "args": ["x", "y"]}},
                            loss={"node": "s", "seed": [[1.0, 1.0]]}))
    grads = g.grad()
    assert not np.shares_memory(grads["x"], grads["y"])
    grads["x"] *= 2  # a user scaling a gradient in place
    np.testing.assert_array_equal(g.grad()["x"], [[1.0, 1.0]])
    np.testing.assert_array_equal(g.grad()["y"], [[1.0, 1.0]])
    g = graphspec.load(spec(params={"W": {"value": [[1.0, 2.0], [3.0, 4.0]]}},
                            nodes={"s": {"op": "sum", "args": ["W"]}}, loss="s"))
    grad = g.grad()["W"]
    grad -= 0.5
    np.testing.assert_array_equal(grad, [[0.5, 0.5], [0.5, 0.5]])


def test_jvp_zero_tangents_keep_the_output_dtype():
    g = graphspec.load(spec(inputs={"x": {"value": [1.0, 2.0]}, "h": {"value": [1.0, 2.0], "dtype": "float32"}},
                            nodes={"a": {"op": "add", "args": ["x", 1.0]}, "b": {"op": "mul", "args": ["h", 2.0]}}))
    _, tans = g.jvp({"x": [1.0, 1.0]})
    assert tans["b"].dtype == np.float32
    np.testing.assert_array_equal(tans["b"], [0.0, 0.0])


@pytest.mark.parametrize(("tangents", "match"), [
    ({"ww": 1.0}, "did you mean 'w'"),
    ({"w": [1.0, 2.0]}, r"tangent of shape \[2\]"),
    ({"p": 1.0}, "no float input or param 'p'"),  # a node, not a leaf
])
def test_jvp_rejects_bad_tangents(tangents, match):
    with pytest.raises(InputError, match=match):
        graphspec.load(LINEAR).jvp(tangents)


def test_check_finite_modes():
    g = graphspec.load(spec(inputs={"x": {"value": -1.0}}, nodes={"s": {"op": "sqrt", "args": ["x"]}}))
    with pytest.warns(NonFiniteWarning, match=r"nodes\.s.*sqrt"):
        g.run()
    with pytest.raises(NonFiniteError, match="sqrt"):
        g.run(check_finite="raise")
    assert np.isnan(g.run(check_finite="off")["s"])
    assert g.run({"x": 4.0}, check_finite="raise") == {"s": 2.0}


def test_runtime_input_errors_name_the_input():
    g = graphspec.load(spec(inputs={"X": {"shape": ["N", 2]}, "y": {"shape": ["N"], "dtype": "int64"}},
                            nodes={"s": {"op": "sum", "args": ["X"]}, "t": {"op": "sum", "args": ["y"]}}))
    assert g.run({"X": np.ones((3, 2)), "y": [1, 2, 3]}) == {"s": 6.0, "t": 6}
    with pytest.raises(InputError) as e:
        g.run({"X": np.ones((3, 2)), "y": [1, 2]})
    assert "'N'" in str(e.value) and "y" in str(e.value)
    with pytest.raises(InputError, match="no value"):
        g.run({"X": np.ones((3, 2))})
    with pytest.raises(InputError, match="whole numbers"):
        g.run({"X": np.ones((2, 2)), "y": [1.5, 2]})
    with pytest.raises(InputError, match="ragged"):
        g.run({"X": [[1.0, 2.0], [3.0]], "y": [1, 2]})


def test_errors_while_running_a_loaded_spec_name_its_file(tmp_path, capsys):
    """Run-time errors (an input without a value, --wrt of a name with no gradient) lost the
    spec's name: with several specs on the command line, which one?"""
    from graphspec.cli import main

    path = tmp_path / "nv.json"
    path.write_text(json.dumps(spec(inputs={"x": {"shape": [2]}}, params={"w": {"value": [1.0, 2.0]}},
                                    nodes={"h": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["h"]}},
                                    loss="L")))
    g = graphspec.load(path)
    for call in (g.run, g.grad, g.evaluate, lambda: g.jvp({"w": np.ones(2)}), lambda: graphspec.gradcheck(g)):
        with pytest.raises(InputError) as e:
            call()
        assert str(e.value).startswith(f"{path}: inputs.x: no value")
    no_loss = tmp_path / "nl.json"
    no_loss.write_text(json.dumps(spec(inputs={"x": {"value": 3.0}}, nodes={"s": {"op": "square", "args": ["x"]}})))
    with pytest.raises(SpecError, match=f"^{no_loss}: loss: this spec has no loss"):
        graphspec.load(no_loss).grad()
    for argv, message in ((["check", str(path)], "inputs.x: no value"),
                          (["check", str(MUL), "--wrt", "nope"], "wrt.nope: 'nope' is not a param"),
                          (["run", str(MUL), "--input", "nope=1"], "nope: unknown input")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {argv[1]}: {message}") and err.count("\n") == 1, err


def test_runtime_value_takes_the_declared_dtype():
    g = graphspec.load(spec(inputs={"x": {"shape": [2]}, "h": {"shape": [2], "dtype": "float32"}},
                            nodes={"s": {"op": "mul", "args": ["x", 2.0]}, "t": {"op": "mul", "args": ["h", 2.0]}}))
    out = g.run({"x": [1, 2], "h": np.array([1.0, 2.0])})
    assert out["s"].dtype == np.float64 and out["t"].dtype == np.float32
    np.testing.assert_array_equal(out["s"], [2.0, 4.0])


def test_the_mlp_spec_matches_torch():
    import torch  # in the test extra: never skipped
    g = graphspec.load(ROOT / "specs" / "mlp" / "mlp.json")
    loss, grads = g.value_and_grad()
    values = g.evaluate(with_grads=False).values  # the data as graphspec read it from the CSV files
    X = torch.tensor(values["X"])
    y = torch.tensor(values["y"])
    p = {k: torch.tensor(v, requires_grad=True) for k, v in g.params.items()}
    h = torch.relu(X @ p["W1"] + p["b1"])
    t_loss = torch.nn.functional.cross_entropy(h @ p["W2"] + p["b2"], y) + \
        0.001 * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
    t_loss.backward()
    assert float(loss) == pytest.approx(t_loss.item(), rel=1e-12)
    for k in p:
        np.testing.assert_allclose(grads[k], p[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_check_finite_rejects_a_typo():
    g = graphspec.load(LINEAR)
    with pytest.raises(ValueError, match="check_finite must be one of warn, raise, off"):
        g.run(check_finite="rasie")


@pytest.mark.parametrize("name", ["self", "check_finite", "with_grads", "tangents", "inputs"])
def test_inputs_are_a_mapping_so_any_name_works(name):
    """Run-time inputs are keys of a mapping, not keyword arguments: names of the methods' own
    parameters cannot collide with them."""
    g = graphspec.load({"graphspec": "1", "inputs": {name: {"shape": [2]}},
                        "nodes": {"s": {"op": "sum", "args": [name]}}, "loss": "s"})
    assert float(g.run({name: [1.0, 2.0]})["s"]) == 3.0
    loss, grads = g.value_and_grad({name: [1.0, 2.0]})
    assert float(loss) == 3.0 and grads[name].tolist() == [1.0, 1.0]
    assert g.grad({name: [1.0, 2.0]}, check_finite="raise")[name].tolist() == [1.0, 1.0]
    assert g.evaluate({name: [1.0, 2.0]}, with_grads=False).values["s"] == 3.0
    outs, tans = g.jvp({name: [1.0, 1.0]}, {name: [1.0, 2.0]})
    assert float(outs["s"]) == 3.0
    assert float(tans["s"]) == 2.0
