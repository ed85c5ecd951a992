"""files.py through the commands: no command writes over its spec, a file the spec reads or an input
file; outputs are checked before the work starts and written atomically with the user's umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from graphspec import files
from graphspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def spec(tmp_path: Path, name: str = "s.json", **extra) -> Path:
    """A trainable spec that reads its inputs from data/x.csv and data/y.csv, trains on data/x.csv and
    data/yt.csv, and reads w from w.npz."""
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "x.csv").write_text("1\n2\n3\n")
    (tmp_path / "data" / "y.csv").write_text("2\n4\n6\n")
    (tmp_path / "data" / "yt.csv").write_text("2\n4\n6\n")
    np.savez(tmp_path / "w.npz", w=np.array(0.5))
    doc = {"graphspec": "1", "name": "lin",
           "inputs": {"x": {"shape": ["N"], "file": "data/x.csv", "grad": False},
                      "y": {"shape": ["N"], "file": "data/y.csv", "grad": False}},
           "params": {"w": {"file": "w.npz"}},
           "nodes": {"h": {"op": "mul", "args": ["x", "w"]}, "d": {"op": "sub", "args": ["h", "y"]},
                     "q": {"op": "square", "args": ["d"]}, "L": {"op": "mean", "args": ["q"]}},
           "loss": "L",
           "train": {"data": {"x": "data/x.csv", "y": "data/yt.csv"}, "optimizer": {"sgd": {"lr": 0.01}}, "epochs": 1},
           **extra}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err[len("error: "):].rstrip("\n")


# -- the spec, its files and the input files are never written over -------------------------------


@pytest.mark.parametrize("how", ["same", "dot-slash", "symlink", "hardlink"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_check_never_writes_over_its_spec(tmp_path, capsys, monkeypatch, how, force):
    """`check a.json -o a.json` replaced the spec with its report (issue 8)."""
    spec(tmp_path, "a.json")
    monkeypatch.chdir(tmp_path)
    out = {"same": "a.json", "dot-slash": "./a.json", "symlink": "link.json", "hardlink": "hard.json"}[how]
    if how == "symlink":
        os.symlink("a.json", tmp_path / "link.json")
    if how == "hardlink":
        os.link(tmp_path / "a.json", tmp_path / "hard.json")
    before = snapshot(tmp_path)
    assert main(["check", "a.json", "-o", out, *force]) == 2
    assert one_error(capsys) == f"-o {out}: that is the spec being checked; refusing to write over it"
    assert snapshot(tmp_path) == before
    if how == "symlink":
        assert (tmp_path / "link.json").is_symlink()


@pytest.mark.parametrize("argv, out, what", [
    (["check", "s.json"], "data/x.csv", "a file the spec reads (inputs.x.file)"),
    (["check", "s.json"], "./data/../data/yt.csv", "a file the spec reads (train.data.y)"),
    (["train", "s.json"], "w.npz", "a file the spec reads (params.w.file)"),
    (["train", "s.json"], "s.json", None),  # not .npz: refused before any guard
    (["draw", "s.json"], "data/x.csv", None),
    (["check", "s.json", "--input", "y=@in.npy"], "in.npy", "the --input y file"),
    (["check", "s.json", "--params", "p.npz"], "p.npz", "the --params file"),
])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_no_command_writes_over_a_file_the_spec_or_the_command_line_reads(tmp_path, capsys, monkeypatch, argv, out,
                                                                           what, force):
    """`check -o data/X.csv` replaced the training data (issue 8); --force does not change that."""
    spec(tmp_path)
    np.save(tmp_path / "in.npy", np.array([2.0, 4.0, 6.0]))
    np.savez(tmp_path / "p.npz", w=np.array(1.0))
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main([*argv, "-o", out, *force]) == 2
    err = one_error(capsys)
    if what is not None:
        assert err == f"-o {out}: that is {what}; refusing to write over it"
    assert snapshot(tmp_path) == before


def test_several_specs_protect_each_other_and_their_files(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = spec(tmp_path / "a"), spec(tmp_path / "b")
    before = snapshot(tmp_path)
    assert main(["check", str(a), str(b), "-o", str(b)]) == 2
    assert one_error(capsys) == f"-o {b}: that is a spec being checked; refusing to write over it"
    assert main(["check", str(tmp_path), "-o", str(tmp_path / "b" / "data" / "yt.csv"), "--force"]) == 2
    assert "a file the spec reads (train.data.y)" in one_error(capsys)
    assert snapshot(tmp_path) == before


# -- another kind of file needs --force --------------------------------------------------------------


def test_a_report_over_another_spec_or_data_needs_force(tmp_path, capsys):
    path = spec(tmp_path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"graphspec": "1", "nodes": {}}))
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    table = tmp_path / "t.csv"
    table.write_text("1,2\n")
    for target, what in [(other, 'looks like a spec (it has a "graphspec" key)'), (table, "holds data (.csv)"),
                         (notes, "exists")]:
        before = target.read_bytes()
        assert main(["check", str(path), "-o", str(target)]) == 2
        assert one_error(capsys) == f"-o {target}: that file {what} and is not a gradcheck report; " \
                                    "pass --force to write over it"
        assert target.read_bytes() == before
        assert main(["check", str(path), "-o", str(target), "--force"]) == 0
        capsys.readouterr()
        assert target.read_bytes() != before
    # a report over a report of any format needs no --force
    for name in ("r.json", "r.md", "r.txt"):
        assert main(["check", str(path), "-o", str(tmp_path / name)]) == 0
        assert main(["check", str(path), "-o", str(tmp_path / name), "--fast"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "r.json").read_text())["reports"][0]["mode"] == "fast"


def test_train_and_draw_need_force_over_another_kind(tmp_path, capsys):
    path = spec(tmp_path)
    fake = tmp_path / "fake.npz"
    fake.write_text("x,y\n1,2\n")  # not a zip: not something train writes
    assert main(["train", str(path), "-o", str(fake)]) == 2
    assert "that file holds data (.npz) and is not a params file (.npz); pass --force" in one_error(capsys)
    assert main(["train", str(path), "-o", str(fake), "--force"]) == 0
    assert set(np.load(fake).files) == {"w"}
    assert main(["train", str(path), "-o", str(fake)]) == 0  # params over params
    capsys.readouterr()
    dot = tmp_path / "g.dot"
    dot.write_text("my own notes\n")
    assert main(["draw", str(path), "-o", str(dot)]) == 2
    assert "is not a drawing; pass --force" in one_error(capsys)
    assert main(["draw", str(path), "-o", str(dot), "--force"]) == 0
    assert dot.read_text().startswith("digraph graphspec")
    assert main(["draw", str(path), "-o", str(dot)]) == 0  # a drawing over a drawing


# -- every output is checked before the work starts --------------------------------------------------


@pytest.mark.parametrize("cmd", ["check", "train", "draw"])
@pytest.mark.parametrize("where", ["missing", "folder", "readonly"])
def test_outputs_are_checked_before_any_work(tmp_path, capsys, monkeypatch, cmd, where):
    """`train -o missing_dir/p.npz` trained to the end and only then failed (issue 8)."""
    import graphspec.checker
    import graphspec.draw
    import graphspec.train

    if where == "readonly" and ROOT_USER:
        pytest.skip("root may write in a read-only folder")

    def no_work(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(graphspec.train, "train", no_work)
    monkeypatch.setattr(graphspec.checker, "gradcheck", no_work)
    monkeypatch.setattr(graphspec.draw, "to_dot", no_work)
    path = spec(tmp_path)
    name = {"check": "r.json", "train": "p.npz", "draw": "g.dot"}[cmd]
    if where == "missing":
        out = tmp_path / "missing_dir" / name
        message = f"-o {out}: cannot write there: no folder {out.parent}"
    elif where == "folder":
        out = tmp_path / name
        out.mkdir()
        message = f"-o {out}: is a folder; give a file name"
    else:
        (tmp_path / "ro").mkdir()
        out = tmp_path / "ro" / name
        (tmp_path / "ro").chmod(0o555)
        message = f"-o {out}: cannot write there: no permission to write in {out.parent}"
    try:
        assert main([cmd, str(path), "-o", str(out)]) == 2
    finally:
        (tmp_path / "ro").chmod(0o755) if where == "readonly" else None
    assert capsys.readouterr() == ("", f"error: {message}\n")


def test_a_read_only_file_is_not_replaced(tmp_path, capsys):
    if ROOT_USER:
        pytest.skip("root may write a read-only file")
    path = spec(tmp_path)
    out = tmp_path / "r.md"
    out.write_text("## Gradient check: old\n")
    out.chmod(0o444)
    assert main(["check", str(path), "-o", str(out)]) == 2
    assert one_error(capsys) == f"-o {out}: the file is read-only; refusing to write over it"
    assert out.read_text() == "## Gradient check: old\n"


def test_train_default_output_is_guarded_too(tmp_path, capsys, monkeypatch):
    """Without -o, train writes SPEC_STEM.params.npz in the current folder: the same guard, named so."""
    path = spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("s.params.npz").write_text("not params")
    assert main(["train", str(path)]) == 2
    assert one_error(capsys).startswith("output s.params.npz: that file holds data (.npz)")


# -- written atomically, with the mode open() gives ------------------------------------------------


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_of_the_umask(tmp_path, capsys, mask, mode):
    """Every written file was mode 0600 whatever the umask (mkstemp's)."""
    path = spec(tmp_path)
    old = os.umask(mask)
    try:
        assert files.umask() == mask
        assert main(["check", str(path), "-o", str(tmp_path / "r.json")]) == 0
        assert main(["train", str(path), "-o", str(tmp_path / "p.npz")]) == 0
        assert main(["draw", str(path), "-o", str(tmp_path / "g.dot")]) == 0
    finally:
        os.umask(old)
    for name in ("r.json", "p.npz", "g.dot"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("mask", ["022", "077"])
def test_umask_in_a_fresh_process(tmp_path, mask):
    path = spec(tmp_path)
    out = tmp_path / "r.md"
    p = subprocess.run(["sh", "-c", f'umask {mask} && exec "$0" -m graphspec check "$1" -o "$2"', sys.executable,
                        str(path), str(out)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~int(mask, 8)


def test_umask_without_proc(monkeypatch):
    """Where /proc/self/status is missing, the umask is read by setting and restoring it."""
    real_open = open

    def no_proc(file, *args, **kwargs):
        if str(file) == "/proc/self/status":
            raise FileNotFoundError(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    old = os.umask(0o027)
    try:
        assert files.umask() == 0o027 and files.umask() == 0o027
    finally:
        os.umask(old)


def test_an_existing_file_keeps_its_mode(tmp_path):
    out = tmp_path / "r.md"
    out.write_text("old")
    out.chmod(0o640)
    files.write_atomic(out, "new")
    assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == 0o640


def test_a_symlink_is_written_through(tmp_path):
    (tmp_path / "real.md").write_text("old")
    os.symlink("real.md", tmp_path / "link.md")
    files.write_atomic(tmp_path / "link.md", "new")
    assert (tmp_path / "link.md").is_symlink() and (tmp_path / "real.md").read_text() == "new"


def test_a_fifo_is_written_in_place(tmp_path):
    """Renaming over a FIFO (or /dev/null) would replace the node itself."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    files.write_atomic(fifo, "report\n")
    reader.join(timeout=10)  # a daemon: were the FIFO replaced, the reader would block for good
    assert got == [b"report\n"] and stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("what", ["folder", "file"])
def test_no_permission_is_refused_even_as_root(tmp_path, capsys, monkeypatch, what):
    """The two tests above skip as root (who may write anyway): the same refusals, with os.access
    saying no for the one path, as it does for a user."""
    path = spec(tmp_path)
    (tmp_path / "ro").mkdir()
    out = tmp_path / "ro" / "r.md"
    if what == "file":
        out.write_text("## Gradient check: old\n")
    denied = str(out if what == "file" else out.parent)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == denied else real(p, mode, **kw))
    assert main(["check", str(path), "-o", str(out)]) == 2
    assert one_error(capsys) == (f"-o {out}: the file is read-only; refusing to write over it" if what == "file" else
                                 f"-o {out}: cannot write there: no permission to write in {out.parent}")
    assert [p.name for p in (tmp_path / "ro").iterdir()] == (["r.md"] if what == "file" else [])


def test_train_never_writes_over_the_checkpoint_it_resumes_from(tmp_path, capsys, monkeypatch):
    """`train --resume a.ckpt.npz -o a.ckpt.npz` replaced the checkpoint with the bare params: the
    optimizer's state and the position were lost (a params file is an .npz, so no --force was asked)."""
    path = spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(path), "-o", "a.npz", "--checkpoint-every", "1", "--quiet"]) == 0
    before = snapshot(tmp_path)
    for force in ([], ["--force"]):
        assert main(["train", str(path), "--resume", "a.ckpt.npz", "-o", "./a.ckpt.npz", "--quiet", *force]) == 2
        assert one_error(capsys) == "-o a.ckpt.npz: that is the --resume file; refusing to write over it"
    assert snapshot(tmp_path) == before
    # its checkpoint beside -o may be it: resuming goes on replacing it, as documented
    assert main(["train", str(path), "--resume", "a.ckpt.npz", "-o", "a.npz", "--epochs", "2", "--quiet"]) == 0


def test_a_resumed_run_protects_the_data_files_of_the_run_it_continues(tmp_path, capsys, monkeypatch):
    """A run given --data trains, when resumed, on the checkpoint's files: --log-csv over one of
    them wrote the log over the training data (with --force, which is for files of another kind)."""
    path = spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("mine.csv").write_text("1\n2\n3\n")
    assert main(["train", str(path), "-o", "a.npz", "--data", "x=mine.csv", "--data", "y=data/yt.csv",
                 "--checkpoint-every", "1", "--quiet"]) == 0
    before = snapshot(tmp_path)
    assert main(["train", str(path), "--resume", "a.ckpt.npz", "-o", "b.npz", "--log-csv", "mine.csv", "--force",
                 "--quiet"]) == 2
    assert one_error(capsys) == ("--log-csv mine.csv: that is a file the resumed run reads (train.data.x); "
                                 "refusing to write over it")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cmd, out", [("check", "my_ops.py"), ("explain", "./my_ops.py"), ("check", "pkg_ops/ops.py")])
def test_no_command_writes_over_the_code_that_import_ran(tmp_path, capsys, monkeypatch, cmd, out):
    """`--import my_ops.py check s.json -o my_ops.py --force` replaced the user's op code with the report."""
    from graphspec import userops
    from graphspec.ops import OPS

    monkeypatch.setattr(userops, "_imported", dict(userops._imported))  # no import leaks into other tests
    code = "import graphspec\nimport numpy as np\ngraphspec.defop('twice_{n}', lambda x: 2 * x, vjp=(lambda g, ans, x: 2 * g,))\n"
    (tmp_path / "my_ops.py").write_text(code.format(n="f"))
    (tmp_path / "pkg_ops").mkdir()
    (tmp_path / "pkg_ops" / "__init__.py").write_text("")
    (tmp_path / "pkg_ops" / "ops.py").write_text(code.format(n="m"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    target = "pkg_ops.ops" if out.startswith("pkg_ops") else "my_ops.py"
    n = "m" if target == "pkg_ops.ops" else "f"
    Path("t.json").write_text(json.dumps({"graphspec": "1", "inputs": {"x": {"value": 1.5}},
                                          "nodes": {"y": {"op": f"twice_{n}", "args": ["x"]}}, "loss": "y"}))
    before = snapshot(tmp_path)
    try:
        assert main(["--import", target, cmd, "t.json", "-o", out, "--force"]) == 2
        assert one_error(capsys) == f"-o {out}: that is Python code that --import ran; refusing to write over it"
    finally:
        OPS.pop(f"twice_{n}", None)
        sys.modules.pop("pkg_ops.ops", None)
        sys.modules.pop("pkg_ops", None)
    assert snapshot(tmp_path) == before
