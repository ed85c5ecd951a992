"""A fuzzer for the project's rule: bad input gets a clear error, never a traceback.

Hypothesis takes the shipped specs (specs/**/*.json) and small hand-made ones (one per op,
from the op table's own samples), mutates them (a key deleted, a value of the wrong type, a
name renamed or unknown, args swapped, another op, random attrs, dtypes, shapes with symbolic,
zero, negative or huge dims, seeds, expect, train and loss blocks, `--input` values, the JSON
text itself cut short) and runs a command of the CLI in process on the result. Whatever
happens, `main` returns 0, 1 or 2, and a 2 comes with one line on stderr per error, "error: ...".
Deterministic (derandomize) and quick: the whole file runs in well under 20 s.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import re
import shutil
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphspec.cli import main
from graphspec.errors import MAX_ERRORS
from graphspec.ops import OPS

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILES = sorted(p.relative_to(ROOT / "specs") for p in (ROOT / "specs").rglob("*.json"))
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SETTINGS = {"derandomize": True, "deadline": None, "database": None,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]}


def _op_spec(op: str) -> dict:
    """A small spec around one op: its first sample's args as inputs, a sum as the loss."""
    args, attrs = OPS[op].samples()[0]
    inputs = {}
    for i, a in enumerate(args):
        a = np.asarray(a)
        decl = {"value": a.tolist()}
        if a.dtype.kind in "iu":
            decl["dtype"] = "int64"
        inputs[f"a{i}"] = decl
    node = {"op": op, "args": list(inputs)}
    if attrs:
        node["attrs"] = attrs
    return {"graphspec": "1", "seed": 3, "inputs": inputs,
            "params": {"w": {"shape": [2], "init": {"uniform": [-1, 1]}}},
            "nodes": {"y": node, "s": {"op": "sum", "args": ["y"]}, "r": {"op": "l2", "args": ["w"]},
                      "L": {"op": "add", "args": ["s", "r"]}},
            "loss": "L", "expect": {"values": {"r": 0.5}, "grads": {"w": [0.0, 0.0]}}}


HAND_MADE = {f"op_{op}": _op_spec(op) for op in sorted(OPS)} | {
    "tiny": {"graphspec": "1", "inputs": {"x": {"value": 2.0}, "y": {"value": 3.0}},
             "nodes": {"z": {"op": "mul", "args": ["x", "y"]}}, "loss": {"node": "z", "seed": 5.0},
             "expect": {"values": {"z": 6.0}, "grads": {"x": 15.0, "y": 10.0}}},
    "symbolic": {"graphspec": "1", "inputs": {"X": {"shape": ["N", 2], "value": [[1, 2], [3, 4], [5, 6]]},
                                              "y": {"shape": ["N"], "dtype": "int64", "value": [0, 1, 1]}},
                 "params": {"W": {"shape": [2, 2], "init": "xavier"}, "b": {"shape": [2], "init": "zeros"}},
                 "nodes": {"h": {"op": "matmul", "args": ["X", "W"]}, "z": {"op": "add", "args": ["h", "b"]},
                           "L": {"op": "softmax_cross_entropy", "args": ["z", "y"]}},
                 "outputs": ["z", "L"], "loss": "L",
                 "train": {"optimizer": {"adam": {"lr": 0.1}}, "epochs": 2, "batch_size": 2, "shuffle": True,
                           "metrics": ["loss", "accuracy"]}},
}

# -- junk ----------------------------------------------------------------------------------------

NUMBERS = st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, -0.0, 1e-320, 1e308, -1e308, 2**31, 2**63, 2**64, 10**30,
                           -(2**63), float("inf"), float("-inf"), float("nan")])
WORDS = st.sampled_from(["", "x", "N", "M", "zeros", "he", "xavier", "float32", "int64", "bool", "mean", "none",
                         "nope", "1.5", "@", "loss", "sgd", "adam", "accuracy", "data/x.csv", "X", "y", "W", "2h",
                         "[/] [bold", "x\ud800"])
KEYS = st.sampled_from(["op", "args", "attrs", "value", "shape", "dtype", "file", "key", "grad", "init", "node", "seed",
                        "sgd", "adam", "lr", "momentum", "betas", "eps", "normal", "uniform", "values", "grads", "rtol",
                        "atol", "axis", "axes", "keepdims", "reduction", "margin", "alpha", "x", "bogus"])
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), WORDS, st.integers(-3, 3))
JUNK = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(KEYS, kids, max_size=3)),
                    max_leaves=6)
DIMS = st.one_of(st.sampled_from([0, 1, 2, 3, 4, -1, "N", "M", 10**12, 2.5, None]), st.integers(0, 4))
ARRAYS = st.one_of(NUMBERS, st.integers(-2, 3), st.booleans(),
                   st.integers(0, 3).flatmap(lambda n: st.lists(st.one_of(st.integers(-2, 3), st.sampled_from([0.5, -1.5, 0.0])),
                                                                min_size=n, max_size=n)),
                   st.tuples(st.integers(0, 3), st.integers(0, 3)).flatmap(
                       lambda s: st.lists(st.lists(st.sampled_from([0, 1, 2, -1.0, 0.25]), min_size=s[1], max_size=s[1]),
                                          min_size=s[0], max_size=s[0])))
ATTR_KEYS = sorted({k for op in OPS.values() for k in op.attrs} | {"bogus"})
ATTR_VALUES = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.sampled_from(["mean", "sum", "none", "avg"]),
                        st.lists(st.integers(-3, 3), max_size=3), JUNK)


def _paths(doc, here=()):
    """Every place in a JSON tree (the root excluded)."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield (*here, k)
        yield from _paths(v, (*here, k))


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _names(doc):
    out = []
    for kind in ("inputs", "params", "nodes"):
        if isinstance(doc.get(kind), dict):
            out += list(doc[kind])
    return out


def _mutate(doc, draw):
    """One random change, in place."""
    names = _names(doc) or ["x"]
    nodes = [n for n, v in doc.get("nodes", {}).items() if isinstance(v, dict)] if isinstance(doc.get("nodes"), dict) else []
    decls = [(k, n) for k in ("inputs", "params") if isinstance(doc.get(k), dict)
             for n, v in doc[k].items() if isinstance(v, dict)]
    kind = draw(st.sampled_from(["delete", "junk", "junk", "rename", "swap", "op", "attr", "dtype", "shape", "seed",
                                 "expect", "train", "loss", "key", "const", "outputs", "init", "value", "value", "text"]))
    paths = list(_paths(doc))
    if kind in ("delete", "junk", "key", "swap") and paths:
        path = draw(st.sampled_from(paths))
        parent, last = _get(doc, path[:-1]), path[-1]
        if kind == "delete":
            del parent[last]
        elif kind == "junk":
            parent[last] = draw(JUNK)
        elif kind == "key" and isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JUNK)
        elif kind == "swap" and isinstance(parent[last], list) and len(parent[last]) >= 2:
            parent[last].reverse()
    elif kind == "rename":
        strings = [p for p in paths if isinstance(_get(doc, p), str) and NAME.match(_get(doc, p))]
        keys = [p for p in paths if isinstance(p[-1], str) and p[-1] in names and len(p) == 2]
        path = draw(st.sampled_from(strings + keys)) if strings + keys else None
        new = draw(st.sampled_from([*names, "zz", "x_unknown", "loss"]))
        if path is not None and path in keys:
            parent = _get(doc, path[:-1])
            parent[new] = parent.pop(path[-1])
        elif path is not None:
            _get(doc, path[:-1])[path[-1]] = new
    elif kind == "op" and nodes:
        doc["nodes"][draw(st.sampled_from(nodes))]["op"] = draw(st.sampled_from([*sorted(OPS), "matmull"]))
    elif kind == "attr" and nodes:
        node = doc["nodes"][draw(st.sampled_from(nodes))]
        if not isinstance(node.get("attrs"), dict):
            node["attrs"] = {}
        node["attrs"][draw(st.sampled_from(ATTR_KEYS))] = draw(ATTR_VALUES)
    elif kind == "dtype" and decls:
        k, n = draw(st.sampled_from(decls))
        doc[k][n]["dtype"] = draw(st.sampled_from(["float64", "float32", "int64", "bool", "float16", 1]))
    elif kind == "shape" and decls:
        k, n = draw(st.sampled_from(decls))
        doc[k][n]["shape"] = draw(st.lists(DIMS, max_size=3))
    elif kind == "value" and decls:  # a well-formed value of another shape or dtype: zero sizes, scalars, ints
        k, n = draw(st.sampled_from(decls))
        doc[k][n]["value"] = draw(ARRAYS)
        for key in ("file", "shape") if draw(st.booleans()) else ("file",):
            doc[k][n].pop(key, None)
    elif kind == "init" and decls:
        k, n = draw(st.sampled_from(decls))
        doc[k][n]["init"] = draw(st.one_of(st.sampled_from(["zeros", "ones", "xavier", "he"]), NUMBERS,
                                           st.fixed_dictionaries({"normal": NUMBERS}),
                                           st.fixed_dictionaries({"uniform": st.lists(NUMBERS, min_size=2, max_size=2)}),
                                           st.lists(NUMBERS, max_size=3), JUNK))
    elif kind == "seed":
        doc["seed"] = draw(st.one_of(NUMBERS, JUNK))
    elif kind == "expect":
        table = st.dictionaries(st.sampled_from([*names, "zz"]), st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3), JUNK),
                                max_size=3)
        doc["expect"] = draw(st.fixed_dictionaries({}, optional={"values": table, "grads": table, "rtol": NUMBERS,
                                                                 "atol": NUMBERS}))
    elif kind == "train":
        opt = st.one_of(st.fixed_dictionaries({"sgd": st.fixed_dictionaries({"lr": NUMBERS}, optional={"momentum": NUMBERS})}),
                        st.fixed_dictionaries({"adam": st.fixed_dictionaries({}, optional={
                            "lr": NUMBERS, "betas": st.lists(NUMBERS, max_size=3), "eps": NUMBERS})}), JUNK)
        doc["train"] = draw(st.fixed_dictionaries({"optimizer": opt}, optional={
            "data": st.dictionaries(st.sampled_from([*names, "zz"]), st.sampled_from(["data/X.csv", "data/x_data.csv",
                                                                                      "nope.csv", "data"]), max_size=2),
            "epochs": NUMBERS, "batch_size": st.one_of(NUMBERS, st.none()), "shuffle": st.booleans(),
            "log_every": NUMBERS, "metrics": st.lists(st.sampled_from(["loss", "accuracy", "f1"]), max_size=2)}))
    elif kind == "loss":
        doc["loss"] = draw(st.one_of(st.sampled_from([*names, "zz"]),
                                     st.fixed_dictionaries({"node": st.sampled_from([*names, "zz"])},
                                                           optional={"seed": st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3),
                                                                                       JUNK)})))
    elif kind == "const" and nodes:
        node = doc["nodes"][draw(st.sampled_from(nodes))]
        if isinstance(node.get("args"), list) and node["args"]:
            node["args"][draw(st.integers(0, len(node["args"]) - 1))] = draw(NUMBERS)
    elif kind == "text":  # free text that rich or Graphviz could read as markup
        text = draw(st.sampled_from(["[/] [bold", "[red]x[/]", 'a"b{c}|<d>', "\n"]))
        doc[draw(st.sampled_from(["name", "description"]))] = text
    elif kind == "outputs":
        doc["outputs"] = draw(st.lists(st.sampled_from([*names, "zz"]), max_size=3))


INPUT_ARGS = st.lists(st.one_of(
    st.builds(lambda n, v: f"{n}={json.dumps(v)}", st.sampled_from(["x", "X", "y", "a0", "a1", "lam", "w", "zz"]),
              st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3), st.lists(st.lists(st.integers(-2, 3), max_size=3), max_size=3),
                        JUNK)),
    st.sampled_from(["x", "=1", "x=", "x=@nope.npy", "x=@data/x_data.csv", "X=@data/X.csv", "x=[1,", "y=@data",
                     "X=@data/X.csv:k", "x=@nope.npz:k", "x=@data/x_data.csv:", "x=" + "[" * 5000, "x=" + "9" * 5000,
                     "x=" + "[" * 80 + "]" * 80, "x=@/dev/zero", "y=@/dev/null"])),
    max_size=2)


def _command(cmd, path: Path, inputs: list[str], flag: bool, params: str | None = None, out: Path | None = None) -> list[str]:
    """argv for one command; ``params`` a --params file (run, check), ``out`` the folder of -o files."""
    out = out or path.parent
    opts = [a for i in inputs for a in ("--input", i)] + (["--params", params] if params and cmd in ("run", "check") else [])
    return {
        "run": ["run", str(path), *opts, *(["--no-grad"] if flag else ["--format", "json"])],
        "validate": ["validate", str(path)],
        "check": ["check", str(path), "--max-elements", "2", *opts, *(["--fast", "--directions", "1"] if flag else []),
                  *(["-o", str(out / "report.md")] if out != path.parent else [])],
        "explain": ["explain", str(path), *opts],
        "draw": ["draw", str(path), "-o", str(out / "fuzz.dot"), *(["--no-values"] if flag else [])],
        "train": ["train", str(path), "--epochs", "1", "-o", str(out / "fuzz.npz"), *(["--log-steps"] if flag else [])],
    }[cmd]


@functools.cache
def _params_files(root: Path) -> list[str]:
    """--params files: fitting ones (for the specs' usual param names), strings, an .npy, no zip."""
    files = {"good.npz": lambda p: np.savez(p, w=np.array(1.5), W=np.zeros((3, 4)), W1=np.zeros((2, 8)), b=np.ones(3)),
             "strings.npz": lambda p: np.savez(p, w=np.array(["a"])),
             "one.npz": lambda p: p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }"),
             "broken.npz": lambda p: p.write_bytes(b"PK\x03\x04 no zip"),
             "ints.npz": lambda p: np.savez(p, w=np.array(2), x=np.array([1, 2]))}
    for name, make in files.items():
        make(root / name)
    return [str(root / n) for n in files] + [str(root / "missing.npz")]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) in process: (exit code, stdout, stderr). An exception escaping main is a
    failure (its traceback in the message), except argparse's SystemExit(2) for bad usage."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(argv)
    except SystemExit as e:
        assert e.code == 2, f"SystemExit({e.code!r}) from {argv}"
        return 2, out.getvalue(), "error: (argparse usage)\n"
    except Exception:
        pytest.fail(f"traceback from {argv}:\n{traceback.format_exc()}")
    return code, out.getvalue(), err.getvalue()


def assert_clean(argv: list[str], text: str) -> int:
    code, _, err = run_cli(argv)
    assert code in (0, 1, 2), f"exit code {code!r} from {argv}\n{text}"
    if code == 2:  # one line per error (a spec may have several), nothing else
        lines = err.splitlines()
        assert 1 <= len(lines) <= MAX_ERRORS + 1 and all(x.startswith("error: ") for x in lines), f"{argv}: {err!r}\n{text}"
    return code


@pytest.fixture(scope="module")
def specs_copy(tmp_path_factory):
    """The specs folder copied (with its data files), so a mutated spec resolves its files."""
    root = tmp_path_factory.mktemp("fuzz") / "specs"
    shutil.copytree(ROOT / "specs", root)
    return root


COMMANDS = st.sampled_from(["run", "run", "validate", "check", "explain", "draw", "train"])


def _fuzz_one(specs_copy: Path, doc: dict, folder: str, data) -> None:
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(doc, data.draw)
    text = json.dumps(doc)
    if data.draw(st.integers(0, 19)) == 0:  # now and then, broken JSON text
        text = text[: data.draw(st.integers(0, len(text)))]
    path = specs_copy / folder / "fuzz.json"
    path.write_text(text)
    cmd = data.draw(COMMANDS)
    inputs = data.draw(INPUT_ARGS) if cmd in ("run", "check", "explain") else []
    params = data.draw(st.one_of(st.none(), st.sampled_from(_params_files(specs_copy))))
    out = data.draw(st.sampled_from([None, None, None, specs_copy / "missing" / "folder", specs_copy / "lecture" / "mul.json"]))
    assert_clean(_command(cmd, path, inputs, data.draw(st.booleans()), params, out), text)


@settings(max_examples=600, **SETTINGS)
@given(data=st.data())
def test_mutated_spec_files_never_raise(specs_copy, data):
    rel = data.draw(st.sampled_from(SPEC_FILES))
    doc = json.loads((ROOT / "specs" / rel).read_text())
    _fuzz_one(specs_copy, doc, str(rel.parent), data)


@settings(max_examples=600, **SETTINGS)
@given(data=st.data())
def test_mutated_small_specs_never_raise(specs_copy, data):
    doc = copy.deepcopy(HAND_MADE[data.draw(st.sampled_from(sorted(HAND_MADE)))])
    _fuzz_one(specs_copy, doc, "lecture", data)


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_arbitrary_json_never_raises(specs_copy, data):
    """Not a spec at all: any JSON value, or an object with some of the right keys."""
    doc = data.draw(st.one_of(JUNK, st.dictionaries(st.sampled_from(["graphspec", "nodes", "inputs", "params", "loss",
                                                                     "expect", "train", "outputs", "seed"]), JUNK)))
    if isinstance(doc, dict) and data.draw(st.booleans()):
        doc["graphspec"] = "1"
    path = specs_copy / "fuzz.json"
    text = json.dumps(doc)
    path.write_text(text)
    assert_clean(_command(data.draw(COMMANDS), path, [], data.draw(st.booleans())), text)


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400", "-1e309", "1" + "0" * 400])
@pytest.mark.parametrize("where", ["inputs.x.value", "args", "init", "seed", "attr", "expect", "lr"])
def test_non_finite_numbers_are_located_errors(specs_copy, number, where):
    """JSON has no Infinity or NaN, but Python's json reads them, and reads 1e308 * 10 written out
    (1e400) as inf: graphspec rejects them where they stand, as a bad spec (exit 2, one line)."""
    n = "__N__"
    doc = {"graphspec": "1", "inputs": {"x": {"value": [1.0, 2.0]}}, "params": {"w": {"shape": [2], "init": "zeros"}},
           "nodes": {"h": {"op": "leaky_relu", "args": ["x"]}, "m": {"op": "mul", "args": ["h", "w"]},
                     "L": {"op": "sum", "args": ["m"]}},
           "loss": {"node": "L", "seed": 1.0}, "train": {"optimizer": {"sgd": {"lr": 0.1}}}}
    place = {"inputs.x.value": ("inputs", "x", "value"), "args": ("nodes", "m", "args"), "init": ("params", "w", "init"),
             "seed": ("loss", "seed"), "attr": ("nodes", "h", "attrs"), "expect": ("expect",),
             "lr": ("train", "optimizer", "sgd", "lr")}[where]
    value = {"inputs.x.value": [1.0, n], "args": ["h", n], "init": n, "seed": n, "attr": {"alpha": n},
             "expect": {"values": {"L": n}}, "lr": n}[where]
    parent = doc
    for key in place[:-1]:
        parent = parent[key]
    parent[place[-1]] = value
    text = json.dumps(doc).replace(json.dumps(n), number)
    path = specs_copy / "spec.json"
    path.write_text(text)
    for cmd in ("validate", "run", "train"):
        code, _, err = run_cli(_command(cmd, path, [], False))
        assert code == 2, (cmd, text, err)
        (line,) = err.splitlines()
        loc = ".".join(place[:2]) if where != "lr" else "train.optimizer.sgd.lr"
        assert line.startswith(f"error: {path}: {loc}"), line
        message = line[len(f"error: {path}: {loc}"):]
        assert "finite" in message or "out of range for float64" in message, line  # an integer too big for any float


INTS = st.sampled_from(["-1", "0", "1", "2", "x", "1e3"])
FLAGS = {
    "run": st.sampled_from([["--no-grad"], ["--format", "json"], ["--format", "yaml"]]),
    "check": st.one_of(st.sampled_from([["--fast"], ["--taylor"], ["--strict"], ["--blame"], ["-v"], ["--ops"],
                                        ["--format", "markdown"], ["--format", "json"], ["--op", "relu"]]),
                       st.tuples(st.sampled_from(["--seed", "--directions", "--max-elements"]), INTS).map(list),
                       st.tuples(st.just("--wrt"), st.sampled_from(["x", "w", "W1", "y", "zz", "lam"])).map(list)),
    "train": st.one_of(st.sampled_from([["--log-steps"], ["--format", "json"]]), st.tuples(st.just("--epochs"), INTS).map(list)),
    "explain": st.just([]),
    "draw": st.sampled_from([["--no-values"], []]),
}


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_command_line_options_never_raise(specs_copy, data):
    """The shipped specs as they are, under random options (negative seeds, zero epochs, --wrt twice...)."""
    rel = data.draw(st.sampled_from(SPEC_FILES))
    cmd = data.draw(st.sampled_from(sorted(FLAGS)))
    argv = [cmd, str(specs_copy / rel)]
    for flags in data.draw(st.lists(FLAGS[cmd], max_size=3)):
        argv += flags
    if cmd in ("train", "draw"):
        argv += ["-o", str(specs_copy / ("fuzz.npz" if cmd == "train" else "fuzz.dot"))]
    if cmd == "check":
        argv += ["--max-elements", "2"]
    assert_clean(argv, str(rel))
