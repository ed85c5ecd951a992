"""A user op with a right gradient: swish(x) = x * sigmoid(x), checked in a small layer.

    python examples/swish_op.py      # prints the report; exit 0 (PASS)
"""

import sys

import numpy as np

import graphspec


def swish(x):
    return x / (1 + np.exp(-x))


def swish_vjp(g, ans, x):  # d swish / dx = s + x s (1 - s), s = sigmoid(x)
    s = 1 / (1 + np.exp(-x))
    return g * (s + x * s * (1 - s))


# elementwise, so its Jacobian is diagonal: the VJP's formula is also the JVP's
graphspec.defop("swish", swish, vjp=(swish_vjp,), jvp=graphspec.SYMMETRIC, doc="x * sigmoid(x)")

SPEC = {
    "graphspec": "1",
    "name": "swish layer",
    "inputs": {"x": {"value": [[0.5, -1.0, 2.0], [1.5, 0.0, -0.3]]}},
    "params": {"W": {"shape": [3, 4], "init": {"normal": 0.5}}},
    "nodes": {
        "z": {"op": "matmul", "args": ["x", "W"]},
        "h": {"op": "swish", "args": ["z"]},
        "L": {"op": "mean", "args": ["h"]},
    },
    "loss": "L",
}

if __name__ == "__main__":
    report = graphspec.gradcheck(SPEC, taylor=True)
    print(report.text())
    sys.exit(0 if report.ok else 1)
