"""The README's pictures, made by graphspec itself: `make pictures` (this script) writes them to
docs/img/; tests/test_draw.py checks that the committed ones say what this script draws now.

    python tools/pictures.py            # (re)write docs/img/*.svg
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (picture, spec, draw options): the README shows each
PICTURES = [
    ("mul.svg", "specs/lecture/mul.json", {"local": True}),
    ("network.svg", "specs/lecture/network.json", {}),
    ("deep.svg", "specs/mlp/deep.json", {}),
    ("network_check.svg", "specs/exercises/network_delta_submission.json", {"check": True}),
]


def main() -> int:
    import graphspec

    for name, spec, options in PICTURES:
        out = ROOT / "docs" / "img" / name
        graphspec.draw(ROOT / spec, out, **options)
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
