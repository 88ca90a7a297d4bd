"""The reduced detector with lively random weights, an example batch and held-out frames."""

from __future__ import annotations

import pytest
import torch

from compressbench.data import frames_for
from tests.compression.swap_helpers import lively_teacher

SIZE = 64


@pytest.fixture(scope="package")
def detector() -> torch.nn.Module:
    return lively_teacher().eval()


@pytest.fixture(scope="package")
def batch() -> torch.Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="package")
def held_out() -> torch.Tensor:
    return frames_for("synthetic", 8, split="test", seed=0, size=SIZE).images


@pytest.fixture(scope="package")
def calibration() -> torch.Tensor:
    return frames_for("synthetic", 16, split="train", seed=0, size=SIZE).images
