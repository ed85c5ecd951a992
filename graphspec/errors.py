"""One error type per user-facing failure; each carries the place it happened.

The CLI maps `SpecError` (and subclasses) to exit code 2 and prints `str(err)`, one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.5) -> str | None:
    """A hint like "did you mean 'matmul'?" or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f"did you mean '{close[0]}'?" if close else None


def format_loc(loc: Iterable[object]) -> str:
    """('nodes', 'h1', 'args', 1) -> 'nodes.h1.args[1]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class GraphspecError(Exception):
    """Base class: a message, the place in the spec, an optional hint."""

    exit_code = 2

    def __init__(self, message: str, loc: str | None = None, hint: str | None = None,
                 source: str | None = None):
        self.message = message
        self.loc = loc
        self.hint = hint
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.loc) if p]
        text = ": ".join([*parts, self.message])
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(GraphspecError):
    """The spec is malformed: bad JSON, bad keys, bad names, bad values, missing files."""


class GraphError(SpecError):
    """References, name clashes, cycles."""


class ShapeError(SpecError):
    """A shape or dtype does not fit an op, or an attr does not fit its schema."""


class InputError(SpecError):
    """A value given at run time does not fit its declaration."""


class UsageError(GraphspecError):
    """Bad command-line usage."""


class NonFiniteError(GraphspecError):
    """A node produced inf or nan."""

    exit_code = 1


class OpError(GraphspecError):
    """An op's own code (its forward, a VJP or a JVP) raised, or returned something that is not
    an array of the right shape: a bug in the op, not in the spec. Exit 1, as a failed check:
    something failed that the user did not write. The CLI's --traceback shows the cause."""

    exit_code = 1

    def __init__(self, op: str, node: str, phase: str, detail: str, source: str | None = None):
        self.op, self.node, self.phase = op, node, phase
        super().__init__(f"internal error in op '{op}' at node '{node}' ({phase}): {detail}",
                         hint="this is a bug in the op, not in your spec; --traceback shows where", source=source)
