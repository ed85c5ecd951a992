"""Write the small data files of specs/mlp/spiral*.json and digits.json: the values their
inputs hold when the specs are run or checked (training draws its own data: `train.data`).

    python tools/make_train_data.py     # specs/mlp/data/spiral_{X,y}.csv, digits_{X,y}.csv

spiral: the 300 points `train.data` generates (graphspec.train.spiral, seed 0), every digit
kept (%.17g): tests/test_train_results.py checks the generator still gives them. digits: the
first 20 of scikit-learn's 8x8 digits, scaled to [0, 1] (needs scikit-learn).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphspec.train import digits, spiral  # noqa: E402

OUT = ROOT / "specs" / "mlp" / "data"


def write(stem: str, X: np.ndarray, y: np.ndarray) -> None:
    header = ",".join(f"x{i + 1}" for i in range(X.shape[1]))
    np.savetxt(OUT / f"{stem}_X.csv", X, fmt="%.17g", delimiter=",", header=header, comments="")
    np.savetxt(OUT / f"{stem}_y.csv", y, fmt="%d", header="label", comments="")


if __name__ == "__main__":
    write("spiral", *spiral(100, 3, 0.2, 0))
    X, y = digits()
    write("digits", X[:20], y[:20])
