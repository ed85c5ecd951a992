"""Write the small data set of specs/mlp/: three Gaussian blobs in the plane, 20 points each.

    python tools/make_mlp_data.py            # writes specs/mlp/data/X.csv and specs/mlp/data/y.csv

Deterministic: the same files on every run and every machine (numpy's default_rng(0) with
fixed parameters; values are rounded to 4 decimals so the CSV text is exact).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CENTERS = np.array([[0.0, 1.5], [-1.4, -0.8], [1.4, -0.8]])
SPREAD = 0.6
PER_CLASS = 20


def make(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X of shape (60, 2) and integer labels y of shape (60,), classes interleaved 0, 1, 2, 0, ..."""
    rng = np.random.default_rng(seed)
    k = len(CENTERS)
    y = np.tile(np.arange(k), PER_CLASS)
    X = CENTERS[y] + SPREAD * rng.standard_normal((len(y), 2))
    return np.round(X, 4), y


def write(out: Path, seed: int = 0) -> None:
    X, y = make(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "X.csv").write_text("x1,x2\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in X), encoding="utf-8")
    (out / "y.csv").write_text("label\n" + "".join(f"{c}\n" for c in y), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "specs" / "mlp" / "data")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    write(args.out, args.seed)
    print(f"wrote {args.out / 'X.csv'} and {args.out / 'y.csv'}")


if __name__ == "__main__":
    main()
