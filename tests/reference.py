"""Independent reference implementations of graphspec's ops, in HIPS autograd's numpy.

The building blocks of the `ref` functions of tests/optable.py's rows (one-liners live in
the rows themselves). Each is written from FORMAT.md (and numpy's documented semantics), not from
graphspec's code: autograd differentiates these, and the tests compare graphspec's values,
VJPs and JVPs with autograd's. Where the two could legitimately differ (kinks), the
conventions are the documented ones: ties in max/maximum/minimum split the gradient evenly
(autograd's own convention), relu and abs have gradient 0 at 0.

A reference takes the attrs fully spelled out (defaults filled in, lists as
tuples), the way the interpreter passes them.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval


def _axis(axis, x=None):
    """numpy's axis argument; with ``x``, negative axes made non-negative first (autograd's own
    forward mode of max mishandles negative axes in a tuple)."""
    if x is not None and axis is not None:
        nd = np.ndim(getval(x))
        return tuple(a % nd for a in axis) if isinstance(axis, list | tuple) else axis % nd
    return tuple(axis) if isinstance(axis, list) else axis


def _is_int(a) -> bool:
    return not np.issubdtype(np.asarray(getval(a)).dtype, np.floating)


# --- building blocks ---------------------------------------------------------------------------

def ref_logsumexp(x, axis=None, keepdims=False):
    # shift by a constant (no gradient flows through it): the result is exact, and the
    # gradient is autograd's of log(sum(exp(x - c))) + c
    axis = _axis(axis)
    c = np.max(getval(x), axis=axis, keepdims=True)
    c = np.where(np.isfinite(c), c, 0.0)
    out = anp.log(anp.sum(anp.exp(x - c), axis=axis, keepdims=True)) + c
    if keepdims:
        return out
    return anp.reshape(out, np.shape(np.sum(getval(x), axis=axis)))


def ref_log_softmax(x, axis=-1):
    return x - ref_logsumexp(x, axis=axis, keepdims=True)


def ref_softmax(x, axis=-1):
    return anp.exp(ref_log_softmax(x, axis=axis))


def one_hot(labels, n, axis):
    """Integer class indices -> a float one-hot with the class axis at ``axis``."""
    labels = np.asarray(labels)
    return np.moveaxis(np.eye(n)[labels], -1, axis)


def _reduce(per, reduction):
    return {"mean": anp.mean, "sum": anp.sum}[reduction](per) if reduction != "none" else per


def ref_sigmoid(x):
    # exp(-softplus(-x)): both the value and autograd's derivative stay relatively accurate
    return anp.exp(-anp.logaddexp(0.0, -x))


def ref_softplus(x):
    # max(x, 0) + log1p(e^-|x|), the textbook stable form (not numpy's logaddexp); at 0 the
    # tie-split slope of max (1/2) plus abs's 0 gives the true slope 1/2
    return anp.maximum(x, 0.0) + anp.log1p(anp.exp(-anp.abs(x)))


def ref_matmul(a, b):
    """numpy matmul semantics written out: promote 1-D operands, broadcast the batch dims,
    contract, drop the promoted dims."""
    a_nd, b_nd = np.ndim(getval(a)), np.ndim(getval(b))
    if a_nd == 1:
        a = anp.reshape(a, (1, -1))
    if b_nd == 1:
        b = anp.reshape(b, (-1, 1))
    out = anp.sum(anp.expand_dims(a, -1) * anp.expand_dims(b, -3), axis=-2)
    if a_nd == 1:
        out = out[..., 0, :]
    if b_nd == 1:
        out = out[..., 0]
    return out


def ref_xent(logits, labels, axis=-1, reduction="mean"):
    lsm = ref_log_softmax(logits, axis=axis)
    t = one_hot(labels, np.shape(getval(logits))[axis], axis) if _is_int(labels) else labels
    return _reduce(-anp.sum(t * lsm, axis=axis), reduction)


def ref_hinge(scores, labels, axis=-1, margin=1.0, reduction="mean"):
    """FORMAT.md: sum over j != y of max(0, s_j - s_y + margin). Float targets t (one-hot or
    probabilities) weigh it as sum_j (1 - t_j) max(0, s_j - sum_k t_k s_k + margin), which is
    the same for one-hot t."""
    n = np.shape(getval(scores))[axis]
    t = one_hot(labels, n, axis) if _is_int(labels) else labels
    s_y = anp.sum(t * scores, axis=axis, keepdims=True)
    m = scores - s_y + margin
    return _reduce(anp.sum((1 - t) * anp.where(m > 0, m, 0.0), axis=axis), reduction)


def ref_concat(*xs, axis=0):
    return anp.concatenate(list(xs), axis=axis)


def ref_transpose(x, axes=None):
    # negative axes normalised first: autograd's own transpose VJP (argsort of the axes as
    # given) is wrong for them, e.g. axes (0, -1, 1)
    nd = np.ndim(getval(x))
    return anp.transpose(x, None if axes is None else tuple(a % nd for a in axes))


# --- the ops a CNN lesson needs, and their neighbours --------------------------------------------

def ref_clip(x, min=None, max=None):
    # chosen by where, so the gradient is 1 on the bounds themselves (torch.clamp's convention;
    # autograd's own clip gives 0 there)
    if min is not None:
        x = anp.where(x < min, min, x)
    if max is not None:
        x = anp.where(x > max, max, x)
    return x


def ref_where(cond, a, b):
    m = (np.asarray(cond) != 0).astype(float)
    return m * a + (1 - m) * b


def _count(x, axis):
    shape = np.shape(getval(x))
    axes = range(len(shape)) if axis is None else [axis] if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


def ref_var(x, axis=None, keepdims=False, ddof=0):
    ax = _axis(axis, x)
    d = x - anp.mean(x, axis=ax, keepdims=True)
    return anp.sum(d * d, axis=ax, keepdims=keepdims) / (_count(x, axis) - ddof)


def ref_stack(*xs, axis=0):
    return anp.stack(list(xs), axis=axis)


def ref_expand_dims(x, axis):
    shape = list(np.shape(getval(x)))
    shape.insert(axis % (len(shape) + 1), 1)
    return anp.reshape(x, shape)


def ref_squeeze(x, axis=None):
    shape = np.shape(getval(x))
    axes = [i for i, d in enumerate(shape) if d == 1] if axis is None else \
        [a % len(shape) for a in ([axis] if isinstance(axis, int) else axis)]
    return anp.reshape(x, [d for i, d in enumerate(shape) if i not in axes])


def ref_take(x, indices, axis=0):
    ax = axis % np.ndim(getval(x))
    return x[(slice(None),) * ax + (np.asarray(indices),)]


def ref_one_hot(labels, num_classes, dtype="float64"):
    return (np.asarray(labels)[..., None] == np.arange(num_classes)).astype(dtype)


def ref_bce(z, y, reduction="mean"):
    # -(y log s(z) + (1 - y) log(1 - s(z))) with log s(z) = -softplus(-z), log(1 - s(z)) = -softplus(z)
    return _reduce(y * anp.logaddexp(0.0, -z) + (1 - y) * anp.logaddexp(0.0, z), reduction)


def _pad2(x, ph, pw, value):
    """x (N, C, H, W) with ph rows and pw columns of ``value`` on each side, by concatenation."""
    n, c, h, w = np.shape(getval(x))
    if pw:
        side = np.full((n, c, h, pw), value)
        x = anp.concatenate([side, x, side], axis=3)
    if ph:
        top = np.full((n, c, ph, w + 2 * pw), value)
        x = anp.concatenate([top, x, top], axis=2)
    return x


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _windows(xp, kh, kw, stride, dilation, oh, ow):
    """Tap (i, j) of every output position, for each (i, j): the strided slices of the padded input."""
    (sh, sw), (dh, dw) = stride, dilation
    return [(i, j, xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw])
            for i in range(kh) for j in range(kw)]


def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o, y, x] = b[o] + sum_{c, i, j} xpad[n, group(o) c, s y + d i, s x + d j] w[o, c, i, j],
    summed tap by tap (an einsum per (i, j)), not im2col."""
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, _, h, wd = np.shape(getval(x))
    o, cg, kh, kw = np.shape(getval(w))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    xp = _pad2(x, padding[0], padding[1], 0.0)
    wg = anp.reshape(w, (groups, o // groups, cg, kh, kw))
    out = 0.0
    for i, j, tap in _windows(xp, kh, kw, stride, dilation, oh, ow):
        out = out + anp.einsum("ngchw,goc->ngohw", anp.reshape(tap, (n, groups, cg, oh, ow)), wg[:, :, :, i, j])
    out = anp.reshape(out, (n, o, oh, ow))
    return out if b is None else out + anp.reshape(b, (o, 1, 1))


def ref_max_pool2d(x, kernel, stride=None, padding=0):
    kernel, padding = _pair(kernel), _pair(padding)
    stride = kernel if stride is None else _pair(stride)
    h, w = np.shape(getval(x))[2:]
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    xp = _pad2(x, padding[0], padding[1], -np.inf)
    taps = [t for _, _, t in _windows(xp, kernel[0], kernel[1], stride, (1, 1), oh, ow)]
    return anp.max(anp.stack(taps), axis=0)  # autograd's max splits ties evenly


RTOL = 1e-10


def assert_close(ours, ref, rtol=RTOL, what="", atol_scale=1e-3):
    """allclose at ``rtol``; the atol only absorbs cancellation noise at zeros of the result,
    ``atol_scale`` times rtol on the result's scale."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    finite = ref[np.isfinite(ref)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * atol_scale * scale, err_msg=what)
