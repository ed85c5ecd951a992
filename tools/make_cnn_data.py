"""Write the small image set of specs/cnn/: 16 digit-like 28x28 images and their labels.

    python tools/make_cnn_data.py            # writes specs/cnn/data/X.npy and specs/cnn/data/y.csv

Each image is a seven-segment digit (0-9, then 0-5 again), its strokes 2-3 pixels wide at a
random offset, on a background of small Gaussian noise (so that the conv's outputs are all
distinct: no pooling window ties but for relu's zeros). Deterministic: numpy's default_rng(0),
values rounded to 4 decimals, the .npy written by numpy (a fixed header, then the float64 data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

N, SIZE = 16, 28
# segments a..g of a seven-segment display, lit per digit
DIGITS = ["abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"]


def _segment(img: np.ndarray, seg: str, top: int, left: int, width: int) -> None:
    """Draw one segment of a 16-high, 10-wide digit whose corner is (top, left)."""
    h, w = 16, 10
    rows = {"a": (0, 0), "g": (h // 2, h // 2), "d": (h - 1, h - 1)}
    if seg in rows:
        r = top + rows[seg][0]
        img[r:r + width, left:left + w] = 1.0
        return
    c = left + (w - width if seg in "bc" else 0)
    r0, r1 = (top, top + h // 2 + 1) if seg in "bf" else (top + h // 2, top + h + width - 1)
    img[r0:r1, c:c + width] = 1.0


def make(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X of shape (16, 1, 28, 28) and integer labels y of shape (16,)."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) % 10
    X = np.zeros((N, 1, SIZE, SIZE))
    for i, digit in enumerate(y):
        width = int(rng.integers(2, 4))
        top, left = (int(v) for v in rng.integers(3, 8, size=2) + np.array([0, 4]))
        for seg in DIGITS[digit]:
            _segment(X[i, 0], seg, top, left, width)
    X += 0.1 * rng.standard_normal(X.shape)
    return np.round(X, 4), y


def write(out: Path, seed: int = 0) -> None:
    X, y = make(seed)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "X.npy", X)
    (out / "y.csv").write_text("label\n" + "".join(f"{c}\n" for c in y), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "specs" / "cnn" / "data")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    write(args.out, args.seed)
    print(f"wrote {args.out / 'X.npy'} and {args.out / 'y.csv'}")


if __name__ == "__main__":
    main()
