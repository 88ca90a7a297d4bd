"""FOMM's keypoint detector around any predictor (the teacher's hourglass or a student)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.models.blocks import Hourglass
from compressbench.models.heads import (
    AntiAliasInterpolation2d,
    HeatmapWeightedJacobian,
    SoftArgmax,
    SpatialSoftmax,
)


@dataclass(frozen=True)
class DetectorConfig:
    """FOMM's ``kp_detector_params`` plus the ``common_params`` it uses; defaults are vox-256."""

    block_expansion: int = 32
    num_kp: int = 10
    num_channels: int = 3
    max_features: int = 1024
    num_blocks: int = 5
    temperature: float = 0.1
    estimate_jacobian: bool = True
    scale_factor: float = 0.25
    single_jacobian_map: bool = False
    pad: int = 0

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)

    def input_multiple(self) -> int:
        """The frame side must be a multiple of this: the anti-alias stage scales by ``scale_factor``,
        then ``num_blocks`` poolings halve the map and the up blocks must meet their skips again."""
        return max(1, round(2**self.num_blocks / self.scale_factor))

    def check_input_size(self, size: int, option: str = "--input-size") -> None:
        """Refuse a frame side the hourglass cannot take, naming sizes that fit."""
        multiple = self.input_multiple()
        if size <= 0 or size % multiple:
            raise CompressbenchError(
                f"{option} {size} does not fit this detector: its anti-alias stage (scale {self.scale_factor:g}) and "
                f"{self.num_blocks} poolings need a multiple of {multiple} (e.g. {multiple} or {2 * multiple})"
            )


class KeypointDetector(nn.Module):
    """Anti-alias down-sampling, a predictor, a 7x7 heatmap head with softmax and soft-argmax,
    and a 7x7 jacobian head weighted by the heatmaps.

    ``forward`` returns FOMM's keys ``value`` (B, K, 2) in [-1, 1] and ``jacobian`` (B, K, 2, 2),
    plus ``heatmap`` (B, K, H', W'), so a variant drops into a FOMM pipeline unchanged.
    """

    def __init__(self, predictor: nn.Module, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.predictor = predictor
        out_filters = predictor.out_filters
        self.kp = nn.Conv2d(out_filters, config.num_kp, kernel_size=(7, 7), padding=config.pad)
        self.softmax = SpatialSoftmax(config.temperature)
        self.soft_argmax = SoftArgmax()
        if config.estimate_jacobian:
            self.num_jacobian_maps = 1 if config.single_jacobian_map else config.num_kp
            self.jacobian = nn.Conv2d(out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7), padding=config.pad)
            self.jacobian_pool = HeatmapWeightedJacobian(self.num_jacobian_maps)
            with torch.no_grad():  # FOMM starts every jacobian at the identity
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1, 0, 0, 1] * self.num_jacobian_maps, dtype=torch.float))
        else:
            self.jacobian = None
        self.temperature = config.temperature
        self.scale_factor = config.scale_factor
        if config.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(config.num_channels, config.scale_factor)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            x = self.down(x)
        feature_map = self.predictor(x)
        heatmap = self.softmax(self.kp(feature_map))
        out = {"value": self.soft_argmax(heatmap)}
        if self.jacobian is not None:
            out["jacobian"] = self.jacobian_pool(heatmap, self.jacobian(feature_map))
        out["heatmap"] = heatmap
        return out


def build_teacher(config: DetectorConfig | None = None) -> KeypointDetector:
    """FOMM's KPDetector with an hourglass predictor."""
    config = config or DetectorConfig()
    predictor = Hourglass(config.block_expansion, config.num_channels, config.num_blocks, config.max_features)
    return KeypointDetector(predictor, config)
