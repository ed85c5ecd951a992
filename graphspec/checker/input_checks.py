"""Each input against finite differences: every element (full mode, failures retried with Richardson
extrapolation) or a few random directions (fast mode)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .classify import _classify, _compare, _input_check, _input_checks, _kink_mask, _Numbers
from .context import _Ctx
from .differences import _FD, Stacked, _fd, _one_hot
from .results import FAIL, PASS, InputCheck
from .targets import _Target


def _elements(ctx: _Ctx, name: str) -> tuple[np.ndarray, str]:
    """The elements of one input the full check differences (`progress.sample_size`), and a note when
    they are a sample."""
    n = int(ctx.x(name).size)
    if name in ctx.samples:
        k = len(ctx.samples[name])
        return ctx.samples[name], f"sampled {k} of {n} elements at random to fit the time budget"
    k = ctx.sizes.get(name, n)
    if k >= n:
        return np.arange(n), ""
    return np.sort(ctx.rng.choice(n, size=k, replace=False)), \
        f"sampled {k} of {n} elements at random (all_elements=True or --all: every one)"


LEVELS = 3  # halvings of a failing element's step (h/2, h/4, h/8), each Richardson-extrapolated with the one before
# past LEVELS, the halving goes on (to h/4096) only while the extrapolations keep changing: a step still large
# against a pole or domain edge away from 0 (log(1 - p) at p = 1 - 1e-6) settles late; a wrong gradient has settled
MAX_LEVELS = 12
RETRY_MAX = 2000  # most failing elements retaken per input: a wrong gradient fails them all, a sample is evidence enough


def _take_back(ctx: _Ctx, targets: list[_Target], numbers: list[_Numbers], cols: np.ndarray, scale: np.ndarray,
               retaken: list[np.ndarray], ana: list[np.ndarray] | None = None) -> list[int]:
    """Failing elements in ``cols`` whose retaken difference (one (T, len(cols)) array per target)
    agrees with the analytic gradient (``ana``: new analytic values, for a new direction) become PASS,
    with the new numbers. Returns how many per target."""
    fixed = []
    for ti, (t, n, num) in enumerate(zip(targets, numbers, retaken, strict=True)):
        a = n.ana[:, cols] if ana is None else ana[ti]
        atol = ctx.tol.atol * np.maximum(1.0, np.abs(t.f0[:, None])) / scale[cols]
        abs_err, rel, fail = _compare(ctx.tol, a, num, atol)
        back = (n.status[:, cols] == FAIL) & ~fail
        # a finite difference that still fails says more than a nan one: it is what the report shows
        shown = back | ((n.status[:, cols] == FAIL) & ~np.isfinite(n.num[:, cols]) & np.isfinite(num))
        for arr, new in ((n.ana, a), (n.num, num), (n.abs_err, abs_err), (n.rel, rel)):
            arr[:, cols] = np.where(shown, new, arr[:, cols])
        n.status[:, cols] = np.where(back, PASS, n.status[:, cols])
        fixed.append(int(back.sum()))
    return fixed


def _failing(numbers: list[_Numbers], cols: np.ndarray | None = None) -> np.ndarray:
    """Columns (elements or directions) where some target row FAILs, as a mask over ``cols``."""
    st = np.stack([n.status if cols is None else n.status[:, cols] for n in numbers])
    return np.any(st == FAIL, axis=(0, 1))


Diff = Callable[[np.ndarray, float], list[np.ndarray]]  # (columns, step factor) -> central differences per target


def _ladder(ctx: _Ctx, targets: list[_Target], numbers: list[_Numbers], cols: np.ndarray, scale: np.ndarray,
            first: list[np.ndarray], diff: Diff, levels: int,
            until: int = 0) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Re-take the failing columns ``cols`` with the step halved ``levels`` times; at each level the
    Richardson extrapolation (4 D(h/2) - D(h)) / 3 (error O(h^4)) and the plain smaller step are tried.
    A truncation error (a steep function, a step large against x) goes away; a wrong gradient stays
    wrong at every step. ``until``: further halvings, up to that level, of the columns whose
    extrapolations have not settled. ``first``: the differences at the full step. Updates ``numbers``
    in place; returns (elements got back per target, the columns still failing, whether each one's
    extrapolations settled: converged to a value that is not the analytic one)."""
    fixed = [0] * len(targets)
    prev, rich_prev = [f[:, cols] for f in first], None
    settled = np.zeros(0, dtype=bool)
    done, done_settled = [], []  # failing columns that settled before ``until``: not halved further
    for k in range(1, max(levels, until) + 1):
        if k > levels and settled.size:
            done.append(cols[settled])
            done_settled.append(settled[settled])
            keep = ~settled
            cols, settled = cols[keep], settled[keep]
            prev, rich_prev = [p[:, keep] for p in prev], [r[:, keep] for r in rich_prev]
        if not cols.size:
            break
        cur = diff(cols, 0.5 ** k)
        rich = [(4 * c - p) / 3 for c, p in zip(cur, prev, strict=True)]
        for est in (rich, cur):
            fixed = [a + b for a, b in zip(fixed, _take_back(ctx, targets, numbers, cols, scale, est), strict=True)]
        still = _failing(numbers, cols)
        with np.errstate(all="ignore"):
            settled = np.zeros(cols.size, dtype=bool) if rich_prev is None else np.all(np.stack(
                [np.abs(r - q) <= ctx.tol.rtol * np.abs(r) for r, q in zip(rich, rich_prev, strict=True)]), axis=(0, 1))
        cols, settled = cols[still], settled[still]
        prev, rich_prev = [c[:, still] for c in cur], [r[:, still] for r in rich]
    if done:
        cols, settled = np.concatenate([cols, *done]), np.concatenate([settled, *done_settled])
        order = np.argsort(cols, kind="stable")
        cols, settled = cols[order], settled[order]
    return fixed, cols, settled


def _capped(ctx: _Ctx, cols: np.ndarray, retry: Callable[[np.ndarray], tuple[list[int], np.ndarray]],
            n_targets: int) -> tuple[list[int], np.ndarray]:
    """``retry(cols)`` (elements got back per target, those still failing), on at most RETRY_MAX elements
    first: when more fail and a random RETRY_MAX of them get nothing back, the failure is no step
    problem (a wrong gradient fails them all) and the rest are left as they are; else the rest too."""
    if cols.size <= RETRY_MAX:
        return retry(cols) if cols.size else ([0] * n_targets, cols)
    probe = np.zeros(cols.size, dtype=bool)
    probe[ctx.rng.choice(cols.size, size=RETRY_MAX, replace=False)] = True
    got, still = retry(cols[probe])
    if not any(got):
        return got, np.sort(np.concatenate([still, cols[~probe]]))
    more, still_rest = retry(cols[~probe])
    return [a + b for a, b in zip(got, more, strict=True)], np.sort(np.concatenate([still, still_rest]))


def _full(ctx: _Ctx, name: str, targets: list[_Target]) -> list[InputCheck]:
    x = ctx.x(name)
    slot = ctx.plan.slot[name]
    idx, sampled = _elements(ctx, name)
    scale = np.maximum(1.0, np.abs(x.ravel()[idx]))
    h = ctx.tol.eps * scale
    fd = _fd(ctx, {slot: _one_hot(idx, h)}, len(idx), targets)
    crossed = _kink_mask(fd, len(idx))
    numbers = [_classify(ctx.tol, t.f0, fd.plus[ti], fd.minus[ti], h, scale, t.grads[name][:, idx], crossed)
               for ti, t in enumerate(targets)]

    def diff(step: np.ndarray) -> Diff:
        def at(cols: np.ndarray, factor: float) -> list[np.ndarray]:
            d = _fd(ctx, {slot: _one_hot(idx[cols], step[cols] * factor)}, cols.size, targets)
            return [(p - m) / (2 * step[cols] * factor) for p, m in zip(d.plus, d.minus, strict=True)]
        return at

    failed = any(FAIL in nums.status for nums in numbers)  # the passing check pays nothing more
    cols = np.flatnonzero(_failing(numbers)) if failed else np.zeros(0, dtype=np.int64)
    ax = np.abs(x.ravel()[idx])

    def halved(c: np.ndarray) -> tuple[list[int], np.ndarray]:
        got, still, _ = _ladder(ctx, targets, numbers, c, scale, [n.num for n in numbers], diff(h), LEVELS, MAX_LEVELS)
        return got, still

    def relative(c: np.ndarray) -> tuple[list[int], np.ndarray]:
        # a step relative to x_j itself (h = eps |x_j|), for a function steep on the scale of x_j (1/x at
        # x = 1e-6), or x - h past the edge of the op's domain (log at 1e-9)
        hr = np.zeros_like(h)
        hr[c] = ctx.tol.eps * ax[c]
        first = diff(hr)(c, 1.0)
        got = _take_back(ctx, targets, numbers, c, scale, first)
        if ctx.refine:
            full_first = [np.zeros_like(n.num) for n in numbers]
            for f, g in zip(full_first, first, strict=True):
                f[:, c] = g
            more, _, _ = _ladder(ctx, targets, numbers, c[_failing(numbers, c)], scale, full_first, diff(hr), 1)
            got = [a + b for a, b in zip(got, more, strict=True)]
        return got, c[_failing(numbers, c)]

    zero = [0] * len(targets)
    fixed, cols = _capped(ctx, cols, halved, len(targets)) if ctx.refine else (zero, cols)
    # still failing at 0 < |x_j| < 1; without refine, only a difference that is not finite (log at 1e-9)
    near = cols[(ax[cols] > 0) & (ax[cols] < 1)]
    if not ctx.refine and near.size:
        near = near[~np.all(np.isfinite(np.stack([n.num[:, near] for n in numbers])), axis=(0, 1))]
    rel, _ = _capped(ctx, near, relative, len(targets))
    notes = [[f"{f} element(s) passed only after the step was halved (Richardson extrapolation of h, h/2, ...): "
              "the function is steep there, the gradient is right"] * bool(f)
             + [f"{e} element(s) differenced with a step relative to the element, h = eps |x| (x is small: the "
                "function is steep on its scale, or x - h is past the edge of an op's domain)"] * bool(e)
             + [sampled] * bool(sampled) for f, e in zip(fixed, rel, strict=True)]
    return [_input_check(ctx, name, t, "elements", idx, n, fd, note)
            for t, n, note in zip(targets, numbers, notes, strict=True)]


def _fast(ctx: _Ctx, targets: list[_Target], directions: int) -> list[InputCheck]:
    """``directions`` random directional derivatives per input, every input's in one stacked pass
    (input i moves in rows i*K..(i+1)*K only): one pass over the plan whatever the number of inputs.
    The inputs' directions are then compared side by side, input i's in columns i*K..(i+1)*K, in one
    set of array operations. A failing direction is retaken as in full mode (`_retry_directions`).
    Each input's first direction is kept (``ctx.directions``) for the JVP-vs-VJP check."""
    K, h, names = directions, ctx.tol.eps, ctx.wrt
    dirs = {n: _directions(ctx.rng, K, ctx.x(n)) for n in names}
    ctx.directions = dirs
    fds = []
    for group in _passes(ctx, targets):
        fd = _fd(ctx, {ctx.plan.slot[n]: Along(ctx.x(n), i * K, dirs[n], h) for i, n in enumerate(group)},
                 K * len(group), targets)
        fds.append((group, fd))
    fd = fds[0][1] if len(fds) == 1 else _joined(fds, names, K)
    width = K * len(names)
    hs, ones, rows, crossed = np.full(width, h), np.ones(width), np.arange(K), _kink_mask(fd, width)
    numbers = [_classify(ctx.tol, t.f0, fd.plus[ti], fd.minus[ti], hs, ones,
                         np.concatenate([t.grads[n] @ dirs[n].T for n in names], axis=1), crossed)
               for ti, t in enumerate(targets)]
    notes: list[list[str]] = [[] for _ in names]
    if ctx.refine and any(FAIL in nums.status for nums in numbers):  # the passing check pays nothing
        for i, n in enumerate(names):
            cols = slice(i * K, (i + 1) * K)  # views: a retaken direction is written into the joint numbers
            mine = [_Numbers(*(a[:, cols] for a in (m.ana, m.num, m.abs_err, m.rel, m.status))) for m in numbers]
            if any(FAIL in m.status for m in mine):
                notes[i] = _retry_directions(ctx, n, targets, mine, dirs[n])
    checks = [_input_checks(ctx, names, t, "directions", rows, nums, fd, notes) for t, nums in zip(targets, numbers,
                                                                                                   strict=True)]
    return [c[i] for i in range(len(names)) for c in checks]


def _joined(fds: list[tuple[list[str], _FD]], names: list[str], K: int) -> _FD:
    """The differences of several stacked passes side by side, input i's in columns i*K..(i+1)*K."""
    col = {n: (fd, j) for group, fd in fds for j, n in enumerate(group)}
    parts = [(col[n][0], slice(col[n][1] * K, (col[n][1] + 1) * K)) for n in names]
    width = K * len(names)
    plus = [np.concatenate([fd.plus[ti][:, s] for fd, s in parts], axis=1) for ti in range(len(fds[0][1].plus))]
    minus = [np.concatenate([fd.minus[ti][:, s] for fd, s in parts], axis=1) for ti in range(len(fds[0][1].minus))]
    flips: dict[int, np.ndarray] = {}
    at: dict[int, np.ndarray] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    for i, (fd, s) in enumerate(parts):
        for step, f in fd.flips.items():
            flips.setdefault(step, np.zeros(width, dtype=bool))[i * K:(i + 1) * K] = f[s]
            at.setdefault(step, np.zeros(width, dtype=np.int64))[i * K:(i + 1) * K] = fd.at[step][s]
            shapes[step] = fd.shapes[step]
    return _FD(plus, minus, flips, at, shapes)


class Along:
    """Rows c0..c1 of a joint stacked pass in which one input moves along its (step-scaled) directions
    ``hd`` in rows first..first+K only: the stacked leaf itself, x + hd_k then x - hd_k (x in the
    other inputs' rows), written in one buffer rather than built from a dense block of zeros."""

    def __init__(self, x: np.ndarray, first: int, d: np.ndarray, h: float):
        self.x, self.first, self.d, self.h = x, first, d, h

    def __call__(self, c0: int, c1: int) -> Stacked:
        x, k, first = self.x, c1 - c0, self.first
        out = np.empty((2 * k, *np.shape(x)))
        flat = out.reshape(2 * k, -1)
        xf = np.reshape(x, -1)
        lo, hi = max(c0, first), min(c1, first + len(self.d))
        if lo < hi:
            plus, minus = flat[lo - c0:hi - c0], flat[k + lo - c0:k + hi - c0]
            np.multiply(self.d[lo - first:hi - first], self.h, out=minus)  # h d, as x + h * d would round it
            np.add(xf, minus, out=plus)
            np.subtract(xf, minus, out=minus)
            flat[:lo - c0] = xf
            flat[hi - c0:k] = xf
            flat[k:k + lo - c0] = xf
            flat[k + hi - c0:] = xf
        else:
            flat[:] = xf
        return Stacked(out)


SIGNED = 1 << 16  # random numbers per input from which its directions are one random vector times random signs
WIDTH = 2 * 3 ** 0.5  # uniform numbers on [-sqrt(3), sqrt(3)): mean 0, variance 1


def _directions(rng: np.random.Generator, K: int, x: np.ndarray) -> np.ndarray:
    """K random directions for an input, scaled by max(1, |x|). Their elements are independent and
    uniform on [-sqrt(3), sqrt(3)) (mean 0 and variance 1; torch.autograd.gradcheck's fast mode draws
    uniform numbers too): an error e cancels in <e, d> with probability 0 for any continuous
    distribution, and a uniform number costs a fifth of a normal one (normal draws were a sixth of
    --fast on a 22,210-param MLP). For a big input (K n >= SIGNED) the K directions are one such
    vector z times K independent random sign patterns, z * s_k (each still has independent uniform
    elements), for n random numbers and K n random bits; the signs go in as the float's sign bit (an
    xor), not through np.where: the same numbers, without its temporaries."""
    n, scale = int(x.size), np.maximum(1.0, np.abs(x.ravel()))
    if K * n < SIGNED:
        d = rng.random(size=(K, n))
        d -= 0.5
        d *= WIDTH * scale
        return d
    z = rng.random(size=n)
    z -= 0.5
    z *= -WIDTH * scale  # negated: a set bit gives back z, a clear one -z
    bits = np.unpackbits(np.frombuffer(rng.bytes((K * n + 7) // 8), dtype=np.uint8), count=K * n).reshape(K, n)
    out = np.empty((K, n))
    u = out.view(np.uint64)
    np.left_shift(bits, np.uint64(63), out=u, casting="unsafe")
    np.bitwise_xor(u, z.view(np.uint64), out=u)
    return out


OWN_PASS = 4096  # stacked numbers per row past which an input's directions get a pass of their own


def _passes(ctx: _Ctx, targets: list[_Target]) -> list[list[str]]:
    """The inputs whose directions share a stacked pass. Small ones share one (one pass over the plan
    whatever their number); one whose row is big (its own elements and what it changes downstream, a
    first layer's weights) gets its own, so the others' rows do not carry it, nor recompute what only
    it changes (the other rows of a shared pass hold the unperturbed value, recomputed all the same)."""
    engine = ctx.engine
    steps = engine.steps_for([t.slot for t in targets])
    if engine.row_cost(steps) + sum(int(ctx.x(n).size) for n in ctx.wrt) <= OWN_PASS:  # small: no input is big
        return [list(ctx.wrt)]
    own, shared = [], []
    for n in ctx.wrt:
        row = int(ctx.x(n).size) + engine.row_cost(_downstream(ctx, ctx.plan.slot[n], steps))
        (own if row > OWN_PASS else shared).append(n)
    return [[n] for n in own] + ([shared] if shared else [])


def _downstream(ctx: _Ctx, slot: int, steps: list[int]) -> list[int]:
    """The steps (of ``steps``, in plan order) whose values depend on the slot."""
    dep, out = {slot}, []
    for i in steps:
        s = ctx.plan.steps[i]
        if any(a in dep for a in s.args):
            dep.add(s.out)
            out.append(i)
    return out


def _directional(ctx: _Ctx, name: str, targets: list[_Target], d: np.ndarray) -> Diff:
    """Central differences along rows of ``d`` (a (K, n) array of directions), with a step factor."""
    slot, h = ctx.plan.slot[name], ctx.tol.eps

    def at(cols: np.ndarray, factor: float) -> list[np.ndarray]:
        rows = d[cols] * (h * factor)
        fd = _fd(ctx, {slot: lambda c0, c1: rows[c0:c1]}, cols.size, targets)
        return [(p - m) / (2 * h * factor) for p, m in zip(fd.plus, fd.minus, strict=True)]
    return at


def _retry_directions(ctx: _Ctx, name: str, targets: list[_Target], numbers: list[_Numbers],
                      dirs: np.ndarray) -> list[str]:
    """Failing directions retaken with the step halved (`_ladder`); those whose differences did not
    settle (a step too large against some small |x_j|: 1/x at 1e-4) once more along a direction scaled to
    |x_j| itself where 0 < |x_j| < 1 (the same random numbers, so every element still moves). A
    difference that settled on a value other than <g, d> is a wrong gradient and is not retaken."""
    K = dirs.shape[0]
    ones = np.ones(K)
    cols = np.flatnonzero(_failing(numbers))
    if not cols.size:
        return []
    fixed, cols, settled = _ladder(ctx, targets, numbers, cols, ones, [n.num for n in numbers],
                                   _directional(ctx, name, targets, dirs), LEVELS, MAX_LEVELS)
    notes = [f"{sum(fixed)} direction(s) passed only after the step was halved (Richardson extrapolation)"] * bool(
        sum(fixed))
    cols = cols[~settled]
    ax = np.abs(ctx.x(name).ravel())
    if not cols.size or not np.any((ax > 0) & (ax < 1)):
        return notes
    small = (ax > 0) & (ax < 1)
    rel = dirs * np.where(small, ax, 1.0)  # dirs is r * max(1, |x|): r * |x| where x is small
    ana = [t.grads[name] @ rel[cols].T for t in targets]
    diff = _directional(ctx, name, targets, rel)
    first = diff(cols, 1.0)
    got = _take_back(ctx, targets, numbers, cols, ones, first, ana)
    if np.any(_failing(numbers, cols)):  # and its Richardson extrapolation with h/2
        half = diff(cols, 0.5)
        got = [a + b for a, b in zip(got, _take_back(
            ctx, targets, numbers, cols, ones, [(4 * c - p) / 3 for c, p in zip(half, first, strict=True)], ana),
            strict=True)]
    if sum(got):
        notes.append(f"{sum(got)} direction(s) passed along a direction scaled to |x_j| where 0 < |x_j| < 1 "
                     "(a step relative to the small elements)")
    return notes
