"""graphspec: computational graphs as JSON data, run on numpy, with gradients you can trust.

    >>> import graphspec
    >>> g = graphspec.load("specs/lecture/mul.json")
    >>> g.grad()            # {'x': array(15.), 'y': array(10.)}

The names below are imported on first use, so `python -m graphspec --help` stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "api", "Graph": "api", "Result": "api", "Finding": "api", "NonFiniteWarning": "api",
    "GraphspecError": "errors", "SpecError": "errors", "ShapeError": "errors", "InputError": "errors",
    "NonFiniteError": "errors", "OpError": "errors",
    "gradcheck": "checker", "Report": "checker", "draw": "draw",
    "defop": "ops", "Attr": "ops", "Aval": "ops", "Op": "ops", "RuleError": "ops", "SYMMETRIC": "ops",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # draw: the module graphspec.draw is callable as its function draw
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'graphspec' has no attribute {name!r}")
