"""The gradient checker: analytic gradients against finite differences, and the blame on a node.

How it works (docs/gradcheck.md has the whole story and the numbers):

- Central differences with a step scaled to each element, ``h = eps * max(1, |x|)``, always evaluated
  in float64 (a float32 graph's leaves are cast; the analytic side stays float32).
- What fails is retried before it is called wrong: the step halved (Richardson extrapolation), then a
  step relative to a small |x|; in full mode, --fast and blame alike. Nothing checked is EMPTY, not PASS.
- Every perturbation of one leaf is stacked on a leading axis and pushed through the plan in one pass
  (`_Batched`): ops with a batching rule run once on the stack, the others once per row.
- Kinks are found exactly: for ops with a ``branch`` the branch arrays of the +h and -h evaluations are
  compared. An element whose stencil crosses a kink and whose numbers disagree is a KINK, not a FAIL.
- When anything fails, every node's own VJP and JVP is checked against finite differences of that node
  alone (random cotangent, random direction), so the report names the op that is wrong.
- Forward mode and reverse mode must agree: <u, J v> by JVP equals <J^T u, v> by VJP.
- ``taylor=True``: |f(x + h v) - f(x) - h <g, v>| shrinks like h^2 with a right gradient, like h with a
  wrong one, whatever eps; the observed orders are reported.

The parts, one module each:

- `results`: the verdicts (PASS, FAIL, KINK, UNCLEAR), `Tolerance` and the report dataclasses;
- `stacking`: `_Batched`, the plan's forward over stacked leaves, and each op's stacking rule;
- `context`: `_Ctx`, what one call shares between the parts below;
- `targets`: the loss or the output rows whose gradients are checked, with their analytic gradients;
- `differences`: the stacked central differences of the targets, and which perturbations crossed a kink;
- `classify`: PASS / FAIL / KINK per element, and the `InputCheck` built from them;
- `diagnose`: a check's census, and the pattern of a failing one (a factor, a sign, a transpose, ...);
- `input_checks`: full mode (every element, Richardson retry) and fast mode (random directions);
- `modes`: JVP against VJP; `blame`: each node's own VJP and JVP; `taylor`: the remainder test;
- `sweep`: `check_ops`, every op's samples through `gradcheck`;
- `function`: a Python function (numpy, torch, jax) checked as a temporary op in a one-node graph;
- `progress`: what a full check costs, when it samples (`MAX_ELEMENTS`, `MAX_WORK`), the progress bar.

`gradcheck` itself, which puts them together, is here.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..plan import Plan
from .blame import FD_TOL, _blame
from .classify import KINK_JUMP, WORST
from .context import _Ctx
from .differences import BUDGET, MEMORY, Delta, chunk_size, probe
from .input_checks import _fast, _full
from .modes import MODES_RTOL, _safe_modes
from .progress import (
    MAX_ELEMENTS,
    MAX_WORK,
    MIN_SAMPLE,
    PROGRESS_SECONDS,
    THROUGHPUT,
    budget_sizes,
    on_terminal,
    parse_bytes,
    parse_seconds,
    progress_bar,
    sample_size,
)
from .results import (
    EMPTY,
    FAIL,
    FD_DTYPE,
    KINK,
    PASS,
    TOLERANCES,
    UNCLEAR,
    Element,
    InputCheck,
    ModeCheck,
    NodeCheck,
    NodeKink,
    Report,
    TaylorRow,
    Tolerance,
)
from .stacking import _Batched
from .sweep import OpRow, check_ops, sample_spec
from .targets import _make_targets
from .taylor import _taylor

__all__ = ["BUDGET", "EMPTY", "FAIL", "FD_DTYPE", "FD_TOL", "KINK", "KINK_JUMP", "MAX_ELEMENTS", "MAX_WORK", "MEMORY",
           "MIN_SAMPLE", "MODES_RTOL", "PASS", "PROGRESS_SECONDS", "TOLERANCES", "UNCLEAR", "WORST", "Delta", "Element",
           "InputCheck", "ModeCheck", "NodeCheck", "NodeKink", "OpRow", "Report", "TaylorRow", "Tolerance", "check_ops",
           "gradcheck", "sample_spec"]


def _as_graph(graph: Any) -> Any:
    from ..api import Graph, load

    return graph if isinstance(graph, Graph) else load(graph)


def _leaf_values(graph: Any, inputs: Mapping[str, Any] | None) -> tuple[list[Any], list[Any], str]:
    leaves = graph._leaf_values(dict(inputs or {}))
    float32 = any(np.asarray(v).dtype == np.float32 for v in leaves)
    cast = [np.asarray(v, dtype=np.float64) if np.issubdtype(np.asarray(v).dtype, np.floating) else v for v in leaves]
    return leaves, cast, "float32" if float32 else "float64"


def _fp_quiet(fn: Callable[..., Report]) -> Callable[..., Report]:
    """numpy's floating-point warnings silenced: perturbed points past a domain's edge (log of
    a negative) are the checker's to report, as non-finite differences, not numpy's."""
    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> Report:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return quiet


def _no_writes_into_args(plan: Plan, leaves: list[Any], avals: Mapping[str, Any]) -> list[Any] | None:
    """An op from outside graphspec must not write into its args (a leaf the user gave, another
    node's value), nor return a shape its shape rule did not say: each such step's forward and
    VJPs run once here on copies that are compared after, in a pass over copies of the leaves.
    Built-ins are held to this by the tests. The pass's values are returned (None when every op is a
    built-in and nothing ran): once every op was seen to keep its args, they are the point's."""
    from ..errors import OpError
    from ..passes import pull

    if all(step.op.builtin for step in plan.steps):
        return None
    vals = plan.forward([np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in leaves])
    # the static shapes are this call's when every leaf has its declared shape
    static = all(avals.get(plan.names[i]) is not None and avals[plan.names[i]].shape == np.shape(vals[i])
                 for i in range(plan.n_leaves))
    for step in plan.steps:
        if step.op.builtin:
            continue
        want = avals.get(step.name)
        if static and want is not None and want.shape is not None and all(isinstance(d, int) for d in want.shape) \
                and np.shape(vals[step.out]) != tuple(want.shape):
            raise OpError(step.op.name, step.name, "forward", f"the forward returned shape {list(np.shape(vals[step.out]))}; "
                          f"its shape rule said {list(want.shape)} (op '{step.op.name}' defined at {step.op.origin})")
        argv = [np.array(vals[a], copy=True) if isinstance(vals[a], np.ndarray) else vals[a] for a in step.args]
        kept = [a.copy() if isinstance(a, np.ndarray) else a for a in argv]
        phase = "forward"
        try:
            with np.errstate(all="ignore"):
                ans = step.forward(*argv)
                ans_kept = np.array(ans, copy=True)
                _same_args(argv, kept, step, plan, phase)
                phase = "VJP"
                pull(step, np.ones(np.shape(ans)), ans, argv, tuple((i, a) for i, a in enumerate(step.args)
                                                                     if step.vjp[i] is not None))
        except OpError:
            raise
        except Exception:
            continue  # a rule that fails is reported by the passes, with its place
        _same_args(argv, kept, step, plan, phase)
        if not np.array_equal(np.asarray(ans), ans_kept, equal_nan=True):
            raise OpError(step.op.name, step.name, "VJP", f"a VJP wrote into the result 'ans' (op '{step.op.name}' "
                          f"defined at {step.op.origin})")
    return vals


def _same_args(argv: list[Any], kept: list[Any], step: Any, plan: Plan, phase: str) -> None:
    from ..errors import OpError

    for i, (a, k) in enumerate(zip(argv, kept, strict=True)):
        if isinstance(a, np.ndarray) and not np.array_equal(a, k, equal_nan=True):
            raise OpError(step.op.name, step.name, phase, f"it wrote into its argument '{plan.names[step.args[i]]}' "
                          f"(op '{step.op.name}' defined at {step.op.origin}); compute into a new array instead")


@_fp_quiet
def gradcheck(graph: Any, args: Any = None, *, grad: Callable[..., Any] | None = None,
              vjp: Callable[..., Any] | None = None, jvp: Callable[..., Any] | None = None,
              kink: Callable[..., Any] | None = None, vectorized: bool | None = None,
              inputs: Mapping[str, Any] | None = None, wrt: Sequence[str] | None = None,
              fast: bool = False, directions: int = 4, taylor: bool = False, strict: bool = False,
              max_elements: int | None = None, all_elements: bool = False, blame: bool | None = None,
              modes: bool = True, batch: bool = True, refine: bool = True, tolerance: Tolerance | None = None,
              jacobian_max: int = 64, projections: int = 3, seed: int = 0, progress: bool | None = None,
              memory: int | str | None = None, workers: int | None = None, executor: Any = None,
              budget: float | str | None = None) -> Report:
    """Check every gradient of a graph (a `Graph`, a spec path or a spec dict) against finite
    differences and return a `Report`.

    With a loss: d loss / d x for every param and float input with a gradient (``wrt`` to choose).
    Without: the Jacobian of each float output, in full when it has at most ``jacobian_max`` elements,
    else along ``projections`` random cotangents. ``fast``: ``directions`` random directional
    derivatives per input instead of every element. Big inputs are sampled at random in full mode
    (`MAX_ELEMENTS`, `MAX_WORK`); ``max_elements``: sample at most that many elements of each input;
    ``all_elements``: every element, whatever it costs. ``blame``: check every node's own VJP and JVP
    (default: when something fails). ``taylor``: the Taylor remainder test. ``strict``: kinks count as
    failures. ``tolerance``: a `Tolerance` instead of the dtype's default (`TOLERANCES`).
    ``refine=False``: no retry of failing elements with smaller steps. ``seed``: the random directions,
    cotangents and samples. ``batch=False`` evaluates one perturbation per forward pass (slow; the
    reference for the batched path). ``progress``: a progress bar on stderr (default: when stderr is a
    terminal and the check is expected to take more than `PROGRESS_SECONDS`).

    Scale: ``memory`` (bytes, or "512MB"): the stacked perturbations of one pass (default
    `MEMORY`, 8 MiB). ``workers=N``: the full check's differences over N processes; ``executor``: yours
    (a `concurrent.futures` executor, a `dask.distributed.Client`, a Ray pool: anything with ``submit`` or
    ``map``); the result is bit-identical to one process (checker/workers.py). ``budget`` (seconds, or
    "30s"): a random sample of each input's elements, seeded by ``seed``, that fits the time (estimated
    from timed probes); the report's ``sample`` says its size and coverage.

    A check with nothing to check (no param or input with a gradient, none the loss depends on, no
    float output with elements) is EMPTY, not PASS: ``report.ok`` is False.

    A Python function instead of a graph: ``gradcheck(f, args, grad=grad_f)`` (``vjp=``, ``jvp=``,
    ``kink=``, ``vectorized=``), or a torch or jax callable with its args; checker/function.py has the
    conventions."""
    if tolerance is not None and not isinstance(tolerance, Tolerance):  # else a float failed deep in the check,
        # and in the user's function's place (an OpError) when checking a function
        raise TypeError(f"tolerance must be a graphspec.checker.Tolerance(eps=..., rtol=..., atol=...), "
                        f"got {tolerance!r}")
    if callable(graph):  # one node applying a temporary op made of the function (checker/function.py)
        from .function import check_function

        if any(v is not None for v in (memory, workers, executor, budget)):
            raise TypeError("memory, workers, executor and budget are for checking a graph, not a Python function")
        return check_function(graph, args, grad=grad, vjp=vjp, jvp=jvp, kink=kink, vectorized=vectorized,
                              inputs=inputs, wrt=wrt, fast=fast, directions=directions, taylor=taylor, strict=strict,
                              max_elements=max_elements, all_elements=all_elements, blame=blame, modes=modes,
                              batch=batch, refine=refine, tolerance=tolerance, jacobian_max=jacobian_max,
                              projections=projections, seed=seed, progress=progress)
    if args is not None or vectorized is not None or any(r is not None for r in (grad, vjp, jvp, kink)):
        raise TypeError("args, grad, vjp, jvp, kink and vectorized are for checking a Python function, not a graph")
    start = time.perf_counter()
    g = _as_graph(graph)
    leaves_a, leaves_f, dtype = _leaf_values(g, inputs)
    names = list(dict.fromkeys(g.wrt if wrt is None else wrt))  # --wrt x --wrt x: x once, not its direction twice
    for n in names:
        if n not in g.wrt:
            from ..errors import InputError, did_you_mean

            raise InputError(f"'{n}' is not a param or float input with a gradient", loc=f"wrt.{n}",
                             hint=did_you_mean(n, g.wrt))
    plan: Plan = g.plan
    checked = _no_writes_into_args(plan, leaves_a, g.avals)  # before any pass could write into the user's arrays
    vals_a = checked if checked is not None else plan.forward(leaves_a)
    vals_f = vals_a if dtype == "float64" else plan.forward(leaves_f)
    tol = tolerance or TOLERANCES[dtype]
    ctx = _Ctx(g, plan, names, vals_a, vals_f, tol, np.random.default_rng(seed),
               _Batched(plan, vals_f, batch), max_elements, refine)
    if memory is not None:
        ctx.memory = parse_bytes(memory)
    budget_s = None if budget is None else parse_seconds(budget)  # a bad budget is an error before any work
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if dtype == "float32":
        ctx.notes.append("float32 graph: analytic gradients in float32, finite differences evaluated in float64 "
                         f"(the leaves cast to float64); tolerances rtol={tol.rtol:g}, atol={tol.atol:g}")
    for op in {s.op.name: s.op for s in plan.steps if s.op.replaced}.values():  # a replaced op is never silent
        ctx.notes.append(f"op '{op.name}' replaced by {op.origin}")
    if g.loss is None:
        ctx.notes.append("no loss: each output's Jacobian is checked (in full up to "
                         f"{jacobian_max} elements, else along {projections} random cotangents)")
    target_words = "the loss does not depend on it" if g.loss else "no output depends on it"
    unused = [n for n in names if n in g.unused_wrt]
    warnings = [f"{g.kind[n][:-1]} '{n}' has grad but {target_words}" for n in unused]

    def report(**parts: Any) -> Report:
        return Report(spec=g.source, name=g.spec.name, dtype=dtype, fd_dtype=FD_DTYPE, mode="fast" if fast else "full",
                      strict=strict, tolerance=tol, seconds=time.perf_counter() - start, warnings=warnings, **parts)

    if not names:
        return report(checks=[], modes=[], nodes=[], taylor=[], notes=ctx.notes,
                      empty="nothing to check: no param or float input with a gradient")
    try:
        targets = _make_targets(ctx, jacobian_max, projections)
    except Exception as e:  # a VJP that raises: find it node by node instead of crashing
        error = f"the backward pass raised {type(e).__name__}: {e}"
        return report(checks=[], modes=[], nodes=_blame(ctx), taylor=[], notes=[*ctx.notes, error], error=error)
    # differences of inf are nan: every element and every node would "fail", and blame would call
    # sound VJPs wrong; the one true finding is the point itself. A float32 graph may also overflow
    # where float64 does not (exp(90)): then its analytic side is inf.
    for vals, what in ((vals_f, "is not finite"), *([(vals_a, "overflows float32")] if vals_a is not vals_f else [])):
        if not all(np.all(np.isfinite(vals[t.slot])) for t in targets):
            step = plan.first_nonfinite(vals)
            where = f" (first produced by node '{step.name}' ({step.op.name}))" if step else ""
            error = f"a checked value {what} at this point{where}: its gradients cannot be checked here"
            return report(checks=[], modes=[], nodes=[], taylor=[], notes=ctx.notes, error=error)
    empty = _nothing(ctx, targets)
    if empty:
        return report(checks=[], modes=[], nodes=[], taylor=[], notes=ctx.notes, empty=empty)
    pool = None
    try:
        if not fast and ((workers is not None and workers > 1) or executor is not None):
            from .workers import Pool, Unshippable, payload

            try:
                pool = ctx.pool = Pool(payload(g, vals_f, targets), workers, executor)
            except Unshippable as e:
                ctx.notes.append(f"the differences ran in this process: {e}")
        elif fast and ((workers is not None and workers > 1) or executor is not None):
            ctx.notes.append("the differences ran in this process: workers and executors spread the full check's "
                             "elements; fast mode's few stacked passes are not worth shipping")
        expected, total = 0.0, 0.0
        if not fast:
            # the budget is the differences': what it buys must not hang on how long the loading took
            _sizes(ctx, names, targets, max_elements, all_elements, budget_s, seed, pool)
            total = float(sum(ctx.sizes.values()))
            if progress is not False and on_terminal():
                for n in names:  # the stacked numbers at the measured throughput, and every pass's own cost
                    row, chunk = chunk_size(ctx, n, targets)
                    expected += 2 * ctx.sizes[n] * row / THROUGHPUT + math.ceil(ctx.sizes[n] / chunk) * 1e-4
                expected /= pool.width if pool is not None else 1
        elif progress is not False and on_terminal():
            total = float(directions * len(names))
            row = ctx.engine.row_cost(ctx.engine.steps_for([t.slot for t in targets]))
            expected = 2.0 * directions * len(names) * (row + sum(ctx.x(n).size for n in names)) / THROUGHPUT
        with progress_bar(progress, expected, f"gradient check: {g.source or g.spec.name or 'graph'}", total) as bar:
            ctx.progress = bar
            checks = _fast(ctx, targets, directions) if fast else [c for n in names for c in _full(ctx, n, targets)]
            ctx.progress = None  # the bar counts the differences; the checks below are a fraction of them
            mode_rows = _safe_modes(ctx, targets) if modes else []
            taylor_rows = _taylor(ctx, targets) if taylor else []
            failing = any(r.status == FAIL for r in [*checks, *mode_rows, *taylor_rows])
            run_blame = bool(blame or (blame is None and failing))
            if bar is not None and run_blame:
                bar.phase("blame: each node's own VJP and JVP", len(ctx.plan.steps))
                ctx.progress = bar
            nodes = _blame(ctx) if run_blame else []
            ctx.progress = None
    except BaseException:
        if pool is not None:  # Ctrl-C or an error: the chunks still queued are dropped, not waited for
            pool.close(abort=True)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.close()
    if failing and nodes and not any(n.status == FAIL for n in nodes):
        ctx.notes.append("no node's own VJP or JVP is wrong locally: the failure may come from a kink, "
                         "a step size or a non-finite value (try --taylor)")
    return report(checks=checks, modes=mode_rows, nodes=nodes, taylor=taylor_rows, notes=ctx.notes,
                  evaluations=ctx.engine.evaluations, sample=ctx.sample)


def _sizes(ctx: _Ctx, names: list[str], targets: list[Any], max_elements: int | None, all_elements: bool,
           budget_s: float | None, seed: int, pool: Any) -> None:
    """How many elements of each input the full check differences (ctx.sizes); with a time budget,
    which ones (ctx.samples: a prefix of a permutation seeded by ``seed`` and the input's place, so a
    seed gives the same elements for the same size, and a bigger budget a superset)."""
    if budget_s is None:
        for n in names:
            row, _ = chunk_size(ctx, n, targets)
            ctx.sizes[n] = sample_size(ctx.x(n).size, row, max_elements, all_elements)
        return
    width = pool.width if pool is not None else 1
    costs = {}
    for n in names:
        per, per_pass, chunk = probe(ctx, n, targets)
        costs[n] = (int(ctx.x(n).size), per / width, per_pass / width, chunk)
    # the rest of the check (JVP vs VJP, the report) and a margin for the estimate's noise
    sizes = budget_sizes(costs, max(0.0, 0.8 * budget_s))
    for i, n in enumerate(names):
        size = int(ctx.x(n).size)
        k = min(sizes[n], size if max_elements is None else max_elements)
        ctx.sizes[n] = k
        if k < size:
            perm = np.random.default_rng([seed, i]).permutation(size)
            ctx.samples[n] = np.sort(perm[:k])
    checked, of = sum(ctx.sizes.values()), sum(int(ctx.x(n).size) for n in names)
    ctx.sample = {"budget_s": budget_s, "seed": seed, "elements": checked, "of": of,
                  "coverage": checked / of if of else 1.0, "sizes": dict(ctx.sizes)}
    ctx.notes.append(f"budget: checked a random sample of {checked:,} of {of:,} elements ({100 * checked / of:.3g}%) "
                     f"that fits the time budget, seed {seed} (the same seed, the same elements for the same size)"
                     if checked < of else f"budget: every one of the {of:,} elements fits the time budget")


def _nothing(ctx: _Ctx, targets: list[Any]) -> str:
    """Why there is nothing to check, or "" when there is something."""
    if not targets:  # outputs: [], or only int or empty ones, and no loss
        return "nothing to check: no loss and no float output with elements to differentiate"
    if ctx.graph.loss is not None and targets[0].seeds.size == 0:
        return f"nothing to check: the loss '{ctx.graph.loss}' has no elements"
    if all(n in ctx.graph.unused_wrt for n in ctx.wrt):
        return (f"nothing to check: {'the loss' if ctx.graph.loss else 'no output'} depends on "
                f"{'no' if ctx.graph.loss else 'any'} param or input with a gradient ({', '.join(ctx.wrt)})")
    if all(ctx.x(n).size == 0 for n in ctx.wrt):
        return "nothing to check: every param and input with a gradient is empty (" + \
            ", ".join(f"{n}: shape {list(np.shape(ctx.x(n)))}" for n in ctx.wrt) + ")"
    return ""
