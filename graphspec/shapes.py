"""Static shape and dtype inference, before anything runs, and attr checking.

Symbolic dims ("N") stay symbolic until values bind them; with every leaf's shape known, the
check is exact, so a graph that passes it cannot fail in numpy on a shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ShapeError, did_you_mean
from .ops import OPS, Attr, Aval, Op, RuleError
from .ops.registry import WEAK
from .spec import Node


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_attr(op: Op, key: str, spec: Attr, v: Any) -> Any:
    kind = spec.kind
    if kind == "float" and (isinstance(v, float) or _is_int(v)):
        try:
            if math.isfinite(float(v)):
                return float(v)
        except OverflowError:  # an integer beyond float64
            pass
        raise RuleError(f"{op.name} attr '{key}' must be a finite number, got {v!r:.40}")
    if kind in ("int", "axis") and _is_int(v):
        return v
    if kind == "bool" and isinstance(v, bool):
        return v
    if kind == "enum" and isinstance(v, str):
        if v in spec.choices:
            return v
        hint = did_you_mean(v, spec.choices)
        raise RuleError(f"'{v}' is not one of {', '.join(spec.choices)}" + (f" ({hint})" if hint else ""))
    if kind in ("axes", "reduce_axis") and v is None:
        return None
    if kind == "reduce_axis" and _is_int(v):
        return v
    if kind in ("axes", "reduce_axis", "shape") and isinstance(v, list) and all(_is_int(a) for a in v):
        return tuple(v)
    if kind in ("opt_float", "opt_pair") and v is None:
        return None
    if kind == "opt_float" and (isinstance(v, float) or _is_int(v)):
        return _check_attr(op, key, Attr("float"), v)
    if kind in ("pair", "opt_pair") and _is_int(v):
        return (v, v)
    if kind in ("pair", "opt_pair") and isinstance(v, list) and len(v) == 2 and all(_is_int(a) for a in v):
        return tuple(v)
    if kind == "slices" and isinstance(v, list) and all(
            isinstance(s, list) and len(s) in (2, 3) and all(a is None or _is_int(a) for a in s) for s in v):
        return tuple(tuple(s) for s in v)
    wanted = {"float": "a number", "int": "an integer", "axis": "an integer axis", "bool": "true or false",
              "enum": "a string", "axes": "a list of integer axes or null",
              "reduce_axis": "an integer axis, a list of them, or null (all axes)",
              "shape": "a list of integer sizes", "opt_float": "a number or null",
              "pair": "an integer or a list [h, w] of two integers",
              "opt_pair": "an integer, a list [h, w] of two integers, or null",
              "slices": "a list with one [start, stop] or [start, stop, step] per axis (integers or null, "
                        "as in Python's x[start:stop:step])"}[kind]
    raise RuleError(f"{op.name} attr '{key}' must be {wanted}, got {v!r}")


def bind_attrs(name: str, node: Node) -> dict[str, Any]:
    """The node's attrs checked against its op's schema, with the defaults filled in."""
    op = OPS[node.op]
    out = {k: a.default for k, a in op.attrs.items()}
    for key, v in node.attrs.items():
        if key not in op.attrs:
            takes = f"{op.name} takes " + (", ".join(f"'{k}'" for k in op.attrs) if op.attrs else "no attrs")
            hint = did_you_mean(key, op.attrs)
            raise ShapeError(f"unknown attr '{key}' ({takes})", loc=f"nodes.{name}.attrs.{key}", hint=hint)
        try:
            out[key] = _check_attr(op, key, op.attrs[key], v)
        except RuleError as e:
            raise ShapeError(str(e), loc=f"nodes.{name}.attrs.{key}") from None
    return out


def infer(nodes: Mapping[str, Node], order: list[str], leaves: Mapping[str, Aval],
          attrs: Mapping[str, dict[str, Any]]) -> dict[str, Aval]:
    """Every node's Aval, in topological order; a ShapeError names the first node that fails."""
    avals: dict[str, Aval] = dict(leaves)
    for name in order:
        node = nodes[name]
        op = OPS[node.op]
        args = [avals[a] if isinstance(a, str) else Aval((), WEAK) for a in node.args]
        try:
            out = op.shape(args, **attrs[name])
            # a node of JSON numbers alone is a numpy float64 when it runs, a strong type (NEP 50):
            # weak as its aval, it would be taken for float32 next to float32 args
            avals[name] = Aval(out.shape, "float64") if out.dtype == WEAK else out
        except RuleError as e:
            msg = str(e)
            if not msg.startswith(op.name):
                msg = f"{op.name}: {msg}"
            raise ShapeError(msg, loc=f"nodes.{name}") from None
    return avals
