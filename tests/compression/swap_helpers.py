"""Helpers shared by the convolution-swap tests (dsconv, asym)."""

from __future__ import annotations

import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.models import DetectorConfig, build_teacher
from compressbench.provenance import derive

REDUCED = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
# (name, C_in, C_out) of the reduced teacher's 3x3 convolutions, worked out from FOMM's widths:
# encoder 3 -> 16 -> 32 -> 64, decoder 64 -> 32, (32+32) -> 16, (16+16) -> 8.
REDUCED_CONVS = [
    ("predictor.encoder.down_blocks.0.conv", 3, 16),
    ("predictor.encoder.down_blocks.1.conv", 16, 32),
    ("predictor.encoder.down_blocks.2.conv", 32, 64),
    ("predictor.decoder.up_blocks.0.conv", 64, 32),
    ("predictor.decoder.up_blocks.1.conv", 64, 16),
    ("predictor.decoder.up_blocks.2.conv", 32, 8),
]
REDUCED_PARAMS = 80_928  # whole reduced detector
REDUCED_CONV_PARAMS = sum(9 * i * o + o for _, i, o in REDUCED_CONVS)
QUIET = CompressionContext(show_progress=False, seed=0)


def lively_teacher(seed: int = 0) -> nn.Module:
    """The reduced teacher with every parameter and BatchNorm statistic random.

    The stock init zeroes the jacobian head and leaves BatchNorm at identity statistics, which
    would let a broken swap pass the jacobian comparison or hide a wrong channel order.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_teacher(REDUCED).eval()
    with torch.no_grad():
        model.jacobian.weight.copy_(0.01 * torch.randn(model.jacobian.weight.shape, generator=generator))
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(0.5 + torch.rand(c, generator=generator))
                module.bias.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
            elif isinstance(module, nn.Conv2d) and module.bias is not None and module is not model.jacobian:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return model


def frames(batch: int = 2, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def swap(model: nn.Module, method: str, **options):
    """Apply one method through the chain; returns the last Variant."""
    resolved = get_method(method).resolve(options)
    return derive(model, method, [resolved], QUIET)[-1]


def max_output_difference(a: dict, b: dict) -> dict[str, float]:
    return {key: (a[key] - b[key]).abs().max().item() for key in ("value", "jacobian", "heatmap")}
