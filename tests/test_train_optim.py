"""The optimizers and the learning-rate schedules against torch.optim, over 100 steps, to 1e-10."""

from __future__ import annotations

import numpy as np
import pytest

import graphspec
from graphspec.train import config, lr_at, train

torch = pytest.importorskip("torch")  # in the test extra: never skipped there

ROWS, BATCH, EPOCHS = 20, 4, 20  # 5 steps an epoch: 100 steps


def _spec(optimizer, schedule=None):
    r = np.random.default_rng(0)
    tr = {"optimizer": optimizer, "epochs": EPOCHS, "batch_size": BATCH}
    if schedule is not None:
        tr["schedule"] = schedule
    return {"graphspec": "1", "seed": 3,
            "inputs": {"X": {"value": r.normal(size=(ROWS, 4)).tolist()},
                       "y": {"value": r.integers(0, 3, ROWS).tolist(), "dtype": "int64"}},
            "params": {"W1": {"shape": [4, 8], "init": "xavier"}, "b1": {"shape": [8], "init": "zeros"},
                       "W2": {"shape": [8, 3], "init": "xavier"}},
            "nodes": {"a": {"op": "matmul", "args": ["X", "W1"]}, "z": {"op": "add", "args": ["a", "b1"]},
                      "h": {"op": "tanh", "args": ["z"]}, "s": {"op": "matmul", "args": ["h", "W2"]},
                      "loss": {"op": "softmax_cross_entropy", "args": ["s", "y"]}},
            "loss": "loss", "train": tr}


def _torch_optimizer(optimizer, params):
    (kind, o), = optimizer.items()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o.get("momentum", 0), dampening=o.get("dampening", 0),
                               nesterov=o.get("nesterov", False), weight_decay=o.get("weight_decay", 0))
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    kw = {"weight_decay": o["weight_decay"]} if "weight_decay" in o else {}
    return cls(params, lr=o.get("lr", 1e-3), betas=tuple(o.get("betas", (0.9, 0.999))), eps=o.get("eps", 1e-8), **kw)


def _torch_schedule(schedule, opt):
    if schedule is None:
        return None
    (kind, o), = schedule.items()
    S = torch.optim.lr_scheduler
    if kind == "step":
        return S.StepLR(opt, step_size=o["step_size"], gamma=o.get("gamma", 0.1))
    if kind == "cosine":
        return S.CosineAnnealingLR(opt, T_max=o["t_max"], eta_min=o.get("eta_min", 0.0))
    return S.LinearLR(opt, start_factor=o.get("start_factor", 1 / 3), end_factor=o.get("end_factor", 1.0),
                      total_iters=o.get("total_iters", 5))


def _torch_run(doc, init):
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    opt = _torch_optimizer(doc["train"]["optimizer"], list(tp.values()))
    sched = _torch_schedule(doc["train"].get("schedule"), opt)
    X = torch.tensor(doc["inputs"]["X"]["value"], dtype=torch.float64)
    y = torch.tensor(doc["inputs"]["y"]["value"])
    steps = 0
    for _ in range(EPOCHS):
        for start in range(0, ROWS, BATCH):
            opt.zero_grad()
            h = torch.tanh(X[start:start + BATCH] @ tp["W1"] + tp["b1"])
            torch.nn.functional.cross_entropy(h @ tp["W2"], y[start:start + BATCH]).backward()
            opt.step()
            steps += 1
        if sched is not None:
            sched.step()
    assert steps == 100
    return {k: t.detach().numpy() for k, t in tp.items()}


CASES = [
    ({"sgd": {"lr": 0.1}}, None),
    ({"sgd": {"lr": 0.1, "momentum": 0.9}}, None),
    ({"sgd": {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}}, None),
    ({"sgd": {"lr": 0.1, "momentum": 0.8, "nesterov": True}}, None),
    ({"sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}}, None),
    ({"sgd": {"lr": 0.1, "weight_decay": 0.05}}, None),
    ({"adam": {"lr": 0.01, "betas": [0.8, 0.99]}}, None),
    ({"adam": {"lr": 0.01, "weight_decay": 0.01, "eps": 1e-6}}, None),
    ({"adamw": {"lr": 0.01}}, None),
    ({"adamw": {"lr": 0.01, "weight_decay": 0.1, "betas": [0.85, 0.995]}}, None),
    ({"sgd": {"lr": 0.2, "momentum": 0.9}}, {"step": {"step_size": 7, "gamma": 0.5}}),
    ({"adam": {"lr": 0.02}}, {"cosine": {"t_max": 8, "eta_min": 0.001}}),
    ({"adamw": {"lr": 0.02}}, {"linear": {"start_factor": 0.1, "total_iters": 6}}),
]


@pytest.mark.parametrize(("optimizer", "schedule"), CASES, ids=lambda c: str(c) if c else "constant")
def test_optimizers_and_schedules_match_torch_over_100_steps(optimizer, schedule):
    doc = _spec(optimizer, schedule)
    g = graphspec.load(doc)
    init = {k: v.copy() for k, v in g.params.items()}
    log = train(g)
    assert log[-1].step == 100
    theirs = _torch_run(doc, init)
    for k in init:
        assert not np.array_equal(g.params[k], init[k]) or k == "b1"  # it trained
        np.testing.assert_allclose(g.params[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("schedule", [{"step": {"step_size": 3, "gamma": 0.5}}, {"cosine": {"t_max": 10}},
                                      {"cosine": {"t_max": 7, "eta_min": 0.01}},
                                      {"linear": {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 4}}])
def test_schedules_give_torch_lr_per_epoch(schedule):
    """lr_at's closed forms against torch's schedulers, stepped once per epoch, past t_max too."""
    g = graphspec.load(_spec({"sgd": {"lr": 0.3}}, schedule))
    cfg = g.spec.train
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched = _torch_schedule(schedule, opt)
    for epoch in range(25):
        assert lr_at(cfg, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), epoch
        opt.step()
        sched.step()


def test_momentum_optimizer_name_and_overrides():
    g = graphspec.load(_spec({"adam": {"lr": 0.01}}))
    cfg = config(g, {"optimizer": "momentum"})
    assert cfg.optimizer.sgd.momentum == 0.9 and cfg.optimizer.sgd.lr == 0.01  # only lr carries over
    cfg = config(g, {"optimizer": "sgd", "momentum": 0.5, "nesterov": True, "weight_decay": 0.1, "lr": 0.2})
    assert (cfg.optimizer.sgd.momentum, cfg.optimizer.sgd.nesterov, cfg.optimizer.sgd.weight_decay) == (0.5, True, 0.1)
    cfg = config(g, {"optimizer": "adamw", "betas": (0.5, 0.6), "epochs": 3, "batch_size": 5, "shuffle": True})
    assert cfg.optimizer.adamw.betas == (0.5, 0.6) and cfg.optimizer.adamw.weight_decay == 0.01
    assert (cfg.epochs, cfg.batch_size, cfg.shuffle) == (3, 5, True)
    with pytest.raises(graphspec.GraphspecError, match="nesterov needs a momentum > 0"):
        config(g, {"optimizer": "sgd", "nesterov": True})


def test_api_keywords_override_the_train_block():
    """train(graph, lr=..., optimizer=...) trains as the spec with those keys would."""
    a = graphspec.load(_spec({"sgd": {"lr": 0.1}}))
    train(a, optimizer="adam", lr=0.01, epochs=4, batch_size=5, weight_decay=0.01)
    b = graphspec.load(_spec({"adam": {"lr": 0.01, "weight_decay": 0.01}}))
    train(b, epochs=4, batch_size=5)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k])
    c = graphspec.load(_spec({"sgd": {"lr": 0.1}}))
    graphspec.train(c, optimizer="adam", lr=0.01, epochs=4, batch_size=5, weight_decay=0.01)  # the module is callable
    assert all(np.array_equal(a.params[k], c.params[k]) for k in a.params)
