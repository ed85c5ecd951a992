"""`python -m graphspec check`: placeholder until the gradient checker lands."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="*")


def run(args: argparse.Namespace) -> int:
    print("check: not implemented yet")
    return 2
