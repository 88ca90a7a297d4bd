"""Models shared by tests: the reduced teacher and real quantized variants of it."""

from __future__ import annotations

import torch

from compressbench.models import DetectorConfig, build_teacher

SMALL = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
FRAME_SIZE = 64  # small frames keep every forward fast; the detector works at any size


# Reduced teacher (block_expansion 8, max_features 64, 3 blocks, 10 keypoints), by hand:
# down convs 3->16, 16->32, 32->64 (3x3 + bias): 448 + 4,640 + 18,496; their BatchNorms 2*(16+32+64) = 224
# up convs 64->32, 64->16, 32->8: 18,464 + 9,232 + 2,312; their BatchNorms 2*(32+16+8) = 112
# heads on 8+3 = 11 channels, 7x7: kp 11*10*49+10 = 5,400; jacobian 11*40*49+40 = 21,600
SMALL_PARAMS = 448 + 4640 + 18496 + 224 + 18464 + 9232 + 2312 + 112 + 5400 + 21600
BATCHNORM_PARAMS = 224 + 112


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
    from compressbench.compression import get_method
    from compressbench.provenance import derive

    options = get_method("quantize").resolve(method_options)
    variant = derive(small_teacher(), ["quantize"], [options], context())[-1]
    variant.name = name
    return variant


def stage(method: str):
    from compressbench.provenance import Stage

    return Stage(method)
