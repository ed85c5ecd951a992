"""reading.py: spec and data files are regular files within a size limit, read in bounded time
and memory; a FIFO, a device, a directory, a terabyte, an .npy header claiming petabytes are
one located line and exit 2, never a hang, a traceback or gigabytes allocated."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from numpy.lib import format as npy

import graphspec
from graphspec.cli import main
from graphspec.errors import SpecError
from graphspec.reading import DEFAULT_MAX_BYTES, ENV_VAR, file_size_limit, limit_file_size

GOOD = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0]}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}
FREE = {"graphspec": "1", "inputs": {"x": {}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}


def _spec(tmp_path, doc, name="s.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def _with_file(tmp_path, name):
    return _spec(tmp_path, {"graphspec": "1", "inputs": {"x": {"file": name}}, "nodes": {"s": {"op": "sum", "args": ["x"]}}})


def _cases(tmp_path, target):
    """argv that read ``target`` as a spec, a spec's data file, a train data file, --input and --params."""
    spec_data = _with_file(tmp_path, target.name)
    train = _spec(tmp_path, {"graphspec": "1", "inputs": {"x": {"shape": ["N"]}}, "params": {"w": {"value": 1.0}},
                             "nodes": {"m": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["m"]}},
                             "loss": "L", "train": {"data": {"x": target.name}, "optimizer": {"sgd": {"lr": 0.1}}}},
                  "train.json")
    free = _spec(tmp_path, FREE, "free.json")
    params = _spec(tmp_path, {**GOOD, "params": {"w": {"value": 1.0}}}, "params.json")
    return [["validate", str(target)], ["run", str(target)], ["validate", spec_data], ["check", spec_data],
            ["train", train, "-o", str(tmp_path / "p.npz")], ["run", free, "--input", f"x=@{target}"],
            ["run", params, "--params", str(target)]]


def _expect_error(capsys, argv, *words):
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), (argv, err)
    assert "Traceback" not in err
    for w in words:
        assert w in err, (argv, err)


@pytest.mark.parametrize("suffix", [".json", ".npy", ".csv", ".npz"])
def test_links_to_devices_and_fifos_are_refused_before_reading(tmp_path, suffix):
    """main read a link to /dev/zero until memory ran out, and blocked for ever opening a FIFO
    (opening one for reading waits for a writer): in a child process capped in memory and
    time, so that a regression fails instead of taking the suite down."""
    from test_hostile import main_in_subprocess

    targets = {}
    for device in ("/dev/zero", "/dev/urandom", "/dev/null", "fifo"):
        if device == "fifo" or os.path.exists(device):
            (tmp_path / Path(device).name).mkdir()  # a folder each: _cases writes its specs beside the file
            targets[device] = tmp_path / Path(device).name / f"d{suffix}"
    for device, target in targets.items():
        os.mkfifo(target) if device == "fifo" else target.symlink_to(device)
    argvs = [(what, argv) for what, target in targets.items() for argv in _cases(target.parent, target)]
    results = main_in_subprocess([argv for _, argv in argvs])
    for (what, argv), (code, err) in zip(argvs, results, strict=True):
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (argv, err)
        if what == "fifo":
            assert "not a regular file but a FIFO (named pipe)" in err, (argv, err)
        else:
            assert f"not a regular file but a character device (a link to {what})" in err, (argv, err)


def test_directories_are_refused(tmp_path, capsys):
    d = tmp_path / "dir.json"
    d.mkdir()
    for argv in _cases(tmp_path, d):
        if argv[:2] == ["validate", str(d)]:  # validate and check take a folder of specs
            continue
        _expect_error(capsys, argv, "not a regular file but a directory")


def test_huge_sparse_files_are_refused_by_their_size(tmp_path):
    """A sparse terabyte: main streamed it through np.loadtxt or json for as long as it took
    (in a capped child process, so that a regression fails rather than hangs)."""
    from test_hostile import main_in_subprocess

    argvs = []
    for suffix in (".json", ".npy", ".csv", ".npz"):
        (tmp_path / suffix[1:]).mkdir()
        big = tmp_path / suffix[1:] / f"big{suffix}"
        with open(big, "wb") as f:
            f.truncate(2**40)  # no disk used
        argvs += _cases(big.parent, big)
    for argv, (code, err) in zip(argvs, main_in_subprocess(argvs, timeout=60), strict=True):
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
        assert "the file has 1,099,511,627,776 bytes, over the limit of 268,435,456" in err and ENV_VAR in err, err


def test_the_limit_comes_from_the_environment_or_the_api(tmp_path, capsys, monkeypatch):
    spec = _spec(tmp_path, GOOD)
    size = os.path.getsize(spec)
    assert file_size_limit() == DEFAULT_MAX_BYTES == 256 * 2**20
    monkeypatch.setenv(ENV_VAR, str(size - 1))
    _expect_error(capsys, ["run", spec], f"the file has {size:,} bytes, over the limit of {size - 1:,}")
    monkeypatch.setenv(ENV_VAR, "1KiB")
    assert file_size_limit() == 1024 and main(["run", spec]) == 0
    for text, value in (("2M", 2 * 2**20), ("3 GiB", 3 * 2**30), (" 17 ", 17), ("", DEFAULT_MAX_BYTES)):
        monkeypatch.setenv(ENV_VAR, text)
        assert file_size_limit() == value, text
    monkeypatch.setenv(ENV_VAR, "lots")
    _expect_error(capsys, ["run", spec], f"{ENV_VAR}='lots': expected a number of bytes")
    monkeypatch.delenv(ENV_VAR)
    with limit_file_size(10), pytest.raises(SpecError, match="over the limit of 10 "):
        graphspec.load(spec)
    assert graphspec.load(spec).run()["s"] == 3.0  # the limit is back
    with pytest.raises(ValueError):
        with limit_file_size(-1):
            pass


def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("shape, words", [
    ((10**6, 10**6), "an array of shape [1000000, 1000000] (float64) takes 8,000,000,000,000 bytes, over the limit"),
    ((2**28,), "an array of shape [268435456] (float64) takes 2,147,483,648 bytes, over the limit"),
    ((1000,), "truncated: the header promises 8,000 bytes of data (shape [1000], float64), the file has 64"),
])
def test_npy_headers_are_checked_before_numpy_allocates(tmp_path, capsys, shape, words):
    """np.load allocates the shape the header claims before it reads a byte: a 100-byte file
    cost 2 GiB (or a MemoryError traceback). Now the claim is weighed against the limit and
    against the bytes that follow, and nothing big is allocated."""
    (tmp_path / "h.npy").write_bytes(_npy_header(shape) + bytes(64))
    argv = ["validate", _with_file(tmp_path, "h.npy")]
    tracemalloc.start()
    try:
        _expect_error(capsys, argv, words)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak


def test_npy_of_python_objects_or_garbage_is_a_located_error(tmp_path, capsys):
    (tmp_path / "o.npy").write_bytes(_npy_header((2,), "|O") + bytes(64))
    _expect_error(capsys, ["validate", _with_file(tmp_path, "o.npy")], "inputs.x.file: o.npy: holds Python objects")
    (tmp_path / "o.npy").write_bytes(b"not numpy at all")
    _expect_error(capsys, ["validate", _with_file(tmp_path, "o.npy")], "o.npy: not an .npy array file")


def test_an_npz_member_that_decompresses_past_the_limit_is_refused(tmp_path):
    """A zip bomb: a few kilobytes that inflate to megabytes (gigabytes, in a real one)."""
    with zipfile.ZipFile(tmp_path / "b.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy_header((2**18,)) + bytes(8 * 2**18))
    assert (tmp_path / "b.npz").stat().st_size < 10_000
    spec = _with_file(tmp_path, "b.npz")
    with limit_file_size(2**20), pytest.raises(SpecError, match=r"b\.npz: array 'x': decompresses to 2,097,2\d\d bytes, "
                                                               r"over the limit of 1,048,576"):
        graphspec.load(spec)
    with limit_file_size(2**22):
        assert graphspec.load(spec).run()["s"] == 0.0


def test_params_that_are_not_an_npz_say_so_in_graphspec_words(tmp_path, capsys):
    """A CSV given as --params got numpy's "allow_pickle=False" text."""
    spec = _spec(tmp_path, {**GOOD, "params": {"w": {"value": 1.0}}})
    (tmp_path / "p.csv").write_text("w\n1.0\n")
    _expect_error(capsys, ["run", spec, "--params", str(tmp_path / "p.csv")], "not an .npz file (train saves params as .npz)")
    err = capsys.readouterr().err
    assert "pickle" not in err


def test_files_that_are_not_utf8_are_located_errors(tmp_path, capsys):
    (tmp_path / "b.json").write_bytes(b'{"graphspec": "1", "name": "caf\xe9"}')
    _expect_error(capsys, ["validate", str(tmp_path / "b.json")], "not UTF-8 text: byte 0xe9 on line 1")
    (tmp_path / "d.csv").write_bytes(b"x\n1\n\xff\n")
    _expect_error(capsys, ["validate", _with_file(tmp_path, "d.csv")], "d.csv: not UTF-8 text: byte 0xff on line 3")


def test_an_unreadable_file_is_a_located_error(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    p = tmp_path / "s.json"
    p.write_text(json.dumps(GOOD))
    p.chmod(0)
    _expect_error(capsys, ["run", str(p)], "cannot read: permission denied")
