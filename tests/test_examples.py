"""examples/: each script runs as a user would run it, and its verdict holds (PASS stays PASS; each
FAIL names the node to blame)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

VERDICTS = {  # script: (exit code, what its report must say)
    "swish_op.py": (0, ["PASS: 2 of 2 checks pass"]),
    "numpy_function.py": (0, ["PASS: 2 of 2 checks pass", "dlogistic_loss/dw"]),
    "layer_norm_op.py": (1, ["blame: node 'ln' (layer_norm): its VJP for arg 0 x (x) is wrong",
                             "census (dL/dx): all 8 elements (100%) over tolerance", "FAIL:"]),
    "torch_function.py": (1, ["blame: node 'MyTanh' (MyTanh): its VJP for arg 0 x (x) is wrong", "FAIL:"]),
}


def test_every_example_has_a_verdict_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(VERDICTS)


@pytest.mark.parametrize("script", sorted(VERDICTS))
def test_an_example_runs_and_its_verdict_holds(script):
    code, says = VERDICTS[script]
    p = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300)
    assert p.returncode == code, p.stdout + p.stderr
    for text in says:
        assert text in p.stdout, p.stdout
    assert ("FAIL" in p.stdout.strip().splitlines()[-1]) == (code == 1) and p.stderr == ""


def test_the_readme_s_failing_demo_is_what_graphspec_prints(tmp_path):
    """README.md's failing report comes from `--import examples/ops/l2_slip.py`: every line it shows
    (but the timing and the file's absolute path) is a line of the real run."""
    import re

    root = EXAMPLES.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n\$ python -m graphspec check specs/mlp/mlp\.json --taylor --import examples/ops/l2_slip\.py\n"
                      r"(.*?)```", readme, re.S).group(1)
    p = subprocess.run([sys.executable, "-m", "graphspec", "check", "specs/mlp/mlp.json", "--taylor", "--import",
                        "examples/ops/l2_slip.py"], capture_output=True, text=True, cwd=root, timeout=300,
                       env={**__import__("os").environ, "COLUMNS": "110"})
    assert p.returncode == 1, p.stderr
    out = [" ".join(line.split()) for line in p.stdout.splitlines()]
    for line in block.splitlines():
        if line in ("...",) or set(line.strip()) <= {"─"}:
            continue
        shown = " ".join(line.split())
        if shown.startswith("FAIL:"):
            shown = shown.split(" (")[0]  # the count of evaluations and the time vary
        elif shown.startswith("note: op 'l2' replaced by"):
            shown = "note: op 'l2' replaced by"
        assert any(o.startswith(shown) for o in out), line
