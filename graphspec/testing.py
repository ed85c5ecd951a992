"""Helpers for users' own test suites.

    from graphspec.testing import assert_gradients

    def test_my_model_gradients():
        assert_gradients("specs/my_model.json")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .checker import Report, gradcheck


def assert_gradients(spec_or_graph: Any, *, inputs: Mapping[str, Any] | None = None, strict: bool = False,
                     fast: bool = False, taylor: bool = False, ops: Iterable[Any] = (), **options: Any) -> Report:
    """Check every gradient of a spec (a path, a dict or a loaded `Graph`) and raise AssertionError with
    the report's text when one is wrong (with ``strict``, also when one sits at a kink), or when there
    was nothing to check (a test that checks nothing must not pass). Returns the report when all is
    well. ``options`` go to `graphspec.gradcheck` (``wrt``, ``max_elements``, ``directions``,
    ``tolerance``, ``seed``...). ``ops``: the Python ops the spec uses, as for `graphspec.load`."""
    if ops:
        from .userops import use

        use(ops)
    rep = gradcheck(spec_or_graph, inputs=inputs, strict=strict, fast=fast, taylor=taylor, **options)
    what = rep.spec or rep.name or "graph"
    if rep.empty and not rep.error:
        raise AssertionError(f"gradient check of {what} checked nothing ({rep.empty})\n{rep.text()}")
    if not rep.ok:
        blame = "; ".join(f"node '{n.node}' ({n.op}) has a wrong {n.mode.upper()} for {n.arg_name}" for n in rep.blamed)
        raise AssertionError(f"gradient check of {what} failed{': ' + blame if blame else ''}\n{rep.text()}")
    return rep
