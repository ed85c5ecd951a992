"""Comparing a result with the spec's `expect` block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .api import Result
from .spec import Expect


@dataclass(frozen=True)
class Check:
    kind: str  # "value" or "grad"
    name: str
    expected: np.ndarray
    got: np.ndarray | None
    max_abs_err: float
    ok: bool


def compare(result: Result, expect: Expect | None) -> list[Check]:
    """One Check per expected value and gradient, with numpy's allclose semantics
    (|got - expected| <= atol + rtol * |expected|) and the spec's rtol/atol."""
    if expect is None:
        return []
    out = []
    for kind, table, have in (("value", expect.values, result.values), ("grad", expect.grads, result.grads)):
        for name, want in table.items():
            want = np.asarray(want, dtype=np.float64)
            got = have.get(name)
            if got is None and kind == "grad" and result.loss is not None:
                got = np.zeros_like(want)  # the loss does not depend on this node: dL/dnode = 0, as in JAX
            out.append(_check(kind, name, want, got, expect.rtol, expect.atol))
    return out


def _check(kind: str, name: str, want: np.ndarray, got: Any, rtol: float, atol: float) -> Check:
    if got is None:
        return Check(kind, name, want, None, float("inf"), False)
    got = np.asarray(got, dtype=np.float64)
    try:
        err = np.abs(got - want)
    except ValueError:
        return Check(kind, name, want, got, float("inf"), False)
    ok = bool(np.all(err <= atol + rtol * np.abs(want))) and not np.any(np.isnan(got))
    return Check(kind, name, want, got, float(np.max(err)) if err.size else 0.0, ok)
