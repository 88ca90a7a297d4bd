"""Stand-ins for the comparison tests: a reduced teacher and an FX-quantized copy of it."""

from __future__ import annotations

import copy
import warnings

import torch

from compressbench.compression import Variant
from compressbench.models import DetectorConfig, build_teacher

SMALL = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
FRAME_SIZE = 64  # small frames keep every forward fast; the detector works at any size


def small_teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_teacher(SMALL).eval()


def quantized_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The predictor quantized with torch.ao FX (fbgemm): packed int8 convs, BatchNorm folded."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    out = copy.deepcopy(model)
    example = torch.rand(2, 3, FRAME_SIZE // 4, FRAME_SIZE // 4, generator=torch.Generator().manual_seed(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(out.predictor, get_default_qconfig_mapping("fbgemm"), example_inputs=(example,))
        prepared(example)
        out.predictor = convert_fx(prepared)
    return out.eval()


def stage(method: str) -> dict:
    return {"method": method, "options": {}, "structure": {}, "report": {}}
