"""The MLP graph the benchmarks and the tests share: matmul, bias add and an activation per
layer, softmax cross-entropy on the last one. W2 (tools/bench.py), W7 (tools/bench_gradcheck.py)
and the tests' MLPs (tests/ import it: pytest puts tools/ on the path) differ only in sizes,
activation and how the params are declared. The gradient-check benchmarks (W7, W14) also share
their problem (a tanh MLP with its data), its torch twin and the timer here."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def mlp_nodes(sizes: Sequence[int], activation: str) -> dict[str, Any]:
    """Nodes of X -> (matmul W_i, add b_i, activation) ... -> softmax_cross_entropy(., y)."""
    nodes: dict[str, Any] = {}
    h = "X"
    for i, _ in enumerate(itertools.pairwise(sizes), 1):
        nodes[f"a{i}"] = {"op": "matmul", "args": [h, f"W{i}"]}
        nodes[f"z{i}"] = {"op": "add", "args": [f"a{i}", f"b{i}"]}
        h = f"z{i}"
        if i < len(sizes) - 1:
            nodes[f"h{i}"] = {"op": activation, "args": [h]}
            h = f"h{i}"
    nodes["loss"] = {"op": "softmax_cross_entropy", "args": [h, "y"]}
    return nodes


def torch_case(sizes: tuple[int, ...], params: dict[str, np.ndarray], X: np.ndarray,
               y: np.ndarray) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The MLP of ``sizes`` (tanh between layers, softmax cross-entropy) as a torch function of its params, and
    the params as leaf tensors: the peer side of the gradient-check benchmarks."""
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    names = list(params)

    def f(*ps: Any) -> Any:
        p = dict(zip(names, ps, strict=True))
        h = Xt
        for i in range(1, len(sizes)):
            h = h @ p[f"W{i}"] + p[f"b{i}"]
            if i < len(sizes) - 1:
                h = torch.tanh(h)
        return torch.nn.functional.cross_entropy(h, yt)

    return f, tuple(torch.tensor(v, requires_grad=True) for v in params.values())


def problem(sizes: tuple[int, ...], batch: int = 32, seed: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray],
                                                                                np.ndarray, np.ndarray]:
    """(spec dict, params, X, y): a tanh MLP with mean softmax cross-entropy, float64."""
    r = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for i in range(1, len(sizes)):
        a, b = sizes[i - 1], sizes[i]
        params[f"W{i}"] = r.normal(size=(a, b)) / np.sqrt(a)
        params[f"b{i}"] = r.normal(size=(b,)) * 0.1
    X = r.normal(size=(batch, sizes[0]))
    y = r.integers(0, sizes[-1], size=batch)
    spec = {"graphspec": "1", "name": "mlp_" + "_".join(map(str, sizes)),
            "inputs": {"X": {"value": X.tolist(), "grad": False}, "y": {"value": y.tolist(), "dtype": "int64"}},
            "params": {k: {"value": v.tolist()} for k, v in params.items()}, "nodes": mlp_nodes(sizes, "tanh"),
            "loss": "loss"}
    return spec, params, X, y


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
