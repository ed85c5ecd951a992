"""Gradient descent on a graph's params: minibatches of the `train.data` inputs, `sgd` or
`adam` with PyTorch's update rules, and a log per epoch (and per step on request)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .api import Graph
from .errors import NonFiniteError, SpecError
from .ops import OPS
from .spec import Adam, AdamOptimizer, Sgd, Train
from .values import as_array, read_file


class Optimizer:
    """One update rule over named arrays."""

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


@dataclass
class SGD(Optimizer):
    """torch.optim.SGD: v = momentum * v + g (v = g on the first step); p -= lr * v."""

    cfg: Sgd
    velocity: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, g in grads.items():
            if self.cfg.momentum:
                v = self.velocity.get(name)
                g = self.velocity[name] = g if v is None else self.cfg.momentum * v + g
            params[name] = params[name] - self.cfg.lr * g


@dataclass
class AdamOpt(Optimizer):
    """torch.optim.Adam (bias-corrected moments, eps added to the corrected sqrt)."""

    cfg: Adam
    t: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.cfg.betas
        for name, g in grads.items():
            m = self.m[name] = b1 * self.m.get(name, 0.0) + (1 - b1) * g
            v = self.v[name] = b2 * self.v.get(name, 0.0) + (1 - b2) * g * g
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            params[name] = (params[name] - self.cfg.lr * m_hat / (np.sqrt(v_hat) + self.cfg.eps)).astype(params[name].dtype)


def optimizer_for(cfg: Train) -> Optimizer:
    opt = cfg.optimizer
    return AdamOpt(opt.adam) if isinstance(opt, AdamOptimizer) else SGD(opt.sgd)


@dataclass(frozen=True)
class StepLog:
    epoch: int
    step: int
    batch: slice | np.ndarray
    loss: float  # before the update
    grads: dict[str, np.ndarray]
    loss_after: float | None = None  # the same batch after the update (only when asked)


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    loss: float  # mean of the batch losses, each taken before its update
    accuracy: float | None = None


def training_data(graph: Graph, data: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The arrays named by `train.data` (files relative to the spec), or the given ones, or
    by default the inputs' own values; every array has the same number of rows."""
    cfg = graph.spec.train
    arrays: dict[str, np.ndarray] = {}
    if data is not None:
        arrays = {n: as_array(v, graph.decls[n].dtype, f"data.{n}") for n, v in data.items()}
    elif cfg is not None and cfg.data:
        for name, path in cfg.data.items():
            arrays[name] = as_array(read_file(graph.base / path, None, f"train.data.{name}"), graph.decls[name].dtype,
                                    f"train.data.{name}")
    else:
        arrays = {n: graph.defaults[n] for n in graph.spec.inputs if graph.defaults[n] is not None and np.ndim(graph.defaults[n])}
    rows = {n: len(a) for n, a in arrays.items() if np.ndim(a)}
    if len(set(rows.values())) > 1:
        raise SpecError("training data of different lengths: " + ", ".join(f"{n} has {k} rows" for n, k in rows.items()),
                        loc="train.data")
    if 0 in rows.values():  # no batch to draw (a batch size of 0 rows made range() raise)
        raise SpecError(f"no training data: {', '.join(rows)} {'has' if len(rows) == 1 else 'have'} 0 rows", loc="train.data")
    return arrays


def _batches(n: int, size: int | None, rng: np.random.Generator | None) -> Iterator[np.ndarray | slice]:
    order = rng.permutation(n) if rng is not None else None
    size = size or n
    for start in range(0, n, size):
        yield order[start:start + size] if order is not None else slice(start, start + size)


def accuracy(graph: Graph, data: dict[str, np.ndarray]) -> float:
    """Share of rows whose argmax over the class axis of the class loss's scores is the label
    (the first node whose op scores classes: its record's ``classes``)."""
    plan = graph.plan
    step = next((s for s in plan.steps if s.op.classes is not None), None)
    if step is None:
        ops = ", ".join(sorted(name for name, op in OPS.items() if op.classes is not None))
        raise SpecError(f"the accuracy metric needs a class loss node ({ops})", loc="train.metrics")
    vals = graph.evaluate(data, with_grads=False).values
    scores, labels = (np.asarray(vals[plan.names[a]]) for a in step.args[:2])
    axis = step.op.classes(**step.attrs)
    if labels.dtype.kind == "f":
        labels = np.argmax(labels, axis=axis)
    return float(np.mean(np.argmax(scores, axis=axis) == labels))


def train(graph: Graph, *, data: dict[str, Any] | None = None, epochs: int | None = None,
          on_step: Callable[[StepLog], None] | None = None, on_epoch: Callable[[EpochLog], None] | None = None,
          loss_after: bool = False, check_finite: str = "raise") -> list[EpochLog]:
    """Train ``graph.params`` in place; returns the log of every epoch. A non-finite loss or
    gradient stops it with a `NonFiniteError` naming the step and the first node (the params
    are left as they were before that step); ``check_finite="warn"`` goes on, as PyTorch would."""
    cfg = graph.spec.train or Train.model_validate({"optimizer": {"sgd": {"lr": 0.01}}})
    if graph.loss is None:
        raise SpecError("training needs a loss", loc="loss")
    shape = graph.avals[graph.loss].shape  # None: known at run time, where a non-scalar loss is an error anyway
    if shape is not None and shape != ():  # as torch's loss.backward(): a seed weights gradients, it is no loss to log
        raise SpecError(f"training needs a scalar loss, '{graph.loss}' has shape {list(shape)}", loc="loss",
                        hint="reduce it with sum or mean")
    arrays = training_data(graph, data)
    n = next((len(a) for a in arrays.values() if np.ndim(a)), 1)
    opt = optimizer_for(cfg)
    rng = np.random.default_rng(graph.spec.seed) if cfg.shuffle else None
    trained = [p for p in graph.params if p in graph.wrt]
    log = []
    step = 0
    epochs = cfg.epochs if epochs is None else epochs
    for epoch in range(epochs):
        losses = []
        for batch in _batches(n, cfg.batch_size, rng):
            feed = {k: (a[batch] if np.ndim(a) else a) for k, a in arrays.items()}
            try:
                loss, grads = graph.value_and_grad(feed, check_finite=check_finite)
            except NonFiniteError as e:  # diverged (say lr too large): the params would turn to nan
                e.message = f"training stopped at step {step + 1} (epoch {epoch}): {e.message}"
                raise
            grads = {p: grads[p] for p in trained}
            opt.step(graph.params, grads)
            step += 1
            losses.append(float(loss))
            if on_step is not None:
                after = float(graph.evaluate(feed, with_grads=False).loss) if loss_after else None
                on_step(StepLog(epoch, step, batch, float(loss), grads, after))
        acc = accuracy(graph, arrays) if "accuracy" in cfg.metrics else None
        entry = EpochLog(epoch, float(np.mean(losses)), acc)
        log.append(entry)
        if on_epoch is not None and (epoch % cfg.log_every == 0 or epoch == epochs - 1):
            on_epoch(entry)
    return log
