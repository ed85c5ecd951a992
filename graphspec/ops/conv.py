"""conv2d and max_pool2d on NCHW arrays, as PyTorch lays them out (no ceil mode).

Both run on numpy's BLAS and its strided views, never a Python loop over pixels: conv2d is
im2col (`sliding_window_view`, one copy into columns) and one batched matmul; its input VJP
is col2im, a scatter-add of the columns back, one slice-add per kernel tap (9 for 3x3).
max_pool2d works tap by tap the same way; ties in a window split the gradient evenly, as
`max` does. stride, padding and dilation are an int or [h, w].
"""

from __future__ import annotations

import numpy as np

from .registry import Attr, Aval, RuleError, defop, fmt_shape, no_bool, result_dtype


def _out_dim(d, k: int, s: int, p: int, dil: int, what: str):
    """Output length of one spatial axis (PyTorch's floor rule); a symbolic d gives a size of its own."""
    if isinstance(d, str) or isinstance(k, str):
        return f"({d}+{2 * p}-{dil}*({k}-1)-1)//{s}+1"
    eff = dil * (k - 1) + 1
    if d + 2 * p < eff:
        raise RuleError(f"{what}: the kernel spans {eff} but the padded input is {d + 2 * p} wide")
    return (d + 2 * p - eff) // s + 1


def _check_pairs(what: str, **pairs) -> None:
    for key, (v, lo) in pairs.items():
        if v is not None and min(v) < lo:
            raise RuleError(f"{what}: {key} must be >= {lo}, got {list(v)}")


def _rank4(shape, what: str, name: str) -> None:
    if len(shape) != 4:
        raise RuleError(f"{what} needs {name} of rank 4 (N, C, H, W), got {fmt_shape(shape)}")


def _taps(kh: int, kw: int, stride, dilation, oh: int, ow: int):
    """(i, j, the slice of the padded input that tap (i, j) of every window reads)."""
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(None), slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                         slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _pad(x, padding, value=0):
    ph, pw = padding
    if not (ph or pw):
        return np.asarray(x)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


# --- conv2d ------------------------------------------------------------------------------------

def _conv_shape(avals: list[Aval], *, stride, padding, dilation, groups) -> Aval:
    if len(avals) not in (2, 3):
        raise RuleError(f"conv2d takes 2 or 3 args (x, w and an optional bias b), got {len(avals)}")
    no_bool(*avals)
    dtype = result_dtype(*(a.dtype for a in avals))
    _check_pairs("conv2d", stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    if groups < 1:
        raise RuleError(f"conv2d: groups must be >= 1, got {groups}")
    xs, ws = avals[0].shape, avals[1].shape
    bs = avals[2].shape if len(avals) == 3 else ()
    if xs is None or ws is None or bs is None:
        return Aval(None, dtype)
    _rank4(xs, "conv2d", "x")
    if len(ws) != 4:
        raise RuleError(f"conv2d needs w of rank 4 (C_out, C_in/groups, kH, kW), got {fmt_shape(ws)}")
    o, cg, kh, kw = ws
    if len(avals) == 3 and (len(bs) != 1 or (bs[0] != o and isinstance(bs[0], int) and isinstance(o, int))):
        raise RuleError(f"conv2d needs the bias b of shape ({o},) (one per output channel), got {fmt_shape(bs)}")
    if isinstance(o, int) and o % groups:
        raise RuleError(f"conv2d: {o} output channels do not split into {groups} groups")
    c = xs[1]
    if isinstance(c, int) and isinstance(cg, int) and c != cg * groups:
        raise RuleError(f"conv2d: x has {c} channels but w {fmt_shape(ws)} takes {cg} per group x {groups} "
                        f"group{'s' if groups > 1 else ''} = {cg * groups}")
    oh = _out_dim(xs[2], kh, stride[0], padding[0], dilation[0], "conv2d")
    ow = _out_dim(xs[3], kw, stride[1], padding[1], dilation[1], "conv2d")
    return Aval((xs[0], o, oh, ow), dtype)


def _cols(x, kh: int, kw: int, stride, padding, dilation, groups: int):
    """im2col: (N, groups, C/groups * kH * kW, OH * OW), the rows ordered as w's (c, i, j), and (OH, OW)."""
    xp = _pad(x, padding)
    (sh, sw), (dh, dw) = stride, dilation
    v = np.lib.stride_tricks.sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    v = v[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, OH, OW, kH, kW): a view
    n, c, oh, ow = v.shape[:4]
    return v.transpose(0, 1, 4, 5, 2, 3).reshape(n, groups, c // groups * kh * kw, oh * ow), (oh, ow)


def _conv(x, w, b=None, *, stride, padding, dilation, groups):
    o, _, kh, kw = np.shape(w)
    cols, (oh, ow) = _cols(x, kh, kw, stride, padding, dilation, groups)
    out = np.matmul(np.reshape(w, (groups, o // groups, -1)), cols)  # (N, G, O/G, OH*OW)
    out = out.reshape(out.shape[0], o, oh, ow)
    if b is not None:
        b = np.reshape(b, (o, 1, 1))
        if np.result_type(out, b) == out.dtype:
            out += b
        else:  # an int conv with a float bias
            out = out + b
    return out


def _conv_vjp_x(g, ans, x, w, *b, stride, padding, dilation, groups):
    """col2im: each tap's columns, w^T g, added back where that tap read the padded input."""
    n, c, h, wd = np.shape(x)
    o, cg, kh, kw = np.shape(w)
    oh, ow = np.shape(g)[2:]
    g2 = np.reshape(g, (n, groups, o // groups, oh * ow))
    gcols = np.matmul(np.swapaxes(np.reshape(w, (groups, o // groups, cg * kh * kw)), -1, -2), g2)
    gcols = gcols.reshape(n, c, kh, kw, oh, ow)
    gxp = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]), dtype=gcols.dtype)
    for i, j, at in _taps(kh, kw, stride, dilation, oh, ow):
        gxp[at] += gcols[:, :, i, j]
    return gxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]


def _conv_vjp_w(g, ans, x, w, *b, stride, padding, dilation, groups):
    """g times the columns, summed over positions (one BLAS product per example and group: the
    transposed columns go to the BLAS as they lie) and then over examples."""
    o, cg, kh, kw = np.shape(w)
    cols, (oh, ow) = _cols(x, kh, kw, stride, padding, dilation, groups)
    g2 = np.reshape(g, (cols.shape[0], groups, o // groups, oh * ow))
    return np.matmul(g2, np.swapaxes(cols, -1, -2)).sum(axis=0).reshape(o, cg, kh, kw)


def _conv_vjp_at(i: int):
    if i == 2:
        return lambda g, ans, x, w, b, **kw: np.sum(g, axis=(0, 2, 3))
    return (_conv_vjp_x, _conv_vjp_w)[i] if i < 2 else None


def _conv_jvp_at(i: int):
    # conv2d is linear in each arg: the tangent goes through the same conv, without the bias
    if i == 0:
        return lambda t, ans, x, w, *b, **kw: _conv(t, w, **kw)
    if i == 1:
        return lambda t, ans, x, w, *b, **kw: _conv(x, t, **kw)
    return lambda t, ans, x, w, b, **kw: np.reshape(t, (-1, 1, 1))


def _conv_samples():
    r = np.random.default_rng(23)
    n = r.normal
    return [([n(size=(2, 1, 6, 6)), n(size=(3, 1, 3, 3)), n(size=(3,))], {}),
            ([n(size=(2, 2, 7, 6)), n(size=(4, 2, 3, 2))], {"stride": 2, "padding": [1, 0]}),
            ([n(size=(1, 4, 7, 7)), n(size=(2, 2, 2, 3)), n(size=(2,))], {"groups": 2, "dilation": [2, 1], "padding": 1}),
            ([n(size=(1, 3, 5, 5)), n(size=(3, 1, 3, 3))], {"groups": 3, "stride": [1, 2]})]


STRIDE = Attr("pair", (1, 1), doc="the step between windows, an int or [h, w]")
PADDING = Attr("pair", (0, 0), doc="zeros added on each side, an int or [h, w]")
DILATION = Attr("pair", (1, 1), doc="the spacing of the kernel's taps, an int or [h, w]")
GROUPS = Attr("int", 1, doc="channel groups: each output channel sees C_in/groups input channels")

defop("conv2d", _conv, shape=_conv_shape, args=("x", "w", "b"),
      vjp=_conv_vjp_at, jvp=_conv_jvp_at,
      attrs={"stride": STRIDE, "padding": PADDING, "dilation": DILATION, "groups": GROUPS},
      rules=("g convolved with w flipped (a transposed convolution)", "x correlated with g, summed over the batch",
             "g summed over the batch and space"),
      doc="2-D cross-correlation (torch.nn.functional.conv2d): args x (N, C_in, H, W), w (C_out, C_in/groups, kH, kW) "
          "and an optional bias b (C_out,); attrs stride, padding (zeros), dilation (each an int or [h, w]) and "
          "groups; out (N, C_out, (H + 2 pad - dil (kH - 1) - 1) // stride + 1, ...)",
      samples=_conv_samples)


# --- max_pool2d --------------------------------------------------------------------------------

def _pool_shape(avals: list[Aval], *, kernel, stride, padding) -> Aval:
    no_bool(*avals)
    shape, dtype = avals[0]
    if kernel is None:
        raise RuleError("max_pool2d needs attr 'kernel' (an int or [h, w])")
    _check_pairs("max_pool2d", kernel=(kernel, 1), stride=(stride, 1), padding=(padding, 0))
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise RuleError(f"max_pool2d: padding {list(padding)} must be at most half the kernel {list(kernel)}")
    if shape is None:
        return Aval(None, dtype)
    _rank4(shape, "max_pool2d", "x")
    s = stride or kernel
    oh = _out_dim(shape[2], kernel[0], s[0], padding[0], 1, "max_pool2d")
    ow = _out_dim(shape[3], kernel[1], s[1], padding[1], 1, "max_pool2d")
    return Aval((*shape[:2], oh, ow), dtype)


def _lowest(dtype):
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _pool_taps(x, kernel, stride, padding):
    """The padded input (padding -inf: it never wins), its taps, and the output size."""
    x = np.asarray(x)
    xp = _pad(x, padding, _lowest(x.dtype))
    s = stride or kernel
    oh, ow = ((d - k) // st + 1 for d, k, st in zip(xp.shape[2:], kernel, s, strict=True))
    return xp, list(_taps(kernel[0], kernel[1], s, (1, 1), oh, ow))


def _max_pool(x, *, kernel, stride, padding):
    xp, taps = _pool_taps(x, kernel, stride, padding)
    out = xp[taps[0][2]].copy()
    for _, _, at in taps[1:]:
        np.maximum(out, xp[at], out=out)
    return out


def _pool_hits(ans, x, kernel, stride, padding, dtype):
    """The padded input's shape, each tap's slice and where it holds its window's max, and the number
    of such taps per window (ties split the gradient evenly: each winner gets 1/count)."""
    xp, taps = _pool_taps(x, kernel, stride, padding)
    hits = [xp[at] == ans for _, _, at in taps]
    count = hits[0].astype(dtype)
    for hit in hits[1:]:
        count += hit
    return xp.shape, [at for _, _, at in taps], hits, count


def _float(*arrays):
    return np.result_type(*arrays, np.float32)


def _pool_vjp(g, ans, x, *, kernel, stride, padding):
    dtype = _float(g)
    shape, ats, hits, count = _pool_hits(ans, x, kernel, stride, padding, dtype)
    share = np.asarray(g, dtype) / count
    h, w = np.shape(x)[2:]
    if (stride is None or tuple(stride) == tuple(kernel)) and not any(padding):
        # the windows tile x (2x2 pooling): each tap writes its own strided slots, no scatter-add;
        # rows and columns no window reads stay 0
        gx = np.empty(shape, dtype) if h % kernel[0] == 0 and w % kernel[1] == 0 else np.zeros(shape, dtype)
        for at, hit in zip(ats, hits, strict=True):
            np.multiply(hit, share, out=gx[at])
        return gx
    gxp = np.zeros(shape, dtype)
    for at, hit in zip(ats, hits, strict=True):
        gxp[at] += hit * share
    return gxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def _pool_jvp(t, ans, x, *, kernel, stride, padding):
    tp = _pad(t, padding)
    _, ats, hits, count = _pool_hits(ans, x, kernel, stride, padding, _float(t))
    return sum(tp[at] * hit for at, hit in zip(ats, hits, strict=True)) / count


def _pool_branch(ans, x, *, kernel, stride, padding):
    """Which taps hold each window's max (the argmax pattern): it changes where a tie breaks."""
    xp, taps = _pool_taps(x, kernel, stride, padding)
    return np.stack([xp[at] == ans for _, _, at in taps])


def _pool_samples():
    r = np.random.default_rng(24)
    n = r.normal
    return [([n(size=(2, 3, 6, 6))], {"kernel": 2}), ([n(size=(1, 2, 7, 5))], {"kernel": [3, 2], "stride": [2, 1]}),
            ([n(size=(2, 1, 5, 5))], {"kernel": 3, "stride": 2, "padding": 1})]


defop("max_pool2d", _max_pool, shape=_pool_shape, args=("x",), attrs={
          "kernel": Attr("pair", None, doc="the window, an int or [h, w] (required)"),
          "stride": Attr("opt_pair", None, doc="the step between windows; null: the kernel"),
          "padding": Attr("pair", (0, 0), doc="-inf added on each side, at most half the kernel")},
      vjp=(_pool_vjp,), jvp=(_pool_jvp,), kink=_pool_branch,
      rules=("g routed to each window's max (split on a tie)",),
      doc="max over kH x kW windows of x (N, C, H, W) (torch.nn.functional.max_pool2d): attrs kernel (required), "
          "stride (default: the kernel), padding (-inf, at most half the kernel), each an int or [h, w]; ties in a "
          "window split the gradient evenly (a kink), as max does (torch's max_pool2d gives it all to one of them)",
      samples=_pool_samples)
