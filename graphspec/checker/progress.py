"""How much a check costs, whether it samples, and a progress bar for the long ones.

A full check differences every element of an input: two perturbed rows per element, each row as
large as the input plus every value the targets depend on. That is quadratic in the input's size
(30,000 elements: half a minute), so past a size the full check samples elements at random.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

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


@contextlib.contextmanager
def progress_bar(enabled: bool | None, work: float, label: str) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar on stderr, advanced by element evaluations done, when stderr is a terminal and
    the check is expected to take more than PROGRESS_SECONDS (``enabled=True``: whatever it takes;
    ``False``: never). Nothing at all in a pipe or a log."""
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    if enabled is False or not (isatty and isatty()) or (enabled is None and work / THROUGHPUT <= PROGRESS_SECONDS):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=Console(file=stream), transient=True) as bar:
        task = bar.add_task(label, total=work)
        yield lambda done: bar.advance(task, done)
