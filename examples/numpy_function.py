"""A numpy function with a hand-written gradient: logistic regression's loss, checked like an op.

    python examples/numpy_function.py   # prints the report; exit 0 (PASS)

graphspec.gradcheck(f, args, grad=grad_f): f(*args) returns a scalar, grad_f(*args) one
gradient per arg, in order (scipy.optimize.check_grad's workflow, with graphspec's report).
"""

import sys

import numpy as np

import graphspec

rng = np.random.default_rng(0)
X = rng.normal(size=(20, 3))  # data: fixed here, so only w and b are checked
y = (X @ [1.0, -2.0, 0.5] > 0).astype(float)


def logistic_loss(w, b):
    z = X @ w + b
    return np.mean(np.logaddexp(0, z) - y * z)  # -log-likelihood, stable for large |z|


def logistic_loss_grad(w, b):
    r = 1 / (1 + np.exp(-(X @ w + b))) - y  # sigmoid(z) - y
    return X.T @ r / len(y), np.mean(r)


if __name__ == "__main__":
    report = graphspec.gradcheck(logistic_loss, (np.zeros(3) + 0.1, 0.0), grad=logistic_loss_grad, taylor=True)
    print(report.text())
    sys.exit(0 if report.ok else 1)
