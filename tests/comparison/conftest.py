"""Fixtures: a reduced teacher, frames, an identical copy and an FX-quantized copy as variants."""

from __future__ import annotations

import copy

import pytest
import torch

from compressbench.compression import Variant

from .standins import FRAME_SIZE, quantized_copy, small_teacher, stage


@pytest.fixture(scope="module")
def teacher():
    return small_teacher()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(3, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def copy_variant(teacher):
    return Variant("copy", copy.deepcopy(teacher), [stage("exact")], False, {"model": "teacher"})


@pytest.fixture(scope="module")
def int8_variant(teacher):
    return Variant("int8", quantized_copy(teacher), [stage("quantize")], True, {"model": "teacher"})
