"""What the runtime probes share: the trained teacher, variants of it built by a method chain, and
the calibration and example frames they are timed on (256 px, seed 0).

Imported by ``benchmarks/switch_cost_probe.py``, ``omp_policy_probe.py`` and ``isa_cap_probe.py``
(run from the repository root: ``.venv/bin/python benchmarks/<script>.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compressbench.compression import CompressionContext, apply_chain, stage_options
from compressbench.data import frames_for
from compressbench.provenance import load_model

SIZE, CALIBRATION_FRAMES = 256, 64


@dataclass
class ProbeSetup:
    teacher: nn.Module
    calibration: torch.Tensor  # int8 calibration frames (training split)
    batch: torch.Tensor  # the one held-out frame every runner is timed on
    context: CompressionContext

    def variant(self, chain: list[str], **common) -> nn.Module:
        """The teacher through ``chain`` (``common``: options for every stage, e.g. ratio=0.5), in eval mode."""
        if not chain:
            return self.teacher
        return apply_chain(self.teacher, chain, stage_options(chain, common, {}), self.context)[-1][0].eval()


def probe_setup() -> ProbeSetup:
    teacher = load_model("teacher").eval()
    context = CompressionContext(
        calibration_frames=lambda n: frames_for("synthetic", n, split="train", seed=0, size=SIZE).images,
        input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False,
    )  # fmt: skip
    calibration = frames_for("synthetic", CALIBRATION_FRAMES, split="train", seed=0, size=SIZE).images
    batch = frames_for("synthetic", 1, split="test", seed=0, size=SIZE).images[:1].contiguous()
    return ProbeSetup(teacher, calibration, batch, context)
