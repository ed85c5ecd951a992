"""A training run's log as files: a CSV of the epochs and a plot of the training and
validation curves (SVG or PNG through matplotlib, the extra `plot`; SVG written here without it)."""

from __future__ import annotations

import csv
import importlib.util
import io
import math
from pathlib import Path
from typing import Any

from .errors import UsageError
from .files import write_atomic

PLOT_SUFFIXES = (".svg", ".png")


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def check_plot_path(path: str | Path) -> None:
    """Before any work: a suffix we can write, and matplotlib for a PNG."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise UsageError(f"--plot {path}: a plot is written as .svg or .png")
    if suffix == ".png" and not has_matplotlib():
        raise UsageError(f"--plot {path}: a PNG needs matplotlib (pip install 'graphspec[plot]'); .svg needs nothing")


def rows(log: list[Any]) -> list[dict[str, Any]]:
    return [e.row() for e in log]


def write_csv(path: str | Path, log: list[Any]) -> None:
    """One row per epoch: epoch, step, lr, loss, accuracy, val_loss, val_accuracy and the named
    metrics; an empty cell where a metric is not measured."""
    table = rows(log)
    columns = ["epoch", "step", "lr", "loss", "accuracy", "val_loss", "val_accuracy"]
    columns += [k for r in table for k in r if k not in columns]
    columns = list(dict.fromkeys(columns))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in table:
        w.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    write_atomic(path, buf.getvalue())


def _panels(log: list[Any]) -> list[tuple[str, list[tuple[str, list[tuple[int, float]]]]]]:
    """(title, [(label, points)]) for the loss and, when measured, the accuracy."""
    out = []
    for title, keys in (("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy"))):
        curves = []
        for k in keys:
            pts = [(e.epoch, getattr(e, k)) for e in log if getattr(e, k) is not None and math.isfinite(getattr(e, k))]
            if pts:
                curves.append(("training" if not k.startswith("val_") else "validation", pts))
        if curves:
            out.append((title, curves))
    return out


def write_plot(path: str | Path, log: list[Any], *, use_matplotlib: bool | None = None) -> None:
    """The loss (and accuracy) per epoch, training and validation, as .svg or .png."""
    check_plot_path(path)
    if use_matplotlib is None:
        use_matplotlib = has_matplotlib()
    if use_matplotlib:
        data = _matplotlib(log, Path(path).suffix.lower()[1:])
    else:
        data = svg(log).encode()
    write_atomic(path, data)


def _matplotlib(log: list[Any], fmt: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    panels = _panels(log)
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 3 * len(panels)), squeeze=False)
    for ax, (title, curves) in zip(axes[:, 0], panels, strict=True):
        for label, pts in curves:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    plt.close(fig)
    return buf.getvalue()


_COLORS = {"training": "#1f77b4", "validation": "#ff7f0e"}


def svg(log: list[Any], width: int = 600, height: int = 260) -> str:
    """A small SVG by hand: per panel, axes with the ranges as labels and a polyline per curve."""
    panels = _panels(log)
    left, right, top, bottom = 60, 20, 24, 36
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height * max(len(panels), 1)}" '
             f'font-family="sans-serif" font-size="11">']
    for i, (title, curves) in enumerate(panels):
        y0 = i * height
        xs = [p[0] for _, pts in curves for p in pts]
        ys = [p[1] for _, pts in curves for p in pts]
        x_lo, x_hi = min(xs), max(xs)
        y_lo, y_hi = min(ys), max(ys)
        x_hi = x_hi if x_hi > x_lo else x_lo + 1
        y_hi = y_hi if y_hi > y_lo else y_lo + 1
        w, h = width - left - right, height - top - bottom
        sx = lambda x: left + (x - x_lo) / (x_hi - x_lo) * w  # noqa: B023
        sy = lambda y: y0 + top + h - (y - y_lo) / (y_hi - y_lo) * h  # noqa: B023
        parts.append(f'<text x="{left}" y="{y0 + 16}" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{left}" y1="{y0 + top + h}" x2="{left + w}" y2="{y0 + top + h}" stroke="black"/>')
        parts.append(f'<line x1="{left}" y1="{y0 + top}" x2="{left}" y2="{y0 + top + h}" stroke="black"/>')
        parts.append(f'<text x="{left - 4}" y="{y0 + top + 4}" text-anchor="end">{y_hi:.4g}</text>')
        parts.append(f'<text x="{left - 4}" y="{y0 + top + h}" text-anchor="end">{y_lo:.4g}</text>')
        parts.append(f'<text x="{left}" y="{y0 + top + h + 14}" text-anchor="middle">{x_lo:g}</text>')
        parts.append(f'<text x="{left + w}" y="{y0 + top + h + 14}" text-anchor="middle">{x_hi:g}</text>')
        parts.append(f'<text x="{left + w / 2}" y="{y0 + top + h + 28}" text-anchor="middle">epoch</text>')
        for j, (label, pts) in enumerate(curves):
            color = _COLORS[label]
            points = " ".join(f"{sx(x):.2f},{sy(y):.2f}" for x, y in pts)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}">'
                         f'<title>{label}</title></polyline>')
            parts.append(f'<text x="{left + w - 4}" y="{y0 + top + 12 + 14 * j}" text-anchor="end" fill="{color}">'
                         f'{label}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)
