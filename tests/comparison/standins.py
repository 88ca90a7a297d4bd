"""Models for the comparison tests: the reduced teacher and real quantized variants of it."""

from __future__ import annotations

import torch

from compressbench.models import DetectorConfig, build_teacher

SMALL = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
SMALL_BASE = {"model": "teacher", "config": SMALL.to_dict()}  # what save_variant/rebuild need
FRAME_SIZE = 64  # small frames keep every forward fast; the detector works at any size


def small_teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_teacher(SMALL).eval()


def context():
    from compressbench.compression import CompressionContext

    return CompressionContext(
        calibration_frames=lambda n: torch.rand(
            n, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(5)
        ),
        input_shape=(1, 3, FRAME_SIZE, FRAME_SIZE),
        show_progress=False,
    )


def quantized(method_options: dict, name: str):
    """The reduced teacher quantized by the real ``quantize`` method, as a named variant."""
    from compressbench.compression import compress, get_method

    options = get_method("quantize").resolve(method_options)
    variant = compress(small_teacher(), ["quantize"], [options], context(), base=SMALL_BASE)[-1]
    variant.name = name
    return variant


def stage(method: str) -> dict:
    return {"method": method, "options": {}, "structure": {}, "report": {}}
