"""A torch.autograd.Function with a deliberate slip in its backward. FAIL, and blamed.

    python examples/torch_function.py   # prints the report; exit 1 (FAIL, node 'MyTanh')

graphspec.gradcheck(MyTanh.apply, (x,)) runs the forward in torch, the backward through
torch.autograd.grad, both in float64, against finite differences.
"""

import sys

import torch

import graphspec


class MyTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y) ** 2  # slip: d tanh / dx is 1 - y ** 2


if __name__ == "__main__":
    x = torch.tensor([-1.5, -0.2, 0.0, 0.7, 2.0])
    report = graphspec.gradcheck(MyTanh.apply, (x,))
    print(report.text())
    sys.exit(0 if report.ok else 1)
