"""The hostile-input suite: every command over the shipped specs with each field mutated to
hostile values, and endless, huge, deep and binary files given as spec, data file, --input and
--params.

Every case must exit 0, 1 or 2 (1 only from a command that checks something: a failed
expectation or check on a spec that is still valid), print no Python traceback, say `error: ...`
on a 2, and finish in bounded time. Cases run in process through `graphspec.cli.main` (each
timed); a few run as subprocesses with a timeout, where a hang would otherwise stop the suite.
Deterministic: the fields of a few specs in full, a seeded sample of the others'.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest

from graphspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p.relative_to(ROOT / "specs").as_posix() for p in (ROOT / "specs").rglob("*.json"))
FULL = ["lecture/sgd_step1.json", "lecture/softmax.json", "losses/hinge.json"]  # every field of these
SAMPLED_PER_SPEC = 8  # and this many (field, mutation) pairs of each of the others
SECONDS = 20.0  # one case, in process: generous on a loaded 2-core machine; the whole suite takes a few
HANG = 300.0  # a case still running then is a hang

BIG_INT = "7" * 5000  # past Python's 4300-digit limit for int(str)
DEEP = 100  # json reads it, numpy does not (at most 64 dims)
MUTATIONS = {"null": None, "[]": [], "{}": {}, '"x"': "x", "-1": -1, "1e308": 1e308, "true": True,
             "5000 digits": "__BIG__", "deep list": "__DEEP__"}
COMMANDS = [["run"], ["check"], ["check", "--fast"], ["train"], ["explain"], ["draw"], ["validate"]]
CHECKS = {"run", "check", "explain", "train"}  # may exit 1 (an expectation, a check, a non-finite result)

# Failures that belong to another part of issue 8 (spec-errors: huge integer literals inside a
# spec; graphspec.spec.parse_json lets Python's ValueError out). Seen, they make the test an
# xfail that names them; once fixed there, the cases pass here unchanged.
KNOWN = [("Exceeds the limit (4300 digits) for integer string conversion", "spec-errors: integer literals of "
          "thousands of digits in a spec file (graphspec.spec.parse_json)")]


def _text(doc) -> str:
    """JSON text, with the placeholders written as JSON can but json.dumps cannot."""
    text = json.dumps(doc)
    return text.replace('"__BIG__"', BIG_INT).replace('"__DEEP__"', "[" * DEEP + "1" + "]" * DEEP)


def _fields(doc, here=()):
    """Every key of every object, and the first element of every list (the root excluded)."""
    items = doc.items() if isinstance(doc, dict) else list(enumerate(doc))[:1] if isinstance(doc, list) else ()
    for k, v in items:
        yield (*here, k)
        yield from _fields(v, (*here, k))


def _mutated(doc, path, value):
    doc = json.loads(json.dumps(doc))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return doc


def _argv(cmd: list[str], spec: Path, out: Path, extra=()) -> list[str]:
    argv = [*cmd, str(spec), *extra]
    if cmd[0] == "check":
        argv += ["--max-elements", "2"]
    if cmd[0] == "train":
        argv += ["-o", str(out / "hostile.params.npz")]
    if cmd[0] == "draw":
        argv += ["-o", str(out / "hostile.dot")]
    return argv


class Cases:
    """Runs argv in process and gathers what went wrong, as text for one failure at the end."""

    def __init__(self):
        self.failures: list[str] = []
        self.known: set[str] = set()
        self.count = 0

    def run(self, argv: list[str], label: str) -> int | None:
        self.count += 1
        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        code: int | None = None
        # a hang in process would stop the suite for good: past HANG seconds, dump every
        # thread's stack and end the run (a failure with the place, not a silent wait)
        faulthandler.dump_traceback_later(HANG, exit=True)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                code = main(argv)
        except SystemExit as e:  # argparse: bad usage, exit 2 with its own usage lines
            code = 2 if e.code == 2 else None
            if code is None:
                self.failures.append(f"{label}: SystemExit({e.code!r}) from {argv}")
            return code
        except Exception:  # a traceback is the finding
            tb = traceback.format_exc()
            for text, owner in KNOWN:
                if text in tb:
                    self.known.add(owner)
                    return None
            self.failures.append(f"{label}: traceback from {argv}:\n{tb[-1500:]}")
            return None
        finally:
            faulthandler.cancel_dump_traceback_later()
        took = time.monotonic() - start
        stderr = err.getvalue()
        problems = []
        if took > SECONDS:
            problems.append(f"took {took:.1f} s")
        if code not in (0, 1, 2):
            problems.append(f"exit {code!r}")
        if code == 1 and argv[0] not in CHECKS:
            problems.append("exit 1 from a command that checks nothing")
        if "Traceback" in stderr:
            problems.append("a traceback on stderr")
        if code == 2 and not any(line.startswith("error: ") for line in stderr.splitlines()):
            problems.append(f"exit 2 without an 'error: ' line (stderr {stderr[:300]!r})")
        if problems:
            self.failures.append(f"{label}: {'; '.join(problems)}: {argv}\n{stderr[-800:]}")
        return code

    def verdict(self) -> None:
        assert not self.failures, f"{len(self.failures)} of {self.count} cases:\n\n" + "\n\n".join(self.failures[:15])
        if self.known:
            pytest.xfail("known, fixed elsewhere: " + "; ".join(sorted(self.known)))


_CHILD = """
import contextlib, io, json, sys, traceback, warnings
from graphspec.cli import main
out = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(argv)
    except SystemExit as e:
        code = e.code
    except BaseException:
        code = None
        err.write(traceback.format_exc())
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def main_in_subprocess(argvs: list[list[str]], timeout: float = 120, memory: int = 2**30) -> list[tuple[int | None, str]]:
    """main(argv) for each argv in one child process whose address space is capped at
    ``memory`` bytes and whose run at ``timeout`` seconds: reading /dev/zero or a FIFO, in
    process, would eat the machine's memory or block the suite for ever. (exit, stderr) each;
    exit None with the traceback as stderr where an exception escaped main."""
    done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(argvs), capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_memory_cap(memory))
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(r) for r in json.loads(done.stdout)]


def _memory_cap(memory: int):
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return cap


@pytest.fixture(scope="module")
def specs_copy(tmp_path_factory) -> Path:
    """The specs folder copied with its data files, so a mutated spec resolves its files."""
    root = tmp_path_factory.mktemp("hostile") / "specs"
    shutil.copytree(ROOT / "specs", root)
    return root


def _spec_cases(rel: str):
    """(path, mutation name) pairs: every one for FULL specs, a seeded sample for the others."""
    doc = json.loads((ROOT / "specs" / rel).read_text())
    pairs = [((), m) for m in ("null", "[]", '"x"')] + [(p, m) for p in _fields(doc) for m in MUTATIONS]
    if rel not in FULL:
        pairs = random.Random(f"hostile {rel}").sample(pairs, SAMPLED_PER_SPEC)
    return doc, pairs


@pytest.mark.parametrize("rel", SPECS)
def test_every_field_mutated_under_every_command(specs_copy, rel):
    doc, pairs = _spec_cases(rel)
    cases = Cases()
    folder = specs_copy / Path(rel).parent
    for i, (path, mutation) in enumerate(pairs):
        value = MUTATIONS[mutation]
        mutated = value if not path else _mutated(doc, path, value)
        spec = folder / "hostile.json"
        spec.write_text(_text(mutated))
        cmd = COMMANDS[(i + len(path)) % len(COMMANDS)]
        label = f"{rel} {'.'.join(map(str, path)) or '(root)'} = {mutation}"
        if cases.run(_argv(cmd, spec, folder), label) == 1 and cases.run(["validate", str(spec)], label) != 0:
            cases.failures.append(f"{label}: exit 1 from {cmd} on a spec that validate rejects")  # 2 was due
    cases.verdict()


# -- hostile files -------------------------------------------------------------------------------

def _make_files(root: Path) -> dict[str, Path]:
    """Endless, huge, deep and binary files, each under the names a spec, an .npy, .npz, .csv or
    .json data file would have."""
    rng = np.random.default_rng(8)
    made: dict[str, Path] = {}
    kinds = {
        "zero": lambda p: p.symlink_to("/dev/zero"),
        "urandom": lambda p: p.symlink_to("/dev/urandom"),
        "fifo": lambda p: os.mkfifo(p),
        "sparse": lambda p: (p.write_bytes(b""), os.truncate(p, 2**40)),  # a terabyte, no disk used
        "deep": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
        "binary": lambda p: p.write_bytes(rng.bytes(4096)),
        "nul": lambda p: p.write_bytes(bytes(4096)),
        "npyhead": lambda p: p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, "
                                           b"'shape': (4000000000, 4000000000), }" + b" " * 43 + b"\n"),
        "digits": lambda p: p.write_text("[" + BIG_INT + "]"),
    }
    for kind, make in kinds.items():
        if kind in ("zero", "urandom") and not os.path.exists(f"/dev/{kind}"):
            continue
        for suffix in (".json", ".npy", ".npz", ".csv"):
            p = root / f"{kind}{suffix}"
            make(p)
            made[p.name] = p
    return made


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("hostile_files")
    return root, _make_files(root)


def _specs_around(root: Path, target: Path) -> dict[str, Path]:
    """Specs that read ``target``: as an input's file, as train data; and one with a free input."""
    docs = {
        "file": {"graphspec": "1", "inputs": {"x": {"file": target.name}}, "params": {"w": {"value": 1.0}},
                 "nodes": {"m": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["m"]}}, "loss": "L"},
        "train": {"graphspec": "1", "inputs": {"x": {"shape": ["N"]}}, "params": {"w": {"value": 1.0}},
                  "nodes": {"m": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["m"]}}, "loss": "L",
                  "train": {"data": {"x": target.name}, "optimizer": {"sgd": {"lr": 0.1}}}},
        "free": {"graphspec": "1", "inputs": {"x": {}}, "params": {"w": {"value": 1.0}},
                 "nodes": {"m": {"op": "mul", "args": ["x", "w"]}, "L": {"op": "sum", "args": ["m"]}}, "loss": "L"},
    }
    out = {}
    for name, doc in docs.items():
        p = root / f"around_{target.stem}_{target.suffix[1:]}_{name}.json"
        p.write_text(json.dumps(doc))
        out[name] = p
    return out


ENDLESS = {"zero", "urandom", "fifo", "sparse"}  # in a capped child only: main read them for ever


def _reading(root: Path, target: Path) -> list[list[str]]:
    """argv that read ``target``: as the spec and as a spec's file (under each command in
    turn), as train data, as --input and as --params (under each command that takes them)."""
    around = _specs_around(root, target)
    turn = sum(map(ord, target.name))  # which command reads which file: spread, deterministic
    out = [_argv(COMMANDS[turn % len(COMMANDS)], target, root), _argv(COMMANDS[(turn + 3) % len(COMMANDS)],
                                                                       around["file"], root),
           _argv(["train"], around["train"], root)]
    for cmd in (["run"], ["check"], ["check", "--fast"], ["explain"]):
        out.append(_argv(cmd, around["free"], root, ["--input", f"x=@{target}"]))
    for cmd in (["run"], ["check"]):
        out.append(_argv(cmd, around["free"], root, ["--input", "x=[1.0, 2.0]", "--params", str(target)]))
    return out


def test_hostile_files_as_spec_data_input_and_params(hostile_files):
    """Each file as the spec, as an input's `file`, as train data, as --input @file and as
    --params, under a command that reads it: exit 2 with a located line, at once. (FIFOs in
    subprocesses only, below and in test_reading: opening one blocked, for ever, in process.)"""
    root, files = hostile_files
    cases = Cases()
    for target in sorted(p for p in files.values() if p.stem not in ENDLESS):
        for argv in _reading(root, target):
            code = cases.run(argv, target.name)
            if code is not None and code != 2:
                cases.failures.append(f"{target.name}: exit {code}, expected 2: {argv}")
    cases.verdict()


def test_endless_files_in_a_capped_subprocess(hostile_files):
    """/dev/zero, /dev/urandom, FIFOs and a sparse terabyte under every role, in a child
    process capped at 1 GiB of address space and 2 minutes: main read /dev/zero until the
    machine ran out of memory, streamed the terabyte through np.loadtxt, and blocked on a FIFO
    for ever."""
    root, files = hostile_files
    targets = sorted(p for p in files.values() if p.stem in ENDLESS)
    argvs = [(t.name, argv) for t in targets for argv in _reading(root, t)]
    results = main_in_subprocess([a for _, a in argvs])
    bad = [f"{name}: exit {code}: {argv}\n{err[-800:]}" for (name, argv), (code, err) in zip(argvs, results, strict=True)
           if code != 2 or "Traceback" in err or not err.startswith("error: ")
           or not ("not a regular file" in err or "over the limit" in err)]
    assert not bad, f"{len(bad)} of {len(argvs)}:\n" + "\n".join(bad[:10])


@pytest.mark.parametrize("value", ["[" * 100_000, BIG_INT, "[" * DEEP + "1" + "]" * DEEP, "-" * 10_000, "\x00", "[1e999]"])
def test_hostile_input_values_on_the_command_line(tmp_path, value):
    spec = tmp_path / "free.json"
    spec.write_text(json.dumps({"graphspec": "1", "inputs": {"x": {}}, "nodes": {"s": {"op": "sum", "args": ["x"]}},
                                "loss": "s"}))
    cases = Cases()
    for cmd in (["run"], ["check"], ["check", "--fast"], ["explain"]):
        cases.run(_argv(cmd, spec, tmp_path, ["--input", f"x={value}"]), repr(value[:20]))
    cases.verdict()


def test_a_handful_in_subprocesses_with_a_timeout(hostile_files, specs_copy):
    """Where a hang would stop the suite: a FIFO (opening one for reading blocks), /dev/zero,
    a terabyte, a mutated spec; through `python -m graphspec`, as a user runs it."""
    root, files = hostile_files
    around = _specs_around(root, files["fifo.csv"])
    mutated = specs_copy / "lecture" / "hostile_sub.json"
    doc = json.loads((ROOT / "specs/lecture/linear.json").read_text())
    mutated.write_text(_text(_mutated(doc, ("inputs",), {"x": {"value": "__DEEP__"}})))
    runs = [["run", str(files["fifo.json"])], ["check", str(around["file"])],
            ["run", str(around["free"]), "--input", f"x=@{files['zero.npy']}"] if "zero.npy" in files else
            ["run", str(files["sparse.json"])],
            ["train", str(_specs_around(root, files["sparse.csv"])["train"]), "-o", str(root / "p.npz")],
            ["check", "--fast", str(mutated)]]
    for argv in runs:
        start = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "graphspec", *argv], capture_output=True, text=True, timeout=120,
                             cwd=root, stdin=subprocess.DEVNULL, preexec_fn=_memory_cap(2**30))
        assert out.returncode == 2, (argv, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.startswith("error: "), (argv, out.stderr)
        assert time.monotonic() - start < 60, argv


def test_float_labels_of_a_class_loss_get_a_dtype_hint(tmp_path, capsys):
    """Integer labels declared without "dtype": "int64" are floats, read as targets: the shape
    error said nothing of the dtype."""
    for op in ("softmax_cross_entropy", "hinge"):
        spec = tmp_path / "s.json"
        spec.write_text(json.dumps({"graphspec": "1", "inputs": {"z": {"value": [[1.0, 2.0], [0.5, 0.0]]},
                                                                 "y": {"value": [0, 1]}},
                                    "nodes": {"L": {"op": op, "args": ["z", "y"]}}, "loss": "L"}))
        assert main(["validate", str(spec)]) == 2
        err = capsys.readouterr().err
        assert err.rstrip().endswith('got labels (2,) (class labels? declare the input with "dtype": "int64")'), err
    spec.write_text(json.dumps({"graphspec": "1", "inputs": {"z": {"value": [[1.0, 2.0]]}, "y": {"value": [[1.0, 0, 0]]}},
                                "nodes": {"L": {"op": "hinge", "args": ["z", "y"]}}}))
    assert main(["validate", str(spec)]) == 2  # float targets of a wrong shape: no hint about labels
    assert "class labels?" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["", ".", "..", "data", "a\u0000b.csv", "x" * 5000 + ".csv", "/dev/zero", "/dev/stdin",
                                  "\x1b[31mred.csv", "../" * 40 + "x.npy", "data/X.csv/inner.csv"])
@pytest.mark.parametrize("key", [None, "", "k" * 5000, "a\u0000"])
def test_hostile_file_names_and_keys_in_a_spec(specs_copy, name, key):
    decl = {"file": name} | ({} if key is None else {"key": key})
    spec = specs_copy / "mlp" / "names.json"
    spec.write_text(json.dumps({"graphspec": "1", "inputs": {"x": decl}, "nodes": {"s": {"op": "sum", "args": ["x"]}}}))
    cases = Cases()
    for cmd in (["validate"], ["run"]):
        code = cases.run(_argv(cmd, spec, specs_copy), f"file {name[:20]!r} key {key and key[:20]!r}")
        if code is not None and code != 2:
            cases.failures.append(f"exit {code}, expected 2")
    cases.verdict()


def test_a_folder_of_hostile_files(hostile_files):
    """`validate DIR` and `check DIR` over a folder of FIFOs, device links, sparse terabytes,
    deep and binary files (in the capped child: a FIFO opened would block it)."""
    root, _ = hostile_files
    for (code, err), cmd in zip(main_in_subprocess([["validate", str(root)], ["check", str(root), "--max-elements", "2"]]),
                                ("validate", "check"), strict=True):
        assert code in (0, 1, 2) and "Traceback" not in err, (cmd, code, err[-2000:])
        assert code != 2 or any(line.startswith("error: ") for line in err.splitlines()), (cmd, err[-2000:])
