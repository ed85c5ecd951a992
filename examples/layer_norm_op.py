"""A user op with a wrong gradient: layer_norm's VJP forgets the mean term. FAIL, and blamed.

    python examples/layer_norm_op.py   # prints the report; exit 1 (FAIL, node 'ln')

y = (x - mean(x)) / sqrt(var(x) + eps) over the last axis. Its VJP is
dx = (g - mean(g) - y * mean(g * y)) / sigma; the slip below drops mean(g), the term that
comes from x's mean depending on x.
"""

import sys

import numpy as np

import graphspec

EPS = 1e-5


def layer_norm(x):
    mu = x.mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(x.var(axis=-1, keepdims=True) + EPS)


def layer_norm_vjp(g, ans, x):
    sigma = np.sqrt(x.var(axis=-1, keepdims=True) + EPS)
    return (g - ans * (g * ans).mean(axis=-1, keepdims=True)) / sigma  # slip: no "- g.mean(...)"


graphspec.defop("layer_norm", layer_norm, vjp=(layer_norm_vjp,), doc="normalise over the last axis")

SPEC = {
    "graphspec": "1",
    "name": "layer norm",
    "inputs": {"x": {"value": [[0.5, -1.0, 2.0, 0.1], [1.5, 0.0, -0.3, 0.7]]}},
    "params": {"gamma": {"value": [1.0, 0.5, -2.0, 1.5]}},
    "nodes": {
        "ln": {"op": "layer_norm", "args": ["x"]},
        "y": {"op": "mul", "args": ["ln", "gamma"]},
        "L": {"op": "sum", "args": ["y"]},
    },
    "loss": "L",
}

if __name__ == "__main__":
    report = graphspec.gradcheck(SPEC)
    print(report.text())
    sys.exit(0 if report.ok else 1)
