"""Checks that scale (issue 14): sliced stacks give the verdicts and numbers of dense ones, the worker
pool and a dask cluster give results bit-identical to one process, a time budget samples
reproducibly and says so, and the progress bar shows on a terminal and not in a pipe."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_gradcheck import blamed, broken, mlp_spec

import graphspec
from graphspec.checker import FAIL, KINK, PASS, differences, gradcheck
from graphspec.checker import progress as progress_mod
from graphspec.cli import main
from graphspec.ops import batching
from graphspec.ops.batching import Slices

ROOT = Path(__file__).resolve().parent.parent
WIDE = (50, 120, 4)  # with batch 16, W1's dense rows hold 50 * 120 + 3 * 16 * 120 + ... numbers: past SLICE_MIN


class _Arrays(list):
    """Every check's numbers, statuses and elements; equal only when bit for bit the same (nan too)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and len(self) == len(other) and all(
            np.array_equal(np.asarray(x), np.asarray(y), equal_nan=x.dtype.kind == "f")
            for a, b in zip(self, other, strict=True) for x, y in zip(a, b, strict=True))

    __hash__ = None  # type: ignore[assignment]


def _arrays(rep: graphspec.Report) -> _Arrays:
    return _Arrays([np.asarray(c.arrays[k]) for k in ("numeric", "analytic", "abs_err", "rel_err", "status", "index")]
                   for c in rep.checks)


def _kinky() -> dict:
    """A relu MLP with one pre-activation within the step of 0, so an element's stencil crosses a kink."""
    s = mlp_spec(batch=16, sizes=WIDE, act="relu", seed=3)
    X = np.array(s["inputs"]["X"]["value"])
    W1 = np.array(s["params"]["W1"]["value"])
    b1 = np.array(s["params"]["b1"]["value"])
    b1[5] = -(X @ W1)[2, 5] + 1e-7  # z1[2, 5] = 1e-7: perturbing W1 or b1 moves it across 0
    s["params"]["b1"]["value"] = b1.tolist()
    return s


# -- sliced stacks -------------------------------------------------------------------------------

def test_sliced_rows_are_used_for_big_rows_and_not_small_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    rows: dict[tuple[str, ...], tuple[int, bool]] = {}
    orig = differences._row_numbers

    def spy(ctx, deltas, steps, targets):
        got = orig(ctx, deltas, steps, targets)
        rows[tuple(ctx.plan.names[s] for s in deltas)] = got
        return got

    monkeypatch.setattr(differences, "_row_numbers", spy)
    gradcheck(mlp_spec(batch=16, sizes=WIDE))
    assert rows[("W1",)][1] and rows[("W1",)][0] < 50 * 120  # a slice of W1 and of what it changes, not all of W1
    rows.clear()
    gradcheck(mlp_spec())  # 4-16-16-3, batch 8: small rows stay dense
    assert rows and not any(sliced for _, sliced in rows.values())


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_sliced_and_dense_stacks_give_the_same_verdicts_and_numbers(monkeypatch: pytest.MonkeyPatch, act: str) -> None:
    s = _kinky() if act == "relu" else mlp_spec(batch=16, sizes=WIDE, act=act)
    sliced = gradcheck(s)
    monkeypatch.setattr(differences, "SLICE_MIN", 10 ** 12)
    dense = gradcheck(s)
    assert sliced.status == dense.status == (KINK if act == "relu" else PASS), sliced.text()
    assert sliced.evaluations == dense.evaluations
    for a, b in zip(sliced.checks, dense.checks, strict=True):
        assert a.arrays["status"] == b.arrays["status"] and a.arrays["index"] == b.arrays["index"]
        # the same derivative up to the rounding noise of a difference, eps |f| / h ~ 4e-11 |f|
        np.testing.assert_allclose(a.arrays["numeric"], b.arrays["numeric"], rtol=1e-7, atol=1e-9)
        assert [(e.index, [(k.node, k.at) for k in e.kinks]) for e in a.kinks] == \
            [(e.index, [(k.node, k.at) for k in e.kinks]) for e in b.kinks]
    if act == "relu":
        assert any(k.node == "h1" for c in sliced.checks for e in c.kinks for k in e.kinks)


def test_a_wrong_matmul_vjp_fails_on_sliced_stacks_and_is_blamed() -> None:
    def wrong_dy(g, ans, x, y):
        return 1.01 * np.matmul(np.swapaxes(x, -1, -2), g)  # 1% off: the regulariser-sized bug

    orig = graphspec.ops.OPS["matmul"].vjp
    with broken("matmul", vjp=(orig[0], wrong_dy)):
        rep = gradcheck(mlp_spec(batch=16, sizes=WIDE))
    assert rep.status == FAIL and {c.input for c in rep.checks if c.status == FAIL} >= {"W1", "W2"}
    assert blamed(rep) == {"a1", "a2"}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("op", ["matmul", "tanh"])
def test_fast_mode_fails_a_1_percent_wrong_vjp_and_blames_its_nodes(op: str, seed: int) -> None:
    """--fast on the 22,210-param MLP of the benchmark: 4 random directions per input, whatever the seed."""
    orig = graphspec.ops.OPS[op].vjp
    wrong = (orig[0], lambda g, ans, x, y: 1.01 * orig[1](g, ans, x, y)) if op == "matmul" else \
        (lambda g, ans, x: 1.01 * orig[0](g, ans, x),)
    with broken(op, vjp=wrong):
        rep = gradcheck(mlp_spec(batch=32, sizes=(100, 200, 10)), fast=True, seed=seed)
    assert rep.status == FAIL and any(c.status == FAIL for c in rep.checks), rep.text()
    assert blamed(rep) == ({"a1", "a2"} if op == "matmul" else {"h1"})
    with broken(op, vjp=orig):
        assert gradcheck(mlp_spec(batch=32, sizes=(100, 200, 10)), fast=True, seed=seed).status == PASS


@pytest.mark.parametrize("case", ["x rows", "x batch", "x contracted", "W columns", "W rows"])
def test_sliced_matmul_equals_the_dense_product(case: str) -> None:
    r = np.random.default_rng(1)
    x, w = r.normal(size=(3, 5, 4)), r.normal(size=(4, 6))
    base = x @ w
    rows = 7
    which, axis = {"x rows": (0, 1), "x batch": (0, 0), "x contracted": (0, 2), "W columns": (1, 1),
                   "W rows": (1, 0)}[case]
    arg = (x, w)[which]
    idx = r.integers(0, arg.shape[axis], size=rows)
    cols = np.moveaxis(np.take(arg, idx, axis=axis), axis, 0) + r.normal(size=(rows, *np.delete(arg.shape, axis)))
    sl = Slices(arg, axis, idx, cols)
    args = [sl, w] if which == 0 else [x, sl]
    got, _ = batching.sliced_matmul(np.matmul, None, args, [which == 0, which == 1], [3, 2], {}, base)
    dense = sl.dense()
    want = dense @ w if which == 0 else x[None] @ dense[:, None]
    np.testing.assert_allclose(got.dense() if isinstance(got, Slices) else got, want, rtol=1e-12, atol=1e-12)


def test_sliced_elementwise_broadcasts_as_the_dense_op() -> None:
    r = np.random.default_rng(2)
    a, b = r.normal(size=(4, 3, 5)), r.normal(size=(3, 1))  # b broadcasts along the sliced axis and the last
    base = a * b
    idx = np.array([0, 2, 2, 1])
    sl = Slices(a, 1, idx, np.moveaxis(np.take(a, idx, axis=1), 1, 0) * 1.5)
    got, _ = batching.sliced_elementwise(np.multiply, None, [sl, b], [True, False], [3, 2], {}, base)
    np.testing.assert_allclose(got.dense(), sl.dense() * b, rtol=1e-15)


# -- workers -------------------------------------------------------------------------------------

def test_workers_give_bit_identical_results_whatever_their_number() -> None:
    s = _kinky()
    one = gradcheck(s, memory="64KB", blame=True)  # small chunks: many of them, split across workers
    assert one.status == KINK
    for workers in (2, 3):
        many = gradcheck(s, memory="64KB", workers=workers, blame=True)
        assert _arrays(many) == _arrays(one) and many.status == one.status
        assert many.evaluations == one.evaluations and many.notes == one.notes
    with ProcessPoolExecutor(2) as ex:
        assert _arrays(gradcheck(s, memory="64KB", executor=ex)) == _arrays(one)
    with ThreadPoolExecutor(2) as ex:  # anything with submit; here the payload goes with each task
        assert _arrays(gradcheck(s, memory="64KB", executor=ex)) == _arrays(one)


def test_fast_mode_with_workers_runs_here_and_says_so() -> None:
    s = _kinky()
    alone = gradcheck(s, fast=True)
    with ThreadPoolExecutor(1) as ex:
        for options in ({"workers": 2}, {"executor": ex}):
            rep = gradcheck(s, fast=True, **options)
            assert _arrays(rep) == _arrays(alone) and rep.status == alone.status
            assert any("ran in this process" in n and "fast mode" in n for n in rep.notes)
    assert not any("ran in this process" in n for n in alone.notes)


def test_a_map_only_executor_is_used_through_map() -> None:
    calls = []

    class MapOnly:
        def map(self, fn, items):
            items = list(items)
            calls.append(len(items))
            return [fn(i) for i in items]

    s = mlp_spec(batch=16, sizes=WIDE)
    assert _arrays(gradcheck(s, memory="64KB", executor=MapOnly())) == _arrays(gradcheck(s, memory="64KB"))
    assert calls and sum(calls) > 1


def test_dask_local_cluster_gives_bit_identical_results() -> None:
    distributed = pytest.importorskip("distributed")
    s = _kinky()
    one = gradcheck(s, memory="64KB")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        many = gradcheck(s, memory="64KB", executor=client)
    assert _arrays(many) == _arrays(one) and many.status == one.status


def test_an_op_of_your_own_is_checked_in_this_process_with_a_note(tmp_path: Path) -> None:
    from graphspec.ops import defop

    op = defop("cube_scale", lambda x: x ** 3, (lambda g, ans, x: 3 * g * x ** 2,))
    try:
        s = mlp_spec(batch=16, sizes=WIDE)
        s["nodes"]["c"] = {"op": "cube_scale", "args": ["loss"]}
        s["loss"] = "c"
        rep = gradcheck(graphspec.load(s, ops=[op]), workers=2, memory="64KB")
    finally:
        graphspec.ops.OPS.pop("cube_scale", None)
    assert rep.ok and any("ran in this process" in n and "cube_scale" in n for n in rep.notes)


def test_check_workers_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(mlp_spec(batch=16, sizes=WIDE)))
    assert main(["check", str(path), "--format", "json", "--memory", "64KB"]) == 0
    one = json.loads(capsys.readouterr().out)["reports"][0]["checks"]
    assert main(["check", str(path), "--format", "json", "--memory", "64KB", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["reports"][0]["checks"] == one
    for bad in (["--workers", "0"], ["--memory", "12XB"], ["--budget", "soon"], ["--budget", "5s", "--all"]):
        assert main(["check", str(path), *bad]) == 2


# -- budgets -------------------------------------------------------------------------------------

def _fixed_probe(per: float):
    def probe(ctx, name, targets):
        return per, 0.0, 1000
    return probe


def test_a_budget_samples_reproducibly_for_a_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    import graphspec.checker as checker

    s = mlp_spec(batch=16, sizes=WIDE)
    n = 50 * 120 + 120 + 120 * 4 + 4
    monkeypatch.setattr(checker, "probe", _fixed_probe(1e-3))  # 1 ms an element: no timing in the test
    a, b = gradcheck(s, budget="1s", seed=4), gradcheck(s, budget="1s", seed=4)
    assert _arrays(a) == _arrays(b) and a.ok
    checked = sum(c.checked for c in a.checks)
    assert 0 < checked < n and a.sample == {**a.sample, "seed": 4, "elements": checked, "of": n,
                                            "budget_s": 1.0}
    assert a.sample["coverage"] == pytest.approx(checked / n)
    other = gradcheck(s, budget="1s", seed=5)
    assert [c.arrays["index"] for c in other.checks] != [c.arrays["index"] for c in a.checks]
    bigger = gradcheck(s, budget="2s", seed=4)  # a bigger budget: a superset of the same elements
    for small, big in zip(a.checks, bigger.checks, strict=True):
        assert {tuple(i) for i in small.arrays["index"]} <= {tuple(i) for i in big.arrays["index"]}
    assert sum(c.checked for c in bigger.checks) > checked
    text, md, js = a.text(), graphspec.report.report_markdown(a), a.to_json()
    line = f"{checked:,} of {n:,} elements"
    assert line in text and line in md and js["sample"]["elements"] == checked
    assert all("to fit the time budget" in " ".join(c.notes) for c in a.checks if c.checked < c.size)


def test_a_budget_that_covers_everything_checks_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    import graphspec.checker as checker

    monkeypatch.setattr(checker, "probe", _fixed_probe(1e-9))
    rep = gradcheck(mlp_spec(batch=16, sizes=WIDE), budget="30s")
    assert all(c.checked == c.size for c in rep.checks) and rep.sample["coverage"] == 1.0
    assert any("every one of the" in n for n in rep.notes)


def test_a_budget_keeps_a_slow_check_short() -> None:
    s = mlp_spec(batch=16, sizes=WIDE)
    full = gradcheck(s, batch=False, all_elements=True, modes=False)  # one forward pass per perturbation
    rep = gradcheck(s, batch=False, budget=full.seconds / 4, modes=False)
    # the sample is smaller, so fewer perturbed evaluations; not timed here (a shared machine's load moves
    # seconds both ways): how sizes follow the estimated cost is test_the_sample_sizes_fit_the_estimated_cost's
    assert rep.ok and 0 < rep.sample["coverage"] < 1 and rep.evaluations < full.evaluations


def test_the_sample_sizes_fit_the_estimated_cost() -> None:
    costs = {"a": (1000, 1e-3, 1e-2, 100), "b": (10, 1e-3, 1e-2, 100)}
    sizes = progress_mod.budget_sizes(costs, 0.5)
    cost = sum(-(-sizes[k] // c) * ov + sizes[k] * per for k, (_, per, ov, c) in costs.items())
    assert cost <= 0.5 and sizes["a"] > 100 and sizes["b"] >= 1
    assert progress_mod.budget_sizes(costs, 100.0) == {"a": 1000, "b": 10}
    assert progress_mod.parse_seconds("30s") == 30 and progress_mod.parse_seconds("2m") == 120
    assert progress_mod.parse_bytes("512MB") == 512 * 10 ** 6 and progress_mod.parse_bytes("1GiB") == 1 << 30
    with pytest.raises(ValueError, match="not an amount"):
        progress_mod.parse_bytes("lots")


def test_the_memory_budget_changes_no_verdict() -> None:
    s = _kinky()
    a, b = gradcheck(s), gradcheck(s, memory="32KB")
    assert [c.arrays["status"] for c in a.checks] == [c.arrays["status"] for c in b.checks]
    for x, y in zip(a.checks, b.checks, strict=True):
        np.testing.assert_allclose(x.arrays["numeric"], y.arrays["numeric"], rtol=1e-9, atol=1e-12)


# -- the progress bar on a terminal --------------------------------------------------------------

_SCRIPT = ("import sys; import graphspec.checker.progress as p; p.PROGRESS_SECONDS = -1.0; "
           "from graphspec.cli import main; sys.exit(main(sys.argv[1:]))")


def _spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(mlp_spec(batch=16, sizes=WIDE)))
    return path


def test_the_progress_bar_shows_on_a_terminal(tmp_path: Path) -> None:
    path = _spec_file(tmp_path)
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, "check", str(path), "--blame", "--workers", "2",
                             "--memory", "64KB", "--format", "json", "-o", str(tmp_path / "r.json")],
                            stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, close_fds=True)
    os.close(child_fd)
    out = b""
    while True:
        ready, _, _ = select.select([main_fd], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(60) == 0
    os.close(main_fd)
    text = out.decode(errors="replace")
    assert "gradient check:" in text and "%" in text
    assert "blame: each node" in text  # the blame pass has its phase
    assert json.loads((tmp_path / "r.json").read_text())["ok"]


def test_no_progress_bar_in_a_pipe(tmp_path: Path) -> None:
    path = _spec_file(tmp_path)
    got = subprocess.run([sys.executable, "-c", _SCRIPT, "check", str(path), "--blame", "--workers", "2"],
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0 and "PASS" in got.stdout
    assert "gradient check:" not in got.stderr and "\x1b[" not in got.stderr and "%" not in got.stderr


def test_ctrl_c_stops_a_check_with_workers_at_once(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group) during `check --workers 2`: each worker took it for
    its chunk's error and went on with the next, and shutdown waited for every queued chunk (minutes)."""
    import signal
    import time

    spec = tmp_path / "slow.json"
    spec.write_text(json.dumps({"graphspec": "1", "seed": 0,
                                "params": {"W": {"shape": [300, 300], "init": "he"}, "V": {"shape": [300, 300], "init": "he"}},
                                "nodes": {"a": {"op": "matmul", "args": ["W", "V"]}, "t": {"op": "tanh", "args": ["a"]},
                                          "L": {"op": "sum", "args": ["t"]}}, "loss": "L"}))  # minutes in full
    p = subprocess.Popen([sys.executable, "-m", "graphspec", "check", str(spec), "--all", "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True)
    try:
        time.sleep(4)  # the workers are busy by now
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    assert p.returncode == 130 and b"Traceback" not in err, err
