"""One error type per user-facing failure; each carries the place it happened.

A spec with several independent mistakes gets them all at once, as a compiler gives them: a
`SpecError` may carry a list of located errors (`.errors`, up to `MAX_ERRORS`; the rest are
counted in `.more`). `str(err)` is one line per error; the CLI prints each as `error: ...`
and maps `SpecError` (and subclasses) to exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

MAX_ERRORS = 20  # past this many, a spec's errors are counted, not listed (nor worked out: hints cost)
MAX_HINT_CHOICES = 2000


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.5) -> str | None:
    """A hint like "did you mean 'matmul'?" or None when nothing is close. Among many names
    (a big spec's), only those of about the word's length and with its first letter are
    compared: difflib compares them one by one, which is slow among a big spec's names."""
    choices = list(choices)
    if len(choices) > MAX_HINT_CHOICES:
        choices = [c for c in choices if c[:1] == word[:1] and abs(len(c) - len(word)) <= 2][:MAX_HINT_CHOICES]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
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


def one_line(message: str, loc: str | None = None, hint: str | None = None, source: str | None = None) -> str:
    """`source: loc: message (hint)`, the parts there are, on one line."""
    text = ": ".join([*(p for p in (source, loc) if p), message])
    text = f"{text} ({hint})" if hint else text
    return text.replace("\n", "\\n").replace("\r", "\\r")  # a name with a line break must not make two lines


class GraphspecError(Exception):
    """Base class: a message, the place in the spec, an optional hint. One error, or a group
    of them (`.errors`), whose first gives the group its message, place and hint."""

    exit_code = 2

    def __init__(self, message: str, loc: str | None = None, hint: str | None = None,
                 source: str | None = None):
        self.message = message
        self.loc = loc
        self.hint = hint
        self._source = source
        self._group: list[GraphspecError] | None = None
        self.more = 0  # errors past the cap, counted but not kept
        super().__init__(message)

    @property
    def errors(self) -> list[GraphspecError]:
        """Every located error this one stands for (itself, when it is one)."""
        return self._group or [self]

    @property
    def source(self) -> str | None:
        return self._source

    @source.setter
    def source(self, value: str | None) -> None:
        # a group is named after its file as one error is: its members that have no file get it
        self._source = value
        for e in self._group or []:
            if e.source is None:
                e.source = value

    def line(self) -> str:
        """This error alone, `source: loc: message (hint)`."""
        return one_line(self.message, self.loc, self.hint, self.source)

    def lines(self) -> list[str]:
        """One line per error (the CLI prefixes each with `error: `)."""
        out = [e.line() for e in self.errors]
        if self.more:
            where = f"{self.source}: " if self.source else ""
            out.append(f"{where}... and {self.more} more error{'s' if self.more > 1 else ''} "
                       f"(only the first {len(self.errors)} are listed)")
        return out

    def records(self) -> list[dict[str, Any]]:
        """The errors as JSON-ready records (`validate --format json`)."""
        return [{"source": e.source, "loc": e.loc, "message": e.message, "hint": e.hint} for e in self.errors]

    def to_json(self) -> dict[str, Any]:
        """This error as JSON, the same in every command (README, "Errors as JSON"): its parts, the
        lines printed on stderr, the exit code, and a spec's every error."""
        return {"message": self.message, "source": self.source, "loc": self.loc, "hint": self.hint, "text": str(self),
                "exit_code": self.exit_code, "errors": self.records(), "more_errors": self.more}

    def __str__(self) -> str:
        return "\n".join(self.lines())


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


def combine(errors: Sequence[SpecError], more: int = 0) -> SpecError:
    """One exception for several errors: of the most specific class they all share (a group of
    GraphErrors is a GraphError), carrying them all."""
    if len(errors) == 1 and not more:
        return errors[0]
    first = errors[0]
    cls = next(c for c in type(first).__mro__ if all(isinstance(e, c) for e in errors))
    group = cls(first.message, loc=first.loc, hint=first.hint, source=first.source)
    group._group = list(errors)
    group.more = more
    group.source = first.source  # one spec's errors: those found before the file was known get its name
    return group


class ErrorList:
    """The errors found so far while checking a spec, up to a cap; the rest are counted."""

    def __init__(self, cap: int = MAX_ERRORS):
        self.found: list[SpecError] = []
        self.more = 0
        self.cap = cap

    def __bool__(self) -> bool:
        return bool(self.found or self.more)

    @property
    def full(self) -> bool:
        return len(self.found) >= self.cap

    def skip(self) -> bool:
        """Past the cap: count one more error and say so, so the caller need not work it out."""
        if self.full:
            self.more += 1
        return self.full

    def add(self, err: SpecError) -> None:
        """Keep ``err`` (every member of a group)."""
        for e in err.errors:
            if not self.skip():
                self.found.append(e)  # type: ignore[arg-type]
        self.more += err.more

    def report(self, cls: type[SpecError], message: str, loc: str,
               hint: str | Callable[[], str | None] | None = None) -> None:
        """Keep a new error; a hint given as a function is worked out only for an error kept."""
        if self.skip():
            return
        self.found.append(cls(message, loc=loc, hint=hint() if callable(hint) else hint))

    def raise_any(self, key: Callable[[SpecError], Any] | None = None) -> None:
        """Raise every error found as one (in the order of ``key``, say the file's), if any."""
        if self:
            raise combine(sorted(self.found, key=key) if key else self.found, self.more)
