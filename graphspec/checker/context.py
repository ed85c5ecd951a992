"""The state one `gradcheck` call shares between its parts: the graph, its values, the tolerance, the
random generator and the stacked-forward engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..plan import Plan
from .results import Tolerance
from .stacking import _Batched

MEMORY = 8 << 20  # bytes of stacked numbers per pass by default: ~8 MB keeps a pass in cache (docs/gradcheck.md)


@dataclass
class _Ctx:
    graph: Any
    plan: Plan
    wrt: list[str]
    vals_a: list[Any]  # the graph's own dtype (analytic side)
    vals_f: list[Any]  # float64 (finite differences)
    tol: Tolerance
    rng: np.random.Generator
    engine: _Batched
    max_elements: int | None
    refine: bool
    notes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # elements the full check differences per input
    progress: Callable[[float], None] | None = None  # advanced by perturbations done
    memory: int = MEMORY  # bytes of stacked numbers per pass (--memory)
    pool: Any = None  # checker/workers.py's `_Pool`: the one-hot differences spread over processes
    row_numbers: dict[Any, int] = field(default_factory=dict)  # (leaves, steps) -> stacked numbers per row
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # a budget's sampled elements per input
    sample: dict[str, Any] | None = None  # a budget's sample: its size and coverage (Report.sample)
    directions: dict[str, np.ndarray] | None = None  # --fast's random directions per input, (K, n) each

    def x(self, name: str) -> np.ndarray:
        return self.vals_f[self.plan.slot[name]]

    def backward(self, node: str, seed: np.ndarray, vals: list[Any] | None = None) -> dict[str, np.ndarray]:
        vals = self.vals_a if vals is None else vals
        ct = self.plan.backward(vals, node, seed)
        out = {}
        for n in self.wrt:
            g = ct[self.plan.slot[n]]
            out[n] = np.zeros(np.shape(vals[self.plan.slot[n]])) if g is None else np.asarray(g, dtype=np.float64)
        return out
