"""tools/bench.py stays runnable: its specs load and give the right answers, and a quick run of
the cheap workloads writes its table and JSON. No timing assertions: speed is what the
benchmark measures, not what a test on a shared machine can promise."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import graphspec

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "tools" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench", None)


def test_big_spec_loads_and_runs(bench):
    g = graphspec.load(bench.big_spec(1000))
    assert len(g.order) == 1000
    loss, grads = g.value_and_grad({"x": np.ones((3, 8))})
    assert np.isfinite(loss) and grads["x"].shape == (3, 8) and grads["b"].shape == (8,)


def test_w4_rows_report_time_per_node(bench):
    rows = bench.w4([200, 400], repeats=1)
    assert [r.extra.get("nodes") for r in rows[:2]] == [200, 400]
    assert all(r.graphspec_s > 0 for r in rows[:2])
    assert "growth" in rows[2].extra


def test_chain_and_mlp_specs_agree_with_their_shapes(bench):
    chain = graphspec.load(bench.chain_spec(8, 5))
    assert chain.value_and_grad({"x": np.linspace(-1, 1, 5)})[1]["x"].shape == (5,)
    mlp = graphspec.load(bench.mlp_spec("float32"))
    X, y = bench.mlp_data("float32")
    grads = mlp.grad({"X": X, "y": y})
    assert set(grads) == {"W1", "b1", "W2", "b2", "W3", "b3"}  # X is data: no gradient asked
    assert all(g.dtype == np.float32 for g in grads.values())


def test_quick_run_writes_table_and_json(bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--only", "W1", "--json", str(out)]) == 0
    assert "| W1 |" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["meta"]["threads"] >= 1
    assert doc["rows"] and all(r["workload"] == "W1" and r["graphspec_s"] > 0 for r in doc["rows"])


def test_w11_writes_the_html_report_of_a_202_node_spec(bench):
    row = bench.w11(repeats=1)
    assert row.extra["nodes"] == 202 and row.extra["bytes"] > 10_000
    assert row.graphspec_s > 0 and row.torch_s > 0 and row.holds in (True, False)


def test_w12_trains_the_same_in_torch(bench):
    """W12's PyTorch loop is the same training as graphspec.train: the same params after 2 epochs."""
    pytest.importorskip("torch")
    from graphspec import train

    g = graphspec.load(ROOT / "specs" / "mlp" / "spiral.json")
    init = {k: v.copy() for k, v in g.params.items()}
    cfg = train.config(g, {"epochs": 2})
    arrays, val = train.split(g, train.training_data(g, cfg=cfg), cfg, g.spec.seed)
    theirs = bench.w12_torch_epochs(g, init, cfg, arrays, val, 2)()
    train.train(g, epochs=2)
    for k, v in theirs.items():
        np.testing.assert_allclose(g.params[k], v, rtol=1e-8, atol=1e-10)
        assert not np.array_equal(v, init[k])


def test_bench_scale_models_agree_with_their_peers():
    import bench_scale

    spec, params, X, y = bench_scale.problem(bench_scale.SMALL, batch=8)
    loss = graphspec.load(spec).value_and_grad()[0]
    f, args = bench_scale.autograd_case(bench_scale.SMALL, params, X, y)
    assert np.isclose(loss, f(*args), rtol=1e-12)
    tf, targs = bench_scale.torch_case(bench_scale.SMALL, params, X, y)
    assert np.isclose(loss, float(tf(*targs).detach()), rtol=1e-12)
    assert bench_scale.n_params(bench_scale.MLP) == 22_210 and bench_scale.n_params(bench_scale.BIG) == 1_011_010
