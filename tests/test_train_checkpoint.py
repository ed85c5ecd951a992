"""Nothing lost: checkpoints resume to the numbers of a run never interrupted, bit for bit,
after a stop at any step, a SIGKILL at a random moment, or Ctrl-C; another spec's is refused."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphspec
from graphspec.cli import main
from graphspec.train import TrainingInterrupted, checkpoint_path, train


def _spec(epochs=6, optimizer=None):
    return {"graphspec": "1", "seed": 1,
            "inputs": {"X": {"shape": ["N", 2]}, "y": {"shape": ["N"], "dtype": "int64"}},
            "params": {"W1": {"shape": [2, 16], "init": "he"}, "b1": {"shape": [16], "init": 0.01},
                       "W2": {"shape": [16, 3], "init": "xavier"}},
            "nodes": {"a": {"op": "matmul", "args": ["X", "W1"]}, "z": {"op": "add", "args": ["a", "b1"]},
                      "h": {"op": "relu", "args": ["z"]}, "s": {"op": "matmul", "args": ["h", "W2"]},
                      "loss": {"op": "softmax_cross_entropy", "args": ["s", "y"]}},
            "loss": "loss",
            "train": {"data": {"generate": "spiral", "points": 20, "classes": 3, "seed": 2}, "validation": 0.2,
                      "optimizer": optimizer or {"adam": {"lr": 0.01}}, "schedule": {"step": {"step_size": 2, "gamma": 0.5}},
                      "epochs": epochs, "batch_size": 5, "shuffle": True, "metrics": ["loss", "accuracy"]}}


def _uninterrupted(doc):
    g = graphspec.load(doc)
    log = train(g)
    return g.params, log


@pytest.mark.parametrize("optimizer", [{"adam": {"lr": 0.01}}, {"sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": True}}])
def test_a_stop_at_any_step_resumes_to_the_same_numbers(tmp_path, optimizer):
    """48 rows, batches of 5: 10 steps an epoch, 60 in all; stopped after step k (mid-epoch, at an
    epoch's end) and resumed, the params and the log are those of the run never stopped."""
    doc = _spec(optimizer=optimizer)
    want, want_log = _uninterrupted(doc)
    assert want_log[-1].step == 60
    for k in (1, 9, 10, 11, 37, 59):
        g = graphspec.load(doc)
        ckpt = tmp_path / f"c{k}.ckpt.npz"
        count = iter(range(1, 1000))
        with pytest.raises(TrainingInterrupted) as e:
            train(g, checkpoint=ckpt, stop=lambda count=count, k=k: next(count) >= k)
        assert e.value.step == k and e.value.checkpoint == ckpt
        fresh = graphspec.load(doc)
        log = train(fresh, resume=ckpt)
        for name in want:
            assert np.array_equal(fresh.params[name], want[name]), (k, name)
        assert [e.row() for e in log] == [e.row() for e in want_log]


def test_a_checkpoint_holds_params_optimizer_rng_position_and_hash(tmp_path):
    g = graphspec.load(_spec())
    ckpt = tmp_path / "x.ckpt.npz"
    train(g, checkpoint=ckpt, checkpoint_every=13)
    with np.load(ckpt) as z:
        meta = json.loads(str(z["meta"]))
        assert {"param.W1", "param.b1", "param.W2", "opt.m.W1", "opt.v.W2"} <= set(z.files)
    assert meta["step"] == 52 and meta["epoch"] == 5 and meta["batch"] == 2 and len(meta["losses"]) == 2
    assert meta["optimizer"] == {"t": 52}
    assert meta["rng"]["bit_generator"] == "PCG64"  # numpy's Generator state, as bit_generator.state gives it
    assert len(meta["spec_hash"]) == 64 and meta["config"]["optimizer"] == {"adam": {"lr": 0.01, "betas": [0.9, 0.999],
                                                                                  "eps": 1e-08, "weight_decay": 0.0}}


def test_a_checkpoint_of_another_spec_is_refused(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_spec()))
    other = _spec()
    other["params"]["W1"]["init"] = "xavier"
    b.write_text(json.dumps(other))
    assert main(["train", str(a), "-o", str(tmp_path / "a.npz"), "--checkpoint-every", "10", "--quiet"]) == 0
    assert (tmp_path / "a.ckpt.npz").is_file()
    assert main(["train", str(b), "-o", str(tmp_path / "b.npz"), "--resume", str(tmp_path / "a.ckpt.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume {tmp_path / 'a.ckpt.npz'}: a checkpoint of another spec ({a}" in err
    assert not (tmp_path / "b.npz").exists()
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["train", str(b), "-o", str(tmp_path / "b.npz"), "--resume", str(tmp_path / "junk.npz")]) == 2
    assert "not a graphspec checkpoint" in capsys.readouterr().err


def test_checkpoint_path_is_beside_the_params():
    assert checkpoint_path("out/model.npz") == Path("out/model.ckpt.npz")
    assert checkpoint_path("spiral.params.npz") == Path("spiral.params.ckpt.npz")


def _cli(*args):
    return [sys.executable, "-m", "graphspec", *args]


def test_sigkill_at_random_moments_the_last_checkpoint_resumes_exactly(tmp_path):
    """A run killed with SIGKILL (no handler can run) at random moments: the last checkpoint
    always loads, and resuming it ends at the uninterrupted run's params (np.array_equal)."""
    doc = _spec(epochs=40)
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(doc))
    want, _ = _uninterrupted(doc)
    rng = random.Random(1234)
    kills = 0
    for attempt in range(12):
        if kills == 4:
            break
        out = tmp_path / f"k{attempt}.npz"
        ckpt = checkpoint_path(out)
        p = subprocess.Popen(_cli("train", str(spec), "-o", str(out), "--checkpoint-every", "3", "--quiet"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not ckpt.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
        if p.returncode != -signal.SIGKILL:  # finished before the kill: try again, sooner
            continue
        kills += 1  # (perhaps after the params were saved, before the exit: the checkpoint holds all the same)
        with np.load(ckpt) as z:  # replaced atomically: never half a file
            step = json.loads(str(z["meta"]))["step"]
        assert step % 3 == 0 and 0 < step < 400
        resumed = tmp_path / f"r{attempt}.npz"
        assert main(["train", str(spec), "-o", str(resumed), "--resume", str(ckpt), "--quiet"]) == 0
        with np.load(resumed) as z:
            for name in want:
                assert np.array_equal(z[name], want[name]), (attempt, step, name)
    assert kills >= 3, "the run ended before every kill: it is too short for this test"


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    doc = _spec(epochs=300)
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(doc))
    out = tmp_path / "p.npz"
    p = subprocess.Popen(_cli("train", str(spec), "-o", str(out), "--log-every", "1"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("epoch 0: mean loss")  # training is under way
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    ckpt = tmp_path / "p.ckpt.npz"
    assert f"checkpoint saved to {ckpt}; continue with --resume {ckpt}" in err and "interrupted at step" in err
    assert not out.exists()
    doc["train"]["epochs"] = 300
    assert main(["train", str(spec), "-o", str(out), "--resume", str(ckpt), "--quiet"]) == 0
    want, _ = _uninterrupted(doc)
    with np.load(out) as z:
        assert all(np.array_equal(z[n], want[n]) for n in want)


def test_resume_can_train_longer(tmp_path):
    """--resume with --epochs continues past the first run's end: 3 + 3 epochs are 6 epochs."""
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_spec(epochs=6)))
    assert main(["train", str(spec), "-o", str(tmp_path / "a.npz"), "--epochs", "3", "--checkpoint-every", "30",
                 "--quiet"]) == 0
    assert main(["train", str(spec), "-o", str(tmp_path / "b.npz"), "--resume", str(tmp_path / "a.ckpt.npz"),
                 "--epochs", "6", "--quiet"]) == 0
    want, _ = _uninterrupted(_spec(epochs=6))
    with np.load(tmp_path / "b.npz") as z:
        assert all(np.array_equal(z[n], want[n]) for n in want)


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigint_handler_is_restored(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_spec(epochs=1)))
    before = signal.getsignal(signal.SIGINT)
    assert main(["train", str(spec), "-o", str(tmp_path / "a.npz"), "--quiet"]) == 0
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_with_json_output_says_so_on_stdout(tmp_path, capsys, monkeypatch):
    """In process: SIGINT raised after the first epoch (from the CSV writer), the handler train
    installs takes it; stdout holds one JSON record, as every command's failures do."""
    from graphspec import curves

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_spec(epochs=50)))
    real = curves.write_csv
    raised = []

    def write_then_interrupt(path, log):
        real(path, log)
        if not raised:
            raised.append(True)
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(curves, "write_csv", write_then_interrupt)
    out = tmp_path / "p.npz"
    assert main(["train", str(spec), "-o", str(out), "--format", "json", "--log-csv", str(tmp_path / "l.csv")]) == 130
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"ok": False, "interrupted": {"step": 10, "epoch": 1, "checkpoint": str(tmp_path / "p.ckpt.npz")}}
    assert not out.exists() and (tmp_path / "p.ckpt.npz").is_file()
    assert len((tmp_path / "l.csv").read_text().splitlines()) == 2  # the header and the epoch done


def test_a_checkpoint_on_other_data_is_refused(tmp_path, capsys):
    """The same spec reading a data file that changed since the checkpoint: resuming would not
    give the uninterrupted run's numbers, so it is refused (exit 2)."""
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "X.csv", rng.normal(size=(20, 2)), delimiter=",", fmt="%.17g")
    np.savetxt(tmp_path / "y.csv", rng.integers(0, 3, 20), fmt="%d")
    doc = _spec()
    doc["train"]["data"] = {"X": "X.csv", "y": "y.csv"}
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(doc))
    assert main(["train", str(spec), "-o", str(tmp_path / "a.npz"), "--checkpoint-every", "5", "--quiet"]) == 0
    np.savetxt(tmp_path / "y.csv", rng.integers(0, 3, 20), fmt="%d")
    assert main(["train", str(spec), "-o", str(tmp_path / "b.npz"), "--resume", str(tmp_path / "a.ckpt.npz")]) == 2
    assert "the training data differ from the checkpoint's" in capsys.readouterr().err


def test_resume_from_a_fifo_is_refused_not_waited_on(tmp_path):
    """--resume reads through the bounded reader of every .npz: a FIFO is said, at once."""
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_spec()))
    fifo = tmp_path / "ckpt.npz"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "graphspec", "train", str(spec), "-o", str(tmp_path / "p.npz"),
                           "--resume", str(fifo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "FIFO" in done.stderr and "Traceback" not in done.stderr


def test_resumed_log_steps_show_the_rows_each_step_was_fed(tmp_path, capsys):
    """train --resume --log-steps prints each step's batch as the resumed run feeds it (the run's
    own shuffle and split, from the checkpoint's seed), the rows an uninterrupted run feeds there."""
    from graphspec.render import _batch_text

    doc = _spec(epochs=2)
    doc["seed"] = 7
    doc["train"].pop("validation")
    doc["train"]["batch_size"] = 2  # rows small enough to be printed, not counted
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(doc))
    fed = []
    train(graphspec.load(spec), on_step=lambda s: fed.append((s.step, {k: v.copy() for k, v in s.feed.items()})))
    ckpt = tmp_path / "c.ckpt.npz"
    count = iter(range(1, 1000))
    with pytest.raises(TrainingInterrupted):
        train(graphspec.load(spec), checkpoint=ckpt, stop=lambda: next(count) >= 3)
    assert main(["train", str(spec), "-o", str(tmp_path / "p.npz"), "--resume", str(ckpt), "--log-steps"]) == 0
    out = capsys.readouterr().out
    assert "step 3 " not in out and "step 4 (epoch 0)" in out
    per_epoch = len(fed) // 2
    for step, feed in fed[3:]:
        assert f"step {step} (epoch {(step - 1) // per_epoch}) {_batch_text(feed)}:" in out, step
