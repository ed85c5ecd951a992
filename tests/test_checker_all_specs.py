"""Every shipped spec passes the gradient check in every mode (full, --fast over several seeds,
--blame, --taylor), in float64 and in float32 copies, through the API and through the CLI: a correct
graph never FAILs and never gets a node blamed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphspec.checker import FAIL, gradcheck

ROOT = Path(__file__).resolve().parent.parent
# specs/exercises/ holds submissions with a slip on purpose: they must fail (tests/test_inline.py)
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.json") if "data" not in p.parts and "exercises" not in p.parts)
MODES = {"full": {}, "fast": {"fast": True}, "blame": {"blame": True}, "taylor": {"taylor": True}}
FLAGS = {"full": [], "fast": ["--fast"], "blame": ["--blame"], "taylor": ["--taylor"]}
FAST_SEEDS = range(6)
CLI_FAST_SEEDS = range(2)  # the API tests above cover every seed; a process start costs ~1 s


def _float32_copy(path: Path, folder: Path) -> Path:
    """The spec with every float64 leaf (dtype given or defaulted) made float32, written to ``folder``;
    relative data files resolved against the original spec's folder so they stay readable."""
    doc = json.loads(path.read_text())
    doc.pop("$schema", None)
    for kind in ("inputs", "params"):
        for decl in doc.get(kind, {}).values():
            if decl.get("dtype", "float64") == "float64":
                decl["dtype"] = "float32"
            if "file" in decl and not Path(decl["file"]).is_absolute():
                decl["file"] = str((path.parent / decl["file"]).resolve())
    out = folder / f"{path.parent.name}_{path.name}"
    out.write_text(json.dumps(doc))
    return out


@pytest.fixture(scope="module")
def float32_specs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("float32")
    return [_float32_copy(p, folder) for p in SPECS]


def _assert_ok(rep, label: str) -> None:
    assert rep.ok, f"{label}\n{rep.text()}"
    assert not rep.blamed, f"{label}: blamed {[n.node for n in rep.blamed]}\n{rep.text()}"
    assert not any(m.status == FAIL for m in rep.modes), f"{label}\n{rep.text()}"


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_spec_passes_in_every_mode(path: Path, mode: str) -> None:
    seeds = FAST_SEEDS if mode == "fast" else [0]
    for seed in seeds:
        _assert_ok(gradcheck(path, seed=seed, **MODES[mode]), f"{path.name} {mode} seed {seed}")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_float32_copy_passes_in_every_mode(float32_specs: list[Path], mode: str) -> None:
    seeds = FAST_SEEDS if mode == "fast" else [0]
    for path in float32_specs:
        for seed in seeds:
            rep = gradcheck(path, seed=seed, **MODES[mode])
            assert rep.dtype == "float32"
            _assert_ok(rep, f"{path.name} float32 {mode} seed {seed}")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphspec", "check", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", sorted(FLAGS))
def test_the_cli_passes_every_spec(mode: str, dtype: str, float32_specs: list[Path]) -> None:
    paths = [str(p) for p in (SPECS if dtype == "float64" else float32_specs)]
    runs = [FLAGS[mode] + ["--seed", str(s)] for s in (CLI_FAST_SEEDS if mode == "fast" else [0])]
    for flags in runs:
        r = _cli(*paths, *flags, "--format", "json")
        assert r.returncode == 0, f"{flags}\n{r.stdout[-3000:]}\n{r.stderr}"
        doc = json.loads(r.stdout)
        assert doc["ok"] is True and len(doc["reports"]) == len(paths)
