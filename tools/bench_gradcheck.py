"""Benchmark: graphspec's gradient checker against torch.autograd.gradcheck on the same function.

An MLP 4-16-16-3 (tanh hidden layers) with mean softmax cross-entropy, batch 8, float64: 403
parameter elements. Same process, same machine, same point. tools/bench.py imports this module
and calls `workload` (its W7 rows); run this file alone to print the figures:

    .venv/bin/python tools/bench_gradcheck.py [--repeats N]
"""

from __future__ import annotations

import argparse
from typing import Any

from bench_models import problem, timed, torch_case  # tools/ is on sys.path: run from there, or put there by bench.py

SIZES = (4, 16, 16, 3)
BATCH = 8


def bench_gradcheck(repeats: int = 7) -> dict[str, Any]:
    """Median seconds of each checker and the ratios (torch time / graphspec time: > 1 means graphspec is
    faster). Every checker must also say the gradients are right, else the figure means nothing. Uses
    torch's current thread count (the caller sets it)."""
    import torch

    import graphspec

    spec, params, X, y = problem(SIZES, BATCH)
    graph = graphspec.load(spec)
    f, inputs = torch_case(SIZES, params, X, y)
    assert graphspec.gradcheck(graph).ok and graphspec.gradcheck(graph, fast=True).ok
    assert torch.autograd.gradcheck(f, inputs) and torch.autograd.gradcheck(f, inputs, fast_mode=True)
    out: dict[str, Any] = {
        "elements": int(sum(v.size for v in params.values())),
        "graphspec_full": timed(lambda: graphspec.gradcheck(graph), repeats),
        "graphspec_fast": timed(lambda: graphspec.gradcheck(graph, fast=True), repeats),
        "torch_default": timed(lambda: torch.autograd.gradcheck(f, inputs), repeats),
        "torch_fast_mode": timed(lambda: torch.autograd.gradcheck(f, inputs, fast_mode=True), repeats),
    }
    out["full_speedup_vs_torch_default"] = out["torch_default"] / out["graphspec_full"]
    out["fast_speedup_vs_torch_fast_mode"] = out["torch_fast_mode"] / out["graphspec_fast"]
    return out


def workload(quick: bool = False) -> list[dict[str, Any]]:
    """tools/bench.py's W7 rows (its `Row` fields; ratio = graphspec / torch, so the targets are <= 0.2
    for the full check, 5x faster, and <= 1 for the fast check)."""
    r = bench_gradcheck(repeats=3 if quick else 7)
    case = f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float64, {r['elements']} elements"
    full = r["graphspec_full"] / r["torch_default"]
    fast = r["graphspec_fast"] / r["torch_fast_mode"]
    return [
        {"workload": "W7", "case": f"full gradient check vs torch.autograd.gradcheck, {case}",
         "graphspec_s": r["graphspec_full"], "torch_s": r["torch_default"], "target": "<= 0.2", "holds": full <= 0.2,
         "note": f"{1 / full:.1f}x faster", "extra": {"elements": r["elements"]}},
        {"workload": "W7", "case": f"--fast vs gradcheck(fast_mode=True), {case}",
         "graphspec_s": r["graphspec_fast"], "torch_s": r["torch_fast_mode"], "target": "<= 1", "holds": fast <= 1,
         "note": f"{1 / fast:.1f}x faster", "extra": {"elements": r["elements"]}},
    ]


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    torch.set_num_threads(1)  # the MLP is tiny: threads only add overhead, on both sides alike (numpy's BLAS too)
    r = bench_gradcheck(p.parse_args().repeats)
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float64, {r['elements']} parameter elements "
          "(median of repeats, one thread)")
    for key in ("graphspec_full", "torch_default", "graphspec_fast", "torch_fast_mode"):
        print(f"  {key:<18} {r[key] * 1e3:9.2f} ms")
    print(f"  full check: {r['full_speedup_vs_torch_default']:.1f}x faster than torch.autograd.gradcheck (target >= 5x)")
    print(f"  fast check: {r['fast_speedup_vs_torch_fast_mode']:.1f}x the speed of torch fast_mode (target >= 1x)")


if __name__ == "__main__":
    main()
