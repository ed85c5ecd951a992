"""How much a check costs, whether it samples, and a progress bar for the long ones.

A full check differences every element of an input: two perturbed rows per element, each row as
large as the input plus every value the targets depend on. That is quadratic in the input's size
(30,000 elements: half a minute), so past a size the full check samples elements at random.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from typing import Any

from ..reading import amount, parse_bytes  # noqa: F401  (parse_bytes: the checker's memory budget)

MAX_ELEMENTS = 100_000  # elements of one input the full check differences at most, unless told otherwise
MAX_WORK = 5 * 10 ** 8  # element evaluations spent on one input's full check at most (~5 s), unless told
MIN_SAMPLE = 10  # a sample cut down by MAX_WORK keeps at least this many elements
THROUGHPUT = 1e8  # element evaluations per second of the stacked passes (docs/gradcheck.md has the figure)
PROGRESS_SECONDS = 2.0  # checks expected to take longer show a progress bar on a terminal


def sample_size(size: int, row_cost: int, max_elements: int | None, all_elements: bool) -> int:
    """How many elements of an input of ``size`` elements the full check differences: every one with
    ``all_elements``; at most ``max_elements`` when given; by default at most MAX_ELEMENTS and at most
    what MAX_WORK pays for (never fewer than MIN_SAMPLE)."""
    if all_elements:
        return size
    if max_elements is not None:
        return min(size, max_elements)
    affordable = max(MIN_SAMPLE, MAX_WORK // max(1, 2 * row_cost))
    return min(size, MAX_ELEMENTS, affordable)


class Bar:
    """The progress bar of one check: ``advance(n)`` moves the current phase (the differences: one
    unit per perturbed element or direction); ``phase(label, total)`` starts the next one (the
    blame pass: one unit per node)."""

    def __init__(self, bar: Any, label: str, total: float):
        self.bar, self.task, self.left = bar, bar.add_task(label, total=total), total

    def advance(self, done: float) -> None:
        done = min(done, self.left)  # retries of failing elements come on top: the bar stops at its end
        self.left -= done
        self.bar.advance(self.task, done)

    def phase(self, label: str, total: float) -> None:
        self.advance(self.left)
        self.task, self.left = self.bar.add_task(label, total=total), total

    __call__ = advance


def on_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


@contextlib.contextmanager
def progress_bar(enabled: bool | None, seconds: float, label: str, total: float) -> Iterator[Bar | None]:
    """A rich progress bar with the time left on stderr, when stderr is a terminal and the check is
    expected to take more than PROGRESS_SECONDS (``enabled=True``: whatever it takes; ``False``:
    never). Nothing at all in a pipe or a log."""
    if enabled is False or not on_terminal() or (enabled is None and seconds <= PROGRESS_SECONDS):
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..render import console

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=console(stderr=True), transient=True) as bar:
        yield Bar(bar, label, total)

_SECONDS = {"": 1.0, "s": 1.0, "ms": 1e-3, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_seconds(value: int | float | str) -> float:
    """A time budget in seconds: 30, "30s", "500ms", "2m"."""
    return amount(value, _SECONDS, "budget", "30s or 2m")


def budget_sizes(costs: dict[str, tuple[int, float, float, int]], seconds: float) -> dict[str, int]:
    """Elements per input that fit ``seconds``: the same share q of every input, the largest q whose
    estimated cost, sum over inputs of ceil(q n / chunk) * per_pass + q n * per_element, fits (``costs``:
    name -> (n, per_element, per_pass, chunk)); at least one element each."""
    def cost(q: float) -> float:
        return sum(math.ceil(q * n / c) * ov + q * n * per for n, per, ov, c in costs.values())

    if cost(1.0) <= seconds:
        return {name: n for name, (n, _, _, _) in costs.items()}
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost(mid) <= seconds else (lo, mid)
    return {name: max(1, min(n, math.floor(lo * n))) for name, (n, _, _, _) in costs.items()}
