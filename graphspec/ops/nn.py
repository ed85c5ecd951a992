"""softmax, log_softmax, one_hot and the losses: mse, softmax_cross_entropy and binary_cross_entropy
(from logits), hinge, l2.

Everything goes through log-sum-exp (or log1p(exp(-|z|))), so no logit overflows and no log of a rounded-to-zero
probability is taken. Losses reduce the per-example values with `reduction` = mean (over
examples, PyTorch's default), sum or none.
"""

from __future__ import annotations

import math

import numpy as np

from . import batching
from .elementwise import _sigmoid
from .reductions import class_first, exp_shifted, shifted
from .registry import (
    SYMMETRIC,
    WEAK,
    Attr,
    Aval,
    RuleError,
    broadcast_shapes,
    check_axis,
    defop,
    float_dtype,
    fmt_shape,
    is_float,
    no_bool,
)

REDUCTION = Attr("enum", "mean", choices=("mean", "sum", "none"),
                 doc="mean or sum of the losses, or none to keep each one")
SOFTMAX_AXIS = Attr("axis", -1, doc="the axis the probabilities sum to 1 along")
CLASS_AXIS = Attr("axis", -1, doc="the class axis of the scores")


def log_softmax(x, *, axis=-1):
    xt, back = class_first(x, axis)
    xt, _ = shifted(xt)
    np.subtract(xt, np.log(np.exp(xt).sum(axis=0)), out=xt)
    return np.ascontiguousarray(xt.transpose(back))


def _softmax_first(x, axis):
    """softmax with the class axis first (see `class_first`), and the axes that move it back."""
    xt, back = class_first(x, axis)
    e, _ = exp_shifted(xt)
    e /= e.sum(axis=0)
    return e, back


def softmax(x, *, axis=-1):
    e, back = _softmax_first(x, axis)
    return np.ascontiguousarray(e.transpose(back))


def _softmax_shape(avals: list[Aval], *, axis) -> Aval:
    no_bool(*avals)
    shape, dtype = avals[0]
    if shape is not None:
        check_axis(axis, len(shape))
    return Aval(shape, float_dtype(dtype))


def _softmax_vjp(g, ans, x, *, axis):
    # J = diag(s) - s s^T is symmetric, so this is the JVP too
    return ans * (g - np.sum(g * ans, axis=axis, keepdims=True))


def _samples_axis():
    r = np.random.default_rng(7)
    return [([r.normal(size=(3, 4))], {}), ([r.normal(size=(3, 4))], {"axis": 0}),
            ([r.normal(size=(2, 3, 4)) * 10], {"axis": 1}), ([r.normal(size=(5,))], {})]


defop("softmax", softmax, batch=batching.class_axis, shape=_softmax_shape, args=("x",), attrs={"axis": SOFTMAX_AXIS},
      vjp=(_softmax_vjp,), jvp=SYMMETRIC,
      rules=("ans ⊙ (g - sum(g ⊙ ans))",),
      doc="exp(x) / sum(exp(x)) along axis, max-shifted", samples=_samples_axis)

defop("log_softmax", log_softmax, batch=batching.class_axis, shape=_softmax_shape, args=("x",), attrs={"axis": SOFTMAX_AXIS},
      vjp=(lambda g, ans, x, *, axis: g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True),),
      jvp=(lambda t, ans, x, *, axis: t - np.sum(np.exp(ans) * t, axis=axis, keepdims=True),),
      rules=("g - softmax(x) ⊙ sum(g)",),
      doc="x - logsumexp(x) along axis", samples=_samples_axis)


# --- losses ------------------------------------------------------------------------------------

def _reduce(per, reduction):
    if reduction == "mean":  # np.mean's own sum and division, without its Python-level checks
        return np.add.reduce(per, axis=None) / per.size if per.size else np.mean(per)
    if reduction == "sum":
        return np.sum(per)
    return per


def _per_example(g, per_shape, reduction, broadcast=True):
    """The cotangent of each per-example loss, given the cotangent of the reduced loss (with
    ``broadcast=False``, a reduced loss's one value, left for the caller's product to broadcast)."""
    if reduction == "none":
        return g
    if reduction == "mean":
        g = g / max(int(math.prod(per_shape)), 1)  # a Python int: float32 stays float32
    return np.broadcast_to(g, per_shape) if broadcast else g


def _integer(labels) -> bool:
    return np.asarray(labels).dtype.kind != "f"


def _checked(labels, n):
    labels = np.asarray(labels)
    # as unsigned, a negative label is huge: one max checks both ends of the range
    unsigned = labels.view(f"u{labels.itemsize}") if labels.dtype.kind == "i" else labels
    if labels.size and (unsigned.max() >= n or (labels.dtype.kind not in "iu" and labels.min() < 0)):
        bad = labels[(labels < 0) | (labels >= n)].flat[0]
        raise ValueError(f"label {bad} is out of range for {n} classes (0..{n - 1})")
    return labels


def _picked(x, labels, axis):
    """x at each example's label, the class axis kept with size 1: a gather, so a -inf logit of
    another class (a masked class) is never multiplied by a one-hot 0 into nan."""
    return np.take_along_axis(x, np.expand_dims(_checked(labels, np.shape(x)[axis]), axis), axis)


def _weighted(t, x):
    """t * x, and 0 where t is 0 even if x is -inf (0 log 0 = 0, as in an entropy)."""
    return np.where(t == 0, 0, t * x)


def _onehot(labels, like, axis):
    """One-hot of integer labels (a float array shaped like the logits), after a range check."""
    labels = _checked(labels, np.shape(like)[axis])
    oh = np.zeros(np.shape(like), dtype=np.result_type(like, np.float32))
    np.put_along_axis(oh, np.expand_dims(labels, axis), 1, axis)
    return oh


def _targets(labels, logits, axis):
    return _onehot(labels, logits, axis) if _integer(labels) else labels


def _class_loss_shape(name: str):
    def rule(avals: list[Aval], *, axis, reduction, **_) -> Aval:
        (ls, ldt), (ys, ydt) = avals
        dtype = float_dtype(ldt, ydt) if is_float(ydt) else float_dtype(ldt)  # float targets promote
        if ydt == "bool":
            raise RuleError(f"{name}: labels must be int64 class indices or float targets, got bool")
        if ydt == WEAK:  # a JSON number is read as a float: class 1 would be taken for a target of 1.0
            raise RuleError(f"{name}: labels must be an input or a node (int64 class indices or float targets), "
                            "not a number in args")
        no_bool(avals[0])
        if ls is None:
            return Aval(None if reduction == "none" else (), dtype)
        if len(ls) == 0:
            raise RuleError(f"{name} needs logits of rank >= 1 (a class axis), got a scalar")
        ax = check_axis(axis, len(ls))
        per = ls[:ax] + ls[ax + 1:]
        if ys is not None:
            want = ls if is_float(ydt) else per
            if len(ys) != len(want) or any(a != b and isinstance(a, int) and isinstance(b, int)
                                           for a, b in zip(ys, want, strict=False)):
                kind = "float targets must have the logits' shape" if is_float(ydt) else \
                    "integer labels must have the logits' shape without the class axis"
                # float labels shaped as class indices would be: the input lacks "dtype": "int64"
                hint = " (class labels? declare the input with \"dtype\": \"int64\")" \
                    if is_float(ydt) and len(ys) == len(per) else ""
                raise RuleError(f"{name}: {kind} {fmt_shape(want)}, got labels {fmt_shape(ys)}{hint}")
        return Aval(per if reduction == "none" else (), dtype)
    return rule


def _per_shape(logits, axis):
    shape = np.shape(logits)
    ax = axis % len(shape)
    return shape[:ax] + shape[ax + 1:]


def _label_cells(labels, classes_first):
    """Index of each example's label in ``classes_first`` (class axis first) seen as
    (classes, examples): labels of any rank, one fancy index."""
    labels = _checked(labels, classes_first.shape[0])
    flat = classes_first.reshape(classes_first.shape[0], -1)
    return flat, (labels.reshape(-1), np.arange(flat.shape[1]))


def _xent(logits, labels, *, axis, reduction):
    if _integer(labels):  # logsumexp - the label's logit: no log_softmax of the other classes
        xt, _ = class_first(logits, axis)
        flat, cells = _label_cells(labels, xt)
        picked = flat[cells].reshape(np.shape(labels))
        e, m = exp_shifted(xt)
        # log(sum) - (picked - m): the label's shifted logit, exact where it is the max; log(sum) + m - picked
        # rounded a small loss at m's scale (e^-20 next to logits of 1e4 lost 4 digits)
        return _reduce(np.log(e.sum(axis=0)) - (picked - m), reduction)
    return _reduce(-np.sum(_weighted(labels, log_softmax(logits, axis=axis)), axis=axis), reduction)


def _xent_dlogits_first(logits, labels, axis):
    """d(per-example loss)/d logits = softmax * sum(targets) - targets, with the class axis
    first (see `class_first`), and the axes that move it back."""
    d, back = _softmax_first(logits, axis)
    if _integer(labels):  # softmax - one_hot, written in place: no one-hot array
        flat, cells = _label_cells(labels, d)
        flat[cells] -= 1
        return d, back
    t = np.moveaxis(labels, axis, 0)  # float targets may be float64 under float32 logits: no in place
    return d * np.sum(t, axis=0) - t, back


def _xent_dlogits(logits, labels, axis):
    d, back = _xent_dlogits_first(logits, labels, axis)
    return d.transpose(back)


def _xent_vjp_logits(g, ans, logits, labels, *, axis, reduction):
    d, back = _xent_dlogits_first(logits, labels, axis)
    # the per-example cotangents broadcast over the leading class axis as they are
    pe = _per_example(g, _per_shape(logits, axis), reduction, broadcast=False)
    if np.result_type(d, pe) == d.dtype:
        d *= pe
    else:
        d = d * pe
    return d.transpose(back)


def _xent_vjp_labels(g, ans, logits, labels, *, axis, reduction):
    if _integer(labels):
        return None
    return -np.expand_dims(_per_example(g, _per_shape(logits, axis), reduction), axis) * log_softmax(logits, axis=axis)


def _xent_samples():
    r = np.random.default_rng(8)
    logits = r.normal(size=(4, 3)) * 2
    p = np.exp(r.normal(size=(4, 3)))
    return [([logits, np.array([0, 2, 1, 2])], {}), ([logits, np.array([1, 1, 0, 2])], {"reduction": "sum"}),
            ([logits, np.array([2, 0, 1, 1])], {"reduction": "none"}),
            ([logits.T.copy(), np.array([0, 2, 1, 2])], {"axis": 0}),
            ([logits, p / p.sum(-1, keepdims=True)], {}),
            ([r.normal(size=(2, 3, 5)), np.array([[0, 4, 1], [2, 3, 3]])], {"axis": -1})]


defop("softmax_cross_entropy", _xent, batch=batching.class_loss, shape=_class_loss_shape("softmax_cross_entropy"),
      args=("logits", "labels"),
      attrs={"axis": CLASS_AXIS, "reduction": REDUCTION},
      vjp=(_xent_vjp_logits, _xent_vjp_labels),
      jvp=(lambda t, ans, logits, labels, *, axis, reduction:
           _reduce(np.sum(t * _xent_dlogits(logits, labels, axis), axis=axis), reduction),
           lambda t, ans, logits, labels, *, axis, reduction:
           _reduce(-np.sum(t * log_softmax(logits, axis=axis), axis=axis), reduction)),
      classes=lambda *, axis, reduction: axis,
      rules=("g ⊙ (softmax(logits) - one_hot(labels))", "-g ⊙ log_softmax(logits)"),
      doc="-sum(targets * log_softmax(logits)); labels: int classes or float targets",
      samples=_xent_samples)


def _hinge_parts(scores, labels, axis, margin):
    """Targets t, the margins s_j - s_y + margin, and which of them are active (> 0, j != y)."""
    t = _targets(labels, scores, axis)
    s_y = _picked(scores, labels, axis) if _integer(labels) else np.sum(_weighted(t, scores), axis=axis, keepdims=True)
    m = scores - s_y + margin
    return t, m, (m > 0) * (1 - t)


def _hinge(scores, labels, *, axis, margin, reduction):
    """Float targets t: sum_j (1 - t_j) max(0, s_j - sum_k t_k s_k + margin), the same for one-hot t."""
    t, m, _ = _hinge_parts(scores, labels, axis, margin)
    return _reduce(np.sum((1 - t) * np.maximum(m, 0), axis=axis), reduction)


def _hinge_dscores(scores, labels, axis, margin):
    t, _, active = _hinge_parts(scores, labels, axis, margin)
    return active - t * np.sum(active, axis=axis, keepdims=True)


def _hinge_dlabels(scores, labels, axis, margin):
    """d(per-example loss)/d targets, for float targets: -max(0, m_k) - s_k * (number active)."""
    _, m, active = _hinge_parts(scores, labels, axis, margin)
    return -np.maximum(m, 0) - scores * np.sum(active, axis=axis, keepdims=True)


def _hinge_vjp(g, ans, scores, labels, *, axis, margin, reduction):
    per_shape = tuple(np.delete(np.shape(scores), axis % np.ndim(scores)))
    return np.expand_dims(_per_example(g, per_shape, reduction), axis) * _hinge_dscores(scores, labels, axis, margin)


def _hinge_vjp_labels(g, ans, scores, labels, *, axis, margin, reduction):
    if _integer(labels):
        return None
    per_shape = tuple(np.delete(np.shape(scores), axis % np.ndim(scores)))
    return np.expand_dims(_per_example(g, per_shape, reduction), axis) * _hinge_dlabels(scores, labels, axis, margin)


def _hinge_samples():
    r = np.random.default_rng(9)
    s = r.normal(size=(4, 3)) * 2
    return [([s, np.array([0, 2, 1, 2])], {}), ([s, np.array([1, 1, 0, 2])], {"reduction": "sum", "margin": 0.5}),
            ([s.T.copy(), np.array([0, 2, 1, 2])], {"axis": 0, "reduction": "none"})]


defop("hinge", _hinge, batch=batching.class_loss, shape=_class_loss_shape("hinge"), args=("scores", "labels"),
      attrs={"axis": CLASS_AXIS, "reduction": REDUCTION,
             "margin": Attr("float", 1.0, doc="the margin by which s_y must beat every other score")},
      vjp=(_hinge_vjp, _hinge_vjp_labels),
      jvp=(lambda t, ans, scores, labels, *, axis, margin, reduction:
           _reduce(np.sum(t * _hinge_dscores(scores, labels, axis, margin), axis=axis), reduction),
           lambda t, ans, scores, labels, *, axis, margin, reduction:
           _reduce(np.sum(t * _hinge_dlabels(scores, labels, axis, margin), axis=axis), reduction)),
      kink=lambda ans, scores, labels, *, axis, margin, reduction: _hinge_parts(scores, labels, axis, margin)[2],
      classes=lambda *, axis, margin, reduction: axis,
      rules=("g ⊙ (1 at each j with s_j - s_y + margin > 0, minus their count at y)", ""),
      doc="multiclass SVM: sum over j != y of max(0, s_j - s_y + margin); a kink at the margin",
      samples=_hinge_samples)


def _mse_shape(avals: list[Aval], *, reduction) -> Aval:
    no_bool(*avals)
    shape = broadcast_shapes(avals[0].shape, avals[1].shape)
    return Aval(shape if reduction == "none" else (), float_dtype(avals[0].dtype, avals[1].dtype))


def _mse(pred, target, *, reduction):
    d = np.subtract(pred, target)
    if not np.issubdtype(d.dtype, np.floating):
        d = d.astype(np.float64)  # the shape rule says float, whatever the reduction
    return _reduce(np.square(d), reduction)


def _mse_vjp(sign):
    def vjp(g, ans, pred, target, *, reduction):
        d = np.subtract(pred, target)
        return sign * 2 * _per_example(g, np.shape(d), reduction) * d
    return vjp


def _mse_jvp(sign):
    def jvp(t, ans, pred, target, *, reduction):
        return _reduce(sign * 2 * np.subtract(pred, target) * t, reduction)
    return jvp


def _mse_samples():
    r = np.random.default_rng(10)
    return [([r.normal(size=(4, 3)), r.normal(size=(4, 3))], {}),
            ([r.normal(size=(5,)), r.normal(size=(5,))], {"reduction": "sum"}),
            ([r.normal(size=(2, 3)), r.normal(size=(3,))], {"reduction": "none"})]


defop("mse", _mse, batch=batching.loss, shape=_mse_shape, args=("pred", "target"), attrs={"reduction": REDUCTION},
      vjp=(_mse_vjp(1), _mse_vjp(-1)), jvp=(_mse_jvp(1), _mse_jvp(-1)),
      rules=("g ⊙ 2 (pred - target) / n", "-g ⊙ 2 (pred - target) / n"),
      doc="(pred - target)**2, reduced (mean over every element by default)", samples=_mse_samples)


def _l2_samples():
    r = np.random.default_rng(11)
    return [([r.normal(size=(3, 4))], {}), ([r.normal(size=())], {})]


def _l2(w):
    if not np.issubdtype(np.result_type(w), np.floating):
        w = np.asarray(w, dtype=np.float64)  # the shape rule says float: ints square in float64
    return np.sum(np.square(w))


def _l2_shape(avals: list[Aval]) -> Aval:
    no_bool(*avals)
    return Aval((), float_dtype(avals[0].dtype))


defop("l2", _l2, shape=_l2_shape,
      args=("w",), vjp=(lambda g, ans, w: 2 * g * w,), jvp=(lambda t, ans, w: 2 * np.sum(w * t),),
      rules=("g ⊙ 2 x",),
      doc="sum of squares (the regulariser R(W))", samples=_l2_samples)


# --- one_hot, binary_cross_entropy -------------------------------------------------------------

def _one_hot_shape(avals: list[Aval], *, num_classes, dtype) -> Aval:
    shape, ldt = avals[0]
    if ldt != "int64":
        raise RuleError(f"one_hot: labels must be an int64 input or node, got {'a number in args' if ldt == WEAK else ldt}")
    if num_classes is None:
        raise RuleError("one_hot needs attr 'num_classes'")
    if num_classes < 1:
        raise RuleError(f"num_classes must be >= 1, got {num_classes}")
    return Aval(None if shape is None else (*shape, num_classes), dtype)


def _one_hot(labels, *, num_classes, dtype):
    labels = _checked(labels, num_classes)
    return np.equal(np.expand_dims(labels, -1), np.arange(num_classes)).astype(dtype)


def _one_hot_samples():
    return [([np.array([0, 2, 1, 2])], {"num_classes": 3}), ([np.array([[1, 0], [3, 3]])], {"num_classes": 4}),
            ([np.array(1)], {"num_classes": 2, "dtype": "float32"})]


defop("one_hot", _one_hot, shape=_one_hot_shape, args=("labels",), vjp=(None,), jvp=(None,),
      attrs={"num_classes": Attr("int", None, doc="the number of classes (required)"),
             "dtype": Attr("enum", "float64", choices=("float64", "float32"), doc="the result's float type")},
      doc="int64 labels -> a float one-hot, the classes on a new last axis; attrs num_classes (required) and "
          "dtype (float64 or float32); labels out of 0..num_classes-1 are an error when it runs; no gradient",
      samples=_one_hot_samples)


def _bce_per(z, y):
    """max(z, 0) - z y + log(1 + e^-|z|): no overflow for any logit, and no log of a rounded 0."""
    # z an array of the result's float type first: np.maximum of a JSON number is a strong
    # float64 scalar, which made a float32 y's loss float64 against its float32 shape rule
    z = np.asarray(z, dtype=np.result_type(z, y, 0.0))  # 0.0: two JSON numbers give float64
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def _bce(z, y, *, reduction):
    return _reduce(_bce_per(z, y), reduction)  # _bce_per is float whatever z and y are


def _bce_vjp_z(g, ans, z, y, *, reduction):
    d = _sigmoid(z) - y
    return _per_example(g, np.shape(d), reduction) * d


def _bce_vjp_y(g, ans, z, y, *, reduction):
    d = -np.broadcast_to(z, np.broadcast_shapes(np.shape(z), np.shape(y)))
    return _per_example(g, np.shape(d), reduction) * d


def _bce_samples():
    r = np.random.default_rng(22)
    z = r.normal(size=(4, 3)) * 3
    return [([z, (r.uniform(size=(4, 3)) > 0.5) * 1.0], {}), ([z, r.uniform(size=(4, 3))], {"reduction": "sum"}),
            ([z, r.uniform(size=(3,))], {"reduction": "none"}),
            ([np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), np.array([1.0, 0.0, 0.5, 1.0, 0.0])], {})]


defop("binary_cross_entropy", _bce, batch=batching.loss, shape=_mse_shape, args=("logits", "targets"),
      attrs={"reduction": REDUCTION}, vjp=(_bce_vjp_z, _bce_vjp_y),
      jvp=(lambda t, ans, z, y, *, reduction: _reduce(t * (_sigmoid(z) - y), reduction),
           lambda t, ans, z, y, *, reduction: _reduce(-z * t, reduction)),
      rules=("g ⊙ (sigmoid(logits) - targets)", "-g ⊙ logits"),
      doc="from logits z and targets y in [0, 1] (broadcasting): max(z, 0) - z y + log1p(exp(-|z|)), stable for "
          "any z (torch's binary_cross_entropy_with_logits); reduced (mean over every element by default); "
          "d/dz = sigmoid(z) - y, d/dy = -z", samples=_bce_samples)
