"""The full check's finite differences spread over processes, yours or ours.

A `Program` holds compiled closures and need not pickle, so a worker gets the spec as JSON text (every
leaf's value taken out: params become zeros of their shape, inputs are given at run time), the float64
values of every slot (the leaves and the base point's node values: a worker's own forward pass could
round differently on another BLAS thread count) and the targets' seeds, once per worker; it compiles
the spec again and differences the chunks it is sent. The chunks are those a single process runs
(differences.chunks: a function of the number of elements and the memory budget only), and each
chunk's arithmetic depends on its rows alone, so the result is bit-identical whatever the number of
workers.

``gradcheck(..., workers=N)`` starts a `ProcessPoolExecutor` of N processes (the payload goes in its
initializer); ``executor=`` takes any executor of yours: a `dask.distributed.Client` (the payload is
scattered to every worker once), anything with ``submit`` (`concurrent.futures`: the payload goes with
each task, compiled once per process), or anything with ``map`` (a Ray pool, `multiprocessing.Pool`).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from .differences import _Chunk, _chunk_fd
from .targets import _Target

_STATE: dict[str, tuple[Any, list[Any], list[_Target]]] = {}  # in a worker: token -> (engine, values, targets)
_LOCK = threading.Lock()
TASKS_PER_WORKER = 4  # tasks per worker: a slow worker holds up a quarter of its share, not all of it


class Unshippable(Exception):
    """The graph cannot be rebuilt in another process (an op defined in Python, not a built-in)."""


def shippable_spec(graph: Any) -> str:
    """The spec as JSON text with every leaf's value taken out (values go as arrays)."""
    plan = graph.plan
    own = sorted({s.op.name for s in plan.steps if not s.op.builtin or s.op.replaced})
    if own:
        raise Unshippable(f"op(s) {', '.join(repr(o) for o in own)} are not the built-in ones: a worker could not rebuild them")
    d = graph.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    for key in ("$schema", "expect", "train"):
        d.pop(key, None)
    for section in ("inputs", "params"):
        for name, decl in d.get(section, {}).items():
            for key in ("value", "file", "init"):
                decl.pop(key, None)
            if section == "params":
                decl["shape"], decl["init"] = list(np.shape(graph.defaults.get(name, graph.params.get(name)))), "zeros"
    return json.dumps(d)


def payload(graph: Any, vals_f: list[Any], targets: list[_Target]) -> tuple[str, str, list[Any], list[_Target]]:
    """(token, spec JSON, float64 slot values, the targets without their analytic gradients)."""
    slim = [_Target(t.node, t.slot, t.kind, t.seeds, t.labels, {}, t.f0) for t in targets]
    return uuid.uuid4().hex, shippable_spec(graph), list(vals_f), slim


def _rebuild(load: tuple[str, str, list[Any], list[_Target]]) -> tuple[Any, list[Any], list[_Target]]:
    token, text, vals, targets = load
    with _LOCK:  # a thread pool's workers share this process
        if token not in _STATE:
            from .. import api
            from .stacking import _Batched

            _STATE.clear()  # one check at a time per worker: the last one's arrays are freed
            graph = api.load(json.loads(text))
            _STATE[token] = (_Batched(graph.plan, vals), vals, targets)
        return _STATE[token]


def _init(load: tuple[str, str, list[Any], list[_Target]]) -> None:
    """A `ProcessPoolExecutor` initializer: the payload once per worker."""
    _rebuild(load)


def work(token: str, load: Any, steps: list[int], tasks: list[tuple[dict[int, Any], int]],
         sliced: bool = False) -> list[_Chunk]:
    """A worker's share: the chunks ``tasks`` ((one-hot rows by slot, count) each), differenced."""
    engine, vals, targets = _rebuild(load) if load is not None else _STATE[token]
    with np.errstate(all="ignore"):
        return [_chunk_fd(engine, vals, targets, steps, rows, kc, sliced=sliced) for rows, kc in tasks]


def _work_packed(args: tuple[Any, ...]) -> list[_Chunk]:
    return work(*args)


class Pool:
    """Where `differences._fd` sends its chunks: our process pool or the user's executor."""

    def __init__(self, load: tuple[str, str, list[Any], list[_Target]], workers: int | None = None,
                 executor: Any = None):
        self.token, self.load = load[0], load
        self.own = executor is None
        if self.own:
            from concurrent.futures import ProcessPoolExecutor

            executor = ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(load,))
        self.executor = executor
        self.width = workers or _width(executor)
        self.shipped: Any = None if self.own else load
        if not self.own and hasattr(executor, "scatter") and hasattr(executor, "submit"):  # dask: once per worker
            self.shipped = executor.scatter(load, broadcast=True)

    def run(self, deltas: dict[int, Any], parts: list[tuple[int, int]], steps: list[int],
            sliced: bool = False) -> Iterator[_Chunk]:
        """Each chunk's differences, in the order of ``parts`` (as they come back)."""
        n = max(1, min(len(parts), TASKS_PER_WORKER * self.width))
        cuts = np.linspace(0, len(parts), n + 1).round().astype(int)
        tasks = [[({s: d(c0, c1) for s, d in deltas.items()}, c1 - c0) for c0, c1 in parts[a:b]]
                 for a, b in itertools.pairwise(cuts) if b > a]
        args = [(self.token, self.shipped, steps, t, sliced) for t in tasks]
        if hasattr(self.executor, "submit"):
            futures = [self.executor.submit(work, *a) for a in args]
            for f in futures:
                yield from f.result()
        else:
            for got in self.executor.map(_work_packed, args):
                yield from got

    def close(self, abort: bool = False) -> None:
        """``abort`` (Ctrl-C, an error): stop our workers, not wait for them. A worker takes Ctrl-C
        for its chunk's error and goes on with the next: shutdown's wait for them all was a hang."""
        if not self.own:
            return
        if abort:  # ProcessPoolExecutor has no public way before Python 3.14 (terminate_workers)
            for p in list((getattr(self.executor, "_processes", None) or {}).values()):
                p.terminate()
        self.executor.shutdown(wait=not abort, cancel_futures=abort)


def _width(executor: Any) -> int:
    """How many workers an executor has, as far as one can tell (its tasks are split in that many shares)."""
    for attr in ("_max_workers", "_processes"):
        if isinstance(getattr(executor, attr, None), int):
            return int(getattr(executor, attr))
    try:  # dask.distributed.Client
        return max(1, sum(w.get("nthreads", 1) for w in executor.scheduler_info()["workers"].values()))
    except Exception:
        return os.cpu_count() or 1
