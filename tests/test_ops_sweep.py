"""Every sample of every op in the table: its gradient against finite differences, its own VJP and JVP
checked alone, and forward mode against reverse mode (`python -m graphspec check --ops` runs the same).
A new op whose VJP or JVP is wrong, or that has no samples, fails here. The same check then runs on
the extra cases of the op's row in tests/optable.py that lie in the row's domain (away from kinks,
where finite differences have a derivative to find)."""

from __future__ import annotations

import numpy as np
import pytest
from optable import ROWS, full_attrs, row

from graphspec import load
from graphspec.checker import FAIL, PASS, check_ops, gradcheck
from graphspec.checker.sweep import sample_spec
from graphspec.ops import OPS


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_op_samples_pass(op: str, dtype: str) -> None:
    rows = check_ops([op], dtypes=(dtype,))
    assert rows and all(r.sample >= 0 for r in rows), f"{op} has no samples()"
    bad = [r for r in rows if r.status == FAIL]
    assert not bad, "\n".join(f"{r.op} sample {r.sample} {r.shapes} {r.attrs}: {r.message or 'gradient FAIL'} "
                              f"(grad rel err {r.max_rel_err:.1e}, vjp {r.vjp_rel_err:.1e}, jvp {r.jvp_rel_err:.1e})"
                              for r in bad)
    # the node-local and mode checks run in float64 whatever the sample's dtype
    assert all(r.vjp_rel_err < 1e-5 and r.jvp_rel_err < 1e-5 and r.modes_rel_err < 1e-6 for r in rows)


def _in_domain(op: str, args, attrs) -> bool:
    """A case with a float arg to differentiate, finite values of moderate size, in the row's domain."""
    floats = [np.asarray(a, dtype=np.float64) for a in args if np.asarray(a).dtype.kind == "f"]
    if not floats or not all(np.all(np.isfinite(a)) and np.max(np.abs(a), initial=0) < 1e3 for a in floats):
        return False
    full = full_attrs(op, attrs)
    with np.errstate(all="ignore"):
        empty = np.size(row(op).ref(*args, **full)) == 0  # nothing to check
    return not empty and row(op).domain(list(args), full)


def _extra(op: str) -> list:
    return [(k, args, attrs) for k, (args, attrs) in enumerate(row(op).extra) if _in_domain(op, args, attrs)]


# ops with no extra case to differentiate in their domain (one_hot: integer labels only) are left out
@pytest.mark.parametrize("op", [op for op in sorted(OPS) if op in ROWS and _extra(op)])
def test_op_extra_cases_in_their_domain_pass(op: str) -> None:
    cases = _extra(op)
    bad = []
    for k, args, attrs in cases:
        rep = gradcheck(load(sample_spec(op, args, attrs)), blame=True)
        if rep.status != PASS:
            bad.append(f"{op} extra case {k} {[list(np.shape(a)) for a in args]} {attrs}: {rep.status} "
                       + "; ".join(f"{n.mode} of arg {n.arg_name} is wrong" for n in rep.blamed))
    assert not bad, "\n".join(bad)
