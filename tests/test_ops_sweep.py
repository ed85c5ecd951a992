"""Every sample of every op in the table: its gradient against finite differences, its own VJP and JVP
checked alone, and forward mode against reverse mode (`python -m graphspec check --ops` runs the same).
A new op whose VJP or JVP is wrong, or that has no samples, fails here."""

from __future__ import annotations

import pytest

from graphspec.checker import FAIL, check_ops
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
