"""Saved models: a safe file format that never unpickles code.

A saved model is ``torch.save`` of a plain dict: ``format``, ``architecture`` (the name of a
registered *builder*), ``builder_args`` (JSON-like values), ``metadata`` and ``state_dict``.
Loading reads it with ``weights_only=True`` (tensors and plain containers only), rebuilds the
module skeleton by calling the registered builder with ``builder_args``, then loads the state
dict. Only code that ships with compressbench ever runs; the file supplies numbers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.models.checkpoint import load_state_dict_strict, read_checkpoint
from compressbench.registry import Registry
from compressbench.report.output import current_umask

FORMAT = "compressbench-model/1"

# builder(args: dict) -> nn.Module with the right shapes (random or empty weights).
ARCHITECTURES: Registry[Callable[[dict], nn.Module]] = Registry("saved-model architecture")


def register_architecture(name: str):
    """Decorator: register a builder that rebuilds a module skeleton from JSON-like args."""
    return ARCHITECTURES.register(name)


def is_saved_model(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def save_model(module: nn.Module, path: str | Path, architecture: str, builder_args: dict, metadata: dict | None = None) -> Path:
    """Write ``module`` atomically so that :func:`load_saved_model` can rebuild it."""
    ARCHITECTURES.get(architecture)  # fail before writing anything
    path = Path(path)
    payload = {
        "format": FORMAT,
        "architecture": architecture,
        "builder_args": builder_args,
        "metadata": metadata or {},
        "state_dict": module.state_dict(),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_saved_model(path: str | Path, payload: dict | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a saved model; returns ``(module, metadata)``."""
    payload = payload if payload is not None else read_checkpoint(path)
    if not is_saved_model(payload):
        raise CompressbenchError(f"{path} is not a compressbench model file (format {FORMAT!r})")
    import compressbench.compression  # noqa: F401  (registers the "chain" builder of saved variants)
    builder = ARCHITECTURES.get(payload["architecture"])
    try:
        module = builder(payload.get("builder_args") or {})
    except (TypeError, ValueError, KeyError) as exc:
        raise CompressbenchError(f"{path}: cannot rebuild architecture {payload['architecture']!r}: {exc}") from None
    load_state_dict_strict(module, payload["state_dict"], path)
    return module.eval(), dict(payload.get("metadata") or {})
