"""Training checkpoints in FOMM's layout, written atomically and read back with ``weights_only=True``.

A checkpoint is a plain dict:

- ``kp_detector``: the state dict of the best weights so far (FOMM's key, what
  ``compressbench.load_model(..., checkpoint=path)`` loads);
- ``last``: the state dict at ``step`` (what a resumed run continues from);
- ``optimizer``: the optimizer's state dict at ``step``;
- ``step``: optimisation steps done;
- ``rng``: one entry per process: every global random state (torch, CUDA, numpy, python);
- ``best``: ``{"metric", "value", "step", "bad_validations"}`` for early stopping;
- ``meta``: JSON-like facts about the run (command, seed, torch version, ...).

Only tensors and plain containers go in, so nothing but numbers comes out.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compressbench.errors import CompressbenchError
from compressbench.files import temp_prefix
from compressbench.models.checkpoint import FOMM_KEY, read_checkpoint

FILE_MODE = 0o644
REQUIRED_KEYS = (FOMM_KEY, "last", "optimizer", "step", "rng", "best", "meta")


def capture_rng() -> dict[str, Any]:
    """Every global random state of this process, as tensors and plain Python values."""
    bit_generator, key, pos, has_gauss, cached = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": bit_generator,
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the random states :func:`capture_rng` recorded."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["bit_generator"],
            numpy_state["key"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state dict (safe to keep while training goes on)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in module.state_dict().items()}


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename: never a half-written file."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent if str(path.parent) else ".", prefix=temp_prefix(path), suffix=".tmp"
        )
        # through a handle, not a path: torch names the archive inside after a path, and the
        # temporary name would make identical payloads differ byte for byte
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # mkstemp makes owner-only files
            torch.save(payload, handle)
        os.replace(tmp, path)
    except OSError as exc:  # the disk filled up, the folder went away: one line, no half-written file
        raise CompressbenchError(f"cannot write {path}: {(exc.strerror or type(exc).__name__).lower()}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by the trainer; a file that is not one is a clear error."""
    payload = read_checkpoint(path)
    missing = [key for key in REQUIRED_KEYS if not isinstance(payload, dict) or key not in payload]
    if missing:
        raise CompressbenchError(
            f"{path} is not a compressbench training checkpoint (missing {', '.join(missing)}); "
            "resume only from a file written by 'compressbench teacher train --out'"
        )
    return payload
