"""gradcheck of a Python function (graphspec/checker/function.py): a numpy function with its gradient,
VJP, JVP and kink branch; a torch callable; a jax.custom_vjp. The numeric side is compared with HIPS
autograd and PyTorch, never only with our own code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import torch

import graphspec
from graphspec.checker import FAIL, KINK, PASS
from graphspec.errors import InputError, OpError
from graphspec.ops import OPS

HERE = Path(__file__).resolve()


def _line(text: str) -> int:
    return next(i for i, line in enumerate(HERE.read_text().splitlines(), 1) if text in line)


@pytest.fixture(autouse=True)
def table_unchanged():
    """Every check leaves the op table as it found it: the temporary op is gone, no built-in replaced."""
    saved = dict(OPS)
    yield
    assert OPS == saved


def energy(x, w):
    return anp.sum(w * anp.sin(x) ** 2)


def energy_grad(x, w):
    return 2 * w * np.sin(x) * np.cos(x), np.sin(x) ** 2


def energy_grad_slip(x, w):
    return w * np.sin(x) * np.cos(x), np.sin(x) ** 2  # the 2 of d sin^2 forgotten


POINT = (np.array([0.3, -1.2, 2.0]), [1.0, 2.0, 0.5])  # an array and a list


def test_a_right_gradient_passes_and_its_differences_agree_with_autograd():
    rep = graphspec.gradcheck(energy, POINT, grad=energy_grad, taylor=True)
    assert rep.ok and rep.status == PASS and rep.name == "energy"
    assert [c.input for c in rep.checks] == ["x", "w"]  # the function's own parameter names
    for i, c in enumerate(rep.checks):
        reference = autograd.grad(energy, i)(*[np.asarray(a, float) for a in POINT])
        assert c.checked == 3 and np.allclose(c.arrays["numeric"], reference, rtol=1e-7, atol=1e-9)
    assert rep.taylor and all(t.status == PASS for t in rep.taylor)
    assert "dx" in rep.text() and rep.to_json()["status"] == PASS


def test_a_wrong_gradient_fails_where_it_is_wrong_and_blames_the_function_s_node():
    rep = graphspec.gradcheck(energy, POINT, grad=energy_grad_slip)
    assert not rep.ok and [c.status for c in rep.checks] == [FAIL, PASS]
    (blamed,) = rep.blamed
    assert (blamed.node, blamed.op, blamed.arg, blamed.mode) == ("energy", "energy", 0, "vjp")
    worst = rep.checks[0].worst
    assert worst.analytic == pytest.approx(worst.numeric / 2, rel=1e-6)
    assert "blame: node 'energy'" in rep.text()
    assert "diagnosis (denergy/dx): analytic = 0.5 x numeric at all 3 elements: a missing factor 2?" in rep.text()
    assert "diagnosis" not in graphspec.gradcheck(energy, POINT, grad=energy_grad).text()  # a right one gets none


def test_vjp_for_a_non_scalar_function_checks_its_jacobian_and_jvp_is_compared_with_it():
    def softplus(x, y):
        return np.logaddexp(0, x * y)

    def vjp(g, x, y):
        s = 1 / (1 + np.exp(-x * y))
        return g * s * y, g * s * x

    def jvp(t, x, y):
        s = 1 / (1 + np.exp(-x * y))
        return s * (t[0] * y + x * t[1])

    x, y = np.linspace(-1, 1, 4), np.full(4, 0.5)
    rep = graphspec.gradcheck(softplus, (x, y), vjp=vjp, jvp=jvp)
    assert rep.ok and all(c.target_kind == "jacobian" for c in rep.checks)
    reference = torch.autograd.functional.jacobian(lambda a: torch.nn.functional.softplus(a * 0.5),
                                                   torch.from_numpy(x))
    assert np.allclose(rep.checks[0].arrays["numeric"], reference.numpy().ravel(), rtol=1e-7, atol=1e-9)
    assert [m.status for m in rep.modes] == [PASS]
    wrong = graphspec.gradcheck(softplus, (x, y), vjp=vjp, jvp=lambda t, x, y: jvp(t, x, y) * 1.1)
    assert [m.status for m in wrong.modes] == [FAIL] and wrong.blamed[0].mode == "jvp"


def test_anything_but_a_tuple_is_the_one_arg_and_a_single_gradient_needs_no_tuple():
    rep = graphspec.gradcheck(lambda x: anp.sum(anp.exp(x)), np.array([0.1, 0.2]), grad=np.exp)
    assert rep.ok and rep.name == "f" and rep.checks[0].shape == (2,)
    scalar = graphspec.gradcheck(lambda t: t ** 3, 2.0, grad=lambda t: 3 * t ** 2)
    assert scalar.ok and scalar.checks[0].shape == () and scalar.dtype == "float64"
    vector = graphspec.gradcheck(lambda v: anp.sum(v ** 2), [1.0, 2.0, 3.0], grad=lambda v: 2 * v)
    assert vector.ok and vector.checks[0].shape == (3,)
    with pytest.raises(InputError, match="several args go in a tuple"):
        graphspec.gradcheck(energy, [np.ones(2), np.ones(3)], grad=energy_grad)


def test_an_integer_arg_gets_no_gradient():
    def pick(x, i):
        return np.sum(x[i] ** 2)

    rep = graphspec.gradcheck(pick, (np.arange(4.0), [0, 2, 2]), grad=lambda x, i: (np.bincount(i, 2 * x[i], 4), None))
    assert rep.ok and [c.input for c in rep.checks] == ["x"]


def test_a_kink_branch_makes_a_kink_not_a_failure():
    def relu_sum(x):
        return np.sum(np.maximum(x, 0))

    x = np.array([-1.0, 0.0, 2.0])  # 0.0: exactly on the kink
    plain = graphspec.gradcheck(relu_sum, x, grad=lambda x: (x > 0) * 1.0)
    assert plain.status == FAIL
    rep = graphspec.gradcheck(relu_sum, x, grad=lambda x: (x > 0) * 1.0, kink=lambda x: x > 0)
    assert rep.status == KINK and rep.ok and rep.checks[0].kinks[0].index == (1,)
    assert not graphspec.gradcheck(relu_sum, x, grad=lambda x: (x > 0) * 1.0, kink=lambda x: x > 0, strict=True).ok


def test_fast_mode_checks_random_directions_of_a_big_input():
    x = np.random.default_rng(1).normal(size=5000)
    rep = graphspec.gradcheck(energy, (x, np.ones(5000)), grad=energy_grad, fast=True, directions=3)
    assert rep.ok and rep.mode == "fast" and all(c.method == "directions" and c.checked == 3 for c in rep.checks)
    assert not graphspec.gradcheck(energy, (x, np.ones(5000)), grad=energy_grad_slip, fast=True).ok


def test_wrt_chooses_args_by_name():
    rep = graphspec.gradcheck(energy, POINT, grad=energy_grad_slip, wrt=["w"])
    assert [c.input for c in rep.checks] == ["w"] and rep.checks[0].status == PASS


def test_a_function_named_like_a_built_in_op_never_replaces_it():
    def exp(x):
        return np.sum(np.exp(x))

    builtin = OPS["exp"]
    rep = graphspec.gradcheck(exp, [0.5, 1.0], grad=lambda x: np.exp(x), blame=True)
    assert rep.ok and OPS["exp"] is builtin and {n.op for n in rep.nodes} == {"exp_2"}
    assert not any("replaced" in n for n in rep.notes)


def grad_raises(x):
    raise ArithmeticError("slip in the gradient")


def forward_raises_away_from_the_point(x):
    if x[0] > 1.0000001:
        raise KeyError("stepped past 1")
    return np.sum(x ** 2)


def forward_raises(x):
    return x[{"no": 1}]  # not an index


def test_errors_in_the_user_s_functions_are_op_errors_naming_the_file_and_line():
    rep = graphspec.gradcheck(lambda x: np.sum(x), [1.0, 2.0], grad=grad_raises)
    assert rep.status == FAIL and "ArithmeticError: slip in the gradient" in rep.error
    assert f"{HERE}:{_line('raise ArithmeticError')}" in rep.error
    with pytest.raises(OpError) as e:
        graphspec.gradcheck(forward_raises_away_from_the_point, [1.0, 2.0], grad=lambda x: 2 * x)
    assert e.value.phase == "forward" and f"{HERE}:{_line('raise KeyError')}" in str(e.value)
    with pytest.raises(OpError) as e:
        graphspec.gradcheck(forward_raises, [1.0], grad=lambda x: x)
    assert e.value.node == "forward_raises" and f"{HERE}:{_line('not an index')}" in str(e.value)


def test_a_gradient_of_the_wrong_count_is_named():
    rep = graphspec.gradcheck(energy, POINT, grad=lambda x, w: 2 * x)
    assert re.search(r"grad returned ndarray for 2 args: one per arg", rep.error)


@pytest.mark.parametrize(("kw", "args", "message"), [
    ({}, [1.0], "give the gradient: grad="),
    ({"grad": np.cos, "vjp": np.cos}, [1.0], "not both"),
    ({"grad": 3.0}, [1.0], "grad must be a function"),
    ({"grad": np.cos}, ([1.0], "mode"), r"args\[1\]"),
    ({"grad": np.cos}, (), "no args"),
    ({"grad": lambda x: 2 * x}, [[1.0, 2.0]], "grad= is for a scalar function.*give vjp="),
    ({"grad": np.cos, "inputs": {"x": 1.0}}, [1.0], "not inputs="),
])
def test_bad_calls_are_clear_errors(kw, args, message):
    f = (lambda x: x ** 2) if "scalar" in message else np.sin
    with pytest.raises(InputError, match=message):
        graphspec.gradcheck(f, args, **kw)


def test_a_graph_takes_no_function_arguments():
    with pytest.raises(TypeError, match="for checking a Python function"):
        graphspec.gradcheck("specs/lecture/mul.json", grad=np.cos)


def test_a_tolerance_that_is_no_tolerance_record_is_a_type_error_not_a_bug_in_the_function():
    """tolerance=1e-3 (torch's rtol, say) failed inside the check: an AttributeError for a graph, and for a
    function an OpError blaming the user's function. A right Tolerance still decides the verdict."""
    from graphspec.checker import Tolerance

    for target, kw in (("specs/lecture/mul.json", {}), (lambda x: np.sum(x ** 2), {"args": [1.0], "grad": lambda x: 2 * x})):
        with pytest.raises(TypeError, match=r"tolerance must be a graphspec\.checker\.Tolerance"):
            graphspec.gradcheck(target, tolerance=1e-3, **kw)
    slip = {"args": [1.0, 2.0], "grad": lambda x: 2.001 * x}  # 0.05% off: within rtol 1e-3, not 1e-5
    assert not graphspec.gradcheck(lambda x: np.sum(x ** 2), **slip).ok
    assert graphspec.gradcheck(lambda x: np.sum(x ** 2), tolerance=Tolerance(eps=6e-6, rtol=1e-3, atol=1e-8), **slip).ok


def test_checking_a_numpy_function_imports_no_torch():
    code = ("import sys, numpy as np, graphspec; "
            "assert graphspec.gradcheck(lambda x: np.sum(x ** 2), [1.0], grad=lambda x: 2 * x).ok; "
            "print('torch' in sys.modules, 'jax' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "False False"


def test_the_benchmark_s_403_parameter_function_is_right_as_torch_says_and_a_slip_in_it_fails():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_w10", HERE.parent.parent / "tools" / "bench.py")
    bench = sys.modules["bench_w10"] = importlib.util.module_from_spec(spec)  # its dataclasses need it there
    try:
        spec.loader.exec_module(bench)
        params, f, grad_f, torch_f = bench.w10_mlp()
    finally:
        del sys.modules["bench_w10"]
    assert sum(p.size for p in params) == 403
    tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    loss = torch_f(*tp)
    assert loss.item() == pytest.approx(f(*params), rel=1e-12)
    for ours, theirs in zip(grad_f(*params), torch.autograd.grad(loss, tp), strict=True):
        assert np.allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-14)
    rep = graphspec.gradcheck(f, params, grad=grad_f)
    assert rep.ok and sum(c.checked for c in rep.checks) == 403
    slip = graphspec.gradcheck(f, params, grad=lambda *p: (*grad_f(*p)[:5], 0 * p[5]))
    assert [c.status for c in slip.checks] == [PASS] * 5 + [FAIL]


def sq_norm(x, w):  # vectorized: any leading axes of points
    return np.sum(w * np.sin(x) ** 2, axis=-1)


def test_a_vectorized_function_is_called_once_per_input_and_gives_the_same_differences():
    x = np.linspace(-1, 1, 50)
    rows = graphspec.gradcheck(sq_norm, (x, np.ones(50)), grad=energy_grad, vectorized=False)
    fast = graphspec.gradcheck(sq_norm, (x, np.ones(50)), grad=energy_grad, vectorized=True)
    assert rows.ok and fast.ok and fast.evaluations == rows.evaluations == 200
    for a, b in zip(rows.checks, fast.checks, strict=True):
        assert np.allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-9, atol=1e-12)
    slip = graphspec.gradcheck(sq_norm, (x, np.ones(50)), grad=energy_grad_slip, vectorized=True)
    assert [c.status for c in slip.checks] == [FAIL, PASS] and slip.blamed[0].node == "sq_norm"


@pytest.mark.parametrize(("fn", "says"), [
    (lambda x: np.sum(x ** 2), r"returned shape \[\], not \[\d+\]"),
    (lambda x: np.sum(x ** 2, axis=-1) + x.flat[0], r"row \d+ differs from the function called on row \d+ alone"),
])
def test_vectorized_true_for_a_function_that_is_not_is_an_error_not_a_wrong_derivative(fn, says):
    with pytest.raises(OpError, match=says) as e:
        graphspec.gradcheck(fn, [1.0, 2.0], grad=lambda x: 2 * x, vectorized=True)
    assert "it is not vectorized" in str(e.value)


def _counted(fn):
    calls = []

    def f(*args):
        calls.append(1)
        return fn(*args)
    return f, calls


def test_by_default_a_numpy_function_that_takes_stacked_points_is_called_once_per_input():
    x = np.linspace(-1, 1, 50)
    f, calls = _counted(sq_norm)
    auto = graphspec.gradcheck(f, (x, np.ones(50)), grad=energy_grad)
    n_auto = len(calls)
    g, calls = _counted(sq_norm)
    rows = graphspec.gradcheck(g, (x, np.ones(50)), grad=energy_grad, vectorized=False)
    assert auto.ok and rows.ok and n_auto < 40 < 200 <= len(calls)  # 2 inputs x 2 stencil sides, not 200 calls
    for a, b in zip(rows.checks, auto.checks, strict=True):
        assert np.allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-9, atol=1e-12)
    slip = graphspec.gradcheck(sq_norm, (x, np.ones(50)), grad=energy_grad_slip)
    assert [c.status for c in slip.checks] == [FAIL, PASS]


@pytest.mark.parametrize(("fn", "grad"), [
    (lambda x: np.sum(x ** 2), lambda x: 2 * x),  # sums over every axis: a stack of points is one point to it
    (lambda x: np.sum(x ** 2, axis=-1) + x.flat[0], lambda x: 2 * x + np.eye(3)[0]),  # the first point's x[0]
    (lambda x: float(np.dot(x, x)), lambda x: 2 * x),  # a Python float: no leading axis at all
])
def test_by_default_a_function_that_does_not_take_stacked_points_is_called_once_per_point(fn, grad):
    f, calls = _counted(fn)
    rep = graphspec.gradcheck(f, np.array([1.0, -2.0, 0.5]), grad=grad)
    assert rep.ok, rep.text()
    assert len(calls) >= 2 * 3  # every perturbation its own call


# -- torch ------------------------------------------------------------------------------------


class Cube(torch.autograd.Function):  # old style: forward(ctx, ...)
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x ** 2


class CubeSlip(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x


class Mul(torch.autograd.Function):  # new style, with forward-mode AD
    @staticmethod
    def forward(a, b):
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        return ta * b + a * tb


class MulJvpSlip(Mul):
    @staticmethod
    def jvp(ctx, ta, tb):
        _, b = ctx.saved_tensors
        return ta * b  # the tangent of b forgotten


class Boom(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        raise ArithmeticError("backward slip")


X = torch.tensor([-1.5, -0.2, 0.4, 2.0])  # float32: checked in float64


def test_a_torch_function_is_checked_in_float64_and_agrees_with_torch_s_own_gradcheck():
    rep = graphspec.gradcheck(Cube.apply, (X,))
    assert rep.ok and rep.name == "Cube" and rep.dtype == "float64" and [c.input for c in rep.checks] == ["x"]
    assert torch.autograd.gradcheck(Cube.apply, (X.double().requires_grad_(),))
    numeric = torch.autograd.functional.jacobian(lambda t: t ** 3, X.double())
    assert np.allclose(rep.checks[0].arrays["numeric"], numeric.numpy().ravel(), rtol=1e-7, atol=1e-9)
    assert any("no JVP" in n and "jvp staticmethod" in n for n in rep.notes)  # said, not passed


def test_a_slip_in_a_torch_backward_fails_and_is_blamed_on_the_function_as_torch_s_gradcheck_says():
    rep = graphspec.gradcheck(CubeSlip.apply, (X,))
    assert rep.status == FAIL and rep.blamed[0].node == "CubeSlip"
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(CubeSlip.apply, (X.double().requires_grad_(),))


def test_a_torch_function_s_jvp_is_compared_with_its_backward():
    args = (X, torch.full((4,), 0.5))
    rep = graphspec.gradcheck(Mul.apply, args)
    assert rep.ok and [c.input for c in rep.checks] == ["a", "b"] and [m.status for m in rep.modes] == [PASS]
    slip = graphspec.gradcheck(MulJvpSlip.apply, args)
    assert [m.status for m in slip.modes] == [FAIL] and all(c.status == PASS for c in slip.checks)


def test_a_torch_composition_and_a_module_are_checked_and_the_module_is_left_alone():
    rep = graphspec.gradcheck(lambda t: torch.sum(Mul.apply(t, t) * torch.sin(t)), (X,), taylor=True)
    assert rep.ok and rep.checks[0].target_kind == "loss" and [m.status for m in rep.modes] == [PASS]
    assert [t.status for t in rep.taylor] == [PASS]
    layer = torch.nn.Linear(4, 2)
    assert graphspec.gradcheck(layer, (X,)).ok and layer.weight.dtype == torch.float32


def test_an_error_in_a_torch_backward_names_the_user_s_line():
    rep = graphspec.gradcheck(Boom.apply, (X,))
    assert rep.status == FAIL and f"{HERE}:{_line('backward slip')}" in rep.error


def _calls(fn):
    """fn, counting its calls in calls[0]."""
    calls = [0]

    def counted(*a):
        calls[0] += 1
        return fn(*a)
    return counted, calls


@pytest.mark.parametrize("options", [{}, {"fast": True}, {"taylor": True}])
def test_the_user_s_gradient_runs_once_per_pull_whatever_the_number_of_args(options):
    """grad= and vjp= give every arg's cotangent at once: an op that asked arg by arg would call them
    once per arg. The one-arg function's check makes as many pulls (and so calls) as the three-arg one's."""
    def f3(x, w, v):
        return anp.sum(w * anp.sin(x) ** 2 * v)

    def grad3(x, w, v):
        return 2 * w * v * np.sin(x) * np.cos(x), v * np.sin(x) ** 2, w * np.sin(x) ** 2

    point3 = (POINT[0], np.asarray(POINT[1]), np.full(3, 0.5))
    counts = []
    for fn, point, grad in ((f3, point3, grad3), (lambda x: anp.sum(anp.sin(x) ** 2), POINT[0],
                                                   lambda x: 2 * np.sin(x) * np.cos(x))):
        counted, calls = _calls(grad)
        assert graphspec.gradcheck(fn, point, grad=counted, **options).ok
        counts.append(calls[0])
    assert counts[0] == counts[1] >= 1
    counted, calls = _calls(lambda g, x, w, v: tuple(g * d for d in grad3(x, w, v)))
    assert graphspec.gradcheck(f3, point3, vjp=counted, **options).ok and calls[0] == counts[1]
    torch_f3 = lambda x, w, v: torch.sum(w * torch.sin(x) ** 2 * v)
    backwards = [0]
    hook = lambda g: backwards.__setitem__(0, backwards[0] + 1)

    def hooked(x, w, v):
        out = torch_f3(x, w, v)
        if out.requires_grad:
            out.register_hook(hook)
        return out
    assert graphspec.gradcheck(hooked, tuple(torch.from_numpy(a) for a in point3), **options).ok
    assert backwards[0] == counts[1]  # torch's backward once per pull too


def test_with_one_gradient_call_per_pull_each_arg_still_gets_its_own_entry():
    def f3(x, w, v):
        return anp.sum(w * anp.sin(x) ** 2 * v)

    def slip_in_v(x, w, v):  # v's entry is w's
        return 2 * w * v * np.sin(x) * np.cos(x), v * np.sin(x) ** 2, v * np.sin(x) ** 2

    rep = graphspec.gradcheck(f3, (POINT[0], np.asarray(POINT[1]), np.full(3, 0.5)), grad=slip_in_v)
    assert [c.status for c in rep.checks] == [PASS, PASS, FAIL]
    assert [(b.node, b.arg, b.mode) for b in rep.blamed] == [("f3", 2, "vjp")]


def test_a_torch_callable_takes_no_hand_written_gradient():
    with pytest.raises(InputError, match="comes from torch's autodiff"):
        graphspec.gradcheck(Cube.apply, (X,), vjp=lambda g, x: g)


# -- jax --------------------------------------------------------------------------------------


def test_a_jax_custom_vjp_function():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    @jax.custom_vjp
    def cube(x):
        return x ** 3

    def fwd(x):
        return x ** 3, x

    cube.defvjp(fwd, lambda x, g: (3 * g * x ** 2,))
    assert graphspec.gradcheck(cube, (jnp.array([0.5, -1.0]),)).ok
    slip = jax.custom_vjp(lambda x: x ** 3)
    slip.defvjp(fwd, lambda x, g: (3 * g * x,))
    assert graphspec.gradcheck(slip, (jnp.array([0.5, -1.0]),)).status == FAIL


def test_the_worked_example_in_docs_is_what_a_run_prints(capsys):
    text = (HERE.parent.parent / "docs" / "gradcheck.md").read_text()
    section = text.split("## Checking plain functions and torch Functions")[1].split("\n## ")[0]
    code, shown = re.findall(r"```python\n([^`]*)```\n\n```\n([^`]*)```", section)[0]
    exec(compile(code, "gradcheck.md", "exec"), {})
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    rows = [line for line in shown.splitlines() if re.match(r" (dlogistic|w\[|logistic_loss )|blame:|diagnosis", line)]
    assert len(rows) >= 8 and all(row in printed for row in rows)


def test_a_partial_is_named_after_its_function_and_located_in_its_file():
    import functools

    def scaled(x, k):
        return np.sum(k * x ** 2)

    def scaled_grad(x, k):
        raise ZeroDivisionError("located")

    rep = graphspec.gradcheck(functools.partial(scaled, k=3.0), [1.0, 2.0], grad=functools.partial(scaled_grad, k=3.0))
    assert rep.name == "scaled" and f"{HERE}:{_line('raise ZeroDivisionError')}" in rep.error
    right = graphspec.gradcheck(functools.partial(scaled, k=3.0), [1.0, 2.0], grad=lambda x: 6 * x)
    assert right.ok and [c.input for c in right.checks] == ["x"]
