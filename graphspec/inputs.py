"""Values from text and files, for the API as for the CLI's ``--input`` and ``--params``.

    >>> import graphspec
    >>> from graphspec.inputs import load_params, parse_inputs
    >>> g = graphspec.load("specs/mlp/mlp.json")
    >>> load_params(g, "mlp.params.npz")                  # trained params, checked against the spec
    >>> g.run(parse_inputs(["X=@X.npy", "y=[0, 1, 2]"]))  # NAME=JSON, NAME=@file, NAME=@file.npz:key
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GraphspecError, InputError, did_you_mean
from .values import as_array, json_value, read_file, read_named_arrays

if TYPE_CHECKING:
    from .api import Graph

_SUFFIXES = (".npz", ".npy", ".csv", ".json")


def parse_input(text: str, *, label: str = "input", error: type[GraphspecError] = InputError) -> tuple[str, Any]:
    """``NAME=VALUE`` as (name, value): VALUE is JSON (``2.0``, ``[[1, 2]]``), ``@file``
    (.npy, .npz with one array, .csv, .json) or ``@file.npz:key`` (one array of an .npz).
    Files are read with the bounds of every file graphspec reads; one that cannot be read is a
    `SpecError`, as a spec's own file is. Other errors are ``error``s naming ``label`` and the
    name (the CLI says ``--input x``)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise error(f"{label} {text!r}: expected NAME=VALUE or NAME=@file")
    where = f"{label} {name}"
    if value.startswith("@"):
        path, key = value[1:], None
        head, colon, tail = path.rpartition(":")
        if colon and Path(head).suffix.lower() in _SUFFIXES and not os.path.exists(path):
            path, key = head, tail  # @two.npz:key (read_file says that a key goes with an .npz only)
            if not key:
                raise error(f"{where}: @{path}: an empty key after ':' (say @{path}:KEY)")
        return name, read_file(Path(path), key, where, key_syntax=lambda k: f"@{path}:{k}")
    try:
        return name, json_value(value, "the value", where, error=error)
    except error as e:
        if "not valid JSON" not in e.message:
            raise
        raise error(f"{where}: {value[:60]!r} is neither JSON nor @file") from None


def parse_inputs(texts: Iterable[str], **options: Any) -> dict[str, Any]:
    """Several ``NAME=VALUE`` texts as the mapping `Graph.run` takes (a later name wins);
    ``options`` as for `parse_input`."""
    return dict(parse_input(t, **options) for t in texts)


def input_files(text: str) -> list[str]:
    """The files a ``NAME=@file`` text reads (both readings of ``@file.npz:key``), for the
    commands that must not write over them."""
    _, _, value = text.partition("=")
    if not value.startswith("@"):
        return []
    return [value[1:], value[1:].rpartition(":")[0]] if ":" in value else [value[1:]]


def load_params(graph: Graph, path: str | Path, *, label: str | None = None,
                error: type[GraphspecError] = InputError) -> dict[str, np.ndarray]:
    """Replace ``graph.params`` with the arrays of the .npz at ``path`` (as `train` saves
    them): each must name a param and have its declared shape; its values go through the
    param's dtype as any value does. Params the file does not name keep their values.
    Returns the arrays set. Errors are ``error``s naming ``label`` (default: the path)."""
    where = label or str(path)
    arrays = read_named_arrays(Path(path), where, error=error)  # bounded: see reading.py
    params, decls = graph.params, graph.program.decls
    for name, arr in arrays.items():
        if name not in params:
            raise error(f"{where}: '{name}' is not a param of this spec", hint=did_you_mean(name, params))
        if arr.shape != params[name].shape:
            raise error(f"{where}: '{name}' has shape {list(arr.shape)}, the spec declares {list(params[name].shape)}")
    # every array checked before any is set: a bad file leaves the params as they were
    loaded = {name: as_array(arr, decls[name].dtype, f"{where}: {name}", error=InputError)
              for name, arr in arrays.items()}
    params.update(loaded)
    return loaded
