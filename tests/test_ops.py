"""Every op of the table against an independent HIPS-autograd reference (tests/reference.py).

For each op, on its own `samples()` plus the extra cases below (broadcasting, every attr
combination, ties, kinks, extreme logits, integer and float labels), in float64:
- the forward value,
- every float arg's VJP, summed back to the arg's shape with `unbroadcast` exactly as the
  interpreter does, against `autograd.make_vjp`,
- every float arg's JVP, against `autograd.make_jvp`,
all at rtol 1e-10; and the shape rule against the shape and dtype the forward produced.
float32 inputs must give float32 values, VJPs and JVPs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from autograd import make_jvp, make_vjp
from optable import ROWS, _n, problems, rng, row
from optable import labels as _labels
from optable import probs as _probs
from reference import assert_close, one_hot

from graphspec.ops import OPS, Aval, RuleError, unbroadcast
from graphspec.ops.registry import WEAK
from graphspec.shapes import bind_attrs
from graphspec.spec import Node


def is_const(a) -> bool:
    return type(a) is float  # a JSON number in args (np.float64 is a float subclass, and not one)


def aval(a) -> Aval:
    """What the shape checker sees: a Python float (a JSON number in args) is weakly typed."""
    return Aval((), WEAK) if is_const(a) else Aval(np.shape(a), np.asarray(a).dtype.name)


def bind(name, args, attrs):
    """The attrs exactly as the interpreter passes them: checked, defaults filled in."""
    node = Node(op=name, args=[a if is_const(a) else f"a{i}" for i, a in enumerate(args)], attrs=attrs)
    return bind_attrs("n", node)


def is_float(a) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.floating)


def diff_args(op, args):
    """Indices of the args that take a gradient: float arrays with a VJP."""
    return [i for i, a in enumerate(args) if is_float(a) and op.vjp_for(i) is not None]


def replace(args, i, a):
    return [*args[:i], a, *args[i + 1:]]


def _cases():
    out = []
    for name in sorted(OPS):
        op = OPS[name]
        for i, (args, attrs) in enumerate(op.samples() if op.samples else []):
            out.append(pytest.param(name, args, attrs, id=f"{name}-sample{i}"))
        for i, (args, attrs) in enumerate(ROWS[name].extra if name in ROWS else []):
            out.append(pytest.param(name, args, attrs, id=f"{name}-extra{i}"))
    return out


CASES = _cases()


# --- the table is complete -----------------------------------------------------------------------

def test_every_registered_op_has_a_row_in_the_table():
    """A newly registered op fails here, saying what to add, until tests/optable.py has its row
    (with extra cases) and its defop has samples(); so does a row of an op that is not registered."""
    missing = problems() + [f"tests/optable.py ROWS[{n!r}] has no extra cases: add some (broadcasting, attrs, kinks)"
                            for n in sorted(set(ROWS) & set(OPS)) if not ROWS[n].extra]
    assert not missing, "\n".join(missing)


def test_format_md_minimum_op_set_is_registered():
    v1 = """add sub mul div pow maximum minimum neg exp log sqrt square abs sin cos tanh sigmoid relu softplus
            leaky_relu matmul transpose sum mean max logsumexp reshape concat softmax log_softmax mse
            softmax_cross_entropy hinge l2""".split()
    assert set(v1) <= set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_attr_defaults_are_format_md_s(name):
    """Each attr's default is the one docs/format.md documents (the row's `defaults`)."""
    assert {k: a.default for k, a in OPS[name].attrs.items()} == row(name).defaults
    if "reduction" in OPS[name].attrs:
        assert set(OPS[name].attrs["reduction"].choices) == {"mean", "sum", "none"}


# --- values, VJPs, JVPs against autograd ---------------------------------------------------------

@pytest.mark.parametrize(("name", "args", "attrs"), CASES)
def test_forward(name, args, attrs):
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ours = op.forward(*args, **kw)
        ref = row(name).ref(*args, **kw)
    assert_close(ours, ref, what=f"{name} value")


@pytest.mark.parametrize(("name", "args", "attrs"), CASES)
def test_vjp(name, args, attrs):
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ans = op.forward(*args, **kw)
        for i in diff_args(op, args):
            g = rng(100 + i).normal(size=np.shape(ans))
            ours = unbroadcast(op.vjp_for(i)(g, ans, *args, **kw), np.shape(args[i]))
            back, _ = make_vjp(lambda a, i=i: row(name).ref(*replace(args, i, a), **kw))(args[i])
            assert_close(ours, back(g), what=f"{name} vjp of arg {i}")


@pytest.mark.parametrize(("name", "args", "attrs"), CASES)
def test_jvp(name, args, attrs):
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ans = op.forward(*args, **kw)
        for i in diff_args(op, args):
            t = rng(200 + i).normal(size=np.shape(args[i]))
            ours = np.broadcast_to(op.jvp_for(i)(t, ans, *args, **kw), np.shape(ans))
            _, ref = make_jvp(lambda a, i=i: row(name).ref(*replace(args, i, a), **kw))(args[i])(t)
            assert_close(ours, ref, what=f"{name} jvp of arg {i}")


@pytest.mark.parametrize(("name", "args", "attrs"), [c for c in CASES if OPS[c.values[0]].reads is not None])
def test_vjps_read_only_what_the_op_declares(name, args, attrs):
    """`reads` lets the interpreter write over the other values (Plan.memory): a VJP
    given garbage in their place must not notice."""
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ans = op.forward(*args, **kw)

        def garbage(v, seed):
            v = np.asarray(v)
            return rng(seed).normal(size=v.shape).astype(v.dtype) if v.dtype.kind == "f" else v

        fake_ans = ans if op.reads_value("ans") else garbage(ans, 300)
        fake = [a if op.reads_value(n) else garbage(a, 301 + j) for j, (n, a) in enumerate(zip(op.args, args, strict=True))]
        for i in diff_args(op, args):
            g = rng(100 + i).normal(size=np.shape(ans))
            np.testing.assert_array_equal(op.vjp_for(i)(g, fake_ans, *fake, **kw), op.vjp_for(i)(g, ans, *args, **kw))


@pytest.mark.parametrize(("name", "args", "attrs"), CASES)
def test_forward_never_hands_back_an_argument_s_buffer(name, args, attrs):
    """The interpreter writes into a node's buffer when it owns one (Plan.memory): a
    forward that returned its argument itself (a leaf, say) would let it write into the user's array."""
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ans = op.forward(*args, **kw)
    for a in args:
        assert ans is not a
        if isinstance(ans, np.ndarray) and isinstance(a, np.ndarray) and ans.base is None:
            assert not np.shares_memory(ans, a)


@pytest.mark.parametrize(("name", "args", "attrs"), [c for c in CASES if OPS[c.values[0]].into])
def test_forward_into_writes_the_forward_result(name, args, attrs):
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ans = np.asarray(op.forward(*args, **kw))
        out = np.full_like(ans, 123)
        np.testing.assert_array_equal(op.forward(*args, out=out, **kw), ans)
    np.testing.assert_array_equal(out, ans)


@pytest.mark.parametrize(("name", "args", "attrs"), CASES)
def test_shape_rule_matches_forward(name, args, attrs):
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        ans = op.forward(*args, **kw)
    assert op.shape([aval(a) for a in args], **kw) == Aval(np.shape(ans), np.asarray(ans).dtype.name)


@pytest.mark.parametrize("dtype", ["int64", "bool"])
@pytest.mark.parametrize(("name", "args", "attrs"), CASES)
def test_shape_rule_on_int_and_bool_args_is_refusal_or_truth(name, args, attrs, dtype):
    """With the float args made int64 or bool, the shape rule either refuses them up front or
    says exactly the shape and dtype the forward then gives (no float16 from exp of a bool)."""
    keep = set(row(name).targets)  # float targets stay targets
    with np.errstate(all="ignore"):  # 1e300 as int64 is garbage, but an int64 all the same
        cast = [(np.round(a * 3).astype(np.int64) if dtype == "int64" else a > 0) if is_float(a) and i not in keep else a
                for i, a in enumerate(args)]
    op, kw = OPS[name], bind(name, cast, attrs)
    try:
        rule = op.shape([aval(a) for a in cast], **kw)
    except RuleError as e:
        assert dtype == "bool", f"{name} refuses int64 args: {e}"
        return
    with np.errstate(all="ignore"):
        ans = op.forward(*cast, **kw)
    assert rule == Aval(np.shape(ans), np.asarray(ans).dtype.name)


MIXED = ["float64", "float32", "int64", "bool"]


@pytest.mark.parametrize("name", sorted(OPS))
def test_shape_rule_on_mixed_dtypes_is_refusal_or_truth(name):
    """Every case with its array args in every mix of float64, float32, int64 and bool (numpy's
    promotion: float32 with int64 is float64, with bool float32; a constant makes ints float64):
    refused up front, or the dtype the forward gives."""
    op = OPS[name]
    for args, attrs in [*op.samples(), *row(name).extra]:
        # constants stay Python floats, and float targets keep their meaning
        floats = [i for i, a in enumerate(args) if is_float(a) and not is_const(a) and i not in row(name).targets]
        for combo in itertools.product(MIXED, repeat=len(floats)):
            cast = list(args)
            with np.errstate(all="ignore"):  # 1e300 as float32 or int64 is garbage, of the right dtype
                for i, dt in zip(floats, combo, strict=True):
                    cast[i] = args[i] > 0 if dt == "bool" else np.round(args[i] * 3).astype(dt) if dt == "int64" \
                        else args[i].astype(dt)
            kw = bind(name, cast, attrs)
            try:
                rule = op.shape([aval(a) for a in cast], **kw)
            except RuleError:
                continue
            with np.errstate(all="ignore"):
                ans = op.forward(*cast, **kw)
            assert rule == Aval(np.shape(ans), np.asarray(ans).dtype.name), f"{name} of {combo}"


def _fits_float32(*arrays):
    """No magnitude beyond float32's normal range (the log/exp/sqrt range cases)."""
    a = np.abs(np.concatenate([np.ravel(np.asarray(x, float)) for x in arrays]))
    return bool(np.all((a == 0) | ((a > 1e-30) & (a < 1e30))))


@pytest.mark.parametrize(("name", "args", "attrs"), [c for c in CASES if any(is_float(a) for a in c.values[1])])
def test_float32_in_float32_out(name, args, attrs):
    """float32 inputs: float32 value, VJPs and JVPs, close to the float64 reference."""
    op, kw = OPS[name], bind(name, args, attrs)
    with np.errstate(all="ignore"):
        args32 = [a.astype(np.float32) if is_float(a) and not is_const(a) else a for a in args]
        ans = op.forward(*args32, **kw)
        ref = row(name).ref(*args, **kw)
        assert np.asarray(ans).dtype == np.float32, f"{name} value is {np.asarray(ans).dtype}"
        assert op.shape([aval(a) for a in args32], **kw).dtype == "float32"
        if _fits_float32(ref, *args):
            assert_close(ans, ref, rtol=1e-4, what=f"{name} float32 value")
        for i in diff_args(op, args32):
            g = np.ones(np.shape(ans), np.float32)
            gi = unbroadcast(op.vjp_for(i)(g, ans, *args32, **kw), np.shape(args32[i]))
            assert np.asarray(gi).dtype == np.float32, f"{name} vjp of arg {i} is {np.asarray(gi).dtype}"
            t = np.ones(np.shape(args32[i]), np.float32)
            ti = op.jvp_for(i)(t, ans, *args32, **kw)
            assert np.asarray(ti).dtype == np.float32, f"{name} jvp of arg {i} is {np.asarray(ti).dtype}"


# --- conventions, with the numbers written out ---------------------------------------------------

def _vjp(name, i, args, g=None, **attrs):
    op, kw = OPS[name], bind(name, args, attrs)
    ans = op.forward(*args, **kw)
    g = np.ones(np.shape(ans)) if g is None else g
    return unbroadcast(op.vjp_for(i)(g, ans, *args, **kw), np.shape(args[i]))


def test_max_ties_split_the_gradient_evenly():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(_vjp("max", 0, [x], axis=1), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_array_equal(_vjp("max", 0, [x]), [[0, 0.5, 0.5], [0, 0, 0]])
    t = np.ones_like(x)
    np.testing.assert_array_equal(OPS["max"].jvp[0](t, np.max(x, 1), x, axis=1, keepdims=False), [1.0, 1.0])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_binary_ties_split_the_gradient_evenly(name):
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    gx, gy = _vjp(name, 0, [x, y]), _vjp(name, 1, [x, y])
    assert gx[0] == gy[0] == 0.5 and gx[2] == gy[2] == 0.5
    assert {gx[1], gy[1]} == {0.0, 1.0}
    # a broadcast scalar y collects its share from every element: two half-ties, and one win for maximum
    assert _vjp(name, 1, [np.array([2.0, 2.0, 1.0]), np.array(2.0)]) == {"maximum": 2.0, "minimum": 1.0}[name]


def test_relu_and_abs_have_gradient_zero_at_zero():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_vjp("relu", 0, [x]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(_vjp("abs", 0, [x]), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(_vjp("leaky_relu", 0, [x], alpha=0.1), [0.1, 0.1, 1.0])
    np.testing.assert_array_equal(OPS["relu"].jvp[0](np.ones(3), OPS["relu"].forward(x), x), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "softmax_cross_entropy", "sigmoid", "softplus",
                                  "tanh"])
def test_extreme_logits_stay_finite(name):
    op = OPS[name]
    x = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, -1000.0]])
    args = [x, np.array([2, 0, 1])] if name == "softmax_cross_entropy" else [x]
    kw = bind(name, args, {})
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # not even an intermediate overflow
        ans = op.forward(*args, **kw)
        g = np.ones(np.shape(ans))
        gx = unbroadcast(op.vjp[0](g, ans, *args, **kw), x.shape)
        tx = op.jvp[0](np.ones_like(x), ans, *args, **kw)
    for what, v in [("value", ans), ("vjp", gx), ("jvp", tx)]:
        assert np.all(np.isfinite(v)), f"{name} {what} is not finite: {v}"
    ref = row(name).ref(*args, **kw)
    assert_close(ans, ref, what=f"{name} value at extreme logits")


def test_extreme_values_named():
    """A few numbers known in closed form, so the references themselves are checked too."""
    assert OPS["softmax_cross_entropy"].forward(np.array([[1000.0, -1000.0]]), np.array([1]), axis=-1,
                                                reduction="mean") == 2000.0
    assert OPS["logsumexp"].forward(np.array([1000.0, 1000.0]), axis=None, keepdims=False) == 1000.0 + np.log(2)
    np.testing.assert_allclose(OPS["sigmoid"].forward(np.array([-40.0])), np.exp(-40) / (1 + np.exp(-40)), rtol=1e-15)
    np.testing.assert_allclose(OPS["softplus"].forward(np.array([-40.0])), np.log1p(np.exp(-40)), rtol=1e-15)
    # the slopes in the tails, relative to the closed forms (1 - s(x))**2 cancels there
    x = np.array([-50.0, -37.0, 20.0, 37.0, 50.0])
    e = np.exp(-np.abs(x))
    np.testing.assert_allclose(_vjp("sigmoid", 0, [x]), e / (1 + e) ** 2, rtol=1e-14)
    np.testing.assert_allclose(_vjp("tanh", 0, [x / 2]), 1 / np.cosh(x / 2) ** 2, rtol=1e-13)
    np.testing.assert_allclose(_vjp("expm1", 0, [-x]), np.exp(-x), rtol=1e-15)  # not expm1(x) + 1, which cancels


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "hinge"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_one_hot_float_targets_equal_integer_labels(name, reduction):
    op = OPS[name]
    s, y = _n(6, 4, seed=60, scale=2), _labels((6,), 4, seed=61)
    kw = bind(name, [s, y], {"reduction": reduction})
    t = one_hot(y, 4, -1)
    assert_close(op.forward(s, t, **kw), op.forward(s, y, **kw))
    g = np.ones(np.shape(op.forward(s, y, **kw)))
    assert_close(op.vjp[0](g, None, s, t, **kw), op.vjp[0](g, None, s, y, **kw))


def test_hinge_matches_the_lecture_table():
    """The seed lecture's multiclass SVM example: losses 2.9, 0 and 12.9 (the slide's 10.9 is a slip)."""
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # cat, car, frog examples
    labels = np.array([0, 1, 2])
    per = OPS["hinge"].forward(scores, labels, axis=-1, margin=1.0, reduction="none")
    np.testing.assert_allclose(per, [2.9, 0.0, 12.9], rtol=1e-12)
    assert OPS["hinge"].forward(scores, labels, axis=-1, margin=1.0, reduction="mean") == pytest.approx(5.27, abs=0.005)


def test_cross_entropy_matches_the_lecture_softmax_example():
    p = OPS["softmax"].forward(np.array([3.2, 5.1, -1.7]), axis=-1)
    np.testing.assert_allclose(p, [0.13, 0.87, 0.00], atol=0.005)
    loss = OPS["softmax_cross_entropy"].forward(np.array([3.2, 5.1, -1.7]), np.array(0), axis=-1, reduction="mean")
    assert loss == pytest.approx(2.04, abs=0.005)


def test_integer_labels_get_no_gradient():
    s, y = _n(4, 3, seed=62), np.array([0, 2, 1, 1])
    for name in ("softmax_cross_entropy", "hinge"):
        op = OPS[name]
        kw = bind(name, [s, y], {})
        vjp = op.vjp_for(1)
        assert vjp is None or vjp(np.ones(()), op.forward(s, y, **kw), s, y, **kw) is None


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "hinge"])
@pytest.mark.parametrize("labels", ["int", "float"])
def test_masked_classes_with_minus_inf_logits(name, labels):
    """A class masked out with a -inf logit (and no target weight) is as if it were not there: the
    loss and the other gradients are those of the logits without it, and finite (PyTorch agrees
    for integer labels; a one-hot product would give 0 * -inf = nan)."""
    x = _n(4, 5, seed=65, scale=2)
    y = np.array([0, 2, 4, 2])
    x[:, 1] = -np.inf
    kept = [0, 2, 3, 4]
    y_kept = np.array([0, 1, 3, 1])
    yy, yy_kept = (y, y_kept) if labels == "int" else (one_hot(y, 5, -1), one_hot(y_kept, 4, -1))
    op = OPS[name]
    kw = bind(name, [x, yy], {})
    with np.errstate(invalid="ignore"):  # where() masks the 0 * -inf it computed
        ans = op.forward(x, yy, **kw)
        g = op.vjp[0](np.ones(()), ans, x, yy, **kw)
    assert np.isfinite(ans) and np.all(np.isfinite(g))
    assert_close(ans, row(name).ref(x[:, kept], yy_kept, **kw))
    np.testing.assert_array_equal(g[:, 1], 0.0)
    back, _ = make_vjp(lambda a: row(name).ref(a, yy_kept, **kw))(x[:, kept])
    assert_close(g[:, kept], back(np.ones(())))


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "softmax_cross_entropy"])
@pytest.mark.parametrize("layout", ["fortran", "strided", "int64"])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_class_axis_ops_read_any_layout(name, layout, axis):
    """These ops work on a class-first copy of their input (ops/reductions.py `class_first`):
    a Fortran-ordered, a strided or an integer input must give autograd's values and VJPs."""
    base = _n(4, 6, 5, seed=70, scale=3)
    x = {"fortran": np.asfortranarray(base), "strided": _n(4, 12, 5, seed=70, scale=3)[:, ::-2],
         "int64": np.round(base).astype(np.int64)}[layout]
    per = tuple(d for i, d in enumerate(x.shape) if i != axis % 3)
    args = [x, _labels(per, x.shape[axis], seed=71)] if name == "softmax_cross_entropy" else [x]
    attrs = {"axis": axis} if name != "logsumexp" else {"axis": axis, "keepdims": axis == 1}
    op, kw = OPS[name], bind(name, args, attrs)
    ans = op.forward(*args, **kw)
    assert_close(ans, row(name).ref(*args, **kw), what=f"{name} value")
    if layout != "int64":
        g = rng(72).normal(size=np.shape(ans))
        back, _ = make_vjp(lambda a: row(name).ref(a, *args[1:], **kw))(x)
        assert_close(unbroadcast(op.vjp[0](g, ans, *args, **kw), x.shape), back(g), what=f"{name} vjp")


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "hinge"])
def test_float_targets_get_a_gradient(name):
    """Float targets are a float arg like any other: a VJP and a JVP (checked against autograd above)."""
    op = OPS[name]
    assert op.vjp_for(1) is not None and op.jvp_for(1) is not None
    s, t = _n(4, 3, seed=63, scale=2), _probs(4, 3, seed=64)
    kw = bind(name, [s, t], {})
    assert np.any(op.vjp_for(1)(np.ones(()), op.forward(s, t, **kw), s, t, **kw) != 0)


def test_label_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        OPS["softmax_cross_entropy"].forward(_n(2, 3), np.array([0, 3]), axis=-1, reduction="mean")


BAD = [  # (op, arg shapes or declarations, attrs, the located message)
    ("squeeze", [[2, 3]], {"axis": 1}, "nodes.n: squeeze: axis 1 of (2, 3) has size 3, not 1"),
    ("expand_dims", [[2, 3]], {}, "nodes.n: expand_dims needs attr 'axis'"),
    ("slice", [[4]], {"slices": [[0, 3, 0]]}, "nodes.n: slices[0]: step must not be 0"),
    ("slice", [[4]], {"slices": [[0, 3], [1, 2]]}, "nodes.n: slice: 2 slices for the 1 axes of (4,)"),
    ("slice", [[4]], {"slices": [0, 3]}, "nodes.n.attrs.slices: slice attr 'slices' must be a list with one [start, stop]"),
    ("clip", [[3]], {"min": 2, "max": 1}, "nodes.n: clip: min 2 is greater than max 1"),
    ("clip", [[3]], {"min": "a"}, "nodes.n.attrs.min: clip attr 'min' must be a number or null, got \"a\""),
    ("var", [[3]], {"ddof": 3}, "nodes.n: var: ddof 3 leaves no degrees of freedom: 3 element(s) per reduction"),
    ("std", [[3]], {"ddof": -1}, "nodes.n: std: ddof must be >= 0, got -1"),
    ("stack", [[2, 3], [3, 2]], {}, "nodes.n: stack needs args of one shape, got (2, 3), (3, 2)"),
    ("conv2d", [[1, 2, 5, 5], [3, 1, 3, 3]], {}, "nodes.n: conv2d: x has 2 channels but w (3, 1, 3, 3) takes 1 per group"),
    ("conv2d", [[1, 1, 5, 5], [3, 1, 3, 3], [2]], {}, "nodes.n: conv2d needs the bias b of shape (3,)"),
    ("conv2d", [[1, 1, 2, 2], [3, 1, 3, 3]], {}, "nodes.n: conv2d: the kernel spans 3 but the padded input is 2 wide"),
    ("conv2d", [[1, 1, 5, 5], [3, 1, 3, 3]], {"stride": 0}, "nodes.n: conv2d: stride must be >= 1, got [0, 0]"),
    ("conv2d", [[1, 1, 5, 5], [3, 1, 3, 3]], {"stride": [1, 2, 3]},
     "nodes.n.attrs.stride: conv2d attr 'stride' must be an integer or a list [h, w] of two integers"),
    ("conv2d", [[1, 4, 5, 5], [3, 2, 3, 3]], {"groups": 2}, "nodes.n: conv2d: 3 output channels do not split into 2 groups"),
    ("conv2d", [[1, 5, 5], [3, 1, 3, 3]], {}, "nodes.n: conv2d needs x of rank 4 (N, C, H, W), got (1, 5, 5)"),
    ("conv2d", [[1, 1, 5, 5]], {}, "nodes.n: conv2d takes 2 or 3 args (x, w and an optional bias b), got 1"),
    ("max_pool2d", [[1, 1, 4, 4]], {}, "nodes.n: max_pool2d needs attr 'kernel'"),
    ("max_pool2d", [[1, 1, 4, 4]], {"kernel": 2, "padding": 2}, "nodes.n: max_pool2d: padding [2, 2] must be at most half"),
    ("one_hot", [{"shape": [3], "dtype": "int64"}], {}, "nodes.n: one_hot needs attr 'num_classes'"),
    ("one_hot", [[3]], {"num_classes": 3}, "nodes.n: one_hot: labels must be an int64 input or node, got float64"),
    ("where", [[3], [3], [3]], {}, "nodes.n: where: cond must be a bool or int64 input or node"),
    ("take", [[3], [2]], {}, "nodes.n: take: indices must be an int64 input or node, got float64"),
]


@pytest.mark.parametrize(("op", "decls", "attrs", "message"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_uses_of_the_new_ops_are_located_errors(op, decls, attrs, message):
    import graphspec

    inputs = {f"a{i}": d if isinstance(d, dict) else {"shape": d} for i, d in enumerate(decls)}
    spec = {"graphspec": "1", "inputs": inputs, "nodes": {"n": {"op": op, "args": list(inputs), "attrs": attrs}}}
    with pytest.raises(graphspec.SpecError) as e:
        graphspec.load(spec)
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize(("op", "inputs", "attrs", "message"), [
    ("take", {"x": {"value": [1.0, 2.0, 3.0]}, "i": {"value": [0, 3], "dtype": "int64"}}, {},
     "nodes.n: take failed: index 3 is out of range for axis 0 of size 3 (-3..2)"),
    ("take", {"x": {"value": [[1.0, 2.0]]}, "i": {"value": [-3], "dtype": "int64"}}, {"axis": 1},
     "nodes.n: take failed: index -3 is out of range for axis 1 of size 2 (-2..1)"),
    ("one_hot", {"y": {"value": [0, 5], "dtype": "int64"}}, {"num_classes": 3},
     "nodes.n: one_hot failed: label 5 is out of range for 3 classes (0..2)")])
def test_out_of_range_indices_are_located_errors_when_they_run(op, inputs, attrs, message):
    import graphspec

    g = graphspec.load({"graphspec": "1", "inputs": inputs, "nodes": {"n": {"op": op, "args": list(inputs), "attrs": attrs}}})
    with pytest.raises(graphspec.InputError) as e:
        g.run()
    assert str(e.value) == message


# --- PyTorch (in the test extra: a missing torch fails here, it is not skipped) ---------------

def _torch():
    import torch  # lazily: a second of import time the rest of this file does not need
    return torch


def _torch_value_and_grad(fn, *arrays):
    torch = _torch()
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


TORCH_CASES = [pytest.param(name, *case, id=f"{name}-{i}") for name in sorted(ROWS) for i, case in
               enumerate(ROWS[name].torch_cases)]


@pytest.mark.parametrize(("name", "args", "attrs", "tfn"), TORCH_CASES)
def test_value_vjp_and_jvp_against_torch_cases(name, args, attrs, tfn):
    """The rows' torch cases, each against a torch function of its own, in float64: the value,
    every float arg's VJP for a random cotangent (torch.autograd.grad) and JVP for a random
    tangent (torch.func.jvp), at rtol 1e-10."""
    torch = _torch()
    op, kw = OPS[name], bind(name, args, attrs)
    ans = op.forward(*args, **kw)
    ts = [torch.tensor(a, requires_grad=is_float(a)) for a in args]
    out = tfn(*ts)
    assert_close(ans, out.detach().numpy(), what=f"{name} value")
    floats = diff_args(op, args)
    if not floats:
        return
    u = rng(50).normal(size=np.shape(ans))
    grads = torch.autograd.grad(out, [ts[i] for i in floats], torch.tensor(u))
    for i, ref in zip(floats, grads, strict=True):
        ours = unbroadcast(op.vjp_for(i)(u, ans, *args, **kw), np.shape(args[i]))
        assert_close(ours, ref.numpy(), what=f"{name} vjp of arg {i}")
    for i in floats:
        t = rng(60 + i).normal(size=np.shape(args[i]))

        def along(a, i=i):
            return tfn(*[a if j == i else x.detach() for j, x in enumerate(ts)])

        try:
            _, ref = torch.func.jvp(along, (ts[i].detach(),), (torch.tensor(t),))
        except NotImplementedError as e:  # multi_margin_loss: torch has no forward mode (autograd checks ours)
            assert "forward AD" in str(e), e
            continue
        ours = np.broadcast_to(op.jvp_for(i)(t, ans, *args, **kw), np.shape(ans))
        assert_close(ours, ref.numpy(), what=f"{name} jvp of arg {i}")


def test_torch_batched_matmul_and_mse():
    torch = _torch()
    a, b, c = _n(2, 1, 3, 4, seed=76), _n(5, 4, 2, seed=77), _n(2, 5, 3, 2, seed=78)
    v, (ga, gb) = _torch_value_and_grad(lambda s, t: torch.nn.functional.mse_loss(s @ t, torch.tensor(c)), a, b)
    op, mse = OPS["matmul"], OPS["mse"]
    p = op.forward(a, b)
    loss = mse.forward(p, c, reduction="mean")
    gp = mse.vjp[0](np.ones(()), loss, p, c, reduction="mean")
    assert_close(loss, v)
    assert_close(unbroadcast(op.vjp[0](gp, p, a, b), a.shape), ga)
    assert_close(unbroadcast(op.vjp[1](gp, p, a, b), b.shape), gb)


def test_binary_cross_entropy_of_a_json_number_and_float32_targets_is_float32():
    """Found by tests/test_properties.py: the logit 0.5 made the loss float64, its shape rule said float32."""
    import graphspec

    for args in ([0.5, "y"], ["y", 0.5]):
        g = graphspec.load({"graphspec": "1", "inputs": {"y": {"value": [0.3, 0.9], "dtype": "float32"}},
                            "nodes": {"b": {"op": "binary_cross_entropy", "args": args}}})
        assert g.avals["b"].dtype == "float32" and np.asarray(g.run()["b"]).dtype == np.float32, args


def test_stack_of_a_float32_arg_and_a_json_number_is_float32():
    """Found by tests/test_properties.py: np.stack made 0.5 a float64 array, so the result was float64."""
    import graphspec

    g = graphspec.load({"graphspec": "1", "inputs": {"x": {"value": 1.5, "dtype": "float32"}},
                        "nodes": {"s": {"op": "stack", "args": ["x", 0.5]}}})
    out = g.run()["s"]
    assert g.avals["s"].dtype == "float32" and out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.5, 0.5])

