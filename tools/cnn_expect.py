"""The expectations of specs/cnn/cnn.json, computed by PyTorch (CPU, float64, eager), not by graphspec.

    python tools/cnn_expect.py            # rewrites the "expect" block of specs/cnn/cnn.json
    python tools/cnn_expect.py --print    # prints it instead

The params are drawn the way docs/format.md documents graphspec's init (numpy default_rng seeded
with [seed, crc32(name)], then normal(0, std) or zeros), from the spec's own declarations; the
model is written here in torch: conv2d, relu, max_pool2d, flatten, linear, cross_entropy.
tests/test_cnn.py recomputes the same with torch from the params graphspec drew.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

SPEC = Path(__file__).resolve().parent.parent / "specs" / "cnn" / "cnn.json"


def documented_init(name: str, decl: dict[str, Any], seed: int) -> np.ndarray:
    init = decl["init"]
    if init == "zeros":
        return np.zeros(decl["shape"])
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.normal(0.0, init["normal"], size=decl["shape"])


def torch_cnn(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> tuple[Any, Any, dict[str, np.ndarray]]:
    """(loss, logits, the gradient of every param) of the spec's model, in torch float64."""
    import torch
    import torch.nn.functional as F

    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    h = F.relu(F.conv2d(torch.tensor(X), p["Wc"], p["bc"]))
    logits = F.max_pool2d(h, 2).flatten(1) @ p["W"] + p["b"]
    loss = F.cross_entropy(logits, torch.tensor(y))
    grads = torch.autograd.grad(loss, list(p.values()))
    return loss.item(), logits.detach().numpy(), {k: g.numpy() for k, g in zip(p, grads, strict=True)}


def load_data(spec: dict[str, Any], base: Path) -> tuple[np.ndarray, np.ndarray]:
    X = np.load(base / spec["inputs"]["X"]["file"])
    y = np.loadtxt(base / spec["inputs"]["y"]["file"], skiprows=1, dtype=np.int64)
    return X, y


def expect_block(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    X, y = load_data(spec, base)
    params = {k: documented_init(k, d, spec.get("seed", 0)) for k, d in spec["params"].items()}
    loss, logits, grads = torch_cnn(X, y, params)
    # W's gradient (13,520 numbers) is left to tests/test_cnn.py: the spec stays readable
    return {"values": {"loss": loss, "logits": logits.tolist()},
            "grads": {k: grads[k].tolist() for k in ("Wc", "bc", "b")}, "rtol": 1e-9, "atol": 1e-12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--print", action="store_true", help="print the block instead of writing it into the spec")
    args = ap.parse_args()
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    block = expect_block(spec, SPEC.parent)
    if args.print:
        print(json.dumps(block, indent=2))
        return
    spec["expect"] = block
    text = dump(spec) + "\n"
    fd, tmp = tempfile.mkstemp(dir=SPEC.parent, suffix=".tmp")  # atomic: the spec is never half written
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, SPEC)
    print(f"wrote the expect block of {SPEC}")


def dump(obj: Any, pad: str = "") -> str:
    """JSON with objects one key a line and arrays one innermost row a line (a spec stays readable)."""
    inner = pad + "  "
    if isinstance(obj, dict):
        flat = all(not isinstance(v, list) or not any(isinstance(a, list) for a in v) for v in obj.values())
        if flat and len(json.dumps(obj)) < 110:
            return json.dumps(obj)
        items = [f"{inner}{json.dumps(k)}: {dump(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], list):
        return "[\n" + ",\n".join(inner + dump(v, inner) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


if __name__ == "__main__":
    main()
