"""graphspec: computational graphs as JSON data, run on numpy, with gradients you can trust.

    >>> import graphspec
    >>> g = graphspec.load("specs/lecture/mul.json")
    >>> g.grad()            # {'x': array(15.), 'y': array(10.)}
    >>> graphspec.train(graphspec.load("specs/mlp/spiral.json"), epochs=5)   # the log per epoch

The names below are imported on first use, so `python -m graphspec --help` stays instant.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "api", "Graph": "api", "Result": "api", "Finding": "api", "NonFiniteWarning": "api",
    "GraphspecError": "errors", "SpecError": "errors", "ShapeError": "errors", "InputError": "errors",
    "NonFiniteError": "errors", "OpError": "errors",
    "gradcheck": "checker", "Report": "checker", "explain": "explain", "Explanation": "explain", "draw": "draw",
    "defop": "ops", "Attr": "ops", "Aval": "ops", "Op": "ops", "RuleError": "ops", "SYMMETRIC": "ops",
    "train": "train",
}
__all__ = sorted(_EXPORTS)
# the submodules the docs call by their dotted names (graphspec.testing.assert_gradients, as np.testing works
# after `import numpy`), imported on first use like the names above
_SUBMODULES = ("checker", "errors", "inputs", "ops", "reading", "testing")


class _CallableModule(types.ModuleType):
    """A submodule named as the function it holds (graphspec.explain, graphspec.draw). Importing a submodule makes it
    the package's attribute, over the lazy name: calling the module calls its function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def _callable(module_name: str) -> None:
    sys.modules[module_name].__class__ = _CallableModule


def __getattr__(name: str) -> Any:
    if _EXPORTS.get(name) == name:  # draw, explain, train: the module itself, callable as its function
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'graphspec' has no attribute {name!r}")
