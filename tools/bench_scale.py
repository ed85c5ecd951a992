"""Benchmark: gradient checks at scale (issue 14), graphspec and its peers side by side in one run.

    .venv/bin/python tools/bench_scale.py [--quick] [--curve-only]

tools/bench.py imports this module and calls `workload` (its W14 rows):

- the full check of an MLP 100-200-10 (tanh, softmax cross-entropy, batch 32, float64: 22,210 params)
  against torch.autograd.gradcheck of the same function (every element, one run each);
- `--fast` against gradcheck(fast_mode=True), same MLP;
- `--fast` on an MLP 1000-1000-10 (1,011,010 params), graphspec alone (target: within 1 s);
- the directional check of an MLP 4-16-16-3 (403 params) against HIPS autograd's `check_grads`
  (modes fwd and rev, order 1: a random direction each, against its finite difference; `--fast`
  takes 4 per param and compares forward with reverse mode);
- the cost per checked element of a full check, 423 to 99,910 params, against one forward pass: the
  ratio must not grow with the size.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_models import problem, timed, torch_case  # tools/ is on sys.path: run from there, or put there by bench.py

BATCH = 32
MLP = (100, 200, 10)  # 22,210 params
BIG = (1000, 1000, 10)  # 1,011,010 params
SMALL = (4, 16, 16, 3)  # 403 params, W7's
CURVE = ((10, 30, 3), (20, 60, 5), (50, 100, 10), (100, 200, 10), (100, 450, 10), (100, 900, 10))


def n_params(sizes: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def least(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` calls after a warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def autograd_case(sizes: tuple[int, ...], params: dict[str, np.ndarray], X: np.ndarray,
                  y: np.ndarray) -> tuple[Callable[..., Any], tuple[np.ndarray, ...]]:
    import autograd.numpy as anp

    names = list(params)

    def f(*ps: Any) -> Any:
        p = dict(zip(names, ps, strict=True))
        h = X
        for i in range(1, len(sizes)):
            h = anp.dot(h, p[f"W{i}"]) + p[f"b{i}"]
            if i < len(sizes) - 1:
                h = anp.tanh(h)
        m = anp.max(h, axis=1, keepdims=True)
        logp = h - m - anp.log(anp.sum(anp.exp(h - m), axis=1, keepdims=True))
        return -anp.mean(logp[np.arange(len(y)), y])

    return f, tuple(params.values())


Pair = Callable[..., tuple[float, float | None]]  # (ours, theirs, repeats=) -> median seconds of each


def _pair(ours: Callable[[], Any], theirs: Callable[[], Any], *, repeats: int) -> tuple[float, float]:
    """Median seconds of each side, taking turns (bench.side_by_side does it in blocks, with pauses)."""
    a, b = [], []
    for fn in (ours, theirs):
        fn()
    for _ in range(repeats):
        for fn, ts in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def full_vs_torch(quick: bool, pair: Pair = _pair) -> list[dict[str, Any]]:
    import torch

    import graphspec

    spec, params, X, y = problem(MLP)
    g = graphspec.load(spec)
    f, inputs = torch_case(MLP, params, X, y)
    rep = graphspec.gradcheck(g)
    assert rep.ok and sum(c.checked for c in rep.checks) == n_params(MLP), rep.text()  # every element, not a sample
    assert torch.autograd.gradcheck(f, inputs) and torch.autograd.gradcheck(f, inputs, fast_mode=True)
    ours = timed(lambda: graphspec.gradcheck(g), 1 if quick else 3)
    t0 = time.perf_counter()
    torch.autograd.gradcheck(f, inputs)  # one run: it takes seconds
    theirs = time.perf_counter() - t0
    fast, fast_t = pair(lambda: graphspec.gradcheck(g, fast=True),
                        lambda: torch.autograd.gradcheck(f, inputs, fast_mode=True), repeats=5 if quick else 21)
    case = f"MLP {'-'.join(map(str, MLP))}, tanh, batch {BATCH}, float64, {n_params(MLP):,} params"
    return [
        {"workload": "W14", "case": f"full check (every element) vs torch.autograd.gradcheck, {case}",
         "graphspec_s": ours, "torch_s": theirs, "target": "<= 0.2", "note": f"{theirs / ours:.0f}x faster"},
        {"workload": "W14", "case": f"--fast vs gradcheck(fast_mode=True), {case}", "graphspec_s": fast,
         "torch_s": fast_t, "target": "<= 1", "note": f"{fast_t / fast:.1f}x faster"},
    ]


def big_fast(quick: bool) -> dict[str, Any]:
    import graphspec

    spec, _, _, _ = problem(BIG)
    g = graphspec.load(spec)
    assert graphspec.gradcheck(g, fast=True).ok
    t = timed(lambda: graphspec.gradcheck(g, fast=True), 3 if quick else 7)
    return {"workload": "W14", "case": f"--fast, MLP {'-'.join(map(str, BIG))}, batch {BATCH}, float64, "
            f"{n_params(BIG):,} params (graphspec alone)", "graphspec_s": t, "torch_s": None, "target": "< 1 s",
            "holds": t < 1.0, "note": "", "peer": ""}


def directional_vs_autograd(quick: bool, pair: Pair = _pair) -> dict[str, Any] | None:
    try:
        from autograd.test_util import check_grads
    except ImportError:
        return None
    import graphspec

    spec, params, X, y = problem(SMALL, batch=8)
    g = graphspec.load(spec)
    f, args = autograd_case(SMALL, params, X, y)
    every = tuple(range(len(args)))  # with respect to every param at once, as --fast does
    check = check_grads(f, every, modes=["fwd", "rev"], order=1)
    check(*args)  # raises when wrong
    assert graphspec.gradcheck(g, fast=True).ok
    ours, theirs = pair(lambda: graphspec.gradcheck(g, fast=True), lambda: check(*args), repeats=7 if quick else 21)
    return {"workload": "W14", "case": f"directional check (--fast), MLP {'-'.join(map(str, SMALL))}, batch 8, "
            f"{n_params(SMALL)} params, vs HIPS autograd check_grads(modes=['fwd', 'rev'], order=1)",
            "graphspec_s": ours, "torch_s": theirs, "target": "<= 1", "note": "", "peer": "autograd"}


def curve(quick: bool = False) -> list[dict[str, Any]]:
    """The cost per checked element of a full check (every element) against one forward pass."""
    import graphspec

    out = []
    for sizes in CURVE[:4] if quick else CURVE:
        spec, _, _, _ = problem(sizes)
        g = graphspec.load(spec)
        n = n_params(sizes)
        # the least disturbed of the repeats: on a shared machine the medians of these small calls wander
        full = least(lambda g=g: graphspec.gradcheck(g, all_elements=True, modes=False), 2 if n > 50_000 or quick else 3)
        fwd = least(lambda g=g: g.run(check_finite="off"), 51)
        out.append({"workload": "W14", "case": f"full check per element / one forward pass, MLP "
                    f"{'-'.join(map(str, sizes))}, batch {BATCH}, {n:,} params",
                    "graphspec_s": full / n, "torch_s": fwd, "target": "flat or falling", "note": "",
                    "peer": "one forward pass",
                    "extra": {"params": n, "full_check_s": full, "forward_s": fwd}})
    ratios = [r["graphspec_s"] / r["torch_s"] for r in out]
    for r, ratio in zip(out, ratios, strict=True):
        r["holds"] = ratio <= ratios[0] * 1.25  # per element never dearer, relative to a forward pass, than at the start
        r["note"] = f"{ratio:.3f} forward passes per element"
    return out


def workload(quick: bool = False, pair: Pair = _pair) -> list[dict[str, Any]]:
    """tools/bench.py's W14 rows (its `Row` fields); ``pair`` times two peers side by side."""
    rows = [*full_vs_torch(quick, pair), big_fast(quick)]
    d = directional_vs_autograd(quick, pair)
    rows += [d] if d else []
    return rows + curve(quick)


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--curve-only", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = curve(args.quick) if args.curve_only else workload(args.quick)
    for r in rows:
        peer = "-" if r["torch_s"] is None else f"{r['torch_s']:.4g} s"
        print(f"{r['case']}: graphspec {r['graphspec_s']:.4g} s, peer {peer}; target {r['target']}; {r['note']}")


if __name__ == "__main__":
    main()
