"""The MLP graph the benchmarks and the tests share: matmul, bias add and an activation per
layer, softmax cross-entropy on the last one. W2 (tools/bench.py), W7 (tools/bench_gradcheck.py)
and the tests' MLPs (tests/ import it: pytest puts tools/ on the path) differ only in sizes,
activation and how the params are declared."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any


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
