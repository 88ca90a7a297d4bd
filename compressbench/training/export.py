"""Ship trained weights: a half-precision state dict plus a JSON record of how it was made and how good it is."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import torch

from compressbench.data import synthetic_frames
from compressbench.errors import CompressbenchError
from compressbench.files import check_writable, write_atomic
from compressbench.models.checkpoint import extract_state_dict, load_state_dict_strict
from compressbench.models.default_weights import to_float32
from compressbench.models.detector import DetectorConfig, build_teacher
from compressbench.profiling.counting import BYTES_PER_MB, files_bytes
from compressbench.training.checkpoints import load_training_checkpoint, save_checkpoint
from compressbench.training.teacher import evaluate_teacher

TEST_SPLIT = "test"


def half_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors in float16 (half the bytes); integer buffers unchanged."""
    return {name: t.detach().cpu().half() if t.is_floating_point() else t.detach().cpu() for name, t in state.items()}


def export_teacher(
    checkpoint: str | Path, out: str | Path, test_frames: int = 256, seed: int = 0, batch_size: int = 32
) -> dict[str, Any]:
    """Write ``out`` (float16 state dict of the checkpoint's best weights) and ``out`` with a ``.json``
    suffix: the training command, seed, steps, torch version and the shipped weights' test metrics
    (measured after the float16 round trip, on ``test_frames`` synthetic frames of split "test")."""
    if test_frames <= 0:
        raise CompressbenchError(f"--test-frames must be a positive integer, got {test_frames}")
    out = check_writable(out)
    record_path = check_writable(out.with_suffix(".json"))
    payload = load_training_checkpoint(checkpoint)
    meta = payload["meta"]
    config = DetectorConfig(**meta["detector_config"]) if "detector_config" in meta else DetectorConfig()
    half = half_state_dict(extract_state_dict(payload, checkpoint))
    model = build_teacher(config)
    load_state_dict_strict(model, to_float32(half), checkpoint)
    frames = synthetic_frames(test_frames, split=TEST_SPLIT, seed=seed, num_kp=config.num_kp, size=meta.get("size", 256))
    measured = evaluate_teacher(model, frames, batch_size)
    save_checkpoint(out, half)
    try:  # the weights and their record, or neither
        return _write_record(out, record_path, config, payload, meta, test_frames, seed, measured)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _write_record(out: Path, record_path: Path, config: DetectorConfig, payload: dict, meta: dict, test_frames: int,
                  seed: int, measured: dict) -> dict[str, Any]:  # fmt: skip
    record = {
        "model": "teacher",
        "file": out.name,
        "dtype": "float16",
        "size_mb": round(files_bytes([out]) / BYTES_PER_MB, 3),  # the file's bytes: it is the model that ships
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "detector_config": config.to_dict(),
        "training": {
            "command": meta.get("command"),
            "seed": meta.get("seed"),
            "steps": payload["step"],
            "best_step": payload["best"]["step"],
            "best_val": {payload["best"]["metric"]: payload["best"]["value"]},
            "train_seconds": meta.get("train_seconds"),
            "resumed_at": meta.get("resumed_at", []),
            "torch": meta.get("torch"),
            "loss_weights": meta.get("loss_weights"),
            "lr_schedule": meta.get("lr_schedule"),
        },
        "test": {"split": TEST_SPLIT, "frames": test_frames, "seed": seed, **{k: round(v, 4) for k, v in measured.items()}},
        "exported_with": {"torch": str(torch.__version__), "python": platform.python_version()},
    }
    write_atomic(record_path, json.dumps(record, indent=2) + "\n")
    return record
