"""The op table. Importing this package registers every op family in `OPS`."""

from . import conv, elementwise, linalg, nn, reductions, reshaping  # noqa: F401  (registration)
from .registry import OPS, SYMMETRIC, Attr, Aval, Op, RuleError, defop, unbroadcast

__all__ = ["OPS", "SYMMETRIC", "Attr", "Aval", "Op", "RuleError", "defop", "unbroadcast"]
