"""Gradient descent on a graph's params: minibatches of the `train.data` inputs (files, or
built-in teaching data), `sgd` (momentum, Nesterov, dampening), `adam` and `adamw` with
PyTorch's update rules and weight decay, per-epoch learning-rate schedules, a validation
split, metrics, and checkpoints that resume to the same numbers, bit for bit."""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from . import _callable
from .api import Graph
from .errors import NonFiniteError, SpecError, UsageError
from .graph import train_name_problems
from .ops import OPS
from .spec import Adam, AdamOptimizer, AdamW, AdamWOptimizer, DataSource, Schedule, Sgd, Train, _split
from .values import as_array, init_param, read_file, read_named_arrays

_callable(__name__)  # graphspec.train(graph, ...) is this module's train(), imported or not

# what `train` uses when a spec has no train block (docs/format.md, "Train", says so)
DEFAULT_TRAIN: dict[str, Any] = {"optimizer": {"sgd": {"lr": 0.01}}}
OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adamw")  # momentum: sgd with momentum 0.9 unless given
CHECKPOINT_FORMAT = "graphspec-checkpoint-1"


# -- optimizers ---------------------------------------------------------------------------------

class Optimizer:
    """One update rule over named arrays; ``lr`` is set by the schedule before each epoch."""

    lr: float

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Arrays by "kind.param", and scalars under "scalars" (for a checkpoint)."""
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


@dataclass
class SGD(Optimizer):
    """torch.optim.SGD: g += wd * p; b = g on the first step, then b = momentum * b + (1 -
    dampening) * g; Nesterov uses g + momentum * b; p -= lr * g."""

    cfg: Sgd
    velocity: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lr = self.cfg.lr

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        c = self.cfg
        for name, g in grads.items():
            if c.weight_decay:
                g = g + c.weight_decay * params[name]
            if c.momentum:
                v = self.velocity.get(name)
                v = self.velocity[name] = g if v is None else c.momentum * v + (1 - c.dampening) * g
                g = g + c.momentum * v if c.nesterov else v
            params[name] = params[name] - self.lr * g

    def state(self) -> dict[str, Any]:
        return {"scalars": {}, **{f"velocity.{n}": v for n, v in self.velocity.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.velocity = {k.partition(".")[2]: v for k, v in state.items() if k.startswith("velocity.")}


@dataclass
class AdamOpt(Optimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient) and, with ``decoupled``,
    torch.optim.AdamW (p *= 1 - lr * wd before the step); the same arithmetic as torch's."""

    cfg: Adam | AdamW
    decoupled: bool = False
    t: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lr = self.cfg.lr

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        c = self.cfg
        b1, b2 = c.betas
        step_size = self.lr / (1 - b1**self.t)
        bc2_sqrt = math.sqrt(1 - b2**self.t)
        for name, g in grads.items():
            p = params[name]
            if c.weight_decay:
                if self.decoupled:
                    p = p * (1 - self.lr * c.weight_decay)
                else:
                    g = g + c.weight_decay * p
            m = self.m.get(name)
            m = self.m[name] = (1 - b1) * g if m is None else m + (1 - b1) * (g - m)  # torch's lerp
            v = self.v.get(name)
            v = self.v[name] = (1 - b2) * (g * g) if v is None else b2 * v + (1 - b2) * (g * g)
            params[name] = (p - step_size * (m / (np.sqrt(v) / bc2_sqrt + c.eps))).astype(p.dtype, copy=False)

    def state(self) -> dict[str, Any]:
        return {"scalars": {"t": self.t}, **{f"m.{n}": a for n, a in self.m.items()}, **{f"v.{n}": a for n, a in self.v.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["scalars"]["t"])
        self.m = {k[2:]: a for k, a in state.items() if k.startswith("m.")}
        self.v = {k[2:]: a for k, a in state.items() if k.startswith("v.")}


def optimizer_for(cfg: Train) -> Optimizer:
    opt = cfg.optimizer
    if isinstance(opt, AdamWOptimizer):
        return AdamOpt(opt.adamw, decoupled=True)
    return AdamOpt(opt.adam) if isinstance(opt, AdamOptimizer) else SGD(opt.sgd)


def lr_at(cfg: Train, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): the closed forms of torch.optim.lr_scheduler's
    StepLR, CosineAnnealingLR and LinearLR, stepped once per epoch."""
    base = next(iter(cfg.optimizer.model_dump().values()))["lr"]
    s: Schedule | None = cfg.schedule
    if s is None:
        return base
    if s.step is not None:
        return base * s.step.gamma ** (epoch // s.step.step_size)
    if s.cosine is not None:
        c = s.cosine
        return c.eta_min + (base - c.eta_min) * (1 + math.cos(math.pi * epoch / c.t_max)) / 2
    w = s.linear
    assert w is not None
    return base * (w.start_factor + (w.end_factor - w.start_factor) * min(epoch, w.total_iters) / w.total_iters)


# -- the configuration: the train block with overrides ---------------------------------------

def config(graph: Graph, overrides: Mapping[str, Any] | None = None, base: Mapping[str, Any] | None = None) -> Train:
    """The train block (``base``, default the spec's, or `DEFAULT_TRAIN` without one) with
    ``overrides``: any key of the block (`epochs`, `batch_size`, `shuffle`, `log_every`,
    `metrics`, `validation`, `schedule`, `data`), and the optimizer's: `optimizer` (a name of
    `OPTIMIZER_NAMES`), `lr`, `momentum`, `dampening`, `nesterov`, `weight_decay`, `betas`,
    `eps`. None means "not given". A bad value is a UsageError naming the key."""
    if base is None:
        spec_train = graph.spec.train
        base = spec_train.model_dump(mode="json", exclude_none=True, warnings=False) if spec_train is not None else DEFAULT_TRAIN
    doc = json.loads(json.dumps(base))
    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    (kind, opts), = doc["optimizer"].items()
    name = o.pop("optimizer", None)
    if name is not None:
        if name not in OPTIMIZER_NAMES:
            raise UsageError(f"optimizer: {name!r} is not one of {', '.join(OPTIMIZER_NAMES)}")
        new = "sgd" if name == "momentum" else name
        if new != kind:  # another rule: only the learning rate carries over
            opts = {"lr": opts["lr"]} if "lr" in opts else {}
            kind = new
        if name == "momentum" and not opts.get("momentum") and "momentum" not in o:
            opts["momentum"] = 0.9
    for key in ("lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps"):
        if key in o:
            opts[key] = list(o.pop(key)) if key == "betas" else o.pop(key)
    if kind == "sgd" and "lr" not in opts:
        opts["lr"] = DEFAULT_TRAIN["optimizer"]["sgd"]["lr"]
    doc["optimizer"] = {kind: opts}
    doc.update(o)
    misplaced = [k for k in (("momentum", "dampening", "nesterov") if kind != "sgd" else ("betas", "eps")) if k in opts]
    if misplaced:
        raise UsageError(f"{misplaced[0]} is an option of {'sgd' if kind != 'sgd' else 'adam and adamw'}, "
                         f"and the optimizer is {kind}")
    try:
        cfg = Train.model_validate(doc)
    except ValidationError as e:
        errors = e.errors()  # of the optimizer union, the member that was meant speaks
        tag = {"sgd": "SgdOptimizer", "adam": "AdamOptimizer", "adamw": "AdamWOptimizer"}.get(kind)
        first = next((x for x in errors if "optimizer" not in x["loc"] or tag in x["loc"]), errors[0])
        loc = ".".join(str(p) for p in _split(("train", *first["loc"]))[0])  # the union tags out, as load says it
        raise UsageError(f"{loc}: {first['msg']} (with the overrides given)") from None
    for message, where, hint in train_name_problems(cfg, graph.program.structure.names, graph.spec):
        raise UsageError(f"{message} (with the overrides given)", loc=where, hint=hint())
    return cfg


def reseed(graph: Graph, seed: int) -> None:
    """Redraw every param that has an init (not a value or a file) from ``seed`` instead of the
    spec's: what ``--seed`` does before training."""
    for name, decl in graph.spec.params.items():
        if decl.init is not None and decl.value is None and decl.file is None:
            graph.params[name] = init_param(name, decl, seed)


def spec_hash(graph: Graph) -> str:
    """What a checkpoint must match to be resumed: the spec's content (not its name, its
    description or where it lies)."""
    doc = graph.spec.model_dump(mode="json", by_alias=True, exclude={"name", "description", "schema_"}, warnings=False)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


# -- data ------------------------------------------------------------------------------------

def spiral(points: int, classes: int, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The CS231n spiral: per class j, r = linspace(0, 1), t = linspace(4j, 4(j + 1)) + noise * randn."""
    rng = np.random.default_rng(seed)
    X = np.zeros((points * classes, 2))
    y = np.zeros(points * classes, dtype=np.int64)
    for j in range(classes):
        r = np.linspace(0.0, 1, points)
        t = np.linspace(j * 4, (j + 1) * 4, points) + rng.standard_normal(points) * noise
        X[j * points:(j + 1) * points] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[j * points:(j + 1) * points] = j
    return X, y


def xor(points: int, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of ``points`` each: class 1 where the coordinates' signs differ (quadrants 2
    and 4), class 0 where they agree; points uniform in their quadrant, off the axes by ``noise``."""
    rng = np.random.default_rng(seed)
    X = np.zeros((2 * points, 2))
    y = np.repeat(np.arange(2), points)
    for c in range(2):
        signs = rng.choice([-1.0, 1.0], size=points)
        mag = noise + (1 - noise) * rng.uniform(size=(points, 2)) if noise < 1 else rng.uniform(size=(points, 2))
        X[c * points:(c + 1) * points] = mag * np.c_[signs, signs * (1 if c == 0 else -1)]
    return X, y.astype(np.int64)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16 scaled to 0..1)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SpecError("the digits data set needs scikit-learn: pip install 'graphspec[data]'",
                        loc="train.data.generate") from None
    d = load_digits()
    return d.data / 16.0, d.target.astype(np.int64)


def generated(src: DataSource) -> dict[str, np.ndarray]:
    if src.generate == "spiral":
        X, y = spiral(src.points, src.classes, src.noise, src.seed)
    elif src.generate == "xor":
        X, y = xor(src.points, src.noise, src.seed)
    else:
        X, y = digits()
    return {src.x: X, src.y: y}


def _read_files(graph: Graph, files: Mapping[str, str], where: str) -> dict[str, np.ndarray]:
    return {name: as_array(read_file(graph.base / path, None, f"{where}.{name}"), graph.decls[name].dtype, f"{where}.{name}")
            for name, path in files.items()}


def _same_rows(arrays: dict[str, np.ndarray], where: str) -> None:
    rows = {n: len(a) for n, a in arrays.items() if np.ndim(a)}
    if len(set(rows.values())) > 1:
        raise SpecError("training data of different lengths: " + ", ".join(f"{n} has {k} rows" for n, k in rows.items()),
                        loc=where)
    if 0 in rows.values():  # no batch to draw (a batch size of 0 rows made range() raise)
        raise SpecError(f"no training data: {', '.join(rows)} {'has' if len(rows) == 1 else 'have'} 0 rows", loc=where)


def training_data(graph: Graph, data: Mapping[str, Any] | None = None, cfg: Train | None = None) -> dict[str, np.ndarray]:
    """The arrays named by `train.data` (files relative to the spec, or generated), or the given
    ones, or by default the inputs' own values; every array has the same number of rows."""
    cfg = cfg if cfg is not None else graph.spec.train
    arrays: dict[str, np.ndarray] = {}
    if data is not None:
        arrays = {n: as_array(v, graph.decls[n].dtype, f"data.{n}") for n, v in data.items()}
    elif cfg is not None and isinstance(cfg.data, DataSource):
        arrays = {n: as_array(a, graph.decls[n].dtype, f"train.data.{n}") for n, a in generated(cfg.data).items()}
    elif cfg is not None and cfg.data:
        arrays = _read_files(graph, cfg.data, "train.data")
    else:
        arrays = {n: graph.defaults[n] for n in graph.spec.inputs if graph.defaults[n] is not None and np.ndim(graph.defaults[n])}
    _same_rows(arrays, "train.data")
    return arrays


def split(graph: Graph, arrays: dict[str, np.ndarray], cfg: Train, seed: int) -> tuple[dict[str, np.ndarray],
                                                                                       dict[str, np.ndarray] | None]:
    """(training rows, validation rows): a fraction of the rows held out, drawn from ``seed``
    (its own stream: the shuffle's numbers are not changed by it), or the validation files."""
    v = cfg.validation
    if v is None:
        return arrays, None
    if isinstance(v, dict):
        val = _read_files(graph, v, "train.validation")
        _same_rows(val, "train.validation")
        return arrays, {**{k: a for k, a in arrays.items() if not np.ndim(a)}, **val}
    n = next((len(a) for a in arrays.values() if np.ndim(a)), 0)
    k = round(n * v)
    if not 0 < k < n:
        raise SpecError(f"a validation share of {v} of {n} rows leaves {'no' if k == 0 else 'only'} validation rows"
                        if k == 0 else f"a validation share of {v} of {n} rows leaves no training rows", loc="train.validation")
    order = np.random.default_rng([seed, 1]).permutation(n)
    held, kept = np.sort(order[:k]), np.sort(order[k:])
    pick = lambda rows: {name: (a[rows] if np.ndim(a) else a) for name, a in arrays.items()}
    return pick(kept), pick(held)


def _batches(n: int, size: int | None, order: np.ndarray | None, skip: int = 0) -> Iterator[np.ndarray | slice]:
    size = size or n
    for start in range(skip * size, n, size):
        yield order[start:start + size] if order is not None else slice(start, start + size)


# -- metrics ---------------------------------------------------------------------------------

def _accuracy_of(graph: Graph, step: Any, vals: dict[str, np.ndarray]) -> float:
    plan = graph.plan
    scores, labels = (np.asarray(vals[plan.names[a]]) for a in step.args[:2])
    axis = step.op.classes(**step.attrs)
    if labels.dtype.kind == "f":
        labels = np.argmax(labels, axis=axis)
    return float(np.mean(np.argmax(scores, axis=axis) == labels))


def _need_class_loss(graph: Graph) -> Any:
    """The first step whose op scores classes (its record's ``classes``), or a SpecError."""
    step = next((s for s in graph.plan.steps if s.op.classes is not None), None)
    if step is None:
        ops = ", ".join(sorted(name for name, op in OPS.items() if op.classes is not None))
        raise SpecError(f"the accuracy metric needs a class loss node ({ops})", loc="train.metrics")
    return step


def accuracy(graph: Graph, data: dict[str, np.ndarray]) -> float:
    """Share of rows whose argmax over the class axis of the class loss's scores is the label
    (the first node whose op scores classes: its record's ``classes``)."""
    return measure(graph, data, ["accuracy"])["accuracy"]


def measure(graph: Graph, data: dict[str, np.ndarray], metrics: list[str]) -> dict[str, float]:
    """The loss and the metrics over all of ``data``, in one forward pass (a node's metric is its mean)."""
    r = graph.evaluate(data, with_grads=False, check_finite="off")
    out = {"loss": float(r.loss)}  # type: ignore[arg-type]
    for m in metrics:
        if m == "accuracy":
            out["accuracy"] = _accuracy_of(graph, _need_class_loss(graph), r.values)
        elif m != "loss":
            out[m] = float(np.mean(r.values[m]))
    return out


# -- the log ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepLog:
    epoch: int
    step: int
    batch: slice | np.ndarray
    loss: float  # before the update
    grads: dict[str, np.ndarray]
    loss_after: float | None = None  # the same batch after the update (only when asked)
    steps: int = 0  # the steps of the whole run (for a progress bar)
    feed: dict[str, Any] | None = None  # the batch's rows of each data input, as the step was fed them


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    loss: float  # mean of the batch losses, each taken before its update
    accuracy: float | None = None  # over the training rows after the epoch
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float | None = None
    step: int = 0  # steps done by the end of this epoch
    metrics: dict[str, float] = field(default_factory=dict)  # the named nodes' (and val_ NAME)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        return {**{k: v for k, v in d.items() if k != "metrics"}, **d["metrics"]}


class TrainingInterrupted(Exception):
    """``stop()`` said to stop: the params are those after ``step`` steps; ``checkpoint`` is
    where they were saved (None without a checkpoint path)."""

    def __init__(self, epoch: int, step: int, checkpoint: Path | None, log: list[EpochLog]):
        super().__init__(f"interrupted at step {step} (epoch {epoch})")
        self.epoch, self.step, self.checkpoint, self.log = epoch, step, checkpoint, log


# -- checkpoints -----------------------------------------------------------------------------

def save_npz(path: str | Path, arrays: Mapping[str, Any]) -> None:
    """An .npz written atomically (files.write_atomic): the old file or the new one, never half."""
    from .files import write_atomic

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def checkpoint_path(out: str | Path) -> Path:
    """STEM.ckpt.npz beside the params file STEM.npz."""
    out = Path(out)
    return out.with_name(out.name[: -len(".npz")] + ".ckpt.npz" if out.name.endswith(".npz") else out.name + ".ckpt.npz")


@dataclass
class _Position:
    epoch: int = 0  # the epoch in progress
    step: int = 0  # steps done in all
    batch: int = 0  # batches done in this epoch
    losses: list[float] = field(default_factory=list)  # this epoch's batch losses so far
    epoch_rng: dict[str, Any] | None = None  # the shuffle generator's state when this epoch began
    log: list[EpochLog] = field(default_factory=list)


def data_hash(*parts: Mapping[str, np.ndarray] | None) -> str:
    """What else a checkpoint must match: the training (and validation) rows themselves."""
    h = hashlib.sha256()
    for part in parts:
        for name in sorted(part or {}):
            a = np.ascontiguousarray(part[name])  # type: ignore[index]
            h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            h.update(a.tobytes())
        h.update(b"|")
    return h.hexdigest()


def _run_meta(graph: Graph, cfg: Train, seed: int, data_sha: str) -> dict[str, Any]:
    """What every checkpoint of one run says alike: the spec's and the data's hashes, the block, the seed."""
    return {"format": CHECKPOINT_FORMAT, "spec_hash": spec_hash(graph), "data_hash": data_sha, "spec": graph.program.source,
            "config": cfg.model_dump(mode="json", exclude_none=True, warnings=False), "seed": seed}


def _save_checkpoint(path: Path, graph: Graph, run: dict[str, Any], opt: Optimizer, pos: _Position) -> None:
    state = opt.state()
    meta = {**run, "optimizer": state.pop("scalars"),
            "epoch": pos.epoch, "step": pos.step, "batch": pos.batch, "losses": pos.losses, "rng": pos.epoch_rng,
            "log": [e.row() for e in pos.log]}
    arrays = {f"param.{n}": v for n, v in graph.params.items()}
    arrays.update({f"opt.{k}": v for k, v in state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    save_npz(path, arrays)


def read_checkpoint(path: str | Path, graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """(meta, params, optimizer state) of a checkpoint, refused (UsageError) when it is not one
    or was saved from another spec."""
    where = f"--resume {path}"
    file = Path(path)
    if not file.exists():
        raise UsageError(f"{where}: no such file")
    not_one = UsageError(f"{where}: not a graphspec checkpoint (train --checkpoint-every N writes them)")
    try:  # the bounded reader of every .npz graphspec reads: a FIFO or a huge file is refused, not waited on
        arrays = read_named_arrays(file, where, error=UsageError)
    except UsageError:
        if not file.is_file():
            raise
        raise not_one from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise not_one from None
    if meta["spec_hash"] != spec_hash(graph):
        raise UsageError(f"{where}: a checkpoint of another spec ({meta.get('spec') or 'a spec given as data'}, "
                         f"spec hash {meta['spec_hash'][:12]}, this spec's {spec_hash(graph)[:12]}): not resumed")
    params = {k[len("param."):]: a for k, a in arrays.items() if k.startswith("param.")}
    state = {k[len("opt."):]: a for k, a in arrays.items() if k.startswith("opt.")}
    state["scalars"] = meta["optimizer"]
    return meta, params, state


def _log_from_rows(rows: list[dict[str, Any]]) -> list[EpochLog]:
    names = {f.name for f in EpochLog.__dataclass_fields__.values()} - {"metrics"}
    return [EpochLog(**{k: v for k, v in r.items() if k in names},
                     metrics={k: v for k, v in r.items() if k not in names}) for r in rows]


# -- training --------------------------------------------------------------------------------

def train(graph: Graph, *, data: dict[str, Any] | None = None, epochs: int | None = None,
          lr: float | None = None, batch_size: int | None = None, optimizer: str | None = None,
          momentum: float | None = None, dampening: float | None = None, nesterov: bool | None = None,
          weight_decay: float | None = None, betas: tuple[float, float] | None = None, eps: float | None = None,
          seed: int | None = None, shuffle: bool | None = None, log_every: int | None = None,
          metrics: list[str] | None = None, validation: float | dict[str, str] | None = None,
          schedule: dict[str, Any] | None = None,
          on_step: Callable[[StepLog], None] | None = None, on_epoch: Callable[[EpochLog], None] | None = None,
          on_log: Callable[[list[EpochLog]], None] | None = None, loss_after: bool = False, check_finite: str = "raise",
          checkpoint: str | Path | None = None, checkpoint_every: int | None = None, resume: str | Path | None = None,
          stop: Callable[[], bool] | None = None) -> list[EpochLog]:
    """Train ``graph.params`` in place; returns the log of every epoch.

    Every key of the train block can be overridden by its keyword (None: the spec's); a spec
    without a train block trains with `DEFAULT_TRAIN` (sgd, lr 0.01, one full-batch epoch).
    ``seed`` (default the spec's) draws the shuffle and the validation split; `reseed` redraws
    the init too. ``checkpoint_every`` N steps, the state is saved to ``checkpoint`` (atomically);
    ``resume`` continues a checkpoint of this spec to the numbers of a run never interrupted.
    ``data`` is the data set's arrays, or (all strings) files overriding `train.data`.
    ``on_epoch`` sees the epochs the log shows (`log_every`), ``on_log`` the whole log after
    every epoch (a resumed run's starts with the checkpoint's). ``stop`` is asked after every
    step: when it says so, the state is saved to ``checkpoint`` and `TrainingInterrupted` raised.
    A non-finite loss or gradient stops training with a `NonFiniteError` naming the step and the
    first node (the params are left as they were before that step); ``check_finite="warn"`` goes on, as PyTorch would."""
    overrides = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer, "momentum": momentum,
                 "dampening": dampening, "nesterov": nesterov, "weight_decay": weight_decay, "betas": betas, "eps": eps,
                 "shuffle": shuffle, "log_every": log_every, "metrics": metrics, "validation": validation,
                 "schedule": schedule}
    if data is not None and data and all(isinstance(v, str) for v in data.values()):
        overrides["data"], data = dict(data), None
    if graph.loss is None:
        raise SpecError("training needs a loss", loc="loss")
    shape = graph.avals[graph.loss].shape  # None: known at run time, where a non-scalar loss is an error anyway
    if shape is not None and shape != ():  # as torch's loss.backward(): a seed weights gradients, it is no loss to log
        raise SpecError(f"training needs a scalar loss, '{graph.loss}' has shape {list(shape)}", loc="loss",
                        hint="reduce it with sum or mean")
    pos = _Position()
    meta = None
    if resume is not None:
        meta, params, state = read_checkpoint(resume, graph)
        cfg = config(graph, overrides, base=meta["config"])
        seed = meta["seed"] if seed is None else seed
    else:
        cfg = config(graph, overrides)
        seed = graph.spec.seed if seed is None else seed
    if "accuracy" in cfg.metrics:
        _need_class_loss(graph)  # before any work
    arrays, val = split(graph, training_data(graph, data, cfg), cfg, seed)
    data_sha = data_hash(arrays, val) if checkpoint is not None or meta is not None else ""  # only checkpoints need it
    if meta is not None and meta.get("data_hash") != data_sha:
        raise UsageError(f"--resume {resume}: the training data differ from the checkpoint's (a data file changed, or "
                         "other data were given): not resumed")
    n = next((len(a) for a in arrays.values() if np.ndim(a)), 1)
    opt = optimizer_for(cfg)
    rng = np.random.default_rng(seed) if cfg.shuffle else None
    if meta is not None:
        graph.params.update(params)
        opt.load_state(state)
        pos = _Position(meta["epoch"], meta["step"], meta["batch"], meta["losses"], meta["rng"], _log_from_rows(meta["log"]))
    trained = [p for p in graph.params if p in graph.wrt]
    per_epoch = -(-n // (cfg.batch_size or n))
    total = cfg.epochs * per_epoch
    ckpt = Path(checkpoint) if checkpoint is not None else None
    run = _run_meta(graph, cfg, seed, data_sha) if ckpt is not None else {}

    def save() -> None:
        if ckpt is not None:
            _save_checkpoint(ckpt, graph, run, opt, pos)

    while pos.epoch < cfg.epochs:
        epoch = pos.epoch
        if rng is not None:
            if pos.epoch_rng is not None:  # resumed mid-epoch: the order this epoch was drawn with
                rng.bit_generator.state = pos.epoch_rng
            pos.epoch_rng = rng.bit_generator.state
        order = rng.permutation(n) if rng is not None else None
        opt.lr = lr_at(cfg, epoch)
        for batch in _batches(n, cfg.batch_size, order, skip=pos.batch):
            feed = {k: (a[batch] if np.ndim(a) else a) for k, a in arrays.items()}
            try:
                loss, grads = graph.value_and_grad(feed, check_finite=check_finite)
            except NonFiniteError as e:  # diverged (say lr too large): the params would turn to nan
                e.message = f"training stopped at step {pos.step + 1} (epoch {epoch}): {e.message}"
                raise
            grads = {p: grads[p] for p in trained}
            opt.step(graph.params, grads)
            pos.step += 1
            pos.batch += 1
            pos.losses.append(float(loss))
            if on_step is not None:
                after = float(graph.evaluate(feed, with_grads=False).loss) if loss_after else None  # type: ignore[arg-type]
                on_step(StepLog(epoch, pos.step, batch, float(loss), grads, after, total, feed))
            if pos.batch < per_epoch:  # an epoch's end is saved below, with its log
                if checkpoint_every and pos.step % checkpoint_every == 0:
                    save()
                if stop is not None and stop():
                    save()
                    raise TrainingInterrupted(epoch, pos.step, ckpt, pos.log)
        entry = _epoch_entry(graph, cfg, arrays, val, epoch, pos)
        pos.log.append(entry)
        pos.epoch, pos.batch, pos.losses, pos.epoch_rng = epoch + 1, 0, [], None
        if on_epoch is not None and (epoch % cfg.log_every == 0 or epoch == cfg.epochs - 1):
            on_epoch(entry)
        if on_log is not None:
            on_log(pos.log)
        if rng is not None:
            pos.epoch_rng = rng.bit_generator.state  # the next epoch's start
        if checkpoint_every and pos.step % checkpoint_every == 0:
            save()
        if stop is not None and stop() and pos.epoch < cfg.epochs:
            save()
            raise TrainingInterrupted(pos.epoch, pos.step, ckpt, pos.log)
    return pos.log


def _epoch_entry(graph: Graph, cfg: Train, arrays: dict[str, np.ndarray], val: dict[str, np.ndarray] | None,
                 epoch: int, pos: _Position) -> EpochLog:
    wanted = [m for m in cfg.metrics if m != "loss"]
    train_m = measure(graph, arrays, wanted) if wanted else {}
    val_m = measure(graph, val, wanted) if val is not None else {}
    named = {m: train_m[m] for m in wanted if m != "accuracy"}
    if val is not None:
        named.update({f"val_{m}": val_m[m] for m in wanted if m != "accuracy"})
    return EpochLog(epoch, float(np.mean(pos.losses)), train_m.get("accuracy"), val_m.get("loss"), val_m.get("accuracy"),
                    lr_at(cfg, epoch), pos.step, named)


def final_metrics(log: list[EpochLog]) -> dict[str, float | None]:
    """The last epoch's loss, accuracy, val_loss and val_accuracy (None where not measured)."""
    last = log[-1] if log else None
    return {k: getattr(last, k) if last is not None else None for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
