"""The op sweep (`check --ops`): every sample of every op in the op table, as a one-node spec, through
`gradcheck`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ops import OPS, Aval
from .results import FAIL, Report


@dataclass(frozen=True)
class OpRow:
    op: str
    dtype: str
    sample: int
    shapes: list[list[int]]
    attrs: dict[str, Any]
    status: str
    max_rel_err: float
    vjp_rel_err: float  # worst node-local VJP check
    jvp_rel_err: float  # worst node-local JVP check
    modes_rel_err: float
    message: str = ""


def sample_spec(op: str, args: Sequence[Any], attrs: Mapping[str, Any], dtype: str = "float64") -> dict[str, Any]:
    """A one-node spec applying ``op`` to sample args (float args become ``dtype`` inputs with gradients)."""
    inputs = {}
    for i, a in enumerate(args):
        arr = np.asarray(a)
        kind = dtype if arr.dtype.kind == "f" else "bool" if arr.dtype.kind == "b" else "int64"
        inputs[f"a{i}"] = {"value": arr.tolist(), "dtype": kind, "shape": list(arr.shape)}
    return {"graphspec": "1", "name": f"{op} sample", "inputs": inputs,
            "nodes": {"out": {"op": op, "args": list(inputs), "attrs": dict(attrs)}}}


def _worst(rep: Report, mode: str) -> float:
    return max((n.rel_err for n in rep.nodes if n.mode == mode), default=0.0)


def _sample_row(name: str, k: int, args: Sequence[Any], attrs: Mapping[str, Any], dtype: str, batch: bool) -> OpRow:
    from ..api import load
    from . import gradcheck

    shapes = [list(np.shape(a)) for a in args]
    try:
        rep = gradcheck(load(sample_spec(name, args, attrs, dtype)), blame=True, batch=batch)
    except Exception as e:  # a sample the op cannot even run is a failed row, not a crash
        return OpRow(name, dtype, k, shapes, dict(attrs), FAIL, math.inf, math.inf, math.inf, math.inf,
                     f"{type(e).__name__}: {e}")
    msg = "; ".join(f"{n.mode} of arg {n.arg_name} is wrong" for n in rep.blamed)
    return OpRow(name, dtype, k, shapes, dict(attrs), rep.status, max((c.max_rel_err for c in rep.checks), default=0.0),
                 _worst(rep, "vjp"), _worst(rep, "jvp"), max((m.rel_err for m in rep.modes), default=0.0), msg)


STAND_IN_SHAPES = ((3, 4), (2, 3, 2), (5,), ())


def made_samples(op: Any) -> list[tuple[list[Any], dict[str, Any]]]:
    """Samples for an op without ``samples()``: float args of each stand-in shape (all args one
    shape) that its shape rule accepts with the attrs' defaults, drawn from a fixed seed, away
    from 0 (kinks of user ops sit there most often). A variadic op gets two args."""
    rng = np.random.default_rng(0)
    attrs = {k: a.default for k, a in op.attrs.items()}
    n = op.arity if op.arity is not None else 2
    out = []
    for shape in STAND_IN_SHAPES:
        try:
            op.shape([Aval(shape, "float64")] * n, **attrs)
        except Exception:  # a shape the op does not take (RuleError), or a rule that fails on it
            continue
        args = [rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape) for _ in range(n)]
        out.append((args, {}))
    return out


def check_ops(ops: Iterable[str] | None = None, *, dtypes: Sequence[str] = ("float64",), batch: bool = True) -> list[OpRow]:
    """Every sample of every op, in each of ``dtypes``: its Jacobian against finite differences (float64
    differences whatever the dtype), its own VJP and JVP alone, and forward mode against reverse mode."""
    rows = []
    for name in (sorted(OPS) if ops is None else ops):
        op = OPS[name]
        samples = op.samples() if op.samples else made_samples(op)
        if not samples:
            rows.append(OpRow(name, "", -1, [], {}, FAIL, math.inf, math.inf, math.inf, math.inf,
                              "the op has no samples(), and its shape rule accepts none of the stand-in shapes"))
            continue
        rows += [_sample_row(name, k, args, attrs, dtype, batch) for dtype in dtypes
                 for k, (args, attrs) in enumerate(samples)]
    return rows
