"""Comparing a result with the spec's `expect` block.

Each expectation is checked and holds, checked and fails, or is not checked: a gradient under
`run --no-grad`, or the gradient of a node the loss does not depend on (it has no cotangent;
inventing a 0 would pass an expectation nothing was computed for). Not checked is never a pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from .api import Result
from .spec import Expect

NO_GRAD = "--no-grad"
OFF_PATH = "not on the loss's path"


@dataclass(frozen=True)
class Check:
    kind: str  # "value" or "grad"
    name: str
    expected: np.ndarray
    got: np.ndarray | None
    max_abs_err: float
    ok: bool  # checked and held
    checked: bool = True
    note: str = ""  # why it was not checked

    @property
    def status(self) -> str:
        return "pass" if self.ok else "fail" if self.checked else "not checked"

    @property
    def failed(self) -> bool:
        return self.checked and not self.ok


def compare(result: Result, expect: Expect | None, *, grads: bool = True) -> list[Check]:
    """One Check per expected value and gradient, with numpy's allclose semantics
    (|got - expected| <= atol + rtol * |expected|) and the spec's rtol/atol. ``grads=False``
    (no backward pass was run): the gradients are not checked."""
    if expect is None:
        return []
    out = []
    for kind, table, have in (("value", expect.values, result.values), ("grad", expect.grads, result.grads)):
        for name, want in table.items():
            want = np.asarray(want, dtype=np.float64)
            got = have.get(name)
            if kind == "grad" and (not grads or got is None):
                out.append(Check(kind, name, want, None, float("nan"), False, checked=False,
                                 note=NO_GRAD if not grads else _why_no_gradient(result, name)))
                continue
            out.append(_check(kind, name, want, got, expect.rtol, expect.atol))
    return out


def _why_no_gradient(result: Result, name: str) -> str:
    v = result.values.get(name)
    if v is not None and np.asarray(v).dtype.kind != "f":
        return f"no gradient: an {np.asarray(v).dtype} value"
    return OFF_PATH


def unchecked_summary(checks: list[Check]) -> list[str]:
    """"3 expectations not checked (--no-grad)", one line per reason, naming the nodes off the path."""
    lines = []
    reasons = Counter(c.note for c in checks if not c.checked)
    for note, n in reasons.items():
        names = [c.name for c in checks if not c.checked and c.note == note]
        why = note if note == NO_GRAD else f"{note}: {', '.join(names)}"
        lines.append(f"{n} expectation{'s' if n != 1 else ''} not checked ({why})")
    return lines


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
