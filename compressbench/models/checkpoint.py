"""Load FOMM checkpoints and bare state dicts safely (``weights_only=True``)."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.files import check_input_file, read_error

FOMM_KEY = "kp_detector"
MAX_KEYS_NAMED = 3


def _weights_unpickler_detail(message: str) -> str | None:
    """What torch's weights-only unpickler refused, from its (long, multi-line) message, or None."""
    for line in message.splitlines():
        if "Unsupported" in line:
            return line.split("error:", 1)[-1].split(" was not", 1)[0].strip()
    if "WeightsUnpickler error" in message or "Weights only load failed" in message:
        tail = [line.strip() for line in message.split("WeightsUnpickler error:", 1)[-1].splitlines() if line.strip()]
        return tail[0] if tail else "a construct it does not allow"
    return None


def _looks_like_pickle(path: Path) -> bool:
    """A zip archive (torch.save) or a binary pickle (PROTO opcode and a protocol number first);
    anything else is not a checkpoint at all, whatever the unpickler made of its first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head == b"PK":
        return zipfile.is_zipfile(path)
    return len(head) == 2 and head[0] == 0x80 and head[1] <= pickle.HIGHEST_PROTOCOL


def _not_a_checkpoint(path: Path, detail: str) -> CompressbenchError:
    return CompressbenchError(f"checkpoint {path} is corrupt or not a PyTorch file ({detail})")


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``; every failure becomes one clear error."""
    path = check_input_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():
            # e.g. "Detected pickle protocol 4": the refusal below says what matters, in one line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _weights_unpickler_detail(str(exc))
        if refused is not None and _looks_like_pickle(path):
            raise CompressbenchError(
                f"checkpoint {path} holds Python objects or pickle instructions beyond tensors ({refused}): "
                "loading it could run code, so it is refused. Re-save it as a plain state dict (torch.save(model.state_dict(), ...))."
            ) from None
        raise _not_a_checkpoint(path, "unreadable pickle") from None
    except OSError as exc:
        raise read_error(path, exc, "checkpoint") from None
    except MemoryError:
        raise _not_a_checkpoint(path, "it asks for more memory than there is") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _not_a_checkpoint(path, detail) from None
    except Exception:  # noqa: BLE001  random bytes make the unpickler fail any way (IndexError, KeyError, struct.error)
        raise _not_a_checkpoint(path, "unreadable pickle") from None


def extract_state_dict(obj: Any, path: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The detector's state dict from a FOMM checkpoint (its ``kp_detector`` entry) or a bare one."""
    if isinstance(obj, dict) and FOMM_KEY in obj and isinstance(obj[FOMM_KEY], dict):
        obj = obj[FOMM_KEY]
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = ", ".join(map(str, list(obj)[:MAX_KEYS_NAMED])) if isinstance(obj, dict) else type(obj).__name__
        raise CompressbenchError(
            f"{path} is neither a FOMM checkpoint (no '{FOMM_KEY}' entry) nor a state dict (found: {keys})"
        )
    return obj


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``state`` into ``model``; on any mismatch name the first offending keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped (file vs model)", misshaped)):
        if keys:
            more = f" (+{len(keys) - MAX_KEYS_NAMED} more)" if len(keys) > MAX_KEYS_NAMED else ""
            problems.append(f"{label}: {', '.join(keys[:MAX_KEYS_NAMED])}{more}")
    if problems:
        raise CompressbenchError(f"checkpoint {source} does not fit the model; " + "; ".join(problems))
    model.load_state_dict(state, strict=False)
