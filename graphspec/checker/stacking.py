"""Batched forwards: many perturbations of the leaves pushed through the plan in one pass.

Every perturbation is a row of a new leading axis. An op whose record has a batching rule
(`Op.batch`, ops/batching.py) runs once on the whole stack through its own forward; any other op
runs once per row, and the rest of the pass stays stacked. This driver knows no attr and no op.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import OpError
from ..ops.batching import SLICED, Slices
from ..passes import _detail
from ..plan import Plan, Step


class _KinkFailed(Exception):
    """An op's kink rule raised (not its forward): said as the kink's error."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _branch(kink: Any, *args: Any, **attrs: Any) -> Any:
    try:
        return kink(*args, **attrs)
    except Exception as e:
        raise _KinkFailed(e) from e


class _Batched:
    """Run a plan's forward with some leaves stacked along a new leading axis of ``rows``.

    Only the steps downstream of a stacked leaf are recomputed; the others keep their base value.
    ``batch=False`` runs the whole plan once per row instead (the reference the tests compare with)."""

    def __init__(self, plan: Plan, vals: list[Any], batch: bool = True):
        self.plan, self.vals, self.batch = plan, vals, batch
        self.nd = [np.ndim(v) for v in vals]
        self.kink = {i: s.op.kink for i, s in enumerate(plan.steps) if s.op.kink is not None}
        self.evaluations = 0
        self.held = 0  # stacked numbers the last `run` produced (sliced stacks count their slices)
        self.densified = 0  # of which sliced args made dense for an op without a sliced rule
        self.measuring = False  # counting them (a probe's run), or not

    def steps_for(self, slots: Iterable[int]) -> list[int]:
        """Indices of the steps the given slots depend on, in order."""
        need, out = set(slots), []
        for i in range(len(self.plan.steps) - 1, -1, -1):
            s = self.plan.steps[i]
            if s.out in need:
                out.append(i)
                need.update(s.args)
        return out[::-1]

    def row_cost(self, steps: list[int]) -> int:
        return 1 + sum(int(np.size(self.vals[self.plan.steps[i].out])) for i in steps)

    def run(self, leaves: dict[int, Any], steps: list[int], rows: int,
            count: bool = True) -> tuple[dict[int, Any], dict[int, Any]]:
        """(stacked values by slot, stacked branch arrays by step index) of the steps that depend on a
        stacked leaf; a slot missing from the first dict kept its base value. A leaf may be a `Slices`
        stack: ops with a sliced rule (ops/batching.py) keep it sliced, the others get it dense; values
        and branch arrays may then be `Slices` too. ``count=False``: a probe, not an evaluation."""
        self.evaluations += rows if count else 0
        if not self.batch:
            return self._run_rows({s: v.dense() if isinstance(v, Slices) else v for s, v in leaves.items()}, steps, rows)
        vals: dict[int, Any] = dict(leaves)
        branches: dict[int, Any] = {}
        held, self.densified = 0, 0
        self.measuring = not count  # only a probe's sizes are read (differences.row_numbers)
        with np.errstate(all="ignore"):
            for i in steps:
                s = self.plan.steps[i]
                stacked = [a in vals for a in s.args]
                if any(stacked):
                    args = [vals[a] if st else self.vals[a] for a, st in zip(s.args, stacked, strict=True)]
                    try:
                        vals[s.out], br = self._step(i, s, args, stacked, rows)
                    except Exception as e:  # an op that fails at a perturbed point: located, as in a pass
                        kink = isinstance(e, _KinkFailed)
                        e = e.error if isinstance(e, _KinkFailed) else e
                        raise OpError(s.op.name, s.name, "kink" if kink else "forward", "at a perturbed point: "
                                      + _detail(s.op, s.op.kink if kink else s.op.forward, e)) from e
                    if br is not None:
                        branches[i] = br
                    if self.measuring:
                        v = vals[s.out]
                        held += int(np.size(v.cols if isinstance(v, Slices) else v))
        self.held = held + self.densified
        return vals, branches

    def _step(self, i: int, s: Step, args: list[Any], stacked: list[bool], rows: int) -> tuple[Any, Any]:
        nds = [self.nd[a] for a in s.args]
        kink = self.kink.get(i)
        if any(isinstance(a, Slices) for a in args):
            rule = SLICED.get(s.op.batch)  # type: ignore[arg-type]
            got = None if rule is None else rule(
                s.op.forward, None if kink is None else (lambda *a, **k: _branch(kink, *a, **k)),
                args, stacked, nds, s.attrs, self.vals[s.out])
            if got is not None:
                return got
            args = [a.dense() if isinstance(a, Slices) else a for a in args]
            if self.measuring:
                self.densified += sum(int(np.size(a)) for a, st in zip(args, stacked, strict=True) if st)
        if s.op.batch is None:
            return self._step_rows(s, args, stacked, rows, kink)
        args2, attrs2, post = s.op.batch(args, stacked, nds, s.attrs, rows)
        y = s.op.forward(*args2, **attrs2)
        br = None
        if kink is not None:
            br = np.asarray(_branch(kink, y, *args2, **attrs2))
            if br.ndim == 0 or br.shape[0] != rows:
                br = np.broadcast_to(br, (rows, *br.shape))
        return post(y), br

    @staticmethod
    def _step_rows(s: Step, args: list[Any], stacked: list[bool], rows: int, kink: Any) -> tuple[Any, Any]:
        outs, brs = [], []
        for r in range(rows):
            a = [x[r] if st else x for x, st in zip(args, stacked, strict=True)]
            y = s.forward(*a)
            outs.append(y)
            if kink is not None:
                brs.append(_branch(kink, y, *a, **s.attrs))
        return np.stack(outs), (np.stack(brs) if kink is not None else None)

    def _run_rows(self, leaves: dict[int, np.ndarray], steps: list[int], rows: int) -> tuple[dict[int, Any], dict[int, Any]]:
        per = []
        for r in range(rows):
            lv = list(self.vals[: self.plan.n_leaves])
            for slot, arr in leaves.items():
                lv[slot] = arr[r]
            per.append(self.plan.forward(lv))
        vals = {self.plan.steps[i].out: np.stack([v[self.plan.steps[i].out] for v in per]) for i in steps}
        branches = {}
        with np.errstate(all="ignore"):
            for i in steps:
                if i in self.kink:
                    s = self.plan.steps[i]
                    branches[i] = np.stack([self.kink[i](v[s.out], *[v[a] for a in s.args], **s.attrs) for v in per])
        return vals, branches
