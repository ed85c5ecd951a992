"""Static shape and dtype inference, before anything runs, and attr checking.

Symbolic dims ("N") stay symbolic until values bind them; with every leaf's shape known, the
check is exact, so a graph that passes it cannot fail in numpy on a shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ErrorList, ShapeError, did_you_mean
from .ops import OPS, Attr, Aval, Op, RuleError
from .ops.registry import WEAK
from .spec import INT64, Node, json_integer, shown


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_WANTED = {"float": "a number", "int": "an integer", "axis": "an integer axis", "bool": "true or false",
           "enum": "a string", "axes": "a list of integer axes or null",
           "reduce_axis": "an integer axis, a list of them, or null (all axes)",
           "shape": "a list of integer sizes", "opt_float": "a number or null",
           "pair": "an integer or a list [h, w] of two integers",
           "opt_pair": "an integer, a list [h, w] of two integers, or null",
           "slices": "a list with one [start, stop] or [start, stop, step] per axis (integers or null, "
                     "as in Python's x[start:stop:step])"}


def _check_attr(op: Op, key: str, spec: Attr, v: Any) -> Any:
    """An attr's value as its kind wants it. JSON's types, strictly: true is no number, an
    integer may be written 2.0 (as JSON Schema counts integers) but not 2.5 or 1e-400."""
    kind = spec.kind
    if type(v) is int and kind in ("int", "axis", "reduce_axis") and INT64[0] <= v < INT64[1]:
        return v  # the common case first, without a call
    if kind in ("float", "opt_float") and (isinstance(v, float) or _is_int(v)):
        try:
            if math.isfinite(float(v)):
                return float(v)
        except OverflowError:  # an integer beyond float64
            pass
        raise RuleError(f"{op.name} attr '{key}' must be a finite number, got {v!r:.40}")
    if kind == "bool" and isinstance(v, bool):
        return v
    if kind == "enum" and isinstance(v, str):
        if v in spec.choices:
            return v
        hint = did_you_mean(v, spec.choices)
        raise RuleError(f"'{v}' is not one of {', '.join(spec.choices)}" + (f" ({hint})" if hint else ""))
    if kind in ("axes", "reduce_axis", "opt_float", "opt_pair") and v is None:
        return None
    try:
        if kind in ("int", "axis", "reduce_axis") and isinstance(v, int | float):
            return json_integer(v)
        if kind in ("pair", "opt_pair") and isinstance(v, int | float):
            n = json_integer(v)
            return (n, n)
        if kind in ("axes", "reduce_axis", "shape") and isinstance(v, list):
            return tuple(json_integer(a) for a in v)
        if kind in ("pair", "opt_pair") and isinstance(v, list) and len(v) == 2:
            return tuple(json_integer(a) for a in v)
        if kind == "slices" and isinstance(v, list) and all(isinstance(s, list) and len(s) in (2, 3) for s in v):
            return tuple(tuple(None if a is None else json_integer(a) for a in s) for s in v)
    except ValueError as e:  # a number, but no integer: say why (true, 2.5, 1e-400, too big)
        raise RuleError(f"{op.name} attr '{key}' must be {_WANTED[kind]}: {e}") from None
    raise RuleError(f"{op.name} attr '{key}' must be {_WANTED[kind]}, got {shown(v)}")


def bind_attrs(name: str, node: Node, errors: ErrorList | None = None) -> dict[str, Any] | None:
    """The node's attrs checked against its op's schema, with the defaults filled in. Every
    wrong attr is an error: raised together, or with ``errors`` added to it (and None back)."""
    op = OPS[node.op]
    out = {k: a.default for k, a in op.attrs.items()}
    if not node.attrs:
        return out
    errs = ErrorList() if errors is None else errors
    ok = True
    for key, v in node.attrs.items():
        if key not in op.attrs:
            takes = f"{op.name} takes " + (", ".join(f"'{k}'" for k in op.attrs) if op.attrs else "no attrs")
            errs.report(ShapeError, f"unknown attr '{key}' ({takes})", loc=f"nodes.{name}.attrs.{key}",
                        hint=lambda: did_you_mean(key, op.attrs))  # noqa: B023 - called at once
            ok = False
            continue
        try:
            out[key] = _check_attr(op, key, op.attrs[key], v)
        except RuleError as e:
            errs.report(ShapeError, str(e), loc=f"nodes.{name}.attrs.{key}")
            ok = False
    if errors is None:
        errs.raise_any()
    return out if ok else None


def infer(nodes: Mapping[str, Node], order: list[str], leaves: Mapping[str, Aval],
          attrs: Mapping[str, dict[str, Any]], errors: ErrorList | None = None) -> dict[str, Aval]:
    """Every node's Aval, in topological order. Without ``errors``, a ShapeError names the first
    node that fails; with it, every node that fails is added to it, and the nodes that read a
    failed one (or one missing from ``leaves`` or ``attrs``: failed before) are skipped, not
    blamed again, while the independent ones go on."""
    avals: dict[str, Aval] = dict(leaves)
    for name in order:
        node = nodes[name]
        op = OPS[node.op]
        try:
            out = op.shape([avals[a] if isinstance(a, str) else Aval((), WEAK) for a in node.args], **attrs[name])
            # a node of JSON numbers alone is a numpy float64 when it runs, a strong type (NEP 50):
            # weak as its aval, it would be taken for float32 next to float32 args
            avals[name] = Aval(out.shape, "float64") if out.dtype == WEAK else out
        except RuleError as e:
            msg = str(e)
            if not msg.startswith(op.name):
                msg = f"{op.name}: {msg}"
            if errors is None:
                raise ShapeError(msg, loc=f"nodes.{name}") from None
            errors.report(ShapeError, msg, loc=f"nodes.{name}")
        except KeyError:
            # an arg or the attrs failed before (reported there); a KeyError of the shape rule's own is a bug
            if errors is None or (name in attrs and all(a in avals for a in node.args if isinstance(a, str))):
                raise
    return avals
