"""Weight-only 8-bit codebook quantization (Deep Compression, Han et al. 2015, "weight sharing").

Each layer's weights are clustered into 256 shared values by 1-D k-means (Lloyd iterations,
centroids initialised linearly over [min, max], which Deep Compression found best because it keeps
the rare large weights). The layer then stores a ``uint8`` index per weight plus a float32
codebook of 256 entries: the state dict, and so the saved file, is about 4x smaller. Arithmetic
stays in float: the weight is rebuilt from codebook and indices on first use and cached.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CODEBOOK_SIZE = 256  # 8-bit indices
LLOYD_ITERATIONS = 12


def _nearest(values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest of the sorted ``centroids`` for every value (midpoints as boundaries)."""
    boundaries = (centroids[1:] + centroids[:-1]) / 2
    return torch.bucketize(values, boundaries)


@torch.no_grad()
def kmeans_codebook(
    weight: torch.Tensor, size: int = CODEBOOK_SIZE, iterations: int = LLOYD_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook of ``size`` float32 values, int64 indices shaped like ``weight``)."""
    values = weight.detach().flatten().to(torch.float64)
    distinct = values.unique()  # sorted
    if distinct.numel() <= size:  # small or already-shared layers (e.g. FOMM's zero jacobian head) fit exactly
        codebook = torch.cat([distinct, distinct[-1:].expand(size - distinct.numel())])
        return codebook.to(torch.float32), torch.searchsorted(distinct, values).view(weight.shape)
    centroids = torch.linspace(float(values.min()), float(values.max()), size, dtype=torch.float64)
    for _ in range(iterations):
        index = _nearest(values, centroids)
        counts = torch.bincount(index, minlength=size)
        sums = torch.zeros(size, dtype=torch.float64).index_add_(0, index, values)
        # an empty cluster keeps its centroid; sorting keeps the midpoint boundaries valid
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids).sort().values
    index = _nearest(values, centroids)
    return centroids.to(torch.float32), index.view(weight.shape)


class _CodebookWeight(nn.Module):
    """Holds ``indices`` (uint8) and ``codebook`` (float32) buffers; ``weight`` is rebuilt lazily."""

    def _init_codebook(self, shape: tuple[int, ...]) -> None:
        self.register_buffer("indices", torch.zeros(shape, dtype=torch.uint8))
        self.register_buffer("codebook", torch.zeros(CODEBOOK_SIZE, dtype=torch.float32))
        self._cache: tuple[tuple, torch.Tensor] | None = None

    @torch.no_grad()
    def set_weight(self, weight: torch.Tensor, iterations: int = LLOYD_ITERATIONS) -> float:
        """Cluster ``weight`` into this layer; returns the relative error ||W - W'|| / ||W||."""
        codebook, index = kmeans_codebook(weight, CODEBOOK_SIZE, iterations)
        self.codebook.copy_(codebook)
        self.indices.copy_(index.to(torch.uint8))
        norm = float(weight.norm())
        return float((self.weight - weight).norm()) / norm if norm > 0 else 0.0

    @property
    def weight(self) -> torch.Tensor:
        # load_state_dict copies into the buffers in place, which bumps their version counters
        key = (self.indices._version, self.codebook._version, torch.is_inference_mode_enabled())
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.codebook[self.indices.long()])
        return self._cache[1]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state


class CodebookConv2d(_CodebookWeight):
    """A Conv2d whose weight is a 256-entry codebook plus uint8 indices (bias stays float)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.padding_mode != "zeros":
            raise ValueError(f"only zero padding is supported, got {conv.padding_mode}")
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, attr, getattr(conv, attr))
        self._init_codebook(tuple(conv.weight.shape))
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, codebook={CODEBOOK_SIZE}"


class CodebookLinear(_CodebookWeight):
    """A Linear whose weight is a 256-entry codebook plus uint8 indices (bias stays float)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._init_codebook(tuple(linear.weight.shape))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


CODEBOOK_LAYERS: dict[type, type] = {nn.Conv2d: CodebookConv2d, nn.Linear: CodebookLinear}


def codebook_layers(model: nn.Module) -> list[str]:
    """Names of the layers :func:`apply_codebooks` replaces (plain Conv2d / Linear, zero padding)."""
    return [
        name
        for name, m in model.named_modules()
        if type(m) in CODEBOOK_LAYERS and getattr(m, "padding_mode", "zeros") == "zeros"
    ]
